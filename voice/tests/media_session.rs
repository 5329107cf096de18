//! The sans-IO media session driven with simulated time and a simulated network.

use std::time::{Duration, Instant};

use fd_voice::media::g711::ulaw_decode;
use fd_voice::media::rtcp;
use fd_voice::media::{Channel, Codec, IdleTransmit, MediaConfig, MediaEvent, MediaSession, Transmit};
use rtp_rs::{RtpPacketBuilder, RtpReader, Seq};

const MS: Duration = Duration::from_millis(1);

fn rtp(seq: u16, ts: u32, ssrc: u32, pt: u8, marker: bool, payload: &[u8]) -> Vec<u8> {
    RtpPacketBuilder::new().payload_type(pt).marked(marker).sequence(Seq::from(seq)).ssrc(ssrc).timestamp(ts).payload(payload).build().expect("valid packet")
}

/// 20 ms of a μ-law tone whose phase follows the timestamp, so any delivery order gives one signal.
fn tone_payload(ts: u32, freq: f64) -> Vec<u8> {
    let pcm: Vec<i16> = (0..160u32)
        .map(|i| (8000.0 * (2.0 * std::f64::consts::PI * freq * (ts.wrapping_add(i)) as f64 / 8000.0).sin()) as i16)
        .collect();
    let mut out = Vec::new();
    Codec::Pcmu.encode_into(&pcm, &mut out);
    out
}

fn fit(samples: &[i16], freq: f64, rate: f64) -> f64 {
    let (mut s, mut c) = (0.0, 0.0);
    for (i, &x) in samples.iter().enumerate() {
        let w = 2.0 * std::f64::consts::PI * freq * i as f64 / rate;
        s += x as f64 * w.sin();
        c += x as f64 * w.cos();
    }
    let n = samples.len() as f64;
    ((2.0 * s / n).powi(2) + (2.0 * c / n).powi(2)).sqrt()
}

fn rms(s: &[i16]) -> f64 {
    (s.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / s.len().max(1) as f64).sqrt()
}

struct Sim {
    s: MediaSession,
    now: Instant,
    frames: Vec<(Instant, Vec<i16>)>,
    other: Vec<(Instant, MediaEvent)>,
    sent: Vec<(Instant, Transmit)>,
}

impl Sim {
    fn new(cfg: MediaConfig) -> Self {
        let now = Instant::now();
        Self { s: MediaSession::new(cfg, 0x1234_5678, now), now, frames: Vec::new(), other: Vec::new(), sent: Vec::new() }
    }

    fn drain(&mut self) {
        while let Some(t) = self.s.poll_transmit(self.now) {
            self.sent.push((self.now, t));
        }
        while let Some(ev) = self.s.poll_event() {
            match ev {
                MediaEvent::Audio(f) => self.frames.push((self.now, f)),
                other => self.other.push((self.now, other)),
            }
        }
    }

    fn advance_to(&mut self, t: Instant) {
        let mut guard = 0;
        while let Some(due) = self.s.poll_timeout() {
            if due > t {
                break;
            }
            self.now = self.now.max(due);
            self.s.handle_timeout(self.now);
            self.drain();
            guard += 1;
            assert!(guard < 10_000_000, "poll_timeout does not advance");
        }
        self.now = self.now.max(t);
        self.drain();
    }

    fn deliver(&mut self, at: Instant, datagram: &[u8]) {
        self.advance_to(at);
        self.s.handle_rtp(self.now, datagram);
        self.drain();
    }

    fn audio(&self) -> Vec<i16> {
        self.frames.iter().flat_map(|(_, f)| f.iter().copied()).collect()
    }
}

/// Packet `i` of a 20 ms stream (sent at `start + 20 ms × i`).
fn packet(i: u32, ssrc: u32, seq0: u16, ts0: u32, freq: f64) -> Vec<u8> {
    let ts = ts0.wrapping_add(i * 160);
    // Phase from the stream's own sample count, so the 32-bit timestamp wrap keeps the tone continuous.
    rtp(seq0.wrapping_add(i as u16), ts, ssrc, 0, i == 0, &tone_payload(i * 160, freq))
}

/// A buffer deep enough for the reordering the tests below put packets through (up to 30 ms late);
/// the default target is shallower (a LAN call's packets come within a millisecond or two).
const DEEP: Duration = Duration::from_millis(40);

/// Runs a 4 s stream with per-packet arrival offsets through a [`DEEP`] buffer; returns the
/// simulation.
fn run(arrivals: impl Fn(u32) -> Vec<Duration>) -> Sim {
    let mut sim = Sim::new(MediaConfig { jitter_target: DEEP, ..MediaConfig::pcmu() });
    let t0 = sim.now + 5 * MS;
    let mut schedule: Vec<(Instant, u32)> = Vec::new();
    for i in 0..200 {
        for d in arrivals(i) {
            schedule.push((t0 + 20 * MS * i + d, i));
        }
    }
    schedule.sort_by_key(|(t, _)| *t);
    for (t, i) in schedule {
        sim.deliver(t, &packet(i, 0xAAAA, 65500, 0xFFFF_F000, 400.0));
    }
    sim.advance_to(t0 + Duration::from_secs(5));
    sim
}

