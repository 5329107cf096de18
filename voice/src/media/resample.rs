//! Band-limited sample-rate conversion by rational ratios (8 ↔ 16 kHz, 22.05 → 8/16 kHz).
//!
//! A polyphase FIR: a Kaiser-windowed sinc prototype designed at `L × input rate`, split into `L`
//! phases, and evaluated only at the output instants. State (the last `taps` input samples and the
//! phase) carries across calls, so feeding 20 ms frames gives exactly the same samples as one call
//! on the whole signal: no clicks at frame boundaries.

/// Kaiser β: about 70 dB of stop-band attenuation, plenty above G.711's own noise floor (~38 dB SNR).
const KAISER_BETA: f64 = 7.0;
/// Stop-band attenuation the tap count is designed for (Kaiser's formula).
const ATTENUATION_DB: f64 = 70.0;
/// Taps per phase at the lower of the two rates; scaled up by the rate ratio.
const BASE_TAPS: usize = 48;

/// A streaming mono resampler from `from_hz` to `to_hz`.
#[derive(Clone)]
pub struct Resampler {
    up: usize,   // L
    down: usize, // M
    taps: usize, // N: taps per phase
    /// Coefficients phase-major: `coeffs[p * taps + j]` multiplies `x[n - j]` for phase `p`.
    coeffs: Vec<f32>,
    /// Input history; `history[taps - 1 + i]` is the i-th unconsumed input sample.
    history: Vec<f32>,
    /// Index (into the virtual input stream, relative to `history[taps-1]`) and phase of the next output.
    next_index: usize,
    next_phase: usize,
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Zeroth-order modified Bessel function of the first kind (series; converges fast for β ≤ 10).
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let half = x / 2.0;
    for k in 1..50 {
        term *= (half / k as f64) * (half / k as f64);
        sum += term;
        if term < sum * 1e-12 {
            break;
        }
    }
    sum
}

impl Resampler {
    /// Builds a resampler between two positive rates. Equal rates give a pass-through copy.
    /// Returns `None` for a zero rate.
    pub fn new(from_hz: u32, to_hz: u32) -> Option<Self> {
        if from_hz == 0 || to_hz == 0 {
            return None;
        }
        let g = gcd(from_hz as usize, to_hz as usize);
        let up = to_hz as usize / g;
        let down = from_hz as usize / g;
        if up == 1 && down == 1 {
            return Some(Self { up, down, taps: 1, coeffs: vec![1.0], history: Vec::new(), next_index: 0, next_phase: 0 });
        }
        // More taps when decimating, so the transition band stays narrow relative to the output rate.
        let ratio = (from_hz as f64 / to_hz as f64).max(1.0);
        let taps = ((BASE_TAPS as f64) * ratio).ceil() as usize;
        let total = up * taps;
        // Transition width (in cycles per input sample) that Kaiser's formula gives for this length;
        // place the cut-off so the stop band starts at the lower Nyquist frequency (no aliasing).
        let transition = (ATTENUATION_DB - 7.95) / (14.36 * taps as f64);
        let nyquist_low = 0.5 * (to_hz.min(from_hz) as f64) / from_hz as f64; // cycles per input sample
        let cutoff = (nyquist_low - transition / 2.0).max(nyquist_low * 0.5);
        // Prototype at the upsampled rate: frequencies divide by `up`.
        let fc = cutoff / up as f64;
        let centre = (total as f64 - 1.0) / 2.0;
        let i0_beta = bessel_i0(KAISER_BETA);
        let mut proto = vec![0f64; total];
        for (i, h) in proto.iter_mut().enumerate() {
            let t = i as f64 - centre;
            let sinc = if t.abs() < 1e-9 { 2.0 * fc } else { (2.0 * std::f64::consts::PI * fc * t).sin() / (std::f64::consts::PI * t) };
            let r = 2.0 * t / (total as f64 - 1.0);
            let w = bessel_i0(KAISER_BETA * (1.0 - r * r).max(0.0).sqrt()) / i0_beta;
            *h = sinc * w;
        }
        // Unity DC gain per output sample: the zero-stuffed signal needs a total gain of `up`.
        let sum: f64 = proto.iter().sum();
        let scale = up as f64 / sum;
        let mut coeffs = vec![0f32; total];
        for p in 0..up {
            for j in 0..taps {
                coeffs[p * taps + j] = (proto[p + j * up] * scale) as f32;
            }
        }
        Some(Self { up, down, taps, coeffs, history: vec![0.0; taps - 1], next_index: 0, next_phase: 0 })
    }

    /// The delay the filter adds, in output samples (group delay of the prototype).
    pub fn delay_samples(&self) -> usize {
        if self.taps == 1 {
            return 0;
        }
        (self.up * self.taps - 1) / 2 / self.down
    }

    /// Forgets all history (used after a flush, so old audio cannot leak into new audio).
    pub fn reset(&mut self) {
        if self.taps > 1 {
            self.history.clear();
            self.history.resize(self.taps - 1, 0.0);
        }
        self.next_index = 0;
        self.next_phase = 0;
    }

    /// Converts `input`, appending every output sample that is now fully determined to `out`.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        if self.taps == 1 {
            out.extend_from_slice(input);
            return;
        }
        self.history.extend(input.iter().map(|&s| s as f32));
        let available = self.history.len() - (self.taps - 1);
        out.reserve(available * self.up / self.down + 1);
        while self.next_index < available {
            let newest = self.next_index + self.taps - 1;
            let window = &self.history[newest + 1 - self.taps..=newest];
            let phase = &self.coeffs[self.next_phase * self.taps..(self.next_phase + 1) * self.taps];
            // coeffs[j] multiplies x[n - j]: walk the window backwards.
            let acc: f32 = phase.iter().zip(window.iter().rev()).map(|(c, x)| c * x).sum();
            out.push(acc.round().clamp(i16::MIN as f32, i16::MAX as f32) as i16);
            self.next_phase += self.down;
            self.next_index += self.next_phase / self.up;
            self.next_phase %= self.up;
        }
        // Keep only the samples future outputs can still need.
        let consumed = self.next_index.min(available);
        self.history.drain(..consumed);
        self.next_index -= consumed;
    }
}

impl std::fmt::Debug for Resampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resampler").field("up", &self.up).field("down", &self.down).field("taps", &self.taps).finish()
    }
}
