//! Adaptive playout (jitter) buffer for one inbound RTP stream, keyed by RTP timestamp.
//!
//! Packets of any ptime are stored as decoded 8 kHz samples at their (extended) timestamp; playout
//! cuts fixed frames out of that timeline, so reordering, duplicates and odd packet sizes need no
//! special cases. Invariants:
//! - exactly one frame comes out per `pop_frame` call (the caller calls it once per frame period);
//! - missing samples are concealed (repeat the last good frame, fading out over three frames), then
//!   silence; after comfort noise (DTX) missing audio is plain silence, not "concealment";
//! - the delay starts at the target and grows by whole frames when packets arrive late (up to the
//!   maximum); it shrinks again, one quiet frame at a time, when the buffer stays deeper than needed.

use std::collections::BTreeMap;

/// Packets this far from the playout point (either way) mean the sender restarted its timeline:
/// 1 s, in frames of 20 ms so that it means the same time at 8 kHz (G.711) and 16 kHz (G.722).
const JUMP_FRAMES: i64 = 50;
/// Bound on stored packets, so a flood cannot grow memory.
const MAX_PACKETS: usize = 256;
/// Window (in frames) over which the minimum depth decides whether to shrink the delay.
const SHRINK_WINDOW: u32 = 100;
/// Concealment gain per consecutive missing frame (repeat-and-fade), then silence.
const CONCEAL_GAINS: [f32; 3] = [0.8, 0.5, 0.2];

/// What happened to an inserted packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insert {
    Stored,
    Duplicate,
    /// Entirely before the playout point: dropped.
    Late,
    /// Far from the playout point: the buffer re-anchored on this packet.
    Reanchored,
    /// The buffer is full: dropped.
    Overflow,
}

/// What a popped frame contains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    Audio,
    /// Some or all samples were missing and were concealed.
    Concealed,
    Silence,
}

#[derive(Debug)]
pub struct JitterBuffer {
    frame: usize,
    target_frames: u32,
    max_frames: u32,
    packets: BTreeMap<i64, Vec<i16>>,
    /// Extended timestamp of the next frame's first sample; `None` until the first packet.
    play_ts: Option<i64>,
    /// Delay above the target, in frames.
    extra_frames: u32,
    /// Frames of delay to add at the next pops (each repeats/conceals without advancing).
    stretch_pending: u32,
    /// Frames to drop when a quiet one comes along.
    shrink_pending: bool,
    window_min_depth: i64,
    window_frames: u32,
    last_good: Vec<i16>,
    conceal_run: usize,
    dtx: bool,
}

impl JitterBuffer {
    /// `frame`: samples per frame (160 for 20 ms at 8 kHz); delays in frames.
    pub fn new(frame: usize, target_frames: u32, max_frames: u32) -> Self {
        Self {
            frame: frame.max(1),
            target_frames,
            max_frames: max_frames.max(target_frames),
            packets: BTreeMap::new(),
            play_ts: None,
            extra_frames: 0,
            stretch_pending: 0,
            shrink_pending: false,
            window_min_depth: i64::MAX,
            window_frames: 0,
            last_good: vec![0; frame.max(1)],
            conceal_run: CONCEAL_GAINS.len(),
            dtx: false,
        }
    }

    fn jump_samples(&self) -> i64 {
        JUMP_FRAMES * self.frame as i64
    }

    /// Current playout delay in frames (target plus adaptation).
    pub fn delay_frames(&self) -> u32 {
        self.target_frames + self.extra_frames
    }

    pub fn is_anchored(&self) -> bool {
        self.play_ts.is_some()
    }

    fn extend(&self, ts: u32) -> i64 {
        match self.play_ts {
            Some(p) => p + (ts.wrapping_sub(p as u32) as i32) as i64,
            None => ts as i64,
        }
    }

    /// Forgets everything buffered and plays `ts` after `frames_until` more frames.
    pub fn anchor(&mut self, ts: u32, frames_until: u32) {
        self.packets.clear();
        self.play_ts = Some(ts as i64 - frames_until as i64 * self.frame as i64);
        self.stretch_pending = 0;
        self.shrink_pending = false;
        self.window_min_depth = i64::MAX;
        self.window_frames = 0;
    }

    /// Frames between the next pop and the frame holding `ts` (negative: already played).
    pub fn frames_ahead(&self, ts: u32) -> i64 {
        match self.play_ts {
            Some(p) => (self.extend(ts) - p).div_euclid(self.frame as i64),
            None => 0,
        }
    }

