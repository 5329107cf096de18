//! Census name lists → homophone table (`convert = "homophones"` in models/sources.toml): for names
//! that are spelled differently but sound the same (Parke/Park, Leena/Lena), a line
//! `RARE<TAB>COMMON` when the common spelling is far more frequent, so the appliance can prefer it
//! when a name is only heard.
//!
//! Input: one or more lists in the 1990 US Census format, one name per line,
//! `NAME FREQUENCY CUMULATIVE RANK` separated by whitespace (`FISHER  0.077 19.866  113`): the name
//! upper case (letters, `'` or `-`), its frequency in percent (up to four decimals).
//!
//! Rules, per list (each list is mapped on its own, so a female first name is never mapped to a
//! male one):
//! 1. Every name is phonemized by the espeak-ng program (American English), title-cased and
//!    followed by a period, one per line on its standard input (`espeak-ng -q -x -v en-us`); the
//!    phoneme line's whitespace is removed. espeak-ng must print one line per name, else the
//!    conversion fails. A name with no phonemes is left out.
//! 2. Names with the same phonemes form a group. The most frequent name of the group is COMMON
//!    (when two or more share the top frequency, the group gives nothing); every other name RARE
//!    with `freq(COMMON) >= 10 * max(freq(RARE), 0.0005)` gives `RARE<TAB>COMMON`.
//! 3. A name that is in more than one list is a name of its own in each (a female and a male name,
//!    say), so it is mapped only when every list it is in maps it, to the same COMMON (JON → JOHN
//!    is in both the female and the male list).
//!
//! Output: the mappings of all lists, sorted by RARE, each once, UTF-8, `\n` line ends.
//! Frequencies are compared exactly (in units of 0.0001 percent), so the output is deterministic
//! for a given espeak-ng.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{ModelsError, Result};

/// Bumped whenever the output bytes could change; part of the converted-file cache key (with the
/// espeak-ng version).
pub const HOMOPHONES_VERSION: &str = "fd-homophones/1";

/// The program that phonemizes the names.
pub const ESPEAK: &str = "espeak-ng";

/// A frequency floor for the rare spelling: 0.0005 percent, in units of 0.0001 percent.
const FLOOR: u64 = 5;
/// How many times as frequent the common spelling must be.
const FACTOR: u64 = 10;

/// One name of a list: its spelling (as in the list) and its frequency in units of 0.0001 percent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedName {
    pub name: String,
    pub freq: u64,
}

/// Parse a frequency in percent (`0.077`, `3`, at most four decimals) into units of 0.0001 percent.
fn parse_freq(s: &str) -> Option<u64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !digits(int) || !digits(frac) || frac.len() > 4 {
        return None;
    }
    let int: u64 = int.parse().ok()?;
    let frac: u64 = format!("{frac:0<4}").parse().ok()?;
    int.checked_mul(10_000)?.checked_add(frac)
}

/// A Census name list (see the module docs). `path` only names the input in errors.
pub fn parse_census_list(data: &[u8], path: &Path) -> Result<Vec<ListedName>> {
    let bad = |reason: String| ModelsError::Homophones {
        path: path.to_owned(),
        reason,
    };
    let text = super::utf8_text(data).map_err(bad)?;
    let body = text.strip_suffix('\n').unwrap_or(text);
    if body.trim().is_empty() {
        return Err(bad("it is empty".into()));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, line) in body.split('\n').enumerate() {
        let line_no = i + 1;
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [name, freq, _cumulative, _rank] = fields[..] else {
            return Err(bad(format!(
                "line {line_no} has {} fields, not 4 (name, frequency, cumulative, rank)",
                fields.len()
            )));
        };
        let ok_char = |c: char| c.is_alphabetic() || c == '\'' || c == '-';
        if !name.chars().all(ok_char) || !name.chars().any(char::is_alphabetic) {
            return Err(bad(format!(
                "line {line_no}: the name {name:?} is not letters (with ' or -)"
            )));
        }
        let freq = parse_freq(freq).ok_or_else(|| {
            bad(format!(
                "line {line_no}: the frequency {freq:?} is not a percentage with at most four \
                 decimals"
            ))
        })?;
        if !seen.insert(name) {
            return Err(bad(format!("line {line_no}: {name} is listed twice")));
        }
        out.push(ListedName {
            name: name.to_owned(),
            freq,
        });
    }
    Ok(out)
}

