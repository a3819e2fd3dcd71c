//! Faults as a client sees them: a reset, an empty reply, a hang until the client gives up, a
//! body that is not JSON, a body cut short of its Content-Length, error statuses in the
//! provider's format, delays; chosen by header, by scenario and by admin rule; and callback
//! faults at a loopback receiver.
//!
//! The faults that act on the socket (reset, empty, hang, truncated) run over real sockets on
//! 127.0.0.1:0; where a high-level client would hide what happened (reset versus close), the
//! test speaks HTTP/1.1 over a raw `TcpStream`. The rest run in process. Delays are checked
//! with lower bounds only (the journal's latency is at least the delay), never an upper bound.

mod common;
mod support;

use std::io::ErrorKind;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use otk_mock::config::Config;
use otk_mock::Filter;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::{get_journey, serve, serve_with, start, start_with, Mock, TOKEN};
use support::{
    admin, complete, create, create_id, eventually, quick_config, Answer, Receiver, DEADLINE,
};

/// Send a get-journey request by hand and read until the server closes the connection.
async fn raw_get(server: &Mock, id: &str, fault: &str) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(server.address()).await?;
    let request = format!(
        "POST /api/v3/otk-service/get-journey/{id} HTTP/1.1\r\nHost: mock\r\n\
         Authorization: {TOKEN}\r\nContent-Length: 0\r\nX-Mock-Fault: {fault}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut reply = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut reply))
        .await
        .expect("the server ends the connection")?;
    Ok(reply)
}

/// The journal's entries for a journey id.
async fn journal(server: &Mock, id: &str) -> Vec<Value> {
    let reply = admin(server, Method::GET, &format!("requests?journeyId={id}"), "").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()["requests"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// What a hyper client gets for one request: its error, if the exchange failed.
async fn client_error(server: &Mock, id: &str, fault: &str) -> hyper_util::client::legacy::Error {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = Request::post(format!(
        "{}/api/v3/otk-service/get-journey/{id}",
        server.uri()
    ))
    .header("authorization", TOKEN)
    .header("x-mock-fault", fault)
    .body(Full::new(Bytes::new()))
    .unwrap();
    client
        .request(request)
        .await
        .expect_err("the exchange fails")
}

#[tokio::test]
async fn reset_is_a_connection_reset() {
    // On a socket: a reset is a TCP event; in process it would be a 502.
    let server = serve().await;
    let error = raw_get(&server, "fault-reset-1", "reset")
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ConnectionReset, "{error}");
    let entries = journal(&server, "fault-reset-1").await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["status"], Value::Null);
    assert_eq!(entries[0]["fault"], "reset");
    assert_eq!(entries[0]["faultSource"], "header");
    server.shutdown().await;
}

#[tokio::test]
async fn empty_closes_the_connection_without_a_reply() {
    // On a socket: the fault is a closed connection with no reply.
    let server = serve().await;
    let reply = raw_get(&server, "fault-empty-1", "empty").await.unwrap();
    assert!(reply.is_empty(), "{}", String::from_utf8_lossy(&reply));
    let error = client_error(&server, "fault-empty-2", "empty").await;
    let source = std::error::Error::source(&error)
        .and_then(|e| e.downcast_ref::<hyper::Error>())
        .expect("a hyper error");
    assert!(source.is_incomplete_message(), "{source}");
    server.shutdown().await;
}

