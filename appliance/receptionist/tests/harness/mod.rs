#![allow(dead_code)] // each test binary uses a different part of the harness
//! Scenario harness: scripted callers against the policy and the in-memory store.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use fd_receptionist::memory::{MemoryTools, Mutation};
use fd_receptionist::{Action, CallContext, Config, Event, PracticeFacts, Receptionist};
use serde::Deserialize;

pub fn fixture(rel: &str) -> String {
    let p = format!("{}/{}", env!("CARGO_MANIFEST_DIR"), rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {p}: {e}"))
}

#[derive(Debug, Deserialize)]
struct PracticeFile {
    now: String,
    practice: toml::Table,
    #[serde(default)]
    hours: Vec<toml::Value>,
    #[serde(default)]
    closures: Vec<toml::Value>,
    #[serde(default)]
    appointment_types: Vec<toml::Value>,
    #[serde(default)]
    existing: Vec<Existing>,
}

#[derive(Debug, Deserialize)]
struct Existing {
    patient: ExPatient,
    #[serde(rename = "type")]
    ty: String,
    start: String,
}

#[derive(Debug, Deserialize)]
struct ExPatient {
    first: String,
    last: String,
    phone: Option<String>,
    dob: Option<NaiveDate>,
}

#[derive(Debug, Deserialize)]
pub struct ScenarioFile {
    pub scenario: Vec<Scenario>,
}

#[derive(Debug, Deserialize)]
pub struct Scenario {
    pub id: String,
    pub from: String,
    #[serde(default)]
    pub now: Option<String>,
    pub lines: Vec<String>,
    #[serde(default)]
    pub dtmf: Vec<String>,
    #[serde(default)]
    pub barge_in: bool,
    /// Extension for our own scenarios: the PBX refuses every transfer.
    #[serde(default)]
    pub transfer_fails: bool,
    pub expect: Expect,
}

#[derive(Debug, Deserialize, Default)]
pub struct Expect {
    pub outcome: String,
    #[serde(rename = "type")]
    pub ty: Option<String>,
    pub start: Option<String>,
    pub date: Option<NaiveDate>,
    pub patient: Option<String>,
    pub phone: Option<String>,
    pub callback: Option<String>,
    pub topic_contains: Option<String>,
    #[serde(default)]
    pub says: Vec<String>,
    #[serde(default)]
    pub never_says: Vec<String>,
    pub cancelled_start: Option<String>,
    pub from_start: Option<String>,
    pub target: Option<String>,
}

pub fn parse_local(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M"))
        .unwrap_or_else(|e| panic!("bad local time {s}: {e}"))
}

pub struct World {
    pub facts: PracticeFacts,
    pub tools: MemoryTools,
    pub now_local: NaiveDateTime,
    pub tz: Tz,
}

pub fn load_world() -> World {
    let pf: PracticeFile = toml::from_str(&fixture("../../tests/fixtures/callers/practice.toml")).expect("practice.toml parses");
    let mut t = pf.practice.clone();
    t.insert("hours".into(), toml::Value::Array(pf.hours));
    t.insert("closures".into(), toml::Value::Array(pf.closures));
    t.insert("appointment_types".into(), toml::Value::Array(pf.appointment_types));
    let facts: PracticeFacts = toml::Value::Table(t).try_into().expect("practice facts");
    let mut tools = MemoryTools::new(facts.clone());
    for e in &pf.existing {
        let pid = tools.add_patient(&e.patient.first, &e.patient.last, e.patient.phone.as_deref(), e.patient.dob);
        tools.add_appointment(&pid, &e.ty, parse_local(&e.start));
    }
    let tz: Tz = facts.timezone.parse().expect("tz");
    World { facts, tools, now_local: parse_local(&pf.now), tz }
}

pub fn to_utc(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    tz.from_local_datetime(&local).earliest().expect("local time exists").with_timezone(&Utc)
}

pub struct Run {
    pub said: Vec<String>,
    pub transcript: String,
    pub transfers: Vec<String>,
    pub receptionist: Receptionist,
    pub tools: MemoryTools,
    pub initial: MemoryTools,
}

pub fn run(sc: &Scenario) -> Run {
    let mut w = load_world();
    let initial = w.tools.clone();
    let now_local = sc.now.as_deref().map(parse_local).unwrap_or(w.now_local);
    let mut now = to_utc(w.tz, now_local);
    let ctx = CallContext { call_id: sc.id.clone(), caller_id: Some(sc.from.clone()), started_at: now };
    let mut r = Receptionist::new(w.facts.clone(), ctx, Config::default()).expect("receptionist");
    let mut said = Vec::new();
    let mut transcript = String::new();
    let mut transfers = Vec::new();
    let mut pending: Vec<Action> = r.start(now);
    for (i, line) in sc.lines.iter().enumerate() {
        // Process bot actions (transfers get an answer from the "PBX").
        loop {
            let mut follow = Vec::new();
            for a in pending.drain(..) {
                match a {
                    Action::Say { text, .. } => {
                        transcript.push_str(&format!("  BOT: {text}\n"));
                        said.push(text);
                    }
                    Action::Transfer { uri, .. } => {
                        transcript.push_str(&format!("  [transfer {uri}]\n"));
                        transfers.push(uri);
                        let ev = if sc.transfer_fails { Event::TransferFailed } else { Event::TransferSucceeded };
                        follow.extend(r.handle(ev, now, &mut w.tools));
                    }
                    Action::Hangup => transcript.push_str("  [hangup]\n"),
                    Action::Record(_) => {}
                }
            }
            if follow.is_empty() {
                break;
            }
            pending = follow;
        }
        if r.is_ended() {
            break;
        }
        now += Duration::seconds(15);
        if sc.barge_in && i > 0 {
            pending.extend(r.handle(Event::BargeIn, now, &mut w.tools));
        }
        let dtmf = sc.dtmf.get(i).map(String::as_str).unwrap_or("");
        if !dtmf.is_empty() {
            transcript.push_str(&format!("CALLER: <dtmf {dtmf}>\n"));
            for d in dtmf.chars() {
                pending.extend(r.handle(Event::Dtmf(d), now, &mut w.tools));
            }
        } else {
            transcript.push_str(&format!("CALLER: {line}\n"));
            pending.extend(r.handle(Event::CallerSaid { text: line.clone(), asr_confidence: None, understanding: None }, now, &mut w.tools));
        }
    }
    loop {
        let mut follow = Vec::new();
        for a in pending.drain(..) {
            match a {
                Action::Say { text, .. } => {
                    transcript.push_str(&format!("  BOT: {text}\n"));
                    said.push(text);
                }
                Action::Transfer { uri, .. } => {
                    transcript.push_str(&format!("  [transfer {uri}]\n"));
                    transfers.push(uri);
                    let ev = if sc.transfer_fails { Event::TransferFailed } else { Event::TransferSucceeded };
                    follow.extend(r.handle(ev, now, &mut w.tools));
                }
                Action::Hangup => transcript.push_str("  [hangup]\n"),
                Action::Record(_) => {}
            }
        }
        if follow.is_empty() {
            break;
        }
        pending = follow;
    }
    if !r.is_ended() {
        r.handle(Event::CallerHungUp, now, &mut w.tools);
    }
    Run { said, transcript, transfers, receptionist: r, tools: w.tools, initial }
}

/// Check one scenario; returns the list of failures (empty = pass).
pub fn check(sc: &Scenario, run: &Run) -> Vec<String> {
    let mut f = Vec::new();
    let e = &sc.expect;
    let summary = run.receptionist.summary();
    if summary.outcome.as_str() != e.outcome {
        f.push(format!("outcome {} != expected {}", summary.outcome.as_str(), e.outcome));
    }
    let all_said = run.said.join(" ").to_lowercase();
    for s in &e.says {
        if !all_said.contains(&s.to_lowercase()) {
            f.push(format!("bot never said {s:?}"));
        }
    }
    for s in &e.never_says {
        if all_said.contains(&s.to_lowercase()) {
            f.push(format!("bot said forbidden {s:?}"));
        }
    }
    let muts = &run.tools.mutations;
    let count = |pred: fn(&Mutation) -> bool| muts.iter().filter(|m| pred(m)).count();
    let booked = count(|m| matches!(m, Mutation::Booked { .. }));
    let cancelled = count(|m| matches!(m, Mutation::Cancelled { .. }));
    let moved = count(|m| matches!(m, Mutation::Rescheduled { .. }));
    let messages = count(|m| matches!(m, Mutation::Message { .. }));
    let want = |o: &str| usize::from(e.outcome == o);
    if (booked, cancelled, moved, messages) != (want("booked"), want("cancelled"), want("rescheduled"), want("message")) {
        f.push(format!("mutations {muts:?} do not match outcome {}", e.outcome));
    }
    let patient_name = |pid: &str| {
        run.tools.patients.iter().find(|p| p.id == pid).map(|p| (format!("{} {}", p.first, p.last), p.phone.clone()))
    };
    let fmt = |d: NaiveDateTime| d.format("%Y-%m-%dT%H:%M").to_string();
    match e.outcome.as_str() {
        "booked" => {
            let new: Vec<_> = run.tools.appointments.iter().filter(|a| !run.initial.appointments.iter().any(|b| b.id == a.id)).collect();
            if let Some(a) = new.first() {
                if let Some(t) = &e.ty {
                    if &a.appointment_type != t {
                        f.push(format!("type {} != {t}", a.appointment_type));
                    }
                }
                if let Some(s) = &e.start {
                    if &fmt(a.start_local) != s {
                        f.push(format!("start {} != {s}", fmt(a.start_local)));
                    }
                }
                if let Some(d) = e.date {
                    if a.start_local.date() != d {
                        f.push(format!("date {} != {d}", a.start_local.date()));
                    }
                }
                let (name, phone) = patient_name(&a.patient_id).unwrap_or_default();
                if let Some(p) = &e.patient {
                    if &name != p {
                        f.push(format!("patient {name} != {p}"));
                    }
                }
                if let Some(p) = &e.phone {
                    if phone.as_ref() != Some(p) {
                        f.push(format!("phone {phone:?} != {p}"));
                    }
                }
            } else {
                f.push("nothing booked".into());
            }
        }
        "cancelled" => {
            let c: Vec<_> = run.tools.appointments.iter().filter(|a| a.cancelled).collect();
            match c.first() {
                Some(a) => {
                    if let Some(s) = &e.cancelled_start {
                        if &fmt(a.start_local) != s {
                            f.push(format!("cancelled {} != {s}", fmt(a.start_local)));
                        }
                    }
                    if let Some(p) = &e.patient {
                        let (name, _) = patient_name(&a.patient_id).unwrap_or_default();
                        if &name != p {
                            f.push(format!("patient {name} != {p}"));
                        }
                    }
                }
                None => f.push("nothing cancelled".into()),
            }
        }
        "rescheduled" => {
            let m = muts.iter().find_map(|m| match m {
                Mutation::Rescheduled { appointment_id, from, to } => Some((appointment_id.clone(), *from, *to)),
                _ => None,
            });
            match m {
                Some((id, from, to)) => {
                    if let Some(s) = &e.from_start {
                        if &fmt(from) != s {
                            f.push(format!("from {} != {s}", fmt(from)));
                        }
                    }
                    if let Some(s) = &e.start {
                        if &fmt(to) != s {
                            f.push(format!("to {} != {s}", fmt(to)));
                        }
                    }
                    if let Some(p) = &e.patient {
                        let pid = run.tools.appointments.iter().find(|a| a.id == id).map(|a| a.patient_id.clone()).unwrap_or_default();
                        let (name, _) = patient_name(&pid).unwrap_or_default();
                        if &name != p {
                            f.push(format!("patient {name} != {p}"));
                        }
                    }
                }
                None => f.push("nothing rescheduled".into()),
            }
        }
        "message" => match run.tools.messages.first() {
            Some((_, m)) => {
                if let Some(p) = &e.patient {
                    if &m.name != p {
                        f.push(format!("message name {} != {p}", m.name));
                    }
                }
                if let Some(c) = &e.callback {
                    if m.callback.as_ref() != Some(c) {
                        f.push(format!("callback {:?} != {c}", m.callback));
                    }
                }
                if let Some(t) = &e.topic_contains {
                    let hay = format!("{} {}", m.topic, m.body).to_lowercase();
                    if !hay.contains(&t.to_lowercase()) {
                        f.push(format!("message topic/body {hay:?} lacks {t:?}"));
                    }
                }
            }
            None => f.push("no message taken".into()),
        },
        "transferred" => {
            if let Some(t) = &e.target {
                if run.transfers.last() != Some(t) {
                    f.push(format!("transfers {:?} do not end at {t}", run.transfers));
                }
            }
        }
        _ => {}
    }
    if e.outcome != "transferred" {
        if let Some(t) = &e.target {
            if !run.transfers.contains(t) {
                f.push(format!("no transfer attempt to {t}"));
            }
        }
    }
    f
}
