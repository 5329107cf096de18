//! Never-panics property tests for the SIP parser (stand-in for a long fuzzing run; the cargo-fuzz
//! target is `voice/fuzz/fuzz_targets/parse.rs`). Inputs are RFC 4475 messages with random
//! mutations, plus arbitrary bytes.

use fd_voice::sip::message::{parse_datagram, parse_stream, Datagram};
use fd_voice::sip::sdp;
use proptest::prelude::*;
use std::path::Path;

fn corpus() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rfc4475");
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sip"))
        .collect();
    v.sort();
    v.into_iter().map(|p| std::fs::read(p).unwrap()).collect()
}

fn exercise(data: &[u8]) {
    if let Ok(Datagram::Message(m)) = parse_datagram(data) {
        // Typed accessors and the serializer must not panic either, and serialising must give
        // something the parser accepts again.
        let _ = (
            m.vias(),
            m.contacts(),
            m.from(),
            m.to(),
            m.cseq(),
            m.content_type(),
            m.semantic_check(),
        );
        let bytes = m.to_bytes();
        assert!(
            matches!(parse_datagram(&bytes), Ok(Datagram::Message(_))),
            "re-serialised message must parse"
        );
        let _ = sdp::negotiate(&m.body);
    }
    let _ = parse_stream(data);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, .. ProptestConfig::default() })]

    #[test]
    fn mutated_torture_messages_never_panic(
        idx in 0usize..49,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..4), 1..8),
    ) {
        let c = corpus();
        let mut data = c[idx % c.len()].clone();
        for (pos, byte, op) in edits {
            if data.is_empty() { break; }
            let p = pos % data.len();
            match op {
                0 => data[p] = byte,
                1 => { data.remove(p); }
                2 => data.insert(p, byte),
                _ => data.truncate(p),
            }
        }
        exercise(&data);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        exercise(&data);
    }
}

mod ua_core {
    use fd_voice::sip::ua::{Ua, UaConfig, UaEvent};
    use proptest::prelude::*;
    use std::time::{Duration, Instant};

    const CALLS: [&str; 5] = ["INVITE", "ACK", "BYE", "CANCEL", "INFO"];

    fn msg(method: &str, branch: u8, cseq: u8, to_tag: bool) -> Vec<u8> {
        let tag = if to_tag { ";tag=0000000000000000" } else { "" };
        let body = if method == "INVITE" {
            "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\n"
        } else {
            ""
        };
        format!(
            "{method} sip:frontdesk@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK{branch};rport\r\n\
From: <sip:a@127.0.0.1>;tag=f\r\nTo: <sip:frontdesk@127.0.0.1>{tag}\r\nCall-ID: c\r\nCSeq: {cseq} {method}\r\n\
Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

        /// Random interleavings of requests (some mutated), app commands and timer jumps never
        /// panic the UA core, and it never holds more calls than configured.
        #[test]
        fn ua_survives_random_sequences(steps in proptest::collection::vec((0u8..8, any::<u8>(), any::<u8>(), any::<bool>(), any::<u16>()), 1..40)) {
            let mut ua = Ua::new(UaConfig { max_calls: 2, ..UaConfig::default() }, 1);
            let t0 = Instant::now();
            let mut now = t0;
            let mut calls = Vec::new();
            let src = "127.0.0.1:5070".parse().unwrap();
            for (op, a, b, flag, skew) in steps {
                match op {
                    0..=4 => {
                        let mut m = msg(CALLS[op as usize], a % 4, b % 5 + 1, flag);
                        if skew % 7 == 0 && !m.is_empty() {
                            let p = usize::from(skew) % m.len();
                            m[p] = a;
                        }
                        ua.on_datagram(now, src, &m);
                    }
                    5 => now += Duration::from_millis(u64::from(skew) * 10),
                    6 => {
                        if let Some(&c) = calls.get(usize::from(a) % calls.len().max(1)) {
                            let _ = match b % 4 {
                                0 => ua.answer(now, c, "127.0.0.1:30000".parse().unwrap()),
                                1 => ua.hangup(now, c),
                                2 => ua.transfer(now, c, "sip:desk@127.0.0.1"),
                                _ => ua.reject(now, c, 486),
                            };
                        }
                    }
                    _ => {}
                }
                if let Some(d) = ua.next_timeout() {
                    if d <= now {
                        ua.on_timeout(now);
                    }
                }
                while ua.poll_transmit().is_some() {}
                while let Some(e) = ua.poll_event() {
                    if let UaEvent::IncomingCall { call, .. } = e {
                        calls.push(call);
                    }
                }
                prop_assert!(ua.active_calls() <= 2);
            }
        }
    }
}
