//! What a client sees of its connection: HTTP/2 with prior knowledge beside HTTP/1.1, the
//! header read timeout (a stalled head, an idle kept-alive connection, a request held longer
//! than the timeout), and shutdown with connections open. Raw sockets where the point is what
//! arrives on the wire.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::Bytes;
use common::{get_journey, serve, serve_with, TOKEN};
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use otk_mock::config::Config;
use pretty_assertions::assert_eq;

const GET_X1: &[u8] = b"POST /api/v3/otk-service/get-journey/X1 HTTP/1.1\r\nHost: x\r\nAuthorization: t\r\ncontent-length: 0\r\n\r\n";

/// Read until the server closes the connection (or the guard, which fails the test).
fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    // A generous guard so a broken timeout fails the test instead of hanging it.
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut buf = Vec::new();
    stream
        .read_to_end(&mut buf)
        .expect("the server closes the connection before the guard");
    buf
}

/// Send `first` on a new connection, then read all the server says until it closes.
async fn exchange(addr: SocketAddr, first: &'static [u8]) -> String {
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.write_all(first).unwrap();
        String::from_utf8_lossy(&read_until_closed(&mut stream)).into_owned()
    })
    .await
    .unwrap()
}

fn short_timeout() -> Config {
    Config {
        header_read_timeout: Duration::from_millis(200),
        ..Config::ephemeral()
    }
}

#[tokio::test]
async fn http2_with_prior_knowledge_gets_the_same_journey_as_http1() {
    let server = serve().await;
    let http1 = get_journey(&server, "success-h2", &[]).await;
    assert_eq!(http1.status, 200);

    let stream = tokio::net::TcpStream::connect(server.address())
        .await
        .unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("an HTTP/2 handshake");
    let driver = tokio::spawn(connection);
    for _ in 0..2 {
        let request = Request::post(format!(
            "{}/api/v3/otk-service/get-journey/success-h2",
            server.uri()
        ))
        .header("authorization", TOKEN)
        .body(Empty::<Bytes>::new())
        .unwrap();
        let response = sender.send_request(request).await.expect("an answer");
        assert_eq!(response.version(), hyper::Version::HTTP_2);
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, http1.body);
    }
    drop(sender);
    let _ = driver.await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_head_that_stalls_gets_a_408_and_the_connection_closes() {
    let server = serve_with(short_timeout()).await;
    let reply = exchange(
        server.address(),
        b"POST /api/v3/otk-service/get-journey/X1 HTTP/1.1\r\nHost: x\r\n",
    )
    .await;
    assert!(
        reply.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "unexpected reply: {reply}"
    );
    assert!(reply.contains("connection: close"), "{reply}");
    let error = error_of(&reply);
    assert_eq!(error["reason"], "REQUEST_TIMEOUT", "{reply}");
    assert_eq!(error["message"], "The request head did not arrive in time");
    server.shutdown().await;
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_without_a_word() {
    let server = serve_with(short_timeout()).await;
    let reply = exchange(server.address(), GET_X1).await;
    // The one answer, whole, and nothing after it: an idle connection just closes.
    let head_end = reply.find("\r\n\r\n").expect("a response head") + 4;
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    let length: usize = reply
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .expect("a content-length")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(reply.len(), head_end + length, "nothing after the answer");
    server.shutdown().await;
}

#[tokio::test]
async fn a_request_held_longer_than_the_timeout_is_answered() {
    let server = serve_with(short_timeout()).await;
    // Held for three timeouts: the connection is busy, not idle, and must not be cut.
    let reply = exchange(
        server.address(),
        b"POST /api/v3/otk-service/get-journey/X1 HTTP/1.1\r\nHost: x\r\nAuthorization: t\r\nX-Mock-Fault: delay:600ms\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert!(reply.contains("x-mock-fault: delay:600ms"), "{reply}");
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_idle_connections_without_waiting_for_the_grace_period() {
    let server = serve_with(Config {
        // Were idle connections waited for, the guard below would fail first.
        shutdown_grace: Duration::from_secs(600),
        ..Config::ephemeral()
    })
    .await;
    let addr = server.address();
    let (opened, open) = tokio::sync::oneshot::channel();
    let client = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.write_all(GET_X1).unwrap();
        let mut first = [0u8; 12];
        stream.read_exact(&mut first).unwrap();
        opened.send(()).unwrap();
        // Then idle: what follows is the rest of the answer and the close.
        read_until_closed(&mut stream);
        first
    });
    open.await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), server.shutdown())
        .await
        .expect("shutdown does not wait on an idle connection");
    assert_eq!(&client.await.unwrap(), b"HTTP/1.1 200");
}

/// The provider's error envelope at the end of a raw HTTP/1.1 reply: its `error` object.
fn error_of(reply: &str) -> serde_json::Value {
    let body = &reply[reply.find("\r\n\r\n").expect("a response head") + 4..];
    let value: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("not a JSON body ({e}): {reply}"));
    value["error"].clone()
}

