//! `migrate` end to end: applying, atomicity, drift, concurrency, crashes, timeouts, exit
//! codes, against a throwaway cluster per case (the database must be named `dreichor_dev`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::support::{Outcome, Project, Run, Tool};

/// `migrate` runs and reads the cases below make on a [`Project`].
trait MigrateCases {
    /// `migrate ARGS... --env dev --dir DIR` as the dev role, not yet run.
    fn cmd(&self, args: &[&str]) -> Run;
    /// The same, run.
    fn migrate(&self, args: &[&str]) -> Outcome;
    /// The one value of `sql` in `dreichor_dev` ("" for NULL or no row).
    fn one(&self, sql: &str) -> String;
}

impl MigrateCases for Project {
    fn cmd(&self, args: &[&str]) -> Run {
        self.tool(Tool::Migrate, args)
    }

    fn migrate(&self, args: &[&str]) -> Outcome {
        self.cmd(args).run()
    }

    fn one(&self, sql: &str) -> String {
        self.scalar(sql).unwrap_or_default()
    }
}

fn lines_of(outcome: &Outcome) -> String {
    format!("{}\n{}", outcome.stdout, outcome.stderr)
}

#[test]
fn applies_in_order_records_checksums_and_a_rerun_is_a_no_op() {
    let f = Project::start();
    f.write("001_a.sql", "CREATE TABLE a (id int);\n");
    f.write(
        "002_b.sql",
        "CREATE TABLE b (a_id int);\nINSERT INTO b VALUES (1);\n",
    );
    let first = f.migrate(&[]);
    first.assert_code(0);
    assert!(
        first.stdout.contains("applied 2, already applied 0"),
        "{}",
        lines_of(&first)
    );
    assert!(
        first.stderr.contains("applied  001_a ("),
        "{}",
        first.stderr
    );
    assert_eq!(f.versions(), ["001_a", "002_b"]);
    let checksum =
        f.one("SELECT checksum FROM public.dreichor_schema_migrations WHERE version = '001_a'");
    let expected = common::migrations::checksum_of("CREATE TABLE a (id int);\n");
    assert_eq!(checksum, expected);
    assert_eq!(
        f.one("SELECT count(*) FROM public.dreichor_schema_migrations WHERE applied_by = 'dreichor_dev' AND duration_ms >= 0"),
        "2"
    );

    let again = f.migrate(&[]);
    again.assert_code(0);
    assert!(
        again
            .stdout
            .contains("dreichor_dev: nothing to apply, 2 migrations already applied"),
        "{}",
        lines_of(&again)
    );
    assert_eq!(f.one("SELECT count(*) FROM b"), "1");
}

#[test]
fn a_failing_file_is_rolled_back_earlier_files_stay_and_the_line_is_reported() {
    let f = Project::start();
    f.write("001_a.sql", "CREATE TABLE a (id int);\n");
    f.write(
        "002_b.sql",
        "CREATE TABLE b (id int);\n\nINSERT INTO b VALUES (1);\nSELECT * FROM no_such_table;\n",
    );
    f.write("003_c.sql", "CREATE TABLE c (id int);\n");
    let out = f.migrate(&[]);
    out.assert_code(1);
    out.assert_stderr("002_b.sql:4:15:");
    out.assert_stderr("42P01");
    out.assert_stderr("rolled back");
    assert_eq!(f.versions(), ["001_a"]);
    assert!(f.table_exists("a"));
    assert!(
        !f.table_exists("b"),
        "the failed file's first statement must be rolled back"
    );
    assert!(!f.table_exists("c"), "nothing after the failed file runs");
}

#[test]
fn an_error_without_position_is_located_by_its_statement() {
    let f = Project::start();
    f.write(
        "001_a.sql",
        "CREATE TABLE a (id int PRIMARY KEY);\nINSERT INTO a VALUES (1);\n\n-- duplicate\nINSERT INTO a VALUES (1);\n",
    );
    let out = f.migrate(&[]);
    out.assert_code(1);
    out.assert_stderr("001_a.sql:5:1:");
    out.assert_stderr("23505");
    assert!(
        out.stderr.contains("Key (id)=(1) already exists"),
        "detail: {}",
        out.stderr
    );
    assert!(f.versions().is_empty());
    assert!(!f.table_exists("a"));
}

#[test]
fn every_kind_of_drift_refuses_and_applies_nothing() {
    let f = Project::start();
    f.write("001_a.sql", "CREATE TABLE a (id int);\n");
    f.write("003_c.sql", "CREATE TABLE c (id int);\n");
    f.migrate(&[]).assert_code(0);

    // Edited, out of order, and a new file that would otherwise be applied.
    f.write("001_a.sql", "CREATE TABLE a (id bigint);\n");
    f.write("002_b.sql", "CREATE TABLE b (id int);\n");
    f.write("004_d.sql", "CREATE TABLE d (id int);\n");
    let out = f.migrate(&[]);
    out.assert_code(1);
    out.assert_stderr("001_a.sql was applied with checksum");
    out.assert_stderr("restore it from version control");
    out.assert_stderr("002_b.sql is not applied but sorts before 003_c");
    assert!(!f.table_exists("d") && !f.table_exists("b"));
    assert_eq!(f.versions(), ["001_a", "003_c"]);

    // A deleted file.
    f.write("001_a.sql", "CREATE TABLE a (id int);\n");
    f.remove("002_b.sql");
    f.remove("003_c.sql");
    let out = f.migrate(&[]);
    out.assert_code(1);
    out.assert_stderr("003_c is applied in the database but 003_c.sql is not in the directory");
    assert!(!f.table_exists("d"));
}

