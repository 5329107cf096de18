//! The local engine protocol (in the spirit of Home Assistant's Wyoming).
//!
//! One Unix stream socket per engine. Every frame is
//! `u32-be header length | JSON header | u32-be payload length | payload bytes`,
//! so audio travels as raw little-endian PCM instead of base64. A header always carries the
//! request `id`; requests are multiplexed by id on one connection and their responses stream
//! (`token`, `audio-chunk`, ...) until exactly one terminal response (`done`-like or `error`).
//!
//! This module is pure data + framing (no sockets): both sides share it, and it is unit tested
//! without any engine.

use serde::{Deserialize, Serialize};

/// Largest JSON header accepted (a long system prompt fits comfortably).
pub const MAX_HEADER_BYTES: usize = 256 * 1024;
/// Largest binary payload accepted: 30 s of 16 kHz i16 audio is 960 kB; synthesized audio is
/// chunked per sentence.
pub const MAX_PAYLOAD_BYTES: usize = 4 * 1024 * 1024;
/// Longest utterance the ASR engine accepts.
pub const MAX_UTTERANCE_SECS: u32 = 30;

/// One chat message for the LLM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `user`, `assistant` (the system prompt is set separately and stays cached).
    pub role: String,
    pub content: String,
}

/// A request from the appliance to an engine. Unknown fields are rejected (`bad-request`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// Liveness: answered by the server loop even while the model is busy.
    Health { id: u64 },
    /// Model, threads, resident memory.
    Info { id: u64 },
    /// Stop request `target` (queued or in flight); it ends with `error{code: cancelled}`.
    Cancel { id: u64, target: u64 },
    /// ASR. Payload: mono i16 little-endian PCM at `sample_rate` (must be 16000).
    Transcribe {
        id: u64,
        sample_rate: u32,
        /// Vocabulary bias (practice name, providers, services) fed as Whisper's initial prompt.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prompt: Option<String>,
        /// Override the automatic shortened encoder window (in mel frames/2, max 1500; 0 = full).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        audio_ctx: Option<u32>,
        /// Phrases the caller is likely to say now (the times just offered, the name on file):
        /// the decoder favours them where the audio is ambiguous. Never logged (may be PHI).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        bias: Vec<String>,
        /// Started ahead of the caller's end of turn (they may speak on): any work request that
        /// is not speculative preempts it, queued or running, with `busy`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        speculative: bool,
    },
    /// LLM: replace the cached system prompt (its KV cache is computed once, here).
    SetSystemPrompt { id: u64, text: String },
    /// LLM: one turn on top of the cached system prompt. Streams `token`s, ends in `generated`.
    Generate {
        id: u64,
        messages: Vec<ChatMessage>,
        /// GBNF grammar; takes precedence over `json_schema`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        grammar: Option<String>,
        /// JSON schema (subset: objects, typed properties, enums, strings, integers, numbers,
        /// booleans, nullable) converted to GBNF by the engine.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        json_schema: Option<serde_json::Value>,
        max_tokens: u32,
        temperature: f32,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        stop: Vec<String>,
    },
    /// TTS: streams one `audio-chunk` per sentence (i16 LE PCM payload), ends in `synthesized`.
    Synthesize { id: u64, text: String, sample_rate: u32 },
    /// TTS: pre-synthesize fixed prompts so later `synthesize` calls for them answer instantly.
    Preload { id: u64, texts: Vec<String>, sample_rate: u32 },
    /// VAD: open a stream with its own recurrent state; the stream is named by this request's id.
    VadOpen { id: u64, sample_rate: u32 },
    /// VAD: payload = whole frames (512 samples at 16 kHz, 256 at 8 kHz) of i16 LE PCM.
    VadPush { id: u64, stream: u64 },
    VadClose { id: u64, stream: u64 },
}

impl Request {
    pub fn id(&self) -> u64 {
        match self {
            Request::Health { id }
            | Request::Info { id }
            | Request::Cancel { id, .. }
            | Request::Transcribe { id, .. }
            | Request::SetSystemPrompt { id, .. }
            | Request::Generate { id, .. }
            | Request::Synthesize { id, .. }
            | Request::Preload { id, .. }
            | Request::VadOpen { id, .. }
            | Request::VadPush { id, .. }
            | Request::VadClose { id, .. } => *id,
        }
    }

    /// Work that gives way to any other work (see `Transcribe::speculative`).
    pub fn is_speculative(&self) -> bool {
        matches!(self, Request::Transcribe { speculative: true, .. })
    }

