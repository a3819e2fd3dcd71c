//! The control plane: the request journal and its filters, counting requests, health, metrics
//! (OpenMetrics text), and hot reload of a catalogue directory (a good change is served, a
//! broken one keeps the last good catalogue and is reported). In process, except hot reload:
//! the `--watch` poller is started by the server, and a `MockApp` has none.

mod common;
mod support;

use std::path::Path;
use std::time::Duration;

use hyper::{Method, StatusCode};
use otk_mock::config::Config;
use serde_json::{json, Value};

use common::{get_journey, serve_with, start, start_with, Mock};
use support::{admin, create_id, eventually, quick_config, walk, walk_all};

/// The whole journal that `query` selects, read a page at a time, as one answer.
async fn requests(server: &Mock, query: &str) -> Value {
    let all = walk_all(server, &format!("requests?{query}"), "requests").await;
    json!({ "count": all.len(), "requests": all })
}

async fn count(server: &Mock, filter: &Value) -> u64 {
    let reply = admin(server, Method::POST, "requests/count", &filter.to_string()).await;
    assert_eq!(reply.status, StatusCode::OK, "{filter}: {}", reply.text());
    reply.json()["count"].as_u64().expect("count")
}

#[tokio::test]
async fn paging_walks_a_long_journal_in_full_without_repeats_or_gaps() {
    let server = start_with(quick_config()).await;
    for i in 0..1_050 {
        let id = if i % 3 == 0 { "paged-a" } else { "paged-b" };
        get_journey(&server, id, &[]).await;
    }
    for (query, expected) in [("", 1_050usize), ("journeyId=paged-a", 350)] {
        for limit in [1_000, 100, 7] {
            let pages = walk(&server, &format!("requests?{query}"), &["requests"], limit).await;
            assert_eq!(pages.len(), expected.div_ceil(limit), "{query} {limit}");
            let ids: Vec<u64> = pages
                .iter()
                .flat_map(|p| p["requests"].as_array().unwrap().clone())
                .map(|r| r["id"].as_u64().unwrap())
                .collect();
            assert_eq!(ids.len(), expected, "{query} {limit}");
            assert!(
                ids.windows(2).all(|w| w[0] < w[1]),
                "{query} {limit}: out of order"
            );
            if query.is_empty() {
                assert_eq!(ids, (1..=1_050).collect::<Vec<u64>>(), "a gap");
            }
        }
    }
    // Without a limit, a page holds 100; the answer says where the next one starts.
    let first = admin(&server, Method::GET, "requests", "").await.json();
    assert_eq!(first["count"], 100);
    assert_eq!(first["requests"][0]["id"], 1);
    let next = first["next"].as_str().unwrap();
    let second = admin(&server, Method::GET, &format!("requests?cursor={next}"), "")
        .await
        .json();
    assert_eq!(second["requests"][0]["id"], 101);
    // Bad paging parameters are 400s naming them.
    for (query, needle) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("cursor=abc", "cursor"),
        ("cursor=1.2", "cursor"),
    ] {
        let reply = admin(&server, Method::GET, &format!("requests?{query}"), "").await;
        reply.assert_provider_error(400);
        assert!(reply.text().contains(needle), "{query}: {}", reply.text());
    }
}

