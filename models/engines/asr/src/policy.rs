//! Pure decisions of the ASR engine (unit tested without a model).

/// Floor of the shortened encoder window. Measured on the LibriVox clips (see models/BENCHMARKS.md):
/// below this tiny.en drops or mishears words.
pub const DEFAULT_AUDIO_CTX_FLOOR: u32 = 768;

/// Encoder window for an utterance: proportional to its length (Whisper's encoder has 50 frames
/// per second over a 30 s / 1500-frame window) plus a margin, never below `floor`, rounded up to a
/// multiple of 64 for the kernels.
pub fn audio_ctx_for(samples: usize, sample_rate: u32, floor: u32) -> u32 {
    let secs = samples as f64 / sample_rate.max(1) as f64;
    let needed = (secs * 50.0).ceil() as u32 + 64;
    let ctx = needed.max(floor).min(1500);
    ctx.div_ceil(64).saturating_mul(64).min(1500)
}

/// RMS below this (in i16 units, about -70 dBFS) is treated as silence: Whisper hallucinates
/// text ("Thank you.") on silence, so it is not run at all.
pub const SILENCE_RMS: f64 = 10.0;

pub fn is_near_silent(pcm: &[i16]) -> bool {
    if pcm.is_empty() {
        return true;
    }
    let energy: f64 = pcm.iter().map(|&s| (s as f64) * (s as f64)).sum::<f64>() / pcm.len() as f64;
    energy.sqrt() < SILENCE_RMS
}

/// Contextual biasing of the decoder towards phrases the caller is likely to say now (the times
/// just offered, the name on file). A phrase's first token gets a small bonus anywhere; once
/// its first tokens have been decoded, the next one gets a larger bonus, so a phrase that is
/// heard is finished the way it was expected ("nine o'clock", not "I look like") while one that
/// is not said costs nothing. Bonuses are added to raw logits; the largest applicable wins.
#[derive(Debug, Clone, Default)]
pub struct PhraseBias {
    phrases: Vec<Vec<i32>>,
    start: f32,
    cont: f32,
}

impl PhraseBias {
    pub fn new(phrases: Vec<Vec<i32>>, start: f32, cont: f32) -> Self {
        Self {
            phrases: phrases.into_iter().filter(|p| !p.is_empty()).collect(),
            start,
            cont,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.phrases.is_empty()
    }

    /// Add the bonuses for the next token after `so_far` to `logits` (indexed by token id).
    pub fn apply(&self, so_far: &[i32], logits: &mut [f32]) {
        // A turn answers with one of the expected phrases: once one has been started, no other is
        // pushed in (else the bonus feeds on itself: "11th, 1th, 1th, 1th…").
        let one_said = self.phrases.iter().any(|p| so_far.contains(&p[0]));
        let mut best: Vec<(i32, f32)> = Vec::new();
        for p in &self.phrases {
            // The longest decoded prefix of this phrase that ends the sequence so far.
            let matched = (1..p.len())
                .rev()
                .find(|&k| so_far.ends_with(&p[..k]))
                .unwrap_or(0);
            if matched == 0 && one_said {
                continue;
            }
            let (tok, bonus) = (
                p[matched],
                if matched == 0 { self.start } else { self.cont },
            );
            match best.iter_mut().find(|(t, _)| *t == tok) {
                Some(b) => b.1 = b.1.max(bonus),
                None => best.push((tok, bonus)),
            }
        }
        for (tok, bonus) in best {
            if let Some(l) = usize::try_from(tok).ok().and_then(|i| logits.get_mut(i)) {
                // A token the decoder already ruled out (timestamps, suppressed) stays out.
                if l.is_finite() {
                    *l += bonus;
                }
            }
        }
    }
}

/// The spellings of a phrase the decoder may produce: with a leading space (mid-sentence, and
/// Whisper's first text token) and capitalised (sentence start).
pub fn phrase_variants(phrase: &str) -> Vec<String> {
    let p = phrase.trim();
    if p.is_empty() {
        return Vec::new();
    }
    let mut out = vec![format!(" {p}")];
    let mut chars = p.chars();
    if let Some(first) = chars.next() {
        let cap: String = first.to_uppercase().chain(chars).collect();
        if cap != p {
            out.push(format!(" {cap}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctx_grows_with_length_and_respects_floor_and_cap() {
        assert_eq!(audio_ctx_for(16000, 16000, 768), 768);
        let ten = audio_ctx_for(16000 * 14, 16000, 256);
        assert!(ten >= 14 * 50 && ten.is_multiple_of(64), "{ten}");
        assert_eq!(audio_ctx_for(16000 * 30, 16000, 256), 1500);
        assert!(audio_ctx_for(16000 * 2, 16000, 0) >= 100);
    }

    #[test]
    fn silence_guard() {
        assert!(is_near_silent(&[0; 1600]));
        assert!(is_near_silent(&[3, -3, 2, -1]));
        let tone: Vec<i16> = (0..1600).map(|i| ((i as f32 * 0.1).sin() * 3000.0) as i16).collect();
        assert!(!is_near_silent(&tone));
    }

    #[test]
    fn bias_starts_small_and_continues_strong() {
        // Phrases: [5, 6, 7] and [5, 9].
        let b = PhraseBias::new(vec![vec![5, 6, 7], vec![5, 9], vec![]], 1.0, 4.0);
        let mut l = vec![0.0f32; 12];
        b.apply(&[1, 2], &mut l);
        assert_eq!(
            l[5], 1.0,
            "first token of a phrase: start bonus once, not per phrase"
        );
        assert_eq!(l.iter().filter(|&&x| x != 0.0).count(), 1);

        let mut l = vec![0.0f32; 12];
        b.apply(&[3, 5], &mut l);
        assert_eq!(
            (l[6], l[9]),
            (4.0, 4.0),
            "both phrases continue after their shared first token"
        );
        assert_eq!(l[5], 0.0, "a phrase under way is not started again");

        let mut l = vec![0.0f32; 12];
        b.apply(&[5, 6], &mut l);
        assert_eq!(l[7], 4.0);
        assert_eq!(l[9], 0.0, "[5, 9] does not continue after 6");
    }

    #[test]
    fn no_new_phrase_once_one_was_begun() {
        let b = PhraseBias::new(vec![vec![5, 6], vec![8]], 2.0, 4.0);
        let mut l = vec![0.0f32; 12];
        b.apply(&[5, 6, 1], &mut l);
        assert!(l.iter().all(|&x| x == 0.0), "{l:?}");
        let mut l = vec![0.0f32; 12];
        b.apply(&[8, 5], &mut l);
        assert_eq!(l[6], 4.0, "a phrase already under way is still finished");
        let mut l = vec![0.0f32; 12];
        b.apply(&[5, 7], &mut l);
        assert!(
            l.iter().all(|&x| x == 0.0),
            "a phrase begun and left is not begun again: {l:?}"
        );
    }

    #[test]
    fn bias_leaves_suppressed_tokens_and_out_of_range_ids_alone() {
        let b = PhraseBias::new(vec![vec![2], vec![40]], 3.0, 3.0);
        let mut l = vec![0.0, 0.0, f32::NEG_INFINITY];
        b.apply(&[], &mut l);
        assert_eq!(l[2], f32::NEG_INFINITY);
    }

    #[test]
    fn variants_cover_sentence_start() {
        assert_eq!(
            phrase_variants("nine o'clock"),
            vec![" nine o'clock", " Nine o'clock"]
        );
        assert_eq!(phrase_variants(" 9:00 "), vec![" 9:00"]);
        assert!(phrase_variants("  ").is_empty());
    }
}
