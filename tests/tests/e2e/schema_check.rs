//! `schema-check`, the deploy agent's read-only pre-start gate, against a throwaway cluster.
//!
//! The tool insists on the real database names (`dreichor_dev`, `dreichor_prod`), so every
//! case starts a [`Project`]: a cluster of its own with both environments provisioned. The
//! state under test is built the way it is built in production: with the real `migrate`
//! ([`Tool::Migrate`]) against a temporary migrations directory, and, for states `migrate`
//! cannot produce (a two-column tracking table, a decoy schema, an invalid index), with
//! superuser SQL over the cluster's socket.
//!
//! Every run goes through [`Run`], so every case also checks that no password is printed.

use std::io::ErrorKind;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::cluster::{describe_error, SUPERUSER};
use crate::support::secrets;
use crate::support::{Outcome, Project, Run, Tool};

/// The migration lock's key (SPEC.md, `migrate` step 3; `common::lock::KEY`). Spelled out
/// here rather than imported: it is an interface between runs of different releases, and a
/// change to it must fail a test.
const LOCK_KEY: i64 = 8_575_455_468_313_837_003;

const FILE_A: &str = "-- the first table\nCREATE TABLE public.a (id integer PRIMARY KEY);\nINSERT INTO public.a VALUES (1);\n";
const FILE_B: &str = "CREATE TABLE public.b (id integer PRIMARY KEY);\n";
const FILE_C: &str = "ALTER TABLE public.b ADD COLUMN note text;\n";
const FILE_D: &str = "CREATE INDEX b_note ON public.b (note);\n";

/// The runs and reads the cases below make on a [`Project`].
trait GateCases {
    /// `migrate --env dev --dir DIR`, which must succeed.
    fn migrate(&self) -> Outcome;
    /// `schema-check --format json EXTRA... --env dev --dir DIR` as `dreichor_dev`.
    fn check(&self, extra: &[&str]) -> Outcome;
    /// The same, with another `DATABASE_URL`.
    fn check_as(&self, url: &str, extra: &[&str]) -> Outcome;
    /// `schema-check` with text output.
    fn check_text(&self, extra: &[&str]) -> Outcome;
    /// Everything the tracking table holds, as text.
    fn tracking_rows(&self) -> Vec<Vec<Option<String>>>;
    /// `pg_dump --schema-only` of `dreichor_dev`.
    fn schema_dump(&self) -> String;
    /// `migrate manifest --dir DIR` written to `path`.
    fn write_manifest(&self, path: &Path);
}

impl GateCases for Project {
    fn migrate(&self) -> Outcome {
        let out = self.tool(Tool::Migrate, &[]).run();
        out.assert_code(0);
        out
    }

    fn check(&self, extra: &[&str]) -> Outcome {
        self.check_as(&self.envs.dev_url, extra)
    }

    fn check_as(&self, url: &str, extra: &[&str]) -> Outcome {
        self.tool(Tool::SchemaCheck, &["--format", "json"])
            .env("DATABASE_URL", url)
            .args(extra)
            .run()
    }

    fn check_text(&self, extra: &[&str]) -> Outcome {
        self.tool(Tool::SchemaCheck, &[]).args(extra).run()
    }

    fn tracking_rows(&self) -> Vec<Vec<Option<String>>> {
        self.query("SELECT t::text FROM public.dreichor_schema_migrations t ORDER BY version")
    }

    fn schema_dump(&self) -> String {
        dump_of(self, "dreichor_dev")
    }

    fn write_manifest(&self, path: &Path) {
        let out = Tool::Migrate
            .cmd()
            .args(["manifest", "--dir"])
            .arg(self.dir())
            .run();
        out.assert_code(0);
        out.json();
        std::fs::write(path, &out.stdout).expect("writing the manifest");
    }
}

/// The versions in the JSON array `key`; panics when `key` is not an array of strings.
#[track_caller]
fn versions(doc: &Value, key: &str) -> Vec<String> {
    doc[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key:?} is not an array in {doc}"))
        .iter()
        .map(|v| {
            v.as_str()
                .unwrap_or_else(|| panic!("{key:?} holds a non-string in {doc}"))
                .to_owned()
        })
        .collect()
}

/// The JSON array `key` as lines of text, for "some entry mentions X" assertions.
#[track_caller]
fn texts(doc: &Value, key: &str) -> String {
    versions(doc, key).join("\n")
}

#[track_caller]
fn assert_contains(haystack: &str, needle: &str) {
    assert!(
        haystack.contains(needle),
        "expected {needle:?} in:\n{haystack}"
    );
}

fn none() -> Vec<String> {
    Vec::new()
}

/// A JSON verdict with `compatible: true` and nothing to report.
#[track_caller]
fn assert_clean_compatible(out: &Outcome) -> Value {
    out.assert_code(0);
    let doc = out.json();
    assert_eq!(doc["compatible"], true, "{doc}");
    for key in ["pending", "modified", "unknown_applied"] {
        assert_eq!(versions(&doc, key), none(), "{key} in {doc}");
    }
    doc
}

