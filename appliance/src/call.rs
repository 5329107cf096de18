//! The per-call controller: one tokio task per answered call that wires the voice seam, the
//! engines, turn-taking, the receptionist policy and the store.
//!
//! The loop owns every piece of per-call state, so nothing here is shared or locked. Slow work
//! (transcription, synthesis) runs in spawned tasks that report back over channels; barge-in
//! aborts the speaking task and flushes the RTP queue at once. Caller audio, transcripts and
//! numbers go only to the encrypted store, never to logs (the call is logged by its opaque id).
//!
//! Latency: the VAD runs in its own task (a slow round trip never stalls the loop), and a caller's
//! turn is processed speculatively from the turn-taker's `Pause`, before `EndOfTurn` confirms it:
//! the audio so far is transcribed, the policy runs on a *clone* with read-only tools, and its first
//! sentence is synthesized into a buffer. On `EndOfTurn` for the same audio the transcript is reused
//! and the real policy (real tools: writes happen only here, every turn exactly once) decides; its
//! reply plays from the buffer when it is the one prepared. Speech after the `Pause` discards it all.

use std::time::{Duration, Instant};

use fd_models::client::{AsrClient, GenerateOpts, LlmClient, TranscribeOpts, TtsClient, VadClient};
use fd_models::protocol::ChatMessage;
use fd_receptionist::LlmReading;
use fd_receptionist::{Action, CallContext, Event, Receptionist, Recorded};
use fd_store::{CallEnd, Direction, NewCall, Speaker, Store, Turn};
use fd_voice::endpoint::{CallEvent, CallHandle, IncomingCall};
use fd_voice::turn::{TurnConfig, TurnEvent, TurnTaker, UtteranceBuffer};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::recording::Recorder;
use crate::tools::{practice_facts, ReadOnlyTools, StoreTools};

/// What every call needs; cheap to clone into each call task.
#[derive(Clone)]
pub struct CallDeps {
    pub data_dir: std::path::PathBuf,
    pub clock: Clock,
    pub asr: AsrClient,
    pub llm: LlmClient,
    pub tts: TtsClient,
    pub vad: VadClient,
    /// The slower recogniser that re-hears turns carrying a name, if the bundle has one.
    pub names: Option<AsrClient>,
    /// Real name spellings from the bundle, if it has them (read once at start).
    pub spellings: Option<std::sync::Arc<fd_receptionist::spellings::NameSpellings>>,
    pub turn: TurnConfig,
}

const RATE: u32 = 16_000;

/// A turn this long that transcribes to nothing was speech we did not make out, not noise.
const UNHEARD_SPEECH: Duration = Duration::from_millis(800);

/// Speech that starts this soon after the reply to a turn became audible (or before) continues
/// that turn: the caller had paused between sentences, not finished ("Today if you can." … "My
/// name is Kevin Brooks."), and cannot be answering a reply they have heard a few syllables of.
/// The reply is withdrawn and the policy hears both parts as one turn. A caller who resumes
/// after a pause of up to about a second lands inside it; one who answers what they heard
/// ("Oh, then the Monday after", a second into "Sorry, we're closed on Friday") does not.
const CONTINUATION_WINDOW: Duration = Duration::from_millis(600);

/// Silence put between an answered turn's audio and its continuation (the bot's voice between
/// them, or its echo, is not the caller's).
const CONTINUATION_GAP: Duration = Duration::from_millis(300);

/// A turn the policy answered with words alone (nothing written, no transfer, no hang-up), kept
/// until the reply has played long enough that the caller cannot merely be going on with it.
struct Answered {
    /// The policy as it was before the turn: restored if the caller goes on.
    before: Receptionist,
    asked_digits: bool,
    /// The turn's audio (carried into the next turn if the caller goes on).
    audio: Vec<i16>,
    /// When the reply's first audio went out.
    reply_audible: Option<Instant>,
    /// Its name being re-heard: a stale result for a turn withdrawn.
    rehearing: Option<JoinHandle<()>>,
    /// Its row in the transcript: rewritten with the whole turn if the caller goes on.
    caller_row: Option<i64>,
}

/// The caller, whose speech began at `caller_onset`, went on with their turn rather than
/// answering the reply (audible since `reply_audible`, or not yet at `now`): see
/// [`CONTINUATION_WINDOW`].
fn continues_turn(reply_audible: Option<Instant>, caller_onset: Option<Instant>, now: Instant) -> bool {
    caller_onset.is_some_and(|o| o <= reply_audible.unwrap_or(now) + CONTINUATION_WINDOW)
}

/// The current turn's audio from `start` to `end`, after what is carried over from an answered
/// turn the caller went on with.
fn turn_audio(carried: &[i16], utter: &UtteranceBuffer, start: Instant, end: Instant) -> Vec<i16> {
    let now = utter.extract(start, end);
    if carried.is_empty() {
        return now;
    }
    let gap = (CONTINUATION_GAP.as_millis() as usize) * RATE as usize / 1000;
    let mut out = Vec::with_capacity(carried.len() + gap + now.len());
    out.extend_from_slice(carried);
    out.resize(carried.len() + gap, 0);
    out.extend(now);
    out
}

fn samples_duration(n: usize) -> Duration {
    Duration::from_micros(n as u64 * 1_000_000 / RATE as u64)
}


/// Pre-synthesizes what calls say word for word: the practice's greeting and farewell first, then
/// [`fd_receptionist::FIXED_SENTENCES`], one request at a time (so a call's own synthesis never
/// waits behind the whole list). Failures only cost speed.
pub async fn preload_fixed_speech(tts: &TtsClient, facts: &fd_receptionist::PracticeFacts) {
    let practice = [facts.greeting.clone(), fd_receptionist::farewell(&facts.name)];
    let fixed = fd_receptionist::FIXED_SENTENCES.iter().map(|s| (*s).to_owned());
    for text in practice.into_iter().chain(fixed) {
        if let Err(e) = tts.preload(&[text], RATE).await {
            tracing::warn!(error = %e, "could not pre-synthesize a fixed phrase");
            return;
        }
    }
}

/// A finished transcription of one caller turn (text may be empty: nothing intelligible).
struct Heard {
    text: String,
    asr_ms: u64,
    llm_ms: Option<u64>,
    reading: Option<LlmReading>,
    utterance_end: Instant,
    /// A speculative run found the ASR queue full and gave up (extra work is what fills it); the
    /// turn, if this becomes it, is transcribed again by a run that waits for room.
    no_room: bool,
}

/// Messages from the call's helper tasks back to its loop.
enum Internal {
    /// A transcription finished; stale unless `generation` is the loop's current one.
    Heard { heard: Box<Heard>, generation: u64 },
    /// The first audio of a reply was queued for RTP.
    FirstAudio { at: Instant },
    /// Reply audio queued to play from `at` (for the call recording).
    BotAudio { at: Instant, pcm: Vec<i16> },
    /// All audio of a reply is queued; it will have played out at `until`.
    Queued { until: Instant },
    /// The engine failed; the reply could not be spoken.
    SpeakFailed,
    /// Caller turn `turn`, which carried a name, as the names recogniser heard it.
    NameReheard { turn: u64, text: String },
}

