//! The sans-IO UA core driven with simulated time by a scripted caller: call setup, the 2xx
//! retransmission schedule, Timer H, CANCEL and BYE races, re-INVITE hold, error responses,
//! allow-list, INFO DTMF and REFER transfer.

use fd_voice::sip::message::{parse_datagram, Datagram, Message};
use fd_voice::sip::ua::{CallRef, EndReason, Transmit, Ua, UaConfig, UaEvent};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const PEER: &str = "127.0.0.1:5070";
const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";

fn peer() -> SocketAddr {
    PEER.parse().unwrap()
}

fn ua() -> Ua {
    let cfg = UaConfig {
        contact_host: "127.0.0.2".into(),
        contact_port: 5080,
        max_calls: 2,
        ..UaConfig::default()
    };
    Ua::new(cfg, 42)
}

struct Caller {
    call_id: String,
    branch: String,
    cseq: u32,
    to_tag: Option<String>,
}

impl Caller {
    fn new(id: &str) -> Caller {
        Caller {
            call_id: id.into(),
            branch: format!("z9hG4bK{id}inv"),
            cseq: 1,
            to_tag: None,
        }
    }
    fn req(&self, method: &str, branch: &str, cseq: u32, extra: &str, body: &str) -> Vec<u8> {
        let to_tag = match (&self.to_tag, method) {
            (Some(t), m) if m != "CANCEL" => format!(";tag={t}"),
            _ => String::new(),
        };
        let ctype = if body.is_empty() {
            String::new()
        } else {
            "Content-Type: application/sdp\r\n".into()
        };
        format!(
            "{method} sip:frontdesk@127.0.0.2:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch={branch};rport\r\n\
Max-Forwards: 70\r\nFrom: \"Caller\" <sip:5551234@127.0.0.1>;tag=caller1\r\nTo: <sip:frontdesk@127.0.0.2>{to_tag}\r\n\
Call-ID: {}\r\nCSeq: {cseq} {method}\r\nContact: <sip:caller@127.0.0.1:5070>\r\n{extra}{ctype}Content-Length: {}\r\n\r\n{body}",
            self.call_id,
            body.len()
        )
        .into_bytes()
    }
    fn invite(&self) -> Vec<u8> {
        self.req("INVITE", &self.branch, self.cseq, "", OFFER)
    }
    fn ack_2xx(&self) -> Vec<u8> {
        self.req("ACK", &format!("{}ack", self.branch), self.cseq, "", "")
    }
    fn ack_non2xx(&self) -> Vec<u8> {
        self.req("ACK", &self.branch, self.cseq, "", "")
    }
    fn cancel(&self) -> Vec<u8> {
        self.req("CANCEL", &self.branch, self.cseq, "", "")
    }
    fn next(&mut self, method: &str, extra: &str, body: &str) -> Vec<u8> {
        self.cseq += 1;
        self.req(
            method,
            &format!("z9hG4bK{}{}", self.call_id, self.cseq),
            self.cseq,
            extra,
            body,
        )
    }
}

fn parse(t: &Transmit) -> Message {
    match parse_datagram(&t.data).expect("UA sends parseable messages") {
        Datagram::Message(m) => m,
        Datagram::KeepAlive => panic!("keepalive"),
    }
}

fn drain(ua: &mut Ua) -> (Vec<Message>, Vec<UaEvent>) {
    let mut out = Vec::new();
    while let Some(t) = ua.poll_transmit() {
        assert_eq!(t.dst, peer());
        out.push(parse(&t));
    }
    let mut ev = Vec::new();
    while let Some(e) = ua.poll_event() {
        ev.push(e);
    }
    (out, ev)
}

fn statuses(msgs: &[Message]) -> Vec<u16> {
    msgs.iter().filter_map(|m| m.status()).collect()
}

/// INVITE → 100 + IncomingCall → answer → 200 (to-tag learnt) → (ACK) → Established.
fn setup(ua: &mut Ua, c: &mut Caller, t0: Instant, ack: bool) -> CallRef {
    ua.on_datagram(t0, peer(), &c.invite());
    let (out, ev) = drain(ua);
    assert_eq!(statuses(&out), vec![100]);
    let call = match &ev[..] {
        [UaEvent::IncomingCall {
            call,
            caller,
            offer: Some(o),
        }] => {
            assert_eq!(caller.user.as_deref(), Some("5551234"));
            assert_eq!(o.remote, "127.0.0.1:40000".parse().unwrap());
            *call
        }
        other => panic!("{other:?}"),
    };
    ua.answer(t0, call, "127.0.0.2:30000".parse().unwrap())
        .unwrap();
    let (out, _) = drain(ua);
    assert_eq!(statuses(&out), vec![200]);
    let ok = &out[0];
    let body = String::from_utf8(ok.body.clone()).unwrap();
    assert!(body.contains("m=audio 30000 RTP/AVP 0 101"), "{body}");
    assert!(ok
        .header("Contact")
        .unwrap()
        .contains("sip:frontdesk@127.0.0.2:5080"));
    c.to_tag = ok.to().unwrap().tag().map(str::to_string);
    assert!(c.to_tag.is_some());
    if ack {
        ua.on_datagram(t0, peer(), &c.ack_2xx());
        let (out, ev) = drain(ua);
        assert!(out.is_empty());
        assert_eq!(ev, vec![UaEvent::Established { call }]);
    }
    call
}

/// Runs timers from `from` to `to`, collecting what was sent with its offset from `base`.
fn run(ua: &mut Ua, base: Instant, to: Instant) -> Vec<(u128, Message)> {
    let mut sent = Vec::new();
    while let Some(d) = ua.next_timeout() {
        if d > to {
            break;
        }
        ua.on_timeout(d);
        while let Some(t) = ua.poll_transmit() {
            sent.push(((d - base).as_millis(), parse(&t)));
        }
    }
    sent
}

#[test]
fn basic_call_and_remote_bye() {
    let (mut ua, mut c, t0) = (ua(), Caller::new("basic"), Instant::now());
    let call = setup(&mut ua, &mut c, t0, true);
    // No retransmissions after the ACK.
    assert!(run(&mut ua, t0, t0 + Duration::from_secs(40)).is_empty());
    ua.on_datagram(t0, peer(), &c.next("BYE", "", ""));
    let (out, ev) = drain(&mut ua);
    assert_eq!(statuses(&out), vec![200]);
    assert_eq!(
        ev,
        vec![UaEvent::Ended {
            call,
            reason: EndReason::RemoteBye
        }]
    );
    assert_eq!(ua.active_calls(), 0);
}

#[test]
fn invite_retransmission_gets_the_last_response_again() {
    let (mut ua, c, t0) = (ua(), Caller::new("retx"), Instant::now());
    ua.on_datagram(t0, peer(), &c.invite());
    drain(&mut ua);
    ua.on_datagram(t0, peer(), &c.invite());
    let (out, ev) = drain(&mut ua);
    assert_eq!(statuses(&out), vec![100]);
    assert!(ev.is_empty(), "a retransmission is not a new call");
}

