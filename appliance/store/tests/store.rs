mod common;

use chrono::{Duration, NaiveTime};
use common::*;
use fd_store::{
    Actor, AppointmentStatus, BookRequest, CallEnd, CallPage, Direction, NewCall, NewMessage, NewPatient, Outcome, Practice, SlotId,
    Speaker, Store, StoreError, Turn,
};

fn slot_at(s: &Store, type_name: &str, d: chrono::NaiveDate, hh: u32, mm: u32) -> Option<SlotId> {
    let t = s.appointment_type_by_name(type_name).expect("type");
    s.available_slots(t.id, d, d)
        .expect("slots")
        .into_iter()
        .find(|o| o.slot.local_start.time() == NaiveTime::from_hms_opt(hh, mm, 0).expect("time"))
        .map(|o| o.id)
}

fn patient(s: &mut Store, first: &str, last: &str, phone: &str) -> i64 {
    s.upsert_patient(&NewPatient { first_name: first.into(), last_name: last.into(), phone: Some(phone.into()), dob: None }, Actor::System)
        .expect("patient")
        .id
}

#[test]
fn demo_imports_and_reimport_is_idempotent() {
    let (_d, mut s) = demo();
    let count = |s: &Store, t: &str| -> i64 { s.raw_conn().query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0)).unwrap() };
    assert_eq!(count(&s, "appointments"), 3);
    assert_eq!(count(&s, "patients"), 3);
    assert_eq!(count(&s, "appointment_types"), 4);
    let p = Practice::from_toml_str(PRACTICE).unwrap();
    let r = s.import_practice(&p, Actor::Cli).unwrap();
    assert_eq!((r.existing_added, r.existing_already_present), (0, 3));
    assert_eq!(count(&s, "appointments"), 3);
    assert_eq!(count(&s, "patients"), 3);
    assert_eq!(count(&s, "office_breaks"), 4);
    let info = s.practice_summary().unwrap();
    assert_eq!(info.front_desk_uri, "sip:100@pbx.local");
    assert!(info.insurance_accepted.iter().any(|i| i == "Delta Dental"));
    let robert = s.patients_by_phone("+12175550123", Actor::System).unwrap();
    assert_eq!(robert.len(), 1);
    let appts = s.patient_appointments(robert[0].id, true, Actor::System).unwrap();
    assert_eq!(appts[0].local_start, date(2026, 3, 5).and_hms_opt(10, 0, 0).unwrap());
}

#[test]
fn broken_practice_file_names_field_and_line() {
    let bad = PRACTICE.replacen("minutes = 60\nbuffer_after = 10\nmin_notice_hours = 2\nwindow_days = 90\nprice = 180", "minutes = -5\nbuffer_after = 10\nmin_notice_hours = 2\nwindow_days = 90\nprice = 180", 1);
    assert_ne!(bad, PRACTICE);
    let e = Practice::from_toml_str(&bad).unwrap_err().to_string();
    let line = bad.lines().position(|l| l == "minutes = -5").unwrap() + 1;
    assert!(e.contains("[[appointment_types]] #2 'minutes'"), "{e}");
    assert!(e.contains("expected a positive integer"), "{e}");
    assert!(e.contains(&format!("line {line}")), "{e}");

    let bad = PRACTICE.replace("open = \"08:00\"", "open = \"8 o'clock\"");
    let e = Practice::from_toml_str(&bad).unwrap_err().to_string();
    assert!(e.contains("[[hours]] #1 'open'"), "{e}");

    let bad = PRACTICE.replace("type = \"Consultation\"", "type = \"Consult\"");
    let e = Practice::from_toml_str(&bad).unwrap_err().to_string();
    assert!(e.contains("[[existing]] #2 'type'"), "{e}");

    let bad = PRACTICE.replace("timezone = \"America/Chicago\"", "timezone = \"Mars/Olympus\"");
    let e = Practice::from_toml_str(&bad).unwrap_err().to_string();
    assert!(e.contains("[practice] 'timezone'"), "{e}");
}

