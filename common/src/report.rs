//! What a tool reports on success, independent of how it is printed.
//!
//! The printing itself (`--format`, stdout and stderr, the JSON error document) belongs to the
//! binaries (the `cli` crate): the runtime that embeds [`crate::check`] gets a
//! [`Report`](crate::check::CheckReport) without paying for flag parsing.

use serde_json::Value;

use crate::error::ExitCode;

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
