//! No false drift on real migration histories (issue 13): each history applied by `migrate`
//! leaves the gate (`schema-check --strict`) compatible with an empty drift array, and so do
//! data changes, ANALYZE, VACUUM FULL, CLUSTER, REINDEX DATABASE, TRUNCATE ... CASCADE, a
//! `pg_dump -Fc | pg_restore` into a new database and a hard reset (whose new database must
//! render the very digest that `migrate` recorded).
//!
//! The histories are someone else's SQL, vendored under `tests/fixtures/histories/<name>/`
//! (each with its `SOURCE.md` and upstream licence): they use what the crates.io corpus does
//! not, so that the snapshot's renderings meet them. docs.rs: a contrib extension with a
//! comment, a composite type used as an array column, enums (one value added `AFTER`
//! another), a SQL function behind a unique expression index, serial sequences. graphile-worker:
//! its own schema, row-level security, stored generated columns, identity columns, a view,
//! a composite type altered in place, covering partial indexes, PL/pgSQL and SQL functions
//! with defaults and `SETOF` results. The crates.io corpus goes through the same steps
//! ([`crate::drift`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::drift::dump_and_restore;
use crate::support::pty::Pty;
use crate::support::{Project, Tool};

/// Applying a history on a two-core machine shared with parallel tests.
const APPLY_TIMEOUT: Duration = Duration::from_secs(300);

/// A migration history and the SQL that exercises it.
pub(crate) struct History {
    /// For messages: `docs.rs`, `graphile-worker`, `crates.io`.
    pub name: &'static str,
    /// The migrations directory.
    pub dir: PathBuf,
    /// How many files it holds (`SOURCE.md`): a lost file fails the test.
    pub files: usize,
    /// Inserts, updates and deletes that go through the history's triggers and defaults;
    /// empty for none.
    pub data: &'static str,
    /// `CLUSTER <table> USING <index>` of one of its tables.
    pub cluster: &'static str,
    /// `TRUNCATE <table> CASCADE` of one of its tables.
    pub truncate: &'static str,
}

/// The vendored histories' directory.
fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/histories")
        .join(name)
        .join("migrations")
}

