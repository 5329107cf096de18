//! baresip (a real SIP UA) calls the in-process voice endpoint: the call is answered, audio is
//! verified in both directions by 20 ms envelope correlation (>= 0.8, like the shared
//! compare.py), we hang up with BYE, and a second call on the same endpoint works.
//! Skips (with a message) only if baresip is not installed: `apt-get install baresip-core`.

mod sip_common;

use fd_e2e::audio::{best_envelope_correlation, Wav};
use fd_e2e::baresip::{write_config, Baresip, BaresipConfig, Ctrl};
use fd_e2e::ports::{free_tcp_port, free_udp_port, free_udp_range};
use fd_voice::endpoint::CallEvent;
use sip_common::*;
use std::time::Duration;

fn start_baresip(dir: &std::path::Path, source: &Wav) -> (Baresip, Ctrl) {
    let src = dir.join("mic.wav");
    source.write(&src).expect("write mic wav");
    let bport = free_udp_port().expect("port");
    let ctrl_port = free_tcp_port().expect("port");
    let cfg = BaresipConfig {
        sip_port: bport,
        rtp_ports: free_udp_range(10).expect("rtp range"),
        source_wav: src,
        rec_dir: dir.join("rec"),
        account: format!("<sip:caller@127.0.0.1:{bport}>;regint=0;audio_codecs=pcmu"),
        ctrl_port: Some(ctrl_port),
        dns_port: None,
    };
    write_config(&dir.join("cfg"), &cfg).expect("baresip config");
    let mut b = Baresip::spawn(&dir.join("cfg"), 60).expect("spawn baresip");
    b.wait_ready(Duration::from_secs(10))
        .expect("baresip ready");
    let ctrl = Ctrl::connect(ctrl_port, Duration::from_secs(5)).expect("ctrl_tcp");
    (b, ctrl)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_call_audio_both_ways_then_second_call() {
    if !have("baresip", "baresip-core") {
        return;
    }
    let dir = tmp_dir("baresip");
    let sip_port = free_udp_port().unwrap();
    let mut ep = bind(endpoint_config(sip_port, free_udp_range(20).unwrap())).await;

    let caller_sig = Wav {
        rate: 8000,
        samples: bursts(8000, 440.0, PATTERN_A, 30),
    };
    let ours = Wav {
        rate: 16000,
        samples: bursts(16000, 700.0, PATTERN_B, 0),
    };
    let (mut baresip, mut ctrl) = start_baresip(&dir, &caller_sig);
    let uri = format!("sip:frontdesk@127.0.0.1:{sip_port}");
    tokio::task::block_in_place(|| ctrl.command("dial", &uri, Duration::from_secs(5)))
        .expect("dial");

    let mut call = accept(&mut ep, 10).await;
    assert_eq!(call.caller.user.as_deref(), Some("caller"));
    call.handle.play(ours.samples.clone()).expect("play");
    let (heard, events) = collect(&mut call, Duration::from_secs(6)).await;
    // RFC 4733 DTMF from baresip arrives as a Dtmf event.
    tokio::task::block_in_place(|| ctrl.command("sndcode", "7", Duration::from_secs(5)))
        .expect("sndcode");
    let (_, dtmf_events) = collect(&mut call, Duration::from_secs(2)).await;
    assert!(
        dtmf_events.contains(&CallEvent::Dtmf('7')),
        "no DTMF event: {dtmf_events:?}"
    );
    assert!(
        !events.contains(&CallEvent::RemoteHangup),
        "caller hung up early: {events:?}"
    );
    call.handle.hangup().await;
    let closed =
        tokio::task::block_in_place(|| ctrl.wait_event(&["CALL_CLOSED"], Duration::from_secs(5)));
    assert!(closed.is_some(), "baresip saw no BYE");
    // The event channel closes once the call is over.
    let rest = collect(&mut call, Duration::from_secs(3)).await;
    assert!(rest.0.len() < 16000, "audio kept coming after hangup");

    // Caller → us.
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
        "caller->endpoint envelope_corr={c_in:.3} lag={lag_in:.2}s heard={:.2}s",
        heard.duration_secs()
    );
    assert!(
        c_in >= 0.8,
        "caller audio not received intact (corr {c_in:.3})"
    );

    // A second call on the same endpoint works (ports and tasks were released).
    tokio::task::block_in_place(|| ctrl.command("dial", &uri, Duration::from_secs(5)))
        .expect("dial 2");
    let mut call2 = accept(&mut ep, 10).await;
    let (heard2, _) = collect(&mut call2, Duration::from_secs(2)).await;
    assert!(heard2.len() > 16000, "second call carried audio");
    // This time the caller hangs up.
    tokio::task::block_in_place(|| ctrl.command("hangup", "", Duration::from_secs(5)))
        .expect("hangup");
    let (_, ev2) = collect(&mut call2, Duration::from_secs(5)).await;
    assert!(
        ev2.contains(&CallEvent::RemoteHangup),
        "no RemoteHangup: {ev2:?}"
    );

    drop(ctrl);
    baresip.stop();
    // Us → caller: baresip's recording of what it received (first call's dump).
    let mut dumps: Vec<_> = std::fs::read_dir(dir.join("rec"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with("-dec.wav"))
        .collect();
    dumps.sort();
    let rec = Wav::read(dumps.first().expect("baresip recording")).expect("read recording");
    let (c_out, lag_out) = best_envelope_correlation(&ours, &rec);
    println!(
        "endpoint->caller envelope_corr={c_out:.3} lag={lag_out:.2}s rec={:.2}s",
        rec.duration_secs()
    );
    assert!(
        c_out >= 0.8,
        "our audio not heard intact by the caller (corr {c_out:.3})"
    );
    ep.shutdown().await;
}
