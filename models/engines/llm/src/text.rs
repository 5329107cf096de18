//! Pure text helpers of the LLM engine (unit tested without a model).

/// The part of a full rendered chat after the system-only rendering, if the template renders the
/// system prompt as a stable prefix (true for ChatML-style templates).
pub fn split_turn<'a>(system_rendered: &str, full: &'a str) -> Option<&'a str> {
    if system_rendered.is_empty() {
        return None;
    }
    full.strip_prefix(system_rendered)
}

/// Reassembles UTF-8 text from token pieces that may split a multi-byte character.
#[derive(Default)]
pub struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        match std::str::from_utf8(&self.pending) {
            Ok(s) => {
                let s = s.to_string();
                self.pending.clear();
                s
            }
            Err(e) => {
                let valid = e.valid_up_to();
                // An invalid (not just incomplete) sequence is replaced rather than kept forever.
                let cut = if e.error_len().is_some() { self.pending.len() } else { valid };
                let s = String::from_utf8_lossy(&self.pending[..cut]).into_owned();
                self.pending.drain(..cut);
                s
            }
        }
    }
}

/// Detects stop strings across token boundaries, holding back text that could be the start of
/// one so a stop string is never streamed.
pub struct StopScan {
    stops: Vec<String>,
    held: String,
}

impl StopScan {
    pub fn new(stops: &[String]) -> Self {
        Self { stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(), held: String::new() }
    }

    /// Returns text safe to emit and whether a stop string was hit (text before it is emitted).
    pub fn push(&mut self, piece: &str) -> (String, bool) {
        self.held.push_str(piece);
        if self.stops.is_empty() {
            return (std::mem::take(&mut self.held), false);
        }
        if let Some(pos) = self.stops.iter().filter_map(|s| self.held.find(s.as_str())).min() {
            let out = self.held[..pos].to_string();
            self.held.clear();
            return (out, true);
        }
        // Keep the longest suffix that is a prefix of some stop string.
        let mut keep = 0;
        for s in &self.stops {
            for k in (1..s.len()).rev() {
                if k <= self.held.len() && self.held.is_char_boundary(self.held.len() - k) && s.is_char_boundary(k) && self.held.ends_with(&s[..k]) {
                    keep = keep.max(k);
                    break;
                }
            }
        }
        let cut = self.held.len() - keep;
        let out = self.held[..cut].to_string();
        self.held.drain(..cut);
        (out, false)
    }

    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_split() {
        assert_eq!(split_turn("<s>sys</s>", "<s>sys</s><u>hi</u>"), Some("<u>hi</u>"));
        assert_eq!(split_turn("<s>sys</s>", "<x>sys</x><u>hi</u>"), None);
        assert_eq!(split_turn("", "abc"), None);
    }

    #[test]
    fn utf8_split_across_pieces() {
        let mut u = Utf8Stream::default();
        let e = "é".as_bytes();
        assert_eq!(u.push(&e[..1]), "");
        assert_eq!(u.push(&e[1..]), "é");
        assert_eq!(u.push(b"ok"), "ok");
    }

    #[test]
    fn stop_string_across_tokens_is_not_emitted() {
        let mut s = StopScan::new(&["\nUser:".to_string()]);
        let (a, hit) = s.push("Hello\nUs");
        assert_eq!((a.as_str(), hit), ("Hello", false));
        let (b, hit) = s.push("er: more");
        assert_eq!((b.as_str(), hit), ("", true));
        let mut s = StopScan::new(&["END".to_string()]);
        assert_eq!(s.push("abcE"), ("abc".to_string(), false));
        assert_eq!(s.push("x"), ("Ex".to_string(), false));
        assert_eq!(s.finish(), "");
    }
}
