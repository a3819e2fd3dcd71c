//! The wire: what every surface shares about HTTP, at the bottom of the crate.
//!
//! - [`Body`], the body of every response (whole, or cut short for the `truncated` fault);
//! - [`ApiError`], the provider's JSON error format, the one way an error becomes a response;
//! - the response builders ([`json_response`], [`envelope`]...) and [`read_body`], which reads
//!   any request body under a byte limit;
//! - the provider's routes as the journal, metrics and faults name them ([`RouteKind`]) and
//!   the `X-Mock-*` header names;
//! - [`conn::Connection`], the handle by which a request acts on its connection.
//!
//! Nothing here knows scenarios, journeys or the app: everything above may use it.

mod body;
pub mod conn;
mod error;

pub use body::{full, Body, BodyCut};
pub use error::{ApiError, JSON_UTF8, JSON_UTF8_VALUE};

use bytes::{Buf, Bytes};
use http_body_util::{BodyExt, Limited};
use hyper::header::{HeaderName, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{HeaderMap, Response, StatusCode};

/// The path prefix of every provider route.
pub const API_PREFIX: &str = "/api/v3/otk-service/";

// Header names as `HeaderName`s: a lookup by `&str` parses and checks the name every time.
/// The header QA and tests use to choose a scenario for one request.
pub const SCENARIO_HEADER: HeaderName = HeaderName::from_static("x-mock-scenario");
/// The header of a create call that sets that journey's callback delay.
pub const CALLBACK_DELAY_HEADER: HeaderName = HeaderName::from_static("x-mock-callback-delay");
/// The header of a create call that turns auto-completion off for that journey, or sets its
/// own delay.
pub const AUTO_COMPLETE_HEADER: HeaderName = HeaderName::from_static("x-mock-auto-complete");
/// The header that injects a fault into one provider request (see `crate::fault`).
pub const FAULT_HEADER: HeaderName = HeaderName::from_static("x-mock-fault");
/// The header of a create call that sets that journey's callback fault.
pub const CALLBACK_FAULT_HEADER: HeaderName = HeaderName::from_static("x-mock-callback-fault");
/// The header that chooses the document family (on create: the journey's; on get-journey:
/// that answer's).
pub const DOCUMENT_HEADER: HeaderName = HeaderName::from_static("x-mock-document");
/// The header that turns the flow's IP check on or off, as [`DOCUMENT_HEADER`] does.
pub const IP_CHECK_HEADER: HeaderName = HeaderName::from_static("x-mock-ip-check");

/// The provider route a request went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    CreateJourneyUrl,
    GetJourney,
    /// Any other path outside `/__admin/` and `/journey/` (a 404).
    Other,
}

