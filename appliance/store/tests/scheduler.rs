//! Scheduler properties (proptest) and DST cases.
mod common;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use common::date;
use fd_store::scheduler::{available_slots, check_slot, Busy, DayHours, SchedulingInput, TypeRule, Unavailable};
use proptest::prelude::*;

fn ty(minutes: u32, bb: u32, ba: u32, notice: u32, window: u32) -> TypeRule {
    TypeRule { id: 1, name: "T".into(), minutes, buffer_before: bb, buffer_after: ba, min_notice_minutes: notice, window_days: window, bookable_by_phone: true }
}

fn local_utc(tz: Tz, d: NaiveDate, minute: u16) -> DateTime<Utc> {
    let t = d.and_hms_opt(0, 0, 0).unwrap() + Duration::minutes(minute.into());
    tz.from_local_datetime(&t)
        .earliest()
        .or_else(|| tz.from_local_datetime(&(t + Duration::hours(1))).earliest())
        .unwrap()
        .with_timezone(&Utc)
}

const ZONES: &[Tz] = &[chrono_tz::America::Chicago, chrono_tz::UTC, chrono_tz::Europe::London, chrono_tz::Australia::Lord_Howe];

fn arb_hours() -> impl Strategy<Value = Vec<DayHours>> {
    prop::collection::vec(
        (0u8..7, 0u16..20, 1u16..30, prop::collection::vec((0u16..40, 1u16..8), 0..3)),
        1..7,
    )
    .prop_map(|days| {
        let mut out: Vec<DayHours> = Vec::new();
        for (wd, open_q, len_q, brks) in days {
            if out.iter().any(|h| h.weekday == wd) {
                continue;
            }
            // Quarter-hour resolution; may cross DST transition hours (00:00..24:00).
            let open = open_q * 30;
            let close = (open + len_q * 30).min(1440);
            let breaks = brks
                .into_iter()
                .map(|(s, l)| (open + s * 15, open + s * 15 + l * 15))
                .filter(|&(s, e)| e <= close && s > open)
                .collect();
            out.push(DayHours { weekday: wd, open_min: open, close_min: close, breaks });
        }
        out
    })
}

prop_compose! {
    fn arb_input()(
        zone in 0..ZONES.len(),
        hours in arb_hours(),
        // Start dates around both 2026 Chicago/London/Lord Howe transitions.
        base in prop::sample::select(vec![date(2026, 3, 5), date(2026, 3, 26), date(2026, 4, 2), date(2026, 10, 1), date(2026, 10, 22), date(2026, 10, 29)]),
        now_off_min in 0i64..(3 * 24 * 60),
        closures in prop::collection::vec(0i64..14, 0..3),
        existing in prop::collection::vec((0i64..14, 0u16..96, 1u32..8, 0u32..3, 0u32..3, 1i64..3), 0..12),
        chairs in 1i64..3,
        gran in prop::sample::select(vec![5u32, 10, 15, 30, 60]),
        t in (1u32..8, 0u32..3, 0u32..4, 0u32..(48 * 60), 0u32..12),
    ) -> (SchedulingInput, NaiveDate) {
        let tz = ZONES[zone];
        let now = local_utc(tz, base, 0) + Duration::minutes(now_off_min);
        let existing = existing.into_iter().map(|(d, q, len, bb, ba, chair)| {
            let start = local_utc(tz, base + Duration::days(d), q * 15);
            Busy { chair, start, end: start + Duration::minutes(i64::from(len) * 15), buffer_before: bb * 5, buffer_after: ba * 5 }
        }).collect();
        let input = SchedulingInput {
            types: vec![ty(t.0 * 15, t.1 * 5, t.2 * 5, t.3, t.4)],
            hours,
            closures: closures.into_iter().map(|d| base + Duration::days(d)).collect(),
            existing,
            now,
            tz,
            chairs: (1..=chairs).collect(),
            granularity_minutes: gran,
        };
        (input, base)
    }
}

