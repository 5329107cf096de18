//! An in-memory [`Tools`] with a small scheduler, for tests and demos. Not the production store:
//! slots start every `granularity_minutes` within opening hours, avoiding breaks, closures and
//! existing appointments (plus each type's buffer), honouring minimum notice and booking window.

use std::collections::HashMap;

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};

use crate::facts::PracticeFacts;
use crate::tools::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAppointment {
    pub id: String,
    pub patient_id: String,
    pub appointment_type: String,
    pub start_local: NaiveDateTime,
    pub cancelled: bool,
}

/// Every mutation, in order, so tests can assert "nothing else changed".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mutation {
    Booked { appointment_id: String },
    Cancelled { appointment_id: String },
    Rescheduled { appointment_id: String, from: NaiveDateTime, to: NaiveDateTime },
    Message { message_id: String },
    PatientCreated { patient_id: String },
}

#[derive(Debug, Clone)]
pub struct MemoryTools {
    pub facts: PracticeFacts,
    pub patients: Vec<PatientRef>,
    pub appointments: Vec<StoredAppointment>,
    pub messages: Vec<(String, MessageDetails)>,
    pub mutations: Vec<Mutation>,
    pub granularity_minutes: i64,
    /// Make every call fail with `Unavailable` (store down).
    pub fail_all: bool,
    done: HashMap<String, Result<Booked, ToolError>>,
    next_id: u32,
}

impl MemoryTools {
    pub fn new(facts: PracticeFacts) -> Self {
        MemoryTools {
            facts,
            patients: Vec::new(),
            appointments: Vec::new(),
            messages: Vec::new(),
            mutations: Vec::new(),
            granularity_minutes: 30,
            fail_all: false,
            done: HashMap::new(),
            next_id: 1,
        }
    }

    fn id(&mut self, prefix: &str) -> String {
        let id = format!("{prefix}{}", self.next_id);
        self.next_id += 1;
        id
    }

    pub fn add_patient(&mut self, first: &str, last: &str, phone: Option<&str>, dob: Option<NaiveDate>) -> String {
        let id = self.id("p");
        self.patients.push(PatientRef { id: id.clone(), first: first.into(), last: last.into(), phone: phone.map(Into::into), dob });
        id
    }

    pub fn add_appointment(&mut self, patient_id: &str, appointment_type: &str, start_local: NaiveDateTime) -> String {
        let id = self.id("a");
        self.appointments.push(StoredAppointment {
            id: id.clone(),
            patient_id: patient_id.into(),
            appointment_type: appointment_type.into(),
            start_local,
            cancelled: false,
        });
        id
    }

    fn span(&self, type_name: &str, start: NaiveDateTime) -> Option<(NaiveDateTime, NaiveDateTime, NaiveDateTime)> {
        let t = self.facts.appointment_type(type_name)?;
        let end = start + Duration::minutes(t.minutes as i64);
        Some((start, end, end + Duration::minutes(t.buffer_after as i64)))
    }

    /// Is `start` a bookable start for this type (ignoring appointment `except`)?
    fn fits(&self, type_name: &str, start: NaiveDateTime, now_local: Option<NaiveDateTime>, except: Option<&str>) -> bool {
        let Some(t) = self.facts.appointment_type(type_name) else { return false };
        let Some(h) = self.facts.hours_on(start.date()) else { return false };
        let Some((s, e, eb)) = self.span(type_name, start) else { return false };
        let day = start.date();
        if s < day.and_time(h.open) || e > day.and_time(h.close) {
            return false;
        }
        if h.breaks.iter().any(|(b0, b1)| s < day.and_time(*b1) && e > day.and_time(*b0)) {
            return false;
        }
        if let Some(now) = now_local {
            if s < now + Duration::hours(t.min_notice_hours as i64) || s.date() > now.date() + Duration::days(t.window_days as i64) {
                return false;
            }
        }
        !self.appointments.iter().filter(|a| !a.cancelled && Some(a.id.as_str()) != except).any(|a| {
            self.span(&a.appointment_type, a.start_local).is_some_and(|(as_, _ae, aeb)| s < aeb && as_ < eb)
        })
    }

    fn slot_id(type_name: &str, start: NaiveDateTime) -> String {
        format!("{type_name}|{}", start.format("%Y-%m-%dT%H:%M"))
    }

