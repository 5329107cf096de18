//! kill -9 a writer in the middle of 500 random writes, 20 times: the database stays intact and
//! every booking the writer reported as committed is there, once.
mod common;

use std::collections::HashSet;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use rand::{Rng, SeedableRng};

#[test]
fn kill_nine_during_writes_loses_nothing_committed() {
    let (dir, s) = demo();
    drop(s);
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let mut committed: Vec<(i64, String)> = Vec::new();
    let mut cancelled: HashSet<i64> = HashSet::new();
    let mut killed_mid_run = 0;
    for round in 0..20u64 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_fd-store-torture"))
            .args([dir.path().to_str().unwrap(), &round.to_string(), "500"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn writer");
        // Kill after a random number of reported commits (not after a random time, which on a
        // fast or idle machine can let the writer finish first): always mid-run, at a random point.
        let kill_after = rng.gen_range(1..25usize);
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut out: Vec<String> = Vec::new();
        while out.len() < kill_after {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(l) => out.push(l),
                Err(_) => break, // the writer ended (or stalled): nothing more to wait for
            }
        }
        if child.try_wait().unwrap().is_none() {
            killed_mid_run += 1;
        }
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        let _ = reader.join();
        out.extend(rx.try_iter());
        let mut err = String::new();
        child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        assert!(err.is_empty() || !status.success(), "writer failed: {err}");
        assert!(!err.contains("fd-store-torture:"), "writer reported an error: {err}");
        for line in &out {
            let parts: Vec<&str> = line.split(' ').collect();
            match parts.as_slice() {
                ["booked", id, key] => committed.push((id.parse().unwrap(), key.to_string())),
                ["cancelled", id] => {
                    cancelled.insert(id.parse().unwrap());
                }
                _ => {} // a line cut by the kill
            }
        }
        let s = open(dir.path());
        assert!(s.integrity_ok().unwrap(), "round {round}");
        for (id, key) in &committed {
            let (k, status): (String, String) =
                s.raw_conn().query_row("SELECT idempotency_key, status FROM appointments WHERE id = ?1", [id], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
            assert_eq!(&k, key, "round {round}");
            if cancelled.contains(id) {
                assert_eq!(status, "cancelled");
            }
        }
        let dup: i64 = s
            .raw_conn()
            .query_row("SELECT count(*) FROM (SELECT 1 FROM appointments WHERE status = 'booked' GROUP BY chair_id, start_at HAVING count(*) > 1)", [], |r| r.get(0))
            .unwrap();
        assert_eq!(dup, 0, "round {round}");
    }
    assert!(committed.len() > 20, "the writer made progress: {}", committed.len());
    assert!(killed_mid_run >= 10, "most rounds were killed mid-run: {killed_mid_run}");
}
