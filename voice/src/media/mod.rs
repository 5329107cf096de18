//! RTP media: G.711 and G.722, resampling, jitter buffer, RFC 4733 DTMF, RTCP, the sans-IO [`MediaSession`]
//! and its tokio [`driver`].

pub mod codec;
pub mod dtmf;
pub mod driver;
pub mod g711;
pub mod g722;
pub mod jitter;
pub mod resample;
pub mod rtcp;
pub mod session;

pub use driver::{spawn, spawn_with, DriverOptions, MediaHandle};
pub use codec::{Codec, Decoder, Encoder};
pub use resample::Resampler;
pub use session::{Channel, IdleTransmit, MediaConfig, MediaEvent, MediaSession, MediaStats, Transmit};

/// A fresh random SSRC for a new call's session (RFC 3550 §8: random, fixed for the session).
pub fn random_ssrc() -> u32 {
    rand::random()
}
