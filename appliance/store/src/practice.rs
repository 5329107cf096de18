//! The practice file (`practice.toml`): parsing with errors that name the field and line.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use serde::{de, Deserialize, Deserializer};

use crate::error::{Result, StoreError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Practice {
    /// Local "now" for scripted tests; ignored by the daemon.
    #[serde(default, deserialize_with = "opt_local_datetime")]
    pub now: Option<NaiveDateTime>,
    pub practice: PracticeInfo,
    #[serde(default)]
    pub hours: Vec<HoursEntry>,
    #[serde(default)]
    pub closures: Vec<Closure>,
    #[serde(default)]
    pub appointment_types: Vec<AppointmentTypeDef>,
    #[serde(default)]
    pub existing: Vec<ExistingAppointment>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PracticeInfo {
    pub name: String,
    #[serde(deserialize_with = "timezone")]
    pub timezone: chrono_tz::Tz,
    #[serde(default)]
    pub address: String,
    #[serde(default, deserialize_with = "opt_e164")]
    pub phone: Option<String>,
    #[serde(default)]
    pub front_desk_uri: String,
    #[serde(default)]
    pub on_call_uri: String,
    #[serde(default)]
    pub insurance_accepted: Vec<String>,
    #[serde(default)]
    pub services: Vec<Service>,
    #[serde(default)]
    pub greeting: String,
    /// Number of chairs (default 1).
    #[serde(default = "one", deserialize_with = "positive")]
    pub chairs: u32,
}

fn one() -> u32 {
    1
}

/// A service: a plain name, or `{ name, price, keywords }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub name: String,
    pub price: Option<u32>,
    pub keywords: Vec<String>,
}

impl<'de> Deserialize<'de> for Service {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Name(String),
            Full {
                name: String,
                #[serde(default)]
                price: Option<u32>,
                #[serde(default)]
                keywords: Vec<String>,
            },
        }
        Ok(match Raw::deserialize(d).map_err(|_| de::Error::custom("expected a service name or { name, price, keywords }"))? {
            Raw::Name(name) => Service { name, price: None, keywords: Vec::new() },
            Raw::Full { name, price, keywords } => Service { name, price, keywords },
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoursEntry {
    #[serde(deserialize_with = "weekday")]
    pub day: u8,
    #[serde(deserialize_with = "hhmm")]
    pub open: u16,
    #[serde(deserialize_with = "hhmm")]
    pub close: u16,
    #[serde(default, deserialize_with = "breaks")]
    pub breaks: Vec<(u16, u16)>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Closure {
    #[serde(deserialize_with = "date")]
    pub date: NaiveDate,
    #[serde(default)]
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppointmentTypeDef {
    pub name: String,
    #[serde(deserialize_with = "positive")]
    pub minutes: u32,
    #[serde(default)]
    pub buffer_before: u32,
    #[serde(default)]
    pub buffer_after: u32,
    #[serde(default)]
    pub min_notice_hours: u32,
    #[serde(default = "ninety")]
    pub window_days: u32,
    #[serde(default)]
    pub price: Option<u32>,
    #[serde(default = "yes")]
    pub bookable_by_phone: bool,
}

fn ninety() -> u32 {
    90
}
fn yes() -> bool {
    true
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExistingAppointment {
    pub patient: PatientDef,
    #[serde(rename = "type")]
    pub type_name: String,
    #[serde(deserialize_with = "local_datetime")]
    pub start: NaiveDateTime,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatientDef {
    pub first: String,
    pub last: String,
    #[serde(default, deserialize_with = "opt_e164")]
    pub phone: Option<String>,
    #[serde(default, deserialize_with = "opt_date")]
    pub dob: Option<NaiveDate>,
}

impl Practice {
    /// Parse a practice file. Errors read like
    /// `practice.toml line 52: [[appointment_types]] #2 'minutes': expected a positive integer`.
    pub fn from_toml_str(text: &str) -> Result<Practice> {
        let de = toml::Deserializer::new(text);
        let p: Practice = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = describe_path(&e.path().to_string());
            let inner = e.into_inner();
            let line = inner.span().map(|s| line_of(text, s.start));
            let msg = inner.message().trim().to_string();
            StoreError::Practice(match line {
                Some(l) => format!("practice.toml line {l}: {path}{msg}"),
                None => format!("practice.toml: {path}{msg}"),
            })
        })?;
        p.validate(text)?;
        Ok(p)
    }

    fn validate(&self, text: &str) -> Result<()> {
        let err = |what: String| Err(StoreError::Practice(format!("practice.toml: {what}")));
        for (i, h) in self.hours.iter().enumerate() {
            if h.open >= h.close {
                return err(format!("[[hours]] #{} 'close': must be after 'open'", i + 1));
            }
            for b in &h.breaks {
                if b.0 >= b.1 || b.0 < h.open || b.1 > h.close {
                    return err(format!("[[hours]] #{} 'breaks': each break must be [start, end] inside open..close", i + 1));
                }
            }
            if self.hours[..i].iter().any(|o| o.day == h.day) {
                return err(format!("[[hours]] #{} 'day': day {} is listed twice", i + 1, h.day));
            }
        }
        for (i, t) in self.appointment_types.iter().enumerate() {
            if self.appointment_types[..i].iter().any(|o| o.name == t.name) {
                return err(format!("[[appointment_types]] #{} 'name': '{}' is listed twice", i + 1, t.name));
            }
        }
        for (i, e) in self.existing.iter().enumerate() {
            if !self.appointment_types.iter().any(|t| t.name == e.type_name) {
                let line = text.find(&format!("\"{}\"", e.type_name)).map(|o| format!(" line {}", line_of(text, o))).unwrap_or_default();
                return Err(StoreError::Practice(format!(
                    "practice.toml{line}: [[existing]] #{} 'type': '{}' is not one of the [[appointment_types]] names",
                    i + 1,
                    e.type_name
                )));
            }
        }
        Ok(())
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|&b| b == b'\n').count() + 1
}

/// `appointment_types[1].minutes` → `[[appointment_types]] #2 'minutes': `
fn describe_path(path: &str) -> String {
    if path == "." || path.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    for seg in path.split('.') {
        if let Some((name, idx)) = seg.strip_suffix(']').and_then(|s| s.split_once('[')) {
            let n: usize = idx.parse().unwrap_or(0);
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&format!("[[{name}]] #{}", n + 1));
        } else if out.is_empty() && matches!(seg, "practice") {
            out.push_str("[practice]");
        } else {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&format!("'{seg}'"));
        }
    }
    out.push_str(": ");
    out
}

fn positive<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let v = i64::deserialize(d).map_err(|_| de::Error::custom("expected a positive integer"))?;
    u32::try_from(v).ok().filter(|&v| v > 0).ok_or_else(|| de::Error::custom("expected a positive integer"))
}

fn weekday<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    let v = i64::deserialize(d).map_err(|_| de::Error::custom("expected 0 (Sunday) .. 6 (Saturday)"))?;
    u8::try_from(v).ok().filter(|&v| v <= 6).ok_or_else(|| de::Error::custom("expected 0 (Sunday) .. 6 (Saturday)"))
}

fn parse_hhmm(s: &str) -> Option<u16> {
    if s == "24:00" {
        return Some(1440);
    }
    let t = NaiveTime::parse_from_str(s, "%H:%M").ok()?;
    use chrono::Timelike;
    Some((t.hour() * 60 + t.minute()) as u16)
}

fn hhmm<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    let s = String::deserialize(d).map_err(|_| de::Error::custom("expected a time like \"08:00\""))?;
    parse_hhmm(&s).ok_or_else(|| de::Error::custom(format!("expected a time like \"08:00\", got \"{s}\"")))
}

