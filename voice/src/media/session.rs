//! The sans-IO RTP media session: one call's audio in both directions, fed datagrams and time.
//!
//! Outbound: 16 kHz PCM from TTS is resampled to 8 kHz for G.711 (G.722 takes it as is), encoded
//! and paced at exactly one packet per ptime on the injected clock (tick `k` is due at
//! `start + k × ptime`, so there is no drift). Timestamps advance with ticks even while nothing is
//! sent, always in 8 kHz units (G.722 too, RFC 3551 §4.5.2). Inbound: packets go through the jitter
//! buffer and come out as exactly one 20 ms, 16 kHz frame per 20 ms once the stream has started.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rtp_rs::{RtpPacketBuilder, RtpReader, Seq};

use super::dtmf::DtmfReceiver;
use super::codec::{Codec, Decoder, Encoder};
use super::jitter::{FrameKind, Insert, JitterBuffer};
use super::resample::Resampler;
use super::rtcp::{self, ReportBlock, SenderInfo};

/// Payload type of RFC 3389 comfort noise.
pub const PT_COMFORT_NOISE: u8 = 13;
/// RTP clock rate of every codec we speak (G.722 included).
const CLOCK: u32 = super::codec::RTP_CLOCK;
/// Inbound frames are always 20 ms, whatever ptime the peer uses.
const FRAME_MS: u32 = 20;
/// Largest payload accepted (200 ms of G.711 or G.722); larger packets are ignored.
const MAX_PAYLOAD: usize = 1600;
/// A new SSRC takes over at once if the current one has been quiet this long...
const SSRC_QUIET_SWITCH: Duration = Duration::from_millis(100);
/// ...or after this many consecutive packets while the old one is still sending.
const SSRC_SWITCH_PACKETS: u32 = 3;
/// More than this many overdue ticks means the caller of `poll_transmit` stalled: skip ahead.
const MAX_CATCH_UP_TICKS: u64 = 5;

/// What to send while there is no audio queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleTransmit {
    /// Send nothing (timestamps still advance).
    Nothing,
    /// Keep sending encoded silence every ptime (for peers or NATs that want a steady stream).
    Silence,
    /// One RFC 3389 comfort-noise packet when silence starts, then one per second as keep-alive.
    ComfortNoise,
}

/// Per-call media settings, from the SDP answer.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    pub codec: Codec,
    pub payload_type: u8,
    pub dtmf_payload_type: Option<u8>,
    /// Outbound packet duration (10–60 ms; 20 is the norm).
    pub ptime_ms: u32,
    /// No RTP at all for this long ends the call (comfort noise counts as RTP).
    pub inactivity_timeout: Duration,
    /// Initial playout delay of the jitter buffer.
    pub jitter_target: Duration,
    /// The jitter buffer grows up to this delay when packets come late.
    pub jitter_max: Duration,
    pub idle_transmit: IdleTransmit,
    /// RTCP report interval; `None` disables RTCP generation.
    pub rtcp_interval: Option<Duration>,
    /// RTCP CNAME (no PHI: use the appliance host name).
    pub cname: String,
    /// Wall-clock time at session creation, for SR NTP timestamps. `None`: NTP counts from zero.
    pub wallclock_at_start: Option<SystemTime>,
    /// Codecs to accept in SDP offers, most preferred first, for the SIP layer's
    /// `sdp::negotiate_with` (the session itself only uses `codec`).
    pub codec_preference: Vec<Codec>,
}

impl MediaConfig {
    /// PCMU (PT 0) with telephone-events on PT 101 and usual defaults.
    pub fn pcmu() -> Self {
        Self {
            codec: Codec::Pcmu,
            payload_type: 0,
            dtmf_payload_type: Some(101),
            ptime_ms: 20,
            inactivity_timeout: Duration::from_secs(30),
            // A LAN call's packets arrive within a millisecond or two of their slot (measured:
            // 1 ms jitter in every end-to-end call, 4 at once included); a late packet grows the
            // delay by a frame at a time, up to `jitter_max`. Every millisecond here is added to
            // every reply.
            jitter_target: Duration::from_millis(20),
            jitter_max: Duration::from_millis(200),
            idle_transmit: IdleTransmit::Nothing,
            rtcp_interval: Some(Duration::from_secs(5)),
            cname: "frontdesk".to_string(),
            wallclock_at_start: None,
            codec_preference: Codec::DEFAULT_PREFERENCE.to_vec(),
        }
    }