#[test]
fn scenario_slots_match_expectations() {
    let (_d, s) = demo();
    // 10:00–11:00 taken (+10 min buffer), lunch 12–13: 13:00 and 14:00 are offered, 10:00 and 11:00 not.
    let d = date(2026, 3, 5);
    assert!(slot_at(&s, "Cleaning & Exam", d, 13, 0).is_some());
    assert!(slot_at(&s, "Cleaning & Exam", d, 14, 0).is_some());
    assert!(slot_at(&s, "Cleaning & Exam", d, 10, 0).is_none());
    assert!(slot_at(&s, "Cleaning & Exam", d, 11, 0).is_none());
    assert!(slot_at(&s, "Cleaning & Exam", d, 11, 15).is_none(), "would run into the lunch break");
    assert!(slot_at(&s, "Consultation", d, 11, 0).is_none(), "inside the existing appointment's buffer");
    assert!(slot_at(&s, "Consultation", d, 11, 15).is_some(), "starts after the 10 min buffer");
    assert!(slot_at(&s, "Cleaning & Exam", d, 9, 0).is_none(), "its buffer would run into 10:00");
    // Closure on the 13th; Monday 16th at 10:00 is free; Friday closes at 14:00.
    assert!(slot_at(&s, "Consultation", date(2026, 3, 13), 10, 0).is_none());
    assert!(slot_at(&s, "Consultation", date(2026, 3, 16), 10, 0).is_some());
    assert!(slot_at(&s, "Consultation", date(2026, 3, 6), 9, 0).is_some());
    assert!(slot_at(&s, "Consultation", date(2026, 3, 6), 14, 0).is_none());
    // Emergency today (min notice 0): later today, not before now (10:00).
    let e = s.appointment_type_by_name("Emergency Visit").unwrap();
    let today = s.available_slots(e.id, date(2026, 3, 2), date(2026, 3, 2)).unwrap();
    assert!(!today.is_empty());
    assert!(today.iter().all(|o| o.slot.start >= chicago(2026, 3, 2, 10, 0)));
    // Emergency window is 2 days.
    assert!(s.available_slots(e.id, date(2026, 3, 5), date(2026, 3, 5)).unwrap().is_empty());
}

#[test]
fn book_idempotent_reschedule_cancel() {
    let (_d, mut s) = demo();
    let pid = patient(&mut s, "Maria", "Lopez", "+12175550161");
    let id = slot_at(&s, "Cleaning & Exam", date(2026, 3, 5), 14, 0).unwrap();
    let call = s.start_call(&NewCall { direction: Direction::Inbound, caller: Some("+12175550161".into()), callee: None }).unwrap();
    let req = BookRequest { slot: &id, patient_id: pid, idempotency_key: "call:1:turn:4", source_call: Some(call) };
    let b1 = s.book(&req, Actor::Call(call)).unwrap();
    assert!(!b1.replayed);
    assert_eq!(b1.appointment.local_start, date(2026, 3, 5).and_hms_opt(14, 0, 0).unwrap());
    // Debug output (what could end up in a log line) carries ids, not PHI.
    let dbg = format!("{b1:?} {:?} {:?}", s.patients_by_phone("+12175550161", Actor::System).unwrap(), Practice::from_toml_str(PRACTICE).unwrap());
    assert!(!dbg.contains("Maria") && !dbg.contains("Lopez") && !dbg.contains("+12175550161") && !dbg.contains("Robert"), "{dbg}");
    assert!(dbg.contains(&format!("Appointment {{ id: {}", b1.appointment.id)));
    let b2 = s.book(&req, Actor::Call(call)).unwrap();
    assert!(b2.replayed);
    s.set_confirmation(b1.appointment.id, "confirmed", Actor::System).unwrap();
    assert_eq!(s.appointment(b1.appointment.id, Actor::System).unwrap().confirmation, "confirmed");
    assert_eq!(b1.appointment.id, b2.appointment.id);
    // Same slot, another attempt: taken.
    let other = patient(&mut s, "James", "Porter", "+12175550162");
    let e = s.book(&BookRequest { slot: &id, patient_id: other, idempotency_key: "call:2:turn:1", source_call: None }, Actor::System).unwrap_err();
    assert!(matches!(e, StoreError::SlotTaken), "{e}");
    // 13:00 is now blocked too (13:00–14:00 +10 min buffer meets 14:00).
    assert!(slot_at(&s, "Cleaning & Exam", date(2026, 3, 5), 13, 0).is_none());
    // Forged / garbled ids.
    let (t, start) = s.resolve_slot(&id).unwrap();
    let forged = SlotId(format!("{t}.{}.{}", start.timestamp() + 3600, id.0.rsplit('.').next().unwrap()));
    assert!(matches!(s.resolve_slot(&forged), Err(StoreError::UnknownSlot)));
    assert!(matches!(s.resolve_slot(&SlotId("tomorrow at 9".into())), Err(StoreError::UnknownSlot)));

    // Reschedule Alicia 03-04 14:00 → Friday 09:00.
    let alicia = s.patients_by_phone("+12175550147", Actor::System).unwrap()[0].id;
    let old = s.patient_appointments(alicia, true, Actor::System).unwrap()[0].clone();
    let new_slot = slot_at(&s, "Consultation", date(2026, 3, 6), 9, 0).unwrap();
    let r = s.reschedule(old.id, &new_slot, "call:3:turn:3", None, Actor::System).unwrap();
    assert_eq!(r.appointment.rescheduled_from, Some(old.id));
    assert_eq!(s.appointment(old.id, Actor::System).unwrap().status, AppointmentStatus::Cancelled);
    assert!(slot_at(&s, "Consultation", date(2026, 3, 4), 14, 0).is_some(), "old time freed");
    // Cancel Robert's; cancelling twice is an error.
    let robert = s.patients_by_phone("+12175550123", Actor::System).unwrap()[0].id;
    let a = s.patient_appointments(robert, true, Actor::System).unwrap()[0].id;
    s.cancel(a, Actor::System).unwrap();
    assert!(matches!(s.cancel(a, Actor::System), Err(StoreError::NoSuchAppointment(_))));
    assert!(slot_at(&s, "Cleaning & Exam", date(2026, 3, 5), 10, 0).is_some());
    // Audit rows carry ids, never PHI.
    let audit = s.audit_log(1000).unwrap();
    assert!(audit.iter().any(|r| r.actor == format!("call:{call}") && r.action == "insert" && r.table == "appointments" && r.record_id == Some(b1.appointment.id)));
    assert!(audit.iter().all(|r| !format!("{r:?}").contains("Lopez")));
}