fn breaks<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(u16, u16)>, D::Error> {
    let raw = Vec::<(String, String)>::deserialize(d).map_err(|_| de::Error::custom("expected a list like [[\"12:00\", \"13:00\"]]"))?;
    raw.iter()
        .map(|(a, b)| match (parse_hhmm(a), parse_hhmm(b)) {
            (Some(a), Some(b)) => Ok((a, b)),
            _ => Err(de::Error::custom(format!("expected times like \"12:00\", got [\"{a}\", \"{b}\"]"))),
        })
        .collect()
}

fn date<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
    let s = String::deserialize(d).map_err(|_| de::Error::custom("expected a date like \"2026-03-13\""))?;
    NaiveDate::parse_from_str(&s, "%Y-%m-%d").map_err(|_| de::Error::custom(format!("expected a date like \"2026-03-13\", got \"{s}\"")))
}

fn opt_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDate>, D::Error> {
    date(d).map(Some)
}

fn parse_local(s: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M"))
        .ok()
}

fn local_datetime<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDateTime, D::Error> {
    let s = String::deserialize(d).map_err(|_| de::Error::custom("expected a local time like \"2026-03-05T10:00\""))?;
    parse_local(&s).ok_or_else(|| de::Error::custom(format!("expected a local time like \"2026-03-05T10:00\", got \"{s}\"")))
}

fn opt_local_datetime<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDateTime>, D::Error> {
    local_datetime(d).map(Some)
}

fn timezone<'de, D: Deserializer<'de>>(d: D) -> Result<chrono_tz::Tz, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(|_| de::Error::custom(format!("unknown IANA time zone \"{s}\" (e.g. \"America/Chicago\")")))
}

/// `+` then 8..15 digits, first digit not 0.
pub fn is_e164(s: &str) -> bool {
    let Some(d) = s.strip_prefix('+') else { return false };
    (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
}

fn opt_e164<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    if is_e164(&s) {
        Ok(Some(s))
    } else {
        Err(de::Error::custom("expected an E.164 phone number like \"+12175550100\""))
    }
}

crate::redacted_debug!(ExistingAppointment);

crate::redacted_debug!(PatientDef);
