//! How `migrate` records the schema snapshot (SPEC.md, "Schema snapshot and drift"): the
//! lock's session plans its half while the run applies files, and the entries are stored
//! with lz4. Neither may change what is recorded, whatever the run meets.

use crate::support::{Project, Tool};

const BASE: &str = "
CREATE TABLE public.invoice (id bigint PRIMARY KEY, amount numeric NOT NULL);
CREATE VIEW public.invoice_amount AS SELECT id, amount FROM public.invoice;
COMMENT ON TABLE public.invoice IS 'one row per invoice';
";

/// The gate's verdict and proof after a run: compatible, proven by the fingerprint.
fn assert_no_drift_by_fingerprint(p: &Project) {
    let gate = p.tool(Tool::SchemaCheck, &["--format", "json"]).run();
    let doc = gate.json();
    assert_eq!(gate.code, 0, "{doc:#}");
    assert_eq!(doc["snapshot_proof"], "fingerprint", "{doc:#}");
    assert_eq!(doc["drift"].as_array().map(Vec::len), Some(0), "{doc:#}");
}

/// The entries column is set to lz4 when the table is created, and a table of an earlier
/// version (pglz, the server's default) is set to it by the next run; the newest entries are
/// then stored with lz4, and the tools' own table never shows as drift.
#[test]
fn the_entries_are_stored_with_lz4_and_an_older_table_is_upgraded() {
    let p = Project::start();
    assert_eq!(
        p.scalar(
            "SELECT 'lz4' = ANY (enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        )
        .as_deref(),
        Some("t"),
        "this PostgreSQL was built without lz4, which the test needs"
    );
    let column = "SELECT attcompression FROM pg_attribute \
                  WHERE attrelid = 'public.dreichor_schema_snapshot'::regclass AND attname = 'entries'";
    let newest = "SELECT pg_column_compression(entries) FROM public.dreichor_schema_snapshot \
                  ORDER BY id DESC LIMIT 1";

    // Entries large enough to be compressed (TOAST compresses values over about 2 kB).
    let tables: String = (1..=60)
        .map(|i| format!("CREATE TABLE public.t{i} (id bigint PRIMARY KEY, note text);\n"))
        .collect();
    p.write("001_base.sql", format!("{BASE}{tables}"));
    p.tool(Tool::Migrate, &[]).run().assert_code(0);
    assert_eq!(p.scalar(column).as_deref(), Some("l"));
    assert_eq!(p.scalar(newest).as_deref(), Some("lz4"));

    // As an earlier version left it.
    p.sql("ALTER TABLE public.dreichor_schema_snapshot ALTER COLUMN entries SET COMPRESSION pglz");
    p.write("002_note.sql", "CREATE TABLE public.note (body text);\n");
    p.tool(Tool::Migrate, &[]).run().assert_code(0);
    assert_eq!(p.scalar(column).as_deref(), Some("l"));
    assert_eq!(p.scalar(newest).as_deref(), Some("lz4"));
    assert_no_drift_by_fingerprint(&p);
}

/// The lock's session plans its half of the capture while the run applies files, and runs
/// it from that plan afterwards; a recording that did not plan ahead (a run that applies
/// nothing and records the first snapshot) records the same entries, digest and fingerprint.
#[test]
fn the_half_planned_ahead_records_what_an_unplanned_one_records() {
    let p = Project::start();
    p.write("001_base.sql", BASE);
    p.sql("ALTER ROLE dreichor_dev SET log_statement = 'all'");
    let log_before = p.cluster.log().len();
    p.tool(Tool::Migrate, &[]).run().assert_code(0);
    let log = p.cluster.log()[log_before..].to_string();
    for statement in [
        "PREPARE dreichor_snapshot_part_1 AS",
        "EXPLAIN EXECUTE dreichor_snapshot_part_1",
        "EXECUTE dreichor_snapshot_part_1;",
    ] {
        assert!(
            log.contains(statement),
            "no {statement:?} in the server log:\n{log}"
        );
    }
    let recorded = "SELECT digest || ' ' || fingerprint FROM public.dreichor_schema_snapshot \
                    ORDER BY id DESC LIMIT 1";
    let planned = p.scalar(recorded).expect("a snapshot with a fingerprint");
    assert_no_drift_by_fingerprint(&p);

    // No snapshot: the next run records one though it applies nothing, without planning.
    p.sql("DELETE FROM public.dreichor_schema_snapshot");
    let log_before = p.cluster.log().len();
    let out = p.tool(Tool::Migrate, &[]).run();
    out.assert_code(0);
    out.assert_stderr("recorded the schema snapshot");
    let log = p.cluster.log()[log_before..].to_string();
    assert!(!log.contains("EXECUTE dreichor_snapshot_part_1"), "{log}");
    assert_eq!(p.scalar(recorded).as_deref(), Some(planned.as_str()));
    assert_no_drift_by_fingerprint(&p);
}

/// The capture never runs JIT-compiled, whatever the role sets: on a large schema its
/// estimated cost passes `jit_above_cost`, and compiling a query made of deparse calls costs
/// several times the capture itself (see `capture::PIN_RENDERING`). Here every threshold is
/// 0 for the role, and `auto_explain` logs the plan of every statement with its JIT details.
#[test]
fn the_capture_is_never_jit_compiled() {
    let p = Project::start();
    p.write("001_base.sql", BASE);
    assert_eq!(
        p.scalar("SELECT pg_jit_available()").as_deref(),
        Some("t"),
        "this PostgreSQL has no JIT provider, which the test needs"
    );
    p.sql(
        "ALTER ROLE dreichor_dev SET jit = on; \
         ALTER ROLE dreichor_dev SET jit_above_cost = 0; \
         ALTER ROLE dreichor_dev SET session_preload_libraries = 'auto_explain'; \
         ALTER ROLE dreichor_dev SET auto_explain.log_min_duration = 0; \
         ALTER ROLE dreichor_dev SET auto_explain.log_nested_statements = on",
    );
    let log_before = p.cluster.log().len();
    p.tool(Tool::Migrate, &[]).run().assert_code(0);
    p.sql("VACUUM FULL public.invoice");
    // The gate renders the schema: VACUUM FULL writes a new pg_class row, so the fingerprint
    // differs.
    let gate = p.tool(Tool::SchemaCheck, &["--format", "json"]).run();
    assert_eq!(gate.code, 0, "{:#}", gate.json());
    assert_eq!(gate.json()["snapshot_proof"], "digest");
    let log = p.cluster.log()[log_before..].to_string();
    // The setting works: the tools' other statements are compiled.
    assert!(
        log.contains("JIT:"),
        "no statement was JIT-compiled:\n{log}"
    );
    let captures: Vec<&str> = log
        .split("LOG:  duration:")
        .filter(|plan| plan.contains("pg_get_indexdef") || plan.contains("pg_get_functiondef"))
        .collect();
    assert!(
        captures.len() >= 3,
        "the capture's plans are not in the log:\n{log}"
    );
    for plan in captures {
        assert!(
            !plan.contains("JIT:"),
            "a capture was JIT-compiled:\n{plan}"
        );
    }
}

/// Setting an older table's entries column to lz4 rewrites a catalog row the fingerprint
/// counts, so only a run that records a snapshot may do it, right before it captures: a run
/// with nothing to apply (a deploy routine's `migrate`, the first after an upgrade of the
/// tools) must leave it alone, or the recorded fingerprint never matches again and every gate
/// renders the whole schema until the next migration (`migrate snapshot` then finds nothing
/// to accept either). It takes an ACCESS EXCLUSIVE lock: a session that reads the table in
/// an open transaction must not make the run fail (nor queue the gate's reads behind it for
/// the run's lock_timeout); the column is then set by a later run.
#[test]
fn an_older_table_is_set_to_lz4_only_by_a_run_that_records_and_never_holds_one_up() {
    let p = Project::start();
    let column = "SELECT attcompression FROM pg_attribute \
                  WHERE attrelid = 'public.dreichor_schema_snapshot'::regclass AND attname = 'entries'";
    // Entries large enough to be compressed (TOAST compresses values over about 2 kB).
    let tables: String = (1..=60)
        .map(|i| format!("CREATE TABLE public.t{i} (id bigint PRIMARY KEY, note text);\n"))
        .collect();
    p.write("001_base.sql", format!("{BASE}{tables}"));
    p.tool(Tool::Migrate, &[]).run().assert_code(0);
    // As an earlier version left it: the column at the server's default, and the newest
    // snapshot's fingerprint recorded over that.
    p.sql(
        "ALTER TABLE public.dreichor_schema_snapshot ALTER COLUMN entries SET COMPRESSION default",
    );
    p.sql(&format!(
        "UPDATE public.dreichor_schema_snapshot SET fingerprint = ({}) \
         WHERE id = (SELECT max(id) FROM public.dreichor_schema_snapshot)",
        common::snapshot::FINGERPRINT
    ));
    assert_no_drift_by_fingerprint(&p);

    // Nothing to apply, nothing recorded: the table is left as it is.
    let out = p.tool(Tool::Migrate, &[]).run();
    out.assert_code(0);
    assert!(out.stdout.contains("nothing to apply"), "{}", out.stdout);
    assert_eq!(p.scalar(column).as_deref(), Some(""));
    assert_no_drift_by_fingerprint(&p);

    // A reader holds the table in an open transaction: the run applies and records all the
    // same, and the column waits for a later run.
    let mut reader = p.cluster.admin_db("dreichor_dev");
    reader
        .batch_execute("BEGIN; SELECT count(*) FROM public.dreichor_schema_snapshot")
        .expect("read the snapshot table in an open transaction");
    p.write("002_note.sql", "CREATE TABLE public.note (body text);\n");
    let started = std::time::Instant::now();
    let out = p.tool(Tool::Migrate, &[]).run();
    out.assert_code(0);
    out.assert_stderr("recorded the schema snapshot");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "the run waited {:?} for the reader",
        started.elapsed()
    );
    reader.batch_execute("ROLLBACK").expect("end the reader");
    assert_eq!(p.scalar(column).as_deref(), Some(""));
    assert_no_drift_by_fingerprint(&p);

    // The next run that records sets it, before capturing: the fingerprint it records counts it.
    p.write("003_memo.sql", "CREATE TABLE public.memo (body text);\n");
    p.tool(Tool::Migrate, &[]).run().assert_code(0);
    assert_eq!(p.scalar(column).as_deref(), Some("l"));
    assert_eq!(
        p.scalar(
            "SELECT pg_column_compression(entries) FROM public.dreichor_schema_snapshot \
             ORDER BY id DESC LIMIT 1"
        )
        .as_deref(),
        Some("lz4")
    );
    assert_no_drift_by_fingerprint(&p);
}

