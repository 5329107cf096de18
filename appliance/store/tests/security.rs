//! Encryption at rest, key handling, rotation recovery, backup/restore, migrations.
mod common;

use common::*;
use fd_store::{Actor, BookRequest, CallEnd, Direction, NewCall, NewMessage, NewPatient, OpenOptions, Outcome, Speaker, Store, StoreError, Turn};

fn seed_phi(s: &mut Store, n: usize) -> Vec<String> {
    let mut secrets = Vec::new();
    let t = s.appointment_type_by_name("Consultation").unwrap();
    let slots = s.available_slots(t.id, date(2026, 3, 9), date(2026, 3, 31)).unwrap();
    for i in 0..n {
        let first = format!("Qzfirst{i:03}x");
        let last = format!("Wvlast{i:03}y");
        let phone = format!("+1312777{i:04}");
        let text = format!("Mytoothsecret{i:03}z");
        let p = s.upsert_patient(&NewPatient { first_name: first.clone(), last_name: last.clone(), phone: Some(phone.clone()), dob: None }, Actor::System).unwrap();
        let c = s.start_call(&NewCall { direction: Direction::Inbound, caller: Some(phone.clone()), callee: None }).unwrap();
        s.add_turn(c, &Turn { speaker: Speaker::Caller, text: text.clone(), offset_ms: 0, asr_ms: None, llm_ms: None, tts_ms: None, first_rtp_ms: None }).unwrap();
        s.save_recording(c, "wav", format!("RIFFaudio{text}").as_bytes()).unwrap();
        s.add_message(&NewMessage { caller_name: Some(format!("{first} {last}")), callback: Some(phone.clone()), topic: text.clone(), body: text.clone(), call_id: Some(c), patient_id: Some(p.id) }, Actor::Call(c)).unwrap();
        s.end_call(c, &CallEnd { outcome: Some(Outcome::Message), summary: Some(text.clone()), ..Default::default() }).unwrap();
        if i < slots.len() && i % 3 == 0 {
            s.book(&BookRequest { slot: &slots[i].id, patient_id: p.id, idempotency_key: &format!("k{i}"), source_call: Some(c) }, Actor::Call(c)).unwrap();
        }
        secrets.extend([first, last, phone, text]);
    }
    secrets
}

const PREFIXES: [&str; 4] = ["Qzfirst", "Wvlast", "+1312777", "Mytoothsecret"];

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn files_contain_no_seeded_phi() {
    let (dir, mut s) = demo();
    let secrets = seed_phi(&mut s, 100);
    assert_eq!(secrets.len(), 400);
    // Check while open (WAL populated) and after close (checkpointed), plus a backup.
    let backup = dir.path().join("backup.db");
    s.backup(&backup, Actor::Cli).unwrap();
    let scan = |when: &str| {
        let files = data_files(dir.path());
        assert!(files.iter().any(|f| f.to_string_lossy().ends_with("-wal")) || when == "closed");
        for f in files {
            let bytes = std::fs::read(&f).unwrap();
            assert!(!bytes.starts_with(b"SQLite format 3"), "{} is not encrypted", f.display());
            // Every seeded string starts with one of these prefixes: absent prefix ⇒ absent string.
            for prefix in PREFIXES {
                assert!(!contains(&bytes, prefix), "{when}: {} contains seeded PHI ({prefix}…)", f.display());
            }
        }
    };
    scan("open");
    drop(s);
    scan("closed");
    // Sanity: the scan can fail — plaintext export does contain them.
    let s = open(dir.path());
    let out = tempfile::tempdir().unwrap();
    s.export(out.path(), Actor::Cli).unwrap();
    let patients = std::fs::read(out.path().join("patients.csv")).unwrap();
    assert!(secrets.iter().all(|s| PREFIXES.iter().any(|p| s.starts_with(p))));
    assert!(contains(&patients, &secrets[0]) && contains(&patients, PREFIXES[1]));
    assert!(out.path().join("recordings.json").exists());
}

