//! `hard-reset`: the only allowed way to destroy an environment's data (design document,
//! "Hard Reset"): stop the runtime, drop the database, create it again, re-run every
//! migration. Manual, intentional, never automated.
//!
//! The binary only parses flags and talks to the operator; everything else is here, all SQL
//! included, so that the rules can be read (and unit-tested) in one place:
//!
//! - [`refuse_unless_manual`]: no terminal, `CI` or `GITHUB_ACTIONS` means exit 2 before
//!   anything else is even validated;
//! - [`Request::new`]: the configuration checks that need no server (the admin URL on the same
//!   instance, prod's backup choice, a backup file that must not exist yet);
//! - [`run`]: connects, shows what will be destroyed, asks through an [`Operator`], then runs
//!   the seven steps, each announced before it runs.
//!
//! One file per concern: `request` (the refusals and checks above, the [`Operator`]),
//! `admin` (the admin connection, what it must be allowed and how long it may wait),
//! `inventory` (what will be destroyed), `prepared` (prepared transactions, which no session
//! owns and which keep the database from being dropped), `sessions` (the sessions still connected, step 2, and
//! those holding a lock on the database), `confirm` (what is shown and asked before step 1),
//! `command` (step 1's stop command, and the environment of every child), `backup` (step 3),
//! `properties` (what the drop loses, recorded and checked), `inside` (schema `public`'s
//! privileges and the default privileges, which keep the runtime role apart), `recreate` (the SQL that brings it
//! back), `interrupt` (Ctrl-C, SIGTERM and SIGHUP held during steps 4 to 6), `steps` (the
//! seven steps, in order), `failure` (what a failed step says) and `summary` (step 7).
//!
//! # Why the steps are in this order and what a failure leaves behind
//!
//! Everything that can fail without harm runs before the drop: the stop command, the
//! sessions, the backup (dumped into `FILE.partial` and listed with `pg_restore -l`, so that a
//! backup that cannot be read is found while the data still exists, and only then renamed to
//! FILE). The drop is `DROP DATABASE` without `WITH (FORCE)`: FORCE would terminate sessions
//! the operator did not agree to terminate, and a session that reconnected after step 2 (a
//! runtime restarting itself) makes the plain drop fail with nothing dropped, which is the
//! safe outcome. Nor does the drop wait indefinitely for a lock that another session holds on
//! the database: the admin session's lock timeout makes it fail with nothing dropped
//! (`admin`). Every failure says which step failed and in which state it left the database
//! ([`State`]): still there, dropped and not recreated (with the statements that recreate it),
//! or recreated but not (fully) migrated.
//!
//! # What "the same database" means
//!
//! `DROP DATABASE` loses more than the data: the owner, encoding, collation and ctype, locale
//! provider, connection limit, tablespace, access privileges (`datacl`), the settings made with
//! `ALTER DATABASE ... SET` and `ALTER ROLE ... IN DATABASE ... SET`, and the comment. All of
//! them are read just before the drop ([`Recorded`]) and replayed just after the create,
//! privileges grant by grant in their original order so that `datacl` comes back identical.
//!
//! # Ctrl-C
//!
//! Before the drop nothing has changed, and Ctrl-C ends the tool as usual. From just before
//! `DROP DATABASE` until the migrations have finished (or failed), SIGINT, SIGTERM and SIGHUP
//! are held (`interrupt`): the operator is told once that the signal is held until the
//! database is recreated and migrated, and the steps finish. The run then ends as it would
//! have without the signal, exit 0 when every step succeeded (the reset is complete) and 1
//! when one failed, and its summary or failure says that it was interrupted. A signal that
//! killed the tool between the drop and the create would leave the environment without a
//! database and without a word.
//!
//! # Passwords
//!
//! URLs are only ever shown redacted. `pg_dump` gets the credentials through `PGPASSWORD` and
//! friends in its environment, never on its command line, which any user can read in the
//! process list (<https://www.postgresql.org/docs/current/libpq-envars.html>). No child
//! process (the stop command, `pg_dump`, `pg_restore`) inherits `DATABASE_URL` or
//! `DREICHOR_ADMIN_DATABASE_URL` (`command`).

mod admin;
mod backup;
mod command;
mod confirm;
mod failure;
#[cfg(test)]
mod fixtures;
mod inside;
mod interrupt;
mod inventory;
mod prepared;
mod properties;
mod recreate;
mod request;
mod sessions;
mod steps;
mod summary;

use std::time::Duration;

use common::error::{Error, ExitCode};
use common::report::Failure;
use serde_json::{Map, Value};

pub use backup::{find_program, libpq_env, partial_path, pg_dump_command};
pub use failure::{State, StepFailed};
pub use inside::{DefaultPrivileges, Inside, SchemaPrivileges};
pub use interrupt::Interruption;
pub use inventory::{AppliedMigrations, Inventory, Rows, Table};
pub use prepared::Prepared;
pub use properties::{Grant, Recorded, Setting};
pub use recreate::{quote_ident, setting_statement, split_guc_list};
pub use request::{refuse_unless_manual, Backup, Operator, Request};
pub use sessions::Session;
pub use summary::{Summary, NOT_RESTARTED};

use steps::Steps;

/// The application name of `hard-reset`'s own sessions in `pg_stat_activity`.
pub const APPLICATION: &str = "dreichor-hard-reset";

/// The application name `pg_dump` shows while it takes the backup.
pub const BACKUP_APPLICATION: &str = "dreichor-hard-reset-backup";

/// The phrase the second prompt requires for prod.
pub const PROD_PHRASE: &str = "destroy production data";

/// The only answer that terminates the sessions still connected in step 2.
pub const TERMINATE_ANSWER: &str = "yes";

/// How many steps a reset has (SPEC.md, "hard-reset").
pub const STEPS: usize = 7;

/// How long connecting may take, for both connections.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What stops a reset: an error any tool can meet (configuration, refusal, unreachable,
/// aborted confirmation), or a failed step with the state it leaves the database in.
#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    /// Before step 1, or an error shared with the other tools.
    #[error(transparent)]
    Tool(#[from] Error),
    /// A step failed (exit 1).
    #[error(transparent)]
    Step(Box<StepFailed>),
}

impl Failure for ResetError {
    fn exit_code(&self) -> ExitCode {
        match self {
            ResetError::Tool(e) => e.exit_code(),
            ResetError::Step(_) => ExitCode::Failed,
        }
    }

    fn fields(&self) -> Map<String, Value> {
        match self {
            ResetError::Tool(e) => e.fields(),
            ResetError::Step(step) => step.fields(),
        }
    }
}

/// Runs a reset: connects, shows what will be destroyed, asks, and runs the seven steps.
pub fn run(request: &Request, operator: &mut dyn Operator) -> Result<Summary, ResetError> {
    confirm::introduce(request, operator);
    let mut admin = admin::open(request)?;
    let inventory = inventory::read(request, &mut admin)?;
    confirm::show_plan(request, &inventory, operator);
    confirm::ask(request, operator)?;

    let mut steps = Steps::start(request, operator);
    steps.stop_runtime()?;
    steps.end_sessions(&mut admin)?;
    let backup = steps.back_up()?;
    // Ctrl-C is held from here until the migrations have finished or failed.
    let recorded = steps.drop_database(&mut admin)?;
    steps.create_database(admin, &recorded)?;
    let migrated = steps.run_migrations()?;
    Ok(steps.summary(backup, recorded, migrated))
}
