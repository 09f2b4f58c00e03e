//! `schema-check --textfile PATH`: the result as metrics for node_exporter's textfile
//! collector (SPEC.md, schema-check), so that Grafana can show and alert on it.
//!
//! The file is written to a temporary file in the same directory and renamed over PATH, so
//! that the collector never reads half a file (its documentation asks for exactly this). It
//! is written on every outcome: when the check could not run (exit 2 or 3) it says so with
//! `dreichor_schema_compatible 0` and the exit code, and the counts are left out rather than
//! reported as zeros.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::check::CheckReport;
use common::report::Report;
use common::Error;

/// node_exporter's textfile collector reads only files whose name ends in this.
const SUFFIX: &str = ".prom";

/// Refuses (exit 2, before connecting) a PATH the collector would never read or that cannot
/// be written: a name without `.prom`, a directory that does not exist.
pub fn validate(path: &Path) -> Result<(), Error> {
    if !path.to_string_lossy().ends_with(SUFFIX) {
        return Err(Error::Refused(format!(
            "--textfile {}: the name must end in {SUFFIX}, the only files node_exporter's textfile collector reads (e.g. /var/lib/prometheus/node-exporter/dreichor_schema.prom)",
            path.display()
        )));
    }
    let dir = parent(path);
    if !dir.is_dir() {
        return Err(Error::Refused(format!(
            "--textfile {}: the directory {} does not exist; create it or give the collector's directory (node_exporter --collector.textfile.directory)",
            path.display(),
            dir.display()
        )));
    }
    Ok(())
}

/// Writes the metrics for `result` to `path` atomically. `took` is the check's duration.
pub fn write(
    path: &Path,
    database: &str,
    result: &Result<CheckReport, Error>,
    took: Duration,
) -> Result<(), Error> {
    let text = render(database, result, took, SystemTime::now());
    let failed = |e: std::io::Error| {
        Error::Refused(format!(
            "cannot write the textfile {}: {e}; the check's result stands, but monitoring does not see it",
            path.display()
        ))
    };
    let mut file = tempfile::Builder::new()
        .prefix(".dreichor_schema.")
        .suffix(".tmp")
        .tempfile_in(parent(path))
        .map_err(failed)?;
    file.write_all(text.as_bytes()).map_err(failed)?;
    // The collector runs as another user: world-readable like any metrics file, not 0600.
    set_readable(file.as_file()).map_err(failed)?;
    file.as_file().sync_all().map_err(failed)?;
    file.persist(path).map_err(|e| failed(e.error))?;
    Ok(())
}

/// The directory `path` is in (`.` for a bare file name).
fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn set_readable(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o644))
}

/// The exposition text: every metric with HELP and TYPE, labelled with the database.
fn render(
    database: &str,
    result: &Result<CheckReport, Error>,
    took: Duration,
    now: SystemTime,
) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, help: &str, value: String| {
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name}{{database=\"{database}\"}} {value}\n"
        );
    };
    let exit_code = match result {
        Ok(report) => report.exit_code().code(),
        Err(error) => error.exit_code().code(),
    };
    let compatible = matches!(result, Ok(report) if report.compatible);
    metric(
        "dreichor_schema_compatible",
        "1 when the database has every migration of this release (schema-check exit 0), else 0.",
        u8::from(compatible).to_string(),
    );
    metric(
        "dreichor_schema_check_exit_code",
        "schema-check's exit code: 0 compatible, 1 incompatible, 2 invalid configuration, 3 unreachable.",
        exit_code.to_string(),
    );
    if let Ok(report) = result {
        metric(
            "dreichor_schema_pending_migrations",
            "Migrations of this release not applied.",
            report.pending.len().to_string(),
        );
        metric(
            "dreichor_schema_modified_migrations",
            "Applied migrations whose file has changed since.",
            report.modified.len().to_string(),
        );
        metric(
            "dreichor_schema_drift_objects",
            "Differences between the live schema and the snapshot the migrations recorded (drift), one per entry: an object, a column, an owner, a grant.",
            report.drift.len().to_string(),
        );
        metric(
            "dreichor_schema_unknown_applied_migrations",
            "Applied migrations this release does not know (the database is ahead).",
            report.unknown_applied.len().to_string(),
        );
        metric(
            "dreichor_schema_applied_migrations",
            "Migrations recorded in the tracking table.",
            report.applied.to_string(),
        );
        if let Some(at) = report.newest_applied_at {
            metric(
                "dreichor_schema_newest_applied_timestamp_seconds",
                "When the newest migration was applied, as a Unix time.",
                at.to_string(),
            );
        }
    }
    metric(
        "dreichor_schema_check_duration_seconds",
        "How long the check took, connecting included.",
        format!("{:.6}", took.as_secs_f64()),
    );
    let now = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    metric(
        "dreichor_schema_check_timestamp_seconds",
        "When the check ran, as a Unix time (a stale value means the timer stopped).",
        now.as_secs().to_string(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_leaves_the_counts_out() {
        let error = Error::Unreachable {
            url: "postgres://u:***@localhost/dreichor_dev".into(),
            reason: "refused".into(),
        };
        let text = render(
            "dreichor_dev",
            &Err(error),
            Duration::from_millis(5),
            UNIX_EPOCH,
        );
        assert!(text.contains("dreichor_schema_compatible{database=\"dreichor_dev\"} 0\n"));
        assert!(text.contains("dreichor_schema_check_exit_code{database=\"dreichor_dev\"} 3\n"));
        assert!(!text.contains("pending"), "{text}");
    }

    #[test]
    fn a_report_gives_every_count() {
        let report = CheckReport {
            compatible: true,
            applied: 4,
            newest_applied_at: Some(1_700_000_000),
            pending: vec![],
            ..CheckReport::default()
        };
        let text = render(
            "dreichor_prod",
            &Ok(report),
            Duration::from_millis(12),
            UNIX_EPOCH,
        );
        assert!(text.contains("dreichor_schema_compatible{database=\"dreichor_prod\"} 1\n"));
        assert!(text.contains("dreichor_schema_applied_migrations{database=\"dreichor_prod\"} 4\n"));
        assert!(text.contains(
            "dreichor_schema_newest_applied_timestamp_seconds{database=\"dreichor_prod\"} 1700000000\n"
        ));
        assert!(text.contains(
            "dreichor_schema_check_duration_seconds{database=\"dreichor_prod\"} 0.012000\n"
        ));
    }
}
