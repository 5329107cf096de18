//! Signed bundle build/install/rollback, each refusal in its own test, on small synthetic bundles.

use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};
use fd_models::bundle::{
    self, install, install_with_status, rollback, BuildOptions, Bundle, BundleSource,
    InstallStatus, InstalledBundle,
};
use fd_models::keys::key_id;
use fd_models::manifest::{Manifest, Role};
use fd_models::ModelsError;
use time::macros::datetime;
use time::OffsetDateTime;

const CREATED: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);
const EXPIRES: OffsetDateTime = datetime!(2027-01-01 00:00 UTC);
const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

fn vendor_key() -> SigningKey {
    SigningKey::from_bytes(&[1; 32])
}
fn other_key() -> SigningKey {
    SigningKey::from_bytes(&[2; 32])
}
fn trusted() -> Vec<VerifyingKey> {
    vec![vendor_key().verifying_key()]
}

struct Env {
    tmp: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        for (name, body) in FILES {
            std::fs::write(src.join(name), body).unwrap();
        }
        Env { tmp }
    }
    fn path(&self, p: &str) -> PathBuf {
        self.tmp.path().join(p)
    }
    fn models(&self) -> PathBuf {
        self.path("models")
    }
    fn sources(&self, roles: &[Role]) -> Vec<BundleSource> {
        FILES
            .iter()
            .zip(Role::REQUIRED)
            .filter(|(_, r)| roles.contains(r))
            .map(|((name, _), role)| BundleSource {
                id: format!("test/{name}"),
                role,
                path: self.path("src").join(name),
                file: format!("{role}/{name}"),
                licence: "MIT".into(),
                source: "test==1".into(),
            })
            .collect()
    }
    /// Build a complete bundle `v<version>` signed by `key`.
    fn build(&self, version: u64, key: &SigningKey) -> PathBuf {
        self.build_with(version, key, EXPIRES)
    }
    fn build_with(&self, version: u64, key: &SigningKey, expires: OffsetDateTime) -> PathBuf {
        let out = self.path(&format!(
            "bundle-v{version}-{}",
            key_id(&key.verifying_key())
        ));
        let opts = BuildOptions {
            name: "test".into(),
            bundle_version: version,
            created: CREATED,
            expires,
        };
        Bundle::build(&out, &self.sources(&Role::REQUIRED), &opts, key).unwrap();
        out
    }
}

const FILES: [(&str, &[u8]); 6] = [
    ("ggml-test.bin", b"whisper weights"),
    ("chat.gguf", b"GGUF language model"),
    ("voice.onnx", b"piper voice"),
    ("voice.onnx.json", b"{\"audio\":{\"sample_rate\":22050}}"),
    ("vad.onnx", b"silero"),
    ("libonnxruntime.so", b"\x7fELF runtime"),
];

