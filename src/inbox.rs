//! The callback inbox: named boxes that keep whatever requests are sent to them, so that a
//! tester without a server of their own can point `callbackUrl` at the mock
//! (`http://<mock>/__admin/inbox/<name>`) and read what their app would have received.
//!
//! Everything is bounded (about 25 MiB at worst): [`MAX_BOXES`] names (the least recently written box makes room),
//! [`MAX_PER_BOX`] requests a box (the oldest goes), [`MAX_BODY`] bytes of a body and
//! [`MAX_HEADERS`] headers kept (the rest cut, and the entry says so), so no sender can grow
//! the mock's memory without end. A reset empties it.

use std::collections::VecDeque;
use std::sync::Mutex;

use indexmap::IndexMap;
use serde::Serialize;

/// Boxes kept at once.
pub const MAX_BOXES: usize = 16;
/// Requests kept a box.
pub const MAX_PER_BOX: usize = 50;
/// Bytes of a body kept.
pub const MAX_BODY: usize = 32 * 1024;
/// Headers kept a request.
pub const MAX_HEADERS: usize = 64;
/// The longest box name: letters, digits, `-`, `_` and `.`.
pub const MAX_NAME: usize = 64;

/// One request a box received.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Received {
    /// Numbered from 1 in each box.
    pub seq: u64,
    /// When it arrived (ISO-8601 UTC).
    pub received_at: String,
    pub method: String,
    /// The query string, if any.
    pub query: Option<String>,
    /// Header names (lower case) and values, in arrival order; values that are not UTF-8
    /// are shown lossily.
    pub headers: Vec<(String, String)>,
    /// The body as text (lossily, when it is not UTF-8), cut at [`MAX_BODY`].
    pub body: String,
    /// The body's length as received.
    pub body_bytes: usize,
    /// Whether the body or the headers were cut.
    pub truncated: bool,
}

#[derive(Default)]
struct Boxes {
    /// By name, the least recently written first.
    boxes: IndexMap<String, Held>,
}

#[derive(Default)]
struct Held {
    next: u64,
    received: VecDeque<Received>,
}

/// The inbox of one mock.
#[derive(Default)]
pub struct Inbox {
    boxes: Mutex<Boxes>,
}

/// Why a box name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("inbox name {0:?} must be 1 to {MAX_NAME} letters, digits, `-`, `_` or `.`")]
pub struct BadName(pub String);

/// Check a box name.
pub fn check_name(name: &str) -> Result<(), BadName> {
    // Not dots alone: a name is a path segment, and `.`, `..` are not one to keep.
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && !name.bytes().all(|b| b == b'.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(BadName(name.chars().take(MAX_NAME + 1).collect()))
    }
}

/// A request to keep, as the surface read it.
pub struct Incoming<'a> {
    pub method: &'a str,
    pub query: Option<&'a str>,
    pub headers: Vec<(String, String)>,
    pub body: &'a [u8],
    pub at_ms: i64,
}

impl Inbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, Boxes> {
        // A panic while holding this lock cannot leave the boxes half-written in a way that
        // matters (each push is one VecDeque operation): go on with what is there.
        self.boxes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keep a request in box `name` (its name checked), returning its number there.
    pub fn push(&self, name: &str, incoming: Incoming<'_>) -> Result<u64, BadName> {
        check_name(name)?;
        let mut headers = incoming.headers;
        let mut truncated = headers.len() > MAX_HEADERS;
        headers.truncate(MAX_HEADERS);
        let kept = &incoming.body[..incoming.body.len().min(MAX_BODY)];
        truncated |= kept.len() < incoming.body.len();
        let mut boxes = self.lock();
        let mut inbox = boxes.boxes.shift_remove(name).unwrap_or_default();
        inbox.next += 1;
        let seq = inbox.next;
        inbox.received.push_back(Received {
            seq,
            received_at: crate::time::iso_from_millis(incoming.at_ms),
            method: incoming.method.to_string(),
            query: incoming.query.map(str::to_string),
            headers,
            body: String::from_utf8_lossy(kept).into_owned(),
            body_bytes: incoming.body.len(),
            truncated,
        });
        while inbox.received.len() > MAX_PER_BOX {
            inbox.received.pop_front();
        }
        // Written last: the least recently written box is the first one to go.
        boxes.boxes.insert(name.to_string(), inbox);
        while boxes.boxes.len() > MAX_BOXES {
            boxes.boxes.shift_remove_index(0);
        }
        Ok(seq)
    }

    /// What box `name` holds, oldest first (empty for a box never written).
    pub fn list(&self, name: &str) -> Vec<Received> {
        self.lock()
            .boxes
            .get(name)
            .map(|b| b.received.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The boxes and how many requests each holds, the most recently written first.
    pub fn names(&self) -> Vec<(String, usize)> {
        self.lock()
            .boxes
            .iter()
            .rev()
            .map(|(name, b)| (name.clone(), b.received.len()))
            .collect()
    }

    /// Empty box `name`; returns how many requests it held.
    pub fn clear(&self, name: &str) -> usize {
        self.lock()
            .boxes
            .shift_remove(name)
            .map_or(0, |b| b.received.len())
    }

    /// Empty every box.
    pub fn reset(&self) {
        self.lock().boxes.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incoming(body: &[u8]) -> Incoming<'_> {
        Incoming {
            method: "POST",
            query: None,
            headers: vec![("content-type".into(), "application/json".into())],
            body,
            at_ms: 0,
        }
    }

    #[test]
    fn keeps_requests_per_box_within_bounds() {
        let inbox = Inbox::default();
        assert_eq!(inbox.push("app", incoming(b"{}")).unwrap(), 1);
        assert_eq!(inbox.push("app", incoming(b"[]")).unwrap(), 2);
        let kept = inbox.list("app");
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[1].body, "[]");
        assert!(inbox.list("other").is_empty());

        for _ in 0..MAX_PER_BOX + 5 {
            inbox.push("app", incoming(b"x")).unwrap();
        }
        let kept = inbox.list("app");
        assert_eq!(kept.len(), MAX_PER_BOX);
        assert_eq!(kept.last().unwrap().seq, (MAX_PER_BOX + 7) as u64);

        let big = vec![b'a'; MAX_BODY + 10];
        inbox.push("big", incoming(&big)).unwrap();
        let kept = &inbox.list("big")[0];
        assert!(kept.truncated);
        assert_eq!(kept.body.len(), MAX_BODY);
        assert_eq!(kept.body_bytes, MAX_BODY + 10);

        for n in 0..MAX_BOXES + 3 {
            inbox.push(&format!("b{n}"), incoming(b"")).unwrap();
        }
        assert_eq!(inbox.names().len(), MAX_BOXES);
        assert!(
            inbox.list("app").is_empty(),
            "the least recently written box went"
        );
        assert_eq!(inbox.clear(&format!("b{}", MAX_BOXES + 2)), 1);
        inbox.reset();
        assert!(inbox.names().is_empty());
    }

    #[test]
    fn names_are_short_and_plain() {
        assert!(check_name("my-app_1.cb").is_ok());
        for bad in ["", "..", "a/b", "a b", "ü", &"x".repeat(MAX_NAME + 1)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
