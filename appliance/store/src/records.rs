//! Calls, turns, recordings, messages, leads, users, settings and the usage outbox.

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{params, OptionalExtension, TransactionBehavior};
use serde::Serialize;

use crate::error::{Result, StoreError};
use crate::store::{Actor, Store};

pub const DEFAULT_GRANULARITY: u32 = 15;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Booked,
    Rescheduled,
    Cancelled,
    Message,
    Transferred,
    Info,
    Abandoned,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Booked => "booked",
            Outcome::Rescheduled => "rescheduled",
            Outcome::Cancelled => "cancelled",
            Outcome::Message => "message",
            Outcome::Transferred => "transferred",
            Outcome::Info => "info",
            Outcome::Abandoned => "abandoned",
        }
    }
    pub fn parse(s: &str) -> Option<Outcome> {
        Some(match s {
            "booked" => Outcome::Booked,
            "rescheduled" => Outcome::Rescheduled,
            "cancelled" => Outcome::Cancelled,
            "message" => Outcome::Message,
            "transferred" => Outcome::Transferred,
            "info" => Outcome::Info,
            "abandoned" => Outcome::Abandoned,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    Caller,
    Receptionist,
    Staff,
}

impl Speaker {
    fn as_str(&self) -> &'static str {
        match self {
            Speaker::Caller => "caller",
            Speaker::Receptionist => "receptionist",
            Speaker::Staff => "staff",
        }
    }
}

#[derive(Clone)]
pub struct NewCall {
    pub direction: Direction,
    /// Caller number as received (E.164 or "anonymous").
    pub caller: Option<String>,
    pub callee: Option<String>,
}

#[derive(Clone, Default)]
pub struct CallEnd {
    pub outcome: Option<Outcome>,
    pub summary: Option<String>,
    pub sentiment: Option<String>,
    pub patient_id: Option<i64>,
}

#[derive(Clone)]
pub struct Turn {
    pub speaker: Speaker,
    pub text: String,
    pub offset_ms: i64,
    pub asr_ms: Option<i64>,
    pub llm_ms: Option<i64>,
    pub tts_ms: Option<i64>,
    pub first_rtp_ms: Option<i64>,
}

#[derive(Clone, Serialize)]
pub struct CallRow {
    pub id: i64,
    pub direction: String,
    pub caller: Option<String>,
    pub callee: Option<String>,
    pub started_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
    pub summary: Option<String>,
    pub sentiment: Option<String>,
    pub patient_id: Option<i64>,
    pub recording_id: Option<i64>,
}

/// Keyset pagination, newest first: pass the last row's `(started_at, id)` as `before`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallPage {
    pub before: Option<(DateTime<Utc>, i64)>,
    pub limit: u32,
}

#[derive(Clone, Serialize)]
pub struct TurnRow {
    pub seq: i64,
    pub speaker: String,
    pub text: String,
    pub offset_ms: i64,
    pub asr_ms: Option<i64>,
    pub llm_ms: Option<i64>,
    pub tts_ms: Option<i64>,
    pub first_rtp_ms: Option<i64>,
}

#[derive(Clone, Default)]
pub struct NewMessage {
    pub patient_id: Option<i64>,
    pub caller_name: Option<String>,
    pub callback: Option<String>,
    pub topic: String,
    pub body: String,
    pub call_id: Option<i64>,
}

#[derive(Clone, Serialize)]
pub struct MessageRow {
    pub id: i64,
    pub patient_id: Option<i64>,
    pub caller_name: Option<String>,
    pub callback: Option<String>,
    pub topic: String,
    pub body: String,
    pub status: String,
    pub call_id: Option<i64>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    FrontDesk,
    It,
}

#[derive(Debug, Clone, Serialize)]
pub struct UsageEvent {
    pub id: i64,
    pub day: String,
    pub kind: String,
    pub seconds: i64,
    pub outcome: Option<String>,
}

