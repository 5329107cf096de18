//! A small windowed-sinc resampler (Blackman window), for Piper's 22050 Hz → 8000/16000 Hz.
//!
//! Direct evaluation per output sample: 2×`HALF_TAPS` multiply-adds each, i.e. ~0.5 M MAC per
//! second of 16 kHz output — negligible next to synthesis. The cutoff sits a little below the
//! lower Nyquist frequency so downsampling does not alias into the telephone band.
//! Also used by the ASR proof tests (8 kHz phone path), hence self-contained.

const HALF_TAPS: i64 = 24;

/// Resample `input` (mono f32) from `from` Hz to `to` Hz.
pub fn resample(input: &[f32], from: u32, to: u32) -> Vec<f32> {
    if from == to || input.is_empty() || from == 0 || to == 0 {
        return input.to_vec();
    }
    let ratio = to as f64 / from as f64;
    // Normalised cutoff (relative to the input rate's Nyquist).
    let cutoff = ratio.min(1.0) * 0.92;
    let out_len = ((input.len() as f64) * ratio).round() as usize;
    let mut out = Vec::with_capacity(out_len);
    // The kernel's footprint in input samples widens when downsampling.
    let half = (HALF_TAPS as f64 / cutoff).ceil() as i64;
    for n in 0..out_len {
        let t = n as f64 / ratio; // position in input samples
        let centre = t.floor() as i64;
        let mut acc = 0.0f64;
        let mut norm = 0.0f64;
        for k in (centre - half + 1)..=(centre + half) {
            let x = t - k as f64;
            let w = blackman(x / half as f64);
            let s = sinc(x * cutoff) * cutoff * w;
            norm += s;
            if k >= 0 && (k as usize) < input.len() {
                acc += input[k as usize] as f64 * s;
            }
        }
        // Normalising by the kernel's DC gain keeps levels exact despite truncation.
        out.push(if norm.abs() > 1e-9 { (acc / norm) as f32 } else { 0.0 });
    }
    out
}

fn sinc(x: f64) -> f64 {
    if x.abs() < 1e-12 {
        1.0
    } else {
        let px = std::f64::consts::PI * x;
        px.sin() / px
    }
}

/// Blackman window on u ∈ [-1, 1].
fn blackman(u: f64) -> f64 {
    if u.abs() >= 1.0 {
        return 0.0;
    }
    let a = std::f64::consts::PI * (u + 1.0);
    0.42 - 0.5 * a.cos() + 0.08 * (2.0 * a).cos()
}

/// f32 in [-1, 1] → i16 with clipping.
pub fn to_i16(x: &[f32]) -> Vec<i16> {
    x.iter().map(|&s| (s.clamp(-1.0, 1.0) * 32767.0).round() as i16).collect()
}

#[cfg(test)]
mod tests {
    #[allow(unused_imports)]
    use super::*;

    fn tone(freq: f64, rate: u32, secs: f64) -> Vec<f32> {
        (0..(rate as f64 * secs) as usize)
            .map(|i| (2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64).sin() as f32 * 0.5)
            .collect()
    }

    fn rms(x: &[f32]) -> f64 {
        (x.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    #[test]
    fn passband_tone_keeps_level_and_length() {
        let x = tone(1000.0, 22050, 1.0);
        let y = resample(&x, 22050, 8000);
        assert_eq!(y.len(), 8000);
        let r = rms(&y[200..7800]) / rms(&x);
        assert!((r - 1.0).abs() < 0.02, "gain {r}");
    }

    #[test]
    fn out_of_band_tone_is_suppressed_when_downsampling() {
        // 6 kHz cannot be represented at 8 kHz; it must not alias to 2 kHz.
        let x = tone(6000.0, 22050, 1.0);
        let y = resample(&x, 22050, 8000);
        let r = rms(&y[200..7800]) / rms(&x);
        assert!(r < 0.01, "leak {r}");
    }

    #[test]
    fn upsampling_round_trip_is_close() {
        let x = tone(440.0, 8000, 0.5);
        let y = resample(&resample(&x, 8000, 16000), 16000, 8000);
        let err: f64 = x[100..3900].iter().zip(&y[100..3900]).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>() / 3800.0;
        assert!(err.sqrt() < 0.01, "rms err {}", err.sqrt());
    }
}