#[test]
fn line_ending_and_byte_order_mark_changes_are_not_drift() {
    let f = Project::start();
    f.write(
        "001_a.sql",
        "CREATE TABLE a (id int);\nCREATE TABLE b (id int);\n",
    );
    f.migrate(&[]).assert_code(0);
    f.write(
        "001_a.sql",
        "\u{feff}CREATE TABLE a (id int);\r\nCREATE TABLE b (id int);\r\n",
    );
    f.migrate(&[]).assert_code(0);
    f.tool(Tool::SchemaCheck, &[]).run().assert_code(0);
}

#[test]
fn six_concurrent_runners_apply_every_file_exactly_once() {
    let f = Project::start();
    for i in 1..=20 {
        // A non-idempotent file: running it twice would fail on the duplicate table.
        f.write(
            &format!("{i:03}_t{i}.sql"),
            format!("CREATE TABLE t{i} (id int);\nINSERT INTO t{i} VALUES ({i});\n"),
        );
    }
    let runners: Vec<_> = (0..6).map(|_| f.cmd(&[]).spawn()).collect();
    let outcomes: Vec<Outcome> = runners.into_iter().map(|r| r.wait()).collect();
    for o in &outcomes {
        o.assert_code(0);
    }
    let applied: usize = outcomes
        .iter()
        .map(|o| {
            let doc = o.stdout.clone();
            if doc.contains(": nothing to apply, ") {
                return 0;
            }
            let n = doc
                .split("applied ")
                .nth(1)
                .and_then(|s| s.split(',').next())
                .and_then(|s| s.trim().parse::<usize>().ok())
                .unwrap_or_else(|| panic!("no summary in {doc}"));
            n
        })
        .sum();
    assert_eq!(applied, 20, "each file applied by exactly one runner");
    assert_eq!(f.versions().len(), 20);
    for i in 1..=20 {
        assert_eq!(f.one(&format!("SELECT count(*) FROM t{i}")), "1");
    }
}

#[test]
fn runners_waiting_for_the_lock_do_not_deadlock_create_index_concurrently() {
    let f = Project::start();
    f.write(
        "001_t.sql",
        "CREATE TABLE t (id int, v text);\nINSERT INTO t SELECT g, g::text FROM generate_series(1, 20000) g;\n",
    );
    f.write(
        "002_index.sql",
        "-- dreichor:no-transaction\nSELECT pg_sleep(1);\nCREATE INDEX CONCURRENTLY t_v ON t (v);\n",
    );
    f.migrate(&["--dry-run"]).assert_code(0);
    let started = Instant::now();
    let mut first = f.cmd(&[]).spawn();
    first.wait_for_stderr("applying 002_index", Duration::from_secs(30));
    // These wait for the lock while the index is being built.
    let waiters: Vec<_> = (0..3).map(|_| f.cmd(&[]).spawn()).collect();
    first.wait().assert_code(0);
    for w in waiters {
        w.wait().assert_code(0);
    }
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(
        f.one("SELECT indisvalid FROM pg_index WHERE indexrelid = 'public.t_v'::regclass"),
        "t"
    );
    assert_eq!(f.versions(), ["001_t", "002_index"]);
}

#[test]
fn a_held_lock_makes_the_runner_give_up_in_time_naming_the_holder() {
    let f = Project::start();
    f.write("001_a.sql", "CREATE TABLE a (id int);\n");
    let mut holder = f.connect_as_dev("stuck-operator");
    let pid = holder
        .query_one(
            "SELECT pg_backend_pid()::text, pg_advisory_lock($1)::text",
            &[&common::lock::KEY],
        )
        .unwrap()
        .get::<_, String>(0);
    let started = Instant::now();
    let out = f.migrate(&["--lock-wait", "1"]);
    let took = started.elapsed();
    out.assert_code(1);
    assert!(took < Duration::from_secs(5), "gave up after {took:?}");
    out.assert_stderr(&format!("pid {pid}"));
    out.assert_stderr("stuck-operator");
    out.assert_stderr("was not acquired");
    assert!(f.versions().is_empty());
    drop(holder);
    f.migrate(&[]).assert_code(0);
}

