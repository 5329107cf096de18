//! The signed manifest of a model bundle (`manifest.json`), and its validation rules.

use std::collections::HashSet;
use std::path::{Component, Path};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{ModelsError, Result};

/// The manifest format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// What a model file is for on the appliance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Asr,
    Llm,
    Tts,
    TtsConfig,
    Vad,
    Onnxruntime,
    /// A second Whisper model that re-hears turns carrying a caller's name (optional).
    AsrNames,
    /// Real surname spellings, one per line (optional): how a heard surname is usually spelled.
    Surnames,
    /// Real first-name spellings, one per line (optional): how a heard first name is usually
    /// spelled.
    FirstNames,
    /// Surname homophones, `RARE<TAB>COMMON` per line (optional): a rare spelling and the far more
    /// common spelling that sounds the same.
    SurnameHomophones,
    /// First-name homophones, `RARE<TAB>COMMON` per line (optional), like `SurnameHomophones`.
    FirstNameHomophones,
}

impl Role {
    /// Every role an appliance needs; a bundle must carry exactly one file for each.
    pub const REQUIRED: [Role; 6] = [
        Role::Asr,
        Role::Llm,
        Role::Tts,
        Role::TtsConfig,
        Role::Vad,
        Role::Onnxruntime,
    ];

    /// Roles a bundle may carry, at most one file each; a bundle without them is complete (older
    /// bundles have none).
    pub const OPTIONAL: [Role; 5] = [
        Role::AsrNames,
        Role::Surnames,
        Role::FirstNames,
        Role::SurnameHomophones,
        Role::FirstNameHomophones,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Asr => "asr",
            Role::Llm => "llm",
            Role::Tts => "tts",
            Role::TtsConfig => "tts-config",
            Role::Vad => "vad",
            Role::Onnxruntime => "onnxruntime",
            Role::AsrNames => "asr-names",
            Role::Surnames => "surnames",
            Role::FirstNames => "first-names",
            Role::SurnameHomophones => "surname-homophones",
            Role::FirstNameHomophones => "first-name-homophones",
        }
    }

    /// Any role, required or optional, by its manifest name.
    pub fn parse(s: &str) -> Option<Role> {
        Role::REQUIRED
            .into_iter()
            .chain(Role::OPTIONAL)
            .find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One file of the bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    pub id: String,
    pub role: Role,
    /// Path relative to the bundle directory (`/`-separated, no `..`, not absolute).
    pub file: String,
    /// Lower-case hex sha256 of the file.
    pub sha256: String,
    pub size: u64,
    pub licence: String,
    /// Where it came from, `package==version` (several joined by ` + ` for converted files).
    pub source: String,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    pub name: String,
    /// Strictly increasing across the vendor's releases; the appliance refuses to go down.
    pub bundle_version: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
    /// Id of the key that signed `manifest.json` (see [`crate::keys::key_id`]).
    pub key_id: String,
    pub models: Vec<ModelEntry>,
}

fn invalid(reason: impl Into<String>) -> ModelsError {
    ModelsError::ManifestInvalid {
        reason: reason.into(),
    }
}

/// A bundle-relative path is safe when it is non-empty, relative, made only of normal components
/// (no `.`, `..`, root or prefix) and has no backslashes (which another OS would treat as separators).
pub fn check_relative_path(file: &str) -> Result<()> {
    let escape = || ModelsError::PathEscape {
        file: file.to_owned(),
    };
    if file.is_empty() || file.contains('\\') || file.contains('\0') || file.starts_with('/') {
        return Err(escape());
    }
    for part in file.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return Err(escape());
        }
    }
    if !Path::new(file)
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return Err(escape());
    }
    // The manifest and signature sit at the bundle root: a model file must not shadow them.
    if file == "manifest.json" || file == "manifest.sig" {
        return Err(escape());
    }
    Ok(())
}

impl Manifest {
    /// Parse manifest bytes (does not check the signature: see [`crate::bundle`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Manifest> {
        serde_json::from_slice(bytes)
            .map_err(|e| invalid(format!("manifest.json does not parse: {e}")))
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// Structural checks that need no files: format, paths, hashes, roles (one file for each
    /// required role, at most one for each optional role).
    pub fn validate(&self) -> Result<()> {
        if self.format != FORMAT_VERSION {
            return Err(invalid(format!(
                "format {} is not supported by this appliance (it reads format {FORMAT_VERSION}); update the appliance software first",
                self.format
            )));
        }
        if self.expires <= self.created {
            return Err(invalid("it expires before it was created"));
        }
        let mut files = HashSet::new();
        let mut roles = HashSet::new();
        for m in &self.models {
            check_relative_path(&m.file)?;
            if !files.insert(m.file.as_str()) {
                return Err(invalid(format!("file {} is listed twice", m.file)));
            }
            if m.sha256.len() != 64
                || !m
                    .sha256
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            {
                return Err(invalid(format!("file {} has a malformed sha256", m.file)));
            }
            if !roles.insert(m.role) {
                return Err(ModelsError::DuplicateRole {
                    role: m.role.to_string(),
                });
            }
        }
        for r in Role::REQUIRED {
            if !roles.contains(&r) {
                return Err(ModelsError::MissingRole {
                    role: r.to_string(),
                });
            }
        }
        Ok(())
    }

