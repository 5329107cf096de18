//! Async (tokio) clients for the engine processes.
//!
//! Every call has a timeout and a dead engine is reported as [`EngineError::Unavailable`] at
//! once: the connection's reader task drops every pending request when the socket closes, so
//! nothing waits for a reply that cannot come. A client reconnects lazily on the next call, which
//! is what makes a supervisor restart transparent to callers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::protocol::{
    bytes_to_pcm, encode_frame, pcm_to_bytes, ChatMessage, ErrorCode, FrameDecoder, Request, Response,
    Segment,
};

/// Errors a caller of an engine sees.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    #[error("the {engine} engine is unavailable ({reason}); the supervisor restarts it — if this persists run `frontdesk doctor`")]
    Unavailable { engine: String, reason: String },
    #[error("the {engine} engine did not answer within {after:?}; it may be overloaded — check CPU load and `frontdesk doctor`")]
    Timeout { engine: String, after: Duration },
    #[error("the {engine} engine rejected the request: {message}")]
    BadRequest { engine: String, message: String },
    #[error("the {engine} engine's model could not be used: {message}; reinstall the model bundle")]
    Model { engine: String, message: String },
    #[error("the request was cancelled")]
    Cancelled,
    #[error("the {engine} engine is busy; retry shortly")]
    Busy { engine: String },
    #[error("the {engine} engine failed internally: {message}")]
    Internal { engine: String, message: String },
    #[error("the {engine} engine sent an unexpected reply: {message}")]
    Protocol { engine: String, message: String },
}

impl EngineError {
    fn remote(engine: &str, code: ErrorCode, message: String) -> Self {
        let engine = engine.to_string();
        match code {
            ErrorCode::BadRequest => EngineError::BadRequest { engine, message },
            ErrorCode::Model => EngineError::Model { engine, message },
            ErrorCode::Cancelled => EngineError::Cancelled,
            ErrorCode::Busy => EngineError::Busy { engine },
            ErrorCode::Internal => EngineError::Internal { engine, message },
        }
    }
}

/// Timeouts for one engine client.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    /// Whole request, from sending to the terminal response.
    pub request: Duration,
}

impl Timeouts {
    pub const fn new(connect_ms: u64, request_ms: u64) -> Self {
        Self { connect: Duration::from_millis(connect_ms), request: Duration::from_millis(request_ms) }
    }
}

type Pending = Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<(Response, Vec<u8>)>>>>;

struct Conn {
    /// Whole frames for the connection's writer task. A request future can be dropped at any
    /// await (a call discards its speculation the moment the caller speaks on); writing from it
    /// directly could leave half a frame on the socket, and the next frame would then be garbage
    /// to the engine, which drops the connection with every other call's request on it.
    frames: mpsc::UnboundedSender<Vec<u8>>,
    pending: Pending,
    alive: Arc<AtomicBool>,
}

/// A reconnecting connection to one engine's socket; the typed clients wrap it.
#[derive(Clone)]
pub struct EngineClient {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    engine: String,
    socket: PathBuf,
    timeouts: Timeouts,
    conn: tokio::sync::Mutex<Option<Arc<Conn>>>,
    next_id: AtomicU64,
}

/// The responses of one request, in order. Dropping it before the end cancels the request.
pub struct ResponseStream {
    client: EngineClient,
    id: u64,
    rx: mpsc::UnboundedReceiver<(Response, Vec<u8>)>,
    deadline: Instant,
    finished: bool,
}

impl EngineClient {
    pub fn new(engine: impl Into<String>, socket: impl Into<PathBuf>, timeouts: Timeouts) -> Self {
        Self {
            inner: Arc::new(ClientInner {
                engine: engine.into(),
                socket: socket.into(),
                timeouts,
                conn: tokio::sync::Mutex::new(None),
                next_id: AtomicU64::new(1),
            }),
        }
    }

    pub fn engine(&self) -> &str {
        &self.inner.engine
    }

    pub fn socket(&self) -> &Path {
        &self.inner.socket
    }

    fn unavailable(&self, reason: impl Into<String>) -> EngineError {
        EngineError::Unavailable { engine: self.inner.engine.clone(), reason: reason.into() }
    }

