//! Turn-taking rules, each driven with simulated time.

use std::time::{Duration, Instant};

use fd_voice::turn::{TurnConfig, TurnEvent, TurnTaker, UtteranceBuffer};

const MS: Duration = Duration::from_millis(1);
const FRAME: Duration = Duration::from_millis(20);

struct Sim {
    tt: TurnTaker,
    t0: Instant,
    now: Instant,
    events: Vec<(Instant, TurnEvent)>,
}

impl Sim {
    fn new() -> Self {
        Self::with(TurnConfig::default())
    }

    fn with(cfg: TurnConfig) -> Self {
        let t0 = Instant::now();
        Self { tt: TurnTaker::new(cfg, t0), t0, now: t0, events: Vec::new() }
    }

    fn collect(&mut self) {
        while let Some(e) = self.tt.poll_event() {
            self.events.push((self.now, e));
        }
    }

    fn timers_until(&mut self, t: Instant) {
        while let Some(due) = self.tt.poll_timeout() {
            if due > t {
                break;
            }
            self.now = self.now.max(due);
            self.tt.handle_timeout(self.now);
            self.collect();
        }
    }

    /// `n` frames with speech probability `p`.
    fn frames(&mut self, n: u32, p: f32) {
        for _ in 0..n {
            let next = self.now + FRAME;
            self.timers_until(next - Duration::from_nanos(1));
            self.now = next;
            self.tt.on_vad(self.now, p);
            self.collect();
        }
    }

    /// Time passes with no frames at all (a starved or broken VAD).
    fn wait(&mut self, d: Duration) {
        let end = self.now + d;
        self.timers_until(end);
        self.now = end;
    }

    /// Event kinds, without the speculation hints (`Pause`/`Resumed`: see their own tests).
    fn kinds(&self) -> Vec<TurnEvent> {
        self.events.iter().map(|(_, e)| *e).filter(|e| !speculation(e)).map(|e| match e {
            TurnEvent::SpeechStarted { .. } => TurnEvent::SpeechStarted { at: self.t0 },
            TurnEvent::EndOfTurn { .. } => TurnEvent::EndOfTurn { utterance_start: self.t0, utterance_end: self.t0 },
            other => other,
        }).collect()
    }

    fn count(&self, f: impl Fn(&TurnEvent) -> bool) -> usize {
        self.events.iter().filter(|(_, e)| f(e)).count()
    }

    fn ends(&self) -> Vec<(Instant, Instant, Instant)> {
        self.events
            .iter()
            .filter_map(|(t, e)| match e {
                TurnEvent::EndOfTurn { utterance_start, utterance_end } => Some((*t, *utterance_start, *utterance_end)),
                _ => None,
            })
            .collect()
    }
}

fn started(e: &TurnEvent) -> bool {
    matches!(e, TurnEvent::SpeechStarted { .. })
}
fn eot(e: &TurnEvent) -> bool {
    matches!(e, TurnEvent::EndOfTurn { .. })
}
fn pause(e: &TurnEvent) -> bool {
    matches!(e, TurnEvent::Pause { .. })
}
fn speculation(e: &TurnEvent) -> bool {
    matches!(e, TurnEvent::Pause { .. } | TurnEvent::Resumed { .. })
}

fn speculate_after() -> Duration {
    TurnConfig::default().speculate_after.expect("speculation is on by default")
}

#[test]
fn a_pause_precedes_the_end_of_turn_for_the_same_audio() {
    let mut s = Sim::new();
    s.frames(5, 0.0);
    let start = s.now;
    s.frames(50, 0.9);
    let last_voice = s.now;
    s.frames(40, 0.05);
    let got: Vec<(Instant, TurnEvent)> = s.events.iter().copied().filter(|(_, e)| pause(e) || eot(e)).collect();
    assert_eq!(
        got,
        vec![
            (last_voice + speculate_after(), TurnEvent::Pause { utterance_start: start, last_voice }),
            (last_voice + 500 * MS, TurnEvent::EndOfTurn { utterance_start: start, utterance_end: last_voice }),
        ]
    );
}

