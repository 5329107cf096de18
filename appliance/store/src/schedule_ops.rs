//! Practice facts, patients and appointments: availability, book, reschedule, cancel.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use rusqlite::{params, Connection, ErrorCode, OptionalExtension, Row, TransactionBehavior};
use serde::Serialize;

use crate::error::{Result, StoreError};
use crate::scheduler::{self, Busy, DayHours, SchedulingInput, Slot, TypeRule};
use crate::slot_id::SlotId;
use crate::store::{Actor, Store};

#[derive(Debug, Clone, Serialize)]
pub struct PracticeSummary {
    pub name: String,
    pub timezone: String,
    pub address: String,
    pub phone: String,
    pub front_desk_uri: String,
    pub on_call_uri: String,
    pub greeting: String,
    pub insurance_accepted: Vec<String>,
    pub services: Vec<ServiceRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceRow {
    pub name: String,
    pub price_cents: Option<i64>,
    pub keywords: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AppointmentType {
    pub id: i64,
    pub name: String,
    pub minutes: u32,
    pub buffer_before: u32,
    pub buffer_after: u32,
    pub min_notice_minutes: u32,
    pub window_days: u32,
    pub price_cents: Option<i64>,
    pub bookable_by_phone: bool,
}

#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct Patient {
    pub id: i64,
    pub first_name: String,
    pub last_name: String,
    pub phone: Option<String>,
    pub dob: Option<NaiveDate>,
    pub contact_pref: String,
    pub sms_opt_out: bool,
    pub call_opt_out: bool,
}

#[derive(Clone, Default)]
pub struct NewPatient {
    pub first_name: String,
    pub last_name: String,
    pub phone: Option<String>,
    pub dob: Option<NaiveDate>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AppointmentStatus {
    Booked,
    Cancelled,
    Completed,
    NoShow,
}

impl AppointmentStatus {
    fn parse(s: &str) -> Self {
        match s {
            "cancelled" => Self::Cancelled,
            "completed" => Self::Completed,
            "no_show" => Self::NoShow,
            _ => Self::Booked,
        }
    }
}

#[derive(Clone, Serialize)]
pub struct Appointment {
    pub id: i64,
    pub patient_id: i64,
    pub patient_name: String,
    pub type_id: i64,
    pub type_name: String,
    pub chair_id: i64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Practice-local start.
    pub local_start: NaiveDateTime,
    pub status: AppointmentStatus,
    pub confirmation: String,
    pub source_call_id: Option<i64>,
    pub rescheduled_from: Option<i64>,
    pub idempotency_key: Option<String>,
}

/// A slot as offered to the dialogue layer: the opaque id plus what to say.
#[derive(Debug, Clone)]
pub struct OfferedSlot {
    pub id: SlotId,
    pub slot: Slot,
}

#[derive(Debug, Clone)]
pub struct BookRequest<'a> {
    pub slot: &'a SlotId,
    pub patient_id: i64,
    /// Unique per booking attempt (e.g. "call:<id>:turn:<n>"): a retry returns the first result.
    pub idempotency_key: &'a str,
    pub source_call: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct Booking {
    pub appointment: Appointment,
    /// True when the idempotency key had already booked: nothing new was written.
    pub replayed: bool,
}

const APPT_SELECT: &str = "SELECT a.id, a.patient_id, p.first_name || ' ' || p.last_name, a.type_id, t.name, a.chair_id,
    a.start_at, a.end_at, a.status, a.confirmation, a.source_call_id, a.rescheduled_from, a.idempotency_key
    FROM appointments a JOIN patients p ON p.id = a.patient_id JOIN appointment_types t ON t.id = a.type_id";

fn ts(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(v, 0).unwrap_or_default()
}

fn appt_from_row(r: &Row, tz: chrono_tz::Tz) -> rusqlite::Result<Appointment> {
    let start = ts(r.get(6)?);
    Ok(Appointment {
        id: r.get(0)?,
        patient_id: r.get(1)?,
        patient_name: r.get(2)?,
        type_id: r.get(3)?,
        type_name: r.get(4)?,
        chair_id: r.get(5)?,
        start,
        end: ts(r.get(7)?),
        local_start: start.with_timezone(&tz).naive_local(),
        status: AppointmentStatus::parse(&r.get::<_, String>(8)?),
        confirmation: r.get(9)?,
        source_call_id: r.get(10)?,
        rescheduled_from: r.get(11)?,
        idempotency_key: r.get(12)?,
    })
}

fn patient_from_row(r: &Row) -> rusqlite::Result<Patient> {
    Ok(Patient {
        id: r.get(0)?,
        first_name: r.get(1)?,
        last_name: r.get(2)?,
        phone: r.get(3)?,
        dob: r.get::<_, Option<String>>(4)?.and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok()),
        contact_pref: r.get(5)?,
        sms_opt_out: r.get(6)?,
        call_opt_out: r.get(7)?,
    })
}

const PATIENT_SELECT: &str =
    "SELECT id, first_name, last_name, phone, dob, contact_pref, sms_opt_out, call_opt_out FROM patients";

pub(crate) fn practice_tz(conn: &Connection) -> Result<chrono_tz::Tz> {
    let tz: Option<String> = conn.query_row("SELECT timezone FROM practice WHERE id = 1", [], |r| r.get(0)).optional()?;
    let tz = tz.ok_or_else(|| StoreError::Invalid("no practice has been imported yet: run `frontdesk practice import practice.toml`".into()))?;
    tz.parse().map_err(|_| StoreError::Invalid(format!("practice time zone '{tz}' is not a known IANA zone; re-import practice.toml")))
}

pub(crate) fn granularity(conn: &Connection) -> Result<u32> {
    let v: Option<String> = conn.query_row("SELECT value FROM settings WHERE key = 'slot_granularity_minutes'", [], |r| r.get(0)).optional()?;
    Ok(v.and_then(|v| v.parse().ok()).unwrap_or(crate::records::DEFAULT_GRANULARITY))
}

/// Everything the scheduler needs for appointments near `[from, to]`.
pub(crate) fn load_input(conn: &Connection, now: DateTime<Utc>, from: DateTime<Utc>, to: DateTime<Utc>, exclude: Option<i64>) -> Result<SchedulingInput> {
    let tz = practice_tz(conn)?;
    let mut st = conn.prepare_cached(
        "SELECT id, name, minutes, buffer_before, buffer_after, min_notice_minutes, window_days, bookable_by_phone
         FROM appointment_types WHERE active = 1",
    )?;
    let types = st
        .query_map([], |r| {
            Ok(TypeRule {
                id: r.get(0)?,
                name: r.get(1)?,
                minutes: r.get(2)?,
                buffer_before: r.get(3)?,
                buffer_after: r.get(4)?,
                min_notice_minutes: r.get(5)?,
                window_days: r.get(6)?,
                bookable_by_phone: r.get(7)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut st = conn.prepare_cached("SELECT weekday, open_min, close_min FROM office_hours")?;
    let mut hours = st
        .query_map([], |r| Ok(DayHours { weekday: r.get(0)?, open_min: r.get(1)?, close_min: r.get(2)?, breaks: Vec::new() }))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut st = conn.prepare_cached("SELECT weekday, start_min, end_min FROM office_breaks ORDER BY start_min")?;
    for b in st.query_map([], |r| Ok((r.get::<_, u8>(0)?, r.get::<_, u16>(1)?, r.get::<_, u16>(2)?)))? {
        let (wd, a, e) = b?;
        if let Some(h) = hours.iter_mut().find(|h| h.weekday == wd) {
            h.breaks.push((a, e));
        }
    }
    let mut st = conn.prepare_cached("SELECT date FROM closures")?;
    let closures = st
        .query_map([], |r| r.get::<_, String>(0))?
        .filter_map(|d| d.ok().and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok()))
        .collect();
    // Widen by a day so neighbours across midnight and their buffers are seen. The start_at lower
    // bound (appointments are shorter than a day) keeps this an index range scan, not a walk
    // through years of history.
    let lo = (from - Duration::days(1)).timestamp();
    let hi = (to + Duration::days(1)).timestamp();
    let mut st = conn.prepare_cached(
        "SELECT a.chair_id, a.start_at, a.end_at, t.buffer_before, t.buffer_after FROM appointments a
         JOIN appointment_types t ON t.id = a.type_id
         WHERE a.status = 'booked' AND a.start_at >= ?1 - 86400 AND a.start_at < ?2 AND a.end_at > ?1 AND a.id IS NOT ?3",
    )?;
    let existing = st
        .query_map(params![lo, hi, exclude], |r| {
            Ok(Busy { chair: r.get(0)?, start: ts(r.get(1)?), end: ts(r.get(2)?), buffer_before: r.get(3)?, buffer_after: r.get(4)? })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut st = conn.prepare_cached("SELECT id FROM chairs WHERE active = 1 ORDER BY id")?;
    let chairs = st.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<Vec<i64>>>()?;
    Ok(SchedulingInput { types, hours, closures, existing, now, tz, chairs, granularity_minutes: granularity(conn)? })
}

fn local_day_bounds(tz: chrono_tz::Tz, from: NaiveDate, to: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    use chrono::TimeZone;
    let f = tz.from_local_datetime(&from.and_time(chrono::NaiveTime::MIN)).earliest().map(|d| d.with_timezone(&Utc));
    let t = tz.from_local_datetime(&(to + Duration::days(1)).and_time(chrono::NaiveTime::MIN)).latest().map(|d| d.with_timezone(&Utc));
    (
        f.unwrap_or_else(|| from.and_time(chrono::NaiveTime::MIN).and_utc() - Duration::days(1)),
        t.unwrap_or_else(|| to.and_time(chrono::NaiveTime::MIN).and_utc() + Duration::days(2)),
    )
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::ConstraintViolation)
}

impl Store {
    pub fn practice_summary(&self) -> Result<PracticeSummary> {
        let (name, timezone, address, phone, front_desk_uri, on_call_uri, greeting, ins): (String, String, String, String, String, String, String, String) =
            self.conn
                .query_row(
                    "SELECT name, timezone, address, phone, front_desk_uri, on_call_uri, greeting, insurance_accepted FROM practice WHERE id = 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?)),
                )
                .optional()?
                .ok_or_else(|| StoreError::Invalid("no practice has been imported yet: run `frontdesk practice import practice.toml`".into()))?;
        let mut st = self.conn.prepare("SELECT name, price_cents, keywords FROM services ORDER BY id")?;
        let services = st
            .query_map([], |r| {
                Ok(ServiceRow { name: r.get(0)?, price_cents: r.get(1)?, keywords: serde_json::from_str(&r.get::<_, String>(2)?).unwrap_or_default() })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(PracticeSummary {
            name,
            timezone,
            address,
            phone,
            front_desk_uri,
            on_call_uri,
            greeting,
            insurance_accepted: serde_json::from_str(&ins).unwrap_or_default(),
            services,
        })
    }

    pub fn timezone(&self) -> Result<chrono_tz::Tz> {
        practice_tz(&self.conn)
    }

    pub fn appointment_types(&self) -> Result<Vec<AppointmentType>> {
        let mut st = self.conn.prepare(
            "SELECT id, name, minutes, buffer_before, buffer_after, min_notice_minutes, window_days, price_cents, bookable_by_phone
             FROM appointment_types WHERE active = 1 ORDER BY id",
        )?;
        let v = st
            .query_map([], |r| {
                Ok(AppointmentType {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    minutes: r.get(2)?,
                    buffer_before: r.get(3)?,
                    buffer_after: r.get(4)?,
                    min_notice_minutes: r.get(5)?,
                    window_days: r.get(6)?,
                    price_cents: r.get(7)?,
                    bookable_by_phone: r.get(8)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(v)
    }

    pub fn appointment_type_by_name(&self, name: &str) -> Result<AppointmentType> {
        self.appointment_types()?
            .into_iter()
            .find(|t| t.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| StoreError::UnknownType(name.to_string()))
    }

    /// The scheduler input for local dates `[from, to]` at the store's current time.
    pub fn scheduling_input(&self, from: NaiveDate, to: NaiveDate) -> Result<SchedulingInput> {
        let tz = practice_tz(&self.conn)?;
        let (f, t) = local_day_bounds(tz, from, to);
        load_input(&self.conn, self.now(), f, t, None)
    }

    /// Free slots of `type_id` on local dates `[from, to]`, each with an opaque id.
    pub fn available_slots(&self, type_id: i64, from: NaiveDate, to: NaiveDate) -> Result<Vec<OfferedSlot>> {
        let input = self.scheduling_input(from, to)?;
        if !input.types.iter().any(|t| t.id == type_id) {
            return Err(StoreError::UnknownType(type_id.to_string()));
        }
        Ok(scheduler::available_slots(&input, type_id, from, to)
            .into_iter()
            .map(|slot| OfferedSlot { id: self.signer.sign(slot.type_id, slot.start), slot })
            .collect())
    }

    /// What a slot id stands for (type, start); `UnknownSlot` if forged or garbled.
    pub fn resolve_slot(&self, id: &SlotId) -> Result<(i64, DateTime<Utc>)> {
        self.signer.verify(id)
    }

    /// Book a slot. One `BEGIN IMMEDIATE` transaction: idempotency check, availability re-check,
    /// insert, audit. Two callers racing for one chair and time: exactly one wins, the other gets
    /// `SlotTaken`.
    pub fn book(&mut self, req: &BookRequest<'_>, actor: Actor) -> Result<Booking> {
        let (type_id, start) = self.signer.verify(req.slot)?;
        let now = self.now();
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(a) = appointment_by(&tx, "a.idempotency_key = ?1", [req.idempotency_key])? {
            Store::audit(&tx, now, actor, "read", "appointments", Some(a.id))?;
            tx.commit()?;
            return Ok(Booking { appointment: a, replayed: true });
        }
        let input = load_input(&tx, now, start, start, None)?;
        let slot = scheduler::check_slot(&input, type_id, start).map_err(|_| StoreError::SlotTaken)?;
        let id = insert_appointment(&tx, now, req.patient_id, &slot, req.source_call, None, req.idempotency_key)?;
        Store::audit(&tx, now, actor, "insert", "appointments", Some(id))?;
        let a = appointment_by(&tx, "a.id = ?1", [id])?.ok_or(StoreError::NoSuchAppointment(id))?;
        tx.commit()?;
        Ok(Booking { appointment: a, replayed: false })
    }

    /// Move a booked appointment: a new appointment with `rescheduled_from` and the old one
    /// cancelled, atomically. The old appointment's own time counts as free for the new one.
    pub fn reschedule(&mut self, appointment_id: i64, slot: &SlotId, idempotency_key: &str, source_call: Option<i64>, actor: Actor) -> Result<Booking> {
        let (type_id, start) = self.signer.verify(slot)?;
        let now = self.now();
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(a) = appointment_by(&tx, "a.idempotency_key = ?1", [idempotency_key])? {
            Store::audit(&tx, now, actor, "read", "appointments", Some(a.id))?;
            tx.commit()?;
            return Ok(Booking { appointment: a, replayed: true });
        }
        let old = appointment_by(&tx, "a.id = ?1 AND a.status = 'booked'", [appointment_id])?
            .ok_or(StoreError::NoSuchAppointment(appointment_id))?;
        let input = load_input(&tx, now, start, start, Some(old.id))?;
        let slot = scheduler::check_slot(&input, type_id, start).map_err(|_| StoreError::SlotTaken)?;
        tx.execute("UPDATE appointments SET status = 'cancelled', updated_at = ?2 WHERE id = ?1", params![old.id, now.timestamp()])?;
        Store::audit(&tx, now, actor, "update", "appointments", Some(old.id))?;
        let id = insert_appointment(&tx, now, old.patient_id, &slot, source_call, Some(old.id), idempotency_key)?;
        Store::audit(&tx, now, actor, "insert", "appointments", Some(id))?;
        let a = appointment_by(&tx, "a.id = ?1", [id])?.ok_or(StoreError::NoSuchAppointment(id))?;
        tx.commit()?;
        Ok(Booking { appointment: a, replayed: false })
    }

    /// Cancel a booked appointment. Cancelling an already-cancelled one is `NoSuchAppointment`.
    pub fn cancel(&mut self, appointment_id: i64, actor: Actor) -> Result<()> {
        let now = self.now();
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "UPDATE appointments SET status = 'cancelled', updated_at = ?2 WHERE id = ?1 AND status = 'booked'",
            params![appointment_id, now.timestamp()],
        )?;
        if n == 0 {
            return Err(StoreError::NoSuchAppointment(appointment_id));
        }
        Store::audit(&tx, now, actor, "update", "appointments", Some(appointment_id))?;
        tx.commit()?;
        Ok(())
    }

    /// Record the patient's answer to a confirmation/reminder.
    pub fn set_confirmation(&mut self, appointment_id: i64, confirmation: &str, actor: Actor) -> Result<()> {
        if !matches!(confirmation, "unconfirmed" | "confirmed" | "declined") {
            return Err(StoreError::Invalid(format!("confirmation '{confirmation}': expected unconfirmed, confirmed or declined")));
        }
        let now = self.now();
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "UPDATE appointments SET confirmation = ?2, updated_at = ?3 WHERE id = ?1",
            params![appointment_id, confirmation, now.timestamp()],
        )?;
        if n == 0 {
            return Err(StoreError::NoSuchAppointment(appointment_id));
        }
        Store::audit(&tx, now, actor, "update", "appointments", Some(appointment_id))?;
        tx.commit()?;
        Ok(())
    }

    pub fn appointment(&self, id: i64, actor: Actor) -> Result<Appointment> {
        let a = appointment_by(&self.conn, "a.id = ?1", [id])?.ok_or(StoreError::NoSuchAppointment(id))?;
        Store::audit(&self.conn, self.now(), actor, "read", "appointments", Some(id))?;
        Ok(a)
    }

    /// A patient's appointments, oldest first; `upcoming_only` keeps booked ones starting after now.
    pub fn patient_appointments(&self, patient_id: i64, upcoming_only: bool, actor: Actor) -> Result<Vec<Appointment>> {
        let tz = practice_tz(&self.conn)?;
        let now = self.now();
        let cond = if upcoming_only { "AND a.status = 'booked' AND a.start_at >= ?2" } else { "AND ?2 = ?2" };
        let sql = format!("{APPT_SELECT} WHERE a.patient_id = ?1 {cond} ORDER BY a.start_at");
        let mut st = self.conn.prepare(&sql)?;
        let v = st.query_map(params![patient_id, now.timestamp()], |r| appt_from_row(r, tz))?.collect::<rusqlite::Result<Vec<_>>>()?;
        Store::audit(&self.conn, now, actor, "read", "appointments", None)?;
        Ok(v)
    }

    /// Appointments starting at or after `from`, in time order (the CLI/web list).
    pub fn list_appointments(&self, from: Option<DateTime<Utc>>, limit: u32, actor: Actor) -> Result<Vec<Appointment>> {
        let tz = practice_tz(&self.conn)?;
        let sql = format!("{APPT_SELECT} WHERE a.start_at >= ?1 ORDER BY a.start_at, a.id LIMIT ?2");
        let mut st = self.conn.prepare(&sql)?;
        let v = st
            .query_map(params![from.map(|f| f.timestamp()).unwrap_or(i64::MIN), limit], |r| appt_from_row(r, tz))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Store::audit(&self.conn, self.now(), actor, "read", "appointments", None)?;
        Ok(v)
    }

    pub fn patients_by_phone(&self, phone: &str, actor: Actor) -> Result<Vec<Patient>> {
        let mut st = self.conn.prepare(&format!("{PATIENT_SELECT} WHERE phone = ?1 ORDER BY id"))?;
        let v = st.query_map([phone], patient_from_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Store::audit(&self.conn, self.now(), actor, "read", "patients", None)?;
        Ok(v)
    }

    /// Everyone born on `dob` (the receptionist's identity check, which then picks by name).
    pub fn patients_by_dob(&self, dob: NaiveDate, actor: Actor) -> Result<Vec<Patient>> {
        let mut st = self.conn.prepare(&format!("{PATIENT_SELECT} WHERE dob = ?1 ORDER BY id"))?;
        let v = st.query_map([dob.to_string()], patient_from_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Store::audit(&self.conn, self.now(), actor, "read", "patients", None)?;
        Ok(v)
    }

    /// Find the patient by name and (phone or DOB), filling in missing phone/DOB; else create one.
    pub fn upsert_patient(&mut self, p: &NewPatient, actor: Actor) -> Result<Patient> {
        let now = self.now();
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let id = upsert_patient_tx(&tx, now, p, actor)?;
        let pat = tx.query_row(&format!("{PATIENT_SELECT} WHERE id = ?1"), [id], patient_from_row)?;
        tx.commit()?;
        Ok(pat)
    }
}

fn appointment_by(conn: &Connection, clause: &str, p: impl rusqlite::Params) -> Result<Option<Appointment>> {
    let tz = practice_tz(conn)?;
    let sql = format!("{APPT_SELECT} WHERE {clause}");
    Ok(conn.query_row(&sql, p, |r| appt_from_row(r, tz)).optional()?)
}

pub(crate) fn upsert_patient_tx(tx: &Connection, now: DateTime<Utc>, p: &NewPatient, actor: Actor) -> Result<i64> {
    if p.first_name.trim().is_empty() || p.last_name.trim().is_empty() {
        return Err(StoreError::Invalid("a patient needs a first and a last name".into()));
    }
    if let Some(ph) = &p.phone {
        if !crate::practice::is_e164(ph) {
            return Err(StoreError::Invalid("patient phone must be E.164 (e.g. +12175550100)".into()));
        }
    }
    let dob = p.dob.map(|d| d.to_string());
    let found: Option<i64> = tx
        .query_row(
            "SELECT id FROM patients WHERE first_name = ?1 COLLATE NOCASE AND last_name = ?2 COLLATE NOCASE
             AND ((?3 IS NOT NULL AND phone = ?3) OR (?4 IS NOT NULL AND dob = ?4)
                  OR (?3 IS NULL AND ?4 IS NULL AND phone IS NULL AND dob IS NULL))
             ORDER BY id LIMIT 1",
            params![p.first_name.trim(), p.last_name.trim(), p.phone, dob],
            |r| r.get(0),
        )
        .optional()?;
    let id = match found {
        Some(id) => {
            tx.execute(
                "UPDATE patients SET phone = COALESCE(phone, ?2), dob = COALESCE(dob, ?3), updated_at = ?4 WHERE id = ?1",
                params![id, p.phone, dob, now.timestamp()],
            )?;
            Store::audit(tx, now, actor, "update", "patients", Some(id))?;
            id
        }
        None => {
            tx.execute(
                "INSERT INTO patients(first_name, last_name, phone, dob, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                params![p.first_name.trim(), p.last_name.trim(), p.phone, dob, now.timestamp()],
            )?;
            let id = tx.last_insert_rowid();
            Store::audit(tx, now, actor, "insert", "patients", Some(id))?;
            id
        }
    };
    Ok(id)
}

pub(crate) fn insert_appointment(
    tx: &Connection,
    now: DateTime<Utc>,
    patient_id: i64,
    slot: &Slot,
    source_call: Option<i64>,
    rescheduled_from: Option<i64>,
    idempotency_key: &str,
) -> Result<i64> {
    let r = tx.execute(
        "INSERT INTO appointments(patient_id, type_id, chair_id, start_at, end_at, source_call_id, rescheduled_from, idempotency_key, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
        params![patient_id, slot.type_id, slot.chair, slot.start.timestamp(), slot.end.timestamp(), source_call, rescheduled_from, idempotency_key, now.timestamp()],
    );
    match r {
        Ok(_) => Ok(tx.last_insert_rowid()),
        Err(e) if is_unique_violation(&e) => {
            // FK violations are also constraint errors: tell them apart.
            let exists: bool = tx.query_row("SELECT EXISTS(SELECT 1 FROM patients WHERE id = ?1)", [patient_id], |r| r.get(0))?;
            if !exists {
                return Err(StoreError::NotFound { what: "patient", id: patient_id });
            }
            Err(StoreError::SlotTaken)
        }
        Err(e) => Err(e.into()),
    }
}

crate::redacted_debug!(Patient, id);

crate::redacted_debug!(NewPatient);

crate::redacted_debug!(Appointment, id);