#[test]
fn the_lock_not_acquired_in_json_names_the_holder() {
    let f = Project::start();
    f.write("001_a.sql", "CREATE TABLE a (id int);\n");
    let mut holder = f.connect_as_dev("stuck-operator");
    let pid = holder
        .query_one(
            "SELECT pg_backend_pid()::text, pg_advisory_lock($1)::text",
            &[&common::lock::KEY],
        )
        .unwrap()
        .get::<_, String>(0);
    let out = f.migrate(&["--lock-wait", "1", "--format", "json"]);
    out.assert_code(1);
    let doc = out.json();
    assert_eq!(doc["kind"], "lock-not-acquired", "{doc:#}");
    assert_eq!(doc["database"], "dreichor_dev");
    assert_eq!(doc["waited_ms"], 1000);
    assert_eq!(doc["holder"]["pid"], pid.as_str());
    assert_eq!(doc["holder"]["application"], "stuck-operator");
    drop(holder);
}

#[test]
fn kill_9_at_random_moments_never_leaves_a_file_half_applied() {
    let f = Project::start();
    for i in 1..=12 {
        f.write(
            &format!("{i:03}_t{i}.sql"),
            format!(
                "CREATE TABLE t{i} (id int);\nINSERT INTO t{i} SELECT generate_series(1, 1000);\nSELECT pg_sleep(0.05);\nCREATE INDEX t{i}_id ON t{i} (id);\n"
            ),
        );
    }
    // Deterministic "random" delays, spread over the run (each file takes ~60 ms).
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..10 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_millis(20 + seed % 400);
        let mut run = f.cmd(&[]).spawn();
        std::thread::sleep(delay);
        run.kill_9();
        let _ = run.wait();
        assert_consistent(&f, round);
    }
    f.migrate(&[]).assert_code(0);
    assert_consistent(&f, 99);
    assert_eq!(f.versions().len(), 12);
}

