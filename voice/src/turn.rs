//! Turn-taking: when the caller has finished, when they interrupt, when they have gone quiet.
//!
//! [`TurnTaker`] is a sans-IO state machine fed one VAD speech probability per 20 ms caller frame,
//! the bot's playback state, optional partial-transcript word counts, DTMF and time; it emits
//! [`TurnEvent`]s. Rules (all durations in [`TurnConfig`]):
//!
//! - **Speech start**: `start_frames` consecutive frames at or above `speech_threshold`; speech
//!   continues while frames stay above the lower `silence_threshold` (hysteresis).
//! - **Pause** (speculation): `speculate_after` of silence after the last voiced frame, once per
//!   silence, so the dialogue layer can start transcribing and preparing a reply before the turn is
//!   confirmed; `Resumed` if the caller then speaks again within the same utterance (the
//!   speculation is stale). Never emitted for speech that would not become a turn (a backchannel
//!   over the bot). Scales with the digit pause like the end of turn does.
//! - **End of turn**: `end_of_turn_silence` after the last voiced frame (longer while the dialogue
//!   expects digits, since callers pause between groups of a phone number or date of birth); an
//!   utterance longer than `max_utterance` is cut there.
//! - **Echo** (the phone path has no echo canceller, so the caller's audio contains the bot): while
//!   the bot is playing and for `echo_tail` after it stops, speech must reach `echo_threshold` for
//!   `echo_start_frames` frames to count at all, and stay above `echo_silence_threshold` to continue.
//!   Echo comes back attenuated and smeared, so it rarely holds a high probability that long; a
//!   caller who talks over the bot does.
//! - **Barge-in**: only while the bot is playing, never during the disclosure, and only after
//!   `barge_in_min_speech` of voiced caller speech plus `barge_in_min_words` words (when the ASR
//!   reports partials), or `barge_in_force_speech` regardless: "uh-huh" or "okay" is not a barge-in.
//!   Speech that starts over the bot, never qualifies and ends while the bot still plays is
//!   discarded as a backchannel.
//! - **Idle**: wall clock, counted only while nobody is speaking and no reply is being prepared
//!   (comfort noise or a silent VAD are silence): `idle_timeout` → `IdlePrompt`, another
//!   `idle_timeout` → `IdleHangup`. Caller speech or a key press resets it.
//! - **DTMF**: `0` → `TransferToFrontDesk` (unless digits are expected); other keys → `Digit`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Tunables. Defaults suit 8 kHz phone audio with Silero VAD.
#[derive(Debug, Clone)]
pub struct TurnConfig {
    pub frame: Duration,
    pub speech_threshold: f32,
    pub silence_threshold: f32,
    pub start_frames: u32,
    pub end_of_turn_silence: Duration,
    pub end_of_turn_silence_digits: Duration,
    /// Silence after which a `Pause` lets the caller's turn be processed speculatively. `None` or
    /// anything not shorter than the end-of-turn silence: no `Pause` events. While digits are
    /// expected it is scaled by the same factor as the end-of-turn silence.
    pub speculate_after: Option<Duration>,
    pub max_utterance: Duration,
    pub barge_in_min_speech: Duration,
    pub barge_in_min_words: u32,
    pub barge_in_force_speech: Duration,
    pub echo_threshold: f32,
    pub echo_silence_threshold: f32,
    pub echo_start_frames: u32,
    pub echo_tail: Duration,
    pub idle_timeout: Duration,
}

