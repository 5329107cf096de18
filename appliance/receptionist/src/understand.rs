//! Rule-based understanding of Whisper-style transcripts: dates, times, phone numbers, names,
//! yes/no, intents. Dates are resolved here against a local "today", never by a model.
//!
//! Everything works on a normalised token stream: lower case, punctuation dropped (but remembered
//! as a boundary), "a.m."/"p.m."/"o'clock" folded to single tokens, digits split from suffixes.

use chrono::{Datelike, Duration, NaiveDate, NaiveTime, Weekday};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tok {
    pub w: String,
    /// Punctuation (comma, period, ellipsis ...) directly follows this token.
    pub boundary: bool,
}

/// Lower-cased tokens with boundaries.
pub fn tokenize(text: &str) -> Vec<Tok> {
    let mut s = text.to_lowercase();
    for (from, to) in [
        ("a. m.", " am "),
        ("p. m.", " pm "),
        ("a.m.", " am "),
        ("p.m.", " pm "),
        ("a.m", " am "),
        ("p.m", " pm "),
        ("o'clock", " oclock "),
        ("o clock", " oclock "),
        ("o’clock", " oclock "),
        ("’", "'"),
    ] {
        s = s.replace(from, to);
    }
    let chars: Vec<char> = s.chars().collect();
    let mut toks: Vec<Tok> = Vec::new();
    let mut cur = String::new();
    let flush = |cur: &mut String, toks: &mut Vec<Tok>| {
        if !cur.is_empty() {
            toks.push(Tok { w: std::mem::take(cur), boundary: false });
        }
    };
    for (i, &c) in chars.iter().enumerate() {
        let prev = if i > 0 { chars[i - 1] } else { ' ' };
        let next = chars.get(i + 1).copied().unwrap_or(' ');
        let keep = c.is_alphanumeric()
            || (c == '\'' && prev.is_alphabetic() && next.is_alphabetic())
            || (c == ':' && prev.is_ascii_digit() && next.is_ascii_digit())
            || (c == '/' && prev.is_ascii_digit() && next.is_ascii_digit());
        if keep {
            cur.push(c);
        } else {
            flush(&mut cur, &mut toks);
            if !c.is_whitespace() && c != '-' && c != '\'' && c != '"' {
                if let Some(t) = toks.last_mut() {
                    t.boundary = true;
                }
            }
        }
    }
    flush(&mut cur, &mut toks);
    // Split "2pm" -> "2" "pm", "10am" -> "10" "am", "2:00pm" -> "2:00" "pm".
    let mut out = Vec::with_capacity(toks.len());
    for t in toks {
        let w = &t.w;
        let split = ["am", "pm", "oclock"].iter().find_map(|suf| {
            w.strip_suffix(suf)
                .filter(|head| !head.is_empty() && head.chars().all(|c| c.is_ascii_digit() || c == ':'))
                .map(|head| (head.to_string(), suf.to_string()))
        });
        match split {
            Some((head, suf)) => {
                out.push(Tok { w: head, boundary: false });
                out.push(Tok { w: suf, boundary: t.boundary });
            }
            None => out.push(t),
        }
    }
    out
}

fn words(toks: &[Tok]) -> Vec<&str> {
    toks.iter().map(|t| t.w.as_str()).collect()
}

// ---------------------------------------------------------------- numbers

pub(crate) const UNITS: [&str; 20] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
];
pub(crate) const TENS: [&str; 10] = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"];
pub(crate) const ORD_UNITS: [&str; 20] = [
    "zeroth", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
    "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth", "eighteenth",
    "nineteenth",
];
const ORD_TENS: [&str; 4] = ["", "", "twentieth", "thirtieth"];

fn unit_word(w: &str) -> Option<u32> {
    UNITS.iter().position(|u| *u == w).map(|p| p as u32)
}

fn tens_word(w: &str) -> Option<u32> {
    TENS.iter().position(|u| !u.is_empty() && *u == w).map(|p| p as u32 * 10)
}

/// Any number in the tokens, in digits or words ("7", "seven", "forty", "5th", "fifth").
pub fn holds_a_number(toks: &[Tok]) -> bool {
    let ws = words(toks);
    (0..ws.len()).any(|i| ws[i].chars().any(|c| c.is_ascii_digit()) || cardinal_at(&ws, i).is_some() || ordinal_at(&ws, i).is_some())
}

/// A cardinal at `i` ("7", "seven", "twenty one", "forty-five"): (value, tokens used).
fn cardinal_at(ws: &[&str], i: usize) -> Option<(u32, usize)> {
    let w = *ws.get(i)?;
    if !w.is_empty() && w.len() <= 4 && w.chars().all(|c| c.is_ascii_digit()) {
        return w.parse().ok().map(|v| (v, 1));
    }
    if let Some(v) = unit_word(w) {
        return Some((v, 1));
    }
    if let Some(t) = tens_word(w) {
        if let Some(u) = ws.get(i + 1).and_then(|n| unit_word(n)).filter(|u| (1..10).contains(u)) {
            return Some((t + u, 2));
        }
        return Some((t, 1));
    }
    None
}

/// An ordinal at `i` ("5th", "fifth", "twenty first", "twenty-first"): (value, tokens used).
fn ordinal_at(ws: &[&str], i: usize) -> Option<(u32, usize)> {
    let w = *ws.get(i)?;
    for suf in ["st", "nd", "rd", "th"] {
        if let Some(d) = w.strip_suffix(suf) {
            if !d.is_empty() && d.len() <= 2 && d.chars().all(|c| c.is_ascii_digit()) {
                return d.parse().ok().map(|v| (v, 1));
            }
        }
    }
    if let Some(p) = ORD_UNITS.iter().position(|u| *u == w) {
        return Some((p as u32, 1));
    }
    if let Some(p) = ORD_TENS.iter().position(|u| !u.is_empty() && *u == w) {
        return Some((p as u32 * 10, 1));
    }
    if let Some(t) = tens_word(w) {
        if let Some(p) = ws.get(i + 1).and_then(|n| ORD_UNITS.iter().position(|u| u == n)).filter(|p| (1..10).contains(p)) {
            return Some((t + p as u32, 2));
        }
    }
    None
}

// ---------------------------------------------------------------- dates

const MONTHS: [&[&str]; 12] = [
    &["january", "jan"],
    &["february", "feb"],
    &["march", "mar"],
    &["april", "apr"],
    &["may"],
    &["june", "jun"],
    &["july", "jul"],
    &["august", "aug"],
    &["september", "sept", "sep"],
    &["october", "oct"],
    &["november", "nov"],
    &["december", "dec"],
];

fn month_word(w: &str) -> Option<u32> {
    MONTHS.iter().position(|names| names.contains(&w)).map(|p| p as u32 + 1)
}

fn weekday_word(w: &str) -> Option<Weekday> {
    Some(match w {
        "monday" | "mon" | "mondays" => Weekday::Mon,
        "tuesday" | "tues" | "tue" | "tuesdays" => Weekday::Tue,
        "wednesday" | "wed" | "wednesdays" => Weekday::Wed,
        "thursday" | "thurs" | "thu" | "thursdays" => Weekday::Thu,
        "friday" | "fri" | "fridays" => Weekday::Fri,
        "saturday" | "sat" | "saturdays" => Weekday::Sat,
        "sunday" | "sun" | "sundays" => Weekday::Sun,
        _ => return None,
    })
}

/// A date as spoken, before resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateSpec {
    Today,
    Tomorrow,
    DayAfterTomorrow,
    /// "Thursday": the soonest such day after today. Said on a Monday, "Monday" means next
    /// week's: a caller who means today says "today" (offers for today are matched by weekday).
    Weekday(Weekday),
    /// "this Thursday": the soonest such day, today included.
    ThisWeekday(Weekday),
    /// "a week from today", "in two weeks", "a week from tomorrow": today plus this many days.
    DaysFromToday(i64),
    /// "next Tuesday": that day in the next calendar week (weeks start on Monday).
    NextWeekday(Weekday),
    /// "the Monday after" / "Monday after that": first such day strictly after the anchor date.
    WeekdayAfter(Weekday),
    /// "the day after": anchor + 1.
    DayAfterAnchor,
    /// "March 5th" (weekday hint kept to disambiguate nothing: the date wins).
    MonthDay { month: u32, day: u32 },
    /// "Friday the thirteenth": the next such day of month, matching the weekday when given.
    DayOfMonth { day: u32, weekday: Option<Weekday> },
    /// "Thursday, March 5th": a weekday and a month-day said together. When they disagree
    /// ("Friday, May 13th" — the recogniser's "May" for "the"), the nearest day-of-month that
    /// does fall on that weekday wins if it is sooner and within two months; otherwise the
    /// month-day (the read-back says the weekday, so a caller's own slip is caught there).
    MonthDayOn { month: u32, day: u32, weekday: Weekday },
    /// "that day", "that afternoon", "same day": the anchor.
    Anchor,
}

