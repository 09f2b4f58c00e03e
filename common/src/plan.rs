//! The pure planner: what the database has applied, reconciled with the files on disk.
//!
//! No database and no file system here, so that every drift case is a one-line unit test.
//! [`reconcile`] gives the state of every version; [`plan`] turns that into the runner's
//! answer (the pending files, in order) or every drift found, and the compatibility check
//! reads the same states with its own rules (a version applied but unknown to this release
//! is drift for the runner, but only a warning for the gate).

use std::collections::BTreeMap;
use std::fmt;

use crate::migrations::Migration;

/// A row of the tracking table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The version (file name without `.sql`).
    pub version: String,
    /// The checksum recorded when it was applied; `None` in a table of the design document's
    /// two-column form that has not been upgraded yet.
    pub checksum: Option<String>,
    /// When it was applied, as PostgreSQL prints a timestamptz (for `status`).
    pub applied_at: Option<String>,
}

/// A migration the release knows: its version and the checksum of its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known<'a> {
    /// The version.
    pub version: &'a str,
    /// The checksum of the file (or of the manifest entry).
    pub checksum: &'a str,
}

impl<'a> From<&'a Migration> for Known<'a> {
    fn from(m: &'a Migration) -> Self {
        Known {
            version: &m.version,
            checksum: &m.checksum,
        }
    }
}

/// The state of one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Applied with the checksum the file has now.
    Applied,
    /// A file not applied yet, sorting after every applied version.
    Pending,
    /// Applied, but the file has changed since.
    Modified {
        /// The checksum recorded when it was applied.
        recorded: String,
        /// The checksum of the file now.
        actual: String,
    },
    /// Applied, but recorded without a checksum (a two-column tracking table).
    Unverified,
    /// Applied, but no file of that version exists (deleted, renamed, or the database is
    /// ahead of this release).
    Missing,
    /// A file not applied, sorting before the latest applied version: it was added after a
    /// later file had already run.
    OutOfOrder {
        /// The latest applied version.
        latest_applied: String,
    },
    /// A row whose version is not a migration version at all (`<digits>_<name>`, see
    /// [`crate::migrations::is_version`]): written by hand or by another tool. No file can
    /// ever match it, so it takes no part in ordering.
    NotAVersion,
}

/// A version and its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The version.
    pub version: String,
    /// Its state.
    pub state: State,
}

/// Every version known to the database or the release, in version order, with its state.
pub fn reconcile<'a>(
    applied: &[Applied],
    known: impl IntoIterator<Item = Known<'a>>,
) -> Vec<Entry> {
    let files: BTreeMap<&str, &str> = known.into_iter().map(|k| (k.version, k.checksum)).collect();
    let rows: BTreeMap<&str, Option<&str>> = applied
        .iter()
        .map(|a| (a.version.as_str(), a.checksum.as_deref()))
        .collect();
    // Only real versions order the files: a stray row such as `zz-not a version` sorts after
    // every version and would make every new file look out of order.
    let latest_applied = rows
        .keys()
        .rev()
        .find(|v| crate::migrations::is_version(v))
        .copied();

    let mut versions: Vec<&str> = files.keys().chain(rows.keys()).copied().collect();
    versions.sort_unstable();
    versions.dedup();
    versions
        .into_iter()
        .map(|version| {
            let state = match (rows.get(version), files.get(version)) {
                (Some(_), None) if !crate::migrations::is_version(version) => State::NotAVersion,
                (Some(Some(recorded)), Some(actual)) if recorded == actual => State::Applied,
                (Some(Some(recorded)), Some(actual)) => State::Modified {
                    recorded: recorded.to_string(),
                    actual: actual.to_string(),
                },
                (Some(None), Some(_)) => State::Unverified,
                (Some(_), None) => State::Missing,
                (None, _) => match latest_applied {
                    Some(latest) if version < latest => State::OutOfOrder {
                        latest_applied: latest.to_string(),
                    },
                    _ => State::Pending,
                },
            };
            Entry {
                version: version.to_string(),
                state,
            }
        })
        .collect()
}

/// What the runner will do: the pending files in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan<'a> {
    /// Files to apply, in execution order.
    pub pending: Vec<&'a Migration>,
    /// How many versions are applied already.
    pub already_applied: usize,
}

