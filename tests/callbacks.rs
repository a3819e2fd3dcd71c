//! Callbacks over real HTTP, to a receiver each test starts on loopback: the body and headers,
//! retries, timeouts, dead receivers, signing, redelivery, the queue bound and shutdown. The
//! mock runs in process (its callbacks still go out over HTTP), except for shutdown, which
//! only a server has.

mod common;
mod support;

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use hyper::{Method, StatusCode};
use otk_mock::MockApp;
use serde_json::{json, Value};
use sha2::Sha256;

use common::{get_journey, serve_with, start_with, Mock};
use support::{
    admin, attempts, complete, create_id, dead_url, eventually, journey_view, page, quick_config,
    walk, Answer, Receiver,
};

fn with_callback(url: &str) -> Value {
    json!({
        "flowId": "flow-cb",
        "userInfo": { "externalReferenceId": "order-9" },
        "processingConfig": { "callbackUrl": url, "authKeyForCallback": "cb-secret-1" }
    })
}

async fn callback_sent(server: &Mock, id: &str) {
    eventually("callbackSent to turn true", || async {
        let doc = get_journey(server, id, &[]).await.result();
        (doc["callbackSent"] == true).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_completed_journey_posts_its_bare_document_with_the_auth_key() {
    let receiver = Receiver::start(Answer::Status(200)).await;
    let server = start_with(quick_config()).await;
    let id = create_id(&server, &with_callback(&receiver.url), &[]).await;
    let reply = complete(&server, &id).await;
    assert_eq!(reply.status, StatusCode::OK);

    let got = receiver.wait_for(1).await;
    let request = &got[0];
    assert_eq!(request.method, Method::POST);
    assert_eq!(request.path, "/callback");
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("authorization"), Some("cb-secret-1"));
    assert!(request.header("webhook-signature").is_none());
    let body = request.json();
    assert!(body.get("result").is_none(), "the callback is not wrapped");
    assert!(
        body.get("callbackSent").is_none(),
        "callbacks carry no callbackSent"
    );
    assert_eq!(body["journeyId"], id.as_str());
    assert_eq!(body["currentStatus"], "COMPLETED");
    assert_eq!(body["flow"]["flowId"], "flow-cb");
    assert_eq!(
        body["processingConfig"]["authKeyForCallback"],
        "cb-secret-1"
    );
    assert_eq!(body["userInfo"], json!({"externalReferenceId": "order-9"}));

    callback_sent(&server, &id).await;
    // The callback is the get-journey document without callbackSent.
    let mut doc = get_journey(&server, &id, &[]).await.result();
    doc.as_object_mut().unwrap().shift_remove("callbackSent");
    assert_eq!(doc, body);

    let view = journey_view(&server, &id).await;
    assert_eq!(view["callback"]["status"], "delivered");
    assert_eq!(view["callback"]["attempts"], 1);
    let log = attempts(&server, &id).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["outcome"], "delivered");
    assert_eq!(log[0]["status"], 200);
    assert_eq!(log[0]["attempt"], 1);
    assert_eq!(log[0]["final"], true);
    assert!(log[0]["scheduledAt"].as_str().unwrap().ends_with('Z'));
    assert!(log[0]["durationMs"].as_u64().is_some());
    server.shutdown().await;
}

#[tokio::test]
async fn every_way_of_completing_sends_the_callback() {
    let receiver = Receiver::start(Answer::Status(204)).await;
    let mut config = quick_config();
    // Long enough for the page to be opened first even on a loaded machine.
    config.auto_complete_after = Some(Duration::from_secs(1));
    let server = start_with(config).await;

    let by_page = create_id(&server, &with_callback(&receiver.url), &[]).await;
    assert_eq!(
        page(&server, Method::GET, &by_page, "").await.status,
        StatusCode::OK
    );
    let by_admin = create_id(&server, &with_callback(&receiver.url), &[]).await;
    let by_timer = create_id(&server, &with_callback(&receiver.url), &[]).await;

    let reply = page(&server, Method::POST, &by_page, "outcome=success").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    admin(
        &server,
        Method::POST,
        &format!("journeys/{by_admin}/complete"),
        "",
    )
    .await;

    // Nobody reads the auto-completed journey: its timer alone must send the callback.
    let got = receiver.wait_for(3).await;
    let mut ids: Vec<String> = got
        .iter()
        .map(|r| r.json()["journeyId"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    let mut expected = vec![by_page.clone(), by_admin.clone(), by_timer.clone()];
    expected.sort();
    assert_eq!(ids, expected);
    for id in [&by_page, &by_admin, &by_timer] {
        callback_sent(&server, id).await;
    }
    assert_eq!(
        journey_view(&server, &by_timer).await["endedBy"],
        "auto_complete"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_receiver_that_fails_first_gets_the_same_bytes_on_a_later_attempt() {
    let receiver = Receiver::start(Answer::FailFirst(2, 503)).await;
    let server = start_with(quick_config()).await;
    let id = create_id(&server, &with_callback(&receiver.url), &[]).await;
    complete(&server, &id).await;

    let got = receiver.wait_for(3).await;
    assert_eq!(got.len(), 3);
    assert!(
        got.iter().all(|r| r.body == got[0].body),
        "every attempt sends the same bytes"
    );
    callback_sent(&server, &id).await;

    let log = attempts(&server, &id).await;
    let summary: Vec<(u64, &str, Option<&str>, u64, bool)> = log
        .iter()
        .map(|a| {
            (
                a["attempt"].as_u64().unwrap(),
                a["outcome"].as_str().unwrap(),
                a["error"].as_str(),
                a["status"].as_u64().unwrap(),
                a["final"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (1, "failed", Some("non_2xx"), 503, false),
            (2, "failed", Some("non_2xx"), 503, false),
            (3, "delivered", None, 200, true),
        ]
    );
    assert_eq!(journey_view(&server, &id).await["callback"]["attempts"], 3);
    server.shutdown().await;
}

#[tokio::test]
async fn a_receiver_that_never_answers_times_out_on_every_attempt() {
    let receiver = Receiver::start(Answer::Hang).await;
    let mut config = quick_config();
    config.callbacks.timeout = Duration::from_millis(200);
    config.callbacks.max_attempts = 2;
    let server = start_with(config).await;
    let id = create_id(&server, &with_callback(&receiver.url), &[]).await;
    complete(&server, &id).await;

    let view = eventually("the callback to fail", || async {
        let view = journey_view(&server, &id).await;
        (view["callback"]["status"] == "failed").then_some(view)
    })
    .await;
    assert_eq!(view["callback"]["sent"], false);
    let log = attempts(&server, &id).await;
    assert_eq!(log.len(), 2);
    assert!(
        log.iter()
            .all(|a| a["error"] == "timeout" && a["status"].is_null()),
        "{log:?}"
    );
    assert_eq!(log[1]["final"], true);
    // The receiver saw at most those two (it may not have read a request before its timeout).
    assert!(receiver.received().len() <= 2);
    assert_eq!(
        get_journey(&server, &id, &[]).await.result()["callbackSent"],
        false
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_dead_receiver_exhausts_the_attempts_and_each_is_logged() {
    let server = start_with(quick_config()).await;
    let id = create_id(&server, &with_callback(&dead_url()), &[]).await;
    complete(&server, &id).await;

    eventually("the callback to fail", || async {
        (journey_view(&server, &id).await["callback"]["status"] == "failed").then_some(())
    })
    .await;
    let log = attempts(&server, &id).await;
    let numbers: Vec<u64> = log.iter().map(|a| a["attempt"].as_u64().unwrap()).collect();
    assert_eq!(numbers, [1, 2, 3]);
    assert!(log.iter().all(|a| a["error"] == "refused"), "{log:?}");
    let stats = admin(&server, Method::GET, "callbacks", "").await.json()["stats"].clone();
    assert_eq!(stats["failed"], 1);
    assert_eq!(stats["pending"], 0);
    server.shutdown().await;
}

#[tokio::test]
async fn signed_callbacks_carry_a_standard_webhooks_signature() {
    // A Standard Webhooks secret: whsec_ and base64 of the key bytes.
    let key = b"an example signing key of 32 by";
    let secret = format!("whsec_{}", STANDARD.encode(key));
    let receiver = Receiver::start(Answer::FailFirst(1, 500)).await;
    let mut config = quick_config();
    config.callbacks.signing_key = Some(otk_mock::config::SigningKey::parse(&secret).unwrap());
    let server = start_with(config).await;
    let id = create_id(&server, &with_callback(&receiver.url), &[]).await;
    complete(&server, &id).await;

    let got = receiver.wait_for(2).await;
    let ids: Vec<&str> = got
        .iter()
        .map(|r| r.header("webhook-id").unwrap())
        .collect();
    assert_eq!(ids[0], ids[1], "the webhook id is the same across retries");
    for request in &got {
        let msg_id = request.header("webhook-id").unwrap();
        let timestamp = request.header("webhook-timestamp").unwrap();
        assert!(timestamp.parse::<i64>().unwrap() > 1_700_000_000);
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(format!("{msg_id}.{timestamp}.").as_bytes());
        mac.update(&request.body);
        let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
        assert_eq!(request.header("webhook-signature"), Some(expected.as_str()));
    }
    server.shutdown().await;
}

#[tokio::test]
async fn redelivery_sends_the_same_document_again() {
    let receiver = Receiver::start(Answer::Status(200)).await;
    let server = start_with(quick_config()).await;
    let id = create_id(
        &server,
        &with_callback(&receiver.url),
        &[("x-mock-callback-delay", "10ms")],
    )
    .await;
    assert_eq!(
        journey_view(&server, &id).await["callback"]["delayOverride"],
        "10ms"
    );
    // Not ended yet: nothing to redeliver.
    admin(
        &server,
        Method::POST,
        &format!("callbacks/{id}/redeliver"),
        "",
    )
    .await
    .assert_provider_error(409);
    complete(&server, &id).await;
    receiver.wait_for(1).await;
    callback_sent(&server, &id).await;

    let reply = admin(
        &server,
        Method::POST,
        &format!("callbacks/{id}/redeliver"),
        "",
    )
    .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text());
    let got = receiver.wait_for(2).await;
    assert_eq!(got[0].body, got[1].body);
    let log = eventually("two logged deliveries", || async {
        let log = attempts(&server, &id).await;
        (log.len() == 2).then_some(log)
    })
    .await;
    assert_ne!(log[0]["delivery"], log[1]["delivery"]);

    // A journey without a callbackUrl has nothing to redeliver.
    let plain = create_id(&server, &json!({"flowId": "f"}), &[]).await;
    admin(
        &server,
        Method::POST,
        &format!("journeys/{plain}/complete"),
        "",
    )
    .await;
    admin(
        &server,
        Method::POST,
        &format!("callbacks/{plain}/redeliver"),
        "",
    )
    .await
    .assert_provider_error(409);
    admin(&server, Method::POST, "callbacks/NOPE/redeliver", "")
        .await
        .assert_provider_error(404);
    server.shutdown().await;
}

#[tokio::test]
async fn a_bad_callback_delay_header_is_refused() {
    let server = start_with(quick_config()).await;
    let reply = support::create(
        &server,
        &json!({"flowId": "f"}),
        &[("x-mock-callback-delay", "soon")],
    )
    .await;
    let message = reply.assert_provider_error(400);
    assert!(message.starts_with("X-Mock-Callback-Delay"), "{message}");
    server.shutdown().await;
}

#[tokio::test]
async fn an_expired_journey_sends_its_callback_too() {
    let receiver = Receiver::start(Answer::Status(200)).await;
    let server = start_with(quick_config()).await;
    let mut body = with_callback(&receiver.url);
    body["processingConfig"]["journeyLinkValidity"] = json!(0.2);
    let id = create_id(&server, &body, &[]).await;
    // Nobody reads the journey: the expiry timer alone sends the callback.
    let got = receiver.wait_for(1).await;
    let doc = got[0].json();
    assert_eq!(doc["journeyId"], id.as_str());
    assert_eq!(doc["currentStatus"], "EXPIRED");
    server.shutdown().await;
}

#[tokio::test]
async fn the_callback_log_pages_through_every_attempt_and_lost_callback_once() {
    let server = start_with(quick_config()).await;
    // 3 attempts each to a dead receiver, and callbacks dropped by their fault: two lists of
    // different lengths behind one cursor.
    let mut failing = Vec::new();
    for _ in 0..40 {
        let id = create_id(&server, &with_callback(&dead_url()), &[]).await;
        complete(&server, &id).await;
        failing.push(id);
    }
    let mut dropped = Vec::new();
    for _ in 0..130 {
        let drop = [("x-mock-callback-fault", "drop")];
        let id = create_id(&server, &with_callback(&dead_url()), &drop).await;
        complete(&server, &id).await;
        dropped.push(id);
    }
    eventually("every callback to fail", || async {
        (server.callbacks().await.stats.failed == 40).then_some(())
    })
    .await;
    for limit in [1_000, 50, 7] {
        let pages = walk(&server, "callbacks", &["attempts", "lost"], limit).await;
        assert_eq!(pages.len(), 130usize.div_ceil(limit), "{limit}");
        let list = |name: &str| -> Vec<(String, u64)> {
            pages
                .iter()
                .flat_map(|p| p[name].as_array().unwrap().clone())
                .map(|a| {
                    let id = a["journeyId"].as_str().unwrap().to_string();
                    (id, a["attempt"].as_u64().unwrap_or(0))
                })
                .collect()
        };
        let mut seen = list("attempts");
        assert_eq!(seen.len(), 120, "{limit}");
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 120, "{limit}: an attempt twice");
        let lost: Vec<String> = list("lost").into_iter().map(|(id, _)| id).collect();
        assert_eq!(
            lost, dropped,
            "{limit}: lost callbacks, oldest first, once each"
        );
        // Every page carries the counters.
        assert!(pages.iter().all(|p| p["stats"]["failed"] == 40));
    }
    assert_eq!(failing.len(), 40);
}

#[tokio::test]
async fn a_full_queue_drops_the_callback_and_counts_it() {
    let receiver = Receiver::start(Answer::Status(200)).await;
    let mut config = quick_config();
    config.callbacks.queue_capacity = 1;
    let server = start_with(config).await;
    let slow = [("x-mock-callback-delay", "1h")];
    let first = create_id(&server, &with_callback(&receiver.url), &slow).await;
    let second = create_id(&server, &with_callback(&receiver.url), &slow).await;
    for id in [&first, &second] {
        let reply = complete(&server, id).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "completion never waits for the queue"
        );
    }
    let callbacks = admin(&server, Method::GET, "callbacks", "").await.json();
    assert_eq!(callbacks["stats"]["dropped"], 1, "{callbacks}");
    assert_eq!(callbacks["stats"]["pending"], 1, "{callbacks}");
    assert_eq!(callbacks["lost"][0]["journeyId"], second.as_str());
    assert_eq!(callbacks["lost"][0]["reason"], "queue_full");
    assert_eq!(
        journey_view(&server, &second).await["callback"]["status"],
        "lost"
    );
    // Redelivery into a full queue is refused as unavailable.
    admin(
        &server,
        Method::POST,
        &format!("callbacks/{second}/redeliver"),
        "",
    )
    .await
    .assert_provider_error(503);
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_attempts_callbacks_due_within_the_drain_window_and_logs_the_rest() {
    let receiver = Receiver::start(Answer::Status(200)).await;
    let mut config = quick_config();
    config.callbacks.drain_window = Duration::from_secs(10);
    // On a socket: draining callbacks is part of stopping a server.
    let server = serve_with(config).await;
    let soon = create_id(
        &server,
        &with_callback(&receiver.url),
        &[("x-mock-callback-delay", "300ms")],
    )
    .await;
    let late = create_id(
        &server,
        &with_callback(&receiver.url),
        &[("x-mock-callback-delay", "1h")],
    )
    .await;
    for id in [&soon, &late] {
        complete(&server, id).await;
    }
    let app: MockApp = (*server).clone();
    server.shutdown().await;

    // The one due within the window was delivered before shutdown returned.
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].json()["journeyId"], soon.as_str());
    let log = app.callbacks().await;
    let lost = log.lost;
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert_eq!(lost[0].journey_id, late);
    assert_eq!(lost[0].reason, "shutdown");
    assert_eq!(log.stats.undelivered, 1);
}
