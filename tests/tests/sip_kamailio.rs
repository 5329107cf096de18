//! Registration through a real registrar: kamailio (tests/sip/kamailio.cfg) challenges our
//! REGISTER with digest (SHA-256 and MD5, qop=auth); once registered, a baresip call routed through
//! kamailio reaches us, carries audio, and our BYE goes back along the record-routed path.
//! Skips only if kamailio / baresip are not installed (`apt-get install kamailio baresip-core`).

mod sip_common;

use fd_e2e::audio::Wav;
use fd_e2e::baresip::{write_config, Baresip, BaresipConfig, Ctrl};
use fd_e2e::ports::{free_tcp_port, free_udp_port, free_udp_range};
use fd_e2e::proc::ChildGuard;
use fd_voice::endpoint::{Endpoint, RegistrationStatus};
use fd_voice::sip::ua::RegistrationConfig;
use sip_common::*;
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct horse";

/// Starts kamailio on a free port and waits until it answers OPTIONS.
fn kamailio(alg: &str) -> (ChildGuard, u16) {
    let dir = tmp_dir(&format!("kamailio-{alg}"));
    let port = free_udp_port().unwrap();
    let cfg = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/sip/kamailio.cfg"))
        .unwrap()
        .replace("@PORT@", &port.to_string())
        .replace("@ALG@", alg)
        .replace("@PASSWORD@", PASSWORD);
    let path = dir.join("kamailio.cfg");
    std::fs::write(&path, cfg).unwrap();
    let mut cmd = Command::new("kamailio");
    cmd.arg("-f")
        .arg(&path)
        .args(["-DD", "-E", "-Y"])
        .arg(&dir)
        .args(["-m", "64", "-M", "8"]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("kamailio.log")).unwrap());
    let guard = ChildGuard::spawn(cmd, "kamailio", "kamailio").expect("start kamailio");
    // Ready when it answers an OPTIONS.
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
                return (guard, port);
            }
        }
        assert!(
            Instant::now() < deadline,
            "kamailio did not start (see {})",
            dir.display()
        );
    }
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
    let mut st = ep.registration();
    let outcome = tokio::time::timeout(Duration::from_secs(10), async {
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
    .expect("registration outcome within 10 s");
    (ep, outcome)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_sha256_then_call_through_kamailio() {
    if !have("kamailio", "kamailio") || !have("baresip", "baresip-core") {
        return;
    }
    let (_k, kport) = kamailio("SHA-256");
    let (mut ep, st) = registered_endpoint(kport, PASSWORD).await;
    assert_eq!(st, RegistrationStatus::Registered { expires: 60 });

    let dir = tmp_dir("kamailio-call");
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
    let mut ctrl = Ctrl::connect(ctrl_port, Duration::from_secs(5)).unwrap();
    let uri = format!("sip:frontdesk@127.0.0.1:{kport}");
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
    let (_k, kport) = kamailio("MD5");
    let (ep, st) = registered_endpoint(kport, PASSWORD).await;
    assert_eq!(st, RegistrationStatus::Registered { expires: 60 });
    ep.shutdown().await;
    let (ep, st) = registered_endpoint(kport, "wrong").await;
    assert_eq!(st, RegistrationStatus::Failed { status: 401 });
    ep.shutdown().await;
}