/// A disagreement between the database and the directory that stops the runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    /// An applied file was edited.
    Modified {
        /// The version.
        version: String,
        /// The checksum recorded when it was applied.
        recorded: String,
        /// The checksum of the file now.
        actual: String,
    },
    /// An applied version has no file.
    AppliedButMissing {
        /// The version.
        version: String,
    },
    /// A pending file sorts before the latest applied version.
    OutOfOrder {
        /// The version.
        version: String,
        /// The latest applied version.
        latest_applied: String,
    },
    /// An applied version without a recorded checksum: a two-column table not upgraded yet,
    /// or a row written by hand. `migrate` records the file's checksum for it first (as the
    /// upgrade does), so only the dry run and the gate meet it.
    Unverified {
        /// The version.
        version: String,
    },
    /// A row whose version is not a migration version (`<digits>_<name>`).
    NotAVersion {
        /// The version as recorded.
        version: String,
    },
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Drift::Modified { version, recorded, actual } => write!(
                f,
                "{version}.sql was applied with checksum {}, the file now hashes to {}; migration files must never be edited: restore it from version control and put the change in a new migration",
                short(recorded),
                short(actual)
            ),
            Drift::AppliedButMissing { version } => write!(
                f,
                "{version} is applied in the database but {version}.sql is not in the directory; restore it from version control (or run the release that has it: this checkout may be older than the database)"
            ),
            Drift::OutOfOrder { version, latest_applied } => write!(
                f,
                "{version}.sql is not applied but sorts before {latest_applied}, which is; migrations are append-only: rename it so that it sorts after {latest_applied}"
            ),
            Drift::Unverified { version } => write!(
                f,
                "{version} is recorded without a checksum; migrate records the checksum of the current {version}.sql for it before applying anything (as when it upgrades a two-column tracking table)"
            ),
            Drift::NotAVersion { version } => write!(
                f,
                "the tracking table has a row for {version:?}, which is not a migration version (<digits>_<name>, from a file <digits>_<name>.sql): no file can match it, so it was not written by migrate; remove it: {}",
                remove_row(version)
            ),
        }
    }
}

/// One line per drift, except that many versions applied but missing are grouped into one
/// line: 285 identical lines would hide the one that matters (typically the wrong `--dir`).
pub fn summarize(drift: &[Drift]) -> Vec<String> {
    const GROUP_ABOVE: usize = 5;
    let missing: Vec<&str> = drift
        .iter()
        .filter_map(|d| match d {
            Drift::AppliedButMissing { version } => Some(version.as_str()),
            _ => None,
        })
        .collect();
    let grouped = missing.len() > GROUP_ABOVE;
    let mut lines: Vec<String> = drift
        .iter()
        .filter(|d| !(grouped && matches!(d, Drift::AppliedButMissing { .. })))
        .map(Drift::to_string)
        .collect();
    if grouped {
        lines.insert(
            0,
            format!(
                "{} applied versions have no file in the directory ({} ... {}); is --dir the migrations directory of this database, and is this checkout up to date?",
                missing.len(),
                missing[0],
                missing[missing.len() - 1]
            ),
        );
    }
    lines
}

/// The statement that removes the tracking row of `version`, for messages.
pub fn remove_row(version: &str) -> String {
    format!(
        "DELETE FROM {} WHERE version = {};",
        crate::tracking::TABLE,
        crate::connect::literal(version)
    )
}

/// The first 12 hex digits: enough to tell checksums apart in a message.
pub fn short(checksum: &str) -> &str {
    // By characters: a hand-edited tracking row may hold anything, and a byte slice could
    // cut a character in two.
    match checksum.char_indices().nth(12) {
        Some((end, _)) => &checksum[..end],
        None => checksum,
    }
}