#[tokio::test]
async fn the_journal_records_every_provider_request_with_why_its_scenario_was_chosen() {
    let server = start_with(quick_config()).await;
    get_journey(&server, "vpn_flagged-1", &[]).await;
    get_journey(&server, "vpn_flagged-1", &[]).await;
    get_journey(&server, "Q7K2M9X4ZA", &[("x-mock-scenario", "tor_proxy")]).await;
    get_journey(&server, "plain-1", &[]).await;
    let created = create_id(
        &server,
        &json!({ "flowId": "f" }),
        &[("x-mock-scenario", "mask")],
    )
    .await;
    get_journey(&server, &created, &[]).await;
    server
        .send(Method::POST, "/api/v3/otk-service/get-journey/x", &[], "")
        .await; // 401
    server
        .send(
            Method::POST,
            "/api/v3/otk-service/nope",
            &[("authorization", "t")],
            "",
        )
        .await; // 404

    // Admin and page requests are not the provider surface.
    admin(&server, Method::GET, "journeys", "").await;

    let all = requests(&server, "").await;
    assert_eq!(all["count"], 8, "{all:#}");
    let rows = all["requests"].as_array().unwrap();
    let why: Vec<(&str, &str)> = rows
        .iter()
        .take(6)
        .map(|r| {
            (
                r["scenario"].as_str().unwrap(),
                r["selection"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        why,
        [
            ("vpn_flagged", "prefix"),
            ("vpn_flagged", "prefix"),
            ("tor_proxy", "header"),
            ("success", "default"),
            ("mask_detected", "header"),
            ("mask_detected", "binding"),
        ]
    );
    let first = &rows[0];
    assert_eq!(first["method"], "POST");
    assert_eq!(
        first["path"],
        "/api/v3/otk-service/get-journey/vpn_flagged-1"
    );
    assert_eq!(first["route"], "get-journey");
    assert_eq!(first["status"], 200);
    assert!(first["latencyMs"].as_f64().unwrap() >= 0.0);
    assert!(first["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(rows[4]["journeyId"], created.as_str());
    assert_eq!(rows[6]["status"], 401);
    assert_eq!(rows[7]["path"], "/api/v3/otk-service/nope");
    assert_eq!(rows[7]["route"], "other");

    // "My app fetched this journey exactly twice."
    assert_eq!(
        count(&server, &json!({ "journeyId": "vpn_flagged-1" })).await,
        2
    );
    assert_eq!(count(&server, &json!({ "status": 401 })).await, 1);
    assert_eq!(count(&server, &json!({ "status": "4xx" })).await, 2);
    assert_eq!(
        count(&server, &json!({ "scenario": "mask_detected" })).await,
        2
    );
    assert_eq!(
        count(
            &server,
            &json!({ "path": "/api/v3/otk-service/get-journey/*" })
        )
        .await,
        6
    );
    assert_eq!(
        requests(&server, "journeyId=vpn_flagged-1&status=200").await["count"],
        2
    );

    // since: epoch ms and ISO-8601, inclusive.
    let t = rows[2]["timeMs"].as_i64().unwrap();
    let later = requests(&server, &format!("since={t}")).await["count"]
        .as_u64()
        .unwrap();
    assert!((6..=8).contains(&later), "{later}");
    assert_eq!(
        requests(&server, "since=2999-01-01T00:00:00Z").await["count"],
        0
    );
    assert_eq!(count(&server, &json!({ "since": "2000-01-01" })).await, 8);
    assert_eq!(
        count(&server, &json!({ "since": "2999-01-01T05:30:00+05:30" })).await,
        0
    );
    assert_eq!(
        requests(&server, "since=2000-01-01T05:30:00.5%2B05:30").await["count"],
        8
    );

    let cleared = admin(&server, Method::DELETE, "requests", "").await;
    assert_eq!(cleared.json()["deleted"], 8);
    assert_eq!(count(&server, &json!({})).await, 0);
    server.shutdown().await;
}

#[tokio::test]
async fn bad_journal_filters_are_400s_in_the_provider_format() {
    let server = start().await;
    for query in ["colour=red", "status=abc", "since=yesterday", "status=7xx"] {
        let reply = admin(&server, Method::GET, &format!("requests?{query}"), "").await;
        reply.assert_provider_error(400);
    }
    // A date the calendar lacks, and an offset whose + the query string turned into a space.
    for (query, needle) in [
        ("since=2026-02-30", "2026-02-30"),
        ("since=2026-01-01T10:00:00+05:30", "%2B"),
    ] {
        let reply = admin(&server, Method::GET, &format!("requests?{query}"), "").await;
        let message = reply.assert_provider_error(400);
        assert!(message.contains(needle), "{message}");
    }
    for body in [
        r#"{"journeyId": 5}"#,
        r#"{"colour": "red"}"#,
        r#"{"status": true}"#,
        "not json",
        "[]",
    ] {
        let reply = admin(&server, Method::POST, "requests/count", body).await;
        let message = reply.assert_provider_error(400);
        assert!(!message.is_empty());
    }
    server.shutdown().await;
}

#[tokio::test]
async fn the_journal_keeps_the_newest_entries_and_can_be_turned_off() {
    let server = start_with(Config {
        journal_entries: 3,
        ..Config::ephemeral()
    })
    .await;
    for i in 0..5 {
        get_journey(&server, &format!("j-{i}"), &[]).await;
    }
    let all = requests(&server, "").await;
    assert_eq!(all["count"], 3);
    assert_eq!(all["requests"][0]["journeyId"], "j-2");
    server.shutdown().await;

    let server = start_with(Config {
        journal_entries: 0,
        ..Config::ephemeral()
    })
    .await;
    get_journey(&server, "j-0", &[]).await;
    assert_eq!(requests(&server, "").await["count"], 0);
    server.shutdown().await;
}

#[tokio::test]
async fn health_reports_the_catalogue_being_served() {
    let server = start().await;
    let reply = admin(&server, Method::GET, "health", "").await;
    assert_eq!(reply.status, StatusCode::OK);
    let health = reply.json();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["catalogue"]["scenarios"], 16);
    assert_eq!(health["catalogue"]["generation"], 1);
    assert_eq!(health["catalogue"]["scenariosFrom"], "bundled");
    assert_eq!(health["lastReloadError"], Value::Null);
    assert_eq!(health["watch"], false);
    server.shutdown().await;
}

/// The value of one sample line of the OpenMetrics text (`name{labels} value`).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == series).then(|| value.parse().expect("a number"))
        })
        .unwrap_or(0.0)
}

async fn metrics(server: &Mock) -> String {
    let reply = admin(server, Method::GET, "metrics", "").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let text = reply.text();
    assert!(
        text.ends_with("\n# EOF\n"),
        "an OpenMetrics text ends with # EOF"
    );
    text
}

#[tokio::test]
async fn metrics_count_requests_latency_faults_and_callbacks() {
    let server = start().await;
    let ok =
        r#"otk_mock_requests_total{route="get-journey",scenario="liveness_failed",status="200"}"#;
    let failed = r#"otk_mock_requests_total{route="get-journey",scenario="success",status="503"}"#;
    let histogram = r#"otk_mock_request_duration_seconds_count{route="get-journey"}"#;
    let faults = r#"otk_mock_faults_total{kind="status"}"#;
    let before = metrics(&server).await;
    get_journey(&server, "lf-1", &[]).await;
    get_journey(&server, "lf-2", &[]).await;
    get_journey(&server, "x-1", &[("x-mock-fault", "status:503")]).await;
    let after = metrics(&server).await;
    assert_eq!(sample(&after, ok) - sample(&before, ok), 2.0, "{after}");
    assert_eq!(sample(&after, failed) - sample(&before, failed), 1.0);
    assert_eq!(sample(&after, histogram) - sample(&before, histogram), 3.0);
    assert_eq!(sample(&after, faults) - sample(&before, faults), 1.0);
    let inf = r#"otk_mock_request_duration_seconds_bucket{le="+Inf",route="get-journey"}"#;
    assert_eq!(sample(&after, inf), sample(&after, histogram));
    for name in [
        "otk_mock_callback_queue_depth",
        "otk_mock_catalogue_scenarios",
        r#"otk_mock_callbacks_total{outcome="delivered"}"#,
    ] {
        assert!(after.lines().any(|l| l.starts_with(name)), "{name} missing");
    }
    assert_eq!(sample(&after, "otk_mock_catalogue_scenarios"), 16.0);
    // Every line is a comment or `series value`.
    for line in after.lines().filter(|l| !l.starts_with('#')) {
        let (_, value) = line.rsplit_once(' ').expect(line);
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }
    server.shutdown().await;
}

/// A scenarios directory with `success` (its message set to `message`) and `vpn_flagged`.
fn write_catalogue(dir: &Path, message: &str) {
    let success = std::fs::read_to_string("scenarios/success.toml")
        .unwrap()
        .replace("Journey Completed", message);
    std::fs::write(dir.join("success.toml"), success).unwrap();
    std::fs::copy("scenarios/vpn_flagged.toml", dir.join("vpn_flagged.toml")).unwrap();
}

/// A server watching `dir`: on a socket, since only the server starts the `--watch` poller.
async fn watched(dir: &Path) -> Mock {
    let mut config = Config::ephemeral();
    config.source.scenarios_dir = Some(dir.to_path_buf());
    config.watch = true;
    config.watch_interval = Duration::from_millis(50);
    serve_with(config).await
}

async fn health_of(server: &Mock) -> Value {
    admin(server, Method::GET, "health", "").await.json()
}

#[tokio::test]
async fn a_good_change_is_served_and_no_cached_body_of_the_old_catalogue_is() {
    let dir = tempfile::tempdir().unwrap();
    write_catalogue(dir.path(), "Journey Completed");
    let server = watched(dir.path()).await;
    let before = get_journey(&server, "cached-1", &[]).await.result();
    assert_eq!(before["message"], "Journey Completed");
    assert_eq!(server.app().cache().len(), 1);

    write_catalogue(dir.path(), "Journey Reloaded");
    let extra = std::fs::read_to_string("scenarios/tor_proxy.toml").unwrap();
    std::fs::write(dir.path().join("tor_proxy.toml"), extra).unwrap();
    let health = eventually("the reload", || async {
        let h = health_of(&server).await;
        (h["catalogue"]["generation"] == 2).then_some(h)
    })
    .await;
    assert_eq!(health["catalogue"]["scenarios"], 3);
    assert_eq!(health["lastReloadError"], Value::Null);

    let after = get_journey(&server, "cached-1", &[]).await.result();
    assert_eq!(after["message"], "Journey Reloaded");
    assert_eq!(
        get_journey(&server, "tor-1", &[]).await.result()["ipAddresses"]
            .as_object()
            .map(|m| m.len()),
        before["ipAddresses"].as_object().map(|m| m.len())
    );
    let last = requests(&server, "journeyId=tor-1").await;
    assert_eq!(last["requests"][0]["scenario"], "tor_proxy");
    let text = metrics(&server).await;
    assert_eq!(
        sample(&text, r#"otk_mock_catalogue_reloads_total{result="ok"}"#),
        1.0
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_broken_change_keeps_the_last_good_catalogue_and_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    write_catalogue(dir.path(), "Journey Completed");
    let server = watched(dir.path()).await;
    std::fs::write(
        dir.path().join("vpn_flagged.toml"),
        "description = \"x\"\ncolour = \"red\"\n",
    )
    .unwrap();
    let health = eventually("the failed reload to be reported", || async {
        let h = health_of(&server).await;
        (!h["lastReloadError"].is_null()).then_some(h)
    })
    .await;
    let message = health["lastReloadError"]["message"].as_str().unwrap();
    assert!(message.contains("vpn_flagged.toml"), "{message}");
    assert!(message.contains("colour"), "{message}");
    assert_eq!(health["catalogue"]["generation"], 1);
    assert_eq!(health["catalogue"]["scenarios"], 2);
    // Still serving the last good catalogue, the broken scenario included.
    let reply = get_journey(&server, "vpn-1", &[]).await;
    assert!(reply.result()["ipAddresses"].is_object());
    let text = metrics(&server).await;
    assert_eq!(
        sample(&text, r#"otk_mock_catalogue_reloads_total{result="error"}"#),
        1.0
    );

    // Fixing the file loads again and clears the error.
    std::fs::copy(
        "scenarios/vpn_flagged.toml",
        dir.path().join("vpn_flagged.toml"),
    )
    .unwrap();
    eventually("the fixed reload", || async {
        let h = health_of(&server).await;
        (h["catalogue"]["generation"] == 2 && h["lastReloadError"].is_null()).then_some(())
    })
    .await;
    server.shutdown().await;
}

/// A copy of the bundled templates in `dir`.
fn copy_templates(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_templates(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[cfg(unix)]
#[tokio::test]
async fn a_link_loop_under_watch_keeps_the_last_good_catalogue_and_never_spins() {
    let dir = tempfile::tempdir().unwrap();
    let templates = dir.path().join("templates");
    copy_templates(Path::new("templates"), &templates);
    let mut config = Config::ephemeral();
    config.source.templates_dir = Some(templates.clone());
    config.watch = true;
    config.watch_interval = Duration::from_millis(20);
    let server = serve_with(config).await;

    // A link from deep in the tree back to its top: walked naively, it never ends.
    std::os::unix::fs::symlink(&templates, templates.join("journey/loop")).unwrap();
    let health = eventually("the failed reload to be reported", || async {
        let h = health_of(&server).await;
        (!h["lastReloadError"].is_null()).then_some(h)
    })
    .await;
    let message = health["lastReloadError"]["message"].as_str().unwrap();
    assert!(message.contains("journey/loop"), "{message}");
    assert!(message.contains("symbolic link loop"), "{message}");
    assert_eq!(health["catalogue"]["generation"], 1);
    assert_eq!(get_journey(&server, "vpn-1", &[]).await.status, 200);
    // Many looks later the broken tree has been loaded once, not once a look.
    let looks = eventually("more looks at the files", || async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let h = health_of(&server).await;
        (h["uptimeSeconds"].as_u64().unwrap_or(0) >= 1).then_some(())
    });
    looks.await;
    let text = metrics(&server).await;
    assert_eq!(
        sample(&text, r#"otk_mock_catalogue_reloads_total{result="error"}"#),
        1.0
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_reload_without_the_default_scenario_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_catalogue(dir.path(), "Journey Completed");
    let server = watched(dir.path()).await;
    std::fs::remove_file(dir.path().join("success.toml")).unwrap();
    let health = eventually("the refused reload", || async {
        let h = health_of(&server).await;
        (!h["lastReloadError"].is_null()).then_some(h)
    })
    .await;
    assert!(health["lastReloadError"]["message"]
        .as_str()
        .unwrap()
        .contains("--default-scenario"));
    assert_eq!(get_journey(&server, "any-1", &[]).await.status, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn reset_forgets_the_journal_and_fault_rules() {
    let server = start().await;
    get_journey(&server, "r-1", &[]).await;
    admin(
        &server,
        Method::POST,
        "faults",
        r#"{"inject": "status:500"}"#,
    )
    .await;
    admin(&server, Method::POST, "reset", "").await;
    assert_eq!(count(&server, &json!({})).await, 0);
    assert_eq!(
        admin(&server, Method::GET, "faults", "").await.json()["faults"],
        json!([])
    );
    assert_eq!(get_journey(&server, "r-1", &[]).await.status, 200);
    server.shutdown().await;
}