#[test]
fn in_order_stream_gives_one_16khz_frame_per_20ms_with_the_audio_intact() {
    let sim = run(|_| vec![Duration::ZERO]);
    let st = sim.s.stats();
    assert_eq!(st.packets_received, 200);
    // The only concealment is the fade-out after the last packet (the end of a stream looks like loss).
    assert_eq!((st.lost, st.late, st.duplicates, st.concealed_frames, st.ignored), (0, 0, 0, 3, 0));
    assert!(sim.frames.iter().all(|(_, f)| f.len() == 320));
    // Frames come at exact 20 ms steps of the simulated clock, and keep coming after the stream.
    for w in sim.frames.windows(2) {
        assert_eq!(w[1].0 - w[0].0, 20 * MS);
    }
    assert_eq!(st.played_out as usize, sim.frames.len());
    assert!(sim.frames.len() >= 245, "{} frames in 5 s", sim.frames.len());
    // The first frame plays one target delay (40 ms) after the first packet.
    assert_eq!(sim.frames[0].0 - (sim.now - Duration::from_secs(5)), 40 * MS);
    assert_eq!(st.playout_delay, 40 * MS);
    let audio = sim.audio();
    let body = &audio[16000 / 10..16000 * 38 / 10];
    let amp = fit(body, 400.0, 16000.0);
    assert!((amp / 8000.0 - 1.0).abs() < 0.03, "amplitude {amp}");
    assert!(rms(&audio[16000 * 42 / 10..]) < 1.0, "silence after the stream ends");
}

#[test]
fn a_lan_stream_plays_one_frame_after_it_arrives_and_nothing_is_late() {
    // Default buffer; packets wobble by up to 2 ms either way, as on a LAN through a PBX.
    let mut sim = Sim::new(MediaConfig::pcmu());
    let t0 = sim.now + 5 * MS;
    for i in 0..200u32 {
        let wobble = [0, 2, 1, 0, 0, 1, 2, 0][i as usize % 8] * MS;
        let t = if i % 3 == 0 { t0 + 20 * MS * i + wobble } else { (t0 + 20 * MS * i).checked_sub(wobble).unwrap() };
        sim.deliver(t.max(sim.now), &packet(i, 0xAAAA, 65500, 0xFFFF_F000, 400.0));
    }
    sim.advance_to(t0 + Duration::from_secs(5));
    let st = sim.s.stats();
    assert_eq!((st.lost, st.late, st.concealed_frames), (0, 0, 3), "only the fade-out after the stream");
    assert_eq!(st.playout_delay, 20 * MS);
}

#[test]
fn reordering_and_duplicates_do_not_change_the_audio() {
    let clean = run(|_| vec![Duration::ZERO]);
    let messy = run(|i| match i % 10 {
        3 => vec![30 * MS],                // arrives after packet 4
        5 => vec![Duration::ZERO, 7 * MS], // duplicated
        7 => vec![15 * MS, 25 * MS, 45 * MS],
        _ => vec![Duration::ZERO],
    });
    let st = messy.s.stats();
    assert_eq!(st.duplicates, 20 + 40);
    assert_eq!((st.lost, st.late, st.concealed_frames), (0, 0, 3));
    assert_eq!(clean.frames.len(), messy.frames.len());
    assert!(clean.audio() == messy.audio(), "reordered/duplicated stream plays differently");
}

#[test]
fn lost_packets_are_concealed_and_counted() {
    let clean = run(|_| vec![Duration::ZERO]);
    let lossy = run(|i| if i == 50 || i == 51 || i == 120 { vec![] } else { vec![Duration::ZERO] });
    let st = lossy.s.stats();
    assert_eq!(st.lost, 3);
    assert_eq!(st.concealed_frames, 3 + 3, "three lost frames plus the fade-out at the end");
    assert_eq!(lossy.frames.len(), clean.frames.len());
    fn idx(sim: &Sim, i: usize) -> &Vec<i16> {
        &sim.frames[i].1
    }
    // Concealment repeats and fades the last frame rather than leaving a hole...
    let first_lost = (0..lossy.frames.len()).find(|&i| idx(&lossy, i) != idx(&clean, i)).expect("a concealed frame");
    let e = rms(idx(&lossy, first_lost));
    assert!(e > 1000.0 && e < rms(idx(&clean, first_lost)) + 1.0, "concealed frame rms {e}");
    // ...and the stream is back to the original right after.
    assert_eq!(idx(&lossy, first_lost + 3), idx(&clean, first_lost + 3));
}