#[test]
fn the_pause_fires_on_time_even_if_frames_stop_arriving() {
    let mut s = Sim::new();
    s.frames(50, 0.9);
    let last_voice = s.now;
    s.wait(Duration::from_millis(300));
    let at: Vec<Instant> = s.events.iter().filter(|(_, e)| pause(e)).map(|(t, _)| *t).collect();
    assert_eq!(at, vec![last_voice + speculate_after()]);
    assert_eq!(s.count(eot), 0);
}

#[test]
fn speech_resuming_after_a_pause_cancels_it_and_the_turn_ends_later() {
    let mut s = Sim::new();
    s.frames(5, 0.0);
    let start = s.now;
    s.frames(40, 0.9);
    let first_voice_end = s.now;
    s.frames(15, 0.05); // 300 ms: past the pause, short of the end of turn
    assert!(speculate_after() < 300 * MS);
    assert_eq!(s.count(pause), 1);
    s.frames(40, 0.9); // the caller goes on
    let last_voice = s.now;
    s.frames(40, 0.05);
    let spec: Vec<TurnEvent> = s.events.iter().map(|(_, e)| *e).filter(|e| speculation(e) || eot(e)).collect();
    assert_eq!(
        spec,
        vec![
            TurnEvent::Pause { utterance_start: start, last_voice: first_voice_end },
            TurnEvent::Resumed { at: first_voice_end + 320 * MS },
            TurnEvent::Pause { utterance_start: start, last_voice },
            TurnEvent::EndOfTurn { utterance_start: start, utterance_end: last_voice },
        ],
        "no end of turn for the first pause; one pause per silence"
    );
}

/// A caller reading digits (expected) has spoken for 800 ms; the time of their last voiced frame.
fn reading_digits() -> (Sim, Instant) {
    let mut s = Sim::new();
    s.tt.expect_digits(true);
    s.frames(40, 0.9);
    let last_voice = s.now;
    (s, last_voice)
}

#[test]
fn expecting_digits_lengthens_the_pause_as_well() {
    let (mut s, last_voice) = reading_digits();
    s.frames(70, 0.1);
    let pauses: Vec<Instant> = s.events.iter().filter(|(_, e)| pause(e)).map(|(t, _)| *t).collect();
    let ends: Vec<Instant> = s.ends().iter().map(|e| e.0).collect();
    // The pause scaled by 1200/500.
    assert_eq!(pauses, vec![last_voice + speculate_after().mul_f64(1200.0 / 500.0)]);
    assert_eq!(ends, vec![last_voice + 1200 * MS]);
}

#[test]
fn a_whole_number_heard_at_the_pause_ends_the_turn_at_the_usual_silence() {
    // The dialogue layer reads the speculative transcript, finds the whole phone number and stops
    // expecting digits: the turn ends at 500 ms of silence, not 1200, or at once if that has passed.
    let (mut s, last_voice) = reading_digits();
    s.frames(20, 0.1); // 400 ms: the pause has come, the turn has not ended
    assert_eq!(s.count(pause), 1);
    assert_eq!(s.count(eot), 0);
    assert!(s.tt.expecting_digits());
    s.tt.expect_digits(false);
    s.frames(10, 0.1);
    assert_eq!(s.ends().iter().map(|e| e.0).collect::<Vec<_>>(), vec![last_voice + 500 * MS]);

    let (mut s, last_voice) = reading_digits();
    s.frames(35, 0.1); // 700 ms
    s.tt.expect_digits(false);
    s.wait(Duration::ZERO);
    assert_eq!(s.ends().iter().map(|e| e.0).collect::<Vec<_>>(), vec![last_voice + 700 * MS], "at once");
}

#[test]
fn no_pause_for_a_backchannel_or_with_speculation_off() {
    let mut s = Sim::new();
    s.tt.bot_started(s.now, false);
    s.frames(15, 0.95); // "uh-huh" over the bot
    s.frames(60, 0.1);
    assert_eq!(s.count(pause), 0);

    let mut s = Sim::with(TurnConfig { speculate_after: None, ..TurnConfig::default() });
    s.frames(50, 0.9);
    s.frames(40, 0.05);
    assert_eq!((s.count(pause), s.count(eot)), (0, 1));
}

