//! RFC 4733 telephone-events: receiving key presses and building event packets (for tests and tools).
//!
//! One key press is one event, identified by its RTP timestamp. Senders repeat packets (redundant
//! end packets, usually three), may omit the marker bit, and some reuse the timestamp of the previous
//! press for the next one. The receiver reports a press once, when its end packet arrives (or, if
//! every end packet is lost, when the next press starts or after [`LOST_END_TIMEOUT`]).

use std::time::{Duration, Instant};

/// Reports a press whose end packets were all lost after this long without an update.
pub const LOST_END_TIMEOUT: Duration = Duration::from_millis(600);

/// Maps an RFC 4733 event code to its key (0-9, *, #, A-D). Other events (flash, tones) are `None`.
pub fn event_to_digit(event: u8) -> Option<char> {
    match event {
        0..=9 => Some((b'0' + event) as char),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some((b'A' + event - 12) as char),
        _ => None,
    }
}

/// The inverse of [`event_to_digit`].
pub fn digit_to_event(digit: char) -> Option<u8> {
    match digit {
        '0'..='9' => Some(digit as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(digit as u8 - b'A' + 12),
        'a'..='d' => Some(digit as u8 - b'a' + 12),
        _ => None,
    }
}

/// One parsed telephone-event payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    pub event: u8,
    pub end: bool,
    pub volume: u8,
    /// In RTP timestamp units (8 kHz for G.711 sessions).
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses the 4-byte payload; `None` if too short.
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let b = payload.get(..4)?;
        Some(Self { event: b[0], end: b[1] & 0x80 != 0, volume: b[1] & 0x3F, duration: u16::from_be_bytes([b[2], b[3]]) })
    }

    pub fn to_bytes(self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [self.event, (if self.end { 0x80 } else { 0 }) | (self.volume & 0x3F), d[0], d[1]]
    }
}

/// A completed key press.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfPress {
    pub digit: char,
    pub duration: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Active {
    timestamp: u32,
    event: u8,
    duration: u16,
    last_update: Instant,
    last_seq: u16,
}

#[derive(Debug, Clone, Copy)]
struct Ended {
    timestamp: u32,
    event: u8,
    seq: u16,
}

/// Sans-IO receiver state for one RTP stream's telephone-events.
#[derive(Debug, Default)]
pub struct DtmfReceiver {
    active: Option<Active>,
    ended: Option<Ended>,
    clock_rate: u32,
}

fn seq_newer(a: u16, b: u16) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000
}

impl DtmfReceiver {
    pub fn new(clock_rate: u32) -> Self {
        Self { active: None, ended: None, clock_rate: clock_rate.max(1) }
    }

    fn press(&self, event: u8, duration: u16) -> Option<DtmfPress> {
        let digit = event_to_digit(event)?;
        Some(DtmfPress { digit, duration: Duration::from_micros(duration as u64 * 1_000_000 / self.clock_rate as u64) })
    }

    /// Feeds one telephone-event RTP packet. Returns up to two presses (a press whose end was lost,
    /// then the one this packet ended).
    pub fn handle(&mut self, now: Instant, seq: u16, timestamp: u32, payload: &[u8]) -> Vec<DtmfPress> {
        let mut out = Vec::new();
        let Some(ev) = TelephoneEvent::parse(payload) else { return out };
        if let Some(ended) = self.ended {
            if ended.timestamp == timestamp && ended.event == ev.event {
                // Redundant end packets and late packets of a finished press. A non-end packet that is
                // newer than the end is a new press reusing the timestamp.
                if ev.end || !seq_newer(seq, ended.seq) {
                    return out;
                }
                self.ended = None;
            }
        }
        if let Some(active) = self.active {
            if active.timestamp != timestamp || active.event != ev.event {
                // A new press started while the previous one never ended: its end packets were lost.
                out.extend(self.press(active.event, active.duration));
                self.active = None;
            }
        }
        if ev.end {
            out.extend(self.press(ev.event, ev.duration));
            self.active = None;
            self.ended = Some(Ended { timestamp, event: ev.event, seq });
        } else {
            let duration = self.active.map_or(ev.duration, |a| a.duration.max(ev.duration));
            let last_seq = match self.active {
                Some(a) if !seq_newer(seq, a.last_seq) => a.last_seq,
                _ => seq,
            };
            self.active = Some(Active { timestamp, event: ev.event, duration, last_update: now, last_seq });
        }
        out
    }

    /// When [`DtmfReceiver::handle_timeout`] needs to run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.active.map(|a| a.last_update + LOST_END_TIMEOUT)
    }

    /// Reports a press whose end packets never came.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<DtmfPress> {
        let active = self.active?;
        if now < active.last_update + LOST_END_TIMEOUT {
            return None;
        }
        self.active = None;
        // Remember it as ended so stragglers are not reported again.
        self.ended = Some(Ended { timestamp: active.timestamp, event: active.event, seq: active.last_seq });
        self.press(active.event, active.duration)
    }
}