#[test]
fn unacked_200_retransmits_then_timer_h_ends_call_with_bye() {
    let (mut ua, mut c, t0) = (ua(), Caller::new("noack"), Instant::now());
    let call = setup(&mut ua, &mut c, t0, false);
    let sent = run(&mut ua, t0, t0 + Duration::from_secs(33));
    let oks: Vec<u128> = sent
        .iter()
        .filter(|(_, m)| m.status() == Some(200))
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(&oks[..4], &[500, 1500, 3500, 7500]);
    let bye = sent
        .iter()
        .find(|(_, m)| m.method().map(|m| m.as_str()) == Some("BYE"))
        .expect("BYE after Timer H");
    assert_eq!(bye.0, 32_000);
    assert_eq!(bye.1.to().unwrap().tag(), Some("caller1"));
    let (_, ev) = drain(&mut ua);
    assert_eq!(
        ev,
        vec![UaEvent::Ended {
            call,
            reason: EndReason::AckTimeout
        }]
    );
}

#[test]
fn cancel_before_answer_gives_200_and_487() {
    let (mut ua, c, t0) = (ua(), Caller::new("cancel"), Instant::now());
    ua.on_datagram(t0, peer(), &c.invite());
    let (_, ev) = drain(&mut ua);
    let UaEvent::IncomingCall { call, .. } = ev[0].clone() else {
        panic!()
    };
    ua.on_datagram(t0, peer(), &c.cancel());
    let (out, ev) = drain(&mut ua);
    assert_eq!(statuses(&out), vec![200, 487]);
    assert_eq!(out[0].cseq().unwrap().method.as_str(), "CANCEL");
    assert_eq!(out[1].cseq().unwrap().method.as_str(), "INVITE");
    assert_eq!(
        ev,
        vec![UaEvent::Ended {
            call,
            reason: EndReason::Cancelled
        }]
    );
    assert!(ua
        .answer(t0, call, "127.0.0.2:30000".parse().unwrap())
        .is_err());
    // The 487 is retransmitted until its ACK arrives.
    let sent = run(&mut ua, t0, t0 + Duration::from_millis(600));
    assert_eq!(
        statuses(&sent.into_iter().map(|s| s.1).collect::<Vec<_>>()),
        vec![487]
    );
    ua.on_datagram(t0 + Duration::from_millis(700), peer(), &c.ack_non2xx());
    let (out, _) = drain(&mut ua);
    assert!(out.is_empty(), "ACK for 487 is absorbed");
    assert!(
        run(&mut ua, t0, t0 + Duration::from_secs(40)).is_empty(),
        "no more 487s after the ACK"
    );
}

#[test]
fn cancel_after_200_has_no_effect_on_the_call() {
    let (mut ua, mut c, t0) = (ua(), Caller::new("race"), Instant::now());
    let call = setup(&mut ua, &mut c, t0, false);
    ua.on_datagram(t0, peer(), &c.cancel());
    let (out, ev) = drain(&mut ua);
    assert_eq!(statuses(&out), vec![200]);
    assert!(ev.is_empty());
    ua.on_datagram(t0, peer(), &c.ack_2xx());
    let (_, ev) = drain(&mut ua);
    assert_eq!(ev, vec![UaEvent::Established { call }]);
}

#[test]
fn bye_race_both_sides_hang_up() {
    let (mut ua, mut c, t0) = (ua(), Caller::new("byerace"), Instant::now());
    let call = setup(&mut ua, &mut c, t0, true);
    ua.hangup(t0, call).unwrap();
    let (out, ev) = drain(&mut ua);
    let our_bye = out
        .into_iter()
        .find(|m| m.method().is_some())
        .expect("our BYE");
    assert_eq!(
        ev,
        vec![UaEvent::Ended {
            call,
            reason: EndReason::LocalHangup
        }]
    );
    // Their BYE crosses ours: still answered 200, and no second Ended.
    ua.on_datagram(t0, peer(), &c.next("BYE", "", ""));
    let (out, ev) = drain(&mut ua);
    assert_eq!(statuses(&out), vec![200]);
    assert!(ev.is_empty());
    // They answer our BYE with 481 (they already tore down): the call is gone either way.
    let resp = String::from_utf8(our_bye.to_bytes()).unwrap();
    let via = our_bye.header("Via").unwrap();
    let cseq = our_bye.header("CSeq").unwrap();
    let _ = resp;
    let r481 = format!(
        "SIP/2.0 481 Call/Transaction Does Not Exist\r\nVia: {via}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: byerace\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n",
        our_bye.header("From").unwrap(),
        our_bye.header("To").unwrap()
    );
    ua.on_datagram(t0, peer(), r481.as_bytes());
    assert_eq!(ua.active_calls(), 0);
    // The next call works.
    let mut c2 = Caller::new("after");
    setup(&mut ua, &mut c2, t0, true);
}

#[test]
fn hangup_before_ack_waits_for_the_ack() {
    let (mut ua, mut c, t0) = (ua(), Caller::new("early"), Instant::now());
    let call = setup(&mut ua, &mut c, t0, false);
    ua.hangup(t0, call).unwrap();
    let (out, _) = drain(&mut ua);
    assert!(out.is_empty(), "no BYE before the ACK (RFC 3261 §15)");
    ua.on_datagram(t0, peer(), &c.ack_2xx());
    let (out, ev) = drain(&mut ua);
    assert_eq!(
        out.iter()
            .filter_map(|m| m.method())
            .map(|m| m.as_str().to_string())
            .collect::<Vec<_>>(),
        vec!["BYE"]
    );
    assert!(ev.is_empty());
}

#[test]
fn reinvite_hold_and_unhold() {
    let (mut ua, mut c, t0) = (ua(), Caller::new("hold"), Instant::now());
    let call = setup(&mut ua, &mut c, t0, true);
    let hold = OFFER.replace("a=sendrecv", "a=sendonly");
    ua.on_datagram(t0, peer(), &c.next("INVITE", "", &hold));
    let (out, ev) = drain(&mut ua);
    assert_eq!(statuses(&out), vec![200]);
    let body = String::from_utf8(out[0].body.clone()).unwrap();
    assert!(
        body.contains("a=recvonly") && body.contains("m=audio 30000 "),
        "{body}"
    );
    assert!(
        body.contains("o=frontdesk ") && body.contains(" 2 IN IP4"),
        "version bumped: {body}"
    );
    assert_eq!(ev, vec![UaEvent::Hold { call, on: true }]);
    let cs = c.cseq;
    ua.on_datagram(t0, peer(), &c.req("ACK", "z9hG4bKholdack2", cs, "", ""));
    let inactive = OFFER.replace("a=sendrecv", "a=inactive");
    ua.on_datagram(t0, peer(), &c.next("INVITE", "", &inactive));
    let (out, ev) = drain(&mut ua);
    assert!(String::from_utf8(out[0].body.clone())
        .unwrap()
        .contains("a=inactive"));
    assert!(ev.is_empty(), "still on hold");
    let cs = c.cseq;
    ua.on_datagram(t0, peer(), &c.req("ACK", "z9hG4bKholdack3", cs, "", ""));
    ua.on_datagram(t0, peer(), &c.next("INVITE", "", OFFER));
    let (out, ev) = drain(&mut ua);
    assert!(String::from_utf8(out[0].body.clone())
        .unwrap()
        .contains("a=sendrecv"));
    assert_eq!(ev, vec![UaEvent::Hold { call, on: false }]);
    // A re-INVITE we cannot use is refused and the call continues.
    let cs = c.cseq;
    ua.on_datagram(t0, peer(), &c.req("ACK", "z9hG4bKholdack4", cs, "", ""));
    ua.on_datagram(
        t0,
        peer(),
        &c.next(
            "INVITE",
            "",
            &OFFER.replace("RTP/AVP 0 8 101", "RTP/AVP 18"),
        ),
    );
    let (out, _) = drain(&mut ua);
    assert_eq!(statuses(&out), vec![488]);
    assert_eq!(ua.active_calls(), 1);
}

