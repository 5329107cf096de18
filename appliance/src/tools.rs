//! The receptionist's tools, implemented over the encrypted store.
//!
//! Ids cross the boundary as opaque strings: slot ids are the store's signed `SlotId`s (the dialogue
//! layer and the model cannot forge one), appointment and patient ids are row ids. Every store call
//! is audited as `Actor::Call(call_id)`. Store error text never reaches the dialogue layer, so PHI
//! that could be inside it never reaches a transcript or a log either.

use std::collections::HashMap;

use chrono::{NaiveTime, TimeZone};
use fd_receptionist::facts::{AppointmentTypeFacts, Closure, DayHours, PracticeFacts};
use fd_receptionist::tools::*;
use fd_store::{Actor, BookRequest, NewMessage, NewPatient, SlotId, Store, StoreError};

pub struct StoreTools<'a> {
    store: &'a mut Store,
    call_id: i64,
    /// Messages taken in this call, by idempotency key (the store's messages have no key column).
    messages: HashMap<String, String>,
}

impl<'a> StoreTools<'a> {
    pub fn new(store: &'a mut Store, call_id: i64) -> Self {
        Self { store, call_id, messages: HashMap::new() }
    }

    fn actor(&self) -> Actor {
        Actor::Call(self.call_id)
    }
}

fn tool_err(e: StoreError) -> ToolError {
    match e {
        StoreError::SlotTaken => ToolError::SlotUnavailable,
        StoreError::UnknownSlot => ToolError::UnknownSlot,
        StoreError::NoSuchAppointment(_) => ToolError::NotFound,
        other => {
            // Logged by kind only: store errors can carry paths, never PHI, but keep it minimal.
            tracing::error!(error = %other, "store error during a call");
            ToolError::Unavailable("the appointment book is temporarily unavailable".into())
        }
    }
}

fn parse_id(id: &str) -> Result<i64, ToolError> {
    id.parse().map_err(|_| ToolError::NotFound)
}

fn patient_ref(p: fd_store::Patient) -> PatientRef {
    PatientRef { id: p.id.to_string(), first: p.first_name, last: p.last_name, phone: p.phone, dob: p.dob }
}

