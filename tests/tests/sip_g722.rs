//! HD voice end to end: baresip offering G.722 calls the in-process voice endpoint. The endpoint
//! must pick G.722 (PT 9) over PCMU, and wideband audio must arrive intact both ways: 5 kHz tone
//! bursts (which no 8 kHz codec can carry) are checked by 20 ms envelope correlation (>= 0.8, as
//! in sip_baresip.rs) and by the 5 kHz level itself. A second test runs the scripted caller
//! harness with `g722,pcmu` (16 kHz espeak speech) and checks its capture analysis.
//! Skips (with a message) only if baresip is not installed: `apt-get install baresip-core`.

mod sip_common;

use fd_e2e::audio::{best_envelope_correlation, Wav};
use fd_e2e::baresip::{write_config, Baresip, BaresipConfig, Ctrl};
use fd_e2e::ports::{free_tcp_port, free_udp_port, free_udp_range};
use fd_e2e::rtp::{Direction, Payload};
use fd_e2e::{CallerConfig, ScriptedCaller};
use fd_voice::endpoint::CallEvent;
use fd_voice::media::Codec;
use sip_common::*;
use std::time::Duration;

/// Amplitude of the `freq` component of `s` (least-squares sine fit).
fn tone_amplitude(s: &[i16], freq: f64, rate: f64) -> f64 {
    let (mut a, mut b) = (0.0, 0.0);
    for (i, &x) in s.iter().enumerate() {
        let w = 2.0 * std::f64::consts::PI * freq * i as f64 / rate;
        a += x as f64 * w.sin();
        b += x as f64 * w.cos();
    }
    let n = s.len().max(1) as f64;
    ((2.0 * a / n).powi(2) + (2.0 * b / n).powi(2)).sqrt()
}

/// The loudest 200 ms window's 5 kHz amplitude (the bursts are 9000 peak).
fn max_5khz(s: &[i16], rate: usize) -> f64 {
    s.chunks(rate / 5).map(|w| tone_amplitude(w, 5000.0, rate as f64)).fold(0.0, f64::max)
}