    /// A short name for logs (never the content: prompts and audio may carry PHI).
    pub fn kind(&self) -> &'static str {
        match self {
            Request::Health { .. } => "health",
            Request::Info { .. } => "info",
            Request::Cancel { .. } => "cancel",
            Request::Transcribe { .. } => "transcribe",
            Request::SetSystemPrompt { .. } => "set-system-prompt",
            Request::Generate { .. } => "generate",
            Request::Synthesize { .. } => "synthesize",
            Request::Preload { .. } => "preload",
            Request::VadOpen { .. } => "vad-open",
            Request::VadPush { .. } => "vad-push",
            Request::VadClose { .. } => "vad-close",
        }
    }
}

/// Error classes every engine reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    /// The request itself is wrong (empty/over-long audio, wrong sample rate, unknown field).
    BadRequest,
    /// The model file is missing, corrupt or cannot be loaded.
    Model,
    /// Cancelled by the client.
    Cancelled,
    /// The engine's queue is full.
    Busy,
    /// A bug or an unexpected failure inside the engine.
    Internal,
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ErrorCode::BadRequest => "bad-request",
            ErrorCode::Model => "model",
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::Busy => "busy",
            ErrorCode::Internal => "internal",
        })
    }
}

/// Whisper segment with timing in seconds and confidence figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub text: String,
    pub t0: f32,
    pub t1: f32,
    /// Mean token log-probability (closer to 0 = more confident).
    pub avg_logprob: f32,
    pub no_speech_prob: f32,
}

/// A response from an engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Response {
    Health {
        id: u64,
        engine: String,
        ready: bool,
        /// Why the engine is not ready (e.g. the model file failed to load), for the doctor.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        problem: Option<String>,
    },
    Info {
        id: u64,
        engine: String,
        model: String,
        threads: u32,
        rss_bytes: u64,
    },
    /// Streamed LLM token text.
    Token { id: u64, text: String },
    /// Streamed synthesized audio: payload is i16 LE PCM at `sample_rate`.
    AudioChunk {
        id: u64,
        sample_rate: u32,
        /// Index of the sentence this chunk belongs to.
        sentence: u32,
        /// Answered from the preload cache.
        cached: bool,
    },
    Transcript {
        id: u64,
        text: String,
        segments: Vec<Segment>,
        /// Encoder window actually used (0 = full 30 s window).
        audio_ctx: u32,
        /// True when the energy guard skipped Whisper (near-silent audio).
        skipped_silence: bool,
    },
    Generated {
        id: u64,
        text: String,
        prompt_tokens: u32,
        generated_tokens: u32,
        /// Why generation ended: `eos`, `max-tokens`, `stop`, `grammar`.
        finish: String,
    },
    Synthesized { id: u64, samples: u64, sentences: u32 },
    /// VAD stream opened (its handle is the request id) with the frame size it expects.
    VadOpened { id: u64, frame_samples: u32 },
    /// One speech probability per pushed frame.
    VadProbs { id: u64, probs: Vec<f32> },
    /// Generic success (set-system-prompt, preload, vad-close).
    Ok { id: u64 },
    Error { id: u64, code: ErrorCode, message: String },
}

impl Response {
    pub fn id(&self) -> u64 {
        match self {
            Response::Health { id, .. }
            | Response::Info { id, .. }
            | Response::Token { id, .. }
            | Response::AudioChunk { id, .. }
            | Response::Transcript { id, .. }
            | Response::Generated { id, .. }
            | Response::Synthesized { id, .. }
            | Response::VadOpened { id, .. }
            | Response::VadProbs { id, .. }
            | Response::Ok { id }
            | Response::Error { id, .. } => *id,
        }
    }

    /// Streamed responses are followed by more; every request ends in exactly one terminal one.
    pub fn is_terminal(&self) -> bool {
        !matches!(self, Response::Token { .. } | Response::AudioChunk { .. })
    }

    pub fn error(id: u64, code: ErrorCode, message: impl Into<String>) -> Self {
        Response::Error { id, code, message: message.into() }
    }
}

/// Framing and decoding failures.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame header of {0} bytes exceeds the {MAX_HEADER_BYTES}-byte limit")]
    HeaderTooLarge(usize),
    #[error("frame payload of {0} bytes exceeds the {MAX_PAYLOAD_BYTES}-byte limit")]
    PayloadTooLarge(usize),
    #[error("malformed frame header: {0}")]
    BadHeader(String),
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
}

/// Encode one frame.
pub fn encode_frame<T: Serialize>(header: &T, payload: &[u8]) -> Result<Vec<u8>, FrameError> {
    let json = serde_json::to_vec(header).map_err(|e| FrameError::BadHeader(e.to_string()))?;
    if json.len() > MAX_HEADER_BYTES {
        return Err(FrameError::HeaderTooLarge(json.len()));
    }
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(FrameError::PayloadTooLarge(payload.len()));
    }
    let mut out = Vec::with_capacity(8 + json.len() + payload.len());
    out.extend_from_slice(&(json.len() as u32).to_be_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// Incremental frame decoder (sans-IO): feed bytes as they arrive, take complete frames out.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
}

