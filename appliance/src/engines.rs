//! Engine supervisor and doctor.
//!
//! [`EngineSet::start`] spawns the four engine processes (`frontdesk-asr`, `-llm`, `-tts`, `-vad`),
//! plus a second `frontdesk-asr` at the lowest CPU priority when the bundle carries a model for
//! re-hearing names (role `asr-names`), waits until each answers `health`, and restarts any that exits (crash, OOM kill) with
//! exponential backoff. The clients it hands out reconnect by socket path, so a restart is
//! invisible to callers except that requests in flight at the crash get `Unavailable` at once.
//! Engine stderr is forwarded to tracing; engines never print transcripts or prompts.
//!
//! The lead wires this into `frontdesk` (`mod engines;`); it depends only on `fd-models`, tokio
//! and tracing.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fd_models::client::{AsrClient, EngineClient, EngineError, GenerateOpts, LlmClient, TranscribeOpts, TtsClient, VadClient};
use fd_models::protocol::ChatMessage;
use fd_models::ModelPaths;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

/// Which engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EngineKind {
    Asr,
    Llm,
    Tts,
    Vad,
    /// The background recogniser that re-hears turns carrying a name (optional).
    Names,
}

impl EngineKind {
    /// The engines every appliance runs.
    pub const ALL: [EngineKind; 4] = [EngineKind::Asr, EngineKind::Llm, EngineKind::Tts, EngineKind::Vad];

    /// The engines these models run: the four, and the names recogniser if there is a model.
    pub fn for_models(paths: &ModelPaths) -> Vec<EngineKind> {
        let mut k = EngineKind::ALL.to_vec();
        if paths.asr_names.is_some() {
            k.push(EngineKind::Names);
        }
        k
    }

    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Asr => "asr",
            EngineKind::Llm => "llm",
            EngineKind::Tts => "tts",
            EngineKind::Vad => "vad",
            EngineKind::Names => "asr-names",
        }
    }

    pub fn binary(self) -> &'static str {
        match self {
            EngineKind::Asr | EngineKind::Names => "frontdesk-asr",
            EngineKind::Llm => "frontdesk-llm",
            EngineKind::Tts => "frontdesk-tts",
            EngineKind::Vad => "frontdesk-vad",
        }
    }
}

/// Tunables for the engine set.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Threads for ASR/LLM/TTS (default min(cores, 4)); VAD always uses 1.
    pub threads: Option<u32>,
    /// LLM context length in tokens.
    pub llm_ctx: u32,
    /// How long an engine may take to load its model and answer `health`.
    pub start_timeout: Duration,
    /// First restart delay; doubles per consecutive crash up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            threads: None,
            llm_ctx: 2048,
            start_timeout: Duration::from_secs(60),
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
        }
    }
}

