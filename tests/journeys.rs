//! Created journeys: create-journey-url, get-journey through the lifecycle, the hosted page,
//! expiry and the admin API. In process, except the first test, which creates and fetches a
//! journey end to end over a real port.

mod common;
mod support;

use std::time::Duration;

use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use common::{get_journey, serve_with, start_with};
use support::{
    admin, complete, create, create_id, create_raw, eventually, journey_view, page, quick_config,
    walk, walk_all,
};

fn is_uuid(s: &str) -> bool {
    s.len() == 36 && s.chars().filter(|c| *c == '-').count() == 4
}

#[tokio::test]
async fn create_answers_the_documented_shape_and_get_shows_the_journey_in_progress() {
    // On a socket: create and get end to end, and journeyUrl must name the port bound.
    let server = serve_with(quick_config()).await;
    let body = json!({
        "flowId": "4b3c2a10-0000-4000-8000-000000000001",
        "userInfo": { "name": { "firstName": "Asha", "lastName": "Rao" }, "phoneNumber": 9876543210u64 },
        "processingConfig": { "journeyLinkValidity": 86400, "language": "hi" }
    });
    let reply = create(&server, &body, &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(
        reply.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let v = reply.json();
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["flow", "result"]);
    assert_eq!(
        v["flow"],
        json!({"flowId": "4b3c2a10-0000-4000-8000-000000000001", "version": 1, "test": false})
    );
    let result = &v["result"];
    let result_keys: Vec<&String> = result.as_object().unwrap().keys().collect();
    assert_eq!(result_keys, ["journeyId", "journeyUrl", "createdAt", "ttl"]);
    let id = result["journeyId"].as_str().unwrap();
    assert_eq!(id.len(), 10);
    assert!(id
        .chars()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()));
    let url = result["journeyUrl"].as_str().unwrap();
    assert!(url.starts_with("http"), "{url}");
    assert!(url.contains(id), "{url}");
    assert_eq!(url, format!("{}/journey/{id}", server.uri()));
    assert!(result["createdAt"].as_i64().unwrap() > 1_700_000_000_000);
    assert_eq!(result["ttl"], "24 hours");

    let doc = get_journey(&server, id, &[]).await.result();
    assert_eq!(doc["journeyId"], id);
    assert_eq!(doc["currentStatus"], "IN_PROGRESS");
    assert_eq!(
        doc["flow"]["flowId"],
        "4b3c2a10-0000-4000-8000-000000000001"
    );
    assert_eq!(
        doc["userInfo"],
        json!({ "name": { "firstName": "Asha", "lastName": "Rao" }, "phoneNumber": 9876543210u64 })
    );
    assert!(
        is_uuid(doc["userId"].as_str().unwrap()),
        "{}",
        doc["userId"]
    );
    assert_eq!(doc["processingConfig"]["journeyLinkValidity"], 86400);
    assert_eq!(doc["processingConfig"]["language"], "hi");
    assert_eq!(doc["processingConfig"]["journeySessionExpiry"], 600);
    assert!(doc["processingConfig"].get("authKeyForCallback").is_none());
    assert_eq!(doc["createdAt"], result["createdAt"]);
    assert_eq!(doc["startedAt"], Value::Null);
    assert_eq!(doc["completedAt"], Value::Null);
    assert_eq!(doc["callbackSent"], false);

    // Ids are unique.
    let other = create_id(&server, &json!({"flowId": "f"}), &[]).await;
    assert_ne!(other, id);
    server.shutdown().await;
}

#[tokio::test]
async fn public_url_sets_the_base_of_journey_urls_and_user_id_is_kept() {
    let mut config = quick_config();
    config.public_url = Some("https://kyc.example.test/".into());
    let server = start_with(config).await;
    let reply = create(&server, &json!({"flowId": "f", "userId": "user-42"}), &[]).await;
    let v = reply.json();
    let id = v["result"]["journeyId"].as_str().unwrap();
    assert_eq!(
        v["result"]["journeyUrl"],
        format!("https://kyc.example.test/journey/{id}")
    );
    assert_eq!(v["result"]["ttl"], "1 hours");
    let doc = get_journey(&server, id, &[]).await.result();
    assert_eq!(doc["userId"], "user-42");
    server.shutdown().await;
}

