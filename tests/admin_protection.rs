//! The protected admin: `--admin-token` (Bearer, health open), `--admin-bind` (the admin API on
//! its own listener, a 404 on the provider port), callbacks never sent to either listener, and
//! `--help` never printing a secret. In process where the answer is all that matters; on a
//! socket where the listener does.

mod common;
mod support;

use std::process::Command;

use hyper::{Method, StatusCode};
use otk_mock::config::{AdminToken, Config};
use serde_json::json;

use common::{send_url, serve_with, start_with, Mock};
use support::{create_id, eventually, quick_config};

const ADMIN_TOKEN: &str = "adm1n-T0ken";

fn protected() -> Config {
    let mut config = quick_config();
    config.admin_token = Some(AdminToken::parse(ADMIN_TOKEN).unwrap());
    config
}

async fn admin_get(server: &Mock, path: &str, authorization: Option<&str>) -> common::Reply {
    let mut headers = Vec::new();
    if let Some(value) = authorization {
        headers.push(("authorization", value));
    }
    server
        .send(Method::GET, &format!("/__admin/{path}"), &headers, "")
        .await
}

#[tokio::test]
async fn with_a_token_every_admin_route_but_health_needs_the_bearer() {
    let server = start_with(protected()).await;
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    for path in [
        "journeys",
        "callbacks",
        "requests",
        "metrics",
        "faults",
        // Unknown routes too: without the token, nothing tells which routes exist.
        "nope",
    ] {
        for authorization in [
            None,
            Some(ADMIN_TOKEN),
            Some("Bearer wrong"),
            Some("Basic YWRtaW46YWRtaW4="),
        ] {
            let reply = admin_get(&server, path, authorization).await;
            let message = reply.assert_provider_error(401);
            assert!(message.contains("Bearer"), "{path}: {message}");
            assert_eq!(
                reply.header("www-authenticate"),
                Some(r#"Bearer realm="otk-mock admin""#)
            );
        }
    }
    for path in ["journeys", "callbacks", "requests", "metrics", "faults"] {
        let reply = admin_get(&server, path, Some(&bearer)).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text());
    }
    assert_eq!(
        admin_get(&server, "nope", Some(&bearer)).await.status,
        StatusCode::NOT_FOUND
    );
    // Health stays open, for probes.
    let health = admin_get(&server, "health", None).await;
    assert_eq!(health.status, StatusCode::OK);
    // A reset without the token changes nothing.
    let id = create_id(&server, &json!({"flowId": "f"}), &[]).await;
    server
        .send(Method::POST, "/__admin/reset", &[], "")
        .await
        .assert_provider_error(401);
    assert!(server.journey(&id).await.is_some());
    // The library talks to the app, not over HTTP: no token needed.
    server.reset().await;
    assert!(server.journey(&id).await.is_none());
}

#[tokio::test]
async fn with_an_admin_listener_the_provider_port_does_not_serve_the_admin_api() {
    let mut config = quick_config();
    config.admin_bind = Some("127.0.0.1:0".parse().unwrap());
    let server = start_with(config).await;
    let reply = admin_get(&server, "journeys", None).await;
    let message = reply.assert_provider_error(404);
    assert!(message.contains("/__admin/journeys"), "{message}");
    // The provider API is still there.
    let ok = common::get_journey(&server, "success-1", &[]).await;
    assert_eq!(ok.status, StatusCode::OK);
}

#[tokio::test]
async fn the_admin_listener_serves_the_admin_api_only_and_callbacks_never_reach_it() {
    let mut config = protected();
    config.admin_bind = Some("127.0.0.1:0".parse().unwrap());
    let server = serve_with(config).await;
    let admin = server
        .app()
        .config()
        .admin_bind
        .expect("the admin address, as bound");
    assert_ne!(admin.port(), 0);
    assert_ne!(admin, server.address());
    let admin_url = format!("http://{admin}");
    let bearer = format!("Bearer {ADMIN_TOKEN}");

    let health = send_url(Method::GET, &format!("{admin_url}/__admin/health"), &[], "").await;
    assert_eq!(health.status, StatusCode::OK, "{}", health.text());
    let journeys = format!("{admin_url}/__admin/journeys");
    send_url(Method::GET, &journeys, &[], "")
        .await
        .assert_provider_error(401);
    let listed = send_url(Method::GET, &journeys, &[("authorization", &bearer)], "").await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text());
    // Nothing else is served there.
    let provider = format!("{admin_url}/api/v3/otk-service/get-journey/success-1");
    send_url(Method::POST, &provider, &[("authorization", "t")], "")
        .await
        .assert_provider_error(404);
    // And the provider port no longer serves the admin API.
    server
        .send(Method::GET, "/__admin/health", &[], "")
        .await
        .assert_provider_error(404);

    // A callbackUrl at the admin listener is refused before sending, naming it.
    let body = json!({
        "flowId": "f",
        "processingConfig": {"callbackUrl": format!("http://localhost:{}/__admin/reset", admin.port())}
    });
    let id = create_id(&server, &body, &[]).await;
    server.complete(&id, None).await.unwrap();
    let attempt = eventually("the refused attempt", || async {
        server.callbacks().await.attempts.into_iter().next()
    })
    .await;
    assert_eq!(attempt.error, Some("self_callback"));
    assert!(
        attempt.detail.as_deref().unwrap().contains("admin API"),
        "{attempt:?}"
    );
    assert!(attempt.final_attempt);
    assert!(
        server.journey(&id).await.is_some(),
        "the mock was not reset"
    );
    server.shutdown().await;
}

fn otk_mock() -> Command {
    common::binary()
}

#[test]
fn help_never_prints_the_value_of_a_secret_variable() {
    let secrets = [
        ("OTK_MOCK_ADMIN_TOKEN", "secret-admin-value"),
        ("OTK_MOCK_TOKENS", "secret-provider-value"),
        ("OTK_MOCK_CALLBACK_SIGNING_SECRET", "secret-signing-value"),
        ("OTK_MOCK_UPSTREAM_TOKEN", "secret-upstream-value"),
        ("OTK_MOCK_RECORD_SALT", "secret-salt-value"),
    ];
    for command in [&["serve", "--help"][..], &["record", "--help"]] {
        let mut cmd = otk_mock();
        for (name, value) in secrets {
            cmd.env(name, value);
        }
        let out = cmd.args(command).output().expect("the binary runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{command:?}");
        assert!(
            !text.contains("secret-"),
            "{command:?} printed a secret:\n{text}"
        );
    }
    let out = otk_mock().args(["serve", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--admin-token",
        "OTK_MOCK_ADMIN_TOKEN",
        "--admin-bind",
        "OTK_MOCK_ADMIN_BIND",
        "--callback-allow",
        "OTK_MOCK_CALLBACK_ALLOW",
        "--callback-max-delay",
        "OTK_MOCK_CALLBACK_MAX_DELAY",
        "--callback-retry-queue",
        "OTK_MOCK_CALLBACK_RETRY_QUEUE",
    ] {
        assert!(text.contains(needle), "serve --help lacks {needle}");
    }
}

#[test]
fn an_admin_api_open_beyond_loopback_is_warned_about_at_start() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = otk_mock()
        .args(["serve", "--bind", "0.0.0.0:0", "--log-format", "json"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let value: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    assert_eq!(value["level"], "WARN", "{line}");
    let message = value["fields"]["message"].as_str().unwrap();
    assert!(message.contains("--admin-token"), "{message}");
}