/// Start-up failures (each names the engine and carries its stderr tail).
#[derive(Debug, thiserror::Error)]
pub enum EnginesError {
    #[error("engine binary {0} not found; install the frontdesk package completely (the engines sit next to `frontdesk`)")]
    MissingBinary(PathBuf),
    #[error("cannot create the engine runtime directory {path}: {source}")]
    RuntimeDir { path: PathBuf, source: std::io::Error },
    #[error("cannot start the {engine} engine ({binary}): {source}")]
    Spawn { engine: &'static str, binary: PathBuf, source: std::io::Error },
    #[error("the {engine} engine did not become ready: {reason}. Its last output:\n{stderr_tail}")]
    NotReady { engine: &'static str, reason: String, stderr_tail: String },
}

const STDERR_TAIL_LINES: usize = 20;

/// Shared, observable state of one supervised engine.
struct Supervised {
    kind: EngineKind,
    socket: PathBuf,
    pid: AtomicU32,
    restarts: AtomicU64,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
}

impl Supervised {
    fn tail(&self) -> String {
        self.stderr_tail.lock().map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n")).unwrap_or_default()
    }
}

/// The running engines and their clients.
pub struct EngineSet {
    engines: Vec<Arc<Supervised>>,
    asr: AsrClient,
    llm: LlmClient,
    tts: TtsClient,
    vad: VadClient,
    names: Option<AsrClient>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Directory holding the engine binaries by default: the one containing the current executable.
pub fn default_bin_dir() -> Option<PathBuf> {
    std::env::current_exe().ok()?.parent().map(Path::to_path_buf)
}

fn engine_args(kind: EngineKind, paths: &ModelPaths, socket: &Path, cfg: &EngineConfig) -> Vec<String> {
    let mut a = vec!["--socket".to_string(), socket.display().to_string()];
    let p = |x: &Path| x.display().to_string();
    match kind {
        EngineKind::Asr => a.extend(["--model".into(), p(&paths.asr)]),
        // Lowest priority: it only gets the CPU the live call path leaves idle, so a caller never
        // waits for it. Its queue is short: a name that cannot be re-heard soon is not re-heard.
        EngineKind::Names => {
            let model = paths.asr_names.as_deref().map(p).unwrap_or_default();
            a.extend(["--model".into(), model, "--nice".into(), "19".into(), "--queue".into(), "2".into()])
        }
        EngineKind::Llm => a.extend(["--model".into(), p(&paths.llm), "--ctx".into(), cfg.llm_ctx.to_string()]),
        EngineKind::Tts => a.extend([
            "--model".into(),
            p(&paths.tts_model),
            "--config".into(),
            p(&paths.tts_config),
            "--onnxruntime".into(),
            p(&paths.onnxruntime),
        ]),
        EngineKind::Vad => a.extend(["--model".into(), p(&paths.vad), "--onnxruntime".into(), p(&paths.onnxruntime)]),
    }
    if let (Some(t), true) = (cfg.threads, kind != EngineKind::Vad) {
        a.extend(["--threads".into(), t.to_string()]);
    }
    a
}

fn spawn(kind: EngineKind, binary: &Path, args: &[String], sup: &Arc<Supervised>) -> Result<Child, EnginesError> {
    let mut cmd = Command::new(binary);
    cmd.args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|source| EnginesError::Spawn { engine: kind.name(), binary: binary.to_path_buf(), source })?;
    sup.pid.store(child.id().unwrap_or(0), Ordering::Relaxed);
    if let Some(err) = child.stderr.take() {
        let tail = sup.stderr_tail.clone();
        let name = kind.name();
        tokio::spawn(async move {
            let mut lines = BufReader::new(err).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::info!(target: "frontdesk::engines", engine = name, "{line}");
                if let Ok(mut t) = tail.lock() {
                    if t.len() == STDERR_TAIL_LINES {
                        t.pop_front();
                    }
                    t.push_back(line);
                }
            }
        });
    }
    Ok(child)
}

/// Poll `health` until ready, the process exits, or the timeout passes.
async fn wait_ready(kind: EngineKind, client: &EngineClient, child: &mut Child, sup: &Supervised, timeout: Duration) -> Result<(), EnginesError> {
    let deadline = Instant::now() + timeout;
    let not_ready = |reason: String| EnginesError::NotReady { engine: kind.name(), reason, stderr_tail: sup.tail() };
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            // Let the stderr reader catch the last lines.
            tokio::time::sleep(Duration::from_millis(50)).await;
            return Err(not_ready(format!("it exited with {status}")));
        }
        match client.health().await {
            Ok(h) if h.ready => return Ok(()),
            Ok(h) => return Err(not_ready(h.problem.unwrap_or_else(|| "it reports not ready".into()))),
            Err(_) => {}
        }
        if Instant::now() >= deadline {
            return Err(not_ready(format!("no health answer within {timeout:?}")));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl EngineSet {
    /// Start the engines (see [`EngineKind::for_models`]) and wait until each is ready. `bin_dir` defaults to the directory
    /// of the current executable; sockets go into `runtime_dir` (created, mode 0700).
    pub async fn start(bin_dir: Option<PathBuf>, paths: ModelPaths, runtime_dir: PathBuf, config: EngineConfig) -> Result<EngineSet, EnginesError> {
        let bin_dir = bin_dir.or_else(default_bin_dir).unwrap_or_else(|| PathBuf::from("."));
        std::fs::create_dir_all(&runtime_dir).map_err(|source| EnginesError::RuntimeDir { path: runtime_dir.clone(), source })?;
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&runtime_dir, std::fs::Permissions::from_mode(0o700));
        }
        let (stop, _) = watch::channel(false);
        let mut engines = Vec::new();
        let mut tasks = Vec::new();
        let mut children = Vec::new();
        // Spawn all first so their model loads overlap, then wait for each.
        for kind in EngineKind::for_models(&paths) {
            let binary = bin_dir.join(kind.binary());
            if !binary.is_file() {
                return Err(EnginesError::MissingBinary(binary));
            }
            let socket = runtime_dir.join(format!("{}.sock", kind.name()));
            let _ = std::fs::remove_file(&socket);
            let sup = Arc::new(Supervised {
                kind,
                socket: socket.clone(),
                pid: AtomicU32::new(0),
                restarts: AtomicU64::new(0),
                stderr_tail: Arc::new(Mutex::new(VecDeque::new())),
            });
            let args = engine_args(kind, &paths, &socket, &config);
            let child = spawn(kind, &binary, &args, &sup)?;
            children.push((kind, binary, args, child, sup.clone()));
            engines.push(sup);
        }
        for (kind, binary, args, mut child, sup) in children {
            let probe = EngineClient::new(kind.name(), sup.socket.clone(), fd_models::client::Timeouts::new(500, 2000));
            wait_ready(kind, &probe, &mut child, &sup, config.start_timeout).await?;
            tracing::info!(target: "frontdesk::engines", engine = kind.name(), pid = sup.pid.load(Ordering::Relaxed), "engine ready");
            tasks.push(tokio::spawn(supervise(kind, binary, args, child, sup, config.clone(), stop.subscribe())));
        }
        let sock = |k: EngineKind| runtime_dir.join(format!("{}.sock", k.name()));
        Ok(EngineSet {
            asr: AsrClient::new(sock(EngineKind::Asr)),
            llm: LlmClient::new(sock(EngineKind::Llm)),
            tts: TtsClient::new(sock(EngineKind::Tts)),
            vad: VadClient::new(sock(EngineKind::Vad)),
            names: paths.asr_names.is_some().then(|| AsrClient::new(sock(EngineKind::Names))),
            engines,
            stop,
            tasks,
        })
    }

