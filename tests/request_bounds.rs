//! The bounds on what one request may be, each answered in the provider's error format: a
//! journey id over `--max-journey-id` (414), a request target over 8 KiB (414), a create call
//! whose body is not JSON by its `Content-Type` (415), and what hyper itself refuses (a
//! malformed request line, too many headers, a URI over 64 KiB). In process, except what
//! hyper answers, which only a socket reaches.

mod common;

use common::{get_journey, start, start_with, TOKEN};
use hyper::Method;
use otk_mock::config::Config;
use otk_mock::Filter;
use pretty_assertions::assert_eq;

#[tokio::test]
async fn a_journey_id_over_the_limit_gets_a_414_and_is_not_kept() {
    let server = start().await;
    let longest = "success-".to_string() + &"x".repeat(256 - 8);
    assert_eq!(get_journey(&server, &longest, &[]).await.status, 200);
    let too_long = longest.clone() + "x";
    let reply = get_journey(&server, &too_long, &[]).await;
    let message = reply.assert_provider_error(414);
    assert_eq!(message, "Journey id is longer than the limit of 256 bytes");
    assert_eq!(reply.json()["error"]["reason"], "URI_TOO_LONG");
    // Recorded as a get-journey that was refused, without the id.
    let recorded = server.requests(Filter::all()).await;
    let last = recorded.last().expect("the 414 is recorded");
    assert_eq!((last.route, last.status), ("get-journey", Some(414)));
    assert_eq!(last.journey_id, None);
    assert_eq!(
        server.app().cache().len(),
        1,
        "only the accepted id was rendered"
    );
}

#[tokio::test]
async fn the_journey_id_limit_is_a_flag_and_comes_before_the_token_check() {
    let server = start_with(Config {
        max_journey_id: 10,
        ..Config::ephemeral()
    })
    .await;
    let path = "/api/v3/otk-service/get-journey/Q7K2M9X4ZA1";
    let reply = server.send(Method::POST, path, &[], "").await;
    assert_eq!(
        reply.assert_provider_error(414),
        "Journey id is longer than the limit of 10 bytes"
    );
    let reply = server
        .send(Method::POST, &path[..path.len() - 1], &[], "")
        .await;
    reply.assert_provider_error(401);
}

#[tokio::test]
async fn admin_routes_refuse_journey_ids_over_the_limit() {
    let server = start().await;
    let id = "j".repeat(257);
    for (method, path, body) in [
        (
            Method::PUT,
            format!("/__admin/journeys/{id}"),
            r#"{"scenario":"success"}"#,
        ),
        (Method::GET, format!("/__admin/journeys/{id}"), ""),
        (Method::POST, format!("/__admin/journeys/{id}/complete"), ""),
        (
            Method::PUT,
            format!("/__admin/journeys/{id}/callback-fault"),
            r#"{"fault":"drop"}"#,
        ),
        (
            Method::POST,
            format!("/__admin/callbacks/{id}/redeliver"),
            "",
        ),
    ] {
        let reply = server.send(method.clone(), &path, &[], body).await;
        assert_eq!(
            reply.assert_provider_error(414),
            "Journey id is longer than the limit of 256 bytes",
            "{method} {path}"
        );
    }
    assert!(server.journeys().await.is_empty(), "no journey was created");
    // At the limit, the admin API answers as always.
    let id = "j".repeat(256);
    let reply = server
        .send(Method::GET, &format!("/__admin/journeys/{id}"), &[], "")
        .await;
    reply.assert_provider_error(404);
}

#[tokio::test]
async fn a_request_target_over_8_kib_gets_a_414_and_is_not_recorded() {
    let server = start().await;
    for path in [
        format!("/api/v3/otk-service/{}", "p".repeat(8 * 1024)),
        format!(
            "/api/v3/otk-service/get-journey/X1?q={}",
            "q".repeat(8 * 1024)
        ),
        format!("/__admin/health?{}", "q".repeat(8 * 1024)),
    ] {
        let reply = server
            .send(Method::POST, &path, &[("authorization", TOKEN)], "")
            .await;
        assert_eq!(
            reply.assert_provider_error(414),
            "Request target is longer than the limit of 8192 bytes"
        );
    }
    assert!(server.requests(Filter::all()).await.is_empty());
}

