//! Every RFC 4475 torture message against its verdict in INDEX.tsv: `valid` and
//! `valid-but-semantic-issue` messages parse; `invalid` ones are rejected; nothing panics. For
//! rejected requests whose request line is recoverable, the endpoint answers 400/505: checked by
//! building that response from the error.

use fd_voice::sip::message::{
    parse_datagram, parse_stream, response_from_raw, Datagram, StreamFrame,
};
use std::path::Path;

fn fixtures() -> Vec<(String, String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rfc4475");
    let index = std::fs::read_to_string(dir.join("INDEX.tsv")).expect("INDEX.tsv");
    index
        .lines()
        .skip(1)
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            let bytes = std::fs::read(dir.join(cols[0])).expect("fixture");
            (cols[0].to_string(), cols[3].to_string(), bytes)
        })
        .collect()
}

#[test]
fn every_fixture_gets_its_verdict() {
    let all = fixtures();
    assert_eq!(all.len(), 49);
    let mut failures = Vec::new();
    for (file, verdict, bytes) in &all {
        let res = parse_datagram(bytes);
        let ok = matches!(res, Ok(Datagram::Message(_)));
        let want = verdict != "invalid";
        if ok != want {
            failures.push(format!("{file}: verdict {verdict}, got {res:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn rejected_requests_can_be_answered() {
    // Requests whose failure is in a header (not the request line or framing) must keep enough to
    // build a 400 with the original Via.
    let answerable = [
        "3.1.2.1_badinv01.sip",
        "3.1.2.4_scalar02.sip",
        "3.1.2.6_quotbal.sip",
        "3.1.2.17_mismatch01.sip",
        "3.1.2.2_clerr.sip",
    ];
    for (file, _, bytes) in fixtures() {
        if !answerable.contains(&file.as_str()) {
            continue;
        }
        let e = parse_datagram(&bytes).expect_err(&file);
        let req = e
            .request
            .unwrap_or_else(|| panic!("{file}: no recoverable request"));
        let resp = response_from_raw(&req, e.status, Some("x"))
            .unwrap_or_else(|| panic!("{file}: no Via"));
        assert_eq!(resp.status(), Some(400), "{file}");
        assert!(resp.header("Via").is_some());
    }
    let badvers = fixtures()
        .into_iter()
        .find(|f| f.0.contains("badvers"))
        .unwrap();
    assert_eq!(parse_datagram(&badvers.2).unwrap_err().status, 505);
}

#[test]
fn details_the_rfc_calls_out() {
    let get = |name: &str| {
        let f = fixtures().into_iter().find(|f| f.0.contains(name)).unwrap();
        match parse_datagram(&f.2).unwrap() {
            Datagram::Message(m) => m,
            Datagram::KeepAlive => panic!(),
        }
    };
    // wsinv: folding, compact forms, LWS around separators, leading zeros.
    let m = get("wsinv");
    assert_eq!(m.cseq().unwrap().seq, 9);
    assert_eq!(m.vias().len(), 3);
    assert_eq!(m.from().unwrap().tag(), Some("98asjd8"));
    assert_eq!(
        m.from().unwrap().display.as_deref(),
        Some("J Rosenberg \\\"")
    );
    assert_eq!(m.header("UnknownHeaderWithUnusualValue"), Some(";;,,;;,;"));
    assert_eq!(m.contacts()[0].param("q"), Some(Some("0.33")));
    // dblreq: the trailing INVITE octets are ignored.
    let m = get("dblreq");
    assert_eq!(m.method().unwrap().as_str(), "REGISTER");
    assert!(m.body.is_empty());
    // esc02: the method is not REGISTER; C%6Fntact is another header.
    let m = get("esc02");
    assert_eq!(m.method().unwrap().as_str(), "RE%47IST%45R");
    assert_eq!(m.contacts().len(), 2);
    // semiuri: the user part contains ';'.
    let m = get("semiuri");
    assert_eq!(
        m.uri().unwrap().user.as_deref(),
        Some("user;par=u%40example.net")
    );
    assert!(m.uri().unwrap().params.is_empty());
    // mpart01: binary body framed by Content-Length.
    assert_eq!(get("mpart01").body.len(), 553);
    // cparam01: unknownparam belongs to the header, not the URI; cparam02 the reverse.
    let c = get("cparam01").contacts().remove(0);
    assert!(c.uri.param("unknownparam").is_none() && c.param("unknownparam").is_some());
    let c = get("cparam02").contacts().remove(0);
    assert!(c.uri.param("unknownparam").is_some() && c.param("unknownparam").is_none());
    // inv2543: no Content-Length, body is the rest of the datagram.
    assert!(!get("inv2543").body.is_empty());
    // multi01 and mcl01 parse but fail the semantic check (→ 400 from the UA).
    assert!(get("multi01").semantic_check().is_err());
    assert!(get("mcl01").semantic_check().is_err());
    assert!(get("insuf").semantic_check().is_err());
    assert!(get("wsinv").semantic_check().is_ok());
}

#[test]
fn stream_framing_never_panics_and_splits_every_prefix() {
    for (file, verdict, bytes) in fixtures() {
        // Feed every prefix: a valid stream message must be Incomplete until its last octet.
        for cut in 0..bytes.len() {
            let _ = parse_stream(&bytes[..cut]);
        }
        if verdict == "valid" && !file.contains("inv2543") && !file.contains("dblreq") {
            match parse_stream(&bytes) {
                Ok(StreamFrame::Message { consumed, .. }) => {
                    assert_eq!(consumed, bytes.len(), "{file}")
                }
                other => panic!("{file}: {other:?}"),
            }
        }
    }
}

#[test]
fn baddn_variant_is_rejected_for_its_display_names() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/rfc4475/variants/3.1.2.15_baddn.crlf-terminated.variant");
    let e = parse_datagram(&std::fs::read(p).unwrap()).unwrap_err();
    assert_eq!(e.status, 400);
    assert!(
        e.request.is_some(),
        "request line is fine, so a 400 can be sent"
    );
}