impl Tools for StoreTools<'_> {
    fn find_patient_by_phone(&mut self, e164: &str) -> Result<Vec<PatientRef>, ToolError> {
        let a = self.actor();
        Ok(self.store.patients_by_phone(e164, a).map_err(tool_err)?.into_iter().map(patient_ref).collect())
    }

    fn find_patients_by_dob(&mut self, dob: chrono::NaiveDate) -> Result<Vec<PatientRef>, ToolError> {
        let a = self.actor();
        Ok(self.store.patients_by_dob(dob, a).map_err(tool_err)?.into_iter().map(patient_ref).collect())
    }

    fn upcoming_appointments(&mut self, patient_id: &str, from_local: chrono::NaiveDateTime) -> Result<Vec<AppointmentRef>, ToolError> {
        let pid = parse_id(patient_id)?;
        let a = self.actor();
        let v = self.store.patient_appointments(pid, true, a).map_err(tool_err)?;
        Ok(v.into_iter()
            .filter(|a| a.local_start >= from_local)
            .map(|a| AppointmentRef {
                id: a.id.to_string(),
                patient_id: a.patient_id.to_string(),
                appointment_type: a.type_name,
                start_local: a.local_start,
            })
            .collect())
    }

    fn find_slots(&mut self, q: &SlotQuery) -> Result<Vec<SlotOffer>, ToolError> {
        let ty = match self.store.appointment_type_by_name(&q.appointment_type) {
            Ok(t) => t,
            Err(StoreError::UnknownType(_)) => return Ok(Vec::new()),
            Err(e) => return Err(tool_err(e)),
        };
        let slots = self.store.available_slots(ty.id, q.from, q.to).map_err(tool_err)?;
        Ok(slots
            .into_iter()
            .filter(|s| s.slot.local_start >= q.now_local)
            .filter(|s| q.window.is_none_or(|w| s.slot.local_start.time() >= w.start && s.slot.local_start.time() < w.end))
            .take(q.limit)
            .map(|s| SlotOffer { slot_id: s.id.to_string(), start_local: s.slot.local_start })
            .collect())
    }

    fn book(&mut self, slot_id: &str, p: &PatientDetails, key: &str) -> Result<Booked, ToolError> {
        let slot = SlotId(slot_id.to_owned());
        let a = self.actor();
        let patient_id = match &p.patient_id {
            Some(id) => parse_id(id)?,
            None => {
                let np = NewPatient { first_name: p.first.clone(), last_name: p.last.clone(), phone: p.phone.clone(), dob: p.dob };
                self.store.upsert_patient(&np, a).map_err(tool_err)?.id
            }
        };
        let req = BookRequest { slot: &slot, patient_id, idempotency_key: key, source_call: Some(self.call_id) };
        let b = self.store.book(&req, a).map_err(tool_err)?;
        Ok(Booked {
            appointment_id: b.appointment.id.to_string(),
            appointment_type: b.appointment.type_name,
            start_local: b.appointment.local_start,
        })
    }

    fn cancel(&mut self, appointment_id: &str, _key: &str) -> Result<(), ToolError> {
        let id = parse_id(appointment_id)?;
        let a = self.actor();
        match self.store.cancel(id, a) {
            Ok(()) => Ok(()),
            // A retried cancel of the same appointment: already done, which is what was asked.
            Err(StoreError::NoSuchAppointment(_)) => match self.store.appointment(id, a) {
                Ok(appt) if appt.status == fd_store::AppointmentStatus::Cancelled => Ok(()),
                _ => Err(ToolError::NotFound),
            },
            Err(e) => Err(tool_err(e)),
        }
    }

    fn reschedule(&mut self, appointment_id: &str, slot_id: &str, key: &str) -> Result<Booked, ToolError> {
        let id = parse_id(appointment_id)?;
        let slot = SlotId(slot_id.to_owned());
        let a = self.actor();
        let b = self.store.reschedule(id, &slot, key, Some(self.call_id), a).map_err(tool_err)?;
        Ok(Booked {
            appointment_id: b.appointment.id.to_string(),
            appointment_type: b.appointment.type_name,
            start_local: b.appointment.local_start,
        })
    }

    fn take_message(&mut self, m: &MessageDetails, key: &str) -> Result<String, ToolError> {
        if let Some(id) = self.messages.get(key) {
            return Ok(id.clone());
        }
        let a = self.actor();
        let nm = NewMessage {
            patient_id: None,
            caller_name: Some(m.name.clone()).filter(|n| !n.is_empty()),
            callback: m.callback.clone(),
            topic: if m.urgent { format!("URGENT: {}", m.topic) } else { m.topic.clone() },
            body: m.body.clone(),
            call_id: Some(self.call_id),
        };
        let id = self.store.add_message(&nm, a).map_err(tool_err)?.to_string();
        self.messages.insert(key.to_owned(), id.clone());
        Ok(id)
    }

    fn correct_message_name(&mut self, message_id: &str, name: &str) -> Result<(), ToolError> {
        let id: i64 = message_id.parse().map_err(|_| ToolError::NotFound)?;
        let a = self.actor();
        self.store.set_message_caller_name(id, name, a).map_err(tool_err)
    }
}

/// Tools for a speculative policy run (on a clone of the receptionist, before the caller's turn is
/// confirmed over): reads go to the inner tools, writes are refused and remembered, because a
/// booking, cancellation or message must happen exactly once, on the confirmed turn. A run that
/// tried to write is not reused.
pub struct ReadOnlyTools<T> {
    inner: T,
    write_refused: bool,
}

impl<T: Tools> ReadOnlyTools<T> {
    pub fn new(inner: T) -> Self {
        Self { inner, write_refused: false }
    }

    /// Whether the policy tried to book, cancel, reschedule or take a message.
    pub fn write_refused(&self) -> bool {
        self.write_refused
    }

    fn refuse<R>(&mut self) -> Result<R, ToolError> {
        self.write_refused = true;
        Err(ToolError::Unavailable("speculative turn: writes wait for the confirmed turn".into()))
    }
}

