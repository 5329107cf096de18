//! baresip calls the in-process voice endpoint over SIP/TLS (`;transport=tls`, certificate for
//! 127.0.0.1 generated at test time): the call is answered, audio is verified in both directions
//! by envelope correlation (>= 0.8, like the UDP test), a clear-text client sending garbage to
//! the TLS port mid-call is disconnected without disturbing the call, and our BYE reaches
//! baresip over the TLS connection. Skips (with a message) only if baresip is not installed.

mod sip_common;

use fd_e2e::audio::{best_envelope_correlation, Wav};
use fd_e2e::baresip::{enable_tls, write_config, Baresip, BaresipConfig, Ctrl};
use fd_e2e::ports::{free_tcp_port, free_udp_port, free_udp_range};
use fd_voice::endpoint::{CallEvent, TlsConfig};
use sip_common::*;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Writes a self-signed certificate for 127.0.0.1; returns (cert, key) paths.
fn self_signed(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("rcgen");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).expect("write cert");
    std::fs::write(&key, ck.key_pair.serialize_pem()).expect("write key");
    (cert, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_calls_over_tls_audio_both_ways_and_garbage_is_dropped() {
    if !have("baresip", "baresip-core") {
        return;
    }
    let dir = tmp_dir("tls");
    let (cert, key) = self_signed(&dir);
    let sip_port = free_udp_port().unwrap();
    let mut cfg = endpoint_config(sip_port, free_udp_range(20).unwrap());
    cfg.tls = Some(TlsConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], free_tcp_port().unwrap())),
        cert_file: cert.clone(),
        key_file: key,
    });
    let mut ep = bind(cfg).await;
    let tls_addr = ep.tls_local_addr().expect("TLS listener");

    let caller_sig = Wav {
        rate: 8000,
        samples: bursts(8000, 440.0, PATTERN_A, 30),
    };
    let ours = Wav {
        rate: 16000,
        samples: bursts(16000, 700.0, PATTERN_B, 0),
    };
    let src = dir.join("mic.wav");
    caller_sig.write(&src).expect("write mic wav");
    let bport = free_udp_port().unwrap();
    let ctrl_port = free_tcp_port().unwrap();
    let bcfg = BaresipConfig {
        sip_port: bport,
        rtp_ports: free_udp_range(10).unwrap(),
        source_wav: src,
        rec_dir: dir.join("rec"),
        account: format!("<sip:caller@127.0.0.1:{bport}>;regint=0;audio_codecs=pcmu"),
        ctrl_port: Some(ctrl_port),
        dns_port: None,
    };
    write_config(&dir.join("cfg"), &bcfg).expect("baresip config");
    enable_tls(&dir.join("cfg"), &cert).expect("baresip TLS config");
    let mut baresip = Baresip::spawn(&dir.join("cfg"), 60).expect("spawn baresip");
    baresip
        .wait_ready(Duration::from_secs(10))
        .expect("baresip ready");
    let mut ctrl = Ctrl::connect(ctrl_port, Duration::from_secs(5)).expect("ctrl_tcp");

    let uri = format!("sip:frontdesk@127.0.0.1:{};transport=tls", tls_addr.port());
    tokio::task::block_in_place(|| ctrl.command("dial", &uri, Duration::from_secs(5)))
        .expect("dial");
    let mut call = accept(&mut ep, 10).await;
    assert_eq!(call.caller.user.as_deref(), Some("caller"));
    assert!(
        established_on(tls_addr.port()) >= 1,
        "the call did not come over a TLS connection"
    );
    call.handle.play(ours.samples.clone()).expect("play");
    let (mut heard, events) = collect(&mut call, Duration::from_secs(3)).await;
    assert!(
        !events.contains(&CallEvent::RemoteHangup),
        "caller hung up early: {events:?}"
    );

    // Mid-call, a clear-text client writes garbage to the TLS port: it is disconnected.
    let mut plain = tokio::net::TcpStream::connect(tls_addr)
        .await
        .expect("connect");
    plain
        .write_all(b"INVITE sip:frontdesk@127.0.0.1 SIP/2.0\r\n\x16\x03\xff garbage\r\n\r\n")
        .await
        .expect("write garbage");
    let mut b = [0u8; 256];
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(5), plain.read(&mut b)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(_)) => continue, // a TLS alert; the close follows
            Err(_) => break false,
        }
    };
    assert!(closed, "garbage connection on the TLS port was not closed");

    // The call carries on: the rest of the caller's audio still arrives.
    let (more, events) = collect(&mut call, Duration::from_secs(3)).await;
    assert!(
        !events.contains(&CallEvent::RemoteHangup),
        "the call ended after the garbage client: {events:?}"
    );
    assert!(
        more.len() > 16000 * 2,
        "audio stopped after the garbage client"
    );
    heard.extend(more);

    // Our BYE goes over the TLS connection; baresip closes the call.
    call.handle.hangup().await;
    let closed =
        tokio::task::block_in_place(|| ctrl.wait_event(&["CALL_CLOSED"], Duration::from_secs(5)));
    assert!(closed.is_some(), "baresip saw no BYE");

    let heard = Wav {
        rate: 16000,
        samples: heard,
    };
    let reference_a = Wav {
        rate: 8000,
        samples: bursts(8000, 440.0, PATTERN_A, 0),
    };
    let (c_in, lag_in) = best_envelope_correlation(&reference_a, &heard);
    println!(
        "TLS caller->endpoint envelope_corr={c_in:.3} lag={lag_in:.2}s heard={:.2}s",
        heard.duration_secs()
    );
    assert!(
        c_in >= 0.8,
        "caller audio not received intact (corr {c_in:.3})"
    );

    drop(ctrl);
    baresip.stop();
    let rec = Baresip::rx_dump(&dir.join("rec")).expect("baresip recording");
    let rec = Wav::read(&rec).expect("read recording");
    let (c_out, lag_out) = best_envelope_correlation(&ours, &rec);
    println!(
        "TLS endpoint->caller envelope_corr={c_out:.3} lag={lag_out:.2}s rec={:.2}s",
        rec.duration_secs()
    );
    assert!(
        c_out >= 0.8,
        "our audio not heard intact by the caller (corr {c_out:.3})"
    );
    ep.shutdown().await;
}