    pub fn entry(&self, role: Role) -> Option<&ModelEntry> {
        self.models.iter().find(|m| m.role == role)
    }

    /// Total bytes of all model files.
    pub fn total_size(&self) -> u64 {
        self.models.iter().map(|m| m.size).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(role: Role, file: &str) -> ModelEntry {
        ModelEntry {
            id: file.to_owned(),
            role,
            file: file.to_owned(),
            sha256: "0".repeat(64),
            size: 1,
            licence: "MIT".into(),
            source: "test==1".into(),
        }
    }

    fn manifest(models: Vec<ModelEntry>) -> Manifest {
        let created = OffsetDateTime::UNIX_EPOCH;
        Manifest {
            format: FORMAT_VERSION,
            name: "t".into(),
            bundle_version: 1,
            created,
            expires: created + time::Duration::days(1),
            key_id: "k".into(),
            models,
        }
    }

    fn required() -> Vec<ModelEntry> {
        Role::REQUIRED
            .into_iter()
            .map(|r| entry(r, &format!("{r}/f")))
            .collect()
    }

    #[test]
    fn roles_parse_by_name() {
        for r in Role::REQUIRED.into_iter().chain(Role::OPTIONAL) {
            assert_eq!(Role::parse(r.as_str()), Some(r));
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{}\"", r.as_str()));
        }
        assert_eq!(Role::parse("asr-names"), Some(Role::AsrNames));
        assert_eq!(Role::parse("asr_names"), None);
        assert_eq!(Role::parse("surnames"), Some(Role::Surnames));
        assert_eq!(Role::parse("first-names"), Some(Role::FirstNames));
        assert_eq!(Role::parse("first_names"), None);
        assert_eq!(
            Role::parse("surname-homophones"),
            Some(Role::SurnameHomophones)
        );
        assert_eq!(
            Role::parse("first-name-homophones"),
            Some(Role::FirstNameHomophones)
        );
        assert_eq!(Role::parse("first_name_homophones"), None);
    }

    #[test]
    fn optional_asr_names_role() {
        // Without it (an older bundle) and with it: both valid.
        manifest(required()).validate().unwrap();
        let mut with = required();
        with.push(entry(Role::AsrNames, "asr-names/ggml-base.bin"));
        manifest(with.clone()).validate().unwrap();
        // At most one file for it.
        with.push(entry(Role::AsrNames, "asr-names/other.bin"));
        assert!(matches!(
            manifest(with).validate(),
            Err(ModelsError::DuplicateRole { role }) if role == "asr-names"
        ));
        // It does not stand in for a required role.
        let mut no_asr = required();
        no_asr.retain(|e| e.role != Role::Asr);
        no_asr.push(entry(Role::AsrNames, "asr-names/ggml-base.bin"));
        assert!(matches!(
            manifest(no_asr).validate(),
            Err(ModelsError::MissingRole { role }) if role == "asr"
        ));
    }

    #[test]
    fn optional_name_list_roles() {
        // A bundle with any one of the optional name roles (lists and homophone tables), all of
        // them, or none: valid.
        let lists = [
            entry(Role::Surnames, "names/surnames.txt"),
            entry(Role::FirstNames, "names/first-names.txt"),
            entry(Role::SurnameHomophones, "names/surname-homophones.txt"),
            entry(Role::FirstNameHomophones, "names/first-name-homophones.txt"),
        ];
        let singles = (0..lists.len()).map(|i| &lists[i..=i]);
        for extra in singles.chain([&lists[..]]) {
            let mut m = required();
            m.extend(extra.iter().cloned());
            manifest(m.clone()).validate().unwrap();
            m.push(entry(Role::AsrNames, "asr-names/ggml-base.bin"));
            manifest(m).validate().unwrap();
        }
        // At most one file each.
        for (role, name) in [
            (Role::Surnames, "surnames"),
            (Role::FirstNames, "first-names"),
            (Role::SurnameHomophones, "surname-homophones"),
            (Role::FirstNameHomophones, "first-name-homophones"),
        ] {
            let mut twice = required();
            twice.extend(lists.iter().cloned());
            twice.push(entry(role, "names/more.txt"));
            assert!(matches!(
                manifest(twice).validate(),
                Err(ModelsError::DuplicateRole { role }) if role == name
            ));
        }
        // They do not stand in for a required role.
        let mut no_llm = required();
        no_llm.retain(|e| e.role != Role::Llm);
        no_llm.extend(lists.iter().cloned());
        assert!(matches!(
            manifest(no_llm).validate(),
            Err(ModelsError::MissingRole { role }) if role == "llm"
        ));
        // Serialized under their manifest names.
        let json = String::from_utf8(manifest(lists.to_vec()).to_bytes()).unwrap();
        for name in [
            "surnames",
            "first-names",
            "surname-homophones",
            "first-name-homophones",
        ] {
            assert!(json.contains(&format!("\"role\": \"{name}\"")), "{json}");
        }
    }

    #[test]
    fn path_rules() {
        for ok in ["asr/ggml.bin", "a.onnx", "llm/x/y.gguf"] {
            check_relative_path(ok).unwrap();
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "./a",
            "a\\b",
            "manifest.json",
            "a/",
        ] {
            assert!(
                matches!(
                    check_relative_path(bad),
                    Err(ModelsError::PathEscape { .. })
                ),
                "{bad}"
            );
        }
    }
}
