//! Profiling aid: render new journeys in a loop (`perf record` this).
//!
//! `prof_render [N] [render|draw]`: N new journeys rendered, then N drawn (journey and person
//! only); naming one loop runs only that one, so that `perf stat` task clocks of two runs with
//! different N give one loop's CPU time per journey, however busy the machine is.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let c = otk_mock::catalogue::Catalogue::load(&Default::default(), 0).expect("catalogue");
    let s = c.find("success").expect("success");
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20000);
    let only = std::env::args().nth(2);
    if only.as_deref() != Some("draw") {
        let t = std::time::Instant::now();
        for i in 0..n {
            let _ = c.stateless_bytes(s, &format!("p-{i}"));
        }
        eprintln!("render: {:?}/op", t.elapsed() / n.max(1));
    }
    if only.as_deref() != Some("render") {
        let t = std::time::Instant::now();
        for i in 0..n {
            let _ = c.stateless_journey(&format!("q-{i}"));
        }
        eprintln!("journey and person: {:?}/op", t.elapsed() / n.max(1));
    }
}
