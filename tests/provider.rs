//! The provider surface as an app under test sees it: get-journey, auth, selection, errors,
//! determinism and body limits. In process, except the documented curl call, a chunked body
//! and shutdown, which are about the socket and run over real HTTP on 127.0.0.1:0.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{get_journey, serve, serve_with, start, start_with, Mock, TOKEN};
use hyper::Method;
use otk_mock::config::Config;
use pretty_assertions::assert_eq;

#[tokio::test]
async fn documented_curl_works_with_only_the_host_changed() {
    // On a socket: the end-to-end get-journey, a real client over a real port.
    let server = serve().await;
    // The provider's documented request (spec §3.1), host swapped for the mock's.
    let url = format!("{}/api/v3/otk-service/get-journey/1234556", server.uri());
    let output = tokio::process::Command::new("curl")
        .args([
            "--silent",
            "--show-error",
            "--location",
            &url,
            "--header",
            "Authorization: <auth token>",
            "--header",
            "Content-Type: application/json",
            "--data",
            "",
            "--write-out",
            "\n%{http_code} %{content_type}",
        ])
        .output()
        .await
        .expect("curl runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let (body, meta) = stdout.rsplit_once('\n').expect("write-out line");
    assert_eq!(meta, "200 application/json; charset=utf-8");
    let value: serde_json::Value = serde_json::from_str(body).expect("JSON body");
    assert_eq!(value["result"]["journeyId"], "1234556");
    assert_eq!(value["result"]["currentStatus"], "COMPLETED");
    assert_eq!(value["result"]["step"], "COMPLETE");
    assert_eq!(value["result"]["message"], "Journey Completed");
    server.shutdown().await;
}

#[tokio::test]
async fn get_is_accepted_as_well_as_post() {
    let server = start().await;
    let path = "/api/v3/otk-service/get-journey/Q7K2M9X4ZA";
    let reply = server
        .send(Method::GET, path, &[("authorization", TOKEN)], "")
        .await;
    assert_eq!(reply.result()["journeyId"], "Q7K2M9X4ZA");
    let post = get_journey(&server, "Q7K2M9X4ZA", &[]).await;
    assert_eq!(reply.body, post.body, "GET and POST give the same bytes");
    server.shutdown().await;
}

#[tokio::test]
async fn the_document_has_the_providers_value_forms() {
    let server = start().await;
    let r = get_journey(&server, "success-forms", &[]).await.result();
    // Booleans as strings, capitalised in completeStatus, lower-case in the IP record.
    assert_eq!(
        r["documentIntelligence"]["completeStatus"]["overallStatus"],
        "True"
    );
    assert_eq!(r["documentIntelligence"]["idExpired"], "False");
    let ips = r["ipAddresses"]
        .as_object()
        .expect("ipAddresses is an object");
    assert_eq!(ips.len(), 1);
    let (ip, record) = ips.iter().next().unwrap();
    assert!(
        ip.parse::<std::net::Ipv4Addr>().is_ok(),
        "keyed by IP: {ip}"
    );
    assert_eq!(record["vpn"], "false");
    assert_eq!(record["fraudScore"], "0");
    // Percent strings, epoch-ms numbers beside an ISO updatedAt, Mongo artefacts.
    assert_eq!(
        r["selfieAnalysis"]["faceMatch"]["matchPercentage"],
        "99.00%"
    );
    assert_eq!(r["selfieAnalysis"]["passiveLiveliness"]["status"], "200");
    assert!(r["createdAt"].is_u64());
    assert!(r["completedAt"].as_u64() > r["startedAt"].as_u64());
    let updated = r["updatedAt"].as_str().unwrap();
    assert_eq!(updated.len(), 24, "{updated}");
    assert!(updated.ends_with('Z') && updated.as_bytes()[10] == b'T');
    assert_eq!(r["_id"].as_str().unwrap().len(), 24);
    assert_eq!(r["__v"], 0);
    assert_eq!(r["_deleted"], false);
    // PascalCase pass-through keys from Regula, the misspelt passiveLiveliness.
    assert!(r["documentIntelligence"]["predictedIdTypeFront"]["FDSIDList"]["ICAOCode"].is_string());
    assert!(r["documentIntelligence"]["imageQuality"]["frontIdCheck"]["ImageGlares"].is_boolean());
    assert!(r["selfieAnalysis"]["passiveLiveliness"]["score"].is_f64());
    // Key order as the provider writes it, ipAddresses last as in real traffic.
    let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.first(), Some(&"flow"));
    assert_eq!(keys.last(), Some(&"ipAddresses"));
    server.shutdown().await;
}

