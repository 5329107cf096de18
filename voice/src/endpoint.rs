//! The tokio SIP endpoint: one task owns the SIP UDP socket and the sans-IO [`Ua`], feeds it
//! datagrams and real time, and for each call binds an RTP port pair and runs a
//! [`crate::media`] driver. The application sees [`IncomingCall`]s with a [`CallHandle`] and a
//! stream of [`CallEvent`]s.
//!
//! Calls are answered at once (no ringing phase: the receptionist is always available). Every
//! exit path (remote BYE, our hangup, CANCEL, ACK timeout, RTP inactivity, the application
//! dropping the call's event receiver, endpoint shutdown) stops the media task, which closes the
//! RTP/RTCP sockets, so their ports are free for the next call.
//!
//! SIP also arrives over TCP (same port) and, with a certificate configured, over TLS (its own
//! port, 5061 by convention): each connection is a task that frames messages and hands them to
//! the driver; responses and in-dialog requests go back over the connection they came on.
//!
//! We also open connections ourselves: REGISTER to a TCP or TLS registrar, and in-dialog
//! requests of a TLS call whose connection has gone. A transmit to an address with no
//! connection spawns a connect (10 s limit, never blocking the driver); what is sent meanwhile
//! waits in the connection's queue; a failure is reported to the UA as a transport error. Our
//! own connections send CRLF keep-alives (RFC 5626 §4.4.1; every 30 s by default, and a peer
//! that once answered them and then stops is taken as gone) and carry whatever the PBX sends
//! back over them (its INVITEs to our registered Contact, for one).

use crate::media::{self, DriverOptions, MediaConfig, MediaEvent, MediaHandle, MediaSession};
use crate::sip::sdp::{Codec, Negotiated};
use crate::sip::ua::{
    CallRef, CallerId, EndReason, IpNet, RateLimit, RegistrationConfig, Transport, Ua, UaConfig,
    UaEvent,
};
use crate::VoiceError;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot, watch};

/// Endpoint settings (the appliance fills these from its configuration file).
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// SIP UDP listen address, e.g. 0.0.0.0:5060.
    pub listen: SocketAddr,
    /// Address the PBX reaches us at (Contact, Via, SDP). Defaults to the listen IP if that is
    /// not a wildcard, else to the local address of the route towards the PBX.
    pub public_ip: Option<IpAddr>,
    /// Inclusive RTP port range; each call takes an even port and the next one for RTCP.
    pub rtp_ports: (u16, u16),
    pub max_calls: usize,
    /// Allowed SIP sources (empty = all). Everything else is dropped without a response.
    pub trusted_sources: Vec<IpNet>,
    /// Our extension (Request-URI user we answer; others get 404 unless `accept_any_user`).
    pub user: String,
    pub accept_any_user: bool,
    /// Refer-To for transfers when the target is not already a SIP URI: `{target}` is replaced,
    /// e.g. `sip:{target}@pbx.example.lan` (some PBXs refuse `tel:` URIs).
    pub refer_uri_template: String,
    /// Media settings; codec and payload types are overridden by the SDP negotiation.
    pub media: MediaConfig,
    pub user_agent: String,
    /// Also accept SIP over TCP on the same port (RFC 3261 requires it; most PBXs use UDP).
    pub tcp: bool,
    /// Ring (180) this long before answering; zero answers at once. A short ring sounds natural
    /// to callers and gives a CANCEL a chance to win.
    pub answer_delay: Duration,
    /// REGISTER with the PBX (digest MD5/SHA-256), refreshed before expiry.
    pub registration: Option<RegistrationConfig>,
    /// Also accept SIP over TLS (None: TLS off).
    pub tls: Option<TlsConfig>,
    /// Per-source limit on new requests outside dialogs (None: unlimited).
    pub rate_limit: Option<RateLimit>,
    /// How REGISTER reaches the registrar (from its URI, see [`crate::sip::ua::RegistrarUri`]).
    pub registrar_transport: Transport,
    /// PEM CA certificates that TLS peers we connect to must chain to (the TLS registrar, a PBX
    /// we reconnect to). None: the system bundle [`SYSTEM_CA_FILE`].
    pub tls_ca_file: Option<PathBuf>,
    /// CRLF keep-alive interval on connections we open. RFC 5626 §4.4.1 suggests 95–120 s for
    /// TCP; PBXs and NATs on office LANs drop idle TCP state sooner, hence 30 s by default.
    pub stream_keepalive: Duration,
}

/// The Debian system trust store (package ca-certificates).
pub const SYSTEM_CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// SIP over TLS (RFC 3261 §26.2; peers use `;transport=tls`): our server certificate.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// Listen address, e.g. 0.0.0.0:5061 (port 0 picks a free one; see [`Endpoint::tls_local_addr`]).
    pub listen: SocketAddr,
    /// PEM certificate chain, our certificate first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC) of that certificate.
    pub key_file: PathBuf,
}

/// A PEM certificate chain read by [`load_tls_certs`].
#[derive(Debug, Clone)]
pub struct TlsCerts(Vec<CertificateDer<'static>>);

/// A PEM private key read by [`load_tls_key`] (its Debug shows nothing secret).
pub struct TlsKey(PrivateKeyDer<'static>);

impl std::fmt::Debug for TlsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsKey(<redacted>)")
    }
}