#[test]
fn a_late_packet_is_dropped_and_the_buffer_grows_without_breaking_cadence() {
    let sim = run(|i| if i == 30 { vec![90 * MS] } else { vec![Duration::ZERO] });
    let st = sim.s.stats();
    assert_eq!(st.late, 1);
    assert!(st.playout_delay > 40 * MS && st.playout_delay <= 200 * MS, "delay {:?}", st.playout_delay);
    for w in sim.frames.windows(2) {
        assert_eq!(w[1].0 - w[0].0, 20 * MS);
    }
}

#[test]
fn jittery_network_still_plays_exactly_one_frame_per_20ms() {
    let mut seed = 42u64;
    let mut rnd = move || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) % 60
    };
    let jitter: Vec<u64> = (0..200).map(|_| rnd()).collect();
    let sim = run(|i| vec![MS * jitter[i as usize] as u32]);
    let st = sim.s.stats();
    assert!(st.late <= 10, "late {}", st.late);
    assert!(st.jitter > 5 * MS, "jitter estimate {:?}", st.jitter);
    let first = sim.frames[0].0;
    for (k, (t, f)) in sim.frames.iter().enumerate() {
        assert_eq!(*t, first + 20 * MS * k as u32);
        assert_eq!(f.len(), 320);
    }
}

#[test]
fn ssrc_change_switches_to_the_new_stream_and_ignores_strays() {
    let mut sim = Sim::new(MediaConfig::pcmu());
    let t0 = sim.now;
    for i in 0..50 {
        sim.deliver(t0 + 20 * MS * i, &packet(i, 1, 100, 1000, 400.0));
        if i == 20 {
            // A single stray packet from elsewhere must not steal the stream.
            sim.deliver(t0 + 20 * MS * i + MS, &packet(0, 99, 7, 7, 1000.0));
        }
    }
    assert_eq!(sim.s.stats().ssrc_changes, 0);
    assert_eq!(sim.s.stats().ignored, 1);
    // The PBX re-INVITEs / bridges: a new SSRC, sequence and timeline, right away.
    for i in 0..100 {
        sim.deliver(t0 + 20 * MS * (50 + i), &packet(i, 2, 40000, 0x8000_0000, 1000.0));
    }
    sim.advance_to(t0 + 20 * MS * 150);
    let st = sim.s.stats();
    assert_eq!(st.ssrc_changes, 1);
    assert_eq!(st.lost, 0);
    let audio = sim.audio();
    let tail = &audio[audio.len() - 16000..];
    assert!(fit(tail, 1000.0, 16000.0) > 7000.0, "new stream's audio is playing");
    for w in sim.frames.windows(2) {
        assert_eq!(w[1].0 - w[0].0, 20 * MS);
    }
}

#[test]
fn comfort_noise_is_activity_and_silence_ends_in_one_inactivity_timeout() {
    let mut cfg = MediaConfig::pcmu();
    cfg.inactivity_timeout = Duration::from_secs(30);
    let mut sim = Sim::new(cfg);
    let t0 = sim.now;
    for i in 0..10 {
        sim.deliver(t0 + 20 * MS * i, &packet(i, 5, 1, 0, 400.0));
    }
    // 40 s of comfort noise every 200 ms (PT 13), as trunks do in silence.
    for k in 0..200u32 {
        sim.deliver(t0 + 200 * MS + 200 * MS * k, &rtp(10 + k as u16, 1600 + 1600 * k, 5, 13, false, &[60]));
    }
    assert!(sim.other.is_empty(), "{:?}", sim.other);
    assert_eq!(sim.s.stats().ignored, 0);
    let last = sim.now;
    sim.advance_to(last + Duration::from_secs(120));
    let timeouts: Vec<_> = sim.other.iter().filter(|(_, e)| *e == MediaEvent::InactivityTimeout).collect();
    assert_eq!(timeouts.len(), 1);
    assert_eq!(timeouts[0].0, last + Duration::from_secs(30));
    // Frames are silence during comfort noise, not concealment of the tone.
    assert!(rms(&sim.frames.last().expect("frames").1) < 1.0);
}

