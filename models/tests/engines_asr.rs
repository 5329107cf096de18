//! Proof tests of the Whisper engine with the real model (run the engine binaries' build first).

mod engines_common;
use engines_common::*;

use std::time::{Duration, Instant};

use fd_models::client::{AsrClient, EngineError, TranscribeOpts};
use fd_models::protocol::{pcm_to_bytes, Request};

fn wer(client: &AsrClient, rt: &tokio::runtime::Runtime, clips: &[(String, Vec<i16>, String)], phone: bool, opts: &TranscribeOpts) -> f64 {
    let (mut errs, mut words) = (0, 0);
    for (id, pcm, reference) in clips {
        let audio = if phone { phone_path(pcm) } else { pcm.clone() };
        let t = rt.block_on(client.transcribe(&audio, opts)).expect("transcribe");
        let (e, n) = word_errors(reference, &t.text);
        // Test speech is public-domain LibriVox, not patient data: printing it is fine.
        println!("{id} {}: errors {e}/{n} ctx {} | {}", if phone { "8k-ulaw" } else { "16k" }, t.audio_ctx, t.text);
        assert!(!t.skipped_silence);
        assert_eq!(t.segments.len(), 1);
        assert!(t.segments[0].avg_logprob < 0.0 && t.segments[0].t1 > 1.0);
        errs += e;
        words += n;
    }
    errs as f64 / words as f64
}

#[test]
fn whisper_librivox_wer_16k_and_phone_path() {
    let clips = librivox();
    let eng = asr_engine();
    let rt = rt();
    let client = asr_client(&eng.socket);
    let opts = TranscribeOpts::default();
    let w16 = wer(&client, &rt, &clips, false, &opts);
    let w8 = wer(&client, &rt, &clips, true, &opts);
    println!("WER 16 kHz: {:.1}%   WER 8 kHz mu-law round trip: {:.1}%", w16 * 100.0, w8 * 100.0);
    assert!(w16 <= 0.10, "WER at 16 kHz {:.1}% > 10%", w16 * 100.0);
    assert!(w8 <= 0.10, "WER on the phone path {:.1}% > 10%", w8 * 100.0);
}

/// espeak-ng speech (the scripted callers' voice) at 16 kHz, through the 8 kHz μ-law phone path.
fn espeak_phone(text: &str) -> Vec<i16> {
    phone_path(&espeak_16k(text))
}

/// espeak-ng speech (the scripted callers' voice) at 16 kHz, as a wideband (G.722) call carries it.
fn espeak_16k(text: &str) -> Vec<i16> {
    let dir = tempfile::tempdir().expect("tempdir");
    let (raw, wav) = (dir.path().join("raw.wav"), dir.path().join("16k.wav"));
    let ok = std::process::Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "150", "-w"])
        .arg(&raw)
        .arg("--")
        .arg(text)
        .status();
    assert!(
        ok.is_ok_and(|s| s.success()),
        "espeak-ng failed: apt-get install espeak-ng (packaging/setup.sh --test does)"
    );
    let ok = std::process::Command::new("sox")
        .arg(&raw)
        .args(["-r", "16000", "-c", "1", "-b", "16"])
        .arg(&wav)
        .status();
    assert!(
        ok.is_ok_and(|s| s.success()),
        "sox failed: apt-get install sox (packaging/setup.sh --test does)"
    );
    read_wav(&wav).0
}