#[test]
fn options_unknown_methods_and_register() {
    let (mut ua, mut c, t0) = (ua(), Caller::new("opts"), Instant::now());
    ua.on_datagram(t0, peer(), &c.next("OPTIONS", "", ""));
    let (out, _) = drain(&mut ua);
    assert_eq!(statuses(&out), vec![200]);
    assert!(out[0].header("Allow").unwrap().contains("REFER"));
    assert!(out[0].header("Accept").unwrap().contains("application/sdp"));
    ua.on_datagram(t0, peer(), &c.next("FOO", "", ""));
    let (out, _) = drain(&mut ua);
    assert_eq!(statuses(&out), vec![501]);
    assert!(out[0].header("Allow").is_some());
    ua.on_datagram(t0, peer(), &c.next("REGISTER", "", ""));
    let (out, _) = drain(&mut ua);
    assert_eq!(statuses(&out), vec![405]);
    assert!(out[0].header("Allow").is_some());
    ua.on_datagram(t0, peer(), &c.next("BYE", "", ""));
    let (out, _) = drain(&mut ua);
    assert_eq!(statuses(&out), vec![481]);
}

#[test]
fn invite_error_responses() {
    let (mut ua, c, t0) = (ua(), Caller::new("errs"), Instant::now());
    let mut one = |bytes: Vec<u8>| {
        ua.on_datagram(t0, peer(), &bytes);
        let (out, ev) = drain(&mut ua);
        assert!(ev.is_empty());
        assert_eq!(out.len(), 1);
        out.into_iter().next().unwrap()
    };
    // 488: no codec we speak (G.729 only).
    let r = one(c.req(
        "INVITE",
        "z9hG4bKe1",
        1,
        "",
        &OFFER.replace("RTP/AVP 0 8 101", "RTP/AVP 18"),
    ));
    assert_eq!(r.status(), Some(488));
    assert!(r.to().unwrap().tag().is_some());
    // 415: not SDP.
    let mut b = c.req("INVITE", "z9hG4bKe2", 1, "", OFFER);
    let s = String::from_utf8(b.clone())
        .unwrap()
        .replace("application/sdp", "text/plain");
    b = s.into_bytes();
    let r = one(b);
    assert_eq!(r.status(), Some(415));
    assert_eq!(r.header("Accept"), Some("application/sdp"));
    // 420: unsupported Require.
    let r = one(c.req(
        "INVITE",
        "z9hG4bKe3",
        1,
        "Require: 100rel, nonsense\r\n",
        OFFER,
    ));
    assert_eq!(r.status(), Some(420));
    assert_eq!(r.header("Unsupported"), Some("100rel, nonsense"));
    // 404: someone else's extension (svwar must learn nothing).
    let other = String::from_utf8(c.invite())
        .unwrap()
        .replacen("sip:frontdesk@", "sip:1001@", 1)
        .replace("z9hG4bKerrsinv", "z9hG4bKe4");
    assert_eq!(one(other.into_bytes()).status(), Some(404));
    // 416: not a SIP URI.
    let tel = String::from_utf8(c.invite())
        .unwrap()
        .replacen("sip:frontdesk@127.0.0.2:5080", "tel:+15551234", 1)
        .replace("z9hG4bKerrsinv", "z9hG4bKe5");
    assert_eq!(one(tel.into_bytes()).status(), Some(416));
    // 400: malformed (CSeq method mismatch) — answered statelessly with the original Via.
    let bad = String::from_utf8(c.invite())
        .unwrap()
        .replace("CSeq: 1 INVITE", "CSeq: 1 OPTIONS");
    let r = one(bad.into_bytes());
    assert_eq!(r.status(), Some(400));
    assert!(r.header("Via").unwrap().contains("branch=z9hG4bKerrsinv"));
    // 400: duplicate Call-ID (parses, fails the semantic check).
    let dup = String::from_utf8(c.invite())
        .unwrap()
        .replace("Call-ID: errs\r\n", "Call-ID: errs\r\nCall-ID: other\r\n");
    assert_eq!(one(dup.into_bytes()).status(), Some(400));
    // 513: oversize.
    let big = c.req(
        "INVITE",
        "z9hG4bKe6",
        1,
        &format!("X-Pad: {}\r\n", "a".repeat(20_000)),
        OFFER,
    );
    assert_eq!(one(big).status(), Some(513));
}

#[test]
fn capacity_gives_503_with_retry_after() {
    let (mut ua, t0) = (ua(), Instant::now());
    for id in ["cap1", "cap2"] {
        let mut c = Caller::new(id);
        setup(&mut ua, &mut c, t0, true);
    }
    let c = Caller::new("cap3");
    ua.on_datagram(t0, peer(), &c.invite());
    let (out, ev) = drain(&mut ua);
    assert_eq!(statuses(&out), vec![503]);
    assert_eq!(out[0].header("Retry-After"), Some("30"));
    assert!(ev.is_empty());
    assert_eq!(ua.stats().calls_rejected_busy, 1);
}

#[test]
fn via_gets_received_and_rport() {
    let (mut ua, c, t0) = (ua(), Caller::new("via"), Instant::now());
    let natted: SocketAddr = "127.0.0.9:6000".parse().unwrap();
    ua.on_datagram(t0, natted, &c.invite());
    let t = ua.poll_transmit().unwrap();
    assert_eq!(
        t.dst, natted,
        "responses go back where the request came from"
    );
    let via = parse(&t).top_via().unwrap();
    assert_eq!(via.param("received"), Some(Some("127.0.0.9")));
    assert_eq!(via.param("rport"), Some(Some("6000")));
}

#[test]
fn untrusted_sources_get_nothing() {
    let cfg = UaConfig {
        trusted: vec!["10.0.0.0/8".parse().unwrap()],
        ..UaConfig::default()
    };
    let mut ua = Ua::new(cfg, 1);
    let c = Caller::new("scan");
    ua.on_datagram(Instant::now(), peer(), &c.invite());
    assert!(ua.poll_transmit().is_none());
    assert!(ua.poll_event().is_none());
    assert_eq!(ua.stats().untrusted_dropped, 1);
}

