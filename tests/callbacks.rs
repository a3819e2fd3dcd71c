//! Callbacks over real HTTP, to a receiver each test starts on loopback: the body and headers,
//! retries, timeouts, dead receivers, signing, redelivery, the queue bound and shutdown. The
//! mock runs in process (its callbacks still go out over HTTP), except for shutdown, which
//! only a server has.

mod common;
mod support;

use std::str::FromStr as _;
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
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text());
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
    // Each attempt but the last says when the next is due, no earlier than it started.
    for pair in log.windows(2) {
        let next = pair[0]["nextAttemptAt"].as_str().expect("a next attempt");
        assert!(next >= pair[0]["startedAt"].as_str().unwrap(), "{pair:?}");
    }
    assert_eq!(log[2]["nextAttemptAt"], Value::Null);
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
async fn a_full_intake_refuses_the_create_call_with_a_503_instead_of_dropping_the_callback() {
    let receiver = Receiver::start(Answer::Status(200)).await;
    let mut config = quick_config();
    config.callbacks.queue_capacity = 1;
    let server = start_with(config).await;
    let slow = [("x-mock-callback-delay", "1h")];
    let first = create_id(&server, &with_callback(&receiver.url), &slow).await;
    // The running journey holds the only slot: the next journey with a callback is refused
    // now, when the app can still react, not when it ends.
    let reply = support::create(&server, &with_callback(&receiver.url), &[]).await;
    let message = reply.assert_provider_error(503);
    assert!(message.contains("--callback-queue"), "{message}");
    assert_eq!(reply.header("retry-after"), Some("1"));
    // A journey without a callback needs no slot.
    create_id(&server, &json!({"flowId": "f"}), &[]).await;
    // Ending it moves the slot to its delivery, waiting an hour: still full, and a
    // redelivery, which needs a slot of its own, is refused the same way.
    complete(&server, &first).await;
    support::create(&server, &with_callback(&receiver.url), &[])
        .await
        .assert_provider_error(503);
    admin(
        &server,
        Method::POST,
        &format!("callbacks/{first}/redeliver"),
        "",
    )
    .await
    .assert_provider_error(503);
    let stats = admin(&server, Method::GET, "callbacks", "").await.json()["stats"].clone();
    assert_eq!(stats["refused"], 3, "{stats}");
    assert_eq!(stats["queued"], 1, "{stats}");
    assert_eq!(stats["reserved"], 0, "{stats}");
    assert!(
        admin(&server, Method::GET, "callbacks", "").await.json()["lost"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // A reset cancels the waiting delivery, and the intake is free again.
    admin(&server, Method::POST, "reset", "").await;
    let callbacks = admin(&server, Method::GET, "callbacks", "").await.json();
    assert_eq!(callbacks["stats"]["cancelled"], 1, "{callbacks}");
    assert_eq!(callbacks["lost"][0]["reason"], "reset", "{callbacks}");
    create_id(&server, &with_callback(&receiver.url), &[]).await;
    server.shutdown().await;
}

#[tokio::test]
async fn deliveries_waiting_to_retry_leave_the_intake_to_new_journeys() {
    let receiver = Receiver::start(Answer::Status(500)).await;
    let mut config = quick_config();
    config.callbacks.queue_capacity = 2;
    // Long waits between attempts, so the deliveries sit in the retry set.
    config.callbacks.backoff_initial = Duration::from_secs(60);
    config.callbacks.backoff_max = Duration::from_secs(60);
    let server = start_with(config).await;
    let ids = [
        create_id(&server, &with_callback(&receiver.url), &[]).await,
        create_id(&server, &with_callback(&receiver.url), &[]).await,
    ];
    support::create(&server, &with_callback(&receiver.url), &[])
        .await
        .assert_provider_error(503);
    for id in &ids {
        complete(&server, id).await;
    }
    let stats = eventually("both deliveries to be retrying", || async {
        let stats = server.callbacks().await.stats;
        (stats.retrying == 2).then_some(stats)
    })
    .await;
    assert_eq!((stats.queued, stats.reserved, stats.pending), (0, 0, 2));
    // Their first attempts failed: the intake is free for two more journeys.
    create_id(&server, &with_callback(&receiver.url), &[]).await;
    create_id(&server, &with_callback(&receiver.url), &[]).await;
    // While the retry set is full, journeys with a callback are refused too, so that the
    // deliveries kept stay bounded.
    let mut config = quick_config();
    config.callbacks.retry_capacity = 1;
    config.callbacks.backoff_initial = Duration::from_secs(60);
    config.callbacks.backoff_max = Duration::from_secs(60);
    let small = start_with(config).await;
    let id = create_id(&small, &with_callback(&receiver.url), &[]).await;
    complete(&small, &id).await;
    eventually("the delivery to be retrying", || async {
        (small.callbacks().await.stats.retrying == 1).then_some(())
    })
    .await;
    let message = support::create(&small, &with_callback(&receiver.url), &[])
        .await
        .assert_provider_error(503);
    assert!(message.contains("--callback-retry-queue"), "{message}");
}

#[tokio::test]
async fn callback_delays_over_the_cap_are_refused_naming_the_header_and_the_cap() {
    let server = start_with(quick_config()).await;
    let body = json!({"flowId": "f", "processingConfig": {"callbackUrl": "http://127.0.0.1:9/cb"}});
    for (header, value) in [
        ("x-mock-callback-delay", "10000y"),
        ("x-mock-callback-delay", "1h 1s"),
        ("x-mock-callback-fault", "delay:2h"),
    ] {
        let reply = support::create(&server, &body, &[(header, value)]).await;
        let message = reply.assert_provider_error(400);
        assert!(
            message.to_lowercase().starts_with(header) && message.contains("1h"),
            "{message}"
        );
        assert!(message.contains("--callback-max-delay"), "{message}");
    }
    // Up to the cap is fine.
    let id = create_id(&server, &body, &[("x-mock-callback-delay", "1h")]).await;
    let reply = admin(
        &server,
        Method::PUT,
        &format!("journeys/{id}/callback-fault"),
        r#"{"fault": "delay:100000h"}"#,
    )
    .await;
    assert!(reply
        .assert_provider_error(400)
        .contains("--callback-max-delay"));
    assert_eq!(server.callbacks().await.stats.reserved, 1);
}

#[tokio::test]
async fn a_receivers_retry_after_is_honoured_up_to_the_backoff_maximum() {
    // Asks for 2 s: the next attempt waits that long, though the backoff would be 20 ms.
    let polite = Receiver::start(Answer::FailFirstRetryAfter(1, 503, "2")).await;
    let mut config = quick_config();
    config.callbacks.backoff_max = Duration::from_secs(5);
    let server = start_with(config).await;
    let id = create_id(&server, &with_callback(&polite.url), &[]).await;
    complete(&server, &id).await;
    polite.wait_for(2).await;
    let log = eventually("two logged attempts", || async {
        let log = attempts(&server, &id).await;
        (log.len() == 2).then_some(log)
    })
    .await;
    let at = |a: &Value| {
        jiff::Timestamp::from_str(a["startedAt"].as_str().unwrap())
            .unwrap()
            .as_millisecond()
    };
    assert!(at(&log[1]) - at(&log[0]) >= 1_900, "{log:?}");
    assert!(log[0]["detail"]
        .as_str()
        .unwrap()
        .contains("Retry-After: 2s"));

    // Asks for an hour, as an HTTP-date: capped at --callback-backoff-max (80 ms here), or
    // this test would time out.
    let date = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(3600));
    let date: &'static str = Box::leak(date.into_boxed_str());
    let greedy = Receiver::start(Answer::FailFirstRetryAfter(1, 429, date)).await;
    let server = start_with(quick_config()).await;
    let id = create_id(&server, &with_callback(&greedy.url), &[]).await;
    complete(&server, &id).await;
    greedy.wait_for(2).await;
    callback_sent(&server, &id).await;
}

#[tokio::test]
async fn a_410_gone_stops_the_retries() {
    let receiver = Receiver::start(Answer::Status(410)).await;
    let server = start_with(quick_config()).await;
    let id = create_id(&server, &with_callback(&receiver.url), &[]).await;
    complete(&server, &id).await;
    let view = eventually("the callback to fail", || async {
        let view = journey_view(&server, &id).await;
        (view["callback"]["status"] == "failed").then_some(view)
    })
    .await;
    assert_eq!(view["callback"]["attempts"], 1);
    let log = attempts(&server, &id).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["error"], "gone");
    assert_eq!(log[0]["status"], 410);
    assert_eq!(log[0]["final"], true);
    assert_eq!(receiver.received().len(), 1);
    let stats = server.callbacks().await.stats;
    assert_eq!((stats.created, stats.failed, stats.pending), (1, 1, 0));
}