#[test]
fn unknown_payload_types_and_garbage_never_break_the_session() {
    let mut sim = Sim::new(MediaConfig::pcmu());
    let t0 = sim.now;
    sim.deliver(t0, &rtp(1, 0, 9, 96, false, &[1, 2, 3]));
    sim.deliver(t0, &rtp(2, 0, 9, 127, false, &[]));
    assert_eq!(sim.s.stats().ignored, 2);
    assert!(sim.frames.is_empty());
    let valid = packet(3, 9, 0, 0, 400.0);
    let mut seed = 7u64;
    for n in 0..20_000u32 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let len = (seed >> 40) as usize % 200;
        let mut d: Vec<u8> = (0..len).map(|k| (seed >> (k % 56)) as u8 ^ k as u8).collect();
        if n % 2 == 0 {
            // Mutate a valid packet instead: flags, lengths, padding, extension bits.
            d = valid.clone();
            let at = (seed >> 20) as usize % d.len();
            d[at] ^= (seed >> 8) as u8;
            d.truncate(((seed >> 30) as usize % (d.len() + 1)).max(1));
        }
        sim.s.handle_rtp(sim.now, &d);
        sim.s.handle_rtcp(sim.now, &d);
        sim.now += MS;
        sim.s.handle_timeout(sim.now);
        sim.drain();
    }
}

fn decode_sent(sent: &[(Instant, Transmit)]) -> Vec<i16> {
    let mut pcm = Vec::new();
    for (_, t) in sent.iter().filter(|(_, t)| t.channel == Channel::Rtp) {
        let p = RtpReader::new(&t.datagram).expect("our RTP parses");
        pcm.extend(p.payload().iter().map(|&b| ulaw_decode(b)));
    }
    pcm
}

#[test]
fn outbound_pacing_is_exact_over_ten_minutes() {
    let mut cfg = MediaConfig::pcmu();
    cfg.idle_transmit = IdleTransmit::Silence;
    cfg.rtcp_interval = None;
    cfg.inactivity_timeout = Duration::from_secs(3600);
    let mut sim = Sim::new(cfg);
    let start = sim.now;
    let tone: Vec<i16> = (0..20000).map(|i| (6000.0 * (i as f64 * 0.2).sin()) as i16).collect();
    for minute in 0..10u32 {
        for half in 0..2u32 {
            let t = start + Duration::from_secs(60 * minute as u64 + 30 * half as u64) + 7 * MS;
            sim.advance_to(t);
            sim.s.play(&tone[..(8000 + 1000 * minute as usize)]);
        }
    }
    sim.advance_to(start + Duration::from_secs(600));
    let rtp_sent: Vec<_> = sim.sent.iter().filter(|(_, t)| t.channel == Channel::Rtp).collect();
    assert_eq!(rtp_sent.len(), 30_001);
    let first = RtpReader::new(&rtp_sent[0].1.datagram).expect("parses");
    let (seq0, ts0): (u16, u32) = (first.sequence_number().into(), first.timestamp());
    assert!(first.mark());
    for (k, (at, t)) in rtp_sent.iter().enumerate() {
        assert_eq!(*at, start + 20 * MS * k as u32, "packet {k} sent off schedule");
        let p = RtpReader::new(&t.datagram).expect("parses");
        assert_eq!(u16::from(p.sequence_number()), seq0.wrapping_add(k as u16));
        assert_eq!(p.timestamp(), ts0.wrapping_add(160 * k as u32));
        assert_eq!(p.ssrc(), 0x1234_5678);
        assert_eq!(p.payload().len(), 160);
        assert_eq!(p.mark(), k == 0);
    }
    assert_eq!(sim.s.stats().packets_sent, 30_001);
}

#[test]
fn talkspurts_set_the_marker_and_timestamps_follow_the_clock_across_silence() {
    let mut cfg = MediaConfig::pcmu();
    cfg.rtcp_interval = None;
    let mut sim = Sim::new(cfg);
    let start = sim.now;
    sim.s.play(&vec![3000i16; 3200]); // 200 ms
    sim.advance_to(start + Duration::from_secs(1));
    assert!(!sim.s.is_playing());
    let spurt1 = sim.sent.len();
    // 200 ms of audio delayed by the resampler (~3 ms): 10 full packets and a short last one.
    assert_eq!(spurt1, 11, "the audio, then nothing while idle");
    sim.advance_to(start + 1003 * MS);
    sim.s.play(&vec![3000i16; 1600]);
    sim.advance_to(start + Duration::from_secs(2));
    let p = |i: usize| RtpReader::new(&sim.sent[i].1.datagram).expect("parses").create_builder().build().expect("rebuild");
    let a = RtpReader::new(&sim.sent[0].1.datagram).expect("parses").timestamp();
    let second = p(spurt1);
    let b = RtpReader::new(&second).expect("parses");
    assert!(b.mark(), "marker on the first packet after silence");
    assert!(!RtpReader::new(&sim.sent[1].1.datagram).expect("parses").mark());
    // The second talkspurt leaves at once and is paced from there; its timestamp advanced by the
    // real time since the first packet (1003 ms = 8024 samples).
    assert_eq!(sim.sent[spurt1].0, start + 1003 * MS);
    assert_eq!(sim.sent[spurt1 + 1].0, start + 1023 * MS);
    assert_eq!(b.timestamp().wrapping_sub(a), 8024);
    let seq_a: u16 = RtpReader::new(&sim.sent[spurt1 - 1].1.datagram).expect("parses").sequence_number().into();
    assert_eq!(u16::from(b.sequence_number()), seq_a.wrapping_add(1), "sequence numbers have no gap");
}

