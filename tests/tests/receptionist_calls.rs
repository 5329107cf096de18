//! The receptionist end to end: a real `frontdesk serve` (real engines, dev bundle, SQLCipher store)
//! answers scripted callers (baresip + espeak-ng speech over SIP/RTP on loopback); after each call
//! the store is checked against the scenario's `expect`, and nothing else may have changed.
//!
//! `all_demo_scenarios` runs every scenario of tests/fixtures/callers/scenarios.toml and prints the
//! pass rate and voice-to-voice latency per scenario. `FD_SCENARIOS=id1,id2` narrows it.
//! `four_simultaneous_callers` runs four scenarios at once against one appliance
//! (`FD_CONCURRENT=id1,id2,...` picks them). Both print the caller-side latency (end of the
//! caller's speech to the first reply audio, from the caller's packet capture, p50/p95 over every
//! answered turn) and the appliance's per-stage breakdown from the store's call turns.

mod receptionist_common;

use std::time::Duration;

use fd_e2e::scenario::{load_scenarios, run_scenario, RunOptions, Scenario, ScenarioRun};
use fd_store::{Actor, CallPage, Store, TurnRow};
use receptionist_common::{appointments, check_expect, fixture, Appliance};

const PRACTICE_NOW: &str = "2026-03-02T10:00:00";

struct Outcome {
    id: String,
    failures: Vec<String>,
    latencies_ms: Vec<f64>,
    /// Replies that began while the caller was still speaking (the caller went on over the
    /// reply, or spoke over the greeting): no voice-to-voice figure, so counted apart.
    overlapped: usize,
    stages: Stages,
}

/// The voice-to-voice figures of a call: spoken turns whose reply began after the caller
/// stopped. A key press is no voice; a reply that began while the caller was still speaking
/// measures the caller's next words, not the appliance (it would show as ~0 ms).
fn voice_to_voice(run: &ScenarioRun) -> (Vec<f64>, usize) {
    let spoken = run.latencies.iter().filter(|l| !l.dtmf);
    let overlapped = spoken.clone().filter(|l| l.caller_still_speaking).count();
    (spoken.filter(|l| !l.caller_still_speaking).map(|l| l.latency_ms).collect(), overlapped)
}

/// The appliance's own per-turn figures (ms), over the receptionist turns that answered a caller
/// turn: `first_rtp` counts from the last voiced caller frame (so it includes the end-of-turn
/// wait); `tts` is the wait for the first audio once the reply was decided (about 0 when it was
/// synthesized ahead); `llm` only exists for turns the rules could not read.
#[derive(Default, Clone)]
struct Stages {
    asr: Vec<f64>,
    llm: Vec<f64>,
    tts: Vec<f64>,
    first_rtp: Vec<f64>,
    /// Replies played from audio prepared before the end of the turn / answered turns.
    prepared: usize,
    answered: usize,
}

impl Stages {
    fn add_turns(&mut self, turns: &[TurnRow]) {
        for t in turns.iter().filter(|t| t.speaker != "caller" && t.first_rtp_ms.is_some()) {
            let f = |v: Option<i64>| v.map(|x| x as f64);
            self.asr.extend(f(t.asr_ms));
            self.llm.extend(f(t.llm_ms));
            self.tts.extend(f(t.tts_ms));
            self.first_rtp.extend(f(t.first_rtp_ms));
        }
    }

    /// Counts `prepared=true` among the appliance's "turn latency" log lines (figures only).
    fn add_log(&mut self, log: &std::path::Path) {
        let text = strip_ansi(&std::fs::read_to_string(log).unwrap_or_default());
        for l in text.lines().filter(|l| l.contains("turn latency")) {
            self.answered += 1;
            if l.contains("prepared=true") {
                self.prepared += 1;
            }
        }
    }

    fn extend(&mut self, o: &Stages) {
        self.asr.extend(&o.asr);
        self.llm.extend(&o.llm);
        self.tts.extend(&o.tts);
        self.first_rtp.extend(&o.first_rtp);
        self.prepared += o.prepared;
        self.answered += o.answered;
    }

