//! The audio codecs RTP calls use here: G.711 μ-law/A-law (8 kHz) and G.722 (16 kHz, "HD voice").
//!
//! [`Codec`] is the plain choice (what SDP negotiates); [`Encoder`] and [`Decoder`] carry the state a
//! stream needs (G.722 is ADPCM: every packet depends on the ones before it).

use super::g711::{alaw_decode, alaw_encode, ulaw_decode, ulaw_encode};
use super::g722::{G722Decoder, G722Encoder};

/// RTP clock rate of every codec here. G.722 samples at 16 kHz but, by an error frozen into
/// RFC 3551 §4.5.2, its RTP clock (timestamps, `G722/8000`) runs at 8000 Hz.
pub const RTP_CLOCK: u32 = 8000;

/// Audio codecs. Static payload types: PCMU = 0, PCMA = 8, G722 = 9.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    Pcmu,
    Pcma,
    G722,
}

impl Codec {
    /// Our default answer preference: wideband first (Whisper hears 16 kHz audio far better).
    pub const DEFAULT_PREFERENCE: [Codec; 3] = [Codec::G722, Codec::Pcmu, Codec::Pcma];

    /// The static RTP payload type (RFC 3551).
    pub fn static_payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
            Codec::G722 => 9,
        }
    }

    /// Same as [`Codec::static_payload_type`] (the name the SDP code uses).
    pub fn payload_type(self) -> u8 {
        self.static_payload_type()
    }

    /// The SDP encoding name (`a=rtpmap:<pt> <name>/8000`).
    pub fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::G722 => "G722",
        }
    }

    /// Parses an encoding name as used in SDP and configuration files (case-insensitive).
    pub fn from_name(name: &str) -> Option<Codec> {
        [Codec::Pcmu, Codec::Pcma, Codec::G722].into_iter().find(|c| c.name().eq_ignore_ascii_case(name.trim()))
    }

    /// Audio sample rate of the PCM this codec carries.
    pub fn sample_rate(self) -> u32 {
        match self {
            Codec::Pcmu | Codec::Pcma => 8000,
            Codec::G722 => 16_000,
        }
    }

    /// RTP timestamp clock rate (8000 for all three; see [`RTP_CLOCK`]).
    pub fn clock_rate(self) -> u32 {
        RTP_CLOCK
    }

    /// The byte that decodes to (near) zero, for G.711 silence packets. G.722 has no such byte
    /// (silence is whatever the encoder state makes of zeros): use an [`Encoder`].
    pub fn silence_byte(self) -> u8 {
        match self {
            Codec::Pcmu => 0xFF,
            Codec::Pcma => 0xD5,
            Codec::G722 => 0xFF,
        }
    }

    /// Appends the decoded samples of `payload` to `out`. For G.722 this decodes from a fresh state;
    /// a stream needs a [`Decoder`].
    pub fn decode_into(self, payload: &[u8], out: &mut Vec<i16>) {
        Decoder::new(self).decode_into(payload, out)
    }

    /// Appends the encoded bytes of `pcm` to `out`. For G.722 this encodes from a fresh state; a
    /// stream needs an [`Encoder`].
    pub fn encode_into(self, pcm: &[i16], out: &mut Vec<u8>) {
        Encoder::new(self).encode_into(pcm, out)
    }
}

impl std::fmt::Display for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A stream encoder: PCM at [`Codec::sample_rate`] in, payload octets out.
#[derive(Debug, Clone)]
pub enum Encoder {
    Pcmu,
    Pcma,
    G722(Box<G722Encoder>),
}

impl Encoder {
    pub fn new(codec: Codec) -> Self {
        match codec {
            Codec::Pcmu => Encoder::Pcmu,
            Codec::Pcma => Encoder::Pcma,
            Codec::G722 => Encoder::G722(Box::default()),
        }
    }

    pub fn codec(&self) -> Codec {
        match self {
            Encoder::Pcmu => Codec::Pcmu,
            Encoder::Pcma => Codec::Pcma,
            Encoder::G722(_) => Codec::G722,
        }
    }

    pub fn encode_into(&mut self, pcm: &[i16], out: &mut Vec<u8>) {
        match self {
            Encoder::Pcmu => out.extend(pcm.iter().map(|&s| ulaw_encode(s))),
            Encoder::Pcma => out.extend(pcm.iter().map(|&s| alaw_encode(s))),
            Encoder::G722(e) => e.encode_into(pcm, out),
        }
    }
}

/// A stream decoder: payload octets in, PCM at [`Codec::sample_rate`] out.
#[derive(Debug, Clone)]
pub enum Decoder {
    Pcmu,
    Pcma,
    G722(Box<G722Decoder>),
}

impl Decoder {
    pub fn new(codec: Codec) -> Self {
        match codec {
            Codec::Pcmu => Decoder::Pcmu,
            Codec::Pcma => Decoder::Pcma,
            Codec::G722 => Decoder::G722(Box::default()),
        }
    }

    pub fn codec(&self) -> Codec {
        match self {
            Decoder::Pcmu => Codec::Pcmu,
            Decoder::Pcma => Codec::Pcma,
            Decoder::G722(_) => Codec::G722,
        }
    }

    pub fn decode_into(&mut self, payload: &[u8], out: &mut Vec<i16>) {
        match self {
            Decoder::Pcmu => out.extend(payload.iter().map(|&b| ulaw_decode(b))),
            Decoder::Pcma => out.extend(payload.iter().map(|&b| alaw_decode(b))),
            Decoder::G722(d) => d.decode_into(payload, out),
        }
    }
}