    /// PCMA (PT 8), otherwise as [`MediaConfig::pcmu`].
    pub fn pcma() -> Self {
        Self { codec: Codec::Pcma, payload_type: 8, ..Self::pcmu() }
    }

    /// G.722 (PT 9, 16 kHz audio, 8 kHz RTP clock), otherwise as [`MediaConfig::pcmu`].
    pub fn g722() -> Self {
        Self { codec: Codec::G722, payload_type: 9, ..Self::pcmu() }
    }

    /// The settings for `codec` on its static payload type, otherwise as [`MediaConfig::pcmu`].
    pub fn for_codec(codec: Codec) -> Self {
        Self { codec, payload_type: codec.static_payload_type(), ..Self::pcmu() }
    }
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self::pcmu()
    }
}

/// What the session reports to its owner.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaEvent {
    /// 20 ms of caller audio, 16 kHz mono (320 samples).
    Audio(Vec<i16>),
    /// One key press (RFC 4733).
    Dtmf { digit: char, duration: Duration },
    /// No RTP for `inactivity_timeout`: the far end is gone. Reported once.
    InactivityTimeout,
    /// The outbound queue ran dry: every queued sample has been sent (also after a `flush`, and
    /// when streamed TTS audio arrives too late to follow on). Drives `TurnTaker::bot_finished`.
    PlaybackFinished,
}

/// Where a datagram goes: the RTP port, or the RTCP port (the same one if rtcp-mux was negotiated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Rtp,
    Rtcp,
}

/// One datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub channel: Channel,
    pub datagram: Vec<u8>,
}

/// Counters for monitoring (no payload data, no PHI).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MediaStats {
    pub packets_sent: u64,
    pub octets_sent: u64,
    pub packets_received: u64,
    /// RFC 3550 cumulative loss (expected − received) of the current inbound stream.
    pub lost: i64,
    /// Arrived after their playout time: dropped.
    pub late: u64,
    pub duplicates: u64,
    /// Malformed RTP, unknown payload types, foreign SSRC while locked.
    pub ignored: u64,
    /// RFC 3550 interarrival jitter.
    pub jitter: Duration,
    pub concealed_frames: u64,
    /// 20 ms frames delivered as `MediaEvent::Audio`.
    pub played_out: u64,
    pub ssrc_changes: u64,
    pub dtmf_presses: u64,
    pub rtcp_sent: u64,
    pub rtcp_received: u64,
    /// Current playout delay of the jitter buffer.
    pub playout_delay: Duration,
    /// Mean time from a packet's arrival to the playout of its first sample.
    pub mean_buffer_delay: Duration,
    /// From the peer's reception reports.
    pub remote_fraction_lost: Option<f32>,
    pub rtt: Option<Duration>,
}

#[derive(Debug, Default)]
struct SeqStats {
    base: i64,
    max: i64,
    received: i64,
    /// Bit i set: sequence `max - i` arrived.
    window: u128,
    expected_prior: i64,
    received_prior: i64,
    transit: Option<i64>,
    jitter: f64,
}

impl SeqStats {
    fn new(seq: u16) -> Self {
        Self { base: seq as i64, max: seq as i64 - 1, ..Default::default() }
    }

    /// Records a sequence number; false if it is a duplicate.
    fn record(&mut self, seq: u16) -> bool {
        let ext = self.max + (seq.wrapping_sub(self.max as u16) as i16) as i64;
        if ext > self.max {
            let shift = (ext - self.max) as u32;
            self.window = if shift >= 128 { 0 } else { self.window << shift };
            self.window |= 1;
            self.max = ext;
        } else {
            let offset = (self.max - ext) as u32;
            if offset < 128 {
                if self.window & (1 << offset) != 0 {
                    return false;
                }
                self.window |= 1 << offset;
            }
        }
        self.received += 1;
        true
    }

    fn expected(&self) -> i64 {
        self.max - self.base + 1
    }

    fn lost(&self) -> i64 {
        self.expected() - self.received
    }

