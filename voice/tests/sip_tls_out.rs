//! Outgoing SIP over TLS on the tokio endpoint against a tiny in-test TLS registrar (rustls
//! server, rcgen certificate given to the endpoint as its CA file):
//! - REGISTER goes over a TLS connection the endpoint opens, is challenged (401) and accepted;
//! - the PBX then sends an INVITE back over that same connection, answered on it;
//! - when the PBX drops the connection, the endpoint registers again and its BYE reaches the
//!   PBX's Contact over a new TLS connection (never in clear);
//! - a registrar whose certificate does not match fails the registration (503) at once.

mod common;

use common::{free_rtp_pair, SipConn};
use fd_voice::endpoint::{Endpoint, EndpointConfig, RegistrationStatus};
use fd_voice::sip::digest::{self, Challenge};
use fd_voice::sip::message::{parse_stream, Message, StreamFrame};
use fd_voice::sip::ua::{RegistrationConfig, Transport};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
const CHALLENGE: &str = "Digest realm=\"pbx.test\", nonce=\"n0nce\", qop=\"auth\", algorithm=MD5";

struct Registrar {
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    addr: SocketAddr,
    dir: PathBuf,
    /// The registrar's certificate: the endpoint's CA file.
    ca_file: PathBuf,
}

/// A TLS listener whose certificate names `san` (127.0.0.1 to match what the endpoint dials).
async fn registrar(name: &str, san: &str) -> Registrar {
    let dir = std::env::temp_dir().join(format!("fd-voice-tlsout-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ck = rcgen::generate_simple_self_signed(vec![san.to_string()]).unwrap();
    let ca_file = dir.join("pbx.pem");
    std::fs::write(&ca_file, ck.cert.pem()).unwrap();
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(ck.key_pair.serialize_der().into());
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![ck.cert.der().clone()], key)
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    Registrar {
        listener,
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(cfg)),
        addr,
        dir,
        ca_file,
    }
}

impl Registrar {
    async fn accept(&self) -> Conn<tokio_rustls::server::TlsStream<tokio::net::TcpStream>> {
        let (tcp, _) = tokio::time::timeout(Duration::from_secs(10), self.listener.accept())
            .await
            .expect("the endpoint did not connect")
            .unwrap();
        let s = self.acceptor.accept(tcp).await.expect("TLS handshake");
        SipConn::new(s)
    }
}

type Conn<S> = SipConn<S>;