const STALLED_BODY: &[u8] = b"POST /api/v3/otk-service/get-journey/X1 HTTP/1.1\r\nHost: x\r\nAuthorization: t\r\nContent-Length: 1000\r\n\r\n{";

#[tokio::test]
async fn a_body_that_stalls_gets_a_408_in_the_provider_format_and_the_connection_closes() {
    let server = serve_with(Config {
        body_read_timeout: Duration::from_millis(200),
        ..Config::ephemeral()
    })
    .await;
    let reply = exchange(server.address(), STALLED_BODY).await;
    assert!(
        reply.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{reply}"
    );
    assert!(reply.contains("connection: close\r\n"), "{reply}");
    assert!(
        reply.contains("content-type: application/json; charset=utf-8\r\n"),
        "{reply}"
    );
    let error = error_of(&reply);
    assert_eq!(error["reason"], "REQUEST_TIMEOUT", "{reply}");
    assert_eq!(error["statusCode"], 408, "{reply}");
    assert_eq!(
        error["message"], "The request body did not arrive within 200ms of its head",
        "{reply}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_request_timeout_shorter_than_the_body_timeout_bounds_the_body_too() {
    let server = serve_with(Config {
        request_timeout: Duration::from_millis(200),
        ..Config::ephemeral()
    })
    .await;
    let reply = exchange(server.address(), STALLED_BODY).await;
    assert!(
        reply.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{reply}"
    );
    assert_eq!(
        error_of(&reply)["message"],
        "The request did not arrive in full within 200ms of its head",
        "{reply}"
    );
    server.shutdown().await;
}

/// A request body that never sends anything: on HTTP/2, a stream left half open.
struct Stalled;

impl hyper::body::Body for Stalled {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Pending
    }
}

/// An HTTP/2 connection with prior knowledge to `server`, its driver spawned.
async fn http2<B>(server: &common::Mock) -> hyper::client::conn::http2::SendRequest<B>
where
    B: hyper::body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = tokio::net::TcpStream::connect(server.address())
        .await
        .unwrap();
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("an HTTP/2 handshake");
    tokio::spawn(connection);
    sender
}

#[tokio::test]
async fn a_half_open_http2_stream_gets_a_408_and_the_connection_serves_on() {
    let server = serve_with(Config {
        body_read_timeout: Duration::from_millis(200),
        ..Config::ephemeral()
    })
    .await;
    let mut sender = http2::<http_body_util::Either<Stalled, Empty<Bytes>>>(&server).await;
    let path = format!("{}/api/v3/otk-service/get-journey/X1", server.uri());
    let stalled = Request::post(&path)
        .header("authorization", TOKEN)
        .body(http_body_util::Either::Left(Stalled))
        .unwrap();
    let response = sender.send_request(stalled).await.expect("an answer");
    assert_eq!(response.status(), 408);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(value["error"]["reason"], "REQUEST_TIMEOUT");
    // Only the stream was answered: the connection still serves.
    let next = Request::post(&path)
        .header("authorization", TOKEN)
        .body(http_body_util::Either::Right(Empty::new()))
        .unwrap();
    let response = sender.send_request(next).await.expect("an answer");
    assert_eq!(response.status(), 200);
    server.shutdown().await;
}

/// `curl --http2-prior-knowledge` posting `size` bytes to `url` at 8 KB/s (so that the server
/// answers from the head, before the body has ended): its exit status, and what it showed.
async fn curl_http2(url: &str, size: usize) -> (std::process::ExitStatus, String) {
    let mut child = tokio::process::Command::new("curl")
        .args([
            "--silent",
            "--show-error",
            "--http2-prior-knowledge",
            "--header",
            "Authorization: t",
            "--header",
            "Content-Type: application/json",
            "--limit-rate",
            "8k",
            "--data-binary",
            "@-",
            "--write-out",
            "\n%{http_code}",
            url,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("curl runs");
    let mut stdin = child.stdin.take().expect("stdin");
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let _ = stdin.write_all(&vec![b' '; size]).await;
    });
    let output = child.wait_with_output().await.expect("curl ends");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status, text)
}

