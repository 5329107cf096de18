//! Live loopback capture with `dumpcap` (Debian `tshark`/`wireshark-common`), streamed
//! as classic pcap through a pipe: the same bytes are saved to a file (for tshark and
//! people) and parsed on the fly, so the caller can follow the far end's audio live and
//! compute latency from the very same packets afterwards.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{io_err, Error, Result};
use crate::pcap::{Datagram, PcapStream};
use crate::proc::ChildGuard;
use crate::rtp::{Classifier, RtpPacket};

#[derive(Debug, Default)]
pub struct LiveState {
    pub datagrams: Vec<Datagram>,
    pub packets: Vec<RtpPacket>,
    /// Capture time of the newest datagram (µs since epoch), 0 before the first.
    pub latest_us: i64,
    pub error: Option<String>,
    pub eof: bool,
}

type Shared = Arc<(Mutex<LiveState>, Condvar)>;

pub struct Capture {
    guard: ChildGuard,
    shared: Shared,
    reader: Option<JoinHandle<()>>,
    path: PathBuf,
}

impl Capture {
    /// Starts dumpcap on `lo` with BPF `filter`; RTP in `caller_rtp` is classified as the
    /// caller's. Returns once dumpcap is capturing. `max_secs` is dumpcap's own
    /// autostop, so even a killed test process leaves no capture running for long.
    pub fn start(path: &Path, filter: &str, caller_rtp: (u16, u16), max_secs: u64) -> Result<Self> {
        let log = path.with_extension("dumpcap.log");
        let logf = std::fs::File::create(&log).map_err(io_err(&log))?;
        let mut cmd = Command::new("dumpcap");
        cmd.args(["-q", "-i", "lo", "-P", "-f", filter, "-a"])
            .arg(format!("duration:{max_secs}"))
            .args(["-w", "-"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(logf);
        let mut guard = ChildGuard::spawn(cmd, "dumpcap", "tshark")?;
        let stdout = guard
            .child_mut()
            .and_then(|c| c.stdout.take())
            .ok_or_else(|| Error::Capture("dumpcap stdout missing".into()))?;
        let file = std::fs::File::create(path).map_err(io_err(path))?;
        let shared: Shared = Arc::new((Mutex::new(LiveState::default()), Condvar::new()));
        let sh = shared.clone();
        let reader = std::thread::spawn(move || read_loop(stdout, file, caller_rtp, sh));
        let cap = Self { guard, shared, reader: Some(reader), path: path.to_path_buf() };
        // dumpcap logs "File: -" once the interface is open and the filter compiled.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("File:") {
                return Ok(cap);
            }
            if text.contains("rror") || text.contains("ermission") {
                return Err(Error::Tool { program: "dumpcap".into(), detail: format!("{} (capturing on lo needs root or CAP_NET_RAW)", text.trim()) });
            }
            if Instant::now() > deadline {
                return Err(Error::Timeout { what: format!("dumpcap to start capturing (see {})", log.display()), secs: 10 });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Locks the live state (packets so far). Keep the lock short: the reader waits on it.
    pub fn lock(&self) -> MutexGuard<'_, LiveState> {
        self.shared.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until new packets arrive or `d` passes.
    pub fn wait_update(&self, d: Duration) {
        let g = self.lock();
        let _ = self.shared.1.wait_timeout(g, d);
    }

    /// Stops capturing (after `linger` so in-flight packets are kept) and returns all
    /// datagrams and RTP packets.
    pub fn stop(mut self, linger: Duration) -> Result<(Vec<Datagram>, Vec<RtpPacket>)> {
        std::thread::sleep(linger);
        self.guard.stop();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let mut st = self.lock();
        if let Some(e) = st.error.take() {
            return Err(Error::Capture(e));
        }
        Ok((std::mem::take(&mut st.datagrams), std::mem::take(&mut st.packets)))
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.guard.stop();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

fn read_loop(mut src: impl Read, mut file: std::fs::File, caller_rtp: (u16, u16), sh: Shared) {
    let mut parser = PcapStream::new();
    // One classifier for the whole capture: G.722 decoding is stateful across batches.
    let mut classifier = Classifier::new(caller_rtp);
    let mut buf = vec![0u8; 65536];
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let _ = file.write_all(&buf[..n]);
        let res = parser.push(&buf[..n]);
        let mut st = sh.0.lock().unwrap_or_else(|e| e.into_inner());
        match res {
            Ok(ds) => {
                if let Some(last) = ds.last() {
                    st.latest_us = st.latest_us.max(last.ts_us);
                }
                st.packets.extend(classifier.classify(&ds));
                st.datagrams.extend(ds);
            }
            Err(e) => {
                st.error = Some(e.to_string());
                break;
            }
        }
        drop(st);
        sh.1.notify_all();
    }
    let _ = file.flush();
    sh.0.lock().unwrap_or_else(|e| e.into_inner()).eof = true;
    sh.1.notify_all();
}
