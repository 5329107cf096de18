//! The per-source rate limit on the real endpoint (burst 50, and a slow 1/s refill so wall-clock
//! scheduling cannot blur the result; the default rates are covered with simulated time in
//! sip_ua.rs): a trusted source blasting OPTIONS gets the burst answered and the rest dropped,
//! its INVITE right after gets 503 + Retry-After, while its call in progress keeps working
//! (in-dialog BYE answered) and another source is not affected.

use fd_voice::endpoint::{Endpoint, EndpointConfig};
use fd_voice::sip::message::{parse_datagram, Datagram, Message};
use fd_voice::sip::ua::RateLimit;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";

fn req(
    me: SocketAddr,
    ep: SocketAddr,
    method: &str,
    id: &str,
    branch: &str,
    to_tag: &str,
) -> String {
    let body = if method == "INVITE" { SDP } else { "" };
    let ct = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    let tag = if to_tag.is_empty() {
        String::new()
    } else {
        format!(";tag={to_tag}")
    };
    let cseq = if method == "BYE" { 2 } else { 1 };
    format!(
        "{method} sip:frontdesk@{ep} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{branch}\r\nFrom: <sip:u@{me}>;tag=u1\r\n\
To: <sip:frontdesk@{ep}>{tag}\r\nCall-ID: {id}\r\nCSeq: {cseq} {method}\r\nContact: <sip:u@{me}>\r\n{ct}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Responses until `quiet` passes without one, with their arrival times.
async fn responses(sock: &UdpSocket, quiet: Duration) -> Vec<(Instant, Message)> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65536];
    while let Ok(Ok((n, _))) = tokio::time::timeout(quiet, sock.recv_from(&mut buf)).await {
        if let Ok(Datagram::Message(m)) = parse_datagram(&buf[..n]) {
            out.push((Instant::now(), m));
        }
    }
    out
}

#[tokio::test]
async fn a_flooding_source_is_limited_but_its_call_and_other_sources_are_not() {
    let rtp = {
        let mut p = 43000u16;
        while !(std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok()
            && std::net::UdpSocket::bind(("127.0.0.1", p + 1)).is_ok())
        {
            p += 2;
        }
        (p, p + 1)
    };
    let cfg = EndpointConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        rtp_ports: rtp,
        rate_limit: Some(RateLimit {
            per_sec: 1,
            burst: 50,
            retry_after_secs: 5,
        }),
        ..EndpointConfig::default()
    };
    let mut endpoint = Endpoint::bind(cfg).await.unwrap();
    let ep = endpoint.local_addr();
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = sock.local_addr().unwrap();

    // A call from the source that will flood.
    sock.send_to(req(me, ep, "INVITE", "call", "inv", "").as_bytes(), ep)
        .await
        .unwrap();
    let ok = {
        let mut buf = vec![0u8; 65536];
        loop {
            let (n, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
                .await
                .expect("200 OK to the INVITE")
                .unwrap();
            if let Ok(Datagram::Message(m)) = parse_datagram(&buf[..n]) {
                if m.status() == Some(200) {
                    break m;
                }
            }
        }
    };
    let to_tag = ok.to().unwrap().tag().unwrap().to_string();
    sock.send_to(req(me, ep, "ACK", "call", "ack", &to_tag).as_bytes(), ep)
        .await
        .unwrap();
    let _call = tokio::time::timeout(Duration::from_secs(5), endpoint.accept())
        .await
        .unwrap()
        .unwrap();

    // The flood: 200 new OPTIONS as fast as possible (the INVITE used one token), then at once
    // a new INVITE.
    let start = Instant::now();
    for i in 0..200 {
        let m = req(me, ep, "OPTIONS", &format!("o{i}"), &format!("o{i}"), "");
        sock.send_to(m.as_bytes(), ep).await.unwrap();
        if i % 10 == 9 {
            // Let the endpoint drain its socket: this tests our limiter, not the kernel's buffer.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    sock.send_to(req(me, ep, "INVITE", "second", "inv2", "").as_bytes(), ep)
        .await
        .unwrap();
    let got = responses(&sock, Duration::from_millis(500)).await;
    let oks: Vec<Instant> = got
        .iter()
        .filter(|(_, m)| {
            m.status() == Some(200) && m.cseq().is_some_and(|c| c.method.as_str() == "OPTIONS")
        })
        .map(|(t, _)| *t)
        .collect();
    let window = oks.last().map_or(0.0, |t| (*t - start).as_secs_f64());
    println!(
        "flood: {} of 200 OPTIONS answered within {window:.3}s",
        oks.len()
    );
    assert!(oks.len() >= 49, "burst not honoured: {}", oks.len());
    // Burst 50 (less the INVITE's token) plus what 1/s refilled while the answers came.
    let bound = 49 + window.ceil() as usize + 1;
    assert!(
        oks.len() <= bound,
        "{} answered, limit allows {bound}",
        oks.len()
    );

    // The INVITE got 503 with Retry-After; no call starts.
    let busy = got
        .iter()
        .find(|(_, m)| m.status() == Some(503))
        .expect("503 to a throttled INVITE");
    assert_eq!(busy.1.header("Retry-After"), Some("5"));
    assert!(
        tokio::time::timeout(Duration::from_millis(200), endpoint.accept())
            .await
            .is_err()
    );

    // Another source is unaffected.
    let other = UdpSocket::bind("127.0.0.3:0").await.unwrap();
    let om = req(
        other.local_addr().unwrap(),
        ep,
        "OPTIONS",
        "other",
        "other",
        "",
    );
    other.send_to(om.as_bytes(), ep).await.unwrap();
    let r = responses(&other, Duration::from_millis(500)).await;
    assert!(
        r.iter().any(|(_, m)| m.status() == Some(200)),
        "other source throttled"
    );

    // The flooder's own call still works: its BYE (in dialog) is answered.
    sock.send_to(req(me, ep, "BYE", "call", "bye", &to_tag).as_bytes(), ep)
        .await
        .unwrap();
    let r = responses(&sock, Duration::from_millis(500)).await;
    assert!(
        r.iter().any(|(_, m)| m.status() == Some(200)
            && m.cseq().is_some_and(|c| c.method.as_str() == "BYE")),
        "in-dialog BYE was limited"
    );
    endpoint.shutdown().await;
}
