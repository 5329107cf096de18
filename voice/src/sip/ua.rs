//! The sans-IO SIP user agent core: a UAS for incoming calls (plus the in-dialog requests it
//! sends: BYE, REFER) on top of the transaction machines.
//!
//! Feed it datagrams with [`Ua::on_datagram`] and the time with [`Ua::on_timeout`] at
//! [`Ua::next_timeout`]; drain [`Ua::poll_transmit`] and [`Ua::poll_event`]. Commands
//! ([`Ua::answer`], [`Ua::hangup`], [`Ua::transfer`]) come from the application. No sockets, no
//! clock, seeded randomness: every behaviour is reproducible in tests.
//!
//! Flood protection: sources outside the allow-list get nothing, and new requests outside a
//! dialog are limited per source IP by a token bucket on the injected clock ([`RateLimit`]).
//! Transport: the core only learns "this came over TCP/TLS from src" ([`Ua::on_stream`]) and
//! answers the same way ([`Transmit::transport`]). It also says how to reach the registrar
//! ([`UaConfig::registrar_transport`]); the driver owns connections, opens one when a transmit
//! needs it, and reports failures and closes with [`Ua::on_transport_error`].
//!
//! Routing simplification (documented for operators): requests inside a dialog are sent to the
//! address the INVITE came from. On a LAN with one PBX (or a record-routing proxy) that is the next
//! hop; we never resolve host names. Exception: a TLS dialog whose connection has closed goes to
//! its first Route or remote Contact over a new TLS connection (never in clear).

use super::digest::{self, Challenge};
use super::message::{
    parse_datagram, reason_phrase, response_from_raw, Datagram, Message, Method, NameAddr,
    StartLine, Uri, Via,
};
use super::sdp::{self, Negotiated};
use super::transaction::{ClientState, ClientTimer, ClientTx, ServerTimer, ServerTx};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER, NOTIFY";
pub const ACCEPT: &str =
    "application/sdp, application/dtmf-relay, application/dtmf, message/sipfrag";

/// An IP network for the allow-list (`192.168.1.0/24`, `10.0.0.5`, `::1/128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            _ => ip,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let bits = u32::from(self.prefix.min(32));
                let mask = if bits == 0 {
                    0
                } else {
                    u32::MAX << (32 - bits)
                };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let bits = u32::from(self.prefix.min(128));
                let mask = if bits == 0 {
                    0
                } else {
                    u128::MAX << (128 - bits)
                };
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for IpNet {
    type Err = String;
    fn from_str(s: &str) -> Result<IpNet, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("'{s}' is not an IP address or network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or(format!("bad prefix length in '{s}'"))?,
            None => max,
        };
        Ok(IpNet { addr, prefix })
    }
}

#[derive(Debug, Clone)]
pub struct UaConfig {
    /// Our extension / user part (`frontdesk`).
    pub user: String,
    /// Accept INVITEs whatever the Request-URI user (PBXs that send the DID). Off: others get 404.
    pub accept_any_user: bool,
    /// Host and port we put in Via and Contact (the address the PBX can reach us at).
    pub contact_host: String,
    pub contact_port: u16,
    /// Concurrent calls; the next INVITE gets 503 with Retry-After.
    pub max_calls: usize,
    pub retry_after_secs: u32,
    /// Sources allowed to talk to us; empty = everyone. Others are dropped silently.
    pub trusted: Vec<IpNet>,
    /// Requests larger than this get 513.
    pub max_message_bytes: usize,
    pub user_agent: String,
    /// Register our Contact with the PBX (None: the PBX sends calls to a static address).
    pub registration: Option<RegistrationConfig>,
    /// Codecs accepted in SDP offers, most preferred first (our answer picks the first offered).
    pub codecs: Vec<sdp::Codec>,
    /// Port of our SIP-over-TLS listener, put in Via and Contact for peers that reach us over TLS
    /// (None: no TLS listener).
    pub tls_port: Option<u16>,
    /// Per-source limit on new requests outside dialogs (None: unlimited).
    pub rate_limit: Option<RateLimit>,
    /// How REGISTER reaches the registrar (see [`RegistrarUri`]): over TCP or TLS the driver
    /// opens the connection, and the PBX may send its INVITEs back over it.
    pub registrar_transport: Transport,
}

/// A registrar URI from the configuration (`sip:pbx.lan`, `sips:pbx.lan`,
/// `sip:192.0.2.10:5070;transport=tcp`): where REGISTER goes and over what. `sips:` means TLS; we
/// still send `sip:` URIs over it with `;transport=tls` in our Contact, which every PBX we know
/// accepts (RFC 3261 §26.2.1 would otherwise oblige a `sips:` Contact and TLS on every hop).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrarUri {
    /// Host name or IP literal (without brackets): the REGISTER domain and the TLS server name.
    pub host: String,
    /// The port given, else 5061 for TLS and 5060 otherwise (RFC 3261 §19.1.2).
    pub port: u16,
    pub transport: Transport,
}

impl std::str::FromStr for RegistrarUri {
    type Err = String;
    fn from_str(s: &str) -> Result<RegistrarUri, String> {
        let uri = Uri::parse(s.trim()).map_err(|_| {
            format!("'{s}' is not a SIP URI (expected e.g. sip:pbx.example.lan or sips:pbx.example.lan)")
        })?;
        if !uri.is_sip() {
            return Err(format!(
                "'{s}' must be a sip: or sips: URI, e.g. sip:pbx.example.lan"
            ));
        }
        if uri.user.is_some() {
            return Err(format!("'{s}' names a user: give the registrar only, e.g. sip:pbx.example.lan (the extension goes in `user`)"));
        }
        let param = uri
            .param("transport")
            .map(|v| v.unwrap_or("").to_ascii_lowercase());
        let transport = match (uri.scheme.as_str(), param.as_deref()) {
            ("sips", None | Some("tls") | Some("tcp")) => Transport::Tls,
            ("sips", Some(_)) => {
                return Err(format!(
                "'{s}': a sips: registrar is reached over TLS only; drop the transport parameter"
            ))
            }
            (_, None | Some("udp")) => Transport::Udp,
            (_, Some("tcp")) => Transport::Tcp,
            (_, Some("tls")) => Transport::Tls,
            (_, Some(t)) => {
                return Err(format!(
                    "'{s}': transport={t} is not supported (use udp, tcp or tls)"
                ))
            }
        };
        let port = uri.port.unwrap_or(if transport == Transport::Tls {
            5061
        } else {
            5060
        });
        Ok(RegistrarUri {
            host: uri
                .host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            transport,
        })
    }
}

/// A token bucket per source IP for requests that start something new (INVITE, OPTIONS,
/// REGISTER, stray CANCEL/BYE, malformed requests): requests inside an existing dialog are never
/// counted, so a flood cannot cut a call in progress. Over the limit, INVITEs get 503 with
/// Retry-After and everything else is dropped without a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained new requests per second per source.
    pub per_sec: u32,
    /// Requests a source may send at once before the rate applies.
    pub burst: u32,
    /// Retry-After on the 503 to a throttled INVITE.
    pub retry_after_secs: u32,
}

impl Default for RateLimit {
    /// Far above what a PBX sends (a busy office PBX: a few INVITEs and OPTIONS pings a second).
    fn default() -> Self {
        RateLimit {
            per_sec: 20,
            burst: 50,
            retry_after_secs: 5,
        }
    }
}

/// Sources tracked at once; beyond this, full (idle) buckets are forgotten first.
const MAX_BUCKETS: usize = 1024;

/// Token bucket in milli-tokens (integer arithmetic, exact with the injected clock).
#[derive(Debug, Clone, Copy)]
struct Bucket {
    milli: u64,
    at: Instant,
}

impl Bucket {
    fn refill(&mut self, now: Instant, lim: &RateLimit) {
        let us = now.saturating_duration_since(self.at).as_micros();
        // per_sec tokens/s = per_sec milli-tokens/ms = per_sec/1000 milli-tokens/µs.
        let add = us.saturating_mul(u128::from(lim.per_sec)) / 1000;
        let cap = u64::from(lim.burst).saturating_mul(1000);
        self.milli = u64::try_from(u128::from(self.milli).saturating_add(add))
            .unwrap_or(u64::MAX)
            .min(cap);
        if now > self.at {
            self.at = now;
        }
    }
}