/// Reads the certificate chain (the configuration checks each file separately to name it).
pub fn load_tls_certs(path: &Path) -> Result<TlsCerts, VoiceError> {
    let pem = std::fs::read(path).map_err(|e| {
        VoiceError::Config(format!(
            "cannot read the TLS certificate file {}: {e} (check the path and that the service user may read it)",
            path.display()
        ))
    })?;
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(&pem).collect();
    match certs {
        Ok(c) if !c.is_empty() => Ok(TlsCerts(c)),
        Ok(_) => Err(VoiceError::Config(format!(
            "{} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----; convert a DER file with `openssl x509 -inform der -in FILE -out FILE.pem`)",
            path.display()
        ))),
        Err(e) => Err(VoiceError::Config(format!(
            "{} is not a valid PEM certificate file ({e}): export the certificate chain as PEM",
            path.display()
        ))),
    }
}

/// Reads the private key. Its content never appears in errors.
pub fn load_tls_key(path: &Path) -> Result<TlsKey, VoiceError> {
    let pem = std::fs::read(path).map_err(|e| {
        VoiceError::Config(format!(
            "cannot read the TLS key file {}: {e} (check the path and that the service user may read it)",
            path.display()
        ))
    })?;
    PrivateKeyDer::from_pem_slice(&pem).map(TlsKey).map_err(|_| {
        VoiceError::Config(format!(
            "{} holds no usable PEM private key (expected -----BEGIN PRIVATE KEY-----, RSA or EC; an encrypted key must be decrypted with `openssl pkey`)",
            path.display()
        ))
    })
}

/// The rustls server configuration (ring provider, TLS 1.2 and 1.3, no client certificates).
pub fn tls_server_config(
    certs: TlsCerts,
    key: TlsKey,
) -> Result<Arc<rustls::ServerConfig>, VoiceError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| VoiceError::Config(format!("TLS set-up failed: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs.0, key.0)
        .map_err(|e| {
            VoiceError::Config(format!(
                "the TLS key does not fit the certificate ({e}): use the key the certificate was issued for"
            ))
        })?;
    Ok(Arc::new(cfg))
}

/// Reads the CA certificates we trust for outgoing TLS. Certificates the bundle holds that
/// rustls cannot use are skipped (the system bundle has a few); none usable is an error.
pub fn load_tls_ca(path: &Path) -> Result<rustls::RootCertStore, VoiceError> {
    let TlsCerts(certs) = load_tls_certs(path).map_err(|e| match e {
        VoiceError::Config(m) => VoiceError::Config(format!(
            "{m}; the TLS CA file must hold the PEM certificate of the CA that signed the PBX's certificate (or the PBX's self-signed certificate)"
        )),
        other => other,
    })?;
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(VoiceError::Config(format!(
            "{} holds no usable CA certificate: export the CA (or the PBX's self-signed) certificate as PEM",
            path.display()
        )));
    }
    Ok(roots)
}

/// The rustls client configuration for connections we open (ring provider, TLS 1.2 and 1.3,
/// server certificate checked against `roots` and the peer's name, no client certificate).
pub fn tls_client_config(
    roots: rustls::RootCertStore,
) -> Result<Arc<rustls::ClientConfig>, VoiceError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| VoiceError::Config(format!("TLS set-up failed: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// What the registrar last said (for the status page; no secrets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationStatus {
    NotConfigured,
    Pending,
    Registered {
        expires: u32,
    },
    /// Last attempt failed with this status (408: no answer); retrying with backoff.
    Failed {
        status: u16,
    },
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 5060)),
            public_ip: None,
            rtp_ports: (20000, 20999),
            max_calls: 4,
            trusted_sources: Vec::new(),
            user: "frontdesk".into(),
            accept_any_user: false,
            refer_uri_template: "sip:{target}".into(),
            media: MediaConfig::default(),
            user_agent: "FrontDesk".into(),
            tcp: true,
            answer_delay: Duration::ZERO,
            registration: None,
            tls: None,
            rate_limit: Some(RateLimit::default()),
            registrar_transport: Transport::Udp,
            tls_ca_file: None,
            stream_keepalive: Duration::from_secs(30),
        }
    }
}

/// What happens on a call, in order. The channel closes after the call ends.
#[derive(Debug, Clone, PartialEq)]
pub enum CallEvent {
    /// 20 ms of caller audio at 16 kHz mono.
    Audio(Vec<i16>),
    Dtmf(char),
    /// The caller hung up (BYE, or CANCEL before the answer completed, or our 200 was never ACKed).
    RemoteHangup,
    TransferResult {
        ok: bool,
        status: u16,
    },
    /// No RTP for the configured inactivity timeout: the endpoint hangs up.
    MediaTimeout,
    Hold(bool),
}

/// A new, already-answered call.
#[derive(Debug)]
pub struct IncomingCall {
    /// Opaque call number (not derived from caller data; safe to log).
    pub call_id: u64,
    /// Caller identity from P-Asserted-Identity or From. PHI: never log.
    pub caller: CallerId,
    /// Negotiated codec; `None` until a late-offer caller sends its answer.
    pub codec: Option<Codec>,
    pub events: mpsc::Receiver<CallEvent>,
    pub handle: CallHandle,
}

enum Command {
    Transfer {
        call: CallRef,
        target: String,
        reply: oneshot::Sender<Result<(), VoiceError>>,
    },
    Hangup {
        call: CallRef,
    },
    /// The call's event forwarder ended (application dropped the receiver, or media died).
    ForwarderGone {
        call: CallRef,
    },
    MediaTimeout {
        call: CallRef,
    },
    Answer {
        call: CallRef,
    },
}

/// Controls one call. Cheap to clone.
#[derive(Clone)]
pub struct CallHandle {
    call: CallRef,
    cmd: mpsc::UnboundedSender<Command>,
    media: Arc<Mutex<Option<Arc<MediaHandle>>>>,
}

impl std::fmt::Debug for CallHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CallHandle({})", self.call.0)
    }
}