struct Speaking {
    task: JoinHandle<()>,
    text: String,
    started: Instant,
    logged: bool,
    interruptible: bool,
    /// When the queued audio will have played out (known once synthesis finished).
    until: Option<Instant>,
    /// Actions to run once this reply has been heard (transfer, hang-up).
    then: Vec<Action>,
    /// Synthesized ahead of the turn's end (a speculation that held).
    prepared: bool,
}

/// A reply synthesized ahead into a buffer; it plays only once `go` fires (dropping `go` ends it).
struct Prepared {
    task: JoinHandle<()>,
    text: String,
    go: oneshot::Sender<()>,
}

/// A caller turn processed from a `Pause`, before the turn-taker confirmed it over.
struct Speculation {
    generation: u64,
    /// The audio transcribed: `start` to `last_voice`. It is the turn only if `EndOfTurn` ends at
    /// `last_voice` too (no speech since).
    start: Instant,
    last_voice: Instant,
    /// `EndOfTurn` came for exactly this audio; the transcript is still on its way.
    confirmed: bool,
    heard: Option<Heard>,
    prepared: Option<Prepared>,
    transcriber: JoinHandle<()>,
}

impl Speculation {
    fn abort(self) {
        self.transcriber.abort();
        if let Some(p) = self.prepared {
            p.task.abort();
        }
    }
}

/// Counters of speculative turn processing, logged at the end of each call.
#[derive(Default)]
struct SpecStats {
    /// Pauses that started a speculative transcription.
    started: u32,
    /// Dropped because the caller went on speaking.
    discarded: u32,
    /// Confirmed by the end of the turn (no second transcription).
    confirmed: u32,
    /// Replies synthesized ahead.
    prepared: u32,
    /// Prepared replies that were the real reply and played.
    played: u32,
    /// Prepared replies the real policy did not say.
    mismatched: u32,
    /// Answered turns the caller went on with (reply withdrawn, both parts heard as one).
    continued: u32,
}

/// Per-turn timings for the call record (ms since the end of the caller's speech).
#[derive(Default, Clone, Copy)]
struct Timing {
    utterance_end: Option<Instant>,
    asr_ms: Option<i64>,
    llm_ms: Option<i64>,
}

pub async fn run(call: IncomingCall, deps: CallDeps) {
    let id = call.call_id;
    tracing::info!(call = id, "call answered");
    if let Err(e) = run_inner(call, &deps).await {
        tracing::error!(call = id, error = %e, "call ended with an error");
    }
    tracing::info!(call = id, "call finished");
}