#[test]
fn info_dtmf_becomes_an_event() {
    let (mut ua, mut c, t0) = (ua(), Caller::new("info"), Instant::now());
    let call = setup(&mut ua, &mut c, t0, true);
    for (ct, body, want) in [
        (
            "application/dtmf-relay",
            "Signal=5\r\nDuration=160\r\n",
            '5',
        ),
        (
            "application/dtmf-relay",
            "Signal= 11\r\nDuration=160\r\n",
            '#',
        ),
        ("application/dtmf", "*", '*'),
    ] {
        let b = c.next("INFO", "", body);
        let s = String::from_utf8(b).unwrap().replace("application/sdp", ct);
        ua.on_datagram(t0, peer(), s.as_bytes());
        let (out, ev) = drain(&mut ua);
        assert_eq!(statuses(&out), vec![200]);
        assert_eq!(ev, vec![UaEvent::Dtmf { call, digit: want }]);
    }
}

fn respond_to(req: &Message, status: u16) -> Vec<u8> {
    format!(
        "SIP/2.0 {status} X\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
        req.header("Via").unwrap(),
        req.header("From").unwrap(),
        req.header("To").unwrap(),
        req.call_id().unwrap(),
        req.header("CSeq").unwrap()
    )
    .into_bytes()
}

#[test]
fn refer_transfer_success_and_failure() {
    let (mut ua, mut c, t0) = (ua(), Caller::new("refer"), Instant::now());
    let call = setup(&mut ua, &mut c, t0, true);
    assert!(ua.transfer(t0, call, "not a uri").is_err());
    ua.transfer(t0, call, "sip:desk@127.0.0.1:5090").unwrap();
    let (out, _) = drain(&mut ua);
    let refer = &out[0];
    assert_eq!(refer.method().unwrap().as_str(), "REFER");
    assert_eq!(refer.header("Refer-To"), Some("<sip:desk@127.0.0.1:5090>"));
    assert_eq!(
        refer.uri().unwrap().to_string(),
        "sip:caller@127.0.0.1:5070",
        "sent to the remote target"
    );
    assert!(
        ua.transfer(t0, call, "sip:x@127.0.0.1").is_err(),
        "one transfer at a time"
    );
    ua.on_datagram(t0, peer(), &respond_to(refer, 202));
    let sipfrag = |s: &str| format!("Event: refer\r\nSubscription-State: active\r\n{s}");
    // 100 Trying NOTIFY: nothing yet. (Content-Type is rewritten to message/sipfrag.)
    let n = String::from_utf8(c.next("NOTIFY", &sipfrag(""), "SIP/2.0 100 Trying\r\n"))
        .unwrap()
        .replace("application/sdp", "message/sipfrag");
    ua.on_datagram(t0, peer(), n.as_bytes());
    let (out, ev) = drain(&mut ua);
    assert_eq!(statuses(&out), vec![200]);
    assert!(ev.is_empty());
    let n = String::from_utf8(c.next("NOTIFY", &sipfrag(""), "SIP/2.0 200 OK\r\n"))
        .unwrap()
        .replace("application/sdp", "message/sipfrag");
    ua.on_datagram(t0, peer(), n.as_bytes());
    let (_, ev) = drain(&mut ua);
    assert_eq!(
        ev,
        vec![UaEvent::TransferResult {
            call,
            ok: true,
            status: 200
        }]
    );

    // Failure: REFER refused → the call stays up.
    ua.transfer(t0, call, "sip:desk@127.0.0.1:5090").unwrap();
    let (out, _) = drain(&mut ua);
    ua.on_datagram(t0, peer(), &respond_to(&out[0], 403));
    let (_, ev) = drain(&mut ua);
    assert_eq!(
        ev,
        vec![UaEvent::TransferResult {
            call,
            ok: false,
            status: 403
        }]
    );
    assert_eq!(ua.active_calls(), 1);
    // Failure: the target is busy (NOTIFY 486).
    ua.transfer(t0, call, "sip:desk@127.0.0.1:5090").unwrap();
    let (out, _) = drain(&mut ua);
    ua.on_datagram(t0, peer(), &respond_to(&out[0], 202));
    let n = String::from_utf8(c.next(
        "NOTIFY",
        "Event: refer\r\nSubscription-State: terminated\r\n",
        "SIP/2.0 486 Busy Here\r\n",
    ))
    .unwrap()
    .replace("application/sdp", "message/sipfrag");
    ua.on_datagram(t0, peer(), n.as_bytes());
    let (_, ev) = drain(&mut ua);
    assert_eq!(
        ev,
        vec![UaEvent::TransferResult {
            call,
            ok: false,
            status: 486
        }]
    );
    // Timeout: no answer to REFER → 408 after Timer F, call still up.
    ua.transfer(t0, call, "sip:desk@127.0.0.1:5090").unwrap();
    drain(&mut ua);
    let sent = run(&mut ua, t0, t0 + Duration::from_secs(33));
    assert!(
        sent.iter()
            .all(|(_, m)| m.method().map(|m| m.as_str()) == Some("REFER")),
        "only REFER retransmissions"
    );
    let (_, ev) = drain(&mut ua);
    assert_eq!(
        ev,
        vec![UaEvent::TransferResult {
            call,
            ok: false,
            status: 408
        }]
    );
    assert_eq!(ua.active_calls(), 1);
}

#[test]
fn record_route_becomes_the_route_set() {
    let (mut ua, t0) = (ua(), Instant::now());
    let c = Caller::new("rr");
    let inv = String::from_utf8(c.invite()).unwrap().replace(
        "Max-Forwards: 70\r\n",
        "Max-Forwards: 70\r\nRecord-Route: <sip:127.0.0.1:5060;lr>, <sip:10.0.0.1;lr>\r\n",
    );
    ua.on_datagram(t0, peer(), inv.as_bytes());
    let (_, ev) = drain(&mut ua);
    let UaEvent::IncomingCall { call, .. } = ev[0].clone() else {
        panic!()
    };
    ua.answer(t0, call, "127.0.0.2:30000".parse().unwrap())
        .unwrap();
    let (out, _) = drain(&mut ua);
    assert_eq!(
        out[0].header("Record-Route"),
        Some("<sip:127.0.0.1:5060;lr>, <sip:10.0.0.1;lr>")
    );
    let mut c = c;
    c.to_tag = out[0].to().unwrap().tag().map(str::to_string);
    ua.on_datagram(t0, peer(), &c.ack_2xx());
    ua.hangup(t0, call).unwrap();
    let (out, _) = drain(&mut ua);
    let bye = out.iter().find(|m| m.method().is_some()).unwrap();
    assert_eq!(
        bye.header_all("Route").collect::<Vec<_>>(),
        vec!["<sip:127.0.0.1:5060;lr>, <sip:10.0.0.1;lr>"]
    );
}