/// A run whose first file fails records nothing, and ends while the lock's session may still
/// be planning its half (a file with a typo fails in a millisecond, the planning takes tens):
/// the session must end with its work, not be cut off mid-statement, which the server logs
/// as a lost client ("could not send data to client", "connection to client lost") on every
/// such run, and which holds the lock until the server notices.
#[test]
fn a_run_whose_first_file_fails_ends_the_lent_session_cleanly() {
    let p = Project::start();
    p.write("001_base.sql", BASE);
    p.tool(Tool::Migrate, &[]).run().assert_code(0);
    for run in 2..=4 {
        let file = format!("{run:03}_typo.sql");
        p.write(&file, "CREATE TABLE public.oops (;\n");
        let log_before = p.cluster.log().len();
        p.tool(Tool::Migrate, &[]).run().assert_code(1);
        // Both sessions gone: whatever the server logs about them is in the log by now.
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while p.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'dreichor-migrate%'",
        )
        .as_deref()
            != Some("0")
        {
            assert!(
                std::time::Instant::now() < until,
                "a session of the run outlived it"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let log = p.cluster.log()[log_before..].to_string();
        for lost in [
            "could not send data to client",
            "connection to client lost",
            "unexpected EOF on client connection",
            "could not receive data from client",
        ] {
            assert!(
                !log.contains(lost),
                "run {run}: {lost:?} in the server log:\n{log}"
            );
        }
        p.remove(&file);
    }
}

/// The lock's session plans its half while a file runs, whatever isolation the role's
/// defaults give a transaction: with `serializable` and `default_transaction_deferrable`,
/// a read-only transaction waits for a safe snapshot, that is for the running file's
/// transaction to end, and a file longer than the planning's own 5 s statement_timeout then
/// left "canceling statement due to statement timeout" in the server log and no plan.
#[test]
fn the_planning_ahead_never_waits_for_the_running_file() {
    let p = Project::start();
    p.write("001_base.sql", BASE);
    p.tool(Tool::Migrate, &[]).run().assert_code(0);
    p.sql(
        "ALTER ROLE dreichor_dev SET default_transaction_isolation = 'serializable'; \
         ALTER ROLE dreichor_dev SET default_transaction_deferrable = on; \
         ALTER ROLE dreichor_dev SET log_statement = 'all'",
    );
    let log_before = p.cluster.log().len();
    p.write(
        "002_slow.sql",
        "CREATE TABLE public.note (body text);\nINSERT INTO public.note VALUES ('x');\nSELECT pg_sleep(2);\n",
    );
    let mut run = p.tool(Tool::Migrate, &[]).spawn();
    run.wait_for_stderr("applying 002_slow", std::time::Duration::from_secs(30));
    let until = std::time::Instant::now() + std::time::Duration::from_millis(1500);
    while std::time::Instant::now() < until {
        let waiting = p.scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE application_name = 'dreichor-migrate-lock' AND wait_event = 'SafeSnapshot'",
        );
        assert_eq!(
            waiting.as_deref(),
            Some("0"),
            "the lock's session waits for the running file to end"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = run.wait();
    out.assert_code(0);
    out.assert_stderr("recorded the schema snapshot");
    // Planned ahead, and run from the plan.
    let log = p.cluster.log()[log_before..].to_string();
    assert!(log.contains("EXECUTE dreichor_snapshot_part_1;"), "{log}");
    assert!(!log.contains("ERROR"), "{log}");
    assert_no_drift_by_fingerprint(&p);
}

/// A run that applied a file and ended before recording the snapshot (killed, its connection
/// lost) leaves a snapshot older than the newest applied migration. The differences are then
/// that file's own objects, maybe hand changes too: no message calls them made "outside
/// migrations", the gate says what happened and what to do, and the next run records the
/// snapshot and says what it includes.
#[test]
fn a_snapshot_older_than_the_newest_migration_blames_nobody() {
    let p = Project::start();
    p.write("001_base.sql", BASE);
    p.tool(Tool::Migrate, &[]).run().assert_code(0);
    p.write("002_note.sql", "CREATE TABLE public.note (body text);\n");
    p.tool(Tool::Migrate, &[]).run().assert_code(0);
    // The state a run killed between its file's commit and the snapshot leaves.
    p.sql(
        "DELETE FROM public.dreichor_schema_snapshot \
         WHERE id = (SELECT max(id) FROM public.dreichor_schema_snapshot)",
    );

    let gate = p.tool(Tool::SchemaCheck, &[]).run();
    assert_eq!(gate.code, 1, "{gate:?}");
    let text = format!("{}{}", gate.stdout, gate.stderr);
    assert!(
        text.contains("table public.note added since the snapshot"),
        "{text}"
    );
    assert!(
        text.contains("older than the newest applied migration"),
        "{text}"
    );
    assert!(!text.contains("outside migrations"), "{text}");

    let status = p.tool(Tool::Migrate, &["status"]).run();
    let text = format!("{}{}", status.stdout, status.stderr);
    assert!(
        text.contains("older than the newest applied migration"),
        "{text}"
    );
    assert!(!text.contains("outside migrations"), "{text}");

    let run = p.tool(Tool::Migrate, &[]).run();
    run.assert_code(0);
    assert!(!run.stderr.contains("outside migrations"), "{}", run.stderr);
    run.assert_stderr("table public.note added since the schema snapshot");
    run.assert_stderr("recorded the schema snapshot");
    let reason = p
        .scalar("SELECT reason FROM public.dreichor_schema_snapshot ORDER BY id DESC LIMIT 1")
        .unwrap_or_default();
    assert!(reason.contains("that run's own changes"), "{reason}");
    assert!(!reason.contains("outside migrations"), "{reason}");
    assert_no_drift_by_fingerprint(&p);
}