#[tokio::test]
async fn each_bad_create_body_is_a_400_naming_the_field() {
    let server = start_with(quick_config()).await;
    let cases: &[(&str, &str)] = &[
        ("{not json", "Request body is not valid JSON"),
        ("", "flowId is required"),
        ("{}", "flowId is required"),
        ("[]", "value must be of type object"),
        (r#"{"flowId": ""}"#, "flowId is not allowed to be empty"),
        (r#"{"flowId": 12}"#, "flowId must be a string"),
        (r#"{"flowId": "f", "userId": 5}"#, "userId must be a string"),
        (
            r#"{"flowId": "f", "userInfo": "x"}"#,
            "userInfo must be of type object",
        ),
        (
            r#"{"flowId": "f", "userInfo": {"name": {"firstName": 1}}}"#,
            "userInfo.name.firstName must be a string",
        ),
        (
            r#"{"flowId": "f", "userInfo": {"phoneNumber": [1]}}"#,
            "userInfo.phoneNumber must be one of [string, number]",
        ),
        (
            r#"{"flowId": "f", "processingConfig": {"redirectTime": "10"}}"#,
            "processingConfig.redirectTime must be a number",
        ),
        (
            r#"{"flowId": "f", "processingConfig": {"journeyLinkValidity": -1}}"#,
            "processingConfig.journeyLinkValidity must be a positive number",
        ),
        (
            r#"{"flowId": "f", "processingConfig": {"callbackUrl": "localhost"}}"#,
            "processingConfig.callbackUrl must be a valid uri",
        ),
        (r#"{"flowId": "f", "extra": true}"#, "extra is not allowed"),
        (
            r#"{"flowId": "f", "processingConfig": {"callbackURL": "x"}}"#,
            "processingConfig.callbackURL is not allowed",
        ),
    ];
    for (body, expected) in cases {
        let reply = create_raw(&server, body, &[]).await;
        let message = reply.assert_provider_error(400);
        assert!(
            message.starts_with(expected),
            "body {body:?}: got {message:?}, expected {expected:?}"
        );
    }
    // Authorization and method are checked as on every provider route.
    let path = "/api/v3/otk-service/create-journey-url";
    server
        .send(Method::POST, path, &[], r#"{"flowId":"f"}"#)
        .await
        .assert_provider_error(401);
    server
        .send(Method::GET, path, &[("authorization", "t")], "")
        .await
        .assert_provider_error(405);
    server.shutdown().await;
}

#[tokio::test]
async fn the_scenario_comes_from_the_header_the_magic_reference_or_the_default() {
    let server = start_with(quick_config()).await;
    let by_header = create_id(
        &server,
        &json!({"flowId": "f"}),
        &[("x-mock-scenario", "link_expired")],
    )
    .await;
    let by_reference = create_id(
        &server,
        &json!({"flowId": "f", "userInfo": {"externalReferenceId": "scenario:link_expired"}}),
        &[],
    )
    .await;
    let by_default = create_id(&server, &json!({"flowId": "f"}), &[]).await;
    for (id, scenario, bound_by) in [
        (&by_header, "link_expired", "header"),
        (&by_reference, "link_expired", "external_reference_id"),
        (&by_default, "success", "default"),
    ] {
        let view = journey_view(&server, id).await;
        assert_eq!(view["scenario"], scenario, "{view}");
        assert_eq!(view["boundBy"], bound_by, "{view}");
    }
    // The magic reference is still echoed as sent.
    let doc = get_journey(&server, &by_reference, &[]).await.result();
    assert_eq!(
        doc["userInfo"]["externalReferenceId"],
        "scenario:link_expired"
    );

    let message = create(
        &server,
        &json!({"flowId": "f"}),
        &[("x-mock-scenario", "nope")],
    )
    .await
    .assert_provider_error(400);
    assert!(
        message.contains("known scenarios") && message.contains("success"),
        "{message}"
    );
    let message = create(
        &server,
        &json!({"flowId": "f", "userInfo": {"externalReferenceId": "scenario:nope"}}),
        &[],
    )
    .await
    .assert_provider_error(400);
    assert!(
        message.starts_with("userInfo.externalReferenceId names no scenario"),
        "{message}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn admin_completion_gives_the_scenario_document_with_the_journeys_own_facts() {
    let server = start_with(quick_config()).await;
    let id = create_id(
        &server,
        &json!({"flowId": "flow-1", "userInfo": {"emailAddress": "a@b.test"},
                "processingConfig": {"authKeyForCallback": "k"}}),
        &[],
    )
    .await;
    let before = get_journey(&server, &id, &[]).await.result();
    assert_eq!(before["currentStatus"], "IN_PROGRESS");

    let reply = complete(&server, &id).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json()["state"], "completed");
    assert_eq!(reply.json()["endedBy"], "admin");

    let doc = get_journey(&server, &id, &[]).await.result();
    assert_eq!(doc["currentStatus"], "COMPLETED");
    assert_eq!(doc["step"], "COMPLETE");
    assert_eq!(doc["journeyId"], id.as_str());
    assert_eq!(doc["flow"]["flowId"], "flow-1");
    assert_eq!(doc["userInfo"], json!({"emailAddress": "a@b.test"}));
    assert_eq!(doc["userId"], before["userId"]);
    assert_eq!(doc["processingConfig"]["authKeyForCallback"], "k");
    assert_eq!(doc["createdAt"], before["createdAt"]);
    let created = doc["createdAt"].as_i64().unwrap();
    let started = doc["startedAt"].as_i64().unwrap();
    let completed = doc["completedAt"].as_i64().unwrap();
    assert!(created <= started && started <= completed);
    let updated = doc["updatedAt"].as_str().unwrap();
    assert!(updated.ends_with('Z') && updated.len() == 24, "{updated}");
    assert_eq!(doc["callbackSent"], false);

    // A second completion is a conflict, in the provider's format.
    admin(
        &server,
        Method::POST,
        &format!("journeys/{id}/complete"),
        "",
    )
    .await
    .assert_provider_error(409);
    server.shutdown().await;
}

#[tokio::test]
async fn auto_completion_ends_an_unopened_journey_by_itself() {
    let mut config = quick_config();
    config.auto_complete_after = Some(Duration::from_millis(200));
    let server = start_with(config).await;
    let id = create_id(&server, &json!({"flowId": "f"}), &[]).await;
    let doc = eventually("auto-completion", || async {
        let doc = get_journey(&server, &id, &[]).await.result();
        (doc["currentStatus"] == "COMPLETED").then_some(doc)
    })
    .await;
    assert!(doc["completedAt"].as_i64().unwrap() >= doc["createdAt"].as_i64().unwrap() + 200);
    assert_eq!(journey_view(&server, &id).await["endedBy"], "auto_complete");
    server.shutdown().await;
}

#[tokio::test]
async fn opening_the_page_cancels_auto_completion() {
    let mut config = quick_config();
    config.auto_complete_after = Some(Duration::from_secs(1));
    let server = start_with(config).await;
    let opened = create_id(&server, &json!({"flowId": "f"}), &[]).await;
    let witness = create_id(&server, &json!({"flowId": "f"}), &[]).await;
    let reply = page(&server, Method::GET, &opened, "").await;
    // On a machine too slow to open the page within a second there is nothing to check.
    if !reply.text().contains("<form") {
        return;
    }
    // The witness was created after the opened journey, so once it has auto-completed the
    // opened journey's auto-completion deadline has passed too.
    eventually("the witness to auto-complete", || async {
        (journey_view(&server, &witness).await["state"] == "completed").then_some(())
    })
    .await;
    let view = journey_view(&server, &opened).await;
    assert_eq!(view["state"], "in_progress", "{view}");
    server.shutdown().await;
}

#[tokio::test]
async fn the_hosted_page_submits_an_outcome_and_redirects_on_success() {
    let server = start_with(quick_config()).await;
    let id = create_id(
        &server,
        &json!({"flowId": "f", "userInfo": {"name": {"firstName": "<b>Eve</b>"}},
            "processingConfig": {
            "successRedirectUrl": "https://app.example.test/done?kyc=success&x=1",
            "failureRedirectUrl": "https://app.example.test/done?kyc=failure",
            "redirectTime": 3
        }}),
        &[],
    )
    .await;
    let form = page(&server, Method::GET, &id, "").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.text());
    assert_eq!(
        form.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let html = form.text();
    assert!(html.contains(&id));
    assert!(html.contains(r#"<form method="post""#), "{html}");
    assert!(
        html.contains(r#"name="outcome" value="success" checked"#),
        "{html}"
    );
    assert!(!html.contains("<script"));
    assert!(!html.contains("<b>Eve"), "unescaped user input in {html}");
    assert!(html.contains("&lt;b&gt;Eve"), "{html}");

    // Opening the page started the journey.
    let doc = get_journey(&server, &id, &[]).await.result();
    assert_eq!(doc["currentStatus"], "IN_PROGRESS");
    assert!(doc["startedAt"].as_i64().is_some());

    // A submission without an outcome is refused and changes nothing.
    let empty = page(&server, Method::POST, &id, "").await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    let unknown = page(&server, Method::POST, &id, "outcome=nope").await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);

    // Post/redirect/get: the submission answers 303 to the page, which shows the result.
    let done = page(&server, Method::POST, &id, "outcome=success").await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text());
    assert_eq!(done.header("location"), Some(&*format!("/journey/{id}")));
    let done = page(&server, Method::GET, &id, "").await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    let html = done.text();
    // The URL is HTML-escaped in the attribute; a browser reads it back unescaped.
    assert!(
        html.contains(r#"<meta http-equiv="refresh" content="3;url=https:&#x2F;&#x2F;app.example.test&#x2F;done?kyc=success&amp;x=1">"#),
        "{html}"
    );
    let view = journey_view(&server, &id).await;
    assert_eq!(view["state"], "completed");
    assert_eq!(view["endedBy"], "hosted_page");
    assert_eq!(
        get_journey(&server, &id, &[]).await.result()["currentStatus"],
        "COMPLETED"
    );

    // Submitting again changes nothing.
    let again = page(&server, Method::POST, &id, "outcome=success").await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    // Reopening shows the result again.
    let reopened = page(&server, Method::GET, &id, "").await;
    assert_eq!(reopened.status, StatusCode::OK);
    assert!(reopened.text().contains("http-equiv=\"refresh\""));
    server.shutdown().await;
}

#[tokio::test]
async fn a_failed_journey_redirects_to_the_failure_url_and_an_empty_url_means_no_redirect() {
    let server = start_with(quick_config()).await;
    let failing = create_id(
        &server,
        &json!({"flowId": "f", "processingConfig": {
            "failureRedirectUrl": "https://app.example.test/fail", "redirectTime": 0
        }}),
        &[],
    )
    .await;
    admin(
        &server,
        Method::POST,
        &format!("journeys/{failing}/complete"),
        r#"{"scenario": "link_expired"}"#,
    )
    .await;
    let html = page(&server, Method::GET, &failing, "").await.text();
    assert!(
        html.contains(r#"content="0;url=https:&#x2F;&#x2F;app.example.test&#x2F;fail""#),
        "{html}"
    );

    let quiet = create_id(&server, &json!({"flowId": "f"}), &[]).await;
    page(&server, Method::GET, &quiet, "").await;
    let done = page(&server, Method::POST, &quiet, "outcome=success").await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let done = page(&server, Method::GET, &quiet, "").await;
    assert_eq!(done.status, StatusCode::OK);
    assert!(!done.text().contains("http-equiv"), "{}", done.text());
    server.shutdown().await;
}

#[tokio::test]
async fn an_unknown_page_is_a_404_page() {
    let server = start_with(quick_config()).await;
    let reply = page(&server, Method::GET, "NOSUCHJRNY", "").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(
        reply.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(reply.text().contains("Journey not found"));
    server.shutdown().await;
}

#[tokio::test]
async fn expired_link_returns_expired_status_and_a_410_page() {
    let server = start_with(quick_config()).await;
    let id = create_id(
        &server,
        &json!({"flowId": "f", "processingConfig": {"journeyLinkValidity": 0.3}}),
        &[],
    )
    .await;
    let doc = eventually("the link to expire", || async {
        let doc = get_journey(&server, &id, &[]).await.result();
        (doc["currentStatus"] != "IN_PROGRESS").then_some(doc)
    })
    .await;
    assert_eq!(doc["currentStatus"], "EXPIRED");
    assert_eq!(doc["step"], "LINK_EXPIRED");
    assert_eq!(doc["message"], "Journey Link Expired");
    assert_eq!(doc["startedAt"], Value::Null);
    let view = journey_view(&server, &id).await;
    assert_eq!(
        (view["state"].as_str(), view["endedBy"].as_str()),
        (Some("expired"), Some("link_expired"))
    );

    let reply = page(&server, Method::GET, &id, "").await;
    assert_eq!(reply.status, StatusCode::GONE);
    assert!(reply.text().contains("expired"));
    let reply = page(&server, Method::POST, &id, "outcome=success").await;
    assert_eq!(reply.status, StatusCode::GONE);
    server.shutdown().await;
}

#[tokio::test]
async fn an_opened_session_expires_after_journey_session_expiry() {
    let server = start_with(quick_config()).await;
    let id = create_id(
        &server,
        &json!({"flowId": "f", "processingConfig": {"journeySessionExpiry": 0.3}}),
        &[],
    )
    .await;
    assert_eq!(
        page(&server, Method::GET, &id, "").await.status,
        StatusCode::OK
    );
    let view = eventually("the session to expire", || async {
        let view = journey_view(&server, &id).await;
        (view["state"] == "expired").then_some(view)
    })
    .await;
    assert_eq!(view["endedBy"], "session_expired");
    let reply = page(&server, Method::GET, &id, "").await;
    assert_eq!(reply.status, StatusCode::GONE);
    assert!(reply.text().contains("session"));
    server.shutdown().await;
}

#[tokio::test]
async fn the_journey_listing_pages_through_every_journey_once() {
    let server = start_with(quick_config()).await;
    let mut made = Vec::new();
    for i in 0..230 {
        made.push(if i % 2 == 0 {
            create_id(&server, &json!({"flowId": "f"}), &[]).await
        } else {
            let id = format!("QA-{i}");
            server.bind(&id, "in_progress").await.unwrap();
            id
        });
    }
    for limit in [1_000, 100, 9] {
        let pages = walk(&server, "journeys", &["journeys"], limit).await;
        assert_eq!(pages.len(), 230usize.div_ceil(limit), "{limit}");
        let ids: Vec<String> = pages
            .iter()
            .flat_map(|p| p["journeys"].as_array().unwrap().clone())
            .map(|j| j["journeyId"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ids, made, "{limit}: oldest first, each once");
    }
    // The library still lists every journey, whatever the page size.
    assert_eq!(server.journeys().await.len(), 230);
}

#[tokio::test]
async fn admin_binds_scenarios_lists_journeys_and_resets() {
    let server = start_with(quick_config()).await;
    // Binding an id never created makes an ended journey with that scenario.
    let reply = admin(
        &server,
        Method::PUT,
        "journeys/QA-FIXTURE-1",
        r#"{"scenario": "link_expired"}"#,
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let doc = get_journey(&server, "QA-FIXTURE-1", &[]).await.result();
    assert_eq!(doc["currentStatus"], "EXPIRED");

    // Rebinding a running journey changes how it ends.
    let id = create_id(&server, &json!({"flowId": "f"}), &[]).await;
    let reply = admin(
        &server,
        Method::PUT,
        &format!("journeys/{id}"),
        r#"{"scenario":"link_expired"}"#,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    complete(&server, &id).await;
    let doc = get_journey(&server, &id, &[]).await.result();
    assert_eq!(doc["currentStatus"], "EXPIRED");
    assert_eq!(journey_view(&server, &id).await["state"], "terminated");

    let list = walk_all(&server, "journeys", "journeys").await;
    assert_eq!(list.len(), 2);
    assert_eq!(list[1]["journeyId"], id.as_str());

    // Errors, in the provider's format.
    admin(
        &server,
        Method::PUT,
        &format!("journeys/{id}"),
        r#"{"scenario":"success"}"#,
    )
    .await
    .assert_provider_error(409);
    admin(&server, Method::PUT, "journeys/X", r#"{"scenario":"nope"}"#)
        .await
        .assert_provider_error(400);
    admin(
        &server,
        Method::PUT,
        "journeys/X",
        r#"{"scenario":"success","x":1}"#,
    )
    .await
    .assert_provider_error(400);
    admin(&server, Method::PUT, "journeys/X", "")
        .await
        .assert_provider_error(400);
    admin(&server, Method::POST, "journeys/NOPE/complete", "")
        .await
        .assert_provider_error(404);
    admin(&server, Method::GET, "journeys/NOPE", "")
        .await
        .assert_provider_error(404);
    admin(&server, Method::GET, "nothing-here", "")
        .await
        .assert_provider_error(404);
    admin(&server, Method::DELETE, "journeys", "")
        .await
        .assert_provider_error(405);
    let new = create_id(&server, &json!({"flowId": "f"}), &[]).await;
    admin(
        &server,
        Method::POST,
        &format!("journeys/{new}/complete"),
        r#"{"scenario":"in_progress"}"#,
    )
    .await
    .assert_provider_error(400);

    // Reset forgets created journeys: their ids answer statelessly again.
    let reply = admin(&server, Method::POST, "reset", "").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(walk_all(&server, "journeys", "journeys").await.is_empty());
    let doc = get_journey(&server, &id, &[]).await.result();
    assert_eq!(doc["currentStatus"], "COMPLETED");
    assert_ne!(doc["flow"]["flowId"], "f");
    server.shutdown().await;
}

#[tokio::test]
async fn ids_never_created_still_answer_statelessly() {
    let server = start_with(quick_config()).await;
    let first = get_journey(&server, "ANY-ID-1", &[]).await;
    let second = get_journey(&server, "ANY-ID-1", &[]).await;
    assert_eq!(first.body, second.body);
    assert_eq!(first.result()["currentStatus"], "COMPLETED");
    let expired = get_journey(&server, "link_expired-7", &[]).await.result();
    assert_eq!(expired["currentStatus"], "EXPIRED");
    server.shutdown().await;
}