#[test]
fn flush_stops_queued_audio_on_the_next_packet() {
    let mut cfg = MediaConfig::pcmu();
    cfg.rtcp_interval = None;
    let mut sim = Sim::new(cfg);
    let start = sim.now;
    sim.s.play(&vec![8000i16; 32000]); // 2 s
    sim.advance_to(start + 90 * MS);
    assert_eq!(sim.sent.len(), 5);
    assert!(sim.s.queued() > Duration::from_millis(1800));
    sim.s.flush();
    assert!(!sim.s.is_playing());
    assert_eq!(sim.s.queued(), Duration::ZERO);
    sim.advance_to(start + Duration::from_secs(3));
    assert_eq!(sim.sent.len(), 5, "nothing sent after the flush");
    // New audio after a flush starts cleanly (marker, no leftovers of the old audio).
    sim.s.play(&vec![0i16; 320]);
    sim.advance_to(start + 3100 * MS);
    let p = RtpReader::new(&sim.sent[5].1.datagram).expect("parses");
    assert!(p.mark());
    assert!(decode_sent(&sim.sent[5..]).iter().all(|&s| s.abs() < 16), "old audio leaked after flush");
}

#[test]
fn outbound_audio_is_resampled_and_encoded_faithfully() {
    let mut cfg = MediaConfig::pcmu();
    cfg.rtcp_interval = None;
    let mut sim = Sim::new(cfg);
    let tone: Vec<i16> = (0..16000).map(|i| (10000.0 * (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / 16000.0).sin()) as i16).collect();
    for chunk in tone.chunks(1234) {
        sim.s.play(chunk);
    }
    let start = sim.now;
    sim.advance_to(start + Duration::from_secs(2));
    let pcm = decode_sent(&sim.sent);
    assert!(pcm.len() >= 8000 && pcm.len() <= 8160, "{} samples", pcm.len());
    let amp = fit(&pcm[800..7200], 1000.0, 8000.0);
    assert!((amp / 10000.0 - 1.0).abs() < 0.03, "amplitude {amp}");
}

#[test]
fn rtcp_reports_are_sent_every_5s_and_peer_reports_give_rtt() {
    let mut sim = Sim::new(MediaConfig::pcmu());
    let t0 = sim.now;
    sim.s.play(&vec![1000i16; 16000 * 6]);
    for i in 0..250 {
        sim.deliver(t0 + 20 * MS * i, &packet(i, 77, 10, 0, 400.0));
    }
    // Peer SR (muxed on the RTP port) at 3 s.
    let peer_sr = rtcp::build_compound(77, Some(rtcp::SenderInfo { ntp: 0xAAAA_BBBB_CCCC_DDDD, rtp_timestamp: 1, packet_count: 150, octet_count: 24000 }), None, "peer");
    sim.s.handle_rtp(t0 + Duration::from_secs(3), &peer_sr);
    sim.advance_to(t0 + Duration::from_secs(5));
    let reports: Vec<_> = sim.sent.iter().filter(|(_, t)| t.channel == Channel::Rtcp).collect();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].0, t0 + Duration::from_secs(5));
    let ours = rtcp::parse(&reports[0].1.datagram);
    let (ssrc, info) = ours.sender_report.expect("SR while sending");
    assert_eq!(ssrc, 0x1234_5678);
    let rtp_before = sim.sent.iter().take_while(|(_, t)| t.channel == Channel::Rtp).count();
    assert_eq!(info.packet_count as usize, rtp_before);
    let block = ours.reports[0];
    assert_eq!(block.ssrc, 77);
    assert_eq!(block.cumulative_lost, 0);
    assert_eq!(block.highest_seq, 10 + 249);
    assert_eq!(block.last_sr, 0xBBBB_CCCC);
    assert_eq!(block.delay_since_last_sr, 2 * 65536);
    // The peer answers with an RR about us, 80 ms later, after holding it 30 ms: RTT = 50 ms.
    let rr = rtcp::ReportBlock {
        ssrc: 0x1234_5678,
        fraction_lost: 64,
        cumulative_lost: 3,
        highest_seq: 1,
        jitter: 0,
        last_sr: (info.ntp >> 16) as u32,
        delay_since_last_sr: 65536 * 30 / 1000,
    };
    let peer_rr = rtcp::build_compound(77, None, Some(rr), "peer");
    sim.s.handle_rtcp(t0 + Duration::from_secs(5) + 80 * MS, &peer_rr);
    let st = sim.s.stats();
    let rtt = st.rtt.expect("rtt");
    assert!(rtt >= 49 * MS && rtt <= 51 * MS, "rtt {rtt:?}");
    assert_eq!(st.remote_fraction_lost, Some(0.25));
    sim.advance_to(t0 + Duration::from_secs(11));
    assert_eq!(sim.sent.iter().filter(|(_, t)| t.channel == Channel::Rtcp).count(), 2);
}

