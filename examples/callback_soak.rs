//! The callback soak's driver and receiver, for `benches/soak.sh callbacks`: creates COUNT
//! journeys with a `callbackUrl` on a running otk-mock (which completes them itself, with
//! `--auto-complete-after 0s`), receives their callbacks on loopback failing every other
//! attempt of each (the first, the third...), and prints what arrived, by `webhook-id`
//! (the mock must sign callbacks for it to be sent), and the delivered rate.
//!
//! `cargo run --release --example callback_soak -- MOCK_URL COUNT [ADMIN_TOKEN]`
//!
//! Exits 1 if a callback was lost or duplicated, or the mock's counters do not balance.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Concurrent create calls.
const CREATORS: usize = 32;

#[derive(Default)]
struct Receiver {
    /// Per webhook-id: requests, and 2xx answers.
    tally: Mutex<HashMap<String, (u32, u32)>>,
    delivered: AtomicUsize,
    /// Microseconds from the start to the latest first delivery.
    last_delivery_us: AtomicU64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mock = args
        .next()
        .ok_or("usage: callback_soak MOCK_URL COUNT [ADMIN_TOKEN]")?;
    let count: usize = args.next().unwrap_or_else(|| "10000".into()).parse()?;
    let admin_token = args.next();

    let start = Instant::now();
    let receiver = Arc::new(Receiver::default());
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let hook = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(receive(listener, receiver.clone(), start));

    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let body = Bytes::from(
        serde_json::json!({"flowId": "soak", "processingConfig": {"callbackUrl": hook}})
            .to_string(),
    );
    let create_url = format!("{mock}/api/v3/otk-service/create-journey-url");
    let next = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let mut creators = Vec::new();
    for _ in 0..CREATORS {
        let (client, body, url) = (client.clone(), body.clone(), create_url.clone());
        let (next, refused) = (next.clone(), refused.clone());
        creators.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < count {
                loop {
                    let request = Request::post(&url)
                        .header("authorization", "soak")
                        .header("content-type", "application/json")
                        .body(Full::new(body.clone()))
                        .expect("request builds");
                    let response = client.request(request).await.expect("the mock answers");
                    let status = response.status();
                    let _ = response.into_body().collect().await;
                    match status {
                        StatusCode::OK => break,
                        // The intake is full: told, not lost; come back as asked.
                        StatusCode::SERVICE_UNAVAILABLE => {
                            refused.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        other => panic!("create-journey-url answered {other}"),
                    }
                }
            }
        }));
    }
    for creator in creators {
        creator.await?;
    }
    let created_in = start.elapsed();

    let deadline = Instant::now() + Duration::from_secs(120);
    while receiver.delivered.load(Ordering::Relaxed) < count && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Let anything late (a duplicate) arrive before counting.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let tally = receiver.tally.lock().expect("tally").clone();
    let delivered = tally.values().filter(|(_, ok)| *ok > 0).count();
    let duplicated: u32 = tally.values().map(|(_, ok)| ok.saturating_sub(1)).sum();
    let requests: u32 = tally.values().map(|(n, _)| n).sum();
    let lost = count.saturating_sub(delivered);
    let seconds = receiver.last_delivery_us.load(Ordering::Relaxed) as f64 / 1e6;
    println!(
        "callbacks: {count} created in {:.2}s ({} create calls answered 503 and retried)",
        created_in.as_secs_f64(),
        refused.load(Ordering::Relaxed)
    );
    println!(
        "callbacks: {delivered} delivered, {lost} lost, {duplicated} duplicated, {requests} requests received"
    );
    println!(
        "callbacks: first create to last delivery {seconds:.2}s: {:.0} delivered/s",
        delivered as f64 / seconds.max(1e-9)
    );

    // The counters only: a journey id that matches no attempt keeps the log out of the answer.
    let mut stats = Request::builder()
        .method(Method::GET)
        .uri(format!("{mock}/__admin/callbacks?journeyId=-"));
    if let Some(token) = &admin_token {
        stats = stats.header("authorization", format!("Bearer {token}"));
    }
    let response = client.request(stats.body(Full::new(Bytes::new()))?).await?;
    let text = response.into_body().collect().await?.to_bytes();
    let stats: serde_json::Value = serde_json::from_slice(&text)?;
    let stats = &stats["stats"];
    let n = |k: &str| stats[k].as_u64().unwrap_or(u64::MAX);
    let balanced = n("created") == n("delivered") + n("failed") + n("cancelled") + n("pending");
    println!(
        "mock: created {} = delivered {} + failed {} + cancelled {} + pending {} ({}); refused {}",
        n("created"),
        n("delivered"),
        n("failed"),
        n("cancelled"),
        n("pending"),
        if balanced { "balanced" } else { "NOT BALANCED" },
        n("refused"),
    );
    if lost > 0 || duplicated > 0 || !balanced {
        std::process::exit(1);
    }
    Ok(())
}

/// Answer callbacks: 500 to the odd-numbered attempts of each webhook-id, 200 to the others.
async fn receive(listener: TcpListener, receiver: Arc<Receiver>, start: Instant) {
    while let Ok((stream, _)) = listener.accept().await {
        let _ = stream.set_nodelay(true);
        let receiver = receiver.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let receiver = receiver.clone();
                async move {
                    let id = request
                        .headers()
                        .get("webhook-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    let _ = request.into_body().collect().await;
                    let (ok, first) = {
                        let mut tally = receiver.tally.lock().expect("tally");
                        let entry = tally.entry(id).or_default();
                        entry.0 += 1;
                        let ok = entry.0.is_multiple_of(2);
                        entry.1 += u32::from(ok);
                        (ok, ok && entry.1 == 1)
                    };
                    if first {
                        receiver.delivered.fetch_add(1, Ordering::Relaxed);
                        let us = start.elapsed().as_micros() as u64;
                        receiver.last_delivery_us.fetch_max(us, Ordering::Relaxed);
                    }
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
}
