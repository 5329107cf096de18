//! Crash-test writer for the `torture` integration test: performs N random writes on an existing
//! store and prints `booked <appointment id> <idempotency key>` to stdout only after each booking
//! commits. The test kills it with SIGKILL at a random moment and checks the survivors.
//!
//! usage: fd-store-torture DATA_DIR SEED COUNT

use std::io::Write;

use chrono::{NaiveDate, TimeZone, Utc};
use fd_store::{Actor, BookRequest, CallEnd, Direction, NewCall, NewPatient, Outcome, Speaker, Store, StoreError, Turn};
use rand::{Rng, SeedableRng};

fn main() {
    if let Err(e) = run() {
        eprintln!("fd-store-torture: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), StoreError> {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, seed, count] = args.as_slice() else {
        return Err(StoreError::Invalid("usage: fd-store-torture DATA_DIR SEED COUNT".into()));
    };
    let seed: u64 = seed.parse().map_err(|_| StoreError::Invalid("SEED must be a number".into()))?;
    let count: u32 = count.parse().map_err(|_| StoreError::Invalid("COUNT must be a number".into()))?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut store = Store::open(std::path::Path::new(dir))?;
    store.set_fixed_now(Utc.with_ymd_and_hms(2026, 3, 2, 16, 0, 0).single().expect("valid time"));
    let types = store.appointment_types()?;
    let out = std::io::stdout();
    for i in 0..count {
        match rng.gen_range(0..10) {
            0..=4 => {
                let ty = &types[rng.gen_range(0..types.len())];
                let day = NaiveDate::from_ymd_opt(2026, 3, 3).expect("date") + chrono::Duration::days(rng.gen_range(0..60));
                let slots = store.available_slots(ty.id, day, day)?;
                if slots.is_empty() {
                    continue;
                }
                let s = &slots[rng.gen_range(0..slots.len())];
                let p = store.upsert_patient(
                    &NewPatient {
                        first_name: format!("T{seed}x{i}"),
                        last_name: "Torture".into(),
                        phone: Some(format!("+1217555{:04}", rng.gen_range(0..10000))),
                        dob: None,
                    },
                    Actor::System,
                )?;
                let key = format!("torture:{seed}:{i}");
                match store.book(&BookRequest { slot: &s.id, patient_id: p.id, idempotency_key: &key, source_call: None }, Actor::System) {
                    Ok(b) => {
                        let mut o = out.lock();
                        let _ = writeln!(o, "booked {} {}", b.appointment.id, key);
                        let _ = o.flush();
                    }
                    Err(StoreError::SlotTaken) => {}
                    Err(e) => return Err(e),
                }
            }
            5 => {
                let upcoming = store.list_appointments(None, 50, Actor::System)?;
                if let Some(a) = upcoming.iter().find(|a| a.status == fd_store::AppointmentStatus::Booked && a.idempotency_key.as_deref().is_some_and(|k| k.starts_with("torture"))) {
                    let _ = store.cancel(a.id, Actor::System);
                    let mut o = out.lock();
                    let _ = writeln!(o, "cancelled {}", a.id);
                    let _ = o.flush();
                }
            }
            _ => {
                let c = store.start_call(&NewCall { direction: Direction::Inbound, caller: Some("+12175550000".into()), callee: None })?;
                for k in 0..3 {
                    store.add_turn(c, &Turn { speaker: Speaker::Caller, text: format!("turn {k}"), offset_ms: k * 1000, asr_ms: Some(100), llm_ms: None, tts_ms: None, first_rtp_ms: None })?;
                }
                store.end_call(c, &CallEnd { outcome: Some(Outcome::Info), ..Default::default() })?;
            }
        }
    }
    Ok(())
}
