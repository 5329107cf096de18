//! Headless baresip 1.0.0 (Debian `baresip-core`): config writer, process and the
//! `ctrl_tcp` control channel (netstring-framed JSON: commands, responses, call events).
//!
//! Verified against baresip 1.0.0 on Debian 12: `ausrc aufile,<wav>` switches the
//! microphone mid-call, `sndcode <digit>` sends an RFC 4733 telephone-event (PT 101,
//! 9 packets + 3 end packets, ~240 ms), `dial`/`hangup` place and end the call, and the
//! module emits `CALL_ESTABLISHED` / `CALL_CLOSED` events with the reason in `param`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::error::{io_err, Error, Result};
use crate::proc::ChildGuard;

/// What one baresip instance needs.
#[derive(Debug, Clone)]
pub struct BaresipConfig {
    pub sip_port: u16,
    pub rtp_ports: (u16, u16),
    /// Initial microphone (aufile source).
    pub source_wav: PathBuf,
    /// sndfile module dumps `dump-*-dec.wav` (received) and `-enc.wav` (sent) here.
    pub rec_dir: PathBuf,
    /// Full accounts line, e.g. `<sip:alice@127.0.0.1:5070>;regint=0;audio_codecs=pcmu`.
    /// G.711 (`pcmu`, `pcma`) and G.722 (`g722`) are loaded; the account's `audio_codecs`
    /// decides what is offered.
    pub account: String,
    pub ctrl_port: Option<u16>,
    /// DNS server for names in SIP URIs (e.g. a REFER target); see `dns::StubDns`.
    pub dns_port: Option<u16>,
}

pub fn write_config(dir: &Path, c: &BaresipConfig) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    std::fs::create_dir_all(&c.rec_dir).map_err(io_err(&c.rec_dir))?;
    let mut cfg = format!(
        "poll_method\t\tepoll\nsip_listen\t\t127.0.0.1:{sip}\nnet_interface\t\t127.0.0.1\ncall_local_timeout\t30\n\
         call_max_calls\t\t4\naudio_source\t\taufile,{src}\naudio_player\t\tnone,none\naudio_alert\t\tnone,none\n\
         audio_buffer\t\t20-160\nrtp_ports\t\t{lo}-{hi}\nrtcp_mux\t\tno\njitter_buffer_delay\t5-10\n\
         module_path\t\t/usr/lib/baresip/modules\nmodule\t\t\tg711.so\nmodule\t\t\tg722.so\nmodule\t\t\taufile.so\nmodule\t\t\tsndfile.so\n\
         module_tmp\t\tuuid.so\nmodule_tmp\t\taccount.so\nmodule_app\t\tmenu.so\nsnd_path\t\t{rec}\n",
        sip = c.sip_port,
        src = c.source_wav.display(),
        lo = c.rtp_ports.0,
        hi = c.rtp_ports.1,
        rec = c.rec_dir.display()
    );
    if let Some(p) = c.dns_port {
        cfg.push_str(&format!("dns_server\t\t127.0.0.1:{p}\n"));
    }
    if let Some(p) = c.ctrl_port {
        cfg.push_str(&format!("module_app\t\tctrl_tcp.so\nctrl_tcp_listen\t\t127.0.0.1:{p}\n"));
    }
    let w = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(io_err(p))
    };
    w("config", &cfg)?;
    w("accounts", &format!("{}\n", c.account))?;
    w("contacts", "")
}

/// Turns on SIP over TLS in a config written by [`write_config`]: libre's TLS client trusts
/// `ca_file` (baresip 1.0 on Debian 12 does not enforce verification; the CA is set so a
/// verifying build works too). Dial `sip:user@host:port;transport=tls` to call over TLS.
pub fn enable_tls(dir: &Path, ca_file: &Path) -> Result<()> {
    let p = dir.join("config");
    let mut cfg = std::fs::read_to_string(&p).map_err(io_err(&p))?;
    cfg.push_str(&format!("sip_cafile\t\t{}\n", ca_file.display()));
    std::fs::write(&p, cfg).map_err(io_err(p))
}