impl CallHandle {
    fn media(&self) -> Option<Arc<MediaHandle>> {
        self.media.lock().ok().and_then(|m| m.clone())
    }

    /// Queues 16 kHz mono audio for the caller.
    pub fn play(&self, pcm16k: Vec<i16>) -> Result<(), VoiceError> {
        match self.media() {
            Some(m) => m.play(pcm16k),
            None => Err(VoiceError::MediaStopped),
        }
    }

    /// Barge-in: drops everything queued for playback.
    pub fn flush(&self) {
        if let Some(m) = self.media() {
            m.flush();
        }
    }

    /// Blind transfer. Returns once the REFER is sent; the outcome arrives as
    /// [`CallEvent::TransferResult`]. A failed transfer leaves the call up.
    pub async fn transfer(&self, target: &str) -> Result<(), VoiceError> {
        let (reply, rx) = oneshot::channel();
        self.cmd
            .send(Command::Transfer {
                call: self.call,
                target: target.to_string(),
                reply,
            })
            .map_err(|_| VoiceError::EndpointClosed)?;
        rx.await.map_err(|_| VoiceError::EndpointClosed)?
    }

    /// Hangs up (BYE). Idempotent.
    pub async fn hangup(&self) {
        let _ = self.cmd.send(Command::Hangup { call: self.call });
    }
}

/// The running endpoint. Dropping it hangs up every call and stops the task.
pub struct Endpoint {
    calls: mpsc::Receiver<IncomingCall>,
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    registration: watch::Receiver<RegistrationStatus>,
    tls_local_addr: Option<SocketAddr>,
}

impl Endpoint {
    /// Binds the SIP socket and starts the endpoint task.
    pub async fn bind(cfg: EndpointConfig) -> Result<Endpoint, VoiceError> {
        if cfg.rtp_ports.0 > cfg.rtp_ports.1 || cfg.rtp_ports.1 == u16::MAX {
            return Err(VoiceError::Config(format!(
                "RTP port range {}-{} is empty or ends at 65535",
                cfg.rtp_ports.0, cfg.rtp_ports.1
            )));
        }
        let sock = UdpSocket::bind(cfg.listen)
            .await
            .map_err(|source| VoiceError::Bind {
                addr: cfg.listen.to_string(),
                source,
            })?;
        let local_addr = sock.local_addr()?;
        let tcp = if cfg.tcp {
            Some(
                TcpListener::bind(local_addr)
                    .await
                    .map_err(|source| VoiceError::Bind {
                        addr: format!("tcp/{local_addr}"),
                        source,
                    })?,
            )
        } else {
            None
        };
        let tls = match &cfg.tls {
            Some(t) => {
                let server =
                    tls_server_config(load_tls_certs(&t.cert_file)?, load_tls_key(&t.key_file)?)?;
                let l = TcpListener::bind(t.listen)
                    .await
                    .map_err(|source| VoiceError::Bind {
                        addr: format!("tls/{}", t.listen),
                        source,
                    })?;
                Some((l, tokio_rustls::TlsAcceptor::from(server)))
            }
            None => None,
        };
        let tls_local_addr = match &tls {
            Some((l, _)) => Some(l.local_addr()?),
            None => None,
        };
        // Outgoing TLS: required for a TLS registrar (a bad CA file stops start-up, naming it);
        // with only a TLS listener it serves reconnects, so a missing system bundle just warns.
        let ca_path = cfg
            .tls_ca_file
            .clone()
            .unwrap_or_else(|| PathBuf::from(SYSTEM_CA_FILE));
        let tls_registrar = cfg.registration.is_some() && cfg.registrar_transport == Transport::Tls;
        if tls_registrar && tls.is_none() {
            // Our Contact then names a port with no TLS behind it.
            tracing::warn!("registering over TLS without a TLS listener: the PBX must send calls back over the registration's connection (Asterisk: rewrite_contact=yes), or set tls_listen");
        }
        let tls_client = if tls_registrar || tls.is_some() || cfg.tls_ca_file.is_some() {
            match load_tls_ca(&ca_path).and_then(tls_client_config) {
                Ok(c) => Some(tokio_rustls::TlsConnector::from(c)),
                Err(e) if tls_registrar || cfg.tls_ca_file.is_some() => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, "no CA certificates for outgoing TLS: a TLS call whose connection closes cannot be hung up or transferred");
                    None
                }
            }
        } else {
            None
        };
        let public_ip = match cfg.public_ip {
            Some(ip) => ip,
            None if !local_addr.ip().is_unspecified() => local_addr.ip(),
            None => detect_lan_ip(&cfg).ok_or_else(|| {
                VoiceError::Config(
                    "listening on a wildcard address and the LAN address could not be detected: set public_ip (the address the PBX reaches us at)".into(),
                )
            })?,
        };
        let ua_cfg = UaConfig {
            user: cfg.user.clone(),
            accept_any_user: cfg.accept_any_user,
            contact_host: public_ip.to_string(),
            contact_port: local_addr.port(),
            max_calls: cfg.max_calls,
            trusted: cfg.trusted_sources.clone(),
            user_agent: cfg.user_agent.clone(),
            registration: cfg.registration.clone(),
            codecs: cfg.media.codec_preference.clone(),
            tls_port: tls_local_addr.map(|a| a.port()),
            rate_limit: cfg.rate_limit,
            registrar_transport: cfg.registrar_transport,
            ..UaConfig::default()
        };
        let initial = if cfg.registration.is_some() {
            RegistrationStatus::Pending
        } else {
            RegistrationStatus::NotConfigured
        };
        let (reg_tx, registration) = watch::channel(initial);
        let (call_tx, calls) = mpsc::channel(cfg.max_calls.max(1));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (stream_tx, stream_rx) = mpsc::unbounded_channel();
        let driver = Driver {
            tcp,
            tls,
            tls_client,
            conns: HashMap::new(),
            stream_tx,
            ua: Ua::new(ua_cfg, rand::random()),
            sock,
            cfg,
            public_ip,
            calls: HashMap::new(),
            call_tx,
            cmd_tx,
            next_port: 0,
            reg_tx,
        };
        let task = tokio::spawn(driver.run(cmd_rx, stream_rx, shutdown_rx));
        Ok(Endpoint {
            calls,
            local_addr,
            shutdown,
            task: Some(task),
            registration,
            tls_local_addr,
        })
    }

    /// The next incoming call; `None` once the endpoint has stopped.
    pub async fn accept(&mut self) -> Option<IncomingCall> {
        self.calls.recv().await
    }

    /// Registration state, updated as the registrar answers.
    pub fn registration(&self) -> watch::Receiver<RegistrationStatus> {
        self.registration.clone()
    }

    /// The bound SIP address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The bound SIP-over-TLS address, if TLS is on.
    pub fn tls_local_addr(&self) -> Option<SocketAddr> {
        self.tls_local_addr
    }

    /// Hangs up all calls (BYE) and waits for the task to end.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

