//! The one error type of the harness. Messages say what to install or check.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not start `{program}` ({source}); install the Debian package `{package}`")]
    Spawn {
        program: String,
        package: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("`{program}` failed: {detail}")]
    Tool { program: String, detail: String },
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("baresip control connection (ctrl_tcp) failed: {0}")]
    Control(String),
    #[error("call to {target} was not established within {secs} s (is the appliance running and listening there? see {log})")]
    SetupTimeout { target: String, secs: u64, log: PathBuf },
    #[error("call ended by the far end: {0}")]
    CallClosed(String),
    #[error("timed out after {secs} s waiting for {what}")]
    Timeout { what: String, secs: u64 },
    #[error("capture could not be parsed: {0}")]
    Capture(String),
    #[error("WAV file {path} is not usable: {detail}")]
    Wav { path: PathBuf, detail: String },
    #[error("scenario file is invalid: {0}")]
    Scenario(String),
    #[error("no free local port found for {0}")]
    NoFreePort(&'static str),
}

pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}
