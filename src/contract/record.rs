//! `record`: fetch real get-journey responses from the provider and write them, sanitized, as
//! recorded files for `contract check`.
//!
//! The access token goes into the `Authorization` header (marked sensitive) and nowhere else:
//! it is never printed, logged or written, and any text that comes back from the upstream is
//! scrubbed of it before it is shown. Upstream failures (an error status, a body that is not
//! JSON or not a journey, a timeout) are reported per journey with what went wrong; the files
//! of the journeys that worked are still written.

use crate::text::strip_position;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::Method;
use serde_json::Value;

use super::sanitize::Sanitizer;
use crate::client::{OutboundClient, OutboundErrorKind};

/// A value that must never be shown: its `Debug` and `Display` are redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The get-journey path under the provider's base URL.
pub const GET_JOURNEY_PATH: &str = "/api/v3/otk-service/get-journey/";

/// A problem with what `record` was asked to do (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("--upstream {0:?} is not an http or https URL with a host, e.g. https://api-preproduction.signzy.app")]
    Upstream(String),
    #[error("--token is empty or holds characters a header cannot carry (it is not shown here)")]
    Token,
    #[error("journey id {0:?} must be letters, digits, `-`, `_`, `.` or `~` (it goes into the URL path)")]
    JourneyId(String),
    #[error("--out {dir}: cannot create this directory: {source}")]
    OutDir { dir: String, source: std::io::Error },
    #[error("cannot start the HTTP client: {0}")]
    Client(String),
}

/// Why one journey could not be recorded (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{journey}: the upstream did not answer ({kind}): {detail}")]
    Unreachable {
        journey: String,
        kind: &'static str,
        detail: String,
    },
    #[error("{journey}: the upstream answered {status}{detail}")]
    Status {
        journey: String,
        status: String,
        detail: String,
    },
    #[error(
        "{journey}: the upstream's answer is not JSON (line {line}, column {column}: {message})"
    )]
    NotJson {
        journey: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{journey}: the upstream's answer is not a get-journey response: {reason}")]
    NotAJourney { journey: String, reason: String },
    #[error("{journey}: cannot write {file}: {source}")]
    Write {
        journey: String,
        file: String,
        source: std::io::Error,
    },
}

/// What `record` does.
#[derive(Debug, Clone)]
pub struct Request {
    /// The provider's base URL (`https://api-preproduction.signzy.app`).
    pub upstream: String,
    pub token: Secret,
    pub journey_ids: Vec<String>,
    pub out: PathBuf,
    pub timeout: Duration,
    /// Makes the fakes the same across runs; random per run without it.
    pub salt: Option<Secret>,
}

/// One journey written.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub journey: String,
    pub file: PathBuf,
    pub status: String,
}

/// Checked inputs, ready to fetch.
#[derive(Debug)]
pub struct Plan {
    base: String,
    authorization: HeaderValue,
    request: Request,
}

/// Check everything `record` was given before any request is sent.
pub fn plan(request: Request) -> Result<Plan, UsageError> {
    let base = base_url(&request.upstream)?;
    let token = request.token.expose().trim();
    let mut authorization = HeaderValue::from_str(token).map_err(|_| UsageError::Token)?;
    if token.is_empty() {
        return Err(UsageError::Token);
    }
    authorization.set_sensitive(true);
    for id in &request.journey_ids {
        let ok = !id.is_empty()
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~'))
            && id != "."
            && id != "..";
        if !ok {
            return Err(UsageError::JourneyId(id.clone()));
        }
    }
    std::fs::create_dir_all(&request.out).map_err(|source| UsageError::OutDir {
        dir: request.out.display().to_string(),
        source,
    })?;
    Ok(Plan {
        base,
        authorization,
        request,
    })
}

/// The base URL without a trailing `/` and without the API prefix if it was given too.
fn base_url(upstream: &str) -> Result<String, UsageError> {
    let trimmed = upstream.trim().trim_end_matches('/');
    let bad = || UsageError::Upstream(upstream.to_string());
    let uri: hyper::Uri = trimmed.parse().map_err(|_| bad())?;
    if !matches!(uri.scheme_str(), Some("http") | Some("https")) || uri.host().is_none() {
        return Err(bad());
    }
    if uri.query().is_some() {
        return Err(bad());
    }
    let base = trimmed
        .strip_suffix("/api/v3/otk-service")
        .unwrap_or(trimmed);
    Ok(base.to_string())
}