/// Resolve against local today and the last date discussed in the call (`anchor`).
pub fn resolve_date(spec: DateSpec, today: NaiveDate, anchor: Option<NaiveDate>) -> Option<NaiveDate> {
    let base = anchor.unwrap_or(today);
    match spec {
        DateSpec::Today => Some(today),
        DateSpec::Tomorrow => today.succ_opt(),
        DateSpec::DayAfterTomorrow => Some(today + Duration::days(2)),
        DateSpec::Weekday(wd) => Some(next_weekday_on_or_after(today + Duration::days(1), wd)),
        DateSpec::ThisWeekday(wd) => Some(next_weekday_on_or_after(today, wd)),
        DateSpec::DaysFromToday(n) => Some(today + Duration::days(n)),
        DateSpec::NextWeekday(wd) => {
            let days_to_next_monday = 7 - today.weekday().num_days_from_monday() as i64;
            let next_monday = today + Duration::days(days_to_next_monday);
            Some(next_weekday_on_or_after(next_monday, wd))
        }
        DateSpec::WeekdayAfter(wd) => Some(next_weekday_on_or_after(base + Duration::days(1), wd)),
        DateSpec::DayAfterAnchor => base.succ_opt(),
        DateSpec::Anchor => anchor,
        DateSpec::MonthDay { month, day } => {
            let this_year = NaiveDate::from_ymd_opt(today.year(), month, day);
            match this_year {
                Some(d) if d >= today => Some(d),
                _ => NaiveDate::from_ymd_opt(today.year() + 1, month, day),
            }
        }
        DateSpec::MonthDayOn { month, day, weekday } => {
            let md = resolve_date(DateSpec::MonthDay { month, day }, today, anchor);
            if md.is_some_and(|d| d.weekday() == weekday) {
                return md;
            }
            let dom = resolve_date(DateSpec::DayOfMonth { day, weekday: Some(weekday) }, today, anchor).filter(|d| (*d - today).num_days() <= 60);
            match (md, dom) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        }
        DateSpec::DayOfMonth { day, weekday } => {
            let (mut y, mut m) = (today.year(), today.month());
            for _ in 0..24 {
                if let Some(d) = NaiveDate::from_ymd_opt(y, m, day) {
                    if d >= today && weekday.is_none_or(|wd| d.weekday() == wd) {
                        return Some(d);
                    }
                }
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
            None
        }
    }
}

fn next_weekday_on_or_after(d: NaiveDate, wd: Weekday) -> NaiveDate {
    let diff = (7 + wd.num_days_from_monday() as i64 - d.weekday().num_days_from_monday() as i64) % 7;
    d + Duration::days(diff)
}

/// All date mentions in order of appearance.
pub fn extract_dates(toks: &[Tok]) -> Vec<DateSpec> {
    let ws = words(toks);
    let mut out = Vec::new();
    let mut pending_weekday: Option<Weekday> = None;
    let mut i = 0;
    while i < ws.len() {
        let w = ws[i];
        let prev = if i > 0 { ws[i - 1] } else { "" };
        // "3/12" (month/day, as written in the US)
        if let Some((m, d)) = w.split_once('/').and_then(|(m, d)| Some((m.parse::<u32>().ok()?, d.parse::<u32>().ok()?))) {
            if (1..=12).contains(&m) && (1..=31).contains(&d) {
                out.push(DateSpec::MonthDay { month: m, day: d });
                i += 1;
                continue;
            }
        }
        // "March 5th" / "March fifth" / "March 5"
        if let Some(m) = month_word(w) {
            // "may" is also a verb: require a day right after it.
            let day = ordinal_at(&ws, i + 1).or_else(|| cardinal_at(&ws, i + 1).filter(|(v, _)| *v <= 31));
            let day = day.or_else(|| {
                if ws.get(i + 1) == Some(&"the") {
                    ordinal_at(&ws, i + 2).map(|(v, n)| (v, n + 1))
                } else {
                    None
                }
            });
            if let Some((d, n)) = day.filter(|(d, _)| (1..=31).contains(d)) {
                out.push(match pending_weekday.take() {
                    Some(weekday) => DateSpec::MonthDayOn { month: m, day: d, weekday },
                    None => DateSpec::MonthDay { month: m, day: d },
                });
                i += 1 + n;
                continue;
            }
        }
        pending_weekday = None;
        // "the fifth of March"
        if let Some((d, n)) = ordinal_at(&ws, i) {
            if ws.get(i + n) == Some(&"of") {
                if let Some(m) = ws.get(i + n + 1).and_then(|w| month_word(w)) {
                    out.push(DateSpec::MonthDay { month: m, day: d });
                    i += n + 2;
                    continue;
                }
            }
        }
        // "a week from today", "two weeks from tomorrow", "in a week", "in two weeks"
        if let Some((days, n)) = weeks_from_now_at(&ws, i) {
            out.push(DateSpec::DaysFromToday(days));
            i += n;
            continue;
        }
        match w {
            "today" | "tonight" => out.push(DateSpec::Today),
            "tomorrow" => {
                if prev == "after" && i >= 2 && ws[i - 2] == "day" {
                    out.pop_if_tomorrow_context();
                    out.push(DateSpec::DayAfterTomorrow);
                } else {
                    out.push(DateSpec::Tomorrow);
                }
            }
            "day" if ws.get(i + 1) == Some(&"after") && ws.get(i + 2) != Some(&"tomorrow") && prev == "the" => {
                out.push(DateSpec::DayAfterAnchor)
            }
            "that" | "same" if matches!(ws.get(i + 1), Some(&"day") | Some(&"afternoon") | Some(&"morning") | Some(&"evening")) => {
                out.push(DateSpec::Anchor)
            }
            _ => {}
        }
        if let Some(wd) = weekday_word(w) {
            let after = ws.get(i + 1) == Some(&"after");
            if after {
                out.push(DateSpec::WeekdayAfter(wd));
                i += 2;
                continue;
            }
            // "Friday the thirteenth" / "Friday 13th" / "Thursday, March 5th" (month handled next loop)
            let dom = if ws.get(i + 1) == Some(&"the") { ordinal_at(&ws, i + 2).map(|(v, n)| (v, n + 1)) } else { ordinal_at(&ws, i + 1) };
            if let Some((d, n)) = dom.filter(|(d, _)| (1..=31).contains(d)) {
                out.push(DateSpec::DayOfMonth { day: d, weekday: Some(wd) });
                i += 1 + n;
                continue;
            }
            if ws.get(i + 1).and_then(|w| month_word(w)).is_some() {
                // the month-day that follows carries the date, checked against this weekday
                pending_weekday = Some(wd);
                i += 1;
                continue;
            }
            // "Wednesday, not Tuesday" / "instead of Tuesday": the day ruled out is no date.
            let ruled_out = prev == "not" || (prev == "of" && i >= 2 && ws[i - 2] == "instead");
            if !ruled_out {
                out.push(match prev {
                    "next" => DateSpec::NextWeekday(wd),
                    "this" => DateSpec::ThisWeekday(wd),
                    _ => DateSpec::Weekday(wd),
                });
            }
        }
        // "on the 13th"
        if w == "the" && prev == "on" {
            if let Some((d, n)) = ordinal_at(&ws, i + 1).filter(|(d, _)| (1..=31).contains(d)) {
                if ws.get(i + 1 + n).and_then(|w| month_word(w)).is_none() && ws.get(i + 1 + n) != Some(&"of") {
                    out.push(DateSpec::DayOfMonth { day: d, weekday: None });
                    i += 1 + n;
                    continue;
                }
            }
        }
        i += 1;
    }
    out
}

/// "push it back a day", "an hour later", "move it up a week": how far the appointment being
/// moved should move (later is positive). None without a direction word.
pub fn extract_shift(toks: &[Tok]) -> Option<Duration> {
    let ws = words(toks);
    let later = has_any(&ws, &["back", "later", "postpone", "delay"]);
    let earlier = has_any(&ws, &["earlier", "forward", "up", "sooner"]);
    if later == earlier {
        return None;
    }
    let shift = (1..ws.len()).find_map(|i| {
        let n = few_at(&ws, i - 1)?;
        match ws[i] {
            "day" | "days" => Some(Duration::days(n)),
            "hour" | "hours" => Some(Duration::hours(n)),
            "week" | "weeks" if ws.get(i + 1) != Some(&"from") => Some(Duration::weeks(n)),
            _ => None,
        }
    })?;
    Some(if later { shift } else { -shift })
}

/// "a", "an", "one"/"1" … "three"/"3" at word `i`: how many days, hours or weeks a caller moves
/// or counts ahead (more is not said that way on the phone).
fn few_at(ws: &[&str], i: usize) -> Option<i64> {
    match *ws.get(i)? {
        "a" | "an" => Some(1),
        _ => cardinal_at(ws, i).filter(|&(v, n)| n == 1 && (1..=3).contains(&v)).map(|(v, _)| v as i64),
    }
}

/// "a week from today" (7), "two weeks from tomorrow" (15), "in a week" (7), "in 2 weeks" (14),
/// starting at word `i`: (days from today, words used).
fn weeks_from_now_at(ws: &[&str], i: usize) -> Option<(i64, usize)> {
    let is_week = |w: Option<&&str>| matches!(w, Some(&"week") | Some(&"weeks"));
    if ws[i] == "in" {
        let k = few_at(ws, i + 1)?;
        return is_week(ws.get(i + 2)).then_some((7 * k, 3));
    }
    let k = few_at(ws, i)?;
    if !is_week(ws.get(i + 1)) || ws.get(i + 2) != Some(&"from") {
        return None;
    }
    match *ws.get(i + 3)? {
        "today" | "now" => Some((7 * k, 4)),
        "tomorrow" => Some((7 * k + 1, 4)),
        _ => None,
    }
}

trait PopTomorrow {
    fn pop_if_tomorrow_context(&mut self);
}
impl PopTomorrow for Vec<DateSpec> {
    fn pop_if_tomorrow_context(&mut self) {
        // "the day after tomorrow": "day after" may have been read as DayAfterAnchor.
        if self.last() == Some(&DateSpec::DayAfterAnchor) {
            self.pop();
        }
    }
}

/// A span of days: "next week", "this week", "as soon as possible" (inclusive local dates).
pub fn extract_range(toks: &[Tok], today: NaiveDate, asap_days: i64) -> Option<(NaiveDate, NaiveDate)> {
    let ws = words(toks);
    let monday_next = today + Duration::days(7 - today.weekday().num_days_from_monday() as i64);
    if has_seq(&ws, &["next", "week"]) {
        return Some((monday_next, monday_next + Duration::days(6)));
    }
    if has_seq(&ws, &["this", "week"]) || has_seq(&ws, &["later", "in", "the", "week"]) {
        return Some((today, monday_next - Duration::days(1)));
    }
    let next_opening = has_any(&ws, &["available", "opening", "openings"]) && has_any(&ws, &["next", "first", "earliest", "soonest"]);
    if has_seq(&ws, &["as", "soon", "as"]) || has_any(&ws, &["asap", "soonest", "anytime", "whenever"]) || next_opening {
        return Some((today, today + Duration::days(asap_days)));
    }
    None
}

// ---------------------------------------------------------------- times

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meridiem {
    Am,
    Pm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeMention {
    pub hour: u32,
    pub minute: u32,
    pub meridiem: Option<Meridiem>,
}

impl TimeMention {
    /// Resolve to a clock time; without am/pm pick the reading inside the practice's day span.
    pub fn resolve(&self, open: NaiveTime, close: NaiveTime) -> Option<NaiveTime> {
        let h = match (self.meridiem, self.hour) {
            (_, h) if h > 12 => h,
            (Some(Meridiem::Am), 12) => 0,
            (Some(Meridiem::Am), h) => h,
            (Some(Meridiem::Pm), 12) => 12,
            (Some(Meridiem::Pm), h) => h + 12,
            (None, 12) => 12,
            (None, h) => {
                let am = NaiveTime::from_hms_opt(h, self.minute, 0)?;
                let pm = NaiveTime::from_hms_opt(h + 12, self.minute, 0)?;
                let inside = |t: NaiveTime| t >= open && t < close;
                // Inside office hours wins; otherwise 1–6 are afternoon hours in speech.
                if inside(am) {
                    h
                } else if inside(pm) || h < 7 {
                    h + 12
                } else {
                    h
                }
            }
        };
        NaiveTime::from_hms_opt(h, self.minute, 0)
    }
}

/// Part of the day or an open-ended bound ("after 3").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayPart {
    Morning,
    Afternoon,
    Evening,
    After(TimeMention),
    Before(TimeMention),
}

const TIME_FILLERS: &[&str] = &[
    "please", "is", "fine", "works", "good", "great", "ok", "okay", "perfect", "that", "that's", "would", "be", "um",
    "uh", "yes", "yeah", "sure", "lets", "let's", "do", "how", "about", "at", "around", "maybe", "then", "i", "can",
    "come", "in", "the", "oh", "for", "me", "best",
];

fn minutes_at(ws: &[&str], i: usize) -> Option<(u32, usize)> {
    let w = *ws.get(i)?;
    if w == "oh" {
        if let Some(u) = ws.get(i + 1).and_then(|n| unit_word(n)).filter(|u| (1..10).contains(u)) {
            return Some((u, 2));
        }
    }
    if w.len() == 2 && w.chars().all(|c| c.is_ascii_digit()) {
        return w.parse().ok().filter(|m| *m < 60).map(|m| (m, 1));
    }
    let (v, n) = cardinal_at(ws, i).filter(|(v, _)| (10..60).contains(v))?;
    if ws[i].chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some((v, n))
}

fn parse_clock(w: &str) -> Option<(u32, u32)> {
    let (h, m) = w.split_once(':')?;
    let h: u32 = h.parse().ok()?;
    let m: u32 = m.parse().ok()?;
    (h < 24 && m < 60).then_some((h, m))
}

fn hour_at(ws: &[&str], i: usize) -> Option<(u32, usize)> {
    let w = *ws.get(i)?;
    if w.chars().all(|c| c.is_ascii_digit()) {
        let v: u32 = w.parse().ok()?;
        return (v <= 23 && w.len() <= 2).then_some((v, 1));
    }
    unit_word(w).filter(|v| (1..=12).contains(v)).map(|v| (v, 1))
}

/// Time mentions and day parts. `expect_time`: the bot just asked for a time, so a bare
/// "nine please" counts.
pub fn extract_times(toks: &[Tok], expect_time: bool) -> (Vec<TimeMention>, Vec<DayPart>) {
    let ws = clock_homophones(&words(toks));
    let mut times = Vec::new();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < ws.len() {
        let w = ws[i];
        let prev = if i > 0 { ws[i - 1] } else { "" };
        match w {
            "morning" => parts.push(DayPart::Morning),
            "afternoon" => parts.push(DayPart::Afternoon),
            "evening" | "tonight" => parts.push(DayPart::Evening),
            // "after lunch" is the afternoon (the lunch break is the practice's, not a time).
            "lunch" if prev == "after" => parts.push(DayPart::Afternoon),
            "lunch" if prev == "before" => parts.push(DayPart::Morning),
            "noon" | "midday" | "lunchtime" => {
                let t = TimeMention { hour: 12, minute: 0, meridiem: None };
                match prev {
                    "after" => parts.push(DayPart::After(t)),
                    "before" => parts.push(DayPart::Before(t)),
                    _ => times.push(t),
                }
            }
            _ => {}
        }
        // "half past two", "quarter past two"
        if (w == "half" || w == "quarter") && matches!(ws.get(i + 1), Some(&"past") | Some(&"after")) {
            if let Some((h, n)) = hour_at(&ws, i + 2) {
                let minute = if w == "half" { 30 } else { 15 };
                let (mer, used) = meridiem_after(&ws, i + 2 + n);
                times.push(TimeMention { hour: h, minute, meridiem: mer });
                i += 2 + n + used;
                continue;
            }
        }
        let clock = parse_clock(w).map(|hm| (hm, 1usize));
        let mut with_minutes = false;
        let spoken = if clock.is_none() {
            hour_at(&ws, i).map(|(h, n)| {
                let (m, mn) = minutes_at(&ws, i + n).unwrap_or((0, 0));
                with_minutes = mn > 0;
                ((h, m), n + mn)
            })
        } else {
            None
        };
        if let Some(((h, m), n)) = clock.or(spoken) {
            let (mer, used) = meridiem_after(&ws, i + n);
            // "make it eleven" corrects the time.
            let make_it = prev == "it" && i >= 2 && ws[i - 2] == "make";
            let cue_before = matches!(prev, "at" | "around" | "about" | "by" | "after" | "before" | "til" | "until") || make_it;
            // "ten thirty", "nine fifteen": an hour with its minutes is a time on its own.
            let cue_after = mer.is_some() || ws.get(i + n) == Some(&"oclock") || clock.is_some() || with_minutes;
            // A bare hour counts when the rest of the turn is filler ("nine please"), or when it
            // is the turn's whole first clause ("Nine. ..."): how a recogniser hinted with the
            // offered times writes a pick it could only start ("9. I look like, please").
            let bare = expect_time
                && (ws.iter().enumerate().all(|(j, x)| (j >= i && j < i + n) || TIME_FILLERS.contains(x))
                    || (i == 0 && n == 1 && toks.first().is_some_and(|t| t.boundary)));
            // "at 2" is a time; "the 2nd" never reaches here (ordinals are not cardinals).
            let is_date_number = ws.get(i + n).is_some_and(|x| month_word(x).is_some()) || month_word(prev).is_some();
            if (cue_before || cue_after || bare) && !is_date_number && (clock.is_some() || h <= 12 || cue_after) {
                let t = TimeMention { hour: h, minute: m, meridiem: mer };
                match prev {
                    "after" => parts.push(DayPart::After(t)),
                    "before" | "til" | "until" => parts.push(DayPart::Before(t)),
                    _ => times.push(t),
                }
                let oclock = usize::from(ws.get(i + n + used) == Some(&"oclock"));
                i += n + used + oclock;
                continue;
            }
        }
        i += 1;
    }
    (times, parts)
}

/// Speech recognisers write the hour as its homophone ("to o'clock", "for p.m.") and hear
/// "o'clock" as "the clock": undo that where a clock word follows, and nowhere else.
fn clock_homophones<'a>(ws: &[&'a str]) -> Vec<&'a str> {
    let mut out = Vec::with_capacity(ws.len());
    let mut i = 0;
    while i < ws.len() {
        let clock_at = |j: usize| -> Option<usize> {
            match (ws.get(j), ws.get(j + 1)) {
                (Some(&"oclock"), _) | (Some(&"clock"), _) => Some(1),
                (Some(&"the") | Some(&"a"), Some(&"clock")) => Some(2),
                _ => None,
            }
        };
        let hourish = matches!(ws[i], "to" | "too" | "for" | "ate") || unit_word(ws[i]).is_some() || ws[i].chars().all(|c| c.is_ascii_digit());
        if hourish {
            let hour = match ws[i] {
                "to" | "too" => "two",
                "for" => "four",
                "ate" => "eight",
                w => w,
            };
            if let Some(n) = clock_at(i + 1) {
                out.push(hour);
                out.push("oclock");
                i += 1 + n;
                continue;
            }
            if hour != ws[i] && matches!(ws.get(i + 1), Some(&"am") | Some(&"pm")) {
                out.push(hour);
                i += 1;
                continue;
            }
        }
        out.push(ws[i]);
        i += 1;
    }
    out
}