impl Default for TurnConfig {
    fn default() -> Self {
        Self {
            frame: Duration::from_millis(20),
            speech_threshold: 0.5,
            silence_threshold: 0.35,
            start_frames: 3,
            end_of_turn_silence: Duration::from_millis(500),
            end_of_turn_silence_digits: Duration::from_millis(1200),
            // The reply waits for the transcription started here (~400 ms on 2 cores), so the
            // earlier the better. Silero's probability stays up for a few frames after the voice
            // ends, so 50 ms here is ~100 ms of real silence: Whisper hears the same words from
            // the scenario lines cut 40 or 100 ms after their last loud frame (16 kHz). A caller
            // who goes on cancels it, and the ASR engine stops within milliseconds, so a pause
            // within a sentence costs little.
            speculate_after: Some(Duration::from_millis(50)),
            max_utterance: Duration::from_secs(20),
            // "uh-huh" / "okay" run about 250–450 ms.
            barge_in_min_speech: Duration::from_millis(400),
            barge_in_min_words: 2,
            barge_in_force_speech: Duration::from_millis(1000),
            echo_threshold: 0.85,
            echo_silence_threshold: 0.6,
            echo_start_frames: 5,
            // Echo returns through the PBX and handset with up to a few hundred ms of delay.
            echo_tail: Duration::from_millis(300),
            idle_timeout: Duration::from_secs(10),
        }
    }
}

/// What the turn-taker tells the dialogue layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnEvent {
    /// The caller started speaking (start of the first voiced frame).
    SpeechStarted { at: Instant },
    /// The caller finished: transcribe the audio from `utterance_start` to `utterance_end`.
    EndOfTurn { utterance_start: Instant, utterance_end: Instant },
    /// The caller has paused for `speculate_after`: the turn may be about to end. The audio from
    /// `utterance_start` to `last_voice` can be processed speculatively; it is the turn only if
    /// the next `EndOfTurn` has `utterance_end == last_voice` with no `Resumed` in between.
    Pause { utterance_start: Instant, last_voice: Instant },
    /// The caller spoke again after a `Pause`, within the same utterance: drop the speculation.
    Resumed { at: Instant },
    /// The caller talks over the bot: stop playback now and cancel the reply in flight.
    BargeIn,
    /// The line has been quiet for `idle_timeout`: ask whether the caller is still there.
    IdlePrompt,
    /// Still quiet after the prompt: end the call.
    IdleHangup,
    /// The caller pressed 0.
    TransferToFrontDesk,
    /// Any other key (or 0 while digits are expected).
    Digit(char),
}

#[derive(Debug, Clone, Copy)]
enum Caller {
    Silent { run: u32, onset: Option<Instant> },
    Speaking(Utterance),
}

#[derive(Debug, Clone, Copy)]
struct Utterance {
    start: Instant,
    last_voice: Instant,
    voiced: Duration,
    over_bot: bool,
    qualified: bool,
    barged: bool,
    words: u32,
    /// A `Pause` was emitted for the current silence.
    paused: bool,
}

/// The sans-IO turn-taking state machine. See the module docs for the rules.
#[derive(Debug)]
pub struct TurnTaker {
    cfg: TurnConfig,
    caller: Caller,
    bot_speaking: bool,
    disclosure: bool,
    bot_stopped_at: Option<Instant>,
    expect_digits: bool,
    words_reported: bool,
    processing: bool,
    idle_since: Option<Instant>,
    prompted: bool,
    hung_up: bool,
    events: VecDeque<TurnEvent>,
}

impl TurnTaker {
    pub fn new(cfg: TurnConfig, now: Instant) -> Self {
        Self {
            cfg,
            caller: Caller::Silent { run: 0, onset: None },
            bot_speaking: false,
            disclosure: false,
            bot_stopped_at: None,
            expect_digits: false,
            words_reported: false,
            processing: false,
            idle_since: Some(now),
            prompted: false,
            hung_up: false,
            events: VecDeque::new(),
        }
    }

    pub fn config(&self) -> &TurnConfig {
        &self.cfg
    }

    /// Whether the caller is currently in an utterance.
    pub fn caller_speaking(&self) -> bool {
        matches!(self.caller, Caller::Speaking(_))
    }

    fn echo_guard(&self, now: Instant) -> bool {
        self.bot_speaking || self.bot_stopped_at.and_then(|t| t.checked_add(self.cfg.echo_tail)).is_some_and(|end| now < end)
    }