/// Every table exists iff its version is recorded, with all its rows and its index.
fn assert_consistent(f: &Project, round: usize) {
    // The server received the killed runner's last message whole, so its backend may still
    // be running (and then commit) that file: wait until it is gone, so that the two reads
    // below see one state. Either way each commit is atomic.
    let until = Instant::now() + Duration::from_secs(20);
    while f.one("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'dreichor-migrate'")
        != "0"
    {
        assert!(
            Instant::now() < until,
            "round {round}: the runner's backend did not end"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let recorded = f.versions();
    for i in 1..=12 {
        let version = format!("{i:03}_t{i}");
        let exists = f.table_exists(&format!("t{i}"));
        assert_eq!(
            exists,
            recorded.contains(&version),
            "round {round}: table t{i} exists={exists} but recorded={recorded:?}"
        );
        if exists {
            assert_eq!(f.one(&format!("SELECT count(*) FROM t{i}")), "1000");
            assert!(f.table_exists(&format!("t{i}_id")));
        }
    }
}

#[test]
fn a_backend_terminated_mid_file_leaves_it_unapplied() {
    let f = Project::start();
    f.write("001_a.sql", "CREATE TABLE a (id int);\n");
    f.write(
        "002_slow.sql",
        "CREATE TABLE slow (id int);\nSELECT pg_sleep(30);\n",
    );
    let mut run = f.cmd(&[]).spawn();
    run.wait_for_stderr("applying 002_slow", Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(300));
    let killed = f.one(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'dreichor-migrate'",
    );
    assert_eq!(killed, "1");
    let out = run.wait();
    out.assert_code(1);
    out.assert_stderr("002_slow.sql");
    out.assert_stderr("a new session finds 002_slow not recorded, so nothing of it was committed");
    assert_eq!(f.versions(), ["001_a"]);
    assert!(!f.table_exists("slow"));
}

#[test]
fn a_no_transaction_file_runs_statement_by_statement() {
    let f = Project::start();
    f.write("001_t.sql", "CREATE TABLE t (id int, v text);\n");
    f.write(
        "002_index.sql",
        "-- dreichor:no-transaction\nCREATE INDEX CONCURRENTLY t_id ON t (id);\nCREATE INDEX CONCURRENTLY t_v ON t (v)",
    );
    f.migrate(&[]).assert_code(0);
    assert!(f.table_exists("t_id") && f.table_exists("t_v"));
    assert_eq!(f.versions(), ["001_t", "002_index"]);
}

#[test]
fn a_failing_no_transaction_file_says_what_ran_and_records_nothing() {
    let f = Project::start();
    f.write(
        "001_t.sql",
        "CREATE TABLE t (id int);\nINSERT INTO t VALUES (1), (1);\n",
    );
    f.write(
        "002_index.sql",
        "-- dreichor:no-transaction\nCREATE INDEX CONCURRENTLY t_plain ON t (id);\n\nCREATE UNIQUE INDEX CONCURRENTLY t_unique ON t (id);\n",
    );
    let out = f.migrate(&[]);
    out.assert_code(1);
    out.assert_stderr("002_index.sql:4:1:");
    out.assert_stderr("1 of its 2 statements had run");
    out.assert_stderr("line 2");
    out.assert_stderr("t_unique is INVALID");
    assert_eq!(f.versions(), ["001_t"]);
}

#[test]
fn a_concurrent_index_in_a_transactional_file_is_refused_before_anything_runs() {
    let f = Project::start();
    f.write(
        "001_t.sql",
        "CREATE TABLE t (id int);\nCREATE INDEX CONCURRENTLY t_id ON t (id);\n",
    );
    let out = f.migrate(&[]);
    out.assert_code(2);
    out.assert_stderr("001_t.sql:2:1: `CREATE INDEX CONCURRENTLY` cannot run inside a transaction block (PostgreSQL error 25001)");
    out.assert_stderr("-- dreichor:no-transaction");
    assert!(!f.table_exists("t"));
    assert!(!f.table_exists("dreichor_schema_migrations"));
}

#[test]
fn lock_timeout_rolls_back_and_retries_until_the_lock_is_free() {
    let f = Project::start();
    f.write("001_t.sql", "CREATE TABLE t (id int);\n");
    f.migrate(&[]).assert_code(0);
    f.write("002_alter.sql", "ALTER TABLE t ADD COLUMN v text;\n");
    // A long transaction holding a lock on t, released after about 2.5 s.
    let mut blocker = f.cluster.admin_db("dreichor_dev");
    let mut tx = blocker.transaction().unwrap();
    tx.batch_execute("LOCK TABLE t IN ACCESS SHARE MODE")
        .unwrap();
    let run = f.cmd(&["--lock-timeout", "1"]).spawn();
    std::thread::sleep(Duration::from_millis(2500));
    tx.commit().unwrap();
    let out = run.wait();
    out.assert_code(0);
    out.assert_stderr("lock_timeout expired");
    out.assert_stderr("retry 1 of 3");
    assert_eq!(f.versions(), ["001_t", "002_alter"]);
}

#[test]
fn statement_timeout_stops_a_long_statement() {
    let f = Project::start();
    f.write("001_slow.sql", "SELECT pg_sleep(5);\n");
    let started = Instant::now();
    let out = f.migrate(&["--statement-timeout", "1"]);
    out.assert_code(1);
    assert!(started.elapsed() < Duration::from_secs(4));
    out.assert_stderr("57014");
    assert!(f.versions().is_empty());
}

#[test]
fn dry_run_changes_nothing_not_even_the_tracking_table() {
    let f = Project::start();
    f.write("001_a.sql", "CREATE TABLE a (id int);\n");
    f.write("002_b.sql", "CREATE TABLE b (id int);\n");
    let out = f.migrate(&["--dry-run"]);
    out.assert_code(0);
    assert!(
        out.stdout
            .contains("would apply 001_a\n  would apply 002_b"),
        "{}",
        out.stdout
    );
    assert!(f.versions().is_empty());
    assert_eq!(
        f.one("SELECT to_regclass('public.dreichor_schema_migrations') IS NULL"),
        "t"
    );
    let json = f.migrate(&["--dry-run", "--format", "json"]).json();
    assert_eq!(json["dry_run"], true);
    assert_eq!(json["applied"].as_array().unwrap().len(), 2);
}

#[test]
fn status_shows_every_state_and_json_is_one_document() {
    let f = Project::start();
    f.write("001_a.sql", "CREATE TABLE a (id int);\n");
    f.write("003_c.sql", "CREATE TABLE c (id int);\n");
    f.migrate(&[]).assert_code(0);
    f.write("001_a.sql", "CREATE TABLE a (id bigint);\n");
    f.write("002_b.sql", "SELECT 1;\n");
    f.write("004_d.sql", "SELECT 1;\n");
    let out = f.cmd(&["status"]).run();
    out.assert_code(0);
    assert!(out.stdout.contains("modified      001_a"), "{}", out.stdout);
    assert!(out.stdout.contains("out of order  002_b"), "{}", out.stdout);
    assert!(
        out.stdout.contains("applied       003_c  (applied 20"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("pending       004_d"), "{}", out.stdout);
    let doc = f.cmd(&["status", "--format", "json"]).run().json();
    let states: Vec<_> = doc["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["state"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(states, ["modified", "out of order", "applied", "pending"]);
}

#[test]
fn json_output_is_one_document_on_failure_too() {
    let f = Project::start();
    f.write("001_a.sql", "SELECT * FROM nope;\n");
    let out = f.migrate(&["--format", "json"]);
    out.assert_code(1);
    let doc = out.json();
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["exit_code"], 1);
    assert!(doc["error"].as_str().unwrap().contains("001_a.sql:1:15"));
}

#[test]
fn a_failed_migration_in_json_says_file_position_sqlstate_and_what_stays() {
    let f = Project::start();
    f.write("001_a.sql", "CREATE TABLE a (id int);\n");
    f.write("002_b.sql", "SELECT 1;\nSELECT * FROM nope;\n");
    let out = f.migrate(&["--format", "json"]);
    out.assert_code(1);
    let doc = out.json();
    assert_eq!(doc["kind"], "migration", "{doc:#}");
    assert_eq!(doc["file"], "002_b.sql");
    assert_eq!(doc["line"], 2);
    assert_eq!(doc["column"], 15);
    assert_eq!(doc["sqlstate"], "42P01");
    assert_eq!(doc["transactional"], true);
    assert_eq!(doc["applied_before"], serde_json::json!(["001_a"]));
    assert!(doc["error"].as_str().unwrap().contains("002_b.sql:2:15"));
}

#[test]
fn a_json_error_document_names_the_kind_and_every_broken_rule() {
    let f = Project::start();
    f.write("001_a.sql", "BEGIN;\nCREATE TABLE a (id int);\nCOMMIT;\n");
    f.write("notes.txt", "todo\n");
    let out = f.migrate(&["--format", "json"]);
    out.assert_code(2);
    let doc = out.json();
    assert_eq!(doc["kind"], "directory");
    let errors: Vec<String> = doc["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{} {} {} {}", e["file"], e["line"], e["column"], e["rule"]))
        .collect();
    assert_eq!(
        errors,
        [
            r#""001_a.sql" 1 1 "transaction-control""#,
            r#""001_a.sql" 3 1 "transaction-control""#,
            r#""notes.txt" null null "not-sql""#,
        ],
        "{doc:#}"
    );
}

#[test]
fn a_two_column_tracking_table_is_upgraded_in_place() {
    let f = Project::start();
    f.write("001_a.sql", "CREATE TABLE a (id int);\n");
    f.write("002_b.sql", "CREATE TABLE b (id int);\n");
    // As an earlier runner following the design document would have left it.
    f.sql(
        "CREATE TABLE public.dreichor_schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());\
         ALTER TABLE public.dreichor_schema_migrations OWNER TO dreichor_dev;\
         CREATE TABLE a (id int); ALTER TABLE a OWNER TO dreichor_dev;\
         INSERT INTO public.dreichor_schema_migrations (version) VALUES ('001_a');",
    );
    let out = f.migrate(&[]);
    out.assert_code(0);
    out.assert_stderr("upgraded the two-column tracking table");
    assert!(
        out.stdout.contains("applied 1, already applied 1"),
        "{}",
        out.stdout
    );
    assert_eq!(
        f.one("SELECT checksum FROM public.dreichor_schema_migrations WHERE version = '001_a'"),
        common::migrations::checksum_of("CREATE TABLE a (id int);\n")
    );
}

#[test]
fn search_path_does_not_decide_which_tracking_table_is_used() {
    let f = Project::start();
    f.write("001_a.sql", "CREATE TABLE public.a (id int);\n");
    f.sql(
        "CREATE SCHEMA decoy AUTHORIZATION dreichor_dev;\
         CREATE TABLE decoy.dreichor_schema_migrations (version text PRIMARY KEY, applied_at timestamptz, checksum text);\
         INSERT INTO decoy.dreichor_schema_migrations VALUES ('001_a', now(), 'bogus');\
         ALTER ROLE dreichor_dev IN DATABASE dreichor_dev SET search_path = decoy, public;",
    );
    f.migrate(&[]).assert_code(0);
    assert_eq!(f.versions(), ["001_a"]);
    assert!(f.table_exists("a"));
}

#[test]
fn it_refuses_inside_github_actions_touching_nothing() {
    let f = Project::start();
    f.write("001_a.sql", "CREATE TABLE a (id int);\n");
    let out = f.cmd(&[]).env("GITHUB_ACTIONS", "true").run();
    out.assert_code(2);
    out.assert_stderr("GitHub Actions");
    assert!(f.versions().is_empty());
    assert!(!f.table_exists("a"));
}

#[test]
fn an_invalid_directory_touches_nothing() {
    let f = Project::start();
    f.write("001_a.sql", "CREATE TABLE a (id int);\n");
    f.write("002_b.sql", "COMMIT;\n");
    f.write("3_c.sql", "SELECT 1;\n");
    let out = f.migrate(&[]);
    out.assert_code(2);
    out.assert_stderr("002_b.sql:1:1: transaction control `COMMIT`");
    out.assert_stderr("3_c.sql: has a 1-digit prefix");
    assert_eq!(
        f.one("SELECT to_regclass('public.dreichor_schema_migrations') IS NULL"),
        "t"
    );
}

#[test]
fn an_unreachable_server_and_a_wrong_password_exit_3() {
    let f = Project::start();
    f.write("001_a.sql", "SELECT 1;\n");
    let wrong = f.cluster.url_for(
        "dreichor_dev",
        "Sntnl-wrong-password",
        "localhost",
        "dreichor_dev",
    );
    crate::support::secrets::register("Sntnl-wrong-password");
    let out = f.cmd(&[]).env("DATABASE_URL", &wrong).run();
    out.assert_code(3);
    out.assert_stderr("28P01");

    f.cluster.stop();
    let out = f.migrate(&[]);
    out.assert_code(3);
    out.assert_stderr("cannot reach the database at postgres://dreichor_dev:***@localhost");
}

#[test]
fn a_superuser_or_a_role_that_reaches_the_other_environment_exits_2() {
    let f = Project::start();
    f.write("001_a.sql", "CREATE TABLE a (id int);\n");
    let su = f.cluster.url_for(
        "postgres",
        f.cluster.superuser_password(),
        "localhost",
        "dreichor_dev",
    );
    let out = f.cmd(&[]).env("DATABASE_URL", &su).run();
    out.assert_code(2);
    out.assert_stderr("superuser");

    f.cluster.sql(
        "postgres",
        "GRANT CONNECT ON DATABASE dreichor_prod TO dreichor_dev",
    );
    let out = f.migrate(&[]);
    out.assert_code(2);
    out.assert_stderr("can connect to dreichor_prod");
    assert!(f.versions().is_empty());
}

#[test]
fn a_url_for_the_other_environment_exits_2_before_connecting() {
    let f = Project::start();
    f.write("001_a.sql", "SELECT 1;\n");
    let out = f.cmd(&[]).env("DATABASE_URL", &f.envs.prod_url).run();
    out.assert_code(2);
    out.assert_stderr("dreichor_dev");
    let out = f.cmd(&[]).env("DREICHOR_ENV", "prod").run();
    out.assert_code(2);
}

#[test]
fn migrate_sh_applies_the_shipped_migrations_from_any_directory() {
    let f = Project::start();
    let script: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "infra",
        "db",
        "migrate.sh",
    ]
    .iter()
    .collect();
    let elsewhere = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Run::new("bash")
            .arg(&script)
            .args(args)
            .env("DATABASE_URL", &f.envs.dev_url)
            .env("DREICHOR_MIGRATE_BIN", Tool::Migrate.path())
            .current_dir(elsewhere.path())
            .run()
    };
    let out = run(&["--env", "dev"]);
    out.assert_code(0);
    let shipped = std::fs::read_dir(
        [
            env!("CARGO_MANIFEST_DIR"),
            "..",
            "infra",
            "db",
            "migrations",
        ]
        .iter()
        .collect::<PathBuf>(),
    )
    .unwrap()
    .count();
    assert_eq!(f.versions().len(), shipped);
    assert!(f.versions().contains(&"001_init".to_string()));
    run(&["status", "--env", "dev"]).assert_code(0);
    // The exit code is migrate's.
    run(&["--env", "prod"]).assert_code(2);
}