#[test]
fn patient_lookup_and_upsert() {
    let (_d, mut s) = demo();
    let dob = Some(date(1975, 6, 14));
    // Robert Chen is the only demo patient born that day.
    let found = s.patients_by_dob(date(1975, 6, 14), Actor::System).unwrap();
    assert_eq!(found.iter().map(|p| (p.first_name.as_str(), p.last_name.as_str())).collect::<Vec<_>>(), vec![("Robert", "Chen")]);
    assert!(s.patients_by_dob(date(1975, 6, 15), Actor::System).unwrap().is_empty());
    let again = s.upsert_patient(&NewPatient { first_name: "Robert".into(), last_name: "Chen".into(), phone: None, dob }, Actor::System).unwrap();
    assert_eq!(again.id, found[0].id);
    let e = s.upsert_patient(&NewPatient { first_name: "A".into(), last_name: "B".into(), phone: Some("555-1234".into()), dob: None }, Actor::System);
    assert!(matches!(e, Err(StoreError::Invalid(_))));
}

#[test]
fn a_caller_turn_heard_again_whole_keeps_its_place_in_the_transcript() {
    let (_d, mut s) = demo();
    let c = s.start_call(&NewCall { direction: Direction::Inbound, caller: None, callee: Some("100".into()) }).unwrap();
    let turn = |speaker, text: &str, offset_ms| Turn { speaker, text: text.into(), offset_ms, asr_ms: Some(300), llm_ms: None, tts_ms: None, first_rtp_ms: None };
    let first = s.add_turn(c, &turn(Speaker::Caller, "Today if you can.", 4000)).unwrap();
    s.add_turn(c, &turn(Speaker::Receptionist, "Can I have your name?", 6000)).unwrap();
    s.revise_turn(c, first, "Today if you can. My name is Kevin Brooks.", Some(450)).unwrap();
    let turns = s.call_turns(c, Actor::Cli).unwrap();
    let rows: Vec<_> = turns.iter().map(|t| (t.seq, t.speaker.as_str(), t.text.as_str(), t.offset_ms, t.asr_ms)).collect();
    assert_eq!(
        rows,
        vec![
            (1, "caller", "Today if you can. My name is Kevin Brooks.", 4000, Some(450)),
            (2, "receptionist", "Can I have your name?", 6000, Some(300)),
        ]
    );
    assert!(s.audit_log(100).unwrap().iter().any(|r| r.action == "update" && r.table == "call_turns" && r.record_id == Some(first)));
    // Only that call's own turn can be revised.
    let other = s.start_call(&NewCall { direction: Direction::Inbound, caller: None, callee: Some("100".into()) }).unwrap();
    assert!(matches!(s.revise_turn(other, first, "x", None), Err(StoreError::NotFound { .. })));
    assert_eq!(s.call_turns(c, Actor::Cli).unwrap()[0].text, "Today if you can. My name is Kevin Brooks.");
}

