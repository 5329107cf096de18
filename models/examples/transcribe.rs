//! Transcribe WAV files with a running `frontdesk-asr` (for tuning and debugging by hand):
//! `cargo run -p fd-models --example transcribe -- SOCKET [--ctx N] [--prompt TEXT] [--bias 'PHRASE|PHRASE'] FILE.wav...`
//! Files must be 16 kHz mono 16-bit PCM (convert with `sox in.wav -r 16000 -c 1 -b 16 out.wav`).

use fd_models::client::{AsrClient, TranscribeOpts};

fn read_wav(path: &str) -> Vec<i16> {
    let b = std::fs::read(path).expect("read wav");
    // Find the "data" chunk; assume 16-bit mono.
    let mut i = 12;
    while i + 8 <= b.len() {
        let id = &b[i..i + 4];
        let len = u32::from_le_bytes([b[i + 4], b[i + 5], b[i + 6], b[i + 7]]) as usize;
        if id == b"data" {
            let end = (i + 8 + len).min(b.len());
            return b[i + 8..end].chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect();
        }
        i += 8 + len + (len & 1);
    }
    panic!("{path}: no data chunk");
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let socket = args.next().expect("usage: transcribe SOCKET [--ctx N] [--prompt TEXT] [--bias 'PHRASE|PHRASE'] FILE...");
    let mut opts = TranscribeOpts::default();
    let mut files = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--ctx" => opts.audio_ctx = args.next().and_then(|v| v.parse().ok()),
            "--prompt" => opts.vocabulary_prompt = args.next(),
            "--bias" => {
                opts.bias = args
                    .next()
                    .map(|b| b.split('|').map(str::to_string).collect())
                    .unwrap_or_default()
            }
            _ => files.push(a),
        }
    }
    let asr = AsrClient::new(socket);
    for f in files {
        let pcm = read_wav(&f);
        let t = std::time::Instant::now();
        match asr.transcribe(&pcm, &opts).await {
            Ok(tr) => println!("{:>5} ms ctx {:>4}  {f}: {}", t.elapsed().as_millis(), tr.audio_ctx, tr.text),
            Err(e) => println!("{f}: error {e}"),
        }
    }
}
