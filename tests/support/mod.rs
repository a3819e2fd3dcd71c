//! What the journey and callback tests share: create and admin calls (in process or over a
//! socket, as the test's [`Mock`] is), a callback receiver on loopback, and waiting for an event with a generous deadline (polling, never a fixed sleep
//! as the assertion).
#![allow(dead_code)] // each test binary uses its own part of this module

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use otk_mock::config::Config;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::common::{Mock, Reply, TOKEN};

/// How long any wait may take before the test fails: generous, for a loaded CI machine.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A config for tests: no auto-completion (each test completes journeys itself) and quick
/// callbacks (short timeout and backoff, few attempts).
pub fn quick_config() -> Config {
    let mut config = Config::ephemeral();
    config.auto_complete_after = None;
    config.callbacks.timeout = Duration::from_millis(500);
    config.callbacks.backoff_initial = Duration::from_millis(20);
    config.callbacks.backoff_max = Duration::from_millis(80);
    config.callbacks.max_attempts = 3;
    config
}

/// Poll `check` until it gives a value, failing the test after [`DEADLINE`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// POST create-journey-url with `body` and extra headers.
pub async fn create(server: &Mock, body: &Value, extra: &[(&str, &str)]) -> Reply {
    create_raw(server, &body.to_string(), extra).await
}

pub async fn create_raw(server: &Mock, body: &str, extra: &[(&str, &str)]) -> Reply {
    let mut headers = vec![
        ("authorization", TOKEN),
        ("content-type", "application/json"),
    ];
    headers.extend_from_slice(extra);
    server
        .send(
            Method::POST,
            "/api/v3/otk-service/create-journey-url",
            &headers,
            body,
        )
        .await
}

/// Create a journey and return its id (asserting the create succeeded).
pub async fn create_id(server: &Mock, body: &Value, extra: &[(&str, &str)]) -> String {
    let reply = create(server, body, extra).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()["result"]["journeyId"]
        .as_str()
        .expect("journeyId")
        .to_string()
}

/// An admin call.
pub async fn admin(server: &Mock, method: Method, path: &str, body: &str) -> Reply {
    let path = format!("/__admin/{path}");
    server
        .send(method, &path, &[("content-type", "application/json")], body)
        .await
}

/// End a journey now with its bound scenario (`POST /__admin/journeys/{id}/complete`).
pub async fn complete(server: &Mock, id: &str) -> Reply {
    admin(server, Method::POST, &format!("journeys/{id}/complete"), "").await
}

/// The admin view of a journey.
pub async fn journey_view(server: &Mock, id: &str) -> Value {
    let reply = admin(server, Method::GET, &format!("journeys/{id}"), "").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()
}

/// Every page of an admin listing (`requests?journeyId=x`, `journeys`, `callbacks`), `limit`
/// at a time, following each page's `next` until it is null: the pages, in order. Each page
/// is checked to hold at most `limit` of every list in `lists` and to answer the documented
/// shape (`count` is the length of its first list).
pub async fn walk(server: &Mock, listing: &str, lists: &[&str], limit: usize) -> Vec<Value> {
    let join = if listing.contains('?') { '&' } else { '?' };
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("{listing}{join}limit={limit}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let reply = admin(server, Method::GET, &path, "").await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text());
        let page = reply.json();
        for list in lists {
            let n = page[*list].as_array().map_or(0, Vec::len);
            assert!(n <= limit, "{path}: {n} {list}");
        }
        if let Some(count) = page.get("count") {
            assert_eq!(
                count.as_u64(),
                Some(page[lists[0]].as_array().map_or(0, Vec::len) as u64)
            );
        }
        cursor = page["next"].as_str().map(str::to_string);
        assert!(cursor.is_some() || page["next"].is_null(), "{page}");
        pages.push(page);
        if cursor.is_none() {
            return pages;
        }
        assert!(pages.len() < 100_000, "{listing}: the pages never end");
    }
}

/// Every entry of `list` in an admin listing, read a page at a time.
pub async fn walk_all(server: &Mock, listing: &str, list: &str) -> Vec<Value> {
    walk(server, listing, &[list], 100)
        .await
        .into_iter()
        .flat_map(|page| page[list].as_array().cloned().unwrap_or_default())
        .collect()
}

/// The logged callback attempts for a journey (every page).
pub async fn attempts(server: &Mock, id: &str) -> Vec<Value> {
    walk_all(server, &format!("callbacks?journeyId={id}"), "attempts").await
}

/// A page request (no auth, as a browser sends it).
pub async fn page(server: &Mock, method: Method, id: &str, form: &str) -> Reply {
    let path = format!("/journey/{id}");
    let headers = [("content-type", "application/x-www-form-urlencoded")];
    server.send(method, &path, &headers, form).await
}

/// How a receiver answers.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    /// Every request with this status.
    Status(u16),
    /// The first `n` requests with `status`, the rest with 200.
    FailFirst(usize, u16),
    /// The first `n` requests with `status` and this `Retry-After`, the rest with 200.
    FailFirstRetryAfter(usize, u16, &'static str),
    /// Never: the request is read and the connection held open.
    Hang,
}

/// One request a receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("callback body is JSON")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A callback receiver on 127.0.0.1:0 that records every request.
pub struct Receiver {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    pub async fn start(answer: Answer) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/callback", listener.local_addr().expect("addr"));
        let received = Arc::new(Mutex::new(Vec::new()));
        let count = Arc::new(AtomicUsize::new(0));
        let log = received.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let log = log.clone();
                let count = count.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let log = log.clone();
                        let count = count.clone();
                        async move {
                            let (parts, body) = request.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            log.lock().unwrap().push(Received {
                                method: parts.method,
                                path: parts.uri.path().to_string(),
                                headers: parts.headers,
                                body,
                            });
                            let n = count.fetch_add(1, Ordering::SeqCst);
                            let mut retry_after = None;
                            let status = match answer {
                                Answer::Status(s) => s,
                                Answer::FailFirst(k, s) if n < k => s,
                                Answer::FailFirst(..) => 200,
                                Answer::FailFirstRetryAfter(k, s, after) if n < k => {
                                    retry_after = Some(after);
                                    s
                                }
                                Answer::FailFirstRetryAfter(..) => 200,
                                Answer::Hang => {
                                    std::future::pending::<()>().await;
                                    200
                                }
                            };
                            let mut response = Response::new(Full::new(Bytes::from_static(b"ok")));
                            *response.status_mut() = StatusCode::from_u16(status).unwrap();
                            if let Some(after) = retry_after {
                                response
                                    .headers_mut()
                                    .insert("retry-after", after.parse().unwrap());
                            }
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver {
            url,
            received,
            task,
        }
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Wait until at least `n` requests arrived; returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        eventually(&format!("{n} callback request(s)"), || async {
            let all = self.received();
            (all.len() >= n).then_some(all)
        })
        .await
    }
}

/// A URL on loopback where nothing listens (connection refused).
pub fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}/callback")
}
