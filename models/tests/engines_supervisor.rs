//! The supervisor (appliance/src/engines.rs, compiled here until the lead wires it into
//! `frontdesk`): start, kill -9 mid-request, restart, doctor.

mod engines_common;
use engines_common::*;

#[path = "../../appliance/src/engines.rs"]
#[allow(dead_code)]
mod engines;
use engines::{doctor, EngineConfig, EngineKind, EngineSet};

use std::time::{Duration, Instant};

use fd_models::client::{EngineError, GenerateOpts};
use fd_models::protocol::ChatMessage;

#[test]
fn crash_gives_unavailable_then_restart_serves_and_doctor_passes() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let set = EngineSet::start(Some(bin_dir()), model_paths(), dir.path().join("run"), EngineConfig::default())
            .await
            .expect("engines start");
        let llm = set.llm();
        let msgs = vec![ChatMessage { role: "user".into(), content: "Write a long story about teeth.".into() }];
        let opts = GenerateOpts { max_tokens: 400, temperature: 0.8, ..Default::default() };
        let mut stream = llm.generate_stream(&msgs, &opts).await.unwrap();
        assert!(stream.next().await.unwrap().is_some());
        let pid = set.pid(EngineKind::Llm).unwrap();
        let t = Instant::now();
        std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
        let r = loop {
            match stream.next().await {
                Ok(Some(_)) => continue,
                other => break other,
            }
        };
        assert!(matches!(r, Err(EngineError::Unavailable { .. })), "{r:?}");
        // Failing fast, not hanging; room for a busy 2-core machine.
        assert!(t.elapsed() < Duration::from_secs(3), "took {:?}", t.elapsed());
        assert!(set.wait_healthy(EngineKind::Llm, Duration::from_secs(30)).await, "LLM did not come back");
        assert_ne!(set.pid(EngineKind::Llm), Some(pid));
        assert_eq!(set.restarts(EngineKind::Llm), 1);
        let g = llm.generate(&msgs, &GenerateOpts { max_tokens: 8, ..Default::default() }).await.unwrap();
        assert!(g.generated_tokens > 0);

        let report = doctor(&set).await;
        for c in &report {
            println!("{}", c.line());
        }
        assert_eq!(report.len(), 4);
        assert!(report.iter().all(|c| c.ok()), "doctor failed");
        set.shutdown().await;
    });
}

#[test]
fn start_fails_clearly_when_a_model_is_broken() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let mut paths = model_paths();
    paths.llm = dir.path().join("missing.gguf");
    let r = rt.block_on(EngineSet::start(Some(bin_dir()), paths, dir.path().join("run"), EngineConfig::default()));
    let e = r.err().expect("must fail").to_string();
    assert!(e.contains("llm") && e.contains("missing.gguf"), "{e}");
}