/// `FISHER` → `Fisher`, `O'NEIL` → `O'Neil`: espeak-ng may read an all-capitals word as letters.
fn title_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut after_letter = false;
    for c in name.chars() {
        if after_letter {
            out.extend(c.to_lowercase());
        } else {
            out.extend(c.to_uppercase());
        }
        after_letter = c.is_alphabetic();
    }
    out
}

fn espeak_missing(program: &OsStr, e: std::io::Error) -> ModelsError {
    ModelsError::EspeakMissing {
        program: PathBuf::from(program),
        source: e,
    }
}

/// The version of the espeak-ng program (`1.51`), which decides the phonemes.
pub fn espeak_version() -> Result<String> {
    espeak_version_of(OsStr::new(ESPEAK))
}

fn espeak_version_of(program: &OsStr) -> Result<String> {
    let out = Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| espeak_missing(program, e))?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "eSpeak NG text-to-speech: 1.51  Data at: /usr/lib/x86_64-linux-gnu/espeak-ng-data"
    let version = text
        .split("Data at:")
        .next()
        .and_then(|s| s.split_whitespace().last())
        .filter(|v| out.status.success() && v.starts_with(|c: char| c.is_ascii_digit()));
    version
        .map(str::to_owned)
        .ok_or_else(|| ModelsError::Espeak {
            reason: format!(
                "--version printed {:?} ({}), not its version",
                text.trim(),
                out.status
            ),
        })
}

/// The phonemes of each name (American English), whitespace removed, in order.
pub fn phonemize(names: &[&str]) -> Result<Vec<String>> {
    phonemize_with(OsStr::new(ESPEAK), names)
}

fn phonemize_with(program: &OsStr, names: &[&str]) -> Result<Vec<String>> {
    let mut input = String::with_capacity(names.len() * 10);
    for n in names {
        input.push_str(&title_case(n));
        input.push_str(".\n");
    }
    let mut child = Command::new(program)
        .args(["-q", "-x", "-v", "en-us"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| espeak_missing(program, e))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    // Written from a thread: espeak-ng prints while it reads, and both pipes are bounded.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().map_err(|e| ModelsError::Espeak {
        reason: format!("could not be waited for: {e}"),
    })?;
    let written = writer.join().expect("the stdin writer does not panic");
    if !out.status.success() {
        return Err(ModelsError::Espeak {
            reason: format!(
                "failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    written.map_err(|e| ModelsError::Espeak {
        reason: format!("stopped reading the names: {e}"),
    })?;
    let text = String::from_utf8(out.stdout).map_err(|_| ModelsError::Espeak {
        reason: "printed phonemes that are not UTF-8".into(),
    })?;
    let lines: Vec<String> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    if lines.len() != names.len() {
        return Err(ModelsError::Espeak {
            reason: format!(
                "printed {} phoneme lines for {} names (one line per name expected, so names and \
                 phonemes cannot be paired)",
                lines.len(),
                names.len()
            ),
        });
    }
    Ok(lines)
}

/// The `RARE → COMMON` mappings of one list, whose names have the phonemes `phonemes` (same order).
fn list_mappings(list: &[ListedName], phonemes: &[String]) -> BTreeMap<String, String> {
    let mut groups: HashMap<&str, Vec<&ListedName>> = HashMap::new();
    for (n, p) in list.iter().zip(phonemes) {
        if !p.is_empty() {
            groups.entry(p.as_str()).or_default().push(n);
        }
    }
    let mut out = BTreeMap::new();
    for group in groups.values() {
        let top = group.iter().map(|n| n.freq).max().unwrap_or_default();
        let mut at_top = group.iter().filter(|n| n.freq == top);
        let (Some(common), None) = (at_top.next(), at_top.next()) else {
            continue; // a tie for the most frequent: no mappings from this group
        };
        for rare in group {
            if rare.name != common.name && common.freq >= FACTOR * rare.freq.max(FLOOR) {
                out.insert(rare.name.clone(), common.name.clone());
            }
        }
    }
    out
}

/// The homophone table of the lists (each with its names' phonemes, in order), as
/// `(RARE, COMMON)` pairs sorted by RARE (see the module docs).
pub fn homophone_table(lists: &[(Vec<ListedName>, Vec<String>)]) -> Vec<(String, String)> {
    let per_list: Vec<BTreeMap<String, String>> = lists
        .iter()
        .map(|(list, phonemes)| list_mappings(list, phonemes))
        .collect();
    let mut lists_of: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, (list, _)) in lists.iter().enumerate() {
        for n in list {
            lists_of.entry(n.name.as_str()).or_default().push(i);
        }
    }
    let mut out = BTreeMap::new();
    for maps in &per_list {
        for (rare, common) in maps {
            // In every list the name is in, mapped to the same spelling.
            let everywhere = lists_of[rare.as_str()]
                .iter()
                .all(|&i| per_list[i].get(rare) == Some(common));
            if everywhere {
                out.insert(rare.clone(), common.clone());
            }
        }
    }
    out.into_iter().collect()
}

