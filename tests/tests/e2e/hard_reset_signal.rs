//! `hard-reset` and the operator's Ctrl-C, driven through a pseudo-terminal like the cases
//! in `hard_reset`.
//!
//! A SIGINT that killed the tool between `DROP DATABASE` and `CREATE DATABASE` would leave
//! the environment without a database and without a word. From just before the drop until
//! the migrations have finished, the tool holds the signal: it says so, finishes, and ends with
//! exit 1 saying that it was interrupted. Before the drop nothing has changed, and Ctrl-C ends
//! it as always.
//!
//! The pseudo-terminal helpers of `hard_reset` are private to that file; this one keeps the
//! few it needs. The signal goes to the tool's process only (`kill -INT PID`), as the terminal
//! would send it to the foreground process group the tool leads.

use std::process::Command;

use rexpect::process::{Signal, WaitStatus};
use rexpect::session::PtySession;

use crate::support::cluster::Envs;
use crate::support::{secrets, Cluster, Tool};

/// Bounds every wait for output, and the whole run after the signal.
const PTY_TIMEOUT_MS: u64 = 60_000;

/// The migrations. The second one sleeps, so that step 6 is still running when the signal
/// arrives, and one more follows it, so that holding the signal visibly lets step 6 finish.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "001_init.sql",
        "CREATE TABLE public.ledger (id bigint PRIMARY KEY);\n",
    ),
    ("002_slow.sql", "SELECT pg_sleep(2);\n"),
    (
        "003_add_note.sql",
        "ALTER TABLE public.ledger ADD COLUMN note text;\n",
    ),
];

/// A cluster of its own (the database must be named `dreichor_dev`), migrated, with a sentinel
/// row that only a reset removes.
struct Fixture {
    cluster: Cluster,
    envs: Envs,
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let cluster = Cluster::start();
        let envs = cluster.provision_envs();
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, sql) in MIGRATIONS {
            std::fs::write(dir.path().join(name), sql).expect("write migration");
        }
        Tool::Migrate
            .cmd()
            .env("DATABASE_URL", &envs.dev_url)
            .args(["--env", "dev", "--dir"])
            .arg(dir.path())
            .run()
            .assert_code(0);
        cluster.sql(
            "dreichor_dev",
            "SET ROLE dreichor_dev; CREATE TABLE public.sentinel (id int); INSERT INTO public.sentinel VALUES (42);",
        );
        let f = Fixture { cluster, envs, dir };
        assert!(f.sentinel_present());
        f
    }

    fn sentinel_present(&self) -> bool {
        self.cluster.query_strings(
            "dreichor_dev",
            "SELECT to_regclass('public.sentinel') IS NOT NULL",
        )[0][0]
            .as_deref()
            == Some("t")
    }

    /// The database's oid: a new one means it was dropped and created again.
    fn oid(&self) -> Option<String> {
        self.cluster
            .query_strings(
                "postgres",
                "SELECT oid::text FROM pg_database WHERE datname = 'dreichor_dev'",
            )
            .first()
            .and_then(|row| row[0].clone())
    }

    fn versions(&self) -> Vec<String> {
        self.cluster
            .query_strings(
                "dreichor_dev",
                "SELECT version FROM public.dreichor_schema_migrations ORDER BY version",
            )
            .into_iter()
            .map(|r| r[0].clone().unwrap_or_default())
            .collect()
    }

    /// `hard-reset --env dev` with a stop command that succeeds, in a pseudo-terminal, with a
    /// cleared environment plus the two URLs and `PG_BIN`.
    fn spawn(&self) -> Pty {
        let mut command = Command::new(Tool::HardReset.path());
        command
            .args(["--env", "dev", "--dir"])
            .arg(self.dir.path())
            .args(["--stop-command", "true"])
            .env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
            )
            .env("LANG", "C.UTF-8")
            .env("TERM", "xterm")
            .env("DATABASE_URL", &self.envs.dev_url)
            .env("DREICHOR_ADMIN_DATABASE_URL", self.cluster.admin_url())
            .env(
                "PG_BIN",
                self.cluster.bin("pg_dump").parent().expect("a directory"),
            );
        let session = rexpect::session::spawn_command(command, Some(PTY_TIMEOUT_MS))
            .expect("starting hard-reset in a pseudo-terminal");
        Pty {
            session,
            transcript: String::new(),
        }
    }
}

/// A run in a pseudo-terminal; everything read is kept for the leak check and for messages.
struct Pty {
    session: PtySession,
    transcript: String,
}

impl Pty {
    #[track_caller]
    fn expect(&mut self, needle: &str) {
        match self.session.exp_string(needle) {
            Ok(before) => {
                self.transcript.push_str(&before);
                self.transcript.push_str(needle);
            }
            Err(e) => panic!(
                "waiting for {needle:?}: {}\n--- transcript so far ---\n{}",
                secrets::redact(&e.to_string()),
                secrets::redact(&self.transcript)
            ),
        }
    }