#[test]
fn a_decoy_operator_on_the_roles_search_path_does_not_hide_connect_on_the_other_environment() {
    let f = Project::start();
    f.write("001_a.sql", "CREATE TABLE a (id int);\n");
    f.cluster.sql(
        "postgres",
        "GRANT CONNECT ON DATABASE dreichor_prod TO dreichor_dev",
    );
    // Within the role's own rights: a schema in its database, an operator that says "never
    // equal", and its own search_path with the decoy ahead of pg_catalog.
    f.plant_decoy_operator();
    let out = f.migrate(&[]);
    out.assert_code(2);
    out.assert_stderr("can connect to dreichor_prod");
    assert!(!f.table_exists("a"));
}

#[test]
fn ctrl_c_cancels_the_running_file_rolls_it_back_and_releases_the_lock() {
    let f = Project::start();
    f.write("001_a.sql", "CREATE TABLE a (id int);\n");
    f.write(
        "002_slow.sql",
        "CREATE TABLE slow (id int);\nSELECT pg_sleep(30);\n",
    );
    f.write("003_c.sql", "CREATE TABLE c (id int);\n");
    let mut run = f.cmd(&[]).spawn();
    run.wait_for_stderr("applying 002_slow", Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-INT", &run.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = run.wait();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    out.assert_code(1);
    out.assert_stderr("interrupted (Ctrl-C, SIGTERM or a lost terminal)");
    out.assert_stderr("57014");
    out.assert_stderr("1 file applied by this run stays applied");
    // Nothing of the cancelled file, nothing after it, and no backend left holding the lock.
    assert_eq!(f.versions(), ["001_a"]);
    assert!(!f.table_exists("slow") && !f.table_exists("c"));
    assert_eq!(
        f.one("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"),
        "0"
    );
    // Never applied, so it may be edited: without the sleep, the next run completes.
    f.write("002_slow.sql", "CREATE TABLE slow (id int);\n");
    f.migrate(&[]).assert_code(0);
}

#[test]
fn a_no_transaction_file_refuses_to_run_over_an_invalid_index() {
    let f = Project::start();
    f.write(
        "001_t.sql",
        "CREATE TABLE t (id int);\nINSERT INTO t VALUES (1), (1);\n",
    );
    f.write(
        "002_index.sql",
        "-- dreichor:no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS t_unique ON t (id);\n",
    );
    f.migrate(&[]).assert_code(1);
    // The duplicates are fixed, but the failed build left t_unique INVALID: IF NOT EXISTS
    // would skip it and record the file over a broken index.
    f.sql("DELETE FROM t WHERE ctid = (SELECT max(ctid) FROM t)");
    let out = f.migrate(&[]);
    out.assert_code(1);
    out.assert_stderr("while the database has INVALID indexes (t_unique)");
    out.assert_stderr("DROP INDEX CONCURRENTLY t_unique");
    assert_eq!(f.versions(), ["001_t"]);
    f.sql("DROP INDEX t_unique");
    f.migrate(&[]).assert_code(0);
    assert_eq!(
        f.one("SELECT indisvalid FROM pg_index WHERE indexrelid = 'public.t_unique'::regclass"),
        "t"
    );
}

#[test]
fn create_index_concurrently_waits_for_old_transactions_beyond_lock_timeout() {
    let f = Project::start();
    f.write("001_t.sql", "CREATE TABLE t (id int);\n");
    f.migrate(&[]).assert_code(0);
    f.write(
        "002_index.sql",
        "-- dreichor:no-transaction\nCREATE INDEX CONCURRENTLY t_id ON t (id);\n",
    );
    // An old transaction with a snapshot: CONCURRENTLY must wait for it to end.
    let mut old = f.cluster.admin_db("dreichor_dev");
    let mut tx = old
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .start()
        .unwrap();
    tx.batch_execute("SELECT count(*) FROM t").unwrap();
    let run = f.cmd(&["--lock-timeout", "1"]).spawn();
    std::thread::sleep(Duration::from_millis(2500));
    tx.commit().unwrap();
    let out = run.wait();
    out.assert_code(0);
    assert_eq!(
        f.one("SELECT indisvalid FROM pg_index WHERE indexrelid = 'public.t_id'::regclass"),
        "t"
    );
}

#[test]
fn lint_lists_every_violation_and_since_enforces_append_only_against_git() {
    let repo = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        Run::new("git")
            .arg("-C")
            .arg(repo.path())
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
            .run()
            .assert_code(0)
            .clone()
    };
    let dir = repo.path().join("migrations");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("001_a.sql"), "CREATE TABLE a (id int);\n").unwrap();
    std::fs::write(dir.join("003_c.sql"), "CREATE TABLE c (id int);\n").unwrap();
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "."]);
    git(&["commit", "-qm", "base"]);
    let lint = |extra: &[&str]| {
        Tool::Migrate
            .cmd()
            .args(["lint", "--dir"])
            .arg(&dir)
            .args(extra)
            .run()
    };
    lint(&["--since", "main"]).assert_code(0);

    // An edited old file, a new file that sorts too early, and two directory rule breaks.
    std::fs::write(dir.join("001_a.sql"), "CREATE TABLE a (id bigint);\n").unwrap();
    std::fs::write(dir.join("002_b.sql"), "CREATE TABLE b (id int);\n").unwrap();
    std::fs::write(
        dir.join("004_d.sql"),
        "BEGIN;\nCREATE TABLE d (id int);\nCOMMIT;\n",
    )
    .unwrap();
    std::fs::write(dir.join("notes.txt"), "todo\n").unwrap();
    let out = lint(&["--since", "main", "--format", "json"]);
    out.assert_code(2);
    let doc = out.json();
    let errors: Vec<String> = doc["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["file"].as_str().unwrap(),
                e["message"].as_str().unwrap()
            )
        })
        .collect();
    let has = |file: &str, words: &str| {
        errors
            .iter()
            .any(|e| e.starts_with(file) && e.contains(words))
    };
    assert!(has("001_a.sql", "changed since main"), "{errors:#?}");
    assert!(has("002_b.sql", "sorts before 003_c.sql"), "{errors:#?}");
    assert!(has("004_d.sql", "`BEGIN`"), "{errors:#?}");
    assert!(has("004_d.sql", "`COMMIT`"), "{errors:#?}");
    assert!(has("notes.txt", "not a .sql file"), "{errors:#?}");
    assert_eq!(errors.len(), 5, "{errors:#?}");

    lint(&["--since", "no-such-branch"]).assert_code(2);
}

