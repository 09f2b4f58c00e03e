//! Step 1, the operator's stop command, and what every child program gets from us: where its
//! output goes, and an environment without our secrets.
//!
//! Children write to our stderr, never to our stdout: with `--format json` stdout carries
//! exactly one JSON document. The stop command keeps the terminal as its standard input, so
//! that it can ask for a sudo password.
//!
//! No child inherits `DATABASE_URL` or `DREICHOR_ADMIN_DATABASE_URL` ([`without_secrets`]):
//! they hold the environment's password and the superuser's, and neither the stop command
//! (an arbitrary shell command, which may log its environment or pass it on to a service
//! manager) nor `pg_dump`/`pg_restore` needs them. `pg_dump` gets its credentials as libpq
//! variables instead (see `backup`).

use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::config::{ADMIN_DATABASE_URL, DATABASE_URL};

/// The variables of ours that carry a password: removed from the environment of every child.
pub(super) const SECRET_VARS: [&str; 2] = [DATABASE_URL, ADMIN_DATABASE_URL];

/// Removes [`SECRET_VARS`] from `command`'s environment.
pub(super) fn without_secrets(command: &mut Command) -> &mut Command {
    for var in SECRET_VARS {
        command.env_remove(var);
    }
    command
}

/// `sh -c COMMAND`, without our secrets in its environment.
fn stop_command(command: &str) -> Command {
    let mut sh = Command::new("sh");
    sh.arg("-c").arg(command);
    without_secrets(&mut sh);
    sh
}

/// Runs the stop command with `sh -c`. Its output goes to stderr (stdout may be a JSON
/// document), its standard input is the terminal (it may ask for a sudo password).
pub(super) fn run_stop_command(command: &str) -> Result<Duration, String> {
    let started = Instant::now();
    let status = stop_command(command)
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

/// The variables `command` removes from the environment it passes on, for tests.
#[cfg(test)]
pub(super) fn removed_vars(command: &Command) -> Vec<String> {
    command
        .get_envs()
        .filter(|(_, value)| value.is_none())
        .map(|(key, _)| key.to_string_lossy().into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stop_command_does_not_inherit_the_urls() {
        let removed = removed_vars(&stop_command("systemctl stop dreichor-runtime"));
        for var in SECRET_VARS {
            assert!(removed.iter().any(|r| r == var), "{var} is passed on");
        }
    }
}
