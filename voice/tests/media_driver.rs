//! The tokio media driver over real loopback UDP sockets.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use fd_voice::media::{spawn, spawn_with, DriverOptions, MediaConfig, MediaEvent, MediaSession};
use tokio::net::UdpSocket;
use tokio::sync::mpsc::Receiver;

fn tone_16k(freq: f64, secs: f64, amp: f64) -> Vec<i16> {
    (0..(16000.0 * secs) as usize).map(|i| (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / 16000.0).sin()) as i16).collect()
}

fn fit(samples: &[i16], freq: f64, rate: f64) -> f64 {
    let (mut s, mut c) = (0.0, 0.0);
    for (i, &x) in samples.iter().enumerate() {
        let w = 2.0 * std::f64::consts::PI * freq * i as f64 / rate;
        s += x as f64 * w.sin();
        c += x as f64 * w.cos();
    }
    let n = samples.len() as f64;
    ((2.0 * s / n).powi(2) + (2.0 * c / n).powi(2)).sqrt()
}

fn rms(s: &[i16]) -> f64 {
    (s.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / s.len().max(1) as f64).sqrt()
}

async fn socket() -> (UdpSocket, SocketAddr) {
    let s = UdpSocket::bind("127.0.0.1:0").await.expect("bind loopback");
    let a = s.local_addr().expect("addr");
    (s, a)
}

fn session(ssrc: u32) -> MediaSession {
    MediaSession::new(MediaConfig::pcmu(), ssrc, Instant::now())
}

/// Collects audio frames for `d` (other events are returned too).
async fn collect(rx: &mut Receiver<MediaEvent>, d: Duration) -> (Vec<Vec<i16>>, Vec<MediaEvent>) {
    let mut frames = Vec::new();
    let mut other = Vec::new();
    let deadline = tokio::time::Instant::now() + d;
    while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        match ev {
            MediaEvent::Audio(f) => frames.push(f),
            e => other.push(e),
        }
    }
    (frames, other)
}

#[tokio::test]
async fn two_drivers_exchange_audio_intact() {
    let (sa, aa) = socket().await;
    let (sb, ab) = socket().await;
    let (ha, mut rxa) = spawn(sa, ab, session(0xA));
    let (hb, mut rxb) = spawn(sb, aa, session(0xB));
    ha.play(tone_16k(1000.0, 1.0, 10000.0)).expect("play");
    hb.play(tone_16k(600.0, 1.0, 8000.0)).expect("play");
    let ((fb, _), (fa, _)) = tokio::join!(collect(&mut rxb, Duration::from_millis(1500)), collect(&mut rxa, Duration::from_millis(1500)));
    for (frames, freq, amp) in [(fb, 1000.0, 10000.0), (fa, 600.0, 8000.0)] {
        assert!(frames.iter().all(|f| f.len() == 320));
        assert!(frames.len() >= 60, "{} frames in 1.5 s", frames.len());
        let audio: Vec<i16> = frames.concat();
        // Find the loud part (the tone) and check its frequency and level.
        let loud: Vec<i16> = frames.iter().filter(|f| rms(f) > 1000.0).flatten().copied().collect();
        assert!(loud.len() >= 16000 * 8 / 10, "only {} tone samples arrived", loud.len());
        let core = &loud[1600..loud.len() - 1600];
        let got = fit(core, freq, 16000.0);
        assert!((got / amp - 1.0).abs() < 0.05, "tone {freq} Hz arrived at amplitude {got}");
        assert!(audio.len() >= loud.len());
    }
    let sa_stats = ha.finish().await;
    let sb_stats = hb.finish().await;
    assert!(sa_stats.packets_sent >= 50 && sb_stats.packets_received >= 50, "{sa_stats:?} {sb_stats:?}");
    assert_eq!(sb_stats.lost, 0);
}

#[tokio::test]
async fn flush_through_the_handle_silences_the_far_end_promptly() {
    let (sa, aa) = socket().await;
    let (sb, ab) = socket().await;
    let (ha, _rxa) = spawn(sa, ab, session(1));
    let (_hb, mut rxb) = spawn(sb, aa, session(2));
    ha.play(tone_16k(500.0, 3.0, 8000.0)).expect("play");
    ha.play(tone_16k(500.0, 3.0, 8000.0)).expect("play");
    let (before, _) = collect(&mut rxb, Duration::from_millis(300)).await;
    assert!(before.iter().any(|f| rms(f) > 1000.0), "tone started");
    ha.flush();
    // Within the jitter delay plus a packet or two, the far end hears silence.
    let (_, _) = collect(&mut rxb, Duration::from_millis(300)).await;
    let (after, _) = collect(&mut rxb, Duration::from_millis(500)).await;
    assert!(!after.is_empty());
    assert!(after.iter().all(|f| rms(f) < 50.0), "audio kept playing after flush");
    let stats = ha.finish().await;
    assert!(stats.packets_sent < 40, "sent {} packets of a 6 s queue", stats.packets_sent);
}

