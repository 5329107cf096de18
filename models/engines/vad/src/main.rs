//! Silero VAD engine process (ONNX Runtime).
//!
//! `frontdesk-vad --socket PATH --model silero_vad.onnx --onnxruntime libonnxruntime.so [--threads 1]`
//!
//! Streams are opened per call leg; each keeps Silero's recurrent state and the last samples of
//! the previous frame as context (Silero v5 expects 64 samples of context at 16 kHz, 32 at 8 kHz,
//! prepended to each 512/256-sample frame). One probability per frame.

use std::collections::HashMap;
use std::path::PathBuf;

use clap::Parser;
use fd_models::protocol::{bytes_to_pcm, Request, Response};
use fd_models::protocol_server::{serve, Engine, EngineInfo, Failure, Job};
use ort::session::Session;
use ort::value::Tensor;

#[derive(Parser, Debug)]
#[command(name = "frontdesk-vad", about = "Front Desk Silero VAD engine")]
struct Args {
    #[arg(long)]
    socket: PathBuf,
    /// Silero VAD model (.onnx, v5 interface: input/state/sr).
    #[arg(long)]
    model: PathBuf,
    /// ONNX Runtime shared library (libonnxruntime.so.*).
    #[arg(long)]
    onnxruntime: PathBuf,
    /// One thread is plenty: a frame costs well under a millisecond.
    #[arg(long, default_value_t = 1)]
    threads: u32,
    /// Open streams allowed (one per concurrent call leg).
    #[arg(long, default_value_t = 64)]
    max_streams: usize,
    #[arg(long, default_value_t = 16)]
    queue: usize,
}

const STATE_LEN: usize = 2 * 128;

struct Stream {
    rate: u32,
    state: Vec<f32>,
    context: Vec<f32>,
}

impl Stream {
    fn new(rate: u32) -> Self {
        Self { rate, state: vec![0.0; STATE_LEN], context: vec![0.0; context_len(rate)] }
    }
}

fn frame_len(rate: u32) -> usize {
    if rate == 8000 {
        256
    } else {
        512
    }
}

fn context_len(rate: u32) -> usize {
    if rate == 8000 {
        32
    } else {
        64
    }
}

struct Vad {
    session: Session,
    streams: HashMap<(u64, u64), Stream>,
    max_streams: usize,
}

fn init_onnxruntime(lib: &std::path::Path) -> Result<(), String> {
    // ort rc.12 deadlocks when the library path is missing: check first.
    if !lib.is_file() {
        return Err(format!("ONNX Runtime library {} is missing; reinstall the model bundle", lib.display()));
    }
    let builder = ort::init_from(lib).map_err(|e| format!("ONNX Runtime {} could not be loaded: {e}", lib.display()))?;
    builder.with_name("frontdesk-vad").commit();
    Ok(())
}

fn load(args: &Args) -> Result<Vad, String> {
    init_onnxruntime(&args.onnxruntime)?;
    if !args.model.is_file() {
        return Err(format!("Silero VAD model {} is missing; reinstall the model bundle", args.model.display()));
    }
    let bad = |e: &dyn std::fmt::Display| {
        format!("Silero VAD model {} could not be loaded ({e}); the file is corrupt — reinstall the model bundle", args.model.display())
    };
    let builder = Session::builder().map_err(|e| bad(&e))?;
    let builder = builder.with_intra_threads(args.threads.max(1) as usize).map_err(|e| bad(&e))?;
    let mut builder = builder.with_inter_threads(1).map_err(|e| bad(&e))?;
    let session = builder.commit_from_file(&args.model).map_err(|e| bad(&e))?;
    let names: Vec<String> = session.inputs().iter().map(|i| i.name().to_string()).collect();
    for want in ["input", "state", "sr"] {
        if !names.iter().any(|n| n == want) {
            return Err(format!(
                "{} is not a Silero VAD v5 model (inputs {names:?}); use the bundle's silero_vad.onnx",
                args.model.display()
            ));
        }
    }
    Ok(Vad { session, streams: HashMap::new(), max_streams: args.max_streams })
}