/// The `audio_codecs=` value for codec names like `pcmu`, `pcma`, `g722` (empty: `pcmu`).
/// baresip registers G.722 as `G722/16000/1`; a bare `g722` would be looked up as
/// `g722/8000/1`, not found, and silently dropped from the offer.
pub fn audio_codecs(names: &[String]) -> String {
    if names.is_empty() {
        return "pcmu".to_string();
    }
    names.iter().map(|n| if n.eq_ignore_ascii_case("g722") { "g722/16000/1".to_string() } else { n.to_ascii_lowercase() }).collect::<Vec<_>>().join(",")
}

/// A running baresip; stopped with SIGINT (sends BYE for live calls) on drop.
pub struct Baresip {
    guard: ChildGuard,
    pub log: PathBuf,
    pub conf_dir: PathBuf,
}

impl Baresip {
    /// Starts baresip with config dir `conf_dir` (HOME too, so nothing touches ~/.baresip).
    /// `max_secs` is baresip's own `-t` cap: no orphan outlives it.
    pub fn spawn(conf_dir: &Path, max_secs: u64) -> Result<Self> {
        let log = conf_dir.join("baresip.log");
        let f = std::fs::File::create(&log).map_err(io_err(&log))?;
        let f2 = f.try_clone().map_err(io_err(&log))?;
        let mut cmd = Command::new("baresip");
        cmd.arg("-f").arg(conf_dir).arg("-t").arg(max_secs.to_string()).env("HOME", conf_dir).stdin(Stdio::null()).stdout(f).stderr(f2);
        let guard = ChildGuard::spawn(cmd, "baresip", "baresip-core")?;
        Ok(Self { guard, log, conf_dir: conf_dir.to_path_buf() })
    }

    /// Waits for "baresip is ready." in the log.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if std::fs::read_to_string(&self.log).unwrap_or_default().contains("baresip is ready") {
                return Ok(());
            }
            if !self.guard.is_running() {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(3).collect();
                return Err(Error::Tool {
                    program: "baresip".into(),
                    detail: format!("exited at start-up (port in use? config error?): {}; see {}", tail.into_iter().rev().collect::<Vec<_>>().join(" | "), self.log.display()),
                });
            }
            if Instant::now() > deadline {
                return Err(Error::Timeout { what: format!("baresip start-up (see {})", self.log.display()), secs: timeout.as_secs() });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.guard.is_running()
    }

    pub fn stop(&mut self) {
        self.guard.stop();
    }

    /// Received-audio recording of the sndfile module (drops gaps without packets).
    pub fn rx_dump(rec_dir: &Path) -> Option<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(rec_dir).ok()?.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.to_string_lossy().ends_with("-dec.wav")).collect();
        v.sort();
        v.pop()
    }
}

/// A baresip event, stamped with our wall clock on arrival.
#[derive(Debug, Clone, PartialEq)]
pub struct CallEvent {
    pub at_us: i64,
    pub kind: String,
    pub param: String,
}

#[derive(Default)]
struct CtrlState {
    events: Vec<CallEvent>,
    responses: HashMap<String, (bool, String)>,
    closed: bool,
}

/// Client of baresip's ctrl_tcp module.
pub struct Ctrl {
    stream: TcpStream,
    shared: Arc<(Mutex<CtrlState>, Condvar)>,
    reader: Option<std::thread::JoinHandle<()>>,
    next: AtomicU64,
}

impl Ctrl {
    pub fn connect(port: u16, timeout: Duration) -> Result<Self> {
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(s) => break s,
                Err(e) if Instant::now() > deadline => return Err(Error::Control(format!("connect to 127.0.0.1:{port}: {e}"))),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        let _ = stream.set_nodelay(true);
        let rd = stream.try_clone().map_err(|e| Error::Control(e.to_string()))?;
        let shared = Arc::new((Mutex::new(CtrlState::default()), Condvar::new()));
        let sh = shared.clone();
        let reader = std::thread::spawn(move || ctrl_read_loop(rd, sh));
        Ok(Self { stream, shared, reader: Some(reader), next: AtomicU64::new(1) })
    }

