//! RTP classification of captured datagrams and the turn/latency analysis (pure: no I/O,
//! no clock; fed packets with their capture times).

use std::collections::HashMap;

use fd_voice::media::{Codec, Decoder};

use crate::audio::{alaw_to_linear, rms, ulaw_to_linear, Wav};
use crate::pcap::Datagram;

/// Direction relative to the scripted caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Caller → far end (the appliance).
    Sent,
    /// Far end → caller.
    Received,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// Audio decoded to linear samples at 8 kHz: G.711 as is, G.722 (PT 9) decoded at 16 kHz
    /// and decimated, so levels, turns and `direction_wav` work the same for every codec.
    Audio(Vec<i16>),
    /// RFC 4733 telephone-event.
    Dtmf { event: u8, end: bool, duration: u16 },
    /// Comfort noise or a payload type we do not decode.
    Other,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RtpPacket {
    pub ts_us: i64,
    pub dir: Direction,
    pub payload_type: u8,
    pub marker: bool,
    pub seq: u16,
    /// RTP media timestamp (8 kHz units for G.711 and, by RFC 3551, for G.722 too).
    pub rtp_ts: u32,
    pub ssrc: u32,
    pub payload: Payload,
}

impl RtpPacket {
    pub fn rms(&self) -> f64 {
        match &self.payload {
            Payload::Audio(s) => rms(s),
            _ => 0.0,
        }
    }
}

/// Turns UDP datagrams of one call into RTP packets. `caller_rtp` is the caller's RTP
/// port range (inclusive): datagrams from it are `Sent`, to it `Received`. RTCP (which
/// shares the range on odd ports) and anything else are dropped. Dynamic payload types
/// with a 4-byte payload are treated as telephone-events (baresip and the appliance
/// both offer 101; the SDP is not parsed). For a capture that arrives in pieces, keep one
/// [`Classifier`] instead: G.722 decoding carries state from packet to packet.
pub fn classify(datagrams: &[Datagram], caller_rtp: (u16, u16)) -> Vec<RtpPacket> {
    Classifier::new(caller_rtp).classify(datagrams)
}

/// [`classify`] with state: one G.722 decoder per stream (direction and SSRC), because
/// ADPCM decodes each packet relative to the ones before it.
pub struct Classifier {
    caller_rtp: (u16, u16),
    g722: HashMap<(bool, u32), Decoder>,
}

impl Classifier {
    pub fn new(caller_rtp: (u16, u16)) -> Self {
        Self { caller_rtp, g722: HashMap::new() }
    }

    pub fn classify(&mut self, datagrams: &[Datagram]) -> Vec<RtpPacket> {
        let (lo, hi) = self.caller_rtp;
        let inr = |p: u16| p >= lo && p <= hi;
        datagrams
            .iter()
            .filter_map(|d| {
                let dir = match (inr(d.src.1), inr(d.dst.1)) {
                    (true, false) => Direction::Sent,
                    (false, true) => Direction::Received,
                    _ => return None,
                };
                parse_rtp(d, dir, &mut self.g722)
            })
            .collect()
    }
}

/// G.722 payload → 8 kHz samples (decoded at 16 kHz; pairs averaged, a crude but adequate
/// low-pass for level detection and envelope comparison).
fn decode_g722(decoder: &mut Decoder, body: &[u8]) -> Vec<i16> {
    let mut wide = Vec::with_capacity(body.len() * 2);
    decoder.decode_into(body, &mut wide);
    wide.chunks(2).map(|p| ((p[0] as i32 + *p.get(1).unwrap_or(&p[0]) as i32) / 2) as i16).collect()
}