async fn run_inner(mut call: IncomingCall, deps: &CallDeps) -> anyhow::Result<()> {
    let mut store = Store::open(&deps.data_dir)?;
    let clock = deps.clock.clone();
    store.set_clock(move || clock.now());
    let caller_id = call.caller.user.clone().filter(|u| !u.is_empty());
    // A number staff can call back ("anonymous" and SIP names are not).
    let callback_number = caller_id.clone().filter(|u| u.trim_start_matches('+').len() >= 7 && u.trim_start_matches('+').chars().all(|c| c.is_ascii_digit()));
    let db_call = store.start_call(&NewCall { direction: Direction::Inbound, caller: caller_id.clone(), callee: None })?;
    store.answer_call(db_call)?;
    let facts = practice_facts(&store)?;
    // Whisper's prompt follows what the receptionist just asked (a number, a date of birth, ...).
    let prompts = RecognizerPrompts::new(&facts);
    let started = Instant::now();
    let now = || deps.clock.now();
    let mut rec = Recorder::new(started, std::time::Duration::from_secs(30 * 60));

    let mut policy = Receptionist::new(
        facts,
        CallContext { call_id: format!("call-{db_call}"), caller_id, started_at: now() },
        fd_receptionist::Config::default(),
    )?;
    if let Some(s) = &deps.spellings {
        policy = policy.with_spellings(s.clone());
    }
    let mut turn = TurnTaker::new(deps.turn.clone(), Instant::now());
    let mut utter = UtteranceBuffer::default_16k();
    let (vad_tx, mut prob_rx, vad_task) = spawn_vad(&deps.vad, call.call_id).await;

    let (itx, mut irx) = mpsc::channel::<Internal>(16);
    // The turn's own transcription (not a speculative one): it waits for room in the ASR queue.
    let hear_turn = |audio: Vec<i16>, end: Instant, generation: u64, policy: &Receptionist| {
        spawn_transcriber(deps, prompts.opts(policy), audio, end, generation, true, itx.clone());
    };
    let mut speaking: Option<Speaking> = None;
    let mut pending: std::collections::VecDeque<Action> = std::collections::VecDeque::new();
    let mut timing = Timing::default();
    // A caller turn can span several VAD utterances (a pause between sentences, or while reading
    // digits). Until the reply starts playing, new speech extends the turn: the in-flight
    // transcription is discarded (generation bump) and the whole turn is transcribed again.
    let mut turn_start: Option<Instant> = None;
    let mut generation: u64 = 0;
    let mut spec: Option<Speculation> = None;
    // Whether the question now asked is answered in digits (the turn-taker waits longer).
    let mut asked_digits = false;
    // A confirmed turn's transcript, with the reply prepared for it (if any), to act on.
    let mut confirmed: Option<(Heard, Option<Prepared>)> = None;
    // The prepared reply of the turn being answered: used by the first Say if the text matches.
    let mut ready: Option<Prepared> = None;
    let mut stats = SpecStats::default();
    // The last turn answered with words alone, while the caller may yet go on with it.
    let mut answered: Option<Answered> = None;
    // The audio of an answered turn the caller went on with: it opens the current turn.
    let mut carried: Vec<i16> = Vec::new();
    // That answered turn's transcript row, to be rewritten with the whole turn.
    let mut revising: Option<i64> = None;
    // Where the caller's latest utterance began.
    let mut caller_onset: Option<Instant> = None;
    let mut hangup_requested = false;
    let mut caller_gone = false;
    let mut transferred = false;

    pending.extend(policy.start(now()));

    'call: loop {
        // Run queued actions until one needs to wait for the bot to finish speaking.
        while speaking.is_none() {
            let Some(action) = pending.pop_front() else { break };
            match action {
                Action::Say { text, interruptible, expect_digits } => {
                    asked_digits = expect_digits;
                    turn.expect_digits(expect_digits);
                    turn.bot_started(Instant::now(), !interruptible);
                    let (task, prepared) = match ready.take() {
                        Some(p) if p.text == text => {
                            stats.played += 1;
                            let _ = p.go.send(());
                            (p.task, true)
                        }
                        other => {
                            if let Some(p) = other {
                                stats.mismatched += 1;
                                p.task.abort();
                            }
                            (spawn_speaker(deps.tts.clone(), call.handle.clone(), text.clone(), itx.clone(), None), false)
                        }
                    };
                    // Whatever follows a Say (transfer, hang-up) waits until it has been heard.
                    let then: Vec<Action> = pending.drain(..).collect();
                    speaking = Some(Speaking { task, text, started: Instant::now(), logged: false, interruptible, until: None, then, prepared });
                }
                Action::Record(r) => log_recorded(&r),
                Action::Transfer { uri, .. } => {
                    if let Err(e) = call.handle.transfer(&uri).await {
                        tracing::warn!(call = call.call_id, error = %e, "transfer could not be started");
                        let more = handle_event(&mut policy, Event::TransferFailed, &mut store, db_call, deps);
                        pending.extend(more);
                    }
                }
                Action::Hangup => {
                    hangup_requested = true;
                }
            }
        }
        // The real reply did not start with what was prepared: that audio is never played.
        if let Some(p) = ready.take() {
            p.task.abort();
        }
        if hangup_requested && speaking.is_none() && pending.is_empty() {
            call.handle.hangup().await;
            break 'call;
        }

        let deadline = turn.poll_timeout().map(tokio::time::Instant::from_std);
        let speak_done = speaking.as_ref().and_then(|s| s.until).map(tokio::time::Instant::from_std);
        tokio::select! {
            ev = call.events.recv() => {
                let Some(ev) = ev else { caller_gone = true; break 'call };
                match ev {
                    CallEvent::Audio(frame) => {
                        let t = Instant::now();
                        rec.caller(&frame);
                        utter.push(t, &frame);
                        match &vad_tx {
                            // Full means the VAD is over a second behind: drop audio rather than
                            // let the backlog (and the turn-taking lag) grow.
                            Some(v) => {
                                let _ = v.try_send((t, frame));
                            }
                            // No VAD: every frame is silence (the idle timer still runs).
                            None => turn.on_vad(t, 0.0),
                        }
                    }
                    CallEvent::Dtmf(d) => turn.on_dtmf(Instant::now(), d),
                    CallEvent::RemoteHangup | CallEvent::MediaTimeout => {
                        caller_gone = true;
                        break 'call;
                    }
                    CallEvent::TransferResult { ok, .. } => {
                        let ev = if ok { Event::TransferSucceeded } else { Event::TransferFailed };
                        transferred |= ok;
                        pending.extend(handle_event(&mut policy, ev, &mut store, db_call, deps));
                        if ok {
                            break 'call;
                        }
                    }
                    CallEvent::Hold(_) => {}
                }
            }
            Some((t, p)) = prob_rx.recv() => turn.on_vad(t, p),
            Some(msg) = irx.recv() => match msg {
                Internal::Heard { generation: g, .. } if g != generation => {}
                Internal::Heard { heard, generation: g } => match spec.as_mut().filter(|s| s.generation == g && !s.confirmed) {
                    // Ahead of the turn's end: prepare the reply, commit nothing.
                    Some(s) => {
                        let idle = speaking.is_none() && pending.is_empty();
                        if idle && !heard.text.trim().is_empty() {
                            if let Some(text) = speculate_reply(&policy, &heard, &mut store, db_call, deps) {
                                let (go, gate) = oneshot::channel();
                                let task = spawn_speaker(deps.tts.clone(), call.handle.clone(), text.clone(), itx.clone(), Some(gate));
                                s.prepared = Some(Prepared { task, text, go });
                                stats.prepared += 1;
                            }
                        }
                        // A whole phone number or date of birth: no more digit groups to wait
                        // for, the turn ends at the usual silence (and sooner than 1.2 s).
                        if turn.expecting_digits() && policy.answer_is_whole(&heard.text) {
                            turn.expect_digits(false);
                        }
                        s.heard = Some(*heard);
                    }
                    None => match spec.take() {
                        // A confirmed speculation that found no room: the turn's own run, waiting.
                        Some(s) if heard.no_room => {
                            let audio = turn_audio(&carried, &utter, s.start, s.last_voice);
                            generation += 1;
                            hear_turn(audio, s.last_voice, generation, &policy);
                        }
                        // A confirmed speculation (its reply was not prepared in time) or a turn
                        // transcribed after its end.
                        _ => confirmed = Some((*heard, None)),
                    },
                },
                Internal::FirstAudio { at } => {
                    if let Some(a) = answered.as_mut() {
                        a.reply_audible.get_or_insert(at);
                    }
                    if let Some(s) = speaking.as_mut().filter(|s| !s.logged) {
                        s.logged = true;
                        let tts_ms = at.saturating_duration_since(s.started).as_millis() as i64;
                        let first = timing.utterance_end.take().map(|end| at.saturating_duration_since(end).as_millis() as i64);
                        if let Some(ms) = first {
                            // Figures only: no text, no caller data.
                            tracing::info!(voice_to_voice_ms = ms, asr_ms = timing.asr_ms.unwrap_or(-1), llm_ms = timing.llm_ms.unwrap_or(-1), tts_ms, prepared = s.prepared, "turn latency");
                        }
                        let t = Turn {
                            speaker: Speaker::Receptionist,
                            text: s.text.clone(),
                            offset_ms: s.started.saturating_duration_since(started).as_millis() as i64,
                            asr_ms: timing.asr_ms.take(),
                            llm_ms: timing.llm_ms.take(),
                            tts_ms: Some(tts_ms),
                            first_rtp_ms: first,
                        };
                        if let Err(e) = store.add_turn(db_call, &t) {
                            tracing::error!(error = %e, "could not store a transcript turn");
                        }
                    }
                }
                Internal::BotAudio { at, pcm } => rec.bot(at, &pcm),
                Internal::Queued { until } => {
                    if let Some(s) = speaking.as_mut() { s.until = Some(until); }
                }
                Internal::NameReheard { turn: n, text } => {
                    pending.extend(handle_event(&mut policy, Event::NameReheard { turn: n, text }, &mut store, db_call, deps));
                }
                Internal::SpeakFailed => {
                    if let Some(s) = speaking.take() {
                        add_turn(&mut store, db_call, Speaker::Receptionist, &s.text, started, &Timing::default());
                        turn.bot_finished(Instant::now());
                        pending.extend(s.then);
                    }
                }
            },
            _ = sleep_until(speak_done) => {
                if let Some(s) = speaking.take() {
                    turn.bot_finished(Instant::now());
                    pending.extend(s.then);
                }
            }
            _ = sleep_until(deadline) => {
                turn.handle_timeout(Instant::now());
            }
        }

        while let Some(te) = turn.poll_event() {
            match te {
                TurnEvent::SpeechStarted { at } => {
                    caller_onset = Some(at);
                    if turn_start.is_some() {
                        // The caller went on before we answered: drop the pending transcription.
                        generation += 1;
                        if let Some(s) = spec.take() {
                            s.abort();
                        }
                    }
                }
                TurnEvent::Pause { utterance_start, last_voice } => {
                    if let Some(s) = spec.take() {
                        s.abort();
                    }
                    // Only while nothing else is queued to say: the reply would wait anyway. Other
                    // callers' work does not hold it back: any finished turn preempts a speculative
                    // run in the engine. Speculating only on an idle recogniser was measured worse
                    // (4 G.722 callers, p50 of 1093–1284 ms over three runs against 846–1176 over
                    // five), and so was waiting for it to be free (1271 against 1099 pooled).
                    if speaking.is_none() && pending.is_empty() && !hangup_requested {
                        let start = turn_start.unwrap_or(utterance_start);
                        let audio = turn_audio(&carried, &utter, start, last_voice);
                        generation += 1;
                        let transcriber = spawn_transcriber(deps, prompts.opts(&policy), audio, last_voice, generation, false, itx.clone());
                        stats.started += 1;
                        spec = Some(Speculation { generation, start, last_voice, confirmed: false, heard: None, prepared: None, transcriber });
                    }
                }
                TurnEvent::Resumed { .. } => {
                    // The caller went on after all: back to waiting for more digit groups.
                    turn.expect_digits(asked_digits);
                    if let Some(s) = spec.take() {
                        stats.discarded += 1;
                        generation += 1;
                        s.abort();
                    }
                }
                TurnEvent::EndOfTurn { utterance_start, utterance_end } => {
                    let start = *turn_start.get_or_insert(utterance_start);
                    match spec.take() {
                        // The caller said nothing more since the pause: the speculation is the turn.
                        Some(mut s) if s.generation == generation && s.start == start && s.last_voice == utterance_end => {
                            stats.confirmed += 1;
                            match s.heard.take() {
                                Some(h) if h.no_room => {
                                    let audio = turn_audio(&carried, &utter, start, utterance_end);
                                    generation += 1;
                                    hear_turn(audio, utterance_end, generation, &policy);
                                }
                                Some(h) => confirmed = Some((h, s.prepared.take())),
                                None => {
                                    s.confirmed = true;
                                    spec = Some(s);
                                }
                            }
                        }
                        other => {
                            if let Some(s) = other {
                                s.abort();
                            }
                            let audio = turn_audio(&carried, &utter, start, utterance_end);
                            generation += 1;
                            hear_turn(audio, utterance_end, generation, &policy);
                        }
                    }
                }
                TurnEvent::BargeIn => {
                    if let Some(s) = speaking.take_if(|s| s.interruptible) {
                        s.task.abort();
                        call.handle.flush();
                        rec.bot_cut(Instant::now());
                        turn.bot_finished(Instant::now());
                        match answered.take().filter(|a| continues_turn(a.reply_audible, caller_onset, Instant::now())) {
                            // Not an answer to the reply: the rest of the last turn. The policy
                            // forgets that turn and hears it again with what follows.
                            Some(a) => {
                                policy = a.before;
                                asked_digits = a.asked_digits;
                                turn.expect_digits(a.asked_digits);
                                if let Some(h) = a.rehearing {
                                    h.abort();
                                }
                                carried = a.audio;
                                revising = a.caller_row;
                                pending.clear();
                                stats.continued += 1;
                            }
                            // Actions after an interrupted Say (e.g. a hang-up) are dropped; the
                            // policy decides again from what the caller says next. Commits
                            // already happened.
                            None => pending.extend(handle_event(&mut policy, Event::BargeIn, &mut store, db_call, deps)),
                        }
                    }
                }
                // The policy has moved on from the answered turn: it can no longer be withdrawn.
                TurnEvent::IdlePrompt => {
                    answered = None;
                    pending.extend(handle_event(&mut policy, Event::IdlePrompt, &mut store, db_call, deps));
                }
                TurnEvent::IdleHangup => {
                    answered = None;
                    pending.extend(handle_event(&mut policy, Event::IdleTimeout, &mut store, db_call, deps));
                }
                TurnEvent::TransferToFrontDesk => {
                    answered = None;
                    pending.extend(handle_event(&mut policy, Event::Dtmf('0'), &mut store, db_call, deps));
                }
                TurnEvent::Digit(d) => {
                    answered = None;
                    pending.extend(handle_event(&mut policy, Event::Dtmf(d), &mut store, db_call, deps));
                }
            }
        }

        // A confirmed caller turn: the real policy, real tools, exactly once per turn.
        if let Some((heard, prepared)) = confirmed.take() {
            // A new turn: the one before can no longer be withdrawn.
            answered = None;
            let revise = revising.take();
            let Heard { text, asr_ms, llm_ms, reading, utterance_end, .. } = heard;
            let began = turn_start.take();
            let spoken = began.map(|s| utterance_end.saturating_duration_since(s)).unwrap_or_default();
            timing = Timing { utterance_end: Some(utterance_end), asr_ms: Some(asr_ms as i64), llm_ms: llm_ms.map(|v| v as i64) };
            if text.trim().is_empty() && spoken < UNHEARD_SPEECH {
                // A cough or a click: nothing to answer.
                turn.resume_listening(Instant::now());
                if let Some(p) = prepared {
                    p.task.abort();
                }
            } else if text.trim().is_empty() {
                // Real speech we could not make out (or the recogniser failed): say so rather than
                // leave the caller waiting in silence.
                if let Some(p) = prepared {
                    p.task.abort();
                }
                let ev = Event::CallerSaid { text, asr_confidence: None, understanding: None };
                pending.extend(handle_event(&mut policy, ev, &mut store, db_call, deps));
            } else {
                // A turn heard again whole replaces its withdrawn first part in the transcript.
                let caller_row = match revise {
                    Some(id) => {
                        if let Err(e) = store.revise_turn(db_call, id, &text, timing.asr_ms) {
                            tracing::error!(error = %e, "could not store a transcript turn");
                        }
                        Some(id)
                    }
                    None => add_turn(&mut store, db_call, Speaker::Caller, &text, started, &timing),
                };
                let ev = Event::CallerSaid { text, asr_confidence: None, understanding: reading };
                let before = policy.clone();
                let actions = handle_event(&mut policy, ev, &mut store, db_call, deps);
                let audio = began.map(|from| turn_audio(&carried, &utter, from, utterance_end)).unwrap_or_default();
                let rehearing = match (&deps.names, policy.name_to_rehear()) {
                    (Some(names), Some(n)) if !audio.is_empty() => Some(spawn_rehearing(names.clone(), prompts.names_opts(), audio.clone(), n, itx.clone())),
                    _ => None,
                };
                let words_only = actions.iter().all(|a| matches!(a, Action::Say { interruptible: true, .. }));
                answered = words_only.then(|| Answered { before, asked_digits, audio, reply_audible: None, rehearing, caller_row });
                if !actions.iter().any(|a| matches!(a, Action::Say { .. })) {
                    turn.resume_listening(Instant::now());
                }
                if let Some(old) = std::mem::replace(&mut ready, prepared) {
                    old.task.abort();
                }
                pending.extend(actions);
            }
            carried.clear();
        }
    }

    if let Some(s) = speaking.take() {
        s.task.abort();
    }
    if let Some(s) = spec.take() {
        s.abort();
    }
    // Figures only: how well speculation pays off on this line (tuning `speculate_after`).
    tracing::info!(
        call = call.call_id,
        started = stats.started,
        discarded = stats.discarded,
        confirmed = stats.confirmed,
        prepared = stats.prepared,
        played = stats.played,
        mismatched = stats.mismatched,
        continued = stats.continued,
        "speculative turns"
    );
    if let Some(p) = ready.take() {
        p.task.abort();
    }
    if caller_gone && !transferred {
        let _ = handle_event(&mut policy, Event::CallerHungUp, &mut store, db_call, deps);
    }
    // Closing the frame channel (and the probabilities', in case the task waits to hand one over)
    // ends the VAD task, which closes its stream.
    drop(vad_tx);
    drop(prob_rx);
    if let Some(t) = vad_task {
        if tokio::time::timeout(Duration::from_secs(2), t).await.is_err() {
            tracing::warn!(call = call.call_id, "the VAD stream did not close in time");
        }
    }
    if !rec.is_empty() {
        // Inside the encrypted database, like every other piece of PHI.
        if let Err(e) = store.save_recording(db_call, "wav", &rec.wav()) {
            tracing::error!(error = %e, "could not store the call recording");
        }
    }
    finish_call(&mut store, db_call, &policy, callback_number.as_deref())?;
    Ok(())
}

