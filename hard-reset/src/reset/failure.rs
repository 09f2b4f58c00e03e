//! What a failed step says: which step, what went wrong, the [`State`] it leaves the
//! database in and what to do next, that the runtime is still stopped (from step 2 on), and
//! whether the operator interrupted.
//!
//! The state is the part an operator needs most: after the drop, the database is gone until
//! someone recreates it, so the message carries the very statements that do.

use crate::reset::interrupt::Interruption;
use crate::reset::{Request, STEPS};
use common::error::Error;

/// The state a failure leaves the database in; part of every step failure's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Nothing was dropped.
    Untouched,
    /// Dropped; the statements that recreate it.
    DroppedNotRecreated(Vec<String>),
    /// Recreated, but privileges, settings or comment were not restored: the statements.
    RecreatedIncomplete(Vec<String>),
    /// Recreated; the migrations did not (all) run.
    RecreatedNotMigrated,
}

/// The names of the steps, for messages.
const STEP_NAMES: [&str; STEPS] = [
    "stop the runtime",
    "sessions still connected",
    "backup",
    "drop the database",
    "create the database",
    "run the migrations",
    "summary",
];

/// The error for a failure at `step` (1-based); `interrupted` when the operator sent a signal
/// that was held while the step ran.
pub(super) fn step_failed(
    request: &Request,
    step: usize,
    what: &str,
    state: &State,
    interrupted: Option<Interruption>,
) -> Error {
    let db = request.database();
    let env = request.env;
    let (state_text, next) = match state {
        State::Untouched => (
            "still there, untouched (nothing was dropped)".to_string(),
            "fix the cause and run hard-reset again".to_string(),
        ),
        State::DroppedNotRecreated(statements) => (
            format!(
                "DROPPED, NOT recreated: recreate it as the admin role (psql on database postgres) with:\n      {}",
                statements.join(";\n      ") + ";"
            ),
            format!("then run infra/db/migrate.sh --env {env}"),
        ),
        State::RecreatedIncomplete(statements) => (
            format!(
                "recreated empty, but its privileges/settings were not restored: run as the admin role:\n      {}",
                statements.join(";\n      ") + ";"
            ),
            format!("then run infra/db/migrate.sh --env {env}"),
        ),
        State::RecreatedNotMigrated => (
            "recreated, but not (fully) migrated".to_string(),
            format!("fix the cause and run infra/db/migrate.sh --env {env}"),
        ),
    };
    let mut message = format!(
        "step {step}/{STEPS} ({}) failed: {what}\n  state of {db}: {state_text}\n  next: {next}",
        STEP_NAMES[step - 1]
    );
    if step > 1 {
        message.push_str(
            "\n  the runtime was stopped in step 1 and is still stopped: start it yourself when ready",
        );
    }
    if let Some(interruption) = interrupted {
        message.push_str(&format!(
            "\n  {interruption}: it was held so that the step could finish"
        ));
    }
    Error::Failed(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reset::fixtures::{admin_url, dev_url, recorded, request};
    use crate::reset::Backup;
    use common::config::Env;

    #[test]
    fn every_failure_says_the_step_and_the_state() {
        let r = request(Env::Dev, dev_url(), admin_url(5433), Backup::NotAsked).unwrap();
        let text = step_failed(&r, 1, "boom", &State::Untouched, None).to_string();
        assert!(
            text.starts_with("step 1/7 (stop the runtime) failed: boom"),
            "{text}"
        );
        assert!(text.contains("still there, untouched"), "{text}");
        assert!(!text.contains("runtime was stopped"), "{text}");

        let text = step_failed(
            &r,
            5,
            "no space",
            &State::DroppedNotRecreated(vec![recorded().create_statement()]),
            None,
        )
        .to_string();
        assert!(text.contains("DROPPED, NOT recreated"), "{text}");
        assert!(text.contains("CREATE DATABASE \"dreichor_dev\""), "{text}");
        assert!(text.contains("infra/db/migrate.sh --env dev"), "{text}");
        assert!(text.contains("start it yourself"), "{text}");

        let text = step_failed(&r, 6, "bad sql", &State::RecreatedNotMigrated, None).to_string();
        assert!(
            text.contains("recreated, but not (fully) migrated"),
            "{text}"
        );
        assert!(text.contains("run infra/db/migrate.sh --env dev"), "{text}");
        assert_eq!(
            step_failed(&r, 6, "x", &State::RecreatedNotMigrated, None).exit_code(),
            common::ExitCode::Failed
        );
    }
    #[test]
    fn a_failure_after_a_held_signal_says_the_operator_interrupted() {
        let r = request(Env::Dev, dev_url(), admin_url(5433), Backup::NotAsked).unwrap();
        let interrupted = Interruption {
            signal: signal_hook::consts::SIGINT,
            step: 4,
        };
        let text = step_failed(
            &r,
            5,
            "no space",
            &State::DroppedNotRecreated(vec![recorded().create_statement()]),
            Some(interrupted),
        )
        .to_string();
        assert!(text.contains("DROPPED, NOT recreated"), "{text}");
        assert!(
            text.ends_with("interrupted by the operator (SIGINT, Ctrl-C) during step 4/7: it was held so that the step could finish"),
            "{text}"
        );
    }
}
