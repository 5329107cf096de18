//! The call state machine. See the crate docs for the invariants.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use std::sync::Arc;

use crate::facts::PracticeFacts;
use crate::llm::LlmReading;
use crate::phrasing as say;
use crate::spellings::NameSpellings;
use crate::tools::*;
use crate::understand::{self as u, AppointmentKind, DayPart, Intent, Phone, Question, Tok, YesNo};
use crate::{Action, CallContext, CallSummary, Config, Event, Lead, Outcome, ReceptionistError, Recorded, TransferReason};

/// What the bot last asked; it decides how a bare "yes", "nine" or "Maria Lopez" is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Await {
    Open,
    Name,
    Phone,
    ApptType,
    Day,
    Offer,
    ConfirmBook,
    Dob,
    WhichAppt,
    ConfirmTarget,
    ConfirmCancel,
    RebookAfterCancel,
    CallbackConfirm,
    CallbackNumber,
    CallbackReadback,
    Topic,
    AnythingElse,
    MessageOrTransfer,
    Nothing,
}

/// Asked again when a confirmation gets a yes and a no at once.
const CHECK_YES: &str = "Sorry, I want to get this right. Is that a yes?";

/// Name, date, time, type, date of birth: did a turn move anything forward?
type ProgressMarker = (Option<String>, Option<NaiveDate>, Option<NaiveTime>, Option<String>, Option<NaiveDate>);

/// What the caller has told us so far.
#[derive(Debug, Clone, Default)]
struct Collected {
    kind: Option<String>,
    new_patient: Option<bool>,
    first: Option<String>,
    last: Option<String>,
    asked_last: bool,
    asked_name: bool,
    phone: Option<String>,
    phone_from_caller_id: bool,
    dob: Option<NaiveDate>,
    date: Option<NaiveDate>,
    window: Option<TimeWindow>,
    time: Option<NaiveTime>,
    /// "next week": searched when no single date was given.
    range: Option<(NaiveDate, NaiveDate)>,
    anchor: Option<NaiveDate>,
    offers: Vec<SlotOffer>,
    chosen: Option<SlotOffer>,
    rejections: u32,
    patient: Option<PatientRef>,
    tried_caller_id: bool,
    /// Times the date of birth has been asked for in this task.
    dob_asks: u32,
    id_failures: u32,
    candidates: Vec<AppointmentRef>,
    target: Option<AppointmentRef>,
    hint_dates: Vec<NaiveDate>,
    hint_time: Option<NaiveTime>,
    topic: Option<String>,
    notes: Vec<String>,
    callback: Option<String>,
    callback_declined: bool,
    /// Set by the turn that changed the appointment type, so the reply acknowledges it.
    kind_changed: bool,
    /// The phone number was read back earlier in this same reply.
    phone_just_read: bool,
    /// Said before the appointment being moved was known; applied once it is found.
    relative: Relative,
    /// The appointment being moved or cancelled was found between turns, without a word to the
    /// caller (a re-heard name identified them): the next reply names it.
    target_unsaid: bool,
}

/// A new day or time said relative to the appointment being moved: "the same day" (its day),
/// "Monday, same time" (its time), "push it back a day" (its day and time plus a shift). Resolved
/// in one place, [`Relative::resolve`]: in the turn that says it when the appointment is already
/// known, else when it is found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Relative {
    same_day: bool,
    same_time: bool,
    shift: Option<chrono::Duration>,
}

impl Relative {
    fn merge(&mut self, later: Relative) {
        self.same_day |= later.same_day;
        self.same_time |= later.same_time;
        self.shift = later.shift.or(self.shift);
    }

    /// The day and the time this means for an appointment at `at` (`None` where nothing was said).
    fn resolve(self, at: NaiveDateTime) -> (Option<NaiveDate>, Option<NaiveTime>) {
        if let Some(shift) = self.shift {
            let to = at + shift;
            return (Some(to.date()), Some(to.time()));
        }
        (self.same_day.then(|| at.date()), self.same_time.then(|| at.time()))
    }
}

/// One caller turn, understood.
#[derive(Debug, Default)]
struct Utt {
    text: String,
    intent: Option<Intent>,
    dates: Vec<NaiveDate>,
    times: Vec<NaiveTime>,
    window: Option<TimeWindow>,
    range: Option<(NaiveDate, NaiveDate)>,
    phone: Option<Phone>,
    first: Option<String>,
    last: Option<String>,
    yes_no: Option<YesNo>,
    dob: Option<NaiveDate>,
    kind: Option<String>,
    new_patient: bool,
    existing_patient: bool,
    question: Option<Question>,
    goodbye: bool,
    thanks: bool,
    repeat: bool,
    topic: Option<String>,
    question_mark: bool,
    /// Relative to the appointment being moved, while it is not yet known.
    relative: Relative,
    /// One part of the name, corrected or spelled ("my last name is Fischer", "P-A-R-K").
    name_part: Option<u::NamePart>,
    /// `first`/`last` were read as a bare name ("Maria Lopez" to "may I have your name?").
    name_bare: bool,
    toks: Vec<Tok>,
}

impl Utt {
    /// New scheduling information (a correction when it arrives at a read-back).
    fn has_schedule_info(&self) -> bool {
        !self.dates.is_empty() || !self.times.is_empty() || self.window.is_some() || self.range.is_some()
    }
    fn understood_anything(&self) -> bool {
        self.intent.is_some()
            || self.has_schedule_info()
            || self.phone.is_some()
            || self.first.is_some()
            || self.yes_no.is_some()
            || self.dob.is_some()
            || self.kind.is_some()
            || self.new_patient
            || self.question.is_some()
            || self.goodbye
    }
}

#[derive(Default)]
struct Turn {
    text: Vec<String>,
    expect_digits: bool,
    interruptible: bool,
    pre: Vec<Action>,
    post: Vec<Action>,
}

impl Turn {
    fn say(&mut self, s: impl Into<String>) {
        self.text.push(s.into());
    }
    fn finish(mut self) -> Vec<Action> {
        let mut out = std::mem::take(&mut self.pre);
        if !self.text.is_empty() {
            out.push(Action::Say { text: self.text.join(" "), interruptible: self.interruptible, expect_digits: self.expect_digits });
        }
        out.extend(self.post);
        out
    }
}

/// `Clone` so the call layer can run a turn speculatively on a copy (before the caller's turn is
/// confirmed over) and throw the copy away if the caller goes on.
#[derive(Clone)]
pub struct Receptionist {
    facts: PracticeFacts,
    tz: Tz,
    ctx: CallContext,
    cfg: Config,
    caller_phone: Option<String>,
    c: Collected,
    flow: Option<Intent>,
    emergency: bool,
    awaiting: Await,
    last_question: String,
    last_say: String,
    interrupted: bool,
    idle_prompts: u32,
    confusions: u32,
    ended: bool,
    first_intent: Option<Intent>,
    answered_question: bool,
    pending_question_text: Option<String>,
    transfer_target: Option<String>,
    transfer_failed: bool,
    transfer_done: bool,
    records: Vec<Recorded>,
    appointment_ids: Vec<String>,
    message_id: Option<String>,
    /// The message just passed on, whose name (heard by the caller in the thanks) a name said now
    /// corrects. Cleared by the next question.
    message_name_open: Option<String>,
    tool_failed: bool,
    summary_bits: Vec<String>,
    dtmf_digits: String,
    /// Caller turns handled so far (the number of the latest).
    caller_turns: u64,
    /// Where the name we hold was heard, while it may still be re-heard (see `NameReheard`).
    name_heard: Option<NameHeard>,
    spellings: Option<Arc<NameSpellings>>,
}

/// The name taken from one caller turn, as it was taken.
#[derive(Debug, Clone)]
struct NameHeard {
    turn: u64,
    bare: bool,
    first: Option<String>,
    last: Option<String>,
}

fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap_or(NaiveTime::MIN)
}

impl Receptionist {
    pub fn new(facts: PracticeFacts, ctx: CallContext, cfg: Config) -> Result<Self, ReceptionistError> {
        let tz: Tz = facts.timezone.parse().map_err(|_| ReceptionistError::BadTimezone(facts.timezone.clone()))?;
        if facts.appointment_types.is_empty() {
            return Err(ReceptionistError::NoAppointmentTypes);
        }
        let caller_phone = ctx.caller_id.as_deref().and_then(u::normalize_caller_id);
        Ok(Receptionist {
            facts,
            tz,
            ctx,
            cfg,
            caller_phone,
            c: Collected::default(),
            flow: None,
            emergency: false,
            awaiting: Await::Open,
            last_question: "How can I help you today?".into(),
            last_say: String::new(),
            interrupted: false,
            idle_prompts: 0,
            confusions: 0,
            ended: false,
            first_intent: None,
            answered_question: false,
            pending_question_text: None,
            transfer_target: None,
            transfer_failed: false,
            transfer_done: false,
            records: Vec::new(),
            appointment_ids: Vec::new(),
            message_id: None,
            message_name_open: None,
            tool_failed: false,
            summary_bits: Vec::new(),
            dtmf_digits: String::new(),
            caller_turns: 0,
            name_heard: None,
            spellings: None,
        })
    }

    /// Lists of real name spellings, for names the recogniser spelled by ear (see
    /// [`crate::spellings`]). Without them names are kept as heard.
    pub fn with_spellings(mut self, spellings: Arc<NameSpellings>) -> Self {
        self.spellings = Some(spellings);
        self
    }

    /// `n` with each part in its usual spelling: where it was spelled by ear, or is the rare
    /// spelling of a common name that sounds the same.
    fn usual_spelling(&self, mut n: u::PersonName) -> u::PersonName {
        if let Some(s) = &self.spellings {
            if let Some(f) = s.usual_first_name(&n.first) {
                n.first = f;
            }
            if let Some(l) = n.last.as_deref().and_then(|l| s.usual_surname(l)) {
                n.last = Some(l);
            }
        }
        n
    }

    /// The greeting (with the recording disclosure): not interruptible.
    pub fn start(&mut self, _now: DateTime<Utc>) -> Vec<Action> {
        let text = self.facts.greeting.clone();
        self.last_say = text.clone();
        self.awaiting = Await::Open;
        vec![Action::Say { text, interruptible: false, expect_digits: false }]
    }

    /// Whether `text` is already a whole answer to a question callers answer in digits (a phone
    /// number, a date of birth), or a question of the caller's own with no number in it. The
    /// turn-taker waits longer than usual for digits, since callers pause between digit groups;
    /// once no more are coming, the longer wait only keeps the caller waiting for the reply.
    pub fn answer_is_whole(&self, text: &str) -> bool {
        let toks = u::tokenize(text);
        let number = || matches!(u::extract_phone(&toks), Some(Phone::E164(_)));
        // "Could I do Friday morning instead?" when a date of birth was asked for: a question of
        // their own, not digit groups being read out; nothing more is coming.
        let asks_instead = || text.trim_end().ends_with('?') && !u::holds_a_number(&toks);
        match self.awaiting {
            Await::Phone | Await::CallbackNumber => number() || asks_instead(),
            // "Should we call you back at the number you're calling from?"
            Await::CallbackConfirm => {
                number() || (u::extract_yes_no(&toks) == Some(YesNo::Yes) && u::extract_phone(&toks).is_none()) || asks_instead()
            }
            Await::Dob => u::extract_dob(&toks).is_some() || asks_instead(),
            _ => false,
        }
    }

    /// What kind of answer the last question asks for, so the speech recogniser can be primed
    /// for it (a spoken phone number is recognised far better when the recogniser expects digits).
    pub fn expecting(&self) -> crate::Expecting {
        match self.awaiting {
            Await::Phone | Await::CallbackNumber | Await::CallbackConfirm | Await::CallbackReadback => crate::Expecting::PhoneNumber,
            Await::Dob => crate::Expecting::DateOfBirth,
            Await::Name => crate::Expecting::Name,
            Await::Day | Await::Offer | Await::ConfirmBook => crate::Expecting::DayOrTime,
            _ => crate::Expecting::Anything,
        }
    }

    /// The last question asks for a yes before something is written (a booking, a cancellation,
    /// a move): a contradictory answer there is worth hearing again before asking again.
    pub fn awaits_confirmation(&self) -> bool {
        matches!(self.awaiting, Await::ConfirmBook | Await::ConfirmCancel | Await::ConfirmTarget)
    }

    /// Words the caller's next answer is likely to contain, for the recogniser to favour: the
    /// offered times while a choice among them is pending (see `recognizer::offer_phrases`).
    pub fn likely_phrases(&self) -> Vec<String> {
        match self.awaiting {
            Await::Offer => crate::recognizer::offer_phrases(&self.c.offers),
            _ => Vec::new(),
        }
    }

