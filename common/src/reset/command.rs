//! Step 1, the operator's stop command, and where the output of every child program goes.
//!
//! Children write to our stderr, never to our stdout: with `--format json` stdout carries
//! exactly one JSON document. The stop command keeps the terminal as its standard input, so
//! that it can ask for a sudo password.

use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs the stop command with `sh -c`. Its output goes to stderr (stdout may be a JSON
/// document), its standard input is the terminal (it may ask for a sudo password).
pub(super) fn run_stop_command(command: &str) -> Result<Duration, String> {
    let started = Instant::now();
    let status = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdout(stderr_for_child())
        .status()
        .map_err(|e| format!("cannot run sh -c {command:?}: {e}"))?;
    if !status.success() {
        return Err(format!(
            "the stop command sh -c {command:?} failed ({status}); the runtime may still be running"
        ));
    }
    Ok(started.elapsed())
}

/// Our stderr, for a child's stdout; falls back to inheriting stdout if it cannot be cloned.
pub(super) fn stderr_for_child() -> Stdio {
    std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::inherit())
}