    /// One caller frame's speech probability; `now` is the time at the end of the frame.
    pub fn on_vad(&mut self, now: Instant, probability: f32) {
        let p = if probability.is_finite() { probability } else { 0.0 };
        let guard = self.echo_guard(now);
        match self.caller {
            Caller::Silent { run, onset } => {
                let (threshold, needed) =
                    if guard { (self.cfg.echo_threshold, self.cfg.echo_start_frames) } else { (self.cfg.speech_threshold, self.cfg.start_frames) };
                if p >= threshold {
                    let onset = onset.unwrap_or(now.checked_sub(self.cfg.frame).unwrap_or(now));
                    let run = run + 1;
                    if run >= needed.max(1) {
                        let u = Utterance {
                            start: onset,
                            last_voice: now,
                            voiced: self.cfg.frame * run,
                            over_bot: self.bot_speaking,
                            qualified: false,
                            barged: false,
                            words: 0,
                            paused: false,
                        };
                        self.caller = Caller::Speaking(u);
                        self.idle_since = None;
                        self.prompted = false;
                        self.events.push_back(TurnEvent::SpeechStarted { at: onset });
                        self.check_barge_in(now);
                    } else {
                        self.caller = Caller::Silent { run, onset: Some(onset) };
                    }
                } else {
                    self.caller = Caller::Silent { run: 0, onset: None };
                }
            }
            Caller::Speaking(mut u) => {
                let threshold = if guard { self.cfg.echo_silence_threshold } else { self.cfg.silence_threshold };
                if p >= threshold {
                    if u.paused {
                        u.paused = false;
                        self.events.push_back(TurnEvent::Resumed { at: now });
                    }
                    u.last_voice = now;
                    u.voiced += self.cfg.frame;
                    self.caller = Caller::Speaking(u);
                    self.check_barge_in(now);
                }
                self.check_end(now);
            }
        }
    }

    /// Partial transcript of the current utterance now has `words` words.
    pub fn partial_words(&mut self, now: Instant, words: u32) {
        self.words_reported = true;
        if let Caller::Speaking(mut u) = self.caller {
            u.words = u.words.max(words);
            self.caller = Caller::Speaking(u);
            self.check_barge_in(now);
        }
    }

    fn check_barge_in(&mut self, now: Instant) {
        let Caller::Speaking(mut u) = self.caller else { return };
        let words_ok = !self.words_reported || u.words >= self.cfg.barge_in_min_words;
        let qualifies = u.qualified || (u.voiced >= self.cfg.barge_in_min_speech && words_ok) || u.voiced >= self.cfg.barge_in_force_speech;
        if !qualifies {
            return;
        }
        u.qualified = true;
        // Also when the bot starts talking over a caller who is already well into an utterance
        // (the end of turn was premature): the reply is stale, stop it.
        if self.bot_speaking && !self.disclosure && !u.barged {
            u.barged = true;
            self.bot_speaking = false;
            self.bot_stopped_at = Some(now);
            self.events.push_back(TurnEvent::BargeIn);
        }
        self.caller = Caller::Speaking(u);
    }

    fn end_silence(&self) -> Duration {
        if self.expect_digits {
            self.cfg.end_of_turn_silence_digits
        } else {
            self.cfg.end_of_turn_silence
        }
    }

    /// The silence before a `Pause`, if speculation is on: scaled like the end-of-turn silence
    /// (a caller reading digits pauses longer between groups).
    fn pause_silence(&self) -> Option<Duration> {
        let base = self.cfg.speculate_after.filter(|d| *d < self.cfg.end_of_turn_silence)?;
        if !self.expect_digits {
            return Some(base);
        }
        let eot = self.cfg.end_of_turn_silence.as_secs_f64().max(1e-3);
        let scaled = base.mul_f64(self.cfg.end_of_turn_silence_digits.as_secs_f64() / eot);
        Some(scaled.min(self.cfg.end_of_turn_silence_digits))
    }