#[tokio::test]
async fn callbacks_outside_the_allow_list_are_refused_before_sending() {
    let receiver = Receiver::start(Answer::Status(200)).await;
    let mut config = quick_config();
    config.callbacks.allow = vec!["10.0.0.0/8".parse().unwrap()];
    let server = start_with(config).await;
    let id = create_id(&server, &with_callback(&receiver.url), &[]).await;
    complete(&server, &id).await;
    eventually("the callback to fail", || async {
        (journey_view(&server, &id).await["callback"]["status"] == "failed").then_some(())
    })
    .await;
    let log = attempts(&server, &id).await;
    assert_eq!(log.len(), 1, "refused once, never retried: {log:?}");
    assert_eq!(log[0]["error"], "not_allowed");
    assert!(log[0]["detail"].as_str().unwrap().contains("10.0.0.0/8"));
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn a_callback_to_the_mock_itself_is_refused_and_never_resets_it() {
    // On a socket: the refusal is about the listener's address.
    let server = serve_with(quick_config()).await;
    let port = server.address().port();
    let mut ids = Vec::new();
    for url in [
        format!("http://127.0.0.1:{port}/__admin/reset"),
        format!("http://localhost:{port}/__admin/reset"),
        format!("http://0.0.0.0:{port}/__admin/reset"),
    ] {
        let id = create_id(&server, &with_callback(&url), &[]).await;
        complete(&server, &id).await;
        ids.push(id);
    }
    for id in &ids {
        eventually("the callback to fail", || async {
            (journey_view(&server, id).await["callback"]["status"] == "failed").then_some(())
        })
        .await;
        let log = attempts(&server, id).await;
        assert_eq!(log.len(), 1, "{log:?}");
        assert_eq!(log[0]["error"], "self_callback", "{log:?}");
        assert!(log[0]["detail"].as_str().unwrap().contains("this mock"));
    }
    // Nothing was reset: the journeys are all still there.
    assert_eq!(server.journeys().await.len(), 3);
    let stats = server.callbacks().await.stats;
    assert_eq!((stats.created, stats.failed), (3, 3));
    server.shutdown().await;
}

#[tokio::test]
async fn the_counters_balance_through_deliveries_failures_and_a_reset() {
    let ok = Receiver::start(Answer::Status(200)).await;
    let mut config = quick_config();
    config.callbacks.max_attempts = 2;
    let server = start_with(config).await;
    let delivered = create_id(&server, &with_callback(&ok.url), &[]).await;
    let failed = create_id(&server, &with_callback(&dead_url()), &[]).await;
    let waiting = create_id(
        &server,
        &with_callback(&ok.url),
        &[("x-mock-callback-fault", "duplicate; delay:1h")],
    )
    .await;
    let running = create_id(&server, &with_callback(&ok.url), &[]).await;
    for id in [&delivered, &failed, &waiting] {
        complete(&server, id).await;
    }
    let balanced = |s: &otk_mock::CallbackStats| {
        s.created == s.delivered + s.failed + s.cancelled + s.pending as u64
    };
    let stats = eventually("delivered and failed to settle", || async {
        let s = server.callbacks().await.stats;
        (s.delivered == 1 && s.failed == 1).then_some(s)
    })
    .await;
    assert!(balanced(&stats), "{stats:?}");
    // The duplicate fault's two deliveries, both waiting; the running journey holds a slot.
    assert_eq!((stats.created, stats.queued, stats.reserved), (4, 2, 1));
    let _ = running;
    server.reset().await;
    let stats = server.callbacks().await.stats;
    assert!(balanced(&stats), "{stats:?}");
    assert_eq!((stats.created, stats.cancelled, stats.reserved), (2, 2, 0));
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
    assert_eq!(log.stats.cancelled, 1);
}

#[tokio::test]
async fn shutdown_ends_journeys_due_within_the_drain_window_and_logs_those_that_are_not() {
    let receiver = Receiver::start(Answer::Status(200)).await;
    let mut config = quick_config();
    config.auto_complete_after = Some(Duration::from_secs(3));
    config.callbacks.drain_window = Duration::from_secs(10);
    let server = serve_with(config).await;
    let due = create_id(&server, &with_callback(&receiver.url), &[]).await;
    // Bound to a scenario that never ends a journey: it would run until its link expires.
    let endless = create_id(
        &server,
        &with_callback(&receiver.url),
        &[("x-mock-scenario", "in_progress")],
    )
    .await;
    let app: MockApp = (*server).clone();
    server.shutdown().await;

    // The journey that would have auto-completed within the window ended, and its callback
    // went out before shutdown returned.
    let got = receiver.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].json()["journeyId"], due.as_str());
    let info = app.journey(&due).await.unwrap();
    assert_eq!(info.ended_by, Some(otk_mock::EndedBy::AutoComplete));
    assert!(info.callback_sent);
    // The other is logged as undelivered, by name.
    let log = app.callbacks().await;
    assert_eq!(log.lost.len(), 1, "{:?}", log.lost);
    assert_eq!(log.lost[0].journey_id, endless);
    assert_eq!(log.lost[0].reason, "shutdown");
    assert_eq!(log.stats.undelivered, 1);
    assert_eq!((log.stats.created, log.stats.delivered), (1, 1));
}

#[tokio::test]
async fn a_journey_evicted_before_it_ends_frees_its_slot_and_its_loss_is_logged() {
    let mut config = quick_config();
    config.max_journeys = 1;
    config.callbacks.queue_capacity = 1;
    config.auto_complete_after = Some(Duration::from_millis(300));
    let server = start_with(config).await;
    let evicted = create_id(&server, &with_callback(&dead_url()), &[]).await;
    // The store holds one journey: this one pushes out the first, still running.
    create_id(&server, &json!({"flowId": "f"}), &[]).await;
    assert!(server.journey(&evicted).await.is_none());
    // At its deadline the first one is found gone: its slot is free, its loss said.
    let log = eventually("the eviction to be noticed", || async {
        let log = server.callbacks().await;
        (log.stats.reserved == 0).then_some(log)
    })
    .await;
    assert_eq!(log.lost.len(), 1, "{:?}", log.lost);
    assert_eq!(log.lost[0].journey_id, evicted);
    assert_eq!(log.lost[0].reason, "evicted");
    assert_eq!((log.stats.undelivered, log.stats.created), (1, 0));
    create_id(&server, &with_callback(&dead_url()), &[]).await;
}