/// The most of a provider's answer a recording reads (a journey document is tens of KB).
const RECORD_ANSWER_LIMIT: usize = 64 << 20;

impl Plan {
    /// The URL get-journey is fetched from for `id`.
    pub fn url(&self, id: &str) -> String {
        format!("{}{GET_JOURNEY_PATH}{id}", self.base)
    }

    /// Fetch, sanitize and write every journey; one result per journey, in order.
    pub async fn run(&self) -> Result<Vec<Result<Recorded, RecordError>>, UsageError> {
        // A journey document is tens of kilobytes; a recording reads it whole, up to a bound.
        let client = OutboundClient::new()
            .map_err(|e| UsageError::Client(e.to_string()))?
            .with_answer_limit(RECORD_ANSWER_LIMIT);
        let mut sanitizer = match &self.request.salt {
            Some(salt) => Sanitizer::with_salt(salt.expose()),
            None => Sanitizer::random(),
        };
        let mut results = Vec::new();
        for id in &self.request.journey_ids {
            results.push(self.one(&client, &mut sanitizer, id).await);
        }
        Ok(results)
    }

    async fn one(
        &self,
        client: &OutboundClient,
        sanitizer: &mut Sanitizer,
        id: &str,
    ) -> Result<Recorded, RecordError> {
        let headers: [(HeaderName, HeaderValue); 2] = [
            (AUTHORIZATION, self.authorization.clone()),
            (CONTENT_TYPE, HeaderValue::from_static("application/json")),
        ];
        let response = client
            .send(
                Method::POST,
                &self.url(id),
                &headers,
                Bytes::new(),
                self.request.timeout,
            )
            .await
            .map_err(|e| RecordError::Unreachable {
                journey: id.to_string(),
                kind: kind_text(e.kind),
                detail: self.scrub(&e.detail),
            })?;
        if !response.status.is_success() {
            return Err(RecordError::Status {
                journey: id.to_string(),
                status: response.status.to_string(),
                detail: self.error_detail(&response.body),
            });
        }
        if response.cut {
            return Err(RecordError::NotAJourney {
                journey: id.to_string(),
                reason: format!("it is longer than {RECORD_ANSWER_LIMIT} bytes"),
            });
        }
        let value: Value =
            serde_json::from_slice(&response.body).map_err(|e| RecordError::NotJson {
                journey: id.to_string(),
                line: e.line(),
                column: e.column(),
                message: self.scrub(&strip_position(&e.to_string())),
            })?;
        let document = match value {
            Value::Object(mut object) if object.len() == 1 => match object.remove("result") {
                Some(document @ Value::Object(_)) => document,
                _ => {
                    return Err(RecordError::NotAJourney {
                        journey: id.to_string(),
                        reason: "expected {\"result\": {...}}".to_string(),
                    })
                }
            },
            _ => {
                return Err(RecordError::NotAJourney {
                    journey: id.to_string(),
                    reason: "expected an object whose only key is `result`".to_string(),
                })
            }
        };
        let clean = sanitizer.document(&document);
        let text = |key: &str| {
            document
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_string()
        };
        let status = format!("{}/{}", text("currentStatus"), text("step"));
        let fake_id = clean
            .get("journeyId")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| sanitizer.identifier(id));
        let name = format!(
            "get-journey-{}-{}-{}.json",
            file_part(&text("currentStatus")),
            file_part(&text("step")),
            file_part(&fake_id)
        );
        let file = self.request.out.join(name);
        let body = serde_json::json!({ "result": clean });
        let mut bytes = serde_json::to_vec_pretty(&body).unwrap_or_default();
        bytes.push(b'\n');
        write_atomically(&file, &bytes).map_err(|source| RecordError::Write {
            journey: id.to_string(),
            file: file.display().to_string(),
            source,
        })?;
        Ok(Recorded {
            journey: id.to_string(),
            file,
            status,
        })
    }

    /// Remove the token from any text that came from outside.
    fn scrub(&self, text: &str) -> String {
        scrub_token(text, self.request.token.expose().trim())
    }

    /// What to say about an error body: the provider's `error.message` when it has one, else
    /// the start of the body; never more than a line.
    fn error_detail(&self, body: &[u8]) -> String {
        let message = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
            v.pointer("/error/message")
                .or_else(|| v.get("message"))
                .and_then(Value::as_str)
                .map(str::to_string)
        });
        let text = match message {
            Some(m) => m,
            None => String::from_utf8_lossy(body).into_owned(),
        };
        let line: String = text
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(200)
            .collect();
        if line.is_empty() {
            String::new()
        } else {
            format!(": {}", self.scrub(&line))
        }
    }
}

