//! The safety lint: what each statement of a migration locks, and what can take production
//! down while the old runtime is still serving.
//!
//! Migrations run against a live database before the deploy. The costly failures are not
//! syntax errors but locks and rewrites: a `CREATE INDEX` without `CONCURRENTLY` on a busy
//! table, `ALTER COLUMN TYPE` rewriting a table under ACCESS EXCLUSIVE, a foreign key added
//! without `NOT VALID`. The rules are squawk's (`squawk-linter` on `squawk-syntax`'s
//! parser; this crate parses no SQL of its own), chosen and given their context here:
//!
//! - [`rules`]: which rules run on a file in its transaction context, and what to write
//!   instead of what each finds;
//! - [`locks`]: the lock each statement takes and on which table, from PostgreSQL's
//!   documented lock levels;
//! - [`timeouts`]: `require-lock-timeout` / `require-statement-timeout`, which the runner's
//!   own settings satisfy unless the file turns them off;
//! - [`embedded`]: statements run by `EXECUTE '<constant>'` in a `DO` block, which squawk
//!   does not look into, linted too and reported at their line in the file (and
//!   `cannot-run-in-a-function` for what PostgreSQL refuses there);
//! - [`allow`]: `-- dreichor:allow <rule> <reason>` on the line before a statement;
//! - [`since`]: with `lint --since REV`, only the files new since REV are linted;
//! - [`report`]: findings in `migrate lint` and under each file of `migrate --dry-run`.
//!
//! Findings are warnings: an operator may ship a deliberate rewrite of a small table.
//! `lint --deny-warnings` makes them errors (CI). Statements PostgreSQL refuses inside the
//! file's transaction are not findings but directory errors in every tool
//! ([`common::transaction_context`]).

pub mod allow;
pub mod embedded;
pub mod locks;
pub mod report;
pub mod rules;
pub mod since;
pub mod timeouts;

#[cfg(test)]
mod tests;

use common::migrations::Migration;
use common::sql::line_col;
use squawk_syntax::ast::{self, AstNode};
use squawk_syntax::{Parse, SourceFile};

use locks::Lock;

/// One finding: a rule that fires on a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The file name, e.g. `002_add_index.sql`.
    pub file: String,
    /// 1-based line of what the rule points at.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// The rule: squawk's name where squawk has the rule (`require-concurrent-index-creation`).
    pub rule: String,
    /// One line: what is wrong.
    pub message: String,
    /// One line: what to write instead.
    pub instead: Option<String>,
    /// The lock the statement takes, when known.
    pub lock: Option<Lock>,
    /// The line where the statement begins: an allow comment goes on the line above it.
    pub statement_line: usize,
}

impl Finding {
    /// `file:line:col: rule: message; takes LOCK on TABLE (...)`, and what to write instead.
    pub fn describe(&self) -> String {
        let mut text = format!(
            "{}:{}:{}: {}: {}",
            self.file, self.line, self.column, self.rule, self.message
        );
        if let Some(lock) = &self.lock {
            text.push_str(&format!("; takes {lock}"));
        }
        if let Some(instead) = &self.instead {
            text.push_str(&format!("\n    instead: {instead}"));
        }
        text
    }

    /// The JSON object of the finding.
    pub fn json(&self, severity: &str) -> serde_json::Value {
        serde_json::json!({
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "rule": self.rule,
            "severity": severity,
            "message": self.message,
            "instead": self.instead,
            "lock": self.lock.as_ref().map(|l| serde_json::json!({
                "mode": l.mode.to_string(),
                "table": l.table,
                "blocks": l.mode.blocks(),
            })),
        })
    }
}

/// Every finding in one migration file, in file order, after its allow comments.
pub fn lint_migration(migration: &Migration) -> Vec<Finding> {
    let text = &migration.sql;
    // squawk honours its own `-- squawk-ignore` comments; here a finding is silenced only
    // by an allow comment with a reason. Same length, so every offset still holds.
    let neutral = text.replace("squawk-", "squawk_");
    let parse = SourceFile::parse(&neutral);
    let mut raw = lint_parsed(&parse, &neutral, migration.transactional);
    for embedded in embedded::find(&parse) {
        raw.extend(embedded.lint(migration.transactional));
    }
    let findings = raw
        .into_iter()
        .map(|r| {
            let (line, column) = line_col(text, r.offset);
            Finding {
                file: migration.file_name.clone(),
                line,
                column,
                rule: r.rule,
                message: r.message,
                instead: r.instead.map(str::to_string),
                lock: r.lock,
                statement_line: line_col(text, r.statement_offset).0,
            }
        })
        .collect();
    let mut findings = allow::apply(&migration.file_name, text, findings);
    findings.sort_by_key(|f| (f.line, f.column));
    findings
}

/// A finding before it has a file and a line: byte offsets into the text that was linted.
#[derive(Debug, Clone)]
pub(crate) struct Raw {
    /// Where the rule points.
    pub offset: usize,
    /// Where the statement begins.
    pub statement_offset: usize,
    /// The rule's name.
    pub rule: String,
    /// One line: what is wrong.
    pub message: String,
    /// What to write instead.
    pub instead: Option<&'static str>,
    /// The lock the statement takes, when known.
    pub lock: Option<Lock>,
}

/// squawk's rules and the timeout rules over one parsed text (a file, or the SQL of an
/// `EXECUTE` in a `DO` block).
pub(crate) fn lint_parsed(parse: &Parse<SourceFile>, text: &str, transactional: bool) -> Vec<Raw> {
    let mut raw = Vec::new();
    let mut linter = rules::linter(transactional);
    for violation in linter.lint(parse, text) {
        let offset = usize::from(violation.text_range.start());
        let stmt = statement_at(parse, offset);
        raw.push(Raw {
            offset,
            statement_offset: stmt.as_ref().map_or(offset, statement_start),
            rule: violation.code.to_string(),
            message: one_line(&violation.message),
            instead: rules::instead(violation.code),
            lock: stmt.as_ref().and_then(locks::lock_of),
        });
    }
    for hit in timeouts::check(parse) {
        let offset = statement_start(&hit.stmt);
        raw.push(Raw {
            offset,
            statement_offset: offset,
            rule: hit.rule.to_string(),
            message: hit.message,
            instead: Some(hit.instead),
            lock: locks::lock_of(&hit.stmt),
        });
    }
    raw
}

/// The top-level statement that contains byte `offset`.
pub(crate) fn statement_at(parse: &Parse<SourceFile>, offset: usize) -> Option<ast::Stmt> {
    parse.tree().stmts().find(|stmt| {
        let range = stmt.syntax().text_range();
        usize::from(range.start()) <= offset && offset < usize::from(range.end())
    })
}

/// Byte offset of the statement's first token that is not whitespace or a comment.
pub(crate) fn statement_start(stmt: &ast::Stmt) -> usize {
    let node = stmt.syntax();
    node.descendants_with_tokens()
        .filter_map(|element| element.into_token())
        .find(|token| !token.kind().is_trivia())
        .map_or(usize::from(node.text_range().start()), |token| {
            usize::from(token.text_range().start())
        })
}

/// squawk's messages on one line.
pub(crate) fn one_line(message: &str) -> String {
    let line = message.split_whitespace().collect::<Vec<_>>().join(" ");
    line.strip_suffix('.').map_or(line.clone(), str::to_string)
}
