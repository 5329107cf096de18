//! Whisper ASR engine process (whisper-rs).
//!
//! `frontdesk-asr --socket PATH --model ggml.bin [--threads N] [--audio-ctx-floor N] [--nice N]`
//! Serves `transcribe` on the engine protocol. Never logs transcripts or prompts (PHI).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::Parser;
use fd_models::protocol::{bytes_to_pcm, Request, Response, Segment, MAX_UTTERANCE_SECS};
use fd_models::protocol_server::{serve, Engine, EngineInfo, Failure, Job};
use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState};

mod policy;
use policy::{audio_ctx_for, is_near_silent, phrase_variants, PhraseBias};

#[derive(Parser, Debug)]
#[command(name = "frontdesk-asr", about = "Front Desk Whisper ASR engine")]
struct Args {
    /// Unix socket to listen on.
    #[arg(long)]
    socket: PathBuf,
    /// whisper.cpp ggml model file.
    #[arg(long)]
    model: PathBuf,
    /// Inference threads (default: min(cores, 4)).
    #[arg(long)]
    threads: Option<u32>,
    /// Smallest shortened encoder window (Whisper frames of 20 ms; 1500 = full 30 s).
    /// Shorter windows are faster but tiny.en starts dropping words below ~768.
    #[arg(long, default_value_t = policy::DEFAULT_AUDIO_CTX_FLOOR)]
    audio_ctx_floor: u32,
    /// Waiting requests beyond the one running before `busy`.
    #[arg(long, default_value_t = 4)]
    queue: usize,
    /// Beam width for decoding (1 = greedy). Wider beams fix some mishearings of short phone
    /// turns at the cost of decoder time.
    #[arg(long, default_value_t = 1)]
    beam: u32,
    /// Logit bonus for the first token of an expected phrase (see `bias` in the protocol). 5 turns
    /// "nine o'clock" (heard "I look like") right on 8 kHz audio when nine is offered; 3 does not.
    #[arg(long, default_value_t = 5.0)]
    bias_start: f32,
    /// Logit bonus for continuing an expected phrase once its first tokens were decoded.
    #[arg(long, default_value_t = 4.0)]
    bias_continue: f32,
    /// Scheduling niceness (0–19). The engine that re-hears names in the background runs at 19,
    /// so it only uses the CPU the live recogniser, VAD and TTS leave idle.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(i32).range(0..=19))]
    nice: i32,
}

/// whisper.cpp's abort callback: `user_data` is the job's cancel flag.
unsafe extern "C" fn abort_if_cancelled(user_data: *mut std::ffi::c_void) -> bool {
    // SAFETY: see the call site; the flag outlives the run.
    let flag = unsafe { &*(user_data as *const AtomicBool) };
    flag.load(Ordering::Relaxed)
}

const PAD_SAMPLES: usize = 16_000 * 3 / 10;

struct Asr {
    // The state borrows nothing from the context in whisper-rs 0.16 (it holds an Arc); the
    // context also tokenizes the phrase hints.
    model: WhisperContext,
    state: WhisperState,
    threads: u32,
    ctx_floor: u32,
    eot: i32,
    n_vocab: usize,
    beam: u32,
    bias_start: f32,
    bias_continue: f32,
}

fn default_threads() -> u32 {
    std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1).min(4)
}

fn load(args: &Args, threads: u32) -> Result<Asr, String> {
    if !args.model.is_file() {
        return Err(format!("Whisper model {} is missing; reinstall the model bundle", args.model.display()));
    }
    let ctx = WhisperContext::new_with_params(&args.model, WhisperContextParameters::default())
        .map_err(|e| format!("Whisper model {} could not be loaded ({e}); the file is corrupt or not a ggml model — reinstall the model bundle", args.model.display()))?;
    let state = ctx.create_state().map_err(|e| format!("cannot allocate Whisper state: {e}"))?;
    let eot = ctx.token_eot();
    let n_vocab = ctx.n_vocab().max(0) as usize;
    Ok(Asr { model: ctx, state, threads, ctx_floor: args.audio_ctx_floor, eot, n_vocab, beam: args.beam.max(1), bias_start: args.bias_start, bias_continue: args.bias_continue })
}

