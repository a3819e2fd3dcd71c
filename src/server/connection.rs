//! One accepted connection, driven by its own task: hyper's connection future, plus what the
//! server itself asks of a connection, at a cost of a few uncontended atomics per request.
//!
//! The handle requests hold ([`Connection`]) is in `wire::conn`; this is the task that acts on
//! it.
//!
//! - **Faults that end it.** A request can ask its connection to end without a response (a
//!   TCP reset or a plain close). `Connection::abort` sets a flag and wakes the task, which
//!   drops hyper's connection and with it the socket ([`ConnIo`] sets the zero linger on the
//!   way out when a reset was asked for).
//! - **Graceful shutdown.** [`Connections::shutdown`] flags every open connection and wakes
//!   it; its task then asks hyper to finish what is in flight and close.
//! - **The header read timeout.** A connection that has gone `timeout` with no request in
//!   flight and no complete request head is closed (with a 408 when part of a head had
//!   arrived, as hyper answers). That is hyper's own `header_read_timeout` (which also counts
//!   the idle time of a kept-alive connection), kept here instead because hyper arms and drops
//!   a boxed timer on every request, and that timer cost about a tenth of the throughput of a
//!   cached read. Here one timer per connection ticks four times per timeout, and a request
//!   costs two counter updates: the connection closes after four quiet ticks in a row, that
//!   is between 1 and 1.25 timeouts after its last request ended (with a shorter
//!   `--request-timeout`, the ticks are shorter and more of them make the timeout).
//! - **The request timeout.** The same ticks (four per the shorter of the two timeouts) hold
//!   a whole request to `--request-timeout`: a connection that has had a request under way (a
//!   head arriving, or a request in flight) for more than that many ticks in a row, with none
//!   finished meanwhile, is closed (with a 408 when it was still reading the head). Ticks
//!   during which a request is held by an injected delay or hang do not count
//!   (`--fault-max-wait` bounds those). A body read has a deadline of its own, answered with a
//!   408 by the router; this is the bound on the rest: the head, and an answer the client
//!   does not take (an HTTP/2 window never opened). On HTTP/2 any stream finishing counts as
//!   progress, so only a connection whose streams are all stuck is closed.

use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::metrics::ConnectionCounts;
use crate::wire::conn::{Connection, Underway, KILL, RESET, SHUTDOWN, TIMED_OUT_MID_HEAD};
use crate::wire::ApiError;

/// What we answer a request head that did not arrive in time: hyper's 408, with the
/// provider's error body.
static REQUEST_TIMEOUT: LazyLock<Vec<u8>> = LazyLock::new(|| {
    ApiError::request_timeout("The request head did not arrive in time").http1_bytes(b"")
});

/// The accepted socket: counts what it reads (for the header read timeout), closes with a
/// zero linger (a TCP reset) when its connection asked, and puts the provider's error body
/// into the answers hyper writes on its own ([`hyper_error_replacement`]).
pub struct ConnIo {
    stream: TcpStream,
    conn: Arc<Connection>,
    /// An answer of hyper's being written in its place.
    rewrite: Option<Rewrite>,
}

/// hyper answers a request it cannot parse itself, before any service sees it, with an empty
/// body and no way to give it one: a malformed request line or header (400), a URI over 64 KiB
/// (414), more than 100 headers or a head over ~408 KiB (431). Raising hyper's limits so that
/// such requests reach the router would not cover a malformed line, and `max_headers` alone
/// made every request 12–22% dearer (hyper then allocates the header slots on the heap on
/// each request). Those answers are recognised instead as they are written: a 4xx head with
/// `connection: close` and `content-length: 0` and nothing after it, which no answer of ours
/// has (ours always carry a JSON body), goes out as the same status with the provider's
/// error body. The check costs one byte comparison per write; an error answer written in one
/// batch behind pipelined responses is not recognised, and goes out as hyper wrote it.
///
/// Returns the answer to write instead of `head`, when `head` is hyper's own error answer.
fn hyper_error_replacement(head: &[u8]) -> Option<Vec<u8>> {
    const AFTER_STATUS: &[u8] = b"\r\nconnection: close\r\ncontent-length: 0\r\n";
    let rest = head.strip_prefix(b"HTTP/1.1 4")?;
    if !head.ends_with(b"\r\n\r\n") {
        return None;
    }
    let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
    let more = rest[line_end..].strip_prefix(AFTER_STATUS)?;
    let error = match head.get(9..12)? {
        b"400" => ApiError::new(
            hyper::StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "The request is not valid HTTP/1.1 (request line or header malformed)",
        ),
        b"414" => ApiError::uri_too_long("The request target is longer than 65534 bytes"),
        b"431" => ApiError::header_fields_too_large(
            "The request has more than 100 header fields, or a head larger than 408 KiB",
        ),
        _ => return None,
    };
    // hyper's own lines after those two (its date), without the blank line.
    Some(error.http1_bytes(more.strip_suffix(b"\r\n").unwrap_or(more)))
}