    fn print(&self) {
        eprintln!("appliance stages over answered turns (ms)    n     p50     p95");
        for (name, v) in [("asr", &self.asr), ("llm (turns that asked it)", &self.llm), ("tts (wait for first audio)", &self.tts), ("end of speech -> first RTP", &self.first_rtp)] {
            let mut v = v.clone();
            eprintln!("  {:<40}{:>5}  {:>6.0}  {:>6.0}", name, v.len(), percentile(&mut v.clone(), 0.5), percentile(&mut v, 0.95));
        }
        eprintln!("  replies prepared before the end of the turn: {}/{}", self.prepared, self.answered);
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
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
    let mut overlapped = 0;
    match run {
        Ok(r) => (latencies_ms, overlapped) = voice_to_voice(&r),
        Err(e) => failures.push(format!("call failed: {e}")),
    }
    let store = Store::open(&app.data_dir).expect("open store after the call");
    failures.extend(check_expect(&store, &before, &sc.expect));
    if !failures.is_empty() {
        eprintln!("--- {}: appliance log tail:\n{}", sc.id, tail(&app.stderr_log, 40));
    }
    let mut stages = Stages::default();
    for c in store.list_calls(CallPage { before: None, limit: 10 }, Actor::Cli).unwrap_or_default() {
        stages.add_turns(&store.call_turns(c.id, Actor::Cli).unwrap_or_default());
    }
    stages.add_log(&app.stderr_log);
    Outcome { id: sc.id.clone(), failures, latencies_ms, overlapped, stages }
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
    print_results(&results);
    let passed = results.iter().filter(|r| r.failures.is_empty()).count();
    if passed == results.len() {
        let _ = std::fs::remove_dir_all(&root);
    } else {
        eprintln!(
            "call records of this run (frontdesk calls list --data-dir DIR/data): {}",
            root.display()
        );
    }
    assert_eq!(passed, results.len(), "scenarios failed (see above)");
}

fn print_results(results: &[Outcome]) {
    let mut all: Vec<f64> = Vec::new();
    let mut stages = Stages::default();
    let passed = results.iter().filter(|r| r.failures.is_empty()).count();
    eprintln!("\nscenario                              result  turns  p50 ms  p95 ms  overlapped");
    for r in results {
        let mut l = r.latencies_ms.clone();
        all.extend(&l);
        stages.extend(&r.stages);
        eprintln!(
            "{:<38}{:<8}{:>5}  {:>6.0}  {:>6.0}  {:>10}",
            r.id,
            if r.failures.is_empty() { "pass" } else { "FAIL" },
            l.len(),
            percentile(&mut l.clone(), 0.5),
            percentile(&mut l, 0.95),
            r.overlapped
        );
        for f in &r.failures {
            eprintln!("    - {f}");
        }
    }
    eprintln!(
        "{passed}/{} scenarios passed; voice-to-voice over {} turns: p50 {:.0} ms, p95 {:.0} ms ({} replies that began while the caller spoke left out)",
        results.len(),
        all.len(),
        percentile(&mut all.clone(), 0.5),
        percentile(&mut all, 0.95),
        results.iter().map(|r| r.overlapped).sum::<usize>()
    );
    stages.print();
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

/// Scenarios that can share one appliance (distinct callers, no competing bookings).
const CONCURRENT: [&str; 4] = ["book-new-patient-cleaning", "emergency-in-hours", "insurance-question-grounded", "cancel-existing"];

/// Four callers at once on one appliance (the engines are shared): the same figures as
/// `all_demo_scenarios`, and per caller whether the call ended with the scenario's outcome.
#[test]
#[ignore = "long (about 2 minutes): run with --ignored, see README"]
fn four_simultaneous_callers() {
    let scenarios = load_scenarios(&fixture("callers/scenarios.toml")).expect("scenarios");
    let ids: Vec<String> = match std::env::var("FD_CONCURRENT") {
        Ok(s) => s.split(',').map(|x| x.trim().to_owned()).collect(),
        Err(_) => CONCURRENT.iter().map(|s| s.to_string()).collect(),
    };
    let picked: Vec<Scenario> = ids.iter().map(|id| scenarios.iter().find(|s| &s.id == id).unwrap_or_else(|| panic!("no scenario {id}")).clone()).collect();
    let froms: std::collections::HashSet<&str> = picked.iter().map(|s| s.from.as_str()).collect();
    assert_eq!(froms.len(), picked.len(), "concurrent scenarios need distinct caller ids (calls are told apart by them)");
    assert!(picked.iter().all(|s| s.now.is_none()), "one appliance, one clock: pick scenarios on the default clock");
    let work = tempdir().join("concurrent");
    std::fs::create_dir_all(&work).unwrap();
    let mut app = Appliance::start(&work, PRACTICE_NOW);
    let uri = app.uri();
    let runs: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = picked
            .iter()
            .enumerate()
            .map(|(i, sc)| {
                let mut opts = RunOptions::new(work.join(format!("caller-{i}")));
                opts.turn_timeout = Duration::from_secs(60);
                if let Ok(c) = std::env::var("FD_CODECS") {
                    opts.codecs = c.split(',').map(|x| x.trim().to_owned()).collect();
                }
                let uri = uri.clone();
                scope.spawn(move || {
                    // Staggered a little, as real calls are: all four still overlap for most of the call.
                    std::thread::sleep(Duration::from_millis(700 * i as u64));
                    run_scenario(sc, &uri, &opts)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("caller thread")).collect()
    });
    std::thread::sleep(Duration::from_secs(2));
    app.stop();
    let store = Store::open(&app.data_dir).expect("open store after the calls");
    let calls = store.list_calls(CallPage { before: None, limit: 50 }, Actor::Cli).unwrap();
    let mut results = Vec::new();
    for (sc, run) in picked.iter().zip(runs) {
        let mut failures = Vec::new();
        let mut latencies_ms = Vec::new();
        let mut overlapped = 0;
        match run {
            Ok(r) => (latencies_ms, overlapped) = voice_to_voice(&r),
            Err(e) => failures.push(format!("call failed: {e}")),
        }
        let mut stages = Stages::default();
        match calls.iter().find(|c| c.caller.as_deref() == Some(sc.from.as_str())) {
            None => failures.push("no call recorded for this caller".into()),
            Some(c) => {
                let want = sc.expect.get("outcome").and_then(|v| v.as_str());
                if want.is_some() && c.outcome.as_deref() != want {
                    failures.push(format!("outcome: expected {want:?}, recorded {:?}", c.outcome));
                }
                stages.add_turns(&store.call_turns(c.id, Actor::Cli).unwrap_or_default());
            }
        }
        results.push(Outcome { id: sc.id.clone(), failures, latencies_ms, overlapped, stages });
    }
    // The log is one for all calls: count it once.
    if let Some(r) = results.first_mut() {
        r.stages.add_log(&app.stderr_log);
    }
    eprintln!("\n{} simultaneous callers on one appliance:", results.len());
    print_results(&results);
    let passed = results.iter().filter(|r| r.failures.is_empty()).count();
    if passed != results.len() {
        eprintln!("--- appliance log tail:\n{}", tail(&app.stderr_log, 60));
    }
    assert_eq!(passed, results.len(), "callers failed (see above)");
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