    pub fn asr(&self) -> AsrClient {
        self.asr.clone()
    }
    pub fn llm(&self) -> LlmClient {
        self.llm.clone()
    }
    pub fn tts(&self) -> TtsClient {
        self.tts.clone()
    }
    pub fn vad(&self) -> VadClient {
        self.vad.clone()
    }
    /// The background recogniser for names, if the bundle has its model.
    pub fn names(&self) -> Option<AsrClient> {
        self.names.clone()
    }

    /// The engines running, in start order.
    pub fn kinds(&self) -> Vec<EngineKind> {
        self.engines.iter().map(|e| e.kind).collect()
    }

    /// Current process id of an engine (changes after a restart).
    pub fn pid(&self, kind: EngineKind) -> Option<u32> {
        self.engines.iter().find(|e| e.kind == kind).map(|e| e.pid.load(Ordering::Relaxed)).filter(|p| *p != 0)
    }

    /// How many times an engine has been restarted.
    pub fn restarts(&self, kind: EngineKind) -> u64 {
        self.engines.iter().find(|e| e.kind == kind).map(|e| e.restarts.load(Ordering::Relaxed)).unwrap_or(0)
    }

    fn client(&self, kind: EngineKind) -> Option<&EngineClient> {
        match kind {
            EngineKind::Asr => Some(&self.asr.0),
            EngineKind::Llm => Some(&self.llm.0),
            EngineKind::Tts => Some(&self.tts.0),
            EngineKind::Vad => Some(&self.vad.0),
            EngineKind::Names => self.names.as_ref().map(|c| &c.0),
        }
    }