fn parse_rtp(d: &Datagram, dir: Direction, g722: &mut HashMap<(bool, u32), Decoder>) -> Option<RtpPacket> {
    let b = &d.payload;
    if b.len() < 12 || b[0] >> 6 != 2 {
        return None;
    }
    let pt = b[1] & 0x7f;
    if (72..=76).contains(&pt) {
        return None; // RTCP SR/RR/SDES/BYE/APP
    }
    let cc = usize::from(b[0] & 0x0f);
    let mut off = 12 + 4 * cc;
    if b[0] & 0x10 != 0 {
        let ext = b.get(off + 2..off + 4)?;
        off += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
    }
    let mut body = b.get(off..)?;
    if b[0] & 0x20 != 0 {
        let pad = usize::from(*body.last()?);
        body = body.get(..body.len().checked_sub(pad)?)?;
    }
    let payload = match pt {
        0 => Payload::Audio(body.iter().map(|&x| ulaw_to_linear(x)).collect()),
        8 => Payload::Audio(body.iter().map(|&x| alaw_to_linear(x)).collect()),
        9 => {
            let ssrc = u32::from_be_bytes([b[8], b[9], b[10], b[11]]);
            let dec = g722.entry((dir == Direction::Sent, ssrc)).or_insert_with(|| Decoder::new(Codec::G722));
            Payload::Audio(decode_g722(dec, body))
        }
        96..=127 if body.len() == 4 => Payload::Dtmf {
            event: body[0],
            end: body[1] & 0x80 != 0,
            duration: u16::from_be_bytes([body[2], body[3]]),
        },
        _ => Payload::Other,
    };
    Some(RtpPacket {
        ts_us: d.ts_us,
        dir,
        payload_type: pt,
        marker: b[1] & 0x80 != 0,
        seq: u16::from_be_bytes([b[2], b[3]]),
        rtp_ts: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        ssrc: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        payload,
    })
}

/// Voice detection and turn segmentation settings.
#[derive(Debug, Clone, Copy)]
pub struct VoiceParams {
    /// A 20 ms packet is speech when its RMS exceeds this (16-bit scale; 400 ≈ -38 dBFS,
    /// well above G.711 idle/comfort noise, well below espeak/Piper speech).
    pub threshold_rms: f64,
    /// Silence that ends the far end's turn.
    pub hangover_us: i64,
    /// A shorter far-end pause still splits turns when the caller spoke inside it.
    pub split_gap_us: i64,
}

impl Default for VoiceParams {
    fn default() -> Self {
        Self { threshold_rms: 400.0, hangover_us: 1_200_000, split_gap_us: 300_000 }
    }
}

/// One turn of the far end: first and last speech packet (capture times, µs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BotTurn {
    pub start_us: i64,
    pub end_us: i64,
}

fn caller_activity(packets: &[RtpPacket], p: &VoiceParams) -> Vec<i64> {
    packets
        .iter()
        .filter(|k| k.dir == Direction::Sent)
        .filter(|k| matches!(k.payload, Payload::Dtmf { .. }) || k.rms() > p.threshold_rms)
        .map(|k| k.ts_us)
        .collect()
}

fn bot_voice(packets: &[RtpPacket], p: &VoiceParams) -> Vec<i64> {
    packets
        .iter()
        .filter(|k| k.dir == Direction::Received && k.rms() > p.threshold_rms)
        .map(|k| k.ts_us)
        .collect()
}

/// Live end-of-turn check. Looks for far-end speech at or after `mark_us`; the turn is
/// complete once `hangover` of silence followed it, judged against `latest_us` (the
/// newest capture time seen, or the wall clock minus the capture's delivery delay, since
/// a far end may stop sending packets entirely when silent).
pub fn completed_bot_turn(packets: &[RtpPacket], mark_us: i64, latest_us: i64, p: &VoiceParams) -> Option<BotTurn> {
    let voice: Vec<i64> = bot_voice(packets, p).into_iter().filter(|&t| t >= mark_us).collect();
    let start = *voice.first()?;
    let mut end = start;
    for &t in &voice[1..] {
        if t - end > p.hangover_us {
            return Some(BotTurn { start_us: start, end_us: end });
        }
        end = t;
    }
    (latest_us - end >= p.hangover_us).then_some(BotTurn { start_us: start, end_us: end })
}

/// First far-end speech packet at or after `mark_us`.
pub fn first_bot_voice(packets: &[RtpPacket], mark_us: i64, p: &VoiceParams) -> Option<i64> {
    bot_voice(packets, p).into_iter().find(|&t| t >= mark_us)
}

