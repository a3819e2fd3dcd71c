//! The fast path stays fast for the bundled catalogue, and gives Tera's bytes: every scenario
//! fills a skeleton shared by many journeys instead of running Tera per journey, and for
//! 2,000 journey ids each its bytes are the ones Tera renders.

use otk_mock::catalogue::Catalogue;
use otk_mock::scenario::loader::CatalogueSource;

/// Journey ids compared per scenario.
const IDS: usize = 2_000;

#[test]
fn every_bundled_scenario_gives_teras_bytes_for_2000_journey_ids() {
    let catalogue = Catalogue::load(&CatalogueSource::default(), 0).expect("bundled catalogue");
    let scenarios = catalogue.scenarios();
    // Tera takes about a millisecond a body in a debug build: both cores share the work.
    std::thread::scope(|scope| {
        for half in scenarios.chunks(scenarios.len().div_ceil(2)) {
            let catalogue = &catalogue;
            scope.spawn(move || {
                for scenario in half {
                    assert!(
                        catalogue.renderer().is_fast(scenario),
                        "{} is not on the fast path: {:?}",
                        scenario.name,
                        catalogue.renderer().fast_path(scenario)
                    );
                    for i in 0..IDS {
                        let id = format!("{}-{i}", if i % 2 == 0 { "shape" } else { "Q7K2" });
                        let fast = catalogue.stateless_bytes(scenario, &id).expect("renders");
                        let (journey, person) = catalogue.stateless_journey(&id);
                        let tera = catalogue
                            .renderer()
                            .render_tera(scenario, &journey, &person)
                            .expect("Tera renders");
                        assert!(
                            fast == tera,
                            "{} for {id}:\nfast: {}\ntera: {}",
                            scenario.name,
                            String::from_utf8_lossy(&fast),
                            String::from_utf8_lossy(&tera)
                        );
                    }
                    assert_eq!(catalogue.renderer().fallbacks(scenario), Some(0), "{}", scenario.name);
                    let shapes = catalogue.renderer().shapes(scenario).unwrap_or(usize::MAX);
                    assert!(
                        shapes <= 16,
                        "{}: {shapes} skeletons for {IDS} journeys; a template branches or filters on a per-journey value",
                        scenario.name
                    );
                }
            });
        }
    });
}
