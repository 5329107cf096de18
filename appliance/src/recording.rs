//! The call recording: caller on the left channel, receptionist on the right, 16 kHz, placed on
//! one timeline from the call's start. Kept in memory during the call (bounded) and stored as a WAV
//! inside the encrypted database when the call ends; it never touches the file system.

use std::time::{Duration, Instant};

const RATE: u64 = 16_000;

pub struct Recorder {
    start: Instant,
    max_samples: usize,
    caller: Vec<i16>,
    bot: Vec<i16>,
}

impl Recorder {
    /// `max`: longest recording kept (a stuck call must not grow memory without bound).
    pub fn new(start: Instant, max: Duration) -> Self {
        Self { start, max_samples: (max.as_millis() as u64 * RATE / 1000) as usize, caller: Vec::new(), bot: Vec::new() }
    }

    fn offset(&self, at: Instant) -> usize {
        (at.saturating_duration_since(self.start).as_micros() as u64 * RATE / 1_000_000) as usize
    }

    /// Caller audio arrives as a continuous 20 ms stream (the jitter buffer conceals gaps).
    pub fn caller(&mut self, frame: &[i16]) {
        let room = self.max_samples.saturating_sub(self.caller.len());
        self.caller.extend_from_slice(&frame[..frame.len().min(room)]);
    }

    /// Bot audio queued for playout at `at` (after anything still queued).
    pub fn bot(&mut self, at: Instant, pcm: &[i16]) {
        let pos = self.offset(at).max(self.bot.len()).min(self.max_samples);
        self.bot.resize(pos, 0);
        let room = self.max_samples.saturating_sub(self.bot.len());
        self.bot.extend_from_slice(&pcm[..pcm.len().min(room)]);
    }

    /// Barge-in: what was queued after `at` was never played.
    pub fn bot_cut(&mut self, at: Instant) {
        let pos = self.offset(at);
        if pos < self.bot.len() {
            self.bot.truncate(pos);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.caller.is_empty() && self.bot.is_empty()
    }

    /// A 16-bit stereo WAV (left: caller, right: receptionist).
    pub fn wav(&self) -> Vec<u8> {
        let n = self.caller.len().max(self.bot.len());
        let data_len = (n * 4) as u32;
        let mut out = Vec::with_capacity(44 + n * 4);
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&(36 + data_len).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes()); // PCM
        out.extend_from_slice(&2u16.to_le_bytes()); // channels
        out.extend_from_slice(&(RATE as u32).to_le_bytes());
        out.extend_from_slice(&(RATE as u32 * 4).to_le_bytes());
        out.extend_from_slice(&4u16.to_le_bytes());
        out.extend_from_slice(&16u16.to_le_bytes());
        out.extend_from_slice(b"data");
        out.extend_from_slice(&data_len.to_le_bytes());
        for i in 0..n {
            out.extend_from_slice(&self.caller.get(i).copied().unwrap_or(0).to_le_bytes());
            out.extend_from_slice(&self.bot.get(i).copied().unwrap_or(0).to_le_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_both_sides_on_one_timeline() {
        let t0 = Instant::now();
        let mut r = Recorder::new(t0, Duration::from_secs(10));
        r.caller(&[1; 320]);
        r.caller(&[2; 320]);
        r.bot(t0 + Duration::from_millis(10), &[9; 320]);
        let w = r.wav();
        assert_eq!(&w[..4], b"RIFF");
        let samples: Vec<i16> = w[44..].chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect();
        // frame i = (caller, bot)
        assert_eq!(samples.len(), 2 * 640);
        assert_eq!((samples[0], samples[1]), (1, 0));
        assert_eq!((samples[2 * 160], samples[2 * 160 + 1]), (1, 9)); // bot starts at 10 ms = sample 160
        assert_eq!((samples[2 * 479], samples[2 * 479 + 1]), (2, 9));
        assert_eq!(samples[2 * 480 + 1], 0);
    }

    #[test]
    fn barge_in_cuts_unplayed_audio_and_memory_is_bounded() {
        let t0 = Instant::now();
        let mut r = Recorder::new(t0, Duration::from_millis(100));
        r.bot(t0, &[5; 16_000]);
        assert_eq!(r.bot.len(), 1600, "capped at 100 ms");
        r.bot_cut(t0 + Duration::from_millis(50));
        assert_eq!(r.bot.len(), 800);
        for _ in 0..100 {
            r.caller(&[1; 320]);
        }
        assert_eq!(r.caller.len(), 1600);
    }
}