    /// Wait until `kind` answers health again (after a restart), up to `timeout`.
    #[allow(dead_code)] // used by models/tests/engines_supervisor.rs, which includes this file
    pub async fn wait_healthy(&self, kind: EngineKind, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let Some(client) = self.client(kind) else { return false };
        while Instant::now() < deadline {
            if matches!(client.health().await, Ok(h) if h.ready) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Stop supervising and kill every engine.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

async fn supervise(
    kind: EngineKind,
    binary: PathBuf,
    args: Vec<String>,
    mut child: Child,
    sup: Arc<Supervised>,
    cfg: EngineConfig,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = cfg.min_backoff;
    let mut started = Instant::now();
    loop {
        tokio::select! {
            status = child.wait() => {
                let ran = started.elapsed();
                tracing::warn!(target: "frontdesk::engines", engine = kind.name(), status = %status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()), "engine exited; restarting");
                // A long healthy run resets the backoff; repeated quick crashes back off.
                if ran > Duration::from_secs(30) {
                    backoff = cfg.min_backoff;
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return,
                }
                backoff = (backoff * 2).min(cfg.max_backoff);
                match spawn(kind, &binary, &args, &sup) {
                    Ok(c) => {
                        child = c;
                        started = Instant::now();
                        sup.restarts.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        tracing::error!(target: "frontdesk::engines", engine = kind.name(), "{e}");
                        // Keep trying: a transient failure (fd exhaustion) must not end supervision.
                        tokio::select! {
                            _ = tokio::time::sleep(cfg.max_backoff) => {}
                            _ = stop.changed() => return,
                        }
                        continue;
                    }
                }
            }
            _ = stop.changed() => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                let _ = std::fs::remove_file(&sup.socket);
                return;
            }
        }
    }
}

// ---------------------------------------------------------------- doctor

/// One engine's line in the doctor report.
#[derive(Debug, Clone)]
pub struct EngineCheck {
    pub engine: &'static str,
    pub healthy: bool,
    pub problem: Option<String>,
    pub model: Option<String>,
    pub rss_bytes: Option<u64>,
    pub restarts: u64,
    /// Result of the real self-test (what was checked, or why it failed).
    pub self_test: Result<String, String>,
    pub self_test_ms: u64,
}

impl EngineCheck {
    pub fn ok(&self) -> bool {
        self.healthy && self.self_test.is_ok()
    }