impl Vad {
    fn run_frame(session: &mut Session, st: &mut Stream, frame: &[i16]) -> Result<f32, Failure> {
        let ctx = st.context.len();
        let mut input = Vec::with_capacity(ctx + frame.len());
        input.extend_from_slice(&st.context);
        input.extend(frame.iter().map(|&s| s as f32 / 32768.0));
        let n = input.len();
        st.context.copy_from_slice(&input[n - ctx..]);
        let err = |e: ort::Error| Failure::internal(format!("Silero inference failed: {e}"));
        let input_t = Tensor::from_array(([1usize, n], input.into_boxed_slice())).map_err(err)?;
        let state_t = Tensor::from_array(([2usize, 1, 128], st.state.clone().into_boxed_slice())).map_err(err)?;
        let sr_t = Tensor::from_array(((), vec![st.rate as i64].into_boxed_slice())).map_err(err)?;
        let outputs = session
            .run(ort::inputs!["input" => input_t, "state" => state_t, "sr" => sr_t])
            .map_err(err)?;
        let (_, prob) = outputs["output"].try_extract_tensor::<f32>().map_err(err)?;
        let p = prob.first().copied().unwrap_or(0.0);
        let (_, state) = outputs["stateN"].try_extract_tensor::<f32>().map_err(err)?;
        if state.len() == STATE_LEN {
            st.state.copy_from_slice(state);
        }
        Ok(p)
    }
}

impl Engine for Vad {
    fn handle(&mut self, job: &Job) -> Result<(Response, Vec<u8>), Failure> {
        let conn = job.conn;
        match &job.request {
            Request::VadOpen { id, sample_rate } => {
                if *sample_rate != 16000 && *sample_rate != 8000 {
                    return Err(Failure::bad_request(format!("sample rate {sample_rate} Hz: Silero takes 16000 or 8000 Hz")));
                }
                if self.streams.len() >= self.max_streams {
                    return Err(Failure::new(fd_models::protocol::ErrorCode::Busy, "too many open VAD streams"));
                }
                self.streams.insert((conn, *id), Stream::new(*sample_rate));
                Ok((Response::VadOpened { id: *id, frame_samples: frame_len(*sample_rate) as u32 }, vec![]))
            }
            Request::VadPush { id, stream } => {
                let st = self
                    .streams
                    .get_mut(&(conn, *stream))
                    .ok_or_else(|| Failure::bad_request("unknown VAD stream (closed, or opened on another connection)"))?;
                let pcm = bytes_to_pcm(&job.payload).ok_or_else(|| Failure::bad_request("audio payload has an odd number of bytes"))?;
                let fl = frame_len(st.rate);
                if pcm.is_empty() || pcm.len() % fl != 0 {
                    return Err(Failure::bad_request(format!("push whole frames of {fl} samples at {} Hz (got {})", st.rate, pcm.len())));
                }
                let mut probs = Vec::with_capacity(pcm.len() / fl);
                for frame in pcm.chunks_exact(fl) {
                    probs.push(Self::run_frame(&mut self.session, st, frame)?);
                }
                Ok((Response::VadProbs { id: *id, probs }, vec![]))
            }
            Request::VadClose { id, stream } => {
                self.streams.remove(&(conn, *stream));
                Ok((Response::Ok { id: *id }, vec![]))
            }
            other => Err(Failure::bad_request(format!("the VAD engine does not handle `{}`", other.kind()))),
        }
    }

    fn connection_closed(&mut self, conn: u64) {
        self.streams.retain(|(c, _), _| *c != conn);
    }
}

fn main() {
    let args = Args::parse();
    let model = args.model.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let engine = load(&args).map(|e| Box::new(e) as Box<dyn Engine>);
    if let Err(e) = &engine {
        eprintln!("frontdesk-vad: {e}");
    }
    let info = EngineInfo { engine: "vad".into(), model, threads: args.threads, problem: None };
    if let Err(e) = serve(&args.socket, info, engine, args.queue) {
        eprintln!("frontdesk-vad: {e}");
        std::process::exit(1);
    }
}
