//! SIP over TLS on the tokio endpoint, with a rustls client and a certificate made at test time:
//! a call is set up and torn down over one TLS connection (Contact says `;transport=tls` with
//! the TLS port, Via says TLS), clear-text garbage on the TLS port is dropped without disturbing
//! the call, untrusted sources get no handshake, and bad certificate/key files are reported by
//! name.

mod common;

use common::{free_rtp_pair, SipConn};
use fd_voice::endpoint::{
    load_tls_certs, load_tls_key, CallEvent, Endpoint, EndpointConfig, TlsConfig,
};
use fd_voice::sip::message::Message;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";

struct Pki {
    dir: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    cert_pem: String,
}

fn pki(name: &str) -> Pki {
    let dir = std::env::temp_dir().join(format!("fd-voice-tls-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
    Pki {
        dir,
        cert,
        key,
        cert_pem: ck.cert.pem(),
    }
}

fn config(pki: &Pki, rtp_from: u16) -> EndpointConfig {
    EndpointConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        rtp_ports: free_rtp_pair(rtp_from),
        tls: Some(TlsConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            cert_file: pki.cert.clone(),
            key_file: pki.key.clone(),
        }),
        ..EndpointConfig::default()
    }
}

async fn tls_connect(addr: SocketAddr, cert_pem: &str) -> std::io::Result<TlsStream<TcpStream>> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap())
        .unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await?;
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
}

/// A scripted caller on one TLS connection.
struct TlsUac {
    conn: SipConn<TlsStream<TcpStream>>,
    me: SocketAddr,
    ep: SocketAddr,
    to_tag: String,
}