async fn sleep_until(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

fn handle_event(policy: &mut Receptionist, ev: Event, store: &mut Store, db_call: i64, deps: &CallDeps) -> Vec<Action> {
    let now = deps.clock.now();
    // The store is local SQLite: milliseconds. block_in_place keeps the runtime's other tasks
    // (other calls' audio) running on the second worker meanwhile.
    tokio::task::block_in_place(|| {
        let mut tools = StoreTools::new(store, db_call);
        policy.handle(ev, now, &mut tools)
    })
}

/// The policy's reply to `heard` on a throw-away copy of the receptionist, with read-only tools:
/// the text of its first `Say`, or `None` when it would have written (book, cancel, reschedule,
/// message: the real turn does that, and its reply depends on the outcome) or says nothing.
fn speculate_reply(policy: &Receptionist, heard: &Heard, store: &mut Store, db_call: i64, deps: &CallDeps) -> Option<String> {
    let mut copy = policy.clone();
    let now = deps.clock.now();
    let ev = Event::CallerSaid { text: heard.text.clone(), asr_confidence: None, understanding: heard.reading.clone() };
    tokio::task::block_in_place(|| {
        let mut tools = ReadOnlyTools::new(StoreTools::new(store, db_call));
        let actions = copy.handle(ev, now, &mut tools);
        if tools.write_refused() {
            return None;
        }
        actions.into_iter().find_map(|a| match a {
            Action::Say { text, .. } => Some(text),
            _ => None,
        })
    })
}

/// The call's VAD in its own task: frames in over a bounded channel, each frame's speech
/// probability out, stamped with the frame's arrival time. Silero judges 32 ms windows, not our
/// 20 ms frames: a frame gets the probability of the window its last sample falls in, once that
/// window is judged. (Applying "the latest probability" when a frame arrives credited its voice to
/// a later frame, so every pause, end of turn and reply started a frame or two late.) `None` sender
/// when the VAD is unavailable (every frame is then silence: the call still answers DTMF and idles
/// out).
async fn spawn_vad(vad: &VadClient, call_id: u64) -> (Option<mpsc::Sender<(Instant, Vec<i16>)>>, mpsc::Receiver<(Instant, f32)>, Option<JoinHandle<()>>) {
    // About a second of 20 ms frames each way.
    let (prob_tx, prob_rx) = mpsc::channel::<(Instant, f32)>(50);
    let stream = match vad.open(RATE).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(call = call_id, error = %e, "the VAD is unavailable: the caller's speech will not be heard");
            return (None, prob_rx, None);
        }
    };
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<i16>)>(50);
    let task = tokio::spawn(async move {
        let mut windows = VadWindows::new(stream.frame_samples());
        'frames: while let Some((t, pcm)) = rx.recv().await {
            windows.push(t, &pcm);
            while let Some(chunk) = windows.next_window() {
                let p = match stream.push(&chunk).await {
                    Ok(p) => p.into_iter().fold(0.0, f32::max),
                    Err(_) => 0.0,
                };
                for t in windows.judged() {
                    if prob_tx.send((t, p)).await.is_err() {
                        break 'frames;
                    }
                }
            }
        }
        let _ = stream.close().await;
    });
    (Some(tx), prob_rx, Some(task))
}

