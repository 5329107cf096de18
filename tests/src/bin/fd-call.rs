//! Runs scripted callers from scenarios.toml against a running appliance and prints the
//! voice-to-voice latency of every caller turn (measured from a loopback capture).
//!
//!   cargo run -p fd-e2e --bin fd-call -- --target sip:frontdesk@127.0.0.1:5080 \
//!       --scenario book-new-patient-cleaning
//!
//! The store is not checked here (that is the e2e test's job); `expect` is printed so a
//! person can compare. Needs root (or CAP_NET_RAW) for dumpcap on `lo`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use fd_e2e::scenario::{fixture_path, load_scenarios};
use fd_e2e::{percentile, run_scenario, RunOptions};

#[derive(Parser)]
#[command(about = "Scripted SIP caller for Front Desk end-to-end runs")]
struct Args {
    /// SIP URI of the appliance, e.g. sip:frontdesk@127.0.0.1:5080 (loopback only).
    #[arg(long, required_unless_present = "analyze")]
    target: Option<String>,
    /// Instead of calling: print turn latencies of an existing capture (pcap or pcapng,
    /// e.g. from capture.sh); needs --caller-rtp.
    #[arg(long, requires = "caller_rtp")]
    analyze: Option<PathBuf>,
    /// The caller's RTP port range in that capture, e.g. 20000-20099.
    #[arg(long)]
    caller_rtp: Option<String>,
    /// Scenario id(s) to run; repeat the flag. Default: all scenarios.
    #[arg(long)]
    scenario: Vec<String>,
    /// scenarios.toml to use (default: the checked-in fixture).
    #[arg(long)]
    scenarios: Option<PathBuf>,
    /// Where logs, captures and recordings go (one sub-directory per scenario).
    #[arg(long, default_value = "target/fd-call")]
    run_dir: PathBuf,
    /// Longest wait for one reply of the appliance, in seconds.
    #[arg(long, default_value_t = 30)]
    turn_timeout: u64,
    /// Codecs the caller offers, in order of preference: `g722` (HD voice, what desk phones
    /// offer), `pcmu`, `pcma`. `--codecs pcmu` is a narrowband caller, as most calls from the
    /// phone network arrive; the recogniser hears 8 kHz audio markedly worse.
    #[arg(long, default_value = "g722,pcmu")]
    codecs: String,
}

fn main() -> ExitCode {
    let a = Args::parse();
    if let Some(cap) = &a.analyze {
        return analyze(cap, a.caller_rtp.as_deref().unwrap_or_default());
    }
    let Some(target) = a.target.clone() else { return ExitCode::from(2) };
    if !target.contains("@127.") && !target.contains("@localhost") {
        eprintln!("fd-call: refusing {target}: only loopback targets (127.0.0.0/8) are allowed");
        return ExitCode::from(2);
    }
    let path = a.scenarios.clone().unwrap_or_else(fixture_path);
    let all = match load_scenarios(&path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fd-call: {e}");
            return ExitCode::from(2);
        }
    };
    let unknown: Vec<_> = a.scenario.iter().filter(|id| !all.iter().any(|s| &s.id == *id)).collect();
    if !unknown.is_empty() {
        let known: Vec<_> = all.iter().map(|s| s.id.as_str()).collect();
        eprintln!("fd-call: unknown scenario {unknown:?}; known: {}", known.join(", "));
        return ExitCode::from(2);
    }
    let chosen: Vec<_> = all.iter().filter(|s| a.scenario.is_empty() || a.scenario.contains(&s.id)).collect();
    let mut opts = RunOptions::new(&a.run_dir);
    opts.turn_timeout = Duration::from_secs(a.turn_timeout);
    opts.codecs = a.codecs.split(',').map(|c| c.trim().to_ascii_lowercase()).filter(|c| !c.is_empty()).collect();
    let mut all_lat = Vec::new();
    let mut failed = 0;
    for s in chosen {
        if let Some(now) = &s.now {
            println!("# {}: expects the appliance clock at {now}", s.id);
        }
        match run_scenario(s, &target, &opts) {
            Ok(run) => {
                println!("scenario {}: {} caller turns measured, far end hung up: {}", s.id, run.latencies.len(), run.far_end_hung_up);
                for (i, l) in run.latencies.iter().enumerate() {
                    let note = if l.caller_still_speaking { "  (reply started while the caller was still speaking)" } else { "" };
                    println!("  turn {:>2}: {:>7.0} ms{note}", i + 1, l.latency_ms);
                }
                if let Some(sm) = run.summary {
                    println!("  p50 {:.0} ms  p95 {:.0} ms  max {:.0} ms", sm.p50_ms, sm.p95_ms, sm.max_ms);
                }
                if let Some(t) = &run.transfer {
                    println!("  transferred to {} (local stand-in answered: {})", t.refer_to, t.target_answered);
                }
                println!("  expect: {}", toml::to_string(&s.expect).unwrap_or_default().replace('\n', "; "));
                println!("  capture: {}  received audio: {}", run.record.capture.display(), run.received_wav.display());
                all_lat.extend(run.latencies.iter().map(|l| l.latency_ms));
            }
            Err(e) => {
                failed += 1;
                println!("scenario {}: FAILED: {e}", s.id);
            }
        }
    }
    if let (Some(p50), Some(p95)) = (percentile(&all_lat, 50.0), percentile(&all_lat, 95.0)) {
        println!("all turns: n={} p50 {:.0} ms p95 {:.0} ms", all_lat.len(), p50, p95);
    }
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn analyze(path: &std::path::Path, range: &str) -> ExitCode {
    let Some((lo, hi)) = range.split_once('-').and_then(|(a, b)| Some((a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?))) else {
        eprintln!("fd-call: --caller-rtp must look like 20000-20099");
        return ExitCode::from(2);
    };
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("fd-call: cannot read {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    let dgs = match fd_e2e::pcap::parse_capture(&data) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("fd-call: {e}");
            return ExitCode::from(2);
        }
    };
    let packets = fd_e2e::rtp::classify(&dgs, (lo, hi));
    let p = fd_e2e::VoiceParams::default();
    let lat = fd_e2e::rtp::turn_latencies(&packets, &p);
    println!("{} UDP datagrams, {} RTP packets, {} far-end turns", dgs.len(), packets.len(), fd_e2e::rtp::bot_turns(&packets, &p).len());
    for (i, l) in lat.iter().enumerate() {
        println!("  turn {:>2}: {:>7.0} ms", i + 1, l.latency_ms);
    }
    if let Some(s) = fd_e2e::summarize(&lat) {
        println!("  p50 {:.0} ms  p95 {:.0} ms  max {:.0} ms", s.p50_ms, s.p95_ms, s.max_ms);
    }
    ExitCode::SUCCESS
}
