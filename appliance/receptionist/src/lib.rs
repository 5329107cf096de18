//! Deterministic front-desk dialogue policy (sans-IO).
//!
//! The [`Receptionist`] is a state machine for one call: it is fed [`Event`]s with an injected
//! `now`, calls the synchronous [`Tools`] (the local store) and returns [`Action`]s for the voice
//! layer. It never opens sockets, reads clocks or logs; everything it knows about the practice
//! comes from [`PracticeFacts`].
//!
//! Invariants (tested by the scenario harness):
//! - A booking, reschedule or cancellation happens only after the details were read back and the
//!   caller said an explicit yes (a model's "yes" is never enough), exactly once per confirmation
//!   (idempotency key), and is never undone by a barge-in.
//! - Dates and times are resolved by code against `now` in the practice's timezone; an optional
//!   LLM reading only fills gaps the rules leave.
//! - Questions are answered only from the practice facts; otherwise the caller is offered a
//!   message or a transfer.
//! - Appointment details are disclosed only after an identity check (caller id matching the name
//!   the caller gave, or name + date of birth). Caller id alone is never used to greet by name:
//!   whoever holds the phone may not be the patient.
//! - A "yes" that barges into a read-back counts (the read-back leads with the details and the
//!   caller answered our question); an interrupted turn we do not understand is repeated in full.
//!
//! Wiring (per call): build [`PracticeFacts`] from the store, `Receptionist::new(facts, ctx,
//! Config::default())`, play `start()`, then feed every ASR final / DTMF / idle / transfer event to
//! `handle(event, now, &mut tools)` and execute the returned actions in order (`Record` first, then
//! `Say`, then `Transfer`/`Hangup`). Store `summary()` when the call ends.

pub mod facts;
pub mod llm;
pub mod memory;
mod phrasing;
pub use phrasing::{farewell, FIXED_SENTENCES};
mod policy;
pub mod recognizer;
pub mod spellings;
pub mod tools;
pub mod understand;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

pub use facts::{AppointmentTypeFacts, Closure, DayHours, PracticeFacts};
pub use llm::{llm_reading_json_schema, llm_system_prompt, LlmReading};
pub use policy::Receptionist;
pub use recognizer::{clock_phrases, recognizer_prompt};
pub use tools::{
    AppointmentRef, Booked, MessageDetails, PatientDetails, PatientRef, SlotOffer, SlotQuery, TimeWindow, ToolError, Tools,
};
pub use understand::Intent;

#[derive(Debug, thiserror::Error)]
pub enum ReceptionistError {
    #[error("practice timezone {0:?} is not an IANA zone name (e.g. America/Chicago): fix `timezone` in the practice settings")]
    BadTimezone(String),
    #[error("the practice has no appointment types configured: add at least one before enabling booking")]
    NoAppointmentTypes,
}

/// Who is calling and when the call started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallContext {
    /// Unique per call; prefixes every idempotency key so a retried tool call is harmless.
    pub call_id: String,
    /// Caller id as received (`+12175550161`, `anonymous`, or `None`).
    pub caller_id: Option<String>,
    pub started_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Options offered at once (2–3 is what people can hold in their head on the phone).
    pub max_offers: usize,
    /// How many days ahead to look for alternatives when the asked-for day is full or closed.
    pub search_days: i64,
    /// Transfer to the front desk outside office hours too (default: take a message instead,
    /// because nobody is there to answer).
    pub transfer_when_closed: bool,
    /// Misunderstood turns in a row before offering a human.
    pub max_confusions: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config { max_offers: 3, search_days: 14, transfer_when_closed: false, max_confusions: 2 }
    }
}

// One event per caller turn: the size of the speech variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    CallerSaid { text: String, asr_confidence: Option<f32>, understanding: Option<LlmReading> },
    Dtmf(char),
    /// The caller has been silent for a while.
    IdlePrompt,
    /// The caller stayed silent after the prompt.
    IdleTimeout,
    TransferFailed,
    TransferSucceeded,
    /// The caller spoke over the bot; the last `Say` may not have been heard in full.
    BargeIn,
    CallerHungUp,
    /// Caller turn `turn` (see [`Receptionist::name_to_rehear`]) transcribed again, in the
    /// background, by the slower recogniser that hears names better. Never answered aloud.
    NameReheard { turn: u64, text: String },
}

/// What the receptionist's last question asks for (see [`Receptionist::expecting`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expecting {
    Anything,
    PhoneNumber,
    DateOfBirth,
    Name,
    /// When to come in: a day, one of the offered times, or a correction at the read-back.
    DayOrTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferReason {
    FrontDesk,
    Emergency,
}

/// Things that happened in the call, for the lead to store/audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Recorded {
    Booked { appointment_id: String, appointment_type: String, start_local: NaiveDateTime },
    Rescheduled { appointment_id: String, from_local: NaiveDateTime, to_local: NaiveDateTime },
    Cancelled { appointment_id: String, start_local: NaiveDateTime },
    MessageTaken { message_id: String, urgent: bool },
    TransferRequested { uri: String, reason: TransferReason },
    TransferCompleted,
    TransferFailed,
    /// A tool failed in a way the caller could not fix (store down ...). No PHI inside.
    ToolFailure { operation: String, error: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Action {
    Say {
        text: String,
        /// `false` for legally required text (recording disclosure) and emergency safety advice.
        interruptible: bool,
        /// The caller is about to read digits: the turn-taker should wait longer.
        expect_digits: bool,
    },
    Transfer { uri: String, reason: TransferReason },
    Hangup,
    Record(Recorded),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
}

/// A caller who did not book: how promising, so staff can call back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lead {
    /// 0–100: emergency > new patient wanting to book > existing patient wanting to book > questions.
    pub score: u8,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallSummary {
    pub outcome: Outcome,
    pub intent: Option<Intent>,
    pub patient_name: Option<String>,
    pub appointment_ids: Vec<String>,
    pub message_id: Option<String>,
    pub transfer_target: Option<String>,
    /// One or two plain sentences for the staff dashboard (contains PHI: store it encrypted,
    /// never log it).
    pub text: String,
    pub lead: Option<Lead>,
    pub notify_staff: bool,
    pub records: Vec<Recorded>,
}
