//! The tokio driver: one task per call owning the RTP socket (and optionally the RTCP socket) and a
//! [`MediaSession`]. It only moves datagrams and time in and out of the session.
//!
//! - Outbound commands travel on a bounded channel; `flush` and `stop` travel on a `watch`, so a
//!   barge-in is never stuck behind queued audio, and audio queued before a flush is discarded.
//! - Events leave on a bounded channel of ~200 ms of audio. When the owner falls behind, audio frames
//!   are dropped (counted); DTMF and the inactivity timeout are held until there is room.
//! - The task ends on `stop()`, when the handle is dropped, when the event receiver is dropped, and
//!   after an inactivity timeout has been delivered. The socket is closed when it ends.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::session::{Channel, MediaEvent, MediaSession, MediaStats};
use crate::VoiceError;

/// Audio frames the event channel holds (10 × 20 ms = 200 ms).
pub const EVENT_CAPACITY: usize = 10;
/// Play commands in flight (each may hold a whole sentence).
const COMMAND_CAPACITY: usize = 16;
/// Non-audio events held while the owner is not reading.
const MAX_HELD_EVENTS: usize = 64;

/// Options beyond the session's own configuration.
#[derive(Debug, Default)]
pub struct DriverOptions {
    /// Symmetric RTP (RFC 4961): send to wherever the first packet came from, for peers behind NAT
    /// or media proxies whose SDP address is not where they send from.
    pub symmetric_rtp: bool,
    /// A separate RTCP socket (RTP port + 1). Without it RTCP is sent on the RTP socket only if
    /// `rtcp_mux` is set, and dropped otherwise.
    pub rtcp_socket: Option<UdpSocket>,
    pub rtcp_mux: bool,
}

#[derive(Debug, Clone, Copy)]
struct Control {
    flush_gen: u64,
    stop: bool,
    remote: SocketAddr,
}

enum Command {
    Play { flush_gen: u64, pcm: Vec<i16> },
}

/// Controls one running media task. Dropping it stops the task.
#[derive(Debug)]
pub struct MediaHandle {
    commands: mpsc::Sender<Command>,
    control: watch::Sender<Control>,
    flush_gen: AtomicU64,
    task: Option<JoinHandle<MediaStats>>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Play { pcm, .. } => write!(f, "Play({} samples)", pcm.len()),
        }
    }
}

impl MediaHandle {
    /// Queues 16 kHz mono audio. Never blocks; fails if the task is gone or badly behind.
    pub fn play(&self, pcm16k: Vec<i16>) -> Result<(), VoiceError> {
        let flush_gen = self.flush_gen.load(Ordering::SeqCst);
        self.commands.try_send(Command::Play { flush_gen, pcm: pcm16k }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => VoiceError::MediaQueueFull,
            mpsc::error::TrySendError::Closed(_) => VoiceError::MediaStopped,
        })
    }

    /// Barge-in: drops all queued audio, including `play` calls still in flight.
    pub fn flush(&self) {
        let gen = self.flush_gen.fetch_add(1, Ordering::SeqCst) + 1;
        self.control.send_modify(|c| c.flush_gen = gen);
    }

    /// Changes where RTP is sent (re-INVITE with a new address).
    pub fn set_remote(&self, remote: SocketAddr) {
        self.control.send_modify(|c| c.remote = remote);
    }

    /// Asks the task to end; it closes its socket.
    pub fn stop(&self) {
        self.control.send_modify(|c| c.stop = true);
    }

    /// Whether the task is still running.
    pub fn is_running(&self) -> bool {
        self.task.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops the task, waits for it (socket closed) and returns its final counters.
    pub async fn finish(mut self) -> MediaStats {
        self.stop();
        match self.task.take() {
            Some(t) => t.await.unwrap_or_default(),
            None => MediaStats::default(),
        }
    }
}

impl Drop for MediaHandle {
    fn drop(&mut self) {
        self.control.send_modify(|c| c.stop = true);
    }
}

/// Starts the media task with default options (no symmetric RTP, RTCP dropped unless muxed).
pub fn spawn(socket: UdpSocket, remote: SocketAddr, session: MediaSession) -> (MediaHandle, mpsc::Receiver<MediaEvent>) {
    spawn_with(socket, remote, session, DriverOptions::default())
}

/// Starts the media task. Must be called inside a tokio runtime.
pub fn spawn_with(socket: UdpSocket, remote: SocketAddr, session: MediaSession, opts: DriverOptions) -> (MediaHandle, mpsc::Receiver<MediaEvent>) {
    let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_CAPACITY);
    let (ev_tx, ev_rx) = mpsc::channel(EVENT_CAPACITY);
    let (control_tx, control_rx) = watch::channel(Control { flush_gen: 0, stop: false, remote });
    let task = tokio::spawn(run(socket, session, opts, cmd_rx, control_rx, ev_tx));
    (MediaHandle { commands: cmd_tx, control: control_tx, flush_gen: AtomicU64::new(0), task: Some(task) }, ev_rx)
}

fn rtcp_addr(remote: SocketAddr) -> SocketAddr {
    let mut a = remote;
    a.set_port(remote.port().wrapping_add(1));
    a
}

