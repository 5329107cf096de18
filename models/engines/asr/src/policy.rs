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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctx_grows_with_length_and_respects_floor_and_cap() {
        assert_eq!(audio_ctx_for(16000, 16000, 768), 768);
        let ten = audio_ctx_for(16000 * 14, 16000, 256);
        assert!(ten >= 14 * 50 && ten % 64 == 0, "{ten}");
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
}