#[tokio::test]
async fn hang_gives_no_reply_until_the_client_gives_up() {
    // On a socket: a hang holds the connection open.
    let server = serve().await;
    let waited = tokio::time::timeout(
        Duration::from_millis(300),
        server.send(
            Method::POST,
            "/api/v3/otk-service/get-journey/fault-hang-1",
            &[("authorization", TOKEN), ("x-mock-fault", "hang")],
            "",
        ),
    )
    .await;
    assert!(waited.is_err(), "the client timed out");
    let entries = journal(&server, "fault-hang-1").await;
    assert_eq!(entries[0]["fault"], "hang");
    assert_eq!(entries[0]["status"], Value::Null);
    // The server is still fine.
    assert_eq!(get_journey(&server, "after-hang", &[]).await.status, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn a_hang_ends_at_the_cap_without_a_reply() {
    // On a socket: the hang ends with the connection closed, no reply.
    let server = serve_with(Config {
        fault_max_wait: Duration::from_millis(200),
        ..Config::ephemeral()
    })
    .await;
    let reply = raw_get(&server, "fault-hang-cap", "hang").await.unwrap();
    assert!(reply.is_empty(), "{}", String::from_utf8_lossy(&reply));
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_ends_a_hang_instead_of_waiting_for_the_grace_period() {
    // On a socket: a held connection and a server shutdown.
    let server = serve_with(Config {
        shutdown_grace: Duration::from_secs(120),
        ..Config::ephemeral()
    })
    .await;
    let addr = server.address();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!(
                "POST /api/v3/otk-service/get-journey/fault-hang-2 HTTP/1.1\r\nHost: mock\r\n\
                 Authorization: {TOKEN}\r\nContent-Length: 0\r\nX-Mock-Fault: hang\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    eventually("the hang to begin", || async {
        (server.request_count(Filter::all()).await == 1).then_some(())
    })
    .await;
    tokio::time::timeout(DEADLINE, server.shutdown())
        .await
        .expect("shutdown does not wait for the hang's 120 s grace period");
    let mut reply = Vec::new();
    let read = tokio::time::timeout(DEADLINE, stream.read_to_end(&mut reply)).await;
    assert!(matches!(read, Ok(Ok(0))), "{read:?}");
}

#[tokio::test]
async fn malformed_is_a_200_whose_body_is_not_json() {
    let server = start().await;
    let reply = get_journey(
        &server,
        "fault-malformed-1",
        &[("x-mock-fault", "malformed")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(reply.header("x-mock-fault"), Some("malformed"));
    assert!(serde_json::from_slice::<Value>(&reply.body).is_err());
    assert!(reply.text().starts_with("{\"result\":"), "{}", reply.text());
    server.shutdown().await;
}

#[tokio::test]
async fn truncated_stops_short_of_its_content_length() {
    // On a socket: Content-Length framing exists only on the wire.
    let server = serve().await;
    let reply = raw_get(&server, "fault-truncated-1", "truncated")
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&reply);
    let (head, body) = text.split_once("\r\n\r\n").expect("a head was sent");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(str::to_string)
        })
        .expect("content-length")
        .trim()
        .parse()
        .unwrap();
    assert!(
        !body.is_empty() && body.len() < length,
        "{} of {length}",
        body.len()
    );

    // A client library reports a body error.
    let url = format!(
        "{}/api/v3/otk-service/get-journey/fault-truncated-2",
        server.uri()
    );
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = Request::post(url)
        .header("authorization", TOKEN)
        .header("x-mock-fault", "truncated")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = client.request(request).await.expect("the head arrives");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.into_body().collect().await.is_err());
    server.shutdown().await;
}