    /// Speech that ends now would be dropped as a backchannel rather than become a turn.
    fn is_backchannel(&self, u: &Utterance) -> bool {
        u.over_bot && !u.qualified && self.bot_speaking
    }

    fn check_end(&mut self, now: Instant) {
        let Caller::Speaking(mut u) = self.caller else { return };
        let silence = self.end_silence();
        let quiet = now.saturating_duration_since(u.last_voice);
        if quiet < silence && !u.paused && !self.is_backchannel(&u) && self.pause_silence().is_some_and(|p| quiet >= p) {
            u.paused = true;
            self.caller = Caller::Speaking(u);
            self.events.push_back(TurnEvent::Pause { utterance_start: u.start, last_voice: u.last_voice });
        }
        if quiet >= silence {
            self.caller = Caller::Silent { run: 0, onset: None };
            if self.is_backchannel(&u) {
                // A backchannel over the bot (or residual echo): not a turn.
                self.restart_idle(now);
                return;
            }
            self.end_turn(u.start, u.last_voice);
        } else if now.saturating_duration_since(u.start) >= self.cfg.max_utterance {
            // Hard limit: hand over what we have; the rest of the speech is a new utterance.
            self.end_turn(u.start, now);
            self.caller = Caller::Speaking(Utterance { start: now, last_voice: now, voiced: Duration::ZERO, over_bot: false, qualified: true, barged: false, words: 0, paused: false });
        }
    }

    fn end_turn(&mut self, start: Instant, end: Instant) {
        self.processing = true;
        self.idle_since = None;
        self.events.push_back(TurnEvent::EndOfTurn { utterance_start: start, utterance_end: end });
    }

    fn restart_idle(&mut self, now: Instant) {
        if !self.bot_speaking && !self.processing && !self.caller_speaking() && !self.hung_up {
            self.idle_since = Some(now);
        }
    }

    /// The bot started playing an utterance. `disclosure`: the legally required notice, which
    /// nothing may interrupt.
    pub fn bot_started(&mut self, now: Instant, disclosure: bool) {
        self.bot_speaking = true;
        self.disclosure = disclosure;
        self.processing = false;
        self.idle_since = None;
        if let Caller::Speaking(mut u) = self.caller {
            u.barged = false; // a new bot utterance can be interrupted again
            self.caller = Caller::Speaking(u);
        }
        self.check_barge_in(now);
    }

    /// The bot's audio finished playing (or was flushed).
    pub fn bot_finished(&mut self, now: Instant) {
        if self.bot_speaking {
            self.bot_stopped_at = Some(now);
        }
        self.bot_speaking = false;
        self.disclosure = false;
        self.processing = false;
        self.restart_idle(now);
    }

    /// After an `EndOfTurn` that gets no spoken reply: start counting idle time again.
    pub fn resume_listening(&mut self, now: Instant) {
        self.processing = false;
        self.restart_idle(now);
    }

    /// The dialogue expects a digit string (phone number, date of birth): wait longer at pauses,
    /// and treat `0` as a digit rather than a transfer request.
    pub fn expect_digits(&mut self, on: bool) {
        self.expect_digits = on;
    }

    pub fn expecting_digits(&self) -> bool {
        self.expect_digits
    }

    /// A key press (RFC 4733 or SIP INFO).
    pub fn on_dtmf(&mut self, now: Instant, digit: char) {
        self.prompted = false;
        if self.idle_since.is_some() {
            self.idle_since = Some(now);
        }
        if digit == '0' && !self.expect_digits {
            self.events.push_back(TurnEvent::TransferToFrontDesk);
        } else {
            self.events.push_back(TurnEvent::Digit(digit));
        }
    }

    pub fn poll_event(&mut self) -> Option<TurnEvent> {
        self.events.pop_front()
    }