impl RouteKind {
    pub const ALL: [RouteKind; 3] = [
        RouteKind::CreateJourneyUrl,
        RouteKind::GetJourney,
        RouteKind::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RouteKind::CreateJourneyUrl => "create-journey-url",
            RouteKind::GetJourney => "get-journey",
            RouteKind::Other => "other",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// `create-journey-url` or `get-journey`.
    pub fn parse_provider(text: &str) -> Option<RouteKind> {
        match text.trim() {
            "create-journey-url" => Some(RouteKind::CreateJourneyUrl),
            "get-journey" => Some(RouteKind::GetJourney),
            _ => None,
        }
    }

    /// The route of a path under [`API_PREFIX`] (or not), with the journey id of a
    /// get-journey path.
    pub fn of_path(path: &str) -> (RouteKind, Option<&str>) {
        let Some(rest) = path.strip_prefix(API_PREFIX) else {
            return (RouteKind::Other, None);
        };
        if rest == "create-journey-url" {
            return (RouteKind::CreateJourneyUrl, None);
        }
        match rest
            .strip_prefix("get-journey/")
            .filter(|id| !id.is_empty() && !id.contains('/'))
        {
            Some(id) => (RouteKind::GetJourney, Some(id)),
            None => (RouteKind::Other, None),
        }
    }
}

/// What comes before the journey id in a get-journey path.
const GET_JOURNEY_PREFIX: &str = "/api/v3/otk-service/get-journey/";

/// The journey id of a path [`RouteKind::of_path`] found to be a get-journey one: a slice at
/// a fixed offset, so the request path is not parsed twice.
pub fn get_journey_id(path: &str) -> &str {
    path.get(GET_JOURNEY_PREFIX.len()..).unwrap_or_default()
}

/// A 200 with a JSON body.
pub fn json_response(body: Bytes) -> Response<Body> {
    let mut response = Response::new(full(body));
    response.headers_mut().insert(CONTENT_TYPE, JSON_UTF8_VALUE);
    response
}

/// A JSON response with `status` for a value.
pub fn json_value_response(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = json_response(Bytes::from(body));
    *response.status_mut() = status;
    response
}

/// What opens a get-journey body; `}` closes it.
pub const ENVELOPE_OPEN: &[u8] = br#"{"result":"#;

/// `{"result": document}` as bytes.
pub fn envelope(document: &serde_json::Value) -> Result<Bytes, ApiError> {
    let mut out = Vec::with_capacity(8 * 1024);
    out.extend_from_slice(ENVELOPE_OPEN);
    serde_json::to_writer(&mut out, document).map_err(|e| {
        tracing::error!(error = %e, "cannot serialize a document");
        ApiError::internal()
    })?;
    out.push(b'}');
    Ok(Bytes::from(out))
}

/// `{"result": document}` around an already serialized document.
pub fn envelope_bytes(document: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(document.len() + 11);
    out.extend_from_slice(ENVELOPE_OPEN);
    out.extend_from_slice(document);
    out.push(b'}');
    Bytes::from(out)
}

/// Read a whole request body of any type, answering 413 past `limit` (by `Content-Length`
/// up front, or while reading a chunked body) and 400 when the body cannot be read.
pub async fn read_body<B>(headers: &HeaderMap, body: B, limit: usize) -> Result<Bytes, ApiError>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if body.is_end_stream() {
        return Ok(Bytes::new());
    }
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::payload_too_large(limit));
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(ApiError::payload_too_large(limit))
        }
        Err(e) => Err(ApiError::bad_request(format!(
            "the request body could not be read: {e}"
        ))),
    }
}

/// Read and drop what is left of a request body, at most `budget` bytes of it; whether it
/// ended. An HTTP/2 request answered before its body ended (a 413, an error found from the
/// head) is drained first, so that the answer ends the stream: otherwise h2 follows the
/// answer with `RST_STREAM(NO_ERROR)`, which RFC 9113 §8.1 allows but which some clients
/// (curl 7.88) report as an error instead of showing the answer.
pub async fn drain<B>(mut body: B, mut budget: usize) -> bool
where
    B: hyper::body::Body + Unpin,
{
    while !body.is_end_stream() {
        match body.frame().await {
            None => return true,
            Some(Err(_)) => return false,
            Some(Ok(frame)) => {
                let len = frame.data_ref().map_or(0, |data| data.remaining());
                match budget.checked_sub(len) {
                    Some(left) => budget = left,
                    None => return false,
                }
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_paths_name_their_route_and_journey() {
        let get = "/api/v3/otk-service/get-journey/abc";
        assert_eq!(
            RouteKind::of_path(get),
            (RouteKind::GetJourney, Some("abc"))
        );
        assert_eq!(get_journey_id(get), "abc");
        assert_eq!(GET_JOURNEY_PREFIX, format!("{API_PREFIX}get-journey/"));
        assert_eq!(
            RouteKind::of_path("/api/v3/otk-service/create-journey-url"),
            (RouteKind::CreateJourneyUrl, None)
        );
        for other in [
            "/api/v3/otk-service/get-journey/",
            "/api/v3/otk-service/get-journey/a/b",
            "/api/v3/otk-service/create-journey-url/x",
            "/elsewhere",
        ] {
            assert_eq!(
                RouteKind::of_path(other),
                (RouteKind::Other, None),
                "{other}"
            );
        }
    }
}