fn kind_text(kind: OutboundErrorKind) -> &'static str {
    match kind {
        OutboundErrorKind::Timeout => "timed out",
        OutboundErrorKind::Refused => "connection refused",
        OutboundErrorKind::Reset => "connection reset",
        OutboundErrorKind::Dns => "name not resolved",
        OutboundErrorKind::Tls => "TLS failed",
        OutboundErrorKind::InvalidUrl => "invalid URL",
        OutboundErrorKind::Other => "failed",
    }
}

/// A piece of a file name: lower case, letters, digits, `-` and `_`.
fn file_part(s: &str) -> String {
    let part: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    if part.is_empty() {
        "unknown".to_string()
    } else {
        part
    }
}

/// Write to a temporary file beside `file`, then rename: a reader never sees half a file.
fn write_atomically(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = file.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&temp, bytes)?;
    std::fs::rename(&temp, file).inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })
}

/// `text` with the token replaced by `<token>` where it stands as a token, not inside a longer
/// word: a short token (`t`) leaves "Cannot POST" alone while `Bearer t`, `token=t;` and
/// `/t/` are still scrubbed. A token of 16 characters or more, a real credential, is replaced
/// wherever it appears, inside a word too: showing a piece of a word is cheaper than leaking it.
pub(crate) fn scrub_token(text: &str, token: &str) -> String {
    if token.is_empty() {
        return text.to_string();
    }
    let anywhere = token.chars().count() >= 16;
    let word = |c: Option<char>| !anywhere && c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let mut out = String::with_capacity(text.len());
    let mut done = 0;
    let mut from = 0;
    while let Some(found) = text[from..].find(token) {
        let at = from + found;
        let end = at + token.len();
        if word(text[..at].chars().next_back()) || word(text[end..].chars().next()) {
            // Inside a longer word: look again from the next character.
            from = at + text[at..].chars().next().map_or(1, char::len_utf8);
        } else {
            out.push_str(&text[done..at]);
            out.push_str("<token>");
            done = end;
            from = end;
        }
    }
    let rest = &text[done..];
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_the_token_where_it_stands_as_a_token_only() {
        let cases = [
            (
                "Cannot POST /api/v3/otk-service/x",
                "t",
                "Cannot POST /api/v3/otk-service/x",
            ),
            (
                "bad token t; Bearer t, token=t, /t/",
                "t",
                "bad token <token>; Bearer <token>, token=<token>, /<token>/",
            ),
            ("t", "t", "<token>"),
            (
                "echo: eyJh.b-c_d= (eyJh.b-c_d=)",
                "eyJh.b-c_d=",
                "echo: <token> (<token>)",
            ),
            (
                "xsecret secretx secret_ secret",
                "secret",
                "xsecret secretx secret_ <token>",
            ),
            ("xx0123456789abcdefxx", "0123456789abcdef", "xx<token>xx"),
            ("sécret sé", "sé", "sécret <token>"),
            ("nothing here", "", "nothing here"),
        ];
        for (text, token, want) in cases {
            assert_eq!(scrub_token(text, token), want, "{text:?} / {token:?}");
        }
    }

    #[test]
    fn the_secret_never_shows_in_debug_or_display() {
        let s = Secret::from("tok-123".to_string());
        assert!(!format!("{s:?} {s}").contains("tok-123"));
    }

    #[test]
    fn base_urls_are_checked_and_normalized() {
        assert_eq!(
            base_url("https://api.example/").unwrap(),
            "https://api.example"
        );
        assert_eq!(
            base_url("http://127.0.0.1:9/api/v3/otk-service/").unwrap(),
            "http://127.0.0.1:9"
        );
        for bad in ["ftp://x", "not a url", "https://", "https://x/?a=1"] {
            assert!(base_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn file_parts_are_safe() {
        assert_eq!(file_part("RETRIES_EXCEEDED"), "retries_exceeded");
        assert_eq!(file_part("a/b c"), "a-b-c");
        assert_eq!(file_part(""), "unknown");
    }
}
