//! Piper TTS engine process (piper-rs; GPL espeak-ng stays in this process).
//!
//! `frontdesk-tts --socket PATH --model voice.onnx --config voice.onnx.json --onnxruntime libonnxruntime.so [--threads N]`
//!
//! Text is split into sentences; each sentence's audio is resampled to the requested rate and
//! streamed as soon as it exists (the first without Piper's lead-in silence). Fixed prompts can be
//! preloaded and are then answered from memory. Never logs the text it speaks (PHI).

use std::collections::HashMap;
use std::path::PathBuf;

use clap::Parser;
use fd_models::protocol::{pcm_to_bytes, Request, Response};
use fd_models::protocol_server::{serve, Engine, EngineInfo, Failure, Job};
use piper_rs::{ModelConfig, Piper};

mod lead;
mod resample;
mod sentences;
use lead::trim_lead;
use resample::{resample, to_i16};
use sentences::split_for_speech;

#[derive(Parser, Debug)]
#[command(name = "frontdesk-tts", about = "Front Desk Piper TTS engine")]
struct Args {
    #[arg(long)]
    socket: PathBuf,
    /// Piper voice model (.onnx).
    #[arg(long)]
    model: PathBuf,
    /// Piper voice config (.onnx.json).
    #[arg(long)]
    config: PathBuf,
    /// ONNX Runtime shared library (libonnxruntime.so.*).
    #[arg(long)]
    onnxruntime: PathBuf,
    #[arg(long)]
    threads: Option<u32>,
    #[arg(long, default_value_t = 4)]
    queue: usize,
}

/// Longest text accepted in one request.
const MAX_TEXT_CHARS: usize = 4000;
/// Preloaded prompts kept (each a few seconds of audio).
const MAX_CACHE_ENTRIES: usize = 64;

struct Tts {
    piper: Piper,
    native_rate: u32,
    cache: HashMap<(String, u32), Vec<i16>>,
}

fn default_threads() -> u32 {
    std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1).min(4)
}

/// Initialise ONNX Runtime from `lib`. ort rc.12 deadlocks when the library path is missing,
/// so existence is checked first.
fn init_onnxruntime(lib: &std::path::Path) -> Result<(), String> {
    if !lib.is_file() {
        return Err(format!("ONNX Runtime library {} is missing; reinstall the model bundle", lib.display()));
    }
    let builder = ort::init_from(lib).map_err(|e| format!("ONNX Runtime {} could not be loaded: {e}", lib.display()))?;
    builder.with_name("frontdesk-tts").commit();
    Ok(())
}

fn load(args: &Args, threads: u32) -> Result<Tts, String> {
    init_onnxruntime(&args.onnxruntime)?;
    for p in [&args.model, &args.config] {
        if !p.is_file() {
            return Err(format!("Piper voice file {} is missing; reinstall the model bundle", p.display()));
        }
    }
    let config_text = std::fs::read_to_string(&args.config)
        .map_err(|e| format!("cannot read Piper config {}: {e}", args.config.display()))?;
    let config: ModelConfig = serde_json::from_str(&config_text)
        .map_err(|e| format!("Piper config {} is corrupt ({e}); reinstall the model bundle", args.config.display()))?;
    let native_rate = config.audio.sample_rate;
    let bad = |e: &dyn std::fmt::Display| {
        format!("Piper voice {} could not be loaded ({e}); the file is corrupt — reinstall the model bundle", args.model.display())
    };
    let builder = ort::session::Session::builder().map_err(|e| bad(&e))?;
    let mut builder = builder.with_intra_threads(threads as usize).map_err(|e| bad(&e))?;
    let session = builder.commit_from_file(&args.model).map_err(|e| bad(&e))?;
    let mut piper = Piper::from_session(session, config);
    // First inference is several times slower (allocations, kernel selection): pay it now.
    let _ = piper.create("Hello.", false, None, None, None, None);
    Ok(Tts { piper, native_rate, cache: HashMap::new() })
}

fn cache_key(text: &str, rate: u32) -> (String, u32) {
    (text.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase(), rate)
}

