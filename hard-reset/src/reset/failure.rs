//! What a failed step says: which step, what went wrong, the [`State`] it leaves the
//! database in and what to do next, that the runtime is still stopped (from step 2 on), and
//! whether the operator interrupted.
//!
//! The state is the part an operator needs most: after the drop, the database is gone until
//! someone recreates it, so the message carries the very statements that do.

use std::fmt;

use serde_json::{json, Map, Value};

use crate::reset::interrupt::Interruption;
use crate::reset::{Request, ResetError, STEPS};
use common::config::Env;

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

/// A failed step (exit 1): which step, what went wrong, the state it leaves the database in,
/// and whether the operator interrupted. `Display` is the complete message, with what to do
/// next; `--format json` carries the fields (see [`StepFailed::fields`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepFailed {
    /// The step, 1 to 7.
    pub step: usize,
    /// What went wrong (PostgreSQL's message, the command's exit status, ...).
    pub what: String,
    /// The environment's database.
    pub database: String,
    /// The environment.
    pub env: Env,
    /// The state the failure leaves the database in.
    pub state: State,
    /// A signal the operator sent while it was held.
    pub interrupted: Option<Interruption>,
}

impl State {
    /// A stable identifier, for `--format json` (`"state"`).
    pub fn id(&self) -> &'static str {
        match self {
            State::Untouched => "untouched",
            State::DroppedNotRecreated(_) => "dropped-not-recreated",
            State::RecreatedIncomplete(_) => "recreated-incomplete",
            State::RecreatedNotMigrated => "recreated-not-migrated",
        }
    }

    /// The statements that bring the database back, when the state has any.
    pub fn statements(&self) -> &[String] {
        match self {
            State::DroppedNotRecreated(statements) | State::RecreatedIncomplete(statements) => {
                statements
            }
            State::Untouched | State::RecreatedNotMigrated => &[],
        }
    }
}

impl StepFailed {
    /// The step's name, e.g. `drop the database`.
    pub fn step_name(&self) -> &'static str {
        STEP_NAMES[self.step - 1]
    }

    /// Whether the runtime is still stopped (it was stopped in step 1 and is never restarted).
    pub fn runtime_stopped(&self) -> bool {
        self.step > 1
    }

    /// The fields of the JSON error document: `step`, `step_name`, `state`, `statements`,
    /// `runtime_stopped`, `interrupted` (`{signal, step}` or null).
    pub fn fields(&self) -> Map<String, Value> {
        let mut fields = Map::new();
        fields.insert("kind".into(), json!("reset-step"));
        fields.insert("step".into(), json!(self.step));
        fields.insert("step_name".into(), json!(self.step_name()));
        fields.insert("state".into(), json!(self.state.id()));
        fields.insert("statements".into(), json!(self.state.statements()));
        fields.insert("runtime_stopped".into(), json!(self.runtime_stopped()));
        fields.insert(
            "interrupted".into(),
            json!(self
                .interrupted
                .map(|i| json!({"signal": i.name(), "step": i.step}))),
        );
        fields
    }
}

impl fmt::Display for StepFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (db, env) = (&self.database, self.env);
        let (state_text, next) = match &self.state {
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
        write!(
            f,
            "step {}/{STEPS} ({}) failed: {}\n  state of {db}: {state_text}\n  next: {next}",
            self.step,
            self.step_name(),
            self.what
        )?;
        if self.runtime_stopped() {
            f.write_str(
                "\n  the runtime was stopped in step 1 and is still stopped: start it yourself when ready",
            )?;
        }
        if let Some(interruption) = self.interrupted {
            write!(
                f,
                "\n  {interruption}: it was held so that the step could finish"
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for StepFailed {}

/// The failure at `step` (1-based); `interrupted` when the operator sent a signal that was
/// held while the step ran.
pub(super) fn step_failed(
    request: &Request,
    step: usize,
    what: &str,
    state: &State,
    interrupted: Option<Interruption>,
) -> ResetError {
    ResetError::Step(Box::new(StepFailed {
        step,
        what: what.to_string(),
        database: request.database().to_string(),
        env: request.env,
        state: state.clone(),
        interrupted,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reset::fixtures::{admin_url, dev_url, recorded, request};
    use crate::reset::Backup;
    use common::report::Failure;

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
    fn the_json_fields_carry_the_step_and_the_state() {
        let r = request(Env::Dev, dev_url(), admin_url(5433), Backup::NotAsked).unwrap();
        let create = recorded().create_statement();
        let err = step_failed(
            &r,
            5,
            "no space",
            &State::DroppedNotRecreated(vec![create.clone()]),
            None,
        );
        let fields = err.fields();
        assert_eq!(fields["kind"], "reset-step");
        assert_eq!(fields["step"], 5);
        assert_eq!(fields["step_name"], "create the database");
        assert_eq!(fields["state"], "dropped-not-recreated");
        assert_eq!(fields["statements"][0], create.as_str());
        assert_eq!(fields["runtime_stopped"], true);
        assert!(fields["interrupted"].is_null());
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
