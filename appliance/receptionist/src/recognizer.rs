//! Priming text for the speech recogniser (Whisper's initial prompt).
//!
//! Whisper continues the prompt's style and vocabulary as if it were earlier speech. The general
//! prompt carries the practice's own words (name, visit types, insurers); while the receptionist
//! waits for a phone number or a date of birth, the prompt shows one, which is what turns
//! "two one seven ... five five five ... zero one ... nine one" from "217-5501, I'm one" into
//! "217 555 0191". While the caller is saying when to come in (a day, a pick among offers, a
//! correction at the read-back), the prompt shows how times are written, which is what turns
//! "No, sorry, make it two p.m. instead" from "make it to the having stand" into "make it 2 p.m.
//! instead" and "Tuesday March tenth at nine" from "at I" into "at 9" (scripted-caller lines,
//! 16 kHz; "two p.m." also at 8 kHz). Only then: in the general prompt the same sentence made
//! times out of words that were none ("Priya Natarajan" became "3 a.m."). No prompt holds a
//! date: the model once copied "March 5th at 2 PM" from a prompt into a caller who had said
//! 10 AM. The example times (8:30 a.m., 4 p.m.) could be copied the same way; the read-back,
//! which says the time and needs a yes, catches that like any other mishearing.
//!
//! Concrete times reach the recogniser another way, and only while the caller is choosing among
//! offers: [`offer_phrases`] lists what an answer is likely to contain. The call layer uses them
//! only to decode a turn again when the rules could not read the first transcript ("nine o'clock
//! please" heard "I look like please"); the engine favours those words where the audio is
//! ambiguous and starts at most one such phrase per turn.

use chrono::{NaiveTime, Timelike};

use crate::tools::SlotOffer;
use crate::understand::{ORD_UNITS, TENS, UNITS};
use crate::{Expecting, PracticeFacts};

pub fn recognizer_prompt(f: &PracticeFacts, expecting: Expecting) -> String {
    let opening = format!("Thank you for calling {}.", f.name);
    match expecting {
        Expecting::PhoneNumber => {
            format!("{opening} What's the best number to reach you? Sure, my number is 312 555 0147. You can reach me at {}.", grouped(&f.phone))
        }
        Expecting::DateOfBirth => format!("{opening} For your security, what is your date of birth? It's June 14th, 1975. I was born on March 3rd, 1988."),
        Expecting::Anything | Expecting::Name | Expecting::DayOrTime => {
            let types: Vec<&str> = f.appointment_types.iter().map(|t| t.name.as_str()).collect();
            let times = if expecting == Expecting::DayOrTime { " Is 8:30 a.m. okay, or would 4 p.m. be better?" } else { "" };
            format!(
                "{opening} Hi, I'd like to book a cleaning, please. Can I reschedule or cancel my appointment? I have tooth pain and my jaw \
                 is swollen. It's about my bill. Do you take Medicaid? {}. We accept {}.{times}",
                types.join(", "),
                f.insurance_accepted.join(", ")
            )
        }
    }
}

/// What a caller choosing among `offers` is likely to say: each time as a word and as digits
/// ("nine", "9"; "nine thirty", "9:30"), "noon", the weekdays when the offers span days, and
/// "first one" … (without "the": a favoured "the" would crowd out the times).
pub fn offer_phrases(offers: &[SlotOffer]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |p: String| {
        if !out.contains(&p) {
            out.push(p);
        }
    };
    for o in offers {
        for p in time_phrases(o.start_local.time()) {
            push(p);
        }
    }
    let mut days: Vec<_> = offers.iter().map(|o| o.start_local.date()).collect();
    days.dedup();
    if days.len() > 1 {
        for d in days {
            push(crate::phrasing::weekday_name(d).to_string());
        }
    }
    for ordinal in ORD_UNITS.iter().skip(1).take(offers.len()) {
        push(format!("{ordinal} one"));
    }
    out
}

