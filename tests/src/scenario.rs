//! scenarios.toml and the runner that plays one scenario over a real call.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::caller::{CallRecord, CallerConfig, ScriptedCaller};
use crate::error::{io_err, Error, Result};
use crate::rtp::{summarize, LatencySummary, TurnLatency};

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub id: String,
    /// Caller id user part ("+12175550161", "anonymous").
    pub from: String,
    /// Practice-local time the appliance should believe it is (the harness cannot set
    /// it: the appliance must be started with this clock).
    #[serde(default)]
    pub now: Option<String>,
    pub lines: Vec<String>,
    /// `dtmf[i]` (if non-empty) is sent at turn i instead of / after `lines[i]`.
    #[serde(default)]
    pub dtmf: Vec<String>,
    /// Speak each line ~1 s into the far end's turn instead of after it.
    #[serde(default)]
    pub barge_in: bool,
    /// Checked against the store by the caller of the runner.
    pub expect: toml::Table,
}

#[derive(Debug, Deserialize)]
struct File {
    scenario: Vec<Scenario>,
}

pub fn parse_scenarios(text: &str) -> Result<Vec<Scenario>> {
    let f: File = toml::from_str(text).map_err(|e| Error::Scenario(e.to_string()))?;
    let mut ids = std::collections::HashSet::new();
    for s in &f.scenario {
        if !ids.insert(s.id.clone()) {
            return Err(Error::Scenario(format!("duplicate scenario id `{}`", s.id)));
        }
        if s.dtmf.len() > s.lines.len() {
            return Err(Error::Scenario(format!("scenario `{}`: more dtmf entries than lines", s.id)));
        }
    }
    Ok(f.scenario)
}

pub fn load_scenarios(path: &Path) -> Result<Vec<Scenario>> {
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    parse_scenarios(&text)
}

/// The checked-in copy, `tests/fixtures/callers/scenarios.toml`.
pub fn fixture_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/callers/scenarios.toml")
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub run_dir: PathBuf,
    /// Longest wait for one far-end turn (greeting, replies).
    pub turn_timeout: Duration,
    /// Barge-in delay after the far end starts speaking.
    pub barge_in_ms: u64,
    /// Codecs the caller offers, in order (baresip names: "pcmu", "g722", ...).
    pub codecs: Vec<String>,
}

impl RunOptions {
    pub fn new(run_dir: impl Into<PathBuf>) -> Self {
        Self { run_dir: run_dir.into(), turn_timeout: Duration::from_secs(30), barge_in_ms: 1000, codecs: vec!["pcmu".into()] }
    }
}

/// A timestamped step of the run (for reports and debugging; no audio content).
#[derive(Debug, Clone, PartialEq)]
pub struct RunEvent {
    pub at_us: i64,
    pub what: String,
}