/// A decoded frame: the raw JSON header and the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    pub header: Vec<u8>,
    pub payload: Vec<u8>,
}

impl RawFrame {
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, FrameError> {
        serde_json::from_slice(&self.header).map_err(|e| FrameError::BadHeader(e.to_string()))
    }

    /// Best-effort request id from a header that failed to parse, so the error can be routed.
    pub fn id_hint(&self) -> Option<u64> {
        serde_json::from_slice::<serde_json::Value>(&self.header)
            .ok()?
            .get("id")?
            .as_u64()
    }
}

impl FrameDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed. Oversized lengths are an
    /// error before any allocation, so a hostile peer cannot make us allocate 4 GB.
    pub fn next_frame(&mut self) -> Result<Option<RawFrame>, FrameError> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let hlen = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
        if hlen > MAX_HEADER_BYTES {
            return Err(FrameError::HeaderTooLarge(hlen));
        }
        if self.buf.len() < 4 + hlen + 4 {
            return Ok(None);
        }
        let p = 4 + hlen;
        let plen =
            u32::from_be_bytes([self.buf[p], self.buf[p + 1], self.buf[p + 2], self.buf[p + 3]]) as usize;
        if plen > MAX_PAYLOAD_BYTES {
            return Err(FrameError::PayloadTooLarge(plen));
        }
        let total = 4 + hlen + 4 + plen;
        if self.buf.len() < total {
            return Ok(None);
        }
        let header = self.buf[4..4 + hlen].to_vec();
        let payload = self.buf[p + 4..total].to_vec();
        self.buf.drain(..total);
        Ok(Some(RawFrame { header, payload }))
    }
}

/// i16 PCM → little-endian bytes.
pub fn pcm_to_bytes(pcm: &[i16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pcm.len() * 2);
    for s in pcm {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// Little-endian bytes → i16 PCM; `None` on an odd byte count.
#[allow(clippy::manual_is_multiple_of)] // is_multiple_of needs Rust 1.87; MSRV is 1.80
pub fn bytes_to_pcm(bytes: &[u8]) -> Option<Vec<i16>> {
    if bytes.len() % 2 != 0 {
        return None;
    }
    Some(bytes.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trip_split_across_reads() {
        let req = Request::Transcribe { id: 7, sample_rate: 16000, prompt: Some("Dr. Patel".into()), audio_ctx: None, bias: vec!["nine o'clock".into()], speculative: true };
        let pcm = [1i16, -2, 300, i16::MIN, i16::MAX];
        let bytes = encode_frame(&req, &pcm_to_bytes(&pcm)).unwrap();
        let mut dec = FrameDecoder::new();
        for b in &bytes[..bytes.len() - 1] {
            dec.push(std::slice::from_ref(b));
            assert!(dec.next_frame().unwrap().is_none());
        }
        dec.push(&bytes[bytes.len() - 1..]);
        let f = dec.next_frame().unwrap().unwrap();
        assert_eq!(f.parse::<Request>().unwrap(), req);
        assert_eq!(bytes_to_pcm(&f.payload).unwrap(), pcm);
        assert!(dec.next_frame().unwrap().is_none());
    }

    #[test]
    fn oversized_lengths_rejected_before_allocation() {
        let mut dec = FrameDecoder::new();
        dec.push(&u32::MAX.to_be_bytes());
        assert!(matches!(dec.next_frame(), Err(FrameError::HeaderTooLarge(_))));
        let mut dec = FrameDecoder::new();
        dec.push(&2u32.to_be_bytes());
        dec.push(b"{}");
        dec.push(&(MAX_PAYLOAD_BYTES as u32 + 1).to_be_bytes());
        assert!(matches!(dec.next_frame(), Err(FrameError::PayloadTooLarge(_))));
    }

    #[test]
    fn unknown_field_is_rejected_and_id_still_recoverable() {
        let raw = RawFrame { header: br#"{"type":"health","id":9,"bogus":1}"#.to_vec(), payload: vec![] };
        assert!(raw.parse::<Request>().is_err());
        assert_eq!(raw.id_hint(), Some(9));
    }

    #[test]
    fn terminal_classification() {
        assert!(!Response::Token { id: 1, text: "a".into() }.is_terminal());
        assert!(Response::error(1, ErrorCode::Busy, "x").is_terminal());
        let e = serde_json::to_string(&Response::error(3, ErrorCode::BadRequest, "m")).unwrap();
        assert!(e.contains(r#""code":"bad-request""#), "{e}");
    }

    #[test]
    fn odd_pcm_byte_count_is_none() {
        assert!(bytes_to_pcm(&[1, 2, 3]).is_none());
    }
}
