//! RFC 3261 §17 transaction state machines, sans-IO: they are told the time and hand back bytes
//! to (re)send. Timers use the RFC names (A–K) in comments; the UA core owns matching and
//! drives them via [`ServerTx::poll`] / [`ClientTx::poll`] at [`ServerTx::deadline`].
//!
//! The INVITE server transaction implements RFC 6026's "Accepted" state: after a 2xx it keeps
//! retransmitting that 2xx (Timer G schedule, like RFC 3261 §13.3.1.4 asks of the UAS core) until
//! the ACK arrives or 64*T1 passes (reported as [`ServerTimer::AckTimeout`]).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub const T1: Duration = Duration::from_millis(500);
pub const T2: Duration = Duration::from_secs(4);
pub const T4: Duration = Duration::from_secs(5);

fn t1x64() -> Duration {
    T1 * 64
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// Non-INVITE: request received, nothing sent yet.
    Trying,
    /// A provisional response was sent (INVITE starts here: we always send 100 at once).
    Proceeding,
    /// A final non-2xx (INVITE) or any final (non-INVITE) response was sent.
    Completed,
    /// INVITE answered with 2xx, waiting for the ACK (RFC 6026).
    Accepted,
    /// ACK for a non-2xx final received; absorbing ACK retransmissions (Timer I).
    Confirmed,
    Terminated,
}

/// What a server transaction asks the UA core to do when its timer fires.
#[derive(Debug, PartialEq, Eq)]
pub enum ServerTimer {
    /// Resend these bytes to the transaction's peer (Timer G).
    Retransmit(Vec<u8>),
    /// No ACK within 64*T1 (Timer H, or Timer L for a 2xx): the call must end.
    AckTimeout,
}

#[derive(Debug)]
pub struct ServerTx {
    pub invite: bool,
    pub state: ServerState,
    pub peer: SocketAddr,
    pub reliable: bool,
    last: Option<Vec<u8>>,
    last_status: u16,
    retx_at: Option<Instant>,
    interval: Duration,
    end_at: Option<Instant>,
}

impl ServerTx {
    pub fn new(invite: bool, peer: SocketAddr, reliable: bool) -> ServerTx {
        ServerTx {
            invite,
            state: if invite {
                ServerState::Proceeding
            } else {
                ServerState::Trying
            },
            peer,
            reliable,
            last: None,
            last_status: 0,
            retx_at: None,
            interval: T1,
            end_at: None,
        }
    }

    pub fn last_status(&self) -> u16 {
        self.last_status
    }

    /// Whether a final response was already sent (CANCEL then has no effect on the INVITE).
    pub fn is_final(&self) -> bool {
        self.last_status >= 200
    }

    /// Records a response the TU sends; returns false if the state forbids it (already final).
    pub fn respond(&mut self, now: Instant, status: u16, bytes: Vec<u8>) -> bool {
        if self.is_final() || self.state == ServerState::Terminated {
            return false;
        }
        self.last = Some(bytes);
        self.last_status = status;
        if status < 200 {
            self.state = ServerState::Proceeding;
            return true;
        }
        if self.invite {
            self.state = if status < 300 {
                ServerState::Accepted
            } else {
                ServerState::Completed
            };
            // Timer G (and the 2xx retransmission of §13.3.1.4) only over unreliable transports.
            self.interval = T1;
            self.retx_at = (!self.reliable).then(|| now + T1);
            self.end_at = Some(now + t1x64()); // Timer H / Timer L
        } else {
            self.state = ServerState::Completed;
            // Timer J: absorb request retransmissions for 64*T1 (0 on reliable transports).
            self.end_at = Some(
                now + if self.reliable {
                    Duration::ZERO
                } else {
                    t1x64()
                },
            );
        }
        true
    }

    /// A retransmission of the request arrived: the last response to resend, if any.
    pub fn on_request_retransmit(&self) -> Option<Vec<u8>> {
        match self.state {
            ServerState::Proceeding | ServerState::Completed | ServerState::Accepted => {
                self.last.clone()
            }
            _ => None,
        }
    }

    /// An ACK matched this transaction (same branch for non-2xx, dialog match for 2xx).
    pub fn on_ack(&mut self, now: Instant) {
        match self.state {
            ServerState::Completed if self.invite => {
                self.state = ServerState::Confirmed;
                self.retx_at = None;
                self.end_at = Some(now + if self.reliable { Duration::ZERO } else { T4 });
                // Timer I
            }
            ServerState::Accepted => {
                self.state = ServerState::Terminated;
                self.retx_at = None;
                self.end_at = None;
            }
            _ => {}
        }
    }