impl<T: Tools> Tools for ReadOnlyTools<T> {
    fn find_patient_by_phone(&mut self, e164: &str) -> Result<Vec<PatientRef>, ToolError> {
        self.inner.find_patient_by_phone(e164)
    }

    fn find_patients_by_dob(&mut self, dob: chrono::NaiveDate) -> Result<Vec<PatientRef>, ToolError> {
        self.inner.find_patients_by_dob(dob)
    }

    fn upcoming_appointments(&mut self, patient_id: &str, from_local: chrono::NaiveDateTime) -> Result<Vec<AppointmentRef>, ToolError> {
        self.inner.upcoming_appointments(patient_id, from_local)
    }

    fn find_slots(&mut self, q: &SlotQuery) -> Result<Vec<SlotOffer>, ToolError> {
        self.inner.find_slots(q)
    }

    fn book(&mut self, _slot_id: &str, _p: &PatientDetails, _key: &str) -> Result<Booked, ToolError> {
        self.refuse()
    }

    fn cancel(&mut self, _appointment_id: &str, _key: &str) -> Result<(), ToolError> {
        self.refuse()
    }

    fn reschedule(&mut self, _appointment_id: &str, _slot_id: &str, _key: &str) -> Result<Booked, ToolError> {
        self.refuse()
    }

    fn take_message(&mut self, _m: &MessageDetails, _key: &str) -> Result<String, ToolError> {
        self.refuse()
    }

    fn correct_message_name(&mut self, _message_id: &str, _name: &str) -> Result<(), ToolError> {
        self.refuse()
    }
}

/// The practice facts the dialogue may answer from, read from the store (what `practice import` wrote).
pub fn practice_facts(store: &Store) -> Result<PracticeFacts, StoreError> {
    let s = store.practice_summary()?;
    let tz = store.timezone()?;
    let today = tz.from_utc_datetime(&store.now().naive_utc()).date_naive();
    // Hours and closures (all of them) come from the scheduler's input; a one-day range keeps the
    // appointments it also loads to a handful, since this runs at the start of every call.
    let input = store.scheduling_input(today, today)?;
    let hm = |m: u16| NaiveTime::from_hms_opt(u32::from(m / 60), u32::from(m % 60), 0).unwrap_or(NaiveTime::MIN);
    let hours = input
        .hours
        .iter()
        .map(|h| DayHours { day: h.weekday, open: hm(h.open_min), close: hm(h.close_min), breaks: h.breaks.iter().map(|&(a, b)| (hm(a), hm(b))).collect() })
        .collect();
    let closures = input.closures.iter().map(|&date| Closure { date, reason: String::new() }).collect();
    let appointment_types = store
        .appointment_types()?
        .into_iter()
        .map(|t| AppointmentTypeFacts {
            name: t.name,
            minutes: t.minutes,
            buffer_after: t.buffer_after,
            min_notice_hours: t.min_notice_minutes / 60,
            window_days: t.window_days,
            price: t.price_cents.map(|c| (c / 100) as u32),
            bookable_by_phone: t.bookable_by_phone,
        })
        .collect();
    Ok(PracticeFacts {
        name: s.name,
        timezone: s.timezone,
        address: s.address,
        phone: s.phone,
        front_desk_uri: s.front_desk_uri,
        on_call_uri: s.on_call_uri,
        insurance_accepted: s.insurance_accepted,
        services: s.services.into_iter().map(|x| x.name).collect(),
        greeting: s.greeting,
        hours,
        closures,
        appointment_types,
    })
}

#[cfg(test)]
mod tests {
    //! The receptionist policy over the real encrypted store, text only (no audio): every demo
    //! scenario, checked against the store afterwards. The end-to-end tests do the same over SIP.
    use super::*;
    use chrono::{NaiveDateTime, Utc};
    use fd_receptionist::{Action, CallContext, Event, Receptionist};
    use fd_store::{AppointmentStatus, CallEnd, Direction, NewCall};

    fn fixture(rel: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures").join(rel)
    }

    fn local(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
            .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M"))
            .unwrap()
    }