/// Cuts the caller's 20 ms frames into the VAD's windows and says which frames a judged window
/// settles: those whose last sample falls in it.
struct VadWindows {
    window: usize,
    buf: Vec<i16>,
    /// Frames not yet judged: arrival time and the sample count at their end.
    waiting: std::collections::VecDeque<(Instant, u64)>,
    received: u64,
    judged: u64,
}

impl VadWindows {
    fn new(window: usize) -> Self {
        let window = window.max(1);
        VadWindows { window, buf: Vec::with_capacity(window * 2), waiting: Default::default(), received: 0, judged: 0 }
    }

    fn push(&mut self, at: Instant, pcm: &[i16]) {
        self.buf.extend_from_slice(pcm);
        self.received += pcm.len() as u64;
        self.waiting.push_back((at, self.received));
    }

    /// The next whole window, if one is buffered; the frames it settles follow from `judged`.
    fn next_window(&mut self) -> Option<Vec<i16>> {
        (self.buf.len() >= self.window).then(|| {
            self.judged += self.window as u64;
            self.buf.drain(..self.window).collect()
        })
    }

    /// Arrival times of the frames the last window settled, oldest first.
    fn judged(&mut self) -> impl Iterator<Item = Instant> + '_ {
        let judged = self.judged;
        std::iter::from_fn(move || self.waiting.front().is_some_and(|&(_, end)| end <= judged).then(|| self.waiting.pop_front().map(|(t, _)| t)).flatten())
    }
}

/// The recogniser prompts of this call's practice, one per kind of expected answer.
struct RecognizerPrompts {
    anything: String,
    phone: String,
    dob: String,
    when: String,
    /// "at 8" … "at 4": for a turn whose time was begun but not made out (shared by every
    /// transcription of the call; copied only into a decoding that uses it).
    clock: std::sync::Arc<[String]>,
}

impl RecognizerPrompts {
    fn new(facts: &fd_receptionist::PracticeFacts) -> Self {
        use fd_receptionist::{recognizer_prompt, Expecting};
        RecognizerPrompts {
            anything: recognizer_prompt(facts, Expecting::Anything),
            phone: recognizer_prompt(facts, Expecting::PhoneNumber),
            dob: recognizer_prompt(facts, Expecting::DateOfBirth),
            when: recognizer_prompt(facts, Expecting::DayOrTime),
            clock: fd_receptionist::clock_phrases(facts).into(),
        }
    }