    /// One line for `frontdesk doctor`.
    pub fn line(&self) -> String {
        let mem = self.rss_bytes.map(|b| format!("{} MB", b / 1_000_000)).unwrap_or_else(|| "?".into());
        match &self.self_test {
            Ok(m) if self.healthy => format!("ok    {:<4} {} rss {mem}, restarts {}: {m} ({} ms)", self.engine, self.model.as_deref().unwrap_or("?"), self.restarts, self.self_test_ms),
            Ok(m) => format!("FAIL  {:<4} not ready: {} ({m})", self.engine, self.problem.as_deref().unwrap_or("unknown")),
            Err(e) => format!("FAIL  {:<4} {}: {e}", self.engine, self.problem.as_deref().unwrap_or("self-test failed")),
        }
    }
}

/// The phrase the doctor synthesizes and transcribes back.
pub const DOCTOR_PHRASE: &str = "I would like to book an appointment on Tuesday morning.";

fn normalise(s: &str) -> String {
    s.to_lowercase().chars().map(|c| if c.is_alphanumeric() || c.is_whitespace() { c } else { ' ' }).collect::<String>().split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Health of every engine plus one real self-test each: TTS speaks [`DOCTOR_PHRASE`], ASR
/// transcribes it back, VAD must hear speech in it, and the LLM produces schema-constrained JSON.
pub async fn doctor(set: &EngineSet) -> Vec<EngineCheck> {
    let mut out = Vec::new();
    let t = Instant::now();
    let speech = set.tts.synthesize_all(DOCTOR_PHRASE, 16000).await;
    let tts_ms = t.elapsed().as_millis() as u64;
    for kind in set.kinds() {
        let Some(client) = set.client(kind) else { continue };
        let (healthy, problem) = match client.health().await {
            Ok(h) => (h.ready, h.problem),
            Err(e) => (false, Some(e.to_string())),
        };
        let info = client.info().await.ok();
        let t = Instant::now();
        let self_test: Result<String, String> = match kind {
            EngineKind::Tts => speech.as_ref().map(|p| format!("spoke {:.1} s of audio", p.len() as f32 / 16000.0)).map_err(|e| e.to_string()),
            EngineKind::Asr | EngineKind::Names => match &speech {
                Err(_) => Err("skipped: TTS failed, no audio to transcribe".into()),
                Ok(pcm) => match AsrClient(client.clone()).transcribe(pcm, &TranscribeOpts::default()).await {
                    Ok(tr) => {
                        let heard = normalise(&tr.text);
                        if heard.contains("appointment") && heard.contains("tuesday") {
                            Ok("transcribed the test phrase correctly".into())
                        } else {
                            // The transcript here is synthetic test speech, not patient data.
                            Err(format!("transcribed the test phrase as {heard:?}"))
                        }
                    }
                    Err(e) => Err(e.to_string()),
                },
            },
            EngineKind::Vad => match &speech {
                Err(_) => Err("skipped: TTS failed, no audio to test".into()),
                Ok(pcm) => vad_self_test(&set.vad, pcm).await,
            },
            EngineKind::Llm => llm_self_test(&set.llm).await,
        };
        let self_test_ms = if kind == EngineKind::Tts { tts_ms } else { t.elapsed().as_millis() as u64 };
        out.push(EngineCheck {
            engine: kind.name(),
            healthy,
            problem,
            model: info.as_ref().map(|i| i.model.clone()),
            rss_bytes: info.map(|i| i.rss_bytes),
            restarts: set.restarts(kind),
            self_test,
            self_test_ms,
        });
    }
    out
}

async fn vad_self_test(vad: &VadClient, pcm: &[i16]) -> Result<String, String> {
    let s = vad.open(16000).await.map_err(|e| e.to_string())?;
    let n = pcm.len() / s.frame_samples() * s.frame_samples();
    let probs = s.push(&pcm[..n]).await.map_err(|e| e.to_string())?;
    let silence = s.push(&vec![0i16; s.frame_samples() * 8]).await.map_err(|e| e.to_string())?;
    let _ = s.close().await;
    let max = probs.iter().cloned().fold(0.0f32, f32::max);
    let tail = silence.last().copied().unwrap_or(1.0);
    if max > 0.5 && tail < 0.3 {
        Ok(format!("speech p={max:.2}, silence p={tail:.2}"))
    } else {
        Err(format!("speech p={max:.2}, silence p={tail:.2}: not separating speech from silence"))
    }
}

async fn llm_self_test(llm: &LlmClient) -> Result<String, String> {
    let schema = serde_json::json!({
        "type": "object",
        "properties": {
            "intent": {"type": "string", "enum": ["book", "cancel", "reschedule", "message", "other"]},
            "day": {"type": ["string", "null"]}
        },
        "required": ["intent", "day"],
        "additionalProperties": false
    });
    let msgs = [ChatMessage { role: "user".into(), content: "Caller said: I want to book an appointment on Tuesday. Classify.".into() }];
    let opts = GenerateOpts { json_schema: Some(schema), max_tokens: 48, ..GenerateOpts::default() };
    let g = llm.generate(&msgs, &opts).await.map_err(|e: EngineError| e.to_string())?;
    let v: serde_json::Value = serde_json::from_str(&g.text).map_err(|e| format!("constrained output is not JSON ({e})"))?;
    match v.get("intent").and_then(|i| i.as_str()) {
        Some(i) => Ok(format!("constrained JSON ok (intent {i}, {} tokens)", g.generated_tokens)),
        None => Err("constrained output lacks `intent`".into()),
    }
}
