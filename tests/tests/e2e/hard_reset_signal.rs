//! `hard-reset` and the operator's Ctrl-C, driven through a pseudo-terminal like the cases
//! in `hard_reset`.
//!
//! A SIGINT that killed the tool between `DROP DATABASE` and `CREATE DATABASE` would leave
//! the environment without a database and without a word. From just before the drop until
//! the migrations have finished, the tool holds SIGINT, SIGTERM and SIGHUP: it says so,
//! finishes, and ends with exit 0 (every step succeeded) saying that it was interrupted.
//! Before the drop nothing has changed, and Ctrl-C ends it as always.
//!
//! The pseudo-terminal runner is the harness's [`Pty`]. The signal goes to the tool's process
//! only (`kill -INT PID`), as the terminal would send it to the foreground process group the
//! tool leads.

use rexpect::process::Signal;

use crate::support::pty::assert_in_order;
use crate::support::{Project, Pty, PtyOutcome, Tool};

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

/// A [`Project`] (the database must be named `dreichor_dev`) with [`MIGRATIONS`] applied, and
/// a sentinel row that only a reset removes.
fn fixture() -> Project {
    let f = Project::start();
    for (name, sql) in MIGRATIONS {
        f.write(name, sql);
    }
    f.tool(Tool::Migrate, &[]).run().assert_code(0);
    f.sql(
        "SET ROLE dreichor_dev; CREATE TABLE public.sentinel (id int); INSERT INTO public.sentinel VALUES (42);",
    );
    assert!(f.sentinel_present());
    f
}

/// What the cases below look at and run.
trait SignalCases {
    /// Whether the sentinel table is still in `dreichor_dev`.
    fn sentinel_present(&self) -> bool;
    /// The database's oid: a new one means it was dropped and created again.
    fn oid(&self) -> Option<String>;
    /// `hard-reset --env dev` with a stop command that succeeds, in a pseudo-terminal.
    fn spawn(&self) -> Pty;
}

impl SignalCases for Project {
    fn sentinel_present(&self) -> bool {
        self.table_exists("sentinel")
    }

    fn oid(&self) -> Option<String> {
        self.cluster
            .query_strings(
                "postgres",
                "SELECT oid::text FROM pg_database WHERE datname = 'dreichor_dev'",
            )
            .first()
            .and_then(|row| row[0].clone())
    }

    fn spawn(&self) -> Pty {
        Pty::spawn(self.hard_reset("dev", &["--stop-command", "true"]))
    }
}

#[test]
fn hard_reset_holds_ctrl_c_until_the_database_is_recreated_and_migrated() {
    let f = fixture();
    let oid_before = f.oid();
    let mut pty = f.spawn();
    pty.expect("Type the database name (dreichor_dev) to confirm");
    pty.answer("dreichor_dev");
    pty.expect("step 6/7");
    // The slow migration is ahead: the signal arrives while step 6 runs.
    pty.interrupt();
    let PtyOutcome { code, transcript } = pty.finish();
    assert_eq!(code, 0, "--- transcript ---\n{transcript}");
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
    let f = fixture();
    let mut pty = f.spawn();
    pty.expect("Type the database name (dreichor_dev) to confirm");
    pty.answer("dreichor_dev");
    pty.expect("step 6/7");
    pty.send(Signal::SIGHUP);
    let PtyOutcome { code, transcript } = pty.finish();
    assert_eq!(code, 0, "--- transcript ---\n{transcript}");
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
    let f = fixture();
    let oid_before = f.oid();
    let mut pty = f.spawn();
    pty.expect("Type the database name (dreichor_dev) to confirm");
    pty.interrupt();
    let PtyOutcome { code, transcript } = pty.finish();
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