#[test]
fn a_timestamp_jump_in_the_same_stream_reanchors_instead_of_dropping_everything() {
    let mut sim = Sim::new(MediaConfig::pcmu());
    let t0 = sim.now;
    for i in 0..50 {
        sim.deliver(t0 + 20 * MS * i, &packet(i, 3, 0, 0, 400.0));
    }
    // After a hold the phone resumes with a timeline 10 s ahead (same SSRC, sequence continues)...
    for i in 50..100 {
        sim.deliver(t0 + 20 * MS * i, &packet(i, 3, 0, 80_000, 1000.0));
    }
    // ...and another restarts it 10 s behind.
    for i in 100..150 {
        sim.deliver(t0 + 20 * MS * i, &packet(i, 3, 0, 0, 400.0));
    }
    sim.advance_to(t0 + 20 * MS * 150);
    let st = sim.s.stats();
    assert_eq!((st.late, st.lost, st.ssrc_changes), (0, 0, 0));
    let frames: Vec<&Vec<i16>> = sim.frames.iter().map(|(_, f)| f).collect();
    let mid: Vec<i16> = frames[70..90].iter().flat_map(|f| f.iter().copied()).collect();
    let end: Vec<i16> = frames[frames.len() - 25..frames.len() - 5].iter().flat_map(|f| f.iter().copied()).collect();
    assert!(fit(&mid, 1000.0, 16000.0) > 7000.0, "audio after the forward jump plays");
    assert!(fit(&end, 400.0, 16000.0) > 7000.0, "audio after the backward jump plays");
}

#[test]
fn idle_modes_send_silence_or_comfort_noise() {
    let mut cfg = MediaConfig::pcmu();
    cfg.rtcp_interval = None;
    cfg.idle_transmit = IdleTransmit::ComfortNoise;
    let mut sim = Sim::new(cfg.clone());
    let start = sim.now;
    sim.advance_to(start + 2010 * MS);
    let cn: Vec<_> = sim.sent.iter().map(|(t, p)| (*t - start, RtpReader::new(&p.datagram).expect("parses").payload_type())).collect();
    // One comfort-noise packet when silence starts, then one per second as keep-alive.
    assert_eq!(cn, vec![(Duration::ZERO, 13), (Duration::from_secs(1), 13), (Duration::from_secs(2), 13)]);

    cfg.idle_transmit = IdleTransmit::Silence;
    let mut sim = Sim::new(cfg);
    let start = sim.now;
    sim.advance_to(start + 990 * MS);
    assert_eq!(sim.sent.len(), 50);
    assert!(decode_sent(&sim.sent).iter().all(|&s| s == 0));
}

#[test]
fn playback_finished_is_reported_when_the_queue_runs_dry() {
    let mut cfg = MediaConfig::pcmu();
    cfg.rtcp_interval = None;
    let mut sim = Sim::new(cfg);
    let start = sim.now;
    sim.s.play(&vec![2000i16; 1600]); // 100 ms
    sim.advance_to(start + Duration::from_secs(1));
    let last_audio = sim.sent.last().expect("sent").0;
    assert_eq!(sim.other, vec![(last_audio + 20 * MS, MediaEvent::PlaybackFinished)]);
    sim.s.play(&vec![2000i16; 16000]);
    sim.advance_to(start + 1100 * MS);
    sim.s.flush();
    sim.advance_to(start + 1200 * MS);
    assert_eq!(sim.other.len(), 2, "flushed playback also finishes");
    assert_eq!(sim.other[1].1, MediaEvent::PlaybackFinished);
}

#[test]
fn the_buffer_shrinks_back_once_the_network_calms_down() {
    let mut sim = Sim::new(MediaConfig::pcmu());
    let t0 = sim.now;
    let quiet = vec![0xFFu8; 160]; // μ-law silence: the buffer only drops quiet frames
    let mut i = 0u32;
    let send = |sim: &mut Sim, i: u32, extra: Duration| sim.deliver(t0 + 20 * MS * i + extra, &rtp(i as u16, i * 160, 4, 0, false, &quiet));
    while i < 100 {
        // A congested stretch: every 10th packet 70 ms late.
        let extra = if i % 10 == 9 { 70 * MS } else { Duration::ZERO };
        send(&mut sim, i, extra);
        i += 1;
    }
    let grown = sim.s.stats().playout_delay;
    assert!(grown >= 100 * MS, "delay grew to {grown:?}");
    while i < 100 + 50 * 30 {
        send(&mut sim, i, Duration::ZERO);
        i += 1;
    }
    let st = sim.s.stats();
    assert_eq!(st.playout_delay, MediaConfig::pcmu().jitter_target, "back to the target");
    for w in sim.frames.windows(2) {
        assert_eq!(w[1].0 - w[0].0, 20 * MS);
    }
}

