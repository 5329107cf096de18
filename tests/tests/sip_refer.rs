//! Blind transfer with REFER: baresip A calls the endpoint, which transfers it to baresip B
//! (auto-answer). A follows the REFER, reports progress with NOTIFY sipfrag, and the endpoint
//! surfaces `TransferResult { ok: true, status: 200 }`. The target is given as a bare extension
//! and expanded with the configured Refer-To template.
//! Skips only if baresip is not installed (`apt-get install baresip-core`).

mod sip_common;

use fd_e2e::audio::Wav;
use fd_e2e::baresip::{write_config, Baresip, BaresipConfig, Ctrl};
use fd_e2e::ports::{free_tcp_port, free_udp_port, free_udp_range};
use fd_voice::endpoint::CallEvent;
use sip_common::*;
use std::time::Duration;

fn baresip(dir: &std::path::Path, user: &str, extra: &str) -> (Baresip, Ctrl, u16) {
    let mic = dir.join("mic.wav");
    Wav {
        rate: 8000,
        samples: bursts(8000, 440.0, PATTERN_A, 30),
    }
    .write(&mic)
    .unwrap();
    let (port, ctrl_port) = (free_udp_port().unwrap(), free_tcp_port().unwrap());
    let cfg = BaresipConfig {
        sip_port: port,
        rtp_ports: free_udp_range(10).unwrap(),
        source_wav: mic,
        rec_dir: dir.join("rec"),
        account: format!("<sip:{user}@127.0.0.1:{port}>;regint=0;audio_codecs=pcmu{extra}"),
        ctrl_port: Some(ctrl_port),
        dns_port: None,
    };
    write_config(&dir.join("cfg"), &cfg).unwrap();
    let mut b = Baresip::spawn(&dir.join("cfg"), 40).unwrap();
    b.wait_ready(Duration::from_secs(10)).unwrap();
    let ctrl = Ctrl::connect(ctrl_port, Duration::from_secs(5)).unwrap();
    (b, ctrl, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refer_blind_transfer_to_second_baresip() {
    if !have("baresip", "baresip-core") {
        return;
    }
    let (mut target, target_ctrl, target_port) =
        baresip(&tmp_dir("refer-b"), "desk", ";answermode=auto");
    let (mut caller, mut caller_ctrl, _) = baresip(&tmp_dir("refer-a"), "caller", "");
    let sip_port = free_udp_port().unwrap();
    let mut cfg = endpoint_config(sip_port, free_udp_range(20).unwrap());
    cfg.refer_uri_template = format!("sip:{{target}}@127.0.0.1:{target_port}");
    let mut ep = bind(cfg).await;

    let uri = format!("sip:frontdesk@127.0.0.1:{sip_port}");
    tokio::task::block_in_place(|| caller_ctrl.command("dial", &uri, Duration::from_secs(5)))
        .expect("dial");
    let mut call = accept(&mut ep, 10).await;
    // Let the call settle (ACK in) before transferring.
    let _ = collect(&mut call, Duration::from_millis(500)).await;
    call.handle.transfer("desk").await.expect("REFER sent");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let result = loop {
        match tokio::time::timeout_at(deadline, call.events.recv()).await {
            Ok(Some(CallEvent::TransferResult { ok, status })) => break Some((ok, status)),
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => break None,
        }
    };
    assert_eq!(result, Some((true, 200)), "transfer outcome");
    let answered = tokio::task::block_in_place(|| {
        target_ctrl.wait_event(&["CALL_ESTABLISHED"], Duration::from_secs(5))
    });
    assert!(answered.is_some(), "the transfer target never got the call");
    call.handle.hangup().await;
    drop((caller_ctrl, target_ctrl));
    caller.stop();
    target.stop();
    ep.shutdown().await;
}
