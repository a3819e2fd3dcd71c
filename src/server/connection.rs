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
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::wire::conn::{Connection, Underway, KILL, RESET, SHUTDOWN, TIMED_OUT_MID_HEAD};

/// What hyper answers a request head that did not arrive in time, and so do we.
const REQUEST_TIMEOUT: &[u8] =
    b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";

/// The accepted socket: counts what it reads (for the header read timeout) and closes with a
/// zero linger (a TCP reset) when its connection asked.
pub struct ConnIo {
    stream: TcpStream,
    conn: Arc<Connection>,
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
            let _ = self.stream.try_write(REQUEST_TIMEOUT);
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
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
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

/// Every open connection, for graceful shutdown.
#[derive(Debug, Default)]
pub struct Connections {
    open: Mutex<HashMap<u64, Arc<Connection>>>,
    next: AtomicU64,
    stopping: AtomicBool,
    all_closed: Notify,
}

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Connection>>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Register an accepted socket: its handle, and the I/O hyper serves.
    pub fn accept(&self, stream: TcpStream) -> (u64, Arc<Connection>, ConnIo) {
        let conn = Arc::new(Connection::new(true));
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        let mut open = self.lock();
        if self.stopping.load(Ordering::Acquire) {
            conn.flags.fetch_or(SHUTDOWN, Ordering::AcqRel);
        }
        open.insert(key, conn.clone());
        drop(open);
        let io = ConnIo {
            stream,
            conn: conn.clone(),
        };
        (key, conn, io)
    }

    fn closed(&self, key: u64) {
        let mut open = self.lock();
        open.remove(&key);
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