    pub fn deadline(&self) -> Option<Instant> {
        match (self.retx_at, self.end_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Fires due timers. Call until it returns `None`.
    pub fn poll(&mut self, now: Instant) -> Option<ServerTimer> {
        if let Some(end) = self.end_at {
            if now >= end {
                let was = self.state;
                self.state = ServerState::Terminated;
                self.retx_at = None;
                self.end_at = None;
                if matches!(was, ServerState::Completed | ServerState::Accepted) && self.invite {
                    return Some(ServerTimer::AckTimeout);
                }
                return None;
            }
        }
        if let Some(at) = self.retx_at {
            if now >= at {
                self.interval = (self.interval * 2).min(T2);
                self.retx_at = Some(at + self.interval);
                return self.last.clone().map(ServerTimer::Retransmit);
            }
        }
        None
    }

    pub fn is_terminated(&self) -> bool {
        self.state == ServerState::Terminated
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    /// Request sent, no response (INVITE: "Calling", non-INVITE: "Trying").
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

#[derive(Debug, PartialEq, Eq)]
pub enum ClientTimer {
    Retransmit(Vec<u8>),
    /// Timer B / Timer F: no final response; the TU treats it as 408.
    Timeout,
}

#[derive(Debug)]
pub struct ClientTx {
    pub invite: bool,
    pub state: ClientState,
    pub dst: SocketAddr,
    pub reliable: bool,
    request: Vec<u8>,
    /// ACK for a non-2xx final (INVITE only), resent on final-response retransmissions.
    ack: Option<Vec<u8>>,
    retx_at: Option<Instant>,
    interval: Duration,
    timeout_at: Option<Instant>,
    end_at: Option<Instant>,
}

impl ClientTx {
    /// Creates the transaction; the caller sends `request` now.
    pub fn new(
        now: Instant,
        invite: bool,
        request: Vec<u8>,
        dst: SocketAddr,
        reliable: bool,
    ) -> ClientTx {
        ClientTx {
            invite,
            state: ClientState::Trying,
            dst,
            reliable,
            request,
            ack: None,
            retx_at: (!reliable).then(|| now + T1), // Timer A / Timer E
            interval: T1,
            timeout_at: Some(now + t1x64()), // Timer B / Timer F
            end_at: None,
        }
    }

    /// Feeds a response. Returns true if the TU should see it (retransmitted finals are absorbed).
    /// For a non-2xx final to an INVITE, `ack` is the ACK the UA built; it is resent on
    /// retransmissions of that final response.
    pub fn on_response(
        &mut self,
        now: Instant,
        status: u16,
        ack: Option<Vec<u8>>,
    ) -> (bool, Option<Vec<u8>>) {
        match self.state {
            ClientState::Trying | ClientState::Proceeding => {
                if status < 200 {
                    self.state = ClientState::Proceeding;
                    if !self.invite {
                        // Timer E continues at T2 in Proceeding (§17.1.2.2).
                        self.interval = T2;
                        self.retx_at = (!self.reliable).then(|| now + T2);
                    } else {
                        self.retx_at = None; // Timer A stops
                    }
                    return (true, None);
                }
                self.retx_at = None;
                self.timeout_at = None;
                if self.invite && status < 300 {
                    // 2xx: the transaction ends; the TU ACKs (outside the transaction).
                    self.state = ClientState::Terminated;
                    return (true, None);
                }
                self.state = ClientState::Completed;
                // Timer D (INVITE, >= 32 s) / Timer K (non-INVITE, T4).
                let wait = match (self.invite, self.reliable) {
                    (_, true) => Duration::ZERO,
                    (true, false) => Duration::from_secs(32),
                    (false, false) => T4,
                };
                self.end_at = Some(now + wait);
                self.ack = ack.clone();
                (true, ack)
            }
            ClientState::Completed => (false, self.ack.clone()),
            ClientState::Terminated => (false, None),
        }
    }

    pub fn deadline(&self) -> Option<Instant> {
        [self.retx_at, self.timeout_at, self.end_at]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn poll(&mut self, now: Instant) -> Option<ClientTimer> {
        if let Some(end) = self.end_at {
            if now >= end {
                self.state = ClientState::Terminated;
                self.end_at = None;
                return None;
            }
        }
        if let Some(t) = self.timeout_at {
            if now >= t {
                self.state = ClientState::Terminated;
                self.timeout_at = None;
                self.retx_at = None;
                return Some(ClientTimer::Timeout);
            }
        }
        if let Some(at) = self.retx_at {
            if now >= at {
                // INVITE doubles without cap (Timer A); non-INVITE caps at T2 (Timer E).
                self.interval = if self.invite {
                    self.interval * 2
                } else {
                    (self.interval * 2).min(T2)
                };
                self.retx_at = Some(at + self.interval);
                return Some(ClientTimer::Retransmit(self.request.clone()));
            }
        }
        None
    }

    pub fn is_terminated(&self) -> bool {
        self.state == ClientState::Terminated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        "127.0.0.1:5060".parse().unwrap()
    }

    /// Runs the transaction's timers forward and records (offset ms, what fired).
    fn run_server(tx: &mut ServerTx, start: Instant, until: Duration) -> Vec<(u128, String)> {
        let mut out = Vec::new();
        while let Some(d) = tx.deadline() {
            if d > start + until {
                break;
            }
            while let Some(t) = tx.poll(d) {
                let what = match t {
                    ServerTimer::Retransmit(_) => "G".to_string(),
                    ServerTimer::AckTimeout => "H".to_string(),
                };
                out.push(((d - start).as_millis(), what));
            }
        }
        out
    }

    #[test]
    fn invite_2xx_retransmits_on_timer_g_schedule_until_timer_h() {
        let t0 = Instant::now();
        let mut tx = ServerTx::new(true, peer(), false);
        assert!(tx.respond(t0, 100, b"100".to_vec()));
        assert!(tx.respond(t0, 200, b"200".to_vec()));
        let fired = run_server(&mut tx, t0, Duration::from_secs(60));
        let g: Vec<u128> = fired.iter().filter(|f| f.1 == "G").map(|f| f.0).collect();
        // 0.5, 1.5, 3.5, 7.5, then every 4 s (T2 cap) until 32 s.
        assert_eq!(&g[..6], &[500, 1500, 3500, 7500, 11500, 15500]);
        assert!(g.iter().all(|&t| t < 32_000));
        assert_eq!(fired.last(), Some(&(32_000, "H".to_string())));
        assert!(tx.is_terminated());
    }

    #[test]
    fn ack_stops_2xx_retransmission() {
        let t0 = Instant::now();
        let mut tx = ServerTx::new(true, peer(), false);
        tx.respond(t0, 200, b"200".to_vec());
        assert_eq!(
            tx.poll(t0 + T1),
            Some(ServerTimer::Retransmit(b"200".to_vec()))
        );
        tx.on_ack(t0 + T1 + Duration::from_millis(10));
        assert!(tx.is_terminated());
        assert_eq!(tx.deadline(), None);
    }

    #[test]
    fn non_2xx_ack_moves_to_confirmed_then_timer_i() {
        let t0 = Instant::now();
        let mut tx = ServerTx::new(true, peer(), false);
        tx.respond(t0, 487, b"487".to_vec());
        assert!(
            !tx.respond(t0, 200, b"200".to_vec()),
            "no second final response"
        );
        tx.on_ack(t0 + Duration::from_millis(100));
        assert_eq!(tx.state, ServerState::Confirmed);
        assert_eq!(tx.deadline(), Some(t0 + Duration::from_millis(100) + T4));
        assert_eq!(tx.poll(t0 + Duration::from_secs(6)), None);
        assert!(tx.is_terminated());
    }

    #[test]
    fn non_invite_server_absorbs_retransmissions_for_timer_j() {
        let t0 = Instant::now();
        let mut tx = ServerTx::new(false, peer(), false);
        assert_eq!(tx.on_request_retransmit(), None);
        tx.respond(t0, 200, b"ok".to_vec());
        assert_eq!(tx.on_request_retransmit(), Some(b"ok".to_vec()));
        assert_eq!(tx.deadline(), Some(t0 + T1 * 64));
        assert_eq!(tx.poll(t0 + T1 * 64), None);
        assert!(tx.is_terminated());
    }

    #[test]
    fn non_invite_client_timer_e_caps_at_t2_and_f_times_out() {
        let t0 = Instant::now();
        let mut tx = ClientTx::new(t0, false, b"BYE".to_vec(), peer(), false);
        let mut fired = Vec::new();
        while let Some(d) = tx.deadline() {
            match tx.poll(d) {
                Some(ClientTimer::Retransmit(_)) => fired.push((d - t0).as_millis()),
                Some(ClientTimer::Timeout) => {
                    fired.push(999_999);
                    break;
                }
                None => {}
            }
        }
        assert_eq!(&fired[..5], &[500, 1500, 3500, 7500, 11500]);
        assert_eq!(*fired.last().unwrap(), 999_999);
        assert!(tx.is_terminated());
    }

    #[test]
    fn client_final_response_then_timer_k() {
        let t0 = Instant::now();
        let mut tx = ClientTx::new(t0, false, b"REFER".to_vec(), peer(), false);
        assert_eq!(tx.on_response(t0, 100, None), (true, None));
        // In Proceeding, E fires every T2.
        assert_eq!(tx.deadline(), Some(t0 + T2));
        assert_eq!(tx.on_response(t0, 202, None), (true, None));
        assert_eq!(
            tx.on_response(t0, 202, None),
            (false, None),
            "retransmitted final absorbed"
        );
        assert_eq!(tx.poll(t0 + T4), None);
        assert!(tx.is_terminated());
    }

    #[test]
    fn invite_client_timer_a_doubles_without_cap_and_acks_non_2xx() {
        let t0 = Instant::now();
        let mut tx = ClientTx::new(t0, true, b"INVITE".to_vec(), peer(), false);
        let mut at = Vec::new();
        for _ in 0..6 {
            let d = tx.deadline().unwrap();
            if let Some(ClientTimer::Retransmit(_)) = tx.poll(d) {
                at.push((d - t0).as_millis());
            }
        }
        assert_eq!(at, vec![500, 1500, 3500, 7500, 15500, 31500]);
        let (deliver, ack) =
            tx.on_response(t0 + Duration::from_secs(32), 486, Some(b"ACK".to_vec()));
        assert!(deliver);
        assert_eq!(ack, Some(b"ACK".to_vec()));
        assert_eq!(
            tx.on_response(t0 + Duration::from_secs(33), 486, None),
            (false, Some(b"ACK".to_vec()))
        );
    }
}