async fn recv_opt(sock: Option<&UdpSocket>, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
    match sock {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

async fn run(
    socket: UdpSocket,
    mut session: MediaSession,
    opts: DriverOptions,
    mut commands: mpsc::Receiver<Command>,
    mut control: watch::Receiver<Control>,
    events: mpsc::Sender<MediaEvent>,
) -> MediaStats {
    let mut ctl = *control.borrow_and_update();
    if ctl.stop {
        // Stopped before the task first ran: the change notification was already consumed above.
        return finish(session, 0, 0);
    }
    let mut remote = ctl.remote;
    let mut latched = false;
    let mut rtcp_remote: Option<SocketAddr> = None;
    let mut held: VecDeque<MediaEvent> = VecDeque::new();
    let mut ending = false;
    let mut dropped_frames: u64 = 0;
    let mut send_errors: u64 = 0;
    let mut buf = vec![0u8; 2048];
    let mut rtcp_buf = vec![0u8; 1500];
    loop {
        let now = Instant::now();
        // Timers first: a flood of datagrams keeps the socket branch ready and must not starve
        // playout and pacing.
        if session.poll_timeout().is_some_and(|d| d <= now) {
            session.handle_timeout(now);
        }
        while let Some(t) = session.poll_transmit(now) {
            let (sock, to) = match (t.channel, &opts.rtcp_socket) {
                (Channel::Rtp, _) => (&socket, remote),
                (Channel::Rtcp, Some(r)) => (r, rtcp_remote.unwrap_or_else(|| rtcp_addr(remote))),
                (Channel::Rtcp, None) if opts.rtcp_mux => (&socket, remote),
                (Channel::Rtcp, None) => continue,
            };
            // UDP sends complete at once unless the kernel buffer is full (then waiting briefly is right).
            // Errors (e.g. an ICMP unreachable reported on the socket) are transient: count them.
            if sock.send_to(&t.datagram, to).await.is_err() {
                send_errors += 1;
            }
        }
        while let Some(ev) = session.poll_event() {
            match ev {
                MediaEvent::Audio(_) if held.is_empty() => match events.try_send(ev) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => dropped_frames += 1,
                    Err(mpsc::error::TrySendError::Closed(_)) => return finish(session, dropped_frames, send_errors),
                },
                MediaEvent::Audio(_) => dropped_frames += 1,
                other => {
                    if other == MediaEvent::InactivityTimeout {
                        ending = true;
                    }
                    if held.len() < MAX_HELD_EVENTS {
                        held.push_back(other);
                    }
                }
            }
        }
        if ending && held.is_empty() {
            break;
        }
        let deadline = session.poll_timeout().map(tokio::time::Instant::from_std);
        tokio::select! {
            biased;
            changed = control.changed() => {
                if changed.is_err() {
                    break; // handle dropped
                }
                let new = *control.borrow_and_update();
                if new.stop {
                    break;
                }
                if new.flush_gen != ctl.flush_gen {
                    session.flush();
                }
                if new.remote != ctl.remote {
                    remote = new.remote;
                    rtcp_remote = None;
                }
                ctl = new;
            }
            permit = events.reserve(), if !held.is_empty() => {
                match permit {
                    Ok(p) => { if let Some(ev) = held.pop_front() { p.send(ev) } }
                    Err(_) => break, // receiver dropped
                }
            }
            cmd = commands.recv() => match cmd {
                Some(Command::Play { flush_gen, pcm }) => {
                    if flush_gen == ctl.flush_gen {
                        session.play(&pcm);
                    }
                }
                None => break,
            },
            r = socket.recv_from(&mut buf) => {
                if let Ok((n, from)) = r {
                    // Latch only onto something that is really RTP, so a stray datagram cannot
                    // divert the call's audio.
                    if opts.symmetric_rtp && !latched && rtp_rs::RtpReader::new(&buf[..n]).is_ok() {
                        remote = from;
                        latched = true;
                    }
                    session.handle_rtp(Instant::now(), &buf[..n]);
                }
                // recv errors on UDP are ICMP echoes of earlier sends: nothing to do.
            }
            r = recv_opt(opts.rtcp_socket.as_ref(), &mut rtcp_buf) => {
                if let Ok((n, from)) = r {
                    if opts.symmetric_rtp && rtcp_remote.is_none() {
                        rtcp_remote = Some(from);
                    }
                    session.handle_rtcp(Instant::now(), &rtcp_buf[..n]);
                }
            }
            _ = sleep_until_opt(deadline) => {
                session.handle_timeout(Instant::now());
            }
        }
    }
    finish(session, dropped_frames, send_errors)
}

async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => tokio::time::sleep(Duration::from_secs(3600)).await,
    }
}

fn finish(session: MediaSession, dropped_frames: u64, send_errors: u64) -> MediaStats {
    let stats = session.stats();
    // Call quality for IT (figures only): loss, late packets and concealment explain a
    // recogniser that mishears one call and not the next.
    tracing::info!(
        packets_in = stats.packets_received,
        packets_out = stats.packets_sent,
        lost = stats.lost,
        late = stats.late,
        concealed_frames = stats.concealed_frames,
        jitter_ms = stats.jitter.as_millis() as u64,
        dropped_frames,
        send_errors,
        "media task ended"
    );
    stats
}