#[test]
fn expected_phrases_are_favoured_and_nothing_else_is_forced_in() {
    // The default first-token bonus (5) sits at the edge for this line: Whisper's threaded
    // arithmetic is not bit-for-bit repeatable and CI heard "I look like" in 1 run of 3. The test
    // is of the mechanism, so it runs with a clear bonus.
    let m = whisper_model();
    let eng = spawn_engine("frontdesk-asr", &["--model", m.to_str().unwrap(), "--bias-start", "7"]);
    let rt = rt();
    let client = asr_client(&eng.socket);
    // What the receptionist hints while a caller picks among 9, 10 and 11 AM.
    let bias: Vec<String> = [
        "nine",
        "9",
        "ten",
        "10",
        "eleven",
        "11",
        "first one",
        "second one",
        "third one",
    ]
    .map(String::from)
    .to_vec();
    let hinted = TranscribeOpts {
        bias: bias.clone(),
        ..Default::default()
    };
    // tiny.en hears this line as "I look like please" on the phone path without the hint.
    let t = rt
        .block_on(client.transcribe(&espeak_phone("Nine o'clock please."), &hinted))
        .expect("transcribe");
    let low = t.text.to_lowercase();
    assert!(
        low.contains('9') || low.contains("nine"),
        "offered nine not heard: {:?}",
        t.text
    );
    let t = rt
        .block_on(client.transcribe(&espeak_phone("The first one, please."), &hinted))
        .expect("transcribe");
    assert!(t.text.to_lowercase().contains("first"), "{:?}", t.text);
    // Speech that holds none of the phrases keeps its accuracy: at most one phrase is started per
    // utterance, and only where the audio allows it.
    let w = wer(&client, &rt, &librivox(), true, &hinted);
    println!("WER 8 kHz with unrelated hints: {:.1}%", w * 100.0);
    assert!(
        w <= 0.10,
        "hints pushed the LibriVox WER on the phone path to {:.1}%",
        w * 100.0
    );
}

