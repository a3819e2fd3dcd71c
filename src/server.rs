//! The HTTP server: bind, accept loop, per-connection limits, graceful shutdown.
//!
//! hyper-util's `auto` builder serves HTTP/1.1 and HTTP/2 on the same port. A Tokio timer is
//! installed on the HTTP/1 side so that `header_read_timeout` really fires: a client that
//! opens a connection and never finishes its request head is disconnected instead of holding
//! a task forever. Shutdown stops accepting, lets open requests finish within the grace
//! period, then drains the callback dispatcher (callbacks due within the drain window are
//! attempted, the rest logged as undelivered), and then returns.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::catalogue::Catalogue;
use crate::config::Config;
use crate::routes::App;

/// The body type of every response.
pub type Body = Full<Bytes>;

/// A body from bytes.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
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
    let app = Arc::new(App::new(config, catalogue));
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
        let service = service_fn(move |request| {
            let app = app.clone();
            async move { Ok::<_, Infallible>(app.handle(request).await) }
        });
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
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
