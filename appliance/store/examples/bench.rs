//! Store benchmark: `cargo run --release -p fd-store --example bench [-- DIR]`
//!
//! Generates (once, cached in DIR, default /tmp/fd-store-bench) 1M calls, 100k patients and 200k
//! appointments in an encrypted and a plain database, then times: availability for 90 days, a
//! booking commit (synchronous=FULL), a 50-row call-list page (newest first, and deep), and prints
//! the SQLCipher / plain ratio for each. Timings are printed, never asserted.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{Duration as CDuration, TimeZone, Utc};
use fd_store::{Actor, BookRequest, CallPage, OpenOptions, Practice, Store};
use rand::{Rng, SeedableRng};
use rusqlite::params;

const CALLS: i64 = 1_000_000;
const PATIENTS: i64 = 100_000;
const APPOINTMENTS: i64 = 200_000;

fn opts(dir: &Path, plain: bool) -> OpenOptions {
    OpenOptions { credentials_dir: None, plaintext: plain, ..OpenOptions::new(dir) }
}

fn now() -> chrono::DateTime<Utc> {
    chrono_tz::America::Chicago.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap().with_timezone(&Utc)
}

fn generate(dir: &Path, plain: bool) -> Duration {
    let t0 = Instant::now();
    let mut s = Store::open_with(opts(dir, plain)).expect("open");
    s.set_fixed_now(now());
    let p = Practice::from_toml_str(include_str!("../../../tests/fixtures/callers/practice.toml")).expect("practice");
    s.import_practice(&p, Actor::Cli).expect("import");
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let c = s.raw_conn();
    c.execute_batch("BEGIN").unwrap();
    {
        let mut ins = c.prepare("INSERT INTO patients(first_name, last_name, phone, dob, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, 0, 0)").unwrap();
        for i in 0..PATIENTS {
            ins.execute(params![format!("First{i}"), format!("Last{}", i % 5000), format!("+1217{:07}", i), format!("19{:02}-0{}-1{}", 40 + i % 60, 1 + i % 9, i % 10)]).unwrap();
        }
        let mut ins = c
            .prepare("INSERT INTO calls(direction, caller, callee, started_at, answered_at, ended_at, outcome, summary, patient_id) VALUES ('inbound', ?1, '100', ?2, ?2, ?3, ?4, ?5, ?6)")
            .unwrap();
        let outcomes = ["booked", "rescheduled", "cancelled", "message", "transferred", "info", "abandoned"];
        let start = now().timestamp() - 5 * 365 * 86400;
        for i in 0..CALLS {
            let t = start + i * (5 * 365 * 86400 / CALLS);
            ins.execute(params![
                format!("+1217{:07}", rng.gen_range(0..PATIENTS)),
                t,
                t + rng.gen_range(30..400),
                outcomes[rng.gen_range(0..outcomes.len())],
                format!("Caller asked about appointment number {i}; resolved."),
                rng.gen_range(1..PATIENTS)
            ])
            .unwrap();
        }
        // Historical appointments back to back (30 min) before now; then ~half of the next 90 days'
        // office slots booked, so availability has real work to do.
        let mut ins = c
            .prepare("INSERT INTO appointments(patient_id, type_id, chair_id, start_at, end_at, status, idempotency_key, created_at, updated_at) VALUES (?1, 4, 1, ?2, ?3, ?4, ?5, 0, 0)")
            .unwrap();
        let future_slots = fd_store::scheduler::available_slots(
            &s.scheduling_input(now().date_naive(), now().date_naive() + CDuration::days(90)).unwrap(),
            4,
            now().date_naive(),
            now().date_naive() + CDuration::days(90),
        );
        let future: Vec<_> = future_slots.iter().step_by(4).collect();
        let hist = APPOINTMENTS - future.len() as i64;
        let first = now().timestamp() - 86400 - hist * 1800;
        for i in 0..hist {
            let t = first + i * 1800;
            ins.execute(params![rng.gen_range(1..PATIENTS), t, t + 1800, "completed", format!("gen:{i}")]).unwrap();
        }
        for (i, sl) in future.iter().enumerate() {
            ins.execute(params![rng.gen_range(1..PATIENTS), sl.start.timestamp(), sl.end.timestamp(), "booked", format!("genf:{i}")]).unwrap();
        }
    }
    c.execute_batch("COMMIT; ANALYZE; PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
    t0.elapsed()
}

fn median(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[(v.len() * 95 / 100).min(v.len() - 1)])
}

struct Figures {
    avail: (Duration, Duration),
    book: (Duration, Duration),
    page: (Duration, Duration),
    deep: (Duration, Duration),
    raw_page: (Duration, Duration),
    scan: Duration,
    open: Duration,
}

