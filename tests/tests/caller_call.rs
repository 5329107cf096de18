//! The scripted caller against a baresip callee that plays speech with known pauses:
//! (a) the call is established, (b) `wait_for_bot_turn` returns in the pauses,
//! (c) the caller's speech arrives at the callee, (e) the latency computed from the
//! capture matches the gap known from the callee's RTP stream within ±40 ms.

use std::path::PathBuf;
use std::time::Duration;

use fd_e2e::audio::{best_envelope_correlation, Wav};
use fd_e2e::baresip::now_us;
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
fn call_turns_audio_and_latency() {
    let dir = run_dir("caller_call");
    let speech = SpeechCache::new(SpeechCache::default_dir()).unwrap();
    let thr = fd_e2e::VoiceParams::default().threshold_rms;

    // Callee audio: greeting, 7 s pause, reply, pause. Offsets are exact sample counts.
    let greeting = Wav::read(&speech.speech("Hello, thank you for calling Smile Dental. How can I help you today?").unwrap()).unwrap();
    let reply = Wav::read(&speech.speech("Sure, what day works best for you?").unwrap()).unwrap();
    let (_, greet_end) = greeting.voiced_extent(thr).unwrap();
    let reply_at = greeting.samples.len() + 7 * 8000;
    let (reply_on, reply_off) = reply.voiced_extent(thr).unwrap();
    let mut samples = greeting.samples.clone();
    samples.resize(reply_at, 0);
    samples.extend_from_slice(&reply.samples);
    let play = dir.join("callee-script.wav");
    Wav { rate: 8000, samples }.write(&play).unwrap();
    let reply_onset_s = reply_at as f64 / 8000.0 + reply_on;

    let mut callee = TestCallee::start(&dir.join("callee"), "frontdesk", &play, 20.0).unwrap();
    let cfg = CallerConfig::new(&callee.uri(), "+12175550161", dir.join("caller")).unwrap();
    let rtp = cfg.rtp_ports;

    // (a)
    let mut caller = ScriptedCaller::start(cfg).unwrap();

    // (b) greeting turn
    let t1 = caller.wait_for_bot_turn(Duration::from_secs(20)).unwrap();
    let t1_returned = now_us();
    let line_text = "I would like to book a cleaning please.";
    let said = caller.say(line_text).unwrap();
    // (b) reply turn
    let t2 = caller.wait_for_bot_turn(Duration::from_secs(20)).unwrap();
    let t2_returned = now_us();
    caller.hangup().unwrap();
    let rec = caller.finish().unwrap();
    callee.stop();

    // (a) established, then closed by our hangup
    assert!(rec.events.iter().any(|e| e.kind == "CALL_ESTABLISHED"), "{:?}", rec.events);
    assert!(rec.events.iter().any(|e| e.kind == "CALL_CLOSED"));

    // Ground truth for the callee's audio: packet n of its stream (by RTP sequence,
    // independent of any energy detection) carries samples 160n..160n+160.
    let rx: Vec<_> = rec.packets.iter().filter(|k| k.dir == Direction::Received && matches!(k.payload, Payload::Audio(_))).collect();
    assert!(rx.len() > 400, "received only {} audio packets", rx.len());
    let seq0 = rx[0].seq;
    let wire_time_of = |secs: f64| -> i64 {
        let n = (secs * 50.0).floor() as u16;
        rx.iter().find(|k| k.seq.wrapping_sub(seq0) == n).map(|k| k.ts_us).expect("packet present")
    };
    let greet_end_wire = wire_time_of(greet_end - 0.02);
    let reply_onset_wire = wire_time_of(reply_onset_s);

    // (b) the first turn ends with the greeting; wait_for_bot_turn returned after ≥1.2 s of
    // silence and well before the reply; the second turn is the reply.
    assert!((t1.end_us - greet_end_wire).abs() <= 60_000, "greeting end {} vs {}", t1.end_us, greet_end_wire);
    eprintln!("wait_for_bot_turn returned {} ms after the greeting's last speech packet", (t1_returned - t1.end_us) / 1000);
    assert!(t1_returned >= t1.end_us + 1_200_000, "returned too early");
    assert!(t1_returned < reply_onset_wire - 1_000_000, "returned too late (caller could not answer in the pause)");
    assert!((t2.start_us - reply_onset_wire).abs() <= 60_000, "reply start {} vs {}", t2.start_us, reply_onset_wire);
    let reply_end_wire = wire_time_of(reply_at as f64 / 8000.0 + reply_off - 0.02);
    assert!(t2_returned >= reply_end_wire + 1_200_000);
    assert!(said.speech_end_us < reply_onset_wire, "line must end before the reply for this test");

    // (c) the callee heard the line: 20 ms envelope correlation ≥ 0.8
    let heard = Wav::read(&callee.recording().expect("callee recording")).unwrap();
    let line = Wav::read(&said.wav).unwrap();
    let (corr, lag) = best_envelope_correlation(&line, &heard);
    eprintln!("callee recording: envelope correlation {corr:.3} at {lag:.2} s");
    assert!(corr >= 0.8, "envelope correlation {corr:.3}");

    // (e) latency = reply onset on the wire - end of the caller's speech on the wire.
    // The caller's end is its first speech packet + the line's known speech length.
    let (line_on, line_off) = line.voiced_extent(thr).unwrap();
    let caller_onset = rec
        .packets
        .iter()
        .find(|k| k.dir == Direction::Sent && k.ts_us >= said.started_us - 100_000 && k.rms() > thr)
        .map(|k| k.ts_us)
        .expect("caller speech on the wire");
    let caller_end = caller_onset + ((line_off - line_on - 0.02) * 1e6) as i64;
    let expected_ms = (reply_onset_wire - caller_end) as f64 / 1000.0;
    assert_eq!(rec.latencies.len(), 1, "greeting has no caller turn before it: {:?}", rec.latencies);
    let got = rec.latencies[0].latency_ms;
    eprintln!("latency from capture {got:.1} ms, expected {expected_ms:.1} ms (caller RTP {rtp:?})");
    assert!((got - expected_ms).abs() <= 40.0, "latency {got:.1} ms vs expected {expected_ms:.1} ms");
    assert!(rec.received_wav.exists() && rec.capture.exists());
}