fn overlaps(a: (DateTime<Utc>, DateTime<Utc>), b: (DateTime<Utc>, DateTime<Utc>)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]
    #[test]
    fn offered_slots_obey_every_rule((input, base) in arb_input()) {
        let t = &input.types[0];
        let from = base;
        let to = base + Duration::days(13);
        let slots = available_slots(&input, 1, from, to);
        let today = input.now.with_timezone(&input.tz).date_naive();
        for w in slots.windows(2) {
            prop_assert!(w[0].start < w[1].start, "strictly increasing, no duplicates");
        }
        for s in &slots {
            let local = s.start.with_timezone(&input.tz);
            prop_assert_eq!(local.naive_local(), s.local_start);
            let d = local.date_naive();
            prop_assert!(d >= from && d <= to);
            prop_assert!(!input.closures.contains(&d), "closure {}", d);
            prop_assert!(d <= today + Duration::days(t.window_days.into()), "window");
            prop_assert!(s.start >= input.now + Duration::minutes(t.min_notice_minutes.into()), "notice");
            prop_assert_eq!(s.end - s.start, Duration::minutes(t.minutes.into()));
            let wd = d.weekday().num_days_from_sunday() as u8;
            let h = input.hours.iter().find(|h| h.weekday == wd);
            prop_assert!(h.is_some(), "open day");
            let h = h.unwrap();
            prop_assert!(s.start >= local_utc(input.tz, d, h.open_min) && s.end <= local_utc(input.tz, d, h.close_min), "inside hours");
            for &(a, b) in &h.breaks {
                prop_assert!(!overlaps((s.start, s.end), (local_utc(input.tz, d, a), local_utc(input.tz, d, b))), "break");
            }
            prop_assert!(input.chairs.contains(&s.chair));
            let padded = (s.start - Duration::minutes(t.buffer_before.into()), s.end + Duration::minutes(t.buffer_after.into()));
            for b in input.existing.iter().filter(|b| b.chair == s.chair) {
                let bp = (b.start - Duration::minutes(b.buffer_before.into()), b.end + Duration::minutes(b.buffer_after.into()));
                prop_assert!(!overlaps(padded, bp), "overlaps an appointment or a buffer");
            }
            // Booking re-check agrees with the offer.
            prop_assert_eq!(check_slot(&input, 1, s.start).map(|x| x.start), Ok(s.start));
        }
    }

    /// Completeness on a plain day: with nothing in the way, every grid start that fits is offered.
    #[test]
    fn free_day_offers_every_fitting_grid_start(open_h in 6u16..10, close_h in 12u16..20, minutes in 1u32..8, gran in prop::sample::select(vec![10u32, 15, 30])) {
        let d = date(2026, 6, 10); // a Wednesday, no DST change anywhere near
        let input = SchedulingInput {
            types: vec![ty(minutes * 15, 0, 0, 0, 365)],
            hours: vec![DayHours { weekday: 3, open_min: open_h * 60, close_min: close_h * 60, breaks: vec![] }],
            closures: vec![], existing: vec![], now: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            tz: chrono_tz::America::Chicago, chairs: vec![1], granularity_minutes: gran,
        };
        let n = available_slots(&input, 1, d, d).len() as u32;
        let span = u32::from(close_h - open_h) * 60;
        let expect = if minutes * 15 > span { 0 } else { (span - minutes * 15) / gran + 1 };
        prop_assert_eq!(n, expect);
    }
}

fn all_day_sunday(tz: Tz) -> SchedulingInput {
    SchedulingInput {
        types: vec![ty(60, 0, 0, 0, 365)],
        hours: vec![DayHours { weekday: 0, open_min: 0, close_min: 1440, breaks: vec![] }],
        closures: vec![],
        existing: vec![],
        now: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        tz,
        chairs: vec![1],
        granularity_minutes: 30,
    }
}

#[test]
fn spring_forward_skips_missing_hour() {
    let input = all_day_sunday(chrono_tz::America::Chicago);
    let d = date(2026, 3, 8);
    let slots = available_slots(&input, 1, d, d);
    let times: Vec<String> = slots.iter().map(|s| s.local_start.format("%H:%M").to_string()).collect();
    assert!(!times.contains(&"02:00".to_string()) && !times.contains(&"02:30".to_string()));
    assert!(times.contains(&"01:30".to_string()) && times.contains(&"03:00".to_string()));
    // 00:00..23:00 by 30 min = 47 wall-clock starts, minus the two that do not exist.
    assert_eq!(slots.len(), 45);
    // The last slot ends exactly at local midnight (a 23-hour day).
    let last = slots.last().unwrap();
    assert_eq!(last.local_start.format("%H:%M").to_string(), "23:00");
    assert_eq!(last.end, chrono_tz::America::Chicago.with_ymd_and_hms(2026, 3, 9, 0, 0, 0).unwrap().with_timezone(&Utc));
    // 01:30 CST + 60 min = 03:30 CDT: real elapsed time, not wall-clock arithmetic.
    let s = slots.iter().find(|s| s.local_start.format("%H:%M").to_string() == "01:30").unwrap();
    assert_eq!(s.end.with_timezone(&chrono_tz::America::Chicago).format("%H:%M").to_string(), "03:30");
}

#[test]
fn fall_back_offers_repeated_hour_once() {
    let input = all_day_sunday(chrono_tz::America::Chicago);
    let d = date(2026, 11, 1);
    let slots = available_slots(&input, 1, d, d);
    let times: Vec<String> = slots.iter().map(|s| s.local_start.format("%H:%M").to_string()).collect();
    assert_eq!(times.iter().filter(|t| *t == "01:30").count(), 1);
    assert_eq!(slots.len(), 47);
    let s = slots.iter().find(|s| s.local_start.format("%H:%M").to_string() == "01:30").unwrap();
    assert_eq!(s.start, Utc.with_ymd_and_hms(2026, 11, 1, 6, 30, 0).unwrap(), "first (CDT) occurrence");
}

#[test]
fn office_hours_follow_wall_clock_across_dst() {
    let tz = chrono_tz::America::Chicago;
    let input = SchedulingInput {
        types: vec![ty(60, 0, 0, 0, 365)],
        hours: (1..=5).map(|wd| DayHours { weekday: wd, open_min: 9 * 60, close_min: 10 * 60, breaks: vec![] }).collect(),
        closures: vec![],
        existing: vec![],
        now: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        tz,
        chairs: vec![1],
        granularity_minutes: 15,
    };
    let before = available_slots(&input, 1, date(2026, 3, 6), date(2026, 3, 6));
    let after = available_slots(&input, 1, date(2026, 3, 9), date(2026, 3, 9));
    assert_eq!(before[0].start.format("%H:%M").to_string(), "15:00"); // CST = UTC-6
    assert_eq!(after[0].start.format("%H:%M").to_string(), "14:00"); // CDT = UTC-5
    assert_eq!((before.len(), after.len()), (1, 1));
    assert_eq!(check_slot(&input, 2, after[0].start), Err(Unavailable::UnknownType));
    assert_eq!(check_slot(&input, 1, after[0].start + Duration::minutes(5)), Err(Unavailable::NotOffered));
}
