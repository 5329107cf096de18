//! `TestCallee`: an auto-answering baresip that plays a WAV and records what it hears.
//! A stand-in for the appliance, used by the harness's own tests.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::baresip::{write_config, Baresip, BaresipConfig, Ctrl};
use crate::error::{io_err, Result};
use crate::ports::{free_tcp_port, free_udp_port, free_udp_range};
use crate::speech::convert_to;

pub struct TestCallee {
    /// Control channel (only with `start_controlled`), e.g. to send `transfer <uri>`.
    pub ctrl: Option<Ctrl>,
    baresip: Baresip,
    pub sip_port: u16,
    pub rtp_ports: (u16, u16),
    pub user: String,
    pub rec_dir: PathBuf,
    /// What it plays (mono, padded; 8 kHz, or 16 kHz for `start_wideband`).
    pub play_wav: PathBuf,
}

impl TestCallee {
    /// Listens on a free loopback port as `user`, answers every call at once and plays
    /// `wav` followed by `pad_secs` of silence (baresip hangs up when the file ends).
    pub fn start(run_dir: &Path, user: &str, wav: &Path, pad_secs: f64) -> Result<Self> {
        Self::start_inner(run_dir, user, wav, pad_secs, false, false)
    }

    /// Like `start`, with baresip's ctrl_tcp control channel in `ctrl`.
    pub fn start_controlled(run_dir: &Path, user: &str, wav: &Path, pad_secs: f64) -> Result<Self> {
        Self::start_inner(run_dir, user, wav, pad_secs, true, false)
    }

    /// Like `start`, but accepting only G.722 (HD voice) and playing `wav` at 16 kHz.
    pub fn start_wideband(run_dir: &Path, user: &str, wav: &Path, pad_secs: f64) -> Result<Self> {
        Self::start_inner(run_dir, user, wav, pad_secs, false, true)
    }

    fn start_inner(run_dir: &Path, user: &str, wav: &Path, pad_secs: f64, controlled: bool, wideband: bool) -> Result<Self> {
        std::fs::create_dir_all(run_dir).map_err(io_err(run_dir))?;
        let play_wav = run_dir.join("play.wav");
        // baresip's aufile source must match the codec's sample rate exactly.
        let (rate, codecs) = if wideband { (16_000, "g722/16000/1") } else { (8000, "pcmu") };
        convert_to(wav, &play_wav, pad_secs, rate)?;
        let sip_port = free_udp_port()?;
        let rtp_ports = free_udp_range(10)?;
        let rec_dir = run_dir.join("rec");
        let ctrl_port = if controlled { Some(free_tcp_port()?) } else { None };
        let conf = run_dir.join("baresip");
        write_config(
            &conf,
            &BaresipConfig {
                sip_port,
                rtp_ports,
                source_wav: play_wav.clone(),
                rec_dir: rec_dir.clone(),
                account: format!("<sip:{user}@127.0.0.1:{sip_port}>;regint=0;answermode=auto;audio_codecs={codecs}"),
                ctrl_port,
                dns_port: None,
            },
        )?;
        let mut baresip = Baresip::spawn(&conf, 600)?;
        baresip.wait_ready(Duration::from_secs(10))?;
        let ctrl = match ctrl_port {
            Some(p) => Some(Ctrl::connect(p, Duration::from_secs(5))?),
            None => None,
        };
        Ok(Self { ctrl, baresip, sip_port, rtp_ports, user: user.to_string(), rec_dir, play_wav })
    }

    pub fn uri(&self) -> String {
        format!("sip:{}@127.0.0.1:{}", self.user, self.sip_port)
    }

    /// Stops baresip (closes its recordings).
    pub fn stop(&mut self) {
        self.baresip.stop();
    }

    /// True once it has answered a call (established).
    pub fn answered(&self) -> bool {
        std::fs::read_to_string(&self.baresip.log).unwrap_or_default().contains("Call established")
    }

    /// The callee's recording of what it received (after `stop`).
    pub fn recording(&self) -> Option<PathBuf> {
        Baresip::rx_dump(&self.rec_dir)
    }
}
