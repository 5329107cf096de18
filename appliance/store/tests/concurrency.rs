//! Two threads, separate connections, 50 booking attempts each on the same slots.
mod common;

use std::sync::{Arc, Barrier};

use common::*;
use fd_store::{Actor, BookRequest, NewPatient, StoreError};

#[test]
fn two_writers_never_double_book() {
    let (dir, mut s) = demo();
    // 30-min grid for 30-min consultations: the 50 slots do not overlap each other.
    s.set_setting("slot_granularity_minutes", 30.into(), Actor::Cli).unwrap();
    let t = s.appointment_type_by_name("Consultation").unwrap();
    // 50 slots; both threads try all of them, in opposite orders, so they collide in the middle.
    let slots: Vec<_> = s.available_slots(t.id, date(2026, 3, 9), date(2026, 3, 20)).unwrap().into_iter().take(50).map(|o| o.id).collect();
    assert_eq!(slots.len(), 50);
    drop(s);
    let barrier = Arc::new(Barrier::new(2));
    let handles: Vec<_> = (0..2)
        .map(|n| {
            let (dir, slots, barrier) = (dir.path().to_path_buf(), slots.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut s = open(&dir);
                let p = s
                    .upsert_patient(&NewPatient { first_name: format!("Racer{n}"), last_name: "Test".into(), phone: Some(format!("+1217555900{n}")), dob: None }, Actor::System)
                    .unwrap();
                barrier.wait();
                let mut won = Vec::new();
                let order: Vec<usize> = if n == 0 { (0..slots.len()).collect() } else { (0..slots.len()).rev().collect() };
                for i in order {
                    let slot = &slots[i];
                    match s.book(&BookRequest { slot, patient_id: p.id, idempotency_key: &format!("t{n}:{i}"), source_call: None }, Actor::System) {
                        Ok(b) => won.push((i, b.appointment.start)),
                        Err(StoreError::SlotTaken) => {}
                        Err(e) => panic!("unexpected error: {e}"),
                    }
                    // A caller's think time. Without it one thread re-takes the write lock right
                    // after each commit while the other sleeps in SQLite's busy handler, and the
                    // run degenerates into two sequential batches with no real race.
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                won
            })
        })
        .collect();
    let won: Vec<Vec<(usize, chrono::DateTime<chrono::Utc>)>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    eprintln!("winners: thread 0 {}, thread 1 {}", won[0].len(), won[1].len());
    assert_eq!(won[0].len() + won[1].len(), 50, "exactly one winner per slot: {} + {}", won[0].len(), won[1].len());
    let mut all: Vec<usize> = won.iter().flatten().map(|w| w.0).collect();
    all.sort();
    assert_eq!(all, (0..50).collect::<Vec<_>>(), "every slot won exactly once");
    let s = open(dir.path());
    let dup: i64 = s
        .raw_conn()
        .query_row("SELECT count(*) FROM (SELECT start_at FROM appointments WHERE status = 'booked' GROUP BY chair_id, start_at HAVING count(*) > 1)", [], |r| r.get(0))
        .unwrap();
    assert_eq!(dup, 0);
    // 30-min consultations on one chair: no two booked ones overlap either.
    let overlap: i64 = s
        .raw_conn()
        .query_row(
            "SELECT count(*) FROM appointments a JOIN appointments b ON a.id < b.id AND a.chair_id = b.chair_id
             WHERE a.status = 'booked' AND b.status = 'booked' AND a.start_at < b.end_at AND b.start_at < a.end_at",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(overlap, 0);
}
