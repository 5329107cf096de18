//! `ScriptedCaller`: one real SIP/RTP call from a headless baresip, driven line by line.
//!
//! The microphone is baresip's `aufile` source: the call starts on a long silence file
//! and each line is switched in with `ausrc aufile,<wav>` (each WAV padded with silence,
//! because aufile ends the call at end of file). The far end's audio is followed live
//! from a loopback packet capture (dumpcap), which also yields the latency figures.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::audio::Wav;
use crate::baresip::{audio_codecs, now_us, write_config, Baresip, BaresipConfig, CallEvent, Ctrl};
use crate::capture::Capture;
use crate::dns::StubDns;
use crate::error::{io_err, Error, Result};
use crate::pcap::Datagram;
use crate::ports::{free_tcp_port, free_udp_port, free_udp_range};
use crate::rtp::{bot_turns, completed_bot_turn, direction_wav, first_bot_voice, turn_latencies, BotTurn, Direction, RtpPacket, TurnLatency, VoiceParams};
use crate::speech::SpeechCache;

/// How long the capture keeps running after the call so packets in flight are kept.
const CAPTURE_LINGER: Duration = Duration::from_millis(600);
/// dumpcap delivers packets to the pipe in batches (~250 ms measured); silence is
/// judged on the wall clock minus this when the far end sends nothing at all.
const CAPTURE_DELAY_US: i64 = 500_000;
/// Silence after each line's speech, covering the switch back to the idle source.
const LINE_PAD_SECS: u32 = 10;
/// Played past a clip's last sample before the idle source is switched back in: baresip
/// starts a new source on its next audio frame, up to a few ptimes after the command.
const TAIL_MARGIN_US: i64 = 100_000;

#[derive(Debug, Clone)]
pub struct CallerConfig {
    pub target_uri: String,
    /// Caller id user part, e.g. "+12175550161" or "anonymous".
    pub from_user: String,
    pub local_sip_port: u16,
    /// Inclusive RTP/RTCP port range of the caller (also the capture filter).
    pub rtp_ports: (u16, u16),
    /// Logs, config, capture and recordings of this call go here.
    pub run_dir: PathBuf,
    pub setup_timeout: Duration,
    /// Hard cap on the call (baresip -t, dumpcap autostop, silence padding).
    pub max_call: Duration,
    pub voice: VoiceParams,
    pub speech_cache: PathBuf,
    /// Where a blind transfer (REFER) from the far end lands: every name resolves to
    /// 127.0.0.1 and SIP SRV to this port (see `dns::StubDns`). None: names do not
    /// resolve, so a transfer fails (and nothing ever leaves loopback).
    pub transfer_sink_port: Option<u16>,
    /// Codecs baresip offers, in order (its names: `pcmu`, `pcma`, `g722`). Default `pcmu`;
    /// `g722,pcmu` makes an HD-voice call (the speech files are then made at 16 kHz).
    pub codecs: Vec<String>,
}

impl CallerConfig {
    /// Config with free loopback ports picked for this call.
    pub fn new(target_uri: &str, from_user: &str, run_dir: impl Into<PathBuf>) -> Result<Self> {
        Ok(Self {
            target_uri: target_uri.to_string(),
            from_user: from_user.to_string(),
            local_sip_port: free_udp_port()?,
            rtp_ports: free_udp_range(10)?,
            run_dir: run_dir.into(),
            setup_timeout: Duration::from_secs(15),
            max_call: Duration::from_secs(300),
            voice: VoiceParams::default(),
            speech_cache: SpeechCache::default_dir(),
            transfer_sink_port: None,
            codecs: vec!["pcmu".to_string()],
        })
    }

    /// Offers `codecs` (comma-separated, e.g. `"g722,pcmu"`) instead of the default `pcmu`.
    pub fn with_codecs(mut self, codecs: &str) -> Self {
        self.codecs = codecs.split(',').map(|c| c.trim().to_ascii_lowercase()).filter(|c| !c.is_empty()).collect();
        self
    }

    /// Whether the preferred codec is wideband (16 kHz audio).
    pub fn wideband(&self) -> bool {
        self.codecs.first().is_some_and(|c| c == "g722")
    }
}

