//! Shared helpers for the engine proof tests: locating the engine binaries and the real model
//! files, spawning an engine on a private socket, reading WAVs, WER, G.711 μ-law.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../../engines/tts/src/resample.rs"]
pub mod resample;

/// `$FRONTDESK_CACHE` or `~/.cache/frontdesk`.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("FRONTDESK_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/frontdesk"))
}

/// A model file from the cache, or a test failure telling how to fetch it (never a silent pass).
pub fn model(rel: &str) -> PathBuf {
    let p = cache_dir().join(rel);
    assert!(p.is_file(), "model file {} is missing: run packaging/setup.sh (it fetches the models and builds the dev bundle; set FRONTDESK_CACHE if the cache is elsewhere)", p.display());
    p
}

/// The converted Whisper models come from the dev bundle (packaging/build-dev-bundle.sh), the
/// only place set-up writes them.
pub fn whisper_model() -> PathBuf {
    model("bundles/dev/asr/ggml-tiny.en.bin")
}
/// Whisper base, the background recogniser that re-hears names (role `asr-names`).
pub fn names_model() -> PathBuf {
    model("bundles/dev/asr-names/ggml-base.bin")
}
pub fn llm_model() -> PathBuf {
    model("files/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf")
}
pub fn piper_model() -> PathBuf {
    model("files/piper-joe/en_US-joe-medium.onnx")
}
pub fn piper_config() -> PathBuf {
    model("files/piper-joe/en_US-joe-medium.onnx.json")
}
pub fn silero_model() -> PathBuf {
    model("files/silero-vad/silero_vad.onnx")
}
pub fn onnxruntime() -> PathBuf {
    model("files/onnxruntime/libonnxruntime.so.1.31.1")
}

pub fn model_paths() -> fd_models::ModelPaths {
    fd_models::ModelPaths {
        asr: whisper_model(),
        llm: llm_model(),
        tts_model: piper_model(),
        tts_config: piper_config(),
        vad: silero_model(),
        onnxruntime: onnxruntime(),
        asr_names: None,
        surnames: None,
        first_names: None,
        surname_homophones: None,
        first_name_homophones: None,
    }
}

/// Directory of the engine binaries: `$FRONTDESK_ENGINE_BIN_DIR`, else this test's target dir.
pub fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("FRONTDESK_ENGINE_BIN_DIR") {
        return PathBuf::from(d);
    }
    // target/<profile>/deps/<test-exe> → target/<profile>
    let exe = std::env::current_exe().expect("current exe");
    exe.parent().and_then(Path::parent).expect("target dir").to_path_buf()
}

pub fn engine_bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.is_file(),
        "{} not built: run `cargo build -p fd-engine-asr -p fd-engine-llm -p fd-engine-tts -p fd-engine-vad` with the same target dir and profile first",
        p.display()
    );
    p
}