    #[test]
    fn read_only_tools_read_through_and_refuse_every_write() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        store.import_practice_file(&fixture("callers/practice.toml"), Actor::Cli).unwrap();
        let call = store.start_call(&NewCall { direction: Direction::Inbound, caller: None, callee: None }).unwrap();
        let appts_before = store.list_appointments(None, 1000, Actor::Cli).unwrap().len();
        let msgs_before = store.list_messages(100, Actor::Cli).unwrap().len();
        let existing = store.list_appointments(None, 1, Actor::Cli).unwrap().into_iter().next().expect("the demo practice has appointments");
        let mut ro = ReadOnlyTools::new(StoreTools::new(&mut store, call));
        // A read answers from the store and does not spoil the speculation.
        // Robert Chen in the demo practice.
        let pats = ro.find_patients_by_dob(chrono::NaiveDate::from_ymd_opt(1975, 6, 14).unwrap());
        assert!(pats.is_ok_and(|p| p.iter().any(|p| p.last == "Chen")), "reads go to the store");
        assert!(!ro.write_refused());
        let details = PatientDetails { patient_id: None, first: "A".into(), last: "B".into(), phone: None, dob: None, new_patient: true };
        assert!(ro.book("1", &details, "k").is_err());
        assert!(ro.write_refused());
        let mut ro = ReadOnlyTools::new(StoreTools::new(&mut store, call));
        assert!(ro.cancel(&existing.id.to_string(), "k").is_err());
        assert!(ro.reschedule(&existing.id.to_string(), "1", "k").is_err());
        let m = MessageDetails { name: "A".into(), callback: None, topic: "t".into(), body: "b".into(), urgent: false };
        assert!(ro.take_message(&m, "k").is_err());
        assert!(ro.write_refused());
        assert_eq!(store.list_appointments(None, 1000, Actor::Cli).unwrap().len(), appts_before);
        assert_eq!(store.appointment(existing.id, Actor::Cli).unwrap().status, existing.status, "nothing cancelled");
        assert_eq!(store.list_messages(100, Actor::Cli).unwrap().len(), msgs_before);
    }

    #[test]
    fn demo_scenarios_against_the_encrypted_store() {
        let text = std::fs::read_to_string(fixture("callers/scenarios.toml")).unwrap();
        let file: toml::Table = toml::from_str(&text).unwrap();
        let practice_now = {
            let p: toml::Table = toml::from_str(&std::fs::read_to_string(fixture("callers/practice.toml")).unwrap()).unwrap();
            p["now"].as_str().unwrap().to_owned()
        };
        let mut failures = Vec::new();
        for sc in file["scenario"].as_array().unwrap() {
            let sc = sc.as_table().unwrap();
            let id = sc["id"].as_str().unwrap();
            let dir = tempfile::tempdir().unwrap();
            let mut store = Store::open(dir.path()).unwrap();
            store.import_practice_file(&fixture("callers/practice.toml"), Actor::Cli).unwrap();
            let tz = store.timezone().unwrap();
            let now_local = local(sc.get("now").and_then(|v| v.as_str()).unwrap_or(&practice_now));
            let now = tz.from_local_datetime(&now_local).unwrap().with_timezone(&Utc);
            store.set_fixed_now(now);
            let before: Vec<(i64, AppointmentStatus)> =
                store.list_appointments(None, 1000, Actor::Cli).unwrap().into_iter().map(|a| (a.id, a.status)).collect();
            let from = sc["from"].as_str().unwrap();
            let call = store.start_call(&NewCall { direction: Direction::Inbound, caller: Some(from.into()), callee: None }).unwrap();
            let facts = practice_facts(&store).unwrap();
            let mut r = Receptionist::new(
                facts,
                CallContext { call_id: format!("call-{call}"), caller_id: Some(from.into()), started_at: now },
                Default::default(),
            )
            .unwrap();
            let mut said: Vec<String> = Vec::new();
            let collect = |acts: Vec<Action>, said: &mut Vec<String>| {
                for a in acts {
                    if let Action::Say { text, .. } = a {
                        said.push(text);
                    }
                }
            };
            collect(r.start(now), &mut said);
            let lines = sc["lines"].as_array().unwrap();
            let dtmf = sc.get("dtmf").and_then(|d| d.as_array()).cloned().unwrap_or_default();
            for (i, line) in lines.iter().enumerate() {
                let mut tools = StoreTools::new(&mut store, call);
                if let Some(d) = dtmf.get(i).and_then(|d| d.as_str()).filter(|d| !d.is_empty()) {
                    for c in d.chars() {
                        let acts = r.handle(Event::Dtmf(c), now, &mut tools);
                        collect(acts, &mut said);
                    }
                }
                let line = line.as_str().unwrap();
                if !line.is_empty() {
                    let acts = r.handle(Event::CallerSaid { text: line.into(), asr_confidence: None, understanding: None }, now, &mut tools);
                    collect(acts, &mut said);
                }
            }
            let summary = r.summary();
            store.end_call(call, &CallEnd { outcome: fd_store::Outcome::parse(summary.outcome.as_str()), ..Default::default() }).unwrap();

            let expect = sc["expect"].as_table().unwrap();
            let mut fail = |m: String| failures.push(format!("{id}: {m}"));
            let out = expect["outcome"].as_str().unwrap();
            if summary.outcome.as_str() != out {
                fail(format!("outcome {} != {out}", summary.outcome.as_str()));
            }
            let after = store.list_appointments(None, 1000, Actor::Cli).unwrap();
            let new: Vec<_> = after.iter().filter(|a| !before.iter().any(|b| b.0 == a.id)).filter(|a| a.status == AppointmentStatus::Booked).collect();
            let changed: Vec<_> = after.iter().filter(|a| before.iter().any(|b| b.0 == a.id && b.1 != a.status)).collect();
            if let Some(start) = expect.get("start").and_then(|v| v.as_str()) {
                match new.as_slice() {
                    [a] if a.local_start == local(start) => {
                        if let Some(t) = expect.get("type").and_then(|v| v.as_str()) {
                            if a.type_name != t {
                                fail(format!("type {} != {t}", a.type_name));
                            }
                        }
                        if let Some(p) = expect.get("patient").and_then(|v| v.as_str()) {
                            if a.patient_name != p {
                                fail(format!("patient {} != {p}", a.patient_name));
                            }
                        }
                    }
                    other => fail(format!("expected one booking at {start}, got {:?}", other.iter().map(|a| a.local_start).collect::<Vec<_>>())),
                }
            } else if expect.get("date").is_none() && !new.is_empty() {
                fail(format!("unexpected bookings {:?}", new.iter().map(|a| a.local_start).collect::<Vec<_>>()));
            }
            if let Some(c) = expect.get("cancelled_start").and_then(|v| v.as_str()) {
                if !(changed.len() == 1 && changed[0].local_start == local(c) && changed[0].status == AppointmentStatus::Cancelled) {
                    fail(format!("expected only {c} cancelled"));
                }
            } else if expect.get("from_start").is_none() && !changed.is_empty() {
                fail("an existing appointment changed".into());
            }
            if out == "message" {
                let m = store.list_messages(1, Actor::Cli).unwrap();
                match m.first() {
                    Some(m) => {
                        if let Some(cb) = expect.get("callback").and_then(|v| v.as_str()) {
                            if m.callback.as_deref() != Some(cb) {
                                fail(format!("callback {:?} != {cb}", m.callback));
                            }
                        }
                    }
                    None => fail("no message stored".into()),
                }
            }
            let all = said.join(" ").to_lowercase();
            for n in expect.get("never_says").and_then(|v| v.as_array()).into_iter().flatten() {
                if all.contains(&n.as_str().unwrap().to_lowercase()) {
                    fail(format!("said {n}"));
                }
            }
            for n in expect.get("says").and_then(|v| v.as_array()).into_iter().flatten() {
                if !all.contains(&n.as_str().unwrap().to_lowercase()) {
                    fail(format!("never said {n}"));
                }
            }
            assert!(store.integrity_ok().unwrap());
        }
        assert!(failures.is_empty(), "{failures:#?}");
    }
}
