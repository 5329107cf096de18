//! The tokio endpoint over real loopback sockets with a scripted caller: with an RTP range of a
//! single port pair, call after call succeeds whichever way the previous one ended (remote BYE,
//! our hangup, CANCEL, the application dropping the call), so every exit path releases its ports.

use fd_voice::endpoint::{CallEvent, Endpoint, EndpointConfig};
use fd_voice::sip::message::{parse_datagram, Datagram, Message};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";

struct Uac {
    sock: UdpSocket,
    ep: SocketAddr,
    id: String,
    to_tag: String,
}

impl Uac {
    async fn new(ep: SocketAddr, id: &str) -> Uac {
        Uac {
            sock: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            ep,
            id: id.into(),
            to_tag: String::new(),
        }
    }
    fn req(&self, method: &str, cseq: u32, branch: &str, body: &str) -> String {
        let me = self.sock.local_addr().unwrap();
        let tag = if self.to_tag.is_empty() || method == "CANCEL" {
            String::new()
        } else {
            format!(";tag={}", self.to_tag)
        };
        let ct = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\r\n"
        };
        format!(
            "{method} sip:frontdesk@{} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{branch}\r\nFrom: <sip:u@{me}>;tag=u1\r\n\
To: <sip:frontdesk@{}>{tag}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\nContact: <sip:u@{me}>\r\n{ct}Content-Length: {}\r\n\r\n{body}",
            self.ep, self.ep, self.id, body.len()
        )
    }
    async fn send(&self, m: String) {
        self.sock.send_to(m.as_bytes(), self.ep).await.unwrap();
    }
    /// Next message matching `pred`, answering any BYE from the endpoint on the way.
    async fn expect(&self, what: &str, pred: impl Fn(&Message) -> bool) -> Message {
        let mut buf = vec![0u8; 65536];
        loop {
            let (n, _) =
                tokio::time::timeout(Duration::from_secs(5), self.sock.recv_from(&mut buf))
                    .await
                    .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
                    .unwrap();
            let Ok(Datagram::Message(m)) = parse_datagram(&buf[..n]) else {
                continue;
            };
            if pred(&m) {
                return m;
            }
        }
    }
    async fn invite_and_get_200(&mut self) {
        self.send(self.req("INVITE", 1, &format!("{}i", self.id), SDP))
            .await;
        let ok = self.expect("200 OK", |m| m.status() == Some(200)).await;
        self.to_tag = ok.to().unwrap().tag().unwrap().to_string();
        self.send(self.req("ACK", 1, &format!("{}a", self.id), ""))
            .await;
    }
}

async fn endpoint() -> Endpoint {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let rtp = {
        // One free even/odd pair: every call needs the previous call's ports back.
        let mut p = 40000u16;
        loop {
            if std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok()
                && std::net::UdpSocket::bind(("127.0.0.1", p + 1)).is_ok()
            {
                break (p, p + 1);
            }
            p += 2;
        }
    };
    let cfg = EndpointConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], port)),
        rtp_ports: rtp,
        answer_delay: Duration::from_millis(300),
        ..EndpointConfig::default()
    };
    Endpoint::bind(cfg).await.unwrap()
}

async fn next_call(ep: &mut Endpoint) -> fd_voice::endpoint::IncomingCall {
    tokio::time::timeout(Duration::from_secs(5), ep.accept())
        .await
        .expect("call")
        .expect("endpoint open")
}

#[tokio::test]
async fn every_exit_path_frees_the_rtp_ports() {
    let mut ep = endpoint().await;
    let addr = ep.local_addr();

    // 1. Caller hangs up.
    let mut u = Uac::new(addr, "c1").await;
    u.invite_and_get_200().await;
    let mut call = next_call(&mut ep).await;
    u.send(u.req("BYE", 2, "c1b", "")).await;
    u.expect("200 to BYE", |m| {
        m.status() == Some(200) && m.cseq().unwrap().method.as_str() == "BYE"
    })
    .await;
    while let Some(e) = call.events.recv().await {
        if e == CallEvent::RemoteHangup {
            break;
        }
    }

    // 2. We hang up.
    let mut u = Uac::new(addr, "c2").await;
    u.invite_and_get_200().await;
    let call = next_call(&mut ep).await;
    call.handle.hangup().await;
    let bye = u
        .expect("BYE", |m| m.method().map(|m| m.as_str()) == Some("BYE"))
        .await;
    assert_eq!(bye.header("Call-ID"), Some("c2"));

    // 3. CANCEL while ringing (answer_delay): the application never sees the call.
    let u = Uac::new(addr, "c3").await;
    u.send(u.req("INVITE", 1, "c3i", SDP)).await;
    u.expect("180", |m| m.status() == Some(180)).await;
    u.send(u.req("CANCEL", 1, "c3i", "")).await;
    u.expect("487", |m| m.status() == Some(487)).await;

    // 4. The application drops the call without hanging up: the endpoint sends BYE itself.
    let mut u = Uac::new(addr, "c4").await;
    u.invite_and_get_200().await;
    drop(next_call(&mut ep).await);
    u.expect("BYE after drop", |m| {
        m.method().map(|m| m.as_str()) == Some("BYE")
    })
    .await;

    // 5. And the next call still gets media ports.
    let mut u = Uac::new(addr, "c5").await;
    u.invite_and_get_200().await;
    let call = next_call(&mut ep).await;
    assert!(call.codec.is_some());
    ep.shutdown().await;
    u.expect("BYE at shutdown", |m| {
        m.method().map(|m| m.as_str()) == Some("BYE")
    })
    .await;
}

#[tokio::test]
async fn wildcard_listen_detects_the_address_towards_the_pbx() {
    let cfg = EndpointConfig {
        listen: SocketAddr::from(([0, 0, 0, 0], 0)),
        trusted_sources: vec!["127.0.0.1".parse().unwrap()],
        rtp_ports: (41000, 41099),
        ..EndpointConfig::default()
    };
    let mut ep = Endpoint::bind(cfg).await.expect("bind with detection");
    let addr = SocketAddr::from(([127, 0, 0, 1], ep.local_addr().port()));
    let mut u = Uac::new(addr, "w1").await;
    u.send(u.req("INVITE", 1, "w1i", SDP)).await;
    let ok = u.expect("200 OK", |m| m.status() == Some(200)).await;
    assert!(
        ok.header("Contact").unwrap().contains("@127.0.0.1:"),
        "{:?}",
        ok.header("Contact")
    );
    assert!(String::from_utf8_lossy(&ok.body).contains("c=IN IP4 127.0.0.1"));
    u.to_tag = ok.to().unwrap().tag().unwrap().to_string();
    u.send(u.req("ACK", 1, "w1a", "")).await;
    let _call = next_call(&mut ep).await;
}
