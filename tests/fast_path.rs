//! The fast path stays fast for the bundled catalogue: every scenario fills a skeleton shared
//! by many journeys instead of running Tera per journey, and gives Tera's bytes.

use otk_mock::catalogue::Catalogue;
use otk_mock::scenario::loader::CatalogueSource;

#[test]
fn every_bundled_scenario_shares_a_few_skeletons_across_journeys() {
    let catalogue = Catalogue::load(&CatalogueSource::default(), 0).expect("bundled catalogue");
    for scenario in catalogue.scenarios() {
        assert!(
            catalogue.renderer().is_fast(scenario),
            "{} is not on the fast path",
            scenario.name
        );
        for i in 0..200 {
            let id = format!("shape-{i}");
            let fast = catalogue.stateless_bytes(scenario, &id).expect("renders");
            if i % 20 == 0 {
                // The bytes are Tera's, minified.
                let value = catalogue.render_stateless(scenario, &id).expect("renders");
                assert_eq!(
                    serde_json::to_vec(&value).unwrap(),
                    fast,
                    "{}",
                    scenario.name
                );
            }
        }
        let shapes = catalogue.renderer().shapes(scenario).unwrap_or(usize::MAX);
        assert!(
            shapes <= 16,
            "{}: {shapes} skeletons for 200 journeys; a template branches or filters on a per-journey value",
            scenario.name
        );
    }
}