/// REGISTER client settings (RFC 3261 §10) with digest credentials.
#[derive(Clone)]
pub struct RegistrationConfig {
    /// Where REGISTER is sent (the PBX's IP and port).
    pub registrar: SocketAddr,
    /// Domain of our address-of-record: `sip:<user>@<domain>`, and the REGISTER Request-URI.
    pub domain: String,
    /// User part of the address-of-record (the extension, e.g. "250"). Our Contact keeps the
    /// endpoint's own user, so the PBX's INVITEs still match it.
    pub user: String,
    /// Digest user name (often the extension number).
    pub auth_user: String,
    pub password: String,
    /// Requested binding lifetime in seconds.
    pub expires: u32,
}

impl std::fmt::Debug for RegistrationConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrationConfig")
            .field("registrar", &self.registrar)
            .field("domain", &self.domain)
            .field("user", &self.user)
            .field("auth_user", &self.auth_user)
            .field("password", &"<redacted>")
            .field("expires", &self.expires)
            .finish()
    }
}

impl Default for UaConfig {
    fn default() -> Self {
        UaConfig {
            user: "frontdesk".into(),
            accept_any_user: false,
            contact_host: "127.0.0.1".into(),
            contact_port: 5060,
            max_calls: 4,
            retry_after_secs: 30,
            trusted: Vec::new(),
            max_message_bytes: 16 * 1024,
            user_agent: "FrontDesk".into(),
            registration: None,
            codecs: sdp::Codec::DEFAULT_PREFERENCE.to_vec(),
            tls_port: None,
            rate_limit: Some(RateLimit::default()),
            registrar_transport: Transport::Udp,
        }
    }
}

/// Opaque per-call handle (a counter; never derived from caller data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallRef(pub u64);

/// Who is calling (PHI: hand to the application, never log it).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct CallerId {
    pub display: Option<String>,
    pub user: Option<String>,
}

impl std::fmt::Debug for CallerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallerId(<redacted>)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    RemoteBye,
    /// The caller cancelled before we answered.
    Cancelled,
    /// We answered but the ACK never came (Timer H).
    AckTimeout,
    LocalHangup,
    /// We rejected the call with this status.
    Rejected(u16),
}

#[derive(Debug, Clone, PartialEq)]
pub enum UaEvent {
    /// A new INVITE passed every check; answer with [`Ua::answer`] or [`Ua::reject`].
    /// `offer` is `None` for a late-offer INVITE (the media arrives with `MediaChanged` on ACK).
    IncomingCall {
        call: CallRef,
        caller: CallerId,
        offer: Option<Negotiated>,
    },
    /// The ACK for our 2xx arrived.
    Established {
        call: CallRef,
    },
    /// The remote media changed (re-INVITE, or the late-offer answer in the ACK).
    MediaChanged {
        call: CallRef,
        media: Negotiated,
    },
    Hold {
        call: CallRef,
        on: bool,
    },
    /// DTMF received via SIP INFO.
    Dtmf {
        call: CallRef,
        digit: char,
    },
    TransferResult {
        call: CallRef,
        ok: bool,
        status: u16,
    },
    Ended {
        call: CallRef,
        reason: EndReason,
    },
    /// The registrar accepted our binding for `expires` seconds (refreshed automatically).
    Registered {
        expires: u32,
    },
    /// Registration failed (`status` 408 = no answer); retried with backoff.
    RegistrationFailed {
        status: u16,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub dst: SocketAddr,
    pub data: Vec<u8>,
    pub transport: Transport,
}

/// How a message travels. TCP and TLS messages go over the connection to that address (the
/// peer's, or one the driver opens).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    /// The Via transport token (RFC 3261 §20.42).
    pub fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UaError {
    #[error("no such call (it has ended)")]
    UnknownCall,
    #[error("the call is not in a state that allows this")]
    WrongState,
    #[error(
        "transfer target is not a valid SIP URI: check the Refer-To template in the configuration"
    )]
    BadTarget,
    #[error("a transfer is already in progress on this call")]
    TransferPending,
}

/// Counters for operators (no caller data).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UaStats {
    pub untrusted_dropped: u64,
    pub malformed: u64,
    pub calls_accepted: u64,
    pub calls_rejected_busy: u64,
    /// New requests over the per-source rate limit (503 for INVITE, dropped otherwise).
    pub rate_limited: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallState {
    /// INVITE received, no final response yet.
    Offered,
    /// 2xx sent, waiting for ACK.
    Answered,
    Confirmed,
    /// We sent BYE (or are about to): only its transaction remains.
    Terminating,
}

struct Call {
    call_id: String,
    local_tag: String,
    remote_tag: String,
    /// Our side of the dialog as a header value (the INVITE's To plus our tag).
    local_na: String,
    /// Their side (the INVITE's From).
    remote_na: String,
    remote_target: Uri,
    route_set: Vec<String>,
    peer: SocketAddr,
    /// How the INVITE arrived. A TLS dialog never falls back to UDP (that would leak it in clear).
    transport: Transport,
    local_cseq: u32,
    remote_cseq: u32,
    state: CallState,
    invite_key: String,
    invite: Message,
    invite_src: SocketAddr,
    media: Option<Negotiated>,
    local_rtp: Option<SocketAddr>,
    session_id: u64,
    sdp_version: u64,
    last_sdp: Option<String>,
    hold: bool,
    /// Hang-up requested before the ACK: send BYE once it arrives (RFC 3261 §15).
    pending_bye: bool,
    reinvite_key: Option<String>,
    transfer_pending: bool,
}

enum Purpose {
    Bye(CallRef),
    Refer(CallRef),
    Register,
}

struct Registration {
    cfg: RegistrationConfig,
    call_id: String,
    from_tag: String,
    cseq: u32,
    expires: u32,
    next_at: Option<Instant>,
    in_flight: bool,
    /// The challenge we answer with, whether it came as 407 (proxy), and the nonce count.
    challenge: Option<(Challenge, bool)>,
    nc: u32,
    /// Nonce our last credentials were computed with: a fresh 401 for it means bad credentials.
    tried_nonce: Option<String>,
    failures: u32,
    unregistering: bool,
    /// When the registrar last accepted us, and how many times in a row the connection carrying
    /// that binding was lost soon after (over TCP/TLS the PBX may reach us only through it).
    registered_at: Option<Instant>,
    flow_losses: u32,
}

struct ServerEntry {
    tx: ServerTx,
    call: Option<CallRef>,
}

struct ClientEntry {
    tx: ClientTx,
    purpose: Purpose,
    transport: Transport,
    /// The request, kept for one resend over a new connection (see `on_transport_error`).
    request: Vec<u8>,
    resent: bool,
}

pub struct Ua {
    cfg: UaConfig,
    rng: StdRng,
    next_call: u64,
    calls: HashMap<CallRef, Call>,
    server: HashMap<String, ServerEntry>,
    client: HashMap<String, ClientEntry>,
    out: VecDeque<Transmit>,
    events: VecDeque<UaEvent>,
    stats: UaStats,
    reg: Option<Registration>,
    /// Peers whose messages arrive over a TCP or TLS connection: we answer and send on it.
    stream_peers: HashMap<SocketAddr, Transport>,
    /// Rate-limit state per source IP.
    buckets: HashMap<IpAddr, Bucket>,
    /// TLS server names of the dialog peers we reconnect to (see [`Ua::tls_server_name`]).
    tls_names: HashMap<SocketAddr, String>,
}

/// Server transaction key (RFC 3261 §17.2.3; RFC 2543 fallback when the branch lacks the cookie).
fn server_key(m: &Message, via: &Via, method: &Method) -> String {
    let m_str = match method {
        Method::Ack => "INVITE",
        other => other.as_str(),
    };
    let sent_by = format!(
        "{}:{}",
        via.host.to_ascii_lowercase(),
        via.port.unwrap_or(5060)
    );
    match via.branch() {
        Some(b) if b.starts_with("z9hG4bK") && b.len() > 7 => format!("{b}|{sent_by}|{m_str}"),
        _ => {
            let from_tag = m
                .from()
                .and_then(|f| f.tag().map(str::to_string))
                .unwrap_or_default();
            let seq = m.cseq().map(|c| c.seq).unwrap_or(0);
            format!(
                "2543|{}|{seq}|{from_tag}|{sent_by}|{m_str}",
                m.call_id().unwrap_or("")
            )
        }
    }
}

