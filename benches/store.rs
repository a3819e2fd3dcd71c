//! The journey store under load: one create-journey-url call (through the whole app, in
//! process) into a store already holding `n` running journeys at its `--max-journeys`, so
//! that every create evicts the oldest running journey. Eviction takes the first of an
//! ordered set, so 50,000 running journeys create as fast as 50; when it scanned the store,
//! create-journey-url fell from 10,946/s to 166/s at 50,000.
//!
//! `cargo bench --bench store`

use bytes::Bytes;
use http_body_util::Full;
use otk_mock::config::Config;
use otk_mock::{MockApp, MockServer};
use tokio::runtime::Runtime;

fn main() {
    divan::main();
}

const BODY: &str = r#"{"flowId": "66f0c2a1b2c3d4e5f6a7b8c9", "processingConfig": {"callbackUrl": "http://127.0.0.1:9/cb"}, "userInfo": {"name": {"firstName": "Asha", "lastName": "Rao"}}}"#;

/// A runtime and an app whose store is full of `n` running journeys.
fn full_store(n: usize) -> (Runtime, MockApp) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let app = runtime.block_on(async {
        let mut config = Config::ephemeral();
        config.max_journeys = n;
        config.auto_complete_after = None;
        let app = MockServer::builder()
            .config(config)
            .in_process()
            .expect("the mock starts");
        for i in 0..n {
            app.bind(&format!("RUNNING-{i}"), "in_progress")
                .await
                .expect("bound");
        }
        app
    });
    (runtime, app)
}

fn create_request() -> hyper::Request<Full<Bytes>> {
    hyper::Request::post("/api/v3/otk-service/create-journey-url")
        .header("authorization", "bench-token")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(BODY.as_bytes())))
        .expect("a request")
}

/// One create-journey-url into a full store of `n` running journeys (each evicts one).
#[divan::bench(args = [50, 5_000, 50_000], sample_count = 50, sample_size = 20)]
fn create_into_a_full_store(bencher: divan::Bencher, n: usize) {
    let (runtime, app) = full_store(n);
    bencher.bench_local(|| {
        let response = runtime.block_on(app.oneshot(create_request()));
        assert_eq!(response.status(), 200);
    });
}
