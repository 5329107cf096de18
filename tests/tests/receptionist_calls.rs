//! The receptionist end to end: a real `frontdesk serve` (real engines, dev bundle, SQLCipher store)
//! answers scripted callers (baresip + espeak-ng speech over SIP/RTP on loopback); after each call
//! the store is checked against the scenario's `expect`, and nothing else may have changed.
//!
//! `all_demo_scenarios` runs every scenario of tests/fixtures/callers/scenarios.toml and prints the
//! pass rate and voice-to-voice latency per scenario. `FD_SCENARIOS=id1,id2` narrows it.

mod receptionist_common;

use std::time::Duration;

use fd_e2e::scenario::{load_scenarios, run_scenario, RunOptions, Scenario};
use fd_store::Store;
use receptionist_common::{appointments, check_expect, fixture, Appliance};

const PRACTICE_NOW: &str = "2026-03-02T10:00:00";

struct Outcome {
    id: String,
    failures: Vec<String>,
    latencies_ms: Vec<f64>,
}

fn run_one(sc: &Scenario, work: &std::path::Path) -> Outcome {
    let now = sc.now.clone().unwrap_or_else(|| PRACTICE_NOW.to_owned());
    let mut app = Appliance::start(work, &now);
    // The appointment book before the call (read with the appliance's key, as IT would).
    let before = {
        let store = Store::open(&app.data_dir).expect("open store");
        appointments(&store)
    };
    let mut opts = RunOptions::new(work.join("call"));
    opts.turn_timeout = Duration::from_secs(40);
    // FD_CODECS=g722,pcmu makes the caller an HD-voice phone; the default is narrowband G.711.
    if let Ok(c) = std::env::var("FD_CODECS") {
        opts.codecs = c.split(',').map(|x| x.trim().to_owned()).collect();
    }
    let run = run_scenario(sc, &app.uri(), &opts);
    // Let the appliance write the call record, then stop it so the store is quiescent.
    std::thread::sleep(Duration::from_secs(2));
    app.stop();
    let mut failures = Vec::new();
    let mut latencies_ms = Vec::new();
    match run {
        Ok(r) => latencies_ms = r.latencies.iter().map(|l| l.latency_ms).collect(),
        Err(e) => failures.push(format!("call failed: {e}")),
    }
    let store = Store::open(&app.data_dir).expect("open store after the call");
    failures.extend(check_expect(&store, &before, &sc.expect));
    if !failures.is_empty() {
        eprintln!("--- {}: appliance log tail:\n{}", sc.id, tail(&app.stderr_log, 40));
    }
    Outcome { id: sc.id.clone(), failures, latencies_ms }
}

