//! Media benchmark: `cargo run --release -p fd-voice --example media_bench`
//!
//! Prints (1) the CPU time one call's media session costs per second of call (both directions:
//! G.711 decode + jitter buffer + 8→16 kHz upsampling in, 16→8 kHz downsampling + encode + pacing
//! out; and the same with G.722, which needs no resampling but costs ADPCM + QMF), plus the 22.05 kHz → 16 kHz conversion of Piper output; and (2) the delay the jitter buffer
//! adds, and what it loses, under 0, 20 and 60 ms of network jitter.

use std::time::{Duration, Instant};

use fd_voice::media::{Codec, MediaConfig, MediaEvent, MediaSession, Resampler};
use rtp_rs::{RtpPacketBuilder, Seq};

fn packet(i: u32, payload: &[u8]) -> Vec<u8> {
    packet_pt(i, 0, payload)
}

fn packet_pt(i: u32, pt: u8, payload: &[u8]) -> Vec<u8> {
    RtpPacketBuilder::new().payload_type(pt).marked(i == 0).sequence(Seq::from(i as u16)).ssrc(0xBEEF).timestamp(i * 160).payload(payload).build().expect("packet")
}

fn speechlike(n: usize, seed: u32) -> Vec<i16> {
    // A few harmonics with a slow envelope: cheap stand-in for voice, exercising every code path.
    (0..n)
        .map(|i| {
            let t = i as f64 / 16000.0;
            let env = 0.5 + 0.5 * (2.0 * std::f64::consts::PI * 3.0 * t + seed as f64).sin();
            (env * (4000.0 * (2.0 * std::f64::consts::PI * 180.0 * t).sin() + 2000.0 * (2.0 * std::f64::consts::PI * 900.0 * t).sin())) as i16
        })
        .collect()
}

/// CPU seconds used by this process so far (user + system), from /proc (Linux).
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10)) // USER_HZ is 100 on Linux
}

fn call_cost(codec: Codec, seconds: u32) -> (Duration, Option<Duration>) {
    let t0 = Instant::now();
    let mut s = MediaSession::new(MediaConfig::for_codec(codec), 1, t0);
    let caller_pcm = speechlike(8000 * 2, 1);
    let mut caller = Vec::with_capacity(caller_pcm.len());
    if codec.sample_rate() == 16000 {
        caller.extend_from_slice(&caller_pcm);
    } else {
        Resampler::new(16000, 8000).expect("rates").process(&caller_pcm, &mut caller);
    }
    let mut enc = fd_voice::media::Encoder::new(codec);
    let mut payloads = Vec::new();
    for chunk in caller.chunks((codec.sample_rate() / 50) as usize) {
        let mut p = Vec::new();
        enc.encode_into(chunk, &mut p);
        payloads.push(p);
    }
    let tts = speechlike(16000, 2);
    let mut frames = 0u64;
    let mut sent = 0u64;
    let wall = Instant::now();
    let cpu0 = cpu_time();
    for i in 0..seconds * 50 {
        let now = t0 + Duration::from_millis(20 * i as u64);
        let p = packet_pt(i, codec.static_payload_type(), &payloads[i as usize % payloads.len()]);
        s.handle_rtp(now, &p);
        if s.queued() < Duration::from_millis(500) {
            s.play(&tts);
        }
        s.handle_timeout(now);
        while let Some(t) = s.poll_transmit(now) {
            sent += t.datagram.len() as u64;
        }
        while let Some(ev) = s.poll_event() {
            if let MediaEvent::Audio(f) = ev {
                frames += f.len() as u64;
            }
        }
    }
    let elapsed = wall.elapsed();
    let cpu = cpu0.zip(cpu_time()).map(|(a, b)| b.saturating_sub(a));
    assert!(frames > 0 && sent > 0);
    (elapsed / seconds, cpu.map(|c| c / seconds))
}

fn jitter_run(max_jitter_ms: u64, seconds: u32) -> fd_voice::media::MediaStats {
    let t0 = Instant::now();
    let mut s = MediaSession::new(MediaConfig::pcmu(), 1, t0);
    let payload = vec![0x55u8; 160];
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut arrivals: Vec<(Instant, u32)> = (0..seconds * 50)
        .map(|i| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            // The first packet arrives without delay: the buffer anchors on the earliest possible
            // arrival, the worst case for the packets that follow.
            let j = if max_jitter_ms == 0 || i == 0 { 0 } else { seed % (max_jitter_ms * 1000 + 1) };
            (t0 + Duration::from_millis(20 * i as u64) + Duration::from_micros(j), i)
        })
        .collect();
    arrivals.sort();
    let mut now = t0;
    for (at, i) in arrivals {
        while let Some(due) = s.poll_timeout() {
            if due > at {
                break;
            }
            now = now.max(due);
            s.handle_timeout(now);
            while s.poll_event().is_some() {}
            while s.poll_transmit(now).is_some() {}
        }
        now = now.max(at);
        s.handle_rtp(now, &packet(i, &payload));
    }
    s.stats()
}

fn main() {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("machine load (1/5/15 min): {}", load.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
    let seconds = 600;
    let (wall, cpu) = call_cost(Codec::Pcmu, seconds);
    println!("media session, full duplex G.711 (decode+jitter+8->16k in, 16->8k+encode+pacing out), {seconds} s simulated call:");
    println!("  {:.1} us wall per call-second (single thread, no sleeps) = {:.3}% of one core", wall.as_secs_f64() * 1e6, wall.as_secs_f64() * 100.0);
    if let Some(c) = cpu {
        println!("  {:.1} us CPU per call-second (from /proc, 10 ms resolution)", c.as_secs_f64() * 1e6);
    }
    let (wall, cpu) = call_cost(Codec::G722, seconds);
    println!("media session, full duplex G.722 (decode+jitter in, encode+pacing out, 16 kHz throughout), {seconds} s simulated call:");
    println!("  {:.1} us wall per call-second (single thread, no sleeps) = {:.3}% of one core", wall.as_secs_f64() * 1e6, wall.as_secs_f64() * 100.0);
    if let Some(c) = cpu {
        println!("  {:.1} us CPU per call-second (from /proc, 10 ms resolution)", c.as_secs_f64() * 1e6);
    }
    println!("TTS output resampling:");
    let piper = speechlike(22050 * 60, 3);
    for to in [16000, 8000] {
        let mut r = Resampler::new(22050, to).expect("rates");
        let mut out = Vec::new();
        let t = Instant::now();
        for chunk in piper.chunks(2205) {
            r.process(chunk, &mut out);
        }
        let per_sec = t.elapsed() / 60;
        println!("  Piper 22.05 kHz -> {} kHz: {:.1} us per second of audio", to / 1000, per_sec.as_secs_f64() * 1e6);
    }
    println!("jitter buffer (target 40 ms, max 200 ms), 120 s stream of 20 ms packets, uniform random jitter, first packet on time:");
    for j in [0, 20, 60] {
        let st = jitter_run(j, 120);
        let total = st.packets_received as f64;
        println!(
            "  jitter 0-{j:>2} ms: mean added delay {:>5.1} ms, final playout delay {:>3} ms, late (dropped) {:>3} = {:.2}%, concealed frames {}, RFC 3550 jitter {:.1} ms",
            st.mean_buffer_delay.as_secs_f64() * 1e3,
            st.playout_delay.as_millis(),
            st.late,
            100.0 * st.late as f64 / total.max(1.0),
            st.concealed_frames,
            st.jitter.as_secs_f64() * 1e3,
        );
    }
}