#[test]
fn a_flag_error_still_gives_one_json_document_with_exit_2() {
    for (tool, args) in [
        (
            Tool::Migrate,
            &["--format", "json", "--lock-wait", "soon"][..],
        ),
        (Tool::SchemaCheck, &["--format=json", "--no-such-flag"][..]),
    ] {
        let out = tool.cmd().args(args).run();
        out.assert_code(2);
        let doc = out.json();
        assert_eq!(doc["ok"], false);
        assert_eq!(doc["exit_code"], 2);
        if tool == Tool::SchemaCheck {
            assert_eq!(doc["compatible"], false);
        }
        out.assert_stderr("error:");
    }
}

#[test]
fn every_file_starts_from_the_session_defaults_whatever_the_previous_one_set() {
    // One run or one run per file: the same files must build the same schema.
    let files = [
        (
            "001_ledger.sql",
            "CREATE SCHEMA ledger;\nSET search_path = ledger;\nCREATE TABLE entries (id int);\n",
        ),
        ("002_plain.sql", "CREATE TABLE plain (id int);\n"),
    ];
    let together = Project::start();
    for (name, sql) in files {
        together.write(name, sql);
    }
    together.migrate(&[]).assert_code(0);
    let one_by_one = Project::start();
    for (name, sql) in files {
        one_by_one.write(name, sql);
        one_by_one.migrate(&[]).assert_code(0);
    }
    for f in [&together, &one_by_one] {
        assert_eq!(
            f.one("SELECT to_regclass('ledger.entries') IS NOT NULL"),
            "t"
        );
        assert_eq!(f.one("SELECT to_regclass('public.plain') IS NOT NULL"), "t");
        assert_eq!(f.one("SELECT to_regclass('ledger.plain') IS NULL"), "t");
    }
}

