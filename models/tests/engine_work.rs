//! How engines share their one worker between calls: the client counts the work it has sent and
//! not yet finished with, across its clones (the appliance starts speculative transcriptions only
//! while the recogniser is idle), and a speculative request gives way to any other work.

use std::time::Duration;

use fd_models::client::{AsrClient, EngineError, TranscribeOpts};
use fd_models::protocol::{Request, Response};
use fd_models::protocol_server::{serve, Engine, EngineInfo, Failure, Job};

/// Holds a speculative transcription (or any, when `hold_all`) until it is cancelled, then
/// reports the cancel; answers the others at once.
struct Holds {
    hold_all: bool,
}

impl Engine for Holds {
    fn handle(&mut self, job: &Job) -> Result<(Response, Vec<u8>), Failure> {
        if self.hold_all || job.request.is_speculative() {
            while !job.cancelled() {
                std::thread::sleep(Duration::from_millis(5));
            }
            return Err(Failure::cancelled());
        }
        let text = "heard".to_string();
        Ok((Response::Transcript { id: job.request.id(), text, segments: Vec::new(), audio_ctx: 0, skipped_silence: false }, Vec::new()))
    }
}

/// An engine on a fresh socket, and a client that has seen it answer.
async fn engine(hold_all: bool) -> (tempfile::TempDir, AsrClient) {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("asr.sock");
    let s = socket.clone();
    std::thread::spawn(move || {
        let info = EngineInfo { engine: "asr".into(), model: "test".into(), threads: 1, problem: None };
        let _ = serve(&s, info, Ok(Box::new(Holds { hold_all })), 4);
    });
    let client = AsrClient::new(&socket);
    for _ in 0..100 {
        if client.0.health().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (dir, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_in_flight_counts_open_work_requests_only() {
    let (_dir, client) = engine(true).await;
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
    let s = client.0.request(|id| Request::Transcribe { id, sample_rate: 16_000, prompt: None, audio_ctx: None, bias: Vec::new(), speculative: false }, &[0u8; 320]).await.unwrap();
    assert_eq!(client.0.work_in_flight(), 1);
    s.cancel().await;
    assert_eq!(client.0.work_in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_turn_preempts_speculative_transcriptions_running_or_queued() {
    let (_dir, client) = engine(false).await;
    let pcm = vec![0i16; 1600];
    let speculative = TranscribeOpts { speculative: true, ..Default::default() };
    // One caller's speculation runs (held by the engine), another's waits behind it.
    let running = tokio::spawn({
        let (c, pcm, o) = (client.clone(), pcm.clone(), speculative.clone());
        async move { c.transcribe(&pcm, &o).await }
    });
    let queued = tokio::spawn({
        let (c, pcm, o) = (client.clone(), pcm.clone(), speculative.clone());
        async move { c.transcribe(&pcm, &o).await }
    });
    while client.0.work_in_flight() < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A third caller's turn is over: it is heard now, not after the speculations.
    let t = tokio::time::timeout(Duration::from_secs(5), client.transcribe(&pcm, &TranscribeOpts::default())).await;
    assert_eq!(t.expect("the finished turn waited behind speculation").unwrap().text, "heard");
    // Both speculations were told there was no room (their turns get their own runs if they end).
    for h in [running, queued] {
        let r = tokio::time::timeout(Duration::from_secs(5), h).await.expect("the speculation was never stopped").unwrap();
        assert!(matches!(r, Err(EngineError::Busy { .. })), "{r:?}");
    }
    // A speculation alone is not preempted by anything but other work.
    let alone = tokio::spawn({
        let (c, o) = (client.clone(), speculative.clone());
        async move { c.transcribe(&pcm, &o).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
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
