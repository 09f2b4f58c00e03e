//! Why a `migrate` run (or `hard-reset`'s step 6) stopped, typed: a migration that failed, the
//! migration lock not acquired, an interruption. Each carries what an operator and a script
//! need (the file, line, column and SQLSTATE; what was applied before it; who holds the lock),
//! and `Display` is the complete message with what to do next.

use std::fmt;
use std::time::Duration;

use crate::apply::Failure;
use crate::lock::Holder;
use crate::report::human_duration;
use crate::runner::APPLICATION;

/// A migration failed; the files applied before it by this run stay applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationFailed {
    /// The file that failed, where, and how.
    pub failure: Failure,
    /// The versions this run applied before it (they stay applied).
    pub applied_before: Vec<String>,
    /// When the connection died during the file: what a new session finds (whether the
    /// file was committed with its row just before).
    pub after_lost_connection: Option<String>,
}

impl std::error::Error for MigrationFailed {}

impl fmt::Display for MigrationFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\n  ", self.failure)?;
        if self.applied_before.is_empty() {
            f.write_str("no file was applied by this run")?;
        } else if self.applied_before.len() == 1 {
            f.write_str("the 1 file applied before it stays applied")?;
        } else {
            write!(
                f,
                "the {} files applied before it stay applied",
                self.applied_before.len()
            )?;
        }
        if let Some(lost) = &self.after_lost_connection {
            write!(f, "\n  {lost}")?;
        }
        Ok(())
    }
}

/// Another run held the migration lock for longer than `--lock-wait`; nothing was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockNotAcquired {
    /// The environment's database.
    pub database: String,
    /// How long the run waited.
    pub waited: Duration,
    /// Who held the lock at the end of the wait; `None` when that session has ended meanwhile.
    pub holder: Option<Holder>,
}

impl std::error::Error for LockNotAcquired {}

impl fmt::Display for LockNotAcquired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = self.holder.as_ref().map_or_else(
            || "a session that has ended meanwhile".to_string(),
            Holder::to_string,
        );
        write!(
            f,
            "the migration lock on {} was not acquired within {}: another migrate run holds it ({who}); nothing was applied. Wait for that run and try again; if it is stuck, end both of its sessions, the lock's and the one running the file (its current transactional file is rolled back): SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}' AND application_name IN ('{APPLICATION}', '{lock_app}')",
            self.database,
            human_duration(self.waited),
            db = self.database,
            lock_app = crate::lock::APPLICATION,
        )
    }
}

/// The operator's Ctrl-C (or a SIGTERM, or a lost terminal) stopped the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interrupted {
    /// The file that was running and was cancelled; `None` when the run stopped between files.
    pub cancelled: Option<Failure>,
    /// The versions this run applied (they stay applied).
    pub applied: Vec<String>,
}

impl std::error::Error for Interrupted {}

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("interrupted (Ctrl-C, SIGTERM or a lost terminal): ")?;
        match &self.cancelled {
            Some(failure) => write!(
                f,
                "the running file was cancelled:\n  {}",
                failure.to_string().replace('\n', "\n  ")
            )?,
            None => f.write_str("stopped before the next file")?,
        }
        write!(
            f,
            "\n  {} applied by this run {}; run migrate again to continue",
            crate::wording::counted(self.applied.len(), "file"),
            if self.applied.len() == 1 {
                "stays applied"
            } else {
                "stay applied"
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure() -> Failure {
        Failure {
            file_name: "008_add_fills.sql".into(),
            location: Some((3, 1)),
            unlocated: None,
            sqlstate: Some("42P01".into()),
            error: "relation \"public.no_such_table\" does not exist (SQLSTATE 42P01)".into(),
            transactional: true,
            statements_run: Vec::new(),
            statements_total: 1,
            invalid_indexes: Vec::new(),
            retries: 0,
            connection_lost: false,
            lock_lost: false,
            unrecorded_complete: false,
            recorded_by_another: false,
        }
    }

    #[test]
    fn a_failed_migration_says_where_and_what_stays() {
        let none_before = MigrationFailed {
            failure: failure(),
            applied_before: Vec::new(),
            after_lost_connection: None,
        };
        let text = none_before.to_string();
        assert!(
            text.starts_with("008_add_fills.sql:3:1: relation"),
            "{text}"
        );
        assert!(
            text.ends_with("\n  no file was applied by this run"),
            "{text}"
        );
        let two_before = MigrationFailed {
            applied_before: vec!["006_a".into(), "007_b".into()],
            ..none_before
        };
        assert!(two_before
            .to_string()
            .ends_with("the 2 files applied before it stay applied"));
    }

    #[test]
    fn the_lock_names_its_holder_or_says_it_is_gone() {
        let gone = LockNotAcquired {
            database: "dreichor_dev".into(),
            waited: Duration::from_secs(60),
            holder: None,
        };
        let text = gone.to_string();
        assert!(
            text.contains("on dreichor_dev was not acquired within 60.00 s"),
            "{text}"
        );
        assert!(
            text.contains("(a session that has ended meanwhile)"),
            "{text}"
        );
    }

    #[test]
    fn an_interruption_says_what_was_cancelled() {
        let between = Interrupted {
            cancelled: None,
            applied: vec!["001_a".into()],
        };
        assert_eq!(
            between.to_string(),
            "interrupted (Ctrl-C, SIGTERM or a lost terminal): stopped before the next file\n  1 file applied by this run stays applied; run migrate again to continue"
        );
        let during = Interrupted {
            cancelled: Some(failure()),
            applied: Vec::new(),
        };
        assert!(during
            .to_string()
            .contains("the running file was cancelled:\n  008_add_fills.sql:3:1:"));
    }
}