fn start_baresip(dir: &std::path::Path, source: &Wav, codecs: &str) -> (Baresip, Ctrl) {
    let src = dir.join("mic.wav");
    source.write(&src).expect("write mic wav");
    let bport = free_udp_port().expect("port");
    let ctrl_port = free_tcp_port().expect("port");
    let cfg = BaresipConfig {
        sip_port: bport,
        rtp_ports: free_udp_range(10).expect("rtp range"),
        source_wav: src,
        rec_dir: dir.join("rec"),
        account: format!("<sip:caller@127.0.0.1:{bport}>;regint=0;audio_codecs={codecs}"),
        ctrl_port: Some(ctrl_port),
        dns_port: None,
    };
    write_config(&dir.join("cfg"), &cfg).expect("baresip config");
    let mut b = Baresip::spawn(&dir.join("cfg"), 60).expect("spawn baresip");
    b.wait_ready(Duration::from_secs(10)).expect("baresip ready");
    let ctrl = Ctrl::connect(ctrl_port, Duration::from_secs(5)).expect("ctrl_tcp");
    (b, ctrl)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_g722_call_is_wideband_both_ways() {
    if !have("baresip", "baresip-core") {
        return;
    }
    let dir = tmp_dir("g722");
    let sip_port = free_udp_port().unwrap();
    let mut ep = bind(endpoint_config(sip_port, free_udp_range(20).unwrap())).await;

    let caller_sig = Wav { rate: 16000, samples: bursts(16000, 5000.0, PATTERN_A, 30) };
    let ours = Wav { rate: 16000, samples: bursts(16000, 5000.0, PATTERN_B, 0) };
    // PCMU listed first on purpose: our preference (G.722 first) decides, not the offer order.
    // (baresip registers G.722 as G722/16000/1; its aufile source must then be 16 kHz.)
    let (mut baresip, mut ctrl) = start_baresip(&dir, &caller_sig, "pcmu,g722/16000/1");
    let uri = format!("sip:frontdesk@127.0.0.1:{sip_port}");
    tokio::task::block_in_place(|| ctrl.command("dial", &uri, Duration::from_secs(5))).expect("dial");

    let mut call = accept(&mut ep, 10).await;
    assert_eq!(call.codec, Some(Codec::G722), "negotiated codec");
    call.handle.play(ours.samples.clone()).expect("play");
    let (heard, events) = collect(&mut call, Duration::from_secs(6)).await;
    assert!(!events.contains(&CallEvent::RemoteHangup), "caller hung up early: {events:?}");
    call.handle.hangup().await;
    let closed = tokio::task::block_in_place(|| ctrl.wait_event(&["CALL_CLOSED"], Duration::from_secs(5)));
    assert!(closed.is_some(), "baresip saw no BYE");
    drop(ctrl);
    baresip.stop();

    // Caller → us: the envelope matches and the 5 kHz tone itself came through.
    let heard = Wav { rate: 16000, samples: heard };
    let reference_a = Wav { rate: 16000, samples: bursts(16000, 5000.0, PATTERN_A, 0) };
    let (c_in, lag_in) = best_envelope_correlation(&reference_a, &heard);
    let a_in = max_5khz(&heard.samples, 16000);
    println!("caller->endpoint G.722 envelope_corr={c_in:.3} lag={lag_in:.2}s 5kHz_amplitude={a_in:.0}/9000 heard={:.2}s", heard.duration_secs());
    assert!(c_in >= 0.8, "caller audio not received intact (corr {c_in:.3})");
    assert!(a_in > 9000.0 * 0.7, "5 kHz did not survive: amplitude {a_in:.0} (narrowband path?)");

    // Us → caller: baresip's recording of what it decoded.
    let mut dumps: Vec<_> = std::fs::read_dir(dir.join("rec"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with("-dec.wav"))
        .collect();
    dumps.sort();
    let rec = Wav::read(dumps.first().expect("baresip recording")).expect("read recording");
    assert_eq!(rec.rate, 16000, "baresip decoded at 16 kHz");
    let (c_out, lag_out) = best_envelope_correlation(&ours, &rec);
    let a_out = max_5khz(&rec.samples, rec.rate as usize);
    println!("endpoint->caller G.722 envelope_corr={c_out:.3} lag={lag_out:.2}s 5kHz_amplitude={a_out:.0}/9000 rec={:.2}s", rec.duration_secs());
    assert!(c_out >= 0.8, "our audio not heard intact by the caller (corr {c_out:.3})");
    assert!(a_out > 9000.0 * 0.7, "5 kHz did not survive: amplitude {a_out:.0}");
    ep.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_caller_with_g722_sends_wideband_speech_and_analyses_pt9() {
    if !have("baresip", "baresip-core") || !have("dumpcap", "tshark") || !have("espeak-ng", "espeak-ng") {
        return;
    }
    let dir = tmp_dir("g722-caller");
    let sip_port = free_udp_port().unwrap();
    let mut ep = bind(endpoint_config(sip_port, free_udp_range(20).unwrap())).await;
    let cfg = CallerConfig::new(&format!("sip:frontdesk@127.0.0.1:{sip_port}"), "+12175550161", dir.join("caller"))
        .expect("caller config")
        .with_codecs("g722,pcmu");
    assert!(cfg.wideband());
    let line = "I would like to book a cleaning please.";
    let script = tokio::task::spawn_blocking(move || {
        let mut caller = ScriptedCaller::start(cfg)?;
        let greeting = caller.wait_for_bot_turn(Duration::from_secs(15))?;
        let said = caller.say(line)?;
        std::thread::sleep(Duration::from_millis(800));
        caller.hangup()?;
        let rec = caller.finish()?;
        Ok::<_, fd_e2e::Error>((greeting, said, rec))
    });

    let mut call = accept(&mut ep, 15).await;
    assert_eq!(call.codec, Some(Codec::G722));
    // A 1.5 s "greeting" of 5 kHz bursts, which the caller's turn detection must see as speech.
    let greeting = bursts(16000, 5000.0, &PATTERN_B[..5], 0);
    call.handle.play(greeting).expect("play");
    let (heard, _) = collect(&mut call, Duration::from_secs(30)).await;
    let (g, said, rec) = script.await.expect("caller thread").expect("scripted call");

    // The caller's speech file was made at 16 kHz, and it arrived as such.
    let said_wav = Wav::read(&said.wav).expect("said wav");
    assert_eq!(said_wav.rate, 16000, "speech for a G.722 call is wideband");
    let heard = Wav { rate: 16000, samples: heard };
    let (c, lag) = best_envelope_correlation(&said_wav, &heard);
    println!("scripted caller (G.722) -> endpoint envelope_corr={c:.3} lag={lag:.2}s; greeting turn {:.2}s", (g.end_us - g.start_us) as f64 / 1e6);
    assert!(c >= 0.8, "caller speech not received intact (corr {c:.3})");

    // The capture: both directions are PT 9, decoded as audio, and the SDP agreed on G.722.
    let pt9 = |d: Direction| rec.packets.iter().filter(|k| k.dir == d && k.payload_type == 9).count();
    let (sent, received) = (pt9(Direction::Sent), pt9(Direction::Received));
    assert!(sent > 100 && received > 100, "PT 9 packets: sent {sent}, received {received}");
    assert!(rec.packets.iter().filter(|k| k.payload_type == 9).all(|k| matches!(k.payload, Payload::Audio(_))));
    assert!(rec.packets.iter().all(|k| k.payload_type != 0), "no PCMU on a G.722 call");
    let sdp_g722 = rec
        .datagrams
        .iter()
        .filter(|d| String::from_utf8_lossy(&d.payload).contains("a=rtpmap:9 G722/8000"))
        .count();
    assert!(sdp_g722 >= 2, "G722 in the offer and the answer ({sdp_g722} SIP messages)");
    // The greeting was detected as one bot turn of its length (bursts and gaps, 2.0 s).
    let turn_s = (g.end_us - g.start_us) as f64 / 1e6;
    assert!((1.6..=2.3).contains(&turn_s), "greeting turn {turn_s:.2}s");
    ep.shutdown().await;
}

/// The harness's own latency analysis on a G.722 call (as caller_call.rs does for PCMU): a
/// wideband baresip callee plays a greeting, a pause and a reply; turns and the voice-to-voice
/// latency computed from the PT 9 capture match the callee's stream within ±40 ms.
#[test]
fn g722_turns_and_latency_from_the_capture_match_the_callee_stream() {
    if !have("baresip", "baresip-core") || !have("dumpcap", "tshark") || !have("espeak-ng", "espeak-ng") {
        return;
    }
    use fd_e2e::speech::SpeechCache;
    use fd_e2e::TestCallee;
    let dir = tmp_dir("g722-latency");
    let mut speech = SpeechCache::new(SpeechCache::default_dir()).unwrap();
    speech.rate = 16_000;
    let thr = fd_e2e::VoiceParams::default().threshold_rms;
    let greeting = Wav::read(&speech.speech("Hello, thank you for calling Smile Dental. How can I help you today?").unwrap()).unwrap();
    let reply = Wav::read(&speech.speech("Sure, what day works best for you?").unwrap()).unwrap();
    assert_eq!((greeting.rate, reply.rate), (16_000, 16_000));
    let reply_at = greeting.samples.len() + 7 * 16_000;
    let (reply_on, _) = reply.voiced_extent(thr).unwrap();
    let mut samples = greeting.samples.clone();
    samples.resize(reply_at, 0);
    samples.extend_from_slice(&reply.samples);
    let play = dir.join("callee-script.wav");
    Wav { rate: 16_000, samples }.write(&play).unwrap();
    let reply_onset_s = reply_at as f64 / 16_000.0 + reply_on;

    let mut callee = TestCallee::start_wideband(&dir.join("callee"), "frontdesk", &play, 20.0).unwrap();
    let cfg = CallerConfig::new(&callee.uri(), "+12175550161", dir.join("caller")).unwrap().with_codecs("g722,pcmu");
    let mut caller = ScriptedCaller::start(cfg).unwrap();
    caller.wait_for_bot_turn(Duration::from_secs(20)).unwrap();
    let said = caller.say("I would like to book a cleaning please.").unwrap();
    caller.wait_for_bot_turn(Duration::from_secs(20)).unwrap();
    caller.hangup().unwrap();
    let rec = caller.finish().unwrap();
    callee.stop();

    let rx: Vec<_> = rec.packets.iter().filter(|k| k.dir == Direction::Received && matches!(k.payload, Payload::Audio(_))).collect();
    assert!(rx.len() > 400, "received only {} audio packets", rx.len());
    assert!(rx.iter().all(|k| k.payload_type == 9), "the callee sent G.722 only");
    let seq0 = rx[0].seq;
    let wire_time_of = |secs: f64| -> i64 {
        let n = (secs * 50.0).floor() as u16;
        rx.iter().find(|k| k.seq.wrapping_sub(seq0) == n).map(|k| k.ts_us).expect("packet present")
    };
    let reply_onset_wire = wire_time_of(reply_onset_s);
    // The callee heard the (16 kHz) line.
    let heard = Wav::read(&callee.recording().expect("callee recording")).unwrap();
    let line = Wav::read(&said.wav).unwrap();
    assert_eq!((heard.rate, line.rate), (16_000, 16_000));
    let (corr, _) = best_envelope_correlation(&line, &heard);
    assert!(corr >= 0.8, "envelope correlation {corr:.3}");
    let (line_on, line_off) = line.voiced_extent(thr).unwrap();
    let caller_onset = rec
        .packets
        .iter()
        .find(|k| k.dir == Direction::Sent && k.ts_us >= said.started_us - 100_000 && k.rms() > thr)
        .map(|k| k.ts_us)
        .expect("caller speech on the wire");
    let caller_end = caller_onset + ((line_off - line_on - 0.02) * 1e6) as i64;
    let expected_ms = (reply_onset_wire - caller_end) as f64 / 1000.0;
    assert_eq!(rec.latencies.len(), 1, "{:?}", rec.latencies);
    let got = rec.latencies[0].latency_ms;
    println!("G.722 call: callee heard the line with envelope correlation {corr:.3}; latency from capture {got:.1} ms, expected {expected_ms:.1} ms");
    assert!((got - expected_ms).abs() <= 40.0, "latency {got:.1} ms vs expected {expected_ms:.1} ms");
}
