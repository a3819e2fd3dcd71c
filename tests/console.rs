//! The QA console (`/__admin/ui/`) and the callback inbox, over HTTP as a browser without
//! JavaScript would use them: pages, form posts answered 303, mistakes answered with a page
//! that says what is wrong, the login cookie. In process, except where a callback has to
//! reach the inbox over a socket. (`tests/browser.rs` drives the same pages in Chromium.)

mod common;
mod support;

use hyper::{Method, StatusCode};
use otk_mock::config::{AdminToken, Config};
use serde_json::json;

use common::{serve_with, start_with, Mock, Reply};
use support::{admin, create_id, eventually, journey_view, quick_config};

const FORM: &str = "application/x-www-form-urlencoded";

async fn get(server: &Mock, path: &str, headers: &[(&str, &str)]) -> Reply {
    server.send(Method::GET, path, headers, "").await
}

async fn post(server: &Mock, path: &str, form: &str, headers: &[(&str, &str)]) -> Reply {
    let mut all = vec![("content-type", FORM)];
    all.extend_from_slice(headers);
    server.send(Method::POST, path, &all, form).await
}

/// The page an action sends the browser to.
fn see_other(reply: &Reply) -> String {
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text());
    reply.header("location").expect("a Location").to_string()
}

/// The journey id at the end of a console journey page's path.
fn journey_of(location: &str) -> String {
    location
        .strip_prefix("/__admin/ui/journeys/")
        .expect("a journey page")
        .to_string()
}

#[tokio::test]
async fn browsers_opening_the_admin_root_land_on_the_console() {
    let server = start_with(quick_config()).await;
    for path in ["/__admin", "/__admin/", "/__admin/ui"] {
        let reply = get(&server, path, &[]).await;
        assert_eq!(see_other(&reply), "/__admin/ui/", "{path}");
    }
    let home = get(&server, "/__admin/ui/", &[]).await;
    assert_eq!(home.status, StatusCode::OK);
    assert_eq!(
        home.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let html = home.text();
    assert!(html.contains("Create a journey"), "{html}");
    assert!(
        html.contains(r#"<option value="liveness_failed""#),
        "{html}"
    );
    // Everything comes from the mock: no asset from elsewhere.
    for needle in [r#"src="http"#, r#"href="http"#, "//cdn", "@import"] {
        assert!(!html.contains(needle), "{needle} in {html}");
    }
    for (asset, kind) in [
        ("console.css", "text/css; charset=utf-8"),
        ("console.js", "text/javascript; charset=utf-8"),
    ] {
        let reply = get(&server, &format!("/__admin/ui/assets/{asset}"), &[]).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.header("content-type"), Some(kind));
        assert!(!reply.text().contains("http://"), "{asset} fetches nothing");
    }
    let missing = get(&server, "/__admin/ui/nope", &[]).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.text().contains("is not a page of the console"));
    // The console is not provider traffic.
    assert_eq!(
        admin(&server, Method::GET, "requests", "").await.json()["count"],
        0
    );
}

