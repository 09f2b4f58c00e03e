//! The findings in the output of `migrate lint` and `migrate --dry-run`.

use std::path::Path;

use crate::lint::LintReport;
use common::migrations::{discover, Migration};
use common::report::Report;
use common::runner::Summary;
use common::ExitCode;
use serde_json::Value;

use super::{lint_migration, since, Finding};

/// `migrate lint`: the directory rules ([`crate::lint`]) and the safety findings.
#[derive(Debug, Clone)]
pub struct SafetyLint {
    /// The directory rules and, with `--since`, the append-only check.
    pub directory: LintReport,
    /// The safety findings of the files linted.
    pub findings: Vec<Finding>,
    /// How many files were linted for safety (with `--since`: the new ones).
    pub linted: usize,
    /// Findings are errors (exit 2), for CI.
    pub deny_warnings: bool,
}

/// Lints `dir`: the directory rules, then the safety rules on every file (with `since`, on
/// the files new since that revision).
pub fn lint(dir: &Path, since: Option<&str>, deny_warnings: bool) -> SafetyLint {
    let directory = crate::lint::lint(dir, since);
    // A directory discovery refuses has no files to lint; its errors are the report.
    let mut migrations = discover(dir)
        .map(|found| found.migrations)
        .unwrap_or_default();
    if let Some(old) = since.and_then(|rev| since::files_at(dir, rev)) {
        migrations.retain(|m| !old.contains(&m.file_name));
    }
    SafetyLint {
        directory,
        findings: lint_all(&migrations),
        linted: migrations.len(),
        deny_warnings,
    }
}

/// The findings of every file, in file order, on two threads when there are many (squawk
/// parses each file on its own; the history of a long-lived project has hundreds).
pub fn lint_all(migrations: &[Migration]) -> Vec<Finding> {
    const PARALLEL_ABOVE: usize = 32;
    if migrations.len() <= PARALLEL_ABOVE {
        return migrations.iter().flat_map(lint_migration).collect();
    }
    let (first, second) = migrations.split_at(migrations.len() / 2);
    std::thread::scope(|scope| {
        let other = scope.spawn(|| second.iter().flat_map(lint_migration).collect::<Vec<_>>());
        let mut findings: Vec<Finding> = first.iter().flat_map(lint_migration).collect();
        match other.join() {
            Ok(rest) => findings.extend(rest),
            Err(_) => findings.extend(second.iter().flat_map(lint_migration)),
        }
        findings
    })
}

impl SafetyLint {
    fn severity(&self) -> &'static str {
        if self.deny_warnings {
            "error"
        } else {
            "warning"
        }
    }
}

impl Report for SafetyLint {
    fn text(&self) -> String {
        let mut out = String::new();
        for finding in &self.findings {
            out.push_str(&format!("{}: {}\n", self.severity(), finding.describe()));
        }
        out.push_str(&self.directory.text());
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let files = if self.directory.since.is_some() {
            plural(self.linted, "new file", "new files")
        } else {
            plural(self.linted, "file", "files")
        };
        out.push_str(&format!(
            "\nsafety: {} in {files}{}",
            plural(self.findings.len(), "finding", "findings"),
            if self.deny_warnings && !self.findings.is_empty() {
                " (--deny-warnings: fix them, or allow each with `-- dreichor:allow <rule> <reason>` on the line above the statement)"
            } else {
                ""
            }
        ));
        out
    }

    fn json(&self) -> Value {
        let mut doc = self.directory.json();
        doc["ok"] = Value::Bool(self.exit_code() == ExitCode::Success);
        doc["findings"] = self
            .findings
            .iter()
            .map(|f| f.json(self.severity()))
            .collect();
        doc
    }

    fn exit_code(&self) -> ExitCode {
        if self.directory.exit_code() != ExitCode::Success
            || (self.deny_warnings && !self.findings.is_empty())
        {
            ExitCode::Invalid
        } else {
            ExitCode::Success
        }
    }
}

/// A `migrate` run; a dry run lists each pending file's findings under it.
#[derive(Debug, Clone)]
pub struct Run {
    /// What the run did or would do.
    pub summary: Summary,
    /// Dry run: the findings of the files that would be applied.
    pub findings: Vec<Finding>,
}

impl Run {
    /// The run, with the findings of the files a dry run would apply.
    pub fn new(summary: Summary, files: &[Migration]) -> Run {
        let findings = if summary.dry_run {
            let pending: Vec<Migration> = files
                .iter()
                .filter(|m| summary.applied.iter().any(|a| a.version == m.version))
                .cloned()
                .collect();
            lint_all(&pending)
        } else {
            Vec::new()
        };
        Run { summary, findings }
    }
}

impl Report for Run {
    fn text(&self) -> String {
        let text = self.summary.text();
        if self.findings.is_empty() {
            return text;
        }
        let mut out = String::new();
        for line in text.lines() {
            out.push_str(line);
            out.push('\n');
            if let Some(version) = line.trim_start().strip_prefix("would apply ") {
                let file = format!("{version}.sql");
                for finding in self.findings.iter().filter(|f| f.file == file) {
                    let described = finding.describe().replace('\n', "\n    ");
                    out.push_str(&format!("    warning: {described}\n"));
                }
            }
        }
        out.pop();
        out
    }

    fn json(&self) -> Value {
        let mut doc = self.summary.json();
        if self.summary.dry_run {
            doc["findings"] = self.findings.iter().map(|f| f.json("warning")).collect();
        }
        doc
    }

    fn exit_code(&self) -> ExitCode {
        self.summary.exit_code()
    }
}