#[tokio::test]
async fn an_http2_body_over_the_limit_is_a_413_that_curl_shows() {
    let server = serve_with(Config {
        max_body_bytes: 1000,
        ..Config::ephemeral()
    })
    .await;
    for (route, code, reason) in [
        // Over the limit by its content-length, so known from the head, the body still arriving.
        ("get-journey/X1", "413", "PAYLOAD_TOO_LARGE"),
        ("create-journey-url", "413", "PAYLOAD_TOO_LARGE"),
        // Any answer found from the head waits for the body the same way.
        ("no-such-route", "404", "NOT_FOUND"),
    ] {
        let url = format!("{}/api/v3/otk-service/{route}", server.uri());
        let (status, text) = curl_http2(&url, 5000).await;
        assert!(status.success(), "{route}: curl failed: {text}");
        let (body, shown) = text.rsplit_once('\n').expect("the write-out line");
        assert_eq!(shown, code, "{route}: {text}");
        let value: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
        assert_eq!(value["error"]["reason"], reason, "{route}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_request_timeout_shorter_than_the_header_timeout_bounds_the_head() {
    let server = serve_with(Config {
        request_timeout: Duration::from_millis(200),
        // Longer than the guard in `read_until_closed`: only the request timeout can end it.
        header_read_timeout: Duration::from_secs(600),
        ..Config::ephemeral()
    })
    .await;
    let reply = exchange(
        server.address(),
        b"POST /api/v3/otk-service/get-journey/X1 HTTP/1.1\r\nHost: x\r\n",
    )
    .await;
    assert!(
        reply.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "unexpected reply: {reply}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn an_injected_delay_does_not_count_against_the_request_timeout() {
    let server = serve_with(Config {
        request_timeout: Duration::from_millis(200),
        ..Config::ephemeral()
    })
    .await;
    let reply = exchange(
        server.address(),
        b"POST /api/v3/otk-service/get-journey/X1 HTTP/1.1\r\nHost: x\r\nAuthorization: t\r\nX-Mock-Fault: delay:800ms\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    server.shutdown().await;
}

#[tokio::test]
async fn an_answer_the_client_never_takes_ends_with_the_request_timeout() {
    let server = serve_with(Config {
        request_timeout: Duration::from_millis(200),
        ..Config::ephemeral()
    })
    .await;
    // An HTTP/2 client that never opens its stream window: the answer cannot be sent.
    let stream = tokio::net::TcpStream::connect(server.address())
        .await
        .unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(0)
        .handshake(TokioIo::new(stream))
        .await
        .expect("an HTTP/2 handshake");
    let driver = tokio::spawn(connection);
    let request = Request::post(format!(
        "{}/api/v3/otk-service/get-journey/X1",
        server.uri()
    ))
    .header("authorization", TOKEN)
    .body(Empty::<Bytes>::new())
    .unwrap();
    let response = sender.send_request(request).await.expect("a head");
    assert_eq!(response.status(), 200);
    let body = tokio::time::timeout(Duration::from_secs(30), response.into_body().collect())
        .await
        .expect("the server ends the connection before the guard");
    assert!(body.is_err(), "the body cannot have arrived");
    let _ = driver.await;
    server.shutdown().await;
}

/// One request on `stream` (kept alive): the whole reply, or `None` when the server closed or
/// reset the connection without answering.
fn one_request(stream: &mut TcpStream, request: &[u8]) -> Option<String> {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request).ok()?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        reply.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&reply);
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length: usize = text[..head_end]
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))?
                .trim()
                .parse()
                .ok()?;
            if reply.len() >= head_end + 4 + length {
                return Some(text.into_owned());
            }
        }
    }
}

#[tokio::test]
async fn connections_past_the_cap_are_closed_at_once_and_counted() {
    let server = serve_with(Config {
        max_connections: Some(2),
        ..Config::ephemeral()
    })
    .await;
    let addr = server.address();
    let text = tokio::task::spawn_blocking(move || {
        let ok = |reply: Option<String>| reply.is_some_and(|r| r.starts_with("HTTP/1.1 200 OK"));
        // Two connections, each served once and kept open.
        let mut first = TcpStream::connect(addr).unwrap();
        let mut second = TcpStream::connect(addr).unwrap();
        assert!(ok(one_request(&mut first, GET_X1)));
        assert!(ok(one_request(&mut second, GET_X1)));
        // A third is closed without an answer.
        let mut third = TcpStream::connect(addr).unwrap();
        assert_eq!(one_request(&mut third, GET_X1), None);
        // Once one closes, a new connection is served (the server notices the close soon;
        // until then, each try is refused and counted).
        drop(first);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut fourth = loop {
            let mut stream = TcpStream::connect(addr).unwrap();
            if ok(one_request(&mut stream, GET_X1)) {
                break stream;
            }
            assert!(std::time::Instant::now() < deadline, "no connection served");
            std::thread::sleep(Duration::from_millis(20));
        };
        one_request(
            &mut fourth,
            b"GET /__admin/metrics HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        .expect("the metrics")
    })
    .await
    .unwrap();
    let value = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    };
    assert!(value("otk_mock_connections_refused_total") >= 1);
    assert_eq!(value("otk_mock_connections_max"), 2);
    assert_eq!(value("otk_mock_connections_open"), 2);
    assert_eq!(value("otk_mock_accept_errors_total"), 0);
    server.shutdown().await;
}
