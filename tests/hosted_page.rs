//! The hosted journey page as a browser meets it: post/redirect/get, HEAD, the favicon, the
//! order of the outcomes, what the result page says, and the outcomes it refuses. In process.

mod common;
mod support;

use std::time::Duration;

use hyper::{Method, StatusCode};
use serde_json::json;

use common::start_with;
use support::{admin, create_id, eventually, journey_view, page, quick_config};

#[tokio::test]
async fn a_submission_answers_303_to_the_page_so_back_and_reload_never_resubmit() {
    let server = start_with(quick_config()).await;
    let id = create_id(&server, &json!({"flowId": "f"}), &[]).await;
    page(&server, Method::GET, &id, "").await;
    let posted = page(&server, Method::POST, &id, "outcome=liveness_failed").await;
    assert_eq!(posted.status, StatusCode::SEE_OTHER);
    assert_eq!(posted.header("location"), Some(&*format!("/journey/{id}")));
    assert_eq!(posted.header("cache-control"), Some("no-store"));
    assert!(posted.body.is_empty());
    // What the browser then GETs (and gets again on reload or Back) is the result, a 200.
    let result = page(&server, Method::GET, &id, "").await;
    assert_eq!(result.status, StatusCode::OK);
    let html = result.text();
    assert!(html.contains("liveness_failed"), "{html}");
    // A failed check still completes the journey, and the page says so.
    assert!(html.contains(r#"id="checks-note""#), "{html}");
    assert_eq!(journey_view(&server, &id).await["endedBy"], "hosted_page");
}

#[tokio::test]
async fn head_answers_like_get_without_a_body_and_without_opening_the_journey() {
    let server = start_with(quick_config()).await;
    let id = create_id(&server, &json!({"flowId": "f"}), &[]).await;
    let head = page(&server, Method::HEAD, &id, "").await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(
        head.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(head.body.is_empty());
    let length: usize = head.header("content-length").unwrap().parse().unwrap();
    assert!(
        length > 500,
        "the length of the page GET would send: {length}"
    );
    assert_eq!(journey_view(&server, &id).await["state"], "created");
    // Still a 404 page for an unknown journey, and other methods are refused with the list.
    assert_eq!(
        page(&server, Method::HEAD, "NOSUCHJRNY", "").await.status,
        StatusCode::NOT_FOUND
    );
    let put = page(&server, Method::PUT, &id, "").await;
    assert_eq!(put.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(put.text().contains("GET, HEAD, POST"), "{}", put.text());
}

#[tokio::test]
async fn the_favicon_is_a_204_that_the_journal_never_sees() {
    let server = start_with(quick_config()).await;
    let icon = server.send(Method::GET, "/favicon.ico", &[], "").await;
    assert_eq!(icon.status, StatusCode::NO_CONTENT);
    assert!(icon.header("cache-control").unwrap().contains("max-age"));
    let journal = admin(&server, Method::GET, "requests", "").await.json();
    assert_eq!(journal["count"], 0, "{journal}");
    // The pages say they have no icon, so a browser need not ask at all.
    let id = create_id(&server, &json!({"flowId": "f"}), &[]).await;
    assert!(page(&server, Method::GET, &id, "")
        .await
        .text()
        .contains(r#"<link rel="icon" href="data:,">"#));
}

#[tokio::test]
async fn the_bound_outcome_comes_first_then_success_and_the_button_sticks_to_the_screen() {
    let server = start_with(quick_config()).await;
    let plain = create_id(&server, &json!({"flowId": "f"}), &[]).await;
    let html = page(&server, Method::GET, &plain, "").await.text();
    let first = html.find(r#"name="outcome" value=""#).unwrap();
    assert!(
        html[first..].starts_with(r#"name="outcome" value="success" checked"#),
        "{}",
        &html[first..first + 60]
    );
    // The form comes before the journey's facts, and its button sits in a sticky bar.
    assert!(html.find("<form").unwrap() < html.find("<dt>Flow</dt>").unwrap());
    assert!(html.contains(r#"<div class="submit"><button type="submit" id="finish">"#));

    let bound = create_id(
        &server,
        &json!({"flowId": "f"}),
        &[("x-mock-scenario", "vpn_flagged")],
    )
    .await;
    let html = page(&server, Method::GET, &bound, "").await.text();
    let values: Vec<&str> = html
        .split(r#"name="outcome" value=""#)
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .collect();
    assert_eq!(&values[..2], ["vpn_flagged", "success"], "{values:?}");
    // The JSON blocks are labelled.
    assert!(html.contains(r#"<h3 id="user-info">userInfo</h3>"#));
    assert!(html.contains(r#"<h3 id="processing-config">processingConfig</h3>"#));
}

#[tokio::test]
async fn an_outcome_the_form_does_not_offer_is_refused_and_changes_nothing() {
    let server = start_with(quick_config()).await;
    let id = create_id(&server, &json!({"flowId": "f"}), &[]).await;
    page(&server, Method::GET, &id, "").await;
    for (outcome, why) in [
        ("link_expired", "expiry comes from the clock"),
        ("in_progress", "does not end a journey"),
        ("nope", "no such scenario"),
    ] {
        let reply = page(&server, Method::POST, &id, &format!("outcome={outcome}")).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{outcome}: {why}");
        assert!(
            reply
                .text()
                .contains("not one of the outcomes this page offers"),
            "{outcome}: {}",
            reply.text()
        );
    }
    assert_eq!(journey_view(&server, &id).await["state"], "in_progress");
}

#[tokio::test]
async fn session_expiry_has_its_own_heading() {
    let server = start_with(quick_config()).await;
    let id = create_id(
        &server,
        &json!({"flowId": "f", "processingConfig": {"journeySessionExpiry": 0.2}}),
        &[],
    )
    .await;
    page(&server, Method::GET, &id, "").await;
    let reply = eventually("the session to expire", || async {
        let reply = page(&server, Method::GET, &id, "").await;
        (reply.status == StatusCode::GONE).then_some(reply)
    })
    .await;
    let html = reply.text();
    assert!(html.contains("<h2>Journey session expired</h2>"), "{html}");
    assert!(!html.contains("link expired"), "{html}");
}

#[tokio::test]
async fn a_journey_that_completed_by_itself_says_so_and_auto_complete_can_be_turned_off() {
    let mut config = quick_config();
    config.auto_complete_after = Some(Duration::from_millis(100));
    let server = start_with(config).await;
    let by_itself = create_id(&server, &json!({"flowId": "f"}), &[]).await;
    let waits = create_id(
        &server,
        &json!({"flowId": "f"}),
        &[("x-mock-auto-complete", "off")],
    )
    .await;
    eventually("the first journey to complete by itself", || async {
        let view = journey_view(&server, &by_itself).await;
        (view["endedBy"] == "auto_complete").then_some(())
    })
    .await;
    let html = page(&server, Method::GET, &by_itself, "").await.text();
    assert!(html.contains(r#"id="ended-by-itself""#), "{html}");
    assert!(html.contains("--auto-complete-after"), "{html}");

    // The other waits for a tester: its link still opens the form.
    let view = journey_view(&server, &waits).await;
    assert_eq!(view["state"], "created");
    assert_eq!(view["autoComplete"], "off");
    let form = page(&server, Method::GET, &waits, "").await.text();
    assert!(form.contains("Choose how this journey ends"), "{form}");

    // A bad value is the provider's 400, naming the header.
    let bad = support::create(
        &server,
        &json!({"flowId": "f"}),
        &[("x-mock-auto-complete", "sometimes")],
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.json()["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("X-Mock-Auto-Complete: "));
}

/// WCAG's contrast ratio of two `#rrggbb` colours.
fn contrast(a: &str, b: &str) -> f64 {
    fn luminance(hex: &str) -> f64 {
        let hex = hex.trim_start_matches('#');
        let channel = |i: usize| {
            let c = u8::from_str_radix(&hex[i..i + 2], 16).unwrap() as f64 / 255.0;
            if c <= 0.03928 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * channel(0) + 0.7152 * channel(2) + 0.0722 * channel(4)
    }
    let (x, y) = (luminance(a), luminance(b));
    (x.max(y) + 0.05) / (x.min(y) + 0.05)
}

#[test]
fn every_text_colour_of_the_page_meets_wcag_aa_on_its_background() {
    let page = include_str!("../templates/html/base.html.tera");
    let css = page
        .split_once("<style>")
        .and_then(|(_, rest)| rest.split_once("</style>"))
        .map(|(css, _)| css)
        .unwrap();
    let mut checked = 0;
    for rule in css.split('}') {
        let Some((_, rule)) = rule.split_once('{') else {
            continue;
        };
        let Some(colour) = rule
            .split(';')
            .find_map(|d| d.trim().strip_prefix("color:").map(str::trim))
        else {
            continue;
        };
        let background = rule
            .split(';')
            .find_map(|d| d.trim().split_once("background:").map(|(_, v)| v.trim()))
            .filter(|v| v.starts_with('#'))
            .unwrap_or("#ffffff");
        let colour = colour.split_whitespace().next().unwrap();
        let ratio = contrast(colour, background);
        assert!(
            ratio >= 4.5,
            "{colour} on {background} is {ratio:.2}:1 in {rule:?}"
        );
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} colours found");
    assert!(
        contrast("#627d98", "#ffffff") < 4.5,
        "the old banner colour fails"
    );
}