    /// RFC 3550 A.8 interarrival jitter, in timestamp units.
    fn update_jitter(&mut self, arrival_ts: i64, rtp_ts: u32) {
        let transit = arrival_ts - rtp_ts as i64;
        if let Some(prev) = self.transit {
            // Unwrap across the 32-bit timestamp wrap.
            let d = ((transit - prev) as i32 as i64).abs();
            self.jitter += (d as f64 - self.jitter) / 16.0;
        }
        self.transit = Some(transit);
    }
}

#[derive(Debug)]
struct Inbound {
    ssrc: Option<u32>,
    last_packet_at: Option<Instant>,
    candidate: Option<(u32, u32)>,
    seq: SeqStats,
    jitter: JitterBuffer,
    next_playout: Option<Instant>,
    /// Stream decoder of the negotiated codec (G.722 keeps state across packets).
    decoder: Decoder,
    /// 8 kHz codecs only: the codec's audio is upsampled to 16 kHz after the jitter buffer.
    upsampler: Option<Resampler>,
    /// One 20 ms frame at the codec's sample rate.
    frame: Vec<i16>,
    /// Jitter-buffer positions are sample indices at the codec's rate: RTP timestamp × this.
    ts_scale: u32,
    delay_sum: Duration,
    delay_count: u32,
    last_sr: Option<(u32, Instant)>,
}

/// The sans-IO media session. See the module docs.
#[derive(Debug)]
pub struct MediaSession {
    cfg: MediaConfig,
    ssrc: u32,
    start: Instant,
    ptime: Duration,
    /// RTP timestamp units per packet.
    samples_per_packet: usize,
    /// PCM samples (at the codec's rate) per packet.
    pcm_per_packet: usize,
    encoder: Encoder,
    // outbound
    /// 16 kHz audio not yet resampled: `play` only copies, the resampling happens 20 ms at a time
    /// as packets go out, so a long sentence costs nothing up front and a flush discards it cheaply.
    input: VecDeque<i16>,
    scratch: Vec<i16>,
    /// The resampler holds the last few ms of the audio (its group delay) until flushed out.
    tail_pending: bool,
    /// Samples at the codec's rate ready for the next packets.
    queue: VecDeque<i16>,
    /// 8 kHz codecs only (G.722 carries the 16 kHz input as it is).
    downsampler: Option<Resampler>,
    resampled: Vec<i16>,
    tick: u64,
    /// The send grid: tick `k` is due at `grid_start + k × ptime` and carries timestamp
    /// `grid_ts + k × samples_per_packet`. Re-based (to "now", with the timestamp advanced by the
    /// elapsed time) when a talkspurt starts after a gap, so the first packet leaves at once.
    grid_start: Instant,
    ts_base: u32,
    seq: Seq,
    talking: bool,
    sent_any: bool,
    /// Tick of the last RTP packet sent: a packet after a gap carries the marker bit.
    last_sent_tick: Option<u64>,
    idle_ticks: u64,
    sent_since_report: bool,
    pending: VecDeque<Transmit>,
    sr_sent: VecDeque<(u32, Instant)>,
    next_rtcp: Option<Instant>,
    // inbound
    rx: Inbound,
    dtmf: DtmfReceiver,
    last_activity: Instant,
    inactivity_fired: bool,
    events: VecDeque<MediaEvent>,
    stats: MediaStats,
}

fn frames_of(d: Duration) -> u32 {
    (d.as_millis() as u32).div_ceil(FRAME_MS)
}

