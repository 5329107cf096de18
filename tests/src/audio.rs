//! Audio helpers: G.711 decoding, 16-bit mono WAV I/O, energy and envelope correlation.

use std::path::Path;

use crate::error::{io_err, Error, Result};

/// G.711 μ-law byte → linear 16-bit sample.
pub fn ulaw_to_linear(b: u8) -> i16 {
    let u = !b;
    let t = ((i32::from(u & 0x0f) << 3) + 0x84) << ((u & 0x70) >> 4);
    (if u & 0x80 != 0 { 0x84 - t } else { t - 0x84 }) as i16
}

/// G.711 A-law byte → linear 16-bit sample.
pub fn alaw_to_linear(b: u8) -> i16 {
    let a = b ^ 0x55;
    let seg = (a & 0x70) >> 4;
    let mut t = i32::from(a & 0x0f) << 4;
    t = match seg {
        0 => t + 8,
        1 => t + 0x108,
        _ => (t + 0x108) << (seg - 1),
    };
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

/// RMS of a block of samples (0 for an empty block).
pub fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let s: f64 = samples.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    (s / samples.len() as f64).sqrt()
}

/// A mono 16-bit PCM clip.
#[derive(Debug, Clone, PartialEq)]
pub struct Wav {
    pub rate: u32,
    pub samples: Vec<i16>,
}

impl Wav {
    pub fn duration_secs(&self) -> f64 {
        self.samples.len() as f64 / f64::from(self.rate.max(1))
    }

    /// Reads a mono 16-bit PCM WAV (walks RIFF chunks, so sox/libsndfile extras are fine).
    pub fn read(path: &Path) -> Result<Self> {
        let data = std::fs::read(path).map_err(io_err(path))?;
        Self::parse(&data).map_err(|detail| Error::Wav { path: path.to_path_buf(), detail })
    }

    pub fn parse(data: &[u8]) -> std::result::Result<Self, String> {
        if data.len() < 12 || &data[0..4] != b"RIFF" || &data[8..12] != b"WAVE" {
            return Err("not a RIFF/WAVE file".into());
        }
        let mut pos = 12;
        let mut fmt: Option<(u16, u16, u32, u16)> = None;
        while pos + 8 <= data.len() {
            let id = &data[pos..pos + 4];
            let len = u32::from_le_bytes([data[pos + 4], data[pos + 5], data[pos + 6], data[pos + 7]]) as usize;
            let body_start = pos + 8;
            // A recorder killed mid-call may leave a too-large data length: clamp to the file.
            let body_end = body_start.saturating_add(len).min(data.len());
            let body = &data[body_start..body_end];
            if id == b"fmt " {
                if body.len() < 16 {
                    return Err("short fmt chunk".into());
                }
                let tag = u16::from_le_bytes([body[0], body[1]]);
                let ch = u16::from_le_bytes([body[2], body[3]]);
                let rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
                let bits = u16::from_le_bytes([body[14], body[15]]);
                fmt = Some((tag, ch, rate, bits));
            } else if id == b"data" {
                let (tag, ch, rate, bits) = fmt.ok_or("data chunk before fmt chunk")?;
                if !(tag == 1 || tag == 0xfffe) || bits != 16 || ch != 1 {
                    return Err(format!("need mono 16-bit PCM, got format {tag} channels {ch} bits {bits} (convert with sox)"));
                }
                let samples = body.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect();
                return Ok(Self { rate, samples });
            }
            pos = body_start + len + (len & 1);
        }
        Err("no data chunk".into())
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        let n = self.samples.len() * 2;
        let mut out = Vec::with_capacity(44 + n);
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&((36 + n) as u32).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&self.rate.to_le_bytes());
        out.extend_from_slice(&(self.rate * 2).to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&16u16.to_le_bytes());
        out.extend_from_slice(b"data");
        out.extend_from_slice(&(n as u32).to_le_bytes());
        for s in &self.samples {
            out.extend_from_slice(&s.to_le_bytes());
        }
        std::fs::write(path, out).map_err(io_err(path))
    }

    /// 20 ms RMS envelope.
    pub fn envelope(&self) -> Vec<f64> {
        let n = (self.rate / 50).max(1) as usize;
        self.samples.chunks_exact(n).map(rms).collect()
    }

    /// First and last 20 ms frame above `threshold` RMS, as seconds from the start
    /// (end = end of the last voiced frame). None when the clip is silent.
    pub fn voiced_extent(&self, threshold: f64) -> Option<(f64, f64)> {
        let env = self.envelope();
        let first = env.iter().position(|&e| e > threshold)?;
        let last = env.iter().rposition(|&e| e > threshold)?;
        Some((first as f64 * 0.02, (last + 1) as f64 * 0.02))
    }
}