fn tail(p: &std::path::Path, n: usize) -> String {
    let s = std::fs::read_to_string(p).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn run_scenarios(ids: Option<&[&str]>) {
    let scenarios = load_scenarios(&fixture("callers/scenarios.toml")).expect("scenarios");
    let wanted: Option<Vec<String>> = std::env::var("FD_SCENARIOS")
        .ok()
        .map(|s| s.split(',').map(|x| x.trim().to_owned()).collect())
        .or_else(|| ids.map(|i| i.iter().map(|s| s.to_string()).collect()));
    let root = tempdir();
    let mut results = Vec::new();
    for sc in &scenarios {
        if wanted.as_ref().is_some_and(|w| !w.contains(&sc.id)) {
            continue;
        }
        let work = root.join(&sc.id);
        std::fs::create_dir_all(&work).unwrap();
        eprintln!("=== scenario {}", sc.id);
        results.push(run_one(sc, &work));
    }
    let mut all: Vec<f64> = Vec::new();
    let passed = results.iter().filter(|r| r.failures.is_empty()).count();
    eprintln!("\nscenario                              result  turns  p50 ms  p95 ms");
    for r in &results {
        let mut l = r.latencies_ms.clone();
        all.extend(&l);
        eprintln!(
            "{:<38}{:<8}{:>5}  {:>6.0}  {:>6.0}",
            r.id,
            if r.failures.is_empty() { "pass" } else { "FAIL" },
            l.len(),
            percentile(&mut l.clone(), 0.5),
            percentile(&mut l, 0.95)
        );
        for f in &r.failures {
            eprintln!("    - {f}");
        }
    }
    eprintln!(
        "{passed}/{} scenarios passed; voice-to-voice over {} turns: p50 {:.0} ms, p95 {:.0} ms",
        results.len(),
        all.len(),
        percentile(&mut all.clone(), 0.5),
        percentile(&mut all, 0.95)
    );
    assert_eq!(passed, results.len(), "scenarios failed (see above)");
}

fn tempdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("fd-receptionist-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Every demo scenario over real calls.
#[test]
#[ignore = "long (about 10 minutes): run with --ignored, see README"]
fn all_demo_scenarios() {
    run_scenarios(None);
}

/// Every stage of a real call works with the real default models: the caller hears the greeting
/// (TTS → RTP), what they say is heard (RTP → VAD → turn-taking → ASR), the receptionist replies
/// (policy → TTS), and the call, its transcript and its per-turn latencies are in the encrypted
/// store afterwards. (Whether the booking itself succeeds depends on ASR accuracy over G.711: see
/// `all_demo_scenarios`.)
#[test]
fn a_real_call_goes_through_every_stage() {
    use fd_e2e::{CallerConfig, ScriptedCaller};
    let work = tempdir().join("pipeline");
    std::fs::create_dir_all(&work).unwrap();
    let mut app = Appliance::start(&work, PRACTICE_NOW);
    let cfg = CallerConfig::new(&app.uri(), "+12175550161", work.join("call")).unwrap();
    let mut caller = ScriptedCaller::start(cfg).expect("call established");
    caller.wait_for_bot_turn(Duration::from_secs(40)).expect("the caller hears the greeting");
    caller.say("I'm a new patient. My name is Maria Lopez.").unwrap();
    caller.wait_for_bot_turn(Duration::from_secs(40)).expect("the receptionist replies");
    caller.hangup().unwrap();
    let record = caller.finish().unwrap();
    assert_eq!(record.latencies.len(), 1, "one caller turn answered: {:?}", record.latencies);
    eprintln!("voice-to-voice latency at the caller: {:.0} ms", record.latencies[0].latency_ms);
    std::thread::sleep(Duration::from_secs(2));
    app.stop();

    let store = Store::open(&app.data_dir).unwrap();
    let calls = store.list_calls(fd_store::CallPage { before: None, limit: 5 }, fd_store::Actor::Cli).unwrap();
    assert_eq!(calls.len(), 1, "one call recorded");
    let call = &calls[0];
    assert_eq!(call.caller.as_deref(), Some("+12175550161"), "caller id from the SIP From header");
    assert!(call.ended_at.is_some() && call.outcome.is_some(), "the call was closed with an outcome: {call:?}");
    let turns = store.call_turns(call.id, fd_store::Actor::Cli).unwrap();
    let caller_turns: Vec<_> = turns.iter().filter(|t| t.speaker == "caller").collect();
    let bot_turns: Vec<_> = turns.iter().filter(|t| t.speaker != "caller").collect();
    assert_eq!(caller_turns.len(), 1, "one caller turn transcribed: {turns:?}");
    assert!(caller_turns[0].text.to_lowercase().contains("maria"), "ASR heard the caller: {:?}", caller_turns[0].text);
    assert!(caller_turns[0].asr_ms.is_some());
    assert!(bot_turns.len() >= 2, "greeting and a reply: {turns:?}");
    assert!(bot_turns[0].text.contains("Bright Smile Dental"), "the practice's greeting: {:?}", bot_turns[0].text);
    let rec_id = call.recording_id.expect("the call recording is stored");
    let (format, wav) = store.recording(rec_id, fd_store::Actor::Cli).unwrap().expect("recording row");
    assert_eq!(format, "wav");
    // Stereo 16 kHz 16-bit: at least the greeting and the caller's line (> 8 s).
    assert!(wav.len() > 44 + 8 * 16_000 * 4, "recording too short: {} bytes", wav.len());
    let reply = bot_turns[1];
    assert!(reply.first_rtp_ms.is_some() && reply.tts_ms.is_some(), "per-turn latencies recorded: {reply:?}");
}