impl MediaSession {
    /// A new session. `ssrc` should be random per call (the driver picks one).
    pub fn new(cfg: MediaConfig, ssrc: u32, now: Instant) -> Self {
        let ptime_ms = cfg.ptime_ms.clamp(10, 60);
        let rate = cfg.codec.sample_rate();
        let frame = (rate * FRAME_MS / 1000) as usize;
        let jitter = JitterBuffer::new(frame, frames_of(cfg.jitter_target), frames_of(cfg.jitter_max));
        let wideband = rate == 16_000;
        // Initial sequence number and timestamp are derived from the SSRC (already random), which
        // keeps the core free of a random source and tests reproducible.
        let mix = ssrc.wrapping_mul(0x9E37_79B9).rotate_left(13);
        let next_rtcp = cfg.rtcp_interval.map(|i| now + i);
        Self {
            ptime: Duration::from_millis(ptime_ms as u64),
            samples_per_packet: (CLOCK * ptime_ms / 1000) as usize,
            pcm_per_packet: (rate * ptime_ms / 1000) as usize,
            encoder: Encoder::new(cfg.codec),
            input: VecDeque::new(),
            scratch: Vec::new(),
            tail_pending: false,
            queue: VecDeque::new(),
            downsampler: (!wideband).then(|| Resampler::new(16_000, rate).expect("constant non-zero rates")),
            resampled: Vec::new(),
            tick: 0,
            ts_base: mix,
            grid_start: now,
            seq: Seq::from((mix >> 16) as u16 & 0x7FFF),
            talking: false,
            sent_any: false,
            last_sent_tick: None,
            idle_ticks: 0,
            sent_since_report: false,
            pending: VecDeque::new(),
            sr_sent: VecDeque::new(),
            next_rtcp,
            rx: Inbound {
                ssrc: None,
                last_packet_at: None,
                candidate: None,
                seq: SeqStats::default(),
                jitter,
                next_playout: None,
                decoder: Decoder::new(cfg.codec),
                upsampler: (!wideband).then(|| Resampler::new(rate, 16_000).expect("constant non-zero rates")),
                frame: Vec::with_capacity(frame),
                ts_scale: rate / CLOCK,
                delay_sum: Duration::ZERO,
                delay_count: 0,
                last_sr: None,
            },
            dtmf: DtmfReceiver::new(CLOCK),
            last_activity: now,
            inactivity_fired: false,
            events: VecDeque::new(),
            stats: MediaStats::default(),
            cfg,
            ssrc,
            start: now,
        }
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    pub fn config(&self) -> &MediaConfig {
        &self.cfg
    }

    // ---------------------------------------------------------------- inbound

    /// Feeds one datagram from the RTP port. RTCP arriving there (rtcp-mux) is handled as RTCP.
    /// Malformed packets, unknown payload types and stray streams are counted and ignored.
    pub fn handle_rtp(&mut self, now: Instant, datagram: &[u8]) {
        if rtcp::looks_like_rtcp(datagram) {
            self.handle_rtcp(now, datagram);
            return;
        }
        let Ok(pkt) = RtpReader::new(datagram) else {
            self.stats.ignored += 1;
            return;
        };
        let pt = pkt.payload_type();
        let payload = pkt.payload();
        if Some(pt) == self.cfg.dtmf_payload_type {
            // Some gateways send events from a different SSRC than the audio: accept any.
            self.note_activity(now);
            let presses = self.dtmf.handle(now, pkt.sequence_number().into(), pkt.timestamp(), payload);
            for p in presses {
                self.stats.dtmf_presses += 1;
                self.events.push_back(MediaEvent::Dtmf { digit: p.digit, duration: p.duration });
            }
            return;
        }
        let narrowband = self.cfg.codec.sample_rate() == 8000;
        let codec = if pt == self.cfg.payload_type {
            Some(self.cfg.codec)
        } else {
            // A peer switching between the static G.711 laws mid-call. Not into or out of G.722:
            // the timeline runs at one sample rate, and switching is not seen in practice.
            match pt {
                0 if narrowband => Some(Codec::Pcmu),
                8 if narrowband => Some(Codec::Pcma),
                _ => None,
            }
        };
        if codec.is_none() && pt != PT_COMFORT_NOISE {
            self.stats.ignored += 1;
            return;
        }
        if payload.len() > MAX_PAYLOAD {
            self.stats.ignored += 1;
            return;
        }
        if !self.accept_ssrc(now, pkt.ssrc(), pkt.sequence_number().into()) {
            self.stats.ignored += 1;
            return;
        }
        self.note_activity(now);
        let seq: u16 = pkt.sequence_number().into();
        if !self.rx.seq.record(seq) {
            self.stats.duplicates += 1;
            return;
        }
        self.stats.packets_received += 1;
        let arrival_ts = (now.saturating_duration_since(self.start).as_micros() as i64) * CLOCK as i64 / 1_000_000;
        self.rx.seq.update_jitter(arrival_ts, pkt.timestamp());
        let frames_until = self.frames_until_delay(now);
        let Some(codec) = codec else {
            // Comfort noise: the peer is in a silence period; keep the timeline, play silence.
            if !self.rx.jitter.is_anchored() {
                self.rx.jitter.anchor(pkt.timestamp().wrapping_mul(self.rx.ts_scale), frames_until);
                self.start_playout(now);
            }
            self.rx.jitter.mark_dtx();
            return;
        };
        let mut samples = Vec::with_capacity(payload.len() * 2);
        if codec == self.cfg.codec {
            self.rx.decoder.decode_into(payload, &mut samples);
        } else {
            codec.decode_into(payload, &mut samples); // G.711: stateless
        }
        if samples.is_empty() {
            return;
        }
        // Scaling by 1 or 2 keeps wrap-around consistent: the buffer only looks at differences.
        let ts = pkt.timestamp().wrapping_mul(self.rx.ts_scale);
        match self.rx.jitter.insert(ts, samples, frames_until) {
            Insert::Stored | Insert::Reanchored => {
                self.start_playout(now);
                if let Some(next) = self.rx.next_playout {
                    let ahead = self.rx.jitter.frames_ahead(ts).max(0) as u32;
                    let due = next + Duration::from_millis((ahead * FRAME_MS) as u64);
                    self.rx.delay_sum += due.saturating_duration_since(now);
                    self.rx.delay_count += 1;
                }
            }
            Insert::Duplicate => self.stats.duplicates += 1,
            Insert::Late => self.stats.late += 1,
            Insert::Overflow => self.stats.ignored += 1,
        }
    }

    fn note_activity(&mut self, now: Instant) {
        self.last_activity = now;
    }

    fn start_playout(&mut self, now: Instant) {
        if self.rx.next_playout.is_none() {
            // The first frame plays one full delay after the first packet.
            self.rx.next_playout = Some(now + FRAME_MS_DUR * self.rx.jitter.delay_frames());
        }
    }

    /// Frames from the next playout instant until `now + delay`: where a re-anchored packet goes.
    fn frames_until_delay(&self, now: Instant) -> u32 {
        let delay = FRAME_MS_DUR * self.rx.jitter.delay_frames();
        match self.rx.next_playout {
            None => 0,
            Some(next) => {
                let due = now + delay;
                let ms = due.saturating_duration_since(next).as_millis() as u32;
                ms.div_ceil(FRAME_MS)
            }
        }
    }

    /// Locks onto one SSRC; switches when the old stream stopped or the new one persists.
    fn accept_ssrc(&mut self, now: Instant, ssrc: u32, seq: u16) -> bool {
        match self.rx.ssrc {
            Some(cur) if cur == ssrc => {
                self.rx.candidate = None;
                self.rx.last_packet_at = Some(now);
                true
            }
            Some(_) => {
                let quiet = !matches!(self.rx.last_packet_at, Some(t) if now.saturating_duration_since(t) < SSRC_QUIET_SWITCH);
                let count = match self.rx.candidate {
                    Some((c, n)) if c == ssrc => n + 1,
                    _ => 1,
                };
                self.rx.candidate = Some((ssrc, count));
                if quiet || count >= SSRC_SWITCH_PACKETS {
                    self.stats.ssrc_changes += 1;
                    self.lock_ssrc(now, ssrc, seq);
                    // A fresh buffer: the next insert anchors it on the new stream's timeline.
                    let frame = (self.cfg.codec.sample_rate() * FRAME_MS / 1000) as usize;
                    self.rx.jitter = JitterBuffer::new(frame, frames_of(self.cfg.jitter_target), frames_of(self.cfg.jitter_max));
                    // The new stream's ADPCM state starts from scratch (a new encoder).
                    self.rx.decoder = Decoder::new(self.cfg.codec);
                    true
                } else {
                    false
                }
            }
            None => {
                self.lock_ssrc(now, ssrc, seq);
                true
            }
        }
    }

    fn lock_ssrc(&mut self, now: Instant, ssrc: u32, seq: u16) {
        self.rx.ssrc = Some(ssrc);
        self.rx.candidate = None;
        self.rx.last_packet_at = Some(now);
        self.rx.seq = SeqStats::new(seq);
        self.rx.last_sr = None;
    }

    /// Feeds one RTCP datagram. Malformed RTCP is ignored.
    pub fn handle_rtcp(&mut self, now: Instant, datagram: &[u8]) {
        let summary = rtcp::parse(datagram);
        self.stats.rtcp_received += 1;
        if let Some((ssrc, info)) = summary.sender_report {
            if Some(ssrc) == self.rx.ssrc || self.rx.ssrc.is_none() {
                self.rx.last_sr = Some(((info.ntp >> 16) as u32, now));
            }
        }
        for block in summary.reports.iter().filter(|b| b.ssrc == self.ssrc) {
            self.stats.remote_fraction_lost = Some(block.fraction_lost as f32 / 256.0);
            if block.last_sr != 0 {
                if let Some(&(_, sent_at)) = self.sr_sent.iter().find(|(mid, _)| *mid == block.last_sr) {
                    let dlsr = Duration::from_micros(block.delay_since_last_sr as u64 * 1_000_000 / 65536);
                    self.stats.rtt = Some(now.saturating_duration_since(sent_at).saturating_sub(dlsr));
                }
            }
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    // ---------------------------------------------------------------- outbound

    /// Queues 16 kHz mono audio for sending (any length; appended to what is queued).
    pub fn play(&mut self, pcm16k: &[i16]) {
        self.input.extend(pcm16k.iter().copied());
    }

    fn has_audio(&self) -> bool {
        !self.queue.is_empty() || !self.input.is_empty()
    }

    /// Resamples queued input until `needed` samples at the codec's rate are ready or the input
    /// is exhausted.
    fn refill(&mut self, needed: usize) {
        let Some(downsampler) = self.downsampler.as_mut() else {
            // Wideband: the 16 kHz input is the codec's input.
            let n = self.input.len().min(needed.saturating_sub(self.queue.len()));
            self.queue.extend(self.input.drain(..n));
            return;
        };
        while self.queue.len() < needed && !self.input.is_empty() {
            let n = self.input.len().min(640);
            self.scratch.clear();
            self.scratch.extend(self.input.drain(..n));
            self.resampled.clear();
            downsampler.process(&self.scratch, &mut self.resampled);
            self.queue.extend(self.resampled.iter().copied());
            self.tail_pending = true;
        }
        if self.queue.len() < needed && self.input.is_empty() && self.tail_pending {
            // End of the audio: push the resampler's delayed tail out (zeros in, last samples out).
            self.resampled.clear();
            downsampler.process(&[0; 64], &mut self.resampled);
            downsampler.reset();
            self.tail_pending = false;
            let delay = downsampler.delay_samples().min(self.resampled.len());
            self.queue.extend(self.resampled[..delay].iter().copied());
        }
    }

    /// Barge-in: drops everything queued. The next packet due carries no old audio.
    pub fn flush(&mut self) {
        self.input.clear();
        self.queue.clear();
        if let Some(d) = self.downsampler.as_mut() {
            d.reset();
        }
        self.tail_pending = false;
    }

    pub fn is_playing(&self) -> bool {
        self.has_audio()
    }

    /// Audio queued and not yet sent.
    pub fn queued(&self) -> Duration {
        let rate = self.cfg.codec.sample_rate() as u64;
        Duration::from_micros(self.queue.len() as u64 * 1_000_000 / rate + self.input.len() as u64 * 1_000_000 / 16_000)
    }

    fn tick_time(&self, tick: u64) -> Instant {
        self.grid_start + self.ptime * tick as u32
    }

    /// The RTP timestamp for `now` on the current grid.
    fn ts_at(&self, now: Instant) -> u32 {
        let elapsed = now.saturating_duration_since(self.grid_start).as_micros() as u64 * CLOCK as u64 / 1_000_000;
        self.ts_base.wrapping_add(elapsed as u32)
    }

    fn rebase(&mut self, now: Instant) {
        self.ts_base = self.ts_at(now);
        self.grid_start = now;
        self.tick = 0;
        self.last_sent_tick = None;
        self.talking = false;
    }

    /// Whether `tick` directly follows the last tick that sent a packet (no gap: no marker bit).
    fn follows_last_sent(&self, tick: u64) -> bool {
        matches!(self.last_sent_tick, Some(t) if t + 1 == tick)
    }

    /// A talkspurt is waiting to start after a gap in sending.
    fn spurt_waiting(&self) -> bool {
        !self.talking && self.has_audio() && !self.follows_last_sent(self.tick)
    }

    /// The next datagram due at `now`, if any. Call until `None`.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        if let Some(t) = self.pending.pop_front() {
            return Some(t);
        }
        if self.spurt_waiting() || now > self.tick_time(self.tick + MAX_CATCH_UP_TICKS) {
            // A talkspurt after silence leaves at once (the timestamp advances by the real gap, as a
            // receiver expects after silence); a stalled caller skips ahead instead of bursting.
            self.rebase(now);
        }
        while self.tick_time(self.tick) <= now {
            let tick = self.tick;
            self.tick += 1;
            if let Some(t) = self.build_tick(tick) {
                return Some(t);
            }
        }
        None
    }

    fn build_tick(&mut self, tick: u64) -> Option<Transmit> {
        let spp = self.samples_per_packet;
        let ts = self.ts_base.wrapping_add((tick as u32).wrapping_mul(spp as u32));
        let n = self.pcm_per_packet;
        self.refill(n);
        if !self.queue.is_empty() {
            // A short last packet is padded with silence.
            let mut pcm = Vec::with_capacity(n);
            pcm.extend(self.queue.drain(..n.min(self.queue.len())));
            pcm.resize(n, 0);
            let mut payload = Vec::with_capacity(spp);
            self.encoder.encode_into(&pcm, &mut payload);
            let marker = !self.follows_last_sent(tick);
            self.talking = true;
            self.idle_ticks = 0;
            self.last_sent_tick = Some(tick);
            return Some(self.rtp(self.cfg.payload_type, marker, ts, &payload));
        }
        let first_idle = self.talking || !self.sent_any;
        if self.talking {
            self.events.push_back(MediaEvent::PlaybackFinished);
        }
        self.talking = false;
        self.idle_ticks += 1;
        match self.cfg.idle_transmit {
            IdleTransmit::Nothing => None,
            IdleTransmit::Silence => {
                // Encoded zeros: the G.711 silence byte, and for G.722 whatever its state makes of them.
                let mut payload = Vec::with_capacity(spp);
                self.encoder.encode_into(&vec![0; n], &mut payload);
                let marker = !self.follows_last_sent(tick);
                self.last_sent_tick = Some(tick);
                Some(self.rtp(self.cfg.payload_type, marker, ts, &payload))
            }
            IdleTransmit::ComfortNoise => {
                let keepalive = (1000 / self.ptime.as_millis().max(1)) as u64;
                if first_idle || self.idle_ticks >= keepalive {
                    self.idle_ticks = 0;
                    // Noise level 70 -dBov: near silence.
                    self.last_sent_tick = Some(tick);
                    Some(self.rtp(PT_COMFORT_NOISE, false, ts, &[70]))
                } else {
                    None
                }
            }
        }
    }

    fn rtp(&mut self, pt: u8, marker: bool, ts: u32, payload: &[u8]) -> Transmit {
        let datagram = RtpPacketBuilder::new()
            .payload_type(pt & 0x7F)
            .marked(marker)
            .sequence(self.seq)
            .ssrc(self.ssrc)
            .timestamp(ts)
            .payload(payload)
            .build()
            .unwrap_or_default();
        self.seq = self.seq.next();
        self.sent_any = true;
        self.sent_since_report = true;
        self.stats.packets_sent += 1;
        self.stats.octets_sent += payload.len() as u64;
        Transmit { channel: Channel::Rtp, datagram }
    }

    // ---------------------------------------------------------------- time

    /// When `handle_timeout` / `poll_transmit` must run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut consider = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        let tx_needed = self.has_audio() || self.talking || self.cfg.idle_transmit != IdleTransmit::Nothing;
        if !self.pending.is_empty() {
            consider(Some(self.start));
        }
        if self.spurt_waiting() {
            consider(Some(self.grid_start)); // already due
        } else if tx_needed {
            consider(Some(self.tick_time(self.tick)));
        }
        consider(self.rx.next_playout);
        consider(self.next_rtcp);
        consider(self.dtmf.poll_timeout());
        if !self.inactivity_fired {
            consider(self.inactivity_deadline());
        }
        t
    }

