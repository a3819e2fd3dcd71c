//! What every integration test needs: a mock to talk to, and what a client saw of its answer.
//!
//! A test picks its transport in one place: [`start`] makes the mock in process (a
//! [`MockApp`], answering through `oneshot`, no socket), [`serve`] starts a real server on
//! 127.0.0.1:0 (a [`MockServer`]) and talks HTTP to it. Everything after that —
//! [`Mock::send`], the helpers built on it, the verbs of the `MockApp` it derefs to — is the
//! same on both, so only the tests that are about the network pay for a socket.
#![allow(dead_code)] // each test binary uses its own part of this module

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderMap, CONTENT_LENGTH};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use otk_mock::config::Config;
use otk_mock::{MockApp, MockServer};
use serde_json::Value;

/// The token tests send; any non-empty token is accepted unless the config restricts them.
pub const TOKEN: &str = "test-token";

/// The mock a test talks to: in process, or behind a real socket.
pub enum Mock {
    /// Answered through [`MockApp::oneshot`], on the test's own runtime.
    InProcess(MockApp),
    /// A real server on 127.0.0.1 and a free port, spoken to over HTTP.
    Socket(MockServer),
}

/// The mock in process, with the bundled catalogue and default settings.
pub async fn start() -> Mock {
    start_with(Config::ephemeral()).await
}

/// The mock in process, with `config` (every setting the CLI has).
pub async fn start_with(config: Config) -> Mock {
    let app = MockServer::builder()
        .config(config)
        .in_process()
        .unwrap_or_else(|e| panic!("the mock does not start: {e}"));
    Mock::InProcess(app)
}

/// A real server on 127.0.0.1:0, with the bundled catalogue and default settings.
pub async fn serve() -> Mock {
    serve_with(Config::ephemeral()).await
}

/// A real server with `config`; its bind is forced to 127.0.0.1:0.
pub async fn serve_with(mut config: Config) -> Mock {
    config.bind = "127.0.0.1:0".parse().unwrap();
    let server = MockServer::builder()
        .config(config)
        .start()
        .await
        .unwrap_or_else(|e| panic!("the server does not start: {e}"));
    Mock::Socket(server)
}

impl std::ops::Deref for Mock {
    type Target = MockApp;

    fn deref(&self) -> &MockApp {
        match self {
            Mock::InProcess(app) => app,
            Mock::Socket(server) => server,
        }
    }
}

impl Mock {
    /// Send one request (`path_and_query` as `/api/...?...`) and read the whole reply: through
    /// `oneshot` in process, over HTTP/1.1 to a server.
    pub async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        match self {
            Mock::InProcess(app) => oneshot(app, method, path_and_query, headers, body).await,
            Mock::Socket(server) => {
                let url = format!("{}{path_and_query}", server.uri());
                send_url(method, &url, headers, body).await
            }
        }
    }

    /// `http://127.0.0.1:PORT` of a server.
    pub fn uri(&self) -> String {
        self.server().uri()
    }

    /// The address a server listens on.
    pub fn address(&self) -> SocketAddr {
        self.server().address()
    }

    /// Stop a server and wait until it has (open requests finish, callbacks due within the
    /// drain window are attempted). In process there is nothing to stop.
    pub async fn shutdown(self) {
        if let Mock::Socket(server) = self {
            server.shutdown().await;
        }
    }

    fn server(&self) -> &MockServer {
        match self {
            Mock::Socket(server) => server,
            Mock::InProcess(_) => panic!("this test needs a socket: start the mock with serve()"),
        }
    }
}

/// One request answered in process, built as an HTTP client would send it.
async fn oneshot(
    app: &MockApp,
    method: Method,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut builder = Request::builder().method(method).uri(path_and_query);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    // A client states the length of a body it has whole; the mock checks it against its limit.
    let stated = headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case(CONTENT_LENGTH.as_str()));
    if !body.is_empty() && !stated {
        builder = builder.header(CONTENT_LENGTH, body.len());
    }
    let request = builder
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("request builds");
    Reply::read(app.oneshot(request).await).await
}

/// What a client saw.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// What a client sees of `response`, whole.
    async fn read<B>(response: hyper::Response<B>) -> Reply
    where
        B: hyper::body::Body,
        B::Error: std::fmt::Debug,
    {
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

/// Send one request to a full URL over HTTP and read the whole reply (for servers that are
/// not a [`Mock`], such as the real binary).
pub async fn send_url(method: Method, url: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut builder = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("request builds");
    Reply::read(client.request(request).await.expect("request is answered")).await
}

/// The documented get-journey call: POST, raw token, JSON content type, empty body.
pub async fn get_journey(server: &Mock, id: &str, extra: &[(&str, &str)]) -> Reply {
    let path = format!("/api/v3/otk-service/get-journey/{id}");
    let mut headers = vec![
        ("authorization", TOKEN),
        ("content-type", "application/json"),
    ];
    headers.extend_from_slice(extra);
    server.send(Method::POST, &path, &headers, "").await
}

/// The real binary, with none of the developer's `OTK_MOCK_*` variables: what a test sees must
/// not depend on the shell it ran from.
pub fn binary() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_otk-mock"));
    for (key, _) in std::env::vars() {
        if key.starts_with("OTK_MOCK_") {
            cmd.env_remove(key);
        }
    }
    cmd
}
