//! Sentence splitting for streamed synthesis: the first sentence is spoken while the rest is
//! still being synthesized, so time-to-first-audio depends on the first sentence only.

/// Abbreviations that end in a period without ending a sentence (front-desk vocabulary).
const ABBREVIATIONS: &[&str] = &["dr", "mr", "mrs", "ms", "st", "jr", "sr", "no", "vs", "etc", "e.g", "i.e", "a.m", "p.m", "ave", "apt"];

/// Longest piece sent to Piper at once; longer sentences are cut at a comma or space.
const MAX_CHARS: usize = 240;

pub fn split_sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        cur.push(c);
        let at_end = matches!(c, '.' | '!' | '?' | ';') || c == '\n';
        let next_is_space = chars.get(i + 1).map_or(true, |n| n.is_whitespace());
        if at_end && next_is_space {
            if c == '.' && ends_with_abbreviation(&cur) {
                continue;
            }
            push_piece(&mut out, &cur);
            cur.clear();
        }
    }
    push_piece(&mut out, &cur);
    out
}

fn ends_with_abbreviation(s: &str) -> bool {
    let word = s.trim_end_matches('.').rsplit(|c: char| c.is_whitespace()).next().unwrap_or("");
    let w = word.to_ascii_lowercase();
    ABBREVIATIONS.contains(&w.as_str()) || (w.len() == 1 && w.chars().all(|c| c.is_ascii_alphabetic()))
}

fn push_piece(out: &mut Vec<String>, piece: &str) {
    let p = piece.trim();
    if p.is_empty() || !p.chars().any(|c| c.is_alphanumeric()) {
        return;
    }
    let mut rest = p;
    while rest.chars().count() > MAX_CHARS {
        let byte_limit = rest.char_indices().nth(MAX_CHARS).map_or(rest.len(), |(b, _)| b);
        let head = &rest[..byte_limit];
        let cut = head.rfind(", ").map(|i| i + 1).or_else(|| head.rfind(' ')).unwrap_or(byte_limit);
        out.push(rest[..cut].trim().to_string());
        rest = rest[cut..].trim_start();
    }
    if !rest.is_empty() {
        out.push(rest.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_terminators_but_not_titles() {
        let s = split_sentences("Thanks for calling. Dr. Patel is in today! Would 3 p.m. work? Great");
        assert_eq!(s, vec!["Thanks for calling.", "Dr. Patel is in today!", "Would 3 p.m. work?", "Great"]);
    }

    #[test]
    fn decimals_and_blank_pieces() {
        assert_eq!(split_sentences("It costs 3.50 dollars. ..."), vec!["It costs 3.50 dollars."]);
        assert!(split_sentences("   ").is_empty());
    }

    #[test]
    fn long_sentence_is_cut() {
        let long = "word, ".repeat(100);
        let parts = split_sentences(&long);
        assert!(parts.len() > 1);
        assert!(parts.iter().all(|p| p.chars().count() <= MAX_CHARS));
    }
}