fn measure(dir: &Path, plain: bool) -> Figures {
    let t = Instant::now();
    let mut s = Store::open_with(opts(dir, plain)).expect("open");
    let open = t.elapsed();
    s.set_fixed_now(now());
    let from = now().date_naive();
    let to = from + CDuration::days(90);
    let ty = s.appointment_type_by_name("Cleaning & Exam").unwrap().id;
    let avail: Vec<_> = (0..20)
        .map(|_| {
            let t = Instant::now();
            let n = s.available_slots(ty, from, to).unwrap().len();
            assert!(n > 0);
            t.elapsed()
        })
        .collect();
    let consult = s.appointment_type_by_name("Consultation").unwrap().id;
    let slots = s.available_slots(consult, from + CDuration::days(1), to).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let run = rng.gen::<u32>();
    let book: Vec<_> = (0..40)
        .filter_map(|i| {
            let sl = &slots[rng.gen_range(0..slots.len())];
            let t = Instant::now();
            let r = s.book(&BookRequest { slot: &sl.id, patient_id: 1 + i, idempotency_key: &format!("bench:{run}:{i}"), source_call: None }, Actor::System);
            let e = t.elapsed();
            r.ok().map(|_| e)
        })
        .collect();
    let page: Vec<_> = (0..50)
        .map(|_| {
            let t = Instant::now();
            let v = s.list_calls(CallPage { before: None, limit: 50 }, Actor::Cli).unwrap();
            assert_eq!(v.len(), 50);
            t.elapsed()
        })
        .collect();
    let mid = now() - CDuration::days(900);
    let deep: Vec<_> = (0..50)
        .map(|_| {
            let t = Instant::now();
            let v = s.list_calls(CallPage { before: Some((mid, i64::MAX)), limit: 50 }, Actor::Cli).unwrap();
            assert_eq!(v.len(), 50);
            t.elapsed()
        })
        .collect();
    // The same page query without the audit-row write (which is a durable commit): pure read cost.
    let raw_page: Vec<_> = (0..50)
        .map(|_| {
            let t = Instant::now();
            let mut st = s.raw_conn().prepare_cached("SELECT id, caller, started_at, outcome, summary FROM calls ORDER BY started_at DESC, id DESC LIMIT 50").unwrap();
            let n = st.query_map([], |r| r.get::<_, i64>(0)).unwrap().count();
            assert_eq!(n, 50);
            t.elapsed()
        })
        .collect();
    // Every page of the calls table through the page cache: decryption cost dominates in SQLCipher.
    let t = Instant::now();
    let _: i64 = s.raw_conn().query_row("SELECT sum(length(summary)) FROM calls", [], |r| r.get(0)).unwrap();
    let scan = t.elapsed();
    Figures { avail: median(avail), book: median(book), page: median(page), deep: median(deep), raw_page: median(raw_page), scan, open }
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let root = std::env::args().nth(1).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/tmp/fd-store-bench"));
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("fd-store bench: {CALLS} calls, {PATIENTS} patients, {APPOINTMENTS} appointments; loadavg {}", load.trim());
    let mut figs = Vec::new();
    let mut gen = [None, None];
    for (i, (name, plain)) in [("sqlcipher", false), ("plain", true)].into_iter().enumerate() {
        let dir = root.join(name);
        if !dir.join("frontdesk.db").exists() {
            let g = generate(&dir, plain);
            println!("[{name}] generated dataset in {:.1} s", g.as_secs_f64());
            gen[i] = Some(g);
        } else {
            println!("[{name}] reusing dataset in {}", dir.display());
        }
        let size = std::fs::metadata(dir.join("frontdesk.db")).map(|m| m.len()).unwrap_or(0);
        let f = measure(&dir, plain);
        println!("[{name}] db size {:.0} MB, open+migrate-check {}", size as f64 / 1e6, ms(f.open));
        println!("[{name}] availability, 90 days, 60-min type:   median {}  p95 {}", ms(f.avail.0), ms(f.avail.1));
        println!("[{name}] booking commit (BEGIN IMMEDIATE, FULL): median {}  p95 {}", ms(f.book.0), ms(f.book.1));
        println!("[{name}] call list page, 50 newest:           median {}  p95 {}", ms(f.page.0), ms(f.page.1));
        println!("[{name}] call list page, 50 at ~500k deep:     median {}  p95 {}", ms(f.deep.0), ms(f.deep.1));
        println!("[{name}] same page, no audit write:          median {}  p95 {}", ms(f.raw_page.0), ms(f.raw_page.1));
        println!("[{name}] full scan of 1M calls (summary):     {}", ms(f.scan));
        figs.push(f);
    }
    let r = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
    let (e, p) = (&figs[0], &figs[1]);
    println!(
        "sqlcipher/plain ratio (medians): availability {:.2}x, booking {:.2}x, newest page {:.2}x, deep page {:.2}x, page w/o audit {:.2}x, full scan {:.2}x",
        r(e.avail.0, p.avail.0),
        r(e.book.0, p.book.0),
        r(e.page.0, p.page.0),
        r(e.deep.0, p.deep.0),
        r(e.raw_page.0, p.raw_page.0),
        r(e.scan, p.scan)
    );
    if let (Some(a), Some(b)) = (gen[0], gen[1]) {
        println!("sqlcipher/plain ratio, dataset generation: {:.2}x", r(a, b));
    }
}
