//! Registration through a real registrar: kamailio (tests/sip/kamailio.cfg) challenges our
//! REGISTER with digest (SHA-256 and MD5, qop=auth); once registered, a baresip call routed through
//! kamailio reaches us, carries audio, and our BYE goes back along the record-routed path. The
//! same holds when we register over TLS (kamailio's tls module, certificate generated at test
//! time): kamailio sends the call back over our registration's TLS connection.
//! Skips only if kamailio / baresip / kamailio's tls module are not installed
//! (`apt-get install kamailio baresip-core kamailio-tls-modules`).

mod sip_common;

use fd_e2e::audio::Wav;
use fd_e2e::baresip::{write_config, Baresip, BaresipConfig, Ctrl};
use fd_e2e::ports::{free_tcp_port, free_udp_port, free_udp_range};
use fd_e2e::proc::ChildGuard;
use fd_voice::endpoint::{Endpoint, RegistrationStatus};
use fd_voice::sip::ua::{RegistrationConfig, Transport};
use sip_common::*;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct horse";

fn kamailio_cfg() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/sip/kamailio.cfg")).unwrap()
}

/// True if kamailio's tls module is installed in the config's `mpath` (kamailio-tls-modules).
fn have_kamailio_tls() -> bool {
    let cfg = kamailio_cfg();
    let mpath = cfg
        .lines()
        .find_map(|l| l.strip_prefix("mpath=\""))
        .map(|l| l.trim_end_matches('"'))
        .expect("mpath in kamailio.cfg");
    let found = Path::new(mpath).join("tls.so").is_file();
    if !found {
        eprintln!(
            "SKIP: kamailio's tls module not installed (apt-get install kamailio-tls-modules)"
        );
    }
    found
}

/// A running kamailio (stopped on drop).
struct Kamailio {
    _guard: ChildGuard,
    /// UDP port: callers and UDP registrations.
    port: u16,
    /// TLS port, if started with TLS.
    tls_port: Option<u16>,
    /// Holds kamailio.log and, with TLS, its certificate `cert.pem`.
    dir: PathBuf,
}

impl Kamailio {
    /// The first line of kamailio's log containing `needle` (the config logs each request and
    /// where it routes it), waiting up to 2 s for it to be written.
    fn log_line(&self, needle: &str) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let log = std::fs::read_to_string(self.dir.join("kamailio.log")).unwrap_or_default();
            if let Some(l) = log.lines().find(|l| l.contains(needle)) {
                return Some(l.to_string());
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Starts kamailio on free ports (UDP, plus TLS with a fresh self-signed certificate for
/// 127.0.0.1 if `tls`) and waits until it answers OPTIONS.
fn kamailio(alg: &str, tls: bool) -> Kamailio {
    let dir = tmp_dir(&format!("kamailio-{alg}{}", if tls { "-tls" } else { "" }));
    let port = free_udp_port().unwrap();
    let mut cfg = kamailio_cfg()
        .replace("@PORT@", &port.to_string())
        .replace("@ALG@", alg)
        .replace("@PASSWORD@", PASSWORD);
    let mut cmd = Command::new("kamailio");
    let tls_port = if tls {
        let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("rcgen");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, ck.cert.pem()).unwrap();
        std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
        // Clients present no certificate; kamailio never connects out (calls reuse the client's
        // connection), so its client side needs no CA either.
        let tls_cfg = format!(
            "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\nprivate_key = {}\ncertificate = {}\n\n[client:default]\nverify_certificate = no\nrequire_certificate = no\n",
            key.display(),
            cert.display()
        );
        std::fs::write(dir.join("tls.cfg"), tls_cfg).unwrap();
        let tport = free_tcp_port().unwrap();
        cfg = cfg
            .replace("@TLS_PORT@", &tport.to_string())
            .replace("@TLS_CFG@", &dir.join("tls.cfg").display().to_string());
        cmd.args(["-A", "WITH_TLS"]);
        Some(tport)
    } else {
        None
    };
    let path = dir.join("kamailio.cfg");
    std::fs::write(&path, cfg).unwrap();
    cmd.arg("-f")
        .arg(&path)
        .args(["-DD", "-E", "-Y"])
        .arg(&dir)
        .args(["-m", "64", "-M", "8"]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("kamailio.log")).unwrap());
    let guard = ChildGuard::spawn(cmd, "kamailio", "kamailio").expect("start kamailio");
    // Ready when it answers an OPTIONS (all listeners are open before the workers start).
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let me = probe.local_addr().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let opt = format!(
            "OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKprobe{}\r\nFrom: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:127.0.0.1:{port}>\r\nCall-ID: probe\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 5\r\nContent-Length: 0\r\n\r\n",
            Instant::now().elapsed().as_nanos()
        );
        let _ = probe.send_to(opt.as_bytes(), ("127.0.0.1", port));
        let mut buf = [0u8; 2048];
        if let Ok((n, _)) = probe.recv_from(&mut buf) {
            if String::from_utf8_lossy(&buf[..n]).starts_with("SIP/2.0 200") {
                return Kamailio {
                    _guard: guard,
                    port,
                    tls_port,
                    dir,
                };
            }
        }
        assert!(
            Instant::now() < deadline,
            "kamailio did not start (see {})",
            dir.display()
        );
    }
}