impl<S: AsyncRead + AsyncWrite + Unpin> SipConn<S> {
    /// Waits for a CRLFCRLF keep-alive ping (messages before it are a test failure).
    async fn ping(&mut self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            match parse_stream(&self.buf) {
                Ok(StreamFrame::KeepAlive { consumed }) => {
                    self.buf.drain(..consumed);
                    if consumed >= 4 {
                        return;
                    }
                    continue;
                }
                Ok(StreamFrame::Incomplete) => {}
                other => panic!("expected a keep-alive ping, got {other:?}"),
            }
            let mut chunk = [0u8; 256];
            let n = tokio::time::timeout_at(deadline, self.s.read(&mut chunk))
                .await
                .expect("no keep-alive ping")
                .unwrap();
            assert!(n > 0, "connection closed while waiting for a ping");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// True once the peer closes the connection (within 10 s), ignoring further pings.
    async fn closed_by_peer(&mut self) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut chunk = [0u8; 256];
        loop {
            match tokio::time::timeout_at(deadline, self.s.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }
}

/// A response echoing the request's dialog headers (To gets a tag).
fn reply(req: &Message, status: u16, extra: &str) -> String {
    let to = req.header("To").unwrap();
    let to = if to.contains("tag=") {
        to.to_string()
    } else {
        format!("{to};tag=pbx")
    };
    format!(
        "SIP/2.0 {status} X\r\nVia: {}\r\nFrom: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\n{extra}Content-Length: 0\r\n\r\n",
        req.header("Via").unwrap(),
        req.header("From").unwrap(),
        req.call_id().unwrap(),
        req.header("CSeq").unwrap()
    )
}

fn method(m: &Message) -> &str {
    m.method().map(|m| m.as_str()).unwrap_or("")
}

fn config(reg: &Registrar) -> EndpointConfig {
    EndpointConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        rtp_ports: free_rtp_pair(43000),
        registration: Some(RegistrationConfig {
            registrar: reg.addr,
            domain: "127.0.0.1".into(),
            user: "250".into(),
            auth_user: "250".into(),
            password: "pw".into(),
            expires: 300,
        }),
        registrar_transport: Transport::Tls,
        tls_ca_file: Some(reg.ca_file.clone()),
        ..EndpointConfig::default()
    }
}

async fn wait_status(
    ep: &Endpoint,
    want: impl Fn(RegistrationStatus) -> bool,
) -> RegistrationStatus {
    let mut st = ep.registration();
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let s = *st.borrow_and_update();
            if want(s) {
                return s;
            }
            st.changed().await.unwrap();
        }
    })
    .await
    .expect("registration status did not change")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_over_tls_and_takes_calls_on_that_connection() {
    let reg = registrar("ok", "127.0.0.1").await;
    let mut ep = Endpoint::bind(config(&reg)).await.unwrap();
    let sip_port = ep.local_addr().port();

    // REGISTER over TLS, challenged, then accepted.
    let mut c = reg.accept().await;
    let r1 = c.next("REGISTER").await;
    assert_eq!(method(&r1), "REGISTER");
    let via = r1.header("Via").unwrap();
    assert!(via.starts_with("SIP/2.0/TLS 127.0.0.1:"), "{via}");
    assert_eq!(
        r1.header("Contact").unwrap(),
        format!("<sip:frontdesk@127.0.0.1:{sip_port};transport=tls>")
    );
    c.send(&reply(
        &r1,
        401,
        &format!("WWW-Authenticate: {CHALLENGE}\r\n"),
    ))
    .await;
    let r2 = c.next("authenticated REGISTER").await;
    let auth = r2.header("Authorization").expect("credentials");
    let field = |name: &str| {
        let i = auth.find(&format!("{name}=")).unwrap() + name.len() + 1;
        let rest = auth[i..].trim_start_matches('"');
        rest[..rest.find(['"', ',']).unwrap_or(rest.len())].to_string()
    };
    let ch = Challenge::parse(CHALLENGE).unwrap();
    let want = digest::response(
        &ch,
        "250",
        "pw",
        "REGISTER",
        "sip:127.0.0.1",
        &field("cnonce"),
        1,
    );
    assert_eq!(
        field("response"),
        want,
        "digest over TLS uses the same credentials"
    );
    c.send(&reply(&r2, 200, "Expires: 300\r\n")).await;
    assert_eq!(
        wait_status(&ep, |s| s != RegistrationStatus::Pending).await,
        RegistrationStatus::Registered { expires: 300 }
    );

    // The PBX sends a call back over the registration's connection (RFC 5626-style reuse).
    let pbx = reg.addr;
    let invite = format!(
        "INVITE sip:frontdesk@127.0.0.1:{sip_port};transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS {pbx};branch=z9hG4bKtlsoutinv\r\n\
From: <sip:100@{pbx}>;tag=pbx1\r\nTo: <sip:frontdesk@127.0.0.1>\r\nCall-ID: tls-out-call\r\nCSeq: 1 INVITE\r\n\
Contact: <sip:pbx@{pbx};transport=tls>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
        SDP.len()
    );
    c.send(&invite).await;
    let ok = loop {
        let m = c.next("200 to INVITE").await;
        if m.status() == Some(200) {
            break m;
        }
    };
    assert_eq!(
        ok.header("Contact").unwrap(),
        format!("<sip:frontdesk@127.0.0.1:{sip_port};transport=tls>")
    );
    let to = ok.header("To").unwrap().to_string();
    c.send(&format!(
        "ACK sip:frontdesk@127.0.0.1:{sip_port};transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS {pbx};branch=z9hG4bKtlsoutack\r\n\
From: <sip:100@{pbx}>;tag=pbx1\r\nTo: {to}\r\nCall-ID: tls-out-call\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    ))
    .await;
    let call = tokio::time::timeout(Duration::from_secs(5), ep.accept())
        .await
        .expect("call handed to the application")
        .unwrap();

    // The PBX drops the connection. The endpoint opens a new one and registers again, so the
    // PBX can still reach it.
    let _ = c.s.shutdown().await;
    drop(c);
    let mut c2 = reg.accept().await;
    let r3 = c2.next("REGISTER after the connection loss").await;
    assert_eq!(method(&r3), "REGISTER");
    c2.send(&reply(&r3, 200, "Expires: 300\r\n")).await;

    // Our hang-up: the BYE reaches the PBX's Contact over TLS.
    call.handle.hangup().await;
    let bye = c2.next("BYE").await;
    assert_eq!(method(&bye), "BYE");
    assert_eq!(bye.call_id(), Some("tls-out-call"));
    assert!(bye.header("Via").unwrap().starts_with("SIP/2.0/TLS "));
    c2.send(&reply(&bye, 200, "")).await;

    ep.shutdown().await;
    let _ = std::fs::remove_dir_all(&reg.dir);
}

#[tokio::test]
async fn a_registrar_certificate_for_another_name_fails_registration() {
    let reg = registrar("badname", "pbx.example.invalid").await;
    let ep = Endpoint::bind(config(&reg)).await.unwrap();
    // The handshake fails on our side; the registrar just sees the attempt.
    let accept = async {
        loop {
            let Ok((tcp, _)) = reg.listener.accept().await else {
                return;
            };
            let _ = reg.acceptor.accept(tcp).await;
        }
    };
    tokio::select! {
        s = wait_status(&ep, |s| s != RegistrationStatus::Pending) => {
            assert_eq!(s, RegistrationStatus::Failed { status: 503 });
        }
        _ = accept => unreachable!(),
    }
    ep.shutdown().await;
    let _ = std::fs::remove_dir_all(&reg.dir);
}

#[tokio::test]
async fn a_bad_ca_file_stops_start_up_and_is_named() {
    let reg = registrar("badca", "127.0.0.1").await;
    let mut cfg = config(&reg);
    let bogus = reg.dir.join("not-a-ca.pem");
    std::fs::write(&bogus, "hello").unwrap();
    cfg.tls_ca_file = Some(bogus);
    let e = Endpoint::bind(cfg)
        .await
        .err()
        .expect("must fail")
        .to_string();
    assert!(e.contains("not-a-ca.pem") && e.contains("CA"), "{e}");
    let _ = std::fs::remove_dir_all(&reg.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalives_detect_a_dead_registrar_connection_and_registration_recovers() {
    let reg = registrar("keepalive", "127.0.0.1").await;
    let mut cfg = config(&reg);
    cfg.stream_keepalive = Duration::from_millis(300);
    let ep = Endpoint::bind(cfg).await.unwrap();
    let mut c = reg.accept().await;
    let r1 = c.next("REGISTER").await;
    c.send(&reply(&r1, 200, "Expires: 300\r\n")).await;
    wait_status(&ep, |s| matches!(s, RegistrationStatus::Registered { .. })).await;

    // RFC 5626 §4.4.1: double-CRLF pings; this registrar answers the first one only, then
    // goes silent the way a crashed PBX does (no FIN).
    c.ping().await;
    c.send("\r\n").await;
    c.ping().await;
    assert!(
        c.closed_by_peer().await,
        "a silent peer's connection is closed"
    );
    // The binding may now be unreachable: the endpoint registers again on a new connection.
    let mut c2 = reg.accept().await;
    let r2 = c2.next("REGISTER after the dead connection").await;
    assert_eq!(method(&r2), "REGISTER");
    assert_eq!(r2.call_id(), r1.call_id(), "a refresh of the same binding");
    ep.shutdown().await;
    let _ = std::fs::remove_dir_all(&reg.dir);
}
