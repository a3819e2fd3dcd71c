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
