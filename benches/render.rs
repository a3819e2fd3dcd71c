//! Micro-benchmarks of the hot path: rendering each bundled scenario cold (a new journey id
//! every time) and cached (the same id), and scenario selection.
//!
//! `cargo bench --bench render`

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;

use otk_mock::app::App;
use otk_mock::catalogue::Catalogue;
use otk_mock::config::Config;
use otk_mock::scenario::loader::CatalogueSource;

fn main() {
    divan::main();
}

fn load() -> Catalogue {
    match Catalogue::load(&CatalogueSource::default(), 0) {
        Ok(catalogue) => catalogue,
        Err(errors) => panic!("the bundled catalogue does not load: {errors}"),
    }
}

/// An app that renders every time (no cache) and one that caches.
static COLD: LazyLock<App> = LazyLock::new(|| {
    App::new(
        Config {
            cache_entries: 0,
            ..Config::ephemeral()
        },
        load(),
    )
});
static WARM: LazyLock<App> = LazyLock::new(|| App::new(Config::ephemeral(), load()));
/// The catalogue the apps were loaded from, for the benchmarks' names (an app's catalogue
/// can be replaced by a reload, so it lends no `'static` borrow).
static CATALOGUE: LazyLock<Catalogue> = LazyLock::new(load);

fn names() -> Vec<&'static str> {
    CATALOGUE.names()
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// A whole `{"result": …}` body for a journey id never seen before.
#[divan::bench(args = names())]
fn body_cold(bencher: divan::Bencher, name: &str) {
    let app = &*COLD;
    let catalogue = app.catalogue();
    let scenario = catalogue.find(name).expect("bundled scenario");
    bencher.bench(|| {
        let id = format!("bench-{}", NEXT_ID.fetch_add(1, Ordering::Relaxed));
        app.stateless_body(scenario, &id).expect("renders")
    });
}

/// The same journey again: a cache lookup.
#[divan::bench(args = names())]
fn body_cached(bencher: divan::Bencher, name: &str) {
    let app = &*WARM;
    let catalogue = app.catalogue();
    let scenario = catalogue.find(name).expect("bundled scenario");
    let _ = app.stateless_body(scenario, "bench-cached");
    bencher.bench(|| {
        app.stateless_body(scenario, "bench-cached")
            .expect("cached")
    });
}

/// Choosing a scenario: by prefix, by header, and falling through to the default.
#[divan::bench(args = ["liveness_failed-42", "Q7K2M9X4ZA"])]
fn select(bencher: divan::Bencher, id: &str) {
    let app = &*WARM;
    let catalogue = app.catalogue();
    bencher.bench(|| {
        app.select(&catalogue, divan::black_box(id), Some("success"))
            .map(|(s, _)| s.name.len())
    });
}