#[test]
fn late_offer_invite_gets_our_offer_and_answer_in_ack() {
    let (mut ua, mut c, t0) = (ua(), Caller::new("late"), Instant::now());
    ua.on_datagram(t0, peer(), &c.req("INVITE", &c.branch, 1, "", ""));
    let (_, ev) = drain(&mut ua);
    let UaEvent::IncomingCall {
        call, offer: None, ..
    } = ev[0].clone()
    else {
        panic!("{ev:?}")
    };
    ua.answer(t0, call, "127.0.0.2:30000".parse().unwrap())
        .unwrap();
    let (out, _) = drain(&mut ua);
    assert!(String::from_utf8(out[0].body.clone())
        .unwrap()
        .contains("RTP/AVP 9 0 8 101"));
    c.to_tag = out[0].to().unwrap().tag().map(str::to_string);
    let answer = OFFER.replace("RTP/AVP 0 8 101", "RTP/AVP 8 101");
    ua.on_datagram(t0, peer(), &c.req("ACK", "z9hG4bKlateack", 1, "", &answer));
    let (_, ev) = drain(&mut ua);
    assert!(
        matches!(&ev[..], [UaEvent::Established { .. }, UaEvent::MediaChanged { media, .. }] if media.payload_type == 8),
        "{ev:?}"
    );
}

mod registration {
    use super::*;
    use fd_voice::sip::digest::{self, Challenge};
    use fd_voice::sip::ua::RegistrationConfig;

    fn registrar() -> SocketAddr {
        "127.0.0.1:5060".parse().unwrap()
    }

    fn reg_ua() -> Ua {
        let cfg = UaConfig {
            contact_host: "127.0.0.2".into(),
            contact_port: 5080,
            registration: Some(RegistrationConfig {
                registrar: registrar(),
                domain: "pbx.lan".into(),
                user: "250".into(),
                auth_user: "1001".into(),
                password: "s3cret".into(),
                expires: 300,
            }),
            ..UaConfig::default()
        };
        Ua::new(cfg, 7)
    }

    fn sent(ua: &mut Ua) -> Vec<Message> {
        let mut v = Vec::new();
        while let Some(t) = ua.poll_transmit() {
            assert_eq!(t.dst, registrar());
            v.push(parse(&t));
        }
        v
    }

    fn reply(req: &Message, status: u16, extra: &str) -> Vec<u8> {
        format!(
            "SIP/2.0 {status} X\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=reg\r\nCall-ID: {}\r\nCSeq: {}\r\n{extra}Content-Length: 0\r\n\r\n",
            req.header("Via").unwrap(),
            req.header("From").unwrap(),
            req.header("To").unwrap(),
            req.call_id().unwrap(),
            req.header("CSeq").unwrap()
        )
        .into_bytes()
    }