#[test]
fn the_server_side_guard_refuses_a_transaction_the_file_ended_itself() {
    use common::apply::{guard, MARK_TRANSACTION};
    use common::connect::PIN_SEARCH_PATH;
    let f = Project::start();
    let mut client = f.connect_as_dev("guard-test");
    // The lock is held by a session of its own, as the runner holds it.
    let mut lock = f.connect_as_dev("guard-test-lock");
    lock.batch_execute(&format!("SELECT pg_advisory_lock({})", common::lock::KEY))
        .unwrap();
    // The runner's own transaction, untouched: the guard passes.
    client
        .batch_execute(&format!(
            "BEGIN;\n{MARK_TRANSACTION}SELECT 1;\n{PIN_SEARCH_PATH};\n{};\nCOMMIT;",
            guard()
        ))
        .unwrap();
    // A COMMIT in the middle of the file: the rest runs in another transaction.
    let err = client
        .batch_execute(&format!(
            "BEGIN;\n{MARK_TRANSACTION}CREATE TABLE half (id int);\nCOMMIT;\nSELECT 1;\n{PIN_SEARCH_PATH};\n{};\nCOMMIT;",
            guard()
        ))
        .unwrap_err();
    let text = crate::support::cluster::describe_error(&err);
    assert!(
        text.contains("ended the runner's transaction itself"),
        "{text}"
    );
    // The lock's session gone: the guard refuses even an untouched transaction.
    drop(lock);
    std::thread::sleep(Duration::from_millis(200));
    let err = client
        .batch_execute(&format!(
            "BEGIN;\n{MARK_TRANSACTION}SELECT 1;\n{PIN_SEARCH_PATH};\n{};\nCOMMIT;",
            guard()
        ))
        .unwrap_err();
    let text = crate::support::cluster::describe_error(&err);
    assert!(text.contains("the migration lock was lost"), "{text}");
}

