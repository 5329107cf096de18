//! The client counts the work it has sent and not yet finished with, across its clones: the
//! appliance starts speculative transcriptions only while the recogniser is idle.

use std::time::Duration;

use fd_models::client::{AsrClient, TranscribeOpts};
use fd_models::protocol::{ErrorCode, Request, Response};
use fd_models::protocol_server::{serve, Engine, EngineInfo, Failure, Job};

/// Holds every transcription until it is cancelled, then reports the cancel.
struct Holds;

impl Engine for Holds {
    fn handle(&mut self, job: &Job) -> Result<(Response, Vec<u8>), Failure> {
        while !job.cancelled() {
            std::thread::sleep(Duration::from_millis(5));
        }
        Err(Failure::new(ErrorCode::Cancelled, "cancelled"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_in_flight_counts_open_work_requests_only() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("asr.sock");
    let s = socket.clone();
    std::thread::spawn(move || {
        let info = EngineInfo { engine: "asr".into(), model: "test".into(), threads: 1, problem: None };
        let _ = serve(&s, info, Ok(Box::new(Holds)), 4);
    });
    let client = AsrClient::new(&socket);
    for _ in 0..100 {
        if client.0.health().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(client.0.work_in_flight(), 0);

    // A clone (another call's handle on the same engine) sees the same count.
    let other = client.clone();
    let pcm = vec![0i16; 1600];
    let run = tokio::spawn(async move { other.transcribe(&pcm, &TranscribeOpts::default()).await });
    let mut seen = 0;
    for _ in 0..100 {
        seen = client.0.work_in_flight();
        if seen == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(seen, 1, "the transcription in flight is counted");
    // Liveness checks are not work.
    client.0.health().await.unwrap();
    assert_eq!(client.0.work_in_flight(), 1);

    // Dropping the request (the speculation was discarded) cancels it and uncounts it.
    run.abort();
    let _ = run.await;
    assert_eq!(client.0.work_in_flight(), 0);

    // A request that ends (here with the engine's error) is uncounted too.
    let s = client.0.request(|id| Request::Transcribe { id, sample_rate: 16_000, prompt: None, audio_ctx: None, bias: Vec::new() }, &[0u8; 320]).await.unwrap();
    assert_eq!(client.0.work_in_flight(), 1);
    s.cancel().await;
    assert_eq!(client.0.work_in_flight(), 0);
}