    /// `None` if the configured timeout is too large to represent (i.e. never).
    fn inactivity_deadline(&self) -> Option<Instant> {
        self.last_activity.checked_add(self.cfg.inactivity_timeout)
    }

    /// Advances playout, DTMF, RTCP and inactivity timers to `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.playout(now);
        if let Some(p) = self.dtmf.handle_timeout(now) {
            self.stats.dtmf_presses += 1;
            self.events.push_back(MediaEvent::Dtmf { digit: p.digit, duration: p.duration });
        }
        if !self.inactivity_fired && self.inactivity_deadline().is_some_and(|d| now >= d) {
            self.inactivity_fired = true;
            self.events.push_back(MediaEvent::InactivityTimeout);
        }
        if let (Some(due), Some(interval)) = (self.next_rtcp, self.cfg.rtcp_interval) {
            if now >= due {
                let report = self.build_rtcp(now);
                self.pending.push_back(Transmit { channel: Channel::Rtcp, datagram: report });
                self.next_rtcp = Some(now + interval);
            }
        }
    }

    fn playout(&mut self, now: Instant) {
        let Some(mut next) = self.rx.next_playout else { return };
        let mut produced = 0;
        while next <= now {
            if produced >= 10 {
                // The owner stalled for over 200 ms: resynchronise the frame clock instead of bursting.
                next = now + FRAME_MS_DUR;
                break;
            }
            let kind = self.rx.jitter.pop_frame(&mut self.rx.frame);
            if kind == FrameKind::Concealed {
                self.stats.concealed_frames += 1;
            }
            let frame = match self.rx.upsampler.as_mut() {
                Some(up) => {
                    let mut f = Vec::with_capacity(self.rx.frame.len() * 2);
                    up.process(&self.rx.frame, &mut f);
                    f
                }
                None => self.rx.frame.clone(),
            };
            self.stats.played_out += 1;
            self.events.push_back(MediaEvent::Audio(frame));
            next += FRAME_MS_DUR;
            produced += 1;
        }
        self.rx.next_playout = Some(next);
    }

    fn ntp_at(&self, now: Instant) -> u64 {
        let base = self.cfg.wallclock_at_start.and_then(|w| w.duration_since(UNIX_EPOCH).ok()).map(|d| d + Duration::from_secs(2_208_988_800));
        let t = base.unwrap_or_default() + now.saturating_duration_since(self.start);
        (t.as_secs() << 32) | (((t.subsec_nanos() as u64) << 32) / 1_000_000_000)
    }

    fn build_rtcp(&mut self, now: Instant) -> Vec<u8> {
        self.stats.rtcp_sent += 1;
        let sender = if self.sent_since_report {
            let ntp = self.ntp_at(now);
            self.sr_sent.push_back(((ntp >> 16) as u32, now));
            if self.sr_sent.len() > 4 {
                self.sr_sent.pop_front();
            }
            let rtp_ts = self.ts_at(now);
            Some(SenderInfo { ntp, rtp_timestamp: rtp_ts, packet_count: self.stats.packets_sent as u32, octet_count: self.stats.octets_sent as u32 })
        } else {
            None
        };
        self.sent_since_report = false;
        let block = self.rx.ssrc.map(|ssrc| {
            let s = &mut self.rx.seq;
            let expected = s.expected();
            let interval_expected = expected - s.expected_prior;
            let interval_received = s.received - s.received_prior;
            s.expected_prior = expected;
            s.received_prior = s.received;
            let interval_lost = interval_expected - interval_received;
            let fraction_lost = if interval_expected > 0 && interval_lost > 0 { ((interval_lost << 8) / interval_expected).min(255) as u8 } else { 0 };
            let (last_sr, delay_since_last_sr) = match self.rx.last_sr {
                Some((mid, at)) => (mid, (now.saturating_duration_since(at).as_micros() as u64 * 65536 / 1_000_000) as u32),
                None => (0, 0),
            };
            ReportBlock { ssrc, fraction_lost, cumulative_lost: s.lost() as i32, highest_seq: s.max as u32, jitter: s.jitter as u32, last_sr, delay_since_last_sr }
        });
        rtcp::build_compound(self.ssrc, sender, block, &self.cfg.cname)
    }

    /// Counters so far.
    pub fn stats(&self) -> MediaStats {
        let mut s = self.stats.clone();
        if self.rx.ssrc.is_some() {
            s.lost = self.rx.seq.lost().max(0);
            s.jitter = Duration::from_micros((self.rx.seq.jitter * 1_000_000.0 / CLOCK as f64) as u64);
        }
        s.playout_delay = FRAME_MS_DUR * self.rx.jitter.delay_frames();
        if self.rx.delay_count > 0 {
            s.mean_buffer_delay = self.rx.delay_sum / self.rx.delay_count;
        }
        s
    }
}

const FRAME_MS_DUR: Duration = Duration::from_millis(FRAME_MS as u64);
