#![allow(dead_code)]
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use fd_store::{Actor, OpenOptions, Practice, Store};

pub const PRACTICE: &str = include_str!("../../../../tests/fixtures/callers/practice.toml");

pub fn chicago(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    chrono_tz::America::Chicago.with_ymd_and_hms(y, m, d, h, min, 0).single().expect("unambiguous").with_timezone(&Utc)
}

pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

/// Options that never look at the real `$CREDENTIALS_DIRECTORY`.
pub fn opts(dir: &Path) -> OpenOptions {
    OpenOptions { credentials_dir: None, ..OpenOptions::new(dir) }
}

pub fn open(dir: &Path) -> Store {
    let mut s = Store::open_with(opts(dir)).expect("open store");
    s.set_fixed_now(chicago(2026, 3, 2, 10, 0));
    s
}

/// A fresh store with the demo practice imported, clock at the demo's "now".
pub fn demo() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = open(dir.path());
    let p = Practice::from_toml_str(PRACTICE).expect("demo practice parses");
    s.import_practice(&p, Actor::Cli).expect("import");
    (dir, s)
}

pub fn data_files(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).expect("read dir") {
        let p = e.expect("entry").path();
        if p.is_file() {
            v.push(p);
        }
    }
    v
}