/// An answer written in place of the one hyper gave (see [`hyper_error_replacement`]).
struct Rewrite {
    bytes: Vec<u8>,
    written: usize,
}

impl ConnIo {
    /// No Nagle delay: an answer goes out whole, at once.
    pub fn set_nodelay(&self) {
        let _ = self.stream.set_nodelay(true);
    }

    /// Whether what hyper writes (`first`, its first buffer, and nothing after it) is its own
    /// error answer, to be rewritten (or is being rewritten). The first comparison fails for
    /// every answer of ours but a 4xx.
    #[inline(always)]
    fn rewrites(&mut self, first: &[u8], nothing_after: impl FnOnce() -> bool) -> bool {
        if self.rewrite.is_none() && first.get(9) != Some(&b'4') {
            return false;
        }
        self.rewrites_slowly(first, nothing_after())
    }

    #[cold]
    #[inline(never)]
    fn rewrites_slowly(&mut self, first: &[u8], nothing_after: bool) -> bool {
        if self.rewrite.is_none() && nothing_after {
            self.rewrite =
                hyper_error_replacement(first).map(|bytes| Rewrite { bytes, written: 0 });
        }
        self.rewrite.is_some()
    }

    /// Write the replacement; once it is all written, tell hyper that its `claimed` bytes were.
    fn poll_rewrite(&mut self, cx: &mut Context<'_>, claimed: usize) -> Poll<io::Result<usize>> {
        let Some(rewrite) = self.rewrite.as_mut() else {
            return Poll::Ready(Ok(0));
        };
        while rewrite.written < rewrite.bytes.len() {
            let rest = &rewrite.bytes[rewrite.written..];
            match Pin::new(&mut self.stream).poll_write(cx, rest) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Ok(0)),
                Poll::Ready(Ok(n)) => rewrite.written += n,
                other => return other,
            }
        }
        self.rewrite = None;
        Poll::Ready(Ok(claimed))
    }
}

impl Drop for ConnIo {
    fn drop(&mut self) {
        let flags = self.conn.flags.load(Ordering::Acquire);
        if flags & RESET != 0 {
            if let Err(e) = self.stream.set_zero_linger() {
                tracing::debug!(error = %e, "cannot set SO_LINGER 0; the connection closes normally");
            }
        } else if flags & TIMED_OUT_MID_HEAD != 0 {
            // Best effort, as hyper's own 408 is: a client that sends nothing does not read.
            let _ = self.stream.try_write(&REQUEST_TIMEOUT);
        }
    }
}

impl AsyncRead for ConnIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        let read = (buf.filled().len() - before) as u64;
        if read > 0 {
            let total = this.conn.read.load(Ordering::Relaxed);
            if total == 0 && buf.filled()[before..].starts_with(b"PRI ") {
                this.conn.h2.store(true, Ordering::Relaxed);
            }
            this.conn.read.store(total + read, Ordering::Relaxed);
        }
        polled
    }
}

