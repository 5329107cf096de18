//! SIP (RFC 3261) for a single-purpose user agent: a strict parser, SDP offer/answer, and a
//! sans-IO transaction + dialog core. The tokio layer lives in `crate::endpoint`.

pub mod digest;
pub mod message;
pub mod sdp;
pub mod transaction;
pub mod ua;

pub use message::{
    parse_datagram, parse_stream, Datagram, Message, Method, NameAddr, ParseError, StreamFrame,
    Uri, Via,
};
