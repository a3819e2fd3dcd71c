//! The outbound HTTP client: callbacks to an app's `callbackUrl` and `record`'s fetches from
//! the real provider.
//!
//! http and https (rustls with the ring provider and Mozilla's roots, so it needs no system
//! certificate store and builds without cmake). Redirects are never followed: a 3xx is an
//! answer like any other. Every failure is classified into an [`OutboundErrorKind`] so that
//! logs and the callback log say *what* went wrong (timeout, refused, reset...), not just that
//! something did.
//!
//! An answer's body is read only up to a limit (8 KiB by default: a callback receiver's
//! answer is only logged): past it the client stops reading, keeps the status and what it
//! read, marks the answer as cut and logs it; the connection, left mid-body, is not reused.
//! A receiver answering 1 GB costs 8 KiB and a frame, not the gigabyte.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;

/// How an outbound request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboundErrorKind {
    /// No complete answer within the timeout.
    Timeout,
    /// Nothing listens there (connection refused).
    Refused,
    /// The peer reset or closed the connection before answering.
    Reset,
    /// The host name did not resolve.
    Dns,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
    /// The URL cannot be requested (not http or https, no host...).
    InvalidUrl,
    /// Anything else.
    Other,
}

impl OutboundErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboundErrorKind::Timeout => "timeout",
            OutboundErrorKind::Refused => "refused",
            OutboundErrorKind::Reset => "reset",
            OutboundErrorKind::Dns => "dns",
            OutboundErrorKind::Tls => "tls",
            OutboundErrorKind::InvalidUrl => "invalid_url",
            OutboundErrorKind::Other => "other",
        }
    }
}

/// A failed outbound request: its kind, and the detail for logs.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {detail}", kind.as_str())]
pub struct OutboundError {
    pub kind: OutboundErrorKind,
    pub detail: String,
}

impl OutboundError {
    fn new(kind: OutboundErrorKind, detail: impl Into<String>) -> Self {
        OutboundError {
            kind,
            detail: detail.into(),
        }
    }
}

/// What the peer answered.
#[derive(Debug, Clone)]
pub struct OutboundResponse {
    pub status: StatusCode,
    /// The answer's headers (a callback receiver's `Retry-After`).
    pub headers: hyper::HeaderMap,
    /// The body, or its first bytes up to the client's limit when it was longer.
    pub body: Bytes,
    /// Whether the body was longer than the limit, and so was cut (and not read to its end).
    pub cut: bool,
}

/// How much of an answer's body [`OutboundClient::new`] reads.
pub const DEFAULT_ANSWER_LIMIT: usize = 8 * 1024;

/// A shared, cloneable client (connections are pooled per host).
#[derive(Clone)]
pub struct OutboundClient {
    inner: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    answer_limit: usize,
}

impl std::fmt::Debug for OutboundClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OutboundClient")
    }
}

impl OutboundClient {
    /// A client for http and https URLs.
    pub fn new() -> Result<Self, OutboundError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        http.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| OutboundError::new(OutboundErrorKind::Tls, e.to_string()))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let inner = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(OutboundClient {
            inner,
            answer_limit: DEFAULT_ANSWER_LIMIT,
        })
    }

    /// The same client, reading at most `bytes` of an answer's body.
    pub fn with_answer_limit(mut self, bytes: usize) -> Self {
        self.answer_limit = bytes;
        self
    }

    /// Send one request and read its answer (the body up to the client's limit),
    /// all within `timeout`.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
        timeout: Duration,
    ) -> Result<OutboundResponse, OutboundError> {
        let uri: Uri = url.parse().map_err(|e| {
            OutboundError::new(OutboundErrorKind::InvalidUrl, format!("{url:?}: {e}"))
        })?;
        match uri.scheme_str() {
            Some("http") | Some("https") if uri.host().is_some() => {}
            _ => {
                return Err(OutboundError::new(
                    OutboundErrorKind::InvalidUrl,
                    format!("{url:?} is not an http or https URL with a host"),
                ))
            }
        }
        let mut request = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let request = request
            .body(Full::new(body))
            .map_err(|e| OutboundError::new(OutboundErrorKind::InvalidUrl, e.to_string()))?;
        let exchange = async {
            let response = self.inner.request(request).await.map_err(classify)?;
            let (parts, body) = response.into_parts();
            let (body, cut) = read_at_most(body, self.answer_limit).await?;
            Ok::<_, OutboundError>((parts, body, cut))
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok((parts, body, cut))) => {
                if cut {
                    tracing::info!(
                        url,
                        status = parts.status.as_u16(),
                        limit = self.answer_limit,
                        "the answer's body was cut: only its first {} bytes were read",
                        self.answer_limit
                    );
                }
                Ok(OutboundResponse {
                    status: parts.status,
                    headers: parts.headers,
                    body,
                    cut,
                })
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(OutboundError::new(
                OutboundErrorKind::Timeout,
                format!("no complete answer within {timeout:?}"),
            )),
        }
    }
}

