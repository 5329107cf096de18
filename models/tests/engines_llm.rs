//! Proof tests of the LLM engine with the real GGUF model.

mod engines_common;
use engines_common::*;

use std::time::Instant;

use fd_models::client::{EngineClient, EngineError, GenerateEvent, GenerateOpts, LlmClient, Timeouts};
use fd_models::protocol::ChatMessage;

const SYSTEM: &str = "You are the front desk assistant of Maple Dental. You classify what a caller wants. \
Answer only with the JSON object requested.";

fn user(s: &str) -> Vec<ChatMessage> {
    vec![ChatMessage { role: "user".into(), content: s.into() }]
}

fn schema() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "properties": {
            "intent": {"type": "string", "enum": ["book", "cancel", "reschedule", "message", "other"]},
            "patient_name": {"type": ["string", "null"]},
            "urgent": {"type": "boolean"},
            "party_size": {"type": "integer"}
        },
        "required": ["intent", "patient_name", "urgent", "party_size"],
        "additionalProperties": false
    })
}

#[test]
fn grammar_constrained_json_matches_schema_for_several_prompts() {
    let eng = llm_engine();
    let rt = rt();
    let client = llm_client(&eng.socket);
    rt.block_on(client.set_system_prompt(SYSTEM)).unwrap();
    let opts = GenerateOpts { json_schema: Some(schema()), max_tokens: 96, ..Default::default() };
    for prompt in [
        "Hi, this is Anna Lee, I need to book a cleaning next week.",
        "I have to cancel my appointment tomorrow, it's Bob.",
        "My tooth is killing me, can I come in today? Two of us need to be seen.",
        "Can you tell Dr. Patel I called?",
    ] {
        let g = rt.block_on(client.generate(&user(prompt), &opts)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&g.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", g.text));
        let o = v.as_object().expect("object");
        assert_eq!(o.len(), 4, "{v}");
        assert!(["book", "cancel", "reschedule", "message", "other"].contains(&o["intent"].as_str().unwrap()), "{v}");
        assert!(o["patient_name"].is_string() || o["patient_name"].is_null(), "{v}");
        assert!(o["urgent"].is_boolean(), "{v}");
        assert!(o["party_size"].is_i64(), "{v}");
        assert!(g.prompt_tokens > 0 && g.generated_tokens > 0);
    }
}

#[test]
fn tokens_stream_and_turns_do_not_leak_into_each_other() {
    let eng = llm_engine();
    let rt = rt();
    let client = llm_client(&eng.socket);
    rt.block_on(client.set_system_prompt(SYSTEM)).unwrap();
    let opts = GenerateOpts { max_tokens: 24, ..Default::default() };
    let first = rt.block_on(client.generate(&user("Say hello."), &opts)).unwrap();
    // Same turn again after another turn: the KV cache was trimmed back to the system prompt,
    // so greedy decoding must reproduce the first answer exactly.
    let _ = rt.block_on(client.generate(&user("What are your opening hours on Saturday?"), &opts)).unwrap();
    let again = rt.block_on(client.generate(&user("Say hello."), &opts)).unwrap();
    assert_eq!(first.text, again.text);
    let streamed = rt.block_on(async {
        let mut s = client.generate_stream(&user("Say hello."), &opts).await.unwrap();
        let mut toks = String::new();
        let mut n = 0;
        loop {
            match s.next().await.unwrap() {
                Some(GenerateEvent::Token(t)) => {
                    toks.push_str(&t);
                    n += 1;
                }
                Some(GenerateEvent::Done(g)) => break (toks, n, g),
                None => panic!("stream ended without Done"),
            }
        }
    });
    assert!(streamed.1 > 1, "tokens should stream one by one");
    assert_eq!(streamed.0, streamed.2.text);
    assert_eq!(streamed.2.text, first.text);
}

#[test]
fn cancel_stops_generation_quickly() {
    let eng = llm_engine();
    let rt = rt();
    let client = llm_client(&eng.socket);
    let opts = GenerateOpts { max_tokens: 400, temperature: 0.8, ..Default::default() };
    let (elapsed, res) = rt.block_on(async {
        let mut s = client.generate_stream(&user("Write a long story about a dentist."), &opts).await.unwrap();
        // Wait for the first token so generation is really in flight.
        assert!(matches!(s.next().await.unwrap(), Some(GenerateEvent::Token(_))));
        let id = s.id();
        let t = Instant::now();
        client.0.cancel(id).await;
        let mut after = 0usize;
        loop {
            match s.next().await {
                Ok(Some(GenerateEvent::Token(_))) => after += 1,
                other => break ((t.elapsed(), after), other),
            }
        }
    });
    let (elapsed, tokens_after) = elapsed;
    assert!(matches!(res, Err(EngineError::Cancelled)), "{res:?}");
    // Counted in tokens, not milliseconds: the engine checks for a cancel between tokens, so only
    // the few already in flight may follow (of up to 400), however loaded the machine is. The
    // wall time is a figure (a 250 ms bound failed at 275 ms in a CI run on a busy 2-core box).
    println!("cancel took {elapsed:?}, {tokens_after} tokens after it");
    assert!(tokens_after <= 8, "{tokens_after} tokens arrived after the cancel ({elapsed:?})");
    // The engine is still usable afterwards.
    let g = rt.block_on(client.generate(&user("Say hello."), &GenerateOpts { max_tokens: 8, ..Default::default() })).unwrap();
    assert!(g.generated_tokens > 0);
}

#[test]
fn bad_requests_and_missing_model() {
    let eng = llm_engine();
    let rt = rt();
    let client = llm_client(&eng.socket);
    let r = rt.block_on(client.generate(&[], &GenerateOpts::default()));
    assert!(matches!(r, Err(EngineError::BadRequest { .. })), "{r:?}");
    let r = rt.block_on(client.generate(&user("hi"), &GenerateOpts { grammar: Some("root ::= (".into()), ..Default::default() }));
    assert!(matches!(r, Err(EngineError::BadRequest { .. })), "{r:?}");
    let huge = "word ".repeat(5000);
    let r = rt.block_on(client.generate(&user(&huge), &GenerateOpts::default()));
    assert!(matches!(r, Err(EngineError::BadRequest { .. })), "{r:?}");

    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("bad.gguf");
    std::fs::write(&corrupt, b"GGUF but not really").unwrap();
    for m in [dir.path().join("missing.gguf"), corrupt] {
        let e = spawn_engine("frontdesk-llm", &["--model", m.to_str().unwrap()]);
        let c = llm_client(&e.socket);
        let r = rt.block_on(c.generate(&user("hi"), &GenerateOpts::default()));
        assert!(matches!(r, Err(EngineError::Model { .. })), "{r:?}");
    }
}

#[test]
fn long_history_is_truncated_but_system_prompt_kept() {
    let eng = spawn_engine("frontdesk-llm", &["--model", llm_model().to_str().unwrap(), "--ctx", "320"]);
    let rt = rt();
    // Behaviour, not speed: a generous timeout so a loaded CI machine does not fail this.
    let client = LlmClient(EngineClient::new("llm", &eng.socket, Timeouts::new(1000, 300_000)));
    rt.block_on(client.set_system_prompt(SYSTEM)).unwrap();
    // ~40 turns of ~25 tokens each: far more than the 320-token context.
    let mut msgs = Vec::new();
    for i in 0..40 {
        let role = if i % 2 == 0 { "user" } else { "assistant" };
        msgs.push(ChatMessage { role: role.into(), content: format!("Turn {i}: I would like to talk about my appointment and the weather and my insurance today.") });
    }
    msgs.push(ChatMessage { role: "user".into(), content: "Book me for Tuesday.".into() });
    let opts = GenerateOpts { json_schema: Some(schema()), max_tokens: 64, ..Default::default() };
    let g = rt.block_on(client.generate(&msgs, &opts)).unwrap();
    assert!(g.prompt_tokens < 320, "prompt {} tokens", g.prompt_tokens);
    let v: serde_json::Value = serde_json::from_str(&g.text).unwrap();
    assert!(v.get("intent").is_some());
}

/// A measurement, not a check (hence ignored): what the default model makes of the receptionist's
/// template replies when asked to rephrase them, and how long that takes. This is the evidence for
/// speaking templates (ARCHITECTURE.md, "Phrasing"): with SmolLM2-135M the offered times vanish,
/// unrelated apologies appear ("I'm sorry for your loss") and replies loop to the token limit, at
/// 307–1061 ms per reply on 2 cores (measured 2026-11-22) before the first word could be synthesized.
/// `cargo test -p fd-models --features engine-tests --test engines_llm -- --ignored --nocapture phrasing`
#[test]
#[ignore = "a measurement that prints; run by hand"]
fn phrasing_probe() {
    let eng = llm_engine();
    let rt = rt();
    let client = llm_client(&eng.socket);
    let system = "You are the friendly receptionist of Bright Smile Dental, on the phone. Rewrite the \
receptionist's next line so it sounds natural and warm. Keep every fact (names, days, dates, times, numbers) \
exactly as given. One or two short sentences. Output only the line.";
    rt.block_on(client.set_system_prompt(system)).unwrap();
    for line in [
        "Our office is closed right now. I can take a message, and someone will call you back. May I have your name?",
        "On Friday, March 6th I have 8 AM, 9 AM or 10 AM. Which works best for you?",
        "Let me read that back. A Consultation on Monday, March 16th at 10 AM, for Lena Park. Shall I book it?",
        "I see your Consultation on Wednesday, March 4th at 2 PM. What day would you like instead?",
        "Yes, we accept Delta Dental.",
    ] {
        let t0 = Instant::now();
        let g = rt.block_on(client.generate(&user(line), &GenerateOpts { max_tokens: 80, ..Default::default() })).unwrap();
        println!("{:5} ms {:3} tokens | {line}\n      -> {}", t0.elapsed().as_millis(), g.generated_tokens, g.text.trim());
    }
}