fn meridiem_after(ws: &[&str], i: usize) -> (Option<Meridiem>, usize) {
    let skip = usize::from(ws.get(i) == Some(&"oclock"));
    match ws.get(i + skip) {
        Some(&"am") => return (Some(Meridiem::Am), 1 + skip),
        Some(&"pm") => return (Some(Meridiem::Pm), 1 + skip),
        _ => {}
    }
    if ws.get(i + skip) == Some(&"in") && ws.get(i + skip + 1) == Some(&"the") {
        match ws.get(i + skip + 2) {
            Some(&"morning") => return (Some(Meridiem::Am), 3 + skip),
            Some(&"afternoon") | Some(&"evening") => return (Some(Meridiem::Pm), 3 + skip),
            _ => {}
        }
    }
    (None, 0)
}

// ---------------------------------------------------------------- phone numbers

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phone {
    /// `+1XXXXXXXXXX` (North American numbers are what the appliance serves).
    E164(String),
    /// Fewer digits than a full number: ask again.
    Partial(String),
}

fn digit_word(w: &str) -> Option<&'static str> {
    Some(match w {
        "zero" | "oh" | "o" => "0",
        "one" => "1",
        "two" | "to" | "too" => "2",
        "three" => "3",
        "four" | "for" => "4",
        "five" => "5",
        "six" => "6",
        "seven" => "7",
        "eight" => "8",
        "nine" => "9",
        _ => return None,
    })
}

