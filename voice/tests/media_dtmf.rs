//! RFC 4733 telephone-events through the media session: one event per key press.

use std::time::{Duration, Instant};

use fd_voice::media::dtmf::{digit_to_event, TelephoneEvent};
use fd_voice::media::{MediaConfig, MediaEvent, MediaSession};
use rtp_rs::{RtpPacketBuilder, Seq};

const MS: Duration = Duration::from_millis(1);

struct Peer {
    s: MediaSession,
    now: Instant,
    seq: u16,
    digits: String,
    durations: Vec<Duration>,
}

impl Peer {
    fn new() -> Self {
        let now = Instant::now();
        Self { s: MediaSession::new(MediaConfig::pcmu(), 1, now), now, seq: 1000, digits: String::new(), durations: Vec::new() }
    }

    fn send(&mut self, ts: u32, marker: bool, digit: char, end: bool, duration: u16) {
        let ev = TelephoneEvent { event: digit_to_event(digit).expect("digit"), end, volume: 10, duration };
        let payload = ev.to_bytes();
        let pkt = RtpPacketBuilder::new().payload_type(101).marked(marker).sequence(Seq::from(self.seq)).ssrc(9).timestamp(ts).payload(&payload).build().expect("packet");
        self.seq = self.seq.wrapping_add(1);
        self.now += 20 * MS;
        self.s.handle_rtp(self.now, &pkt);
        self.collect();
    }

    fn collect(&mut self) {
        self.s.handle_timeout(self.now);
        while let Some(ev) = self.s.poll_event() {
            if let MediaEvent::Dtmf { digit, duration } = ev {
                self.digits.push(digit);
                self.durations.push(duration);
            }
        }
    }

    /// A typical press: marker on the first packet, updates every 20 ms, three end packets.
    fn press(&mut self, ts: u32, digit: char, marker: bool) {
        for k in 1..=5u16 {
            self.send(ts, marker && k == 1, digit, false, 160 * k);
        }
        for _ in 0..3 {
            self.send(ts, false, digit, true, 960);
        }
    }

    fn idle(&mut self, d: Duration) {
        self.now += d;
        self.collect();
    }
}

#[test]
fn each_key_press_is_one_event_with_its_duration() {
    let mut p = Peer::new();
    p.press(1000, '5', true);
    p.idle(Duration::from_secs(2));
    assert_eq!(p.digits, "5");
    assert_eq!(p.durations, vec![120 * MS]);
}

#[test]
fn all_sixteen_keys_map_correctly() {
    let mut p = Peer::new();
    for (i, d) in "0123456789*#ABCD".chars().enumerate() {
        p.press(5000 + 2000 * i as u32, d, true);
    }
    assert_eq!(p.digits, "0123456789*#ABCD");
    assert_eq!(p.s.stats().dtmf_presses, 16);
}

#[test]
fn presses_without_the_marker_bit_are_still_separate() {
    let mut p = Peer::new();
    p.press(100, '1', false);
    p.press(1100, '1', false);
    p.press(2100, '2', false);
    assert_eq!(p.digits, "112");
}

#[test]
fn a_sender_reusing_the_timestamp_still_gives_one_event_per_press() {
    let mut p = Peer::new();
    p.press(777, '4', true);
    p.press(777, '4', true); // same digit, same timestamp: a new press (newer sequence numbers)
    p.press(777, '9', true);
    p.idle(Duration::from_secs(2));
    assert_eq!(p.digits, "449");
}

#[test]
fn lost_end_packets_report_the_press_once() {
    let mut p = Peer::new();
    for k in 1..=4u16 {
        p.send(300, k == 1, '7', false, 160 * k);
    }
    assert_eq!(p.digits, "");
    p.idle(Duration::from_secs(1));
    assert_eq!(p.digits, "7");
    // A straggling end packet afterwards is not a second press.
    p.send(300, false, '7', true, 800);
    // Nor is a straggling update with an older sequence number.
    p.seq = p.seq.wrapping_sub(10);
    p.send(300, false, '7', false, 320);
    p.idle(Duration::from_secs(1));
    assert_eq!(p.digits, "7");
    // A new press whose end never came is reported when the next one starts.
    p.seq = p.seq.wrapping_add(20);
    p.send(900, true, '8', false, 160);
    p.press(1900, '#', true);
    assert_eq!(p.digits, "78#");
}

#[test]
fn only_end_packets_and_reordered_packets_still_give_one_event() {
    let mut p = Peer::new();
    for _ in 0..3 {
        p.send(50, true, '3', true, 400);
    }
    assert_eq!(p.digits, "3");
    // An update packet that arrives after the end (reordered: older sequence number).
    p.seq = p.seq.wrapping_sub(5);
    p.send(50, false, '3', false, 320);
    p.idle(Duration::from_secs(1));
    assert_eq!(p.digits, "3");
}

#[test]
fn other_events_and_truncated_payloads_are_ignored() {
    let mut p = Peer::new();
    let flash = TelephoneEvent { event: 16, end: true, volume: 10, duration: 800 }.to_bytes();
    for (i, payload) in [&flash[..], &[1u8, 2][..], &[][..]].iter().enumerate() {
        let pkt = RtpPacketBuilder::new().payload_type(101).sequence(Seq::from(i as u16)).ssrc(9).timestamp(10).payload(payload).build().expect("packet");
        p.s.handle_rtp(p.now, &pkt);
    }
    p.idle(Duration::from_secs(2));
    assert_eq!(p.digits, "");
}