    /// The caller turn just handled, if a name was taken from it that a slower, more accurate
    /// recogniser may hear better (see [`Event::NameReheard`]). Not for a caller the practice's
    /// records recognised (the record's spelling wins) or a name the caller spelled.
    pub fn name_to_rehear(&self) -> Option<u64> {
        self.name_heard.as_ref().map(|h| h.turn).filter(|t| *t == self.caller_turns && self.c.patient.is_none())
    }

    pub fn is_ended(&self) -> bool {
        self.ended
    }

    fn local(&self, now: DateTime<Utc>) -> NaiveDateTime {
        now.with_timezone(&self.tz).naive_local()
    }

    pub fn handle(&mut self, event: Event, now: DateTime<Utc>, tools: &mut dyn Tools) -> Vec<Action> {
        if self.ended {
            return Vec::new();
        }
        let mut t = Turn { interruptible: true, ..Default::default() };
        match event {
            Event::CallerSaid { text, understanding, .. } => {
                self.caller_turns += 1;
                self.idle_prompts = 0;
                self.on_said(&text, understanding.as_ref(), now, tools, &mut t);
                self.interrupted = false;
            }
            Event::Dtmf(d) => {
                let keying_number = matches!(self.awaiting, Await::Phone | Await::CallbackNumber | Await::CallbackConfirm);
                if keying_number && (d.is_ascii_digit() || d == '#') && !(d == '0' && self.dtmf_digits.is_empty()) {
                    // Callers may key their number in; '#' or a full number ends it.
                    if d != '#' {
                        self.dtmf_digits.push(d);
                    }
                    let full = self.dtmf_digits.len() == 10 || (self.dtmf_digits.len() == 11 && self.dtmf_digits.starts_with('1'));
                    if d == '#' || full {
                        let digits = std::mem::take(&mut self.dtmf_digits);
                        self.idle_prompts = 0;
                        self.on_said(&digits, None, now, tools, &mut t);
                    }
                } else if d == '0' {
                    self.flow = Some(Intent::Human);
                    self.human(now, tools, &mut t);
                }
            }
            Event::IdlePrompt => {
                if self.idle_prompts == 0 {
                    self.idle_prompts = 1;
                    t.say("Are you still there?");
                    t.say(self.last_question.clone());
                } else {
                    self.goodbye(&mut t, "I'll let you go now. Please call us back anytime.");
                }
            }
            Event::IdleTimeout => self.goodbye(&mut t, "I'll let you go now. Please call us back anytime."),
            Event::TransferSucceeded => {
                self.transfer_done = true;
                self.records.push(Recorded::TransferCompleted);
                t.pre.push(Action::Record(Recorded::TransferCompleted));
                self.ended = true;
            }
            Event::TransferFailed => {
                self.transfer_failed = true;
                self.records.push(Recorded::TransferFailed);
                t.pre.push(Action::Record(Recorded::TransferFailed));
                t.say("I'm sorry, nobody could pick up right now.");
                if self.emergency {
                    t.interruptible = false;
                    t.say("If this is a life-threatening emergency, please hang up and call 911.");
                    self.c.topic.get_or_insert_with(|| "urgent dental problem".into());
                }
                t.say("I can take a message, and someone will call you back.");
                self.flow = Some(Intent::Message);
                self.advance(now, tools, &mut t);
            }
            Event::BargeIn => {
                // Nothing is undone: a committed booking stays committed. We only remember that
                // the last prompt may not have been heard in full.
                self.interrupted = true;
                return Vec::new();
            }
            Event::CallerHungUp => {
                self.salvage_message(tools, &mut t);
                self.ended = true;
                return t.pre;
            }
            Event::NameReheard { turn, text } => {
                self.on_name_reheard(turn, &text, now, tools, &mut t);
                return t.pre;
            }
        }
        if !t.text.is_empty() {
            self.last_say = t.text.join(" ");
        }
        t.finish()
    }

    // ------------------------------------------------------------------ understanding

    fn parse(&self, text: &str, llm: Option<&LlmReading>, now: DateTime<Utc>) -> Utt {
        let toks = u::tokenize(text);
        let today = self.local(now).date();
        let (open, close) = self.facts.day_span();
        let expect_time = matches!(self.awaiting, Await::Offer | Await::Day | Await::ConfirmBook);
        let mut ut = Utt { text: text.trim().to_string(), question_mark: text.contains('?'), ..Default::default() };
        let anchor = self.c.anchor.or(self.c.date);
        let specs = u::extract_dates(&toks);
        // "the same day" with no day said yet to be the same as: the appointment being moved.
        let same_day = anchor.is_none() && specs.contains(&u::DateSpec::Anchor);
        ut.dates = resolve_in_order(specs, today, anchor);
        let (times, parts) = u::extract_times(&toks, expect_time);
        ut.times = times.iter().filter_map(|t| t.resolve(open, close)).collect();
        ut.window = parts.last().map(|p| self.window_of(*p, open, close));
        if ut.dates.is_empty() {
            ut.range = u::extract_range(&toks, today, self.cfg.search_days);
        }
        ut.phone = u::extract_phone(&toks);
        if ut.phone.is_some() {
            // digits read out are not times or dates
            ut.times.clear();
        }
        ut.yes_no = u::extract_yes_no(&toks);
        let named = u::extract_name(text, false).or_else(|| {
            // A bare "Maria Lopez" counts only as the answer to "may I have your name?" and only
            // when the turn carries nothing else we understood.
            let nothing_else = ut.dates.is_empty() && ut.times.is_empty() && ut.window.is_none() && ut.phone.is_none() && ut.yes_no.is_none();
            ut.name_bare = self.awaiting == Await::Name && nothing_else;
            if ut.name_bare {
                u::extract_name(text, true)
            } else {
                None
            }
        });
        if let Some(n) = named.map(|n| self.usual_spelling(n)) {
            ut.first = Some(n.first);
            ut.last = n.last;
        }
        ut.name_part = u::extract_name_part(text);
        if ut.name_part.is_none() && ut.last.is_none() && self.c.first.is_some() && self.c.last.is_some() {
            // "It's Park." at the read-back of "Lena Parr": one word corrects the part it is closest
            // to, not the first name (that made "Park Parr").
            ut.name_part = ut.first.take().map(|value| u::NamePart { kind: u::NamePartKind::Either, value });
        }
        if ut.name_part.is_some() && ut.last.is_none() {
            // "My last name is Fischer" also reads as a first name ("name is Fischer").
            ut.first = None;
        }
        if matches!(self.awaiting, Await::Dob) || ut.dates.is_empty() {
            ut.dob = u::extract_dob(&toks);
        }
        if ut.dob.is_some() {
            ut.dates.clear();
        }
        ut.kind = u::appointment_type_hint(&toks).and_then(|k| self.type_for(k));
        ut.new_patient = u::says_new_patient(&toks);
        ut.existing_patient = u::says_existing_patient(&toks);
        ut.intent = u::extract_intent(&toks);
        ut.question = u::question_of(&toks);
        ut.goodbye = u::is_goodbye(&toks);
        ut.thanks = u::is_thanks(&toks);
        ut.repeat = u::wants_repeat(&toks);
        ut.topic = u::extract_topic(&toks);
        // A call opened about a bill, records or a prescription is for a person. Only between
        // tasks: in a message being taken, "calling about a charge" is its topic.
        if ut.intent.is_none() && self.between_tasks() && u::mentions_staff_matter(&toks) {
            ut.intent = Some(Intent::Human);
        }
        if let Some(r) = llm {
            self.merge_llm(&mut ut, r, today, anchor, open, close);
        }
        // Relative to the appointment being moved: "the same day", "Monday, same time?", "Can I
        // push my appointment back a day?".
        let rescheduling = self.flow == Some(Intent::Reschedule) || (self.flow.is_none() && ut.intent == Some(Intent::Reschedule));
        let mut relative = Relative { same_day, ..Default::default() };
        if rescheduling {
            relative.same_time = ut.times.is_empty() && ut.text.to_lowercase().contains("same time");
            relative.shift = u::extract_shift(&toks).filter(|_| ut.dates.is_empty() && ut.times.is_empty());
            // "the same time next week": a week on from the appointment, not any day next week.
            if relative.same_time && relative.shift.is_none() && ut.dates.is_empty() && ut.text.to_lowercase().contains("next week") {
                relative.shift = Some(Duration::weeks(1));
                ut.range = None;
            }
        }
        match self.c.target.as_ref().filter(|_| rescheduling) {
            // Known: as if its day and time had been said.
            Some(a) => {
                let (d, tm) = relative.resolve(a.start_local);
                ut.dates.extend(d.filter(|_| ut.dates.is_empty()));
                ut.times.extend(tm.filter(|_| ut.times.is_empty()));
            }
            None => ut.relative = relative,
        }
        ut.toks = toks;
        ut
    }

    /// No task under way: the caller may ask for anything.
    fn between_tasks(&self) -> bool {
        self.flow.is_none() || matches!(self.awaiting, Await::Open | Await::AnythingElse)
    }

    /// The model fills gaps only; its yes never commits (only its no is taken).
    fn merge_llm(&self, ut: &mut Utt, r: &LlmReading, today: NaiveDate, anchor: Option<NaiveDate>, open: NaiveTime, close: NaiveTime) {
        // The model's intent is taken only when no task is under way: a guess about a garbled
        // line must not turn a message being taken into a booking (it did, on a real call).
        if ut.intent.is_none() && self.between_tasks() {
            ut.intent = match r.intent.as_deref() {
                Some("book") => Some(Intent::Book),
                Some("reschedule") => Some(Intent::Reschedule),
                Some("cancel") => Some(Intent::Cancel),
                Some("message") => Some(Intent::Message),
                Some("human") => Some(Intent::Human),
                Some("emergency") => Some(Intent::Emergency),
                Some("goodbye") => Some(Intent::Goodbye),
                Some("question") => Some(Intent::Question),
                _ => None,
            };
            if ut.intent == Some(Intent::Question) && ut.question.is_none() {
                ut.question = Some(Question::Other);
            }
        }
        // The model may name a type only when none is known yet: a hint never changes what the
        // caller already asked for (it read "the first one" as "first visit" once).
        if ut.kind.is_none() && self.c.kind.is_none() {
            if let Some(a) = &r.appointment_type {
                ut.kind = self
                    .facts
                    .appointment_type(a)
                    .filter(|t| t.bookable_by_phone)
                    .map(|t| t.name.clone())
                    .or_else(|| u::appointment_type_hint(&u::tokenize(a)).and_then(|k| self.type_for(k)));
            }
        }
        if ut.dates.is_empty() {
            if let Some(d) = &r.date_text {
                ut.dates = resolve_in_order(u::extract_dates(&u::tokenize(d)), today, anchor);
            }
        }
        if ut.times.is_empty() && ut.window.is_none() {
            if let Some(tt) = &r.time_text {
                let (times, parts) = u::extract_times(&u::tokenize(tt), true);
                ut.times = times.iter().filter_map(|t| t.resolve(open, close)).collect();
                ut.window = parts.last().map(|p| self.window_of(*p, open, close));
            }
        }
        if ut.first.is_none() {
            // Only names that actually occur in the transcript (the model must not invent one).
            let lower = ut.text.to_lowercase();
            if let Some(f) = r.first_name.as_deref().filter(|f| f.len() >= 2 && lower.contains(&f.to_lowercase())) {
                ut.first = Some(f.to_string());
                ut.last = r.last_name.clone().filter(|l| l.len() >= 2 && lower.contains(&l.to_lowercase()));
            }
        }
        if ut.phone.is_none() && matches!(self.awaiting, Await::Phone | Await::CallbackNumber | Await::CallbackConfirm) {
            if let Some(d) = &r.phone_digits {
                ut.phone = u::extract_phone(&u::tokenize(d));
            }
        }
        if ut.yes_no.is_none() && r.yes_no.as_deref() == Some("no") {
            ut.yes_no = Some(YesNo::No);
        }
    }

    fn window_of(&self, p: DayPart, open: NaiveTime, close: NaiveTime) -> TimeWindow {
        let noon = hm(12, 0);
        let end_of_day = hm(23, 59);
        match p {
            DayPart::Morning => TimeWindow { start: hm(0, 0), end: noon },
            DayPart::Afternoon => TimeWindow { start: noon, end: hm(17, 0).max(close) },
            DayPart::Evening => TimeWindow { start: hm(16, 0), end: end_of_day },
            DayPart::After(t) => TimeWindow { start: t.resolve(open, close).unwrap_or(noon), end: end_of_day },
            DayPart::Before(t) => TimeWindow { start: hm(0, 0), end: t.resolve(open, close).unwrap_or(noon) },
        }
    }

    fn type_for(&self, k: AppointmentKind) -> Option<String> {
        let needle: &[&str] = match k {
            AppointmentKind::Cleaning => &["cleaning", "hygiene", "checkup"],
            AppointmentKind::NewPatient => &["new patient"],
            AppointmentKind::Consultation => &["consult"],
            AppointmentKind::Emergency => &["emergency"],
        };
        self.facts
            .appointment_types
            .iter()
            .filter(|t| t.bookable_by_phone)
            .find(|t| needle.iter().any(|n| t.name.to_lowercase().contains(n)))
            .map(|t| t.name.clone())
    }