/// The longest digit run in the turn (words or numerals, any grouping). Runs of fewer than 7
/// digits are not phone numbers (times, dates).
pub fn extract_phone(toks: &[Tok]) -> Option<Phone> {
    let ws = words(toks);
    let mut best = String::new();
    let mut cur = String::new();
    let mut strict_digits = 0; // digits from unambiguous tokens
    let mut best_strict = 0;
    let mut i = 0;
    while i < ws.len() {
        let w = ws[i];
        let mut consumed = true;
        if w.chars().all(|c| c.is_ascii_digit()) && !w.is_empty() {
            cur.push_str(w);
            strict_digits += w.len();
        } else if let Some((rep, n)) = match w {
            "double" => Some((2, 1)),
            "triple" => Some((3, 1)),
            _ => None,
        } {
            if let Some(d) = ws.get(i + n).and_then(|x| digit_word(x)) {
                for _ in 0..rep {
                    cur.push_str(d);
                }
                strict_digits += rep;
                i += 1;
            } else {
                consumed = false;
            }
        } else if let Some(d) = digit_word(w) {
            // "to"/"for"/"o" are digits only inside a run
            let weak = matches!(w, "to" | "too" | "for" | "o");
            if weak && cur.is_empty() {
                consumed = false;
            } else {
                cur.push_str(d);
                if !weak {
                    strict_digits += 1;
                }
            }
        } else if matches!(w, "uh" | "um" | "and" | "dash") && !cur.is_empty() {
            // pauses inside a number
        } else {
            consumed = false;
        }
        if !consumed {
            if cur.len() > best.len() {
                best = std::mem::take(&mut cur);
                best_strict = strict_digits;
            }
            cur.clear();
            strict_digits = 0;
        }
        i += 1;
    }
    if cur.len() > best.len() {
        best = cur;
        best_strict = strict_digits;
    }
    // Trailing weak words ("... nine one for me") should not count.
    if best.len() < 7 || best_strict < 7 {
        return None;
    }
    Some(match best.len() {
        10 => Phone::E164(format!("+1{best}")),
        11 if best.starts_with('1') => Phone::E164(format!("+{best}")),
        _ => Phone::Partial(best),
    })
}

/// Normalise a caller-id string to `+1XXXXXXXXXX` when it is a North American number.
pub fn normalize_caller_id(raw: &str) -> Option<String> {
    if raw.eq_ignore_ascii_case("anonymous") || raw.is_empty() {
        return None;
    }
    let digits: String = raw.chars().filter(|c| c.is_ascii_digit()).collect();
    match digits.len() {
        10 => Some(format!("+1{digits}")),
        11 if digits.starts_with('1') => Some(format!("+{digits}")),
        n if n >= 7 && raw.starts_with('+') => Some(format!("+{digits}")),
        _ => None,
    }
}

// ---------------------------------------------------------------- date of birth

fn year_at(ws: &[&str], i: usize) -> Option<(i32, usize)> {
    let w = *ws.get(i)?;
    if w.len() == 4 && w.chars().all(|c| c.is_ascii_digit()) {
        return w.parse().ok().map(|y| (y, 1));
    }
    if w == "two" && ws.get(i + 1) == Some(&"thousand") {
        let mut n = 2;
        if ws.get(i + n) == Some(&"and") {
            n += 1;
        }
        return match cardinal_at(ws, i + n).filter(|(v, _)| *v < 100) {
            Some((v, m)) => Some((2000 + v as i32, n + m)),
            None => Some((2000, 2)),
        };
    }
    let (century, n) = match w {
        "nineteen" => (1900, 1),
        "twenty" => (2000, 1),
        _ => return None,
    };
    if ws.get(i + n) == Some(&"oh") {
        let (v, m) = cardinal_at(ws, i + n + 1).filter(|(v, _)| *v < 10)?;
        return Some((century + v as i32, n + 1 + m));
    }
    let (v, m) = cardinal_at(ws, i + n).filter(|(v, _)| (10..100).contains(v))?;
    Some((century + v as i32, n + m))
}

/// "June 14th, 1975", "June fourteenth nineteen seventy five", "6/14/1975", "06 14 1975".
pub fn extract_dob(toks: &[Tok]) -> Option<NaiveDate> {
    let ws = words(toks);
    for i in 0..ws.len() {
        if let Some(m) = month_word(ws[i]) {
            let day = ordinal_at(&ws, i + 1).or_else(|| cardinal_at(&ws, i + 1).filter(|(v, n)| *v <= 31 && *n == 1));
            if let Some((d, n)) = day {
                if let Some((y, _)) = year_at(&ws, i + 1 + n) {
                    return NaiveDate::from_ymd_opt(y, m, d);
                }
            }
        }
        if let Some((d, n)) = ordinal_at(&ws, i) {
            if ws.get(i + n) == Some(&"of") {
                if let Some(m) = ws.get(i + n + 1).and_then(|w| month_word(w)) {
                    if let Some((y, _)) = year_at(&ws, i + n + 2) {
                        return NaiveDate::from_ymd_opt(y, m, d);
                    }
                }
            }
        }
        let w = ws[i];
        if w.contains('/') {
            let parts: Vec<&str> = w.split('/').collect();
            if parts.len() == 3 {
                let (m, d, y) = (parts[0].parse().ok()?, parts[1].parse().ok()?, parts[2].parse::<i32>().ok()?);
                let y = if y < 100 { if y > 30 { 1900 + y } else { 2000 + y } } else { y };
                return NaiveDate::from_ymd_opt(y, m, d);
            }
        }
        // ISO or dashed numerals were split into three numeric tokens
        let num = |j: usize| ws.get(j).filter(|x| x.chars().all(|c| c.is_ascii_digit())).and_then(|x| x.parse::<u32>().ok().map(|v| (v, x.len())));
        if let (Some((a, la)), Some((b, _)), Some((c, lc))) = (num(i), num(i + 1), num(i + 2)) {
            if la == 4 {
                return NaiveDate::from_ymd_opt(a as i32, b, c);
            }
            if lc == 4 && a <= 12 {
                return NaiveDate::from_ymd_opt(c as i32, a, b);
            }
        }
    }
    None
}

// ---------------------------------------------------------------- names

