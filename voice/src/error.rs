//! The one error type of the `voice` crate.

/// Errors from the SIP endpoint and the media stack. Messages say what an IT person can do.
#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    #[error("cannot use socket {addr}: {source} (is another process using that port? set a different --sip-listen or RTP port range)")]
    Bind { addr: String, #[source] source: std::io::Error },
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("the call's outbound audio queue is full (the media task is not keeping up; is the machine overloaded?); this audio was dropped")]
    MediaQueueFull,
    #[error("the call's media task has ended (the call is over or its RTP stream timed out)")]
    MediaStopped,
    #[error("no free RTP port in {range} (all in use by other calls or other programs): widen the RTP port range")]
    NoRtpPort { range: String },
    #[error("SIP: {0}")]
    Sip(#[from] crate::sip::ua::UaError),
    #[error("the SIP endpoint has shut down")]
    EndpointClosed,
    #[error("invalid voice configuration: {0}")]
    Config(String),
}