    // ------------------------------------------------------------------ dialogue

    fn ask(&mut self, t: &mut Turn, aw: Await, q: impl Into<String>) {
        let q = q.into();
        t.say(q.clone());
        t.expect_digits = matches!(aw, Await::Phone | Await::CallbackNumber | Await::CallbackConfirm | Await::Dob);
        self.awaiting = aw;
        self.last_question = q;
        self.message_name_open = None;
    }

    fn goodbye(&mut self, t: &mut Turn, lead: &str) {
        if !lead.is_empty() {
            t.say(lead);
        }
        t.say(say::farewell(&self.facts.name));
        t.post.push(Action::Hangup);
        self.awaiting = Await::Nothing;
        self.ended = true;
    }

    fn on_said(&mut self, text: &str, llm: Option<&LlmReading>, now: DateTime<Utc>, tools: &mut dyn Tools, t: &mut Turn) {
        let ut = self.parse(text, llm, now);
        self.c.kind_changed = false;
        self.c.phone_just_read = false;
        if ut.toks.is_empty() {
            t.say("Sorry, I didn't catch that.");
            t.say(self.last_question.clone());
            return;
        }
        if ut.repeat && !ut.has_schedule_info() && ut.intent.is_none() {
            t.say(self.last_say.clone());
            return;
        }
        if self.first_intent.is_none() {
            self.first_intent = ut.intent.filter(|i| *i != Intent::Goodbye);
        }
        if let Some(tp) = &ut.topic {
            self.c.notes.push(ut.text.clone());
            if self.c.topic.is_none() {
                self.c.topic = Some(tp.clone());
            }
        }
        // Emergencies outrank whatever we were doing.
        if ut.intent == Some(Intent::Emergency) && !self.emergency {
            self.merge(&ut);
            self.start_emergency(now, tools, t);
            return;
        }
        // "bye" ends the call whatever we were collecting, unless it rides on a yes to a
        // confirmation ("yes, that's it").
        // "No, that's all, thanks" to "should we call you back on this number?" is a caller
        // leaving, not a caller refusing the number (the message is kept, see salvage_message).
        let confirming = matches!(self.awaiting, Await::ConfirmBook | Await::ConfirmCancel | Await::CallbackReadback | Await::RebookAfterCancel)
            || (self.awaiting == Await::CallbackConfirm && ut.yes_no == Some(YesNo::Yes));
        if ut.goodbye
            && !confirming
            && ut.yes_no != Some(YesNo::Yes)
            && !ut.has_schedule_info()
            && matches!(ut.intent, None | Some(Intent::Goodbye))
            && ut.question.is_none()
        {
            self.salvage_message(tools, t);
            self.goodbye(t, "");
            return;
        }
        if self.on_awaited(&ut, now, tools, t) {
            return;
        }
        self.general(&ut, now, tools, t);
    }

    /// Interpretations specific to the question just asked. Returns true when the turn is handled.
    fn on_awaited(&mut self, ut: &Utt, now: DateTime<Utc>, tools: &mut dyn Tools, t: &mut Turn) -> bool {
        match self.awaiting {
            // A contradiction at a confirmation: neither act on it nor throw the choice away; ask
            // once more (a second contradiction counts as a no, as before).
            Await::ConfirmBook | Await::ConfirmCancel | Await::ConfirmTarget
                if u::is_mixed_yes_no(&ut.toks) && !ut.has_schedule_info() && self.last_question != CHECK_YES =>
            {
                let aw = self.awaiting;
                self.ask(t, aw, CHECK_YES);
                true
            }
            Await::ConfirmBook => {
                let phone_change = matches!(&ut.phone, Some(Phone::E164(p)) if Some(p) != self.c.phone.as_ref());
                let name_change = (ut.first.is_some() && (ut.first != self.c.first || (ut.last.is_some() && ut.last != self.c.last)))
                    || ut.name_part.is_some();
                let kind_change = ut.kind.is_some() && ut.kind != self.c.kind && self.flow == Some(Intent::Book);
                if ut.has_schedule_info() || phone_change || name_change || kind_change {
                    // A correction: apply it and read back again. Never commit on this turn. A new
                    // name or number keeps the slot read back ("the Monday after" was picked from
                    // offers for a closed Friday: searching again would offer the Friday again).
                    if ut.has_schedule_info() || kind_change {
                        self.c.chosen = None;
                    }
                    self.merge(ut);
                    self.advance(now, tools, t);
                    return true;
                }
                match ut.yes_no {
                    Some(YesNo::Yes) => {
                        self.commit(now, tools, t);
                        true
                    }
                    Some(YesNo::No) => {
                        self.c.chosen = None;
                        self.c.time = None;
                        self.c.rejections += 1;
                        self.not_suitable(now, tools, t);
                        true
                    }
                    None => false,
                }
            }
            Await::ConfirmCancel => match ut.yes_no {
                Some(YesNo::Yes) => {
                    self.commit_cancel(now, tools, t);
                    true
                }
                Some(YesNo::No) => {
                    t.say("Okay, I'll leave it as it is.");
                    // The caller was served (told their appointment, kept it): not an abandoned call.
                    self.answered_question = true;
                    self.summary_bits.push("Caller decided to keep their appointment.".into());
                    self.flow = None;
                    self.anything_else(t);
                    true
                }
                None => false,
            },
            Await::ConfirmTarget => match ut.yes_no {
                Some(YesNo::Yes) => {
                    self.advance(now, tools, t);
                    true
                }
                Some(YesNo::No) => {
                    self.c.target = None;
                    t.say("I'm sorry, I couldn't find the appointment you mean. The front desk can help with that.");
                    self.offer_message_or_transfer(now, t);
                    true
                }
                None => false,
            },
            Await::RebookAfterCancel => {
                if ut.yes_no == Some(YesNo::Yes) || (ut.has_schedule_info() && ut.yes_no != Some(YesNo::No)) {
                    let kind = self.c.target.as_ref().map(|a| a.appointment_type.clone());
                    self.reset_task();
                    self.c.kind = kind;
                    self.flow = Some(Intent::Book);
                    self.merge(ut);
                    self.advance(now, tools, t);
                    return true;
                }
                if ut.yes_no == Some(YesNo::No) {
                    self.flow = None;
                    if ut.thanks || ut.goodbye {
                        self.goodbye(t, "Okay.");
                    } else {
                        t.say("Okay.");
                        self.anything_else(t);
                    }
                    return true;
                }
                false
            }
            Await::CallbackConfirm | Await::CallbackNumber | Await::CallbackReadback => {
                match &ut.phone {
                    Some(Phone::E164(p)) => {
                        self.c.callback = Some(p.clone());
                        if Some(p) != self.caller_phone.as_ref() {
                            let q = format!("I have {}. Is that right?", say::phone(p));
                            self.ask(t, Await::CallbackReadback, q);
                        } else {
                            self.c.callback_declined = false;
                            self.advance(now, tools, t);
                        }
                        return true;
                    }
                    Some(Phone::Partial(d)) => {
                        let q = format!("I only got {} digits. Could you say the whole number, with the area code?", d.len());
                        self.ask(t, Await::CallbackNumber, q);
                        return true;
                    }
                    None => {}
                }
                match (self.awaiting, ut.yes_no) {
                    (Await::CallbackConfirm, Some(YesNo::Yes)) => {
                        self.c.callback = self.caller_phone.clone();
                        self.advance(now, tools, t);
                        true
                    }
                    (Await::CallbackReadback, Some(YesNo::Yes)) => {
                        self.advance(now, tools, t);
                        true
                    }
                    (_, Some(YesNo::No)) => {
                        self.c.callback = None;
                        self.c.callback_declined = true;
                        self.ask(t, Await::CallbackNumber, "What number should we call you back on?");
                        true
                    }
                    // "It's about my x-ray results" before the number: the topic is taken down
                    // (on_said), so ask for the number again, not "sorry, I didn't catch that".
                    (Await::CallbackNumber, None) if self.flow == Some(Intent::Message) && ut.topic.is_some() => {
                        t.say("Got it.");
                        self.ask(t, Await::CallbackNumber, "And what number should we call you back on?");
                        true
                    }
                    _ => false,
                }
            }
            Await::Topic => {
                if ut.goodbye && ut.intent == Some(Intent::Goodbye) {
                    return false;
                }
                if self.c.topic.is_none() {
                    self.c.topic = Some(ut.topic.clone().unwrap_or_else(|| ut.text.clone()));
                }
                if ut.topic.is_none() {
                    self.c.notes.push(ut.text.clone());
                }
                self.advance(now, tools, t);
                true
            }
            Await::AnythingElse => {
                let new_request = matches!(ut.intent, Some(i) if i != Intent::Goodbye) || ut.question.is_some() || ut.has_schedule_info();
                if let Some(id) = self.message_name_open.clone().filter(|_| !new_request && (ut.first.is_some() || ut.name_part.is_some())) {
                    self.correct_message_name(&id, ut, tools, t);
                    return true;
                }
                if !new_request && (ut.goodbye || ut.thanks || ut.yes_no == Some(YesNo::No)) {
                    self.goodbye(t, "");
                    return true;
                }
                if ut.yes_no == Some(YesNo::Yes) && !new_request {
                    self.ask(t, Await::Open, "Sure, what can I do for you?");
                    return true;
                }
                self.reset_task();
                self.flow = None;
                false
            }
            Await::MessageOrTransfer => {
                if ut.goodbye && !u::mentions_message(&ut.toks) {
                    self.goodbye(t, "");
                    return true;
                }
                let open = self.facts.is_open(self.local(now)) || self.cfg.transfer_when_closed;
                let wants_msg = u::mentions_message(&ut.toks) || (ut.yes_no == Some(YesNo::Yes) && !open);
                let wants_transfer = open && (u::mentions_transfer(&ut.toks) || ut.intent == Some(Intent::Human));
                if wants_msg {
                    self.flow = Some(Intent::Message);
                    if self.c.topic.is_none() {
                        self.c.topic = self.pending_question_text.clone();
                    }
                    self.advance(now, tools, t);
                    return true;
                }
                if wants_transfer {
                    self.flow = Some(Intent::Human);
                    self.human(now, tools, t);
                    return true;
                }
                if ut.yes_no == Some(YesNo::No) && ut.intent.is_none() && ut.question.is_none() {
                    t.say("Okay.");
                    self.anything_else(t);
                    return true;
                }
                false
            }
            Await::Offer => {
                // "Tuesday works" / "Monday then, the earliest": a day with no time picks among
                // the offers that day. A weekday means the offered one, not the nearest.
                if ut.times.is_empty() && ut.dates.len() == 1 {
                    let d = ut.dates[0];
                    let exact: Vec<SlotOffer> = self.c.offers.iter().filter(|o| o.start_local.date() == d).cloned().collect();
                    let on_day = if exact.is_empty() {
                        self.c.offers.iter().filter(|o| o.start_local.date().weekday() == d.weekday()).cloned().collect()
                    } else {
                        exact
                    };
                    // One offer that day, or "the earliest" of several.
                    let pick = match on_day.len() {
                        1 => Some(0),
                        n if n > 1 => u::extract_choice(&ut.toks, n),
                        _ => None,
                    };
                    if let Some(i) = pick {
                        self.c.chosen = Some(on_day[i].clone());
                        self.merge_non_schedule(ut);
                        self.advance(now, tools, t);
                        return true;
                    }
                }
                if let Some(i) = self.pick_offer(ut) {
                    self.c.chosen = Some(self.c.offers[i].clone());
                    self.merge_non_schedule(ut);
                    self.advance(now, tools, t);
                    return true;
                }
                if let Some(dir) = u::asks_other_time(&ut.toks).filter(|_| !ut.has_schedule_info()) {
                    self.offer_around(dir, now, tools, t);
                    return true;
                }
                if ut.yes_no == Some(YesNo::No) && !ut.has_schedule_info() {
                    self.c.rejections += 1;
                    self.not_suitable(now, tools, t);
                    return true;
                }
                if ut.yes_no == Some(YesNo::Yes) && !ut.has_schedule_info() && ut.intent.is_none() {
                    if self.c.offers.len() == 1 {
                        self.c.chosen = Some(self.c.offers[0].clone());
                        self.advance(now, tools, t);
                    } else {
                        let today = self.local(now).date();
                        let q = format!("Which time would you like: {}?", say::list_or(&offer_items(&self.c.offers, today)));
                        self.ask(t, Await::Offer, q);
                    }
                    return true;
                }
                false
            }
            Await::WhichAppt => {
                let cands = self.c.candidates.clone();
                let pick = cands
                    .iter()
                    .position(|a| {
                        ut.dates.contains(&a.start_local.date()) && (ut.times.is_empty() || ut.times.contains(&a.start_local.time()))
                            || (ut.dates.is_empty() && !ut.times.is_empty() && ut.times.contains(&a.start_local.time()))
                    })
                    .or_else(|| u::extract_choice(&ut.toks, cands.len()));
                if let Some(i) = pick {
                    self.c.target = Some(cands[i].clone());
                    self.advance_existing_after_target(now, tools, t, true);
                    return true;
                }
                false
            }
            Await::Day if ut.yes_no == Some(YesNo::Yes) && !ut.has_schedule_info() && ut.intent.is_none() && ut.question.is_none() => {
                self.ask(t, Await::Day, "Which day would you like?");
                true
            }
            Await::Day if ut.yes_no == Some(YesNo::No) && !ut.has_schedule_info() && ut.intent.is_none() => {
                self.c.rejections += 1;
                self.not_suitable(now, tools, t);
                true
            }
            Await::ApptType if ut.kind.is_none() && !ut.has_schedule_info() => {
                // "The first one" / "the second": a pick from the list we just read out.
                let types = self.offered_types();
                match u::extract_choice(&ut.toks, types.len()) {
                    Some(i) => {
                        self.c.kind = Some(types[i].clone());
                        self.merge_non_schedule(ut);
                        self.advance(now, tools, t);
                        true
                    }
                    None => false,
                }
            }
            Await::Dob => {
                if let Some(d) = ut.dob {
                    self.c.dob = Some(d);
                    self.merge_non_schedule(ut);
                    self.advance(now, tools, t);
                    return true;
                }
                false
            }
            Await::Phone => match &ut.phone {
                Some(Phone::E164(p)) => {
                    self.c.phone = Some(p.clone());
                    self.c.phone_from_caller_id = false;
                    t.say(format!("Thanks. I have {}.", say::phone(p)));
                    self.c.phone_just_read = true;
                    self.merge_non_schedule(ut);
                    self.merge_schedule(ut);
                    self.advance(now, tools, t);
                    true
                }
                Some(Phone::Partial(d)) => {
                    let q = format!("I only got {} digits. Could you say the whole number, with the area code?", d.len());
                    self.ask(t, Await::Phone, q);
                    true
                }
                None => false,
            },
            _ => false,
        }
    }