    /// How the names recogniser hears a turn again: the general prompt (the practice's words), no
    /// phrase hints.
    fn names_opts(&self) -> TranscribeOpts {
        TranscribeOpts { vocabulary_prompt: Some(self.anything.clone()), ..Default::default() }
    }

    /// How to transcribe the caller's next turn: the prompt for what the policy's last question
    /// asks for, and the words its answer is likely to hold (the offered times), with the hours
    /// to listen for if a time is begun but not made out.
    fn opts(&self, policy: &Receptionist) -> Decoding {
        use fd_receptionist::Expecting;
        let prompt = match policy.expecting() {
            Expecting::PhoneNumber => &self.phone,
            Expecting::DateOfBirth => &self.dob,
            Expecting::DayOrTime => &self.when,
            Expecting::Anything | Expecting::Name => &self.anything,
        };
        Decoding {
            opts: TranscribeOpts { vocabulary_prompt: Some(prompt.clone()), ..Default::default() },
            offers: policy.likely_phrases(),
            clock: self.clock.clone(),
            at_confirmation: policy.awaits_confirmation(),
        }
    }
}

/// How one caller turn is transcribed: once plainly, and again with phrase hints only when the
/// rules cannot read the first transcript (see [`spawn_transcriber`]).
struct Decoding {
    opts: TranscribeOpts,
    /// What a pick among offered times is likely to contain; empty unless the caller is picking.
    offers: Vec<String>,
    /// The practice's hours, for a day named with a time begun but not made out.
    clock: std::sync::Arc<[String]>,
    /// The caller is answering a read-back: a contradictory answer is heard again by the names
    /// recogniser (see [`second_opinion_stands`]).
    at_confirmation: bool,
}

/// Transcribes a turn that carried a name again, with the names recogniser, in the background
/// (the reply to the turn does not wait for it). It never waits for room: when that engine is
/// busy, this name is simply not re-heard.
fn spawn_rehearing(names: AsrClient, opts: TranscribeOpts, audio: Vec<i16>, turn: u64, tx: mpsc::Sender<Internal>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let t0 = Instant::now();
        match names.transcribe(&audio, &opts).await {
            Ok(t) if !t.text.trim().is_empty() => {
                // Figures only: a name that comes back after the read-back is not used.
                tracing::info!(turn, ms = t0.elapsed().as_millis() as u64, "name re-heard");
                let _ = tx.send(Internal::NameReheard { turn, text: t.text }).await;
            }
            Ok(_) => {}
            // Figures and errors only, never the words.
            Err(e) => tracing::info!(error = %e, "a name could not be re-heard"),
        }
    })
}

fn spawn_transcriber(
    deps: &CallDeps,
    decoding: Decoding,
    audio: Vec<i16>,
    utterance_end: Instant,
    generation: u64,
    wait_for_room: bool,
    tx: mpsc::Sender<Internal>,
) -> JoinHandle<()> {
    let (asr, llm, names) = (deps.asr.clone(), deps.llm.clone(), deps.names.clone());
    tokio::spawn(async move {
        let t0 = Instant::now();
        // First without the phrase hints: a hint can pull a word the caller did not say into a
        // turn ("Okay, what do you have that afternoon?" came out "1, 2, have met after noon" while
        // 1 PM was on offer). Only a turn the rules cannot read is decoded again with them
        // ("I look like please" → "9 o'clock, please"): a second ~400 ms instead of a re-ask.
        let Decoding { mut opts, offers: hints, clock, at_confirmation } = decoding;
        // Offers are hinted only while the caller picks among offered times, where the policy
        // reads a bare number as a time ("9." is an answer there), so the rules here must too.
        let picking_time = !hints.is_empty();
        let wait = if wait_for_room { ASR_BUSY_WAIT } else { Duration::ZERO };
        // A speculative run gives way to any caller's finished turn (the engine answers `busy`):
        // if this turn ends after all, it gets its own run then.
        opts.speculative = !wait_for_room;
        let Some(mut text) = transcribe_or_busy(&asr, &audio, &opts, wait).await else {
            let heard = Heard { text: String::new(), asr_ms: 0, llm_ms: None, reading: None, utterance_end, no_room: true };
            let _ = tx.send(Internal::Heard { heard: Box::new(heard), generation }).await;
            return;
        };
        // "Yes, not correct" for "yes, that's correct" (tiny.en on 8 kHz calls, now and then on
        // wideband ones) would cost the caller a re-ask at the read-back. The larger names
        // recogniser hears such a turn again first (about a second, and only on these turns).
        if at_confirmation && is_mixed_yes_no(&text) {
            if let Some(names) = &names {
                if let Some(again) = transcribe_or_busy(names, &audio, &opts, wait).await {
                    if second_opinion_stands(&again) {
                        text = again;
                    }
                }
            }
        }
        let mut unreadable = !text.trim().is_empty() && rules_find_nothing(&text, picking_time);
        if unreadable && picking_time {
            opts.bias = hints;
            let hinted = transcribe_or_busy(&asr, &audio, &opts, wait).await.unwrap_or_default();
            if !rules_find_nothing(&hinted, picking_time) {
                text = hinted;
                unreadable = false;
            }
        } else if !unreadable && !picking_time && clock_worth_hinting(&text) {
            // "Tuesday March tenth at nine" came out "Tuesday March 10th at I.n." (over a G.722
            // call; base heard "at ION"), and the caller was offered three times they had not
            // asked for. Favouring "at 8" … "at 4" gave "Tuesday March 10 at 9."; the same hints
            // left every time that had been heard right as it was (scripted-caller lines, 16 kHz).
            opts.bias = clock.to_vec();
            if let Some(hinted) = transcribe_or_busy(&asr, &audio, &opts, wait).await {
                if hinted_time_fits(&text, &hinted) {
                    text = hinted;
                }
            }
        }
        let asr_ms = t0.elapsed().as_millis() as u64;
        // The model is asked only when the rules find nothing to act on (no intent, yes/no, date,
        // time, phone or name): it costs a few hundred ms, and its reading only fills gaps.
        let (reading, llm_ms) = if unreadable {
            let t1 = Instant::now();
            let r = read_with_llm(&llm, &text).await;
            (r, Some(t1.elapsed().as_millis() as u64))
        } else {
            (None, None)
        };
        let _ = tx.send(Internal::Heard { heard: Box::new(Heard { text, asr_ms, llm_ms, reading, utterance_end, no_room: false }), generation }).await;
    })
}

/// How long a turn waits for room in a full ASR queue (several callers at once) before it is
/// given up as unheard. One transcription takes ~0.5 s, so room comes within a second or two.
const ASR_BUSY_WAIT: Duration = Duration::from_secs(3);