/// Up to `limit` bytes of `body`, and whether there was more; reading stops at the limit.
async fn read_at_most(
    mut body: hyper::body::Incoming,
    limit: usize,
) -> Result<(Bytes, bool), OutboundError> {
    let mut kept = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| classify_hyper(&e))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        let room = limit - kept.len();
        if data.len() > room {
            kept.extend_from_slice(&data[..room]);
            return Ok((kept.freeze(), true));
        }
        kept.extend_from_slice(&data);
    }
    Ok((kept.freeze(), false))
}

/// Walk an error's sources to the I/O error that says what happened.
fn classify(error: hyper_util::client::legacy::Error) -> OutboundError {
    let detail = chain(&error);
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(kind) = io_kind(io) {
                return OutboundError::new(kind, detail);
            }
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            return classify_hyper(h);
        }
        source = e.source();
    }
    let lower = detail.to_lowercase();
    let kind = if lower.contains("dns") || lower.contains("resolve") {
        OutboundErrorKind::Dns
    } else if lower.contains("certificate") || lower.contains("tls") {
        OutboundErrorKind::Tls
    } else if error.is_connect() {
        OutboundErrorKind::Refused
    } else {
        OutboundErrorKind::Other
    };
    OutboundError::new(kind, detail)
}

fn classify_hyper(error: &hyper::Error) -> OutboundError {
    let detail = chain(error);
    let kind = if error.is_incomplete_message() || error.is_canceled() || error.is_closed() {
        OutboundErrorKind::Reset
    } else if error.is_timeout() {
        OutboundErrorKind::Timeout
    } else {
        let mut source = std::error::Error::source(error);
        let mut kind = OutboundErrorKind::Other;
        while let Some(e) = source {
            if let Some(k) = e.downcast_ref::<std::io::Error>().and_then(io_kind) {
                kind = k;
                break;
            }
            source = e.source();
        }
        kind
    };
    OutboundError::new(kind, detail)
}

fn io_kind(io: &std::io::Error) -> Option<OutboundErrorKind> {
    use std::io::ErrorKind as K;
    match io.kind() {
        K::ConnectionRefused => Some(OutboundErrorKind::Refused),
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
            Some(OutboundErrorKind::Reset)
        }
        K::TimedOut => Some(OutboundErrorKind::Timeout),
        K::InvalidData => Some(OutboundErrorKind::Tls),
        _ => None,
    }
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refused_and_invalid_urls_are_classified() {
        let client = OutboundClient::new().unwrap();
        // Bind then drop a listener so the port is (almost certainly) closed.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let err = client
            .send(
                Method::POST,
                &format!("http://127.0.0.1:{port}/cb"),
                &[],
                Bytes::new(),
                Duration::from_secs(5),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind, OutboundErrorKind::Refused, "{err}");

        let err = client
            .send(
                Method::POST,
                "ftp://x/y",
                &[],
                Bytes::new(),
                Duration::from_secs(1),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind, OutboundErrorKind::InvalidUrl);
    }

    /// A server on loopback that answers every request with `status` and a body of `len`
    /// bytes, written as fast as the client takes them.
    async fn answering(status: u16, len: usize) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/cb", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut head = [0u8; 4096];
                    let _ = socket.read(&mut head).await;
                    let reply = format!("HTTP/1.1 {status} X\r\nContent-Length: {len}\r\n\r\n");
                    socket.write_all(reply.as_bytes()).await?;
                    let chunk = vec![b'x'; 64 * 1024];
                    let mut left = len;
                    while left > 0 {
                        let n = left.min(chunk.len());
                        socket.write_all(&chunk[..n]).await?;
                        left -= n;
                    }
                    Ok::<_, std::io::Error>(())
                });
            }
        });
        url
    }

    /// An empty POST to `url`, answered.
    async fn post(client: &OutboundClient, url: &str) -> OutboundResponse {
        client
            .send(
                Method::POST,
                url,
                &[],
                Bytes::new(),
                Duration::from_secs(30),
            )
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_long_answer_is_cut_at_the_limit_and_keeps_its_status() {
        let client = OutboundClient::new().unwrap();
        // 1 GB announced; the client reads 8 KiB and a frame, then stops.
        let url = answering(503, 1 << 30).await;
        let answer = post(&client, &url).await;
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(answer.cut);
        assert_eq!(answer.body.len(), DEFAULT_ANSWER_LIMIT);

        let url = answering(200, 100).await;
        let answer = post(&client, &url).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert!(!answer.cut);
        assert_eq!(answer.body.len(), 100);
        let small = client.with_answer_limit(10);
        let answer = post(&small, &url).await;
        assert_eq!((answer.body.len(), answer.cut), (10, true));
    }
}