/// One line the caller said: when it was switched in and when its speech ended
/// (our wall clock, µs; the wire is a few ms later).
#[derive(Debug, Clone, PartialEq)]
pub struct SaidLine {
    pub text: String,
    pub started_us: i64,
    pub speech_end_us: i64,
    pub wav: PathBuf,
}

pub struct ScriptedCaller {
    cfg: CallerConfig,
    // Field order = drop order: baresip (sends BYE) before the control socket and capture.
    baresip: Baresip,
    ctrl: Ctrl,
    capture: Option<Capture>,
    _dns: StubDns,
    speech: SpeechCache,
    /// The idle microphone: long digital silence.
    silence: PathBuf,
    mark_us: i64,
    said: Vec<SaidLine>,
    line_no: usize,
    established_us: i64,
}

/// Everything a finished call left behind.
#[derive(Debug, Clone)]
pub struct CallRecord {
    pub run_dir: PathBuf,
    pub capture: PathBuf,
    pub datagrams: Vec<Datagram>,
    pub packets: Vec<RtpPacket>,
    pub events: Vec<CallEvent>,
    /// Far end's audio rebuilt from the capture on the wall clock (t=0 = first RTP packet).
    pub received_wav: PathBuf,
    /// Caller's audio rebuilt the same way.
    pub sent_wav: PathBuf,
    /// baresip's own recording of the received audio (gaps without packets dropped).
    pub baresip_rx_dump: Option<PathBuf>,
    pub said: Vec<SaidLine>,
    pub established_us: i64,
    pub bot_turns: Vec<BotTurn>,
    pub latencies: Vec<TurnLatency>,
}

impl ScriptedCaller {
    /// Starts the capture and baresip, dials, and returns once the call is established.
    pub fn start(cfg: CallerConfig) -> Result<Self> {
        std::fs::create_dir_all(&cfg.run_dir).map_err(io_err(&cfg.run_dir))?;
        let mut speech = SpeechCache::new(&cfg.speech_cache)?;
        if cfg.wideband() {
            speech.rate = 16_000;
        }
        let codecs = audio_codecs(&cfg.codecs);
        let max_secs = cfg.max_call.as_secs().max(10);
        let silence = speech.silence(max_secs as u32 + 30)?;
        let idle = silence.clone();
        let ctrl_port = free_tcp_port()?;
        let dns = StubDns::start(cfg.transfer_sink_port)?;
        let conf_dir = cfg.run_dir.join("baresip");
        let bc = BaresipConfig {
            sip_port: cfg.local_sip_port,
            rtp_ports: cfg.rtp_ports,
            source_wav: silence,
            rec_dir: cfg.run_dir.join("rec"),
            account: format!("<sip:{}@127.0.0.1:{}>;regint=0;audio_codecs={codecs}", cfg.from_user, cfg.local_sip_port),
            ctrl_port: Some(ctrl_port),
            dns_port: Some(dns.port),
        };
        write_config(&conf_dir, &bc)?;
        let filter = format!("udp and (port {} or portrange {}-{})", cfg.local_sip_port, cfg.rtp_ports.0, cfg.rtp_ports.1);
        let capture = Capture::start(&cfg.run_dir.join("call.pcap"), &filter, cfg.rtp_ports, max_secs + 60)?;
        let mut baresip = Baresip::spawn(&conf_dir, max_secs + cfg.setup_timeout.as_secs() + 10)?;
        baresip.wait_ready(Duration::from_secs(10))?;
        let mut ctrl = Ctrl::connect(ctrl_port, Duration::from_secs(5))?;
        ctrl.command("dial", &cfg.target_uri, Duration::from_secs(5))?;
        let ev = ctrl.wait_event(&["CALL_ESTABLISHED", "CALL_CLOSED"], cfg.setup_timeout);
        let established_us = match ev {
            Some(e) if e.kind == "CALL_ESTABLISHED" => e.at_us,
            Some(e) => return Err(Error::CallClosed(format!("call to {} failed: {} (see {})", cfg.target_uri, e.param, baresip.log.display()))),
            None => return Err(Error::SetupTimeout { target: cfg.target_uri.clone(), secs: cfg.setup_timeout.as_secs(), log: baresip.log.clone() }),
        };
        Ok(Self { cfg, baresip, ctrl, capture: Some(capture), _dns: dns, speech, silence: idle, mark_us: established_us, said: Vec::new(), line_no: 0, established_us })
    }

