//! The body of every response otk-mock sends.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};

use super::conn::InFlight;

/// The body of every response: the whole body at once (every normal answer, as cheap as
/// `Full`), or, for the `truncated` fault, part of a body that then fails, so that the
/// connection is cut short of the `Content-Length` that was sent.
#[derive(Debug)]
pub struct Body {
    kind: Kind,
    /// The request this answers stays in flight on its connection until the body is gone.
    in_flight: Option<InFlight>,
}

#[derive(Debug)]
enum Kind {
    Full(Option<Bytes>),
    Cut { part: Option<Bytes>, flushed: bool },
}

/// The error a cut body ends with (hyper then closes the connection).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the body was cut short on purpose (truncated fault)")]
pub struct BodyCut;

/// A body from bytes.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    let bytes = bytes.into();
    Body {
        kind: Kind::Full((!bytes.is_empty()).then_some(bytes)),
        in_flight: None,
    }
}

impl Body {
    /// A body that sends `part` and then fails. Set `Content-Length` to the length the body
    /// should have had: hyper then frames the response by it and the client sees it fall short.
    pub fn cut(part: Bytes) -> Body {
        Body {
            kind: Kind::Cut {
                part: (!part.is_empty()).then_some(part),
                flushed: false,
            },
            in_flight: None,
        }
    }

    /// Keep the request in flight on its connection until this body is sent or dropped.
    pub fn hold(&mut self, in_flight: InFlight) {
        self.in_flight = Some(in_flight);
    }

    /// The bytes of a whole body that has not been sent yet.
    pub fn bytes(&self) -> Option<&Bytes> {
        match &self.kind {
            Kind::Full(data) => data.as_ref(),
            Kind::Cut { .. } => None,
        }
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = BodyCut;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyCut>>> {
        match &mut self.get_mut().kind {
            Kind::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Kind::Cut { part, flushed } => {
                if let Some(part) = part.take() {
                    return Poll::Ready(Some(Ok(Frame::data(part))));
                }
                if !*flushed {
                    // Pending once, so that hyper flushes what it has buffered (the head and
                    // the part) before the error makes it drop the connection.
                    *flushed = true;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Poll::Ready(Some(Err(BodyCut)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.kind, Kind::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(Some(data)) => SizeHint::with_exact(data.len() as u64),
            Kind::Full(None) => SizeHint::with_exact(0),
            Kind::Cut { .. } => SizeHint::default(),
        }
    }
}
