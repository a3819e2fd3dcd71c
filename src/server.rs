//! The HTTP server: bind, accept loop, graceful shutdown.
//!
//! hyper-util's `auto` builder serves HTTP/1.1 and HTTP/2 on the same port. Each connection
//! is driven by its own task (`connection::drive`), which also does what the server asks of
//! a connection: close it when no complete request head arrives within
//! `--header-read-timeout` (a client that opens a connection and never finishes its request
//! is disconnected instead of holding a task forever), end it without a response for the
//! connection faults (a TCP reset — `SO_LINGER` 0, then close — or a plain close), and finish
//! it gracefully at shutdown. Shutdown stops accepting, lets open requests finish within the
//! grace period, then drains the callback dispatcher (callbacks due within the drain window
//! are attempted, the rest logged as undelivered), and then returns.

mod connection;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

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
    let timeouts = connection::Timeouts {
        header_read: config.header_read_timeout,
        request: config.request_timeout,
    };
    let watching = config.watch;
    let app = Arc::new(App::new(config, catalogue));
    if watching {
        crate::reload::spawn(&app);
    }
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(accept_loop(listener, app.clone(), stopped, timeouts, grace));
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
    timeouts: connection::Timeouts,
    grace: Duration,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // No hyper header read timeout: the connection's task keeps it (see `connection`).
    builder.http1().keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    let connections = Arc::new(Connections::default());

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
        let (key, conn, io) = connections.accept(stream);
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
