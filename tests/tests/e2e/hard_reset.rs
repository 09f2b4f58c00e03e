//! `hard-reset` end to end, driven through a pseudo-terminal as an operator would drive it:
//! the tool refuses to run without one, and its prompts read keys from the terminal.
//!
//! Each case gets a cluster of its own (the databases must be named `dreichor_dev` and
//! `dreichor_prod`) with a sentinel row in each, so that every refusal and abort can prove
//! that nothing was dropped. Everything the tool writes to the terminal goes through the
//! harness's leak check, like every [`crate::support::Outcome`].

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rexpect::process::Signal;

use crate::support::cluster::Envs;
use crate::support::pty::assert_in_order;
use crate::support::{secrets, Project, Pty, Run, Tool};

/// The migrations every fixture starts from: a reset must bring back exactly these.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "001_init.sql",
        "CREATE TABLE public.ledger (id bigint PRIMARY KEY);\n",
    ),
    (
        "002_add_note.sql",
        "ALTER TABLE public.ledger ADD COLUMN note text;\n",
    ),
];

/// A [`Project`] with [`MIGRATIONS`] applied in both environments, and a sentinel row in each.
fn fixture() -> Project {
    let f = Project::start();
    for (name, sql) in MIGRATIONS {
        f.write(name, sql);
    }
    for env in ["dev", "prod"] {
        f.tool_in(env, Tool::Migrate, &[]).run().assert_code(0);
        let db = Envs::database(env);
        f.cluster.sql(
            db,
            &format!(
                "SET ROLE {db}; CREATE TABLE public.sentinel (id int); INSERT INTO public.sentinel VALUES (42);"
            ),
        );
        assert!(f.sentinel_present(env));
    }
    f
}

/// What the cases below look at and run, per environment (`"dev"` or `"prod"`).
trait ResetCases {
    /// Whether the sentinel row is still in the environment's database.
    fn sentinel_present(&self, env: &str) -> bool;
    /// The catalogue row of the database (without its oid): what a reset must keep.
    fn database_row(&self, env: &str) -> Vec<Option<String>>;
    /// The database's oid: a new one means it was dropped and created again.
    fn oid(&self, env: &str) -> String;
    /// The sessions of `application` connected to the environment's database.
    fn sessions_of(&self, env: &str, application: &str) -> usize;
    /// `hard-reset ARGS... --env ENV --dir DIR` in a pseudo-terminal, with the environment
    /// of [`Project::hard_reset`] plus `extra`.
    fn spawn(&self, env: &str, args: &[&str], extra: &[(&str, &str)]) -> Pty;
}

impl ResetCases for Project {
    fn sentinel_present(&self, env: &str) -> bool {
        let db = Envs::database(env);
        let exists = self
            .cluster
            .query_strings(db, "SELECT to_regclass('public.sentinel') IS NOT NULL");
        exists[0][0].as_deref() == Some("t")
            && self
                .cluster
                .query_strings(db, "SELECT count(*) FROM public.sentinel WHERE id = 42")[0][0]
                .as_deref()
                == Some("1")
    }

    fn database_row(&self, env: &str) -> Vec<Option<String>> {
        self.cluster
            .query_strings(
                "postgres",
                &format!(
                    "SELECT pg_get_userbyid(d.datdba), pg_encoding_to_char(d.encoding), d.datcollate, \
                            d.datctype, d.datlocprovider::text, d.datconnlimit::text, d.datacl::text, \
                            shobj_description(d.oid, 'pg_database'), \
                            (SELECT array_agg(coalesce(pg_get_userbyid(nullif(s.setrole, 0)), '*') || ':' || c \
                                              ORDER BY s.setrole, c) \
                               FROM pg_db_role_setting s, unnest(s.setconfig) c \
                              WHERE s.setdatabase = d.oid)::text \
                     FROM pg_database d WHERE d.datname = '{}'",
                    Envs::database(env)
                ),
            )
            .remove(0)
    }

    fn oid(&self, env: &str) -> String {
        self.cluster.query_strings(
            "postgres",
            &format!(
                "SELECT oid::text FROM pg_database WHERE datname = '{}'",
                Envs::database(env)
            ),
        )[0][0]
            .clone()
            .expect("the database exists")
    }