#[test]
fn a_database_migrated_with_this_directory_is_compatible() {
    let db = Project::start();
    db.write("001_a.sql", FILE_A);
    db.write("002_b.sql", FILE_B);
    db.write("003_c.sql", FILE_C);
    db.migrate();

    let doc = assert_clean_compatible(&db.check(&[]));
    assert_eq!(doc["table_missing"], false, "{doc}");
    assert_eq!(doc["migration_in_progress"], Value::Null, "{doc}");
    assert_eq!(doc["expected"], 3, "{doc}");
    assert_eq!(doc["database"], "dreichor_dev", "{doc}");
    assert_eq!(versions(&doc, "reasons"), none(), "{doc}");
    assert_eq!(versions(&doc, "warnings"), none(), "{doc}");
    for key in ["out_of_order", "unverified", "invalid_indexes"] {
        assert_eq!(versions(&doc, key), none(), "{key} in {doc}");
    }

    let text = db.check_text(&[]);
    text.assert_code(0);
    let first = text.stdout.lines().next().unwrap_or_default();
    assert!(first.starts_with("compatible"), "{}", text.stdout);
    assert_contains(first, "dreichor_dev");

    // DREICHOR_ENV instead of --env works the same.
    let out = Tool::SchemaCheck
        .cmd()
        .env("DATABASE_URL", &db.envs.dev_url)
        .env("DREICHOR_ENV", "dev")
        .arg("--dir")
        .arg(db.dir())
        .run();
    out.assert_code(0);

    // And so does prod, with its own role, once migrated.
    db.tool_in("prod", Tool::Migrate, &[]).run().assert_code(0);
    let out = db
        .tool_in("prod", Tool::SchemaCheck, &["--format", "json"])
        .run();
    assert_clean_compatible(&out);
}

#[test]
fn a_fresh_database_is_incompatible_and_the_tracking_table_is_not_created() {
    let db = Project::start();
    db.write("001_a.sql", FILE_A);
    db.write("002_b.sql", FILE_B);
    let before = db.schema_dump();

    let out = db.check(&[]);
    out.assert_code(1);
    let doc = out.json();
    assert_eq!(doc["compatible"], false, "{doc}");
    assert_eq!(doc["table_missing"], true, "{doc}");
    assert_eq!(versions(&doc, "pending"), ["001_a", "002_b"], "{doc}");
    assert_contains(&texts(&doc, "reasons"), "does not exist");

    let text = db.check_text(&[]);
    text.assert_code(1);
    assert!(text.stdout.starts_with("INCOMPATIBLE"), "{}", text.stdout);
    assert_contains(&text.stdout, "public.dreichor_schema_migrations");

    assert!(
        !db.table_exists("dreichor_schema_migrations"),
        "schema-check created the tracking table"
    );
    assert_eq!(db.schema_dump(), before, "schema-check changed the schema");
}

#[test]
fn a_file_added_after_the_last_migrate_is_pending_and_one_sorting_before_it_is_out_of_order() {
    let db = Project::start();
    db.write("001_a.sql", FILE_A);
    db.write("003_c.sql", "CREATE TABLE public.c (id integer);\n");
    db.migrate();

    db.write("004_d.sql", "CREATE TABLE public.d (id integer);\n");
    let out = db.check(&[]);
    out.assert_code(1);
    let doc = out.json();
    assert_eq!(doc["compatible"], false, "{doc}");
    assert_eq!(versions(&doc, "pending"), ["004_d"], "{doc}");
    assert_eq!(versions(&doc, "out_of_order"), none(), "{doc}");
    assert_eq!(versions(&doc, "modified"), none(), "{doc}");
    assert_eq!(doc["table_missing"], false, "{doc}");
    assert_contains(&texts(&doc, "reasons"), "004_d");

    // 002 was added after 003 had already run: pending, and out of order.
    db.write("002_b.sql", FILE_B);
    let out = db.check(&[]);
    out.assert_code(1);
    let doc = out.json();
    assert_eq!(versions(&doc, "pending"), ["002_b", "004_d"], "{doc}");
    assert_eq!(versions(&doc, "out_of_order"), ["002_b"], "{doc}");
    assert_eq!(
        versions(&doc, "reasons").len(),
        2,
        "one reason per version: {doc}"
    );

    let text = db.check_text(&[]);
    text.assert_code(1);
    assert_contains(&text.stdout, "002_b");
    assert_contains(&text.stdout, "004_d");
}

#[test]
fn an_edited_applied_file_is_modified_but_line_endings_and_a_bom_are_not_an_edit() {
    let db = Project::start();
    db.write("001_a.sql", FILE_A);
    db.write("002_b.sql", FILE_B);
    db.migrate();

    db.write(
        "002_b.sql",
        "CREATE TABLE public.b (id bigint PRIMARY KEY);\n",
    );
    let out = db.check(&[]);
    out.assert_code(1);
    let doc = out.json();
    assert_eq!(doc["compatible"], false, "{doc}");
    assert_eq!(versions(&doc, "modified"), ["002_b"], "{doc}");
    assert_eq!(versions(&doc, "pending"), none(), "{doc}");
    assert_contains(&texts(&doc, "reasons"), "002_b");

    // The same content checked out with CRLF line endings and a UTF-8 BOM.
    db.write("002_b.sql", FILE_B);
    let crlf = format!("\u{feff}{}", FILE_A.replace('\n', "\r\n"));
    db.write("001_a.sql", crlf.as_bytes());
    assert_clean_compatible(&db.check(&[]));
}