#[test]
fn speech_starts_after_three_frames_above_threshold() {
    let mut s = Sim::new();
    s.frames(10, 0.1);
    s.frames(2, 0.9);
    s.frames(1, 0.2);
    s.frames(2, 0.9);
    s.frames(1, 0.45); // below the start threshold: the run starts over
    assert_eq!(s.count(started), 0, "two-frame blips are not speech");
    let onset = s.now; // the next frame starts now
    s.frames(3, 0.9);
    assert_eq!(s.events, vec![(s.now, TurnEvent::SpeechStarted { at: onset })]);
    assert!(s.tt.caller_speaking());
}

#[test]
fn end_of_turn_comes_500ms_after_the_last_voiced_frame() {
    let mut s = Sim::new();
    s.frames(5, 0.0);
    let start = s.now;
    s.frames(50, 0.9); // 1 s of speech
    let last_voice = s.now;
    // Hysteresis: 0.4 is below the start threshold but keeps an utterance going.
    s.frames(20, 0.4);
    let last_voice_h = s.now;
    assert!(last_voice_h > last_voice);
    s.frames(40, 0.05);
    let ends = s.ends();
    assert_eq!(ends.len(), 1);
    let (at, us, ue) = ends[0];
    assert_eq!(us, start);
    assert_eq!(ue, last_voice_h);
    assert_eq!(at, last_voice_h + 500 * MS);
}

#[test]
fn end_of_turn_waits_longer_while_digits_are_expected() {
    let mut s = Sim::new();
    s.tt.expect_digits(true);
    s.frames(40, 0.9); // "five five five"
    s.frames(45, 0.1); // 900 ms pause between digit groups
    s.frames(40, 0.9); // "one two three four"
    let last = s.now;
    s.frames(70, 0.1);
    let ends = s.ends();
    assert_eq!(ends.len(), 1, "the pause did not end the turn");
    assert_eq!(ends[0].0, last + 1200 * MS);
    // Back to normal afterwards.
    s.tt.expect_digits(false);
    s.tt.resume_listening(s.now);
    s.frames(40, 0.9);
    s.frames(45, 0.1);
    assert_eq!(s.ends().len(), 2);
}

#[test]
fn a_very_long_utterance_is_cut_at_the_maximum() {
    let mut s = Sim::new();
    let start = s.now;
    s.frames(25 * 50, 0.9);
    let ends = s.ends();
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0].1, start);
    assert_eq!(ends[0].0 - start, Duration::from_secs(20));
}

#[test]
fn end_of_turn_fires_on_time_even_if_frames_stop_arriving() {
    let mut s = Sim::new();
    s.frames(30, 0.9);
    let last = s.now;
    s.wait(Duration::from_secs(2));
    let ends = s.ends();
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0].0, last + 500 * MS);
}

#[test]
fn barge_in_needs_sustained_speech_over_the_bot() {
    let mut s = Sim::new();
    s.tt.bot_started(s.now, false);
    let begin = s.now;
    s.frames(40, 0.97);
    assert_eq!(s.count(|e| *e == TurnEvent::BargeIn), 1);
    let at = s.events.iter().find(|(_, e)| *e == TurnEvent::BargeIn).map(|(t, _)| *t).expect("barge-in");
    assert_eq!(at - begin, 400 * MS, "barge-in after 400 ms of voiced speech");
    // The interrupting speech is a turn of its own.
    s.frames(40, 0.0);
    assert_eq!(s.ends().len(), 1);
}

#[test]
fn a_backchannel_over_the_bot_is_neither_a_barge_in_nor_a_turn() {
    let mut s = Sim::new();
    s.tt.bot_started(s.now, false);
    s.frames(10, 0.1);
    s.frames(15, 0.95); // "uh-huh", 300 ms
    s.frames(60, 0.1);
    assert_eq!(s.count(|e| *e == TurnEvent::BargeIn), 0);
    assert_eq!(s.count(eot), 0);
    assert_eq!(s.count(started), 1);
}

