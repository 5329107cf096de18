//! Every scripted caller in tests/fixtures/callers/scenarios.toml (shared with the end-to-end tests)
//! plus our own in tests/fixtures/more_scenarios.toml must reach its expected outcome, and nothing
//! else may be booked, moved or cancelled.

mod harness;

use harness::*;

fn run_file(rel: &str) {
    let file: ScenarioFile = toml::from_str(&fixture(rel)).expect("scenario file parses");
    assert!(!file.scenario.is_empty());
    let mut failures = Vec::new();
    for sc in &file.scenario {
        let r = run(sc);
        let f = check(sc, &r);
        if !f.is_empty() {
            failures.push(format!("--- {}: {}\n{}", sc.id, f.join("; "), r.transcript));
        } else if std::env::var("SHOW_TRANSCRIPTS").is_ok() {
            println!("--- {} ok\n{}", sc.id, r.transcript);
        }
    }
    assert!(failures.is_empty(), "{} of {} scenarios failed:\n{}", failures.len(), file.scenario.len(), failures.join("\n"));
}

#[test]
fn shared_caller_scenarios() {
    run_file("../../tests/fixtures/callers/scenarios.toml");
}

#[test]
fn more_caller_scenarios() {
    run_file("tests/fixtures/more_scenarios.toml");
}

/// The shared scenarios as the speech recogniser really transcribed them (see the file's header).
#[test]
fn heard_caller_scenarios() {
    run_file("tests/fixtures/heard_scenarios.toml");
}

/// Exploration aid: `SCENARIOS_FILE=/abs/path.toml cargo test -p fd-receptionist --test scenarios
/// -- --ignored --nocapture` runs any scenario file in the same format.
#[test]
#[ignore]
fn scenarios_from_env() {
    let Ok(path) = std::env::var("SCENARIOS_FILE") else { return };
    let file: ScenarioFile = toml::from_str(&std::fs::read_to_string(&path).expect("read")).expect("parse");
    for sc in &file.scenario {
        let r = run(sc);
        let f = check(sc, &r);
        println!("--- {} {}\n{}", sc.id, if f.is_empty() { "ok".to_string() } else { f.join("; ") }, r.transcript);
    }
}
