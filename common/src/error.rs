//! Typed errors and the exit code of each kind.
//!
//! Every tool maps its outcome to one of four exit codes (SPEC.md, "Exit codes"). The mapping
//! lives here, in one function, so that the three binaries cannot disagree: a binary calls
//! [`Error::exit_code`] and never picks a number itself.
//!
//! Messages are written for an operator at 3 a.m.: which rule, which file or line, and what to
//! do next. No message ever contains a password: URLs only ever appear in their redacted form
//! (see [`crate::config`]), and PostgreSQL's errors never echo a password.

use std::fmt;

/// The exit codes shared by every tool. They are a public interface: never renumber one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExitCode {
    /// 0: applied, nothing to do, compatible, reset done.
    Success = 0,
    /// 1: the operation found a problem or failed: drift, a failed migration, an incompatible
    /// schema, an aborted confirmation, the migration lock not acquired.
    Failed = 1,
    /// 2: invalid configuration or input (URL, environment, flags, migrations directory);
    /// nothing was touched.
    Invalid = 2,
    /// 3: the database could not be reached: refused, timed out, authentication failed.
    Unreachable = 3,
}

impl ExitCode {
    /// The numeric code, for `std::process::exit` and `std::process::ExitCode`.
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code.code())
    }
}

/// Everything that can stop a tool, by kind. Each variant carries a message that is complete
/// on its own (rule, subject, what to do next).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The environment, `DATABASE_URL` or a flag is invalid. Exit 2.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),

    /// The migrations directory breaks one or more rules; every violation is listed. Exit 2.
    #[error("{}", list("the migrations directory is invalid", .0))]
    Directory(Vec<crate::migrations::DirectoryError>),

    /// A policy refusal before anything was touched (GitHub Actions, no terminal, a superuser
    /// role, a role that reaches the other environment, ...). Exit 2.
    #[error("{0}")]
    Refused(String),

    /// A manifest given to `schema-check --manifest` cannot be used. Exit 2.
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),

    /// The server could not be reached, timed out, or refused the credentials. Exit 3.
    #[error("cannot reach the database at {url}: {reason}")]
    Unreachable {
        /// The redacted URL.
        url: String,
        /// What went wrong (never contains a password).
        reason: String,
    },

    /// Applied migrations disagree with the files on disk; nothing was applied. Exit 1.
    #[error("{}", list("refusing to migrate: the database and the migrations directory disagree (nothing was applied)", &crate::plan::summarize(.0)))]
    Drift(Vec<crate::plan::Drift>),

    /// A migration failed (file, line, column, SQLSTATE, what this run applied before it).
    /// Exit 1.
    #[error(transparent)]
    Migration(Box<crate::run_error::MigrationFailed>),

    /// Another run held the migration lock for longer than `--lock-wait` (its holder).
    /// Exit 1.
    #[error(transparent)]
    LockNotAcquired(Box<crate::run_error::LockNotAcquired>),

    /// The operator interrupted the run (what was cancelled, what stays applied). Exit 1.
    #[error(transparent)]
    Interrupted(Box<crate::run_error::Interrupted>),

    /// Any other failure of an operation (a failed migration, the lock not acquired, an
    /// aborted confirmation, an unexpected database error). Exit 1.
    #[error("{0}")]
    Failed(String),
}

impl Error {
    /// The kind, as `--format json` error documents name it (`"kind"`): `config`,
    /// `directory`, `manifest`, `refused`, `unreachable`, `drift` or `failed`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Config(_) => "config",
            Error::Directory(_) => "directory",
            Error::Manifest(_) => "manifest",
            Error::Refused(_) => "refused",
            Error::Unreachable { .. } => "unreachable",
            Error::Drift(_) => "drift",
            Error::Migration(_) => "migration",
            Error::LockNotAcquired(_) => "lock-not-acquired",
            Error::Interrupted(_) => "interrupted",
            Error::Failed(_) => "failed",
        }
    }

    /// The exit code for this error (SPEC.md, "Exit codes").
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Config(_) | Error::Directory(_) | Error::Manifest(_) | Error::Refused(_) => {
                ExitCode::Invalid
            }
            Error::Unreachable { .. } => ExitCode::Unreachable,
            Error::Drift(_)
            | Error::Migration(_)
            | Error::LockNotAcquired(_)
            | Error::Interrupted(_)
            | Error::Failed(_) => ExitCode::Failed,
        }
    }
}

/// A headline followed by one indented line per item.
fn list<T: fmt::Display>(headline: &str, items: &[T]) -> String {
    let mut out = format!("{headline}:");
    for item in items {
        out.push_str("\n  - ");
        out.push_str(&item.to_string().replace('\n', "\n    "));
    }
    out
}

/// Describes a `postgres::Error` completely. `Display` of `postgres::Error` is only
/// `db error` for server errors; the SQLSTATE, message, detail and hint live in
/// `as_db_error()`, and an operator needs all of them.
pub fn describe_pg(err: &postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => {
            let mut out = format!("{} (SQLSTATE {})", db.message(), db.code().code());
            if let Some(detail) = db.detail() {
                out.push_str(&format!("\n  detail: {detail}"));
            }
            if let Some(hint) = db.hint() {
                out.push_str(&format!("\n  hint: {hint}"));
            }
            if let Some(context) = db.where_() {
                out.push_str(&format!("\n  context: {context}"));
            }
            out
        }
        None => {
            // The chain of a client-side error (I/O, timeout, closed connection) carries the
            // useful part in its source; print it all on one line.
            let mut out = err.to_string();
            let mut source = std::error::Error::source(err);
            while let Some(s) = source {
                let text = s.to_string();
                if !out.contains(&text) {
                    out.push_str(": ");
                    out.push_str(&text);
                }
                source = s.source();
            }
            out
        }
    }
}

/// Whether a `postgres::Error` means the database could not be reached (exit 3) rather than
/// that an operation failed: no connection, a timeout, a closed connection, or the server
/// refusing the login (SQLSTATE class 28 invalid authorization, 3D000 no such database,
/// 57P03 cannot connect now, 53300 too many connections).
pub fn is_unreachable(err: &postgres::Error) -> bool {
    match err.as_db_error() {
        Some(db) => {
            let code = db.code().code();
            code.starts_with("28") || matches!(code, "3D000" | "57P03" | "53300")
        }
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_the_documented_numbers() {
        assert_eq!(ExitCode::Success.code(), 0);
        assert_eq!(ExitCode::Failed.code(), 1);
        assert_eq!(ExitCode::Invalid.code(), 2);
        assert_eq!(ExitCode::Unreachable.code(), 3);
    }

    #[test]
    fn each_error_kind_maps_to_its_exit_code() {
        assert_eq!(Error::Refused("x".into()).exit_code(), ExitCode::Invalid);
        assert_eq!(Error::Failed("x".into()).exit_code(), ExitCode::Failed);
        assert_eq!(Error::Drift(vec![]).exit_code(), ExitCode::Failed);
        assert_eq!(Error::Directory(vec![]).exit_code(), ExitCode::Invalid);
        let unreachable = Error::Unreachable {
            url: "postgres://u:***@localhost/dreichor_dev".into(),
            reason: "connection refused".into(),
        };
        assert_eq!(unreachable.exit_code(), ExitCode::Unreachable);
    }

    #[test]
    fn lists_put_every_item_on_its_own_line() {
        let text = list("headline", &["one", "two\nmore"]);
        assert_eq!(text, "headline:\n  - one\n  - two\n    more");
    }
}
