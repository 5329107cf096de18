//! Shared helpers for the SIP end-to-end tests: skip-if-missing, temp dirs, test signals, and an
//! in-process endpoint that answers, plays a signal and records what it hears.

#![allow(dead_code)]

use fd_voice::endpoint::{CallEvent, Endpoint, EndpointConfig, IncomingCall};
use fd_voice::media::session::IdleTransmit;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// True if `bin` is on PATH. Tests skip (with a message naming the Debian package) otherwise.
pub fn have(bin: &str, package: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
        .unwrap_or(false);
    if !found {
        eprintln!("SKIP: `{bin}` not installed (apt-get install {package})");
    }
    found
}

pub fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fd-sip-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// A tone-burst signal with an irregular on/off envelope (so envelope correlation is meaningful).
pub fn bursts(rate: u32, freq: f64, pattern_ms: &[(u32, bool)], tail_silence_s: u32) -> Vec<i16> {
    let mut out = Vec::new();
    let mut phase = 0.0f64;
    for &(ms, on) in pattern_ms {
        let n = (rate * ms / 1000) as usize;
        for _ in 0..n {
            phase += 2.0 * std::f64::consts::PI * freq / f64::from(rate);
            out.push(if on { (phase.sin() * 9000.0) as i16 } else { 0 });
        }
    }
    out.extend(std::iter::repeat_n(0, (rate * tail_silence_s) as usize));
    out
}

pub const PATTERN_A: &[(u32, bool)] = &[
    (300, true),
    (200, false),
    (600, true),
    (400, false),
    (200, true),
    (300, false),
    (900, true),
    (200, false),
    (400, true),
    (500, false),
];
pub const PATTERN_B: &[(u32, bool)] = &[
    (500, true),
    (300, false),
    (200, true),
    (200, false),
    (800, true),
    (500, false),
    (300, true),
    (400, false),
    (600, true),
    (300, false),
];

pub fn endpoint_config(sip_port: u16, rtp: (u16, u16)) -> EndpointConfig {
    let mut cfg = EndpointConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], sip_port)),
        rtp_ports: rtp,
        ..EndpointConfig::default()
    };
    // baresip's recorder drops gaps without packets: keep a steady stream.
    cfg.media.idle_transmit = IdleTransmit::Silence;
    cfg
}

pub async fn bind(cfg: EndpointConfig) -> Endpoint {
    Endpoint::bind(cfg).await.expect("bind endpoint")
}

pub async fn accept(ep: &mut Endpoint, secs: u64) -> IncomingCall {
    tokio::time::timeout(Duration::from_secs(secs), ep.accept())
        .await
        .expect("no call arrived in time")
        .expect("endpoint closed")
}

/// Collects caller audio (and other events) for `dur`, or until the caller hangs up.
pub async fn collect(call: &mut IncomingCall, dur: Duration) -> (Vec<i16>, Vec<CallEvent>) {
    let mut audio = Vec::new();
    let mut other = Vec::new();
    let deadline = tokio::time::Instant::now() + dur;
    loop {
        match tokio::time::timeout_at(deadline, call.events.recv()).await {
            Ok(Some(CallEvent::Audio(a))) => audio.extend(a),
            Ok(Some(e)) => {
                let end = e == CallEvent::RemoteHangup;
                other.push(e);
                if end {
                    break;
                }
            }
            Ok(None) | Err(_) => break,
        }
    }
    (audio, other)
}

/// Established TCP connections whose local port is `port` (from /proc/net/tcp; IPv4 loopback).
pub fn established_on(port: u16) -> usize {
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let local_port = f
                .get(1)
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            local_port == Some(port) && f.get(3) == Some(&"01")
        })
        .count()
}
