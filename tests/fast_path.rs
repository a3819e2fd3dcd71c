//! The fast path stays fast for the bundled catalogue, and gives Tera's bytes: every scenario
//! fills a skeleton shared by many journeys instead of running Tera per journey, and for
//! 2,000 journey ids each its bytes are the ones Tera renders.

use otk_mock::catalogue::{Catalogue, Choice};
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
                    // Every family, by the id's draw and by choice; the IP check on and off.
                    let families = ["in_dl", "ae_id", "passport", "us_dl"];
                    for i in 0..IDS {
                        let id = format!("{}-{i}", if i % 2 == 0 { "shape" } else { "Q7K2" });
                        let choice = Choice {
                            document: (i % 3 == 0).then(|| families[i / 3 % families.len()]),
                            ip_check: (i % 7 == 0).then_some(i % 14 == 0),
                        };
                        let mut fast = Vec::new();
                        catalogue
                            .stateless_into(scenario, &id, choice, &mut fast)
                            .expect("renders");
                        let (journey, person) = catalogue.scenario_journey(scenario, &id, choice);
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

mod common;

use hyper::Method;
use otk_mock::config::Config;

async fn metric(server: &common::Mock, name: &str) -> u64 {
    let reply = server.send(Method::GET, "/__admin/metrics", &[], "").await;
    let text = reply.text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[tokio::test]
async fn verify_fast_path_catches_a_wrong_fast_path_and_serves_teras_body() {
    let server = common::start_with(Config {
        verify_fast_path: 2,
        cache_entries: 0,
        ..Config::ephemeral()
    })
    .await;
    let get = |id: &str| {
        let path = format!("/api/v3/otk-service/get-journey/{id}");
        let server = &server;
        async move {
            server
                .send(Method::POST, &path, &[("authorization", common::TOKEN)], "")
                .await
        }
    };
    // Right bodies: every second one is checked, none differs.
    for i in 0..4 {
        assert_eq!(get(&format!("vpn-{i}")).await.status, 200);
    }
    assert_eq!(metric(&server, "otk_mock_fast_path_checks_total").await, 2);
    assert_eq!(
        metric(&server, "otk_mock_fast_path_differences_total").await,
        0
    );

    // A fast path gone wrong (the test hook adds a field to every new skeleton).
    let catalogue = server.app().catalogue();
    assert!(catalogue.corrupt_fast_path("success"));
    let expected = catalogue
        .stateless_bytes(catalogue.find("success").unwrap(), "Q1")
        .unwrap();
    assert!(String::from_utf8_lossy(&expected).contains("otkMockCorrupted"));
    let mut bodies = Vec::new();
    for id in ["Q2", "Q3"] {
        let reply = get(id).await;
        assert_eq!(reply.status, 200);
        bodies.push(reply.text());
    }
    // The checked one was caught and Tera's served; the scenario is on Tera from then on.
    assert_eq!(
        metric(&server, "otk_mock_fast_path_differences_total").await,
        1
    );
    assert!(bodies.iter().any(|b| !b.contains("otkMockCorrupted")));
    assert!(!catalogue
        .renderer()
        .is_fast(catalogue.find("success").unwrap()));
    let after = get("Q4").await.text();
    assert!(!after.contains("otkMockCorrupted"), "{after}");
    let (journey, person) =
        catalogue.scenario_journey(catalogue.find("success").unwrap(), "Q4", Choice::default());
    let tera = catalogue
        .renderer()
        .render_tera(catalogue.find("success").unwrap(), &journey, &person)
        .unwrap();
    assert_eq!(
        after,
        format!("{{\"result\":{}}}", String::from_utf8_lossy(&tera))
    );
}