#[test]
fn calls_turns_messages_usage() {
    let (_d, mut s) = demo();
    let mut ids = Vec::new();
    for i in 0..5 {
        s.set_fixed_now(chicago(2026, 3, 2, 10, i));
        let c = s.start_call(&NewCall { direction: Direction::Inbound, caller: Some("+12175550164".into()), callee: Some("100".into()) }).unwrap();
        s.add_turn(c, &Turn { speaker: Speaker::Caller, text: "hello".into(), offset_ms: 0, asr_ms: Some(120), llm_ms: None, tts_ms: None, first_rtp_ms: None }).unwrap();
        s.add_turn(c, &Turn { speaker: Speaker::Receptionist, text: "hi".into(), offset_ms: 900, asr_ms: None, llm_ms: Some(60), tts_ms: Some(80), first_rtp_ms: Some(300) }).unwrap();
        s.set_fixed_now(chicago(2026, 3, 2, 10, i) + Duration::seconds(90));
        s.end_call(c, &CallEnd { outcome: Some(Outcome::Message), summary: Some("bill".into()), ..Default::default() }).unwrap();
        ids.push(c);
    }
    let p1 = s.list_calls(CallPage { before: None, limit: 2 }, Actor::Cli).unwrap();
    assert_eq!(p1.iter().map(|c| c.id).collect::<Vec<_>>(), vec![ids[4], ids[3]]);
    let last = p1.last().unwrap();
    let p2 = s.list_calls(CallPage { before: Some((last.started_at, last.id)), limit: 10 }, Actor::Cli).unwrap();
    assert_eq!(p2.iter().map(|c| c.id).collect::<Vec<_>>(), vec![ids[2], ids[1], ids[0]]);
    let turns = s.call_turns(ids[0], Actor::Cli).unwrap();
    assert_eq!(turns.iter().map(|t| t.seq).collect::<Vec<_>>(), vec![1, 2]);
    let m = s.add_message(&NewMessage { caller_name: Some("Priya Natarajan".into()), callback: Some("+12175550164".into()), topic: "bill".into(), body: "charge".into(), call_id: Some(ids[0]), ..Default::default() }, Actor::Call(ids[0])).unwrap();
    assert_eq!(s.list_messages(10, Actor::Cli).unwrap()[0].id, m);
    let notes = s.pending_notifications().unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].2, Some(m));
    s.mark_notification_delivered(notes[0].0).unwrap();
    assert!(s.pending_notifications().unwrap().is_empty());
    // A hot lead is queued for staff the same way.
    let lead = s.add_lead(Some("Kevin Brooks"), Some("+12175550163"), 95, None, Some(ids[0]), Actor::Call(ids[0])).unwrap();
    s.notify_staff_of_lead(lead, Actor::Call(ids[0])).unwrap();
    let notes = s.pending_notifications().unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!((notes[0].1.as_str(), notes[0].2), ("hot_lead", None));
    s.mark_notification_delivered(notes[0].0).unwrap();
    s.set_message_status(m, "done", Actor::User(1)).unwrap();
    assert_eq!(s.list_messages(10, Actor::Cli).unwrap()[0].status, "done");
    assert!(matches!(s.set_message_status(m, "archived", Actor::User(1)), Err(StoreError::Invalid(_))));
    // The caller corrects the name they heard in the thanks, in the same call: updated and audited.
    s.set_message_caller_name(m, "Priya Natarajan-Rao", Actor::Call(ids[0])).unwrap();
    assert_eq!(s.list_messages(10, Actor::Cli).unwrap()[0].caller_name.as_deref(), Some("Priya Natarajan-Rao"));
    assert!(s.audit_log(100).unwrap().iter().any(|r| r.action == "update" && r.table == "messages" && r.record_id == Some(m) && r.actor.starts_with("call")));
    assert!(matches!(s.set_message_caller_name(m + 100, "X", Actor::Cli), Err(StoreError::NotFound { .. })));
    let admin = s.add_user("pat", "Pat Admin", fd_store::Role::Admin, Actor::Cli).unwrap();
    assert_eq!(s.list_users().unwrap(), vec![(admin, "pat".to_string(), "Pat Admin".to_string(), "admin".to_string())]);
    let usage = s.pending_usage().unwrap();
    assert_eq!(usage.len(), 5);
    assert!(usage.iter().all(|u| u.seconds == 90 && u.outcome.as_deref() == Some("message")));
    // The outbox schema has no column that could carry a number, a name or text.
    let cols: Vec<String> = s.raw_conn().prepare("SELECT name FROM pragma_table_info('usage_events')").unwrap().query_map([], |r| r.get(0)).unwrap().map(|c| c.unwrap()).collect();
    assert_eq!(cols, ["id", "at_day", "kind", "seconds", "outcome", "sent_at"]);
    s.mark_usage_sent(&usage.iter().map(|u| u.id).collect::<Vec<_>>()).unwrap();
    assert!(s.pending_usage().unwrap().is_empty());
    let listing = s.audit_log(100).unwrap();
    assert!(listing.iter().any(|r| r.actor == "cli" && r.action == "read" && r.table == "calls" && r.record_id.is_none()));
}