impl AsyncWrite for ConnIo {
    #[inline]
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.rewrites(buf, || true) {
            return this.poll_rewrite(cx, buf.len());
        }
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    #[inline]
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(first) = bufs.first() {
            if this.rewrites(first, || bufs[1..].iter().all(|b| b.is_empty())) {
                return this.poll_rewrite(cx, first.len());
            }
        }
        Pin::new(&mut this.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// Every open connection, for graceful shutdown and `--max-connections`.
#[derive(Debug)]
pub struct Connections {
    open: Mutex<HashMap<u64, Arc<Connection>>>,
    next: AtomicU64,
    stopping: AtomicBool,
    all_closed: Notify,
    /// The most open at once; one more is closed as soon as it is accepted.
    max: usize,
    counts: Arc<ConnectionCounts>,
}

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Connection>>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// No connection yet; at most `max` open at once, counted in `counts`.
    pub fn new(max: usize, counts: Arc<ConnectionCounts>) -> Connections {
        counts.set_max(max);
        Connections {
            open: Mutex::default(),
            next: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            all_closed: Notify::new(),
            max,
            counts,
        }
    }

    /// Register an accepted socket: its handle, and the I/O hyper serves; or, with
    /// `--max-connections` open, the socket back, to be closed.
    pub fn accept(&self, stream: TcpStream) -> Result<(u64, Arc<Connection>, ConnIo), TcpStream> {
        let mut open = self.lock();
        if open.len() >= self.max {
            drop(open);
            self.counts.refused();
            return Err(stream);
        }
        let conn = Arc::new(Connection::new(true));
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        if self.stopping.load(Ordering::Acquire) {
            conn.flags.fetch_or(SHUTDOWN, Ordering::AcqRel);
        }
        open.insert(key, conn.clone());
        drop(open);
        self.counts.opened();
        let io = ConnIo {
            stream,
            conn: conn.clone(),
            rewrite: None,
        };
        Ok((key, conn, io))
    }

    /// The most connections open at once.
    pub fn max(&self) -> usize {
        self.max
    }

    fn closed(&self, key: u64) {
        let mut open = self.lock();
        if open.remove(&key).is_some() {
            self.counts.closed();
        }
        if open.is_empty() && self.stopping.load(Ordering::Acquire) {
            self.all_closed.notify_waiters();
        }
    }

    /// Ask every open connection to finish what it has in flight and close; return once all
    /// have.
    pub async fn shutdown(&self) {
        let closed = self.all_closed.notified();
        let mut closed = pin!(closed);
        closed.as_mut().enable();
        {
            let open = self.lock();
            self.stopping.store(true, Ordering::Release);
            if open.is_empty() {
                return;
            }
            for conn in open.values() {
                conn.flags.fetch_or(SHUTDOWN, Ordering::AcqRel);
                conn.task.wake();
            }
        }
        closed.await;
    }
}

/// The time budgets a connection's task keeps.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// `--header-read-timeout`: no request in flight and no complete head for this long.
    pub header_read: Duration,
    /// `--request-timeout`: a request under way, head included, for this long.
    pub request: Duration,
}

impl Timeouts {
    /// Four ticks per timeout, of the shorter of the two.
    fn tick(&self) -> Duration {
        (self.header_read.min(self.request) / 4).max(Duration::from_millis(1))
    }

    /// Ticks in `timeout`, rounded up.
    fn ticks(timeout: Duration, tick: Duration) -> u32 {
        let ticks = timeout.as_nanos().div_ceil(tick.as_nanos().max(1));
        u32::try_from(ticks).unwrap_or(u32::MAX).max(1)
    }
}

/// Drive one connection (hyper's future, with `graceful` to ask it to finish) to its end;
/// `connections` forgets it then.
pub async fn drive<C, E>(
    connections: Arc<Connections>,
    key: u64,
    conn: Arc<Connection>,
    connection: C,
    graceful: impl Fn(Pin<&mut C>),
    peer: SocketAddr,
    timeouts: Timeouts,
) where
    C: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    // Declared first, dropped last: the socket is closed before the connection is forgotten.
    let _forget = Forget { connections, key };
    let mut connection = pin!(connection);
    let tick = timeouts.tick();
    // Closed after this many quiet ticks in a row (4 with the default timeouts).
    let header_ticks = Timeouts::ticks(timeouts.header_read, tick);
    // Closed after more busy ticks than this with no request finished: the first busy tick
    // may be a part of one, so the request has been under way for at least the timeout.
    let request_ticks = Timeouts::ticks(timeouts.request, tick);
    let mut idle = pin!(tokio::time::sleep(tick));
    let mut idle_registered = false;
    let mut last_activity = u64::MAX;
    let mut quiet_ticks = 0u32;
    let mut finished = 0u32;
    let mut busy_ticks = 0u32;
    let mut shutting_down = false;
    let mut registered: Option<Waker> = None;
    let ended = poll_fn(|cx| {
        if !registered.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            conn.task.register(cx.waker());
            registered = Some(cx.waker().clone());
        }
        let flags = conn.flags.load(Ordering::Acquire);
        if flags & KILL != 0 {
            return Poll::Ready(Ended::Killed);
        }
        if flags & SHUTDOWN != 0 && !shutting_down {
            shutting_down = true;
            graceful(connection.as_mut());
        }
        // Polled once to register, then only looked at: the timer wakes the task when due.
        if !idle_registered || idle.is_elapsed() {
            loop {
                if idle.as_mut().poll(cx).is_pending() {
                    idle_registered = true;
                    break;
                }
                if conn.quiet_since(&mut last_activity) {
                    quiet_ticks += 1;
                } else {
                    quiet_ticks = 0;
                }
                if quiet_ticks >= header_ticks {
                    if conn.partial_head() {
                        conn.flags.fetch_or(TIMED_OUT_MID_HEAD, Ordering::AcqRel);
                    }
                    return Poll::Ready(Ended::TimedOut);
                }
                match conn.underway(&mut finished) {
                    Underway::Progress | Underway::Idle => busy_ticks = 0,
                    Underway::Held => {}
                    Underway::Busy => busy_ticks += 1,
                }
                if busy_ticks > request_ticks {
                    // Still reading its head (a shorter --request-timeout than the header
                    // timeout): a 408, as for the header timeout. Past its head, a response
                    // may have begun, so the connection just closes.
                    if conn.partial_head() && !conn.in_flight() {
                        conn.flags.fetch_or(TIMED_OUT_MID_HEAD, Ordering::AcqRel);
                    }
                    return Poll::Ready(Ended::RequestTimedOut);
                }
                idle.as_mut().reset(Instant::now() + tick);
            }
        }
        connection.as_mut().poll(cx).map(Ended::Served)
    })
    .await;
    match ended {
        Ended::Served(Ok(())) => {}
        Ended::Served(Err(e)) => {
            tracing::debug!(%peer, error = %e, "connection ended with an error")
        }
        Ended::Killed => tracing::debug!(%peer, "connection ended by a fault"),
        Ended::TimedOut => tracing::debug!(
            %peer,
            timeout = ?timeouts.header_read,
            "no complete request head in time; connection closed"
        ),
        Ended::RequestTimedOut => tracing::debug!(
            %peer,
            timeout = ?timeouts.request,
            "a request took longer than --request-timeout; connection closed"
        ),
    }
}

