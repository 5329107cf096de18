//! TTS-friendly templates: "2 PM" not "14:00", "Thursday, March 5th", digits read one by one.

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

pub fn time(t: NaiveTime) -> String {
    let (h, m) = (t.hour(), t.minute());
    if h == 12 && m == 0 {
        return "noon".into();
    }
    let (h12, suffix) = match h {
        0 => (12, "AM"),
        1..=11 => (h, "AM"),
        12 => (12, "PM"),
        _ => (h - 12, "PM"),
    };
    if m == 0 {
        format!("{h12} {suffix}")
    } else {
        format!("{h12}:{m:02} {suffix}")
    }
}

fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

const MONTHS: [&str; 12] = [
    "January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December",
];

pub fn weekday_name(d: NaiveDate) -> &'static str {
    match d.weekday() {
        chrono::Weekday::Mon => "Monday",
        chrono::Weekday::Tue => "Tuesday",
        chrono::Weekday::Wed => "Wednesday",
        chrono::Weekday::Thu => "Thursday",
        chrono::Weekday::Fri => "Friday",
        chrono::Weekday::Sat => "Saturday",
        chrono::Weekday::Sun => "Sunday",
    }
}

/// "Thursday, March 5th"
pub fn date(d: NaiveDate) -> String {
    format!("{}, {} {}", weekday_name(d), MONTHS[d.month0() as usize], ordinal(d.day()))
}

/// "today, Monday, March 2nd" / "Thursday, March 5th"
pub fn date_rel(d: NaiveDate, today: NaiveDate) -> String {
    if d == today {
        format!("today, {}", date(d))
    } else if Some(d) == today.succ_opt() {
        format!("tomorrow, {}", date(d))
    } else {
        date(d)
    }
}

/// "Thursday, March 5th at 2 PM"
pub fn when(dt: NaiveDateTime, today: NaiveDate) -> String {
    format!("{} at {}", date_rel(dt.date(), today), time(dt.time()))
}

/// "on Thursday, March 5th at 2 PM" / "today, Monday, March 2nd at 10 AM"
pub fn on_when(dt: NaiveDateTime, today: NaiveDate) -> String {
    let d = dt.date();
    if d == today || Some(d) == today.succ_opt() {
        when(dt, today)
    } else {
        format!("on {}", when(dt, today))
    }
}

/// "on Thursday, March 5th" / "tomorrow, Tuesday, March 3rd"
pub fn on_date(d: NaiveDate, today: NaiveDate) -> String {
    if d == today || Some(d) == today.succ_opt() {
        date_rel(d, today)
    } else {
        format!("on {}", date(d))
    }
}

/// "Cleaning & Exam" -> "Cleaning and Exam" (TTS reads "&" inconsistently).
pub fn type_name(t: &str) -> String {
    t.replace(" & ", " and ").replace('&', " and ")
}

pub fn with_article(t: &str) -> String {
    let n = type_name(t);
    let vowel = n.chars().next().is_some_and(|c| "AEIOUaeiou".contains(c));
    format!("{} {n}", if vowel { "an" } else { "a" })
}

/// "+12175550191" -> "2 1 7, 5 5 5, 0 1 9 1" so TTS reads digits, grouped like people say them.
pub fn phone(e164: &str) -> String {
    let digits: String = e164.chars().filter(|c| c.is_ascii_digit()).collect();
    let national = if digits.len() == 11 && digits.starts_with('1') { &digits[1..] } else { &digits[..] };
    let spaced = |s: &str| s.chars().map(|c| c.to_string()).collect::<Vec<_>>().join(" ");
    if national.len() == 10 {
        format!("{}, {}, {}", spaced(&national[..3]), spaced(&national[3..6]), spaced(&national[6..]))
    } else {
        spaced(national)
    }
}

/// "A, B or C"
pub fn list_or(items: &[String]) -> String {
    join(items, "or")
}

pub fn list_and(items: &[String]) -> String {
    join(items, "and")
}

fn join(items: &[String], conj: &str) -> String {
    match items.len() {
        0 => String::new(),
        1 => items[0].clone(),
        n => format!("{} {conj} {}", items[..n - 1].join(", "), items[n - 1]),
    }
}

/// The last words of every call that ends well. Worded per practice, so the appliance
/// pre-synthesizes it at start with the greeting.
pub fn farewell(practice: &str) -> String {
    format!("Thank you for calling {practice}. Goodbye!")
}

/// Sentences the policy says word for word, often first in a reply: the appliance pre-synthesizes
/// them so the first audio of those replies is ready at once. A test keeps this list in step with
/// the policy's wording.
pub const FIXED_SENTENCES: &[&str] = &[
    "Sorry, I didn't catch that.",
    "Let me read that back.",
    "You're all set.",
    "Sure.",
    "No problem.",
    "Okay.",
    "I'm sorry, that time was just taken.",
    "I'm sorry, I'm having trouble understanding.",
    "I'm sorry you're in pain.",
    "I'm sorry, I don't see any openings around then.",
    "I'm sorry, I couldn't find a record that matches.",
    "I'm not sure about that, and I don't want to guess.",
    "I can take a message, and someone will call you back.",
    "I'll take an urgent message for the dentist.",
    "Our office is closed right now.",
    "If this is a life-threatening emergency, please hang up and call 911.",
    "We can see you today for an emergency visit.",
    "Let me transfer you to the front desk. One moment, please.",
    "Is there anything else I can help you with?",
    "May I have your first and last name?",
    "What's the best phone number to reach you?",
    "For your security, what is your date of birth?",
    "What day would you like to come in?",
    "Which works best for you?",
    "How can I help you today?",
    "Are you still there?",
    "I'll let you go now. Please call us back anytime.",
];

#[cfg(test)]
mod fixed_sentences_tests {
    #[test]
    fn every_fixed_sentence_is_still_said_by_the_policy() {
        let policy = include_str!("policy.rs");
        for s in super::FIXED_SENTENCES {
            assert!(policy.contains(s), "{s:?} is no longer said verbatim by the policy: update FIXED_SENTENCES");
        }
    }
}