    /// Stores a packet's decoded samples. `frames_until` is used only if the buffer (re)anchors.
    pub fn insert(&mut self, ts: u32, samples: Vec<i16>, frames_until: u32) -> Insert {
        let Some(play) = self.play_ts else {
            self.anchor(ts, frames_until);
            self.dtx = false;
            self.packets.insert(ts as i64, samples);
            return Insert::Reanchored;
        };
        let ext = self.extend(ts);
        let end = ext + samples.len() as i64;
        if (ext - play).abs() > self.jump_samples() {
            self.anchor(ts, frames_until);
            self.dtx = false;
            self.packets.insert(self.extend(ts), samples);
            return Insert::Reanchored;
        }
        if end <= play {
            // Late: grow the delay by the lateness so the next late packet fits.
            let late_frames = ((play - ext) as usize).div_ceil(self.frame) as u32;
            let room = self.max_frames.saturating_sub(self.delay_frames() + self.stretch_pending);
            self.stretch_pending += late_frames.min(room);
            return Insert::Late;
        }
        if self.packets.contains_key(&ext) {
            return Insert::Duplicate;
        }
        if self.packets.len() >= MAX_PACKETS {
            return Insert::Overflow;
        }
        self.dtx = false;
        self.packets.insert(ext, samples);
        Insert::Stored
    }

    /// Comfort noise / DTX started: missing audio is silence now, not loss.
    pub fn mark_dtx(&mut self) {
        self.dtx = true;
    }

    fn buffered_end(&self) -> Option<i64> {
        self.packets.iter().map(|(k, v)| k + v.len() as i64).max()
    }

    /// Produces the next frame into `out` (resized to one frame).
    pub fn pop_frame(&mut self, out: &mut Vec<i16>) -> FrameKind {
        out.clear();
        out.resize(self.frame, 0);
        let Some(play) = self.play_ts else { return FrameKind::Silence };
        if self.stretch_pending > 0 {
            // Add one frame of delay: emit a fill frame without advancing the timeline.
            self.stretch_pending -= 1;
            self.extra_frames += 1;
            return self.conceal(out, &[false; 0]);
        }
        let mut kind = self.extract(play, out);
        let mut next = play + self.frame as i64;
        if self.shrink_pending && self.extra_frames > 0 && kind == FrameKind::Audio && rms(out) < 300.0 {
            // Drop this quiet frame to take one frame of delay back out.
            self.shrink_pending = false;
            self.extra_frames -= 1;
            kind = self.extract(next, out);
            next += self.frame as i64;
        }
        self.play_ts = Some(next);
        self.packets.retain(|k, v| k + v.len() as i64 > next);
        self.track_depth(next);
        kind
    }

    fn extract(&mut self, start: i64, out: &mut [i16]) -> FrameKind {
        let frame = self.frame as i64;
        let mut filled = vec![false; self.frame];
        let mut count = 0;
        for (&k, v) in self.packets.range(start - self.jump_samples()..start + frame) {
            let from = k.max(start);
            let to = (k + v.len() as i64).min(start + frame);
            for t in from..to {
                let i = (t - start) as usize;
                if !filled[i] {
                    filled[i] = true;
                    count += 1;
                }
                out[i] = v[(t - k) as usize];
            }
        }
        if count == self.frame {
            self.last_good.copy_from_slice(out);
            self.conceal_run = 0;
            return FrameKind::Audio;
        }
        self.conceal(out, &filled)
    }

    /// Fills the samples not marked in `filled` (all of them if `filled` is empty).
    fn conceal(&mut self, out: &mut [i16], filled: &[bool]) -> FrameKind {
        let missing = |i: usize| filled.get(i) != Some(&true);
        if self.dtx || self.conceal_run >= CONCEAL_GAINS.len() {
            for (i, s) in out.iter_mut().enumerate() {
                if missing(i) {
                    *s = 0;
                }
            }
            return if filled.iter().any(|f| *f) { FrameKind::Concealed } else { FrameKind::Silence };
        }
        let start_gain = if self.conceal_run == 0 { 1.0 } else { CONCEAL_GAINS[self.conceal_run - 1] };
        let end_gain = CONCEAL_GAINS[self.conceal_run];
        let n = out.len().max(1) as f32;
        for (i, s) in out.iter_mut().enumerate() {
            if missing(i) {
                // Linear fade across the frame so consecutive concealed frames join smoothly.
                let g = start_gain + (end_gain - start_gain) * (i as f32 / n);
                *s = (self.last_good[i] as f32 * g) as i16;
            }
        }
        self.conceal_run += 1;
        FrameKind::Concealed
    }

    fn track_depth(&mut self, next: i64) {
        let depth = self.buffered_end().map_or(0, |e| e - next);
        self.window_min_depth = self.window_min_depth.min(depth);
        self.window_frames += 1;
        if self.window_frames >= SHRINK_WINDOW {
            // With a delay of D frames and no jitter the buffer never gets shallower than D − 1
            // frames. If even the shallowest moment of the window stayed deeper than the target
            // alone would give, the extra delay is not needed any more.
            let spare = (self.target_frames as i64 - 1).max(0) * self.frame as i64;
            if self.extra_frames > 0 && self.window_min_depth > spare {
                self.shrink_pending = true;
            }
            self.window_min_depth = i64::MAX;
            self.window_frames = 0;
        }
    }
}

fn rms(s: &[i16]) -> f32 {
    if s.is_empty() {
        return 0.0;
    }
    (s.iter().map(|&x| (x as f32) * (x as f32)).sum::<f32>() / s.len() as f32).sqrt()
}