/// Words that follow "I'm"/"this is"/"it's" but are not names.
const NOT_NAMES: &[&str] = &[
    "a", "an", "the", "new", "not", "sorry", "just", "calling", "looking", "trying", "wondering", "interested",
    "here", "there", "good", "fine", "great", "okay", "ok", "yes", "yeah", "no", "sure", "so", "very", "really",
    "still", "also", "actually", "having", "going", "hoping", "glad", "happy", "available", "free", "busy",
    "patient", "dentist", "doctor", "appointment", "cleaning", "about", "for", "from", "with", "in", "on", "at",
    "to", "of", "and", "or", "but", "my", "your", "i", "you", "me", "we", "they", "he", "she", "it", "this", "that",
    "what", "when", "where", "why", "how", "please", "thanks", "thank", "hello", "hi", "hey", "bye", "booking",
    "sick", "hurting", "pain", "worried", "late", "early", "back", "home", "out", "ready", "done", "all", "set",
    "correct", "right", "wrong", "in", "urgent", "important", "possible", "regarding", "concerning", "is", "was",
    "be", "been", "am", "pm", "today", "tomorrow", "fine", "true", "ok", "okay", "gonna", "wanting", "need",
    "needing", "currently", "already", "an", "one", "two", "calling", "phoning", "ringing", "able", "unable",
    "afraid", "sure", "fine", "alright", "perfect", "exactly", "something", "nothing", "kind", "like", "wanted",
    "want", "would", "could", "can", "will", "may", "might", "must", "should", "emergency", "bad", "terrible",
    "awful", "in", "scheduled", "booked", "due", "overdue", "moving", "hoping", "checking", "following", "just",
    "the", "our", "his", "her", "their", "its", "us", "them", "who", "which", "whom", "bleeding", "swollen",
    "ringing", "seeing", "asking", "mr", "mrs", "ms", "miss", "dr", "don't", "dont", "im", "i'm", "it's", "its",
    "existing", "current", "regular", "returning", "first", "time", "customer", "member", "mom", "dad", "mother",
    "father", "wife", "husband", "son", "daughter", "parent", "cancel", "reschedule", "book", "schedule",
    "after", "before", "around", "then", "now", "later", "soon", "again", "sometime", "tuesday", "monday",
    "wednesday", "thursday", "friday", "saturday", "sunday", "morning", "afternoon", "evening", "fine",
    "that's", "there's", "what's", "how's", "who's", "um", "uh", "hmm", "er", "ah", "oh", "well", "if", "maybe",
    "whatever", "earliest", "latest", "anything", "any", "anytime", "works", "best", "better", "sounds", "fine",
    "week", "day", "days", "next", "last", "this", "noon", "please", "thank", "you", "yep", "nope", "none",
    "either", "neither", "both", "same", "other", "another", "different", "instead", "only", "really", "much",
    "more", "less", "do", "does", "did", "have", "has", "had", "get", "got", "go", "come", "see", "let", "make",
    "take", "talk", "speak", "call", "say", "said", "tell", "know", "think", "sorry", "hello", "question",
    "insurance", "message", "bill", "billing", "number", "phone", "name", "again", "repeat", "what", "huh",
    "spelled", "spelt", "spell", "spelling", "surname", "letter", "letters",
];

fn is_name_word(w: &str) -> bool {
    let lw = w.to_lowercase();
    lw.len() >= 2
        && lw.chars().all(|c| c.is_alphabetic() || c == '\'' || c == '-')
        && lw.chars().next().is_some_and(|c| c.is_alphabetic())
        && !NOT_NAMES.contains(&lw.as_str())
        && month_word(&lw).is_none()
        && unit_word(&lw).is_none()
        && tens_word(&lw).is_none()
}

fn cap(w: &str) -> String {
    if w.chars().any(|c| c.is_uppercase()) {
        return w.to_string();
    }
    let mut out = String::new();
    let mut up = true;
    for c in w.chars() {
        if up {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        up = c == '-';
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName {
    pub first: String,
    pub last: Option<String>,
}

/// Tokens of the original text, keeping case, with boundaries (for names).
fn raw_tokens(text: &str) -> Vec<Tok> {
    let text = text.replace('’', "'");
    let chars: Vec<char> = text.chars().collect();
    let mut toks: Vec<Tok> = Vec::new();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let prev = if i > 0 { chars[i - 1] } else { ' ' };
        let next = chars.get(i + 1).copied().unwrap_or(' ');
        if c.is_alphanumeric() || ((c == '\'' || c == '-') && prev.is_alphabetic() && next.is_alphabetic()) {
            cur.push(c);
        } else {
            if !cur.is_empty() {
                toks.push(Tok { w: std::mem::take(&mut cur), boundary: false });
            }
            if !c.is_whitespace() {
                if let Some(t) = toks.last_mut() {
                    t.boundary = true;
                }
            }
        }
    }
    if !cur.is_empty() {
        toks.push(Tok { w: cur, boundary: false });
    }
    toks
}

const NAME_TRIGGERS: &[&[&str]] = &[
    // Calling for someone else: the patient's name is the one that matters here.
    &["my", "husband"],
    &["my", "wife"],
    &["my", "son"],
    &["my", "daughter"],
    &["my", "mother"],
    &["my", "father"],
    &["my", "mom"],
    &["my", "dad"],
    &["my", "partner"],
    &["my", "name", "is"],
    &["my", "name's"],
    &["name", "is"],
    &["name's"],
    &["this", "is"],
    &["i'm"],
    &["im"],
    &["i", "am"],
    &["it's"],
    &["it", "is"],
    &["call", "me"],
    &["under"],
];

fn take_name(toks: &[Tok], start: usize) -> Option<PersonName> {
    let mut parts: Vec<String> = Vec::new();
    for t in toks.iter().skip(start).take(3) {
        // "this is Robert Chen's wife": a possessive means the name is someone else's.
        if !is_name_word(&t.w) || t.w.to_lowercase().ends_with("'s") {
            if t.w.to_lowercase().ends_with("'s") {
                return None;
            }
            break;
        }
        parts.push(cap(&t.w));
        if t.boundary {
            break;
        }
    }
    match parts.len() {
        0 => None,
        1 => Some(PersonName { first: parts.remove(0), last: None }),
        _ => {
            let first = parts.remove(0);
            Some(PersonName { first, last: Some(parts.join(" ")) })
        }
    }
}

/// "my name is X Y", "this is X Y", "I'm X Y", "it's X Y" (last trigger in the turn wins, because
/// callers correct themselves). With `expect_name` a bare "Maria Lopez." is accepted too.
pub fn extract_name(text: &str, expect_name: bool) -> Option<PersonName> {
    let toks = raw_tokens(text);
    let lower: Vec<String> = toks.iter().map(|t| t.w.to_lowercase()).collect();
    let mut found = None;
    let mut i = 0;
    while i < lower.len() {
        let mut matched = 0;
        for trig in NAME_TRIGGERS {
            if trig.len() > matched && lower.len() >= i + trig.len() && trig.iter().enumerate().all(|(k, w)| lower[i + k] == *w) {
                // a boundary inside the trigger ("this. is") breaks it
                if !toks[i..i + trig.len() - 1].iter().any(|t| t.boundary) {
                    matched = trig.len();
                }
            }
        }
        if matched > 0 {
            // "under" only counts in "under the name X"
            let start = if lower[i] == "under" {
                if lower.get(i + 1).map(String::as_str) == Some("the") && lower.get(i + 2).map(String::as_str) == Some("name") {
                    i + 3
                } else {
                    i += 1;
                    continue;
                }
            } else {
                i + matched
            };
            if !toks[i + matched - 1].boundary || lower[i] == "under" {
                if let Some(n) = take_name(&toks, start) {
                    found = Some(n);
                }
            }
            i += matched;
            continue;
        }
        i += 1;
    }
    if found.is_none() {
        found = name_here(&toks, &lower);
    }
    if found.is_some() || !expect_name {
        return found;
    }
    // Bare answer to "may I have your name?": at most three name words plus fillers.
    const FILLERS: &[&str] = &["sure", "yes", "yeah", "ok", "okay", "um", "uh", "hi", "hello", "so", "it", "oh", "well", "name", "my", "the", "is", "its", "it's"];
    let rest: Vec<&Tok> = toks.iter().filter(|t| !FILLERS.contains(&t.w.to_lowercase().as_str())).collect();
    if (1..=3).contains(&rest.len()) && rest.iter().all(|t| is_name_word(&t.w)) {
        let mut parts: Vec<String> = rest.iter().map(|t| cap(&t.w)).collect();
        let first = parts.remove(0);
        let last = if parts.is_empty() { None } else { Some(parts.join(" ")) };
        return Some(PersonName { first, last });
    }
    None
}

/// Which part of a name a caller's correction is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamePartKind {
    First,
    Last,
    /// Not said: the part the word sounds closest to (see `name_distance`).
    Either,
}

/// One part of a name given on its own, as callers correct a read-back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamePart {
    pub kind: NamePartKind,
    pub value: String,
}

