//! The provider's JSON error format, built in exactly one place.
//!
//! Signzy's v3 APIs answer errors as
//! `{"error":{"name":"error","message":…,"reason":…,"type":…,"statusCode":N}}` (spec §7).
//! Every error the server produces, ours or the client's, goes through [`ApiError`] so that an
//! app under test sees one format whatever went wrong. Detail that only helps us (a source
//! chain, a path on disk) is logged by the caller and never put in the body.

use bytes::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde::Serialize;

use super::body::{full, Body};

/// The content type of every JSON body otk-mock sends, as the provider sends it.
pub const JSON_UTF8: &str = "application/json; charset=utf-8";
/// [`JSON_UTF8`] as a header value, checked once at compile time rather than per response.
pub const JSON_UTF8_VALUE: HeaderValue = HeaderValue::from_static(JSON_UTF8);

/// An error answered to the client in the provider's format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status; `type` and `statusCode` in the body follow it.
    pub status: StatusCode,
    /// The provider's reason code, upper snake case (`VALIDATION_ERROR`).
    pub reason: &'static str,
    /// Human text for the developer reading the response.
    pub message: String,
    /// Extra headers (`Allow` on a 405, `Retry-After` on a 429).
    pub headers: Vec<(&'static str, String)>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Inner<'a> {
    name: &'static str,
    message: &'a str,
    reason: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    status_code: u16,
}

impl ApiError {
    pub fn new(status: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            reason,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    /// 400: the request is malformed or names something that does not exist.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message)
    }

    /// 401: the `Authorization` header is missing or not an accepted token.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "Authorization Failed",
        )
    }

    /// 404 for a journey the mock does not know (only under `--strict` or for created journeys).
    pub fn journey_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", "Journey not found")
    }

    /// 404 for a path the mock does not serve.
    pub fn route_not_found(method: &hyper::Method, path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("Cannot {method} {path}"),
        )
    }

    /// 405: a known path with a method it does not take.
    pub fn method_not_allowed(method: &hyper::Method, allow: &str) -> Self {
        let mut e = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            format!("Method {method} is not allowed here; use {allow}"),
        );
        e.headers.push(("allow", allow.to_string()));
        e
    }

    /// 413: the request body is larger than `--max-body-bytes`.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!("Request body is larger than the limit of {limit} bytes"),
        )
    }

    /// 408: the request (its body, or the whole of it) did not arrive in time.
    pub fn request_timeout(message: impl Into<String>) -> Self {
        Self::new(StatusCode::REQUEST_TIMEOUT, "REQUEST_TIMEOUT", message)
    }

    /// 414: the request target, or the journey id in it, is longer than the mock takes.
    pub fn uri_too_long(message: impl Into<String>) -> Self {
        Self::new(StatusCode::URI_TOO_LONG, "URI_TOO_LONG", message)
    }

    /// 414 for a journey id longer than `--max-journey-id`.
    pub fn journey_id_too_long(limit: usize) -> Self {
        Self::uri_too_long(format!(
            "Journey id is longer than the limit of {limit} bytes"
        ))
    }

    /// 415: a body the route reads as JSON came with another `Content-Type`.
    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            message,
        )
    }

    /// 431: more request headers, or a larger head, than the server reads.
    pub fn header_fields_too_large(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "REQUEST_HEADER_FIELDS_TOO_LARGE",
            message,
        )
    }

    /// 500: our fault. The detail is logged by the caller, not sent.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_SERVER_ERROR",
            "Internal Server Error",
        )
    }

    /// 409: the request conflicts with the journey's state (already ended, not ended yet).
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "CONFLICT", message)
    }

    /// 503: the mock cannot take this on now (callback queue full, shutting down).
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "SERVICE_UNAVAILABLE",
            message,
        )
    }

    /// The answer of a `status:` fault, as the provider's gateway would give it: 429 with
    /// `Retry-After` (whole seconds), 500, 502, 503 (with `Retry-After` when given), 504.
    pub fn injected(status: StatusCode, retry_after: Option<std::time::Duration>) -> Self {
        let (reason, message) = match status.as_u16() {
            429 => ("RATE_LIMIT_EXCEEDED", "API rate limit exceeded"),
            502 => ("BAD_GATEWAY", "Bad Gateway"),
            503 => ("SERVICE_UNAVAILABLE", "Service Unavailable"),
            504 => ("GATEWAY_TIMEOUT", "Gateway Timeout"),
            _ => ("INTERNAL_SERVER_ERROR", "Internal Server Error"),
        };
        let mut e = Self::new(status, reason, message);
        if let Some(after) = retry_after {
            let seconds = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            e.headers.push(("retry-after", seconds.to_string()));
        }
        e
    }

    /// The body, serialized once.
    pub fn body(&self) -> Bytes {
        let kind = self.status.canonical_reason().unwrap_or("Error");
        let envelope = Envelope {
            error: Inner {
                name: "error",
                message: &self.message,
                reason: self.reason,
                kind,
                status_code: self.status.as_u16(),
            },
        };
        // Serializing a struct of strings and a number cannot fail; fall back to a fixed body
        // rather than panic should that ever change.
        serde_json::to_vec(&envelope)
            .map(Bytes::from)
            .unwrap_or_else(|_| Bytes::from_static(br#"{"error":{"name":"error"}}"#))
    }

    /// The whole HTTP/1.1 response as bytes, with `connection: close`, for the answers the
    /// server writes to the socket itself (the header read timeout, the errors hyper answers
    /// on its own): `more_headers`, whole `name: value\r\n` lines, go after ours.
    pub fn http1_bytes(&self, more_headers: &[u8]) -> Vec<u8> {
        let body = self.body();
        let reason = self.status.canonical_reason().unwrap_or("Error");
        let mut out = Vec::with_capacity(160 + more_headers.len() + body.len());
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(self.status.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(reason.as_bytes());
        out.extend_from_slice(b"\r\nconnection: close\r\ncontent-type: ");
        out.extend_from_slice(JSON_UTF8.as_bytes());
        out.extend_from_slice(b"\r\ncontent-length: ");
        out.extend_from_slice(body.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(more_headers);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&body);
        out
    }

    /// The response: the only place an error becomes HTTP.
    pub fn into_response(self) -> Response<Body> {
        let mut response = Response::new(full(self.body()));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, JSON_UTF8_VALUE);
        for (name, value) in &self.headers {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(*name, value);
            }
        }
        response
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.reason,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_raw_response_is_the_same_error_framed_by_its_length() {
        let error = ApiError::request_timeout("late");
        let bytes = error.http1_bytes(b"date: x\r\n");
        let text = String::from_utf8(bytes).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert_eq!(
            head,
            format!(
                "HTTP/1.1 408 Request Timeout\r\nconnection: close\r\n\
                 content-type: application/json; charset=utf-8\r\ncontent-length: {}\r\ndate: x",
                body.len()
            )
        );
        assert_eq!(body.as_bytes(), &error.body()[..]);
    }

    #[test]
    fn body_is_the_provider_envelope() {
        let body = ApiError::unauthorized().body();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"error":{"name":"error","message":"Authorization Failed",
                "reason":"UNAUTHORIZED","type":"Unauthorized","statusCode":401}})
        );
    }
}