#[test]
fn with_partial_transcripts_one_word_is_not_enough_to_interrupt() {
    let mut s = Sim::new();
    s.tt.bot_started(s.now, false);
    s.tt.partial_words(s.now, 0); // the ASR reports partials during this call
    s.frames(30, 0.95); // 600 ms of "okaaay"
    s.tt.partial_words(s.now, 1);
    s.collect();
    assert_eq!(s.count(|e| *e == TurnEvent::BargeIn), 0);
    s.tt.partial_words(s.now, 2); // "okay, actually..."
    s.collect();
    assert_eq!(s.count(|e| *e == TurnEvent::BargeIn), 1);

    // Long enough speech interrupts even if the words lag behind.
    let mut s = Sim::new();
    s.tt.bot_started(s.now, false);
    s.tt.partial_words(s.now, 0);
    s.frames(49, 0.95);
    assert_eq!(s.count(|e| *e == TurnEvent::BargeIn), 0);
    s.frames(1, 0.95);
    assert_eq!(s.count(|e| *e == TurnEvent::BargeIn), 1, "1 s of speech forces the barge-in");
}

#[test]
fn the_disclosure_is_never_interrupted_but_the_caller_is_still_heard() {
    let mut s = Sim::new();
    s.tt.bot_started(s.now, true);
    s.frames(100, 0.97); // 2 s of talking over the recording notice
    assert_eq!(s.count(|e| *e == TurnEvent::BargeIn), 0);
    s.frames(30, 0.05);
    assert_eq!(s.count(eot), 1, "what the caller said is kept as a turn");
    s.tt.bot_finished(s.now);
    // After the disclosure, interruptions work again.
    s.tt.bot_started(s.now, false);
    s.frames(30, 0.97);
    assert_eq!(s.count(|e| *e == TurnEvent::BargeIn), 1);
}

#[test]
fn the_bot_does_not_interrupt_itself_on_its_own_echo() {
    let mut s = Sim::new();
    s.tt.bot_started(s.now, false);
    // Echo of the bot's speech: moderate probabilities with occasional strong frames.
    for k in 0..150 {
        let p = match k % 10 {
            0..=2 => 0.9, // short strong bursts (3 frames < 5 needed)
            _ => 0.7,
        };
        s.frames(1, p);
    }
    assert_eq!(s.count(started), 0);
    assert_eq!(s.count(|e| *e == TurnEvent::BargeIn), 0);
    // The echo tail right after the bot stops is still guarded.
    s.tt.bot_finished(s.now);
    s.frames(12, 0.8);
    assert_eq!(s.count(started), 0);
    // Once the tail has passed, normal thresholds apply again.
    s.frames(10, 0.1);
    s.frames(3, 0.6);
    assert_eq!(s.count(started), 1);
}

#[test]
fn idle_line_prompts_once_then_hangs_up_on_wall_clock() {
    let mut s = Sim::new();
    s.tt.bot_started(s.now, false);
    s.frames(100, 0.0);
    s.tt.bot_finished(s.now);
    let quiet_from = s.now;
    // Comfort noise: frames keep coming with low probabilities.
    s.frames(50 * 25, 0.12);
    let idle: Vec<_> = s.events.iter().filter(|(_, e)| matches!(e, TurnEvent::IdlePrompt | TurnEvent::IdleHangup)).collect();
    assert_eq!(idle.len(), 2, "{idle:?}");
    assert_eq!(idle[0], &(quiet_from + Duration::from_secs(10), TurnEvent::IdlePrompt));
    assert_eq!(idle[1], &(quiet_from + Duration::from_secs(20), TurnEvent::IdleHangup));
    s.frames(50 * 30, 0.0);
    assert_eq!(s.count(|e| *e == TurnEvent::IdleHangup), 1, "hang-up is reported once");
}

#[test]
fn idle_time_does_not_run_while_the_bot_talks_or_a_reply_is_being_prepared() {
    let mut s = Sim::new();
    s.tt.bot_started(s.now, false);
    s.wait(Duration::from_secs(30)); // a long answer, and a VAD that reports nothing
    s.tt.bot_finished(s.now);
    s.frames(30, 0.9);
    s.frames(30, 0.0);
    assert_eq!(s.count(eot), 1);
    s.wait(Duration::from_secs(30)); // the reply is slow to come
    assert_eq!(s.count(|e| matches!(e, TurnEvent::IdlePrompt | TurnEvent::IdleHangup)), 0);
    // No reply is coming after all: the idle clock starts again.
    s.tt.resume_listening(s.now);
    s.wait(Duration::from_secs(10));
    assert_eq!(s.count(|e| *e == TurnEvent::IdlePrompt), 1);
}