#[tokio::test]
async fn the_create_form_makes_a_journey_with_every_option_and_shows_its_link_and_qr_code() {
    let server = start_with(quick_config()).await;
    let form = "scenario=vpn_flagged&autoComplete=off&callbackUrl=http%3A%2F%2F127.0.0.1%3A9%2Fcb\
                &authKeyForCallback=k1&callbackDelay=2s&callbackFault=duplicate\
                &successRedirectUrl=https%3A%2F%2Fapp.test%2Fok&failureRedirectUrl=\
                &redirectTime=3&journeyLinkValidity=120&journeySessionExpiry=0.5&flowId=";
    let location = see_other(&post(&server, "/__admin/ui/journeys", form, &[]).await);
    let id = journey_of(&location);
    let view = journey_view(&server, &id).await;
    assert_eq!(view["scenario"], "vpn_flagged");
    assert_eq!(view["boundBy"], "admin");
    assert_eq!(view["autoComplete"], "off");
    assert_eq!(view["flow"]["flowId"], "qa-console");
    let config = &view["processingConfig"];
    assert_eq!(config["callbackUrl"], "http://127.0.0.1:9/cb");
    assert_eq!(config["authKeyForCallback"], "k1");
    assert_eq!(config["redirectTime"], 3);
    assert_eq!(config["journeyLinkValidity"], 120);
    assert_eq!(config["journeySessionExpiry"], 0.5);
    assert_eq!(
        config["failureRedirectUrl"], "",
        "an empty field is the default"
    );
    assert_eq!(view["callback"]["delayOverride"], "2s");
    assert_eq!(view["callback"]["fault"], "duplicate");

    let page = get(&server, &location, &[]).await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    let url = view["journeyUrl"].as_str().unwrap();
    assert!(
        html.contains(&format!(
            r#"<a href="{}" id="journey-link">"#,
            url.replace('/', "&#x2F;")
        )),
        "{html}"
    );
    assert!(html.contains("<svg"), "a QR code: {html}");
    assert!(html.contains(r#"id="complete""#) && html.contains(r#"id="rebind""#));
    // The journey is in the listing, newest first.
    let listing = get(&server, "/__admin/ui/", &[]).await.text();
    assert!(
        listing.contains(&format!(r#"<tr data-journey="{id}">"#)),
        "{listing}"
    );
}

#[tokio::test]
async fn a_mistake_in_a_form_is_a_page_that_says_what_is_wrong() {
    let server = start_with(quick_config()).await;
    for (form, says) in [
        ("scenario=nope", "known scenarios"),
        ("", "A scenario is required."),
        (
            "scenario=success&callbackUrl=not-a-url",
            "processingConfig.callbackUrl must be a valid uri",
        ),
        (
            "scenario=success&redirectTime=soon",
            "redirectTime must be a number",
        ),
        (
            "scenario=success&journeyLinkValidity=0",
            "must be a positive number",
        ),
        ("scenario=success&callbackDelay=soon", "Callback delay: "),
        ("scenario=success&callbackFault=explode", "Callback fault: "),
        ("scenario=success&autoComplete=sometimes", "Auto-complete: "),
    ] {
        let reply = post(&server, "/__admin/ui/journeys", form, &[]).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{form}: {}",
            reply.text()
        );
        assert_eq!(
            reply.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert!(
            reply.text().contains(&says.replace('"', "&quot;")),
            "{form}: {}",
            reply.text()
        );
    }
    assert_eq!(
        admin(&server, Method::GET, "journeys", "").await.json()["count"],
        0
    );
    let unknown = post(
        &server,
        "/__admin/ui/journeys/NOPE/complete",
        "scenario=success",
        &[],
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.text().contains("NOPE"), "{}", unknown.text());
    let no_such_action = post(&server, "/__admin/ui/explode", "", &[]).await;
    assert_eq!(no_such_action.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn complete_rebind_and_reset_are_the_admin_operations() {
    let server = start_with(quick_config()).await;
    let id = create_id(&server, &json!({"flowId": "f"}), &[]).await;
    let page = format!("/__admin/ui/journeys/{id}");
    let back = see_other(
        &post(
            &server,
            &format!("{page}/rebind"),
            "scenario=face_mismatch",
            &[],
        )
        .await,
    );
    assert_eq!(back, page);
    assert_eq!(
        journey_view(&server, &id).await["scenario"],
        "face_mismatch"
    );
    see_other(
        &post(
            &server,
            &format!("{page}/complete"),
            "scenario=liveness_failed",
            &[],
        )
        .await,
    );
    let view = journey_view(&server, &id).await;
    assert_eq!(
        (view["state"].as_str(), view["outcome"].as_str()),
        (Some("completed"), Some("liveness_failed"))
    );
    assert_eq!(view["endedBy"], "admin");
    // Ended: completing again is refused with the admin API's reason.
    let again = post(
        &server,
        &format!("{page}/complete"),
        "scenario=success",
        &[],
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(
        again.text().contains("has already ended"),
        "{}",
        again.text()
    );
    // No callbackUrl: nothing to redeliver, and the page says why.
    let redeliver = post(&server, &format!("{page}/redeliver"), "", &[]).await;
    assert_eq!(redeliver.status, StatusCode::CONFLICT);
    assert!(redeliver.text().contains("has no callbackUrl"));

    assert_eq!(
        see_other(&post(&server, "/__admin/ui/reset", "", &[]).await),
        "/__admin/ui/"
    );
    assert_eq!(
        admin(&server, Method::GET, "journeys", "").await.json()["count"],
        0
    );
}

#[tokio::test]
async fn faults_are_added_checked_listed_and_deleted() {
    let server = start_with(quick_config()).await;
    let bad = post(&server, "/__admin/ui/faults", "inject=status%3A99", &[]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text().contains("inject: "), "{}", bad.text());
    let bad = post(
        &server,
        "/__admin/ui/faults",
        "inject=reset&probability=2",
        &[],
    )
    .await;
    assert!(
        bad.text().contains("probability must be between 0 and 1"),
        "{}",
        bad.text()
    );

    // The check the form runs as one types: the same parser.
    let check = |q: &'static str| {
        let server = &server;
        async move {
            get(server, &format!("/__admin/ui/faults/check?inject={q}"), &[])
                .await
                .json()
        }
    };
    assert_eq!(
        check("delay%3A2s%3B%20status%3A504").await,
        json!({"ok": true})
    );
    let bad = check("status%3A99").await;
    assert_eq!(bad["ok"], false);
    assert!(bad["message"].as_str().unwrap().contains("429"), "{bad}");
    assert_eq!(check("").await["message"], "inject is required");

    let form = "inject=status%3A503&route=get-journey&times=2";
    assert_eq!(
        see_other(&post(&server, "/__admin/ui/faults", form, &[]).await),
        "/__admin/ui/faults"
    );
    let rules = admin(&server, Method::GET, "faults", "").await.json();
    assert_eq!(rules["faults"][0]["inject"], "status:503");
    assert_eq!(rules["faults"][0]["times"], 2);
    let id = rules["faults"][0]["id"].as_u64().unwrap();
    let page = get(&server, "/__admin/ui/faults", &[]).await.text();
    assert!(
        page.contains(&format!(r#"<tr data-fault="{id}">"#)),
        "{page}"
    );

    see_other(&post(&server, &format!("/__admin/ui/faults/{id}/delete"), "", &[]).await);
    assert_eq!(
        admin(&server, Method::GET, "faults", "").await.json()["faults"],
        json!([])
    );
    let gone = post(&server, &format!("/__admin/ui/faults/{id}/delete"), "", &[]).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_requests_page_filters_counts_and_clears_the_journal() {
    let server = start_with(quick_config()).await;
    let id = create_id(&server, &json!({"flowId": "f"}), &[]).await;
    common::get_journey(&server, &id, &[]).await;
    common::get_journey(&server, "vpn_flagged-7", &[]).await;

    let all = get(&server, "/__admin/ui/requests", &[]).await.text();
    assert!(
        all.contains(r#"<span id="request-count">3</span>"#),
        "{all}"
    );
    let one = get(
        &server,
        "/__admin/ui/requests?journeyId=vpn_flagged-7&path=&status=200",
        &[],
    )
    .await
    .text();
    assert!(
        one.contains(r#"<span id="request-count">1</span>"#),
        "{one}"
    );
    assert!(one.contains("vpn_flagged"), "{one}");
    let bad = get(&server, "/__admin/ui/requests?status=abc", &[]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text().contains(r#"class="error""#), "{}", bad.text());

    see_other(&post(&server, "/__admin/ui/requests/clear", "", &[]).await);
    assert_eq!(
        admin(&server, Method::GET, "requests", "").await.json()["count"],
        0
    );
}

#[tokio::test]
async fn scenarios_health_and_callbacks_pages_show_what_the_admin_api_knows() {
    let server = start_with(quick_config()).await;
    let scenarios = get(&server, "/__admin/ui/scenarios", &[]).await.text();
    assert!(scenarios.contains(r#"id="scenario-liveness_failed""#));
    assert!(
        scenarios.contains("get-journey&#x2F;liveness_failed-001"),
        "curl by prefix"
    );
    assert!(
        scenarios.contains("X-Mock-Scenario: liveness_failed"),
        "curl by header"
    );
    assert!(
        scenarios.contains("&quot;currentStatus&quot;: &quot;COMPLETED&quot;"),
        "a preview"
    );
    let health = get(&server, "/__admin/ui/health", &[]).await.text();
    let count =
        admin(&server, Method::GET, "health", "").await.json()["catalogue"]["scenarios"].clone();
    assert!(
        health.contains(&format!("<dd>{count} (generation")),
        "{health}"
    );
    assert!(health.contains(r#"href="/__admin/metrics""#), "{health}");
    let callbacks = get(&server, "/__admin/ui/callbacks", &[]).await;
    assert_eq!(callbacks.status, StatusCode::OK);
    assert!(callbacks.text().contains("No attempt yet"));
}

#[tokio::test]
async fn the_inbox_keeps_any_request_and_lists_it_as_json_and_html() {
    let server = start_with(quick_config()).await;
    let sent = server
        .send(
            Method::POST,
            "/__admin/inbox/my-app?x=1",
            &[("content-type", "application/json"), ("x-signature", "abc")],
            r#"{"hello": "<world>"}"#,
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK);
    assert_eq!(sent.json()["received"], 1);
    let listed = admin(&server, Method::GET, "inbox/my-app", "").await.json();
    assert_eq!(listed["count"], 1);
    let kept = &listed["requests"][0];
    assert_eq!(kept["method"], "POST");
    assert_eq!(kept["query"], "x=1");
    assert_eq!(kept["body"], r#"{"hello": "<world>"}"#);
    assert!(kept["headers"]
        .as_array()
        .unwrap()
        .contains(&json!(["x-signature", "abc"])));

    let html = get(&server, "/__admin/ui/inbox/my-app", &[]).await.text();
    assert!(
        html.contains("&lt;world&gt;") && !html.contains("<world>"),
        "{html}"
    );
    let index = get(&server, "/__admin/ui/inbox", &[]).await.text();
    assert!(index.contains("my-app</a> (1)"), "{index}");

    let bad = server
        .send(Method::POST, "/__admin/inbox/a%20b", &[], "x")
        .await;
    bad.assert_provider_error(400);
    let deleted = admin(&server, Method::DELETE, "inbox/my-app", "")
        .await
        .json();
    assert_eq!(deleted["deleted"], 1);
    // Not provider traffic either.
    assert_eq!(
        admin(&server, Method::GET, "requests", "").await.json()["count"],
        0
    );
}

#[tokio::test]
async fn a_callback_to_the_inbox_is_the_one_that_may_reach_the_mock_itself() {
    let server = serve_with(quick_config()).await;
    let form = "scenario=liveness_failed&toInbox=1&autoComplete=off&authKeyForCallback=secret";
    let id = journey_of(&see_other(
        &post(&server, "/__admin/ui/journeys", form, &[]).await,
    ));
    let view = journey_view(&server, &id).await;
    let url = view["processingConfig"]["callbackUrl"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(url, format!("{}/__admin/inbox/console", server.uri()));
    see_other(
        &post(
            &server,
            &format!("/__admin/ui/journeys/{id}/complete"),
            "scenario=liveness_failed",
            &[],
        )
        .await,
    );
    let received = eventually("the callback in the inbox", || async {
        let listed = admin(&server, Method::GET, "inbox/console", "")
            .await
            .json();
        (listed["count"] == 1).then_some(listed)
    })
    .await;
    let body: serde_json::Value =
        serde_json::from_str(received["requests"][0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["journeyId"], id.as_str(), "{body}");
    let headers = received["requests"][0]["headers"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        headers.iter().any(|h| h[1] == "secret"),
        "the auth key: {headers:?}"
    );
    let view = eventually("the callback delivered", || async {
        let view = journey_view(&server, &id).await;
        (view["callback"]["status"] == "delivered").then_some(view)
    })
    .await;
    assert_eq!(view["callback"]["sent"], true);
    // The journey's console page shows what each attempt sends: the same headers and body.
    let page = get(&server, &format!("/__admin/ui/journeys/{id}"), &[])
        .await
        .text();
    assert!(page.contains(r#"<details id="callback-sent">"#), "{page}");
    assert!(
        page.contains("<th>Authorization</th><td><code>secret</code>"),
        "{page}"
    );
    assert!(
        page.contains(&format!("&quot;journeyId&quot;: &quot;{id}&quot;")),
        "{page}"
    );
    // Any other path on the mock stays refused.
    let other = create_id(
        &server,
        &json!({"flowId": "f", "processingConfig": {"callbackUrl": format!("{}/__admin/reset", server.uri())}}),
        &[],
    )
    .await;
    support::complete(&server, &other).await;
    let attempts = eventually("the refused attempt", || async {
        let a = support::attempts(&server, &other).await;
        (!a.is_empty()).then_some(a)
    })
    .await;
    assert_eq!(attempts[0]["error"], "self_callback");
    server.shutdown().await;
}

const ADMIN_TOKEN: &str = "s3cret;tok=en";

fn protected() -> Config {
    let mut config = quick_config();
    config.admin_token = Some(AdminToken::parse(ADMIN_TOKEN).unwrap());
    config
}

#[tokio::test]
async fn with_an_admin_token_the_console_asks_for_it_and_keeps_it_in_a_cookie() {
    let server = start_with(protected()).await;
    let home = get(&server, "/__admin/ui/", &[]).await;
    assert_eq!(home.status, StatusCode::UNAUTHORIZED);
    assert!(
        home.text().contains(r#"name="token""#),
        "a login form: {}",
        home.text()
    );
    // Actions too; the stylesheet does not need it.
    assert_eq!(
        post(&server, "/__admin/ui/reset", "", &[]).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(&server, "/__admin/ui/assets/console.css", &[])
            .await
            .status,
        StatusCode::OK
    );

    let wrong = post(&server, "/__admin/ui/login", "token=nope", &[]).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.text().contains("not the admin token"));
    assert!(wrong.header("set-cookie").is_none());
    let empty = post(&server, "/__admin/ui/login", "token=", &[]).await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);

    let form = format!("token={}", form_urlencoded_token());
    let signed_in = post(&server, "/__admin/ui/login", &form, &[]).await;
    assert_eq!(see_other(&signed_in), "/__admin/ui/");
    let set_cookie = signed_in.header("set-cookie").unwrap().to_string();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"));
    assert!(set_cookie.contains("Path=/__admin/"));
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let with_cookie = [("cookie", cookie.as_str())];
    assert_eq!(
        get(&server, "/__admin/ui/", &with_cookie).await.status,
        StatusCode::OK
    );
    // The admin API takes the same cookie (the live refresh and the JSON links use it).
    assert_eq!(
        get(&server, "/__admin/journeys", &with_cookie).await.status,
        StatusCode::OK
    );
    let forged = [("cookie", "otk_mock_admin=nope")];
    assert_eq!(
        get(&server, "/__admin/journeys", &forged).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Callbacks carry no admin token: the inbox takes them, but reading it needs one.
    assert_eq!(
        server
            .send(Method::POST, "/__admin/inbox/x", &[], "{}")
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        get(&server, "/__admin/inbox/x", &[]).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(&server, "/__admin/inbox/x", &with_cookie).await.status,
        StatusCode::OK
    );

    let out = post(&server, "/__admin/ui/logout", "", &with_cookie).await;
    assert_eq!(see_other(&out), "/__admin/ui/login");
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
}

/// The token as a form field: `;` and `=` encoded.
fn form_urlencoded_token() -> String {
    ADMIN_TOKEN.replace(';', "%3B").replace('=', "%3D")
}

#[tokio::test]
async fn with_an_admin_listener_the_console_and_its_inbox_live_there() {
    let mut config = quick_config();
    config.admin_bind = Some("127.0.0.1:0".parse().unwrap());
    let server = serve_with(config).await;
    let admin = server.app().config().admin_bind.expect("the admin address");
    let admin_url = format!("http://{admin}");
    // Not on the provider port: there /__admin/ is the provider's 404.
    server
        .send(Method::GET, "/__admin/ui/", &[], "")
        .await
        .assert_provider_error(404);
    let form = "scenario=success&toInbox=1&autoComplete=off";
    let created = common::send_url(
        Method::POST,
        &format!("{admin_url}/__admin/ui/journeys"),
        &[("content-type", FORM)],
        form,
    )
    .await;
    let id = journey_of(&see_other(&created));
    let view = journey_view_at(&admin_url, &id).await;
    assert_eq!(
        view["processingConfig"]["callbackUrl"],
        format!("{admin_url}/__admin/inbox/console")
    );
    common::send_url(
        Method::POST,
        &format!("{admin_url}/__admin/journeys/{id}/complete"),
        &[],
        "",
    )
    .await;
    eventually("the callback in the admin listener's inbox", || async {
        let listed = common::send_url(
            Method::GET,
            &format!("{admin_url}/__admin/inbox/console"),
            &[],
            "",
        )
        .await
        .json();
        (listed["count"] == 1).then_some(())
    })
    .await;
    server.shutdown().await;
}

async fn journey_view_at(admin_url: &str, id: &str) -> serde_json::Value {
    let reply = common::send_url(
        Method::GET,
        &format!("{admin_url}/__admin/journeys/{id}"),
        &[],
        "",
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()
}