/// All far-end turns of a call.
pub fn bot_turns(packets: &[RtpPacket], p: &VoiceParams) -> Vec<BotTurn> {
    let caller = caller_activity(packets, p);
    let spoke_between = |a: i64, b: i64| {
        let i = caller.partition_point(|&t| t <= a);
        caller.get(i).is_some_and(|&t| t < b)
    };
    let mut turns: Vec<BotTurn> = Vec::new();
    for t in bot_voice(packets, p) {
        match turns.last_mut() {
            Some(cur) if t - cur.end_us <= p.hangover_us && !(t - cur.end_us > p.split_gap_us && spoke_between(cur.end_us, t)) => {
                cur.end_us = t;
            }
            _ => turns.push(BotTurn { start_us: t, end_us: t }),
        }
    }
    turns
}

/// Voice-to-voice latency of one caller turn, as seen on the wire at the caller.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TurnLatency {
    /// The caller's turn was a key press, not speech: not a voice-to-voice figure (the reply
    /// starts before the event's end retransmissions are over).
    pub dtmf: bool,
    /// Last caller speech (or DTMF) packet before the reply.
    pub caller_end_us: i64,
    /// First far-end speech packet of the reply.
    pub reply_start_us: i64,
    pub latency_ms: f64,
    /// The caller was still talking when the reply started (the far end cut in).
    pub caller_still_speaking: bool,
}

/// Per caller turn: end of caller speech → first reply audio. A reply is a far-end turn
/// preceded by caller activity since the start of the previous far-end turn; far-end
/// turns with no caller activity before them (the greeting, re-prompts) are skipped.
pub fn turn_latencies(packets: &[RtpPacket], p: &VoiceParams) -> Vec<TurnLatency> {
    let caller = caller_activity(packets, p);
    let dtmf_at: std::collections::HashSet<i64> =
        packets.iter().filter(|k| k.dir == Direction::Sent && matches!(k.payload, Payload::Dtmf { .. })).map(|k| k.ts_us).collect();
    let turns = bot_turns(packets, p);
    let mut out = Vec::new();
    let mut prev_start = i64::MIN;
    for t in &turns {
        let i = caller.partition_point(|&c| c < t.start_us);
        if let Some(&c) = i.checked_sub(1).and_then(|j| caller.get(j)) {
            if c > prev_start {
                let still = caller.get(i).is_some_and(|&n| n - t.start_us <= 200_000);
                out.push(TurnLatency {
                    dtmf: dtmf_at.contains(&c),
                    caller_end_us: c,
                    reply_start_us: t.start_us,
                    latency_ms: (t.start_us - c) as f64 / 1000.0,
                    caller_still_speaking: still,
                });
            }
        }
        prev_start = t.start_us;
    }
    out
}

/// Nearest-rank percentile (`q` in 0..=100) of `values`; None when empty.
pub fn percentile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = ((q / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v.get(rank.min(v.len()) - 1).copied()
}

/// p50/p95/max of a set of latencies in ms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencySummary {
    pub count: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub max_ms: f64,
}

pub fn summarize(lat: &[TurnLatency]) -> Option<LatencySummary> {
    let v: Vec<f64> = lat.iter().map(|l| l.latency_ms).collect();
    Some(LatencySummary {
        count: v.len(),
        p50_ms: percentile(&v, 50.0)?,
        p95_ms: percentile(&v, 95.0)?,
        max_ms: percentile(&v, 100.0)?,
    })
}