/// The local address the kernel would use towards the PBX (registrar, else the first trusted
/// source, else a documentation address standing in for "the default route"). A UDP `connect`
/// only selects a route: no packet is sent.
fn detect_lan_ip(cfg: &EndpointConfig) -> Option<IpAddr> {
    let target = cfg
        .registration
        .as_ref()
        .map(|r| r.registrar.ip())
        .or_else(|| {
            cfg.trusted_sources
                .first()
                .map(|n| n.addr)
                .filter(|a| !a.is_unspecified())
        })
        .unwrap_or(IpAddr::from([192, 0, 2, 1]));
    let bind: SocketAddr = if target.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = std::net::UdpSocket::bind(bind).ok()?;
    sock.connect(SocketAddr::new(target, 5060)).ok()?;
    let ip = sock.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then(|| {
        tracing::info!(%ip, "SIP contact address detected (set public_ip to override)");
        ip
    })
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

struct CallState {
    sip_events: mpsc::UnboundedSender<CallEvent>,
    media: Arc<Mutex<Option<Arc<MediaHandle>>>>,
    /// The RTP/RTCP sockets until media starts (late offer), then owned by the media task.
    sockets: Option<(UdpSocket, UdpSocket)>,
    pending: Option<IncomingCall>,
    rtp_addr: SocketAddr,
}

/// What connection tasks report to the driver.
enum StreamIn {
    /// One complete, framed SIP message.
    Message {
        src: SocketAddr,
        transport: Transport,
        bytes: Vec<u8>,
    },
    Closed {
        src: SocketAddr,
        transport: Transport,
    },
    /// A connection we opened did not come up (refused, timed out, TLS handshake failed).
    ConnectFailed {
        dst: SocketAddr,
        transport: Transport,
    },
}

/// How long shutdown waits for ACKs / BYE responses before closing the socket.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Most simultaneous connections per transport (TCP, TLS; a PBX needs one or two).
const MAX_STREAM_CONNECTIONS: usize = 32;
/// A TLS client that has not finished its handshake by then is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection we open must be up (TCP connect plus TLS handshake) by then.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a peer that answers keep-alives may take to answer one (RFC 5626 §4.4.1; shorter if
/// the pings are more frequent).
const PONG_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection that has not sent one complete SIP message by then is not a SIP peer: close it,
/// so idle connections cannot hold the connection slots.
const FIRST_MESSAGE_TIMEOUT: Duration = Duration::from_secs(32);
/// A connection whose unframed input grows past this is not speaking SIP: close it.
const MAX_STREAM_BUFFER: usize = 256 * 1024;

struct Driver {
    ua: Ua,
    sock: UdpSocket,
    tcp: Option<TcpListener>,
    tls: Option<(TcpListener, tokio_rustls::TlsAcceptor)>,
    /// For TLS connections we open (None: no usable CA certificates).
    tls_client: Option<tokio_rustls::TlsConnector>,
    conns: HashMap<(Transport, SocketAddr), mpsc::UnboundedSender<Vec<u8>>>,
    stream_tx: mpsc::UnboundedSender<StreamIn>,
    cfg: EndpointConfig,
    public_ip: IpAddr,
    calls: HashMap<CallRef, CallState>,
    call_tx: mpsc::Sender<IncomingCall>,
    cmd_tx: mpsc::UnboundedSender<Command>,
    next_port: u32,
    reg_tx: watch::Sender<RegistrationStatus>,
}

impl Driver {
    async fn run(
        mut self,
        mut cmd_rx: mpsc::UnboundedReceiver<Command>,
        mut stream_rx: mpsc::UnboundedReceiver<StreamIn>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut buf = vec![0u8; 65_536];
        let mut stats_tick = tokio::time::interval(Duration::from_secs(60));
        let mut last_stats = self.ua.stats();
        self.ua.start(Instant::now());
        self.pump().await;
        loop {
            let deadline = self.ua.next_timeout().map(tokio::time::Instant::from_std);
            tokio::select! {
                r = self.sock.recv_from(&mut buf) => match r {
                    Ok((n, src)) => self.ua.on_datagram(Instant::now(), src, &buf[..n]),
                    // Linux reports ICMP errors from earlier sends here; they are not fatal.
                    Err(e) => tracing::debug!(error = %e, "SIP socket receive error"),
                },
                _ = async { tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)).await }, if deadline.is_some() => {
                    self.ua.on_timeout(Instant::now());
                }
                Some(cmd) = cmd_rx.recv() => self.command(cmd),
                r = async { match &self.tcp { Some(l) => l.accept().await, None => std::future::pending().await } } => {
                    if let Ok((stream, peer)) = r {
                        self.accept_stream(stream, peer, Transport::Tcp);
                    }
                }
                r = async { match &self.tls { Some((l, _)) => l.accept().await, None => std::future::pending().await } } => {
                    if let Ok((stream, peer)) = r {
                        self.accept_stream(stream, peer, Transport::Tls);
                    }
                }
                Some(m) = stream_rx.recv() => match m {
                    StreamIn::Message { src, transport, bytes } => self.ua.on_stream(Instant::now(), src, transport, &bytes),
                    StreamIn::Closed { src: peer, transport } | StreamIn::ConnectFailed { dst: peer, transport } => {
                        self.conns.remove(&(transport, peer));
                        self.ua.on_transport_error(Instant::now(), peer, transport);
                    }
                },
                _ = shutdown.changed() => break,
                _ = stats_tick.tick() => {
                    let s = self.ua.stats();
                    if s != last_stats {
                        // Counts only: never caller numbers or addresses of callers.
                        tracing::info!(untrusted_dropped = s.untrusted_dropped, malformed = s.malformed,
                            calls = s.calls_accepted, busy = s.calls_rejected_busy,
                            rate_limited = s.rate_limited, "SIP endpoint counters");
                        last_stats = s;
                    }
                }
            }
            self.pump().await;
        }
        // Shutdown: BYE every call, give the BYEs a moment to leave, stop media.
        let refs: Vec<CallRef> = self.calls.keys().copied().collect();
        for c in refs {
            let _ = self.ua.hangup(Instant::now(), c);
        }
        if self.cfg.registration.is_some() {
            self.ua.unregister(Instant::now());
        }
        self.pump().await;
        // Grace period: a call answered but not yet ACKed sends its BYE when the ACK arrives, and
        // BYEs want their 200s. Bounded so shutdown never hangs on a silent peer.
        let grace = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        while self.ua.dialog_count() > 0 && tokio::time::Instant::now() < grace {
            let wake = self
                .ua
                .next_timeout()
                .map(tokio::time::Instant::from_std)
                .map_or(grace, |t| t.min(grace));
            tokio::select! {
                r = self.sock.recv_from(&mut buf) => {
                    if let Ok((n, src)) = r {
                        self.ua.on_datagram(Instant::now(), src, &buf[..n]);
                    }
                }
                Some(StreamIn::Message { src, transport, bytes }) = stream_rx.recv() => {
                    self.ua.on_stream(Instant::now(), src, transport, &bytes);
                }
                _ = tokio::time::sleep_until(wake) => self.ua.on_timeout(Instant::now()),
            }
            self.pump().await;
        }
        for (_, c) in self.calls.drain() {
            stop_media(&c.media);
        }
    }

    /// Sends what the UA queued and handles its events until both are drained.
    async fn pump(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(t) = self.ua.poll_transmit() {
                progressed = true;
                match t.transport {
                    Transport::Udp => {}
                    Transport::Tcp | Transport::Tls => {
                        if let Some(w) = self.conns.get(&(t.transport, t.dst)) {
                            // If the connection task has just ended, the message is lost and
                            // its Closed report (on the way) fails the transaction. The entry
                            // stays until then, so a new connection never shares its key.
                            let _ = w.send(t.data);
                            continue;
                        }
                        // No connection: open one. The message waits in its queue meanwhile.
                        // TLS is never downgraded to clear text.
                        if let Some(w) = self.open_stream(t.transport, t.dst) {
                            let _ = w.send(t.data);
                        }
                        continue;
                    }
                }
                if let Err(e) = self.sock.send_to(&t.data, t.dst).await {
                    tracing::debug!(error = %e, "SIP send failed");
                }
            }
            while let Some(ev) = self.ua.poll_event() {
                progressed = true;
                self.event(ev);
            }
            if !progressed {
                break;
            }
        }
    }

    /// Opens a TCP or TLS connection to `dst` in the background and registers its queue.
    /// `None` (and a transport error to the UA) when TLS is needed but not set up.
    fn open_stream(
        &mut self,
        transport: Transport,
        dst: SocketAddr,
    ) -> Option<mpsc::UnboundedSender<Vec<u8>>> {
        let tls = match transport {
            Transport::Tls => {
                let Some(connector) = self.tls_client.clone() else {
                    tracing::warn!("cannot open a SIP-over-TLS connection: no CA certificates loaded (set sip.register.tls_ca_file); SIP message dropped");
                    self.ua.on_transport_error(Instant::now(), dst, transport);
                    return None;
                };
                let name = self
                    .ua
                    .tls_server_name(dst)
                    .and_then(|n| rustls_pki_types::ServerName::try_from(n.to_string()).ok())
                    .unwrap_or_else(|| rustls_pki_types::ServerName::IpAddress(dst.ip().into()));
                Some((connector, name))
            }
            _ => None,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        self.conns.insert((transport, dst), tx.clone());
        let to_driver = self.stream_tx.clone();
        let keepalive = Some(self.cfg.stream_keepalive.max(Duration::from_millis(100)));
        tokio::spawn(async move {
            let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(dst)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return connect_failed(&to_driver, dst, transport, &e.to_string()),
                Err(_) => return connect_failed(&to_driver, dst, transport, "timed out"),
            };
            let _ = tcp.set_nodelay(true);
            match tls {
                None => connection(tcp, dst, transport, rx, to_driver, keepalive).await,
                Some((connector, name)) => {
                    match tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp)).await {
                        Ok(Ok(s)) => connection(s, dst, transport, rx, to_driver, keepalive).await,
                        Ok(Err(e)) => connect_failed(&to_driver, dst, transport, &format!("TLS handshake failed: {e} (is the PBX's CA in sip.register.tls_ca_file, and does its certificate name the registrar host?)")),
                        Err(_) => connect_failed(&to_driver, dst, transport, "TLS handshake timed out"),
                    }
                }
            }
        });
        Some(tx)
    }

    /// Takes a TCP or TLS connection. The allow-list and the connection cap apply before any
    /// TLS work, so untrusted or excess clients cost no handshake.
    fn accept_stream(&mut self, stream: TcpStream, peer: SocketAddr, transport: Transport) {
        let trusted = self.cfg.trusted_sources.is_empty()
            || self
                .cfg
                .trusted_sources
                .iter()
                .any(|n| n.contains(peer.ip()));
        let open = self.conns.keys().filter(|(t, _)| *t == transport).count();
        if !trusted || open >= MAX_STREAM_CONNECTIONS || self.conns.contains_key(&(transport, peer))
        {
            return; // dropping the stream closes it
        }
        let (tx, rx) = mpsc::unbounded_channel();
        self.conns.insert((transport, peer), tx);
        let to_driver = self.stream_tx.clone();
        match (&self.tls, transport) {
            (Some((_, acceptor)), Transport::Tls) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        Ok(Ok(tls)) => connection(tls, peer, transport, rx, to_driver, None).await,
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "TLS handshake failed");
                            let _ = to_driver.send(StreamIn::Closed {
                                src: peer,
                                transport,
                            });
                        }
                        Err(_) => {
                            tracing::debug!("TLS handshake timed out");
                            let _ = to_driver.send(StreamIn::Closed {
                                src: peer,
                                transport,
                            });
                        }
                    }
                });
            }
            _ => {
                tokio::spawn(connection(stream, peer, transport, rx, to_driver, None));
            }
        }
    }

    fn bind_rtp_pair(&mut self) -> Result<(std::net::UdpSocket, std::net::UdpSocket), VoiceError> {
        let (lo, hi) = self.cfg.rtp_ports;
        let lo_even = lo + (lo % 2);
        let pairs = u32::from(hi.saturating_sub(lo_even)) / 2 + 1;
        let ip = self.cfg.listen.ip();
        // Round-robin start so a just-released port is not reused at once (late packets from the
        // previous call would land in the new one).
        for i in 0..pairs {
            let idx = (self.next_port + i) % pairs;
            let port = lo_even as u32 + idx * 2;
            if port + 1 > hi as u32 {
                continue;
            }
            let Ok(rtp) = std::net::UdpSocket::bind(SocketAddr::new(ip, port as u16)) else {
                continue;
            };
            let Ok(rtcp) = std::net::UdpSocket::bind(SocketAddr::new(ip, port as u16 + 1)) else {
                continue;
            };
            self.next_port = idx + 1;
            return Ok((rtp, rtcp));
        }
        Err(VoiceError::NoRtpPort {
            range: format!("{lo}-{hi}"),
        })
    }

    fn event(&mut self, ev: UaEvent) {
        let now = Instant::now();
        match ev {
            UaEvent::IncomingCall {
                call,
                caller,
                offer,
            } => {
                let pair = self.bind_rtp_pair().and_then(|(a, b)| {
                    a.set_nonblocking(true)?;
                    b.set_nonblocking(true)?;
                    Ok((UdpSocket::from_std(a)?, UdpSocket::from_std(b)?))
                });
                let (rtp, rtcp) = match pair {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(error = %e, "rejecting call");
                        let _ = self.ua.reject(now, call, 503);
                        return;
                    }
                };
                let rtp_port = rtp.local_addr().map(|a| a.port()).unwrap_or(0);
                let rtp_addr = SocketAddr::new(self.public_ip, rtp_port);
                let (sip_tx, sip_rx) = mpsc::unbounded_channel();
                let (ev_tx, ev_rx) = mpsc::channel(media::driver::EVENT_CAPACITY);
                let media_slot = Arc::new(Mutex::new(None));
                let handle = CallHandle {
                    call,
                    cmd: self.cmd_tx.clone(),
                    media: media_slot.clone(),
                };
                let incoming = IncomingCall {
                    call_id: call.0,
                    caller,
                    codec: offer.as_ref().map(|o| o.codec),
                    events: ev_rx,
                    handle,
                };
                let mut state = CallState {
                    sip_events: sip_tx,
                    media: media_slot,
                    sockets: Some((rtp, rtcp)),
                    pending: Some(incoming),
                    rtp_addr,
                };
                let media_rx = match &offer {
                    Some(n) => self.start_media(&mut state, n),
                    None => None,
                };
                tokio::spawn(forward(call, media_rx, sip_rx, ev_tx, self.cmd_tx.clone()));
                self.calls.insert(call, state);
                if self.cfg.answer_delay.is_zero() {
                    self.answer(call);
                } else {
                    let _ = self.ua.ring(now, call);
                    let (cmd, delay) = (self.cmd_tx.clone(), self.cfg.answer_delay);
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        let _ = cmd.send(Command::Answer { call });
                    });
                }
            }
            UaEvent::Established { .. } => {}
            UaEvent::Registered { expires } => {
                if *self.reg_tx.borrow() != (RegistrationStatus::Registered { expires }) {
                    tracing::info!(expires, "registered with the PBX");
                }
                let _ = self.reg_tx.send(RegistrationStatus::Registered { expires });
            }
            UaEvent::RegistrationFailed { status } => {
                let _ = self.reg_tx.send(RegistrationStatus::Failed { status });
            }
            UaEvent::MediaChanged { call, media } => {
                if let Some(mut state) = self.calls.remove(&call) {
                    let running = state.media.lock().ok().and_then(|m| m.clone());
                    match running {
                        Some(h) => h.set_remote(media.remote),
                        None => {
                            // Late offer: media starts now; its events need a new forwarder.
                            if let Some(rx) = self.start_media(&mut state, &media) {
                                tokio::spawn(forward_media_only(
                                    call,
                                    rx,
                                    state.sip_events.clone(),
                                ));
                            }
                        }
                    }
                    self.calls.insert(call, state);
                }
            }
            UaEvent::Hold { call, on } => self.to_call(call, CallEvent::Hold(on)),
            UaEvent::Dtmf { call, digit } => self.to_call(call, CallEvent::Dtmf(digit)),
            UaEvent::TransferResult { call, ok, status } => {
                self.to_call(call, CallEvent::TransferResult { ok, status })
            }
            UaEvent::Ended { call, reason } => {
                if let Some(state) = self.calls.remove(&call) {
                    if matches!(
                        reason,
                        EndReason::RemoteBye | EndReason::Cancelled | EndReason::AckTimeout
                    ) {
                        let _ = state.sip_events.send(CallEvent::RemoteHangup);
                    }
                    stop_media(&state.media);
                    // Dropping `state` drops the SIP event sender: the forwarder drains and ends.
                }
            }
        }
    }

    /// Sends the 200 OK (unless the call was cancelled meanwhile) and hands the call over.
    fn answer(&mut self, call: CallRef) {
        let now = Instant::now();
        let Some(state) = self.calls.get_mut(&call) else {
            return;
        };
        if let Err(e) = self.ua.answer(now, call, state.rtp_addr) {
            tracing::debug!(error = %e, "call not answered");
            return;
        }
        // Hand the call to the application; if it is not keeping up, hang up politely.
        if let Some(incoming) = state.pending.take() {
            if self.call_tx.try_send(incoming).is_err() {
                tracing::warn!("application is not accepting calls; hanging up");
                let _ = self.ua.hangup(now, call);
            }
        }
    }

    fn start_media(
        &mut self,
        state: &mut CallState,
        n: &Negotiated,
    ) -> Option<mpsc::Receiver<MediaEvent>> {
        let (rtp, rtcp) = state.sockets.take()?;
        let mut mcfg = self.cfg.media.clone();
        mcfg.codec = n.codec;
        mcfg.payload_type = n.payload_type;
        mcfg.dtmf_payload_type = n.dtmf_payload_type;
        mcfg.ptime_ms = n.ptime_ms;
        let session = MediaSession::new(mcfg, rand::random(), Instant::now());
        let opts = DriverOptions {
            symmetric_rtp: true,
            rtcp_socket: Some(rtcp),
            rtcp_mux: false,
        };
        let (handle, rx) = media::spawn_with(rtp, n.remote, session, opts);
        if let Ok(mut slot) = state.media.lock() {
            *slot = Some(Arc::new(handle));
        }
        Some(rx)
    }

    fn to_call(&self, call: CallRef, ev: CallEvent) {
        if let Some(s) = self.calls.get(&call) {
            let _ = s.sip_events.send(ev);
        }
    }

    fn command(&mut self, cmd: Command) {
        let now = Instant::now();
        match cmd {
            Command::Transfer {
                call,
                target,
                reply,
            } => {
                let uri = if target.starts_with("sip:") || target.starts_with("sips:") {
                    target
                } else {
                    self.cfg.refer_uri_template.replace("{target}", &target)
                };
                let _ = reply.send(self.ua.transfer(now, call, &uri).map_err(VoiceError::from));
            }
            Command::Hangup { call } | Command::ForwarderGone { call } => {
                let _ = self.ua.hangup(now, call);
            }
            Command::Answer { call } => self.answer(call),
            Command::MediaTimeout { call } => {
                tracing::info!(call = call.0, "no RTP from the caller: hanging up");
                let _ = self.ua.hangup(now, call);
            }
        }
    }
}

