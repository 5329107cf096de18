//! Engine side of the protocol: a Unix-socket server that every engine binary runs.
//!
//! The model lives on one dedicated worker thread (inference is CPU-bound and models are not
//! `Sync`); the socket side is a small tokio loop. `health` and `info` are answered by the socket
//! side, so a busy model never looks dead. Work requests go through a bounded queue: when it is
//! full the request gets `busy` at once instead of waiting unboundedly. `cancel` sets a flag the
//! engine checks between tokens / sentences / queue pick-up. A speculative request (a
//! transcription started before the caller's turn is over) gives way to any other work: it is
//! cancelled, queued or running, and answered `busy`, as if there had been no room for it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;
use tokio::sync::mpsc;

use crate::protocol::{encode_frame, ErrorCode, FrameDecoder, Request, Response};

/// Static description of a running engine.
#[derive(Debug, Clone)]
pub struct EngineInfo {
    /// `asr`, `llm`, `tts`, `vad`.
    pub engine: String,
    /// Model file name (no directory: paths are not interesting to the caller).
    pub model: String,
    pub threads: u32,
    /// `Some(reason)` when the model failed to load: every work request then gets `model`.
    pub problem: Option<String>,
}

/// A failure an engine reports for one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub code: ErrorCode,
    pub message: String,
}

impl Failure {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }
    pub fn cancelled() -> Self {
        Self::new(ErrorCode::Cancelled, "cancelled by the client")
    }
    /// A speculative request that gave way to other work: `busy`, as if the queue had been full.
    pub fn preempted() -> Self {
        Self::new(ErrorCode::Busy, "speculative work gave way to a finished turn")
    }
}

/// One unit of work handed to the engine's worker thread.
pub struct Job {
    /// Connection it came from (VAD keys its per-stream state by connection + stream).
    pub conn: u64,
    pub request: Request,
    pub payload: Vec<u8>,
    cancel: Arc<AtomicBool>,
    /// Set (with `cancel`) when other work preempted this speculative request.
    preempted: Arc<AtomicBool>,
    out: mpsc::UnboundedSender<Vec<u8>>,
}

impl Job {
    /// Has the client cancelled this request (or gone away)?
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed) || self.out.is_closed()
    }

    /// The cancel flag itself, for model libraries that poll an abort callback.
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.cancel.clone()
    }

    /// Stream a non-terminal response (token, audio chunk).
    pub fn emit(&self, response: &Response, payload: &[u8]) {
        if let Ok(frame) = encode_frame(response, payload) {
            // A closed connection is noticed through `cancelled()`.
            let _ = self.out.send(frame);
        }
    }
}

/// What an engine implements. Runs on the worker thread only.
pub trait Engine: Send + 'static {
    /// Handle one work request; return its terminal response (or a failure).
    fn handle(&mut self, job: &Job) -> Result<(Response, Vec<u8>), Failure>;
    /// A connection closed: drop any per-connection state (VAD streams).
    fn connection_closed(&mut self, _conn: u64) {}
}

/// An engine whose model failed to load: answers every work request with `model`.
struct Broken(String);

impl Engine for Broken {
    fn handle(&mut self, _job: &Job) -> Result<(Response, Vec<u8>), Failure> {
        Err(Failure::new(ErrorCode::Model, self.0.clone()))
    }
}

/// Server start-up failures.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {path}: {source}; check that the runtime directory exists and is writable")]
    Bind { path: PathBuf, source: std::io::Error },
    #[error("cannot start the engine's async runtime: {0}")]
    Runtime(std::io::Error),
}

enum WorkerMsg {
    Job(Job),
    Closed(u64),
}

/// Work requests queued or running, by (connection, request id).
type CancelMap = Arc<Mutex<HashMap<(u64, u64), Pending>>>;

struct Pending {
    cancel: Arc<AtomicBool>,
    /// `Some` for a speculative request: its preempted flag.
    speculative: Option<Arc<AtomicBool>>,
}

/// Resident set size of this process in bytes, from /proc (0 if unavailable).
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()))
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// Serve `engine` (or, if loading failed, a broken engine that reports why) on `socket`
/// until the process is killed. `queue` bounds the number of work requests waiting.
pub fn serve(
    socket: &Path,
    info: EngineInfo,
    engine: Result<Box<dyn Engine>, String>,
    queue: usize,
) -> Result<(), ServerError> {
    let mut info = info;
    let engine: Box<dyn Engine> = match engine {
        Ok(e) => e,
        Err(problem) => {
            info.problem = Some(problem.clone());
            Box::new(Broken(problem))
        }
    };
    let cancels: CancelMap = Arc::new(Mutex::new(HashMap::new()));
    let (work_tx, work_rx) = std_mpsc::sync_channel::<WorkerMsg>(queue.max(1));
    let worker_cancels = cancels.clone();
    std::thread::Builder::new()
        .name("engine-worker".into())
        .spawn(move || worker(engine, work_rx, worker_cancels))
        .map_err(ServerError::Runtime)?;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ServerError::Runtime)?;
    rt.block_on(async move {
        let _ = std::fs::remove_file(socket);
        let listener = UnixListener::bind(socket)
            .map_err(|source| ServerError::Bind { path: socket.to_path_buf(), source })?;
        // Owner-only: the socket carries patient audio and text.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600));
        }
        let info = Arc::new(info);
        let next_conn = AtomicU64::new(1);
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let conn = next_conn.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(connection(conn, stream, info.clone(), work_tx.clone(), cancels.clone()));
        }
    })
}