#[tokio::test]
async fn same_id_gives_the_same_bytes_across_server_starts() {
    let first = start().await;
    let a = get_journey(&first, "Q7K2M9X4ZA", &[]).await;
    let a_again = get_journey(&first, "Q7K2M9X4ZA", &[]).await;
    first.shutdown().await;
    let second = start().await;
    let b = get_journey(&second, "Q7K2M9X4ZA", &[]).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body, a_again.body);
    assert_eq!(a.text(), b.text());
    second.shutdown().await;
}

#[tokio::test]
async fn different_ids_give_different_people() {
    let server = start().await;
    let names: std::collections::BTreeSet<String> = sample_names(&server).await;
    // Eight journeys; fake's word lists make a full collision practically impossible.
    assert!(names.len() >= 6, "too few distinct people: {names:?}");
    let a = get_journey(&server, "A000000001", &[]).await.result();
    let b = get_journey(&server, "A000000002", &[]).await.result();
    assert_ne!(a["userId"], b["userId"]);
    assert_ne!(a["_id"], b["_id"]);
    assert_ne!(a["ipAddresses"], b["ipAddresses"]);
    assert_eq!(a["clientId"], b["clientId"], "one client per mock");
    server.shutdown().await;
}

async fn sample_names(server: &Mock) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for i in 0..8 {
        let r = get_journey(server, &format!("person-{i}"), &[])
            .await
            .result();
        names.insert(
            r["documentIntelligence"]["extractedFields"]["names"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    names
}

#[tokio::test]
async fn the_seed_changes_the_people() {
    let a = start().await;
    let b = start_with(Config {
        seed: 7,
        ..Config::ephemeral()
    })
    .await;
    let ra = get_journey(&a, "Q7K2M9X4ZA", &[]).await.result();
    let rb = get_journey(&b, "Q7K2M9X4ZA", &[]).await.result();
    assert_ne!(ra["userId"], rb["userId"]);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn missing_or_empty_authorization_is_401() {
    let server = start().await;
    let path = "/api/v3/otk-service/get-journey/X1";
    let reply = server.send(Method::POST, path, &[], "").await;
    assert_eq!(reply.assert_provider_error(401), "Authorization Failed");
    let reply = server
        .send(Method::POST, path, &[("authorization", "  ")], "")
        .await;
    reply.assert_provider_error(401);
    server.shutdown().await;
}

#[tokio::test]
async fn restricted_tokens_accept_only_those() {
    let server = start_with(Config {
        tokens: vec!["alpha".into(), "beta".into()],
        ..Config::ephemeral()
    })
    .await;
    let path = "/api/v3/otk-service/get-journey/X1";
    for token in ["alpha", "beta"] {
        let reply = server
            .send(Method::POST, path, &[("authorization", token)], "")
            .await;
        assert_eq!(reply.status, 200, "{token}");
    }
    for token in ["gamma", "Bearer alpha", "alph"] {
        let reply = server
            .send(Method::POST, path, &[("authorization", token)], "")
            .await;
        reply.assert_provider_error(401);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_route_is_a_provider_404() {
    let server = start().await;
    for path in [
        "/",
        "/api/v3/otk-service/get-journey",
        "/api/v3/otk-service/get-journey/",
        "/api/v3/otk-service/get-journey/a/b",
        "/api/v3/otk-service/nope",
    ] {
        let reply = server
            .send(Method::POST, path, &[("authorization", TOKEN)], "")
            .await;
        let message = reply.assert_provider_error(404);
        assert!(message.contains(path), "{message}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn wrong_method_is_a_provider_405_with_allow() {
    let server = start().await;
    let path = "/api/v3/otk-service/get-journey/X1";
    for method in [Method::PUT, Method::DELETE, Method::PATCH] {
        let reply = server
            .send(method, path, &[("authorization", TOKEN)], "")
            .await;
        reply.assert_provider_error(405);
        assert_eq!(reply.header("allow"), Some("GET, POST"));
    }
    server.shutdown().await;
}

#[tokio::test]
async fn oversized_body_is_a_provider_413() {
    let server = start_with(Config {
        max_body_bytes: 64,
        ..Config::ephemeral()
    })
    .await;
    let path = "/api/v3/otk-service/get-journey/X1";
    let big = "x".repeat(65);
    let reply = server
        .send(Method::POST, path, &[("authorization", TOKEN)], &big)
        .await;
    let message = reply.assert_provider_error(413);
    assert!(message.contains("64"), "{message}");
    let ok = server
        .send(
            Method::POST,
            path,
            &[("authorization", TOKEN)],
            &"x".repeat(64),
        )
        .await;
    assert_eq!(ok.status, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn oversized_chunked_body_is_a_provider_413() {
    // On a socket: chunked framing exists only on the wire.
    let server = serve_with(Config {
        max_body_bytes: 16,
        ..Config::ephemeral()
    })
    .await;
    let addr = server.address();
    let reply = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let chunk = "y".repeat(20);
        write!(
            stream,
            "POST /api/v3/otk-service/get-journey/X1 HTTP/1.1\r\nHost: x\r\nAuthorization: t\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
            chunk.len()
        )
        .unwrap();
        let mut out = String::new();
        let _ = stream.read_to_string(&mut out);
        out
    })
    .await
    .unwrap();
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(reply.contains(r#""statusCode":413"#), "{reply}");
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_scenario_header_is_a_400_listing_the_known_ones() {
    let server = start().await;
    let reply = get_journey(&server, "X1", &[("x-mock-scenario", "no_such_thing")]).await;
    let message = reply.assert_provider_error(400);
    assert!(message.contains("no_such_thing"), "{message}");
    assert!(message.contains("success"), "{message}");
    assert_eq!(reply.json()["error"]["reason"], "VALIDATION_ERROR");
    server.shutdown().await;
}

#[tokio::test]
async fn strict_mode_answers_404_for_ids_that_select_nothing() {
    let server = start_with(Config {
        strict: true,
        ..Config::ephemeral()
    })
    .await;
    let reply = get_journey(&server, "Q7K2M9X4ZA", &[]).await;
    assert_eq!(reply.assert_provider_error(404), "Journey not found");
    // A prefix or a header still selects a scenario under --strict.
    assert_eq!(get_journey(&server, "success-1", &[]).await.status, 200);
    let by_header = get_journey(&server, "Q7K2M9X4ZA", &[("x-mock-scenario", "success")]).await;
    assert_eq!(by_header.status, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn default_scenario_is_configurable() {
    let server = start_with(Config {
        default_scenario: "ok".into(), // an alias works too
        ..Config::ephemeral()
    })
    .await;
    let r = get_journey(&server, "Q7K2M9X4ZA", &[]).await.result();
    assert_eq!(r["currentStatus"], "COMPLETED");
    server.shutdown().await;
}

#[tokio::test]
async fn prefix_wins_over_the_header() {
    let server = start().await;
    // `ok` is success's alias; the header names success too, but the prefix decides first.
    let r = get_journey(&server, "ok-7", &[("x-mock-scenario", "success")]).await;
    assert_eq!(r.result()["journeyId"], "ok-7");
    server.shutdown().await;
}

#[tokio::test]
async fn repeated_requests_are_served_from_the_cache() {
    let server = start().await;
    assert!(server.app().cache().is_empty());
    let a = get_journey(&server, "cache-me", &[]).await;
    assert_eq!(server.app().cache().len(), 1);
    let b = get_journey(&server, "cache-me", &[]).await;
    assert_eq!(server.app().cache().len(), 1);
    assert_eq!(a.body, b.body);
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_lets_the_server_stop_and_frees_the_port() {
    // On a socket: what is checked is the port.
    let server = serve().await;
    let addr = server.address();
    assert_eq!(get_journey(&server, "X1", &[]).await.status, 200);
    server.shutdown().await;
    // Nothing listens any more.
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(5)).is_err());
}

#[tokio::test]
async fn a_render_failure_at_run_time_is_a_provider_500_without_detail() {
    // A template that validates (it renders for `<name>-sample`) but fails for one id.
    let dir = tempfile::tempdir().unwrap();
    let scenarios = dir.path().join("scenarios");
    std::fs::create_dir_all(&scenarios).unwrap();
    std::fs::write(
        scenarios.join("success.toml"),
        "description = \"x\"\ntemplate = \"journey/fragile.json.tera\"\n\
         status = \"COMPLETED\"\nstep = \"COMPLETE\"\nmessage = \"Journey Completed\"\n",
    )
    .unwrap();
    let templates = dir.path().join("templates/journey");
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::write(
        templates.join("fragile.json.tera"),
        "{\"journeyId\": \"{{ journey.id }}\"{% if journey.id == \"boom\" %}, \"x\": {{ vars.absent }}{% endif %}}",
    )
    .unwrap();
    let server = start_with(Config {
        source: otk_mock::scenario::loader::CatalogueSource {
            scenarios_dir: Some(scenarios),
            templates_dir: Some(dir.path().join("templates")),
            no_bundled: false,
        },
        ..Config::ephemeral()
    })
    .await;
    assert_eq!(
        get_journey(&server, "fine", &[]).await.result()["journeyId"],
        "fine"
    );
    let reply = get_journey(&server, "boom", &[]).await;
    assert_eq!(reply.assert_provider_error(500), "Internal Server Error");
    assert!(
        !reply.text().contains("absent"),
        "no detail on the wire: {}",
        reply.text()
    );
    server.shutdown().await;
}
