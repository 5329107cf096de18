//! The telephony side of Front Desk: a SIP endpoint, RTP media and turn-taking.
//!
//! Every protocol core here is sans-IO: a deterministic state machine fed messages and an injected
//! time, with no sockets and no clock inside. Thin tokio layers (`endpoint`, `media::driver`) own the
//! sockets and timers. This crate knows nothing of practices or patients.

pub mod error;
pub use error::VoiceError;
pub mod sip;
pub mod media;
pub mod turn;
pub mod endpoint;