/// Waits for the first registration outcome (anything but Pending).
async fn registration_outcome(ep: &Endpoint) -> RegistrationStatus {
    let mut st = ep.registration();
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let s = *st.borrow_and_update();
            if s != RegistrationStatus::Pending {
                return s;
            }
            if st.changed().await.is_err() {
                return s;
            }
        }
    })
    .await
    .expect("registration outcome within 10 s")
}

/// Starts a baresip caller (PCMU, tone bursts as its microphone) with its control port connected.
fn baresip_caller(dir: &Path) -> (Baresip, Ctrl) {
    let mic = dir.join("mic.wav");
    Wav {
        rate: 8000,
        samples: bursts(8000, 440.0, PATTERN_A, 30),
    }
    .write(&mic)
    .unwrap();
    let (bport, ctrl_port) = (free_udp_port().unwrap(), free_tcp_port().unwrap());
    let bcfg = BaresipConfig {
        sip_port: bport,
        rtp_ports: free_udp_range(10).unwrap(),
        source_wav: mic,
        rec_dir: dir.join("rec"),
        account: format!("<sip:caller@127.0.0.1:{bport}>;regint=0;audio_codecs=pcmu"),
        ctrl_port: Some(ctrl_port),
        dns_port: None,
    };
    write_config(&dir.join("cfg"), &bcfg).unwrap();
    let mut baresip = Baresip::spawn(&dir.join("cfg"), 40).unwrap();
    baresip.wait_ready(Duration::from_secs(10)).unwrap();
    let ctrl = Ctrl::connect(ctrl_port, Duration::from_secs(5)).unwrap();
    (baresip, ctrl)
}