fn manifest_of(dir: &Path) -> Manifest {
    Manifest::from_bytes(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

/// Nothing half-installed is left after a refusal.
fn assert_no_leftovers(models: &Path) {
    if let Ok(rd) = std::fs::read_dir(models) {
        for e in rd {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                !n.starts_with("staging-") && !n.ends_with(".new"),
                "left behind: {n}"
            );
        }
    }
}

#[test]
fn happy_path_install_then_update_then_rollback() {
    let env = Env::new();
    let v1 = env.build(1, &vendor_key());
    let b = install(&v1, &env.models(), &trusted(), NOW).unwrap();
    assert_eq!(b.version(), 1);
    assert_eq!(b.key_id(), key_id(&vendor_key().verifying_key()));
    let paths = b.model_paths();
    assert!(paths.asr.is_absolute());
    assert_eq!(std::fs::read(&paths.llm).unwrap(), b"GGUF language model");
    assert_eq!(std::fs::read(&paths.tts_config).unwrap(), FILES[3].1);
    // No file for the optional roles (asr-names, the name lists, the homophone tables): complete
    // all the same.
    assert_eq!(paths.asr_names, None);
    assert_eq!(paths.surnames, None);
    assert_eq!(paths.first_names, None);
    assert_eq!(paths.surname_homophones, None);
    assert_eq!(paths.first_name_homophones, None);
    b.verify_files().unwrap();

    // Same version again: a no-op.
    let (same, status) = install_with_status(&v1, &env.models(), &trusted(), NOW).unwrap();
    assert_eq!(
        (same.version(), status),
        (1, InstallStatus::AlreadyInstalled)
    );

    let v2 = env.build(2, &vendor_key());
    let b2 = install(&v2, &env.models(), &trusted(), NOW).unwrap();
    assert_eq!(b2.version(), 2);
    assert_eq!(
        InstalledBundle::current(&env.models(), &trusted())
            .unwrap()
            .version(),
        2
    );
    assert_eq!(
        InstalledBundle::previous(&env.models(), &trusted())
            .unwrap()
            .version(),
        1
    );

    let back = rollback(&env.models(), &trusted()).unwrap();
    assert_eq!(back.version(), 1);
    let cur = InstalledBundle::current(&env.models(), &trusted()).unwrap();
    assert_eq!(cur.version(), 1);
    assert_eq!(cur.model_paths(), back.model_paths());
    // A second rollback undoes the first.
    assert_eq!(rollback(&env.models(), &trusted()).unwrap().version(), 2);

    // Only current and previous are kept.
    let v3 = env.build(3, &vendor_key());
    install(&v3, &env.models(), &trusted(), NOW).unwrap();
    let mut kept: Vec<String> = std::fs::read_dir(env.models().join("bundles"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    kept.sort();
    assert_eq!(kept, vec!["2", "3"]);
    assert_no_leftovers(&env.models());
}

#[test]
fn rollback_without_previous_is_refused() {
    let env = Env::new();
    install(&env.build(1, &vendor_key()), &env.models(), &trusted(), NOW).unwrap();
    assert!(matches!(
        rollback(&env.models(), &trusted()),
        Err(ModelsError::NoPreviousBundle { .. })
    ));
    assert!(matches!(
        InstalledBundle::current(&env.path("empty"), &trusted()),
        Err(ModelsError::NoCurrentBundle { .. })
    ));
}

#[test]
fn tampered_file_is_refused() {
    let env = Env::new();
    let v1 = env.build(1, &vendor_key());
    // Same size, different content: only the hash can tell.
    std::fs::write(v1.join("llm/chat.gguf"), b"GGUF language modeL").unwrap();
    let err = install(&v1, &env.models(), &trusted(), NOW).unwrap_err();
    match &err {
        ModelsError::HashMismatch { file, .. } => assert_eq!(file, "llm/chat.gguf"),
        other => panic!("expected HashMismatch, got {other}"),
    }
    assert!(
        err.to_string()
            .starts_with("file llm/chat.gguf: sha256 mismatch (expected "),
        "{err}"
    );
    assert!(InstalledBundle::current(&env.models(), &trusted()).is_err());
    assert_no_leftovers(&env.models());

    std::fs::write(v1.join("llm/chat.gguf"), b"GGUF language model, longer").unwrap();
    let err = install(&v1, &env.models(), &trusted(), NOW).unwrap_err();
    assert!(matches!(err, ModelsError::SizeMismatch { .. }), "{err}");
    std::fs::remove_file(v1.join("llm/chat.gguf")).unwrap();
    let err = install(&v1, &env.models(), &trusted(), NOW).unwrap_err();
    assert!(matches!(err, ModelsError::FileMissing { .. }), "{err}");
    assert_no_leftovers(&env.models());
}

#[test]
fn tampered_manifest_is_refused() {
    let env = Env::new();
    let v1 = env.build(1, &vendor_key());
    let text = std::fs::read_to_string(v1.join("manifest.json")).unwrap();
    std::fs::write(
        v1.join("manifest.json"),
        text.replace("\"bundle_version\": 1", "\"bundle_version\": 9"),
    )
    .unwrap();
    let err = install(&v1, &env.models(), &trusted(), NOW).unwrap_err();
    assert!(matches!(err, ModelsError::SignatureInvalid { .. }), "{err}");
    assert!(err.to_string().contains("do not install it"), "{err}");
    assert!(!env.models().join("current").exists());
}

#[test]
fn bad_signature_is_refused() {
    let env = Env::new();
    let v1 = env.build(1, &vendor_key());
    // A valid signature by the trusted key, but over other bytes.
    let forged =
        hex::encode(ed25519_dalek::Signer::sign(&vendor_key(), b"something else").to_bytes());
    std::fs::write(v1.join("manifest.sig"), forged).unwrap();
    let err = install(&v1, &env.models(), &trusted(), NOW).unwrap_err();
    match &err {
        ModelsError::SignatureInvalid { key_id: k } => {
            assert_eq!(k, &key_id(&vendor_key().verifying_key()))
        }
        other => panic!("expected SignatureInvalid, got {other}"),
    }
    std::fs::write(v1.join("manifest.sig"), "not hex").unwrap();
    let err = install(&v1, &env.models(), &trusted(), NOW).unwrap_err();
    assert!(matches!(err, ModelsError::SignatureMissing { .. }), "{err}");
    std::fs::remove_file(v1.join("manifest.sig")).unwrap();
    let err = install(&v1, &env.models(), &trusted(), NOW).unwrap_err();
    assert!(matches!(err, ModelsError::SignatureMissing { .. }), "{err}");
}

#[test]
fn unknown_key_is_refused() {
    let env = Env::new();
    let v1 = env.build(1, &other_key());
    let err = install(&v1, &env.models(), &trusted(), NOW).unwrap_err();
    match &err {
        ModelsError::UnknownKey { key_id: k } => {
            assert_eq!(k, &key_id(&other_key().verifying_key()))
        }
        other => panic!("expected UnknownKey, got {other}"),
    }
    // Trusting both keys accepts it.
    let both = vec![vendor_key().verifying_key(), other_key().verifying_key()];
    assert_eq!(
        install(&v1, &env.models(), &both, NOW).unwrap().version(),
        1
    );
}

#[test]
fn older_version_is_refused_as_downgrade() {
    let env = Env::new();
    install(&env.build(5, &vendor_key()), &env.models(), &trusted(), NOW).unwrap();
    let err = install(&env.build(3, &vendor_key()), &env.models(), &trusted(), NOW).unwrap_err();
    assert!(
        matches!(
            err,
            ModelsError::Downgrade {
                offered: 3,
                installed: 5
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "bundle version 3 is older than installed version 5: downgrades are refused (use `frontdesk models rollback`)"
    );
    assert_eq!(
        InstalledBundle::current(&env.models(), &trusted())
            .unwrap()
            .version(),
        5
    );
    assert_no_leftovers(&env.models());
}

#[test]
fn expired_manifest_is_refused() {
    let env = Env::new();
    let v1 = env.build_with(1, &vendor_key(), datetime!(2026-03-01 00:00 UTC));
    let err = install(&v1, &env.models(), &trusted(), NOW).unwrap_err();
    assert!(matches!(err, ModelsError::Expired { .. }), "{err}");
    assert!(err.to_string().contains("2026-03-01T00:00:00Z"), "{err}");
    // Before expiry it installs.
    assert!(install(
        &v1,
        &env.models(),
        &trusted(),
        datetime!(2026-02-01 00:00 UTC)
    )
    .is_ok());
    // An installed bundle keeps loading after it expires: expiry guards installation only.
    assert!(InstalledBundle::current(&env.models(), &trusted()).is_ok());
}

/// Re-sign a bundle's manifest after `edit` (a vendor-signed but malicious or broken manifest).
fn resign(dir: &Path, edit: impl FnOnce(&mut Manifest)) {
    let mut m = manifest_of(dir);
    edit(&mut m);
    Bundle::write_signed(dir, &m, &vendor_key()).unwrap();
}

#[test]
fn path_traversal_is_refused() {
    let env = Env::new();
    for evil in [
        "../outside.so",
        "/tmp/abs.so",
        "onnxruntime/../../x.so",
        "a\\..\\b",
    ] {
        let v1 = env.build(1, &vendor_key());
        std::fs::write(env.path("outside.so"), b"\x7fELF runtime").unwrap();
        resign(&v1, |m| {
            let e = m
                .models
                .iter_mut()
                .find(|e| e.role == Role::Onnxruntime)
                .unwrap();
            e.file = evil.into();
        });
        let err = install(&v1, &env.models(), &trusted(), NOW).unwrap_err();
        assert!(
            matches!(err, ModelsError::PathEscape { .. }),
            "{evil}: {err}"
        );
        assert!(!env.models().join("current").exists());
        std::fs::remove_dir_all(&v1).unwrap();
    }
    assert_no_leftovers(&env.models());
}

#[test]
fn missing_role_is_refused() {
    let env = Env::new();
    // The vendor tool refuses to build it ...
    let opts = BuildOptions {
        name: "t".into(),
        bundle_version: 1,
        created: CREATED,
        expires: EXPIRES,
    };
    let some: Vec<Role> = Role::REQUIRED
        .into_iter()
        .filter(|r| *r != Role::Vad)
        .collect();
    let err = Bundle::build(
        &env.path("incomplete"),
        &env.sources(&some),
        &opts,
        &vendor_key(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, ModelsError::MissingRole { role } if role == "vad"),
        "{err}"
    );
    assert!(!env.path("incomplete").exists() && !env.path("incomplete.partial").exists());
    // ... and the appliance refuses a signed manifest without it.
    let v1 = env.build(1, &vendor_key());
    resign(&v1, |m| m.models.retain(|e| e.role != Role::Vad));
    let err = install(&v1, &env.models(), &trusted(), NOW).unwrap_err();
    assert!(
        matches!(&err, ModelsError::MissingRole { role } if role == "vad"),
        "{err}"
    );
}

#[test]
fn optional_name_lists_install_and_are_handed_over() {
    let env = Env::new();
    std::fs::write(env.path("src/surnames.txt"), "SMITH\nJOHNSON\n").unwrap();
    std::fs::write(env.path("src/first-names.txt"), "AARON\nABBAS\n").unwrap();
    std::fs::write(env.path("src/surname-homophones.txt"), "PARKE\tPARK\n").unwrap();
    std::fs::write(env.path("src/first-name-homophones.txt"), "LEENA\tLENA\n").unwrap();
    let lists = [
        (Role::Surnames, "surnames.txt"),
        (Role::FirstNames, "first-names.txt"),
    ];
    let tables = [
        (Role::SurnameHomophones, "surname-homophones.txt"),
        (Role::FirstNameHomophones, "first-name-homophones.txt"),
    ];
    // The lists without the homophone tables (a bundle built before they existed), then with them.
    for (version, with_tables) in [(1, false), (2, true)] {
        let mut sources = env.sources(&Role::REQUIRED);
        let extra = if with_tables { &tables[..] } else { &[] };
        for &(role, name) in lists.iter().chain(extra) {
            sources.push(BundleSource {
                id: format!("test/{name}"),
                role,
                path: env.path("src").join(name),
                file: format!("names/{name}"),
                licence: "CC0".into(),
                source: "test==1".into(),
            });
        }
        let opts = BuildOptions {
            name: "t".into(),
            bundle_version: version,
            created: CREATED,
            expires: EXPIRES,
        };
        let out = env.path(&format!("with-names-{version}"));
        let m = Bundle::build(&out, &sources, &opts, &vendor_key()).unwrap();
        assert_eq!(m.models.len(), if with_tables { 10 } else { 8 });
        let b = install(&out, &env.models(), &trusted(), NOW).unwrap();
        b.verify_files().unwrap();
        let paths = b.model_paths();
        assert_eq!(paths.asr_names, None);
        let surnames = paths.surnames.unwrap();
        assert!(surnames.is_absolute() && surnames.ends_with("names/surnames.txt"));
        assert_eq!(std::fs::read(&surnames).unwrap(), b"SMITH\nJOHNSON\n");
        let first = paths.first_names.unwrap();
        assert!(first.ends_with("names/first-names.txt"));
        assert_eq!(std::fs::read(&first).unwrap(), b"AARON\nABBAS\n");
        if !with_tables {
            assert_eq!(paths.surname_homophones, None);
            assert_eq!(paths.first_name_homophones, None);
            continue;
        }
        let sur_h = paths.surname_homophones.unwrap();
        assert!(sur_h.is_absolute() && sur_h.ends_with("names/surname-homophones.txt"));
        assert_eq!(std::fs::read(&sur_h).unwrap(), b"PARKE\tPARK\n");
        let first_h = paths.first_name_homophones.unwrap();
        assert!(first_h.ends_with("names/first-name-homophones.txt"));
        assert_eq!(std::fs::read(&first_h).unwrap(), b"LEENA\tLENA\n");
        // A name list or homophone table changed in place (same size) is caught like any model
        // file.
        for (path, changed, file) in [
            (&first, &b"AARON\nEVILS\n"[..], "names/first-names.txt"),
            (
                &first_h,
                &b"LEENA\tEVIL\n"[..],
                "names/first-name-homophones.txt",
            ),
        ] {
            let good = std::fs::read(path).unwrap();
            std::fs::write(path, changed).unwrap();
            assert!(matches!(
                b.verify_files(),
                Err(ModelsError::HashMismatch { file: f, .. }) if f == file
            ));
            std::fs::write(path, good).unwrap();
        }
        b.verify_files().unwrap();
    }
}

#[test]
fn crash_during_install_is_cleaned_and_current_stays_valid() {
    let env = Env::new();
    let models = env.models();
    install(&env.build(1, &vendor_key()), &models, &trusted(), NOW).unwrap();
    // Simulate a power cut mid-install of v2: a half-copied staging dir and a half-made link.
    std::fs::create_dir_all(models.join("staging-2/llm")).unwrap();
    std::fs::write(models.join("staging-2/llm/chat.gguf"), b"GGUF lang").unwrap();
    std::os::unix::fs::symlink("bundles/2", models.join("current.new")).unwrap();
    // ... and one that died after moving the staged copy but before switching `current`.
    std::fs::create_dir_all(models.join("bundles/2")).unwrap();

    // Start: the current bundle still loads and verifies.
    let cur = InstalledBundle::current(&models, &trusted()).unwrap();
    assert_eq!(cur.version(), 1);
    cur.verify_files().unwrap();
    let removed = bundle::recover(&models).unwrap();
    assert_eq!(removed.len(), 2);
    assert_no_leftovers(&models);

    // Leftovers again, then a new install cleans them itself and succeeds.
    std::fs::create_dir_all(models.join("staging-7")).unwrap();
    let b = install(&env.build(2, &vendor_key()), &models, &trusted(), NOW).unwrap();
    assert_eq!(b.version(), 2);
    b.verify_files().unwrap();
    assert_no_leftovers(&models);
}

#[test]
fn installed_bundle_is_reverified_on_load() {
    let env = Env::new();
    let models = env.models();
    install(&env.build(1, &vendor_key()), &models, &trusted(), NOW).unwrap();
    let cur = InstalledBundle::current(&models, &trusted()).unwrap();
    // Corrupt a model in place (same size): loading is cheap and passes, the full check catches it.
    std::fs::write(&cur.model_paths().vad, b"SILERO").unwrap();
    let cur = InstalledBundle::current(&models, &trusted()).unwrap();
    assert!(matches!(
        cur.verify_files(),
        Err(ModelsError::HashMismatch { .. })
    ));
    // Edit the installed manifest: loading fails on the signature.
    let mpath = cur.dir().join("manifest.json");
    let text = std::fs::read_to_string(&mpath).unwrap();
    std::fs::write(&mpath, text.replace("\"MIT\"", "\"GPL\"")).unwrap();
    assert!(matches!(
        InstalledBundle::current(&models, &trusted()),
        Err(ModelsError::SignatureInvalid { .. })
    ));
    // A broken current does not block a repair by a newer bundle.
    assert_eq!(
        install(&env.build(2, &vendor_key()), &models, &trusted(), NOW)
            .unwrap()
            .version(),
        2
    );
}

#[test]
fn packed_bundle_installs_and_unsafe_archives_are_refused() {
    let env = Env::new();
    let v1 = env.build(1, &vendor_key());
    let file = env.path("v1.fdbundle");
    Bundle::pack(&v1, &file).unwrap();
    let b = install(&file, &env.models(), &trusted(), NOW).unwrap();
    assert_eq!(b.version(), 1);
    b.verify_files().unwrap();
    assert_no_leftovers(&env.models());

    // An archive holding a symlink is refused before anything is trusted.
    let evil = env.path("evil.fdbundle");
    {
        let mut t = tar::Builder::new(std::fs::File::create(&evil).unwrap());
        t.append_path_with_name(v1.join("manifest.json"), "manifest.json")
            .unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        t.append_link(&mut h, "vad/vad.onnx", "/etc/passwd")
            .unwrap();
        t.finish().unwrap();
    }
    let err = install(&evil, &env.models(), &trusted(), NOW).unwrap_err();
    assert!(matches!(err, ModelsError::Archive { .. }), "{err}");
    assert_eq!(
        InstalledBundle::current(&env.models(), &trusted())
            .unwrap()
            .version(),
        1
    );
    assert_no_leftovers(&env.models());
}

#[test]
fn archive_with_unlisted_or_unsigned_content_is_refused() {
    let env = Env::new();
    let v1 = env.build(1, &vendor_key());
    // An extra file the signed manifest does not list.
    let extra = env.path("extra.fdbundle");
    {
        let mut t = tar::Builder::new(std::fs::File::create(&extra).unwrap());
        t.append_path_with_name(v1.join("manifest.json"), "manifest.json")
            .unwrap();
        t.append_path_with_name(v1.join("manifest.sig"), "manifest.sig")
            .unwrap();
        t.append_path_with_name(v1.join("vad/vad.onnx"), "vad/payload.sh")
            .unwrap();
        t.finish().unwrap();
    }
    let err = install(&extra, &env.models(), &trusted(), NOW).unwrap_err();
    assert!(
        matches!(&err, ModelsError::Archive { reason } if reason.contains("payload.sh")),
        "{err}"
    );
    // Model files before the manifest: refused without unpacking them.
    let unordered = env.path("unordered.fdbundle");
    {
        let mut t = tar::Builder::new(std::fs::File::create(&unordered).unwrap());
        t.append_path_with_name(v1.join("vad/vad.onnx"), "vad/vad.onnx")
            .unwrap();
        t.finish().unwrap();
    }
    let err = install(&unordered, &env.models(), &trusted(), NOW).unwrap_err();
    assert!(matches!(err, ModelsError::Archive { .. }), "{err}");
    // Signed by an unknown key: refused at the manifest, before any model file is written.
    let foreign = env.build(1, &other_key());
    Bundle::pack(&foreign, &env.path("foreign.fdbundle")).unwrap();
    let err = install(
        &env.path("foreign.fdbundle"),
        &env.models(),
        &trusted(),
        NOW,
    )
    .unwrap_err();
    assert!(matches!(err, ModelsError::UnknownKey { .. }), "{err}");
    assert!(!env.models().join("current").exists());
    assert_no_leftovers(&env.models());
}

#[test]
fn reinstalling_the_same_version_repairs_a_damaged_install() {
    let env = Env::new();
    let v1 = env.build(1, &vendor_key());
    let b = install(&v1, &env.models(), &trusted(), NOW).unwrap();
    std::fs::write(&b.model_paths().llm, b"GGUF language modeL").unwrap();
    let (b, status) = install_with_status(&v1, &env.models(), &trusted(), NOW).unwrap();
    assert_eq!(status, InstallStatus::Installed);
    b.verify_files().unwrap();
    assert_eq!(
        std::fs::read(&b.model_paths().llm).unwrap(),
        b"GGUF language model"
    );
}
