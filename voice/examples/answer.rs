//! A stand-alone answering machine for trying the SIP stack by hand (no appliance needed):
//! answers every call, plays a 440 Hz beep pattern, prints the caller's audio level once per
//! second and DTMF digits, and hangs up after `hold_secs`.
//!
//! `cargo run -p fd-voice --example answer -- [listen=127.0.0.1:5080] [hold_secs=30]`
//! then e.g. `baresip` → `/dial sip:frontdesk@127.0.0.1:5080`, or
//! `sipp 127.0.0.1:5080 -sf tests/sip/uac_basic.xml -s frontdesk -m 1 -rtp_echo`.

use fd_voice::endpoint::{CallEvent, Endpoint, EndpointConfig};
use std::time::Duration;

fn beeps() -> Vec<i16> {
    let mut out = Vec::new();
    for i in 0..3 {
        let on = 16_000 * (2 + i) / 10; // 200, 300, 400 ms tones with 300 ms gaps
        out.extend((0..on).map(|n| {
            ((n as f64 * 2.0 * std::f64::consts::PI * 440.0 / 16_000.0).sin() * 8000.0) as i16
        }));
        out.extend(std::iter::repeat_n(0, 4800));
    }
    out
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let listen = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(([127, 0, 0, 1], 5080).into());
    let hold: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(30);
    let cfg = EndpointConfig {
        listen,
        ..EndpointConfig::default()
    };
    let mut ep = match Endpoint::bind(cfg).await {
        Ok(ep) => ep,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    println!(
        "answering sip:frontdesk@{} (hang up after {hold} s)",
        ep.local_addr()
    );
    while let Some(mut call) = ep.accept().await {
        let id = call.call_id;
        println!("call {id}: answered, codec {:?}", call.codec);
        tokio::spawn(async move {
            let _ = call.handle.play(beeps());
            let deadline = tokio::time::Instant::now() + Duration::from_secs(hold);
            let (mut energy, mut frames) = (0f64, 0u32);
            loop {
                match tokio::time::timeout_at(deadline, call.events.recv()).await {
                    Ok(Some(CallEvent::Audio(a))) => {
                        energy += a.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>()
                            / a.len().max(1) as f64;
                        frames += 1;
                        if frames == 50 {
                            println!(
                                "call {id}: caller level {:.0} dBFS",
                                10.0 * (energy / 50.0 / 32768f64.powi(2)).max(1e-10).log10()
                            );
                            (energy, frames) = (0.0, 0);
                        }
                    }
                    Ok(Some(CallEvent::Dtmf(d))) => {
                        println!("call {id}: DTMF {d}");
                        call.handle.flush();
                        let _ = call.handle.play(beeps());
                    }
                    Ok(Some(other)) => {
                        println!("call {id}: {other:?}");
                        if other == CallEvent::RemoteHangup {
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(_) => {
                        println!("call {id}: hanging up");
                        call.handle.hangup().await;
                        return;
                    }
                }
            }
        });
    }
}