const CREATE: &str = "/api/v3/otk-service/create-journey-url";

#[tokio::test]
async fn a_create_call_whose_body_is_not_json_by_its_content_type_gets_a_415() {
    let server = start().await;
    let body = r#"{"flowId":"f"}"#;
    for (content_type, expected) in [
        (Some("text/plain"), "Content-Type must be application/json"),
        // What `curl -d` sends unless told otherwise.
        (
            Some("application/x-www-form-urlencoded"),
            "Content-Type must be application/json",
        ),
        (
            None,
            "Content-Type is missing; send the body as application/json",
        ),
    ] {
        let mut headers = vec![("authorization", TOKEN)];
        headers.extend(content_type.map(|t| ("content-type", t)));
        let reply = server.send(Method::POST, CREATE, &headers, body).await;
        assert_eq!(
            reply.assert_provider_error(415),
            expected,
            "{content_type:?}"
        );
        assert_eq!(reply.json()["error"]["reason"], "UNSUPPORTED_MEDIA_TYPE");
    }
    assert!(server.journeys().await.is_empty(), "nothing was created");
    for json in [
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/vnd.otk+json",
    ] {
        let headers = [("authorization", TOKEN), ("content-type", json)];
        let reply = server.send(Method::POST, CREATE, &headers, body).await;
        assert_eq!(reply.status, 200, "{json}: {}", reply.text());
    }
}

#[tokio::test]
async fn the_token_is_checked_before_the_content_type() {
    let server = start().await;
    let headers = [("content-type", "text/plain")];
    let reply = server.send(Method::POST, CREATE, &headers, "{}").await;
    reply.assert_provider_error(401);
}

/// Send `request` on a new connection to a real server and read until it closes.
async fn raw_exchange(request: Vec<u8>) -> String {
    let server = common::serve().await;
    let addr = server.address();
    let reply = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        stream.write_all(&request).unwrap();
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).expect("the server closes");
        String::from_utf8_lossy(&reply).into_owned()
    })
    .await
    .unwrap();
    server.shutdown().await;
    reply
}

/// The reason and message of the provider error at the end of a raw reply.
fn error_of(reply: &str) -> (String, String) {
    let (head, body) = reply.split_once("\r\n\r\n").expect("a whole head");
    assert!(
        head.contains("\r\ncontent-type: application/json; charset=utf-8\r\n"),
        "{reply}"
    );
    assert!(head.contains("\r\nconnection: close\r\n"), "{reply}");
    let value: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
    let error = &value["error"];
    (
        error["reason"].as_str().unwrap().to_string(),
        error["message"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn a_malformed_request_line_gets_a_400_in_the_provider_format() {
    for request in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET /x HTTP/1.1\r\nbad header\r\n\r\n",
    ] {
        let reply = raw_exchange(request.to_vec()).await;
        assert!(reply.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{reply}");
        let (reason, _) = error_of(&reply);
        assert_eq!(reason, "BAD_REQUEST");
    }
}

#[tokio::test]
async fn more_headers_than_hyper_reads_get_a_431_in_the_provider_format() {
    let mut request = b"POST /api/v3/otk-service/get-journey/X1 HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..101 {
        request.extend_from_slice(format!("x-extra-{i}: v\r\n").as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    let reply = raw_exchange(request).await;
    assert!(
        reply.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{reply}"
    );
    assert_eq!(error_of(&reply).0, "REQUEST_HEADER_FIELDS_TOO_LARGE");
}

#[tokio::test]
async fn a_uri_longer_than_hyper_reads_gets_a_414_in_the_provider_format() {
    let request = format!(
        "GET /api/v3/otk-service/get-journey/{} HTTP/1.1\r\nHost: x\r\n\r\n",
        "x".repeat(70_000)
    );
    let reply = raw_exchange(request.into_bytes()).await;
    assert!(
        reply.starts_with("HTTP/1.1 414 URI Too Long\r\n"),
        "{reply}"
    );
    assert_eq!(error_of(&reply).0, "URI_TOO_LONG");
}
