//! How engines share their one worker between calls: a speculative request gives way to any
//! other work, and a request dropped while it is being sent does not corrupt the connection the
//! calls share.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fd_models::client::{AsrClient, EngineError, TranscribeOpts};
use fd_models::protocol::{pcm_to_bytes, Request, Response};
use fd_models::protocol_server::{serve, Engine, EngineInfo, Failure, Job};

/// Holds a speculative transcription until it is cancelled, then reports the cancel; answers the
/// others at once. `holding` counts the speculations it is holding right now.
struct Holds {
    holding: Arc<AtomicUsize>,
}

impl Engine for Holds {
    fn handle(&mut self, job: &Job) -> Result<(Response, Vec<u8>), Failure> {
        if job.request.is_speculative() {
            self.holding.fetch_add(1, Ordering::SeqCst);
            while !job.cancelled() {
                std::thread::sleep(Duration::from_millis(5));
            }
            self.holding.fetch_sub(1, Ordering::SeqCst);
            return Err(Failure::cancelled());
        }
        let text = "heard".to_string();
        Ok((Response::Transcript { id: job.request.id(), text, segments: Vec::new(), audio_ctx: 0, skipped_silence: false }, Vec::new()))
    }
}

/// An engine on a fresh socket, a client that has seen it answer, and the engine's count of
/// speculations it is holding.
async fn engine() -> (tempfile::TempDir, AsrClient, Arc<AtomicUsize>) {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("asr.sock");
    let s = socket.clone();
    let holding = Arc::new(AtomicUsize::new(0));
    let h = holding.clone();
    std::thread::spawn(move || {
        let info = EngineInfo { engine: "asr".into(), model: "test".into(), threads: 1, problem: None };
        let _ = serve(&s, info, Ok(Box::new(Holds { holding: h })), 4);
    });
    let client = AsrClient::new(&socket);
    for _ in 0..100 {
        if client.0.health().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (dir, client, holding)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_turn_preempts_speculative_transcriptions_running_or_queued() {
    let (_dir, client, holding) = engine().await;
    let pcm = vec![0i16; 1600];
    let speculative = TranscribeOpts { speculative: true, ..Default::default() };
    // One caller's speculation runs (held by the engine)…
    let running = tokio::spawn({
        let (c, pcm, o) = (client.clone(), pcm.clone(), speculative.clone());
        async move { c.transcribe(&pcm, &o).await }
    });
    while holding.load(Ordering::SeqCst) < 1 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // …another's waits behind it. Frames reach the engine in the order they are sent, so it has
    // this one before the finished turn below.
    let spec = |id| Request::Transcribe { id, sample_rate: 16_000, prompt: None, audio_ctx: None, bias: Vec::new(), speculative: true };
    let mut queued = client.0.request(spec, &pcm_to_bytes(&pcm)).await.unwrap();
    // A third caller's turn is over: it is heard now, not after the speculations.
    let t = tokio::time::timeout(Duration::from_secs(5), client.transcribe(&pcm, &TranscribeOpts::default())).await;
    assert_eq!(t.expect("the finished turn waited behind speculation").unwrap().text, "heard");
    // Both speculations were told there was no room (their turns get their own runs if they end).
    let r = tokio::time::timeout(Duration::from_secs(5), running).await.expect("the running speculation was never stopped").unwrap();
    assert!(matches!(r, Err(EngineError::Busy { .. })), "{r:?}");
    let q = tokio::time::timeout(Duration::from_secs(5), queued.next()).await.expect("the queued speculation was never stopped");
    assert!(matches!(q, Err(EngineError::Busy { .. })), "{q:?}");
    // A speculation alone is not preempted by anything but other work.
    let alone = tokio::spawn({
        let (c, o) = (client.clone(), speculative.clone());
        async move { c.transcribe(&pcm, &o).await }
    });
    while holding.load(Ordering::SeqCst) < 1 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    client.0.health().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!alone.is_finished(), "a health check preempted the speculation");
    alone.abort();
}

/// A call drops its speculative transcription the moment the caller speaks on, which may be in
/// the middle of sending a long turn's audio to the engine. The frame must still go out whole:
/// half a frame followed by the next request is garbage to the engine, which then drops the
/// connection and every other call's request on it ("connection lost mid-request").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_dropped_while_its_audio_is_being_sent_does_not_corrupt_the_connection() {
    use fd_models::protocol::FrameDecoder;
    use tokio::io::AsyncReadExt;

    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("asr.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let client = AsrClient::new(&socket);
    let (accepted_tx, accepted_rx) = tokio::sync::oneshot::channel();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let _ = accepted_tx.send(());
        stream
    });
    // 20 s of audio (640 kB): more than the socket buffers hold while the engine reads nothing.
    let long_turn = vec![0x1234i16; 20 * 16_000];
    let dropped = tokio::time::timeout(
        Duration::from_millis(300),
        client.transcribe(&long_turn, &TranscribeOpts { speculative: true, ..Default::default() }),
    )
    .await;
    assert!(dropped.is_err(), "the send was expected to be still under way (the engine reads nothing yet)");
    accepted_rx.await.unwrap();
    let mut stream = server.await.unwrap();

    // Another request on the same client, then the engine starts reading.
    let next = tokio::spawn({
        let c = client.clone();
        async move { c.transcribe(&[0i16; 1600], &TranscribeOpts::default()).await }
    });
    let mut dec = FrameDecoder::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut kinds = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !kinds.iter().any(|(k, spec): &(String, bool)| k == "transcribe" && !spec) {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf)).await.expect("the next request never arrived").unwrap();
        assert!(n > 0, "the client closed the connection");
        dec.push(&buf[..n]);
        while let Some(frame) = dec.next_frame().expect("the byte stream is no longer valid frames") {
            let req: Request = frame.parse().expect("a frame that is not a request");
            kinds.push((req.kind().to_string(), req.is_speculative()));
        }
    }
    next.abort();
    // The dropped request went out whole and was then cancelled.
    assert_eq!(kinds[0], ("transcribe".to_string(), true), "{kinds:?}");
    assert!(kinds.iter().any(|(k, _)| k == "cancel"), "{kinds:?}");
}