/// One audit entry: who did what to which row, never the data.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRow {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub table: String,
    pub record_id: Option<i64>,
}

fn ts(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(v, 0).unwrap_or_default()
}

/// Known settings and their validation. Values are JSON.
fn validate_setting(key: &str, v: &serde_json::Value) -> Result<()> {
    let bad = |reason: &str| Err(StoreError::Setting { key: key.into(), reason: reason.into() });
    match key {
        "slot_granularity_minutes" => match v.as_u64() {
            Some(5 | 10 | 15 | 20 | 30 | 60) => Ok(()),
            _ => bad("expected one of 5, 10, 15, 20, 30, 60"),
        },
        "retention_days_recordings" | "retention_days_transcripts" => match v.as_u64() {
            Some(1..=3650) => Ok(()),
            _ => bad("expected a number of days between 1 and 3650"),
        },
        "record_calls" => match v.as_bool() {
            Some(_) => Ok(()),
            None => bad("expected true or false"),
        },
        _ => bad("unknown setting (known: slot_granularity_minutes, retention_days_recordings, retention_days_transcripts, record_calls)"),
    }
}

impl Store {
    pub fn set_setting(&mut self, key: &str, value: serde_json::Value, actor: Actor) -> Result<()> {
        validate_setting(key, &value)?;
        let now = self.now();
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO settings(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value.to_string()],
        )?;
        Store::audit(&tx, now, actor, "update", "settings", None)?;
        tx.commit()?;
        Ok(())
    }

    pub fn setting(&self, key: &str) -> Result<Option<serde_json::Value>> {
        if key.starts_with("internal.") {
            return Ok(None);
        }
        let v: Option<String> = self.conn.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0)).optional()?;
        Ok(v.and_then(|v| serde_json::from_str(&v).ok()))
    }

    pub fn start_call(&mut self, c: &NewCall) -> Result<i64> {
        let now = self.now();
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO calls(direction, caller, callee, started_at) VALUES (?1, ?2, ?3, ?4)",
            params![if c.direction == Direction::Inbound { "inbound" } else { "outbound" }, c.caller, c.callee, now.timestamp()],
        )?;
        let id = tx.last_insert_rowid();
        Store::audit(&tx, now, Actor::Call(id), "insert", "calls", Some(id))?;
        tx.commit()?;
        Ok(id)
    }

    pub fn answer_call(&mut self, call_id: i64) -> Result<()> {
        let now = self.now();
        let n = self.conn.execute("UPDATE calls SET answered_at = ?2 WHERE id = ?1", params![call_id, now.timestamp()])?;
        if n == 0 {
            return Err(StoreError::NotFound { what: "call", id: call_id });
        }
        Ok(())
    }

    pub fn add_turn(&mut self, call_id: i64, t: &Turn) -> Result<i64> {
        let now = self.now();
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO call_turns(call_id, seq, speaker, text, offset_ms, asr_ms, llm_ms, tts_ms, first_rtp_ms)
             VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM call_turns WHERE call_id = ?1), ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![call_id, t.speaker.as_str(), t.text, t.offset_ms, t.asr_ms, t.llm_ms, t.tts_ms, t.first_rtp_ms],
        )?;
        let id = tx.last_insert_rowid();
        Store::audit(&tx, now, Actor::Call(call_id), "insert", "call_turns", Some(id))?;
        tx.commit()?;
        Ok(id)
    }

    /// Replace a caller turn's words with a fuller hearing of the same turn (the caller went on
    /// after a pause and the whole turn was heard again). The turn keeps its place and time, so
    /// the transcript does not show the first part twice.
    pub fn revise_turn(&mut self, call_id: i64, turn_id: i64, text: &str, asr_ms: Option<i64>) -> Result<()> {
        let now = self.now();
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "UPDATE call_turns SET text = ?3, asr_ms = COALESCE(?4, asr_ms) WHERE id = ?2 AND call_id = ?1",
            params![call_id, turn_id, text, asr_ms],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound { what: "call turn", id: turn_id });
        }
        Store::audit(&tx, now, Actor::Call(call_id), "update", "call_turns", Some(turn_id))?;
        tx.commit()?;
        Ok(())
    }

    /// Close the call and queue its anonymized usage event (duration and outcome only).
    pub fn end_call(&mut self, call_id: i64, end: &CallEnd) -> Result<()> {
        let now = self.now();
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let started: Option<i64> = tx.query_row("SELECT started_at FROM calls WHERE id = ?1", [call_id], |r| r.get(0)).optional()?;
        let started = started.ok_or(StoreError::NotFound { what: "call", id: call_id })?;
        tx.execute(
            "UPDATE calls SET ended_at = ?2, outcome = ?3, summary = ?4, sentiment = ?5, patient_id = COALESCE(?6, patient_id) WHERE id = ?1",
            params![call_id, now.timestamp(), end.outcome.map(|o| o.as_str()), end.summary, end.sentiment, end.patient_id],
        )?;
        Store::audit(&tx, now, Actor::Call(call_id), "update", "calls", Some(call_id))?;
        tx.execute(
            "INSERT INTO usage_events(at_day, kind, seconds, outcome) VALUES (?1, 'call', ?2, ?3)",
            params![now.date_naive().to_string(), (now.timestamp() - started).max(0), end.outcome.map(|o| o.as_str())],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Store a call recording (inside the encrypted database) and link it to the call.
    pub fn save_recording(&mut self, call_id: i64, format: &str, audio: &[u8]) -> Result<i64> {
        let now = self.now();
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO recordings(call_id, format, audio, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![call_id, format, audio, now.timestamp()],
        )?;
        let id = tx.last_insert_rowid();
        tx.execute("UPDATE calls SET recording_id = ?2 WHERE id = ?1", params![call_id, id])?;
        Store::audit(&tx, now, Actor::Call(call_id), "insert", "recordings", Some(id))?;
        tx.commit()?;
        Ok(id)
    }

    pub fn recording(&self, recording_id: i64, actor: Actor) -> Result<Option<(String, Vec<u8>)>> {
        let r = self
            .conn
            .query_row("SELECT format, audio FROM recordings WHERE id = ?1", [recording_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        Store::audit(&self.conn, self.now(), actor, "read", "recordings", Some(recording_id))?;
        Ok(r)
    }

    /// Calls newest first, one page.
    pub fn list_calls(&self, page: CallPage, actor: Actor) -> Result<Vec<CallRow>> {
        let (bt, bi) = page.before.map(|(t, i)| (t.timestamp(), i)).unwrap_or((i64::MAX, i64::MAX));
        let mut st = self.conn.prepare_cached(
            "SELECT id, direction, caller, callee, started_at, answered_at, ended_at, outcome, summary, sentiment, patient_id, recording_id
             FROM calls WHERE (started_at, id) < (?1, ?2) ORDER BY started_at DESC, id DESC LIMIT ?3",
        )?;
        let v = st
            .query_map(params![bt, bi, page.limit.max(1)], |r| {
                Ok(CallRow {
                    id: r.get(0)?,
                    direction: r.get(1)?,
                    caller: r.get(2)?,
                    callee: r.get(3)?,
                    started_at: ts(r.get(4)?),
                    answered_at: r.get::<_, Option<i64>>(5)?.map(ts),
                    ended_at: r.get::<_, Option<i64>>(6)?.map(ts),
                    outcome: r.get(7)?,
                    summary: r.get(8)?,
                    sentiment: r.get(9)?,
                    patient_id: r.get(10)?,
                    recording_id: r.get(11)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Store::audit(&self.conn, self.now(), actor, "read", "calls", None)?;
        Ok(v)
    }

    pub fn call_turns(&self, call_id: i64, actor: Actor) -> Result<Vec<TurnRow>> {
        let mut st = self.conn.prepare(
            "SELECT seq, speaker, text, offset_ms, asr_ms, llm_ms, tts_ms, first_rtp_ms FROM call_turns WHERE call_id = ?1 ORDER BY seq",
        )?;
        let v = st
            .query_map([call_id], |r| {
                Ok(TurnRow {
                    seq: r.get(0)?,
                    speaker: r.get(1)?,
                    text: r.get(2)?,
                    offset_ms: r.get(3)?,
                    asr_ms: r.get(4)?,
                    llm_ms: r.get(5)?,
                    tts_ms: r.get(6)?,
                    first_rtp_ms: r.get(7)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Store::audit(&self.conn, self.now(), actor, "read", "call_turns", Some(call_id))?;
        Ok(v)
    }

    /// Take a message for staff; also queues a staff notification.
    pub fn add_message(&mut self, m: &NewMessage, actor: Actor) -> Result<i64> {
        let now = self.now();
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO messages(patient_id, caller_name, callback, topic, body, call_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![m.patient_id, m.caller_name, m.callback, m.topic, m.body, m.call_id, now.timestamp()],
        )?;
        let id = tx.last_insert_rowid();
        Store::audit(&tx, now, actor, "insert", "messages", Some(id))?;
        tx.execute("INSERT INTO staff_notifications(kind, message_id, created_at) VALUES ('message', ?1, ?2)", params![id, now.timestamp()])?;
        tx.commit()?;
        Ok(id)
    }

    /// The caller's name on a message, corrected by the caller in the same call.
    pub fn set_message_caller_name(&mut self, id: i64, name: &str, actor: Actor) -> Result<()> {
        self.update_message(id, "caller_name", name, actor)
    }

    /// One audited change of one column of a message. `column` is a name written in this file,
    /// never input.
    fn update_message(&mut self, id: i64, column: &'static str, value: &str, actor: Actor) -> Result<()> {
        let now = self.now();
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if tx.execute(&format!("UPDATE messages SET {column} = ?2 WHERE id = ?1"), params![id, value])? == 0 {
            return Err(StoreError::NotFound { what: "message", id });
        }
        Store::audit(&tx, now, actor, "update", "messages", Some(id))?;
        tx.commit()?;
        Ok(())
    }

    /// Messages newest first.
    pub fn list_messages(&self, limit: u32, actor: Actor) -> Result<Vec<MessageRow>> {
        let mut st = self.conn.prepare(
            "SELECT id, patient_id, caller_name, callback, topic, body, status, call_id, created_at FROM messages ORDER BY created_at DESC, id DESC LIMIT ?1",
        )?;
        let v = st
            .query_map([limit], |r| {
                Ok(MessageRow {
                    id: r.get(0)?,
                    patient_id: r.get(1)?,
                    caller_name: r.get(2)?,
                    callback: r.get(3)?,
                    topic: r.get(4)?,
                    body: r.get(5)?,
                    status: r.get(6)?,
                    call_id: r.get(7)?,
                    created_at: ts(r.get(8)?),
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Store::audit(&self.conn, self.now(), actor, "read", "messages", None)?;
        Ok(v)
    }

    pub fn add_lead(&mut self, name: Option<&str>, phone: Option<&str>, score: i64, follow_up: Option<NaiveDate>, source_call: Option<i64>, actor: Actor) -> Result<i64> {
        let now = self.now();
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO leads(name, phone, score, follow_up_date, source_call_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![name, phone, score, follow_up.map(|d| d.to_string()), source_call, now.timestamp()],
        )?;
        let id = tx.last_insert_rowid();
        Store::audit(&tx, now, actor, "insert", "leads", Some(id))?;
        tx.commit()?;
        Ok(id)
    }

    pub fn add_user(&mut self, username: &str, display_name: &str, role: Role, actor: Actor) -> Result<i64> {
        let now = self.now();
        let role = match role {
            Role::Admin => "admin",
            Role::FrontDesk => "front_desk",
            Role::It => "it",
        };
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO users(username, display_name, role, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![username, display_name, role, now.timestamp()],
        )?;
        let id = tx.last_insert_rowid();
        Store::audit(&tx, now, actor, "insert", "users", Some(id))?;
        tx.commit()?;
        Ok(id)
    }

    /// Mark a message seen/done (web UI).
    pub fn set_message_status(&mut self, id: i64, status: &str, actor: Actor) -> Result<()> {
        if !matches!(status, "new" | "seen" | "done") {
            return Err(StoreError::Invalid(format!("message status '{status}': expected new, seen or done")));
        }
        self.update_message(id, "status", status, actor)
    }

    /// Queue a staff notification for a lead (a hot lead: someone to call back soon).
    pub fn notify_staff_of_lead(&mut self, lead_id: i64, actor: Actor) -> Result<i64> {
        let now = self.now();
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("INSERT INTO staff_notifications(kind, lead_id, created_at) VALUES ('hot_lead', ?1, ?2)", params![lead_id, now.timestamp()])?;
        let id = tx.last_insert_rowid();
        Store::audit(&tx, now, actor, "insert", "staff_notifications", Some(id))?;
        tx.commit()?;
        Ok(id)
    }

    /// Staff notifications not yet delivered: (notification id, kind, message id).
    pub fn pending_notifications(&self) -> Result<Vec<(i64, String, Option<i64>)>> {
        let mut st = self.conn.prepare("SELECT id, kind, message_id FROM staff_notifications WHERE delivered_at IS NULL ORDER BY id")?;
        let v = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(v)
    }

    pub fn mark_notification_delivered(&mut self, id: i64) -> Result<()> {
        let now = self.now().timestamp();
        self.conn.execute("UPDATE staff_notifications SET delivered_at = ?2 WHERE id = ?1", params![id, now])?;
        Ok(())
    }

    /// Users and their roles: (id, username, display name, role).
    pub fn list_users(&self) -> Result<Vec<(i64, String, String, String)>> {
        let mut st = self.conn.prepare("SELECT id, username, display_name, role FROM users ORDER BY id")?;
        let v = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(v)
    }

    /// Usage events not yet sent (anonymized counts only).
    pub fn pending_usage(&self) -> Result<Vec<UsageEvent>> {
        let mut st = self.conn.prepare("SELECT id, at_day, kind, seconds, outcome FROM usage_events WHERE sent_at IS NULL ORDER BY id")?;
        let v = st
            .query_map([], |r| Ok(UsageEvent { id: r.get(0)?, day: r.get(1)?, kind: r.get(2)?, seconds: r.get(3)?, outcome: r.get(4)? }))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(v)
    }

    pub fn mark_usage_sent(&mut self, ids: &[i64]) -> Result<()> {
        let now = self.now().timestamp();
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for id in ids {
            tx.execute("UPDATE usage_events SET sent_at = ?2 WHERE id = ?1", params![id, now])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Audit rows, newest first (for the web UI / IT).
    pub fn audit_log(&self, limit: u32) -> Result<Vec<AuditRow>> {
        let mut st = self.conn.prepare("SELECT at, actor, action, table_name, record_id FROM audit_log ORDER BY id DESC LIMIT ?1")?;
        let v = st
            .query_map([limit], |r| Ok(AuditRow { at: ts(r.get(0)?), actor: r.get(1)?, action: r.get(2)?, table: r.get(3)?, record_id: r.get(4)? }))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(v)
    }
}

crate::redacted_debug!(NewCall);

crate::redacted_debug!(CallEnd);

crate::redacted_debug!(Turn);

crate::redacted_debug!(CallRow, id);

crate::redacted_debug!(TurnRow, seq);

crate::redacted_debug!(NewMessage);

crate::redacted_debug!(MessageRow, id);