    fn answer(&mut self, line: &str) {
        self.session.send_line(line).expect("typing an answer");
    }

    /// What Ctrl-C does: SIGINT to the tool.
    fn interrupt(&mut self) {
        self.send(Signal::SIGINT);
    }

    /// Sends `signal` to the tool.
    fn send(&mut self, signal: Signal) {
        self.session
            .process_mut()
            .signal(signal)
            .expect("sending a signal to hard-reset");
    }

    /// Reads to the end and returns the exit code (128 + N when killed by signal N) and the
    /// transcript, after checking it for passwords.
    fn finish(mut self) -> (i32, String) {
        match self.session.exp_eof() {
            Ok(rest) => self.transcript.push_str(&rest),
            Err(e) => panic!(
                "waiting for the end of output: {}\n--- transcript so far ---\n{}",
                secrets::redact(&e.to_string()),
                secrets::redact(&self.transcript)
            ),
        }
        let code = match self
            .session
            .process()
            .wait()
            .expect("waiting for hard-reset")
        {
            WaitStatus::Exited(_, code) => code,
            WaitStatus::Signaled(_, signal, _) => 128 + signal as i32,
            other => panic!("unexpected wait status {other:?}"),
        };
        if let Err(leak) = secrets::check_no_secrets(&self.transcript) {
            panic!(
                "{leak}\n--- transcript (redacted) ---\n{}",
                secrets::redact(&self.transcript)
            );
        }
        (code, self.transcript.replace("\r\n", "\n"))
    }
}

/// Panics unless every needle is in `transcript`, in this order.
#[track_caller]
fn assert_in_order(transcript: &str, needles: &[&str]) {
    let mut at = 0;
    for needle in needles {
        match transcript[at..].find(needle) {
            Some(i) => at += i + needle.len(),
            None => panic!("{needle:?} missing or out of order\n--- transcript ---\n{transcript}"),
        }
    }
}

#[test]
fn hard_reset_holds_ctrl_c_until_the_database_is_recreated_and_migrated() {
    let f = Fixture::new();
    let oid_before = f.oid();
    let mut pty = f.spawn();
    pty.expect("Type the database name (dreichor_dev) to confirm");
    pty.answer("dreichor_dev");
    pty.expect("step 6/7");
    // The slow migration is ahead: the signal arrives while step 6 runs.
    pty.interrupt();
    let (code, transcript) = pty.finish();
    assert_eq!(code, 1, "--- transcript ---\n{transcript}");
    assert_in_order(
        &transcript,
        &[
            "dropped dreichor_dev",
            "step 6/7",
            "Ctrl-C is held until the database is recreated and migrated",
            "applied  003_add_note",
            "step 7/7: summary",
            "migrations applied: 3 (001_init, 002_slow, 003_add_note)",
            "the runtime was not restarted: start it yourself when ready",
            "interrupted by the operator (SIGINT, Ctrl-C) during step 6/7",
        ],
    );
    assert_eq!(
        transcript
            .matches("Ctrl-C is held until the database is recreated and migrated")
            .count(),
        1,
        "announced more than once\n--- transcript ---\n{transcript}"
    );
    assert!(f.oid().is_some(), "the database does not exist");
    assert_ne!(f.oid(), oid_before, "the database was not recreated");
    assert!(!f.sentinel_present());
    assert_eq!(f.versions(), ["001_init", "002_slow", "003_add_note"]);
}

#[test]
fn a_dropped_terminal_sighup_does_not_stop_the_reset_halfway() {
    let f = Fixture::new();
    let mut pty = f.spawn();
    pty.expect("Type the database name (dreichor_dev) to confirm");
    pty.answer("dreichor_dev");
    pty.expect("step 6/7");
    pty.send(Signal::SIGHUP);
    let (code, transcript) = pty.finish();
    assert_eq!(code, 1, "--- transcript ---\n{transcript}");
    assert_in_order(
        &transcript,
        &[
            "SIGHUP (the terminal went away) is held until the database is recreated and migrated",
            "applied  003_add_note",
            "interrupted by the operator (SIGHUP (the terminal went away)) during step 6/7",
        ],
    );
    assert!(f.oid().is_some(), "the database does not exist");
    assert_eq!(f.versions(), ["001_init", "002_slow", "003_add_note"]);
}

#[test]
fn ctrl_c_before_the_drop_ends_hard_reset_with_nothing_changed() {
    let f = Fixture::new();
    let oid_before = f.oid();
    let mut pty = f.spawn();
    pty.expect("Type the database name (dreichor_dev) to confirm");
    pty.interrupt();
    let (code, transcript) = pty.finish();
    assert_eq!(
        code,
        128 + Signal::SIGINT as i32,
        "not ended by SIGINT\n--- transcript ---\n{transcript}"
    );
    assert!(!transcript.contains("step 1/7"), "{transcript}");
    assert_eq!(f.oid(), oid_before);
    assert!(f.sentinel_present());
    assert_eq!(f.versions(), ["001_init", "002_slow", "003_add_note"]);
}