/// What a time the caller began but the recogniser did not make out is likely to be: "at 8" …
/// "at 4", each whole hour an appointment can start in the practice's opening hours (written as
/// Whisper writes times; the call layer decodes such a turn again favouring these).
pub fn clock_phrases(f: &PracticeFacts) -> Vec<String> {
    let mut hours: Vec<u32> = f
        .hours
        .iter()
        .flat_map(|h| {
            let last = if h.close.minute() == 0 { h.close.hour() } else { h.close.hour() + 1 };
            h.open.hour()..last
        })
        .collect();
    hours.sort_unstable();
    hours.dedup();
    hours.into_iter().map(|h| format!("at {}", if h % 12 == 0 { 12 } else { h % 12 })).collect()
}

fn time_phrases(t: NaiveTime) -> Vec<String> {
    let (h, m) = (t.hour(), t.minute());
    if h == 12 && m == 0 {
        return vec!["noon".into(), "twelve".into(), "12".into()];
    }
    let h12 = if h % 12 == 0 { 12 } else { h % 12 };
    let word = UNITS[h12 as usize];
    if m == 0 {
        return vec![word.into(), h12.to_string()];
    }
    vec![format!("{word} {}", minute_words(m)), format!("{h12}:{m:02}")]
}

/// 5 → "oh five", 30 → "thirty", 45 → "forty-five" (as a time is said).
fn minute_words(m: u32) -> String {
    let m = m as usize;
    match m {
        0..=9 => format!("oh {}", UNITS[m]),
        10..=19 => UNITS[m].to_string(),
        _ if m.is_multiple_of(10) => TENS[m / 10].to_string(),
        _ => format!("{}-{}", TENS[m / 10], UNITS[m % 10]),
    }
}

/// "+12175550100" → "217 555 0100" (how Whisper writes a North American number).
fn grouped(e164: &str) -> String {
    let digits: String = e164.chars().filter(|c| c.is_ascii_digit()).collect();
    let national = if digits.len() == 11 && digits.starts_with('1') { &digits[1..] } else { &digits[..] };
    if national.len() == 10 {
        format!("{} {} {}", &national[..3], &national[3..6], &national[6..])
    } else {
        "217 555 0100".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(d: u32, h: u32, m: u32) -> SlotOffer {
        let start_local = chrono::NaiveDate::from_ymd_opt(2026, 3, d)
            .unwrap()
            .and_hms_opt(h, m, 0)
            .unwrap();
        SlotOffer {
            slot_id: format!("s{d}{h}{m}"),
            start_local,
        }
    }

    #[test]
    fn offer_phrases_say_each_time_both_ways() {
        let p = offer_phrases(&[offer(6, 9, 0), offer(6, 10, 30), offer(6, 14, 0)]);
        assert_eq!(
            p,
            vec![
                "nine",
                "9",
                "ten thirty",
                "10:30",
                "two",
                "2",
                "first one",
                "second one",
                "third one"
            ]
        );
    }

    #[test]
    fn minutes_are_said_as_in_a_time() {
        assert_eq!(minute_words(5), "oh five");
        assert_eq!(minute_words(15), "fifteen");
        assert_eq!(minute_words(30), "thirty");
        assert_eq!(minute_words(45), "forty-five");
    }

    #[test]
    fn offer_phrases_name_the_days_when_offers_span_days() {
        let p = offer_phrases(&[offer(5, 12, 0), offer(6, 12, 0)]);
        assert_eq!(
            p,
            vec![
                "noon",
                "twelve",
                "12",
                "Thursday",
                "Friday",
                "first one",
                "second one"
            ]
        );
        assert!(offer_phrases(&[]).is_empty());
    }

    #[test]
    fn phone_prompt_shows_the_practice_number_grouped() {
        assert_eq!(grouped("+12175550100"), "217 555 0100");
        assert_eq!(grouped("2175550100"), "217 555 0100");
    }
}