impl Engine for Asr {
    fn handle(&mut self, job: &Job) -> Result<(Response, Vec<u8>), Failure> {
        let Request::Transcribe { id, sample_rate, prompt, audio_ctx, bias, .. } = &job.request else {
            return Err(Failure::bad_request(format!("the ASR engine does not handle `{}`", job.request.kind())));
        };
        if *sample_rate != 16000 {
            return Err(Failure::bad_request(format!("sample rate {sample_rate} Hz: the ASR engine takes 16000 Hz mono PCM")));
        }
        let pcm = bytes_to_pcm(&job.payload).ok_or_else(|| Failure::bad_request("audio payload has an odd number of bytes"))?;
        if pcm.is_empty() {
            return Err(Failure::bad_request("empty audio"));
        }
        if pcm.len() > (MAX_UTTERANCE_SECS * 16000) as usize {
            return Err(Failure::bad_request(format!("audio longer than {MAX_UTTERANCE_SECS} s; split the utterance")));
        }
        // The padding (below) must not push the end of a 30 s utterance out of Whisper's window.
        let pad_len = PAD_SAMPLES.min(((MAX_UTTERANCE_SECS * 16000) as usize).saturating_sub(pcm.len()) / 2);
        let ctx = audio_ctx.unwrap_or_else(|| audio_ctx_for(pcm.len() + 2 * pad_len, 16000, self.ctx_floor)).min(1500);
        if is_near_silent(&pcm) {
            return Ok((Response::Transcript { id: *id, text: String::new(), segments: vec![], audio_ctx: ctx, skipped_silence: true }, vec![]));
        }
        // 300 ms of silence either side: the turn-taker cuts utterances at the first and last voiced
        // frame, and Whisper drops soft onsets ("nine" → "I") without a lead-in. Measured on the
        // scripted-caller lines (tiny.en, vocabulary prompt): word errors 58 → 55 at 16 kHz and
        // 85 → 77 on the 8 kHz phone path, at no extra encoder cost (the window is fixed).
        let pad = vec![0.0f32; pad_len];
        let samples: Vec<f32> = pad.iter().copied().chain(pcm.iter().map(|&s| s as f32 / 32768.0)).chain(pad.iter().copied()).collect();

        let strategy = if self.beam > 1 {
            SamplingStrategy::BeamSearch { beam_size: self.beam as i32, patience: -1.0 }
        } else {
            SamplingStrategy::Greedy { best_of: 1 }
        };
        let mut params = FullParams::new(strategy);
        params.set_n_threads(self.threads as i32);
        params.set_language(Some("en"));
        params.set_translate(false);
        params.set_no_context(true);
        // An utterance is one turn: one segment, and no timestamp tokens to decode (faster).
        params.set_single_segment(true);
        params.set_no_timestamps(true);
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        // No temperature fallback: a re-decode doubles latency on a phone turn.
        params.set_temperature_inc(0.0);
        params.set_audio_ctx(ctx as i32);
        if let Some(p) = prompt.as_deref().filter(|p| !p.trim().is_empty()) {
            params.set_initial_prompt(p);
        }
        let biasing = Biasing { bias: self.phrase_bias(bias), n_vocab: self.n_vocab };
        if !biasing.bias.is_empty() {
            // SAFETY: `params` is consumed by `full` below, which returns before `biasing` is
            // dropped at the end of this function; the callback only reads it.
            unsafe {
                params.set_filter_logits_callback(Some(bias_logits));
                params.set_filter_logits_callback_user_data(
                    &biasing as *const Biasing as *mut std::ffi::c_void,
                );
            }
        }
        // A cancel (the caller spoke on after a speculative pause, or went away) stops the run
        // within milliseconds (the patched whisper.cpp checks it between graph nodes, see
        // vendor/whisper-rs-sys), so the next turn does not queue behind a result nobody wants. whisper-rs 0.16's closure-based `set_abort_callback_safe` casts
        // its user data to the wrong type (it made whisper_full fail with -6 or hang), hence the
        // plain function over the job's cancel flag.
        let cancel = job.cancel_flag();
        // SAFETY: `cancel` lives until the end of this function, after `full` has returned; the
        // callback only loads the atomic.
        unsafe {
            params.set_abort_callback(Some(abort_if_cancelled));
            params.set_abort_callback_user_data(Arc::as_ptr(&cancel) as *mut std::ffi::c_void);
        }

        self.state.full(params, &samples).map_err(|e| {
            if job.cancelled() {
                Failure::cancelled()
            } else {
                Failure::internal(format!("whisper failed: {e}"))
            }
        })?;
        if job.cancelled() {
            return Err(Failure::cancelled());
        }
        let duration = pcm.len() as f32 / 16000.0;
        let mut segments = Vec::new();
        let mut text = String::new();
        for seg in self.state.as_iter() {
            let seg_text = seg.to_str_lossy().map(|s| s.into_owned()).unwrap_or_default();
            let (mut sum, mut n) = (0.0f32, 0u32);
            for t in 0..seg.n_tokens() {
                if let Some(tok) = seg.get_token(t) {
                    let d = tok.token_data();
                    if d.id < self.eot {
                        sum += d.plog;
                        n += 1;
                    }
                }
            }
            // With no_timestamps whisper reports 0..0; the utterance is one segment anyway.
            let (t0, t1) = (seg.start_timestamp() as f32 / 100.0, seg.end_timestamp() as f32 / 100.0);
            let t1 = if t1 <= t0 { duration } else { t1 };
            text.push_str(&seg_text);
            segments.push(Segment {
                text: seg_text.trim().to_string(),
                t0,
                t1,
                avg_logprob: if n > 0 { sum / n as f32 } else { 0.0 },
                no_speech_prob: seg.no_speech_probability(),
            });
        }
        Ok((Response::Transcript { id: *id, text: text.trim().to_string(), segments, audio_ctx: ctx, skipped_silence: false }, vec![]))
    }
}