fn worker(mut engine: Box<dyn Engine>, rx: std_mpsc::Receiver<WorkerMsg>, cancels: CancelMap) {
    while let Ok(msg) = rx.recv() {
        let job = match msg {
            WorkerMsg::Closed(conn) => {
                engine.connection_closed(conn);
                continue;
            }
            WorkerMsg::Job(job) => job,
        };
        let id = job.request.id();
        let result = if job.cancelled() {
            Err(Failure::cancelled())
        } else {
            // A panic inside a model library must not kill the engine silently mid-request.
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| engine.handle(&job))) {
                Ok(r) => r,
                Err(_) => Err(Failure::internal("the engine panicked while handling the request")),
            }
        };
        // Stopped to make way (before or during the run): `busy`, so the client retries later.
        // A run that finished anyway keeps its result.
        let result = match result {
            Err(_) if job.preempted.load(Ordering::Relaxed) => Err(Failure::preempted()),
            r => r,
        };
        let (resp, payload) = match result {
            Ok(ok) => ok,
            Err(f) => (Response::error(id, f.code, f.message), Vec::new()),
        };
        if let Ok(frame) = encode_frame(&resp, &payload) {
            let _ = job.out.send(frame);
        }
        if let Ok(mut m) = cancels.lock() {
            m.remove(&(job.conn, id));
        }
    }
}

async fn connection(
    conn: u64,
    stream: tokio::net::UnixStream,
    info: Arc<EngineInfo>,
    work: std_mpsc::SyncSender<WorkerMsg>,
    cancels: CancelMap,
) {
    let (mut rd, mut wr) = stream.into_split();
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::spawn(async move {
        while let Some(frame) = out_rx.recv().await {
            if wr.write_all(&frame).await.is_err() {
                break;
            }
        }
    });
    let send = |resp: Response| {
        if let Ok(f) = encode_frame(&resp, &[]) {
            let _ = out_tx.send(f);
        }
    };
    let mut dec = FrameDecoder::new();
    let mut buf = vec![0u8; 64 * 1024];
    'read: loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        dec.push(&buf[..n]);
        loop {
            let frame = match dec.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                // Framing is lost: nothing after this can be trusted.
                Err(_) => break 'read,
            };
            let req: Request = match frame.parse() {
                Ok(r) => r,
                Err(e) => {
                    send(Response::error(frame.id_hint().unwrap_or(0), ErrorCode::BadRequest, e.to_string()));
                    continue;
                }
            };
            let id = req.id();
            match req {
                Request::Health { .. } => send(Response::Health {
                    id,
                    engine: info.engine.clone(),
                    ready: info.problem.is_none(),
                    problem: info.problem.clone(),
                }),
                Request::Info { .. } => send(Response::Info {
                    id,
                    engine: info.engine.clone(),
                    model: info.model.clone(),
                    threads: info.threads,
                    rss_bytes: rss_bytes(),
                }),
                Request::Cancel { target, .. } => {
                    if let Ok(m) = cancels.lock() {
                        if let Some(p) = m.get(&(conn, target)) {
                            p.cancel.store(true, Ordering::Relaxed);
                        }
                    }
                    send(Response::Ok { id });
                }
                request => {
                    let cancel = Arc::new(AtomicBool::new(false));
                    let preempted = Arc::new(AtomicBool::new(false));
                    let speculative = request.is_speculative();
                    if let Ok(mut m) = cancels.lock() {
                        if !speculative {
                            // Other work goes first: every speculative request gives way.
                            for p in m.values() {
                                if let Some(flag) = &p.speculative {
                                    flag.store(true, Ordering::Relaxed);
                                    p.cancel.store(true, Ordering::Relaxed);
                                }
                            }
                        }
                        m.insert((conn, id), Pending { cancel: cancel.clone(), speculative: speculative.then(|| preempted.clone()) });
                    }
                    let job = Job { conn, request, payload: frame.payload, cancel, preempted, out: out_tx.clone() };
                    match work.try_send(WorkerMsg::Job(job)) {
                        Ok(()) => {}
                        Err(std_mpsc::TrySendError::Full(_)) => {
                            if let Ok(mut m) = cancels.lock() {
                                m.remove(&(conn, id));
                            }
                            send(Response::error(id, ErrorCode::Busy, "engine queue is full; retry shortly"));
                        }
                        Err(std_mpsc::TrySendError::Disconnected(_)) => {
                            send(Response::error(id, ErrorCode::Internal, "engine worker has stopped"));
                        }
                    }
                }
            }
        }
    }
    // Client gone: cancel everything it had in flight, free its state.
    if let Ok(m) = cancels.lock() {
        for ((c, _), p) in m.iter() {
            if *c == conn {
                p.cancel.store(true, Ordering::Relaxed);
            }
        }
    }
    let work2 = work.clone();
    // The queue may be momentarily full; deliver the close notice without blocking the runtime.
    let _ = tokio::task::spawn_blocking(move || work2.send(WorkerMsg::Closed(conn)).is_ok()).await;
    drop(out_tx);
    let _ = writer.await;
}