#[test]
fn a_database_ahead_of_the_release_is_compatible_with_a_warning_unless_strict() {
    let db = Project::start();
    db.write("001_a.sql", FILE_A);
    db.write("002_b.sql", FILE_B);
    db.write("003_c.sql", FILE_C);
    db.migrate();
    // The release being deployed is older: it does not have 003 yet.
    db.remove("003_c.sql");

    let out = db.check(&[]);
    out.assert_code(0);
    let doc = out.json();
    assert_eq!(doc["compatible"], true, "{doc}");
    assert_eq!(versions(&doc, "unknown_applied"), ["003_c"], "{doc}");
    assert_eq!(versions(&doc, "pending"), none(), "{doc}");
    let warnings = texts(&doc, "warnings");
    assert_contains(&warnings, "ahead");
    assert_contains(&warnings, "003_c");

    let text = db.check_text(&[]);
    text.assert_code(0);
    assert!(text.stdout.starts_with("compatible"), "{}", text.stdout);
    assert_contains(&text.stdout, "warning");

    let out = db.check(&["--strict"]);
    out.assert_code(1);
    let doc = out.json();
    assert_eq!(doc["compatible"], false, "{doc}");
    assert_eq!(doc["strict"], true, "{doc}");
    assert_eq!(versions(&doc, "unknown_applied"), ["003_c"], "{doc}");
    assert_contains(&texts(&doc, "reasons"), "003_c");
}