#[test]
fn wrong_and_missing_key_fail_with_typed_errors() {
    let (dir, s) = demo();
    drop(s);
    let key = dir.path().join("keys/db.key");
    let good = std::fs::read(&key).unwrap();
    std::fs::write(&key, hex::encode([7u8; 32])).unwrap();
    let e = Store::open_with(opts(dir.path())).unwrap_err();
    assert!(matches!(e, StoreError::WrongKey { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("db.key") && msg.contains("frontdesk.db") && msg.contains("restore the key file"), "{msg}");
    std::fs::remove_file(&key).unwrap();
    let e = Store::open_with(opts(dir.path())).unwrap_err();
    assert!(matches!(e, StoreError::KeyMissing { .. }), "{e:?}");
    assert!(e.to_string().contains("do not delete the database"));
    std::fs::write(&key, b"short").unwrap();
    assert!(matches!(Store::open_with(opts(dir.path())), Err(StoreError::KeyMalformed { .. })));
    // The database was never replaced by a fresh one: the right key still opens the demo data.
    std::fs::write(&key, &good).unwrap();
    let s = open(dir.path());
    assert_eq!(s.patients_by_phone("+12175550123", Actor::System).unwrap().len(), 1);
}

#[test]
fn key_file_is_private_and_key_debug_is_redacted() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, s) = demo();
    let key_path = dir.path().join("keys/db.key");
    assert_eq!(std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(dir.path().join("keys")).unwrap().permissions().mode() & 0o777, 0o700);
    for f in ["frontdesk.db", "frontdesk.db-wal", "frontdesk.db-shm"] {
        assert_eq!(std::fs::metadata(dir.path().join(f)).unwrap().permissions().mode() & 0o777, 0o600, "{f}");
    }
    let b = dir.path().join("b.db");
    s.backup(&b, Actor::Cli).unwrap();
    assert_eq!(std::fs::metadata(&b).unwrap().permissions().mode() & 0o777, 0o600);
    let hexkey = std::fs::read_to_string(&key_path).unwrap();
    let k = fd_store::DbKey::parse(hexkey.as_bytes(), &key_path).unwrap();
    assert_eq!(format!("{k:?}"), "DbKey(<redacted>)");
    assert!(!format!("{s:?}").contains(hexkey.trim()));
}

#[test]
fn systemd_credential_takes_precedence() {
    let (dir, s) = demo();
    drop(s);
    let creds = tempfile::tempdir().unwrap();
    // Move the key into the credential: the key file is no longer needed.
    std::fs::rename(dir.path().join("keys/db.key"), creds.path().join(fd_store::CREDENTIAL_NAME)).unwrap();
    let mut s = Store::open_with(OpenOptions { credentials_dir: Some(creds.path().into()), ..OpenOptions::new(dir.path()) }).unwrap();
    assert!(matches!(s.key_source(), Some(fd_store::KeySource::Credential(_))));
    assert!(matches!(s.rekey(), Err(StoreError::KeyFromCredential)));
    drop(s);
    std::fs::write(creds.path().join(fd_store::CREDENTIAL_NAME), [9u8; 32]).unwrap();
    let e = Store::open_with(OpenOptions { credentials_dir: Some(creds.path().into()), ..OpenOptions::new(dir.path()) }).unwrap_err();
    assert!(e.to_string().contains("systemd credential"), "{e}");
}

#[test]
fn rekey_recovers_from_every_interruption_point() {
    use fd_store::RekeyStop;
    for stop in [RekeyStop::AfterPendingWritten, RekeyStop::AfterRekey, RekeyStop::Complete] {
        let (dir, mut s) = demo();
        let before = std::fs::read(dir.path().join("keys/db.key")).unwrap();
        s.rekey_until(stop).unwrap();
        drop(s); // "crash": nothing after the stop point runs
        let s = open(dir.path());
        assert_eq!(s.patients_by_phone("+12175550123", Actor::System).unwrap().len(), 1, "{stop:?}");
        assert!(!dir.path().join("keys/db.key.new").exists(), "{stop:?}: pending key cleaned up");
        let after = std::fs::read(dir.path().join("keys/db.key")).unwrap();
        assert_eq!(before == after, stop == RekeyStop::AfterPendingWritten, "{stop:?}");
        assert!(s.integrity_ok().unwrap());
        drop(s);
        // And the now-current key file alone still opens it (a second open takes no recovery path).
        let s = open(dir.path());
        assert!(s.integrity_ok().unwrap());
        drop(s);
        if stop != RekeyStop::AfterPendingWritten {
            // The old key really no longer opens the database.
            std::fs::write(dir.path().join("keys/db.key"), &before).unwrap();
            assert!(matches!(Store::open_with(opts(dir.path())), Err(StoreError::WrongKey { .. })), "{stop:?}");
        }
    }
}