/// "my last name is Fischer", "first name Ana", "it's spelled F I S C H E R", "P-A-R-K", "Park,
/// with a K". Spelled letters win over a spoken word: they are how the caller wants it written.
/// A lone name word with no cue is not taken here (the policy decides what it corrects).
pub fn extract_name_part(text: &str) -> Option<NamePart> {
    let toks = raw_tokens(text);
    // "last name's Fischer", "surname's Fischer": the cue without its "'s".
    let lower: Vec<String> = toks.iter().map(|t| t.w.to_lowercase().trim_end_matches("'s").to_string()).collect();
    let pair_at = |a: &str, b: &str| (0..lower.len().saturating_sub(1)).find(|&i| lower[i] == a && lower[i + 1] == b).map(|i| i + 2);
    let (kind, cue_end) = if let Some(e) = pair_at("last", "name").or_else(|| pair_at("family", "name")) {
        (NamePartKind::Last, Some(e))
    } else if let Some(i) = lower.iter().position(|w| w == "surname") {
        (NamePartKind::Last, Some(i + 1))
    } else if let Some(e) = pair_at("first", "name") {
        (NamePartKind::First, Some(e))
    } else {
        (NamePartKind::Either, None)
    };
    if let Some(value) = spelled(&toks) {
        return Some(NamePart { kind, value });
    }
    if let Some(e) = cue_end {
        // "last name is Fischer", "last name's Fischer", "surname: Fischer".
        const LINKS: &[&str] = &["is", "was", "it", "its", "name", "would", "be", "should"];
        let word = lower[e..].iter().position(|w| !LINKS.contains(&w.as_str())).map(|k| e + k);
        if let Some(w) = word.filter(|&w| is_name_word(&toks[w].w)) {
            return Some(NamePart { kind, value: cap(&toks[w].w) });
        }
    }
    // "Park, with a K", "Ann with two Ns": the word before says how it is written (a letter must
    // follow, or "a consultation with a hygienist" would be a name).
    let letter = |w: &str| w.len() == 1 || (w.len() <= 3 && w.starts_with(|c: char| c.is_ascii_alphabetic()) && matches!(&w[1..], "s" | "'"));
    let with = (1..lower.len().saturating_sub(2)).find(|&i| {
        lower[i] == "with" && matches!(lower[i + 1].as_str(), "a" | "an" | "two" | "double") && letter(&lower[i + 2]) && is_name_word(&toks[i - 1].w)
    });
    with.map(|i| NamePart { kind, value: cap(&toks[i - 1].w) })
}

/// A name spelled out: three or more single letters in a row ("F I S C H E R", "P, A, R, K"), or
/// one hyphenated token of single letters ("F-I-S-C-H-E-R"), as the recogniser writes spelling.
fn spelled(toks: &[Tok]) -> Option<String> {
    let letter = |w: &str| w.len() == 1 && w.chars().all(|c| c.is_ascii_alphabetic());
    let word = |letters: Vec<&str>| {
        let mut s: String = letters.concat().to_lowercase();
        if let Some(f) = s.get(..1).map(str::to_uppercase) {
            s.replace_range(..1, &f);
        }
        s
    };
    for t in toks {
        let parts: Vec<&str> = t.w.split('-').collect();
        if parts.len() >= 2 && parts.iter().all(|p| letter(p)) {
            return Some(word(parts));
        }
    }
    let mut run: Vec<&str> = Vec::new();
    for t in toks {
        if letter(&t.w) {
            run.push(&t.w);
        } else if run.len() >= 3 {
            break;
        } else {
            run.clear();
        }
    }
    // "I, I, I" is a stutter, not a name.
    let distinct = run.iter().map(|l| l.to_ascii_lowercase()).collect::<std::collections::BTreeSet<_>>().len();
    (run.len() >= 3 && distinct >= 2).then(|| word(run))
}

/// How far apart two spellings of a name are, after the phonetic folding of `names_sound_alike`
/// (edits): which part of a name a lone corrected word is about.
pub fn name_distance(a: &str, b: &str) -> usize {
    edit_distance(&fold_name(a), &fold_name(b))
}

/// "Robert Chen here." / "Hi, Maria Lopez speaking": a capitalised name at the start of a
/// sentence followed by "here" or "speaking" (capitals, because the recogniser writes names so
/// and "somebody here" is not a name).
fn name_here(toks: &[Tok], lower: &[String]) -> Option<PersonName> {
    const OPENERS: &[&str] = &["hi", "hello", "hey", "yes", "yeah", "oh", "um", "uh"];
    let capital = |t: &Tok| t.w.chars().next().is_some_and(char::is_uppercase) && is_name_word(&t.w);
    // "... at half past two. Grace Liu.": a closing sentence that is nothing but a capitalised
    // two- or three-word name, after a sentence that said something else.
    const NOT_IN_A_CLOSING_NAME: &[&str] = &[
        "dental", "delta", "cigna", "aetna", "metlife", "medicaid", "medicare", "blue", "cross", "shield", "united", "humana", "guardian",
        "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "next", "morning", "afternoon", "evening",
    ];
    let sentence_start = toks.len().checked_sub(1).and_then(|last| toks[..last].iter().rposition(|t| t.boundary)).map(|b| b + 1);
    if let Some(st) = sentence_start {
        let tail = &toks[st..];
        if (2..=3).contains(&tail.len()) && tail.iter().all(|t| capital(t) && !NOT_IN_A_CLOSING_NAME.contains(&t.w.to_lowercase().as_str())) {
            let mut parts: Vec<String> = tail.iter().map(|t| cap(&t.w)).collect();
            let first = parts.remove(0);
            return Some(PersonName { first, last: Some(parts.join(" ")) });
        }
    }
    for i in 0..toks.len() {
        let starts = i == 0 || toks[i - 1].boundary || OPENERS.contains(&lower[i - 1].as_str());
        if !starts {
            continue;
        }
        for n in [2usize, 3] {
            let Some(words) = toks.get(i..i + n) else { break };
            if words.iter().all(capital) && matches!(lower.get(i + n).map(String::as_str), Some("here") | Some("speaking")) && !words[..n - 1].iter().any(|t| t.boundary) {
                let mut parts: Vec<String> = words.iter().map(|t| cap(&t.w)).collect();
                let first = parts.remove(0);
                return Some(PersonName { first, last: Some(parts.join(" ")) });
            }
        }
    }
    None
}

/// Whether two spellings of a name could be the same name heard over the phone: equal after a
/// rough phonetic folding (ch/k/c, ph/f, z/s, y/i, silent h, doubled letters), or one edit apart
/// once both are at least five letters long. Only used where another fact (the caller id) already
/// narrows the candidates to a household.
pub fn names_sound_alike(a: &str, b: &str) -> bool {
    let (fa, fb) = (fold_name(a), fold_name(b));
    if fa.is_empty() || fb.is_empty() {
        return false;
    }
    fa == fb || (fa.len().min(fb.len()) >= 5 && edit_distance(&fa, &fb) <= 1)
}

pub(crate) fn fold_name(s: &str) -> String {
    let lower: String = s.to_lowercase().chars().filter(|c| c.is_ascii_alphabetic()).collect();
    let mut t = lower.replace("ph", "f").replace("ch", "k").replace("ck", "k").replace(['c', 'q'], "k").replace('z', "s").replace('y', "i");
    // An "h" after the first letter is mostly silent in how ASR spells names (Thomas/Tomas,
    // John/Jon).
    let mut out = String::new();
    let mut prev: Option<char> = None;
    for ch in std::mem::take(&mut t).chars() {
        if (ch == 'h' && prev.is_some()) || prev == Some(ch) {
            continue;
        }
        out.push(ch);
        prev = Some(ch);
    }
    out
}

pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

// ---------------------------------------------------------------- yes / no

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YesNo {
    Yes,
    No,
}

pub fn extract_yes_no(toks: &[Tok]) -> Option<YesNo> {
    // A "no" outweighs a "yes" in the same breath: nothing is committed on a contradiction.
    // "Wait." alone is neither: the caller needs a moment and the question stands. With a yes
    // ("okay, wait") it is a contradiction like any other, so nothing is committed.
    match yes_no_markers(toks) {
        (true, _) => Some(YesNo::No),
        (false, true) if holds(toks) => Some(YesNo::No),
        (false, true) => Some(YesNo::Yes),
        (false, false) => None,
    }
}

/// "Wait", "hold on": the caller asks for a moment.
fn holds(toks: &[Tok]) -> bool {
    let ws = words(toks);
    ws.contains(&"wait") || has_seq(&ws, &["hold", "on"])
}

/// Both a yes and a no in one answer ("Yes, not correct" for a misheard "yes, that's correct";
/// "No, that's fine").
pub fn is_mixed_yes_no(toks: &[Tok]) -> bool {
    let (no, yes) = yes_no_markers(toks);
    yes && (no || holds(toks))
}

/// (said no, said yes).
fn yes_no_markers(toks: &[Tok]) -> (bool, bool) {
    let ws = words(toks);
    let has = |w: &str| ws.contains(&w);
    let pair = |a: &str, b: &str| ws.windows(2).any(|p| p[0] == a && p[1] == b);
    let no = has("no") && !pair("no", "problem") && !pair("no", "worries")
        || has("nope")
        || has("nah")
        || has("incorrect")
        || has("wrong")
        || has("none")
        || has("neither")
        || pair("not", "right")
        || pair("not", "correct")
        || pair("that's", "not")
        || pair("don't", "book")
        || pair("don't", "cancel")
        || pair("doesn't", "work")
        || pair("not", "really");
    const YES: &[&str] = &[
        "yes", "yeah", "yep", "yup", "ya", "yea", "sure", "correct", "perfect", "great", "absolutely", "definitely",
        "okay", "ok", "alright", "exactly", "fine", "certainly", "affirmative",
    ];
    let yes = ws.iter().any(|w| YES.contains(w))
        || pair("that's", "right")
        || pair("all", "right")
        || pair("sounds", "good")
        || pair("that", "works")
        || pair("go", "ahead")
        || pair("do", "it")
        || pair("book", "it")
        || pair("cancel", "it")
        || pair("that's", "it")
        || pair("works", "for")
        || pair("please", "do")
        || ws == ["right"];
    (no, yes)
}