/// A running engine process, killed on drop.
pub struct EngineProc {
    pub child: Child,
    pub socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for EngineProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawn `binary` with `args` plus `--socket`, and wait until its socket exists.
pub fn spawn_engine(binary: &str, args: &[&str]) -> EngineProc {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("engine.sock");
    let child = Command::new(engine_bin(binary))
        .arg("--socket")
        .arg(&socket)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn engine");
    let deadline = Instant::now() + Duration::from_secs(60);
    // The socket file appears at bind(), a moment before listen(): wait for a real connection.
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(Instant::now() < deadline, "{binary} did not accept connections within 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    EngineProc { child, socket, _dir: dir }
}

pub fn asr_engine() -> EngineProc {
    let m = whisper_model();
    spawn_engine("frontdesk-asr", &["--model", m.to_str().unwrap()])
}
pub fn llm_engine() -> EngineProc {
    let m = llm_model();
    spawn_engine("frontdesk-llm", &["--model", m.to_str().unwrap()])
}
pub fn tts_engine() -> EngineProc {
    let (m, c, o) = (piper_model(), piper_config(), onnxruntime());
    spawn_engine("frontdesk-tts", &["--model", m.to_str().unwrap(), "--config", c.to_str().unwrap(), "--onnxruntime", o.to_str().unwrap()])
}
pub fn vad_engine() -> EngineProc {
    let (m, o) = (silero_model(), onnxruntime());
    spawn_engine("frontdesk-vad", &["--model", m.to_str().unwrap(), "--onnxruntime", o.to_str().unwrap()])
}

// ------------------------------------------------------------ speech data

pub const LIBRIVOX: &str = "/usr/share/pocketsphinx/test/data/librivox";

/// The 5 LibriVox clips with their reference transcripts (Debian pocketsphinx-testdata).
pub fn librivox() -> Vec<(String, Vec<i16>, String)> {
    let dir = Path::new(LIBRIVOX);
    let tr = std::fs::read_to_string(dir.join("transcription"))
        .unwrap_or_else(|_| panic!("{LIBRIVOX}/transcription missing: apt-get install pocketsphinx-testdata"));
    let mut out = Vec::new();
    for line in tr.lines().filter(|l| !l.trim().is_empty()) {
        let (text, id) = line.rsplit_once('(').expect("transcription line");
        let id = id.trim_end_matches(')').trim().to_string();
        let text = text.replace("<s>", "").replace("</s>", "").trim().to_string();
        let (pcm, rate) = read_wav(&dir.join(format!("{id}.wav")));
        assert_eq!(rate, 16000);
        out.push((id, pcm, text));
    }
    assert_eq!(out.len(), 5, "expected 5 LibriVox clips");
    out
}

/// Minimal RIFF/WAVE reader for 16-bit mono PCM.
pub fn read_wav(path: &Path) -> (Vec<i16>, u32) {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(&b[0..4] == b"RIFF" && &b[8..12] == b"WAVE", "not a WAV");
    let mut i = 12;
    let mut rate = 0;
    while i + 8 <= b.len() {
        let id = &b[i..i + 4];
        let len = u32::from_le_bytes([b[i + 4], b[i + 5], b[i + 6], b[i + 7]]) as usize;
        let body = &b[i + 8..(i + 8 + len).min(b.len())];
        if id == b"fmt " {
            assert_eq!(u16::from_le_bytes([body[0], body[1]]), 1, "PCM only");
            assert_eq!(u16::from_le_bytes([body[2], body[3]]), 1, "mono only");
            rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
            assert_eq!(u16::from_le_bytes([body[14], body[15]]), 16, "16-bit only");
        } else if id == b"data" {
            return (body.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect(), rate);
        }
        i += 8 + len + (len & 1);
    }
    panic!("no data chunk in {}", path.display());
}

// ------------------------------------------------------------ WER

/// Lower-case, punctuation to spaces, "mr" spelled out as the LibriVox references do.
pub fn normalise(s: &str) -> Vec<String> {
    s.to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() || c == '\'' { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .map(|w| match w {
            "mr" => "mister".to_string(),
            "mrs" => "missus".to_string(),
            "dr" => "doctor".to_string(),
            w => w.trim_matches('\'').to_string(),
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// Word edit distance and reference length.
pub fn word_errors(reference: &str, hypothesis: &str) -> (usize, usize) {
    let r = normalise(reference);
    let h = normalise(hypothesis);
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    for i in 1..=r.len() {
        let mut cur = vec![i; h.len() + 1];
        for j in 1..=h.len() {
            let sub = prev[j - 1] + usize::from(r[i - 1] != h[j - 1]);
            cur[j] = sub.min(prev[j] + 1).min(cur[j - 1] + 1);
        }
        prev = cur;
    }
    (prev[h.len()], r.len())
}

// ------------------------------------------------------------ phone path

/// G.711 μ-law encode (ITU-T reference algorithm).
pub fn ulaw_encode(s: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut x = s as i32;
    let sign = if x < 0 { 0x80 } else { 0 };
    if x < 0 {
        x = -x;
    }
    x = x.min(CLIP) + BIAS;
    let mut exp = 7;
    let mut mask = 0x4000;
    while exp > 0 && x & mask == 0 {
        exp -= 1;
        mask >>= 1;
    }
    let mant = (x >> (exp + 3)) & 0x0f;
    !(sign | (exp << 4) | mant) as u8
}

pub fn ulaw_decode(u: u8) -> i16 {
    let u = !u as i32;
    let sign = u & 0x80;
    let exp = (u >> 4) & 0x07;
    let mant = u & 0x0f;
    let x = (((mant << 3) + 0x84) << exp) - 0x84;
    (if sign != 0 { -x } else { x }) as i16
}

/// 16 kHz → 8 kHz → μ-law → back → 16 kHz: what a caller's speech looks like after the PBX.
pub fn phone_path(pcm16k: &[i16]) -> Vec<i16> {
    let f: Vec<f32> = pcm16k.iter().map(|&s| s as f32 / 32768.0).collect();
    let down = resample::resample(&f, 16000, 8000);
    let coded: Vec<f32> = resample::to_i16(&down).into_iter().map(|s| ulaw_decode(ulaw_encode(s)) as f32 / 32768.0).collect();
    resample::to_i16(&resample::resample(&coded, 8000, 16000))
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

#[test]
fn wer_and_ulaw_helpers() {
    assert_eq!(word_errors("and mister john", "And Mr. John."), (0, 3));
    assert_eq!(word_errors("a b c d", "a x c"), (2, 4));
    for s in [-32768i16, -1000, -1, 0, 1, 1000, 32767] {
        let d = ulaw_decode(ulaw_encode(s));
        assert!((d as i32 - s as i32).abs() <= (s as i32).abs() / 16 + 8, "{s} -> {d}");
    }
}

/// Clients with generous timeouts: these tests check behaviour, and the shared CI/dev machine can
/// be heavily loaded. Promptness (dead engine → `Unavailable`) is asserted separately.
pub fn asr_client(socket: &Path) -> fd_models::client::AsrClient {
    fd_models::client::AsrClient(fd_models::client::EngineClient::new("asr", socket, fd_models::client::Timeouts::new(1000, 300_000)))
}
pub fn tts_client(socket: &Path) -> fd_models::client::TtsClient {
    fd_models::client::TtsClient(fd_models::client::EngineClient::new("tts", socket, fd_models::client::Timeouts::new(1000, 300_000)))
}
pub fn llm_client(socket: &Path) -> fd_models::client::LlmClient {
    fd_models::client::LlmClient(fd_models::client::EngineClient::new("llm", socket, fd_models::client::Timeouts::new(1000, 300_000)))
}
