//! The HTTP server: bind, accept loop, graceful shutdown.
//!
//! hyper-util's `auto` builder serves HTTP/1.1 and HTTP/2 on the same port. Each connection
//! is driven by its own task (`connection::drive`), which also does what the server asks of
//! a connection: close it when no complete request head arrives within
//! `--header-read-timeout` (a client that opens a connection and never finishes its request
//! is disconnected instead of holding a task forever), end it without a response for the
//! connection faults (a TCP reset — `SO_LINGER` 0, then close — or a plain close), and finish
//! it gracefully at shutdown; it also holds a whole request to `--request-timeout`.
//!
//! At most `--max-connections` are open at once (by default three quarters of the open-file
//! limit, which the program raises to its hard limit at start: see `limits`). One more is
//! accepted and closed at once, counted in the metrics and logged at most every 10 s, rather
//! than left in the kernel's backlog: a client learns at once that the mock is full instead of
//! waiting out its connect timeout, and the count is exact. A failed accept (out of file
//! descriptors all the same) is retried 50 ms later, counted and logged the same way, so the
//! loop neither spins nor floods the log.
//!
//! Shutdown stops accepting, lets open requests finish within the grace period, ends the
//! running journeys whose deadline falls within the callback drain window, then drains the
//! callback dispatcher (callbacks due within the drain window are attempted, the rest logged
//! as undelivered), and then returns. With `--admin-bind`, the admin API has a listener of its
//! own (`server::admin`), stopped with the provider port's.

mod admin;
mod connection;
pub mod limits;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use connection::Connections;

use crate::app::App;
use crate::catalogue::Catalogue;
use crate::config::Config;
use crate::router::{respond, Answer};

/// A server that is listening. Dropping it does not stop it; call [`RunningServer::shutdown`].
pub struct RunningServer {
    addr: SocketAddr,
    max_connections: usize,
    app: Arc<App>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    admin_task: Option<JoinHandle<()>>,
}

impl RunningServer {
    /// The address actually bound (the real port when the config asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The admin listener's address, with `--admin-bind`.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.app.config().admin_bind
    }

    /// `http://127.0.0.1:PORT`, for clients.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The most connections served at once (`--max-connections`, or its default).
    pub fn max_connections(&self) -> usize {
        self.max_connections
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
        for task in std::iter::once(self.task).chain(self.admin_task) {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "the server task ended abnormally");
            }
        }
        let window = self.app.config().callbacks.drain_window;
        let ended = self.app.journeys().end_due_within(window);
        if ended > 0 {
            tracing::info!(
                ended,
                "journeys due within the callback drain window ended early"
            );
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
    let admin_listener = admin::bind(&mut config, addr).await?;
    // journeyUrl needs the real port when the config asked for port 0.
    config.public_url = Some(config.public_base(addr));
    let grace = config.shutdown_grace;
    let timeouts = connection::Timeouts {
        header_read: config.header_read_timeout,
        request: config.request_timeout,
    };
    let max_connections = config
        .max_connections
        .unwrap_or_else(|| limits::default_max_connections(limits::fd_limit()));
    let watching = config.watch;
    let app = Arc::new(App::new(config, catalogue));
    app.start_replica_sync();
    let connections = Arc::new(Connections::new(
        max_connections,
        app.connection_counts().clone(),
    ));
    if watching {
        crate::reload::spawn(&app);
    }
    let (stop, stopped) = watch::channel(false);
    let admin_task = admin_listener.map(|listener| {
        tokio::spawn(admin::serve(
            listener,
            app.clone(),
            stopped.clone(),
            timeouts.header_read,
            grace,
        ))
    });
    let task = tokio::spawn(accept_loop(
        listener,
        app.clone(),
        connections,
        stopped,
        timeouts,
        grace,
    ));
    Ok(RunningServer {
        addr,
        max_connections,
        app,
        stop,
        task,
        admin_task,
    })
}

