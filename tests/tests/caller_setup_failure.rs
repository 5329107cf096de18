//! A call to a port where nothing answers fails with an error an IT person can act on,
//! and leaves no baresip/dumpcap process behind.

use std::path::PathBuf;
use std::time::Duration;

use fd_e2e::ports::free_udp_port;
use fd_e2e::{CallerConfig, Error, ScriptedCaller};

/// Live children of this test process (from /proc), excluding zombies already reaped.
fn children() -> Vec<String> {
    let me = std::process::id().to_string();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
        // pid (comm) state ppid ...
        let Some(close) = stat.rfind(')') else { continue };
        let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        if rest.get(1) == Some(&me.as_str()) {
            out.push(stat[..close + 1].to_string());
        }
    }
    out
}

#[test]
fn unanswered_call_fails_cleanly_without_orphans() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fd-e2e").join("caller_setup_failure");
    let _ = std::fs::remove_dir_all(&dir);
    let port = free_udp_port().unwrap();
    let mut cfg = CallerConfig::new(&format!("sip:frontdesk@127.0.0.1:{port}"), "anonymous", &dir).unwrap();
    cfg.setup_timeout = Duration::from_secs(4);
    let err = match ScriptedCaller::start(cfg) {
        Ok(_) => panic!("a call to a closed port must not be established"),
        Err(e) => e,
    };
    assert!(matches!(err, Error::SetupTimeout { .. } | Error::CallClosed(_)), "{err}");
    let msg = err.to_string();
    eprintln!("error as reported: {msg}");
    assert!(msg.contains(&port.to_string()) || msg.contains("baresip.log"), "{msg}");
    let left = children();
    assert!(left.is_empty(), "processes left behind: {left:?}");
}