    fn pick_offer(&self, ut: &Utt) -> Option<usize> {
        let offers = &self.c.offers;
        if offers.is_empty() {
            return None;
        }
        // An explicit time (and date, if given) that matches an offer.
        if let Some(tm) = ut.times.last() {
            let said = ut.dates.last();
            let i = offers.iter().position(|o| o.start_local.time() == *tm && said.is_none_or(|d| *d == o.start_local.date()));
            // "Monday at one" for "today, Monday, March 2nd at 1 PM": a bare weekday resolves
            // to the next such day, so match the offered day by weekday when no offer is on it.
            let by_weekday = || {
                let d = said?;
                if offers.iter().any(|o| o.start_local.date() == *d) {
                    return None;
                }
                offers.iter().position(|o| o.start_local.time() == *tm && o.start_local.date().weekday() == d.weekday())
            };
            return i.or_else(by_weekday);
        }
        if ut.has_schedule_info() {
            return None;
        }
        u::extract_choice(&ut.toks, offers.len())
    }

    fn general(&mut self, ut: &Utt, now: DateTime<Utc>, tools: &mut dyn Tools, t: &mut Turn) {
        // A bare goodbye ends the call whatever we were doing.
        if ut.goodbye && !ut.has_schedule_info() && matches!(ut.intent, None | Some(Intent::Goodbye) | Some(Intent::Question)) && ut.question.is_none() {
            // "That's all" to "I have 217 555 0233, is that right?": keep the message.
            self.salvage_message(tools, t);
            self.goodbye(t, "");
            return;
        }
        // A question the facts may answer, asked on its own.
        let about_hours = matches!(ut.question, Some(Question::Hours));
        let task_info = (ut.has_schedule_info() && !about_hours) || ut.first.is_some() || ut.phone.is_some();
        if let Some(q) = ut.question.clone().filter(|_| matches!(ut.intent, Some(Intent::Question) | None) && !task_info) {
            self.answer(&q, ut, now, t);
            return;
        }
        if let Some(i) = ut.intent {
            match i {
                Intent::Book | Intent::Reschedule | Intent::Cancel | Intent::Message | Intent::Human | Intent::Lookup
                    if self.flow != Some(i) => {
                        let keep_identity = (self.c.first.clone(), self.c.last.clone(), self.c.patient.clone(), self.c.phone.clone());
                        let topic = self.c.topic.clone();
                        let notes = std::mem::take(&mut self.c.notes);
                        self.reset_task();
                        (self.c.first, self.c.last, self.c.patient, self.c.phone) = keep_identity;
                        self.c.topic = topic;
                        self.c.notes = notes;
                        self.flow = Some(i);
                    }
                Intent::Question
                    if ut.question.is_none() && !task_info => {
                        self.unknown_question(ut, now, t);
                        return;
                    }
                _ => {}
            }
        }
        // "What do you have on Thursday?" / "a cleaning": scheduling talk means booking.
        if self.flow.is_none() && (ut.kind.is_some() || ut.has_schedule_info()) {
            self.flow = Some(Intent::Book);
        }
        let before = self.progress_marker();
        self.merge(ut);
        if self.flow.is_none() && ut.first.is_some() && ut.intent.is_none() && ut.question.is_none() {
            // "Hi, this is Sam Rivera." and nothing else yet.
            let first = self.c.first.clone().unwrap_or_default();
            t.say(format!("Thanks, {first}."));
            self.ask(t, Await::Open, "How can I help you today?");
            return;
        }
        if self.flow.is_none() || (!ut.understood_anything() && self.progress_marker() == before) {
            if ut.question_mark && ut.intent.is_none() && (self.flow.is_none() || matches!(self.awaiting, Await::Open | Await::AnythingElse)) {
                self.unknown_question(ut, now, t);
                return;
            }
            self.confusions += 1;
            if self.confusions > self.cfg.max_confusions {
                t.say("I'm sorry, I'm having trouble understanding.");
                self.offer_message_or_transfer(now, t);
                return;
            }
            if self.interrupted && !self.last_say.is_empty() {
                // The caller spoke over us and we did not understand them: say it again in full.
                t.say(self.last_say.clone());
            } else if self.flow.is_none() {
                t.say("Sorry, I didn't quite get that. I can book, move or cancel an appointment, answer questions about the practice, or take a message.");
                self.ask(t, Await::Open, "What would you like to do?");
            } else {
                t.say("Sorry, I didn't catch that.");
                let q = self.last_question.clone();
                t.say(q);
            }
            return;
        }
        self.confusions = 0;
        self.advance(now, tools, t);
    }

    fn progress_marker(&self) -> ProgressMarker {
        (self.c.first.clone(), self.c.date, self.c.time, self.c.kind.clone(), self.c.dob)
    }

    fn reset_task(&mut self) {
        let keep = (self.c.first.take(), self.c.last.take(), self.c.patient.take(), self.c.phone.take(), self.c.phone_from_caller_id, self.c.dob.take());
        self.c = Collected::default();
        (self.c.first, self.c.last, self.c.patient, self.c.phone, self.c.phone_from_caller_id, self.c.dob) = keep;
    }

    /// Merge what the turn said into the collected details.
    fn merge(&mut self, ut: &Utt) {
        self.merge_non_schedule(ut);
        self.merge_schedule(ut);
    }

    fn merge_non_schedule(&mut self, ut: &Utt) {
        if let Some(f) = &ut.first {
            let same_first = self.c.first.as_ref() == Some(f);
            if !same_first || ut.last.is_some() {
                self.c.last = ut.last.clone().or_else(|| if same_first { self.c.last.clone() } else { None });
                self.c.first = Some(f.clone());
            }
            self.name_heard = Some(NameHeard { turn: self.caller_turns, bare: ut.name_bare, first: self.c.first.clone(), last: self.c.last.clone() });
        }
        if ut.name_part.is_some() {
            // Spelled or corrected by the caller: their own words win over any re-hearing.
            self.name_heard = None;
        }
        if let Some(part) = &ut.name_part {
            use u::NamePartKind::*;
            let kind = match (part.kind, &self.c.first, &self.c.last) {
                (Either, Some(f), Some(l)) if u::name_distance(&part.value, f) < u::name_distance(&part.value, l) => First,
                (Either, Some(_), _) => Last,
                (Either, None, _) => First,
                (k, _, _) => k,
            };
            let slot = if kind == First { &mut self.c.first } else { &mut self.c.last };
            *slot = Some(part.value.clone());
        }
        match &ut.phone {
            Some(Phone::E164(p)) if self.flow != Some(Intent::Message) => {
                self.c.phone = Some(p.clone());
                self.c.phone_from_caller_id = false;
            }
            Some(Phone::E164(p)) => self.c.callback = Some(p.clone()),
            _ => {}
        }
        if ut.kind.is_some() && !(self.emergency && self.c.kind.is_some()) && self.c.target.is_none() {
            if self.c.kind.is_some() && self.c.kind != ut.kind {
                // Slots are per type: anything offered for the old type is void.
                self.c.offers.clear();
                self.c.chosen = None;
                self.c.kind_changed = true;
            }
            self.c.kind = ut.kind.clone();
        }
        if ut.new_patient {
            self.c.new_patient = Some(true);
        } else if ut.existing_patient {
            self.c.new_patient = Some(false);
        }
        if ut.dob.is_some() {
            self.c.dob = ut.dob;
        }
    }

    fn merge_schedule(&mut self, ut: &Utt) {
        let identifying = matches!(self.flow, Some(Intent::Reschedule) | Some(Intent::Cancel) | Some(Intent::Lookup)) && self.c.target.is_none();
        if identifying {
            // Before the appointment is known, dates and times describe the existing appointment.
            if !ut.dates.is_empty() {
                self.c.hint_dates = ut.dates.clone();
            }
            if let Some(tm) = ut.times.last() {
                self.c.hint_time = Some(*tm);
            }
            // A part of day is a preference for the new time ("move it to Thursday afternoon").
            if ut.window.is_some() {
                self.c.window = ut.window;
            }
            if ut.range.is_some() {
                self.c.range = ut.range;
            }
            self.c.relative.merge(ut.relative);
            return;
        }
        if let Some(d) = ut.dates.last() {
            if self.c.date != Some(*d) {
                self.c.offers.clear();
                self.c.chosen = None;
            }
            self.c.date = Some(*d);
            self.c.anchor = Some(*d);
            self.c.range = None;
        } else if let Some(r) = ut.range {
            self.c.range = Some(r);
            self.c.date = None;
            self.c.offers.clear();
            self.c.chosen = None;
        }
        if let Some(tm) = ut.times.last() {
            self.c.time = Some(*tm);
            self.c.window = None;
            self.c.chosen = None;
        } else if let Some(w) = ut.window {
            self.c.window = Some(w);
            self.c.time = None;
            self.c.chosen = None;
        }
    }

    fn anything_else(&mut self, t: &mut Turn) {
        self.ask(t, Await::AnythingElse, "Is there anything else I can help you with?");
    }

    fn offer_message_or_transfer(&mut self, now: DateTime<Utc>, t: &mut Turn) {
        let open = self.facts.is_open(self.local(now)) || self.cfg.transfer_when_closed;
        if open {
            self.ask(t, Await::MessageOrTransfer, "I can take a message for the team, or transfer you to the front desk. Which would you prefer?");
        } else {
            self.ask(t, Await::MessageOrTransfer, "I can take a message, and someone will get back to you. Would you like to leave a message?");
        }
    }

    fn unknown_question(&mut self, ut: &Utt, now: DateTime<Utc>, t: &mut Turn) {
        self.answered_question = true;
        self.pending_question_text = Some(ut.text.clone());
        t.say("I'm not sure about that, and I don't want to guess.");
        self.offer_message_or_transfer(now, t);
    }

    // ------------------------------------------------------------------ questions

