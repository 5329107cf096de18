//! Caller speech: espeak-ng → sox (mono s16 at 8 kHz, or 16 kHz for wideband G.722 calls),
//! cached by a hash of the text and voice settings, plus silence padding (baresip's aufile
//! ends the call at end of file).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use crate::error::{io_err, Error, Result};

#[derive(Debug, Clone)]
pub struct SpeechCache {
    pub dir: PathBuf,
    pub voice: String,
    pub words_per_minute: u32,
    /// Sample rate of every file made: 8000 (G.711 calls) or 16000 (G.722 calls, so the
    /// caller really sends wideband audio).
    pub rate: u32,
}

impl SpeechCache {
    /// Cache in `dir` (created). Default voice en-us at 150 wpm, like the shared recipe.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        Ok(Self { dir, voice: "en-us".into(), words_per_minute: 150, rate: 8000 })
    }

    /// The default shared cache: `$FD_E2E_SPEECH_CACHE` or `<tmp>/fd-e2e-speech`.
    pub fn default_dir() -> PathBuf {
        std::env::var_os("FD_E2E_SPEECH_CACHE").map(PathBuf::from).unwrap_or_else(|| std::env::temp_dir().join("fd-e2e-speech"))
    }

    fn key(&self, parts: &[&str]) -> String {
        let mut h = Sha256::new();
        if self.rate != 8000 {
            // 8 kHz keys stay as they were, so existing caches remain valid.
            h.update(format!("rate={}", self.rate).as_bytes());
            h.update([0u8]);
        }
        for p in parts {
            h.update(p.as_bytes());
            h.update([0u8]);
        }
        hex::encode(&h.finalize()[..12])
    }

    /// Mono WAV of `text` at `rate` (speech only, no padding).
    pub fn speech(&self, text: &str) -> Result<PathBuf> {
        let wpm = self.words_per_minute.to_string();
        let out = self.dir.join(format!("{}.wav", self.key(&["espeak", &self.voice, &wpm, text])));
        if out.exists() {
            return Ok(out);
        }
        let raw = tmp_name(&out, "raw.wav");
        run(Command::new("espeak-ng").args(["-v", &self.voice, "-s", &wpm, "-w"]).arg(&raw).arg("--").arg(text), "espeak-ng", "espeak-ng")?;
        let tmp = tmp_name(&out, "wav");
        let r = convert_to(&raw, &tmp, 0.0, self.rate);
        let _ = std::fs::remove_file(&raw);
        r?;
        // rename is atomic: parallel tests never see a half-written file
        std::fs::rename(&tmp, &out).map_err(io_err(&out))?;
        Ok(out)
    }

    /// `src` converted to mono s16 at `rate` followed by `pad_secs` of silence (cached).
    pub fn padded(&self, src: &Path, pad_secs: u32) -> Result<PathBuf> {
        let meta = std::fs::metadata(src).map_err(io_err(src))?;
        let id = format!("{}:{}:{:?}", src.display(), meta.len(), meta.modified().ok());
        let out = self.dir.join(format!("{}-pad{pad_secs}.wav", self.key(&["pad", &id])));
        if out.exists() {
            return Ok(out);
        }
        let tmp = tmp_name(&out, "wav");
        convert_to(src, &tmp, f64::from(pad_secs), self.rate)?;
        std::fs::rename(&tmp, &out).map_err(io_err(&out))?;
        Ok(out)
    }

    /// `secs` of digital silence, mono at `rate` (cached).
    pub fn silence(&self, secs: u32) -> Result<PathBuf> {
        let name = if self.rate == 8000 { format!("silence-{secs}.wav") } else { format!("silence-{secs}-{}.wav", self.rate) };
        let out = self.dir.join(name);
        if out.exists() {
            return Ok(out);
        }
        let tmp = tmp_name(&out, "wav");
        run(
            Command::new("sox").args(["-n", "-r", &self.rate.to_string(), "-c", "1", "-b", "16", "-e", "signed-integer"]).arg(&tmp).args(["trim", "0", &secs.to_string()]),
            "sox",
            "sox",
        )?;
        std::fs::rename(&tmp, &out).map_err(io_err(&out))?;
        Ok(out)
    }
}

fn tmp_name(out: &Path, ext: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    out.with_extension(format!("tmp{}-{n}.{ext}", std::process::id()))
}

/// Any WAV → 8 kHz mono s16 WAV with `pad_secs` of trailing silence.
pub fn convert(src: &Path, dst: &Path, pad_secs: f64) -> Result<()> {
    convert_to(src, dst, pad_secs, 8000)
}

/// Any WAV → mono s16 WAV at `rate` with `pad_secs` of trailing silence.
pub fn convert_to(src: &Path, dst: &Path, pad_secs: f64, rate: u32) -> Result<()> {
    let mut c = Command::new("sox");
    c.arg(src).args(["-r", &rate.to_string(), "-c", "1", "-b", "16", "-e", "signed-integer"]).arg(dst);
    if pad_secs > 0.0 {
        c.args(["pad", "0", &format!("{pad_secs}")]);
    }
    run(&mut c, "sox", "sox")
}

pub(crate) fn run(cmd: &mut Command, name: &str, package: &'static str) -> Result<()> {
    let out = cmd.stdin(Stdio::null()).output().map_err(|source| Error::Spawn { program: name.into(), package, source })?;
    if !out.status.success() {
        return Err(Error::Tool { program: name.into(), detail: String::from_utf8_lossy(&out.stderr).trim().to_string() });
    }
    Ok(())
}