/// Applies `history` with `migrate` to dreichor_dev of a project of its own, then asserts
/// that the gate finds no drift after it and after each step that changes no definition.
/// Prints the figures (files, bytes, snapshot entries, apply time, the gate's proof per step).
pub(crate) fn assert_no_false_drift(history: &History) {
    let history_files = crate::corpus::corpus_files(&history.dir);
    let files = history_files.len();
    let bytes: usize = history_files.iter().map(|(_, content)| content.len()).sum();
    assert_eq!(
        files,
        history.files,
        "files in the {} history at {}",
        history.name,
        history.dir.display()
    );
    // Copied into the project's directory: hard-reset re-applies the project's files.
    let p = Project::start();
    for (name, content) in &history_files {
        p.write(name, content);
    }
    let started = Instant::now();
    let out = p
        .tool(Tool::Migrate, &["--format", "json"])
        .timeout(APPLY_TIMEOUT)
        .run();
    let took = started.elapsed();
    out.assert_code(0);
    let summary = out.json();
    assert_eq!(
        summary["applied"].as_array().map(Vec::len),
        Some(files),
        "{}: every file applied: {summary}",
        history.name
    );
    let latest = |column: &str| {
        p.scalar(&format!(
            "SELECT {column} FROM public.dreichor_schema_snapshot ORDER BY id DESC LIMIT 1"
        ))
        .unwrap_or_else(|| panic!("{}: no snapshot recorded", history.name))
    };
    let entries = latest("jsonb_array_length(entries)");
    let digest = latest("digest");

    let gate = |after: &str| -> String {
        let out = p
            .tool(Tool::SchemaCheck, &["--format", "json", "--strict"])
            .timeout(APPLY_TIMEOUT)
            .run();
        let doc = out.json();
        assert!(
            out.code == 0
                && doc["compatible"] == true
                && doc["drift"].as_array().is_some_and(Vec::is_empty),
            "false drift on the {} schema after {after}: exit {}\n{doc:#}",
            history.name,
            out.code
        );
        assert_eq!(
            doc["snapshot_recorded"], true,
            "{} after {after}: {doc}",
            history.name
        );
        match &doc["snapshot_proof"] {
            Value::String(proof) => proof.clone(),
            other => panic!(
                "{} after {after}: no proof ({other}) in {doc}",
                history.name
            ),
        }
    };

    let mut proofs = vec![("migrate", gate("migrate"))];
    let steps = [
        ("data changes", history.data),
        ("ANALYZE", "ANALYZE"),
        ("VACUUM FULL", "VACUUM FULL"),
        ("CLUSTER", history.cluster),
        ("REINDEX DATABASE", "REINDEX DATABASE dreichor_dev"),
        ("TRUNCATE ... CASCADE", history.truncate),
    ];
    for (what, sql) in steps.into_iter().filter(|(_, sql)| !sql.is_empty()) {
        p.sql(sql);
        proofs.push((what, gate(what)));
    }
    dump_and_restore(&p);
    proofs.push((
        "pg_dump -Fc | pg_restore",
        gate("pg_dump -Fc | pg_restore into a new database"),
    ));
    let mut pty = Pty::spawn(p.hard_reset("dev", &["--stop-command", "true", "--no-backup"]));
    pty.expect("Type the database name (dreichor_dev) to confirm");
    pty.answer("dreichor_dev");
    pty.finish().assert_code(0);
    proofs.push(("hard-reset", gate("hard-reset")));
    // The same files in a new database (other OIDs, other row versions) render the same.
    assert_eq!(
        latest("digest"),
        digest,
        "{}: the snapshot hard-reset recorded differs from migrate's",
        history.name
    );

    // Nothing touched the catalog between the snapshot and the first check; a restored
    // database has other row versions, so only the rendered digest can prove it unchanged.
    assert_eq!(proofs[0].1, "fingerprint", "{}: {proofs:?}", history.name);
    let restored = proofs.iter().find(|(step, _)| step.starts_with("pg_dump"));
    assert_eq!(restored.map(|(_, proof)| proof.as_str()), Some("digest"));
    eprintln!(
        "{} history: {files} files, {bytes} bytes, {entries} snapshot entries, applied in {:.2} s; gate proof: {}",
        history.name,
        took.as_secs_f64(),
        proofs
            .iter()
            .map(|(step, proof)| format!("{step} {proof}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// rust-lang/docs.rs: 33 sqlx migrations (`SOURCE.md`), two of them comments only.
#[test]
fn the_docs_rs_history_has_no_false_drift() {
    assert_no_false_drift(&History {
        name: "docs.rs",
        dir: fixture("docs_rs"),
        files: 33,
        data: "INSERT INTO public.crates (name) VALUES ('serde'), ('Serde_json');
               INSERT INTO public.releases (crate_id, version, features)
                 SELECT id, '1.0.0', ARRAY[ROW('derive', ARRAY['serde_derive'])::public.feature] FROM public.crates;
               INSERT INTO public.builds (rid, build_status) SELECT id, 'partial_failure' FROM public.releases;
               INSERT INTO public.owners (login, avatar, kind) VALUES ('github:rust-lang:libs', '', 'team');
               UPDATE public.releases SET yanked = true;
               DELETE FROM public.builds WHERE build_status = 'partial_failure'",
        cluster: "CLUSTER public.releases USING releases_pkey",
        truncate: "TRUNCATE public.crates CASCADE",
    });
}

/// graphile/worker: 19 migrations with the schema placeholder substituted, after one file of
/// ours that creates the schema (`SOURCE.md`).
#[test]
fn the_graphile_worker_history_has_no_false_drift() {
    assert_no_false_drift(&History {
        name: "graphile-worker",
        dir: fixture("graphile_worker"),
        files: 20,
        data: "SELECT graphile_worker.add_job('send_email', '{\"to\": \"a@example.com\"}', queue_name := 'mail');
               SELECT graphile_worker.add_job('resize', job_key := 'img-1');
               SELECT graphile_worker.add_job('resize', job_key := 'img-1', priority := 5);
               SELECT graphile_worker.add_jobs(ARRAY[ROW('cleanup', NULL, NULL, NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec]);
               SELECT graphile_worker.remove_job('img-1')",
        cluster: "CLUSTER graphile_worker._private_jobs USING jobs_pkey1",
        truncate: "TRUNCATE graphile_worker._private_tasks CASCADE",
    });
}