/// Convert the Census name lists `inputs` into the homophone table `out` (written whole: see
/// `convert::write_whole`). Returns the number of lines written.
pub fn convert_homophones(inputs: &[PathBuf], out: &Path) -> Result<usize> {
    let mut lists = Vec::with_capacity(inputs.len());
    for input in inputs {
        let data = std::fs::read(input).map_err(|e| ModelsError::io("read", input, e))?;
        lists.push(parse_census_list(&data, input)?);
    }
    let all: Vec<&str> = lists.iter().flatten().map(|n| n.name.as_str()).collect();
    let mut phonemes = phonemize(&all)?.into_iter();
    let lists: Vec<(Vec<ListedName>, Vec<String>)> = lists
        .into_iter()
        .map(|list| {
            let p = phonemes.by_ref().take(list.len()).collect();
            (list, p)
        })
        .collect();
    let table = homophone_table(&lists);
    let mut text = String::with_capacity(table.len() * 16);
    for (rare, common) in &table {
        text.push_str(rare);
        text.push('\t');
        text.push_str(common);
        text.push('\n');
    }
    super::write_whole(out, |w| {
        w.write_all(text.as_bytes())
            .map_err(|e| ModelsError::io("write", out, e))
    })?;
    Ok(table.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(rows: &[(&str, u64)]) -> Vec<ListedName> {
        rows.iter()
            .map(|&(name, freq)| ListedName {
                name: name.into(),
                freq,
            })
            .collect()
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|&(a, b)| (a.into(), b.into())).collect()
    }

    fn err(data: &[u8]) -> String {
        match parse_census_list(data, Path::new("dist.x")) {
            Ok(v) => panic!("parsed {data:?} to {v:?}"),
            Err(e) => {
                assert!(matches!(e, ModelsError::Homophones { .. }), "{e:?}");
                let s = e.to_string();
                assert!(s.starts_with("dist.x: "), "{s}");
                s
            }
        }
    }

    #[test]
    fn census_lists_parse_with_exact_frequencies() {
        let text = b"SMITH          1.006  1.006      1\n\
                     FISHER         0.077 19.866    113\r\n\
                     O'NEIL         0      20        114\n\
                     ZO\xc3\x8b           12.5 32.5   115\n";
        let l = parse_census_list(text, Path::new("dist.x")).unwrap();
        assert_eq!(
            l,
            listed(&[
                ("SMITH", 10_060),
                ("FISHER", 770),
                ("O'NEIL", 0),
                ("ZO\u{cb}", 125_000)
            ])
        );
        assert_eq!(parse_freq("0.0005"), Some(5));
        assert_eq!(parse_freq("3"), Some(30_000));
        for bad in ["", ".5", "0.00001", "1e-3", "-1", "0,5", "1.2.3"] {
            assert_eq!(parse_freq(bad), None, "{bad}");
        }
    }

    #[test]
    fn bad_lists_are_a_clear_error() {
        assert!(err(b"").contains("it is empty"));
        assert!(err(b"\n").contains("it is empty"));
        assert!(err(b"SMITH 1.006 1.006 1\n\nJONES 1 2 2\n").contains("line 2 has 0 fields"));
        assert!(err(b"SMITH,1.006,1.006,1\n").contains("line 1 has 1 fields"));
        assert!(err(b"SMITH 1.006 1.006\n").contains("line 1 has 3 fields"));
        assert!(err(b"SMITH 1 1 1\nST. JOHN 1 2 2\n").contains("line 2 has 5 fields"));
        assert!(err(b"SMITH 1 1 1\nST.JOHN 1 2 2\n").contains("line 2: the name \"ST.JOHN\""));
        assert!(err(b"SM1TH 1 1 1\n").contains("is not letters"));
        assert!(err(b"-- 1 1 1\n").contains("is not letters"));
        assert!(err(b"SMITH 1% 1 1\n").contains("line 1: the frequency \"1%\""));
        assert!(err(b"SMITH 1 1 1\nSMITH 1 2 2\n").contains("line 2: SMITH is listed twice"));
        assert!(err(b"M\xfcLLER 1 1 1\n").contains("not UTF-8"));
    }

    #[test]
    fn names_are_title_cased_for_espeak() {
        assert_eq!(title_case("FISHER"), "Fisher");
        assert_eq!(title_case("O'NEIL"), "O'Neil");
        assert_eq!(title_case("SMITH-JONES"), "Smith-Jones");
        assert_eq!(title_case("ZO\u{cb}"), "Zo\u{eb}");
    }

    #[test]
    fn the_far_more_common_spelling_of_a_sound_wins() {
        let list = listed(&[
            ("PARK", 250),   // common: 10 x 20 = 200 <= 250
            ("PARKE", 20),   // → PARK
            ("PARCK", 0),    // floor: 10 x 5 = 50 <= 250 → PARK
            ("FISHER", 770), // only 3.7 x as common as FISCHER: nothing
            ("FISCHER", 210),
            ("KATY", 120), // a sound of its own
            ("LEE", 500),  // a tie at the top: nothing from this group ...
            ("LEIGH", 500),
            ("LEA", 1), // ... not even from a far rarer spelling
            ("SMYTHE", 10),
            ("SMYTH", 30), // 10 x 10 = 100 > 30: nothing
        ]);
        let ph = strings(&[
            "p'A@k", "p'A@k", "p'A@k", "f'IS3", "f'IS3", "k'eIt#i", "l'i:", "l'i:", "l'i:",
            "sm'aID", "sm'aID",
        ]);
        let table = homophone_table(&[(list, ph)]);
        assert_eq!(table, pairs(&[("PARCK", "PARK"), ("PARKE", "PARK")]));
        // Exactly ten times as common is enough; a name without phonemes is never grouped.
        let list = listed(&[("JON", 100), ("JOHN", 1_000), ("JAHN", 1), ("JOHNN", 1)]);
        let ph = strings(&["dZ'0n", "dZ'0n", "", ""]);
        assert_eq!(homophone_table(&[(list, ph)]), pairs(&[("JON", "JOHN")]));
    }

    #[test]
    fn lists_are_mapped_apart_and_a_name_in_two_lists_only_when_both_agree() {
        let female = listed(&[
            ("LENA", 770),
            ("LEENA", 10),
            ("BOBBI", 160),
            ("BOBBY", 80),
            ("JEAN", 3_150),
            ("GENE", 50),
            ("JOHN", 120),
            ("JON", 10),
        ]);
        let female_ph = strings(&[
            "l'i:n@", "l'i:n@", "b'0bi", "b'0bi", "dZ'i:n", "dZ'i:n", "dZ'0n", "dZ'0n",
        ]);
        let male = listed(&[
            ("BOBBY", 2_230),
            ("BOBBIE", 10),
            ("GENE", 870),
            ("JEAN", 350),
            ("JOHN", 32_710),
            ("JON", 1_150),
        ]);
        let male_ph = strings(&["b'0bi", "b'0bi", "dZ'i:n", "dZ'i:n", "dZ'0n", "dZ'0n"]);
        let table = homophone_table(&[(female, female_ph), (male, male_ph)]);
        // BOBBI is never mapped to the male BOBBY (the female list has BOBBI the more common);
        // GENE, a male name in its own right, is not mapped to the female JEAN; JON is mapped in
        // both lists, to JOHN.
        assert_eq!(
            table,
            pairs(&[("BOBBIE", "BOBBY"), ("JON", "JOHN"), ("LEENA", "LENA")])
        );
    }

    #[test]
    fn espeak_gives_homophones_the_same_phonemes() {
        let names = [
            "PARK", "PARKE", "FISHER", "FISCHER", "KATY", "KATHY", "O'NEIL",
        ];
        let ph = phonemize(&names).unwrap();
        assert_eq!(ph.len(), names.len());
        assert_eq!(ph[0], ph[1], "{ph:?}");
        assert_eq!(ph[2], ph[3], "{ph:?}");
        assert_ne!(ph[4], ph[5], "{ph:?}");
        assert!(ph
            .iter()
            .all(|p| !p.is_empty() && !p.contains(char::is_whitespace)));
        assert!(espeak_version()
            .unwrap()
            .starts_with(|c: char| c.is_ascii_digit()));
    }

    #[test]
    fn a_missing_or_misbehaving_espeak_is_a_clear_error() {
        let missing = OsStr::new("/nonexistent/espeak-ng");
        for e in [
            phonemize_with(missing, &["PARK"]).unwrap_err(),
            espeak_version_of(missing).unwrap_err(),
        ] {
            assert!(matches!(e, ModelsError::EspeakMissing { .. }), "{e:?}");
            assert!(e.to_string().contains("apt-get install espeak-ng"), "{e}");
        }
        // A program that prints one line whatever it is given.
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("fake-espeak");
        // Written by a child shell, not by this process: a write fd open here could be inherited
        // by a parallel test's fork and make exec fail with "Text file busy".
        let script = |body: &str| {
            let ok = std::process::Command::new("sh")
                .args(["-c", "printf '%s' \"$1\" > \"$2\" && chmod 755 \"$2\"", "sh", body])
                .arg(&fake)
                .status()
                .unwrap()
                .success();
            assert!(ok);
        };
        script("#!/bin/sh\ncat >/dev/null\necho \"p'A@k\"\n");
        assert_eq!(
            phonemize_with(fake.as_os_str(), &["PARK"]).unwrap(),
            ["p'A@k"]
        );
        let e = phonemize_with(fake.as_os_str(), &["PARK", "PARKE"]).unwrap_err();
        assert!(
            e.to_string()
                .contains("printed 1 phoneme lines for 2 names"),
            "{e}"
        );
        // One that fails.
        script("#!/bin/sh\necho 'no voice' >&2\nexit 1\n");
        let e = phonemize_with(fake.as_os_str(), &["PARK"]).unwrap_err();
        assert!(e.to_string().contains("no voice"), "{e}");
        assert!(espeak_version_of(fake.as_os_str()).is_err());
    }

    #[test]
    fn converts_census_lists_into_a_table_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let sur = write(
            "dist.all.last",
            "FISHER         0.077 19.866    113\n\
             PARK           0.025 34.246    461\n\
             FISCHER        0.021 36.365    554\n\
             PARKE          0.002 66.912   6847\n",
        );
        let out = dir.path().join("surname-homophones.txt");
        assert_eq!(convert_homophones(&[sur], &out).unwrap(), 1);
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "PARKE\tPARK\n");
        assert!(!dir.path().join("surname-homophones.txt.partial").exists());

        let female = write(
            "dist.female.first",
            "KATHY          0.272 36.362     71\n\
             LENA           0.077 63.589    259\n\
             BOBBI          0.016 78.170    679\n\
             KATY           0.012 80.072    817\n\
             JOHN           0.012 80.095    819\n\
             BOBBY          0.008 82.007   1019\n\
             JON            0.001 88.892   3261\n\
             LEENA          0.001 89.108   3427\n",
        );
        let male = write(
            "dist.male.first",
            "JOHN           3.271  6.589      2\n\
             BOBBY          0.223 56.077     83\n\
             JON            0.115 68.235    157\n",
        );
        let out = dir.path().join("first-name-homophones.txt");
        let n = convert_homophones(&[female.clone(), male], &out).unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "JON\tJOHN\nLEENA\tLENA\n"
        );
        assert_eq!(n, 2);
        // A bad input leaves no output behind.
        let bad = write("bad", "SMITH 1.006\n");
        let out2 = dir.path().join("t2.txt");
        let e = convert_homophones(&[female, bad], &out2).unwrap_err();
        assert!(e.to_string().contains("line 1 has 2 fields"), "{e}");
        assert!(!out2.exists());
        let e = convert_homophones(&[dir.path().join("missing")], &out2).unwrap_err();
        assert!(matches!(e, ModelsError::Io { .. }), "{e:?}");
    }
}