    async fn connection(&self) -> Result<Arc<Conn>, EngineError> {
        let mut slot = self.inner.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            if c.alive.load(Ordering::Acquire) {
                return Ok(c.clone());
            }
        }
        let stream = tokio::time::timeout(self.inner.timeouts.connect, UnixStream::connect(&self.inner.socket))
            .await
            .map_err(|_| self.unavailable("connect timed out"))?
            .map_err(|e| self.unavailable(format!("cannot connect to {}: {e}", self.inner.socket.display())))?;
        let (mut rd, mut wr) = stream.into_split();
        let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
        let alive = Arc::new(AtomicBool::new(true));
        let (frames, mut frames_rx) = mpsc::unbounded_channel::<Vec<u8>>();
        let conn = Arc::new(Conn { frames, pending: pending.clone(), alive: alive.clone() });
        // Ends when the connection is replaced and dropped (the channel closes) or a write fails.
        let writer_alive = alive.clone();
        tokio::spawn(async move {
            while let Some(frame) = frames_rx.recv().await {
                if wr.write_all(&frame).await.is_err() {
                    writer_alive.store(false, Ordering::Release);
                    break;
                }
            }
        });
        tokio::spawn(async move {
            let mut dec = FrameDecoder::new();
            let mut buf = vec![0u8; 64 * 1024];
            'outer: loop {
                let n = match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                dec.push(&buf[..n]);
                loop {
                    let frame = match dec.next_frame() {
                        Ok(Some(f)) => f,
                        Ok(None) => break,
                        Err(_) => break 'outer,
                    };
                    let Ok(resp) = frame.parse::<Response>() else { continue };
                    let id = resp.id();
                    let terminal = resp.is_terminal();
                    let Ok(mut p) = pending.lock() else { break 'outer };
                    if let Some(tx) = p.get(&id) {
                        let _ = tx.send((resp, frame.payload));
                    }
                    if terminal {
                        p.remove(&id);
                    }
                }
            }
            // Dropping the senders wakes every waiter with "unavailable".
            alive.store(false, Ordering::Release);
            if let Ok(mut p) = pending.lock() {
                p.clear();
            }
        });
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Send one request (its id is assigned here) and get its response stream.
    pub async fn request(&self, make: impl FnOnce(u64) -> Request, payload: &[u8]) -> Result<ResponseStream, EngineError> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let req = make(id);
        let frame = encode_frame(&req, payload).map_err(|e| EngineError::BadRequest {
            engine: self.inner.engine.clone(),
            message: e.to_string(),
        })?;
        let deadline = Instant::now() + self.inner.timeouts.request;
        let conn = self.connection().await?;
        let (tx, rx) = mpsc::unbounded_channel();
        if let Ok(mut p) = conn.pending.lock() {
            p.insert(id, tx);
        }
        // Queued whole; an engine that stops reading is caught by the response deadline.
        if conn.frames.send(frame).is_err() {
            conn.alive.store(false, Ordering::Release);
            return Err(self.unavailable("write failed: the connection's writer has stopped"));
        }
        // The reader may have died between connect and register: don't wait for nothing.
        if !conn.alive.load(Ordering::Acquire) {
            return Err(self.unavailable("connection closed"));
        }
        Ok(ResponseStream { client: self.clone(), id, rx, deadline, finished: false })
    }

    /// Ask the engine to stop request `target`.
    pub async fn cancel(&self, target: u64) {
        if let Ok(mut s) = self.request(|id| Request::Cancel { id, target }, &[]).await {
            s.finished = true; // no cancel-of-cancel on drop
            let _ = tokio::time::timeout(Duration::from_millis(200), s.rx.recv()).await;
        }
    }

    /// Send a request and wait for its terminal response, ignoring streamed ones.
    pub async fn call(&self, make: impl FnOnce(u64) -> Request, payload: &[u8]) -> Result<(Response, Vec<u8>), EngineError> {
        let mut s = self.request(make, payload).await?;
        while let Some((r, p)) = s.next().await? {
            if r.is_terminal() {
                return Ok((r, p));
            }
        }
        Err(self.unavailable("no terminal response"))
    }

    pub async fn health(&self) -> Result<Health, EngineError> {
        match self.call(|id| Request::Health { id }, &[]).await? {
            (Response::Health { ready, problem, .. }, _) => Ok(Health { ready, problem }),
            (other, _) => Err(self.unexpected(&other)),
        }
    }

    pub async fn info(&self) -> Result<EngineInfoReply, EngineError> {
        match self.call(|id| Request::Info { id }, &[]).await? {
            (Response::Info { model, threads, rss_bytes, .. }, _) => Ok(EngineInfoReply { model, threads, rss_bytes }),
            (other, _) => Err(self.unexpected(&other)),
        }
    }

    fn unexpected(&self, r: &Response) -> EngineError {
        EngineError::Protocol { engine: self.inner.engine.clone(), message: format!("unexpected response {:?}", std::mem::discriminant(r)) }
    }
}