impl TlsUac {
    fn req(&self, method: &str, cseq: u32, branch: &str, body: &str) -> String {
        let (me, ep) = (self.me, self.ep);
        let tag = if self.to_tag.is_empty() {
            String::new()
        } else {
            format!(";tag={}", self.to_tag)
        };
        let ct = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\r\n"
        };
        format!(
            "{method} sip:frontdesk@{ep};transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS {me};branch=z9hG4bK{branch}\r\n\
From: <sip:u@{me}>;tag=u1\r\nTo: <sip:frontdesk@{ep}>{tag}\r\nCall-ID: tls-call\r\nCSeq: {cseq} {method}\r\n\
Contact: <sip:u@{me};transport=tls>\r\n{ct}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }
    async fn send(&mut self, m: String) {
        self.conn.send(&m).await;
    }
    async fn expect(&mut self, what: &str, pred: impl Fn(&Message) -> bool) -> Message {
        self.conn.next_matching(what, pred).await
    }
}

/// True if the server closes `s` (EOF or reset) within `secs`.
async fn closed_by_server(s: &mut TcpStream, secs: u64) -> bool {
    let mut b = [0u8; 256];
    let end = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        match tokio::time::timeout_at(end, s.read(&mut b)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue, // a TLS alert is fine; wait for the close
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_over_tls_survives_garbage_on_the_tls_port() {
    let pki = pki("call");
    let mut ep = Endpoint::bind(config(&pki, 42000)).await.unwrap();
    let tls_addr = ep.tls_local_addr().expect("TLS is on");
    assert_ne!(tls_addr.port(), ep.local_addr().port());

    let s = tls_connect(tls_addr, &pki.cert_pem).await.unwrap();
    let me = s.get_ref().0.local_addr().unwrap();
    let mut u = TlsUac {
        conn: SipConn::new(s),
        me,
        ep: tls_addr,
        to_tag: String::new(),
    };
    u.send(u.req("INVITE", 1, "tlsinv", SDP)).await;
    let ok = u.expect("200 OK", |m| m.status() == Some(200)).await;
    assert_eq!(
        ok.header("Contact"),
        Some(
            format!(
                "<sip:frontdesk@127.0.0.1:{};transport=tls>",
                tls_addr.port()
            )
            .as_str()
        )
    );
    u.to_tag = ok.to().unwrap().tag().unwrap().to_string();
    u.send(u.req("ACK", 1, "tlsack", "")).await;
    let mut call = tokio::time::timeout(Duration::from_secs(5), ep.accept())
        .await
        .unwrap()
        .unwrap();

    // Clear text on the TLS port: no handshake, so the endpoint closes it.
    let mut plain = TcpStream::connect(tls_addr).await.unwrap();
    plain
        .write_all(b"OPTIONS sip:x SIP/2.0\r\n\r\n\x00\x01garbage")
        .await
        .unwrap();
    assert!(
        closed_by_server(&mut plain, 5).await,
        "garbage connection left open"
    );
    // A client that connects and never speaks does not block others either (handshake timeout).
    let _silent = TcpStream::connect(tls_addr).await.unwrap();

    // The call is unaffected: an in-dialog OPTIONS is answered on the same TLS connection.
    u.send(u.req("OPTIONS", 2, "tlsopt", "")).await;
    u.expect("200 to OPTIONS", |m| {
        m.status() == Some(200) && m.cseq().is_some_and(|c| c.method.as_str() == "OPTIONS")
    })
    .await;

    // Our hang-up: BYE over TLS with a TLS Via for our TLS port.
    call.handle.hangup().await;
    let bye = u
        .expect("BYE", |m| m.method().map(|m| m.as_str()) == Some("BYE"))
        .await;
    let via = bye.header("Via").unwrap();
    assert!(
        via.starts_with(&format!("SIP/2.0/TLS 127.0.0.1:{};", tls_addr.port())),
        "{via}"
    );
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_secs(2), call.events.recv()).await {
        assert_ne!(e, CallEvent::RemoteHangup);
    }
    ep.shutdown().await;
    let _ = std::fs::remove_dir_all(&pki.dir);
}

#[tokio::test]
async fn untrusted_sources_get_no_tls_handshake() {
    let pki = pki("untrusted");
    let mut cfg = config(&pki, 42100);
    cfg.trusted_sources = vec!["10.0.0.0/8".parse().unwrap()];
    let ep = Endpoint::bind(cfg).await.unwrap();
    let err = tls_connect(ep.tls_local_addr().unwrap(), &pki.cert_pem).await;
    assert!(err.is_err(), "handshake completed for an untrusted source");
    ep.shutdown().await;
    let _ = std::fs::remove_dir_all(&pki.dir);
}

fn err_text<T: std::fmt::Debug>(r: Result<T, fd_voice::VoiceError>) -> String {
    r.expect_err("should fail").to_string()
}

#[tokio::test]
async fn bad_certificate_and_key_files_are_named() {
    let pki = pki("bad");
    let missing = pki.dir.join("nope.pem");
    let e = err_text(load_tls_certs(&missing));
    assert!(e.contains("nope.pem") && e.contains("cannot read"), "{e}");
    // The key file is not a certificate, and the certificate is not a key.
    let e = err_text(load_tls_certs(&pki.key));
    assert!(
        e.contains("key.pem") && e.contains("no PEM certificate"),
        "{e}"
    );
    let e = err_text(load_tls_key(&pki.cert));
    assert!(e.contains("cert.pem") && e.contains("private key"), "{e}");
    // A key that belongs to another certificate.
    let other = pki_other_key(&pki.dir);
    let mut cfg = config(&pki, 42200);
    if let Some(t) = cfg.tls.as_mut() {
        t.key_file = other;
    }
    let e = err_text(Endpoint::bind(cfg).await.map(|_| ()));
    assert!(e.contains("does not fit the certificate"), "{e}");
    let _ = std::fs::remove_dir_all(&pki.dir);
}

fn pki_other_key(dir: &Path) -> PathBuf {
    let k = rcgen::KeyPair::generate().unwrap();
    let p = dir.join("other-key.pem");
    std::fs::write(&p, k.serialize_pem()).unwrap();
    p
}
