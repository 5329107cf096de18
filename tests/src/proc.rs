//! Child processes that are stopped on drop, on every exit path (including panics).

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// A running child process; `Drop` sends SIGINT (graceful: baresip sends BYE, dumpcap
/// finalises its file), waits up to `grace`, then SIGKILLs and reaps it.
pub struct ChildGuard {
    child: Option<Child>,
    name: String,
    grace: Duration,
}

impl ChildGuard {
    pub fn spawn(mut cmd: Command, name: &str, package: &'static str) -> Result<Self> {
        let child = cmd.spawn().map_err(|source| Error::Spawn {
            program: name.to_string(),
            package,
            source,
        })?;
        Ok(Self { child: Some(child), name: name.to_string(), grace: Duration::from_secs(3) })
    }

    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn child_mut(&mut self) -> Option<&mut Child> {
        self.child.as_mut()
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Graceful stop: SIGINT, wait, SIGKILL. Idempotent.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        if let Ok(None) = child.try_wait() {
            signal(child.id(), libc::SIGINT);
            let deadline = Instant::now() + self.grace;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            eprintln!("fd-e2e: {} did not exit after SIGINT, killing it", self.name);
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

fn signal(pid: u32, sig: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) on the pid of a child we own and have not reaped yet.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}