impl Tts {
    fn speak(&mut self, sentence: &str, rate: u32) -> Result<Vec<i16>, Failure> {
        let (samples, native) = self
            .piper
            .create(sentence, false, None, None, None, None)
            .map_err(|e| Failure::internal(format!("Piper failed: {e}")))?;
        let native = if native == 0 { self.native_rate } else { native };
        Ok(to_i16(&resample(&samples, native, rate)))
    }

    fn check(text: &str, rate: u32) -> Result<(), Failure> {
        if rate != 8000 && rate != 16000 {
            return Err(Failure::bad_request(format!("sample rate {rate} Hz: the TTS engine produces 8000 or 16000 Hz")));
        }
        if text.trim().is_empty() {
            return Err(Failure::bad_request("empty text"));
        }
        if text.chars().count() > MAX_TEXT_CHARS {
            return Err(Failure::bad_request(format!("text longer than {MAX_TEXT_CHARS} characters")));
        }
        Ok(())
    }
}

impl Engine for Tts {
    fn handle(&mut self, job: &Job) -> Result<(Response, Vec<u8>), Failure> {
        match &job.request {
            Request::Synthesize { id, text, sample_rate } => {
                let (id, rate) = (*id, *sample_rate);
                Self::check(text, rate)?;
                if let Some(pcm) = self.cache.get(&cache_key(text, rate)) {
                    let pcm = trim_lead(pcm, rate);
                    let n = pcm.len() as u64;
                    job.emit(&Response::AudioChunk { id, sample_rate: rate, sentence: 0, cached: true }, &pcm_to_bytes(pcm));
                    return Ok((Response::Synthesized { id, samples: n, sentences: 1 }, vec![]));
                }
                let sentences = split_for_speech(text);
                if sentences.is_empty() {
                    return Err(Failure::bad_request("text has nothing speakable"));
                }
                let mut total = 0u64;
                for (i, s) in sentences.iter().enumerate() {
                    if job.cancelled() {
                        return Err(Failure::cancelled());
                    }
                    let (pcm, cached) = match self.cache.get(&cache_key(s, rate)) {
                        Some(p) => (p.clone(), true),
                        None => (self.speak(s, rate)?, false),
                    };
                    // Only the reply's first sentence: later ones keep their lead as a pause.
                    let pcm = if i == 0 { trim_lead(&pcm, rate) } else { &pcm };
                    total += pcm.len() as u64;
                    job.emit(&Response::AudioChunk { id, sample_rate: rate, sentence: i as u32, cached }, &pcm_to_bytes(pcm));
                }
                Ok((Response::Synthesized { id, samples: total, sentences: sentences.len() as u32 }, vec![]))
            }
            Request::Preload { id, texts, sample_rate } => {
                for t in texts {
                    Self::check(t, *sample_rate)?;
                }
                for t in texts {
                    if job.cancelled() {
                        return Err(Failure::cancelled());
                    }
                    let key = cache_key(t, *sample_rate);
                    if self.cache.contains_key(&key) {
                        continue;
                    }
                    if self.cache.len() >= MAX_CACHE_ENTRIES {
                        return Err(Failure::bad_request(format!("preload cache is full ({MAX_CACHE_ENTRIES} prompts)")));
                    }
                    let mut pcm = Vec::new();
                    for s in split_for_speech(t) {
                        pcm.extend(self.speak(&s, *sample_rate)?);
                    }
                    self.cache.insert(key, pcm);
                }
                Ok((Response::Ok { id: *id }, vec![]))
            }
            other => Err(Failure::bad_request(format!("the TTS engine does not handle `{}`", other.kind()))),
        }
    }
}

fn main() {
    let args = Args::parse();
    let threads = args.threads.unwrap_or_else(default_threads).max(1);
    let model = args.model.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let engine = load(&args, threads).map(|e| Box::new(e) as Box<dyn Engine>);
    if let Err(e) = &engine {
        eprintln!("frontdesk-tts: {e}");
    }
    let info = EngineInfo { engine: "tts".into(), model, threads, problem: None };
    if let Err(e) = serve(&args.socket, info, engine, args.queue) {
        eprintln!("frontdesk-tts: {e}");
        std::process::exit(1);
    }
}