fn stop_media(slot: &Arc<Mutex<Option<Arc<MediaHandle>>>>) {
    if let Ok(mut m) = slot.lock() {
        if let Some(h) = m.take() {
            h.stop();
        }
    }
}

/// Media events the application sees. `PlaybackFinished` is not forwarded yet: adding a
/// `CallEvent` variant would break the appliance's exhaustive match (see the report).
fn map_media(ev: MediaEvent) -> Option<CallEvent> {
    match ev {
        MediaEvent::Audio(a) => Some(CallEvent::Audio(a)),
        MediaEvent::Dtmf { digit, .. } => Some(CallEvent::Dtmf(digit)),
        MediaEvent::InactivityTimeout => Some(CallEvent::MediaTimeout),
        MediaEvent::PlaybackFinished => None,
    }
}

/// Merges the media events and the SIP events of one call into the application's channel.
/// Ends when the SIP side closes (call over) or the application drops its receiver.
async fn forward(
    call: CallRef,
    mut media_rx: Option<mpsc::Receiver<MediaEvent>>,
    mut sip_rx: mpsc::UnboundedReceiver<CallEvent>,
    out: mpsc::Sender<CallEvent>,
    cmd: mpsc::UnboundedSender<Command>,
) {
    loop {
        let ev = tokio::select! {
            biased;
            e = sip_rx.recv() => match e {
                Some(e) => e,
                None => break, // call ended
            },
            // The application dropped the call's receiver: hang up so ports and tasks are released.
            _ = out.closed() => {
                let _ = cmd.send(Command::ForwarderGone { call });
                return;
            }
            e = async { match media_rx.as_mut() { Some(r) => r.recv().await, None => std::future::pending().await } } => match e {
                Some(e) => match map_media(e) {
                    Some(e) => e,
                    None => continue,
                },
                None => { media_rx = None; continue; }
            },
        };
        if ev == CallEvent::MediaTimeout {
            let _ = cmd.send(Command::MediaTimeout { call });
        }
        if out.send(ev).await.is_err() {
            // The application dropped the call: hang up so ports and tasks are released.
            let _ = cmd.send(Command::ForwarderGone { call });
            return;
        }
    }
}

