//! Pure slot computation: no clock, no database. The store loads a [`SchedulingInput`], this module
//! answers which start times are free. Booking re-runs [`check_slot`] inside the write transaction,
//! so offering and booking use exactly the same rules.
//!
//! Rules: a slot's appointment `[start, start+minutes)` lies inside the day's open hours and outside
//! its breaks; its padded interval `[start-buffer_before, end+buffer_after)` does not meet any other
//! booked appointment's padded interval on the same chair (buffers are chair time: cleanup/setup);
//! closures have no slots; `start >= now + min_notice`; the local date is at most `window_days` after
//! today. Candidate starts step through local wall-clock time from opening by `granularity_minutes`;
//! wall-clock times that do not exist (spring forward) are skipped and repeated ones (fall back) are
//! offered once, at their first occurrence, so no slot is duplicated.

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeRule {
    pub id: i64,
    pub name: String,
    pub minutes: u32,
    pub buffer_before: u32,
    pub buffer_after: u32,
    pub min_notice_minutes: u32,
    pub window_days: u32,
    pub bookable_by_phone: bool,
}

/// Opening hours of one weekday (0 = Sunday), in minutes after local midnight (close may be 1440).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayHours {
    pub weekday: u8,
    pub open_min: u16,
    pub close_min: u16,
    pub breaks: Vec<(u16, u16)>,
}

/// A booked appointment occupying a chair, with its type's buffers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Busy {
    pub chair: i64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub buffer_before: u32,
    pub buffer_after: u32,
}

impl Busy {
    fn padded(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        (
            self.start - Duration::minutes(self.buffer_before.into()),
            self.end + Duration::minutes(self.buffer_after.into()),
        )
    }
}

#[derive(Debug, Clone)]
pub struct SchedulingInput {
    pub types: Vec<TypeRule>,
    pub hours: Vec<DayHours>,
    pub closures: Vec<NaiveDate>,
    pub existing: Vec<Busy>,
    pub now: DateTime<Utc>,
    pub tz: Tz,
    /// Chair ids, in the order they are filled.
    pub chairs: Vec<i64>,
    pub granularity_minutes: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub type_id: i64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Practice-local wall-clock start (what the caller hears).
    pub local_start: NaiveDateTime,
    /// The first free chair at that time.
    pub chair: i64,
}

/// Why a requested start is not bookable (for the dialogue layer: all mean "offer other times").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    UnknownType,
    NotOffered,
}

fn local_at(date: NaiveDate, minute: u16) -> NaiveDateTime {
    date.and_time(chrono::NaiveTime::MIN) + Duration::minutes(minute.into())
}

/// A boundary (open, close, break edge) in UTC. A boundary inside a DST gap moves forward by the gap.
fn boundary_utc(tz: Tz, t: NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&t) {
        LocalResult::Single(d) => Some(d.with_timezone(&Utc)),
        LocalResult::Ambiguous(a, _) => Some(a.with_timezone(&Utc)),
        LocalResult::None => match tz.from_local_datetime(&(t + Duration::hours(1))) {
            LocalResult::Single(d) | LocalResult::Ambiguous(d, _) => Some(d.with_timezone(&Utc)),
            LocalResult::None => None,
        },
    }
}

fn overlaps(a: (DateTime<Utc>, DateTime<Utc>), b: (DateTime<Utc>, DateTime<Utc>)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// Free slots of `type_id` whose local date lies in `[from, to]` (inclusive), in time order.
pub fn available_slots(input: &SchedulingInput, type_id: i64, from: NaiveDate, to: NaiveDate) -> Vec<Slot> {
    let Some(ty) = input.types.iter().find(|t| t.id == type_id) else {
        return Vec::new();
    };
    let today = input.now.with_timezone(&input.tz).date_naive();
    let last = today + Duration::days(ty.window_days.into());
    let from = from.max(today);
    let to = to.min(last);
    let earliest = input.now + Duration::minutes(ty.min_notice_minutes.into());
    let step = i64::from(input.granularity_minutes.max(1));
    let mut out = Vec::new();
    let mut date = from;
    while date <= to {
        day_slots(input, ty, date, earliest, step, &mut out);
        match date.succ_opt() {
            Some(d) => date = d,
            None => break,
        }
    }
    out
}

fn day_slots(input: &SchedulingInput, ty: &TypeRule, date: NaiveDate, earliest: DateTime<Utc>, step: i64, out: &mut Vec<Slot>) {
    if input.closures.contains(&date) {
        return;
    }
    let wd = date.weekday().num_days_from_sunday() as u8;
    let tz = input.tz;
    for hours in input.hours.iter().filter(|h| h.weekday == wd) {
        let (Some(open), Some(close)) = (
            boundary_utc(tz, local_at(date, hours.open_min)),
            boundary_utc(tz, local_at(date, hours.close_min)),
        ) else {
            continue;
        };
        let breaks: Vec<_> = hours
            .breaks
            .iter()
            .filter_map(|&(a, b)| Some((boundary_utc(tz, local_at(date, a))?, boundary_utc(tz, local_at(date, b))?)))
            .collect();
        let dur = Duration::minutes(ty.minutes.into());
        // Only appointments that can touch this opening matter; filter once per day, not per start.
        let reach = Duration::minutes(i64::from(ty.minutes + ty.buffer_before + ty.buffer_after));
        let day_busy: Vec<&Busy> = input
            .existing
            .iter()
            .filter(|b| overlaps((open - reach, close + reach), b.padded()))
            .collect();
        let mut m = i64::from(hours.open_min);
        while m < i64::from(hours.close_min) {
            let local = date.and_time(chrono::NaiveTime::MIN) + Duration::minutes(m);
            m += step;
            // Nonexistent wall-clock time: skip. Repeated: first occurrence only.
            let start = match tz.from_local_datetime(&local) {
                LocalResult::Single(d) | LocalResult::Ambiguous(d, _) => d.with_timezone(&Utc),
                LocalResult::None => continue,
            };
            if start < open {
                continue;
            }
            let end = start + dur;
            if end > close || start < earliest {
                continue;
            }
            if breaks.iter().any(|&b| overlaps((start, end), b)) {
                continue;
            }
            let padded = (
                start - Duration::minutes(ty.buffer_before.into()),
                end + Duration::minutes(ty.buffer_after.into()),
            );
            let chair = input.chairs.iter().copied().find(|&c| {
                !day_busy.iter().any(|b| b.chair == c && overlaps(padded, b.padded()))
            });
            if let Some(chair) = chair {
                out.push(Slot { type_id: ty.id, start, end, local_start: local, chair });
            }
        }
    }
}

/// Is `start` an offered slot for `type_id` right now? Returns it (with its chair) if so.
pub fn check_slot(input: &SchedulingInput, type_id: i64, start: DateTime<Utc>) -> Result<Slot, Unavailable> {
    if !input.types.iter().any(|t| t.id == type_id) {
        return Err(Unavailable::UnknownType);
    }
    let date = start.with_timezone(&input.tz).date_naive();
    available_slots(input, type_id, date, date)
        .into_iter()
        .find(|s| s.start == start)
        .ok_or(Unavailable::NotOffered)
}