async fn registered_endpoint(kport: u16, password: &str) -> (Endpoint, RegistrationStatus) {
    let mut cfg = endpoint_config(free_udp_port().unwrap(), free_udp_range(20).unwrap());
    cfg.registration = Some(RegistrationConfig {
        registrar: ([127, 0, 0, 1], kport).into(),
        domain: format!("127.0.0.1:{kport}"),
        user: "frontdesk".into(),
        auth_user: "frontdesk".into(),
        password: password.into(),
        expires: 60,
    });
    let ep = bind(cfg).await;
    let outcome = registration_outcome(&ep).await;
    (ep, outcome)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_sha256_then_call_through_kamailio() {
    if !have("kamailio", "kamailio") || !have("baresip", "baresip-core") {
        return;
    }
    let k = kamailio("SHA-256", false);
    let (mut ep, st) = registered_endpoint(k.port, PASSWORD).await;
    assert_eq!(st, RegistrationStatus::Registered { expires: 60 });

    let (mut baresip, mut ctrl) = baresip_caller(&tmp_dir("kamailio-call"));
    let uri = format!("sip:frontdesk@127.0.0.1:{}", k.port);
    tokio::task::block_in_place(|| ctrl.command("dial", &uri, Duration::from_secs(5)))
        .expect("dial");

    let mut call = accept(&mut ep, 10).await;
    let (heard, _) = collect(&mut call, Duration::from_secs(2)).await;
    assert!(
        heard.len() > 16000,
        "audio flows on a proxied call ({} samples)",
        heard.len()
    );
    call.handle.hangup().await;
    let closed =
        tokio::task::block_in_place(|| ctrl.wait_event(&["CALL_CLOSED"], Duration::from_secs(5)));
    assert!(
        closed.is_some(),
        "our BYE did not reach baresip through kamailio"
    );
    drop(ctrl);
    baresip.stop();
    ep.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_md5_and_wrong_password() {
    if !have("kamailio", "kamailio") {
        return;
    }
    let k = kamailio("MD5", false);
    let (ep, st) = registered_endpoint(k.port, PASSWORD).await;
    assert_eq!(st, RegistrationStatus::Registered { expires: 60 });
    ep.shutdown().await;
    let (ep, st) = registered_endpoint(k.port, "wrong").await;
    assert_eq!(st, RegistrationStatus::Failed { status: 401 });
    ep.shutdown().await;
}

/// Extension 250 registers over TLS (verifying kamailio's certificate) and has no TLS listener of
/// its own, so kamailio's INVITE can only come back over the registration's connection. A baresip
/// caller on UDP dials 250 through kamailio: we get the call, the caller gets our 200 OK through
/// kamailio, audio flows, and our BYE reaches the caller through kamailio (record-routed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_over_tls_then_call_extension_250_through_kamailio() {
    if !have("kamailio", "kamailio") || !have("baresip", "baresip-core") || !have_kamailio_tls() {
        return;
    }
    let k = kamailio("MD5", true);
    let tport = k.tls_port.expect("kamailio TLS port");
    let sip_port = free_udp_port().unwrap();
    let mut cfg = endpoint_config(sip_port, free_udp_range(20).unwrap());
    cfg.registration = Some(RegistrationConfig {
        registrar: ([127, 0, 0, 1], tport).into(),
        domain: format!("127.0.0.1:{tport}"),
        user: "250".into(),
        auth_user: "250".into(),
        password: PASSWORD.into(),
        expires: 60,
    });
    cfg.registrar_transport = Transport::Tls;
    cfg.tls_ca_file = Some(k.dir.join("cert.pem"));
    let mut ep = bind(cfg).await;
    assert_eq!(ep.tls_local_addr(), None, "test expects no TLS listener");
    assert_eq!(
        registration_outcome(&ep).await,
        RegistrationStatus::Registered { expires: 60 },
        "REGISTER over TLS failed (see {})",
        k.dir.display()
    );
    assert!(
        established_on(tport) >= 1,
        "registered, but no TLS connection to kamailio is open"
    );

    let (mut baresip, mut ctrl) = baresip_caller(&tmp_dir("kamailio-tls-call"));
    let uri = format!("sip:250@127.0.0.1:{}", k.port);
    tokio::task::block_in_place(|| ctrl.command("dial", &uri, Duration::from_secs(5)))
        .expect("dial");

    let mut call = accept(&mut ep, 10).await;
    assert_eq!(call.caller.user.as_deref(), Some("caller"));
    // kamailio looked up a TLS contact: with no listener of ours, the INVITE came over the
    // registration's connection.
    let routed = tokio::task::block_in_place(|| k.log_line("routing to sip:"))
        .expect("kamailio logged no routing for extension 250");
    assert!(
        routed.contains(&format!("@127.0.0.1:{sip_port};transport=tls")),
        "registered contact is not our TLS contact: {routed}"
    );
    // Our 200 OK went back over that connection and kamailio relayed it to the caller.
    let established = tokio::task::block_in_place(|| {
        ctrl.wait_event(&["CALL_ESTABLISHED"], Duration::from_secs(5))
    });
    assert!(
        established.is_some(),
        "the caller never got our 200 OK through kamailio: {:?}",
        ctrl.events()
    );

    let (heard, events) = collect(&mut call, Duration::from_secs(2)).await;
    assert!(
        heard.len() > 16000,
        "audio flows on a call routed over TLS ({} samples, events {events:?})",
        heard.len()
    );
    call.handle.hangup().await;
    let closed =
        tokio::task::block_in_place(|| ctrl.wait_event(&["CALL_CLOSED"], Duration::from_secs(5)));
    assert!(
        closed.is_some(),
        "our BYE did not reach baresip through kamailio"
    );
    // The BYE followed the record-routed path: kamailio saw it (not just the caller).
    let bye = tokio::task::block_in_place(|| k.log_line("BYE sip:caller"));
    assert!(bye.is_some(), "our BYE bypassed kamailio's record-route");
    drop(ctrl);
    baresip.stop();
    ep.shutdown().await;
}