#[test]
fn peers_with_30ms_and_10ms_packets_are_played_seamlessly() {
    for samples in [240u32, 80] {
        let mut sim = Sim::new(MediaConfig::pcmu());
        let t0 = sim.now;
        let ms = samples / 8;
        for i in 0..(3000 / ms) {
            let ts = i * samples;
            let pcm: Vec<i16> = (0..samples).map(|k| (8000.0 * (2.0 * std::f64::consts::PI * 400.0 * (ts + k) as f64 / 8000.0).sin()) as i16).collect();
            let mut payload = Vec::new();
            Codec::Pcmu.encode_into(&pcm, &mut payload);
            sim.deliver(t0 + MS * (ms * i), &rtp(i as u16, ts, 8, 0, i == 0, &payload));
        }
        sim.advance_to(t0 + Duration::from_secs(3));
        let st = sim.s.stats();
        assert_eq!((st.late, st.concealed_frames, st.lost), (0, 0, 0), "{ms} ms packets");
        let audio = sim.audio();
        assert!(fit(&audio[1600..audio.len() - 1600], 400.0, 16000.0) > 7700.0, "{ms} ms packets");
    }
}

// ---------------------------------------------------------------- G.722 (16 kHz audio, 8 kHz RTP clock)

/// Payloads of a continuous 16 kHz tone, 20 ms each, from one stream encoder (G.722 is stateful).
fn g722_payloads(count: usize, freq: f64) -> Vec<Vec<u8>> {
    let mut enc = fd_voice::media::Encoder::new(Codec::G722);
    (0..count)
        .map(|k| {
            let pcm: Vec<i16> = (0..320)
                .map(|i| (8000.0 * (2.0 * std::f64::consts::PI * freq * (k * 320 + i) as f64 / 16000.0).sin()) as i16)
                .collect();
            let mut out = Vec::new();
            enc.encode_into(&pcm, &mut out);
            out
        })
        .collect()
}

/// As [`run`], for a G.722 session fed a 5 kHz tone (which G.711 could not carry at all).
fn run_g722(arrivals: impl Fn(u32) -> Vec<Duration>) -> Sim {
    let payloads = g722_payloads(200, 5000.0);
    let mut sim = Sim::new(MediaConfig { jitter_target: DEEP, ..MediaConfig::g722() });
    let t0 = sim.now + 5 * MS;
    let mut schedule: Vec<(Instant, u32)> = Vec::new();
    for i in 0..200 {
        for d in arrivals(i) {
            schedule.push((t0 + 20 * MS * i + d, i));
        }
    }
    schedule.sort_by_key(|(t, _)| *t);
    for (t, i) in schedule {
        // Timestamps advance 160 per 20 ms although the payload carries 320 samples (RFC 3551).
        let pkt = rtp(65500u16.wrapping_add(i as u16), 0xFFFF_F000u32.wrapping_add(i * 160), 0xAAAA, 9, i == 0, &payloads[i as usize]);
        sim.deliver(t, &pkt);
    }
    sim.advance_to(t0 + Duration::from_secs(5));
    sim
}

#[test]
fn g722_stream_plays_16khz_audio_directly_one_frame_per_20ms() {
    let sim = run_g722(|_| vec![Duration::ZERO]);
    let st = sim.s.stats();
    assert_eq!(st.packets_received, 200);
    assert_eq!((st.lost, st.late, st.duplicates, st.concealed_frames, st.ignored), (0, 0, 0, 3, 0));
    assert!(sim.frames.iter().all(|(_, f)| f.len() == 320));
    for w in sim.frames.windows(2) {
        assert_eq!(w[1].0 - w[0].0, 20 * MS);
    }
    assert_eq!(sim.frames[0].0 - (sim.now - Duration::from_secs(5)), 40 * MS);
    let audio = sim.audio();
    // 4 s of audio, played from 40 ms on: the timeline is not stretched by the 8 kHz clock.
    let body = &audio[16000 / 10..16000 * 38 / 10];
    let amp = fit(body, 5000.0, 16000.0);
    assert!((amp / 8000.0 - 1.0).abs() < 0.03, "5 kHz amplitude {amp}");
    assert!(rms(&audio[16000 * 42 / 10..]) < 50.0, "silence after the stream ends");
    // Jitter statistics are in RTP clock units: a perfectly paced stream has none.
    assert!(st.jitter < MS, "jitter {:?}", st.jitter);
}

