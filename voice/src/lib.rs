//! SIP endpoint, RTP media and turn-taking: sans-IO cores plus thin tokio drivers.
