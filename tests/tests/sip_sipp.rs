//! SIPp scenarios (tests/sip/*.xml) against the in-process voice endpoint: basic call with RTP
//! echo over UDP and TCP, CANCEL during ringing (487), unsupported codec (488), re-INVITE
//! hold/unhold, SIP INFO DTMF, a silent caller (media timeout → our BYE); plus sipsak OPTIONS.
//! Skips only if sipp / sipsak are not installed (`apt-get install sip-tester sipsak`).

mod sip_common;

use fd_e2e::ports::{free_udp_port, free_udp_range};
use fd_voice::endpoint::{CallEvent, Endpoint};
use sip_common::*;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::sync::mpsc;

fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("sip")
        .join(name)
}

/// Answers every call, plays a tone, and reports each call's non-audio events and how much audio
/// it heard when the call ends.
fn serve(mut ep: Endpoint) -> mpsc::UnboundedReceiver<(usize, Vec<CallEvent>)> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(mut call) = ep.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let _ = call.handle.play(bursts(16000, 500.0, PATTERN_B, 0));
                let (audio, events) = collect(&mut call, Duration::from_secs(30)).await;
                let _ = tx.send((audio.len(), events));
            });
        }
    });
    rx
}

/// Runs one SIPp scenario to completion; returns (success, output).
async fn sipp(name: &str, ep_port: u16, extra: &[&str]) -> (bool, String) {
    let dir = tmp_dir(&format!("sipp-{name}"));
    let port = free_udp_port().unwrap();
    let media = free_udp_range(4).unwrap().0;
    let mut cmd = Command::new("sipp");
    cmd.current_dir(&dir)
        .arg(format!("127.0.0.1:{ep_port}"))
        .args(["-sf"])
        .arg(scenario(name))
        .args([
            "-s",
            "frontdesk",
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .args(["-mi", "127.0.0.1", "-mp", &media.to_string()])
        .args([
            "-m",
            "1",
            "-l",
            "1",
            "-timeout",
            "30s",
            "-timeout_error",
            "-trace_err",
            "-nostdin",
        ])
        .args(extra)
        .stdin(Stdio::null());
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .expect("run sipp");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        if e.path().to_string_lossy().ends_with("_errors.log") {
            text.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
        }
    }
    (out.status.success(), text)
}

async fn endpoint(
    answer_delay: Duration,
) -> (u16, mpsc::UnboundedReceiver<(usize, Vec<CallEvent>)>) {
    let port = free_udp_port().unwrap();
    let mut cfg = endpoint_config(port, free_udp_range(20).unwrap());
    cfg.answer_delay = answer_delay;
    (port, serve(bind(cfg).await))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_basic_call_with_rtp_echo() {
    if !have("sipp", "sip-tester") {
        return;
    }
    let (port, mut calls) = endpoint(Duration::ZERO).await;
    let (ok, out) = sipp("uac_basic.xml", port, &["-rtp_echo"]).await;
    assert!(ok, "SIPp basic call failed:\n{out}");
    let (heard, events) = tokio::time::timeout(Duration::from_secs(5), calls.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(events, vec![CallEvent::RemoteHangup]);
    // SIPp echoes our RTP back: ~3 s of call must have produced audio events.
    assert!(heard >= 16000 * 2, "only {heard} samples heard");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_basic_call_over_tcp() {
    if !have("sipp", "sip-tester") {
        return;
    }
    let (port, mut calls) = endpoint(Duration::ZERO).await;
    let (ok, out) = sipp("uac_basic.xml", port, &["-t", "t1", "-rtp_echo"]).await;
    assert!(ok, "SIPp basic call over TCP failed:\n{out}");
    let (heard, events) = tokio::time::timeout(Duration::from_secs(5), calls.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(events, vec![CallEvent::RemoteHangup]);
    assert!(heard >= 16000 * 2, "only {heard} samples heard");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_cancel_while_ringing_gets_487() {
    if !have("sipp", "sip-tester") {
        return;
    }
    let (port, mut calls) = endpoint(Duration::from_secs(3)).await;
    let (ok, out) = sipp("uac_cancel.xml", port, &[]).await;
    assert!(ok, "SIPp cancel scenario failed:\n{out}");
    // The application never saw the call.
    assert!(
        tokio::time::timeout(Duration::from_millis(3500), calls.recv())
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_caller_times_out_and_gets_bye() {
    if !have("sipp", "sip-tester") {
        return;
    }
    let port = free_udp_port().unwrap();
    let mut cfg = endpoint_config(port, free_udp_range(20).unwrap());
    cfg.media.inactivity_timeout = Duration::from_secs(2);
    let mut calls = serve(bind(cfg).await);
    let (ok, out) = sipp("uac_silent.xml", port, &[]).await;
    assert!(ok, "SIPp did not get our BYE:\n{out}");
    let (heard, events) = tokio::time::timeout(Duration::from_secs(5), calls.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(heard, 0);
    assert_eq!(events, vec![CallEvent::MediaTimeout]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_unsupported_codec_gets_488() {
    if !have("sipp", "sip-tester") {
        return;
    }
    let (port, _calls) = endpoint(Duration::ZERO).await;
    let (ok, out) = sipp("uac_488.xml", port, &[]).await;
    assert!(ok, "SIPp 488 scenario failed:\n{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_reinvite_hold_and_unhold() {
    if !have("sipp", "sip-tester") {
        return;
    }
    let (port, mut calls) = endpoint(Duration::ZERO).await;
    let (ok, out) = sipp("uac_hold.xml", port, &[]).await;
    assert!(ok, "SIPp hold scenario failed:\n{out}");
    let (_, events) = tokio::time::timeout(Duration::from_secs(5), calls.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        events,
        vec![
            CallEvent::Hold(true),
            CallEvent::Hold(false),
            CallEvent::RemoteHangup
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_info_dtmf_becomes_a_dtmf_event() {
    if !have("sipp", "sip-tester") {
        return;
    }
    let (port, mut calls) = endpoint(Duration::ZERO).await;
    let (ok, out) = sipp("uac_info.xml", port, &[]).await;
    assert!(ok, "SIPp INFO scenario failed:\n{out}");
    let (_, events) = tokio::time::timeout(Duration::from_secs(5), calls.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(events, vec![CallEvent::Dtmf('5'), CallEvent::RemoteHangup]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipsak_options_gets_200() {
    if !have("sipsak", "sipsak") {
        return;
    }
    let (port, _calls) = endpoint(Duration::ZERO).await;
    let local = free_udp_port().unwrap();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("sipsak")
            .args([
                "-vv",
                "-s",
                &format!("sip:frontdesk@127.0.0.1:{port}"),
                "-l",
                &local.to_string(),
                "-H",
                "127.0.0.1",
            ])
            .stdin(Stdio::null())
            .output()
    })
    .await
    .unwrap()
    .expect("run sipsak");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "sipsak failed: {text}");
    assert!(text.contains("200 OK"), "{text}");
    assert!(text.contains("Allow: INVITE"), "{text}");
}