#[tokio::test]
async fn without_a_socket_connection_faults_answer_a_gateways_502() {
    let server = start().await;
    for fault in ["reset", "empty", "hang"] {
        let id = format!("fault-in-process-{fault}");
        let reply = get_journey(&server, &id, &[("x-mock-fault", fault)]).await;
        reply.assert_provider_error(502);
        assert_eq!(reply.header("x-mock-fault"), Some(fault));
        let entries = journal(&server, &id).await;
        assert_eq!(entries[0]["fault"], fault);
        assert_eq!(entries[0]["status"], 502);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn status_faults_answer_in_the_provider_format() {
    let server = start().await;
    let reply = get_journey(&server, "fault-status-1", &[("x-mock-fault", "status:429")]).await;
    assert_eq!(reply.assert_provider_error(429), "API rate limit exceeded");
    assert_eq!(reply.header("retry-after"), Some("1"));
    let reply = get_journey(
        &server,
        "fault-status-2",
        &[("x-mock-fault", "status:429(retry-after=30s)")],
    )
    .await;
    assert_eq!(reply.header("retry-after"), Some("30"));
    for code in [500, 502, 503, 504] {
        let fault = format!("status:{code}");
        let reply = get_journey(&server, "fault-status-3", &[("x-mock-fault", &fault)]).await;
        reply.assert_provider_error(code);
        assert_eq!(reply.header("retry-after"), None);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_status_fault_on_create_creates_nothing_but_other_faults_do() {
    let server = start_with(quick_config()).await;
    let body = json!({ "flowId": "flow-f" });
    let reply = create(&server, &body, &[("x-mock-fault", "status:503")]).await;
    reply.assert_provider_error(503);
    assert_eq!(server.journeys().await.len(), 0);
    let reply = create(&server, &body, &[("x-mock-fault", "malformed")]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        server.journeys().await.len(),
        1,
        "the work was done, the answer spoiled"
    );
    let entries = admin(
        &server,
        Method::GET,
        "requests?path=/api/v3/otk-service/create-journey-url",
        "",
    )
    .await
    .json();
    assert_eq!(entries["count"], 2);
    assert!(entries["requests"][1]["journeyId"].is_string());
    server.shutdown().await;
}

#[tokio::test]
async fn a_fault_never_hides_a_mistake_in_the_request() {
    let server = start().await;
    let path = "/api/v3/otk-service/get-journey/x";
    let reply = server
        .send(Method::POST, path, &[("x-mock-fault", "reset")], "")
        .await;
    reply.assert_provider_error(401);
    let reply = get_journey(&server, "x", &[("x-mock-fault", "explode")]).await;
    let message = reply.assert_provider_error(400);
    assert!(message.contains("X-Mock-Fault"), "{message}");
    server.shutdown().await;
}

#[tokio::test]
async fn delays_hold_the_answer_at_least_that_long() {
    let server = start().await;
    for (id, fault, at_least_ms) in [
        ("fault-delay-1", "delay:300ms", 300.0),
        ("fault-delay-2", "delay:uniform(200ms,250ms)", 200.0),
        (
            "fault-delay-3",
            "delay:lognormal(median=50ms,sigma=0,cap=1s)",
            50.0,
        ),
        ("fault-delay-4", "delay:200ms; status:504", 200.0),
    ] {
        let reply = get_journey(&server, id, &[("x-mock-fault", fault)]).await;
        let entries = journal(&server, id).await;
        assert_eq!(entries[0]["status"], reply.status.as_u16());
        let latency = entries[0]["latencyMs"].as_f64().unwrap();
        assert!(latency >= at_least_ms, "{fault}: {latency} ms");
    }
    server.shutdown().await;
}

/// A scenarios directory with `success` (the default) and a `flaky` scenario whose first two
/// get-journey requests fail with 503.
fn flaky_catalogue() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let success = std::fs::read_to_string("scenarios/success.toml").unwrap();
    std::fs::write(dir.path().join("success.toml"), &success).unwrap();
    let flaky = success.replace("aliases = [\"ok\"]", "aliases = []")
        + "\n[fault]\ninject = \"status:503\"\ntimes = 2\n";
    std::fs::write(dir.path().join("flaky.toml"), flaky).unwrap();
    dir
}

#[tokio::test]
async fn a_scenario_fault_applies_to_its_first_requests() {
    let dir = flaky_catalogue();
    let mut config = Config::ephemeral();
    config.source.scenarios_dir = Some(dir.path().to_path_buf());
    let server = start_with(config).await;
    let statuses: Vec<u16> = {
        let mut out = Vec::new();
        for _ in 0..3 {
            out.push(get_journey(&server, "flaky-1", &[]).await.status.as_u16());
        }
        out
    };
    assert_eq!(statuses, [503, 503, 200]);
    assert_eq!(get_journey(&server, "success-1", &[]).await.status, 200);
    let entries = journal(&server, "flaky-1").await;
    assert_eq!(entries[0]["faultSource"], "scenario");
    assert_eq!(entries[0]["scenario"], "flaky");
    assert_eq!(entries[0]["selection"], "prefix");
    server.shutdown().await;
}

#[tokio::test]
async fn admin_rules_target_a_journey_run_out_and_can_be_removed() {
    let server = start().await;
    let rule = admin(
        &server,
        Method::POST,
        "faults",
        r#"{"inject": "status:500", "journeyId": "ruled-1", "times": 2}"#,
    )
    .await;
    assert_eq!(rule.status, StatusCode::CREATED, "{}", rule.text());
    let id = rule.json()["id"].as_u64().unwrap();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(get_journey(&server, "ruled-1", &[]).await.status.as_u16());
    }
    assert_eq!(statuses, [500, 500, 200]);
    assert_eq!(get_journey(&server, "ruled-2", &[]).await.status, 200);
    let list = admin(&server, Method::GET, "faults", "").await.json();
    assert_eq!(list["faults"][0]["applied"], 2);
    assert_eq!(list["faults"][0]["exhausted"], true);
    let removed = admin(&server, Method::DELETE, &format!("faults/{id}"), "").await;
    assert_eq!(removed.status, StatusCode::OK);
    admin(&server, Method::DELETE, &format!("faults/{id}"), "")
        .await
        .assert_provider_error(404);
    admin(
        &server,
        Method::POST,
        "faults",
        r#"{"inject": "reset", "colour": 1}"#,
    )
    .await
    .assert_provider_error(400);
    server.shutdown().await;
}

#[tokio::test]
async fn a_seeded_probability_gives_the_same_faults_on_every_run() {
    async fn run() -> Vec<u16> {
        let server = start().await;
        admin(
            &server,
            Method::POST,
            "faults",
            r#"{"inject": "status:502", "probability": 0.5, "seed": 11}"#,
        )
        .await;
        let mut statuses = Vec::new();
        for i in 0..24 {
            let id = format!("p-{i}");
            statuses.push(get_journey(&server, &id, &[]).await.status.as_u16());
        }
        server.shutdown().await;
        statuses
    }
    let first = run().await;
    assert_eq!(first, run().await);
    assert!(first.contains(&502) && first.contains(&200), "{first:?}");
}

fn with_callback(url: &str) -> Value {
    json!({
        "flowId": "flow-cbf",
        "processingConfig": { "callbackUrl": url, "authKeyForCallback": "right-key" }
    })
}

#[tokio::test]
async fn callback_faults_drop_duplicate_delay_and_break_the_auth_header() {
    let receiver = Receiver::start(Answer::Status(200)).await;
    let mut config = quick_config();
    config.callbacks.signing_key = Some(otk_mock::config::SigningKey::parse("s3cret").unwrap());
    let server = start_with(config).await;
    let body = with_callback(&receiver.url);

    // duplicate: two requests, same body and webhook-id.
    let dup = create_id(&server, &body, &[("x-mock-callback-fault", "duplicate")]).await;
    admin(
        &server,
        Method::POST,
        &format!("journeys/{dup}/complete"),
        "",
    )
    .await;
    let got = receiver.wait_for(2).await;
    assert_eq!(got[0].body, got[1].body);
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    assert_eq!(got[0].header("authorization"), Some("right-key"));

    // wrong_auth, set through the admin API.
    let wrong = create_id(&server, &body, &[]).await;
    let set = admin(
        &server,
        Method::PUT,
        &format!("journeys/{wrong}/callback-fault"),
        r#"{"fault": "wrong_auth"}"#,
    )
    .await;
    assert_eq!(set.json()["callback"]["fault"], "wrong_auth");
    admin(
        &server,
        Method::POST,
        &format!("journeys/{wrong}/complete"),
        "",
    )
    .await;
    let got = receiver.wait_for(3).await;
    assert_eq!(
        got[2].header("authorization"),
        Some(otk_mock::WRONG_AUTH_KEY)
    );

    // delay: the callback comes at least that long after completion.
    let slow = create_id(&server, &body, &[("x-mock-callback-fault", "delay:400ms")]).await;
    let completed = std::time::Instant::now();
    admin(
        &server,
        Method::POST,
        &format!("journeys/{slow}/complete"),
        "",
    )
    .await;
    receiver.wait_for(4).await;
    assert!(completed.elapsed() >= Duration::from_millis(400));

    // drop: nothing is sent; the callback is listed as lost by the fault.
    let dropped = create_id(&server, &body, &[("x-mock-callback-fault", "drop")]).await;
    admin(
        &server,
        Method::POST,
        &format!("journeys/{dropped}/complete"),
        "",
    )
    .await;
    let log = admin(
        &server,
        Method::GET,
        &format!("callbacks?journeyId={dropped}"),
        "",
    )
    .await
    .json();
    assert_eq!(log["lost"][0]["reason"], "fault");
    assert_eq!(log["attempts"].as_array().map(Vec::len), Some(0));
    let view = support::journey_view(&server, &dropped).await;
    assert_eq!(view["callback"]["status"], "lost");
    // A redelivery is sent as it is.
    let redeliver = admin(
        &server,
        Method::POST,
        &format!("callbacks/{dropped}/redeliver"),
        "",
    )
    .await;
    assert_eq!(redeliver.status, StatusCode::ACCEPTED);
    let got = receiver.wait_for(5).await;
    assert_eq!(got.len(), 5);
    server.shutdown().await;
}

#[tokio::test]
async fn a_scenario_can_duplicate_its_callbacks() {
    let receiver = Receiver::start(Answer::Status(200)).await;
    let dir = tempfile::tempdir().unwrap();
    let success = std::fs::read_to_string("scenarios/success.toml").unwrap();
    std::fs::write(
        dir.path().join("success.toml"),
        success + "\n[callback]\nfault = \"duplicate\"\n",
    )
    .unwrap();
    let mut config = quick_config();
    config.source.scenarios_dir = Some(dir.path().to_path_buf());
    let server = start_with(config).await;
    let id = create_id(&server, &with_callback(&receiver.url), &[]).await;
    complete(&server, &id).await;
    let got = receiver.wait_for(2).await;
    assert_eq!(got[0].body, got[1].body);
    server.shutdown().await;
}