#[tokio::test]
async fn stop_and_drop_end_the_task_and_free_the_socket() {
    let (sa, aa) = socket().await;
    let (_sb, ab) = socket().await;
    let (h, _rx) = spawn(sa, ab, session(3));
    assert!(h.is_running());
    h.finish().await;
    UdpSocket::bind(aa).await.expect("port free after stop");

    let (sc, ac) = socket().await;
    let (h, mut rx) = spawn(sc, ab, session(4));
    drop(h);
    let ended = tokio::time::timeout(Duration::from_secs(2), async { while rx.recv().await.is_some() {} }).await;
    assert!(ended.is_ok(), "task still running after the handle was dropped");
    UdpSocket::bind(ac).await.expect("port free after drop");
}

#[tokio::test]
async fn inactivity_ends_the_task_after_reporting_it_once() {
    let (sa, aa) = socket().await;
    let (_sb, ab) = socket().await;
    let mut cfg = MediaConfig::pcmu();
    cfg.inactivity_timeout = Duration::from_millis(300);
    let (h, mut rx) = spawn(sa, ab, MediaSession::new(cfg, 5, Instant::now()));
    let started = Instant::now();
    let (frames, other) = collect(&mut rx, Duration::from_secs(3)).await;
    assert!(frames.is_empty());
    assert_eq!(other, vec![MediaEvent::InactivityTimeout]);
    assert!(started.elapsed() < Duration::from_secs(2), "channel closed when the task ended");
    assert!(!h.is_running());
    assert!(matches!(h.play(vec![0; 320]), Err(fd_voice::VoiceError::MediaStopped)));
    UdpSocket::bind(aa).await.expect("port free after timeout");
}

#[tokio::test]
async fn symmetric_rtp_answers_where_the_packets_come_from() {
    let (sa, aa) = socket().await;
    let (sb, _) = socket().await;
    // A was told a wrong address (as behind NAT); it learns B's real one from B's first packet.
    let wrong: SocketAddr = "127.0.0.1:9".parse().expect("addr");
    let (ha, _rxa) = spawn_with(sa, wrong, session(6), DriverOptions { symmetric_rtp: true, ..Default::default() });
    let (hb, mut rxb) = spawn(sb, aa, session(7));
    hb.play(vec![0; 3200]).expect("play");
    tokio::time::sleep(Duration::from_millis(100)).await;
    ha.play(tone_16k(1000.0, 0.5, 8000.0)).expect("play");
    let (frames, _) = collect(&mut rxb, Duration::from_millis(800)).await;
    assert!(frames.iter().any(|f| rms(f) > 1000.0), "B never heard A");
}

#[tokio::test]
async fn rtcp_goes_out_on_its_own_socket_to_the_peer_rtcp_port() {
    let (rtp_a, _) = socket().await;
    let rtcp_a = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    // The peer's RTP and RTCP ports must be adjacent: find a free pair.
    let (peer_rtp, peer_rtcp) = loop {
        let (s, a) = socket().await;
        if let Ok(r) = UdpSocket::bind(SocketAddr::new(a.ip(), a.port().wrapping_add(1))).await {
            break ((s, a), r);
        }
    };
    let mut cfg = MediaConfig::pcmu();
    cfg.rtcp_interval = Some(Duration::from_millis(200));
    let session = MediaSession::new(cfg, 0xCAFE, Instant::now());
    let (h, _rx) = spawn_with(rtp_a, peer_rtp.1, session, DriverOptions { rtcp_socket: Some(rtcp_a), ..Default::default() });
    h.play(vec![1000; 3200]).expect("play");
    let mut buf = [0u8; 1500];
    let (n, _) = tokio::time::timeout(Duration::from_secs(2), peer_rtcp.recv_from(&mut buf)).await.expect("RTCP within 2 s").expect("recv");
    let report = fd_voice::media::rtcp::parse(&buf[..n]);
    assert_eq!(report.sender_report.map(|(ssrc, _)| ssrc), Some(0xCAFE));
    drop(peer_rtp);
}
