//! SIP/RTP load benchmark: SIPp places N concurrent calls (PCMU, RTP echoed back by SIPp) to an
//! in-process endpoint; prints INVITE→200 times (SIPp's own measurement) and the endpoint's CPU
//! per call while all N calls carry media.
//!
//! `cargo run --release -p fd-voice --example sip_bench -- [N,N,..] [hold_secs]`
//! (default `1,10,50 12`). Needs `sipp` (Debian `sip-tester`). Loopback only.

use fd_voice::endpoint::{CallEvent, Endpoint, EndpointConfig};
use fd_voice::media::IdleTransmit;
use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SCENARIO: &str = include_str!("../../tests/sip/bench_uac.xml");

/// Process CPU seconds (all threads), from /proc/self/stat (USER_HZ = 100 on Linux).
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of stat (utime, stime) are at 11 and 12 after the ")".
    (ticks(11) + ticks(12)) / 100.0
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

fn percentile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[((v.len() - 1) as f64 * q).round() as usize]
}

async fn run(n: usize, hold: u64, dir: &std::path::Path) -> Result<(), String> {
    let rtp_lo = 31000u16;
    let mut cfg = EndpointConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        rtp_ports: (rtp_lo, rtp_lo + (n as u16) * 4 + 40),
        max_calls: n + 5,
        ..EndpointConfig::default()
    };
    // A steady outbound stream per call (SIPp echoes it back): full encode + decode path.
    cfg.media.idle_transmit = IdleTransmit::Silence;
    let mut ep = Endpoint::bind(cfg).await.map_err(|e| e.to_string())?;
    let port = ep.local_addr().port();
    let live = Arc::new(AtomicUsize::new(0));
    let frames = Arc::new(AtomicUsize::new(0));
    let (l2, f2) = (live.clone(), frames.clone());
    tokio::spawn(async move {
        while let Some(mut call) = ep.accept().await {
            let (l3, f3) = (l2.clone(), f2.clone());
            l3.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                while let Some(ev) = call.events.recv().await {
                    match ev {
                        CallEvent::Audio(_) => {
                            f3.fetch_add(1, Ordering::Relaxed);
                        }
                        CallEvent::RemoteHangup => break,
                        _ => {}
                    }
                }
                l3.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });

    let scen = dir.join("bench_uac.xml");
    std::fs::write(&scen, SCENARIO).map_err(|e| e.to_string())?;
    let mut sipp = Command::new("sipp")
        .current_dir(dir)
        .arg(format!("127.0.0.1:{port}"))
        .arg("-sf")
        .arg(&scen)
        .args([
            "-s",
            "frontdesk",
            "-i",
            "127.0.0.1",
            "-p",
            &free_port().to_string(),
        ])
        .args([
            "-mi",
            "127.0.0.1",
            "-mp",
            &free_port().to_string(),
            "-rtp_echo",
        ])
        .args([
            "-m",
            &n.to_string(),
            "-l",
            &n.to_string(),
            "-r",
            &n.max(1).to_string(),
        ])
        .args([
            "-d",
            &(hold * 1000).to_string(),
            "-trace_rtt",
            "-rtt_freq",
            "1",
            "-nostdin",
            "-timeout",
            "120s",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start sipp (apt-get install sip-tester): {e}"))?;

    // Wait until all N calls are up, then measure CPU over a window of the media phase.
    let start = Instant::now();
    while live.load(Ordering::SeqCst) < n {
        if start.elapsed() > Duration::from_secs(hold.saturating_sub(2).max(5)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let up = live.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (c0, t0, f0) = (cpu_secs(), Instant::now(), frames.load(Ordering::Relaxed));
    let window = Duration::from_secs(hold.saturating_sub(4).max(2));
    tokio::time::sleep(window).await;
    let (c1, t1, f1) = (cpu_secs(), Instant::now(), frames.load(Ordering::Relaxed));
    let status = tokio::task::spawn_blocking(move || sipp.wait())
        .await
        .map_err(|e| e.to_string())?;
    let cpu_pct = (c1 - c0) / (t1 - t0).as_secs_f64() * 100.0;
    let fps = (f1 - f0) as f64 / (t1 - t0).as_secs_f64();

    let mut rtts: Vec<f64> = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| e.to_string())?.flatten() {
        if e.path().to_string_lossy().ends_with("_rtt.csv") {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            rtts.extend(
                text.lines()
                    .skip(1)
                    .filter_map(|l| l.split(';').nth(1)?.trim().parse::<f64>().ok()),
            );
            let _ = std::fs::remove_file(e.path());
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "calls={n:>3} established={up:>3} sipp_ok={} invite_to_200_ms: p50={:.2} p95={:.2} max={:.2} (n={}) | \
endpoint cpu={cpu_pct:.1}% ({:.2}% per call) caller_frames/s={fps:.0} (expect {}) | loadavg {}",
        status.as_ref().is_ok_and(|s| s.success()),
        percentile(&mut rtts.clone(), 0.5),
        percentile(&mut rtts.clone(), 0.95),
        percentile(&mut rtts, 1.0),
        rtts.len(),
        cpu_pct / up.max(1) as f64,
        up * 50,
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    );
    Ok(())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let ns: Vec<usize> = args
        .get(1)
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 10, 50]);
    let hold: u64 = args.get(2).and_then(|h| h.parse().ok()).unwrap_or(12);
    let dir = std::env::temp_dir().join(format!("fd-sip-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    for n in ns {
        if let Err(e) = run(n, hold, &dir).await {
            eprintln!("calls={n}: {e}");
            std::process::exit(1);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}
