//! The crate's error type for the model supply chain (converter, keys, manifests, bundles).
//!
//! Messages are written for the IT person who installs or updates an appliance: each says what is
//! wrong and what to do. None of them contains patient data (this crate never sees any).

use std::path::PathBuf;

/// Errors from the Whisper converter, key handling, manifests and bundle installation.
#[derive(Debug, thiserror::Error)]
pub enum ModelsError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    // ---- Whisper converter ----
    #[error("{path} is not a CTranslate2 model.bin this converter reads: {reason}")]
    Ct2Format { path: PathBuf, reason: String },
    #[error(
        "{path} is truncated ({what}): re-run packaging/fetch-models.py to fetch a verified copy"
    )]
    Ct2Truncated { path: PathBuf, what: String },
    #[error("CTranslate2 variable {name} has data type {dtype}, which the converter does not support (only float16/float32 Whisper models convert losslessly)")]
    Ct2UnsupportedDtype { name: String, dtype: String },
    #[error("CTranslate2 model has no variable {name}: it is not a complete Whisper model")]
    Ct2MissingVariable { name: String },
    #[error("CTranslate2 variable {name} has an unexpected shape {shape:?}: {reason}")]
    Ct2Shape {
        name: String,
        shape: Vec<u32>,
        reason: &'static str,
    },
    #[error(
        "CTranslate2 model is a {spec}, not a WhisperSpec: only Whisper models can be converted"
    )]
    NotWhisper { spec: String },
    #[error("CTranslate2 variable {name} has a non-zero key bias, which whisper.cpp cannot represent; this model cannot be converted")]
    NonZeroKeyBias { name: String },
    #[error("{path}: {reason}")]
    Asset { path: PathBuf, reason: String },

    // ---- first-column (CSV) converter ----
    #[error("{path}: {reason}; the first-column converter needs a CSV file with a header row and one non-empty, unquoted value per row in its first column")]
    FirstColumn { path: PathBuf, reason: String },

    // ---- homophones converter (name lists → homophone table, via the espeak-ng program) ----
    #[error("{path}: {reason}; the homophones converter needs a Census name list: one `NAME FREQUENCY CUMULATIVE RANK` row per line")]
    Homophones { path: PathBuf, reason: String },
    #[error("cannot run {program} ({source}): building the name homophone tables phonemizes the names with espeak-ng; install it (`apt-get install espeak-ng`) and build again")]
    EspeakMissing {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("espeak-ng {reason}; building the name homophone tables needs a working `espeak-ng -q -x -v en-us` (`apt-get install espeak-ng` installs it with its voices)")]
    Espeak { reason: String },

    // ---- keys ----
    #[error("key file {path}: {reason}")]
    KeyFile { path: PathBuf, reason: String },

    // ---- manifests and bundles ----
    #[error("bundle manifest is invalid: {reason}; ask the vendor for a correctly built bundle")]
    ManifestInvalid { reason: String },
    #[error(
        "bundle has no usable manifest.sig: {reason}; the bundle is incomplete, do not install it"
    )]
    SignatureMissing { reason: String },
    #[error("bundle is signed with key {key_id}, which this appliance does not trust: ask the vendor for a bundle signed with your appliance's key (a dev key is trusted only by a --dev appliance)")]
    UnknownKey { key_id: String },
    #[error("bundle signature does not verify with trusted key {key_id}: the bundle was modified or signed by someone else; do not install it")]
    SignatureInvalid { key_id: String },
    #[error("bundle version {offered} is older than installed version {installed}: downgrades are refused (use `frontdesk models rollback`)")]
    Downgrade { offered: u64, installed: u64 },
    #[error("bundle expired at {expires}: ask the vendor for a current bundle")]
    Expired { expires: String },
    #[error("bundle file path {file:?} is not a plain relative path inside the bundle: the bundle is malformed or malicious; do not install it")]
    PathEscape { file: String },
    #[error("bundle has no model for role {role}: the appliance needs one of each (asr, llm, tts, tts-config, vad, onnxruntime)")]
    MissingRole { role: String },
    #[error(
        "bundle has more than one model for role {role}: the appliance would not know which to run"
    )]
    DuplicateRole { role: String },
    #[error("file {file}: missing from the bundle; copy the complete bundle again")]
    FileMissing { file: String },
    #[error("file {file}: size mismatch (expected {expected} bytes, found {found}); copy the bundle again")]
    SizeMismatch {
        file: String,
        expected: u64,
        found: u64,
    },
    #[error("file {file}: sha256 mismatch (expected {expected}, found {found}); the file is corrupt or was modified, copy the bundle again")]
    HashMismatch {
        file: String,
        expected: String,
        found: String,
    },
    #[error("bundle archive is malformed: {reason}")]
    Archive { reason: String },
    #[error("no model bundle is installed in {models_dir}: install one with `frontdesk models install <bundle>`")]
    NoCurrentBundle { models_dir: PathBuf },
    #[error(
        "no previous model bundle is kept in {models_dir}, so there is nothing to roll back to"
    )]
    NoPreviousBundle { models_dir: PathBuf },

    // ---- vendor build ----
    #[error("model sources {path}: {reason}")]
    Sources { path: PathBuf, reason: String },
}

/// The bundle installer's errors are the crate's errors; the alias names what callers handle.
pub type BundleError = ModelsError;

impl ModelsError {
    /// An I/O error on `path` while doing `action` (e.g. "read", "create").
    pub fn io_public(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::io(action, path, source)
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        ModelsError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = ModelsError> = std::result::Result<T, E>;
