//! Memory bounded in bytes: hostile inputs (journey ids of 60,000 characters, create calls
//! carrying a megabyte of `flowId`) through the whole app, and every store stays within its
//! byte budget, by the stores' own accounting. In process: what is measured is what the
//! mock keeps, not what a socket costs.

mod common;
mod support;

use hyper::{Method, StatusCode};
use otk_mock::config::Config;
use serde_json::json;

use common::{get_journey, start_with};
use support::{admin, create, quick_config};

/// Small budgets, so that a few hundred hostile requests fill them many times over.
fn tight() -> Config {
    let mut config = quick_config();
    config.journal_bytes = 64 * 1024;
    config.cache_bytes = 1 << 20;
    config.journey_bytes = 4 << 20;
    config
}

#[tokio::test]
async fn long_journey_ids_stay_within_the_journal_and_cache_budgets() {
    let mut config = tight();
    // As long as ids may be (--max-journey-id at its most): longer ones are refused with a
    // 414 before anything is kept (tests/request_bounds.rs).
    config.max_journey_id = 4096;
    let server = start_with(config.clone()).await;
    let long = "x".repeat(4000);
    for i in 0..300 {
        let reply = get_journey(&server, &format!("success-{i}{long}"), &[]).await;
        assert_eq!(reply.status, StatusCode::OK);
        let app = server.app();
        assert!(app.journal().bytes() as u64 <= config.journal_bytes);
        assert!(app.cache().bytes() <= config.cache_bytes);
    }
    let app = server.app();
    // The journal kept every request it has room for, each cut to its share.
    assert_eq!(app.journal().len(), app.journal().capacity());
    let page = admin(&server, Method::GET, "requests?limit=1000", "").await;
    let rows = page.json()["requests"].as_array().unwrap().clone();
    assert!(rows.iter().all(|r| r["truncated"] == true));
    assert!(rows
        .iter()
        .all(|r| r["journeyId"].as_str().unwrap().ends_with('…')));
    // So a page of the listing is small, however long the ids were.
    assert!(page.body.len() < 1 << 20, "{}", page.body.len());
}

#[tokio::test]
async fn a_megabyte_of_flow_id_per_journey_stays_within_the_store_budget() {
    let config = tight();
    let server = start_with(config.clone()).await;
    let flow_id = "f".repeat(900 * 1024);
    let body = json!({ "flowId": flow_id, "processingConfig": { "callbackUrl": "http://127.0.0.1:9/cb" } });
    for _ in 0..20 {
        let reply = create(&server, &body, &[]).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        let stored = server.app().journeys().bytes() as u64;
        assert!(stored <= config.journey_bytes, "{stored}");
    }
    // Only a few fit; the oldest were evicted to make room.
    let kept = server.journeys().await.len();
    assert!((1..=4).contains(&kept), "{kept}");
    // A page of the listing stops near its byte cap, however heavy each journey is.
    let page = admin(&server, Method::GET, "journeys?limit=1000", "").await;
    assert!(page.body.len() < 8 << 20, "{}", page.body.len());
    assert!(page.json()["count"].as_u64().unwrap() >= 1);
}

#[tokio::test]
async fn a_journey_heavier_than_the_whole_budget_is_a_413() {
    let mut config = quick_config();
    config.journey_bytes = 64 * 1024;
    let server = start_with(config).await;
    let body = json!({ "flowId": "f".repeat(100 * 1024) });
    create(&server, &body, &[]).await.assert_provider_error(413);
    assert!(server.journeys().await.is_empty());
    // An ordinary one still fits.
    let reply = create(&server, &json!({ "flowId": "f" }), &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
}
