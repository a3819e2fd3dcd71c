//! The admin listener (`--admin-bind`): the admin API on an address of its own, so that the
//! provider port can face the apps under test (`0.0.0.0:8080`) while the control plane stays
//! on loopback or an internal network. The provider port then answers 404 under `/__admin/`,
//! and this one answers 404 for everything else.
//!
//! Admin traffic is light and has no connection faults to act out, so this is the plain hyper
//! loop (hyper's own header read timeout, graceful shutdown per connection) rather than the
//! provider port's connection driver.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::app::App;
use crate::config::{Config, OwnListener};
use crate::router::{respond_on, Answer, Listener};
use crate::wire::conn::Connection;

/// Bind `--admin-bind`, if set; record the mock's own listeners (`provider`: the provider
/// port, bound) so that callbacks never reach them; warn when the admin API is reachable
/// beyond loopback without a token. The config's `admin_bind` becomes the address bound.
pub(super) async fn bind(
    config: &mut Config,
    provider: SocketAddr,
) -> std::io::Result<Option<TcpListener>> {
    let listener = match config.admin_bind {
        Some(address) => Some(TcpListener::bind(address).await?),
        None => None,
    };
    let admin = match &listener {
        Some(l) => Some(l.local_addr()?),
        None => None,
    };
    config.admin_bind = admin;
    config.callbacks.own_listeners.push(OwnListener {
        addr: provider,
        name: if admin.is_some() {
            "provider API"
        } else {
            "provider and admin API"
        },
    });
    if let Some(addr) = admin {
        config.callbacks.own_listeners.push(OwnListener {
            addr,
            name: "admin API",
        });
    }
    let serving_admin = admin.unwrap_or(provider);
    if config.admin_token.is_none() && !serving_admin.ip().is_loopback() {
        tracing::warn!(
            address = %serving_admin,
            "the admin API is open to anyone who can reach {serving_admin}: they can read every journey (authKeyForCallback included), complete journeys, inject faults and reset the mock; set --admin-token (OTK_MOCK_ADMIN_TOKEN), or --admin-bind 127.0.0.1:PORT"
        );
    }
    Ok(listener)
}

/// Serve the admin API on `listener` until `stopped`, then let open requests finish within
/// `grace`.
pub(super) async fn serve(
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
    let mut connections = JoinSet::new();
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "admin listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped.changed() => break,
        };
        let context = Arc::new((app.clone(), Arc::new(Connection::detached())));
        let service = service_fn(move |request| {
            let (app, conn) = &*context;
            let answer = respond_on(app, request, conn, Listener::Admin);
            async move {
                Ok::<_, Infallible>(match answer {
                    Answer::Now(response) => response,
                    Answer::Later(later) => later.await,
                })
            }
        });
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let mut stop = stopped.clone();
        connections.spawn(async move {
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => return,
                _ = stop.changed() => connection.as_mut().graceful_shutdown(),
            }
            let _ = connection.await;
        });
        // Reap the connections that have ended, so the set holds only open ones.
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let drained = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(grace = ?grace, "admin connections still open at the end of the grace period");
    }
}