enum Ended<E> {
    Served(Result<(), E>),
    Killed,
    TimedOut,
    RequestTimedOut,
}

/// Forgets a connection when its task ends, however it ends.
struct Forget {
    connections: Arc<Connections>,
    key: u64,
}

impl Drop for Forget {
    fn drop(&mut self) {
        self.connections.closed(self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyper_own_error_answers_get_the_provider_body_and_keep_their_date() {
        let date = "date: Tue, 01 Dec 2026 02:37:52 GMT\r\n";
        for (status, reason) in [
            ("400 Bad Request", "BAD_REQUEST"),
            ("414 URI Too Long", "URI_TOO_LONG"),
            (
                "431 Request Header Fields Too Large",
                "REQUEST_HEADER_FIELDS_TOO_LARGE",
            ),
        ] {
            let hyper = format!(
                "HTTP/1.1 {status}\r\nconnection: close\r\ncontent-length: 0\r\n{date}\r\n"
            );
            let ours = hyper_error_replacement(hyper.as_bytes()).expect(status);
            let ours = String::from_utf8(ours).unwrap();
            let (head, body) = ours.split_once("\r\n\r\n").unwrap();
            assert!(
                head.starts_with(&format!("HTTP/1.1 {status}\r\n")),
                "{ours}"
            );
            assert!(head.ends_with(date.trim_end()), "{ours}");
            assert!(
                head.contains(&format!("\r\ncontent-length: {}\r\n", body.len())),
                "{ours}"
            );
            let value: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(value["error"]["reason"], reason);
        }
    }

    #[test]
    fn answers_of_ours_are_never_rewritten() {
        for head in [
            // A 4xx of ours: it has a type and a body.
            "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: 120\r\n\r\n",
            "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
            // Another status hyper does not answer on its own.
            "HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
            // Not a whole head.
            "HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n",
            "{\"result\":4",
        ] {
            assert_eq!(hyper_error_replacement(head.as_bytes()), None, "{head}");
        }
    }

    #[test]
    fn ticks_are_a_quarter_of_the_shorter_timeout() {
        let defaults = Timeouts {
            header_read: Duration::from_secs(10),
            request: Duration::from_secs(30),
        };
        let tick = defaults.tick();
        assert_eq!(tick, Duration::from_millis(2500));
        assert_eq!(Timeouts::ticks(defaults.header_read, tick), 4);
        assert_eq!(Timeouts::ticks(defaults.request, tick), 12);
        let short = Timeouts {
            header_read: Duration::from_secs(10),
            request: Duration::from_millis(300),
        };
        assert_eq!(short.tick(), Duration::from_millis(75));
        assert_eq!(Timeouts::ticks(short.header_read, short.tick()), 134);
        assert_eq!(Timeouts::ticks(Duration::ZERO, Duration::from_millis(1)), 1);
    }
}
