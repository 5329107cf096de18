//! Synthesize sentences with a running `frontdesk-tts` and report where the audio starts and ends
//! (for tuning by hand): `cargo run -p fd-models --example speak -- SOCKET RATE TEXT...`
//! Prints, per text, the samples before the first and after the last sample above -40 dBFS.

use fd_models::client::TtsClient;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let socket = args.next().expect("usage: speak SOCKET RATE TEXT...");
    let rate: u32 = args
        .next()
        .and_then(|r| r.parse().ok())
        .expect("RATE: 8000 or 16000");
    let tts = TtsClient::new(socket);
    for text in args {
        let t = std::time::Instant::now();
        let pcm = tts.synthesize_all(&text, rate).await.expect("synthesize");
        let loud = |s: &i16| s.unsigned_abs() > 328;
        let lead = pcm.iter().position(loud).unwrap_or(pcm.len());
        let tail = pcm.iter().rev().position(loud).unwrap_or(pcm.len());
        let ms = |n: usize| n as u64 * 1000 / rate as u64;
        println!(
            "{:5} ms synth, {:5} ms audio, lead {:4} ms, tail {:4} ms: {text}",
            t.elapsed().as_millis(),
            ms(pcm.len()),
            ms(lead),
            ms(tail)
        );
    }
}