    /// Sends a command (as typed after `/` in baresip) and waits for its response.
    pub fn command(&mut self, command: &str, params: &str, timeout: Duration) -> Result<String> {
        let token = format!("t{}", self.next.fetch_add(1, Ordering::Relaxed));
        let msg = serde_json::json!({ "command": command, "params": params, "token": token }).to_string();
        let frame = format!("{}:{},", msg.len(), msg);
        self.stream.write_all(frame.as_bytes()).map_err(|e| Error::Control(format!("send `{command}`: {e}")))?;
        let (lock, cv) = &*self.shared;
        let deadline = Instant::now() + timeout;
        let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some((ok, data)) = st.responses.remove(&token) {
                return if ok { Ok(data) } else { Err(Error::Control(format!("`{command} {params}` refused: {data}"))) };
            }
            if st.closed {
                return Err(Error::Control(format!("connection closed while waiting for `{command}` (baresip exited?)")));
            }
            let now = Instant::now();
            if now > deadline {
                return Err(Error::Timeout { what: format!("baresip to answer `{command}`"), secs: timeout.as_secs() });
            }
            st = cv.wait_timeout(st, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    pub fn events(&self) -> Vec<CallEvent> {
        self.shared.0.lock().unwrap_or_else(|e| e.into_inner()).events.clone()
    }

    /// Waits for the first event (from the start of the session) whose kind is in `kinds`.
    pub fn wait_event(&self, kinds: &[&str], timeout: Duration) -> Option<CallEvent> {
        let (lock, cv) = &*self.shared;
        let deadline = Instant::now() + timeout;
        let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(e) = st.events.iter().find(|e| kinds.contains(&e.kind.as_str())) {
                return Some(e.clone());
            }
            let now = Instant::now();
            if now > deadline || st.closed {
                return None;
            }
            st = cv.wait_timeout(st, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }
}

impl Drop for Ctrl {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

/// Wall clock, µs since the UNIX epoch (the time base of captures and events).
pub fn now_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

/// Splits complete netstrings (`<len>:<bytes>,`) off the front of `buf`.
pub fn take_netstrings(buf: &mut Vec<u8>) -> std::result::Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    while let Some(colon) = buf.iter().position(|&b| b == b':') {
        let len: usize = std::str::from_utf8(&buf[..colon]).ok().and_then(|s| s.trim().parse().ok()).ok_or("bad netstring length")?;
        if buf.len() < colon + 1 + len + 1 {
            break;
        }
        if buf[colon + 1 + len] != b',' {
            return Err("netstring without trailing comma".into());
        }
        out.push(buf[colon + 1..colon + 1 + len].to_vec());
        buf.drain(..colon + 2 + len);
    }
    Ok(out)
}

fn ctrl_read_loop(mut s: TcpStream, sh: Arc<(Mutex<CtrlState>, Condvar)>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let Ok(msgs) = take_netstrings(&mut buf) else { break };
        let mut st = sh.0.lock().unwrap_or_else(|e| e.into_inner());
        for m in msgs {
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(&m) else { continue };
            let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or_default().to_string();
            if v.get("event").and_then(|x| x.as_bool()) == Some(true) {
                st.events.push(CallEvent { at_us: now_us(), kind: s("type"), param: s("param") });
            } else if v.get("response").and_then(|x| x.as_bool()) == Some(true) {
                let ok = v.get("ok").and_then(|x| x.as_bool()).unwrap_or(false);
                st.responses.insert(s("token"), (ok, s("data")));
            }
        }
        drop(st);
        sh.1.notify_all();
    }
    sh.0.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
    sh.1.notify_all();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_names_map_to_baresip_registrations() {
        assert_eq!(audio_codecs(&[]), "pcmu");
        assert_eq!(audio_codecs(&["G722".into(), "pcmu".into()]), "g722/16000/1,pcmu");
    }

    #[test]
    fn netstrings_split_across_reads() {
        let mut b = b"5:hello,3:ab".to_vec();
        assert_eq!(take_netstrings(&mut b).unwrap(), vec![b"hello".to_vec()]);
        b.extend_from_slice(b"c,");
        assert_eq!(take_netstrings(&mut b).unwrap(), vec![b"abc".to_vec()]);
        assert!(b.is_empty());
        let mut bad = b"x:1,".to_vec();
        assert!(take_netstrings(&mut bad).is_err());
    }
}