#[test]
fn a_tracking_table_in_the_three_column_form_gets_the_other_columns() {
    let f = Project::start();
    f.write("001_a.sql", "CREATE TABLE a (id int);\n");
    f.write("002_b.sql", "CREATE TABLE b (id int);\n");
    let checksum = common::migrations::checksum_of("CREATE TABLE a (id int);\n");
    f.sql(&format!(
        "CREATE TABLE public.dreichor_schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now(), checksum text);\
         ALTER TABLE public.dreichor_schema_migrations OWNER TO dreichor_dev;\
         CREATE TABLE a (id int); ALTER TABLE a OWNER TO dreichor_dev;\
         INSERT INTO public.dreichor_schema_migrations (version, checksum) VALUES ('001_a', '{checksum}');"
    ));
    let dry = f.migrate(&["--dry-run"]);
    dry.assert_code(0);
    let out = f.migrate(&[]);
    out.assert_code(0);
    out.assert_stderr("added the columns duration_ms and applied_by");
    assert!(
        out.stdout.contains("applied 1, already applied 1"),
        "{}",
        out.stdout
    );
    assert_eq!(f.versions(), ["001_a", "002_b"]);
}

#[test]
fn temporary_objects_of_one_file_do_not_reach_the_next() {
    let f = Project::start();
    for (name, table) in [("001_a.sql", "a"), ("002_b.sql", "b")] {
        f.write(
            name,
            format!(
                "CREATE TEMP TABLE staging AS SELECT 1 AS id;\nCREATE TABLE {table} AS SELECT * FROM staging;\nPREPARE fetch_one AS SELECT 1;\n"
            ),
        );
    }
    f.migrate(&[]).assert_code(0);
    assert_eq!(f.versions(), ["001_a", "002_b"]);
}

#[test]
fn ctrl_c_while_waiting_to_retry_stops_the_run_with_the_file_unapplied() {
    let f = Project::start();
    f.write("001_t.sql", "CREATE TABLE t (id int);\n");
    f.migrate(&[]).assert_code(0);
    f.write("002_alter.sql", "ALTER TABLE t ADD COLUMN v text;\n");
    let mut blocker = f.cluster.admin_db("dreichor_dev");
    let mut tx = blocker.transaction().unwrap();
    tx.batch_execute("LOCK TABLE t IN ACCESS SHARE MODE")
        .unwrap();
    let mut run = f.cmd(&["--lock-timeout", "1"]).spawn();
    run.wait_for_stderr("retry 1 of 3", Duration::from_secs(30));
    let started = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-INT", &run.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = run.wait();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    out.assert_code(1);
    out.assert_stderr("interrupted");
    tx.commit().unwrap();
    assert_eq!(f.versions(), ["001_t"]);
    assert_eq!(
        f.one("SELECT count(*) FROM information_schema.columns WHERE table_name = 't' AND column_name = 'v'"),
        "0"
    );
}