fn connect_failed(
    to_driver: &mpsc::UnboundedSender<StreamIn>,
    dst: SocketAddr,
    transport: Transport,
    why: &str,
) {
    // The PBX's address, never a caller's: safe to log.
    tracing::warn!(%dst, transport = transport.via_token(), "cannot connect to the SIP peer: {why}");
    let _ = to_driver.send(StreamIn::ConnectFailed { dst, transport });
}

/// One TCP or TLS connection: frames messages (Content-Length), answers CRLF keep-alive pings,
/// writes what the driver sends. A framing error gets a 400 if possible, then the connection
/// closes (the stream cannot be resynchronised). On connections we opened (`keepalive` set) we
/// send the keep-alive pings, and the peer need not speak first.
async fn connection<S: AsyncRead + AsyncWrite + Send + 'static>(
    stream: S,
    peer: SocketAddr,
    transport: Transport,
    mut out: mpsc::UnboundedReceiver<Vec<u8>>,
    to_driver: mpsc::UnboundedSender<StreamIn>,
    keepalive: Option<Duration>,
) {
    use crate::sip::message::{parse_stream, response_from_raw, StreamFrame};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 8192];
    let first_deadline = tokio::time::Instant::now() + FIRST_MESSAGE_TIMEOUT;
    let outgoing = keepalive.is_some();
    let mut seen_message = outgoing;
    let every = keepalive.unwrap_or(Duration::from_secs(3600));
    let pong_timeout = PONG_TIMEOUT.min(every);
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // RFC 5626 §4.4.1: a peer that has answered a ping once and then stays silent for
    // `pong_timeout` after the next one is gone (a crashed PBX sends no FIN; without this we would
    // write into the void until TCP gives up, minutes later). Peers that never pong are not
    // judged this way.
    let mut pongs = false;
    let mut pong_due: Option<tokio::time::Instant> = None;
    'conn: loop {
        tokio::select! {
            _ = tokio::time::sleep_until(first_deadline), if !seen_message => break,
            _ = ping.tick(), if outgoing => {
                if wr.write_all(b"\r\n\r\n").await.is_err() || wr.flush().await.is_err() {
                    break;
                }
                pong_due.get_or_insert(tokio::time::Instant::now() + pong_timeout);
            }
            _ = async { match pong_due { Some(t) => tokio::time::sleep_until(t).await, None => std::future::pending().await } }, if pongs => {
                tracing::info!(transport = transport.via_token(), "SIP peer stopped answering keep-alives; closing the connection");
                break;
            }
            r = rd.read(&mut chunk) => {
                let n = match r {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                // Anything from the peer shows it is alive.
                pong_due = None;
                buf.extend_from_slice(&chunk[..n]);
                loop {
                    match parse_stream(&buf) {
                        Ok(StreamFrame::Incomplete) => {
                            if buf.len() > MAX_STREAM_BUFFER {
                                break 'conn;
                            }
                            break;
                        }
                        Ok(StreamFrame::KeepAlive { consumed }) => {
                            buf.drain(..consumed);
                            pongs |= outgoing && consumed < 4;
                            // RFC 5626 §4.4.1: a double-CRLF ping gets a single-CRLF pong.
                            if consumed >= 4 && (wr.write_all(b"\r\n").await.is_err() || wr.flush().await.is_err()) {
                                break 'conn;
                            }
                        }
                        Ok(StreamFrame::Message { consumed, .. }) => {
                            let bytes: Vec<u8> = buf.drain(..consumed).collect();
                            seen_message = true;
                            if to_driver.send(StreamIn::Message { src: peer, transport, bytes }).is_err() {
                                break 'conn;
                            }
                        }
                        Err(e) => {
                            if let Some(resp) = e.request.as_ref().and_then(|r| response_from_raw(r, e.status, None)) {
                                let _ = wr.write_all(&resp.to_bytes()).await;
                                let _ = wr.flush().await;
                            }
                            break 'conn;
                        }
                    }
                }
            }
            m = out.recv() => match m {
                Some(bytes) => {
                    // TLS buffers records: flush so each message leaves at once.
                    if wr.write_all(&bytes).await.is_err() || wr.flush().await.is_err() {
                        break;
                    }
                }
                None => break,
            },
        }
    }
    // Close cleanly (TLS close_notify) so the peer sees an orderly end.
    let _ = tokio::time::timeout(Duration::from_secs(1), wr.shutdown()).await;
    let _ = to_driver.send(StreamIn::Closed {
        src: peer,
        transport,
    });
}

/// Late-offer calls: media starts after the forwarder; pipe its events through the SIP channel.
async fn forward_media_only(
    _call: CallRef,
    mut rx: mpsc::Receiver<MediaEvent>,
    sip: mpsc::UnboundedSender<CallEvent>,
) {
    while let Some(e) = rx.recv().await {
        if let Some(e) = map_media(e) {
            if sip.send(e).is_err() {
                return;
            }
        }
    }
}
