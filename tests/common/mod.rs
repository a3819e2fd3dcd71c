//! What every integration test needs: a server on 127.0.0.1:0 and a plain HTTP client.
#![allow(dead_code)] // each test binary uses its own part of this module

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderMap;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use otk_mock::catalogue::Catalogue;
use otk_mock::config::Config;
use otk_mock::server::RunningServer;
use serde_json::Value;

/// The token tests send; any non-empty token is accepted unless the config restricts them.
pub const TOKEN: &str = "test-token";

/// Start a server with `config` (its bind is forced to port 0) and its catalogue.
pub async fn start_with(mut config: Config) -> RunningServer {
    config.bind = "127.0.0.1:0".parse().unwrap();
    let catalogue = Catalogue::load(&config.source, config.seed).expect("catalogue loads");
    otk_mock::server::start(config, catalogue)
        .await
        .expect("server binds")
}

/// Start a server with the bundled catalogue and default settings.
pub async fn start() -> RunningServer {
    start_with(Config::ephemeral()).await
}

/// What a client saw.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `result` of a get-journey body.
    pub fn result(&self) -> Value {
        assert_eq!(self.status, StatusCode::OK, "body: {}", self.text());
        self.json()["result"].clone()
    }

    /// Assert this is an error in the provider's format with `status`, and return its message.
    pub fn assert_provider_error(&self, status: u16) -> String {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text());
        assert_eq!(
            self.header("content-type"),
            Some("application/json; charset=utf-8")
        );
        let v = self.json();
        let e = &v["error"];
        assert_eq!(e["name"], "error", "{v}");
        assert_eq!(e["statusCode"], status, "{v}");
        assert_eq!(
            e["type"],
            StatusCode::from_u16(status)
                .unwrap()
                .canonical_reason()
                .unwrap(),
            "{v}"
        );
        assert!(e["reason"].as_str().is_some_and(|r| !r.is_empty()), "{v}");
        e["message"]
            .as_str()
            .expect("message is a string")
            .to_string()
    }
}

/// Send one request and read the whole reply.
pub async fn send(method: Method, url: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut builder = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("request builds");
    let response = client.request(request).await.expect("request is answered");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body reads")
        .to_bytes();
    Reply {
        status,
        headers,
        body,
    }
}

/// The documented get-journey call: POST, raw token, JSON content type, empty body.
pub async fn get_journey(server: &RunningServer, id: &str, extra: &[(&str, &str)]) -> Reply {
    let url = format!("{}/api/v3/otk-service/get-journey/{id}", server.base_url());
    let mut headers = vec![
        ("authorization", TOKEN),
        ("content-type", "application/json"),
    ];
    headers.extend_from_slice(extra);
    send(Method::POST, &url, &headers, "").await
}