fn ip_literal(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

fn dtmf_from_info(m: &Message) -> Option<char> {
    let ct = m.content_type()?;
    let body = std::str::from_utf8(&m.body).ok()?;
    let sig = match ct.essence.as_str() {
        "application/dtmf-relay" => body.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("signal")
                .then(|| v.trim().to_string())
        })?,
        "application/dtmf" => body.trim().to_string(),
        _ => return None,
    };
    match sig.as_str() {
        "10" => Some('*'),
        "11" => Some('#'),
        s if s.len() == 1 => {
            let c = s.chars().next()?.to_ascii_uppercase();
            (c.is_ascii_digit() || matches!(c, '*' | '#' | 'A' | 'B' | 'C' | 'D')).then_some(c)
        }
        _ => None,
    }
}

fn sipfrag_status(body: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(body).ok()?;
    let first = text.lines().next()?;
    let code = first.strip_prefix("SIP/2.0 ")?.get(..3)?;
    code.parse().ok()
}

impl Ua {
    pub fn new(cfg: UaConfig, seed: u64) -> Ua {
        let mut rng = StdRng::seed_from_u64(seed);
        let reg = cfg.registration.clone().map(|r| Registration {
            expires: r.expires,
            cfg: r,
            call_id: format!("{:016x}{:016x}", rng.gen::<u64>(), rng.gen::<u64>()),
            from_tag: format!("{:016x}", rng.gen::<u64>()),
            cseq: 0,
            next_at: None,
            in_flight: false,
            challenge: None,
            nc: 0,
            tried_nonce: None,
            failures: 0,
            unregistering: false,
            registered_at: None,
            flow_losses: 0,
        });
        Ua {
            stream_peers: HashMap::new(),
            buckets: HashMap::new(),
            tls_names: HashMap::new(),
            reg,
            cfg,
            rng,
            next_call: 1,
            calls: HashMap::new(),
            server: HashMap::new(),
            client: HashMap::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            stats: UaStats::default(),
        }
    }

    pub fn config(&self) -> &UaConfig {
        &self.cfg
    }
    pub fn stats(&self) -> UaStats {
        self.stats
    }
    pub fn active_calls(&self) -> usize {
        self.calls
            .values()
            .filter(|c| c.state != CallState::Terminating)
            .count()
    }
    /// Dialogs still alive, including ones waiting for our BYE to complete.
    pub fn dialog_count(&self) -> usize {
        self.calls.len()
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }
    pub fn poll_event(&mut self) -> Option<UaEvent> {
        self.events.pop_front()
    }

    pub fn next_timeout(&self) -> Option<Instant> {
        let s = self.server.values().filter_map(|e| e.tx.deadline());
        let c = self.client.values().filter_map(|e| e.tx.deadline());
        let r = self
            .reg
            .as_ref()
            .filter(|r| !r.in_flight)
            .and_then(|r| r.next_at);
        s.chain(c).chain(r).min()
    }

    /// Starts registration (if configured). Call once, when the socket is up.
    pub fn start(&mut self, now: Instant) {
        if let Some(r) = &mut self.reg {
            r.next_at = Some(now);
        }
        self.on_timeout(now);
    }

    /// Removes our binding (REGISTER with Expires: 0), e.g. at shutdown.
    pub fn unregister(&mut self, now: Instant) {
        if let Some(r) = &mut self.reg {
            r.unregistering = true;
            r.expires = 0;
            r.in_flight = false;
        }
        self.send_register(now);
    }

    fn send_register(&mut self, now: Instant) {
        let branch = format!("z9hG4bK{}", self.token());
        let cnonce = self.token();
        let transport = self.cfg.registrar_transport;
        let (host, port, ua) = (
            self.cfg.contact_host.clone(),
            self.local_port(transport),
            self.cfg.user_agent.clone(),
        );
        let contact = self.contact_with(transport);
        let tp = transport.via_token();
        // RFC 5923: asks a registrar that supports it to send its requests to us over this
        // connection (we may have no listener it can reach).
        let alias = if transport == Transport::Udp {
            ""
        } else {
            ";alias"
        };
        let Some(r) = &mut self.reg else { return };
        r.cseq += 1;
        r.in_flight = true;
        r.next_at = None;
        let uri = format!("sip:{}", r.cfg.domain);
        let aor = format!("<sip:{}@{}>", r.cfg.user, r.cfg.domain);
        let Ok(ruri) = Uri::parse(&uri) else { return };
        let mut m = Message::request(Method::Register, ruri);
        m.push(
            "Via",
            format!("SIP/2.0/{tp} {host}:{port};branch={branch};rport{alias}"),
        );
        m.push("Max-Forwards", "70");
        m.push("From", format!("{aor};tag={}", r.from_tag));
        m.push("To", aor);
        m.push("Call-ID", r.call_id.clone());
        m.push("CSeq", format!("{} REGISTER", r.cseq));
        m.push("Contact", contact);
        m.push("Expires", r.expires.to_string());
        m.push("Allow", ALLOW);
        m.push("User-Agent", ua);
        if let Some((c, proxy)) = &r.challenge {
            r.nc += 1;
            let v = digest::authorization(
                c,
                &r.cfg.auth_user,
                &r.cfg.password,
                "REGISTER",
                &uri,
                &cnonce,
                r.nc,
            );
            m.push(
                if *proxy {
                    "Proxy-Authorization"
                } else {
                    "Authorization"
                },
                v,
            );
            r.tried_nonce = Some(c.nonce.clone());
        }
        let dst = r.cfg.registrar;
        self.start_client(now, m, dst, transport, &branch, Purpose::Register);
    }

    fn registration_failed(&mut self, now: Instant, status: u16) {
        let Some(r) = &mut self.reg else { return };
        r.in_flight = false;
        if r.unregistering {
            return;
        }
        r.failures += 1;
        // 5 s, 10 s, 20 s ... capped at 5 min: keeps retrying while the PBX is down.
        let backoff = 5u64.saturating_mul(1 << (r.failures - 1).min(6)).min(300);
        r.next_at = Some(now + std::time::Duration::from_secs(backoff));
        r.challenge = None;
        r.tried_nonce = None;
        tracing::warn!(status, retry_in_s = backoff, "SIP registration failed");
        self.events
            .push_back(UaEvent::RegistrationFailed { status });
    }

    fn on_register_response(&mut self, now: Instant, status: u16, resp: &Message) {
        let Some(r) = &mut self.reg else { return };
        r.in_flight = false;
        match status {
            200..=299 => {
                if r.unregistering {
                    return;
                }
                let our_port = match (self.cfg.registrar_transport, self.cfg.tls_port) {
                    (Transport::Tls, Some(p)) => p,
                    _ => self.cfg.contact_port,
                };
                let contact_expires = resp.contacts().into_iter().find_map(|c| {
                    let ours = c.uri.host == self.cfg.contact_host && c.uri.port == Some(our_port);
                    ours.then(|| {
                        c.param("expires")
                            .flatten()
                            .and_then(|e| e.parse::<u32>().ok())
                    })
                    .flatten()
                });
                let header_expires = resp
                    .header("Expires")
                    .and_then(|e| e.trim().parse::<u32>().ok());
                let granted = contact_expires.or(header_expires).unwrap_or(r.expires);
                r.failures = 0;
                r.registered_at = Some(now);
                // Refresh at 80% of the lifetime (at least 5 s ahead) so a lost REGISTER can be retried.
                let refresh = (u64::from(granted) * 4 / 5).max(5);
                r.next_at = Some(now + std::time::Duration::from_secs(refresh));
                self.events
                    .push_back(UaEvent::Registered { expires: granted });
            }
            401 | 407 => {
                let hdr = if status == 401 {
                    "WWW-Authenticate"
                } else {
                    "Proxy-Authenticate"
                };
                let ch = Challenge::best(resp.header_all(hdr));
                match ch {
                    Some(c) if r.tried_nonce.as_deref() != Some(c.nonce.as_str()) || c.stale => {
                        r.challenge = Some((c, status == 407));
                        r.nc = 0;
                        self.send_register(now);
                    }
                    // Same nonce rejected again: the credentials are wrong.
                    _ => self.registration_failed(now, status),
                }
            }
            423 => match resp
                .header("Min-Expires")
                .and_then(|e| e.trim().parse::<u32>().ok())
            {
                Some(min) if min > r.expires => {
                    r.expires = min;
                    self.send_register(now);
                }
                _ => self.registration_failed(now, status),
            },
            _ => self.registration_failed(now, status),
        }
    }