    fn auth_param<'a>(auth: &'a str, name: &str) -> &'a str {
        let i = auth.find(&format!("{name}=")).unwrap() + name.len() + 1;
        let rest = &auth[i..];
        let rest = rest.strip_prefix('"').unwrap_or(rest);
        let end = rest.find(['"', ',']).unwrap_or(rest.len());
        &rest[..end]
    }

    /// Runs timers until the UA sends something; returns when and what.
    fn next_send(ua: &mut Ua, limit: Instant) -> Option<(Instant, Message)> {
        while let Some(d) = ua.next_timeout() {
            if d > limit {
                return None;
            }
            ua.on_timeout(d);
            if let Some(m) = sent(ua).into_iter().next() {
                return Some((d, m));
            }
        }
        None
    }

    const CHALLENGE: &str =
        "WWW-Authenticate: Digest realm=\"pbx.lan\", nonce=\"abc123\", qop=\"auth\", algorithm=SHA-256\r\n";

    #[test]
    fn digest_challenge_then_200_then_refresh() {
        let (mut ua, t0) = (reg_ua(), Instant::now());
        ua.start(t0);
        let r1 = sent(&mut ua).remove(0);
        assert_eq!(r1.method().unwrap().as_str(), "REGISTER");
        assert_eq!(r1.uri().unwrap().to_string(), "sip:pbx.lan");
        assert_eq!(r1.header("To"), Some("<sip:250@pbx.lan>"));
        assert_eq!(r1.header("Contact"), Some("<sip:frontdesk@127.0.0.2:5080>"));
        assert_eq!(r1.header("Expires"), Some("300"));
        assert!(r1.header("Authorization").is_none());

        ua.on_datagram(t0, registrar(), &reply(&r1, 401, CHALLENGE));
        let r2 = sent(&mut ua).remove(0);
        assert_eq!(r2.call_id(), r1.call_id(), "same Call-ID for all REGISTERs");
        assert_eq!(r2.cseq().unwrap().seq, r1.cseq().unwrap().seq + 1);
        let auth = r2.header("Authorization").expect("credentials");
        let ch =
            Challenge::parse(&CHALLENGE["WWW-Authenticate: ".len()..CHALLENGE.len() - 2]).unwrap();
        let want = digest::response(
            &ch,
            "1001",
            "s3cret",
            "REGISTER",
            "sip:pbx.lan",
            auth_param(auth, "cnonce"),
            1,
        );
        assert_eq!(auth_param(auth, "response"), want);
        assert_eq!(auth_param(auth, "algorithm"), "SHA-256");
        assert_eq!(auth_param(auth, "nc"), "00000001");

        ua.on_datagram(
            t0,
            registrar(),
            &reply(
                &r2,
                200,
                "Contact: <sip:frontdesk@127.0.0.2:5080>;expires=120\r\n",
            ),
        );
        assert_eq!(ua.poll_event(), Some(UaEvent::Registered { expires: 120 }));
        // Refresh at 80% of the granted 120 s, with the cached challenge (nc=2).
        let (at, r3) = next_send(&mut ua, t0 + Duration::from_secs(200)).expect("refresh");
        assert_eq!(at, t0 + Duration::from_secs(96));
        assert_eq!(
            auth_param(r3.header("Authorization").unwrap(), "nc"),
            "00000002"
        );
    }

    #[test]
    fn wrong_password_backs_off_and_retries() {
        let (mut ua, t0) = (reg_ua(), Instant::now());
        ua.start(t0);
        let r1 = sent(&mut ua).remove(0);
        ua.on_datagram(t0, registrar(), &reply(&r1, 401, CHALLENGE));
        let r2 = sent(&mut ua).remove(0);
        // Same nonce rejected again: wrong credentials, not a loop of REGISTERs.
        ua.on_datagram(t0, registrar(), &reply(&r2, 401, CHALLENGE));
        assert!(sent(&mut ua).is_empty());
        assert_eq!(
            ua.poll_event(),
            Some(UaEvent::RegistrationFailed { status: 401 })
        );
        let (at, r3) = next_send(&mut ua, t0 + Duration::from_secs(60)).expect("retry");
        assert_eq!(at, t0 + Duration::from_secs(5));
        assert!(
            r3.header("Authorization").is_none(),
            "starts over without stale credentials"
        );
        ua.on_datagram(at, registrar(), &reply(&r3, 403, ""));
        assert_eq!(
            ua.poll_event(),
            Some(UaEvent::RegistrationFailed { status: 403 })
        );
        let (at2, _) = next_send(&mut ua, t0 + Duration::from_secs(60)).expect("retry");
        assert_eq!(at2, at + Duration::from_secs(10), "backoff doubles");
    }

    #[test]
    fn unanswered_register_times_out_and_retries() {
        let (mut ua, t0) = (reg_ua(), Instant::now());
        ua.start(t0);
        sent(&mut ua);
        let mut t = t0;
        while let Some(d) = ua.next_timeout() {
            t = d;
            ua.on_timeout(d);
            sent(&mut ua);
            if let Some(e) = ua.poll_event() {
                assert_eq!(e, UaEvent::RegistrationFailed { status: 408 });
                break;
            }
        }
        assert_eq!(t, t0 + Duration::from_secs(32), "Timer F");
        let (at, _) = next_send(&mut ua, t + Duration::from_secs(60)).expect("retry");
        assert_eq!(at, t + Duration::from_secs(5));
    }

    #[test]
    fn unregister_sends_expires_zero() {
        let (mut ua, t0) = (reg_ua(), Instant::now());
        ua.start(t0);
        sent(&mut ua);
        ua.unregister(t0);
        let r = sent(&mut ua).remove(0);
        assert_eq!(r.header("Expires"), Some("0"));
    }

    fn tls_reg_ua() -> Ua {
        use fd_voice::sip::ua::Transport;
        let cfg = UaConfig {
            contact_host: "127.0.0.2".into(),
            contact_port: 5080,
            tls_port: Some(5081),
            registrar_transport: Transport::Tls,
            registration: Some(RegistrationConfig {
                registrar: registrar(),
                domain: "pbx.lan".into(),
                user: "250".into(),
                auth_user: "1001".into(),
                password: "s3cret".into(),
                expires: 300,
            }),
            ..UaConfig::default()
        };
        Ua::new(cfg, 7)
    }

    /// Everything the UA transmits, with the transport each goes over.
    fn sent_with_transport(ua: &mut Ua) -> Vec<(fd_voice::sip::ua::Transport, Message)> {
        let mut v = Vec::new();
        while let Some(t) = ua.poll_transmit() {
            assert_eq!(t.dst, registrar());
            v.push((t.transport, parse(&t)));
        }
        v
    }

    #[test]
    fn registrar_uris_name_their_transport_and_default_port() {
        use fd_voice::sip::ua::{RegistrarUri, Transport};
        let p = |s: &str| s.parse::<RegistrarUri>();
        let u = p("sips:pbx.lan").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.transport),
            ("pbx.lan", 5061, Transport::Tls)
        );
        let u = p("sip:pbx.lan;transport=TLS").unwrap();
        assert_eq!((u.port, u.transport), (5061, Transport::Tls));
        let u = p("sip:192.0.2.10:5070;transport=tcp").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.transport),
            ("192.0.2.10", 5070, Transport::Tcp)
        );
        let u = p("sip:[2001:db8::1]").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.transport),
            ("2001:db8::1", 5060, Transport::Udp)
        );
        assert!(p("pbx.lan").is_err());
        assert!(p("sip:pbx.lan;transport=sctp")
            .unwrap_err()
            .contains("sctp"));
        assert!(p("sips:pbx.lan;transport=udp").is_err());
        assert!(p("sip:250@pbx.lan").unwrap_err().contains("user"));
    }

    #[test]
    fn register_to_a_tls_registrar_goes_over_tls_without_retransmissions() {
        use fd_voice::sip::ua::Transport;
        let (mut ua, t0) = (tls_reg_ua(), Instant::now());
        ua.start(t0);
        let (tp, r1) = sent_with_transport(&mut ua).remove(0);
        assert_eq!(tp, Transport::Tls);
        let via = r1.header("Via").unwrap();
        assert!(via.starts_with("SIP/2.0/TLS 127.0.0.2:5081;"), "{via}");
        assert!(via.contains(";alias"), "{via}");
        assert_eq!(
            r1.header("Contact"),
            Some("<sip:frontdesk@127.0.0.2:5081;transport=tls>")
        );
        assert_eq!(ua.tls_server_name(registrar()), Some("pbx.lan"));
        // Reliable transport: Timer E never fires; only Timer F is left.
        assert_eq!(ua.next_timeout(), Some(t0 + Duration::from_secs(32)));
        ua.on_timeout(t0 + Duration::from_secs(10));
        assert!(ua.poll_transmit().is_none(), "no retransmission over TLS");

        // The challenge comes back over the connection; the answer goes the same way.
        ua.on_stream(t0, registrar(), Transport::Tls, &reply(&r1, 401, CHALLENGE));
        let (tp, r2) = sent_with_transport(&mut ua).remove(0);
        assert_eq!(tp, Transport::Tls);
        assert!(r2.header("Authorization").is_some());
        ua.on_stream(
            t0,
            registrar(),
            Transport::Tls,
            &reply(
                &r2,
                200,
                "Contact: <sip:frontdesk@127.0.0.2:5081;transport=tls>;expires=120\r\n",
            ),
        );
        assert_eq!(ua.poll_event(), Some(UaEvent::Registered { expires: 120 }));
    }

    #[test]
    fn tls_connect_failure_backs_off_like_any_failure() {
        use fd_voice::sip::ua::Transport;
        let (mut ua, t0) = (tls_reg_ua(), Instant::now());
        ua.start(t0);
        sent_with_transport(&mut ua);
        // The driver could not connect (refused, bad certificate): fail now, not at Timer F.
        let t1 = t0 + Duration::from_secs(1);
        ua.on_transport_error(t1, registrar(), Transport::Tls);
        assert_eq!(
            ua.poll_event(),
            Some(UaEvent::RegistrationFailed { status: 503 })
        );
        let (at, r) = next_send(&mut ua, t0 + Duration::from_secs(60)).expect("retry");
        assert_eq!(at, t1 + Duration::from_secs(5));
        assert!(r.header("Via").unwrap().starts_with("SIP/2.0/TLS "));
        ua.on_transport_error(at, registrar(), Transport::Tls);
        assert_eq!(
            ua.poll_event(),
            Some(UaEvent::RegistrationFailed { status: 503 })
        );
        let (at2, _) = next_send(&mut ua, t0 + Duration::from_secs(60)).expect("retry");
        assert_eq!(at2, at + Duration::from_secs(10), "backoff doubles");
        // An error on some other connection leaves the registration alone.
        ua.on_transport_error(at2, "127.0.0.9:5061".parse().unwrap(), Transport::Tls);
        assert_eq!(ua.poll_event(), None);
    }

    #[test]
    fn losing_the_registration_connection_registers_again_soon() {
        use fd_voice::sip::ua::Transport;
        let (mut ua, t0) = (tls_reg_ua(), Instant::now());
        ua.start(t0);
        let (_, r1) = sent_with_transport(&mut ua).remove(0);
        ua.on_stream(
            t0,
            registrar(),
            Transport::Tls,
            &reply(&r1, 200, "Expires: 600\r\n"),
        );
        assert_eq!(ua.poll_event(), Some(UaEvent::Registered { expires: 600 }));
        // The PBX (or a NAT) drops the connection well before the refresh at 480 s.
        let t1 = t0 + Duration::from_secs(100);
        ua.on_transport_error(t1, registrar(), Transport::Tls);
        assert_eq!(
            ua.poll_event(),
            None,
            "still registered until proven otherwise"
        );
        let (at, _) = next_send(&mut ua, t0 + Duration::from_secs(600)).expect("re-register");
        assert_eq!(at, t1 + Duration::from_secs(1));
    }
}