    fn sessions_of(&self, env: &str, application: &str) -> usize {
        self.cluster.query_strings(
            "postgres",
            &format!(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND application_name = '{application}'",
                Envs::database(env)
            ),
        )[0][0]
            .as_deref()
            .unwrap_or("0")
            .parse()
            .expect("a count")
    }

    fn spawn(&self, env: &str, args: &[&str], extra: &[(&str, &str)]) -> Pty {
        let mut run = self.hard_reset(env, args);
        for (key, value) in extra {
            run = run.env(key, value);
        }
        Pty::spawn(run)
    }
}

/// A stand-in for the runtime: `psql` connected as the environment's role and idle, its
/// standard input a pipe held by the test. Killed when dropped, if the stop command has not.
struct FakeRuntime {
    child: Child,
}

impl FakeRuntime {
    const APPLICATION: &'static str = "dreichor-runtime";

    fn start(f: &Project, env: &str) -> FakeRuntime {
        let child = Command::new(f.cluster.bin("psql"))
            .args(["-X", "-q", "-h", "127.0.0.1", "-p"])
            .arg(f.cluster.port().to_string())
            .args(["-U", Envs::database(env), "-d", Envs::database(env)])
            .env_clear()
            .env("PGPASSWORD", f.envs.password(env))
            .env("PGAPPNAME", Self::APPLICATION)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting psql as the fake runtime");
        let runtime = FakeRuntime { child };
        let deadline = Instant::now() + Duration::from_secs(20);
        while f.sessions_of(env, Self::APPLICATION) == 0 {
            assert!(
                Instant::now() < deadline,
                "the fake runtime did not connect"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        runtime
    }

    /// The stop command: what `systemctl stop` would do to the runtime.
    fn stop_command(&self) -> String {
        format!("echo stopping the runtime; kill {}", self.child.id())
    }
}

impl Drop for FakeRuntime {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn hard_reset_refuses_without_a_terminal() {
    let f = fixture();
    let out = f
        .hard_reset("dev", &["--stop-command", "true"])
        .stdin("dreichor_dev\n")
        .run();
    out.assert_code(2);
    assert!(out.stderr.contains("not a terminal"), "{}", out.stderr);
    assert!(f.sentinel_present("dev"));
}

#[test]
fn hard_reset_refuses_when_ci_is_set_even_with_a_terminal() {
    let f = fixture();
    let out = f
        .spawn("dev", &["--stop-command", "true"], &[("CI", "1")])
        .finish();
    out.assert_code(2)
        .assert_contains("CI=\"1\" is set")
        .assert_lacks("Type the database name");
    assert!(f.sentinel_present("dev"));
}

#[test]
fn hard_reset_refuses_inside_github_actions() {
    let f = fixture();
    let out = f
        .spawn(
            "dev",
            &["--stop-command", "true"],
            &[("GITHUB_ACTIONS", "true")],
        )
        .finish();
    out.assert_code(2)
        .assert_contains("GITHUB_ACTIONS=\"true\" is set")
        .assert_lacks("Type the database name");
    assert!(f.sentinel_present("dev"));
}

#[test]
fn hard_reset_aborts_when_the_database_name_is_mistyped() {
    let f = fixture();
    let marker = f.dir().join("stopped");
    let stop = format!("touch {}", marker.display());
    let mut pty = f.spawn("dev", &["--stop-command", &stop], &[]);
    pty.expect("THIS DESTROYS the database dreichor_dev");
    pty.expect("public.sentinel");
    pty.expect("Type the database name (dreichor_dev) to confirm");
    pty.answer("dreichor-dev");
    let out = pty.finish();
    out.assert_code(1)
        .assert_contains("aborted")
        .assert_contains("nothing was changed")
        .assert_lacks("step 1/7");
    assert!(!marker.exists(), "the stop command ran");
    assert!(f.sentinel_present("dev"));
}

#[test]
fn ctrl_c_or_ctrl_d_at_a_prompt_aborts_with_nothing_changed() {
    let f = fixture();
    let marker = f.dir().join("stopped");
    let stop = format!("touch {}", marker.display());
    for (key, env, answers) in [
        ('c', "dev", &[][..]),
        ('d', "dev", &[][..]),
        ('c', "prod", &["dreichor_prod"][..]),
        ('d', "prod", &["dreichor_prod"][..]),
    ] {
        let mut pty = f.spawn(env, &["--stop-command", &stop, "--no-backup"], &[]);
        pty.expect(&format!(
            "Type the database name (dreichor_{env}) to confirm"
        ));
        for answer in answers {
            pty.answer(answer);
            pty.expect("Type 'destroy production data' to confirm");
        }
        pty.press_ctrl(key);
        let out = pty.finish();
        out.assert_code(1)
            .assert_contains("aborted: no answer (Ctrl-C, Ctrl-D or end of input)")
            .assert_contains("nothing was changed")
            .assert_lacks("step 1/7");
        assert!(!marker.exists(), "Ctrl-{key}: the stop command ran");
        assert!(f.sentinel_present(env));
    }
}

#[test]
fn hard_reset_of_prod_aborts_on_a_wrong_phrase() {
    let f = fixture();
    let mut pty = f.spawn("prod", &["--stop-command", "true", "--no-backup"], &[]);
    pty.expect("Type the database name (dreichor_prod) to confirm");
    pty.answer("dreichor_prod");
    pty.expect("Type 'destroy production data' to confirm");
    pty.answer("destroy production");
    let out = pty.finish();
    out.assert_code(1)
        .assert_contains("is not the phrase")
        .assert_lacks("step 1/7");
    assert!(f.sentinel_present("prod"));
}

#[test]
fn hard_reset_of_prod_requires_a_backup_decision() {
    let f = fixture();
    let out = f.spawn("prod", &["--stop-command", "true"], &[]).finish();
    out.assert_code(2)
        .assert_contains("--backup FILE")
        .assert_contains("--no-backup")
        .assert_lacks("Type the database name");
    assert!(f.sentinel_present("prod"));
}

#[test]
fn hard_reset_refuses_to_overwrite_an_existing_backup() {
    let f = fixture();
    let backups = tempfile::tempdir().expect("temp dir");
    let file = backups.path().join("old.dump");
    std::fs::write(&file, "an older backup").expect("write");
    let out = f
        .spawn(
            "prod",
            &["--stop-command", "true", "--backup", file.to_str().unwrap()],
            &[],
        )
        .finish();
    out.assert_code(2)
        .assert_contains("exists already")
        .assert_lacks("Type the database name");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "an older backup");
    assert!(f.sentinel_present("prod"));
}

#[test]
fn hard_reset_refuses_an_admin_url_on_another_port() {
    let f = fixture();
    let other_port = f.cluster.admin_url().replace(
        &format!(":{}/", f.cluster.port()),
        &format!(":{}/", f.cluster.port().wrapping_add(1).max(1)),
    );
    let out = f
        .spawn(
            "dev",
            &["--stop-command", "true"],
            &[("DREICHOR_ADMIN_DATABASE_URL", &other_port)],
        )
        .finish();
    out.assert_code(2)
        .assert_contains("same PostgreSQL instance")
        .assert_lacks("Type the database name");
    assert!(f.sentinel_present("dev"));
}

#[test]
fn hard_reset_aborts_with_nothing_dropped_when_the_stop_command_fails() {
    let f = fixture();
    // The stop command records the environment it got, then fails.
    let seen = tempfile::tempdir().expect("temp dir");
    let env_file = seen.path().join("stop-command.env");
    let stop = format!("env > {}; false", env_file.display());
    let mut pty = f.spawn("dev", &["--stop-command", &stop], &[]);
    pty.expect("Type the database name (dreichor_dev) to confirm");
    pty.answer("dreichor_dev");
    let out = pty.finish();
    out.assert_code(1)
        .assert_contains("step 1/7: running the stop command")
        .assert_contains("step 1/7 (stop the runtime) failed")
        .assert_contains("still there, untouched")
        .assert_lacks("step 2/7");
    assert!(f.sentinel_present("dev"));
    assert_no_urls_in_env(f.cluster.superuser_password(), &env_file);
}

/// Panics unless `env_file` (what a child of `hard-reset` wrote with `env`) exists and holds
/// neither `DATABASE_URL` nor `DREICHOR_ADMIN_DATABASE_URL`, nor the superuser's password.
#[track_caller]
fn assert_no_urls_in_env(superuser_password: &str, env_file: &std::path::Path) {
    let env = std::fs::read_to_string(env_file).expect("the child wrote its environment");
    assert!(env.contains("PATH="), "not an environment:\n{env}");
    // `DATABASE_URL` is part of both names.
    assert!(
        !env.contains("DATABASE_URL"),
        "a child inherited a URL with a password:\n{}",
        secrets::redact(&env)
    );
    assert!(
        !env.contains(superuser_password),
        "a child got the superuser's password"
    );
}

#[test]
fn hard_reset_keeps_everything_when_connected_sessions_are_not_terminated() {
    let f = fixture();
    let mut held = f.connect_as_dev("held-by-the-test");
    let mut pty = f.spawn("dev", &["--stop-command", "true"], &[]);
    pty.expect("application \"held-by-the-test\"");
    pty.expect("Type the database name (dreichor_dev) to confirm");
    pty.answer("dreichor_dev");
    pty.expect("1 session is still connected to dreichor_dev");
    pty.expect("Type yes to terminate this session");
    pty.answer("no");
    let out = pty.finish();
    out.assert_code(1)
        .assert_contains("step 2/7 (sessions still connected) failed")
        .assert_contains("still there, untouched")
        .assert_contains("the runtime was stopped in step 1")
        .assert_lacks("step 3/7");
    assert!(f.sentinel_present("dev"));
    held.simple_query("SELECT 1")
        .expect("the session was left alone");
}

#[test]
fn hard_reset_terminates_connected_sessions_after_yes_and_resets() {
    let f = fixture();
    let mut held = f.connect_as_dev("held-by-the-test");
    let mut pty = f.spawn("dev", &["--stop-command", "true"], &[]);
    pty.expect("Type the database name (dreichor_dev) to confirm");
    pty.answer("dreichor_dev");
    pty.expect("Type yes to terminate this session");
    pty.answer("yes");
    let out = pty.finish();
    out.assert_code(0)
        .assert_contains("terminated 1 session(s)")
        .assert_contains("step 7/7: summary");
    assert!(held.simple_query("SELECT 1").is_err(), "still connected");
    assert!(!f.sentinel_present("dev"));
    assert_eq!(f.versions_in("dev"), ["001_init", "002_add_note"]);
}

/// Issue 10, case 3: a file that made its session read-only must not fail the next file of
/// the re-migration, after the drop. The files were first applied one run each (as a release
/// with that bug could), so that only the reset applies them in one run.
#[test]
fn hard_reset_re_migrates_files_that_change_their_session() {
    let f = Project::start();
    f.write(
        "001_account.sql",
        "CREATE TABLE account (id int PRIMARY KEY);\nSET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY;\n",
    );
    f.tool_in("dev", Tool::Migrate, &[]).run().assert_code(0);
    f.write("002_invoice.sql", "CREATE TABLE invoice (id int);\n");
    f.tool_in("dev", Tool::Migrate, &[]).run().assert_code(0);
    let mut pty = f.spawn("dev", &["--stop-command", "true"], &[]);
    pty.expect("Type the database name (dreichor_dev) to confirm");
    pty.answer("dreichor_dev");
    let out = pty.finish();
    out.assert_code(0).assert_contains("step 7/7: summary");
    assert_eq!(f.versions_in("dev"), ["001_account", "002_invoice"]);
}

/// Issue 10, cases 6 and the quoting kind: a database `TimeZone` changes the text form of the
/// instance's start time in one of the two sessions only (identities are compared as values),
/// and an admin role that reads strings the pre-9.1 way must not change a comment with
/// backslashes that the reset replays.
#[test]
fn hard_reset_is_not_fooled_by_the_databases_time_zone_or_the_admins_string_syntax() {
    let f = fixture();
    f.cluster.sql(
        "postgres",
        "ALTER DATABASE dreichor_dev SET timezone = 'Europe/Berlin'; \
         COMMENT ON DATABASE dreichor_dev IS E'C:\\\\new\\\\table'; \
         ALTER ROLE CURRENT_USER SET standard_conforming_strings = off;",
    );
    let before = f.database_row("dev");
    assert_eq!(before[7].as_deref(), Some("C:\\new\\table"));
    let mut pty = f.spawn("dev", &["--stop-command", "true"], &[]);
    pty.expect("Type the database name (dreichor_dev) to confirm");
    pty.answer("dreichor_dev");
    let out = pty.finish();
    out.assert_code(0).assert_contains("step 7/7: summary");
    assert!(!f.sentinel_present("dev"));
    assert_eq!(f.database_row("dev"), before);
}

#[test]
fn hard_reset_of_dev_stops_the_runtime_and_recreates_the_same_database() {
    let f = fixture();
    // Properties a careless DROP/CREATE would lose.
    f.cluster.sql(
        "postgres",
        "CREATE ROLE reader NOLOGIN; CREATE ROLE helper NOLOGIN; \
         GRANT CONNECT ON DATABASE dreichor_dev TO reader; \
         GRANT TEMPORARY ON DATABASE dreichor_dev TO helper WITH GRANT OPTION; \
         ALTER DATABASE dreichor_dev SET search_path = \"$user\", public, \"Odd Schema\"; \
         ALTER DATABASE dreichor_dev SET statement_timeout = '42s'; \
         ALTER ROLE dreichor_dev IN DATABASE dreichor_dev SET work_mem = '8MB'; \
         ALTER DATABASE dreichor_dev CONNECTION LIMIT 25; \
         COMMENT ON DATABASE dreichor_dev IS 'the dev database; it''s quoted';",
    );
    let before = f.database_row("dev");
    let oid_before = f.oid("dev");
    let prod_before = f.database_row("prod");

    let runtime = FakeRuntime::start(&f, "dev");
    let mut pty = f.spawn("dev", &["--stop-command", &runtime.stop_command()], &[]);
    pty.expect("THIS DESTROYS the database dreichor_dev");
    pty.expect("public.sentinel");
    pty.expect("migrations applied: 2, latest 002_add_note");
    pty.expect("application \"dreichor-runtime\"");
    pty.expect("Type the database name (dreichor_dev) to confirm");
    pty.answer("dreichor_dev");
    let out = pty.finish();
    out.assert_code(0);
    assert_in_order(
        &out.transcript,
        &[
            "step 1/7: running the stop command",
            "stopping the runtime",
            "step 2/7",
            "no other session is connected to dreichor_dev",
            "step 3/7: backup: skipped",
            "step 4/7",
            "dropped dreichor_dev",
            "step 5/7",
            "step 6/7",
            "applied  001_init",
            "applied  002_add_note",
            "step 7/7: summary",
            "migrations applied: 2 (001_init, 002_add_note)",
            "the runtime was not restarted: start it yourself when ready",
        ],
    );
    out.assert_lacks("Type yes");

    assert_ne!(f.oid("dev"), oid_before, "the database was not dropped");
    assert!(!f.sentinel_present("dev"));
    assert_eq!(
        f.versions_in("dev"),
        MIGRATIONS
            .iter()
            .map(|(name, _)| name.trim_end_matches(".sql"))
            .collect::<Vec<_>>()
    );
    assert_eq!(f.database_row("dev"), before);
    assert_eq!(f.database_row("prod"), prod_before);
    assert!(f.sentinel_present("prod"), "prod was touched");
    assert_eq!(f.sessions_of("dev", FakeRuntime::APPLICATION), 0);
    // The environment's role works in its new database as before.
    f.connect_as_dev("after-the-reset")
        .simple_query("INSERT INTO public.ledger (id, note) VALUES (1, 'x')")
        .expect("the dev role can use its new database");
}

#[test]
fn hard_reset_of_prod_takes_a_verified_backup_first() {
    let f = fixture();
    let backups = tempfile::tempdir().expect("temp dir");
    let backup = backups.path().join("prod.dump");
    let mut pty = f.spawn(
        "prod",
        &[
            "--stop-command",
            "true",
            "--backup",
            backup.to_str().unwrap(),
        ],
        &[],
    );
    pty.expect("back up with pg_dump -Fc to");
    pty.expect("Type the database name (dreichor_prod) to confirm");
    pty.answer("dreichor_prod");
    pty.expect("Type 'destroy production data' to confirm");
    pty.answer("destroy production data");
    let out = pty.finish();
    out.assert_code(0)
        .assert_contains("backup verified: pg_restore -l lists")
        .assert_contains("backup: ");
    assert!(!f.sentinel_present("prod"));
    assert_eq!(f.versions_in("prod"), ["001_init", "002_add_note"]);

    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&backup)
        .expect("the backup exists")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the backup holds data: owner only");
    assert!(
        !backups.path().join("prod.dump.partial").exists(),
        "the .partial is left behind"
    );
    let listing = Command::new(f.cluster.bin("pg_restore"))
        .arg("--list")
        .arg(&backup)
        .env_clear()
        .output()
        .expect("pg_restore -l");
    assert!(listing.status.success());
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.contains("TABLE public sentinel"),
        "the backup lacks the sentinel table:\n{listing}"
    );
    assert!(listing.contains("TABLE DATA public sentinel"), "{listing}");
    assert!(f.sentinel_present("dev"), "dev was touched");
}