/// The runner's plan: the pending files in order, or every drift found. Nothing is pending
/// when anything drifted: a directory that disagrees with the database is not applied from.
///
/// ```
/// use common::plan::{plan, Applied};
/// let plan = plan(&[], &[]).unwrap();
/// assert!(plan.pending.is_empty());
/// ```
pub fn plan<'a>(applied: &[Applied], files: &'a [Migration]) -> Result<Plan<'a>, Vec<Drift>> {
    let entries = reconcile(applied, files.iter().map(Known::from));
    let mut drift = Vec::new();
    let mut pending = Vec::new();
    for entry in entries {
        match entry.state {
            State::Applied => {}
            State::Pending => pending.push(entry.version),
            State::Modified { recorded, actual } => drift.push(Drift::Modified {
                version: entry.version,
                recorded,
                actual,
            }),
            State::Unverified => drift.push(Drift::Unverified {
                version: entry.version,
            }),
            State::NotAVersion => drift.push(Drift::NotAVersion {
                version: entry.version,
            }),
            State::Missing => drift.push(Drift::AppliedButMissing {
                version: entry.version,
            }),
            State::OutOfOrder { latest_applied } => drift.push(Drift::OutOfOrder {
                version: entry.version,
                latest_applied,
            }),
        }
    }
    if !drift.is_empty() {
        return Err(drift);
    }
    let pending: std::collections::HashSet<String> = pending.into_iter().collect();
    let pending = files
        .iter()
        .filter(|m| pending.contains(&m.version))
        .collect();
    Ok(Plan {
        pending,
        already_applied: applied.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(version: &str, checksum: &str) -> Migration {
        Migration {
            version: version.into(),
            file_name: format!("{version}.sql"),
            path: format!("/m/{version}.sql").into(),
            sql: String::new(),
            checksum: checksum.into(),
            transactional: true,
            blank: true,
        }
    }

    fn row(version: &str, checksum: &str) -> Applied {
        Applied {
            version: version.into(),
            checksum: Some(checksum.into()),
            applied_at: None,
        }
    }

    fn versions(plan: &Plan) -> Vec<String> {
        plan.pending.iter().map(|m| m.version.clone()).collect()
    }

    #[test]
    fn everything_is_pending_on_a_fresh_database() {
        let files = [file("001_a", "x"), file("002_b", "y")];
        let plan = plan(&[], &files).unwrap();
        assert_eq!(versions(&plan), ["001_a", "002_b"]);
        assert_eq!(plan.already_applied, 0);
    }

    #[test]
    fn applied_files_are_skipped() {
        let files = [file("001_a", "x"), file("002_b", "y")];
        let plan = plan(&[row("001_a", "x")], &files).unwrap();
        assert_eq!(versions(&plan), ["002_b"]);
        assert_eq!(plan.already_applied, 1);
    }

    #[test]
    fn nothing_to_do_when_all_are_applied() {
        let files = [file("001_a", "x")];
        assert!(plan(&[row("001_a", "x")], &files)
            .unwrap()
            .pending
            .is_empty());
    }

    #[test]
    fn an_edited_applied_file_is_drift() {
        let files = [file("001_a", "new"), file("002_b", "y")];
        let drift = plan(&[row("001_a", "old")], &files).unwrap_err();
        assert_eq!(
            drift,
            [Drift::Modified {
                version: "001_a".into(),
                recorded: "old".into(),
                actual: "new".into()
            }]
        );
    }

    #[test]
    fn an_applied_version_without_file_is_drift() {
        let files = [file("001_a", "x")];
        let drift = plan(&[row("001_a", "x"), row("002_b", "y")], &files).unwrap_err();
        assert_eq!(
            drift,
            [Drift::AppliedButMissing {
                version: "002_b".into()
            }]
        );
    }

    #[test]
    fn a_pending_file_before_the_latest_applied_is_drift() {
        let files = [file("001_a", "x"), file("002_b", "y"), file("003_c", "z")];
        let drift = plan(&[row("001_a", "x"), row("003_c", "z")], &files).unwrap_err();
        assert_eq!(
            drift,
            [Drift::OutOfOrder {
                version: "002_b".into(),
                latest_applied: "003_c".into()
            }]
        );
    }

    #[test]
    fn every_drift_is_reported_and_nothing_is_pending() {
        let files = [
            file("001_a", "edited"),
            file("002_b", "y"),
            file("004_d", "w"),
        ];
        let applied = [row("001_a", "x"), row("003_c", "z")];
        let drift = plan(&applied, &files).unwrap_err();
        assert_eq!(drift.len(), 3, "{drift:?}");
    }

    #[test]
    fn a_row_without_checksum_is_unverified() {
        let files = [file("001_a", "x")];
        let applied = [Applied {
            version: "001_a".into(),
            checksum: None,
            applied_at: None,
        }];
        assert_eq!(
            reconcile(&applied, files.iter().map(Known::from))[0].state,
            State::Unverified
        );
    }

    #[test]
    fn reconcile_lists_every_version_in_order() {
        let files = [file("001_a", "x"), file("002_b", "y"), file("004_d", "w")];
        let applied = [row("001_a", "x"), row("003_c", "z")];
        let states: Vec<_> = reconcile(&applied, files.iter().map(Known::from))
            .into_iter()
            .map(|e| (e.version, e.state))
            .collect();
        assert_eq!(
            states,
            [
                ("001_a".to_string(), State::Applied),
                (
                    "002_b".to_string(),
                    State::OutOfOrder {
                        latest_applied: "003_c".into()
                    }
                ),
                ("003_c".to_string(), State::Missing),
                ("004_d".to_string(), State::Pending),
            ]
        );
    }

    #[test]
    fn many_missing_files_are_summarised_in_one_line() {
        let mut drift: Vec<Drift> = (0..300)
            .map(|i| Drift::AppliedButMissing {
                version: format!("{i:04}_x"),
            })
            .collect();
        drift.push(Drift::Unverified {
            version: "9999_y".into(),
        });
        let lines = summarize(&drift);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with("300 applied versions have no file"));
        assert_eq!(summarize(&drift[..3]).len(), 3);
    }

    #[test]
    fn short_checksums_never_cut_a_character() {
        assert_eq!(short("aéééééééééééééé"), "aééééééééééé");
        assert_eq!(short("abc"), "abc");
    }

    #[test]
    fn drift_messages_say_what_to_do() {
        let text = Drift::Modified {
            version: "002_add_shadow_ledger".into(),
            recorded: "3f2a0000000000000000".into(),
            actual: "9c1e0000000000000000".into(),
        }
        .to_string();
        assert!(text.contains("002_add_shadow_ledger.sql"), "{text}");
        assert!(text.contains("restore it from version control"), "{text}");
    }
}