    pub fn config(&self) -> &CallerConfig {
        &self.cfg
    }

    /// True once baresip reported the call closed (far-end BYE or our hangup).
    pub fn is_closed(&self) -> bool {
        self.ctrl.events().iter().any(|e| e.kind == "CALL_CLOSED")
    }

    pub fn events(&self) -> Vec<CallEvent> {
        self.ctrl.events()
    }

    /// Says `text` (espeak-ng, cached) and returns when its speech has been sent.
    /// Empty text says nothing.
    pub fn say(&mut self, text: &str) -> Result<SaidLine> {
        if text.trim().is_empty() {
            let now = now_us();
            return Ok(SaidLine { text: String::new(), started_us: now, speech_end_us: now, wav: PathBuf::new() });
        }
        let wav = self.speech.speech(text)?;
        self.say_prepared(text, &wav)
    }

    /// Sends any WAV file (converted to mono at 8 kHz, or 16 kHz on a G.722 call) as the
    /// caller's speech.
    pub fn say_wav(&mut self, path: &Path) -> Result<SaidLine> {
        let dst = self.cfg.run_dir.join(format!("line-{:02}.wav", self.line_no + 1));
        crate::speech::convert_to(path, &dst, 0.0, self.speech.rate)?;
        self.say_prepared(&format!("<{}>", path.display()), &dst)
    }

    fn say_prepared(&mut self, text: &str, speech_wav: &Path) -> Result<SaidLine> {
        if self.is_closed() {
            return Err(Error::CallClosed("the far end hung up before the caller could speak".into()));
        }
        let clip = Wav::read(speech_wav)?;
        let end = clip.voiced_extent(self.cfg.voice.threshold_rms).map(|(_, e)| e).unwrap_or(0.0);
        // Short padding keeps the cache small; the idle silence is switched back in once
        // the whole clip is out (aufile would end the call at end of file).
        let padded = self.speech.padded(speech_wav, LINE_PAD_SECS)?;
        self.line_no += 1;
        let started_us = now_us();
        self.ctrl.command("ausrc", &format!("aufile,{}", padded.display()), Duration::from_secs(5))?;
        let speech_end_us = started_us + (end * 1e6) as i64;
        // Not at the voiced end: the quiet tail under the threshold (the release of a final
        // "k", a trailing "s") is still speech, and cutting it made the recogniser hear
        // "Lena Park" as "Lena Parry". The clip's own trailing silence plus the source
        // switch's latency is covered by the margin and the padding.
        sleep_until_us(started_us + (clip.duration_secs() * 1e6) as i64 + TAIL_MARGIN_US);
        self.ctrl.command("ausrc", &format!("aufile,{}", self.silence.display()), Duration::from_secs(5))?;
        self.mark_us = speech_end_us;
        let line = SaidLine { text: text.to_string(), started_us, speech_end_us, wav: speech_wav.to_path_buf() };
        self.said.push(line.clone());
        Ok(line)
    }

    /// Sends RFC 4733 DTMF digits (0-9, *, #, A-D), one event each, 300 ms apart.
    pub fn send_dtmf(&mut self, digits: &str) -> Result<()> {
        for d in digits.chars().filter(|c| !c.is_whitespace()) {
            if !matches!(d, '0'..='9' | '*' | '#' | 'A'..='D' | 'a'..='d') {
                return Err(Error::Scenario(format!("`{d}` is not a DTMF digit")));
            }
            self.ctrl.command("sndcode", &d.to_string(), Duration::from_secs(5))?;
            // baresip's event lasts ~240 ms (9 packets + 3 end packets): do not overlap
            std::thread::sleep(Duration::from_millis(300));
        }
        self.mark_us = now_us();
        Ok(())
    }