#[test]
fn g722_loss_and_reordering_are_concealed_and_the_decoder_recovers() {
    let clean = run_g722(|_| vec![Duration::ZERO]);
    let lossy = run_g722(|i| match i {
        50 | 51 | 120 => vec![],
        _ if i < 100 && i % 10 == 3 => vec![30 * MS],
        _ if i < 100 && i % 10 == 5 => vec![Duration::ZERO, 7 * MS],
        _ => vec![Duration::ZERO],
    });
    let st = lossy.s.stats();
    assert_eq!((st.lost, st.duplicates, st.late), (3, 10, 0));
    assert_eq!(st.concealed_frames, 3 + 3);
    assert_eq!(lossy.frames.len(), clean.frames.len());
    // ADPCM decodes in arrival order (a LAN rarely reorders), so loss and reordering perturb the
    // predictor for a while; the
    // tone must still be there at full level over the whole stream.
    let audio = lossy.audio();
    let amp = fit(&audio[16000 / 10..16000 * 38 / 10], 5000.0, 16000.0);
    assert!((amp / 8000.0 - 1.0).abs() < 0.1, "5 kHz amplitude {amp} with loss/reordering");
    // Well after the last loss (packet 120 at 2.4 s) the decoder has converged back onto the clean one.
    let (a, b) = (&audio[16000 * 30 / 10..16000 * 36 / 10], &clean.audio()[16000 * 30 / 10..16000 * 36 / 10]);
    let diff: Vec<i16> = a.iter().zip(b).map(|(x, y)| x.saturating_sub(*y)).collect();
    assert!(rms(&diff) < 8000.0 / 100.0, "residual difference {}", rms(&diff));
}

#[test]
fn g722_outbound_sends_16khz_audio_paced_with_8khz_timestamps() {
    let mut cfg = MediaConfig::g722();
    cfg.rtcp_interval = None;
    let mut sim = Sim::new(cfg);
    let start = sim.now;
    let tone: Vec<i16> = (0..16000).map(|i| (10000.0 * (2.0 * std::f64::consts::PI * 5000.0 * i as f64 / 16000.0).sin()) as i16).collect();
    for chunk in tone.chunks(1234) {
        sim.s.play(chunk);
    }
    assert_eq!(sim.s.queued(), Duration::from_secs(1));
    sim.advance_to(start + Duration::from_secs(2));
    // No resampler: exactly 1 s of audio is exactly 50 packets.
    assert_eq!(sim.sent.len(), 50);
    let mut dec = fd_voice::media::Decoder::new(Codec::G722);
    let mut pcm = Vec::new();
    let ts0 = RtpReader::new(&sim.sent[0].1.datagram).expect("parses").timestamp();
    for (k, (at, t)) in sim.sent.iter().enumerate() {
        let p = RtpReader::new(&t.datagram).expect("parses");
        assert_eq!((p.payload_type(), p.payload().len()), (9, 160));
        assert_eq!(p.timestamp(), ts0.wrapping_add(160 * k as u32), "8 kHz RTP clock");
        assert_eq!(*at, start + 20 * MS * k as u32);
        dec.decode_into(p.payload(), &mut pcm);
    }
    assert_eq!(pcm.len(), 16000);
    let amp = fit(&pcm[1600..14400], 5000.0, 16000.0);
    assert!((amp / 10000.0 - 1.0).abs() < 0.03, "5 kHz amplitude {amp}");
    // Idle silence packets are valid G.722 too (encoded zeros, same size).
    let mut cfg = MediaConfig::g722();
    cfg.idle_transmit = IdleTransmit::Silence;
    cfg.rtcp_interval = None;
    let mut sim = Sim::new(cfg);
    let start = sim.now;
    sim.advance_to(start + 200 * MS);
    assert_eq!(sim.sent.len(), 11);
    let mut pcm = Vec::new();
    let mut dec = fd_voice::media::Decoder::new(Codec::G722);
    for (_, t) in &sim.sent {
        let p = RtpReader::new(&t.datagram).expect("parses");
        assert_eq!((p.payload_type(), p.payload().len()), (9, 160));
        dec.decode_into(p.payload(), &mut pcm);
    }
    assert!(rms(&pcm) < 50.0, "idle packets decode to {}", rms(&pcm));
}

#[test]
fn g722_session_ignores_g711_packets_it_cannot_place_on_its_timeline() {
    let mut sim = Sim::new(MediaConfig::g722());
    let t = sim.now + 5 * MS;
    sim.deliver(t, &packet(0, 0xAAAA, 1, 1000, 400.0)); // PCMU, PT 0
    assert_eq!(sim.s.stats().ignored, 1);
    assert_eq!(sim.s.stats().packets_received, 0);
}
