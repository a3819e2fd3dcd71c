//! The HTTP server: bind, accept loop, per-connection limits, graceful shutdown.
//!
//! hyper-util's `auto` builder serves HTTP/1.1 and HTTP/2 on the same port. A Tokio timer is
//! installed on the HTTP/1 side so that `header_read_timeout` really fires: a client that
//! opens a connection and never finishes its request head is disconnected instead of holding
//! a task forever. Shutdown stops accepting, lets open requests finish within the grace
//! period, then drains the callback dispatcher (callbacks due within the drain window are
//! attempted, the rest logged as undelivered), and then returns.
//!
//! Faults that misbehave below HTTP need the connection itself: each connection has a
//! [`Connection`] handle that a request can use to end it, with a TCP reset (`SO_LINGER` 0,
//! then close) or a plain close, without a response. The socket is wrapped in [`ConnIo`],
//! whose `Drop` sets the zero linger when a reset was asked for, so the reset happens exactly
//! when hyper's connection (and with it the socket) is dropped by the connection task.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::catalogue::Catalogue;
use crate::config::Config;
use crate::routes::App;

/// The body of every response: the whole body at once (every normal answer, as cheap as
/// `Full`), or, for the `truncated` fault, part of a body that then fails, so that the
/// connection is cut short of the `Content-Length` that was sent.
#[derive(Debug)]
pub struct Body(Kind);

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
    Body(Kind::Full((!bytes.is_empty()).then_some(bytes)))
}

impl Body {
    /// A body that sends `part` and then fails. Set `Content-Length` to the length the body
    /// should have had: hyper then frames the response by it and the client sees it fall short.
    pub fn cut(part: Bytes) -> Body {
        Body(Kind::Cut {
            part: (!part.is_empty()).then_some(part),
            flushed: false,
        })
    }

    /// The bytes of a whole body that has not been sent yet.
    pub fn bytes(&self) -> Option<&Bytes> {
        match &self.0 {
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
        match &mut self.get_mut().0 {
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
        matches!(self.0, Kind::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Kind::Full(Some(data)) => SizeHint::with_exact(data.len() as u64),
            Kind::Full(None) => SizeHint::with_exact(0),
            Kind::Cut { .. } => SizeHint::default(),
        }
    }
}

/// One accepted connection, as a request handler can act on it.
#[derive(Debug, Default)]
pub struct Connection {
    kill: Notify,
    reset: AtomicBool,
    attached: bool,
}

impl Connection {
    fn attached() -> Arc<Connection> {
        Arc::new(Connection {
            attached: true,
            ..Connection::default()
        })
    }

    /// A handle with no socket behind it (for embedding the app without the server).
    pub fn detached() -> Connection {
        Connection::default()
    }

    /// Whether [`Connection::abort`] can end a real connection.
    pub fn is_attached(&self) -> bool {
        self.attached
    }

    /// End the connection with no response: a TCP reset when `reset`, else a plain close.
    /// Never returns: the connection task drops the request along with the connection.
    pub async fn abort(&self, reset: bool) {
        self.reset.store(reset, Ordering::Relaxed);
        self.kill.notify_one();
        std::future::pending::<()>().await;
    }
}

/// The accepted socket, closed with a zero linger (a TCP reset) when its connection asked.
pub struct ConnIo {
    stream: TcpStream,
    control: Arc<Connection>,
}

impl Drop for ConnIo {
    fn drop(&mut self) {
        if self.control.reset.load(Ordering::Relaxed) {
            if let Err(e) = self.stream.set_zero_linger() {
                tracing::debug!(error = %e, "cannot set SO_LINGER 0; the connection closes normally");
            }
        }
    }
}

impl AsyncRead for ConnIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
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

/// A server that is listening. Dropping it does not stop it; call [`RunningServer::shutdown`].
pub struct RunningServer {
    addr: SocketAddr,
    app: Arc<App>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RunningServer {
    /// The address actually bound (the real port when the config asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, for clients.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// Stop accepting, drain open connections within the grace period, drain callbacks
    /// within the callback drain window, and return.
    pub async fn shutdown(self) {
        // Held requests (delays, hangs) let go first, so they do not use up the grace period.
        self.app.begin_shutdown();
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the server task ended abnormally");
        }
        self.app.callbacks().drain().await;
    }

    /// Wait until the server stops (after [`RunningServer::shutdown`] from elsewhere, or a
    /// signal handled by the caller).
    pub async fn wait_for_signal_then_shutdown(self) {
        shutdown_signal().await;
        tracing::info!("shutting down");
        self.shutdown().await;
    }
}

/// Bind and start serving `catalogue` with `config`. Returns once the socket is bound, so a
/// caller can read the address and start sending requests immediately.
pub async fn start(mut config: Config, catalogue: Catalogue) -> std::io::Result<RunningServer> {
    let listener = TcpListener::bind(config.bind).await?;
    let addr = listener.local_addr()?;
    // journeyUrl needs the real port when the config asked for port 0.
    config.public_url = Some(config.public_base(addr));
    let grace = config.shutdown_grace;
    let header_read_timeout = config.header_read_timeout;
    let watching = config.watch;
    let app = Arc::new(App::new(config, catalogue));
    if watching {
        crate::reload::spawn(&app);
    }
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(accept_loop(
        listener,
        app.clone(),
        stopped,
        header_read_timeout,
        grace,
    ));
    Ok(RunningServer {
        addr,
        app,
        stop,
        task,
    })
}

async fn accept_loop(
    listener: TcpListener,
    app: Arc<App>,
    mut stopped: watch::Receiver<bool>,
    header_read_timeout: Duration,
    grace: Duration,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();

    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let control = Connection::attached();
        let io = ConnIo {
            stream,
            control: control.clone(),
        };
        // One reference per connection to the app and the connection's handle, so a request
        // clones a count that only this connection touches, not the app's, which every
        // worker thread would bounce between cores.
        let context = Arc::new((app, control.clone()));
        let service = service_fn(move |request| {
            let context = context.clone();
            async move { Ok::<_, Infallible>(context.0.handle(request, &context.1).await) }
        });
        let connection = builder
            .serve_connection(TokioIo::new(io), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            tokio::select! {
                ended = connection => {
                    if let Err(e) = ended {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                }
                // A fault asked to end it: dropping the connection drops the socket (with a
                // zero linger for a reset) and the request that asked.
                _ = control.kill.notified() => tracing::debug!(%peer, "connection ended by a fault"),
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => tracing::debug!("all connections closed"),
        _ = tokio::time::sleep(grace) => {
            tracing::warn!(grace = ?grace, "connections still open at the end of the grace period");
        }
    }
}

/// SIGINT (Ctrl-C) or, on Unix, SIGTERM (what `docker stop` and Kubernetes send).
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