impl ResponseStream {
    /// The request id (for [`EngineClient::cancel`]).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Next response; `Ok(None)` after the terminal one. An `error` response becomes `Err`.
    pub async fn next(&mut self) -> Result<Option<(Response, Vec<u8>)>, EngineError> {
        if self.finished {
            return Ok(None);
        }
        match tokio::time::timeout_at(self.deadline, self.rx.recv()).await {
            Err(_) => {
                self.finished = true;
                let (c, id) = (self.client.clone(), self.id);
                tokio::spawn(async move { c.cancel(id).await });
                Err(EngineError::Timeout { engine: self.client.inner.engine.clone(), after: self.client.inner.timeouts.request })
            }
            Ok(None) => {
                self.finished = true;
                Err(self.client.unavailable("connection lost mid-request (engine exited?)"))
            }
            Ok(Some((resp, payload))) => {
                if resp.is_terminal() {
                    self.finished = true;
                }
                if let Response::Error { code, message, .. } = resp {
                    return Err(EngineError::remote(&self.client.inner.engine, code, message));
                }
                Ok(Some((resp, payload)))
            }
        }
    }

    /// Cancel the request and wait (bounded) for its end.
    pub async fn cancel(mut self) {
        if self.finished {
            return;
        }
        self.client.cancel(self.id).await;
        self.finished = true;
    }
}

impl Drop for ResponseStream {
    fn drop(&mut self) {
        if !self.finished {
            let (c, id) = (self.client.clone(), self.id);
            if let Ok(h) = tokio::runtime::Handle::try_current() {
                h.spawn(async move { c.cancel(id).await });
            }
        }
    }
}

/// Reply to `health`.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    pub ready: bool,
    pub problem: Option<String>,
}

/// Reply to `info`.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineInfoReply {
    pub model: String,
    pub threads: u32,
    pub rss_bytes: u64,
}

// ---------------------------------------------------------------- ASR

/// Options for one transcription.
#[derive(Debug, Clone, Default)]
pub struct TranscribeOpts {
    /// Vocabulary bias: practice name, providers, services (Whisper initial prompt).
    pub vocabulary_prompt: Option<String>,
    /// Force an encoder window (0 = full 30 s); `None` = the engine's length-proportional choice.
    pub audio_ctx: Option<u32>,
    /// Phrases the caller is likely to say now (see `Request::Transcribe::bias`).
    pub bias: Vec<String>,
    /// Ahead of the end of turn: another caller's finished turn preempts it (`busy`).
    pub speculative: bool,
}

/// A transcription.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    pub text: String,
    pub segments: Vec<Segment>,
    pub audio_ctx: u32,
    pub skipped_silence: bool,
}

/// Whisper engine client.
#[derive(Clone)]
pub struct AsrClient(pub EngineClient);

impl AsrClient {
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self(EngineClient::new("asr", socket, Timeouts::new(1000, 15_000)))
    }

    /// Transcribe one utterance of 16 kHz mono PCM.
    pub async fn transcribe(&self, pcm16k: &[i16], opts: &TranscribeOpts) -> Result<Transcript, EngineError> {
        let prompt = opts.vocabulary_prompt.clone();
        let audio_ctx = opts.audio_ctx;
        let (bias, speculative) = (opts.bias.clone(), opts.speculative);
        let (resp, _) = self
            .0
            .call(|id| Request::Transcribe { id, sample_rate: 16000, prompt, audio_ctx, bias, speculative }, &pcm_to_bytes(pcm16k))
            .await?;
        match resp {
            Response::Transcript { text, segments, audio_ctx, skipped_silence, .. } => {
                Ok(Transcript { text, segments, audio_ctx, skipped_silence })
            }
            other => Err(self.0.unexpected(&other)),
        }
    }
}