#[test]
fn tcp_peer_gets_responses_on_tcp_without_retransmissions() {
    use fd_voice::sip::ua::Transport;
    let (mut ua, mut c, t0) = (ua(), Caller::new("tcp"), Instant::now());
    let inv = String::from_utf8(c.invite())
        .unwrap()
        .replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    ua.on_stream_message(t0, peer(), inv.as_bytes());
    let t = ua.poll_transmit().unwrap();
    assert_eq!(t.transport, Transport::Tcp);
    let UaEvent::IncomingCall { call, .. } = ua.poll_event().unwrap() else {
        panic!()
    };
    ua.answer(t0, call, "127.0.0.2:30000".parse().unwrap())
        .unwrap();
    let ok = parse(&ua.poll_transmit().unwrap());
    assert!(ok.header("Contact").unwrap().contains(";transport=tcp"));
    c.to_tag = ok.to().unwrap().tag().map(str::to_string);
    // Reliable transport: no 200 retransmissions (only Timer H remains).
    ua.on_timeout(t0 + Duration::from_secs(2));
    assert!(ua.poll_transmit().is_none());
    ua.on_stream_message(t0, peer(), &c.ack_2xx());
    ua.hangup(t0, call).unwrap();
    let bye = ua.poll_transmit().unwrap();
    assert_eq!(bye.transport, Transport::Tcp);
    assert!(parse(&bye)
        .header("Via")
        .unwrap()
        .starts_with("SIP/2.0/TCP "));
    // Connection gone: later messages fall back to UDP.
    ua.on_connection_closed(peer());
    ua.on_datagram(t0, peer(), &c.next("OPTIONS", "", ""));
    assert_eq!(ua.poll_transmit().unwrap().transport, Transport::Udp);
}

#[test]
fn tls_peer_gets_tls_contact_and_via_and_is_never_sent_in_clear() {
    use fd_voice::sip::ua::Transport;
    let cfg = UaConfig {
        contact_host: "127.0.0.2".into(),
        contact_port: 5080,
        tls_port: Some(5081),
        ..UaConfig::default()
    };
    let (mut ua, mut c, t0) = (Ua::new(cfg, 7), Caller::new("tls"), Instant::now());
    let inv = String::from_utf8(c.invite())
        .unwrap()
        .replace("SIP/2.0/UDP", "SIP/2.0/TLS");
    ua.on_stream(t0, peer(), Transport::Tls, inv.as_bytes());
    assert_eq!(ua.poll_transmit().unwrap().transport, Transport::Tls);
    let UaEvent::IncomingCall { call, .. } = ua.poll_event().unwrap() else {
        panic!()
    };
    ua.answer(t0, call, "127.0.0.2:30000".parse().unwrap())
        .unwrap();
    let t = ua.poll_transmit().unwrap();
    assert_eq!(t.transport, Transport::Tls);
    let ok = parse(&t);
    assert_eq!(
        ok.header("Contact"),
        Some("<sip:frontdesk@127.0.0.2:5081;transport=tls>"),
        "the PBX must come back to our TLS port over TLS"
    );
    c.to_tag = ok.to().unwrap().tag().map(str::to_string);
    // Reliable transport: no 200 retransmissions.
    ua.on_timeout(t0 + Duration::from_secs(2));
    assert!(ua.poll_transmit().is_none());
    ua.on_stream(t0, peer(), Transport::Tls, &c.ack_2xx());
    // The connection drops; our BYE must not fall back to clear-text UDP.
    ua.on_connection_closed(peer());
    ua.hangup(t0, call).unwrap();
    let bye = ua.poll_transmit().unwrap();
    assert_eq!(bye.transport, Transport::Tls);
    let via = parse(&bye).header("Via").unwrap().to_string();
    assert!(via.starts_with("SIP/2.0/TLS 127.0.0.2:5081;"), "{via}");
}

#[test]
fn tls_dialog_whose_connection_is_gone_reconnects_to_the_contact() {
    use fd_voice::sip::ua::Transport;
    let cfg = UaConfig {
        contact_host: "127.0.0.2".into(),
        contact_port: 5080,
        tls_port: Some(5081),
        ..UaConfig::default()
    };
    // The PBX's connection comes from an ephemeral port; its Contact names its TLS listener.
    let pbx_conn: SocketAddr = "127.0.0.1:41234".parse().unwrap();
    let (mut ua, mut c, t0) = (Ua::new(cfg, 7), Caller::new("tlsre"), Instant::now());
    let inv = String::from_utf8(c.invite())
        .unwrap()
        .replace("SIP/2.0/UDP", "SIP/2.0/TLS")
        .replace(
            "<sip:caller@127.0.0.1:5070>",
            "<sip:caller@127.0.0.1:5071;transport=tls>",
        );
    ua.on_stream(t0, pbx_conn, Transport::Tls, inv.as_bytes());
    let UaEvent::IncomingCall { call, .. } = ua.poll_event().unwrap() else {
        panic!()
    };
    ua.answer(t0, call, "127.0.0.2:30000".parse().unwrap())
        .unwrap();
    let mut ok = None;
    while let Some(t) = ua.poll_transmit() {
        assert_eq!((t.dst, t.transport), (pbx_conn, Transport::Tls));
        ok = Some(parse(&t));
    }
    c.to_tag = ok.unwrap().to().unwrap().tag().map(str::to_string);
    ua.on_stream(t0, pbx_conn, Transport::Tls, &c.ack_2xx());
    assert_eq!(ua.poll_event(), Some(UaEvent::Established { call }));

    // While the connection is up, a REFER goes over it.
    ua.transfer(t0, call, "sip:200@pbx.lan").unwrap();
    let refer = ua.poll_transmit().unwrap();
    assert_eq!((refer.dst, refer.transport), (pbx_conn, Transport::Tls));
    // The connection closes before the answer (it may have taken the REFER with it): the REFER
    // goes again over a new TLS connection to the Contact, checked against the Contact's host.
    ua.on_transport_error(t0, pbx_conn, Transport::Tls);
    let again = ua.poll_transmit().unwrap();
    let contact: SocketAddr = "127.0.0.1:5071".parse().unwrap();
    assert_eq!((again.dst, again.transport), (contact, Transport::Tls));
    assert_eq!(again.data, refer.data, "a retransmission: same branch");
    assert_eq!(ua.tls_server_name(contact), Some("127.0.0.1"));
    assert_eq!(ua.poll_event(), None, "the transfer is still pending");
    let r = parse(&refer);
    ua.on_stream(
        t0,
        contact,
        Transport::Tls,
        format!(
            "SIP/2.0 603 Declined\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: tlsre\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
            r.header("Via").unwrap(),
            r.header("From").unwrap(),
            r.header("To").unwrap(),
            r.header("CSeq").unwrap()
        )
        .as_bytes(),
    );
    assert!(matches!(
        ua.poll_event(),
        Some(UaEvent::TransferResult {
            ok: false,
            status: 603,
            ..
        })
    ));

    // The BYE uses the new connection, with our TLS Via.
    ua.hangup(t0, call).unwrap();
    let bye = ua.poll_transmit().unwrap();
    assert_eq!((bye.dst, bye.transport), (contact, Transport::Tls));
    assert!(parse(&bye)
        .header("Via")
        .unwrap()
        .starts_with("SIP/2.0/TLS 127.0.0.2:5081;"));
    // That connection dies and cannot be reopened: one resend, then the dialog ends at once
    // rather than after Timer F.
    ua.on_transport_error(t0, contact, Transport::Tls);
    assert_eq!(ua.poll_transmit().map(|t| t.dst), Some(contact));
    assert_eq!(ua.dialog_count(), 1);
    ua.on_transport_error(t0, contact, Transport::Tls);
    assert_eq!(ua.dialog_count(), 0);
    assert!(ua.poll_transmit().is_none());
}