#[test]
fn bad_input_is_a_typed_error_and_silence_skips_whisper() {
    let eng = asr_engine();
    let rt = rt();
    let client = asr_client(&eng.socket);
    let opts = TranscribeOpts::default();
    let t = Instant::now();
    assert!(matches!(rt.block_on(client.transcribe(&[], &opts)), Err(EngineError::BadRequest { .. })));
    let long = vec![100i16; 16000 * 31];
    assert!(matches!(rt.block_on(client.transcribe(&long, &opts)), Err(EngineError::BadRequest { .. })));
    // Wrong sample rate through the raw protocol.
    let r = rt.block_on(client.0.call(|id| Request::Transcribe { id, sample_rate: 8000, prompt: None, audio_ctx: None, bias: vec![], speculative: false }, &pcm_to_bytes(&[1, 2, 3])));
    assert!(matches!(r, Err(EngineError::BadRequest { ref message, .. }) if message.contains("16000")), "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(2), "bad requests must be rejected without running Whisper");
    let silent = rt.block_on(client.transcribe(&vec![0i16; 16000 * 2], &opts)).unwrap();
    assert!(silent.skipped_silence && silent.text.is_empty());
}

/// A speculative transcription is cancelled when the caller speaks on; the engine must stop it
/// at once (inside the encoder, too) so the real turn does not queue behind it.
#[test]
fn a_cancelled_transcription_stops_at_once_and_the_next_one_is_right() {
    let clips = librivox();
    let eng = asr_engine();
    let rt = rt();
    let client = asr_client(&eng.socket);
    let full_window = |id| Request::Transcribe { id, sample_rate: 16000, prompt: None, audio_ctx: Some(1500), bias: vec![], speculative: false };
    // How long the slow (full 30 s window) run takes here when nobody cancels it.
    let t = Instant::now();
    rt.block_on(client.0.call(full_window, &pcm_to_bytes(&clips[3].1))).unwrap();
    let uncancelled = t.elapsed();
    let (stopped_after, res, next) = rt.block_on(async {
        let mut s = client.0.request(full_window, &pcm_to_bytes(&clips[3].1)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let t = Instant::now();
        client.0.cancel(s.id()).await;
        let res = s.next().await;
        let stopped_after = t.elapsed();
        (stopped_after, res, client.transcribe(&clips[0].1, &TranscribeOpts::default()).await)
    });
    assert!(matches!(res, Err(EngineError::Cancelled)), "{res:?}");
    println!("uncancelled {uncancelled:?}; cancelled 100 ms in, it ended {stopped_after:?} after the cancel");
    // Left to run, it would have ended about `uncancelled` - 100 ms after the cancel (the other
    // tests' engines load the machine alike, so compare with a wide margin).
    assert!(stopped_after * 3 < uncancelled, "the cancelled run ended {stopped_after:?} after the cancel; a whole run takes {uncancelled:?}");
    // The engine is not left in a bad state by the abort.
    let next = next.unwrap();
    let (heard, said) = (normalise(&next.text), normalise(&clips[0].2));
    assert!(said.iter().filter(|w| heard.contains(w)).count() * 10 >= said.len() * 8, "{} / {}", next.text, clips[0].2);
}

/// Why the bundle carries Whisper base for names: the scripted caller's "Priya Natarajan", which
/// tiny.en hears as "brilliant at Imagine", comes out right from the names engine, run the way the
/// appliance runs it (lowest priority, the practice's vocabulary prompt).
#[test]
fn the_names_engine_hears_a_name_the_live_one_does_not() {
    let m = names_model();
    let eng = spawn_engine("frontdesk-asr", &["--model", m.to_str().unwrap(), "--nice", "19", "--queue", "2"]);
    let rt = rt();
    let client = asr_client(&eng.socket);
    let prompt = "Thank you for calling Bright Smile Dental. Hi, I'd like to book a cleaning, please. It's about my bill.";
    let opts = TranscribeOpts { vocabulary_prompt: Some(prompt.into()), ..Default::default() };
    let t = rt
        .block_on(client.transcribe(&espeak_16k("Sure. It's Priya Natarajan, and I'm calling about a charge from my last visit."), &opts))
        .expect("transcribe");
    // Synthetic test speech, not patient data: printing it is fine.
    println!("names engine: {}", t.text);
    assert!(t.text.contains("Priya Natarajan"), "{}", t.text);
    // The process really runs at the lowest priority (field 19 of /proc/PID/stat is the nice value).
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", eng.child.id())).expect("stat");
    let nice: i32 = stat.rsplit(')').next().unwrap().split_whitespace().nth(16).unwrap().parse().unwrap();
    assert_eq!(nice, 19);
}

#[test]
fn vocabulary_prompt_is_accepted() {
    let clips = librivox();
    let eng = asr_engine();
    let rt = rt();
    let client = asr_client(&eng.socket);
    let opts = TranscribeOpts { vocabulary_prompt: Some("Dashwood, Norland Park.".into()), ..Default::default() };
    let t = rt.block_on(client.transcribe(&clips[0].1, &opts)).unwrap();
    assert!(normalise(&t.text).contains(&"dashwood".to_string()), "{}", t.text);
}

#[test]
fn missing_or_corrupt_model_reports_model_error() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("ggml-corrupt.bin");
    std::fs::write(&corrupt, b"this is not a ggml file at all").unwrap();
    for m in [dir.path().join("missing.bin"), corrupt] {
        let eng = spawn_engine("frontdesk-asr", &["--model", m.to_str().unwrap()]);
        let client = asr_client(&eng.socket);
        let h = rt.block_on(client.0.health()).unwrap();
        assert!(!h.ready && h.problem.as_deref().unwrap_or("").contains("reinstall"), "{h:?}");
        let r = rt.block_on(client.transcribe(&[1000; 1600], &TranscribeOpts::default()));
        assert!(matches!(r, Err(EngineError::Model { .. })), "{r:?}");
    }
}

#[test]
fn killed_engine_gives_unavailable_promptly() {
    let clips = librivox();
    let mut eng = asr_engine();
    let rt = rt();
    let client = asr_client(&eng.socket);
    let pid = eng.child.id();
    let audio = clips[3].1.clone();
    let c2 = client.clone();
    let fut = rt.spawn(async move { c2.transcribe(&audio, &TranscribeOpts { audio_ctx: Some(0), ..Default::default() }).await });
    std::thread::sleep(Duration::from_millis(150));
    let t = Instant::now();
    kill9(pid);
    let r = rt.block_on(fut).unwrap();
    assert!(matches!(r, Err(EngineError::Unavailable { .. })), "{r:?}");
    // Bounds that tell failing fast from hanging, with room for a busy 2-core machine.
    assert!(t.elapsed() < Duration::from_secs(3), "took {:?}", t.elapsed());
    let _ = eng.child.wait();
    // And a new request fails fast too (no hang on a dead socket).
    let t = Instant::now();
    assert!(matches!(rt.block_on(client.transcribe(&[1000; 1600], &TranscribeOpts::default())), Err(EngineError::Unavailable { .. })));
    assert!(t.elapsed() < Duration::from_secs(3), "took {:?}", t.elapsed());
}

fn kill9(pid: u32) {
    let st = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    assert!(st.success());
}