// ---------------------------------------------------------------- LLM

/// Options for one generation.
#[derive(Debug, Clone)]
pub struct GenerateOpts {
    /// GBNF grammar (wins over `json_schema`).
    pub grammar: Option<String>,
    pub json_schema: Option<serde_json::Value>,
    pub max_tokens: u32,
    /// 0 = greedy.
    pub temperature: f32,
    pub stop: Vec<String>,
}

impl Default for GenerateOpts {
    fn default() -> Self {
        Self { grammar: None, json_schema: None, max_tokens: 128, temperature: 0.0, stop: Vec::new() }
    }
}

/// The result of a generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    pub text: String,
    pub prompt_tokens: u32,
    pub generated_tokens: u32,
    pub finish: String,
}

/// One event of a streamed generation.
#[derive(Debug, Clone, PartialEq)]
pub enum GenerateEvent {
    Token(String),
    Done(Generation),
}

/// LLM engine client.
#[derive(Clone)]
pub struct LlmClient(pub EngineClient);

/// A streamed generation; drop or [`TokenStream::cancel`] to stop it.
pub struct TokenStream(ResponseStream);

impl TokenStream {
    pub fn id(&self) -> u64 {
        self.0.id()
    }

    /// Next token or the final result; `Ok(None)` after `Done`.
    pub async fn next(&mut self) -> Result<Option<GenerateEvent>, EngineError> {
        match self.0.next().await? {
            None => Ok(None),
            Some((Response::Token { text, .. }, _)) => Ok(Some(GenerateEvent::Token(text))),
            Some((Response::Generated { text, prompt_tokens, generated_tokens, finish, .. }, _)) => {
                Ok(Some(GenerateEvent::Done(Generation { text, prompt_tokens, generated_tokens, finish })))
            }
            Some((other, _)) => Err(self.0.client.unexpected(&other)),
        }
    }

    pub async fn cancel(self) {
        self.0.cancel().await
    }
}

impl LlmClient {
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self(EngineClient::new("llm", socket, Timeouts::new(1000, 60_000)))
    }

    /// Replace the cached system prompt (evaluated once, kept resident).
    pub async fn set_system_prompt(&self, text: &str) -> Result<(), EngineError> {
        let text = text.to_string();
        match self.0.call(|id| Request::SetSystemPrompt { id, text }, &[]).await? {
            (Response::Ok { .. }, _) => Ok(()),
            (other, _) => Err(self.0.unexpected(&other)),
        }
    }

    /// Start a generation for this turn's messages; tokens stream as they are sampled.
    pub async fn generate_stream(&self, messages: &[ChatMessage], opts: &GenerateOpts) -> Result<TokenStream, EngineError> {
        let o = opts.clone();
        let messages = messages.to_vec();
        let s = self
            .0
            .request(
                |id| Request::Generate {
                    id,
                    messages,
                    grammar: o.grammar,
                    json_schema: o.json_schema,
                    max_tokens: o.max_tokens,
                    temperature: o.temperature,
                    stop: o.stop,
                },
                &[],
            )
            .await?;
        Ok(TokenStream(s))
    }

    /// Generate and wait for the whole result.
    pub async fn generate(&self, messages: &[ChatMessage], opts: &GenerateOpts) -> Result<Generation, EngineError> {
        let mut s = self.generate_stream(messages, opts).await?;
        while let Some(ev) = s.next().await? {
            if let GenerateEvent::Done(g) = ev {
                return Ok(g);
            }
        }
        Err(self.0.unavailable("generation ended without a result"))
    }
}

// ---------------------------------------------------------------- TTS

/// One chunk of synthesized audio (one sentence).
#[derive(Debug, Clone, PartialEq)]
pub struct AudioChunk {
    pub pcm: Vec<i16>,
    pub sample_rate: u32,
    pub sentence: u32,
    pub cached: bool,
}