#[test]
fn backup_and_restore_round_trip_even_across_rekey() {
    let (dir, mut s) = demo();
    let b1 = dir.path().join("b1.db");
    s.backup(&b1, Actor::Cli).unwrap();
    assert!(matches!(s.backup(&b1, Actor::Cli), Err(StoreError::Invalid(_))), "never overwrites");
    let old_key = dir.path().join("old.key");
    std::fs::copy(dir.path().join("keys/db.key"), &old_key).unwrap();
    // Change data after the backup, then rotate the key.
    let robert = s.patients_by_phone("+12175550123", Actor::System).unwrap()[0].id;
    let a = s.patient_appointments(robert, true, Actor::System).unwrap()[0].id;
    s.cancel(a, Actor::System).unwrap();
    s.rekey().unwrap();
    drop(s);
    // Without the old key the backup does not open: a typed error, current database untouched.
    let e = Store::restore(dir.path(), &b1, None, None).unwrap_err();
    assert!(matches!(e, StoreError::BadBackup { .. }), "{e}");
    let s = open(dir.path());
    assert_eq!(s.patient_appointments(robert, true, Actor::System).unwrap().len(), 0);
    drop(s);
    Store::restore(dir.path(), &b1, Some(&old_key), None).unwrap();
    let s = open(dir.path());
    assert_eq!(s.patient_appointments(robert, true, Actor::System).unwrap().len(), 1, "restored state");
    assert!(s.integrity_ok().unwrap());
    assert_eq!(s.schema_version().unwrap(), fd_store::LATEST_VERSION);
    assert!(dir.path().join("frontdesk.db.pre-restore").exists());
}

#[test]
fn restore_onto_a_fresh_box_with_the_backup_key() {
    let (dir, s) = demo();
    let b = dir.path().join("b.db");
    s.backup(&b, Actor::Cli).unwrap();
    drop(s);
    let fresh = tempfile::tempdir().unwrap();
    let target = fresh.path().join("data");
    // Without a key anywhere: a clear error, nothing created.
    assert!(matches!(Store::restore(&target, &b, None, None), Err(StoreError::KeyMissing { .. })));
    Store::restore(&target, &b, Some(&dir.path().join("keys/db.key")), None).unwrap();
    let s = open(&target);
    assert_eq!(s.patients_by_phone("+12175550123", Actor::System).unwrap().len(), 1);
    assert_eq!(std::fs::read(target.join("keys/db.key")).unwrap(), std::fs::read(dir.path().join("keys/db.key")).unwrap());
}

/// Build a database at every earlier version, put data in it, and open it with the current code.
#[test]
fn migrates_from_every_earlier_version_with_data() {
    for v in 1..fd_store::LATEST_VERSION {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open_with(OpenOptions { migrate_to: Some(v), ..opts(dir.path()) }).unwrap();
        assert_eq!(s.schema_version().unwrap(), v);
        let c = s.raw_conn();
        c.execute_batch(
            "INSERT INTO practice(id, name, timezone) VALUES (1, 'P', 'America/Chicago');
             INSERT INTO chairs(id, name) VALUES (1, 'Chair 1');
             INSERT INTO appointment_types(id, name, minutes) VALUES (1, 'Cleaning', 60);
             INSERT INTO patients(id, first_name, last_name, phone, created_at, updated_at) VALUES (1, 'Ann', 'Lee', '+12175550100', 0, 0);
             INSERT INTO calls(id, direction, caller, started_at, outcome) VALUES (1, 'inbound', '+12175550100', 100, 'booked');
             INSERT INTO appointments(patient_id, type_id, chair_id, start_at, end_at, idempotency_key, created_at, updated_at)
                 VALUES (1, 1, 1, 1772726400, 1772730000, 'old', 0, 0);",
        )
        .unwrap();
        if v >= 2 {
            c.execute_batch("INSERT INTO messages(caller_name, topic, created_at) VALUES ('Ann Lee', 'bill', 5);").unwrap();
        }
        drop(s);
        let s = open(dir.path());
        assert_eq!(s.schema_version().unwrap(), fd_store::LATEST_VERSION, "from v{v}");
        assert!(s.integrity_ok().unwrap());
        let fk: i64 = s.raw_conn().query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| r.get(0)).unwrap();
        assert_eq!(fk, 0);
        assert_eq!(s.patients_by_phone("+12175550100", Actor::System).unwrap().len(), 1, "from v{v}");
        let calls = s.list_calls(fd_store::CallPage { before: None, limit: 5 }, Actor::System).unwrap();
        assert_eq!((calls.len(), calls[0].recording_id), (1, None));
        if v >= 2 {
            assert_eq!(s.list_messages(5, Actor::System).unwrap().len(), 1);
        }
    }
}

#[test]
fn newer_schema_is_refused() {
    let (dir, s) = demo();
    s.raw_conn().execute_batch("PRAGMA user_version = 99;").unwrap();
    drop(s);
    let e = Store::open_with(opts(dir.path())).unwrap_err();
    assert!(matches!(e, StoreError::SchemaTooNew { found: 99, .. }), "{e}");
}
