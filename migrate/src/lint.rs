//! `migrate lint`: every directory rule, offline, with every violation listed.
//!
//! The same discovery the runner uses (so lint and migrate can never disagree about a file),
//! plus, with `--since REV`, the append-only check against git ([`crate::append_only`]).

use std::path::Path;

use serde_json::{json, Value};

use crate::append_only;
use common::error::ExitCode;
use common::migrations::{discover, DirectoryError, Warning};
use common::report::Report;
use common::wording::counted;

/// The result of a lint run.
#[derive(Debug, Clone, Default)]
pub struct LintReport {
    /// The directory, as given.
    pub dir: String,
    /// How many migration files were read.
    pub files: usize,
    /// Every violation; empty when clean.
    pub errors: Vec<DirectoryError>,
    /// Legal but suspicious files.
    pub warnings: Vec<Warning>,
    /// The revision compared against, if any.
    pub since: Option<String>,
    /// Why the append-only check against `since` could not run (no such revision, not a
    /// git work tree): not a violation of any rule, but the check is missing, so exit 2.
    pub since_failed: Option<DirectoryError>,
}

/// Checks `dir`, and with `since` the append-only rule against that git revision.
pub fn lint(dir: &Path, since: Option<&str>) -> LintReport {
    let mut report = LintReport {
        dir: dir.display().to_string(),
        since: since.map(str::to_string),
        ..LintReport::default()
    };
    match discover(dir) {
        Ok(found) => {
            report.files = found.migrations.len();
            report.warnings = found.warnings;
        }
        Err(errors) => report.errors = errors,
    }
    if let Some(rev) = since {
        match append_only::check_since(dir, rev) {
            Ok(errors) => report.errors.extend(errors),
            Err(error) => report.since_failed = Some(error),
        }
    }
    report
}

impl Report for LintReport {
    fn text(&self) -> String {
        let mut out = String::new();
        for e in &self.errors {
            out.push_str(&format!("error: {e}\n"));
        }
        for w in &self.warnings {
            out.push_str(&format!("warning: {w}\n"));
        }
        let against = self
            .since
            .as_ref()
            .map(|r| format!(", append-only against {r}"))
            .unwrap_or_default();
        if let Some(e) = &self.since_failed {
            out.push_str(&format!("error: {e}\n"));
        }
        let files = counted(self.files, "migration");
        match (&self.since_failed, self.errors.len()) {
            (None, 0) => out.push_str(&format!(
                "{}: {files}, clean{against} ({})",
                self.dir,
                counted(self.warnings.len(), "warning")
            )),
            (None, n) => out.push_str(&format!(
                "{}: {}{against}; nothing was touched. Fix them and run lint again",
                self.dir,
                counted(n, "violation")
            )),
            (Some(_), n) => out.push_str(&format!(
                "{}: {files}, {}; the append-only check against {} could not run (see above): fix that and run lint again",
                self.dir,
                counted(n, "violation"),
                self.since.as_deref().unwrap_or("the revision")
            )),
        }
        out
    }

    fn json(&self) -> Value {
        json!({
            "ok": self.errors.is_empty() && self.since_failed.is_none(),
            "dir": self.dir,
            "files": self.files,
            "since": self.since,
            "errors": self.errors.iter().map(|e| json!({
                "file": e.file,
                "line": e.location.map(|l| l.0),
                "column": e.location.map(|l| l.1),
                "rule": e.rule.id(),
                "message": e.rule.to_string(),
            })).collect::<Vec<_>>(),
            "since_failed": self.since_failed.as_ref().map(|e| e.rule.to_string()),
            "warnings": self.warnings.iter().map(|w| json!({
                "file": w.file,
                "message": w.message,
            })).collect::<Vec<_>>(),
        })
    }

    fn exit_code(&self) -> ExitCode {
        if self.errors.is_empty() && self.since_failed.is_none() {
            ExitCode::Success
        } else {
            ExitCode::Invalid
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_directory_exits_zero_with_warnings_allowed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("001_a.sql"), "-- nothing\n").unwrap();
        let report = lint(dir.path(), None);
        assert_eq!(report.exit_code(), ExitCode::Success);
        assert_eq!(report.warnings.len(), 1);
    }

    #[test]
    fn every_violation_is_listed_with_exit_two() {
        let dir = tempfile::tempdir().unwrap();
        for (name, sql) in [
            ("001_a.sql", "COMMIT;"),
            ("01_b.sql", ""),
            ("003_c.txt", ""),
        ] {
            std::fs::write(dir.path().join(name), sql).unwrap();
        }
        let report = lint(dir.path(), None);
        assert_eq!(report.exit_code(), ExitCode::Invalid);
        assert_eq!(report.errors.len(), 3, "{:?}", report.errors);
        let text = report.text();
        assert_eq!(text.matches("error: ").count(), 3, "{text}");
        assert_eq!(report.json()["errors"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn one_of_everything_is_singular() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("001_a.sql"), "-- nothing\n").unwrap();
        let text = lint(dir.path(), None).text();
        assert!(text.ends_with(": 1 migration, clean (1 warning)"), "{text}");
        std::fs::write(dir.path().join("002_b.sql"), "COMMIT;").unwrap();
        let text = lint(dir.path(), None).text();
        assert!(
            text.contains(": 1 violation; nothing was touched"),
            "{text}"
        );
    }

    #[test]
    fn a_revision_that_cannot_be_compared_is_not_a_violation() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("001_a.sql"), "SELECT 1;\n").unwrap();
        let report = lint(dir.path(), Some("nosuchref"));
        assert_eq!(report.exit_code(), ExitCode::Invalid);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        let text = report.text();
        assert!(!text.contains("1 violation"), "{text}");
        assert!(
            text.contains(": 1 migration, 0 violations; the append-only check against nosuchref could not run (see above)"),
            "{text}"
        );
        assert_eq!(report.json()["ok"], false);
        assert!(report.json()["since_failed"].is_string());
    }
}
