//! Model manifest, signed model bundles, the Whisper CTranslate2→ggml converter, and the small local
//! protocol the appliance uses to talk to its engine processes.
//!
//! This crate must never link an inference engine (ggml, ONNX Runtime, espeak-ng): each engine lives
//! in its own binary under `models/engines/`, because whisper-rs and llama-cpp-2 each carry a copy of
//! ggml and one silently replaces the other when both are linked into one binary.

/// Engine protocol: frames and message types (owned by the model-engines work).
pub mod protocol;
/// Engine side of the protocol: the socket server each engine binary runs.
pub mod protocol_server;
/// Async clients for the engines (tokio).
pub mod client;

use std::path::PathBuf;

/// The concrete files one engine set runs on, resolved from an installed bundle.
/// Every path is absolute and its hash has already been verified by the bundle installer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModelPaths {
    /// whisper.cpp ggml model (role `asr`).
    pub asr: PathBuf,
    /// GGUF chat model (role `llm`).
    pub llm: PathBuf,
    /// Piper voice: the `.onnx` model (role `tts`) ...
    pub tts_model: PathBuf,
    /// ... and its `.onnx.json` config (role `tts-config`).
    pub tts_config: PathBuf,
    /// Silero VAD ONNX model (role `vad`).
    pub vad: PathBuf,
    /// ONNX Runtime shared library used by TTS and VAD (role `onnxruntime`).
    pub onnxruntime: PathBuf,
    /// whisper.cpp ggml model used to re-hear names (role `asr-names`), if the bundle has one.
    #[serde(default)]
    pub asr_names: Option<PathBuf>,
    /// Real surname spellings, one per line (role `surnames`), if the bundle has them.
    #[serde(default)]
    pub surnames: Option<PathBuf>,
    /// Real first-name spellings, one per line (role `first-names`), if the bundle has them.
    #[serde(default)]
    pub first_names: Option<PathBuf>,
    /// Surname homophones (role `surname-homophones`), if the bundle has them: UTF-8 lines
    /// `RARE<TAB>COMMON` (both upper case as in the Census lists, sorted by RARE, each RARE once),
    /// a rare spelling and the far more common spelling that sounds the same.
    #[serde(default)]
    pub surname_homophones: Option<PathBuf>,
    /// First-name homophones (role `first-name-homophones`), if the bundle has them: the same
    /// format as `surname_homophones`; female and male names are never mapped to each other.
    #[serde(default)]
    pub first_name_homophones: Option<PathBuf>,
}

// ---- model supply chain ----
pub mod bundle;
pub mod convert;
pub mod error;
pub mod keys;
pub mod manifest;
pub mod sources;

pub use bundle::{install, rollback, Bundle, InstalledBundle};
pub use error::{BundleError, ModelsError};
pub use manifest::{Manifest, ModelEntry, Role};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_paths_without_optional_roles_still_parse() {
        // The serialized form written before the optional roles (`asr-names`, `surnames`,
        // `first-names`, `surname-homophones`, `first-name-homophones`) existed.
        let old = r#"{"asr":"/b/asr/a.bin","llm":"/b/l.gguf","tts_model":"/b/t.onnx",
            "tts_config":"/b/t.onnx.json","vad":"/b/v.onnx","onnxruntime":"/b/o.so"}"#;
        let p: ModelPaths = serde_json::from_str(old).unwrap();
        assert_eq!(p.asr_names, None);
        assert_eq!(p.surnames, None);
        assert_eq!(p.first_names, None);
        assert_eq!(p.surname_homophones, None);
        assert_eq!(p.first_name_homophones, None);
        let with = ModelPaths {
            asr_names: Some("/b/asr-names/ggml-base.bin".into()),
            surnames: Some("/b/names/surnames.txt".into()),
            first_names: Some("/b/names/first-names.txt".into()),
            surname_homophones: Some("/b/names/surname-homophones.txt".into()),
            first_name_homophones: Some("/b/names/first-name-homophones.txt".into()),
            ..p
        };
        let back: ModelPaths =
            serde_json::from_str(&serde_json::to_string(&with).unwrap()).unwrap();
        assert_eq!(back, with);
    }
}