    fn answer(&mut self, q: &Question, ut: &Utt, now: DateTime<Utc>, t: &mut Turn) {
        self.answered_question = true;
        let mut unknown = false;
        match q {
            Question::Insurance(plan) => {
                let accepted = &self.facts.insurance_accepted;
                let list = say::list_and(accepted);
                match plan {
                    Some(p) => {
                        let pl = p.to_lowercase();
                        let hit = accepted.iter().find(|a| {
                            let al = a.to_lowercase();
                            al.contains(&pl) || pl.contains(&al)
                        });
                        match hit {
                            Some(a) => t.say(format!("Yes, we accept {a}.")),
                            None => {
                                let shown: String = p.split_whitespace().map(|w| {
                                    let mut c = w.chars();
                                    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
                                }).collect::<Vec<_>>().join(" ");
                                t.say(format!("{shown} is not on the list of plans we accept."));
                                if !accepted.is_empty() {
                                    t.say(format!("The plans on our list are {list}."));
                                }
                                unknown = true;
                            }
                        }
                    }
                    None if accepted.is_empty() => {
                        t.say("I don't have a list of insurance plans.");
                        unknown = true;
                    }
                    None => t.say(format!("We accept {list}.")),
                }
            }
            Question::Hours => {
                let today = self.local(now).date();
                if let Some(d) = ut.dates.last() {
                    match self.facts.hours_on(*d) {
                        Some(h) => t.say(format!("{} we're open from {} to {}.", capitalize(&say::on_date(*d, today)), say::time(h.open), say::time(h.close))),
                        None => t.say(format!("We're closed {}.", say::on_date(*d, today))),
                    }
                } else {
                    t.say(self.hours_text());
                }
            }
            Question::Address => t.say(format!("We're at {}.", self.facts.address)),
            Question::Phone => t.say(format!("Our number is {}.", say::phone(&self.facts.phone))),
            Question::Duration => match ut.kind.as_ref().and_then(|k| self.facts.appointment_type(k)) {
                Some(ty) => t.say(format!("{} takes about {} minutes.", capitalize(&say::with_article(&ty.name)), ty.minutes)),
                None => {
                    let items: Vec<String> = self.facts.appointment_types.iter().map(|ty| format!("{} takes about {} minutes", say::with_article(&ty.name), ty.minutes)).collect();
                    t.say(format!("{}.", capitalize(&say::list_and(&items))));
                }
            },
            Question::Price(_) => {
                let priced: Vec<&crate::facts::AppointmentTypeFacts> = self.facts.appointment_types.iter().filter(|t| t.price.is_some()).collect();
                match ut.kind.as_ref().and_then(|k| self.facts.appointment_type(k)) {
                    Some(ty) if ty.price.is_some() => {
                        t.say(format!("{} is {} dollars.", capitalize(&say::with_article(&ty.name)), ty.price.unwrap_or(0)));
                    }
                    _ => {
                        t.say("I don't have a price for that.");
                        if !priced.is_empty() {
                            let items: Vec<String> = priced.iter().map(|ty| format!("{} is {} dollars", say::with_article(&ty.name), ty.price.unwrap_or(0))).collect();
                            t.say(format!("For visits: {}.", say::list_and(&items)));
                        }
                        unknown = true;
                    }
                }
            }
            Question::Services(s) => {
                let list = say::list_and(&self.facts.services);
                match s {
                    Some(s) => {
                        let stem = |x: &str| x.trim_end_matches('s').to_lowercase();
                        let sl = stem(s);
                        let hit = self.facts.services.iter().find(|svc| {
                            let v = stem(svc);
                            v.contains(&sl) || sl.contains(&v)
                        });
                        match hit {
                            Some(h) => t.say(format!("Yes, we offer {h}.")),
                            None => {
                                t.say(format!("I don't see {s} on our list of services."));
                                t.say(format!("We offer {list}."));
                                unknown = true;
                            }
                        }
                    }
                    None => t.say(format!("We offer {list}.")),
                }
            }
            Question::WhoAreYou => {
                t.say(format!("I'm the virtual receptionist for {}, an automated assistant.", self.facts.name));
                t.say("I can book, move or cancel appointments, answer questions about the practice, or take a message. If you'd rather speak with someone, just say so.");
                self.ask(t, Await::Open, "How can I help you?");
                return;
            }
            Question::Other => {
                self.unknown_question(ut, now, t);
                return;
            }
        }
        if unknown {
            self.pending_question_text = Some(ut.text.clone());
            self.offer_message_or_transfer(now, t);
        } else if self.flow.is_some() && !matches!(self.awaiting, Await::AnythingElse | Await::Open) {
            let q = self.last_question.clone();
            t.say(q);
        } else {
            self.anything_else(t);
        }
    }

    fn hours_text(&self) -> String {
        // Group consecutive weekdays with identical hours: "Monday to Thursday, 8 AM to 5 PM".
        let names = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
        let mut days: Vec<&crate::facts::DayHours> = self.facts.hours.iter().collect();
        days.sort_by_key(|h| (h.day + 6) % 7); // Monday first
        let mut parts: Vec<String> = Vec::new();
        let mut i = 0;
        while i < days.len() {
            let mut j = i;
            while j + 1 < days.len()
                && days[j + 1].open == days[i].open
                && days[j + 1].close == days[i].close
                && days[j + 1].breaks == days[i].breaks
                && (days[j].day + 1) % 7 == days[j + 1].day
            {
                j += 1;
            }
            let span = if i == j { names[days[i].day as usize % 7].to_string() } else { format!("{} to {}", names[days[i].day as usize % 7], names[days[j].day as usize % 7]) };
            let mut s = format!("{span}, {} to {}", say::time(days[i].open), say::time(days[i].close));
            if let Some((b, e)) = days[i].breaks.first() {
                s.push_str(&format!(", closed for lunch from {} to {}", say::time(*b), say::time(*e)));
            }
            parts.push(s);
            i = j + 1;
        }
        if parts.is_empty() {
            return "I don't have our opening hours.".into();
        }
        let weekend_closed = !self.facts.hours.iter().any(|h| h.day == 0 || h.day == 6);
        let tail = if weekend_closed { " We're closed on weekends." } else { "" };
        format!("We're open {}.{tail}", parts.join("; and "))
    }

    // ------------------------------------------------------------------ flows

    fn advance(&mut self, now: DateTime<Utc>, tools: &mut dyn Tools, t: &mut Turn) {
        match self.flow {
            None => self.ask(t, Await::Open, "How can I help you today?"),
            Some(Intent::Book) | Some(Intent::Emergency) => self.advance_book(now, tools, t),
            Some(Intent::Reschedule) | Some(Intent::Cancel) | Some(Intent::Lookup) => self.advance_existing(now, tools, t),
            Some(Intent::Message) => self.advance_message(now, tools, t),
            Some(Intent::Human) => self.human(now, tools, t),
            Some(Intent::Question) | Some(Intent::Goodbye) => self.anything_else(t),
        }
    }

    fn start_emergency(&mut self, now: DateTime<Utc>, tools: &mut dyn Tools, t: &mut Turn) {
        self.emergency = true;
        let local = self.local(now);
        t.interruptible = false; // safety advice must be heard
        t.say("I'm sorry you're in pain.");
        t.say("If you have trouble breathing or swallowing, please hang up and call 911.");
        let in_hours = self.facts.hours_on(local.date()).is_some_and(|h| local.time() >= h.open && local.time() < h.close);
        let etype = self.type_for(AppointmentKind::Emergency);
        let slots_today = match &etype {
            Some(ty) if in_hours => self.find(tools, ty, local.date(), local.date(), None, 1, now).unwrap_or_default(),
            _ => Vec::new(),
        };
        if in_hours && !slots_today.is_empty() {
            self.flow = Some(Intent::Book);
            self.c.kind = etype;
            self.c.offers.clear();
            self.c.chosen = None;
            // Same day is the point of an emergency visit; the caller can still name another day.
            self.c.date = Some(local.date());
            self.c.anchor = Some(local.date());
            self.c.time = None;
            self.c.window = None;
            self.c.range = None;
            t.say("We can see you today for an emergency visit.");
            self.advance_book(now, tools, t);
            return;
        }
        let uri = if in_hours && self.facts.is_open(local) { self.facts.front_desk_uri.clone() } else { self.facts.on_call_uri.clone() };
        if uri.is_empty() {
            self.flow = Some(Intent::Message);
            self.c.topic.get_or_insert_with(|| "urgent dental problem".into());
            t.say("I'll take an urgent message for the dentist.");
            self.advance_message(now, tools, t);
            return;
        }
        let who = if uri == self.facts.on_call_uri { "our on-call dentist" } else { "the front desk" };
        t.say(format!("I'll connect you with {who} now. Please stay on the line."));
        self.transfer(uri, TransferReason::Emergency, t);
    }

    fn transfer(&mut self, uri: String, reason: TransferReason, t: &mut Turn) {
        self.transfer_target = Some(uri.clone());
        let rec = Recorded::TransferRequested { uri: uri.clone(), reason };
        self.records.push(rec.clone());
        t.pre.push(Action::Record(rec));
        t.post.push(Action::Transfer { uri, reason });
        self.awaiting = Await::Nothing;
    }

    fn human(&mut self, now: DateTime<Utc>, tools: &mut dyn Tools, t: &mut Turn) {
        let open = self.facts.is_open(self.local(now)) || self.cfg.transfer_when_closed;
        if open && !self.transfer_failed {
            t.say("Let me transfer you to the front desk. One moment, please.");
            self.transfer(self.facts.front_desk_uri.clone(), TransferReason::FrontDesk, t);
            return;
        }
        if !open {
            t.say("Our office is closed right now.");
        }
        t.say("I can take a message, and someone will call you back.");
        self.flow = Some(Intent::Message);
        self.advance_message(now, tools, t);
    }