    fn token(&mut self) -> String {
        format!("{:016x}", self.rng.gen::<u64>())
    }

    /// How to reach `peer`: over its open connection; else the registrar's transport for the
    /// registrar; else TLS if a dialog with it came over TLS (the driver reconnects, never sends
    /// it in clear); else UDP.
    fn transport_to(&self, peer: SocketAddr) -> Transport {
        if let Some(t) = self.stream_peers.get(&peer) {
            return *t;
        }
        if self.reg.as_ref().is_some_and(|r| r.cfg.registrar == peer) {
            return self.cfg.registrar_transport;
        }
        if self
            .calls
            .values()
            .any(|c| c.peer == peer && c.transport == Transport::Tls)
        {
            return Transport::Tls;
        }
        Transport::Udp
    }

    /// Reliable transports need no retransmissions (RFC 3261 §17.1.1.2, §17.2.1).
    fn is_reliable(&self, peer: SocketAddr) -> bool {
        self.transport_to(peer) != Transport::Udp
    }

    /// Our port as the peer sees it: the TLS listener's for TLS, else the UDP/TCP one.
    fn local_port(&self, transport: Transport) -> u16 {
        match (transport, self.cfg.tls_port) {
            (Transport::Tls, Some(p)) => p,
            _ => self.cfg.contact_port,
        }
    }

    fn send(&mut self, dst: SocketAddr, data: Vec<u8>) {
        let transport = self.transport_to(dst);
        self.out.push_back(Transmit {
            dst,
            data,
            transport,
        });
    }

    fn contact(&self) -> String {
        format!(
            "<sip:{}@{}:{}>",
            self.cfg.user, self.cfg.contact_host, self.cfg.contact_port
        )
    }

    /// Our Contact for a peer: with `;transport=tcp`/`tls` (and the TLS port) when it talks to us
    /// over a stream, so its in-dialog requests come back the same way.
    fn contact_for(&self, peer: SocketAddr) -> String {
        self.contact_with(self.transport_to(peer))
    }

    fn contact_with(&self, t: Transport) -> String {
        let param = match t {
            Transport::Udp => return self.contact(),
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        };
        format!(
            "<sip:{}@{}:{};transport={param}>",
            self.cfg.user,
            self.cfg.contact_host,
            self.local_port(t)
        )
    }

    /// Takes a token from `ip`'s bucket; false (and counted) when the source is over its limit.
    fn admit(&mut self, now: Instant, ip: IpAddr) -> bool {
        let Some(lim) = self.cfg.rate_limit else {
            return true;
        };
        if !self.buckets.contains_key(&ip) && self.buckets.len() >= MAX_BUCKETS {
            // A full bucket is the same as no bucket: forget those. If every tracked source is
            // still active, refuse newcomers rather than grow without bound.
            self.buckets.retain(|_, b| {
                b.refill(now, &lim);
                b.milli < u64::from(lim.burst).saturating_mul(1000)
            });
            if self.buckets.len() >= MAX_BUCKETS {
                self.stats.rate_limited += 1;
                return false;
            }
        }
        let b = self.buckets.entry(ip).or_insert(Bucket {
            milli: u64::from(lim.burst).saturating_mul(1000),
            at: now,
        });
        b.refill(now, &lim);
        if b.milli >= 1000 {
            b.milli -= 1000;
            true
        } else {
            self.stats.rate_limited += 1;
            false
        }
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.cfg.trusted.is_empty() || self.cfg.trusted.iter().any(|n| n.contains(ip))
    }

    // -----------------------------------------------------------------------------------------
    // Input

    /// One complete message framed from a TCP connection (see `message::parse_stream`).
    pub fn on_stream_message(&mut self, now: Instant, src: SocketAddr, data: &[u8]) {
        self.on_stream(now, src, Transport::Tcp, data);
    }

    /// One complete message framed from a connection of the given transport (TCP or TLS; UDP is
    /// treated as TCP). Responses and our in-dialog requests to `src` go back the same way.
    pub fn on_stream(&mut self, now: Instant, src: SocketAddr, transport: Transport, data: &[u8]) {
        let t = if transport == Transport::Udp {
            Transport::Tcp
        } else {
            transport
        };
        self.stream_peers.insert(src, t);
        self.on_datagram(now, src, data);
    }

    /// The connection from/to `peer` closed; later messages to it go over UDP, except in a dialog
    /// that came over TLS (those are never sent in clear). The endpoint reports closes with
    /// [`Ua::on_transport_error`], which also fails the transactions waiting on it.
    pub fn on_connection_closed(&mut self, peer: SocketAddr) {
        self.stream_peers.remove(&peer);
    }

    /// The `transport` connection to `peer` failed to open or has closed (the driver reports
    /// both). Our transactions still waiting on it fail at once as a transport error (503, RFC
    /// 3261 §8.1.3.1) instead of waiting for Timer F: a REGISTER backs off, a BYE ends the
    /// dialog, a REFER reports a failed transfer (a TLS dialog's BYE or REFER first goes once
    /// more over a new connection to the dialog's next hop). If it carried our registration, the PBX may
    /// only have been able to reach us through it, so we register again soon (RFC 5626 §4.4.1),
    /// backing off if connections keep dying young.
    pub fn on_transport_error(&mut self, now: Instant, peer: SocketAddr, transport: Transport) {
        if self.stream_peers.get(&peer) == Some(&transport) {
            self.stream_peers.remove(&peer);
        }
        let failed: Vec<String> = self
            .client
            .iter()
            .filter(|(_, e)| {
                // Only those still waiting for a final response (a completed one is just
                // lingering for Timer K).
                e.tx.dst == peer
                    && e.transport == transport
                    && matches!(e.tx.state, ClientState::Trying | ClientState::Proceeding)
            })
            .map(|(k, _)| k.clone())
            .collect();
        let mut reg_failed = false;
        for k in failed {
            let Some(e) = self.client.remove(&k) else {
                continue;
            };
            if let (Purpose::Bye(cref) | Purpose::Refer(cref), false, Transport::Tls) =
                (&e.purpose, e.resent, transport)
            {
                // A connection that closes as our BYE/REFER goes out loses it: send it once
                // more over a new connection to the dialog's next hop (same branch: to the
                // peer it is a retransmission).
                if let Some(dst) = self.dialog_next_hop(*cref, transport) {
                    let tx = ClientTx::new(now, false, e.request.clone(), dst, true);
                    self.out.push_back(Transmit {
                        dst,
                        data: e.request.clone(),
                        transport,
                    });
                    self.client.insert(
                        k,
                        ClientEntry {
                            tx,
                            resent: true,
                            ..e
                        },
                    );
                    continue;
                }
            }
            match e.purpose {
                Purpose::Register => reg_failed = true,
                Purpose::Bye(cref) => {
                    self.calls.remove(&cref);
                }
                Purpose::Refer(cref) => {
                    if let Some(c) = self.calls.get_mut(&cref) {
                        c.transfer_pending = false;
                        self.events.push_back(UaEvent::TransferResult {
                            call: cref,
                            ok: false,
                            status: 503,
                        });
                    }
                }
            }
        }
        if reg_failed {
            self.registration_failed(now, 503);
            return;
        }
        let reg_transport = self.cfg.registrar_transport;
        let Some(r) = self.reg.as_mut() else { return };
        if r.cfg.registrar != peer
            || reg_transport != transport
            || transport == Transport::Udp
            || r.in_flight
            || r.unregistering
        {
            return;
        }
        let Some(since) = r.registered_at.take() else {
            return; // not registered over this connection: the retry schedule stands
        };
        if now.saturating_duration_since(since) >= std::time::Duration::from_secs(60) {
            r.flow_losses = 0;
        }
        let delay = 1u64 << r.flow_losses.min(8); // 1 s, 2 s, 4 s ... 256 s
        r.flow_losses += 1;
        let at = now + std::time::Duration::from_secs(delay);
        r.next_at = Some(r.next_at.map_or(at, |t| t.min(at)));
        tracing::info!(
            retry_in_s = delay,
            "connection to the registrar closed; registering again"
        );
    }

