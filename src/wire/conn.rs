//! A connection as the requests on it can act on it: a few atomics shared by the server's
//! driver of the connection (`server::connection`, which owns the socket) and the requests it
//! serves (which may ask it to end, for a connection fault, keep it busy while in flight, and
//! stop `--request-timeout`'s clock while a fault holds them).
//!
//! This is the small interface between the app and the hand-made connection driver: the app
//! only calls [`Connection::is_attached`], [`Connection::abort`], [`Connection::begin`] and
//! [`Connection::hold`]; everything else here is the driver's. An app driven without a socket (in-process, in
//! tests) uses [`Connection::detached`], on which connection faults answer as a gateway would.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use atomic_waker::AtomicWaker;

/// Flags of [`Connection::flags`].
pub(crate) const KILL: u8 = 1;
pub(crate) const RESET: u8 = 2;
pub(crate) const SHUTDOWN: u8 = 4;
/// The header read timeout struck with part of a head read: say 408 on the way out.
pub(crate) const TIMED_OUT_MID_HEAD: u8 = 8;

/// One accepted connection, as the server and the requests on it act on it.
#[derive(Debug)]
pub struct Connection {
    pub(crate) flags: AtomicU8,
    /// The connection's task, woken to act on `flags`.
    pub(crate) task: AtomicWaker,
    attached: bool,
    /// Requests begun (high 32 bits, wrapping) and requests whose response has not been sent
    /// or dropped yet (low 32 bits), in one word so one load tells whether anything happened.
    pub(crate) activity: AtomicU64,
    /// Bytes read from the socket, ever, and how many of them had been read when the
    /// connection last became idle: more since then is part of a request head.
    pub(crate) read: AtomicU64,
    pub(crate) read_at_idle: AtomicU64,
    /// The client opened with the HTTP/2 preface.
    pub(crate) h2: AtomicBool,
    /// Requests held by an injected delay or hang: that time is not counted against
    /// `--request-timeout` (`--fault-max-wait` bounds it).
    held: AtomicU32,
}

/// What the connection's task sees of its requests at a tick, for `--request-timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Underway {
    /// A request finished since the last tick.
    Progress,
    /// No request in flight and no head arriving.
    Idle,
    /// A request in flight is held by a fault: the clock stops.
    Held,
    /// A head arriving or a request in flight, and none finished since the last tick.
    Busy,
}

const IN_FLIGHT: u64 = 0xffff_ffff;
const BEGUN: u64 = 1 << 32;

impl Connection {
    pub(crate) fn new(attached: bool) -> Connection {
        Connection {
            flags: AtomicU8::new(0),
            task: AtomicWaker::new(),
            attached,
            activity: AtomicU64::new(0),
            read: AtomicU64::new(0),
            read_at_idle: AtomicU64::new(0),
            h2: AtomicBool::new(false),
            held: AtomicU32::new(0),
        }
    }

    /// A handle with no socket behind it (for embedding the app without the server).
    pub fn detached() -> Connection {
        Connection::new(false)
    }

    /// Whether [`Connection::abort`] can end a real connection.
    pub fn is_attached(&self) -> bool {
        self.attached
    }

    /// End the connection with no response: a TCP reset when `reset`, else a plain close.
    /// Never returns: the connection's task drops the request along with the connection.
    pub async fn abort(&self, reset: bool) {
        let flags = if reset { KILL | RESET } else { KILL };
        self.flags.fetch_or(flags, Ordering::AcqRel);
        self.task.wake();
        std::future::pending::<()>().await;
    }

    /// A request has started on this connection; it is in flight until the guard drops
    /// (with the response body, once hyper has sent it).
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.activity.fetch_add(BEGUN + 1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    /// Whether the connection was quiet (no request in flight, none begun) since `last`, the
    /// activity seen at the previous tick; `last` becomes the activity now, and the answer
    /// whether a head had started to arrive.
    pub(crate) fn quiet_since(&self, last: &mut u64) -> bool {
        let now = self.activity.load(Ordering::Acquire);
        let quiet = now == *last && now & IN_FLIGHT == 0;
        *last = now;
        quiet
    }

    /// A request on this connection is held by an injected delay or hang until the guard
    /// drops; meanwhile `--request-timeout` does not count.
    pub fn hold(&self) -> Held<'_> {
        self.held.fetch_add(1, Ordering::AcqRel);
        Held(self)
    }

    /// The connection's requests at a tick; `finished`, the number of requests finished at
    /// the previous tick, becomes the number now.
    pub(crate) fn underway(&self, finished: &mut u32) -> Underway {
        let now = self.activity.load(Ordering::Acquire);
        let in_flight = now & IN_FLIGHT;
        // Begun less in flight, both counted modulo 2^32.
        let done = ((now >> 32) as u32).wrapping_sub(in_flight as u32);
        if done != *finished {
            *finished = done;
            return Underway::Progress;
        }
        if in_flight == 0 && !self.partial_head() {
            return Underway::Idle;
        }
        if self.held.load(Ordering::Acquire) > 0 {
            return Underway::Held;
        }
        Underway::Busy
    }

    /// A request is in flight (its response not yet sent or dropped).
    pub(crate) fn in_flight(&self) -> bool {
        self.activity.load(Ordering::Acquire) & IN_FLIGHT != 0
    }

    /// Part of a request head has arrived since the last request ended.
    pub(crate) fn partial_head(&self) -> bool {
        self.read.load(Ordering::Relaxed) != self.read_at_idle.load(Ordering::Relaxed)
            && !self.h2.load(Ordering::Relaxed)
    }
}

/// A request in flight on its connection (see [`Connection::begin`]).
#[derive(Debug)]
pub struct InFlight(Arc<Connection>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let conn = &self.0;
        conn.read_at_idle
            .store(conn.read.load(Ordering::Relaxed), Ordering::Relaxed);
        conn.activity.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A request held by a fault (see [`Connection::hold`]).
#[derive(Debug)]
pub struct Held<'a>(&'a Connection);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.held.fetch_sub(1, Ordering::AcqRel);
    }
}