    fn parse_slot(slot_id: &str) -> Option<(String, NaiveDateTime)> {
        let (t, s) = slot_id.split_once('|')?;
        Some((t.to_string(), NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").ok()?))
    }
}

impl Tools for MemoryTools {
    fn find_patient_by_phone(&mut self, e164: &str) -> Result<Vec<PatientRef>, ToolError> {
        if self.fail_all {
            return Err(ToolError::Unavailable("test".into()));
        }
        Ok(self.patients.iter().filter(|p| p.phone.as_deref() == Some(e164)).cloned().collect())
    }

    fn find_patients_by_dob(&mut self, dob: chrono::NaiveDate) -> Result<Vec<PatientRef>, ToolError> {
        if self.fail_all {
            return Err(ToolError::Unavailable("test".into()));
        }
        Ok(self.patients.iter().filter(|p| p.dob == Some(dob)).cloned().collect())
    }

    fn upcoming_appointments(&mut self, patient_id: &str, from_local: NaiveDateTime) -> Result<Vec<AppointmentRef>, ToolError> {
        if self.fail_all {
            return Err(ToolError::Unavailable("test".into()));
        }
        let mut v: Vec<AppointmentRef> = self
            .appointments
            .iter()
            .filter(|a| !a.cancelled && a.patient_id == patient_id && a.start_local >= from_local)
            .map(|a| AppointmentRef {
                id: a.id.clone(),
                patient_id: a.patient_id.clone(),
                appointment_type: a.appointment_type.clone(),
                start_local: a.start_local,
            })
            .collect();
        v.sort_by_key(|a| a.start_local);
        Ok(v)
    }

    fn find_slots(&mut self, q: &SlotQuery) -> Result<Vec<SlotOffer>, ToolError> {
        if self.fail_all {
            return Err(ToolError::Unavailable("test".into()));
        }
        let mut out = Vec::new();
        let mut day = q.from;
        while day <= q.to && out.len() < q.limit {
            if let Some(h) = self.facts.hours_on(day) {
                let mut t = day.and_time(h.open);
                while t.time() < h.close && out.len() < q.limit {
                    let in_window = q.window.is_none_or(|w| t.time() >= w.start && t.time() < w.end);
                    if in_window && self.fits(&q.appointment_type, t, Some(q.now_local), None) {
                        out.push(SlotOffer { slot_id: Self::slot_id(&q.appointment_type, t), start_local: t });
                    }
                    t += Duration::minutes(self.granularity_minutes);
                }
            }
            day = match day.succ_opt() {
                Some(d) => d,
                None => break,
            };
        }
        Ok(out)
    }

    fn book(&mut self, slot_id: &str, patient: &PatientDetails, key: &str) -> Result<Booked, ToolError> {
        if self.fail_all {
            return Err(ToolError::Unavailable("test".into()));
        }
        if let Some(r) = self.done.get(key) {
            return r.clone();
        }
        let (type_name, start) = Self::parse_slot(slot_id).ok_or(ToolError::UnknownSlot)?;
        if !self.fits(&type_name, start, None, None) {
            return Err(ToolError::SlotUnavailable);
        }
        let patient_id = match &patient.patient_id {
            Some(id) => id.clone(),
            None => {
                let id = self.add_patient(&patient.first, &patient.last, patient.phone.as_deref(), patient.dob);
                self.mutations.push(Mutation::PatientCreated { patient_id: id.clone() });
                id
            }
        };
        let id = self.add_appointment(&patient_id, &type_name, start);
        self.mutations.push(Mutation::Booked { appointment_id: id.clone() });
        let r = Ok(Booked { appointment_id: id, appointment_type: type_name, start_local: start });
        self.done.insert(key.to_string(), r.clone());
        r
    }

    fn cancel(&mut self, appointment_id: &str, key: &str) -> Result<(), ToolError> {
        if self.fail_all {
            return Err(ToolError::Unavailable("test".into()));
        }
        if self.done.contains_key(key) {
            return Ok(());
        }
        let a = self.appointments.iter_mut().find(|a| a.id == appointment_id && !a.cancelled).ok_or(ToolError::NotFound)?;
        a.cancelled = true;
        self.mutations.push(Mutation::Cancelled { appointment_id: appointment_id.into() });
        self.done.insert(key.to_string(), Err(ToolError::NotFound));
        Ok(())
    }

    fn reschedule(&mut self, appointment_id: &str, slot_id: &str, key: &str) -> Result<Booked, ToolError> {
        if self.fail_all {
            return Err(ToolError::Unavailable("test".into()));
        }
        if let Some(r) = self.done.get(key) {
            return r.clone();
        }
        let (type_name, start) = Self::parse_slot(slot_id).ok_or(ToolError::UnknownSlot)?;
        if !self.fits(&type_name, start, None, Some(appointment_id)) {
            return Err(ToolError::SlotUnavailable);
        }
        let a = self.appointments.iter_mut().find(|a| a.id == appointment_id && !a.cancelled).ok_or(ToolError::NotFound)?;
        let from = a.start_local;
        a.start_local = start;
        let r = Ok(Booked { appointment_id: appointment_id.into(), appointment_type: a.appointment_type.clone(), start_local: start });
        self.mutations.push(Mutation::Rescheduled { appointment_id: appointment_id.into(), from, to: start });
        self.done.insert(key.to_string(), r.clone());
        r
    }

    fn take_message(&mut self, message: &MessageDetails, key: &str) -> Result<String, ToolError> {
        if self.fail_all {
            return Err(ToolError::Unavailable("test".into()));
        }
        if let Some(Ok(b)) = self.done.get(key) {
            return Ok(b.appointment_id.clone());
        }
        let id = self.id("m");
        self.messages.push((id.clone(), message.clone()));
        self.mutations.push(Mutation::Message { message_id: id.clone() });
        self.done.insert(
            key.to_string(),
            Ok(Booked { appointment_id: id.clone(), appointment_type: String::new(), start_local: NaiveDate::MIN.and_time(NaiveTime::MIN) }),
        );
        Ok(id)
    }

    fn correct_message_name(&mut self, message_id: &str, name: &str) -> Result<(), ToolError> {
        if self.fail_all {
            return Err(ToolError::Unavailable("test".into()));
        }
        let (_, m) = self.messages.iter_mut().find(|(id, _)| id == message_id).ok_or(ToolError::NotFound)?;
        m.name = name.to_string();
        Ok(())
    }
}