/// Pearson correlation of two equally long series (-1 when undefined).
pub fn correlation(x: &[f64], y: &[f64]) -> f64 {
    let m = x.len().min(y.len());
    if m < 10 {
        return -1.0;
    }
    let (x, y) = (&x[..m], &y[..m]);
    let mx = x.iter().sum::<f64>() / m as f64;
    let my = y.iter().sum::<f64>() / m as f64;
    let (mut sxy, mut sx, mut sy) = (0.0, 0.0, 0.0);
    for (p, q) in x.iter().zip(y) {
        sxy += (p - mx) * (q - my);
        sx += (p - mx) * (p - mx);
        sy += (q - my) * (q - my);
    }
    if sx == 0.0 || sy == 0.0 {
        return -1.0;
    }
    sxy / (sx.sqrt() * sy.sqrt())
}

/// Best 20 ms envelope correlation of `reference` anywhere inside `recording`
/// (the recording may be much longer: the reference is slid over all of it), as
/// (correlation, lag in seconds). Same measure as the shared compare.py (pass ≥ 0.8).
pub fn best_envelope_correlation(reference: &Wav, recording: &Wav) -> (f64, f64) {
    let r = reference.envelope();
    let s = recording.envelope();
    let mut best = (-1.0, 0.0);
    if s.len() < r.len() {
        return (correlation(&r, &s), 0.0);
    }
    for lag in 0..=(s.len() - r.len()) {
        let c = correlation(&r, &s[lag..lag + r.len()]);
        if c > best.0 {
            best = (c, lag as f64 * 0.02);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_known_values() {
        assert_eq!(ulaw_to_linear(0xff), 0);
        assert_eq!(ulaw_to_linear(0x7f), 0);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0x00), -32124);
    }

    #[test]
    fn alaw_known_values() {
        assert_eq!(alaw_to_linear(0xd5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xaa), 32256);
    }

    #[test]
    fn wav_roundtrip_and_extent() {
        let mut samples = vec![0i16; 8000];
        for (i, s) in samples.iter_mut().enumerate().skip(2000).take(1600) {
            *s = if i % 2 == 0 { 3000 } else { -3000 };
        }
        let w = Wav { rate: 8000, samples };
        let dir = std::env::temp_dir().join(format!("fd-e2e-wav-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.wav");
        w.write(&p).unwrap();
        let r = Wav::read(&p).unwrap();
        assert_eq!(r, w);
        // samples 2000..3600 touch 20 ms frames 12..=22 (partly voiced frames count)
        let (a, b) = r.voiced_extent(300.0).unwrap();
        assert!((a - 0.24).abs() < 1e-9 && (b - 0.46).abs() < 1e-9, "{a} {b}");
        assert_eq!(Wav { rate: 8000, samples: vec![0; 800] }.voiced_extent(300.0), None);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn correlation_finds_embedded_clip() {
        let clip: Vec<i16> = (0..4000).map(|i| ((i / 160) % 5 * 1000) as i16 * if i % 2 == 0 { 1 } else { -1 }).collect();
        let mut rec = vec![0i16; 8000];
        rec.extend_from_slice(&clip);
        rec.extend(vec![0i16; 4000]);
        let (c, lag) = best_envelope_correlation(&Wav { rate: 8000, samples: clip }, &Wav { rate: 8000, samples: rec.clone() });
        assert!(c > 0.99 && (lag - 1.0).abs() < 1e-9, "{c} {lag}");
        let noise: Vec<i16> = (0..4000).map(|i| ((i * 7919) % 3000) as i16).collect();
        let (c2, _) = best_envelope_correlation(&Wav { rate: 8000, samples: noise }, &Wav { rate: 8000, samples: rec });
        assert!(c2 < 0.8, "{c2}");
    }
}