    pub fn on_datagram(&mut self, now: Instant, src: SocketAddr, data: &[u8]) {
        if !self.is_trusted(src.ip()) {
            // No response at all: scanners learn nothing, and we cannot be used as a reflector.
            self.stats.untrusted_dropped += 1;
            return;
        }
        let msg = match parse_datagram(data) {
            Ok(Datagram::KeepAlive) => return,
            Ok(Datagram::Message(m)) => m,
            Err(e) => {
                self.stats.malformed += 1;
                tracing::debug!(reason = e.reason, "dropping malformed SIP message");
                if let Some(req) = &e.request {
                    if req.method != "ACK" && self.admit(now, src.ip()) {
                        let tag = self.token();
                        if let Some(resp) = response_from_raw(req, e.status, Some(&tag)) {
                            self.send(src, resp.to_bytes());
                        }
                    }
                }
                return;
            }
        };
        match msg.start {
            StartLine::Response { status, .. } => self.on_response(now, status, msg),
            StartLine::Request { .. } => {
                if data.len() > self.cfg.max_message_bytes {
                    if msg.method() != Some(&Method::Ack) {
                        let r = self.response(&msg, 513, None, src);
                        self.send(src, r.to_bytes());
                    }
                    return;
                }
                self.on_request(now, src, msg)
            }
        }
    }

    /// Builds a response: Via (with received/rport, RFC 3581), From, To (+tag), Call-ID, CSeq.
    fn response(
        &self,
        req: &Message,
        status: u16,
        to_tag: Option<&str>,
        src: SocketAddr,
    ) -> Message {
        let mut m = Message {
            start: StartLine::Response {
                status,
                reason: reason_phrase(status).to_string(),
            },
            headers: Vec::new(),
            body: Vec::new(),
        };
        let mut first_via = true;
        for (n, v) in &req.headers {
            match n.as_str() {
                "Via" if first_via => {
                    first_via = false;
                    let mut vias = Via::parse_list(v).unwrap_or_default();
                    if let Some(top) = vias.first_mut() {
                        if ip_literal(&top.host) != Some(src.ip()) {
                            top.params
                                .retain(|(n, _)| !n.eq_ignore_ascii_case("received"));
                            top.params
                                .push(("received".into(), Some(src.ip().to_string())));
                        }
                        if let Some(p) = top
                            .params
                            .iter_mut()
                            .find(|(n, _)| n.eq_ignore_ascii_case("rport"))
                        {
                            p.1 = Some(src.port().to_string());
                        }
                        let joined: Vec<String> = vias.iter().map(|v| v.to_string()).collect();
                        m.push("Via", joined.join(", "));
                    } else {
                        m.push("Via", v.clone());
                    }
                }
                "Via" | "From" | "Call-ID" | "CSeq" => m.push(n, v.clone()),
                "To" => {
                    let has_tag = NameAddr::parse(v)
                        .map(|na| na.tag().is_some())
                        .unwrap_or(true);
                    match to_tag {
                        Some(t) if !has_tag && status > 100 => m.push("To", format!("{v};tag={t}")),
                        _ => m.push("To", v.clone()),
                    }
                }
                _ => {}
            }
        }
        if req.method() == Some(&Method::Invite) && (101..300).contains(&status) {
            for (n, v) in &req.headers {
                if n == "Record-Route" {
                    m.push("Record-Route", v.clone());
                }
            }
            m.push("Contact", self.contact_for(src));
        }
        if matches!(status, 405 | 501) || (req.method() == Some(&Method::Options) && status == 200)
        {
            m.push("Allow", ALLOW);
        }
        m.push("Server", self.cfg.user_agent.clone());
        m
    }

    fn respond_stateless(
        &mut self,
        req: &Message,
        src: SocketAddr,
        status: u16,
        extra: &[(&str, String)],
    ) {
        let tag = self.token();
        let mut r = self.response(req, status, Some(&tag), src);
        for (n, v) in extra {
            r.push(n, v.clone());
        }
        self.send(src, r.to_bytes());
    }

    /// Sends a response within a server transaction (creating it if needed).
    fn respond_tx(&mut self, now: Instant, key: &str, resp: Message) {
        let status = resp.status().unwrap_or(500);
        let bytes = resp.to_bytes();
        if let Some(e) = self.server.get_mut(key) {
            if e.tx.respond(now, status, bytes.clone()) {
                let peer = e.tx.peer;
                self.send(peer, bytes);
            }
        }
    }

    fn on_request(&mut self, now: Instant, src: SocketAddr, req: Message) {
        let Some(method) = req.method().cloned() else {
            return;
        };
        if let Err(reason) = req.semantic_check() {
            self.stats.malformed += 1;
            tracing::debug!(reason, "answering 400 to an unusable request");
            if method != Method::Ack && self.admit(now, src.ip()) {
                self.respond_stateless(&req, src, 400, &[]);
            }
            return;
        }
        let Some(via) = req.top_via() else { return };
        let key = server_key(&req, &via, &method);

        // Retransmission or ACK of an existing server transaction.
        if let Some(e) = self.server.get_mut(&key) {
            if method == Method::Ack {
                e.tx.on_ack(now);
                // An ACK with the INVITE's branch is for a non-2xx response: absorbed. (A 2xx ACK
                // carries a new branch and is matched to the dialog below.)
                return;
            }
            if let Some(bytes) = e.tx.on_request_retransmit() {
                let peer = e.tx.peer;
                self.send(peer, bytes);
            }
            return;
        }

        match method {
            Method::Ack => self.on_dialog_ack(now, &req),
            Method::Cancel => self.on_cancel(now, src, &req, &via),
            _ => self.on_new_request(now, src, req, method, key),
        }
    }

    fn find_dialog(&self, req: &Message) -> Option<CallRef> {
        let call_id = req.call_id()?;
        let to_tag = req.to()?.tag()?.to_string();
        let from_tag = req.from()?.tag().unwrap_or("").to_string();
        self.calls
            .iter()
            .find(|(_, c)| {
                c.call_id == call_id && c.local_tag == to_tag && c.remote_tag == from_tag
            })
            .map(|(k, _)| *k)
    }

