//! Piper starts every utterance with 35–80 ms of near-silence. Before the first sentence of a
//! reply that is pure delay for the caller (it is counted in voice-to-voice latency), so it is
//! cut down to a short margin; later sentences keep theirs as the pause between sentences.

/// -40 dBFS: quieter than any voiced sound Piper makes, louder than its dither.
const LOUD: u16 = 328;
/// Kept before the first loud sample, so a soft onset (an "h", an "f") is not clipped.
const MARGIN_MS: usize = 10;

/// `pcm` from `MARGIN_MS` before its first loud sample (all of it if nothing is loud).
pub fn trim_lead(pcm: &[i16], rate: u32) -> &[i16] {
    let Some(first) = pcm.iter().position(|s| s.unsigned_abs() > LOUD) else { return pcm };
    let margin = rate as usize * MARGIN_MS / 1000;
    &pcm[first.saturating_sub(margin)..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_silence_is_cut_to_the_margin() {
        let mut pcm = vec![0i16; 1600]; // 100 ms at 16 kHz
        pcm.extend([50, -40, 30]); // dither stays below the threshold
        pcm.extend([2000, -3000, 2500]);
        let out = trim_lead(&pcm, 16_000);
        // 160 samples (10 ms) before the first loud one.
        assert_eq!(out.len(), 160 + 3);
        assert_eq!(&out[out.len() - 3..], &[2000, -3000, 2500]);
        // At 8 kHz the margin is 80 samples.
        assert_eq!(trim_lead(&pcm, 8_000).len(), 80 + 3);
    }

    #[test]
    fn audio_that_starts_loud_or_is_all_quiet_is_kept_whole() {
        let loud = [4000i16, -4000, 10, 0];
        assert_eq!(trim_lead(&loud, 16_000), &loud);
        let quiet = vec![10i16; 500];
        assert_eq!(trim_lead(&quiet, 16_000).len(), 500);
        assert!(trim_lead(&[], 16_000).is_empty());
    }
}