// ---------------------------------------------------------------- intents & topics

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    Book,
    Reschedule,
    Cancel,
    Question,
    Message,
    Human,
    Emergency,
    Goodbye,
    /// "When is my appointment?" / "confirm my appointment": tell a verified patient their bookings.
    Lookup,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Question {
    Insurance(Option<String>),
    Hours,
    Address,
    Services(Option<String>),
    Price(Option<String>),
    /// "How long does a cleaning take?"
    Duration,
    Phone,
    /// "Am I talking to a robot?" — always answered truthfully.
    WhoAreYou,
    Other,
}

fn has_any(ws: &[&str], set: &[&str]) -> bool {
    ws.iter().any(|w| set.contains(w))
}

fn has_seq(ws: &[&str], seq: &[&str]) -> bool {
    ws.windows(seq.len()).any(|p| p == seq)
}

pub fn is_emergency(toks: &[Tok]) -> bool {
    let ws = words(toks);
    let hard = has_any(&ws, &["emergency", "swollen", "swelling", "bleeding", "abscess", "infection", "infected", "trauma", "accident", "unbearable", "excruciating"])
        || has_seq(&ws, &["knocked", "out"])
        || has_seq(&ws, &["broke", "my"])
        || has_seq(&ws, &["broken", "tooth"])
        || has_seq(&ws, &["cracked", "tooth"]);
    let pain = has_any(&ws, &["pain", "toothache", "hurts", "hurting", "ache", "aching"]);
    let severe = has_any(&ws, &["bad", "severe", "terrible", "awful", "killing", "really", "so", "barely", "can't", "cannot", "worst", "sharp", "throbbing"]);
    // Pain that has lasted, or that the caller wants seen now, is triaged like severe pain.
    let lasting = has_any(&ws, &["days", "weeks", "since", "night", "keeps"]) || has_seq(&ws, &["see", "me"]) || has_seq(&ws, &["right", "away"]);
    hard || (pain && (severe || lasting))
}

pub fn is_goodbye(toks: &[Tok]) -> bool {
    let ws = words(toks);
    has_any(&ws, &["bye", "goodbye"])
        || has_seq(&ws, &["that's", "all"])
        || has_seq(&ws, &["that's", "it"])
        || has_seq(&ws, &["nothing", "else"])
        || has_seq(&ws, &["that", "is", "all"])
        || has_seq(&ws, &["have", "a", "good"])
        || has_seq(&ws, &["have", "a", "nice"])
}

pub fn is_thanks(toks: &[Tok]) -> bool {
    let ws = words(toks);
    has_any(&ws, &["thanks", "thank", "cheers"])
}

/// The main intent of a turn, if any (emergency outranks everything).
pub fn extract_intent(toks: &[Tok]) -> Option<Intent> {
    let ws = words(toks);
    if is_emergency(toks) {
        return Some(Intent::Emergency);
    }
    if has_any(&ws, &["cancel", "cancelling", "canceling", "cancellation"]) && !has_seq(&ws, &["don't", "cancel"]) {
        return Some(Intent::Cancel);
    }
    // "I can't make my Thursday appointment": a front desk offers another time.
    let cannot_make = (has_seq(&ws, &["can't", "make"]) || has_seq(&ws, &["cant", "make"]) || has_seq(&ws, &["cannot", "make"]) || has_seq(&ws, &["won't", "make"]))
        && has_any(&ws, &["it", "appointment", "my"]);
    if has_any(&ws, &["reschedule", "rescheduling", "postpone"])
        || (has_any(&ws, &["move", "change", "push", "switch"]) && has_any(&ws, &["it", "appointment", "my"]))
        || cannot_make
    {
        return Some(Intent::Reschedule);
    }
    let my_appt = has_seq(&ws, &["my", "appointment"]) || has_seq(&ws, &["my", "next", "appointment"]) || has_seq(&ws, &["my", "appointments"]);
    if my_appt && (has_any(&ws, &["when", "confirm", "confirming", "remind", "forgot", "what"]) || has_seq(&ws, &["do", "i", "have"])) {
        return Some(Intent::Lookup);
    }
    // "Could you have Dr. Patel call me about …" / "ask someone to call me".
    let have_call_me = has_seq(&ws, &["call", "me"]) && has_any(&ws, &["have", "ask", "tell", "get"]);
    if has_seq(&ws, &["leave", "a", "message"]) || has_seq(&ws, &["take", "a", "message"]) || has_seq(&ws, &["call", "me", "back"]) || have_call_me {
        return Some(Intent::Message);
    }
    // "Operator." / "Representative, please." on its own is the same request.
    let asks_for_staff_alone = ws.len() <= 3 && has_any(&ws, &["human", "receptionist", "representative", "operator", "agent"]);
    if has_any(&ws, &["human", "person", "someone", "somebody", "receptionist", "representative", "operator", "staff", "agent"])
        && has_any(&ws, &["talk", "speak", "speaking", "transfer", "connect", "need", "want", "get", "real", "put"])
        || has_seq(&ws, &["front", "desk"])
        || asks_for_staff_alone
    {
        return Some(Intent::Human);
    }
    let booking_verbs = has_any(&ws, &["book", "booking", "schedule", "appointment", "appt", "come", "get", "set", "make", "see", "available", "availability", "openings", "opening"]);
    if appointment_type_hint(toks).is_some() && (booking_verbs || has_any(&ws, &["need", "want", "like"])) && question_of(toks).is_none_or(|q| !matches!(q, Question::Price(_) | Question::Services(_)))
    {
        return Some(Intent::Book);
    }
    if has_any(&ws, &["book", "schedule"]) || has_seq(&ws, &["an", "appointment"]) || has_seq(&ws, &["come", "in"]) {
        return Some(Intent::Book);
    }
    if question_of(toks).is_some() {
        return Some(Intent::Question);
    }
    if is_goodbye(toks) {
        return Some(Intent::Goodbye);
    }
    None
}

/// The caller mentions what only the practice's staff deal with: accounts, records,
/// prescriptions ("I'm calling about a charge from my last visit"). Opening a call with it is a
/// request for a person, whatever the recogniser made of "talk to someone" ("talk somewhere
/// about my bill"); in the middle of a message it is only the message's topic.
pub fn mentions_staff_matter(toks: &[Tok]) -> bool {
    has_any(
        &words(toks),
        &[
            "bill", "bills", "billing", "billed", "invoice", "charge", "charged", "charges", "statement", "balance", "refund",
            "payment", "prescription", "prescriptions", "records", "results",
        ],
    )
}

/// Appointment-type hint mapped to the practice's type names used in fixtures; the policy maps
/// it onto the configured types (see `AppointmentKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppointmentKind {
    Cleaning,
    NewPatient,
    Consultation,
    Emergency,
}

pub fn appointment_type_hint(toks: &[Tok]) -> Option<AppointmentKind> {
    let ws = words(toks);
    let teeth_cleaned = has_any(&ws, &["teeth", "tooth"]) && has_any(&ws, &["cleaned", "clean"]);
    if (teeth_cleaned || has_any(&ws, &["cleaning", "cleanings", "checkup", "check", "hygiene", "hygienist", "exam", "polish"])) && !has_seq(&ws, &["new", "patient", "exam"]) {
        return Some(AppointmentKind::Cleaning);
    }
    if has_any(&ws, &["consultation", "consult", "consultations"]) {
        return Some(AppointmentKind::Consultation);
    }
    if has_seq(&ws, &["new", "patient", "exam"]) || has_seq(&ws, &["first", "visit"]) {
        return Some(AppointmentKind::NewPatient);
    }
    if has_seq(&ws, &["emergency", "visit"]) || has_seq(&ws, &["emergency", "appointment"]) {
        return Some(AppointmentKind::Emergency);
    }
    None
}

pub fn says_new_patient(toks: &[Tok]) -> bool {
    let ws = words(toks);
    has_seq(&ws, &["new", "patient"]) || has_seq(&ws, &["never", "been"]) || has_seq(&ws, &["first", "time"])
}

pub fn says_existing_patient(toks: &[Tok]) -> bool {
    let ws = words(toks);
    has_seq(&ws, &["existing", "patient"]) || has_seq(&ws, &["current", "patient"]) || has_seq(&ws, &["been", "there", "before"]) || has_seq(&ws, &["returning", "patient"])
}

/// "about my bill" -> "bill"; "regarding X" -> "X".
pub fn extract_topic(toks: &[Tok]) -> Option<String> {
    let ws = words(toks);
    for (i, w) in ws.iter().enumerate() {
        if matches!(*w, "about" | "regarding" | "concerning") {
            let mut out = Vec::new();
            for (j, t) in toks.iter().enumerate().skip(i + 1) {
                let x = t.w.as_str();
                if out.is_empty() && matches!(x, "my" | "the" | "a" | "an" | "our" | "some") {
                    continue;
                }
                if matches!(x, "and" | "please" | "because" | "but") || out.len() >= 6 {
                    break;
                }
                out.push(x.to_string());
                if toks[j].boundary {
                    break;
                }
            }
            if !out.is_empty() {
                return Some(out.join(" "));
            }
        }
    }
    let ws_set = &ws;
    for kw in ["bill", "billing", "invoice", "payment", "statement", "refund", "insurance", "prescription", "records", "results"] {
        if ws_set.contains(&kw) {
            return Some(kw.to_string());
        }
    }
    None
}

