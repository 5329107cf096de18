//! A small windowed-sinc resampler (Blackman window), for Piper's 22050 Hz → 8000/16000 Hz.
//!
//! Polyphase: an output sample sits between two input samples at one of only `to / gcd` distinct
//! fractions (320 for 22050 → 16000), so the normalised kernel is computed once per fraction and
//! each output sample is 2×`HALF_TAPS`/cutoff multiply-adds (72 at 16 kHz). Evaluating the kernel's
//! sines and cosines per output sample instead cost 120 ms per 3 s sentence in a release build
//! (240 ms in dev), as much as Piper's own synthesis, and it is on every reply's first audio. The
//! cutoff sits a little below the lower Nyquist frequency so downsampling does not alias into the
//! telephone band. Also used by the ASR proof tests (8 kHz phone path), hence self-contained.

const HALF_TAPS: i64 = 24;

/// Above this many distinct fractions (odd rate pairs) the kernel is computed per output sample.
const MAX_PHASES: u64 = 4096;

/// Resample `input` (mono f32) from `from` Hz to `to` Hz.
pub fn resample(input: &[f32], from: u32, to: u32) -> Vec<f32> {
    if from == to || input.is_empty() || from == 0 || to == 0 {
        return input.to_vec();
    }
    let g = gcd(from as u64, to as u64);
    // Output n sits at input position n·down/up.
    let (up, down) = (to as u64 / g, from as u64 / g);
    let ratio = to as f64 / from as f64;
    // Normalised cutoff (relative to the input rate's Nyquist).
    let cutoff = ratio.min(1.0) * 0.92;
    let out_len = ((input.len() as f64) * ratio).round() as usize;
    // The kernel's footprint in input samples widens when downsampling.
    let half = (HALF_TAPS as f64 / cutoff).ceil() as i64;
    let table: Option<Vec<Vec<f64>>> =
        (up <= MAX_PHASES).then(|| (0..up).map(|p| kernel(p as f64 / up as f64, half, cutoff)).collect());
    let mut out = Vec::with_capacity(out_len);
    for n in 0..out_len as u64 {
        let (centre, phase) = ((n * down / up) as i64, n * down % up);
        let computed;
        let taps = match &table {
            Some(t) => &t[phase as usize],
            None => {
                computed = kernel(phase as f64 / up as f64, half, cutoff);
                &computed
            }
        };
        // taps[j] weighs input[centre - half + 1 + j]; the kernel is already normalised, so
        // samples beyond either end simply count as silence.
        let first = centre - half + 1;
        let mut acc = 0.0f64;
        for (j, c) in taps.iter().enumerate() {
            let k = first + j as i64;
            if k >= 0 && (k as usize) < input.len() {
                acc += input[k as usize] as f64 * c;
            }
        }
        out.push(acc as f32);
    }
    out
}

/// The 2·`half` weights for an output `frac` (0..1) past input sample `centre`, for inputs
/// `centre - half + 1 ..= centre + half`, scaled to unit DC gain (which keeps levels exact
/// despite the truncated kernel).
fn kernel(frac: f64, half: i64, cutoff: f64) -> Vec<f64> {
    let mut w: Vec<f64> = (0..2 * half)
        .map(|j| {
            let x = frac + (half - 1 - j) as f64;
            sinc(x * cutoff) * cutoff * blackman(x / half as f64)
        })
        .collect();
    let norm: f64 = w.iter().sum();
    let scale = if norm.abs() > 1e-9 { 1.0 / norm } else { 0.0 };
    w.iter_mut().for_each(|v| *v *= scale);
    w
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
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

    /// The kernel evaluated afresh at every output sample: what the tables must reproduce.
    fn direct(input: &[f32], from: u32, to: u32) -> Vec<f32> {
        let ratio = to as f64 / from as f64;
        let cutoff = ratio.min(1.0) * 0.92;
        let half = (HALF_TAPS as f64 / cutoff).ceil() as i64;
        let out_len = ((input.len() as f64) * ratio).round() as usize;
        (0..out_len)
            .map(|n| {
                let t = n as f64 / ratio;
                let centre = t.floor() as i64;
                let (mut acc, mut norm) = (0.0f64, 0.0f64);
                for k in (centre - half + 1)..=(centre + half) {
                    let x = t - k as f64;
                    let s = sinc(x * cutoff) * cutoff * blackman(x / half as f64);
                    norm += s;
                    if k >= 0 && (k as usize) < input.len() {
                        acc += input[k as usize] as f64 * s;
                    }
                }
                (acc / norm) as f32
            })
            .collect()
    }

    #[test]
    fn phase_tables_give_the_same_samples_as_the_kernel_computed_per_sample() {
        let x: Vec<f32> = (0..4410).map(|i| ((i as f32) * 0.05).sin() * 0.4 + ((i as f32) * 0.9).cos() * 0.2).collect();
        for (from, to) in [(22050, 16000), (22050, 8000), (8000, 16000), (16000, 8000)] {
            let (fast, slow) = (resample(&x, from, to), direct(&x, from, to));
            assert_eq!(fast.len(), slow.len());
            let worst = fast.iter().zip(&slow).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(worst < 1e-5, "{from} -> {to}: differs by up to {worst}");
        }
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