#[test]
fn a_held_migration_lock_makes_it_incompatible_and_names_the_holder() {
    let db = Project::start();
    db.write("001_a.sql", FILE_A);
    db.migrate();

    let mut holder = db.connect_as_dev("dreichor-test-lock-holder");
    let pid: i32 = holder
        .query_one("SELECT pg_backend_pid()", &[])
        .expect("pg_backend_pid")
        .get(0);
    holder
        .batch_execute(&format!("SELECT pg_advisory_lock({LOCK_KEY})"))
        .expect("taking the migration lock");

    let out = db.check(&[]);
    out.assert_code(1);
    let doc = out.json();
    assert_eq!(doc["compatible"], false, "{doc}");
    let found = &doc["migration_in_progress"];
    assert_eq!(found["pid"], pid.to_string(), "{doc}");
    assert_eq!(found["application"], "dreichor-test-lock-holder", "{doc}");
    assert_eq!(found["user"], "dreichor_dev", "{doc}");
    assert!(
        found["client"] == "127.0.0.1" || found["client"] == "::1",
        "the holder connected over TCP: {doc}"
    );
    assert_contains(&texts(&doc, "reasons"), &format!("pid {pid}"));
    // Nothing else is wrong.
    assert_eq!(versions(&doc, "pending"), none(), "{doc}");

    let text = db.check_text(&[]);
    text.assert_code(1);
    assert_contains(&text.stdout, &format!("pid {pid}"));

    drop(holder);
    // The server releases a session lock when the session ends, shortly after the client
    // closes the socket.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = db.check(&[]);
        if out.code == 0 || Instant::now() > deadline {
            assert_clean_compatible(&out);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_migrate_run_in_progress_makes_it_incompatible_until_it_finishes() {
    let db = Project::start();
    db.write("001_a.sql", FILE_A);
    db.write("002_b.sql", FILE_B);
    db.migrate();

    db.write("003_slow.sql", "SELECT pg_sleep(3);\n");
    let mut running = db.tool(Tool::Migrate, &[]).spawn();
    running.wait_for_stderr("applying 003_slow", Duration::from_secs(30));

    let started = Instant::now();
    let out = db.check(&[]);
    let took = started.elapsed();
    out.assert_code(1);
    let doc = out.json();
    assert_eq!(doc["compatible"], false, "{doc}");
    assert!(
        doc["migration_in_progress"].is_object(),
        "the lock holder must be reported: {doc}"
    );
    assert_contains(&texts(&doc, "reasons"), "in progress");
    assert_eq!(versions(&doc, "pending"), ["003_slow"], "{doc}");
    assert!(
        took < Duration::from_secs(2),
        "the check must not wait for the migration ({took:?})"
    );

    running.wait().assert_code(0);
    assert_clean_compatible(&db.check(&[]));
}

#[test]
fn a_decoy_tracking_table_on_the_roles_search_path_is_never_read() {
    let db = Project::start();
    db.write("001_a.sql", FILE_A);
    db.write("002_b.sql", FILE_B);
    let manifest_path = db.dir().join(".manifest.json");
    db.write_manifest(&manifest_path);
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(&manifest_path).expect("reading the manifest"),
    )
    .expect("a JSON manifest");
    std::fs::remove_file(&manifest_path).expect("removing the manifest");

    // A decoy that is "complete": every version with the right checksum.
    let rows: Vec<String> = manifest["migrations"]
        .as_array()
        .expect("migrations")
        .iter()
        .map(|m| format!("({}, {})", m["version"], m["checksum"]).replace('"', "'"))
        .collect();
    db.sql(&format!(
        "CREATE SCHEMA decoy AUTHORIZATION dreichor_dev;\
         CREATE TABLE decoy.dreichor_schema_migrations (\
             version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now(), checksum text);\
         ALTER TABLE decoy.dreichor_schema_migrations OWNER TO dreichor_dev;\
         INSERT INTO decoy.dreichor_schema_migrations (version, checksum) VALUES {};\
         ALTER ROLE dreichor_dev SET search_path = decoy, public;",
        rows.join(", ")
    ));
    // The decoy really is what an unqualified name finds for this role.
    let mut client = db.connect_as_dev("dreichor-test-decoy");
    let seen: i64 = client
        .query_one("SELECT count(*) FROM dreichor_schema_migrations", &[])
        .expect("the decoy is visible")
        .get(0);
    assert_eq!(seen, 2);
    drop(client);

    // public's table is missing: incompatible, whatever the decoy says.
    let out = db.check(&[]);
    out.assert_code(1);
    let doc = out.json();
    assert_eq!(doc["table_missing"], true, "{doc}");
    assert_eq!(versions(&doc, "pending"), ["001_a", "002_b"], "{doc}");

    // migrate writes public's table, not the decoy.
    db.migrate();
    assert!(db.table_exists("dreichor_schema_migrations"));
    assert_clean_compatible(&db.check(&[]));

    // A decoy full of nonsense does not change a compatible verdict.
    db.sql(
        "UPDATE decoy.dreichor_schema_migrations SET checksum = 'bogus';\
         INSERT INTO decoy.dreichor_schema_migrations (version, checksum) VALUES ('999_zzz', 'x');",
    );
    let doc = assert_clean_compatible(&db.check(&[]));
    assert_eq!(versions(&doc, "warnings"), none(), "{doc}");

    // And public's rows, not the decoy's, decide an incompatible one.
    db.sql("DELETE FROM public.dreichor_schema_migrations WHERE version = '002_b'");
    db.sql("INSERT INTO decoy.dreichor_schema_migrations (version, checksum) SELECT '003_c', 'x'");
    db.write("003_c.sql", FILE_C);
    let out = db.check(&[]);
    out.assert_code(1);
    let doc = out.json();
    assert_eq!(versions(&doc, "pending"), ["002_b", "003_c"], "{doc}");
    assert_eq!(versions(&doc, "modified"), none(), "{doc}");
    assert_eq!(versions(&doc, "unknown_applied"), none(), "{doc}");
}

#[test]
fn a_role_with_select_on_the_tracking_table_only_is_enough() {
    let db = Project::start();
    db.write("001_a.sql", FILE_A);
    db.write("002_b.sql", FILE_B);

    let password = db.cluster.create_role(
        "deploy_gate",
        "NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION",
    );
    db.cluster.sql(
        "postgres",
        "GRANT CONNECT ON DATABASE dreichor_dev TO deploy_gate",
    );
    // Before migrate: a privilege granted after the snapshot would be drift.
    db.sql("GRANT USAGE ON SCHEMA public TO deploy_gate");
    db.migrate();
    let url = db
        .cluster
        .url_for("deploy_gate", &password, "localhost", "dreichor_dev");

    // Without SELECT the check cannot read the state: a failure, never "compatible".
    let out = db.check_as(&url, &[]);
    out.assert_code(1);
    assert_contains(&out.stderr, "permission denied");

    // The tools' own tables, tracking and snapshot: all it needs.
    db.sql("GRANT SELECT ON public.dreichor_schema_migrations TO deploy_gate");
    let out = db.check_as(&url, &[]);
    out.assert_code(1);
    assert_contains(&out.stderr, "permission denied");
    db.sql("GRANT SELECT ON public.dreichor_schema_snapshot TO deploy_gate");
    assert_clean_compatible(&db.check_as(&url, &[]));

    db.write("003_c.sql", FILE_C);
    let out = db.check_as(&url, &[]);
    out.assert_code(1);
    assert_eq!(versions(&out.json(), "pending"), ["003_c"]);
    db.remove("003_c.sql");

    // The role cannot see much of other roles' sessions in pg_stat_activity; a held lock is
    // still found, and what it reports about the holder must not be made up: the holder
    // connected over TCP, so it is not "local socket".
    let mut holder = db.connect_as_dev("dreichor-test-lock-holder");
    let pid: i32 = holder
        .query_one("SELECT pg_backend_pid()", &[])
        .expect("pg_backend_pid")
        .get(0);
    holder
        .batch_execute(&format!("SELECT pg_advisory_lock({LOCK_KEY})"))
        .expect("taking the migration lock");
    let out = db.check_as(&url, &[]);
    out.assert_code(1);
    let doc = out.json();
    assert_eq!(
        doc["migration_in_progress"]["pid"],
        pid.to_string(),
        "{doc}"
    );
    assert_ne!(
        doc["migration_in_progress"]["client"], "local socket",
        "the holder is connected over TCP; a role that cannot see its address must not be told it is local: {doc}"
    );
    drop(holder);
}

#[test]
fn nothing_in_the_database_changes_whatever_the_verdict() {
    let db = Project::start();
    db.write("001_a.sql", FILE_A);
    db.write("002_b.sql", FILE_B);

    // Every flavour of the check, on the state as it is.
    let round = |expected_code: i32| {
        for extra in [&[][..], &["--strict"][..]] {
            db.check(extra).assert_code(expected_code);
            db.check_text(extra).assert_code(expected_code);
        }
    };

    // Fresh: no tracking table, and none afterwards.
    let before = db.schema_dump();
    round(1);
    assert_eq!(
        db.schema_dump(),
        before,
        "the schema of a fresh database changed"
    );
    assert!(!db.table_exists("dreichor_schema_migrations"));

    // Compatible; then pending and modified at once.
    db.migrate();
    for (label, expected_code) in [("compatible", 0), ("pending and modified", 1)] {
        if expected_code == 1 {
            db.write("003_c.sql", FILE_C);
            db.write("001_a.sql", FILE_A.replace("VALUES (1)", "VALUES (2)"));
        }
        let before = (db.schema_dump(), db.tracking_rows());
        round(expected_code);
        let after = (db.schema_dump(), db.tracking_rows());
        assert_eq!(before.0, after.0, "{label}: the schema changed");
        assert_eq!(before.1, after.1, "{label}: the tracking rows changed");
    }

    // The other environment's fresh database, checked with its own role.
    let prod_before = dump_of(&db, "dreichor_prod");
    db.tool_in("prod", Tool::SchemaCheck, &[])
        .run()
        .assert_code(1);
    assert_eq!(dump_of(&db, "dreichor_prod"), prod_before);
}

/// `pg_dump --schema-only` of any database of the cluster, as the superuser over the socket.
fn dump_of(db: &Project, database: &str) -> String {
    let out = Run::new(db.cluster.bin("pg_dump"))
        .arg("--host")
        .arg(db.cluster.socket_dir())
        .args([
            "--port",
            &db.cluster.port().to_string(),
            "--username",
            SUPERUSER,
            "--schema-only",
            "--no-password",
            database,
        ])
        .run();
    out.assert_code(0);
    // Since 15.14 pg_dump brackets its output with `\restrict KEY` / `\unrestrict KEY`, with a
    // random KEY per run.
    out.stdout
        .lines()
        .filter(|l| !l.starts_with("\\restrict ") && !l.starts_with("\\unrestrict "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A tracking "table" that is a view whose every read calls a function that writes. The
/// function is `SECURITY DEFINER` (owned by the superuser), so privileges cannot be what stops
/// the write: only a read-only transaction does. `two_column` leaves out `checksum`, which
/// sends the check down its fallback path, whose read runs outside `BEGIN READ ONLY` and is
/// protected only by the session's `default_transaction_read_only` startup option.
fn install_writing_view(db: &Project, two_column: bool, versions: &[&str]) {
    let values: Vec<String> = versions.iter().map(|v| format!("('{v}')")).collect();
    let checksum = if two_column { "" } else { ", checksum" };
    db.sql(&format!(
        "CREATE TABLE public.audit (at timestamptz NOT NULL DEFAULT clock_timestamp());\
         CREATE FUNCTION public.touch() RETURNS boolean LANGUAGE plpgsql VOLATILE SECURITY DEFINER \
             AS $$ BEGIN INSERT INTO public.audit DEFAULT VALUES; RETURN true; END $$;\
         CREATE TABLE public.real_rows (version text PRIMARY KEY, \
             applied_at timestamptz NOT NULL DEFAULT now(), checksum text NOT NULL DEFAULT 'x');\
         INSERT INTO public.real_rows (version) VALUES {};\
         CREATE VIEW public.dreichor_schema_migrations AS \
             SELECT version, applied_at{checksum} FROM public.real_rows WHERE public.touch();\
         GRANT SELECT ON public.dreichor_schema_migrations TO dreichor_dev;",
        values.join(", ")
    ));
}

#[test]
fn the_checks_session_is_read_only_even_when_the_role_defaults_say_otherwise() {
    for two_column in [false, true] {
        let db = Project::start();
        db.write("001_a.sql", FILE_A);
        install_writing_view(&db, two_column, &["001_a"]);
        db.cluster.sql(
            "postgres",
            "ALTER ROLE dreichor_dev SET default_transaction_read_only = off;\
             ALTER DATABASE dreichor_dev SET default_transaction_read_only = off;",
        );
        // The trap works: a plain read by the role, in its default transaction mode, writes.
        let mut client = db.connect_as_dev("dreichor-test-trap");
        client
            .batch_execute("SELECT count(*) FROM public.dreichor_schema_migrations")
            .expect("reading the view");
        drop(client);
        assert_eq!(
            db.scalar("SELECT count(*) FROM public.audit").as_deref(),
            Some("1")
        );
        db.sql("DELETE FROM public.audit");

        let out = db.check(&[]);
        let audit = db.scalar("SELECT count(*) FROM public.audit");
        assert_eq!(
            audit.as_deref(),
            Some("0"),
            "schema-check wrote to the database (two-column path: {two_column})\n{out:?}"
        );
        assert_ne!(out.code, 0, "{out:?}");
        // On the two-column path the refusal came from the fallback's read: the session's
        // read-only default held there too.
        assert_contains(&out.stderr, "read-only transaction");
    }
}

/// Accepts TCP connections and never answers: a hung server, or something else on the port.
struct BlackHole {
    port: u16,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl BlackHole {
    fn start() -> BlackHole {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let port = listener.local_addr().expect("local address").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (accepted, stop) = (Arc::clone(&accepted), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut held: Vec<TcpStream> = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            held.push(stream);
                            accepted.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(5))
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        BlackHole {
            port,
            accepted,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `schema-check --env dev` with `url`, a directory with one file, and `extra` flags.
fn check_url(url: &str, extra: &[&str]) -> (Outcome, Duration) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join("001_a.sql"), FILE_A).expect("writing a migration");
    let started = Instant::now();
    let out = Tool::SchemaCheck
        .cmd()
        .env("DATABASE_URL", url)
        .args(["--env", "dev", "--dir"])
        .arg(dir.path())
        .args(extra)
        .run();
    (out, started.elapsed())
}

#[test]
fn a_server_that_accepts_but_never_answers_exits_3_within_the_timeout() {
    let hole = BlackHole::start();
    let password = secrets::sentinel_password();
    let url = format!(
        "postgres://dreichor_dev:{}@127.0.0.1:{}/dreichor_dev",
        secrets::percent_encode(&password),
        hole.port
    );
    let (out, took) = check_url(&url, &["--timeout", "1"]);
    out.assert_code(3);
    assert!(
        hole.accepted.load(Ordering::SeqCst) >= 1,
        "the tool never reached the listener"
    );
    assert!(
        took < Duration::from_secs(4),
        "--timeout 1 took {took:?}\n{out:?}"
    );
    assert!(
        took >= Duration::from_millis(900),
        "gave up early: {took:?}"
    );
    assert_contains(&out.stderr, "***");

    // The same with JSON: one document on stdout.
    let (out, _) = check_url(&url, &["--timeout", "1", "--format", "json"]);
    out.assert_code(3);
    assert_eq!(out.json()["exit_code"], 3);
}

#[test]
fn an_unreachable_database_exits_3_quickly() {
    // A port with nothing listening.
    let port = {
        let probe = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding 127.0.0.1:0");
        probe.local_addr().expect("local address").port()
    };
    let password = secrets::sentinel_password();
    let url = format!(
        "postgres://dreichor_dev:{}@127.0.0.1:{port}/dreichor_dev",
        secrets::percent_encode(&password)
    );
    let (out, took) = check_url(&url, &[]);
    out.assert_code(3);
    assert!(took < Duration::from_secs(4), "refused took {took:?}");

    // A cluster that went away.
    let db = Project::start();
    db.write("001_a.sql", FILE_A);
    db.migrate();
    db.check(&[]).assert_code(0);
    db.cluster.stop();
    let started = Instant::now();
    let out = db.check(&[]);
    let took = started.elapsed();
    out.assert_code(3);
    assert_eq!(out.json()["exit_code"], 3);
    assert!(took < Duration::from_secs(4), "refused took {took:?}");
}

#[test]
fn a_wrong_password_exits_3() {
    let db = Project::start();
    db.write("001_a.sql", FILE_A);
    db.migrate();
    let wrong = secrets::sentinel_password();
    let url = db
        .cluster
        .url_for("dreichor_dev", &wrong, "localhost", "dreichor_dev");
    let out = db.check_as(&url, &[]);
    out.assert_code(3);
    assert_contains(&out.stderr, "password authentication failed");
}

#[test]
fn invalid_configuration_exits_2() {
    let db = Project::start();
    db.write("001_a.sql", FILE_A);
    db.migrate();
    let dev = db.envs.dev_url.clone();

    let run = |vars: &[(&str, &str)], args: &[&str]| -> Outcome {
        let mut run = Tool::SchemaCheck
            .cmd()
            .arg("--dir")
            .arg(db.dir())
            .args(args);
        for (k, v) in vars {
            run = run.env(k, v);
        }
        run.run()
    };

    // postgresql:// is refused by policy.
    let out = run(
        &[(
            "DATABASE_URL",
            &dev.replacen("postgres://", "postgresql://", 1),
        )],
        &["--env", "dev"],
    );
    out.assert_code(2);
    assert_contains(&out.stderr, "postgres://");

    // A dev URL for prod.
    run(&[("DATABASE_URL", &dev)], &["--env", "prod"]).assert_code(2);
    // No environment at all; and --env and DREICHOR_ENV disagreeing.
    let out = run(&[("DATABASE_URL", &dev)], &[]);
    out.assert_code(2);
    assert_contains(&out.stderr, "--env");
    run(
        &[("DATABASE_URL", &dev), ("DREICHOR_ENV", "prod")],
        &["--env", "dev"],
    )
    .assert_code(2);
    // No DATABASE_URL.
    run(&[], &["--env", "dev"]).assert_code(2);
    // A --timeout out of range.
    for timeout in ["0", "-1", "nan"] {
        run(
            &[("DATABASE_URL", &dev)],
            &["--env", "dev", "--timeout", timeout],
        )
        .assert_code(2);
    }
    // A directory that breaks the rules.
    let bad = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(bad.path().join("1_Bad.sql"), "SELECT 1;").expect("writing");
    Tool::SchemaCheck
        .cmd()
        .env("DATABASE_URL", &dev)
        .args(["--env", "dev", "--dir"])
        .arg(bad.path())
        .run()
        .assert_code(2);

    // The superuser reaches every database: not environment-specific.
    let superuser = db.cluster.url_for(
        SUPERUSER,
        db.cluster.superuser_password(),
        "localhost",
        "dreichor_dev",
    );
    let out = run(&[("DATABASE_URL", &superuser)], &["--env", "dev"]);
    out.assert_code(2);
    assert_contains(&out.stderr, "superuser");

    // A role that can also connect to the other environment's database.
    db.cluster.sql(
        "postgres",
        "GRANT CONNECT ON DATABASE dreichor_prod TO dreichor_dev",
    );
    let out = run(&[("DATABASE_URL", &dev)], &["--env", "dev"]);
    out.assert_code(2);
    assert_contains(&out.stderr, "dreichor_prod");
    db.cluster.sql(
        "postgres",
        "REVOKE CONNECT ON DATABASE dreichor_prod FROM dreichor_dev",
    );
    // That grant was the only problem.
    run(&[("DATABASE_URL", &dev)], &["--env", "dev"]).assert_code(0);
}

#[test]
fn a_manifest_gives_the_same_verdict_as_the_directory() {
    let db = Project::start();
    let elsewhere = tempfile::tempdir().expect("a temporary directory");
    let manifest = elsewhere.path().join("migrations.json");
    db.write("001_a.sql", FILE_A);
    db.write("002_b.sql", FILE_B);
    db.write("003_c.sql", FILE_C);
    db.migrate();

    let by_manifest = |manifest: &Path, extra: &[&str]| -> Outcome {
        // Run where the default infra/db/migrations does not exist: the files are not needed.
        Tool::SchemaCheck
            .cmd()
            .env("DATABASE_URL", &db.envs.dev_url)
            .args(["--env", "dev", "--format", "json", "--manifest"])
            .arg(manifest)
            .args(extra)
            .current_dir(elsewhere.path())
            .run()
    };
    let same = |label: &str, expected_code: i32, extra: &[&str]| {
        db.write_manifest(&manifest);
        let from_dir = db.check(extra);
        let from_manifest = by_manifest(&manifest, extra);
        from_dir.assert_code(expected_code);
        from_manifest.assert_code(expected_code);
        assert_eq!(from_dir.json(), from_manifest.json(), "{label}");
    };

    same("compatible", 0, &[]);
    db.write("004_d.sql", FILE_D);
    same("pending", 1, &[]);
    db.remove("004_d.sql");
    db.write(
        "002_b.sql",
        "CREATE TABLE public.b (id bigint PRIMARY KEY);\n",
    );
    same("modified", 1, &[]);
    db.write("002_b.sql", FILE_B);
    db.remove("003_c.sql");
    same("ahead", 0, &[]);
    same("ahead, strict", 1, &["--strict"]);

    // --manifest and --dir together are a usage error; so is a manifest that is not one.
    let manifest_arg = manifest.to_str().expect("a UTF-8 path");
    let out = db
        .tool(Tool::SchemaCheck, &["--manifest", manifest_arg])
        .run();
    out.assert_code(2);
    for bad in [
        "",
        "{}",
        "not json",
        r#"{"format":"other/1","migrations":[]}"#,
    ] {
        std::fs::write(&manifest, bad).expect("writing");
        by_manifest(&manifest, &[]).assert_code(2);
    }
    by_manifest(&elsewhere.path().join("missing.json"), &[]).assert_code(2);
}

#[test]
fn a_two_column_tracking_table_is_unverified_until_migrate_upgrades_it() {
    let db = Project::start();
    db.write("001_a.sql", FILE_A);
    db.write("002_b.sql", FILE_B);
    // The state the design document's runner left: both files ran, recorded without checksums.
    db.sql(FILE_A);
    db.sql(FILE_B);
    db.sql(
        "CREATE TABLE public.dreichor_schema_migrations (\
             version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());\
         INSERT INTO public.dreichor_schema_migrations (version) VALUES ('001_a'), ('002_b');\
         ALTER TABLE public.dreichor_schema_migrations OWNER TO dreichor_dev;\
         ALTER TABLE public.a OWNER TO dreichor_dev;\
         ALTER TABLE public.b OWNER TO dreichor_dev;",
    );
    let before = db.schema_dump();

    let out = db.check(&[]);
    out.assert_code(1);
    let doc = out.json();
    assert_eq!(doc["compatible"], false, "{doc}");
    assert_eq!(doc["table_missing"], false, "{doc}");
    assert_eq!(versions(&doc, "unverified"), ["001_a", "002_b"], "{doc}");
    assert_eq!(versions(&doc, "pending"), none(), "{doc}");
    assert_eq!(versions(&doc, "modified"), none(), "{doc}");
    assert_contains(&texts(&doc, "warnings"), "two-column");
    // Read-only there too: the table was not upgraded by the check.
    assert_eq!(db.schema_dump(), before);

    // A pending file is still reported next to them.
    db.write("003_c.sql", FILE_C);
    let doc = db.check(&[]).json();
    assert_eq!(versions(&doc, "pending"), ["003_c"], "{doc}");
    assert_eq!(versions(&doc, "unverified"), ["001_a", "002_b"], "{doc}");

    db.migrate();
    let checksums = db
        .query("SELECT count(*) FROM public.dreichor_schema_migrations WHERE checksum IS NOT NULL");
    assert_eq!(checksums[0][0].as_deref(), Some("3"));
    let doc = assert_clean_compatible(&db.check(&[]));
    assert_eq!(versions(&doc, "unverified"), none(), "{doc}");
    assert_eq!(versions(&doc, "warnings"), none(), "{doc}");
}

#[test]
fn an_invalid_index_is_a_warning_not_an_incompatibility() {
    let db = Project::start();
    db.write("001_a.sql", FILE_A);
    db.migrate();

    db.sql(
        "CREATE TABLE public.accounts (email text);\
         INSERT INTO public.accounts VALUES ('a@example.org'), ('a@example.org');",
    );
    // CONCURRENTLY cannot run in a transaction block: one statement, on its own.
    let mut admin = db.cluster.admin_db("dreichor_dev");
    let failed = admin
        .batch_execute(
            "CREATE UNIQUE INDEX CONCURRENTLY accounts_email_key ON public.accounts (email)",
        )
        .expect_err("duplicates make the unique index fail");
    assert_eq!(
        failed.code(),
        Some(&postgres::error::SqlState::UNIQUE_VIOLATION),
        "{}",
        describe_error(&failed)
    );
    let valid = db.scalar(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = 'public.accounts_email_key'::regclass",
    );
    assert_eq!(valid.as_deref(), Some("f"), "the index is left INVALID");
    // Made by hand, the table and the index are drift; what this case is about is the
    // warning, so they become part of the (first) snapshot.
    db.sql("DELETE FROM public.dreichor_schema_snapshot");
    db.migrate();

    let out = db.check(&[]);
    let doc = assert_clean_compatible(&out);
    assert_contains(&texts(&doc, "invalid_indexes"), "accounts_email_key");
    let warnings = texts(&doc, "warnings");
    assert_contains(&warnings, "accounts_email_key");
    assert_contains(&warnings, "INVALID");

    let text = db.check_text(&[]);
    text.assert_code(0);
    assert_contains(&text.stdout, "accounts_email_key");
}

#[test]
fn a_check_blocked_behind_a_lock_on_the_tracking_table_gives_up_within_its_timeout() {
    let db = Project::start();
    db.write("001_a.sql", FILE_A);
    db.migrate();

    // What migrate's upgrade of a two-column table (ALTER TABLE) holds while it runs.
    let mut admin = db.cluster.admin_db("dreichor_dev");
    admin
        .batch_execute(
            "BEGIN; LOCK TABLE public.dreichor_schema_migrations IN ACCESS EXCLUSIVE MODE",
        )
        .expect("locking the tracking table");

    let started = Instant::now();
    let out = db.check(&["--timeout", "1"]);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(4), "took {took:?}\n{out:?}");
    out.assert_code(3);

    admin.batch_execute("COMMIT").expect("unlocking");
    assert_clean_compatible(&db.check(&[]));
}

#[test]
fn a_decoy_function_ahead_of_pg_catalog_on_the_search_path_changes_nothing() {
    let db = Project::start();
    db.write("001_a.sql", FILE_A);
    // The role puts its own schema before pg_catalog and shadows a function the check calls
    // unqualified. search_path must not matter (SPEC.md, "Tracking table"). The schema comes
    // from a migration: made by hand, it would be drift.
    db.write(
        "002_decoy.sql",
        "CREATE SCHEMA decoy;\n\
         CREATE FUNCTION decoy.current_database() RETURNS name LANGUAGE sql AS $$ SELECT 'elsewhere'::name $$;\n",
    );
    db.migrate();
    db.sql("ALTER ROLE dreichor_dev SET search_path = decoy, pg_catalog, public;");
    let mut client = db.connect_as_dev("dreichor-test-decoy");
    let seen: String = client
        .query_one("SELECT current_database()::text", &[])
        .expect("the decoy function")
        .get(0);
    assert_eq!(
        seen, "elsewhere",
        "the decoy is what an unqualified call finds"
    );
    drop(client);

    assert_clean_compatible(&db.check(&[]));
}

#[test]
fn a_decoy_operator_ahead_of_pg_catalog_does_not_hide_connect_on_the_other_environment() {
    let db = Project::start();
    db.write("001_a.sql", FILE_A);
    db.migrate();
    db.cluster.sql(
        "postgres",
        "GRANT CONNECT ON DATABASE dreichor_prod TO dreichor_dev",
    );
    db.check(&[]).assert_code(2);
    // Everything below is within the role's own rights: a schema in its own database, an
    // operator in it, and its own role's search_path.
    db.plant_decoy_operator();

    db.check(&[]).assert_code(2);
}

#[test]
fn a_big_file_costs_the_gate_constant_memory_and_migrate_less_than_twice_its_size() {
    let f = Project::start();
    // 32 MiB of 1 KiB INSERTs, with a byte-order mark and CRLF line endings: the checksum
    // the gate streams must be the one migrate recorded from the normalised text.
    let line = format!(
        "-- a row\r\nINSERT INTO public.big VALUES ('{}');\r\n",
        "x".repeat(1000)
    );
    let mut big = String::with_capacity(33 << 20);
    big.push('\u{feff}');
    big.push_str("CREATE TABLE public.big (v text);\r\n");
    while big.len() < 32 << 20 {
        big.push_str(&line);
    }
    f.write("001_big.sql", &big);
    let size_kib = big.len() as u64 / 1024;
    drop(big);

    let migrated = f
        .tool(Tool::Migrate, &[])
        .measured()
        .timeout(Duration::from_secs(120))
        .run();
    migrated.assert_code(0);
    let migrate_kib = migrated.peak_rss_kib();
    assert!(
        migrate_kib < 2 * size_kib,
        "migrate peaked at {migrate_kib} KiB on a {size_kib} KiB file; it must stay under twice the largest file"
    );

    let checked = f
        .tool(Tool::SchemaCheck, &["--format", "json"])
        .measured()
        .run();
    checked.assert_code(0);
    assert_eq!(checked.json()["compatible"], true);
    let kib = checked.peak_rss_kib();
    assert!(
        kib < 16 * 1024,
        "schema-check peaked at {kib} KiB on a {size_kib} KiB file; the gate only hashes and must stay under 16 MiB\n{}",
        checked.stderr
    );
}

/// Serializable and deferrable by the role's defaults, a read-only transaction waits for a
/// safe snapshot: until every serializable writer running beside it ends (the runtime's work,
/// a migration's file). The gate's reads, on both its sessions, and migrate's own reads are
/// never deferrable: with such a writer open, the gate still answers within its timeout, on
/// the cheap path, and `migrate` with nothing to apply still runs.
#[test]
fn a_serializable_deferrable_default_never_makes_the_reads_wait_for_a_writer() {
    let db = Project::start();
    db.write("001_a.sql", FILE_A);
    db.tool(Tool::Migrate, &[]).run().assert_code(0);
    db.cluster.sql(
        "postgres",
        "ALTER ROLE dreichor_dev SET default_transaction_isolation = 'serializable';\
         ALTER ROLE dreichor_dev SET default_transaction_deferrable = on;",
    );
    let mut writer = db.connect_as_dev("dreichor-test-writer");
    writer
        .batch_execute("BEGIN ISOLATION LEVEL SERIALIZABLE; INSERT INTO public.a VALUES (2)")
        .expect("a serializable writer");
    // The trap works: a read in the role's defaults waits for the writer.
    let mut reader = db.connect_as_dev("dreichor-test-reader");
    let waited = reader
        .batch_execute("SET statement_timeout = '500ms'; BEGIN READ ONLY; SELECT 1")
        .expect_err("a deferrable read-only transaction waits for the writer");
    assert!(
        waited.to_string().contains("statement timeout")
            || format!("{waited:?}").contains("statement timeout"),
        "{waited:?}"
    );
    drop(reader);

    let out = db.check(&["--timeout", "5"]);
    let doc = assert_clean_compatible(&out);
    assert_eq!(doc["snapshot_proof"], "fingerprint", "{doc:#}");
    let run = db
        .tool(Tool::Migrate, &[])
        .timeout(Duration::from_secs(30))
        .run();
    run.assert_code(0);
    let status = db
        .tool(Tool::Migrate, &["status"])
        .timeout(Duration::from_secs(30))
        .run();
    status.assert_code(0);
    writer.batch_execute("ROLLBACK").expect("end the writer");
}
