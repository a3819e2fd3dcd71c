//! One accepted connection, driven by its own task: hyper's connection future, plus what the
//! server itself asks of a connection, at a cost of a few uncontended atomics per request.
//!
//! - **Faults that end it.** A request can ask its connection to end without a response (a
//!   TCP reset or a plain close). [`Connection::abort`] sets a flag and wakes the task, which
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
//!   is between 1 and 1.25 timeouts after its last request ended.

use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use atomic_waker::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Flags of [`Connection::flags`].
const KILL: u8 = 1;
const RESET: u8 = 2;
const SHUTDOWN: u8 = 4;
/// The header read timeout struck with part of a head read: say 408 on the way out.
const TIMED_OUT_MID_HEAD: u8 = 8;

/// What hyper answers a request head that did not arrive in time, and so do we.
const REQUEST_TIMEOUT: &[u8] =
    b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";

/// One accepted connection, as the server and the requests on it act on it.
#[derive(Debug)]
pub struct Connection {
    flags: AtomicU8,
    /// The connection's task, woken to act on `flags`.
    task: AtomicWaker,
    attached: bool,
    /// Requests begun (high 32 bits, wrapping) and requests whose response has not been sent
    /// or dropped yet (low 32 bits), in one word so one load tells whether anything happened.
    activity: AtomicU64,
    /// Bytes read from the socket, ever, and how many of them had been read when the
    /// connection last became idle: more since then is part of a request head.
    read: AtomicU64,
    read_at_idle: AtomicU64,
    /// The client opened with the HTTP/2 preface.
    h2: AtomicBool,
}

const IN_FLIGHT: u64 = 0xffff_ffff;
const BEGUN: u64 = 1 << 32;

impl Connection {
    fn new(attached: bool) -> Connection {
        Connection {
            flags: AtomicU8::new(0),
            task: AtomicWaker::new(),
            attached,
            activity: AtomicU64::new(0),
            read: AtomicU64::new(0),
            read_at_idle: AtomicU64::new(0),
            h2: AtomicBool::new(false),
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
    fn quiet_since(&self, last: &mut u64) -> bool {
        let now = self.activity.load(Ordering::Acquire);
        let quiet = now == *last && now & IN_FLIGHT == 0;
        *last = now;
        quiet
    }

    /// Part of a request head has arrived since the last request ended.
    fn partial_head(&self) -> bool {
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

/// Drive one connection (hyper's future, with `graceful` to ask it to finish) to its end;
/// `connections` forgets it then.
pub async fn drive<C, E>(
    connections: Arc<Connections>,
    key: u64,
    conn: Arc<Connection>,
    connection: C,
    graceful: impl Fn(Pin<&mut C>),
    peer: SocketAddr,
    header_read_timeout: Duration,
) where
    C: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    // Declared first, dropped last: the socket is closed before the connection is forgotten.
    let _forget = Forget { connections, key };
    let mut connection = pin!(connection);
    // Four ticks per timeout; a connection is closed after four quiet ticks in a row.
    let tick = (header_read_timeout / 4).max(Duration::from_millis(1));
    let mut idle = pin!(tokio::time::sleep(tick));
    let mut idle_registered = false;
    let mut last_activity = u64::MAX;
    let mut quiet_ticks = 0u32;
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
                if quiet_ticks >= 4 {
                    if conn.partial_head() {
                        conn.flags.fetch_or(TIMED_OUT_MID_HEAD, Ordering::AcqRel);
                    }
                    return Poll::Ready(Ended::TimedOut);
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
            timeout = ?header_read_timeout,
            "no complete request head in time; connection closed"
        ),
    }
}

enum Ended<E> {
    Served(Result<(), E>),
    Killed,
    TimedOut,
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