#[test]
fn ctrl_c_during_the_backup_leaves_no_file_under_the_backup_name() {
    use std::os::unix::fs::PermissionsExt;
    let f = fixture();
    let backups = tempfile::tempdir().expect("temp dir");
    let backup = backups.path().join("prod.dump");
    let partial = backups.path().join("prod.dump.partial");
    // A pg_dump that records its environment, writes the start of a dump, and then gets what
    // Ctrl-C sends: SIGINT to the whole foreground process group, hard-reset's and its own.
    let bin = tempfile::tempdir().expect("temp dir");
    let env_file = bin.path().join("pg_dump.env");
    let pg_dump = bin.path().join("pg_dump");
    std::fs::write(
        &pg_dump,
        format!(
            "#!/bin/sh\n\
             env > '{}'\n\
             while [ $# -gt 0 ]; do [ \"$1\" = --file ] && out=$2; shift; done\n\
             printf 'PGDMP, cut short' > \"$out\"\n\
             kill -INT 0\n\
             sleep 10\n",
            env_file.display()
        ),
    )
    .expect("writing the fake pg_dump");
    std::fs::set_permissions(&pg_dump, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::os::unix::fs::symlink(f.cluster.bin("pg_restore"), bin.path().join("pg_restore"))
        .expect("linking pg_restore");

    let args = [
        "--stop-command",
        "true",
        "--backup",
        backup.to_str().unwrap(),
    ];
    let mut pty = f.spawn("prod", &args, &[("PG_BIN", bin.path().to_str().unwrap())]);
    pty.expect("Type the database name (dreichor_prod) to confirm");
    pty.answer("dreichor_prod");
    pty.expect("Type 'destroy production data' to confirm");
    pty.answer("destroy production data");
    let out = pty.finish();
    assert_eq!(out.code, 130, "not ended by SIGINT\n{}", out.transcript);
    out.assert_contains("step 3/7").assert_lacks("step 4/7");
    assert!(
        !backup.exists(),
        "a cut-short dump is under the backup's name"
    );
    let mode = std::fs::metadata(&partial)
        .expect("the cut-short dump is in FILE.partial")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the dump holds data: owner only");
    assert!(f.sentinel_present("prod"));
    assert_no_urls_in_env(f.cluster.superuser_password(), &env_file);

    // The next run refuses before anything, naming the leftover, and leaves it alone.
    let out = f.spawn("prod", &args, &[]).finish();
    out.assert_code(2)
        .assert_contains(&partial.display().to_string())
        .assert_contains("NOT a usable backup")
        .assert_lacks("Type the database name");
    assert!(partial.exists() && !backup.exists());
    assert!(f.sentinel_present("prod"));
}

#[test]
fn a_prepared_transaction_is_named_before_the_prompt_with_what_to_run() {
    let f = fixture();
    let oid_before = f.oid("dev");
    // A strong lock stalled listing the tables; a weak one let the drop fail with advice
    // about sessions, of which there were none.
    for (gid, lock) in [("app's 1", "ACCESS EXCLUSIVE"), ("app-2", "ACCESS SHARE")] {
        f.cluster.sql(
            "dreichor_dev",
            &format!(
                "BEGIN; LOCK TABLE public.sentinel IN {lock} MODE; PREPARE TRANSACTION '{}'",
                gid.replace('\'', "''")
            ),
        );
        let quoted = format!("'{}'", gid.replace('\'', "''"));
        let out = f.spawn("dev", &["--stop-command", "true"], &[]).finish();
        out.assert_code(1)
            .assert_contains("dreichor_dev has 1 prepared transaction (pg_prepared_xacts)")
            .assert_contains(&format!("gid {quoted}, prepared by postgres at"))
            .assert_contains("nothing was changed")
            .assert_contains(&format!("ROLLBACK PREPARED {quoted};"))
            .assert_contains(&format!("COMMIT PREPARED {quoted};"))
            .assert_lacks("lock timeout")
            .assert_lacks("Type the database name");
        // What it says to run works.
        f.cluster
            .sql("dreichor_dev", &format!("ROLLBACK PREPARED {quoted}"));
    }
    assert_eq!(f.oid("dev"), oid_before);
    assert!(f.sentinel_present("dev"));
}

#[test]
fn hard_reset_gives_up_on_a_lock_held_on_the_database_and_drops_nothing() {
    let f = fixture();
    let oid_before = f.oid("dev");
    // What a second admin session can do: hold a lock on the database object in an open
    // transaction. Connected to `postgres`, it is not a session of dreichor_dev (step 2).
    let mut holder = f.cluster.admin();
    holder
        .batch_execute("BEGIN; COMMENT ON DATABASE dreichor_dev IS 'x';")
        .expect("taking the lock");
    let holder_pid: i32 = holder
        .query_one("SELECT pg_backend_pid()", &[])
        .expect("the holder's pid")
        .get(0);

    let started = Instant::now();
    let mut pty = f.spawn("dev", &["--stop-command", "true"], &[]);
    pty.expect("Type the database name (dreichor_dev) to confirm");
    pty.answer("dreichor_dev");
    let out = pty.finish();
    let took = started.elapsed();
    out.assert_code(1)
        .assert_contains("step 4/7 (drop the database) failed: DROP DATABASE")
        .assert_contains("SQLSTATE 55P03")
        .assert_contains("state of dreichor_dev: still there, untouched")
        .assert_contains("another session holds a lock on the database dreichor_dev")
        .assert_contains("pg_locks / pg_stat_activity")
        .assert_contains(&format!("pid {holder_pid}  user postgres"))
        .assert_contains("(idle in transaction)")
        .assert_lacks("dropped dreichor_dev");
    assert!(
        took < Duration::from_secs(25),
        "the drop waited {took:?} for the lock"
    );

    holder
        .batch_execute("ROLLBACK")
        .expect("releasing the lock");
    // Nothing of the drop is left to complete once the lock is gone.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(f.oid("dev"), oid_before);
    assert!(f.sentinel_present("dev"));
}

#[test]
fn a_hard_reset_killed_while_the_drop_waits_leaves_no_drop_behind() {
    let f = fixture();
    let oid_before = f.oid("dev");
    let mut holder = f.cluster.admin();
    holder
        .batch_execute("BEGIN; COMMENT ON DATABASE dreichor_dev IS 'x';")
        .expect("taking the lock");
    let mut pty = f.spawn("dev", &["--stop-command", "true"], &[]);
    pty.expect("Type the database name (dreichor_dev) to confirm");
    pty.answer("dreichor_dev");
    pty.expect("then dropping it");
    let waiting = "SELECT count(*) FROM pg_stat_activity \
                   WHERE application_name = 'dreichor-hard-reset' AND wait_event_type = 'Lock'";
    let deadline = Instant::now() + Duration::from_secs(8);
    while f.cluster.query_strings("postgres", waiting)[0][0].as_deref() != Some("1") {
        assert!(
            Instant::now() < deadline,
            "the drop is not waiting for the lock"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Signals are held during the drop: only kill -9 ends the tool.
    pty.send(Signal::SIGKILL);
    assert_eq!(pty.finish().code, 128 + Signal::SIGKILL as i32);
    // Its backend notices within client_connection_check_interval that the client has gone,
    // and cancels the drop; without that it would still be waiting, and would drop the
    // database the moment the lock is released.
    std::thread::sleep(Duration::from_millis(2500));
    holder
        .batch_execute("ROLLBACK")
        .expect("releasing the lock");
    std::thread::sleep(Duration::from_millis(500));
    let now = f.cluster.query_strings(
        "postgres",
        "SELECT oid::text FROM pg_database WHERE datname = 'dreichor_dev'",
    );
    assert_eq!(
        now,
        [[Some(oid_before)]],
        "the orphaned backend dropped dreichor_dev"
    );
    assert!(f.sentinel_present("dev"));
}

#[test]
fn sessions_an_admin_role_may_not_see_into_are_said_to_be_not_visible() {
    let f = fixture();
    // An admin that may drop and recreate dreichor_dev without being a superuser, and so
    // without pg_read_all_stats: it sees other roles' sessions, but not their details.
    let password = f.cluster.create_role("resetter", "CREATEDB");
    f.cluster.sql("postgres", "GRANT dreichor_dev TO resetter");
    let admin_url = f
        .cluster
        .url_for("resetter", &password, "localhost", "postgres");
    let _superuser_session = f.cluster.admin_db("dreichor_dev");
    let mut pty = f.spawn(
        "dev",
        &["--stop-command", "true"],
        &[("DREICHOR_ADMIN_DATABASE_URL", &admin_url)],
    );
    pty.expect("Type the database name (dreichor_dev) to confirm");
    pty.answer("no");
    let out = pty.finish();
    out.assert_code(1)
        .assert_contains(
            "user postgres  application \"dreichor-test-harness\"  client not visible to this role",
        )
        .assert_lacks("hidden");
    assert!(f.sentinel_present("dev"));
}

#[test]
#[should_panic(expected = "password leaked")]
fn pty_transcripts_are_checked_for_leaked_passwords() {
    let password = secrets::sentinel_password();
    Pty::spawn(
        Run::new("sh")
            .arg("-c")
            .arg(format!("printf 'oops: %s\\n' '{password}'")),
    )
    .finish();
}

#[test]
fn hard_reset_refuses_when_the_two_urls_reach_different_servers_on_one_port() {
    // 127.0.0.1:PORT and [::1]:PORT are two different servers, each with a dreichor_dev.
    let (v4, v6) = crate::support::Cluster::start_twins();
    let v4_envs = v4.provision_envs();
    let v6_envs = v6.provision_envs();
    for cluster in [&v4, &v6] {
        cluster.sql(
            "dreichor_dev",
            "SET ROLE dreichor_dev; CREATE TABLE public.sentinel (id int); INSERT INTO public.sentinel VALUES (42);",
        );
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("001_init.sql"), "SELECT 1;\n").unwrap();
    let env_url = v6.url_for(
        "dreichor_dev",
        &v6_envs.dev_password,
        "[::1]",
        "dreichor_dev",
    );
    let admin_url = v4.url_for(
        crate::support::cluster::SUPERUSER,
        v4.superuser_password(),
        "127.0.0.1",
        "postgres",
    );
    assert_ne!(v4_envs.dev_password, v6_envs.dev_password);
    let run = Tool::HardReset
        .cmd()
        .env("DATABASE_URL", &env_url)
        .env("DREICHOR_ADMIN_DATABASE_URL", &admin_url)
        .args(["--env", "dev", "--stop-command", "true", "--dir"])
        .arg(dir.path());
    let out = Pty::spawn(run).finish();
    out.assert_code(2)
        .assert_contains("do not reach the same PostgreSQL instance")
        .assert_lacks("Type the database name");
    for cluster in [&v4, &v6] {
        assert_eq!(
            cluster.query_strings("dreichor_dev", "SELECT id FROM public.sentinel")[0][0]
                .as_deref(),
            Some("42")
        );
    }
}
