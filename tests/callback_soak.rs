//! The callback soak, bounded for `cargo test`: 2,000 journeys end at once, and a receiver on
//! loopback fails every other attempt of each callback (the first, the third...). Every
//! callback must be delivered exactly once, none lost, none duplicated (no `duplicate` fault
//! is set), and the counters must balance. The full 10,000 in release, with the delivered
//! rate, is `benches/soak.sh callbacks`.

mod common;
mod support;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;

use common::start_with;
use support::{create_id, eventually, quick_config};

const CALLBACKS: usize = 2_000;

/// Per `webhook-id`: requests received, and how many were answered 2xx.
type Tally = Arc<Mutex<HashMap<String, (u32, u32)>>>;

/// A receiver that answers 500 to the odd-numbered attempts of each callback and 200 to the
/// even ones, counting by `webhook-id`.
async fn alternating_receiver() -> (String, Tally) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let tally: Tally = Arc::default();
    let seen = tally.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let seen = seen.clone();
                    async move {
                        let id = request
                            .headers()
                            .get("webhook-id")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_string();
                        let _ = request.into_body().collect().await;
                        let ok = {
                            let mut seen = seen.lock().unwrap();
                            let entry = seen.entry(id).or_default();
                            entry.0 += 1;
                            let ok = entry.0.is_multiple_of(2);
                            entry.1 += u32::from(ok);
                            ok
                        };
                        let mut response = Response::new(Full::new(Bytes::new()));
                        if !ok {
                            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                        }
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, tally)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_callback_is_delivered_once_to_a_receiver_failing_every_other_attempt() {
    let (url, tally) = alternating_receiver().await;
    let mut config = quick_config();
    config.callbacks.max_attempts = 8;
    config.callbacks.backoff_initial = Duration::from_millis(5);
    config.callbacks.backoff_max = Duration::from_millis(20);
    config.callbacks.timeout = Duration::from_secs(10);
    config.callbacks.signing_key = Some(otk_mock::config::SigningKey::parse("soak").unwrap());
    config.journal_entries = 0;
    let server = start_with(config).await;
    let body = json!({"flowId": "soak", "processingConfig": {"callbackUrl": url}});
    let mut ids = Vec::with_capacity(CALLBACKS);
    for _ in 0..CALLBACKS {
        ids.push(create_id(&server, &body, &[]).await);
    }
    // Ended from two tasks, so that rendering the callback bodies uses both workers.
    let halves: Vec<Vec<String>> = ids.chunks(CALLBACKS / 2).map(<[String]>::to_vec).collect();
    let mut enders = Vec::new();
    for half in halves {
        let app = (*server).clone();
        enders.push(tokio::spawn(async move {
            for id in &half {
                app.complete(id, None).await.unwrap();
            }
        }));
    }
    for ender in enders {
        ender.await.unwrap();
    }

    let stats = eventually("every callback to settle", || async {
        let stats = server.callbacks().await.stats;
        (stats.pending == 0).then_some(stats)
    })
    .await;
    let tally = tally.lock().unwrap().clone();
    let delivered = tally.values().filter(|(_, ok)| *ok >= 1).count();
    let duplicated: u32 = tally.values().map(|(_, ok)| ok.saturating_sub(1)).sum();
    let requests: u32 = tally.values().map(|(n, _)| n).sum();
    assert_eq!(delivered, CALLBACKS, "lost: {}", CALLBACKS - delivered);
    assert_eq!(duplicated, 0);
    assert_eq!(
        requests as usize,
        2 * CALLBACKS,
        "one failure and one success each"
    );
    for id in &ids {
        assert!(
            tally.contains_key(&format!("msg_{id}")),
            "{id} never arrived"
        );
    }
    assert_eq!(
        (
            stats.created,
            stats.delivered,
            stats.failed,
            stats.cancelled,
            stats.refused
        ),
        (CALLBACKS as u64, CALLBACKS as u64, 0, 0, 0),
        "{stats:?}"
    );
    assert_eq!((stats.reserved, stats.queued, stats.retrying), (0, 0, 0));
    assert!(server.callbacks().await.lost.is_empty());
}
