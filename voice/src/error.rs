//! The one error type of the `voice` crate.

/// Errors from the SIP endpoint and the media stack. Messages say what an IT person can do.
#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    #[error("cannot use socket {addr}: {source} (is another process using that port? set a different --sip-listen or RTP port range)")]
    Bind { addr: String, #[source] source: std::io::Error },
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}
