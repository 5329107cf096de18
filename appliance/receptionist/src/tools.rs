//! The synchronous tool interface the policy calls (implemented by the lead over fd-store).

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientRef {
    pub id: String,
    pub first: String,
    pub last: String,
    pub phone: Option<String>,
    pub dob: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppointmentRef {
    pub id: String,
    pub patient_id: String,
    pub appointment_type: String,
    pub start_local: NaiveDateTime,
}

/// Start times in `[start, end)` (local), e.g. "afternoon" = 12:00..17:00.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeWindow {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotQuery {
    pub appointment_type: String,
    /// Inclusive local date range.
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub window: Option<TimeWindow>,
    /// Local "now": the store applies the type's minimum notice from here. Passed in so the
    /// store needs no clock of its own for this and tests stay deterministic.
    pub now_local: NaiveDateTime,
    pub limit: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotOffer {
    /// Opaque; only valid for `book`/`reschedule` until the schedule changes.
    pub slot_id: String,
    pub start_local: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientDetails {
    /// Set when the caller was matched to an existing record.
    pub patient_id: Option<String>,
    pub first: String,
    pub last: String,
    pub phone: Option<String>,
    pub dob: Option<NaiveDate>,
    pub new_patient: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Booked {
    pub appointment_id: String,
    pub appointment_type: String,
    pub start_local: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageDetails {
    pub name: String,
    pub callback: Option<String>,
    pub topic: String,
    pub body: String,
    pub urgent: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    /// The slot was taken or no longer fits the schedule; the policy offers fresh slots.
    #[error("the requested slot is no longer available")]
    SlotUnavailable,
    /// The slot id is unknown or stale; the policy offers fresh slots.
    #[error("unknown or stale slot id")]
    UnknownSlot,
    #[error("record not found")]
    NotFound,
    /// Anything else (store locked, disk full ...): the policy apologises and takes a message.
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

/// Synchronous store access for one call. Every mutating call carries an idempotency key: calling
/// twice with the same key must return the first result and change nothing more.
pub trait Tools {
    fn find_patient_by_phone(&mut self, e164: &str) -> Result<Vec<PatientRef>, ToolError>;
    /// Everyone on record born on `dob` (the identity check then picks by name).
    fn find_patients_by_dob(&mut self, dob: chrono::NaiveDate) -> Result<Vec<PatientRef>, ToolError>;
    /// Appointments of the patient starting at or after `from_local`, earliest first.
    fn upcoming_appointments(
        &mut self,
        patient_id: &str,
        from_local: NaiveDateTime,
    ) -> Result<Vec<AppointmentRef>, ToolError>;
    /// Free slots, earliest first, at most `limit`.
    fn find_slots(&mut self, query: &SlotQuery) -> Result<Vec<SlotOffer>, ToolError>;
    fn book(&mut self, slot_id: &str, patient: &PatientDetails, idempotency_key: &str) -> Result<Booked, ToolError>;
    fn cancel(&mut self, appointment_id: &str, idempotency_key: &str) -> Result<(), ToolError>;
    fn reschedule(&mut self, appointment_id: &str, slot_id: &str, idempotency_key: &str) -> Result<Booked, ToolError>;
    /// Returns the message id.
    fn take_message(&mut self, message: &MessageDetails, idempotency_key: &str) -> Result<String, ToolError>;
    /// The caller corrected their name after the message was passed on ("Thank you, Brilliant." —
    /// "It's Priya Natarajan"). Setting the same name twice changes nothing.
    fn correct_message_name(&mut self, message_id: &str, name: &str) -> Result<(), ToolError>;
}