    /// Waits until the far end has spoken (after the caller's last line) and then been
    /// silent for the configured hangover (~1.2 s). If the far end hangs up after speaking,
    /// returns that turn; hanging up without speaking is `Error::CallClosed`.
    pub fn wait_for_bot_turn(&mut self, timeout: Duration) -> Result<BotTurn> {
        let deadline = Instant::now() + timeout;
        let p = self.cfg.voice;
        let cap = self.capture.as_ref().ok_or_else(|| Error::Capture("capture already stopped".into()))?;
        loop {
            let closed = self.ctrl.events().iter().find(|e| e.kind == "CALL_CLOSED").cloned();
            let found = {
                let st = cap.lock();
                let latest = st.latest_us.max(now_us() - CAPTURE_DELAY_US);
                let latest = if closed.is_some() { i64::MAX / 2 } else { latest };
                completed_bot_turn(&st.packets, self.mark_us, latest, &p)
            };
            if let Some(t) = found {
                self.mark_us = now_us();
                return Ok(t);
            }
            if let Some(e) = closed {
                // the BYE may overtake the last audio in the capture pipe: look once more
                std::thread::sleep(CAPTURE_LINGER);
                if let Some(t) = completed_bot_turn(&cap.lock().packets, self.mark_us, i64::MAX / 2, &p) {
                    return Ok(t);
                }
                return Err(Error::CallClosed(e.param));
            }
            if Instant::now() > deadline {
                return Err(Error::Timeout { what: "the far end to speak and finish its turn".into(), secs: timeout.as_secs() });
            }
            cap.wait_update(Duration::from_millis(50));
        }
    }

    /// Barge-in: waits for the far end to start speaking, then `ms` later says `text`
    /// over it.
    pub fn barge_in_after(&mut self, ms: u64, text: &str, timeout: Duration) -> Result<SaidLine> {
        let deadline = Instant::now() + timeout;
        let p = self.cfg.voice;
        let onset = loop {
            let cap = self.capture.as_ref().ok_or_else(|| Error::Capture("capture already stopped".into()))?;
            if let Some(t) = first_bot_voice(&cap.lock().packets, self.mark_us, &p) {
                break t;
            }
            if self.is_closed() {
                return Err(Error::CallClosed("far end hung up before speaking".into()));
            }
            if Instant::now() > deadline {
                return Err(Error::Timeout { what: "the far end to start speaking".into(), secs: timeout.as_secs() });
            }
            cap.wait_update(Duration::from_millis(20));
        };
        sleep_until_us(onset + ms as i64 * 1000);
        self.say(text)
    }

    /// Hangs up (no-op if the call is already closed).
    pub fn hangup(&mut self) -> Result<()> {
        if self.is_closed() {
            return Ok(());
        }
        self.ctrl.command("hangup", "", Duration::from_secs(5))?;
        let _ = self.ctrl.wait_event(&["CALL_CLOSED"], Duration::from_secs(3));
        Ok(())
    }

    /// Hangs up if needed, stops baresip and the capture, analyses the capture and writes
    /// `received.wav` / `sent.wav` into the run dir.
    pub fn finish(mut self) -> Result<CallRecord> {
        let hung = self.hangup();
        let events = self.ctrl.events();
        self.baresip.stop();
        let cap = self.capture.take().ok_or_else(|| Error::Capture("capture already stopped".into()))?;
        let cap_path = cap.path().to_path_buf();
        let (datagrams, packets) = cap.stop(CAPTURE_LINGER)?;
        hung?;
        let t0 = packets.first().map(|k| k.ts_us).unwrap_or(self.established_us);
        let received_wav = self.cfg.run_dir.join("received.wav");
        direction_wav(&packets, Direction::Received, t0).write(&received_wav)?;
        let sent_wav = self.cfg.run_dir.join("sent.wav");
        direction_wav(&packets, Direction::Sent, t0).write(&sent_wav)?;
        let p = self.cfg.voice;
        Ok(CallRecord {
            run_dir: self.cfg.run_dir.clone(),
            capture: cap_path,
            bot_turns: bot_turns(&packets, &p),
            latencies: turn_latencies(&packets, &p),
            datagrams,
            packets,
            events,
            received_wav,
            sent_wav,
            baresip_rx_dump: Baresip::rx_dump(&self.cfg.run_dir.join("rec")),
            said: std::mem::take(&mut self.said),
            established_us: self.established_us,
        })
    }
}

fn sleep_until_us(t: i64) {
    let d = t - now_us();
    if d > 0 {
        std::thread::sleep(Duration::from_micros(d as u64));
    }
}
