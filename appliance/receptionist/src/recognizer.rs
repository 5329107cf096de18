//! Priming text for the speech recogniser (Whisper's initial prompt).
//!
//! Whisper continues the prompt's style and vocabulary as if it were earlier speech. The general
//! prompt carries the practice's own words (name, visit types, insurers); while the receptionist
//! waits for a phone number or a date of birth, the prompt shows one, which is what turns
//! "two one seven ... five five five ... zero one ... nine one" from "217-5501, I'm one" into
//! "217 555 0191". No prompt holds a concrete appointment date or time: the model once copied
//! "March 5th at 2 PM" from a prompt into a caller who had said 10 AM.

use crate::{Expecting, PracticeFacts};

pub fn recognizer_prompt(f: &PracticeFacts, expecting: Expecting) -> String {
    let opening = format!("Thank you for calling {}.", f.name);
    match expecting {
        Expecting::PhoneNumber => {
            format!("{opening} What's the best number to reach you? Sure, my number is 312 555 0147. You can reach me at {}.", grouped(&f.phone))
        }
        Expecting::DateOfBirth => format!("{opening} For your security, what is your date of birth? It's June 14th, 1975. I was born on March 3rd, 1988."),
        Expecting::Anything | Expecting::Name => {
            let types: Vec<&str> = f.appointment_types.iter().map(|t| t.name.as_str()).collect();
            format!(
                "{opening} Hi, I'd like to book a cleaning, please. Can I reschedule or cancel my appointment? I have tooth pain and my jaw \
                 is swollen. It's about my bill. Do you take Medicaid? {}. We accept {}.",
                types.join(", "),
                f.insurance_accepted.join(", ")
            )
        }
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

    #[test]
    fn phone_prompt_shows_the_practice_number_grouped() {
        assert_eq!(grouped("+12175550100"), "217 555 0100");
        assert_eq!(grouped("2175550100"), "217 555 0100");
    }
}
