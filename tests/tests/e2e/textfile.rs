//! `schema-check --textfile PATH`: the node_exporter textfile, validated by Prometheus's own
//! `promtool check metrics`, on a compatible, an incompatible and an unreachable database.
//!
//! promtool comes from Debian's `prometheus` package. Installing that package also starts a
//! Prometheus server, so `.ci/run` only extracts promtool from it into `target/tools/`; the
//! test looks there, in `PROMTOOL` and on PATH, and never skips.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::support::{Outcome, Project, Run, Tool};

/// promtool: `PROMTOOL`, PATH, or where `.ci/run` extracts it.
fn promtool() -> PathBuf {
    if let Some(path) = std::env::var_os("PROMTOOL") {
        return PathBuf::from(path);
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("promtool"))
            .find(|p| p.is_file())
    });
    let extracted = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tools/usr/bin/promtool");
    on_path
        .or_else(|| extracted.is_file().then_some(extracted))
        .expect(
            "promtool is not installed, and this test never skips: run `bash .ci/run` once (it \
             extracts promtool from Debian's prometheus package into target/tools/ without \
             starting a Prometheus server), or apt-get install prometheus, or set PROMTOOL",
        )
}

/// `promtool check metrics` on the file, which must pass without a single lint remark.
fn assert_promtool_accepts(path: &Path) {
    let text = std::fs::read_to_string(path).expect("reading the textfile");
    let out = Run::new(promtool())
        .args(["check", "metrics"])
        .stdin(&text)
        .run();
    out.assert_code(0);
    assert!(
        out.stdout.trim().is_empty() && out.stderr.trim().is_empty(),
        "promtool remarks:\n{}{}\n--- file ---\n{text}",
        out.stdout,
        out.stderr
    );
}

/// The value of `name` in the textfile, if present.
fn value(path: &Path, name: &str) -> Option<f64> {
    let text = std::fs::read_to_string(path).expect("reading the textfile");
    text.lines()
        .find(|l| l.starts_with(&format!("{name}{{")))
        .and_then(|l| l.rsplit(' ').next())
        .map(|v| v.parse().expect("a number"))
}

fn check(f: &Project, prom: &Path) -> Outcome {
    f.tool(Tool::SchemaCheck, &[])
        .arg("--textfile")
        .arg(prom)
        .run()
}

#[test]
fn the_textfile_is_valid_for_promtool_and_counts_what_the_gate_saw() {
    let f = Project::start();
    let metrics = tempfile::tempdir().unwrap();
    let prom = metrics.path().join("dreichor_schema.prom");
    f.write("001_a.sql", "CREATE TABLE public.a (id int);\n");
    f.write("002_b.sql", "CREATE TABLE public.b (id int);\n");
    f.tool(Tool::Migrate, &[]).run().assert_code(0);

    check(&f, &prom).assert_code(0);
    assert_promtool_accepts(&prom);
    assert_eq!(value(&prom, "dreichor_schema_compatible"), Some(1.0));
    assert_eq!(
        value(&prom, "dreichor_schema_applied_migrations"),
        Some(2.0)
    );
    assert_eq!(
        value(&prom, "dreichor_schema_pending_migrations"),
        Some(0.0)
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as f64;
    let newest = value(&prom, "dreichor_schema_newest_applied_timestamp_seconds").unwrap();
    assert!((now - newest).abs() < 600.0, "newest {newest}, now {now}");
    let took = value(&prom, "dreichor_schema_check_duration_seconds").unwrap();
    assert!(took > 0.0 && took < 5.0, "{took}");
    assert!(std::fs::read_to_string(&prom)
        .unwrap()
        .contains("{database=\"dreichor_dev\"}"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&prom).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "the collector runs as another user");

    // Incompatible: a pending and a modified file; the file is replaced, not appended to.
    f.write("002_b.sql", "CREATE TABLE public.b (id bigint);\n");
    f.write("003_c.sql", "SELECT 1;\n");
    check(&f, &prom).assert_code(1);
    assert_promtool_accepts(&prom);
    assert_eq!(value(&prom, "dreichor_schema_compatible"), Some(0.0));
    assert_eq!(value(&prom, "dreichor_schema_check_exit_code"), Some(1.0));
    assert_eq!(
        value(&prom, "dreichor_schema_pending_migrations"),
        Some(1.0)
    );
    assert_eq!(
        value(&prom, "dreichor_schema_modified_migrations"),
        Some(1.0)
    );
    assert_eq!(value(&prom, "dreichor_schema_drift_objects"), Some(0.0));

    // Drift: a table added by hand (the table, its column, its owner and privileges).
    f.sql(
        "CREATE TABLE public.by_hand (id int); ALTER TABLE public.by_hand OWNER TO dreichor_dev;",
    );
    check(&f, &prom).assert_code(1);
    assert_promtool_accepts(&prom);
    assert!(value(&prom, "dreichor_schema_drift_objects").is_some_and(|n| n >= 1.0));

    // Unreachable: still written, saying so, without counts it does not have.
    f.cluster.stop();
    check(&f, &prom).assert_code(3);
    assert_promtool_accepts(&prom);
    assert_eq!(value(&prom, "dreichor_schema_check_exit_code"), Some(3.0));
    assert_eq!(value(&prom, "dreichor_schema_compatible"), Some(0.0));
    assert_eq!(value(&prom, "dreichor_schema_pending_migrations"), None);

    // Written by rename: nothing but the one file is ever left in the directory.
    let names: Vec<_> = std::fs::read_dir(metrics.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["dreichor_schema.prom"]);
}

#[test]
fn a_textfile_the_collector_would_not_read_is_refused_before_connecting() {
    let f = Project::start();
    f.write("001_a.sql", "SELECT 1;\n");
    let metrics = tempfile::tempdir().unwrap();
    check(&f, &metrics.path().join("dreichor.txt"))
        .assert_code(2)
        .assert_stderr("must end in .prom");
    check(&f, &metrics.path().join("missing/dreichor.prom"))
        .assert_code(2)
        .assert_stderr("does not exist");
    assert_eq!(std::fs::read_dir(metrics.path()).unwrap().count(), 0);
    assert!(!f.table_exists("dreichor_schema_migrations"));
}