const INSURANCE_WORDS: &[&str] = &[
    "insurance", "insurances", "insured", "plan", "plans", "coverage", "cover", "medicaid", "medicare", "ppo", "hmo",
];

/// Known insurer names beyond the practice's list, so "Medicaid" is recognised as a plan.
const INSURER_NAMES: &[&str] = &[
    "medicaid", "medicare", "humana", "guardian", "cigna", "aetna", "metlife", "delta", "united", "blue", "anthem",
    "kaiser", "tricare", "ameritas", "principal", "careington", "uhc", "geha",
];

/// What kind of question, if the turn asks one the facts could answer.
pub fn question_of(toks: &[Tok]) -> Option<Question> {
    let ws = words(toks);
    let machine = has_any(&ws, &["robot", "bot", "ai", "automated", "machine", "computer", "recording"]) || has_seq(&ws, &["real", "person"]) || has_seq(&ws, &["a", "human"]);
    let asking = has_seq(&ws, &["am", "i"]) || has_seq(&ws, &["are", "you"]) || has_seq(&ws, &["is", "this"]) || has_seq(&ws, &["who", "is", "this"]);
    let this_practice = has_seq(&ws, &["is", "this"]) && has_any(&ws, &["dental", "dentist", "dentists", "office", "practice", "clinic"]);
    if (machine && asking) || this_practice || has_seq(&ws, &["who", "am", "i", "talking"]) || has_seq(&ws, &["who", "is", "this"]) {
        return Some(Question::WhoAreYou);
    }
    let take_question = has_any(&ws, &["take", "accept"]) && has_seq(&ws, &["do", "you"]) && !has_any(&ws, &["me", "appointment", "appointments", "walk", "walkins", "cards", "card", "cash", "checks"]);
    if has_any(&ws, INSURANCE_WORDS) || has_any(&ws, INSURER_NAMES) || take_question {
        return Some(Question::Insurance(plan_name(toks)));
    }
    if has_any(&ws, &["hours", "open", "close", "closed", "closing", "opening"]) && !has_any(&ws, &["appointment", "slot", "slots", "openings"]) {
        return Some(Question::Hours);
    }
    if has_any(&ws, &["address", "located", "location", "directions", "where", "parking"]) {
        return Some(Question::Address);
    }
    if has_seq(&ws, &["how", "long"]) && (appointment_type_hint(toks).is_some() || has_any(&ws, &["take", "takes", "last", "visit", "appointment"])) {
        return Some(Question::Duration);
    }
    if has_seq(&ws, &["how", "much"]) || has_any(&ws, &["cost", "costs", "price", "prices", "pricing", "fee", "fees"]) {
        return Some(Question::Price(None));
    }
    if has_seq(&ws, &["phone", "number"]) && has_any(&ws, &["your", "office", "practice"]) {
        return Some(Question::Phone);
    }
    if has_any(&ws, &["services", "service", "offer", "provide"]) || (has_seq(&ws, &["do", "you", "do"]) || has_seq(&ws, &["do", "you", "guys", "do"])) {
        return Some(Question::Services(service_phrase(toks)));
    }
    None
}

/// The words after "take/accept/about/have" in an insurance question, e.g. "Medicaid", "Blue Cross".
fn plan_name(toks: &[Tok]) -> Option<String> {
    let ws = words(toks);
    for (i, w) in ws.iter().enumerate() {
        if matches!(*w, "take" | "accept" | "about" | "with" | "have" | "is" | "cover" | "in") {
            let mut out: Vec<&str> = Vec::new();
            for t in &toks[i + 1..] {
                let x = t.w.as_str();
                if matches!(x, "insurance" | "plan" | "please" | "dental" | "and" | "or" | "too" | "also" | "as" | "well") && !out.is_empty() {
                    if x == "dental" {
                        out.push(x);
                    }
                    break;
                }
                if matches!(x, "the" | "a" | "my" | "your" | "you" | "guys") {
                    if out.is_empty() {
                        continue;
                    }
                    break;
                }
                if matches!(x, "insurance" | "it" | "that" | "them" | "this" | "any") {
                    break;
                }
                out.push(x);
                if t.boundary || out.len() >= 3 {
                    break;
                }
            }
            if !out.is_empty() {
                return Some(out.join(" "));
            }
        }
    }
    ws.iter().find(|w| INSURER_NAMES.contains(w)).map(|w| w.to_string())
}

fn service_phrase(toks: &[Tok]) -> Option<String> {
    let ws = words(toks);
    for (i, w) in ws.iter().enumerate() {
        if matches!(*w, "do" | "offer" | "provide" | "does") && i + 1 < ws.len() {
            let mut out: Vec<&str> = Vec::new();
            for t in &toks[i + 1..] {
                let x = t.w.as_str();
                if matches!(x, "you" | "guys" | "the" | "a" | "an" | "any" | "do" | "dr" | "doctor") && out.is_empty() {
                    continue;
                }
                if matches!(x, "there" | "here" | "please" | "too" | "also" | "at" | "for") {
                    break;
                }
                out.push(x);
                if t.boundary || out.len() >= 3 {
                    break;
                }
            }
            if !out.is_empty() {
                return Some(out.join(" "));
            }
        }
    }
    None
}

/// "the first one", "second", "the last", "earliest", "either": index into a list of `n`.
pub fn extract_choice(toks: &[Tok], n: usize) -> Option<usize> {
    if n == 0 {
        return None;
    }
    let ws = words(toks);
    // "the earlier one" is a pick; "anything earlier?" asks for other times (`asks_other_time`).
    let picked_by = |w: &str| ws.windows(2).any(|p| p[0] == w && matches!(p[1], "one" | "time" | "slot"));
    if has_any(&ws, &["first", "1st", "earliest", "soonest", "either", "any", "whichever"]) || picked_by("earlier") || picked_by("sooner") {
        return Some(0);
    }
    if has_any(&ws, &["second", "2nd", "middle"]) && n >= 2 {
        return Some(1);
    }
    if has_any(&ws, &["third", "3rd"]) && n >= 3 {
        return Some(2);
    }
    if has_any(&ws, &["last", "latest"]) || picked_by("later") {
        return Some(n - 1);
    }
    None
}

/// A time begun but not made out: the turn names a day and reads no time, yet a time cue ("at",
/// "around") is followed by something other than a place or an article. That is how tiny.en
/// writes espeak's "Tuesday March tenth at nine" over a call: "Tuesday March 10th at I.n.".
/// "Tuesday at the latest" and "Friday, I'm at work" are no times begun.
pub fn time_left_unread(toks: &[Tok]) -> bool {
    if extract_dates(toks).is_empty() || !extract_times(toks, false).0.is_empty() {
        return false;
    }
    let ws = words(toks);
    let cue = |w: &str| matches!(w, "at" | "around");
    let not_a_time = |w: &str| {
        matches!(w, "the" | "a" | "an" | "my" | "your" | "our" | "his" | "her" | "their" | "this" | "that" | "least" | "all" | "home" | "work" | "school" | "any")
    };
    ws.windows(2).any(|p| cue(p[0]) && !not_a_time(p[1])) || ws.last().is_some_and(|w| cue(w))
}

/// Which way from the offered times the caller wants to look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Earlier,
    Later,
}

/// "Do you have anything earlier?", "something later in the day?", "nothing sooner?": other
/// times than the ones offered, before or after them ("the earlier one" is a pick instead).
pub fn asks_other_time(toks: &[Tok]) -> Option<Direction> {
    let ws = words(toks);
    if extract_choice(toks, 2).is_some() {
        return None;
    }
    if has_any(&ws, &["earlier", "sooner"]) {
        Some(Direction::Earlier)
    } else if ws.contains(&"later") && !has_seq(&ws, &["talk", "to", "you", "later"]) && !has_seq(&ws, &["call", "back", "later"]) {
        Some(Direction::Later)
    } else {
        None
    }
}

/// Did the caller ask to repeat?
pub fn wants_repeat(toks: &[Tok]) -> bool {
    let ws = words(toks);
    has_any(&ws, &["repeat", "pardon"])
        || has_seq(&ws, &["say", "that", "again"])
        || has_seq(&ws, &["didn't", "catch"])
        || has_seq(&ws, &["what", "was", "that"])
        // "What time was that?", "When was that again?", "Which day was that?"
        || (has_seq(&ws, &["was", "that"]) && has_any(&ws, &["what", "when", "which"]))
}

pub fn mentions_message(toks: &[Tok]) -> bool {
    has_any(&words(toks), &["message", "voicemail", "note"])
}

pub fn mentions_transfer(toks: &[Tok]) -> bool {
    let ws = words(toks);
    has_any(&ws, &["transfer", "person", "someone", "somebody", "human", "connect", "speak", "talk"])
}

#[cfg(test)]
mod tests;
