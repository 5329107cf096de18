//! (d) DTMF from the scripted caller appears on the wire as RFC 4733 telephone-events
//! with the payload type negotiated in SDP, one event per digit, in order.

use std::path::PathBuf;
use std::time::Duration;

use fd_e2e::rtp::{Direction, Payload};
use fd_e2e::speech::SpeechCache;
use fd_e2e::{CallerConfig, ScriptedCaller, TestCallee};

fn run_dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fd-e2e").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn dtmf_digits_are_rfc4733_events_on_the_wire() {
    let dir = run_dir("caller_dtmf");
    let speech = SpeechCache::new(SpeechCache::default_dir()).unwrap();
    let greeting = speech.speech("Press zero for the front desk.").unwrap();
    let mut callee = TestCallee::start(&dir.join("callee"), "frontdesk", &greeting, 20.0).unwrap();
    let mut caller = ScriptedCaller::start(CallerConfig::new(&callee.uri(), "anonymous", dir.join("caller")).unwrap()).unwrap();
    caller.wait_for_bot_turn(Duration::from_secs(20)).unwrap();
    caller.send_dtmf("0").unwrap();
    caller.send_dtmf("5#").unwrap();
    let rec = caller.finish().unwrap();
    callee.stop();

    // the payload type announced for telephone-event in the caller's SDP offer
    let sdp_pt: u8 = rec
        .datagrams
        .iter()
        .filter_map(|d| std::str::from_utf8(&d.payload).ok())
        .find(|s| s.starts_with("INVITE "))
        .and_then(|s| s.lines().find_map(|l| l.trim_end().strip_prefix("a=rtpmap:")?.strip_suffix(" telephone-event/8000")))
        .and_then(|n| n.trim().parse().ok())
        .expect("telephone-event in the INVITE's SDP");

    // group the caller's telephone-event packets into events (a marker bit or a new
    // event code starts one), each must carry an end packet
    let mut events: Vec<(u8, bool)> = Vec::new();
    for k in rec.packets.iter().filter(|k| k.dir == Direction::Sent) {
        if let Payload::Dtmf { event, end, .. } = k.payload {
            assert_eq!(k.payload_type, sdp_pt, "telephone-event must use the negotiated PT");
            match events.last_mut() {
                Some((e, ended)) if *e == event && !k.marker => *ended |= end,
                _ => events.push((event, end)),
            }
        }
    }
    // RFC 4733 event codes: 0-9 = digits, 11 = '#'
    assert_eq!(events, vec![(0, true), (5, true), (11, true)]);
}
