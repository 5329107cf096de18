//! `run_scenario` end to end against a scripted baresip callee: speech turns, a DTMF
//! turn (`lines = [""]` + `dtmf`), latency per caller turn, and barge-in timing.

use std::path::{Path, PathBuf};

use fd_e2e::audio::Wav;
use fd_e2e::rtp::{Direction, Payload, RtpPacket};
use fd_e2e::speech::SpeechCache;
use fd_e2e::{parse_scenarios, run_scenario, RunOptions, TestCallee};

fn run_dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fd-e2e").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes a callee script: each (text, start second) placed at its exact offset.
/// Returns the path and the speech onsets in seconds from the start of the stream.
fn script(dir: &Path, parts: &[(&str, f64)]) -> (PathBuf, Vec<f64>) {
    let speech = SpeechCache::new(SpeechCache::default_dir()).unwrap();
    let thr = fd_e2e::VoiceParams::default().threshold_rms;
    let mut samples = Vec::new();
    let mut onsets = Vec::new();
    for (text, at) in parts {
        let w = Wav::read(&speech.speech(text).unwrap()).unwrap();
        let start = (at * 8000.0) as usize;
        assert!(samples.len() <= start, "script parts overlap");
        samples.resize(start, 0);
        onsets.push(at + w.voiced_extent(thr).unwrap().0);
        samples.extend_from_slice(&w.samples);
    }
    let p = dir.join("callee-script.wav");
    Wav { rate: 8000, samples }.write(&p).unwrap();
    (p, onsets)
}

/// Wire time of stream second `secs` of the far end (by RTP sequence number).
fn wire_time(packets: &[RtpPacket], secs: f64) -> i64 {
    let rx: Vec<_> = packets.iter().filter(|k| k.dir == Direction::Received && matches!(k.payload, Payload::Audio(_))).collect();
    let n = (secs * 50.0).floor() as u16;
    rx.iter().find(|k| k.seq.wrapping_sub(rx[0].seq) == n).map(|k| k.ts_us).expect("packet present")
}

#[test]
fn speech_and_dtmf_turns_with_latency() {
    let dir = run_dir("caller_scenario");
    let (play, onsets) = script(
        &dir,
        &[("Thank you for calling. How can I help?", 0.0), ("We have Thursday at two. Does that work?", 10.0), ("Transferring you now.", 17.0)],
    );
    let mut callee = TestCallee::start(&dir.join("callee"), "frontdesk", &play, 20.0).unwrap();
    let toml = r#"
        [[scenario]]
        id = "harness-self-test"
        from = "+12175550199"
        lines = ["I'd like to book a cleaning please.", ""]
        dtmf = ["", "0"]
        expect = { outcome = "transferred" }
    "#;
    let s = &parse_scenarios(toml).unwrap()[0];
    let run = run_scenario(s, &callee.uri(), &RunOptions::new(&dir)).unwrap();
    callee.stop();

    assert_eq!(run.caller_wavs.len(), 1);
    assert!(run.events.iter().any(|e| e.what == "turn 1: sent DTMF"), "{:?}", run.events);
    assert!(run.events.iter().any(|e| e.what == "final reply"), "{:?}", run.events);
    assert!(!run.far_end_hung_up);
    assert_eq!(run.latencies.len(), 2, "{:?}", run.latencies);
    let summary = run.summary.unwrap();
    assert_eq!(summary.count, 2);

    // the DTMF turn's latency runs from the last telephone-event packet to the reply
    let last_dtmf = run.record.packets.iter().filter(|k| k.dir == Direction::Sent && matches!(k.payload, Payload::Dtmf { .. })).map(|k| k.ts_us).max().unwrap();
    let reply2 = wire_time(&run.record.packets, onsets[2]);
    let expected = (reply2 - last_dtmf) as f64 / 1000.0;
    assert!((run.latencies[1].latency_ms - expected).abs() <= 40.0, "{:?} vs {expected}", run.latencies[1]);
    assert!(!run.latencies[0].dtmf && run.latencies[1].dtmf, "the second turn was a key press");
    let reply1 = wire_time(&run.record.packets, onsets[1]);
    assert!((run.latencies[0].reply_start_us - reply1).abs() <= 40_000);
    eprintln!("p50 {:.0} ms p95 {:.0} ms over {} turns", summary.p50_ms, summary.p95_ms, summary.count);
}

#[test]
fn barge_in_speaks_one_second_into_the_far_end_turn() {
    let dir = run_dir("caller_barge_in");
    let (play, onsets) = script(
        &dir,
        // the greeting ends before the caller's line does (this callee cannot stop
        // talking), so the runner's final wait sees the reply
        &[("Thank you for calling Smile Dental.", 0.0), ("Sure, a cleaning.", 7.0)],
    );
    let mut callee = TestCallee::start(&dir.join("callee"), "frontdesk", &play, 15.0).unwrap();
    let toml = r#"
        [[scenario]]
        id = "harness-barge-in"
        from = "+12175550198"
        barge_in = true
        lines = ["Sorry, I just need a cleaning."]
        expect = {}
    "#;
    let s = &parse_scenarios(toml).unwrap()[0];
    let run = run_scenario(s, &callee.uri(), &RunOptions::new(&dir)).unwrap();
    callee.stop();

    let thr = fd_e2e::VoiceParams::default().threshold_rms;
    let bot_onset = wire_time(&run.record.packets, onsets[0]);
    let caller_onset = run.record.packets.iter().find(|k| k.dir == Direction::Sent && k.rms() > thr).map(|k| k.ts_us).expect("caller spoke");
    let delay_ms = (caller_onset - bot_onset) as f64 / 1000.0;
    eprintln!("barge-in: caller started {delay_ms:.0} ms into the far end's speech");
    // 1000 ms requested; espeak's leading silence and the source switch add a little
    assert!((950.0..=1250.0).contains(&delay_ms), "{delay_ms}");
    assert_eq!(run.latencies.len(), 1, "{:?}", run.latencies);
    assert!((run.latencies[0].reply_start_us - wire_time(&run.record.packets, onsets[1])).abs() <= 20_000);
}
