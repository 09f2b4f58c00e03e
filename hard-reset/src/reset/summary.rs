//! Step 7: what a completed reset reports, in text or JSON.
//!
//! A SIGINT, SIGTERM or SIGHUP that arrives during steps 4 to 6 is held until the database is
//! recreated and migrated (see `interrupt`), so such a reset completes all the same; the
//! summary then says that the operator interrupted it. The exit code stays 0: every step
//! succeeded, which is what SPEC.md's exit 0 means for hard-reset, and the database is in
//! the state a reset promises.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

use crate::reset::{Interruption, Recorded};
use common::config::Env;
use common::report::{human_duration, Report};
use common::runner;

/// What a completed reset did; `interrupted` when the operator sent a signal during it.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The environment.
    pub env: Env,
    /// The database.
    pub database: String,
    /// The verified backup, if one was taken.
    pub backup: Option<PathBuf>,
    /// What was recreated.
    pub recorded: Recorded,
    /// The migration run.
    pub migrated: runner::Summary,
    /// From the first step to the last.
    pub duration: Duration,
    /// The signal the operator sent during steps 4 to 6, held until the end of step 6.
    pub interrupted: Option<Interruption>,
}

/// Said at the end of every successful reset: the design document's step 1 stops the runtime
/// and nothing in the reset starts it again.
pub const NOT_RESTARTED: &str = "the runtime was not restarted: start it yourself when ready";

impl Report for Summary {
    fn text(&self) -> String {
        let versions: Vec<&str> = self
            .migrated
            .applied
            .iter()
            .map(|a| a.version.as_str())
            .collect();
        let mut text = format!(
            "hard-reset: {db} ({env}) was dropped and recreated (steps 1-6 took {took}, answers included)\n  backup: {backup}\n  recreated with {recorded}\n  migrations applied: {n}{list}\n{NOT_RESTARTED}",
            db = self.database,
            env = self.env,
            took = human_duration(self.duration),
            backup = self
                .backup
                .as_ref()
                .map_or("none".to_string(), |p| p.display().to_string()),
            recorded = self.recorded.describe(),
            n = versions.len(),
            list = if versions.is_empty() {
                String::new()
            } else {
                format!(" ({})", versions.join(", "))
            },
        );
        if let Some(interruption) = &self.interrupted {
            text.push_str(&format!(
                "\n{interruption}: it was held until {} was recreated and migrated; the reset is complete",
                self.database
            ));
        }
        text
    }

    fn json(&self) -> Value {
        json!({
            "ok": true,
            "env": self.env.as_str(),
            "database": self.database,
            "backup": self.backup.as_ref().map(|p| p.display().to_string()),
            "owner": self.recorded.owner,
            "encoding": self.recorded.encoding,
            "lc_collate": self.recorded.collate,
            "lc_ctype": self.recorded.ctype,
            "acl": self.recorded.acl_text,
            "migrations_applied": self.migrated.applied.iter().map(|a| a.version.clone()).collect::<Vec<_>>(),
            "duration_ms": self.duration.as_millis() as u64,
            "runtime_restarted": false,
            "interrupted": self.interrupted.map(|i| json!({"signal": i.name(), "step": i.step})),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reset::fixtures::recorded;
    use common::error::ExitCode;

    fn summary(interrupted: Option<Interruption>) -> Summary {
        Summary {
            env: Env::Dev,
            database: "dreichor_dev".into(),
            backup: None,
            recorded: recorded(),
            migrated: runner::Summary::default(),
            duration: Duration::from_millis(1500),
            interrupted,
        }
    }

    #[test]
    fn a_completed_reset_is_a_success() {
        let done = summary(None);
        assert_eq!(done.exit_code(), ExitCode::Success);
        assert!(done.text().ends_with(NOT_RESTARTED), "{}", done.text());
        assert_eq!(done.json()["ok"], true);
        assert!(done.json()["interrupted"].is_null());
    }

    #[test]
    fn an_interrupted_reset_completes_and_says_so() {
        let interrupted = summary(Some(Interruption {
            signal: signal_hook::consts::SIGINT,
            step: 6,
        }));
        assert_eq!(interrupted.exit_code(), ExitCode::Success);
        let text = interrupted.text();
        assert!(text.contains(NOT_RESTARTED), "{text}");
        assert!(
            text.ends_with("interrupted by the operator (SIGINT, Ctrl-C) during step 6/7: it was held until dreichor_dev was recreated and migrated; the reset is complete"),
            "{text}"
        );
        let doc = interrupted.json();
        assert_eq!(doc["ok"], true);
        assert_eq!(doc["interrupted"]["signal"], "SIGINT");
        assert_eq!(doc["interrupted"]["step"], 6);
    }
}