/// The transcript (empty on a failure, which the policy hears as silence), or `None` when the
/// ASR queue stayed full for `wait`. A full queue is not a failure of the turn: losing the
/// caller's words to it made one of four simultaneous callers repeat themselves.
async fn transcribe_or_busy(asr: &AsrClient, audio: &[i16], opts: &TranscribeOpts, wait: Duration) -> Option<String> {
    let deadline = Instant::now() + wait;
    loop {
        match asr.transcribe(audio, opts).await {
            Ok(t) => return Some(t.text),
            Err(fd_models::client::EngineError::Busy { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(fd_models::client::EngineError::Busy { .. }) => return None,
            Err(e) => {
                tracing::warn!(error = %e, "transcription failed");
                return Some(String::new());
            }
        }
    }
}

fn is_mixed_yes_no(text: &str) -> bool {
    fd_receptionist::understand::is_mixed_yes_no(&fd_receptionist::understand::tokenize(text))
}

/// The second hearing of a contradictory answer at a read-back replaces the first only when it is
/// a plain yes or a plain no; otherwise the policy asks "Is that a yes?" as before.
fn second_opinion_stands(again: &str) -> bool {
    use fd_receptionist::understand::{extract_yes_no, tokenize};
    !is_mixed_yes_no(again) && extract_yes_no(&tokenize(again)).is_some()
}

/// A day named and a time begun but not made out ("Tuesday March 10th at I.n."): worth a second
/// decoding with the practice's hours as hints.
fn clock_worth_hinting(text: &str) -> bool {
    fd_receptionist::understand::time_left_unread(&fd_receptionist::understand::tokenize(text))
}

/// The hinted transcript is kept only if it reads a time and the same days as the first one:
/// the hints may settle the time, not move the day.
fn hinted_time_fits(first: &str, hinted: &str) -> bool {
    use fd_receptionist::understand::*;
    let (a, b) = (tokenize(first), tokenize(hinted));
    !extract_times(&b, false).0.is_empty() && extract_dates(&a) == extract_dates(&b)
}

/// Whether the understanding rules find nothing to act on in `text`; `expect_time` as the policy
/// parses a turn while a time is being picked (a bare number is then a time).
fn rules_find_nothing(text: &str, expect_time: bool) -> bool {
    use fd_receptionist::understand::*;
    let toks = tokenize(text);
    extract_intent(&toks).is_none()
        && extract_yes_no(&toks).is_none()
        && extract_dates(&toks).is_empty()
        && extract_times(&toks, expect_time).0.is_empty()
        && extract_phone(&toks).is_none()
        && extract_name(text, false).is_none()
        // "the first one", "say that again": answers to what the bot just asked.
        && extract_choice(&toks, 3).is_none()
        && asks_other_time(&toks).is_none()
        && !wants_repeat(&toks)
        && !is_goodbye(&toks)
        && !is_thanks(&toks)
        && appointment_type_hint(&toks).is_none()
        && !is_emergency(&toks)
        && !mentions_staff_matter(&toks)
}

/// A grammar-constrained reading of one utterance; `None` on any failure or after 1.5 s (the
/// caller must not wait on a hint).
async fn read_with_llm(llm: &LlmClient, text: &str) -> Option<LlmReading> {
    let msgs = [ChatMessage { role: "user".into(), content: text.to_owned() }];
    let opts = GenerateOpts { json_schema: Some(fd_receptionist::llm_reading_json_schema()), max_tokens: 96, ..Default::default() };
    match tokio::time::timeout(std::time::Duration::from_millis(1500), llm.generate(&msgs, &opts)).await {
        Ok(Ok(g)) => serde_json::from_str(&g.text).ok(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "LLM reading failed");
            None
        }
        Err(_) => {
            tracing::warn!("LLM reading timed out");
            None
        }
    }
}

/// Speaks `text`: synthesis streamed sentence by sentence into the RTP queue. With a `gate`, the
/// audio is synthesized into a buffer and nothing is played or reported until the gate opens; a
/// dropped gate (the speculation was discarded) ends the task silently.
fn spawn_speaker(tts: TtsClient, handle: CallHandle, text: String, tx: mpsc::Sender<Internal>, gate: Option<oneshot::Receiver<()>>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut stream = match tts.synthesize(&text, RATE).await {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "speech synthesis failed");
                None
            }
        };
        let mut held: std::collections::VecDeque<Vec<i16>> = std::collections::VecDeque::new();
        if let Some(mut gate) = gate {
            loop {
                let Some(s) = stream.as_mut() else {
                    // Everything is synthesized (or synthesis failed): wait for the go.
                    if gate.await.is_err() {
                        return;
                    }
                    break;
                };
                tokio::select! {
                    go = &mut gate => {
                        if go.is_err() {
                            return;
                        }
                        break;
                    }
                    // Cancel-safe: the stream reads from a channel.
                    next = s.next() => match next {
                        Ok(Some(chunk)) => held.push_back(chunk.pcm),
                        Ok(None) => stream = None,
                        Err(e) => {
                            tracing::warn!(error = %e, "speech synthesis failed mid-reply");
                            stream = None;
                        }
                    },
                }
            }
        }
        // Playout ends no earlier than now + everything queued so far.
        let mut until = Instant::now();
        let mut first = true;
        loop {
            let pcm = match held.pop_front() {
                Some(p) => p,
                None => match stream.as_mut() {
                    None => break,
                    Some(s) => match s.next().await {
                        Ok(Some(chunk)) => chunk.pcm,
                        Ok(None) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, "speech synthesis failed mid-reply");
                            break;
                        }
                    },
                },
            };
            let now = Instant::now();
            let starts = until.max(now);
            until = starts + samples_duration(pcm.len());
            let _ = tx.send(Internal::BotAudio { at: starts, pcm: pcm.clone() }).await;
            if handle.play(pcm).is_err() {
                break;
            }
            if first {
                first = false;
                let _ = tx.send(Internal::FirstAudio { at: now }).await;
            }
        }
        if first {
            // Nothing could be played: the policy hears about it.
            let _ = tx.send(Internal::SpeakFailed).await;
        } else {
            let _ = tx.send(Internal::Queued { until }).await;
        }
    })
}

fn add_turn(store: &mut Store, db_call: i64, speaker: Speaker, text: &str, started: Instant, timing: &Timing) -> Option<i64> {
    let t = Turn {
        speaker,
        text: text.to_owned(),
        offset_ms: started.elapsed().as_millis() as i64,
        asr_ms: if speaker == Speaker::Caller { timing.asr_ms } else { None },
        llm_ms: None,
        tts_ms: None,
        first_rtp_ms: None,
    };
    store.add_turn(db_call, &t).map_err(|e| tracing::error!(error = %e, "could not store a transcript turn")).ok()
}