/// Streamed synthesis; drop or cancel to stop it.
pub struct AudioStream(ResponseStream);

impl AudioStream {
    pub fn id(&self) -> u64 {
        self.0.id()
    }

    /// Next sentence's audio; `Ok(None)` when done.
    pub async fn next(&mut self) -> Result<Option<AudioChunk>, EngineError> {
        loop {
            match self.0.next().await? {
                None => return Ok(None),
                Some((Response::AudioChunk { sample_rate, sentence, cached, .. }, payload)) => {
                    let pcm = bytes_to_pcm(&payload).ok_or_else(|| EngineError::Protocol {
                        engine: "tts".into(),
                        message: "odd-length audio payload".into(),
                    })?;
                    return Ok(Some(AudioChunk { pcm, sample_rate, sentence, cached }));
                }
                Some((Response::Synthesized { .. }, _)) => continue,
                Some((other, _)) => return Err(self.0.client.unexpected(&other)),
            }
        }
    }

    pub async fn cancel(self) {
        self.0.cancel().await
    }
}

/// Piper engine client.
#[derive(Clone)]
pub struct TtsClient(pub EngineClient);

impl TtsClient {
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self(EngineClient::new("tts", socket, Timeouts::new(1000, 30_000)))
    }

    /// Synthesize `text` at 8000 or 16000 Hz, streamed sentence by sentence.
    pub async fn synthesize(&self, text: &str, sample_rate: u32) -> Result<AudioStream, EngineError> {
        let text = text.to_string();
        Ok(AudioStream(self.0.request(|id| Request::Synthesize { id, text, sample_rate }, &[]).await?))
    }

    /// Synthesize and collect everything.
    pub async fn synthesize_all(&self, text: &str, sample_rate: u32) -> Result<Vec<i16>, EngineError> {
        let mut s = self.synthesize(text, sample_rate).await?;
        let mut out = Vec::new();
        while let Some(c) = s.next().await? {
            out.extend_from_slice(&c.pcm);
        }
        Ok(out)
    }

    /// Pre-synthesize fixed prompts (greeting, disclosure, hold phrases).
    pub async fn preload(&self, texts: &[String], sample_rate: u32) -> Result<(), EngineError> {
        let texts = texts.to_vec();
        match self.0.call(|id| Request::Preload { id, texts, sample_rate }, &[]).await? {
            (Response::Ok { .. }, _) => Ok(()),
            (other, _) => Err(self.0.unexpected(&other)),
        }
    }
}

// ---------------------------------------------------------------- VAD

/// Silero engine client.
#[derive(Clone)]
pub struct VadClient(pub EngineClient);

/// One VAD stream with its own recurrent state. Close it (or drop the connection) when done.
pub struct VadStream {
    client: EngineClient,
    stream: u64,
    frame_samples: u32,
}

impl VadClient {
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self(EngineClient::new("vad", socket, Timeouts::new(500, 2_000)))
    }

    /// Open a stream at 16000 (512-sample frames) or 8000 Hz (256-sample frames).
    pub async fn open(&self, sample_rate: u32) -> Result<VadStream, EngineError> {
        match self.0.call(|id| Request::VadOpen { id, sample_rate }, &[]).await? {
            (Response::VadOpened { id, frame_samples }, _) => Ok(VadStream { client: self.0.clone(), stream: id, frame_samples }),
            (other, _) => Err(self.0.unexpected(&other)),
        }
    }
}

impl VadStream {
    pub fn frame_samples(&self) -> usize {
        self.frame_samples as usize
    }

    /// Push whole frames; one speech probability per frame.
    pub async fn push(&self, pcm: &[i16]) -> Result<Vec<f32>, EngineError> {
        let stream = self.stream;
        match self.client.call(|id| Request::VadPush { id, stream }, &pcm_to_bytes(pcm)).await? {
            (Response::VadProbs { probs, .. }, _) => Ok(probs),
            (other, _) => Err(self.client.unexpected(&other)),
        }
    }

    pub async fn close(self) -> Result<(), EngineError> {
        let stream = self.stream;
        self.client.call(|id| Request::VadClose { id, stream }, &[]).await.map(|_| ())
    }
}