impl Asr {
    /// Token sequences of the expected phrases, in the spellings the decoder may produce.
    fn phrase_bias(&self, phrases: &[String]) -> PhraseBias {
        let tokens = phrases
            .iter()
            .take(64)
            .flat_map(|p| phrase_variants(p))
            .filter_map(|v| self.model.tokenize(&v, 32).ok())
            .collect();
        PhraseBias::new(tokens, self.bias_start, self.bias_continue)
    }
}

struct Biasing {
    bias: PhraseBias,
    n_vocab: usize,
}

/// whisper.cpp's logits filter: called once per decoding step with the tokens so far.
unsafe extern "C" fn bias_logits(
    _ctx: *mut whisper_rs::WhisperSysContext,
    _state: *mut whisper_rs::WhisperSysState,
    tokens: *const whisper_rs::WhisperTokenData,
    n_tokens: std::os::raw::c_int,
    logits: *mut f32,
    user_data: *mut std::ffi::c_void,
) {
    if user_data.is_null() || logits.is_null() {
        return;
    }
    // SAFETY: user_data is the `Biasing` set in `handle`, alive for the whole run; whisper.cpp
    // passes its current sequence (n_tokens entries) and a logits row of n_vocab floats.
    let b = unsafe { &*(user_data as *const Biasing) };
    let so_far: Vec<i32> = if tokens.is_null() || n_tokens <= 0 {
        Vec::new()
    } else {
        unsafe { std::slice::from_raw_parts(tokens, n_tokens as usize) }
            .iter()
            .map(|t| t.id)
            .collect()
    };
    let logits = unsafe { std::slice::from_raw_parts_mut(logits, b.n_vocab) };
    b.bias.apply(&so_far, logits);
}

fn main() {
    let args = Args::parse();
    if args.nice != 0 {
        // Before any other thread exists: Linux threads take the nice value of the thread that
        // creates them, and whisper.cpp's compute threads are created later, from this one.
        // SAFETY: a plain system call on the calling thread; no memory is shared.
        if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, args.nice) } != 0 {
            eprintln!("frontdesk-asr: could not lower the scheduling priority: {}", std::io::Error::last_os_error());
        }
    }
    // whisper.cpp prints every decoded token to stderr at debug level: that is patient speech.
    // The hooks route its log into the (absent) Rust log backend, i.e. drop it.
    whisper_rs::install_logging_hooks();
    let threads = args.threads.unwrap_or_else(default_threads).max(1);
    let model = args.model.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let engine = load(&args, threads).map(|e| Box::new(e) as Box<dyn Engine>);
    if let Err(e) = &engine {
        eprintln!("frontdesk-asr: {e}");
    }
    let info = EngineInfo { engine: "asr".into(), model, threads, problem: None };
    if let Err(e) = serve(&args.socket, info, engine, args.queue) {
        eprintln!("frontdesk-asr: {e}");
        std::process::exit(1);
    }
}