#[test]
fn caller_speech_after_a_prompt_resets_the_idle_sequence() {
    let mut s = Sim::new();
    s.wait(Duration::from_secs(10));
    assert_eq!(s.kinds(), vec![TurnEvent::IdlePrompt]);
    s.tt.bot_started(s.now, false);
    s.wait(Duration::from_secs(2));
    s.tt.bot_finished(s.now);
    s.frames(30, 0.9); // "yes, I'm here"
    s.frames(30, 0.0);
    s.tt.bot_started(s.now, false);
    s.tt.bot_finished(s.now);
    s.wait(Duration::from_secs(10));
    let k = s.kinds();
    assert_eq!(k.last(), Some(&TurnEvent::IdlePrompt), "{k:?}");
    assert_eq!(s.count(|e| *e == TurnEvent::IdleHangup), 0);
}

#[test]
fn dtmf_zero_transfers_unless_digits_are_expected() {
    let mut s = Sim::new();
    s.tt.on_dtmf(s.now, '5');
    s.tt.on_dtmf(s.now, '0');
    s.tt.expect_digits(true);
    s.tt.on_dtmf(s.now, '0');
    s.collect();
    assert_eq!(s.kinds(), vec![TurnEvent::Digit('5'), TurnEvent::TransferToFrontDesk, TurnEvent::Digit('0')]);
}

#[test]
fn nonsense_probabilities_are_treated_as_silence() {
    let mut s = Sim::new();
    s.frames(10, f32::NAN);
    s.frames(10, f32::NEG_INFINITY);
    assert_eq!(s.count(started), 0);
    s.frames(10, f32::INFINITY);
    assert_eq!(s.count(started), 0);
}

#[test]
fn utterance_buffer_keeps_preroll_and_postroll() {
    let t0 = Instant::now();
    let mut b = UtteranceBuffer::new(16_000, 300 * MS, 200 * MS, Duration::from_secs(2));
    // Frame k holds the value k in every sample; frame k ends at t0 + 20 ms × (k + 1).
    for k in 0..100i16 {
        b.push(t0 + FRAME * (k as u32 + 1), &[k; 320]);
    }
    // Utterance detected from frame 50 (start 1000 ms) to the end of frame 59 (1200 ms).
    let audio = b.extract(t0 + 1000 * MS, t0 + 1200 * MS);
    assert_eq!(audio.len(), (15 + 10 + 10) * 320);
    assert_eq!(audio[0], 35, "300 ms pre-roll starts at frame 35");
    assert_eq!(*audio.last().expect("samples"), 69, "200 ms post-roll ends with frame 69");
    // Partial frames are cut to the sample.
    let part = b.extract(t0 + 1310 * MS, t0 + 1320 * MS);
    assert_eq!(part.len(), (300 + 10 + 200) * 16);
    // Capacity: only the last 2 s are kept.
    for k in 100..300i16 {
        b.push(t0 + FRAME * (k as u32 + 1), &[k; 320]);
    }
    let old = b.extract(t0 + 500 * MS, t0 + 600 * MS);
    assert!(old.is_empty());
}

#[test]
fn a_reply_that_starts_while_the_caller_is_still_talking_is_stopped() {
    let mut s = Sim::new();
    s.frames(30, 0.9);
    s.frames(26, 0.1); // a pause just long enough for an end of turn...
    assert_eq!(s.count(eot), 1);
    s.frames(30, 0.9); // ...but the caller goes on, and the reply starts over them
    s.tt.bot_started(s.now, false);
    s.collect();
    assert_eq!(s.count(|e| *e == TurnEvent::BargeIn), 1);
    // A short "hm" when the reply starts is not enough.
    let mut s = Sim::new();
    s.frames(5, 0.9);
    s.tt.bot_started(s.now, false);
    s.frames(3, 0.9);
    s.frames(40, 0.1);
    assert_eq!(s.count(|e| *e == TurnEvent::BargeIn), 0);
}
