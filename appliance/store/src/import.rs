//! Practice import: one transaction, idempotent (upserts; existing appointments keyed by an
//! idempotency key derived from type, start and patient, so re-import never duplicates them).

use chrono::{Duration, TimeZone, Utc};
use rusqlite::{params, OptionalExtension, TransactionBehavior};
use serde::Serialize;

use crate::error::{Result, StoreError};
use crate::practice::Practice;
use crate::schedule_ops::{upsert_patient_tx, NewPatient};
use crate::scheduler::Slot;
use crate::store::{Actor, Store};

#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    pub appointment_types: usize,
    pub hours_days: usize,
    pub closures: usize,
    pub existing_added: usize,
    pub existing_already_present: usize,
}

impl Store {
    pub fn import_practice(&mut self, p: &Practice, actor: Actor) -> Result<ImportReport> {
        let now = self.now();
        let tz = p.practice.timezone;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let info = &p.practice;
        tx.execute(
            "INSERT INTO practice(id, name, timezone, address, phone, front_desk_uri, on_call_uri, greeting, insurance_accepted)
             VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT(id) DO UPDATE SET name = excluded.name, timezone = excluded.timezone, address = excluded.address,
               phone = excluded.phone, front_desk_uri = excluded.front_desk_uri, on_call_uri = excluded.on_call_uri,
               greeting = excluded.greeting, insurance_accepted = excluded.insurance_accepted",
            params![
                info.name,
                tz.name(),
                info.address,
                info.phone.clone().unwrap_or_default(),
                info.front_desk_uri,
                info.on_call_uri,
                info.greeting,
                serde_json::to_string(&info.insurance_accepted).unwrap_or_else(|_| "[]".into())
            ],
        )?;
        tx.execute("DELETE FROM services", [])?;
        for s in &info.services {
            tx.execute(
                "INSERT INTO services(name, price_cents, keywords) VALUES (?1, ?2, ?3)",
                params![s.name, s.price.map(|p| i64::from(p) * 100), serde_json::to_string(&s.keywords).unwrap_or_else(|_| "[]".into())],
            )?;
        }
        // Hours hold no references from other tables: replace wholesale.
        tx.execute("DELETE FROM office_hours", [])?;
        for h in &p.hours {
            tx.execute("INSERT INTO office_hours(weekday, open_min, close_min) VALUES (?1, ?2, ?3)", params![h.day, h.open, h.close])?;
            for b in &h.breaks {
                tx.execute("INSERT INTO office_breaks(weekday, start_min, end_min) VALUES (?1, ?2, ?3)", params![h.day, b.0, b.1])?;
            }
        }
        tx.execute("DELETE FROM closures", [])?;
        for c in &p.closures {
            tx.execute("INSERT OR REPLACE INTO closures(date, reason) VALUES (?1, ?2)", params![c.date.to_string(), c.reason])?;
        }
        // Types are referenced by appointments: upsert by name, deactivate the ones no longer listed.
        tx.execute("UPDATE appointment_types SET active = 0", [])?;
        for t in &p.appointment_types {
            tx.execute(
                "INSERT INTO appointment_types(name, minutes, buffer_before, buffer_after, min_notice_minutes, window_days, price_cents, bookable_by_phone, active)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1)
                 ON CONFLICT(name) DO UPDATE SET minutes = excluded.minutes, buffer_before = excluded.buffer_before,
                   buffer_after = excluded.buffer_after, min_notice_minutes = excluded.min_notice_minutes,
                   window_days = excluded.window_days, price_cents = excluded.price_cents,
                   bookable_by_phone = excluded.bookable_by_phone, active = 1",
                params![
                    t.name,
                    t.minutes,
                    t.buffer_before,
                    t.buffer_after,
                    i64::from(t.min_notice_hours) * 60,
                    t.window_days,
                    t.price.map(|p| i64::from(p) * 100),
                    t.bookable_by_phone
                ],
            )?;
        }
        tx.execute("UPDATE chairs SET active = 0", [])?;
        for n in 1..=info.chairs {
            tx.execute(
                "INSERT INTO chairs(id, name, active) VALUES (?1, ?2, 1) ON CONFLICT(id) DO UPDATE SET active = 1",
                params![n, format!("Chair {n}")],
            )?;
        }
        let mut report = ImportReport {
            appointment_types: p.appointment_types.len(),
            hours_days: p.hours.len(),
            closures: p.closures.len(),
            ..Default::default()
        };
        for (i, e) in p.existing.iter().enumerate() {
            let (type_id, minutes): (i64, i64) =
                tx.query_row("SELECT id, minutes FROM appointment_types WHERE name = ?1", [&e.type_name], |r| Ok((r.get(0)?, r.get(1)?)))?;
            let start = tz
                .from_local_datetime(&e.start)
                .earliest()
                .ok_or_else(|| StoreError::Practice(format!("practice.toml: [[existing]] #{} 'start': that local time does not exist (DST gap)", i + 1)))?
                .with_timezone(&Utc);
            let key = format!(
                "import:{}:{}:{}:{}",
                e.type_name,
                start.timestamp(),
                e.patient.first.to_lowercase(),
                e.patient.last.to_lowercase()
            );
            let present: Option<i64> = tx.query_row("SELECT id FROM appointments WHERE idempotency_key = ?1", [&key], |r| r.get(0)).optional()?;
            if present.is_some() {
                report.existing_already_present += 1;
                continue;
            }
            let pid = upsert_patient_tx(
                &tx,
                now,
                &NewPatient { first_name: e.patient.first.clone(), last_name: e.patient.last.clone(), phone: e.patient.phone.clone(), dob: e.patient.dob },
                actor,
            )?;
            // Imported appointments are facts from the practice's old system: not re-checked
            // against notice/window rules, but they must not collide on the chair.
            let slot = Slot { type_id, start, end: start + Duration::minutes(minutes), local_start: e.start, chair: 1 };
            let id = crate::schedule_ops::insert_appointment(&tx, now, pid, &slot, None, None, &key).map_err(|err| match err {
                StoreError::SlotTaken => StoreError::Practice(format!("practice.toml: [[existing]] #{} 'start': another existing appointment already starts then", i + 1)),
                other => other,
            })?;
            Store::audit(&tx, now, actor, "insert", "appointments", Some(id))?;
            report.existing_added += 1;
        }
        Store::audit(&tx, now, actor, "update", "practice", Some(1))?;
        tx.commit()?;
        Ok(report)
    }

    /// Read and import a practice file.
    pub fn import_practice_file(&mut self, path: &std::path::Path, actor: Actor) -> Result<ImportReport> {
        let text = std::fs::read_to_string(path).map_err(|e| StoreError::io(path, e))?;
        let p = Practice::from_toml_str(&text)?;
        self.import_practice(&p, actor)
    }
}