async fn accept_loop(
    listener: TcpListener,
    app: Arc<App>,
    connections: Arc<Connections>,
    mut stopped: watch::Receiver<bool>,
    timeouts: connection::Timeouts,
    grace: Duration,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // No hyper header read timeout: the connection's task keeps it (see `connection`).
    builder.http1().keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    let counts = app.connection_counts().clone();
    let mut accept_errors = Throttle::default();
    let mut refusals = Throttle::default();

    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: the connection waits in the
                    // backlog, so back off instead of spinning on it, and log now and then.
                    counts.accept_failed();
                    if let Some(more) = accept_errors.hit(Instant::now()) {
                        tracing::warn!(error = %e, failed_since_last_log = more, "accept failed; retrying every 50 ms");
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            _ = stopped.changed() => break,
        };
        let (key, conn, io) = match connections.accept(stream) {
            Ok(accepted) => accepted,
            Err(refused) => {
                // Closed at once: the client learns now rather than waiting in the backlog.
                drop(refused);
                if let Some(more) = refusals.hit(Instant::now()) {
                    tracing::warn!(
                        %peer,
                        max_connections = connections.max(),
                        refused_since_last_log = more,
                        "connection refused: --max-connections are open (raise it, with the open-file limit, or find what holds them)"
                    );
                }
                continue;
            }
        };
        io.set_nodelay();
        // One reference per connection to the app and the connection's handle, so a request
        // clones a count that only this connection touches, not the app's, which every
        // worker thread would bounce between cores.
        let context = Arc::new((app.clone(), conn.clone()));
        let service = service_fn(move |request| {
            // Called by the connection's task as the request head completes, and answered
            // here rather than in the future: hyper reads on before it polls that future, and
            // a request still alive then holds its part of the read buffer, so hyper would
            // take a new buffer for every request.
            let in_flight = context.1.begin();
            let (app, conn) = &*context;
            let answer = respond(app, request, conn);
            async move {
                let mut response = match answer {
                    Answer::Now(response) => response,
                    Answer::Later(later) => later.await,
                };
                response.body_mut().hold(in_flight);
                Ok::<_, Infallible>(response)
            }
        });
        let connection = builder
            .serve_connection(TokioIo::new(io), service)
            .into_owned();
        tokio::spawn(connection::drive(
            connections.clone(),
            key,
            conn,
            connection,
            |c| c.graceful_shutdown(),
            peer,
            timeouts,
        ));
    }
    drop(listener);
    tokio::select! {
        _ = connections.shutdown() => tracing::debug!("all connections closed"),
        _ = tokio::time::sleep(grace) => {
            tracing::warn!(grace = ?grace, "connections still open at the end of the grace period");
        }
    }
}

/// How long the accept loop waits after a failed accept.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// A warning that recurs (every refused connection, every failed accept) is logged at most
/// once per interval, with how many were not logged since: a flood must not fill the log.
#[derive(Debug)]
struct Throttle {
    interval: Duration,
    next: Option<Instant>,
    unlogged: u64,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle {
            interval: Duration::from_secs(10),
            next: None,
            unlogged: 0,
        }
    }
}

impl Throttle {
    /// One more at `now`: `Some(how many were not logged since the last one)` when this one
    /// is to be logged.
    fn hit(&mut self, now: Instant) -> Option<u64> {
        match self.next {
            Some(next) if now < next => {
                self.unlogged += 1;
                None
            }
            _ => {
                self.next = Some(now + self.interval);
                Some(std::mem::take(&mut self.unlogged))
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recurring_warning_is_logged_once_per_interval_with_the_count_it_skipped() {
        let mut throttle = Throttle::default();
        let start = Instant::now();
        assert_eq!(throttle.hit(start), Some(0));
        for i in 1..=5 {
            assert_eq!(throttle.hit(start + Duration::from_secs(i)), None);
        }
        assert_eq!(throttle.hit(start + Duration::from_secs(10)), Some(5));
        assert_eq!(throttle.hit(start + Duration::from_secs(11)), None);
        assert_eq!(throttle.hit(start + Duration::from_secs(60)), Some(1));
    }
}