#[test]
fn settings_are_validated() {
    let (_d, mut s) = demo();
    assert!(matches!(s.set_setting("slot_granularity_minutes", 7.into(), Actor::Cli), Err(StoreError::Setting { .. })));
    assert!(matches!(s.set_setting("nonsense", 1.into(), Actor::Cli), Err(StoreError::Setting { .. })));
    assert_eq!(s.setting("internal.slot_hmac_key").unwrap(), None);
    s.set_setting("slot_granularity_minutes", 60.into(), Actor::Cli).unwrap();
    let t = s.appointment_type_by_name("Consultation").unwrap();
    let slots = s.available_slots(t.id, date(2026, 3, 6), date(2026, 3, 6)).unwrap();
    let times: Vec<_> = slots.iter().map(|o| o.slot.local_start.time().format("%H:%M").to_string()).collect();
    assert_eq!(times, ["08:00", "09:00", "10:00", "11:00", "12:00", "13:00"]);
}

#[test]
fn retention_purge_deletes_old_recordings_and_transcripts() {
    let (_d, mut s) = demo();
    s.set_fixed_now(chicago(2026, 1, 1, 9, 0));
    let old = s.start_call(&NewCall { direction: Direction::Inbound, caller: None, callee: None }).unwrap();
    s.add_turn(old, &Turn { speaker: Speaker::Caller, text: "old words".into(), offset_ms: 0, asr_ms: None, llm_ms: None, tts_ms: None, first_rtp_ms: None }).unwrap();
    let old_rec = s.save_recording(old, "wav", b"RIFFold").unwrap();
    s.set_fixed_now(chicago(2026, 3, 1, 9, 0));
    let new = s.start_call(&NewCall { direction: Direction::Inbound, caller: None, callee: None }).unwrap();
    s.add_turn(new, &Turn { speaker: Speaker::Caller, text: "new words".into(), offset_ms: 0, asr_ms: None, llm_ms: None, tts_ms: None, first_rtp_ms: None }).unwrap();
    let new_rec = s.save_recording(new, "wav", b"RIFFnew").unwrap();
    s.set_fixed_now(chicago(2026, 3, 2, 9, 0));
    // Nothing configured: nothing purged.
    assert_eq!(s.purge(Actor::System).unwrap().recordings_deleted, 0);
    s.set_setting("retention_days_recordings", 30.into(), Actor::Cli).unwrap();
    s.set_setting("retention_days_transcripts", 30.into(), Actor::Cli).unwrap();
    let r = s.purge(Actor::System).unwrap();
    assert_eq!((r.recordings_deleted, r.turns_deleted), (1, 1));
    assert!(s.recording(old_rec, Actor::System).unwrap().is_none());
    assert_eq!(s.recording(new_rec, Actor::System).unwrap().unwrap().1, b"RIFFnew");
    assert!(s.call_turns(old, Actor::System).unwrap().is_empty());
    assert_eq!(s.call_turns(new, Actor::System).unwrap().len(), 1);
    let calls = s.list_calls(CallPage { before: None, limit: 10 }, Actor::System).unwrap();
    assert_eq!(calls.iter().find(|c| c.id == old).unwrap().recording_id, None);
}