mod rate_limit {
    use super::*;
    use fd_voice::sip::ua::RateLimit;

    fn limited_ua() -> Ua {
        let cfg = UaConfig {
            contact_host: "127.0.0.2".into(),
            contact_port: 5080,
            max_calls: 100,
            rate_limit: Some(RateLimit {
                per_sec: 20,
                burst: 50,
                retry_after_secs: 5,
            }),
            ..UaConfig::default()
        };
        Ua::new(cfg, 3)
    }

    fn options(ua: &mut Ua, at: Instant, i: u32) -> Vec<u16> {
        let c = Caller::new(&format!("o{i}"));
        ua.on_datagram(
            at,
            peer(),
            &c.req("OPTIONS", &format!("z9hG4bKo{i}"), 1, "", ""),
        );
        statuses(&drain(ua).0)
    }

    #[test]
    fn a_burst_is_cut_at_the_bucket_size_and_refills_at_the_rate() {
        let (mut ua, t0) = (limited_ua(), Instant::now());
        let answered = (0..80)
            .filter(|&i| options(&mut ua, t0, i) == [200])
            .count();
        assert_eq!(answered, 50, "burst size");
        assert_eq!(ua.stats().rate_limited, 30);
        // Over the limit, OPTIONS get no answer at all.
        assert!(options(&mut ua, t0, 100).is_empty());
        // 20/s: after 0.5 s exactly 10 more get through.
        let t1 = t0 + Duration::from_millis(500);
        let answered = (200..240)
            .filter(|&i| options(&mut ua, t1, i) == [200])
            .count();
        assert_eq!(answered, 10);
        // After a long pause the full burst is back (and no more).
        let t2 = t1 + Duration::from_secs(60);
        let answered = (300..400)
            .filter(|&i| options(&mut ua, t2, i) == [200])
            .count();
        assert_eq!(answered, 50);
    }

    #[test]
    fn throttled_invites_get_503_with_retry_after() {
        let (mut ua, t0) = (limited_ua(), Instant::now());
        for i in 0..50 {
            assert_eq!(options(&mut ua, t0, i), vec![200]);
        }
        let c = Caller::new("flood-invite");
        ua.on_datagram(t0, peer(), &c.invite());
        let (out, ev) = drain(&mut ua);
        assert_eq!(statuses(&out), vec![503]);
        assert_eq!(out[0].header("Retry-After"), Some("5"));
        assert!(ev.is_empty(), "a throttled INVITE starts no call");
        // Sources are limited separately: another IP is unaffected.
        let other: SocketAddr = "127.0.0.7:5070".parse().unwrap();
        ua.on_datagram(t0, other, &Caller::new("x").invite());
        let t = ua.poll_transmit().unwrap();
        assert_eq!((t.dst, parse(&t).status()), (other, Some(100)));
    }

    #[test]
    fn requests_inside_a_dialog_are_never_limited_but_fake_dialogs_are() {
        let (mut ua, t0) = (limited_ua(), Instant::now());
        let mut c = Caller::new("call");
        let call = setup(&mut ua, &mut c, t0, true);
        for i in 0..60 {
            options(&mut ua, t0, i);
        }
        assert!(options(&mut ua, t0, 99).is_empty(), "bucket is empty");
        // In-dialog INFO (DTMF) keeps working with an empty bucket...
        for _ in 0..20 {
            let info = c.next(
                "INFO",
                "Content-Type: application/dtmf-relay\r\n",
                "Signal=5\r\nDuration=160\r\n",
            );
            ua.on_datagram(t0, peer(), &info);
            let (out, ev) = drain(&mut ua);
            assert_eq!(statuses(&out), vec![200]);
            assert_eq!(ev, vec![UaEvent::Dtmf { call, digit: '5' }]);
        }
        // ...a made-up To tag does not bypass the limiter (no 481 either)...
        let mut fake = Caller::new("nodialog");
        fake.to_tag = Some("madeup".into());
        ua.on_datagram(t0, peer(), &fake.next("BYE", "", ""));
        assert!(drain(&mut ua).0.is_empty());
        // ...and the caller's BYE still ends the call.
        ua.on_datagram(t0, peer(), &c.next("BYE", "", ""));
        let (out, ev) = drain(&mut ua);
        assert_eq!(statuses(&out), vec![200]);
        assert!(ev.contains(&UaEvent::Ended {
            call,
            reason: EndReason::RemoteBye
        }));
    }

    #[test]
    fn many_sources_cannot_grow_the_table_without_bound() {
        let cfg = UaConfig {
            rate_limit: Some(RateLimit {
                per_sec: 1,
                burst: 1,
                retry_after_secs: 5,
            }),
            ..UaConfig::default()
        };
        let (mut ua, t0) = (Ua::new(cfg, 9), Instant::now());
        let opt = Caller::new("many").req("OPTIONS", "z9hG4bKm", 1, "", "");
        let src = |i: u32| SocketAddr::from(([10, 1, (i >> 8) as u8, i as u8], 5060));
        let mut sent = 0u32;
        let mut answered = |ua: &mut Ua, at: Instant, i: u32| {
            // A fresh branch per request so none is a retransmission.
            sent += 1;
            let m = String::from_utf8(opt.clone())
                .unwrap()
                .replace("z9hG4bKm", &format!("z9hG4bKm{sent}"));
            ua.on_datagram(at, src(i), m.as_bytes());
            let mut got = Vec::new();
            while let Some(t) = ua.poll_transmit() {
                got.push(parse(&t).status());
            }
            got == [Some(200)]
        };
        // 1024 sources each spend their only token: the table is full of active sources.
        for i in 0..1024 {
            assert!(answered(&mut ua, t0, i));
        }
        assert!(
            !answered(&mut ua, t0, 5000),
            "a 1025th active source is refused"
        );
        // A second later every bucket is full again, so idle ones are forgotten to make room.
        let t1 = t0 + Duration::from_secs(1);
        assert!(answered(&mut ua, t1, 5001));
        assert!(answered(&mut ua, t1, 0), "known sources refilled too");
    }

    #[test]
    fn retransmissions_do_not_use_tokens() {
        let (mut ua, t0) = (limited_ua(), Instant::now());
        let c = Caller::new("rtx");
        let opt = c.req("OPTIONS", "z9hG4bKrtx", 1, "", "");
        for _ in 0..200 {
            ua.on_datagram(t0, peer(), &opt);
            assert_eq!(statuses(&drain(&mut ua).0), vec![200]);
        }
        assert_eq!(ua.stats().rate_limited, 0);
    }
}
