//! Practice facts: the only source the policy may answer questions from.

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime};
use serde::{Deserialize, Serialize};

/// Opening hours of one weekday (`day`: 0 = Sunday .. 6 = Saturday), local time.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DayHours {
    pub day: u8,
    pub open: NaiveTime,
    pub close: NaiveTime,
    #[serde(default)]
    pub breaks: Vec<(NaiveTime, NaiveTime)>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Closure {
    pub date: NaiveDate,
    #[serde(default)]
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AppointmentTypeFacts {
    pub name: String,
    pub minutes: u32,
    #[serde(default)]
    pub buffer_after: u32,
    #[serde(default)]
    pub min_notice_hours: u32,
    #[serde(default = "default_window")]
    pub window_days: u32,
    /// Self-pay price in whole dollars, if the practice publishes one.
    #[serde(default)]
    pub price: Option<u32>,
    /// Types the practice does not let callers book themselves are never offered.
    #[serde(default = "default_true")]
    pub bookable_by_phone: bool,
}

fn default_window() -> u32 {
    60
}

fn default_true() -> bool {
    true
}

/// Everything the receptionist may state about the practice. Field names follow the `[practice]`
/// table of `practice.toml` plus its `hours`, `closures` and `appointment_types` arrays.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PracticeFacts {
    pub name: String,
    /// IANA zone name, e.g. `America/Chicago`.
    pub timezone: String,
    pub address: String,
    pub phone: String,
    pub front_desk_uri: String,
    /// Out-of-hours emergency line; empty = none (emergencies then become urgent messages).
    #[serde(default)]
    pub on_call_uri: String,
    #[serde(default)]
    pub insurance_accepted: Vec<String>,
    #[serde(default)]
    pub services: Vec<String>,
    pub greeting: String,
    #[serde(default)]
    pub hours: Vec<DayHours>,
    #[serde(default)]
    pub closures: Vec<Closure>,
    #[serde(default)]
    pub appointment_types: Vec<AppointmentTypeFacts>,
}

impl PracticeFacts {
    /// Hours for a calendar date, `None` when closed all day (weekday without hours or a closure).
    pub fn hours_on(&self, date: NaiveDate) -> Option<&DayHours> {
        if self.closure_on(date).is_some() {
            return None;
        }
        let wd = date.weekday().num_days_from_sunday() as u8;
        self.hours.iter().find(|h| h.day == wd)
    }

    pub fn closure_on(&self, date: NaiveDate) -> Option<&Closure> {
        self.closures.iter().find(|c| c.date == date)
    }

    /// Is a human at the front desk at this local time (open, not on a break)?
    pub fn is_open(&self, local: NaiveDateTime) -> bool {
        let Some(h) = self.hours_on(local.date()) else { return false };
        let t = local.time();
        t >= h.open && t < h.close && !h.breaks.iter().any(|(b, e)| t >= *b && t < *e)
    }

    pub fn appointment_type(&self, name: &str) -> Option<&AppointmentTypeFacts> {
        self.appointment_types.iter().find(|t| t.name.eq_ignore_ascii_case(name))
    }

    /// Earliest opening and latest closing over the week, used to put "two o'clock" on the right
    /// side of noon.
    pub fn day_span(&self) -> (NaiveTime, NaiveTime) {
        let open = self.hours.iter().map(|h| h.open).min();
        let close = self.hours.iter().map(|h| h.close).max();
        (
            open.unwrap_or_else(|| NaiveTime::from_hms_opt(8, 0, 0).expect("valid")),
            close.unwrap_or_else(|| NaiveTime::from_hms_opt(17, 0, 0).expect("valid")),
        )
    }
}