/// Wall-clock aligned audio of one direction (t = 0 at `t0_us`), 8 kHz; gaps without
/// packets stay silent (unlike baresip's own recording, which drops them).
pub fn direction_wav(packets: &[RtpPacket], dir: Direction, t0_us: i64) -> Wav {
    let mut samples: Vec<i16> = Vec::new();
    for k in packets.iter().filter(|k| k.dir == dir) {
        let Payload::Audio(s) = &k.payload else { continue };
        let Ok(at) = usize::try_from((k.ts_us - t0_us) * 8 / 1000) else { continue };
        if samples.len() < at + s.len() {
            samples.resize(at + s.len(), 0);
        }
        samples[at..at + s.len()].copy_from_slice(s);
    }
    Wav { rate: 8000, samples }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 20 ms packets: `speech` marks which are loud. Returns packets of one direction.
    fn stream(dir: Direction, t0: i64, pattern: &[(i64, bool)]) -> Vec<RtpPacket> {
        let mut out = Vec::new();
        let mut t = t0;
        for &(ms, loud) in pattern {
            for _ in 0..ms / 20 {
                let v: i16 = if loud { 3000 } else { 0 };
                out.push(RtpPacket {
                    ts_us: t,
                    dir,
                    payload_type: 0,
                    marker: false,
                    seq: 0,
                    rtp_ts: 0,
                    ssrc: 1,
                    payload: Payload::Audio(vec![v; 160]),
                });
                t += 20_000;
            }
        }
        out
    }

    fn merge(mut a: Vec<RtpPacket>, b: Vec<RtpPacket>) -> Vec<RtpPacket> {
        a.extend(b);
        a.sort_by_key(|k| k.ts_us);
        a
    }

    #[test]
    fn latencies_of_two_turns_with_known_gaps() {
        let p = VoiceParams::default();
        // bot: greeting 0-2 s, reply at 6.5 s, reply at 12.2 s
        let bot = stream(Direction::Received, 0, &[(2000, true), (4500, false), (1500, true), (4200, false), (1000, true), (2000, false)]);
        // caller: speaks 3.5-5.0 s (gap to 6.5 = 1500 ms), 9.0-11.5 s with a 600 ms pause inside (gap 700 ms)
        let caller = stream(Direction::Sent, 10_000, &[(3500, false), (1500, true), (4000, false), (1000, true), (600, false), (900, true), (3000, false)]);
        let lat = turn_latencies(&merge(bot, caller), &p);
        assert_eq!(lat.len(), 2, "{lat:?}");
        // last caller packet of the first line starts at 10 ms + 4980 ms
        assert!((lat[0].latency_ms - (6500.0 - 4990.0)).abs() < 0.5, "{lat:?}");
        assert!((lat[1].latency_ms - (12200.0 - 11490.0)).abs() < 0.5, "{lat:?}");
        assert!(!lat[0].caller_still_speaking);
        let s = summarize(&lat).unwrap();
        assert_eq!(s.count, 2);
        assert!((s.p50_ms - lat[1].latency_ms).abs() < 1e-9);
        assert!((s.p95_ms - lat[0].latency_ms).abs() < 1e-9);
    }

    #[test]
    fn barge_in_splits_bot_turn_and_greeting_is_skipped() {
        let p = VoiceParams::default();
        // bot speaks 0-3 s, stops 400 ms after the caller barges in at 1 s... (bot 0-1.4 s), replies at 4.0 s
        let bot = stream(Direction::Received, 0, &[(1400, true), (2600, false), (1000, true), (1000, false)]);
        let caller = stream(Direction::Sent, 0, &[(1000, false), (2000, true), (2000, false)]);
        let all = merge(bot, caller);
        let turns = bot_turns(&all, &p);
        assert_eq!(turns.len(), 2, "{turns:?}");
        let lat = turn_latencies(&all, &p);
        assert_eq!(lat.len(), 1);
        assert!((lat[0].latency_ms - 1020.0).abs() < 0.5, "{lat:?}");
    }

    #[test]
    fn live_turn_completion_needs_hangover() {
        let p = VoiceParams::default();
        let bot = stream(Direction::Received, 0, &[(1000, true), (3000, false)]);
        // speech ends with the packet at 980 ms
        assert_eq!(completed_bot_turn(&bot, 0, 2_100_000, &p), None);
        assert_eq!(completed_bot_turn(&bot, 0, 2_180_000, &p), Some(BotTurn { start_us: 0, end_us: 980_000 }));
        // speech before the mark does not count
        assert_eq!(completed_bot_turn(&bot, 1_000_000, 4_000_000, &p), None);
        assert_eq!(first_bot_voice(&bot, 500_000, &p), Some(500_000));
    }

    #[test]
    fn classify_directions_rtcp_and_dtmf() {
        use std::net::Ipv4Addr;
        let lo = Ipv4Addr::LOCALHOST;
        let mut rtp = vec![0x80, 0x00, 0, 1, 0, 0, 0, 160, 0, 0, 0, 9];
        rtp.extend(vec![0xffu8; 160]);
        let mut ev = vec![0x80, 0xe5, 0, 2, 0, 0, 1, 64, 0, 0, 0, 9];
        ev.extend([5, 0x80 | 10, 0x05, 0xa0]);
        let rtcp = vec![0x80, 200, 0, 6, 0, 0, 0, 9, 0, 0, 0, 0];
        let d = |s: u16, t: u16, p: &Vec<u8>| Datagram { ts_us: 1, src: (lo, s), dst: (lo, t), payload: p.clone() };
        let ks = classify(&[d(20000, 5000, &rtp), d(5000, 20000, &rtp), d(20001, 5001, &rtcp), d(20000, 5000, &ev), d(6000, 7000, &rtp)], (20000, 20009));
        assert_eq!(ks.len(), 3);
        assert_eq!(ks[0].dir, Direction::Sent);
        assert_eq!(ks[1].dir, Direction::Received);
        assert_eq!(ks[2].payload, Payload::Dtmf { event: 5, end: true, duration: 1440 });
        assert!(ks[2].marker);
    }

    #[test]
    fn g722_packets_are_audio_with_their_level_and_streams_decode_separately() {
        use std::net::Ipv4Addr;
        let lo = Ipv4Addr::LOCALHOST;
        // 1 s of a 1 kHz tone (rms 5657) from the caller, silence from the far end, both G.722.
        let tone: Vec<i16> = (0..16000).map(|i| (8000.0 * (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / 16000.0).sin()) as i16).collect();
        let mut enc = fd_voice::media::Encoder::new(Codec::G722);
        let mut quiet = fd_voice::media::Encoder::new(Codec::G722);
        let mut ds = Vec::new();
        for (k, chunk) in tone.chunks(320).enumerate() {
            let hdr = |ssrc: u8| vec![0x80, 0x09, 0, k as u8, 0, 0, 0, 0, 0, 0, 0, ssrc];
            let mut a = hdr(1);
            enc.encode_into(chunk, &mut a);
            let mut b = hdr(2);
            quiet.encode_into(&[0; 320], &mut b);
            ds.push(Datagram { ts_us: k as i64 * 20_000, src: (lo, 20000), dst: (lo, 5000), payload: a });
            ds.push(Datagram { ts_us: k as i64 * 20_000, src: (lo, 5000), dst: (lo, 20000), payload: b });
        }
        // Fed in small pieces, as the live capture does: the decoders keep their state.
        let mut c = Classifier::new((20000, 20009));
        let ks: Vec<RtpPacket> = ds.chunks(3).flat_map(|p| c.classify(p)).collect();
        assert_eq!(ks.len(), 100);
        let p = VoiceParams::default();
        for k in ks.iter().skip(4) {
            let Payload::Audio(s) = &k.payload else { panic!("PT 9 not audio: {:?}", k.payload) };
            assert_eq!(s.len(), 160, "20 ms at 8 kHz");
            match k.dir {
                Direction::Sent => assert!((k.rms() - 5657.0).abs() < 300.0, "tone rms {}", k.rms()),
                Direction::Received => assert!(k.rms() < p.threshold_rms, "silence rms {}", k.rms()),
            }
        }
        // The rebuilt WAV has the tone for the whole second.
        let w = direction_wav(&ks, Direction::Sent, 0);
        assert!((w.duration_secs() - 1.0).abs() < 0.03, "{}", w.duration_secs());
    }

    #[test]
    fn percentile_nearest_rank() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(10.0));
        assert_eq!(percentile(&v, 95.0), Some(19.0));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