    /// When `handle_timeout` must run even if no frame arrives (the VAD may be starved).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t = self.idle_since.and_then(|s| s.checked_add(self.cfg.idle_timeout));
        if let Caller::Speaking(u) = self.caller {
            let pause = self.pause_silence().filter(|_| !u.paused && !self.is_backchannel(&u)).and_then(|p| u.last_voice.checked_add(p));
            let ends = [pause, u.last_voice.checked_add(self.end_silence()), u.start.checked_add(self.cfg.max_utterance)];
            for end in ends.into_iter().flatten() {
                t = Some(t.map_or(end, |x| x.min(end)));
            }
        }
        t
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.check_end(now);
        if let Some(since) = self.idle_since {
            if since.checked_add(self.cfg.idle_timeout).is_some_and(|d| now >= d) {
                if self.prompted {
                    self.idle_since = None;
                    self.hung_up = true;
                    self.events.push_back(TurnEvent::IdleHangup);
                } else {
                    self.prompted = true;
                    self.idle_since = Some(now);
                    self.events.push_back(TurnEvent::IdlePrompt);
                }
            }
        }
    }
}

/// Keeps recent caller audio so an utterance can be cut out with `preroll` before its detected
/// start (VAD onset lags the first syllable) and `postroll` after its end.
#[derive(Debug)]
pub struct UtteranceBuffer {
    sample_rate: u32,
    preroll: Duration,
    postroll: Duration,
    capacity: Duration,
    /// (time at the end of the chunk, samples)
    chunks: VecDeque<(Instant, Vec<i16>)>,
    total: usize,
}

impl UtteranceBuffer {
    /// `capacity` should cover the longest utterance plus pre-roll.
    pub fn new(sample_rate: u32, preroll: Duration, postroll: Duration, capacity: Duration) -> Self {
        Self { sample_rate: sample_rate.max(1), preroll, postroll, capacity, chunks: VecDeque::new(), total: 0 }
    }

    /// 16 kHz, 300 ms pre-roll, 200 ms post-roll, room for 21 s.
    pub fn default_16k() -> Self {
        Self::new(16_000, Duration::from_millis(300), Duration::from_millis(200), Duration::from_secs(21))
    }

    fn duration_of(&self, samples: usize) -> Duration {
        Duration::from_micros(samples as u64 * 1_000_000 / self.sample_rate as u64)
    }

    /// Appends a chunk of audio that ended at `now`.
    pub fn push(&mut self, now: Instant, samples: &[i16]) {
        self.chunks.push_back((now, samples.to_vec()));
        self.total += samples.len();
        while self.duration_of(self.total) > self.capacity {
            match self.chunks.pop_front() {
                Some((_, c)) => self.total -= c.len(),
                None => break,
            }
        }
    }

    /// The audio from `start − preroll` to `end + postroll` (as far as it is still held).
    pub fn extract(&self, start: Instant, end: Instant) -> Vec<i16> {
        let from = start.checked_sub(self.preroll).unwrap_or(start);
        let to = end + self.postroll;
        let mut out = Vec::new();
        for (chunk_end, samples) in &self.chunks {
            let chunk_start = chunk_end.checked_sub(self.duration_of(samples.len())).unwrap_or(*chunk_end);
            if *chunk_end <= from || chunk_start >= to {
                continue;
            }
            // Trim partially covered chunks to the sample.
            let skip = (from.saturating_duration_since(chunk_start).as_micros() as u64 * self.sample_rate as u64 / 1_000_000) as usize;
            let keep_until = samples.len() - (chunk_end.saturating_duration_since(to).as_micros() as u64 * self.sample_rate as u64 / 1_000_000).min(samples.len() as u64) as usize;
            if skip < keep_until {
                out.extend_from_slice(&samples[skip..keep_until]);
            }
        }
        out
    }

    pub fn clear(&mut self) {
        self.chunks.clear();
        self.total = 0;
    }
}
