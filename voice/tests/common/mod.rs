//! Helpers shared by the stream-transport tests (TLS in and out).

#![allow(dead_code)]

use fd_voice::sip::message::{parse_stream, Message, StreamFrame};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// One SIP peer's end of a stream connection (TCP or TLS): framed reads, whole-message writes.
pub struct SipConn<S> {
    pub s: S,
    pub buf: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> SipConn<S> {
    pub fn new(s: S) -> Self {
        SipConn { s, buf: Vec::new() }
    }

    pub async fn send(&mut self, m: &str) {
        self.s.write_all(m.as_bytes()).await.unwrap();
        self.s.flush().await.unwrap();
    }

    /// The next message.
    pub async fn next(&mut self, what: &str) -> Message {
        self.next_matching(what, |_| true).await
    }

    /// The next message `pred` accepts (others are skipped); keep-alives are skipped too. Fails
    /// the test after 10 s or if the connection closes.
    pub async fn next_matching(&mut self, what: &str, pred: impl Fn(&Message) -> bool) -> Message {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            while let Ok(f) = parse_stream(&self.buf) {
                match f {
                    StreamFrame::Incomplete => break,
                    StreamFrame::KeepAlive { consumed } => {
                        self.buf.drain(..consumed);
                    }
                    StreamFrame::Message { message, consumed } => {
                        self.buf.drain(..consumed);
                        if pred(&message) {
                            return message;
                        }
                    }
                }
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout_at(deadline, self.s.read(&mut chunk))
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
                .unwrap();
            assert!(n > 0, "connection closed while waiting for {what}");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// An even RTP port and the next one, both free on loopback, from `from` up.
pub fn free_rtp_pair(from: u16) -> (u16, u16) {
    let mut p = from;
    loop {
        if std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok() && std::net::UdpSocket::bind(("127.0.0.1", p + 1)).is_ok() {
            return (p, p + 1);
        }
        p += 2;
    }
}
