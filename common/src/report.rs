//! What a tool reports on success, independent of how it is printed.
//!
//! The printing itself (`--format`, stdout and stderr, the JSON error document) belongs to the
//! binaries (the `cli` crate): the runtime that embeds [`crate::check`] gets a
//! [`Report`](crate::check::CheckReport) without paying for flag parsing.

use serde_json::{json, Map, Value};

use crate::error::{Error, ExitCode};

/// Something a tool reports on success (and, for `schema-check`, on an incompatible verdict).
pub trait Report {
    /// The text for stdout.
    fn text(&self) -> String;
    /// The JSON document for stdout.
    fn json(&self) -> Value;
    /// The exit code the report stands for (a verdict can be a failure without an error).
    fn exit_code(&self) -> ExitCode {
        ExitCode::Success
    }
}

/// Something that stops a tool: its message (`Display`), its exit code, and the fields its
/// `--format json` error document carries besides `ok`, `exit_code` and `error` (the
/// message), so that a consumer reads the kind, the file or the step instead of parsing text.
/// The keys are documented in `docs/operations.md`.
pub trait Failure: std::fmt::Display {
    /// The exit code (SPEC.md, "Exit codes").
    fn exit_code(&self) -> ExitCode;
    /// The fields of the JSON error document; at least `"kind"`.
    fn fields(&self) -> Map<String, Value>;
}

impl Failure for Error {
    fn exit_code(&self) -> ExitCode {
        Error::exit_code(self)
    }

    fn fields(&self) -> Map<String, Value> {
        let mut fields = Map::new();
        fields.insert("kind".into(), json!(self.kind()));
        match self {
            Error::Directory(errors) => {
                let errors: Vec<Value> = errors
                    .iter()
                    .map(|e| {
                        json!({
                            "file": e.file,
                            "line": e.location.map(|l| l.0),
                            "column": e.location.map(|l| l.1),
                            "rule": e.rule.id(),
                            "message": e.rule.to_string(),
                        })
                    })
                    .collect();
                fields.insert("errors".into(), Value::Array(errors));
            }
            Error::Migration(e) => {
                fields.extend(failure_fields(&e.failure));
                fields.insert("applied_before".into(), json!(e.applied_before));
            }
            Error::LockNotAcquired(e) => {
                fields.insert("database".into(), json!(e.database));
                fields.insert("waited_ms".into(), json!(e.waited.as_millis() as u64));
                fields.insert("holder".into(), json!(e.holder));
            }
            Error::Interrupted(e) => {
                fields.insert(
                    "cancelled".into(),
                    e.cancelled
                        .as_ref()
                        .map_or(Value::Null, |f| Value::Object(failure_fields(f))),
                );
                fields.insert("applied".into(), json!(e.applied));
            }
            Error::Manifest(e) => {
                fields.insert("manifest_error".into(), json!(e.id()));
            }
            _ => {}
        }
        fields
    }
}

/// A failed file's fields: where, the SQLSTATE, and what stays of a no-transaction file.
fn failure_fields(failure: &crate::apply::Failure) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert("file".into(), json!(failure.file_name));
    fields.insert("line".into(), json!(failure.location.map(|l| l.0)));
    fields.insert("column".into(), json!(failure.location.map(|l| l.1)));
    fields.insert("sqlstate".into(), json!(failure.sqlstate));
    fields.insert("transactional".into(), json!(failure.transactional));
    fields.insert("statements_run".into(), json!(failure.statements_run));
    fields.insert("invalid_indexes".into(), json!(failure.invalid_indexes));
    fields.insert("retries".into(), json!(failure.retries));
    fields.insert("connection_lost".into(), json!(failure.connection_lost));
    fields
}

/// A sub-second-aware duration for progress lines: `12 ms`, `1.42 s`.
pub fn human_duration(d: std::time::Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(Duration::from_millis(12)), "12 ms");
        assert_eq!(human_duration(Duration::from_millis(1420)), "1.42 s");
    }
}