    #[allow(clippy::too_many_arguments)] // mirrors SlotQuery's fields; a builder would only add noise
    fn find(
        &mut self,
        tools: &mut dyn Tools,
        ty: &str,
        from: NaiveDate,
        to: NaiveDate,
        window: Option<TimeWindow>,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<SlotOffer>, ToolError> {
        let q = SlotQuery { appointment_type: ty.to_string(), from, to, window, now_local: self.local(now), limit };
        tools.find_slots(&q)
    }

    /// The visit types a caller may book by phone, as listed when we ask (emergencies are triaged,
    /// not chosen from a list).
    fn offered_types(&self) -> Vec<String> {
        self.facts
            .appointment_types
            .iter()
            .filter(|t| t.bookable_by_phone && !t.name.to_lowercase().contains("emergency"))
            .map(|t| t.name.clone())
            .collect()
    }

    fn full_name(&self) -> String {
        match (&self.c.first, &self.c.last) {
            (Some(f), Some(l)) => format!("{f} {l}"),
            (Some(f), None) => f.clone(),
            _ => String::new(),
        }
    }

    fn advance_book(&mut self, now: DateTime<Utc>, tools: &mut dyn Tools, t: &mut Turn) {
        if self.c.kind_changed {
            self.c.kind_changed = false;
            if let Some(k) = &self.c.kind {
                t.say(format!("Okay, {}.", say::with_article(k)));
            }
        }
        if self.c.kind.is_none() {
            if self.emergency {
                self.c.kind = self.type_for(AppointmentKind::Emergency);
            } else if self.c.new_patient == Some(true) {
                self.c.kind = self.type_for(AppointmentKind::NewPatient);
            }
        }
        if self.c.kind.is_none() {
            let names: Vec<String> = self.offered_types().iter().map(|t| say::with_article(t)).collect();
            let q = format!("What kind of visit would you like: {}?", say::list_or(&names));
            self.ask(t, Await::ApptType, q);
            return;
        }
        // The name is asked for once up front; a caller who answers with something else (a
        // question about times, a name the recogniser mangled) is served first and asked again
        // before the read-back, where it is required.
        if self.c.first.is_none() && (!self.c.asked_name || self.c.chosen.is_some()) {
            self.c.asked_name = true;
            self.ask(t, Await::Name, "May I have your first and last name?");
            return;
        }
        if self.c.first.is_some() && self.c.last.is_none() && !self.c.asked_last {
            self.c.asked_last = true;
            self.ask(t, Await::Name, "And your last name, please?");
            return;
        }
        if self.c.phone.is_none() {
            if let Some(p) = self.caller_phone.clone() {
                self.c.phone = Some(p);
                self.c.phone_from_caller_id = true;
            } else {
                self.ask(t, Await::Phone, "What's the best phone number to reach you?");
                return;
            }
        }
        if self.c.chosen.is_some() {
            self.read_back(now, t);
            return;
        }
        if self.c.date.is_none() && self.c.window.is_none() && self.c.time.is_none() && self.c.range.is_none() {
            self.ask(t, Await::Day, "What day would you like to come in?");
            return;
        }
        self.search_and_offer(now, tools, t);
    }

    fn search_and_offer(&mut self, now: DateTime<Utc>, tools: &mut dyn Tools, t: &mut Turn) {
        let Some(ty) = self.c.kind.clone() else { return };
        let local = self.local(now);
        let today = local.date();
        let max = self.cfg.max_offers.max(1);
        let horizon = Duration::days(self.cfg.search_days.max(1));
        let date = self.c.date.filter(|d| *d >= today);
        if self.c.date.is_some() && date.is_none() {
            self.c.date = None;
            self.ask(t, Await::Day, "That day has already passed. What other day would work?");
            return;
        }
        // Past the type's booking window the schedule is simply not open yet: say so instead of
        // "fully booked", and ask for an earlier day.
        let window = self.facts.appointment_type(&ty).map(|t| i64::from(t.window_days)).unwrap_or(i64::MAX);
        if date.is_some_and(|d| (d - today).num_days() > window) {
            self.c.date = None;
            t.say(format!("I can only book {} up to {} days ahead.", say::with_article(&ty), window));
            self.ask(t, Await::Day, "Is there an earlier day that would work for you?");
            return;
        }
        let res: Result<(), ToolError> = (|| {
            match date {
                Some(d) if self.facts.hours_on(d).is_none() => {
                    t.say(format!("Sorry, we're closed {}.", say::on_date(d, today)));
                    let alts = next_openings(self.find(tools, &ty, d + Duration::days(1), d + horizon, self.c.window, 64, now)?, max);
                    self.offer(alts, today, t, "The next openings are");
                }
                Some(d) => {
                    if let Some(tm) = self.c.time {
                        let w = TimeWindow { start: tm, end: tm + Duration::minutes(1) };
                        let exact = self.find(tools, &ty, d, d, Some(w), 1, now)?;
                        if let Some(s) = exact.into_iter().next() {
                            self.c.chosen = Some(s);
                            self.read_back(now, t);
                            return Ok(());
                        }
                        t.say(format!("Sorry, {} {} isn't available.", say::time(tm), say::on_date(d, today)));
                        let mut all = self.find(tools, &ty, d, d, None, 64, now)?;
                        if all.is_empty() {
                            let alts = next_openings(self.find(tools, &ty, d + Duration::days(1), d + horizon, None, 64, now)?, max);
                            self.offer(alts, today, t, "The next openings are");
                        } else {
                            // Closest to what they asked for first, but spread out.
                            all.sort_by_key(|s| ((s.start_local.time() - tm).num_minutes().abs(), s.start_local));
                            self.offer(spread_in_day(all, max), today, t, "That day I have");
                        }
                    } else {
                        let slots = spread_in_day(self.find(tools, &ty, d, d, self.c.window, 64, now)?, max);
                        if !slots.is_empty() {
                            if self.emergency {
                                let s = slots[0].clone();
                                self.c.chosen = Some(s);
                                self.read_back_with(now, t, "The earliest I have is");
                            } else {
                                let lead = format!("{} I have", capitalize(&say::on_date(d, today)));
                                self.offer(slots, today, t, &lead);
                            }
                            return Ok(());
                        }
                        if let Some(w) = self.c.window {
                            let part = if w.start >= hm(12, 0) { "that afternoon" } else { "that morning" };
                            let _ = w;
                            let day = spread_in_day(self.find(tools, &ty, d, d, None, 64, now)?, max);
                            if !day.is_empty() {
                                t.say(format!("I don't have anything {part}."));
                                self.offer(day, today, t, &format!("{} I have", capitalize(&say::on_date(d, today))));
                                return Ok(());
                            }
                        }
                        t.say(format!("Sorry, {} is fully booked.", say::date_rel(d, today)));
                        let alts = next_openings(self.find(tools, &ty, d + Duration::days(1), d + horizon, self.c.window, 64, now)?, max);
                        self.offer(alts, today, t, "The next openings are");
                    }
                }
                None => {
                    let (start, end) = match self.c.range {
                        Some((a, b)) => (a.max(today), b.max(today)),
                        None => (today, today + horizon),
                    };
                    let slots = if let Some(tm) = self.c.time {
                        let w = TimeWindow { start: tm, end: tm + Duration::minutes(1) };
                        self.find(tools, &ty, start, end, Some(w), max, now)?
                    } else {
                        // No day given: offer a choice of days rather than three times on one.
                        let all = self.find(tools, &ty, start, end, self.c.window, 200, now)?;
                        spread_over_days(all, max)
                    };
                    self.offer(slots, today, t, "The next openings are");
                }
            }
            Ok(())
        })();
        if let Err(e) = res {
            self.tool_failure("find_slots", &e, now, tools, t);
        }
    }

    fn offer(&mut self, slots: Vec<SlotOffer>, today: NaiveDate, t: &mut Turn, lead: &str) {
        if slots.is_empty() {
            t.say("I'm sorry, I don't see any openings around then.");
            self.c.offers.clear();
            self.ask(t, Await::Day, "Is there another day that would work for you?");
            return;
        }
        let same_day = slots.iter().all(|s| s.start_local.date() == slots[0].start_local.date());
        let items = offer_items(&slots, today);
        let lead = if same_day && lead == "The next openings are" {
            format!("The next openings are {}, at", say::on_date(slots[0].start_local.date(), today))
        } else {
            lead.to_string()
        };
        t.say(format!("{lead} {}.", say::list_or(&items)));
        // "that afternoon" / "the Monday after" refer to the caller's own last date when there is one.
        if self.c.anchor.is_none() {
            self.c.anchor = Some(slots[0].start_local.date());
        }
        self.c.offers = slots;
        let q = if self.c.offers.len() == 1 { "Would that work?" } else { "Which works best for you?" };
        self.ask(t, Await::Offer, q);
    }

    /// "Anything earlier?" / "Something later?" at an offer: the nearest openings before the first
    /// offered time (or after the last), on that same day when it has any, else on the nearest
    /// days that do. The caller's part of day is dropped: "earlier" than 1 PM may be the morning.
    fn offer_around(&mut self, dir: u::Direction, now: DateTime<Utc>, tools: &mut dyn Tools, t: &mut Turn) {
        let (Some(ty), Some(first), Some(last)) = (self.c.kind.clone(), self.c.offers.first().cloned(), self.c.offers.last().cloned()) else {
            t.say("Sorry, I didn't catch that.");
            t.say(self.last_question.clone());
            return;
        };
        let today = self.local(now).date();
        let max = self.cfg.max_offers.max(1);
        let horizon = today + Duration::days(self.cfg.search_days.max(1));
        let earlier = dir == u::Direction::Earlier;
        let (from, to, pivot) = if earlier { (today, first.start_local.date(), first.start_local) } else { (last.start_local.date(), horizon, last.start_local) };
        let found = self.find(tools, &ty, from, to, None, 200, now).map(|v| {
            let beyond: Vec<SlotOffer> = v.into_iter().filter(|s| if earlier { s.start_local < pivot } else { s.start_local > pivot }).collect();
            let mut day: Vec<SlotOffer> = beyond.iter().filter(|s| s.start_local.date() == pivot.date()).cloned().collect();
            if day.is_empty() {
                return spread_over_days(beyond, max);
            }
            if earlier {
                // Closest to the offers first.
                day.reverse();
            }
            spread_in_day(day, max)
        });
        match found {
            Ok(slots) if slots.is_empty() => {
                let word = if earlier { "earlier" } else { "later" };
                t.say(format!("I'm sorry, I don't have anything {word} than that."));
                let q = format!("Would {} work?", say::list_or(&offer_items(&self.c.offers, today)));
                self.ask(t, Await::Offer, q);
            }
            Ok(slots) => {
                self.c.window = None;
                let lead = if slots.iter().all(|s| s.start_local.date() == slots[0].start_local.date()) {
                    format!("{} I have", capitalize(&say::on_date(slots[0].start_local.date(), today)))
                } else {
                    "I have".to_string()
                };
                self.offer(slots, today, t, &lead);
            }
            Err(e) => self.tool_failure("find_slots", &e, now, tools, t),
        }
    }

    fn not_suitable(&mut self, now: DateTime<Utc>, _tools: &mut dyn Tools, t: &mut Turn) {
        if self.c.rejections >= 3 {
            t.say("I'm sorry I couldn't find a time that suits you.");
            self.flow = Some(Intent::Message);
            self.c.topic.get_or_insert_with(|| "appointment request: no suitable time found".into());
            self.offer_message_or_transfer(now, t);
            return;
        }
        self.ask(t, Await::Day, "No problem. What other day or time would suit you?");
    }

    fn read_back(&mut self, now: DateTime<Utc>, t: &mut Turn) {
        self.read_back_with(now, t, "");
    }

    /// Read back type, weekday, date and time (and the phone if it did not come from caller id),
    /// then ask for an explicit yes.
    fn read_back_with(&mut self, now: DateTime<Utc>, t: &mut Turn, intro: &str) {
        let Some(s) = self.c.chosen.clone() else { return };
        if self.flow != Some(Intent::Reschedule) && self.c.first.is_none() {
            // A booking is never read back (or made) without a name.
            if !intro.is_empty() {
                t.say(format!("{intro} {}.", say::on_when(s.start_local, self.local(now).date())));
            }
            self.c.asked_name = true;
            self.ask(t, Await::Name, "May I have your first and last name?");
            return;
        }
        let today = self.local(now).date();
        if intro.is_empty() {
            t.say("Let me read that back.");
        }
        if self.flow == Some(Intent::Reschedule) {
            if let Some(a) = &self.c.target {
                t.say(format!(
                    "I'll move your {} from {} to {}.",
                    say::type_name(&a.appointment_type),
                    say::when(a.start_local, today),
                    say::when(s.start_local, today)
                ));
                self.ask(t, Await::ConfirmBook, "Shall I make that change?");
                return;
            }
        }
        let ty = self.c.kind.clone().unwrap_or_default();
        let body = format!("{} {}, for {}.", say::with_article(&ty), say::on_when(s.start_local, today), self.full_name());
        let mut line = if intro.is_empty() { capitalize(&body) } else { format!("{intro} {body}") };
        if !self.c.phone_from_caller_id && !self.c.phone_just_read {
            if let Some(p) = &self.c.phone {
                line.push_str(&format!(" Your phone number is {}.", say::phone(p)));
            }
        }
        t.say(line);
        self.ask(t, Await::ConfirmBook, "Shall I book it?");
    }

    fn idem(&self, op: &str, what: &str) -> String {
        format!("{}:{op}:{what}", self.ctx.call_id)
    }

    fn commit(&mut self, now: DateTime<Utc>, tools: &mut dyn Tools, t: &mut Turn) {
        let Some(slot) = self.c.chosen.clone() else { return };
        let today = self.local(now).date();
        if self.flow == Some(Intent::Reschedule) {
            let Some(target) = self.c.target.clone() else { return };
            let key = self.idem("reschedule", &format!("{}>{}", target.id, slot.slot_id));
            match tools.reschedule(&target.id, &slot.slot_id, &key) {
                Ok(b) => {
                    let rec = Recorded::Rescheduled { appointment_id: b.appointment_id.clone(), from_local: target.start_local, to_local: b.start_local };
                    self.records.push(rec.clone());
                    t.pre.push(Action::Record(rec));
                    self.appointment_ids.push(b.appointment_id.clone());
                    self.summary_bits.push(format!(
                        "Moved {} for {} from {} to {}.",
                        target.appointment_type,
                        self.full_name(),
                        target.start_local.format("%a %b %-d %-I:%M %p"),
                        b.start_local.format("%a %b %-d %-I:%M %p")
                    ));
                    t.say("Done.");
                    t.say(format!("Your {} is now {}.", say::type_name(&b.appointment_type), say::on_when(b.start_local, today)));
                    self.flow = None;
                    self.c.chosen = None;
                    self.anything_else(t);
                }
                Err(e) => self.slot_error(e, now, tools, t, "reschedule"),
            }
            return;
        }
        let patient_id = self.matching_caller_patient(tools).map(|p| p.id);
        let details = PatientDetails {
            patient_id,
            first: self.c.first.clone().unwrap_or_default(),
            last: self.c.last.clone().unwrap_or_default(),
            phone: self.c.phone.clone(),
            dob: self.c.dob,
            new_patient: self.c.new_patient.unwrap_or(false),
        };
        let key = self.idem("book", &slot.slot_id);
        match tools.book(&slot.slot_id, &details, &key) {
            Ok(b) => {
                let rec = Recorded::Booked { appointment_id: b.appointment_id.clone(), appointment_type: b.appointment_type.clone(), start_local: b.start_local };
                self.records.push(rec.clone());
                t.pre.push(Action::Record(rec));
                self.appointment_ids.push(b.appointment_id.clone());
                self.summary_bits.push(format!("Booked {} for {} on {}.", b.appointment_type, self.full_name(), b.start_local.format("%a %b %-d %-I:%M %p")));
                t.say("You're all set.");
                t.say(format!("We'll see you {}.", say::on_when(b.start_local, today)));
                self.flow = None;
                self.c.chosen = None;
                self.c.offers.clear();
                self.anything_else(t);
            }
            Err(e) => self.slot_error(e, now, tools, t, "book"),
        }
    }

    fn slot_error(&mut self, e: ToolError, now: DateTime<Utc>, tools: &mut dyn Tools, t: &mut Turn, op: &str) {
        match e {
            ToolError::SlotUnavailable | ToolError::UnknownSlot => {
                t.say("I'm sorry, that time was just taken.");
                self.c.chosen = None;
                self.c.time = None;
                self.c.offers.clear();
                if self.c.date.is_none() {
                    self.c.date = self.c.anchor;
                }
                self.search_and_offer(now, tools, t);
            }
            other => self.tool_failure(op, &other, now, tools, t),
        }
    }

    fn tool_failure(&mut self, op: &str, e: &ToolError, now: DateTime<Utc>, tools: &mut dyn Tools, t: &mut Turn) {
        self.tool_failed = true;
        let rec = Recorded::ToolFailure { operation: op.into(), error: e.to_string() };
        self.records.push(rec.clone());
        t.pre.push(Action::Record(rec));
        t.say("I'm sorry, I can't reach our schedule right now.");
        if self.flow == Some(Intent::Message) {
            // taking the message itself failed: hand over to a human if we can
            self.flow = Some(Intent::Human);
            self.transfer_failed = self.transfer_failed || !self.facts.is_open(self.local(now));
            if self.facts.is_open(self.local(now)) && !self.transfer_failed {
                self.human(now, tools, t);
            } else {
                self.goodbye(t, "Please call us back during office hours.");
            }
            return;
        }
        self.c.topic.get_or_insert_with(|| format!("{} request (system could not complete it)", op));
        self.flow = Some(Intent::Message);
        t.say("I'll take a message so the front desk can finish this for you.");
        self.advance_message(now, tools, t);
    }

    /// The caller-id patient whose name matches what the caller said.
    fn matching_caller_patient(&mut self, tools: &mut dyn Tools) -> Option<PatientRef> {
        if let Some(p) = &self.c.patient {
            return Some(p.clone());
        }
        let phone = self.caller_phone.clone()?;
        let ps = tools.find_patient_by_phone(&phone).ok()?;
        self.take_record_named(&ps)
    }

    /// The record among `ps` with the name we hold (see [`Self::record_named`]); its spelling
    /// becomes the one we hold.
    fn take_record_named(&mut self, ps: &[PatientRef]) -> Option<PatientRef> {
        let p = self.record_named(ps, self.c.first.as_deref()?, self.c.last.as_deref()?)?;
        self.c.first = Some(p.first.clone());
        self.c.last = Some(p.last.clone());
        Some(p)
    }

    /// The one record among `ps` that carries the name the caller said. `ps` is already narrowed
    /// by something the caller cannot mishear (the caller id's household, or everyone born on the
    /// date of birth they gave), so the name only has to pick the member, and ASR spells names by
    /// ear ("Robert Ken" for Robert Chen): the record's spelling wins. A record spelled the rare
    /// way ("Leena Parke") is compared as the heard name was respelled ("Lena Park") as well as
    /// as it stands.
    fn record_named(&self, ps: &[PatientRef], f: &str, l: &str) -> Option<PatientRef> {
        let usual = |p: &PatientRef| self.usual_spelling(u::PersonName { first: p.first.clone(), last: Some(p.last.clone()) });
        let same = |p: &PatientRef, alike: fn(&str, &str) -> bool| {
            let r = usual(p);
            (alike(&p.first, f) || alike(&r.first, f)) && (alike(&p.last, l) || r.last.as_deref().is_some_and(|rl| alike(rl, l)))
        };
        ps.iter()
            .find(|p| same(p, |a, b| a.eq_ignore_ascii_case(b)))
            .or_else(|| only(ps.iter().filter(|p| same(p, u::names_sound_alike))))
            .or_else(|| {
                // Surnames suffer most on the 8 kHz phone path ("Alicia Gorman" for Alicia
                // Gomez): the one member whose first name sounds alike and whose surname starts
                // with the same letter.
                let initial = |s: &str| s.chars().next().map(|c| c.to_ascii_lowercase());
                only(ps.iter().filter(|p| u::names_sound_alike(&p.first, f) && initial(&p.last) == initial(l)))
            })
            .cloned()
    }

    fn advance_existing(&mut self, now: DateTime<Utc>, tools: &mut dyn Tools, t: &mut Turn) {
        let local = self.local(now);
        if self.c.patient.is_none() {
            if self.c.first.is_none() || self.c.last.is_none() {
                self.ask(t, Await::Name, "Sure. May I have your first and last name?");
                return;
            }
            if !self.c.tried_caller_id {
                self.c.tried_caller_id = true;
                self.c.patient = self.matching_caller_patient(tools);
            }
            if self.c.patient.is_none() {
                let Some(dob) = self.c.dob else {
                    // Asked twice and still none: the caller cannot or will not say it (or it is
                    // not being heard). Asking forever helps nobody; a person can.
                    self.c.dob_asks += 1;
                    match self.c.dob_asks {
                        1 => self.ask(t, Await::Dob, "For your security, what is your date of birth?"),
                        2 => self.ask(t, Await::Dob, "I need your date of birth to find your appointment. What is it?"),
                        _ => {
                            t.say("I'm sorry, I can't look up an appointment without a date of birth.");
                            self.offer_message_or_transfer(now, t);
                        }
                    }
                    return;
                };
                // By the date of birth first, then the name as for caller id: an exact name
                // lookup failed whenever the recogniser spelled the name its own way.
                match tools.find_patients_by_dob(dob) {
                    Ok(ps) => self.c.patient = self.take_record_named(&ps),
                    Err(e) => return self.tool_failure("find_patient", &e, now, tools, t),
                }
                if self.c.patient.is_none() {
                    self.c.id_failures += 1;
                    self.c.dob = None;
                    if self.c.id_failures >= 2 {
                        t.say("I'm sorry, I couldn't find a record that matches.");
                        self.offer_message_or_transfer(now, t);
                    } else {
                        t.say("I couldn't find a record with that name and date of birth.");
                        self.ask(t, Await::Dob, "Could you tell me your date of birth again?");
                    }
                    return;
                }
            }
        }
        if self.c.target.is_none() {
            let Some(p) = self.c.patient.clone() else { return };
            let appts = match tools.upcoming_appointments(&p.id, local) {
                Ok(a) => a,
                Err(e) => return self.tool_failure("upcoming_appointments", &e, now, tools, t),
            };
            if appts.is_empty() {
                t.say(format!("Thanks, {}. I don't see any upcoming appointments for you.", p.first));
                if self.flow == Some(Intent::Reschedule) {
                    self.flow = Some(Intent::Book);
                    self.ask(t, Await::Day, "Would you like to book one? What day would work?");
                } else {
                    self.flow = None;
                    self.anything_else(t);
                }
                return;
            }
            if self.flow == Some(Intent::Lookup) {
                let today = local.date();
                let items: Vec<String> = appts.iter().take(3).map(|a| format!("{} {}", say::with_article(&a.appointment_type), say::on_when(a.start_local, today))).collect();
                t.say(format!("Thanks, {}.", p.first));
                if appts.len() == 1 {
                    t.say(format!("You have {}.", items[0]));
                } else {
                    t.say(format!("You have {} upcoming appointments: {}.", appts.len(), say::list_and(&items)));
                }
                self.answered_question = true;
                self.flow = None;
                self.c.hint_dates.clear();
                self.c.hint_time = None;
                self.anything_else(t);
                return;
            }
            let hinted = !self.c.hint_dates.is_empty() || self.c.hint_time.is_some();
            let matches = self.described(&appts);
            let today = local.date();
            if matches.len() == 1 {
                self.c.target = Some(matches[0].clone());
                self.advance_existing_after_target(now, tools, t, true);
                return;
            }
            if hinted && matches.is_empty() && appts.len() == 1 {
                let a = appts[0].clone();
                t.say(format!("I don't see an appointment at that time, but I see your {} {}.", say::type_name(&a.appointment_type), say::on_when(a.start_local, today)));
                if self.flow == Some(Intent::Reschedule) {
                    // "move it to next Monday at 2": the times named are where it should go.
                    if let Some(d) = self.c.hint_dates.last() {
                        self.c.date = Some(*d);
                        self.c.anchor = Some(*d);
                    }
                    self.c.time = self.c.hint_time;
                    self.apply_relative(&a);
                }
                self.c.hint_dates.clear();
                self.c.hint_time = None;
                self.c.target = Some(a);
                let q = if self.flow == Some(Intent::Cancel) { "Is that the one you'd like to cancel?" } else { "Is that the one you'd like to move?" };
                if self.flow == Some(Intent::Cancel) {
                    self.ask(t, Await::ConfirmCancel, q);
                } else {
                    self.ask(t, Await::ConfirmTarget, q);
                }
                return;
            }
            let pool = if matches.is_empty() { appts } else { matches };
            let items: Vec<String> = pool.iter().take(3).map(|a| format!("{} {}", say::with_article(&a.appointment_type), say::on_when(a.start_local, today))).collect();
            t.say(format!("I see {} upcoming appointments: {}.", pool.len(), say::list_and(&items)));
            self.c.candidates = pool.into_iter().take(3).collect();
            self.ask(t, Await::WhichAppt, "Which one do you mean?");
            return;
        }
        self.advance_existing_after_target(now, tools, t, false);
    }

    /// What was said relative to the appointment being moved, now that it is known: fills the
    /// day and the time where none was said outright, once.
    fn apply_relative(&mut self, a: &AppointmentRef) {
        let (d, tm) = std::mem::take(&mut self.c.relative).resolve(a.start_local);
        if let Some(d) = d.filter(|_| self.c.date.is_none()) {
            self.c.date = Some(d);
            self.c.anchor = Some(d);
        }
        if self.c.time.is_none() {
            self.c.time = tm;
        }
    }

    /// The caller's upcoming appointments that fit what they said of the one they mean (its day
    /// and time), all of them when they said nothing of it.
    fn described(&self, appts: &[AppointmentRef]) -> Vec<AppointmentRef> {
        appts
            .iter()
            .filter(|a| {
                (self.c.hint_dates.is_empty() || self.c.hint_dates.contains(&a.start_local.date()))
                    && self.c.hint_time.is_none_or(|tm| a.start_local.time() == tm)
            })
            .cloned()
            .collect()
    }

    /// The appointment being moved or cancelled is now known: what the identifying turns said
    /// beside it becomes the preference for the new time.
    fn settle_target(&mut self) {
        let Some(a) = self.c.target.clone() else { return };
        // Dates in the identifying turn that are not the appointment's are the new preference.
        let others: Vec<NaiveDate> = self.c.hint_dates.iter().copied().filter(|d| *d != a.start_local.date()).collect();
        if let Some(d) = others.last() {
            self.c.date = Some(*d);
            self.c.anchor = Some(*d);
        }
        self.apply_relative(&a);
        self.c.hint_dates.clear();
        self.c.hint_time = None;
    }

    fn advance_existing_after_target(&mut self, now: DateTime<Utc>, tools: &mut dyn Tools, t: &mut Turn, just_found: bool) {
        let Some(a) = self.c.target.clone() else { return };
        let today = self.local(now).date();
        if just_found {
            self.settle_target();
        }
        let unsaid = std::mem::take(&mut self.c.target_unsaid);
        if self.flow == Some(Intent::Cancel) {
            let q = "Shall I cancel it?";
            t.say(format!("I see your {} {}.", say::type_name(&a.appointment_type), say::on_when(a.start_local, today)));
            self.ask(t, Await::ConfirmCancel, q);
            return;
        }
        self.c.kind = Some(a.appointment_type.clone());
        if self.c.phone.is_none() {
            self.c.phone = a_phone(&self.c.patient).or(self.caller_phone.clone());
            self.c.phone_from_caller_id = true;
        }
        if just_found || unsaid {
            t.say(format!("I see your {} {}.", say::type_name(&a.appointment_type), say::on_when(a.start_local, today)));
        }
        if self.c.chosen.is_some() {
            self.read_back(now, t);
            return;
        }
        if self.c.date.is_none() && self.c.window.is_none() && self.c.time.is_none() && self.c.range.is_none() {
            self.ask(t, Await::Day, "What day would you like instead?");
            return;
        }
        self.search_and_offer(now, tools, t);
    }

    fn commit_cancel(&mut self, now: DateTime<Utc>, tools: &mut dyn Tools, t: &mut Turn) {
        let Some(a) = self.c.target.clone() else { return };
        let today = self.local(now).date();
        let key = self.idem("cancel", &a.id);
        match tools.cancel(&a.id, &key) {
            Ok(()) => {
                let rec = Recorded::Cancelled { appointment_id: a.id.clone(), start_local: a.start_local };
                self.records.push(rec.clone());
                t.pre.push(Action::Record(rec));
                self.appointment_ids.push(a.id.clone());
                self.summary_bits.push(format!("Cancelled {} for {} on {}.", a.appointment_type, self.full_name(), a.start_local.format("%a %b %-d %-I:%M %p")));
                t.say(format!("Done. Your appointment {} is cancelled.", say::on_date(a.start_local.date(), today)));
                self.ask(t, Await::RebookAfterCancel, "Would you like to book a new time?");
            }
            Err(e) => self.tool_failure("cancel", &e, now, tools, t),
        }
    }

    fn advance_message(&mut self, now: DateTime<Utc>, tools: &mut dyn Tools, t: &mut Turn) {
        if self.c.first.is_none() {
            self.ask(t, Await::Name, "May I have your name?");
            return;
        }
        if self.c.callback.is_none() {
            match self.caller_phone.clone() {
                Some(p) if !self.c.callback_declined => {
                    let q = format!("Should we call you back at {}, the number you're calling from?", say::phone(&p));
                    self.ask(t, Await::CallbackConfirm, q);
                }
                _ => self.ask(t, Await::CallbackNumber, "What number should we call you back on?"),
            }
            return;
        }
        if self.c.topic.is_none() && self.c.notes.is_empty() {
            self.ask(t, Await::Topic, "What would you like me to pass on?");
            return;
        }
        match self.save_message(tools, t) {
            Ok(_) => {
                let first = self.c.first.clone().unwrap_or_default();
                t.say(format!("Thank you, {first}."));
                t.say(format!(
                    "I've passed your message on, and someone will call you back at {}.",
                    say::phone(self.c.callback.as_deref().unwrap_or_default())
                ));
                self.flow = None;
                self.anything_else(t);
                self.message_name_open = self.message_id.clone();
            }
            Err(e) => self.tool_failure("take_message", &e, now, tools, t),
        }
    }

    /// The name heard again in turn `turn` by the better recogniser replaces the one taken from
    /// it, silently, as long as nothing has spoken for the name since: the caller has not said or
    /// spelled it again, no record matched it, and it has not been read back for a yes (the caller
    /// is confirming, or has confirmed, the booking under that name: changing it now would book a
    /// name they never heard). A message already taken under it is corrected.
    fn on_name_reheard(&mut self, turn: u64, text: &str, now: DateTime<Utc>, tools: &mut dyn Tools, t: &mut Turn) {
        let Some(h) = self.name_heard.clone().filter(|h| h.turn == turn) else { return };
        let read_back = self.awaiting == Await::ConfirmBook || !self.appointment_ids.is_empty();
        if self.c.patient.is_some() || read_back || self.c.first != h.first || self.c.last != h.last {
            return;
        }
        let Some(n) = u::extract_name(text, false).or_else(|| if h.bare { u::extract_name(text, true) } else { None }) else { return };
        let n = self.usual_spelling(n);
        // Less than we have (a first name where we hold first and last) is no correction.
        if n.last.is_none() && h.last.is_some() {
            return;
        }
        let old = self.full_name();
        self.c.first = Some(n.first);
        self.c.last = n.last;
        // A turn is re-heard once.
        self.name_heard = None;
        if let Some(id) = self.message_id.clone().filter(|_| !self.full_name().eq_ignore_ascii_case(&old)) {
            self.rename_message(&id, &old, tools, t);
        }
        if self.awaiting == Await::Dob {
            self.identify_quietly(now, tools);
        }
    }

    /// The caller id's record may match the name as re-heard, where it did not match the name
    /// first heard ("it's Salisha Gomez" for Alicia): then the date of birth being asked for is
    /// not needed, and the appointment they described is looked up. Nothing is said now (the
    /// caller may be answering); the next reply names the appointment found.
    fn identify_quietly(&mut self, now: DateTime<Utc>, tools: &mut dyn Tools) {
        let Some(p) = self.matching_caller_patient(tools) else { return };
        self.c.patient = Some(p.clone());
        // Asking when their appointments are: the next reply lists them all.
        if !matches!(self.flow, Some(Intent::Reschedule) | Some(Intent::Cancel)) {
            return;
        }
        let Ok(appts) = tools.upcoming_appointments(&p.id, self.local(now)) else { return };
        if let [a] = self.described(&appts).as_slice() {
            self.c.target = Some(a.clone());
            self.settle_target();
            self.c.target_unsaid = true;
        }
    }

    /// The message `id`, taken under the name `old`, now carries the name we hold; the call's
    /// summary follows. Whether it worked (a failure is recorded).
    fn rename_message(&mut self, id: &str, old: &str, tools: &mut dyn Tools, t: &mut Turn) -> bool {
        let name = self.full_name();
        match tools.correct_message_name(id, &name) {
            Ok(()) => {
                for bit in self.summary_bits.iter_mut().filter(|b| b.starts_with("Message from ")) {
                    *bit = bit.replacen(old, &name, 1);
                }
                true
            }
            Err(e) => {
                let rec = Recorded::ToolFailure { operation: "correct_message_name".into(), error: e.to_string() };
                self.records.push(rec.clone());
                t.pre.push(Action::Record(rec));
                false
            }
        }
    }

    /// "Thank you, Brilliant. I've passed your message on…" — "It's Priya Natarajan.": the name
    /// on the message (and in the call's summary) becomes the corrected one.
    fn correct_message_name(&mut self, id: &str, ut: &Utt, tools: &mut dyn Tools, t: &mut Turn) {
        let old = self.full_name();
        self.merge_non_schedule(ut);
        if self.rename_message(id, &old, tools, t) {
            t.say(format!("Thank you, {}. I've corrected the name on your message.", self.c.first.clone().unwrap_or_default()));
        } else {
            t.say("I'm sorry, I couldn't change the name on the message. The team will check it when they call you back.");
        }
        self.anything_else(t);
        self.message_name_open = Some(id.to_string());
    }

    fn save_message(&mut self, tools: &mut dyn Tools, t: &mut Turn) -> Result<String, ToolError> {
        let topic = self.c.topic.clone().unwrap_or_else(|| "message".into());
        let name = if self.c.first.is_some() { self.full_name() } else { "(name not given)".to_string() };
        let msg = MessageDetails { name: name.clone(), callback: self.c.callback.clone(), topic: topic.clone(), body: self.c.notes.join(" / "), urgent: self.emergency };
        let key = self.idem("message", "1");
        let id = tools.take_message(&msg, &key)?;
        let rec = Recorded::MessageTaken { message_id: id.clone(), urgent: self.emergency };
        self.records.push(rec.clone());
        t.pre.push(Action::Record(rec));
        self.message_id = Some(id.clone());
        self.summary_bits.push(format!("Message from {name} about {topic}."));
        Ok(id)
    }

    /// The caller leaves (says goodbye or hangs up) in the middle of leaving a message: keep what
    /// they already told us rather than lose it; staff can call back on the caller id.
    fn salvage_message(&mut self, tools: &mut dyn Tools, t: &mut Turn) {
        // Only once we are taking the message down (not while merely offering to).
        let collecting = matches!(self.awaiting, Await::Name | Await::CallbackConfirm | Await::CallbackNumber | Await::CallbackReadback | Await::Topic);
        if self.flow != Some(Intent::Message) || self.message_id.is_some() || !collecting {
            return;
        }
        if self.c.topic.is_none() && self.c.notes.is_empty() {
            return;
        }
        // Whatever number we failed to get, the caller id is something staff can call back.
        if self.c.callback.is_none() {
            self.c.callback = self.caller_phone.clone();
        }
        if let Err(e) = self.save_message(tools, t) {
            let rec = Recorded::ToolFailure { operation: "take_message".into(), error: e.to_string() };
            self.records.push(rec.clone());
            t.pre.push(Action::Record(rec));
        }
    }

    // ------------------------------------------------------------------ summary

    pub fn summary(&self) -> CallSummary {
        let has = |f: fn(&Recorded) -> bool| self.records.iter().any(f);
        let outcome = if has(|r| matches!(r, Recorded::Booked { .. })) {
            Outcome::Booked
        } else if has(|r| matches!(r, Recorded::Rescheduled { .. })) {
            Outcome::Rescheduled
        } else if has(|r| matches!(r, Recorded::Cancelled { .. })) {
            Outcome::Cancelled
        } else if self.message_id.is_some() {
            Outcome::Message
        } else if self.transfer_target.is_some() && !self.transfer_failed {
            Outcome::Transferred
        } else if self.answered_question {
            Outcome::Info
        } else {
            Outcome::Abandoned
        };
        let name = self.full_name();
        let booked = matches!(outcome, Outcome::Booked | Outcome::Rescheduled);
        let lead = if booked {
            None
        } else {
            let (score, reason) = match self.first_intent {
                Some(Intent::Emergency) => (95, "dental emergency, not booked"),
                Some(Intent::Book) if self.c.new_patient == Some(true) => (85, "new patient wanted to book"),
                Some(Intent::Book) => (70, "wanted to book"),
                Some(Intent::Reschedule) => (50, "wanted to reschedule"),
                Some(Intent::Question) => (35, "asked about the practice"),
                Some(Intent::Message) | Some(Intent::Human) => (30, "asked for staff"),
                _ => (0, ""),
            };
            let score: u8 = if self.emergency { 95 } else { score };
            (score > 0).then(|| Lead { score, reason: if self.emergency { "dental emergency, not booked".into() } else { reason.into() } })
        };
        let notify_staff = self.message_id.is_some()
            || self.transfer_failed
            || self.tool_failed
            || (self.emergency && !booked && !self.transfer_done)
            || lead.as_ref().is_some_and(|l| l.score >= 50);
        let mut text = self.summary_bits.join(" ");
        if text.is_empty() {
            text = match outcome {
                Outcome::Transferred => format!("Transferred to {}.", self.transfer_target.clone().unwrap_or_default()),
                Outcome::Info => "Caller asked questions about the practice.".into(),
                _ => "Caller hung up before anything was done.".into(),
            };
        }
        CallSummary {
            outcome,
            intent: self.first_intent,
            patient_name: (!name.is_empty()).then_some(name),
            appointment_ids: self.appointment_ids.clone(),
            message_id: self.message_id.clone(),
            transfer_target: self.transfer_target.clone(),
            text,
            lead,
            notify_staff,
            records: self.records.clone(),
        }
    }
}

/// The earliest slot of each of the first `max` days, topped up with the next earliest slots.
fn spread_over_days(all: Vec<SlotOffer>, max: usize) -> Vec<SlotOffer> {
    spread(all, max, |a, b| a.start_local.date() != b.start_local.date())
}

/// Up to `max` of `ranked` (best first), preferring ones `apart` from every one already picked,
/// then topping up with the best of the rest. Returned in time order.
fn spread(ranked: Vec<SlotOffer>, max: usize, apart: impl Fn(&SlotOffer, &SlotOffer) -> bool) -> Vec<SlotOffer> {
    let mut picked: Vec<SlotOffer> = Vec::new();
    for s in &ranked {
        if picked.len() < max && picked.iter().all(|p| apart(p, s)) {
            picked.push(s.clone());
        }
    }
    for s in &ranked {
        if picked.len() >= max {
            break;
        }
        if !picked.contains(s) {
            picked.push(s.clone());
        }
    }
    picked.sort_by_key(|s| s.start_local);
    picked
}

/// How offers are said: times alone when they share a day, else day and time.
fn offer_items(slots: &[SlotOffer], today: NaiveDate) -> Vec<String> {
    let same_day = slots.iter().all(|s| s.start_local.date() == slots[0].start_local.date());
    if same_day {
        slots.iter().map(|s| say::time(s.start_local.time())).collect()
    } else {
        slots.iter().map(|s| say::when(s.start_local, today)).collect()
    }
}

/// The first day with openings after a closed or full one, its times spread out; later days only
/// fill up a short list.
fn next_openings(all: Vec<SlotOffer>, max: usize) -> Vec<SlotOffer> {
    let Some(first_day) = all.first().map(|s| s.start_local.date()) else { return all };
    let (day, later): (Vec<SlotOffer>, Vec<SlotOffer>) = all.into_iter().partition(|s| s.start_local.date() == first_day);
    let mut picked = spread_in_day(day, max);
    picked.extend(later.into_iter().take(max.saturating_sub(picked.len())));
    picked
}

/// Resolves dates left to right; "Friday the 13th ... the Monday after" anchors on the date named
/// just before it in the same breath, not on an older one.
fn resolve_in_order(specs: Vec<u::DateSpec>, today: NaiveDate, mut anchor: Option<NaiveDate>) -> Vec<NaiveDate> {
    let mut out = Vec::new();
    for spec in specs {
        if let Some(d) = u::resolve_date(spec, today, anchor) {
            anchor = Some(d);
            out.push(d);
        }
    }
    out
}

/// Up to `max` slots from `ranked` (best first) at least an hour apart where the day allows:
/// "1, 1:15 or 1:30" is one choice said three times. Returned in time order.
fn spread_in_day(ranked: Vec<SlotOffer>, max: usize) -> Vec<SlotOffer> {
    spread(ranked, max, |a, b| (a.start_local - b.start_local).num_minutes().abs() >= 60)
}

/// The one item, if there is exactly one.
fn only<T>(mut it: impl Iterator<Item = T>) -> Option<T> {
    let first = it.next()?;
    it.next().is_none().then_some(first)
}

fn a_phone(p: &Option<PatientRef>) -> Option<String> {
    p.as_ref().and_then(|p| p.phone.clone())
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
}