#[derive(Debug, Clone)]
pub struct ScenarioRun {
    pub scenario_id: String,
    pub latencies: Vec<TurnLatency>,
    pub summary: Option<LatencySummary>,
    pub received_wav: PathBuf,
    pub caller_wavs: Vec<PathBuf>,
    pub events: Vec<RunEvent>,
    /// True when the far end ended the call (rather than the caller hanging up).
    pub far_end_hung_up: bool,
    /// The far end transferred the call (REFER seen by baresip).
    pub transfer: Option<TransferSeen>,
    pub record: CallRecord,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TransferSeen {
    /// Refer-To target as baresip reported it.
    pub refer_to: String,
    /// The local stand-in for `expect.target` answered the transferred call.
    pub target_answered: bool,
}

/// User part of a `sip:user@host` URI.
fn sip_user(uri: &str) -> Option<&str> {
    let rest = uri.strip_prefix("sip:").or_else(|| uri.strip_prefix("sips:"))?;
    let (user, _) = rest.split_once('@')?;
    (!user.is_empty()).then_some(user)
}

/// Plays `s` against `target_uri`: waits for the greeting, then per turn says the line
/// (after the far end's turn, or ~1 s into it with `barge_in`), sends that turn's DTMF,
/// waits for the final reply and hangs up if the far end has not.
pub fn run_scenario(s: &Scenario, target_uri: &str, opts: &RunOptions) -> Result<ScenarioRun> {
    let dir = opts.run_dir.join(&s.id);
    let mut cfg = CallerConfig::new(target_uri, &s.from, &dir)?;
    cfg.codecs = opts.codecs.clone();
    // A scenario that expects a transfer gets a local stand-in for the transfer target,
    // so the appliance's REFER succeeds (NOTIFY 200) without leaving loopback.
    let expected_target = s.expect.get("target").and_then(|v| v.as_str()).map(str::to_string);
    let mut sink = match expected_target.as_deref().and_then(sip_user) {
        Some(user) => {
            let speech = crate::speech::SpeechCache::new(&cfg.speech_cache)?;
            let wav = speech.speech("Front desk, how can I help?")?;
            // baresip's file source plays at the caller's codec rate only: an HD-voice caller
            // transferred to a narrowband callee fails its new call with "No such device".
            let callee = if cfg.wideband() {
                crate::callee::TestCallee::start_wideband(&dir.join("transfer-target"), user, &wav, 60.0)?
            } else {
                crate::callee::TestCallee::start(&dir.join("transfer-target"), user, &wav, 60.0)?
            };
            cfg.transfer_sink_port = Some(callee.sip_port);
            Some(callee)
        }
        None => None,
    };
    let mut events = Vec::new();
    let ev = |events: &mut Vec<RunEvent>, what: String| events.push(RunEvent { at_us: crate::baresip::now_us(), what });
    let mut c = ScriptedCaller::start(cfg)?;
    ev(&mut events, "call established".into());
    let mut caller_wavs = Vec::new();
    let mut result = Ok(());
    for (i, line) in s.lines.iter().enumerate() {
        let barge = s.barge_in && !line.trim().is_empty();
        let step = if barge {
            c.barge_in_after(opts.barge_in_ms, line, opts.turn_timeout).inspect(|_| ev(&mut events, format!("turn {i}: barged in")))
        } else {
            c.wait_for_bot_turn(opts.turn_timeout).and_then(|t| {
                ev(&mut events, format!("turn {i}: far end spoke {} ms", (t.end_us - t.start_us) / 1000));
                c.say(line)
            })
        };
        let step = step.and_then(|l| {
            if !l.text.is_empty() {
                caller_wavs.push(l.wav);
                ev(&mut events, format!("turn {i}: said line {}", i + 1));
            }
            match s.dtmf.get(i).filter(|d| !d.is_empty()) {
                Some(d) => c.send_dtmf(d).map(|_| ev(&mut events, format!("turn {i}: sent DTMF"))),
                None => Ok(()),
            }
        });
        if let Err(e) = step {
            ev(&mut events, format!("turn {i}: {e}"));
            result = Err(e);
            break;
        }
    }
    if result.is_ok() {
        match c.wait_for_bot_turn(opts.turn_timeout) {
            Ok(_) => ev(&mut events, "final reply".into()),
            // the far end may hang up right after a transfer or a goodbye
            Err(Error::CallClosed(_)) => {}
            Err(e) => result = Err(e),
        }
    }
    let far_end_hung_up = c.is_closed();
    if far_end_hung_up {
        ev(&mut events, "far end hung up".into());
    }
    let record = c.finish()?;
    let transfer = record.events.iter().find(|e| e.kind.contains("TRANSFER")).map(|e| TransferSeen {
        refer_to: e.param.clone(),
        target_answered: sink.as_ref().is_some_and(|k| k.answered()),
    });
    if let Some(k) = sink.as_mut() {
        k.stop();
    }
    result?;
    Ok(ScenarioRun {
        scenario_id: s.id.clone(),
        summary: summarize(&record.latencies),
        latencies: record.latencies.clone(),
        received_wav: record.received_wav.clone(),
        caller_wavs,
        events,
        far_end_hung_up,
        transfer,
        record,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_parses_with_dtmf_and_barge_in() {
        let all = load_scenarios(&fixture_path()).unwrap();
        assert!(all.len() >= 10);
        let z = all.iter().find(|s| s.id == "press-zero-for-front-desk").unwrap();
        assert_eq!(z.lines, vec![String::new()]);
        assert_eq!(z.dtmf, vec!["0".to_string()]);
        assert_eq!(z.expect.get("outcome").and_then(|v| v.as_str()), Some("transferred"));
        let b = all.iter().find(|s| s.id == "closed-day-and-barge-in").unwrap();
        assert!(b.barge_in);
        let a = all.iter().find(|s| s.id == "after-hours-message").unwrap();
        assert_eq!(a.now.as_deref(), Some("2026-03-02T19:30:00"));
        assert!(all.iter().filter(|s| s.id != a.id).all(|s| s.now.is_none()));
    }

    #[test]
    fn sip_user_part() {
        assert_eq!(sip_user("sip:100@pbx.local"), Some("100"));
        assert_eq!(sip_user("sip:+12175550199@pbx.local"), Some("+12175550199"));
        assert_eq!(sip_user("sip:pbx.local"), None);
        assert_eq!(sip_user("tel:100"), None);
    }

    #[test]
    fn rejects_duplicates_and_unknown_fields() {
        let dup = "[[scenario]]\nid='a'\nfrom='x'\nlines=['hi']\nexpect={}\n[[scenario]]\nid='a'\nfrom='x'\nlines=['hi']\nexpect={}\n";
        assert!(matches!(parse_scenarios(dup), Err(Error::Scenario(m)) if m.contains("duplicate")));
        let unk = "[[scenario]]\nid='a'\nfrom='x'\nlines=['hi']\nexpect={}\nbogus=1\n";
        assert!(parse_scenarios(unk).is_err());
    }
}
