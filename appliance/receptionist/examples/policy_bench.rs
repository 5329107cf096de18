//! Policy latency benchmark: runs every shared caller scenario many times against the in-memory
//! store and prints per-turn latency. The policy must stay far below the voice budget (it runs
//! between ASR and TTS on every turn).
//!
//!     cargo run --release -p fd-receptionist --example policy_bench [iterations]

#[path = "../tests/harness/mod.rs"]
mod harness;

use std::time::Instant;

use fd_receptionist::{CallContext, Config, Event, Receptionist};
use harness::*;

fn main() {
    let iterations: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let file: ScenarioFile = toml::from_str(&fixture("../../tests/fixtures/callers/scenarios.toml")).expect("scenarios");
    let mut turn_ns: Vec<u128> = Vec::new();
    let started = Instant::now();
    for _ in 0..iterations {
        for sc in &file.scenario {
            let mut w = load_world();
            let now = to_utc(w.tz, sc.now.as_deref().map(parse_local).unwrap_or(w.now_local));
            let ctx = CallContext { call_id: sc.id.clone(), caller_id: Some(sc.from.clone()), started_at: now };
            let mut r = Receptionist::new(w.facts.clone(), ctx, Config::default()).expect("receptionist");
            r.start(now);
            for line in &sc.lines {
                let t0 = Instant::now();
                let _ = r.handle(Event::CallerSaid { text: line.clone(), asr_confidence: None, understanding: None }, now, &mut w.tools);
                turn_ns.push(t0.elapsed().as_nanos());
            }
        }
    }
    turn_ns.sort_unstable();
    let n = turn_ns.len();
    let mean = turn_ns.iter().sum::<u128>() as f64 / n as f64;
    let pct = |p: f64| turn_ns[((n as f64 * p) as usize).min(n - 1)] as f64 / 1000.0;
    println!(
        "policy turns: {n} in {:.2} s wall | per turn: mean {:.1} us, p50 {:.1} us, p99 {:.1} us, max {:.1} us",
        started.elapsed().as_secs_f64(),
        mean / 1000.0,
        pct(0.50),
        pct(0.99),
        turn_ns[n - 1] as f64 / 1000.0
    );
}