fn log_recorded(r: &Recorded) {
    // Bookings, cancellations and messages were already committed by the tools (and audited);
    // this is the operational trail, logged by kind only: no ids, names or times.
    let kind = match r {
        Recorded::Booked { .. } => "booked",
        Recorded::Rescheduled { .. } => "rescheduled",
        Recorded::Cancelled { .. } => "cancelled",
        Recorded::MessageTaken { .. } => "message",
        Recorded::TransferRequested { .. } => "transfer-requested",
        Recorded::TransferCompleted => "transfer-completed",
        Recorded::TransferFailed => "transfer-failed",
        Recorded::ToolFailure { .. } => "tool-failure",
    };
    tracing::info!(event = kind, "call event");
}

fn finish_call(store: &mut Store, db_call: i64, policy: &Receptionist, caller_id: Option<&str>) -> anyhow::Result<()> {
    let s = policy.summary();
    let outcome = fd_store::Outcome::parse(s.outcome.as_str());
    store.end_call(db_call, &CallEnd { outcome, summary: Some(s.text.clone()), sentiment: None, patient_id: None })?;
    if let Some(lead) = &s.lead {
        // The caller id is the number to call a lead back on. A message already notified staff;
        // a hot lead without one gets its own notification.
        let lead_id = store.add_lead(s.patient_name.as_deref(), caller_id, i64::from(lead.score), None, Some(db_call), fd_store::Actor::Call(db_call))?;
        if s.notify_staff && s.message_id.is_none() {
            store.notify_staff_of_lead(lead_id, fd_store::Actor::Call(db_call))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn each_frame_gets_the_window_its_end_falls_in_as_soon_as_that_window_is_judged() {
        use super::VadWindows;
        use std::time::{Duration, Instant};
        let t0 = Instant::now();
        let at = |i: u32| t0 + Duration::from_millis(20 * i as u64);
        // 320-sample frames (20 ms at 16 kHz), 512-sample windows (Silero's 32 ms).
        let mut w = VadWindows::new(512);
        let mut settled: Vec<(usize, Vec<Instant>)> = Vec::new();
        let mut window = 0;
        for i in 0..8 {
            w.push(at(i), &[0i16; 320]);
            while let Some(chunk) = w.next_window() {
                assert_eq!(chunk.len(), 512);
                settled.push((window, w.judged().collect()));
                window += 1;
            }
        }
        // Frame ends 320, 640, …, 2560; window ends 512, 1024, …, 2560: window 1 (to 1024) is
        // judged once frame 3 is in, and settles frames 1 (to 640) and 2 (to 960).
        assert_eq!(
            settled,
            vec![(0, vec![at(0)]), (1, vec![at(1), at(2)]), (2, vec![at(3)]), (3, vec![at(4), at(5)]), (4, vec![at(6), at(7)])]
        );
    }

    use super::{clock_worth_hinting, hinted_time_fits, is_mixed_yes_no, rules_find_nothing, second_opinion_stands};

    #[test]
    fn a_time_begun_is_decoded_again_and_the_hints_may_settle_only_the_time() {
        // tiny.en's "Tuesday March tenth at nine" over a G.722 call, and what the decoding that
        // favours the practice's hours made of it.
        let first = "Tuesday March 10th at I.n.";
        assert!(clock_worth_hinting(first));
        assert!(hinted_time_fits(first, "Tuesday March 10 at 9."));
        // Still no time, or another day: the first transcript stands.
        assert!(!hinted_time_fits(first, "Tuesday March 10th at I."));
        assert!(!hinted_time_fits(first, "Thursday March 12 at 9."));
        // A time heard, or none begun: no second decoding.
        assert!(!clock_worth_hinting("Tuesday March 10th at 9."));
        assert!(!clock_worth_hinting("Tuesday March 10th, please."));
    }

    #[test]
    fn speech_that_starts_as_the_reply_begins_continues_the_turn() {
        use super::{continues_turn, turn_audio, CONTINUATION_WINDOW};
        use std::time::{Duration, Instant};
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let now = ms(5000);
        // The caller began again 300 ms into the reply, or before it was audible: their turn.
        assert!(continues_turn(Some(ms(1000)), Some(ms(1300)), now));
        assert!(continues_turn(Some(ms(1000)), Some(ms(900)), now));
        assert!(continues_turn(Some(ms(1000)), Some(ms(1000) + CONTINUATION_WINDOW), now));
        assert!(continues_turn(None, Some(ms(4900)), now));
        // A second into the reply (the scripted barge-in): an answer to it, an ordinary barge-in.
        assert!(!continues_turn(Some(ms(1000)), Some(ms(2000)), now));
        // No speech: nothing to continue.
        assert!(!continues_turn(Some(ms(1000)), None, now));

        // The carried turn, 300 ms of silence, then the continuation.
        let mut utter = fd_voice::turn::UtteranceBuffer::new(16_000, Duration::ZERO, Duration::ZERO, Duration::from_secs(5));
        utter.push(ms(20), &[7i16; 320]);
        assert_eq!(turn_audio(&[], &utter, t0, ms(20)), vec![7i16; 320]);
        let out = turn_audio(&[1i16; 100], &utter, t0, ms(20));
        assert_eq!(out.len(), 100 + 4800 + 320);
        assert!(out[..100].iter().all(|&x| x == 1) && out[100..4900].iter().all(|&x| x == 0) && out[4900..].iter().all(|&x| x == 7));
    }

    #[test]
    fn a_second_hearing_of_a_contradiction_stands_only_when_it_is_plain() {
        assert!(is_mixed_yes_no("Yes, not correct."));
        assert!(!is_mixed_yes_no("Yes, that's correct."));
        assert!(second_opinion_stands("Yes, that's correct."));
        assert!(second_opinion_stands("Yeah, that's correct."));
        assert!(second_opinion_stands("No, that's not right."));
        assert!(!second_opinion_stands("Yes, not correct."));
        assert!(!second_opinion_stands("I'm sorry, what?"));
        assert!(!second_opinion_stands(""));
    }

    #[test]
    fn misheard_choices_are_unreadable_and_real_answers_are_not() {
        // What tiny.en made of "Nine o'clock please" and "The first one, please" on the phone
        // path: these get a second decoding with the offered times as hints.
        for heard in [
            "I look like please.",
            "I look like clean.",
            "The eye looks like, please.",
        ] {
            assert!(rules_find_nothing(heard, true), "{heard}");
        }
        // What the hinted second decoding made of the same line over a G.722 call: the hint
        // started the offered "9" and Whisper went on with what it heard. At an offer that is a
        // pick of nine (read back before anything is booked); elsewhere a bare number is not a time.
        assert!(!rules_find_nothing("9. I look like, please.", true));
        assert!(rules_find_nothing("9. I look like, please.", false));
        // Answers the rules read are kept as heard (no second decoding that could pull in an
        // offered time the caller did not say).
        for heard in [
            "9 o'clock, please.",
            "The first one, please.",
            "Okay, what do you have that afternoon?",
            "Yes, that's right.",
            "2 o'clock is fine.",
        ] {
            assert!(!rules_find_nothing(heard, true), "{heard}");
        }
    }
}
