//! Engine benchmark: prints latency / throughput / memory figures for the four engine processes
//! with the real models. Not a pass/fail test: targets are printed next to the figures.
//!
//!   cargo build -p fd-engine-asr -p fd-engine-llm -p fd-engine-tts -p fd-engine-vad
//!   cargo bench -p fd-models --bench engines --profile dev
//!
//! (same target dir and profile for both; `FRONTDESK_ENGINE_BIN_DIR` overrides where the engine
//! binaries are looked up, `FRONTDESK_CACHE` where the models are.)

#[path = "../tests/engines_common/mod.rs"]
mod engines_common;
use engines_common::*;

use std::time::{Duration, Instant};

use fd_models::client::{AsrClient, EngineClient, Timeouts, GenerateEvent, GenerateOpts, LlmClient, TranscribeOpts, TtsClient, VadClient};
use fd_models::protocol::ChatMessage;

const RUNS: usize = 3;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Encoder window the engine's automatic policy would pick for `floor`.
fn ctx_for(samples: usize, floor: u32) -> u32 {
    let needed = (samples as f64 / 16000.0 * 50.0).ceil() as u32 + 64;
    needed.max(floor).min(1500).div_ceil(64) * 64
}

fn main() {
    let rt = rt();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("# Front Desk engine benchmark ({} cores, loadavg at start: {})", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0), load.trim());
    let clips = librivox();
    let all: Vec<i16> = clips.iter().flat_map(|c| c.1.iter().copied()).collect();

    // ---------------------------------------------------------------- ASR
    let asr_p = asr_engine();
    // Generous timeout: this bench reports slowness, it should not die of it.
    let asr = AsrClient(EngineClient::new("asr", &asr_p.socket, Timeouts::new(1000, 120_000)));
    // Warm-up.
    let _ = rt.block_on(asr.transcribe(&clips[0].1, &TranscribeOpts::default()));
    println!("\n## ASR (whisper tiny.en, greedy, single segment)");
    println!("| utterance | audio_ctx | latency (median of {RUNS}) | RTF |");
    println!("|---|---|---|---|");
    for secs in [2usize, 3, 5, 10] {
        let pcm = &all[..(secs * 16000).min(all.len())];
        for (label, ctx) in [("full (1500)", Some(0u32)), ("auto", None)] {
            let mut times = Vec::new();
            let mut used = 0;
            for _ in 0..RUNS {
                let t = Instant::now();
                let tr = rt.block_on(asr.transcribe(pcm, &TranscribeOpts { audio_ctx: ctx, ..Default::default() })).unwrap();
                times.push(t.elapsed());
                used = tr.audio_ctx;
            }
            let m = median(times);
            println!("| {secs} s | {label} → {used} | {:.0} ms | {:.3} |", ms(m), m.as_secs_f64() / secs as f64);
        }
    }
    println!("\nWER on the 5 LibriVox clips by encoder-window floor (16 kHz | 8 kHz μ-law phone path), mean latency per clip:");
    println!("| floor | WER 16k | WER 8k | mean latency |");
    println!("|---|---|---|---|");
    for floor in [512u32, 768, 1500] {
        let (mut e16, mut e8, mut n, mut total) = (0, 0, 0, Duration::ZERO);
        for (_, pcm, reference) in &clips {
            let ctx = ctx_for(pcm.len(), floor);
            let t = Instant::now();
            let a = rt.block_on(asr.transcribe(pcm, &TranscribeOpts { audio_ctx: Some(ctx), ..Default::default() })).unwrap();
            total += t.elapsed();
            let b = rt.block_on(asr.transcribe(&phone_path(pcm), &TranscribeOpts { audio_ctx: Some(ctx), ..Default::default() })).unwrap();
            let (x, w) = word_errors(reference, &a.text);
            let (y, _) = word_errors(reference, &b.text);
            e16 += x;
            e8 += y;
            n += w;
        }
        println!("| {floor} | {:.1}% | {:.1}% | {:.0} ms |", 100.0 * e16 as f64 / n as f64, 100.0 * e8 as f64 / n as f64, ms(total) / clips.len() as f64);
    }

    // ---------------------------------------------------------------- LLM
    let llm_p = llm_engine();
    let llm = LlmClient(EngineClient::new("llm", &llm_p.socket, Timeouts::new(1000, 120_000)));
    let system = "You are the front desk assistant of Maple Dental, a family dental practice. \
        The practice is open Monday to Friday from eight to five and Saturday from nine to noon. \
        Providers: Dr. Anita Patel (general dentistry), Dr. Marcus Lee (orthodontics), and hygienists Sam and Jo. \
        Services: cleanings, fillings, crowns, root canals, whitening, emergency visits, orthodontic consultations. \
        You help callers book, reschedule or cancel appointments, take messages, and transfer to a human when asked. \
        Never give medical advice. Keep answers short and friendly. Confirm names, dates and times back to the caller. \
        If the caller reports severe pain, swelling or bleeding, offer the earliest emergency slot. \
        Answer with the JSON object requested by the tool schema when one is given.".repeat(2);
    let turn = vec![ChatMessage { role: "user".into(), content: "Hi, I'd like to book a cleaning with Sam next Tuesday morning if possible, my name is Jordan.".into() }];
    let t = Instant::now();
    rt.block_on(llm.set_system_prompt(&system)).unwrap();
    let sys_time = t.elapsed();
    let one = GenerateOpts { max_tokens: 1, ..Default::default() };
    let g = rt.block_on(llm.generate(&turn, &one)).unwrap();
    println!("\n## LLM (SmolLM2-135M Q4_1)");
    let mut cached = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        rt.block_on(llm.generate(&turn, &one)).unwrap();
        cached.push(t.elapsed());
    }
    // Without the cache: no system prompt resident, everything evaluated per turn.
    rt.block_on(llm.set_system_prompt("")).unwrap();
    let mut full_msgs = vec![ChatMessage { role: "system".into(), content: system.clone() }];
    full_msgs.extend(turn.clone());
    let mut uncached = Vec::new();
    let mut full_prompt_tokens = 0;
    for _ in 0..RUNS {
        let t = Instant::now();
        full_prompt_tokens = rt.block_on(llm.generate(&full_msgs, &one)).unwrap().prompt_tokens;
        uncached.push(t.elapsed());
    }
    rt.block_on(llm.set_system_prompt(&system)).unwrap();
    // Generation speed: time between first and last streamed token.
    let (gen_tokens, gen_time) = rt.block_on(async {
        let mut s = llm.generate_stream(&turn, &GenerateOpts { max_tokens: 64, temperature: 0.7, ..Default::default() }).await.unwrap();
        let mut first = None;
        let mut n = 0;
        loop {
            match s.next().await.unwrap() {
                Some(GenerateEvent::Token(_)) => {
                    n += 1;
                    first.get_or_insert_with(Instant::now);
                }
                Some(GenerateEvent::Done(g)) => break (g.generated_tokens, first.map(|f| f.elapsed()).unwrap_or_default()),
                None => break (n, Duration::ZERO),
            }
        }
    });
    let sys_tokens = full_prompt_tokens.saturating_sub(g.prompt_tokens);
    println!("| figure | value | target |");
    println!("|---|---|---|");
    println!("| system prompt eval (~{sys_tokens} tokens, once) | {:.0} ms ({:.0} tokens/s) | — |", ms(sys_time), sys_tokens as f64 / sys_time.as_secs_f64());
    println!("| first token, new turn of {} tokens, cached system prompt | {:.0} ms | ≤ 150 ms |", g.prompt_tokens, ms(median(cached)));
    println!("| first token, same turn without cache ({full_prompt_tokens} tokens) | {:.0} ms | — |", ms(median(uncached)));
    println!("| generation | {:.0} tokens/s ({} tokens) | — |", gen_tokens.saturating_sub(1) as f64 / gen_time.as_secs_f64().max(1e-9), gen_tokens);

    // ---------------------------------------------------------------- TTS
    let tts_p = tts_engine();
    let tts = TtsClient(EngineClient::new("tts", &tts_p.socket, Timeouts::new(1000, 120_000)));
    let _ = rt.block_on(tts.synthesize_all("Warm up.", 8000));
    println!("\n## TTS (Piper en_US-joe-medium → 8 kHz)");
    println!("| text | first audio (median of {RUNS}) | total | audio | RTF |");
    println!("|---|---|---|---|---|");
    for text in [
        "How can I help you?",
        "Sure, I can book that for you. Dr. Patel has an opening on Tuesday at ten in the morning. Would that work for you?",
    ] {
        let mut firsts = Vec::new();
        let mut totals = Vec::new();
        let mut samples = 0;
        for _ in 0..RUNS {
            let t = Instant::now();
            let (f, n) = rt.block_on(async {
                let mut s = tts.synthesize(text, 8000).await.unwrap();
                let mut first = None;
                let mut n = 0;
                while let Some(c) = s.next().await.unwrap() {
                    first.get_or_insert(t.elapsed());
                    n += c.pcm.len();
                }
                (first.unwrap_or_default(), n)
            });
            firsts.push(f);
            totals.push(t.elapsed());
            samples = n;
        }
        let total = median(totals);
        let audio = samples as f64 / 8000.0;
        println!("| {} chars | {:.0} ms | {:.0} ms | {audio:.1} s | {:.3} |", text.len(), ms(median(firsts)), ms(total), total.as_secs_f64() / audio);
    }

    // ---------------------------------------------------------------- VAD
    let vad_p = vad_engine();
    let vad = VadClient::new(&vad_p.socket);
    println!("\n## VAD (Silero, 16 kHz, 512-sample frames)");
    rt.block_on(async {
        let s = vad.open(16000).await.unwrap();
        let n = 200 * 512;
        let _ = s.push(&all[..512 * 10]).await.unwrap();
        let t = Instant::now();
        let p = s.push(&all[..n]).await.unwrap();
        let batch = t.elapsed();
        let mut singles = Vec::new();
        for k in 0..50 {
            let t = Instant::now();
            s.push(&all[k * 512..(k + 1) * 512]).await.unwrap();
            singles.push(t.elapsed());
        }
        println!("| figure | value |\n|---|---|");
        println!("| inference per frame (batch of {}) | {:.3} ms (frame = 32 ms of audio) |", p.len(), ms(batch) / p.len() as f64);
        println!("| one frame per request, round trip (median) | {:.3} ms |", ms(median(singles)));
    });

    // ---------------------------------------------------------------- memory
    println!("\n## Resident memory (VmRSS after the runs above)");
    println!("| engine | RSS |\n|---|---|");
    let mut total = 0;
    for (name, c) in [("asr", &asr.0), ("llm", &llm.0), ("tts", &tts.0), ("vad", &vad.0)] {
        let i = rt.block_on(c.info()).unwrap();
        total += i.rss_bytes;
        println!("| {name} ({}, {} threads) | {:.0} MB |", i.model, i.threads, i.rss_bytes as f64 / 1e6);
    }
    println!("| all four | {:.0} MB (target ≤ 1500 MB) |", total as f64 / 1e6);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("\nloadavg at end: {}", load.trim());
}