    fn on_dialog_ack(&mut self, now: Instant, req: &Message) {
        let Some(cref) = self.find_dialog(req) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&cref) else {
            return;
        };
        // ACK for a re-INVITE 2xx.
        if let Some(k) = call.reinvite_key.take() {
            if let Some(e) = self.server.get_mut(&k) {
                e.tx.on_ack(now);
            }
            return;
        }
        if call.state != CallState::Answered {
            return;
        }
        call.state = CallState::Confirmed;
        let key = call.invite_key.clone();
        let late_answer = if call.media.is_none() && !req.body.is_empty() {
            sdp::negotiate_with(&req.body, &self.cfg.codecs).ok()
        } else {
            None
        };
        if let Some(m) = &late_answer {
            call.media = Some(m.clone());
        }
        let pending_bye = call.pending_bye;
        if let Some(e) = self.server.get_mut(&key) {
            e.tx.on_ack(now);
        }
        if !pending_bye {
            self.events.push_back(UaEvent::Established { call: cref });
        }
        if let Some(media) = late_answer {
            self.events
                .push_back(UaEvent::MediaChanged { call: cref, media });
        }
        if pending_bye {
            self.send_bye(now, cref);
        }
    }

    fn on_cancel(&mut self, now: Instant, src: SocketAddr, req: &Message, via: &Via) {
        let invite_key = server_key(req, via, &Method::Invite);
        let Some(entry) = self.server.get(&invite_key) else {
            if self.admit(now, src.ip()) {
                self.respond_stateless(req, src, 481, &[]);
            }
            return;
        };
        let call = entry.call;
        let already_final = entry.tx.is_final();
        // 200 for the CANCEL itself, in its own non-INVITE transaction.
        let cancel_key = server_key(req, via, &Method::Cancel);
        self.server.insert(
            cancel_key.clone(),
            ServerEntry {
                tx: ServerTx::new(false, src, self.is_reliable(src)),
                call: None,
            },
        );
        let local_tag = call
            .and_then(|c| self.calls.get(&c))
            .map(|c| c.local_tag.clone());
        let ok = self.response(req, 200, local_tag.as_deref(), src);
        self.respond_tx(now, &cancel_key, ok);
        if already_final {
            return; // CANCEL lost the race against our final response: no effect.
        }
        if let Some(cref) = call {
            if let Some(c) = self.calls.remove(&cref) {
                let r = self.response(&c.invite, 487, Some(&c.local_tag), c.invite_src);
                self.respond_tx(now, &invite_key, r);
                self.events.push_back(UaEvent::Ended {
                    call: cref,
                    reason: EndReason::Cancelled,
                });
            }
        }
    }

    fn on_new_request(
        &mut self,
        now: Instant,
        src: SocketAddr,
        req: Message,
        method: Method,
        key: String,
    ) {
        let Some(uri) = req.uri().cloned() else {
            return;
        };
        let in_dialog = req.to().is_some_and(|t| t.tag().is_some());
        let dialog = if in_dialog {
            self.find_dialog(&req)
        } else {
            None
        };
        // Only requests inside a live dialog bypass the limiter; a made-up To tag does not.
        if dialog.is_none() && !self.admit(now, src.ip()) {
            if method == Method::Invite {
                let ra = self
                    .cfg
                    .rate_limit
                    .map_or(self.cfg.retry_after_secs, |l| l.retry_after_secs);
                self.respond_stateless(&req, src, 503, &[("Retry-After", ra.to_string())]);
            }
            return;
        }
        if !uri.is_sip() {
            self.respond_stateless(&req, src, 416, &[]);
            return;
        }
        let require: Vec<String> = req.tokens("Require");
        if !require.is_empty() {
            self.respond_stateless(&req, src, 420, &[("Unsupported", require.join(", "))]);
            return;
        }
        if in_dialog {
            match dialog {
                Some(cref) => self.on_in_dialog(now, src, req, method, key, cref),
                None => self.respond_stateless(&req, src, 481, &[]),
            }
            return;
        }
        match method {
            Method::Invite => self.on_invite(now, src, req, key),
            Method::Options => {
                let tag = self.token();
                let mut r = self.response(&req, 200, Some(&tag), src);
                r.push("Accept", ACCEPT);
                self.server.insert(
                    key.clone(),
                    ServerEntry {
                        tx: ServerTx::new(false, src, self.is_reliable(src)),
                        call: None,
                    },
                );
                self.respond_tx(now, &key, r);
            }
            Method::Bye
            | Method::Info
            | Method::Notify
            | Method::Refer
            | Method::Prack
            | Method::Update => self.respond_stateless(&req, src, 481, &[]),
            Method::Other(_) => self.respond_stateless(&req, src, 501, &[]),
            _ => self.respond_stateless(&req, src, 405, &[]),
        }
    }

    fn on_invite(&mut self, now: Instant, src: SocketAddr, req: Message, key: String) {
        let uri_user_ok = self.cfg.accept_any_user
            || req
                .uri()
                .and_then(|u| u.user.as_deref())
                .is_some_and(|u| u == self.cfg.user);
        if !uri_user_ok {
            self.respond_stateless(&req, src, 404, &[]);
            return;
        }
        if !req.body.is_empty() {
            let ct_ok = req
                .content_type()
                .is_some_and(|ct| ct.essence == "application/sdp");
            let enc_ok = req
                .header("Content-Encoding")
                .is_none_or(|e| e.trim().eq_ignore_ascii_case("identity"));
            if !ct_ok || !enc_ok {
                self.respond_stateless(
                    &req,
                    src,
                    415,
                    &[("Accept", "application/sdp".to_string())],
                );
                return;
            }
        }
        if self.active_calls() >= self.cfg.max_calls {
            self.stats.calls_rejected_busy += 1;
            let ra = self.cfg.retry_after_secs.to_string();
            self.respond_stateless(&req, src, 503, &[("Retry-After", ra)]);
            return;
        }
        let offer = if req.body.is_empty() {
            None
        } else {
            match sdp::negotiate_with(&req.body, &self.cfg.codecs) {
                Ok(n) => Some(n),
                Err(_) => {
                    self.respond_stateless(
                        &req,
                        src,
                        488,
                        &[(
                            "Warning",
                            "304 frontdesk \"Only PCMU/PCMA audio over RTP/AVP\"".into(),
                        )],
                    );
                    return;
                }
            }
        };
        let (Some(from), Some(to), Some(call_id), Some(cseq)) =
            (req.from(), req.to(), req.call_id(), req.cseq())
        else {
            self.respond_stateless(&req, src, 400, &[]);
            return;
        };
        let local_tag = self.token();
        let cref = CallRef(self.next_call);
        self.next_call += 1;
        let remote_target = req
            .contacts()
            .into_iter()
            .next()
            .map(|c| c.uri)
            .unwrap_or_else(|| from.uri.clone());
        let route_set: Vec<String> = req.header_all("Record-Route").map(str::to_string).collect();
        let caller =
            {
                let id = req
                    .name_addrs("P-Asserted-Identity")
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| from.clone());
                CallerId {
                    display: id.display.clone(),
                    user: id.uri.user.as_deref().map(|u| {
                        String::from_utf8_lossy(&super::message::unescape(u)).into_owned()
                    }),
                }
            };
        let session_id = self.rng.gen::<u32>() as u64;
        let call = Call {
            call_id: call_id.to_string(),
            local_tag: local_tag.clone(),
            remote_tag: from.tag().unwrap_or("").to_string(),
            local_na: format!("{};tag={local_tag}", req.header("To").unwrap_or("")),
            remote_na: req.header("From").unwrap_or("").to_string(),
            remote_target,
            route_set,
            peer: src,
            transport: self.transport_to(src),
            local_cseq: self.rng.gen_range(1..10_000),
            remote_cseq: cseq.seq,
            state: CallState::Offered,
            invite_key: key.clone(),
            invite: req,
            invite_src: src,
            media: offer.clone(),
            local_rtp: None,
            session_id,
            sdp_version: 1,
            last_sdp: None,
            hold: false,
            pending_bye: false,
            reinvite_key: None,
            transfer_pending: false,
        };
        let _ = to;
        self.server.insert(
            key.clone(),
            ServerEntry {
                tx: ServerTx::new(true, src, self.is_reliable(src)),
                call: Some(cref),
            },
        );
        let trying = self.response(&call.invite, 100, None, src);
        self.calls.insert(cref, call);
        self.respond_tx(now, &key, trying);
        self.stats.calls_accepted += 1;
        self.events.push_back(UaEvent::IncomingCall {
            call: cref,
            caller,
            offer,
        });
    }

    fn on_in_dialog(
        &mut self,
        now: Instant,
        src: SocketAddr,
        req: Message,
        method: Method,
        key: String,
        cref: CallRef,
    ) {
        let seq = req.cseq().map(|c| c.seq).unwrap_or(0);
        let Some(call) = self.calls.get_mut(&cref) else {
            return;
        };
        // RFC 3261 §12.2.2: a lower CSeq is out of order.
        if seq <= call.remote_cseq && call.remote_cseq != 0 {
            self.respond_stateless(&req, src, 500, &[]);
            return;
        }
        call.remote_cseq = seq;
        let local_tag = call.local_tag.clone();
        self.server.insert(
            key.clone(),
            ServerEntry {
                tx: ServerTx::new(method == Method::Invite, src, self.is_reliable(src)),
                call: Some(cref),
            },
        );
        match method {
            Method::Bye => {
                let r = self.response(&req, 200, Some(&local_tag), src);
                self.respond_tx(now, &key, r);
                // A BYE implies the caller got our 2xx: stop retransmitting it even if the ACK was lost.
                let invite_key = self
                    .calls
                    .get(&cref)
                    .map(|c| c.invite_key.clone())
                    .unwrap_or_default();
                if let Some(e) = self.server.get_mut(&invite_key) {
                    e.tx.on_ack(now);
                }
                if let Some(c) = self.calls.get(&cref) {
                    if c.state != CallState::Terminating {
                        self.events.push_back(UaEvent::Ended {
                            call: cref,
                            reason: EndReason::RemoteBye,
                        });
                    }
                    // If we are terminating too (BYE race), keep the call until our BYE completes.
                    if c.state != CallState::Terminating {
                        self.calls.remove(&cref);
                    }
                }
            }
            Method::Invite => self.on_reinvite(now, src, req, key, cref),
            Method::Info => {
                let digit = dtmf_from_info(&req);
                let r = self.response(&req, 200, Some(&local_tag), src);
                self.respond_tx(now, &key, r);
                if let Some(digit) = digit {
                    self.events.push_back(UaEvent::Dtmf { call: cref, digit });
                }
            }
            Method::Notify => {
                let r = self.response(&req, 200, Some(&local_tag), src);
                self.respond_tx(now, &key, r);
                let is_refer = req
                    .header("Event")
                    .is_some_and(|e| e.trim().to_ascii_lowercase().starts_with("refer"));
                let terminated = req
                    .header("Subscription-State")
                    .is_some_and(|s| s.trim().to_ascii_lowercase().starts_with("terminated"));
                if let (true, Some(c)) = (is_refer, self.calls.get_mut(&cref)) {
                    if c.transfer_pending {
                        match sipfrag_status(&req.body) {
                            Some(s) if s >= 200 => {
                                c.transfer_pending = false;
                                self.events.push_back(UaEvent::TransferResult {
                                    call: cref,
                                    ok: s < 300,
                                    status: s,
                                });
                            }
                            _ if terminated => {
                                c.transfer_pending = false;
                                self.events.push_back(UaEvent::TransferResult {
                                    call: cref,
                                    ok: false,
                                    status: 0,
                                });
                            }
                            _ => {}
                        }
                    }
                }
            }
            Method::Options => {
                let mut r = self.response(&req, 200, Some(&local_tag), src);
                r.push("Accept", ACCEPT);
                self.respond_tx(now, &key, r);
            }
            Method::Ack | Method::Cancel => {}
            Method::Other(_) => {
                let r = self.response(&req, 501, Some(&local_tag), src);
                self.respond_tx(now, &key, r);
            }
            _ => {
                let r = self.response(&req, 405, Some(&local_tag), src);
                self.respond_tx(now, &key, r);
            }
        }
    }

    fn on_reinvite(
        &mut self,
        now: Instant,
        src: SocketAddr,
        req: Message,
        key: String,
        cref: CallRef,
    ) {
        let Some(call) = self.calls.get_mut(&cref) else {
            return;
        };
        let local_tag = call.local_tag.clone();
        if call.state != CallState::Confirmed || call.reinvite_key.is_some() {
            // RFC 3261 §14.2: an INVITE while one is pending gets 491 (or 500 before our ACK).
            let status = if call.state == CallState::Answered {
                500
            } else {
                491
            };
            let mut r = self.response(&req, status, Some(&local_tag), src);
            if status == 500 {
                r.push("Retry-After", "1");
            }
            self.respond_tx(now, &key, r);
            return;
        }
        let offer = if req.body.is_empty() {
            None
        } else {
            Some(sdp::negotiate_with(&req.body, &self.cfg.codecs))
        };
        let (media, body) = match offer {
            Some(Err(_)) => {
                let r = self.response(&req, 488, Some(&local_tag), src);
                self.respond_tx(now, &key, r);
                return; // the call continues with its old media (RFC 3261 §14.2)
            }
            Some(Ok(n)) => {
                let local = call.local_rtp.unwrap_or(SocketAddr::new(src.ip(), 9));
                call.sdp_version += 1;
                let body = n.answer(local, call.session_id, call.sdp_version);
                (Some(n), body)
            }
            // No offer: re-offer what we have (RFC 3264 §8.4); the answer comes in the ACK.
            None => (None, call.last_sdp.clone().unwrap_or_default()),
        };
        call.last_sdp = Some(body.clone());
        call.reinvite_key = Some(key.clone());
        let mut events = Vec::new();
        if let Some(n) = &media {
            let hold = n.remote_direction.is_hold();
            if hold != call.hold {
                call.hold = hold;
                events.push(UaEvent::Hold {
                    call: cref,
                    on: hold,
                });
            }
            let changed = call.media.as_ref().is_none_or(|old| {
                old.remote != n.remote || old.codec != n.codec || old.payload_type != n.payload_type
            });
            call.media = Some(n.clone());
            if changed {
                events.push(UaEvent::MediaChanged {
                    call: cref,
                    media: n.clone(),
                });
            }
        }
        let mut r = self.response(&req, 200, Some(&local_tag), src);
        r.push("Content-Type", "application/sdp");
        r.body = body.into_bytes();
        self.respond_tx(now, &key, r);
        self.events.extend(events);
    }

    // -----------------------------------------------------------------------------------------
    // Responses to our requests

    fn on_response(&mut self, now: Instant, status: u16, resp: Message) {
        let (Some(via), Some(cseq)) = (resp.top_via(), resp.cseq()) else {
            return;
        };
        let Some(branch) = via.branch() else { return };
        let key = format!("{branch}|{}", cseq.method);
        let Some(e) = self.client.get_mut(&key) else {
            return;
        };
        let (deliver, _) = e.tx.on_response(now, status, None);
        if !deliver || status < 200 {
            return;
        }
        match e.purpose {
            Purpose::Register => self.on_register_response(now, status, &resp),
            Purpose::Bye(cref) => {
                self.calls.remove(&cref);
            }
            Purpose::Refer(cref) => {
                if status >= 300 {
                    if let Some(c) = self.calls.get_mut(&cref) {
                        c.transfer_pending = false;
                    }
                    self.events.push_back(UaEvent::TransferResult {
                        call: cref,
                        ok: false,
                        status,
                    });
                }
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Timers

    pub fn on_timeout(&mut self, now: Instant) {
        let mut ack_timeouts = Vec::new();
        let mut sends = Vec::new();
        for e in self.server.values_mut() {
            while let Some(t) = e.tx.poll(now) {
                match t {
                    ServerTimer::Retransmit(b) => sends.push((e.tx.peer, b)),
                    ServerTimer::AckTimeout => {
                        if let Some(c) = e.call {
                            ack_timeouts.push(c);
                        }
                    }
                }
            }
        }
        self.server.retain(|_, e| !e.tx.is_terminated());
        let mut client_timeouts = Vec::new();
        for e in self.client.values_mut() {
            while let Some(t) = e.tx.poll(now) {
                match t {
                    ClientTimer::Retransmit(b) => self.out.push_back(Transmit {
                        dst: e.tx.dst,
                        data: b,
                        transport: e.transport,
                    }),
                    ClientTimer::Timeout => client_timeouts.push(match e.purpose {
                        Purpose::Bye(c) => Some((c, true)),
                        Purpose::Refer(c) => Some((c, false)),
                        Purpose::Register => None,
                    }),
                }
            }
        }
        self.client.retain(|_, e| !e.tx.is_terminated());
        for (dst, b) in sends {
            self.send(dst, b);
        }
        for cref in ack_timeouts {
            let Some(c) = self.calls.get(&cref) else {
                continue;
            };
            // Only the initial INVITE's 2xx matters; a lost ACK for a re-INVITE is harmless.
            if c.state == CallState::Answered {
                self.events.push_back(UaEvent::Ended {
                    call: cref,
                    reason: EndReason::AckTimeout,
                });
                // RFC 3261 §13.3.1.4: end the dialog with BYE.
                self.send_bye(now, cref);
            }
        }
        let reg_due = self
            .reg
            .as_ref()
            .is_some_and(|r| !r.in_flight && r.next_at.is_some_and(|t| t <= now));
        for t in client_timeouts {
            let Some((cref, is_bye)) = t else {
                self.registration_failed(now, 408);
                continue;
            };
            if is_bye {
                self.calls.remove(&cref);
            } else if let Some(c) = self.calls.get_mut(&cref) {
                c.transfer_pending = false;
                self.events.push_back(UaEvent::TransferResult {
                    call: cref,
                    ok: false,
                    status: 408,
                });
            }
        }
        if reg_due {
            self.send_register(now);
        }
    }

    // -----------------------------------------------------------------------------------------
    // Commands

    /// Sends 180 Ringing.
    pub fn ring(&mut self, now: Instant, cref: CallRef) -> Result<(), UaError> {
        let c = self.calls.get(&cref).ok_or(UaError::UnknownCall)?;
        if c.state != CallState::Offered {
            return Err(UaError::WrongState);
        }
        let r = self.response(&c.invite, 180, Some(&c.local_tag), c.invite_src);
        let key = c.invite_key.clone();
        self.respond_tx(now, &key, r);
        Ok(())
    }

    /// Answers with 200 OK; our RTP is at `local_rtp` (its IP goes into the SDP).
    pub fn answer(
        &mut self,
        now: Instant,
        cref: CallRef,
        local_rtp: SocketAddr,
    ) -> Result<(), UaError> {
        let c = self.calls.get_mut(&cref).ok_or(UaError::UnknownCall)?;
        if c.state != CallState::Offered {
            return Err(UaError::WrongState);
        }
        c.local_rtp = Some(local_rtp);
        let body = match &c.media {
            Some(n) => n.answer(local_rtp, c.session_id, c.sdp_version),
            None => sdp::offer_with(local_rtp, c.session_id, c.sdp_version, &self.cfg.codecs),
        };
        c.last_sdp = Some(body.clone());
        c.state = CallState::Answered;
        let c = &self.calls[&cref];
        let mut r = self.response(&c.invite, 200, Some(&c.local_tag), c.invite_src);
        r.push("Allow", ALLOW);
        r.push("Content-Type", "application/sdp");
        r.body = body.into_bytes();
        let key = c.invite_key.clone();
        self.respond_tx(now, &key, r);
        Ok(())
    }

    /// Rejects an unanswered call (e.g. 486 Busy Here, 480, 603).
    pub fn reject(&mut self, now: Instant, cref: CallRef, status: u16) -> Result<(), UaError> {
        let c = self.calls.get(&cref).ok_or(UaError::UnknownCall)?;
        if c.state != CallState::Offered || !(300..700).contains(&status) {
            return Err(UaError::WrongState);
        }
        let r = self.response(&c.invite, status, Some(&c.local_tag), c.invite_src);
        let key = c.invite_key.clone();
        self.calls.remove(&cref);
        self.respond_tx(now, &key, r);
        self.events.push_back(UaEvent::Ended {
            call: cref,
            reason: EndReason::Rejected(status),
        });
        Ok(())
    }

    /// Ends the call from our side: 480 before answering, BYE after (deferred until the ACK).
    pub fn hangup(&mut self, now: Instant, cref: CallRef) -> Result<(), UaError> {
        let state = self.calls.get(&cref).ok_or(UaError::UnknownCall)?.state;
        match state {
            CallState::Offered => {
                self.reject(now, cref, 480)?;
                return Ok(());
            }
            CallState::Answered => {
                if let Some(c) = self.calls.get_mut(&cref) {
                    c.pending_bye = true;
                }
            }
            CallState::Confirmed => self.send_bye(now, cref),
            CallState::Terminating => return Ok(()),
        }
        self.events.push_back(UaEvent::Ended {
            call: cref,
            reason: EndReason::LocalHangup,
        });
        Ok(())
    }

    /// Builds an in-dialog request; also returns where it goes and how.
    fn dialog_request(
        &mut self,
        cref: CallRef,
        method: Method,
    ) -> Option<(Message, SocketAddr, Transport, String)> {
        let branch = format!("z9hG4bK{}", self.token());
        let peer = self.calls.get(&cref)?.peer;
        let transport = self.transport_to(peer);
        let dst = self.dialog_next_hop(cref, transport)?;
        let (contact, tp) = (self.contact_for(peer), transport.via_token());
        let (host, port, ua) = (
            self.cfg.contact_host.clone(),
            self.local_port(transport),
            self.cfg.user_agent.clone(),
        );
        let c = self.calls.get_mut(&cref)?;
        c.local_cseq += 1;
        let mut m = Message::request(method.clone(), c.remote_target.clone());
        m.push(
            "Via",
            format!("SIP/2.0/{tp} {host}:{port};branch={branch};rport"),
        );
        m.push("Max-Forwards", "70");
        m.push("From", c.local_na.clone());
        m.push("To", c.remote_na.clone());
        m.push("Call-ID", c.call_id.clone());
        m.push("CSeq", format!("{} {method}", c.local_cseq));
        for r in &c.route_set {
            m.push("Route", r.clone());
        }
        m.push("Contact", contact);
        m.push("User-Agent", ua);
        Some((m, dst, transport, branch))
    }

    /// Where an in-dialog request goes: the connection the dialog's requests came over while it is
    /// open (or UDP to their source). A TLS dialog whose connection is gone needs a new one, and
    /// the PBX's side of the old one was an ephemeral port: connect to the first Route, else the
    /// remote Contact (RFC 3261 §12.2.1.1), when that names an IP; else the source IP on the
    /// URI's port. Host names are not resolved (see the module notes).
    fn dialog_next_hop(&mut self, cref: CallRef, transport: Transport) -> Option<SocketAddr> {
        let c = self.calls.get(&cref)?;
        if transport != Transport::Tls || self.stream_peers.contains_key(&c.peer) {
            return Some(c.peer);
        }
        let target = c
            .route_set
            .first()
            .and_then(|r| NameAddr::parse(r).ok())
            .map(|na| na.uri)
            .unwrap_or_else(|| c.remote_target.clone());
        let port = target.port.unwrap_or(5061);
        let dst = match ip_literal(&target.host) {
            Some(ip) => SocketAddr::new(ip, port),
            None => SocketAddr::new(c.peer.ip(), port),
        };
        let host = target.host.trim_start_matches('[').trim_end_matches(']');
        if self.tls_names.len() >= 64 {
            self.tls_names.clear(); // a cache: names are recomputed on the next request
        }
        self.tls_names.insert(dst, host.to_string());
        Some(dst)
    }

    /// The name to verify the certificate of a TLS peer at `dst` against: the registrar's host
    /// for the registrar, the Route/Contact host for a dialog peer we reconnect to. `None`: the
    /// driver uses the IP address.
    pub fn tls_server_name(&self, dst: SocketAddr) -> Option<&str> {
        if let Some(r) = self.reg.as_ref().filter(|r| r.cfg.registrar == dst) {
            let d = r.cfg.domain.as_str();
            // `domain` may carry a port (`pbx.lan:5061`, `[::1]:5061`): the name is the host.
            let host = match d.rsplit_once(':') {
                Some((h, p))
                    if p.parse::<u16>().is_ok() && (!h.contains(':') || h.ends_with(']')) =>
                {
                    h
                }
                _ => d,
            };
            return Some(host.trim_start_matches('[').trim_end_matches(']'));
        }
        self.tls_names.get(&dst).map(String::as_str)
    }

    /// Starts a client transaction over `transport` (reliable ones get no Timer A/E
    /// retransmissions, RFC 3261 §17.1.1.2 and §17.1.2.2).
    fn start_client(
        &mut self,
        now: Instant,
        m: Message,
        dst: SocketAddr,
        transport: Transport,
        branch: &str,
        purpose: Purpose,
    ) {
        let method = m.method().cloned().unwrap_or(Method::Bye);
        let bytes = m.to_bytes();
        let tx = ClientTx::new(
            now,
            method == Method::Invite,
            bytes.clone(),
            dst,
            transport != Transport::Udp,
        );
        self.client.insert(
            format!("{branch}|{method}"),
            ClientEntry {
                tx,
                purpose,
                transport,
                request: bytes.clone(),
                resent: false,
            },
        );
        self.out.push_back(Transmit {
            dst,
            data: bytes,
            transport,
        });
    }

    fn send_bye(&mut self, now: Instant, cref: CallRef) {
        let Some((m, dst, transport, branch)) = self.dialog_request(cref, Method::Bye) else {
            return;
        };
        if let Some(c) = self.calls.get_mut(&cref) {
            c.state = CallState::Terminating;
            c.pending_bye = false;
        }
        self.start_client(now, m, dst, transport, &branch, Purpose::Bye(cref));
    }

    /// Blind transfer (RFC 3515): REFER with `Refer-To: <target>`; the outcome arrives as
    /// [`UaEvent::TransferResult`]. A failed transfer leaves the call up.
    pub fn transfer(&mut self, now: Instant, cref: CallRef, target: &str) -> Result<(), UaError> {
        let target_uri = Uri::parse(target).map_err(|_| UaError::BadTarget)?;
        let c = self.calls.get(&cref).ok_or(UaError::UnknownCall)?;
        if c.state != CallState::Confirmed {
            return Err(UaError::WrongState);
        }
        if c.transfer_pending {
            return Err(UaError::TransferPending);
        }
        let (mut m, dst, transport, branch) = self
            .dialog_request(cref, Method::Refer)
            .ok_or(UaError::UnknownCall)?;
        m.push("Refer-To", format!("<{target_uri}>"));
        m.push(
            "Referred-By",
            format!("<sip:{}@{}>", self.cfg.user, self.cfg.contact_host),
        );
        if let Some(c) = self.calls.get_mut(&cref) {
            c.transfer_pending = true;
        }
        self.start_client(now, m, dst, transport, &branch, Purpose::Refer(cref));
        Ok(())
    }
}
