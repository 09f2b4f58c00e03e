//! `hard-reset`: the only allowed way to destroy an environment's data, by hand.
//!
//! Parses flags, asks the operator (`terminal`), and maps the outcome to an exit code.
//! The rules, the steps, all SQL and the handling of Ctrl-C during the destructive steps live
//! in [`reset`]. A SIGINT, SIGTERM or SIGHUP during steps 4 to 6 is held until the
//! database is recreated and migrated: the reset then comes back as a summary that says it was
//! interrupted, with exit code 0 when every step succeeded (or as a step failure, exit 1).

pub mod reset;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use crate::reset::{Backup, Request, ResetError};
use clap::{Args, CommandFactory, Parser};
use cli::{Output, TargetArgs};
use common::config::{DbUrl, ADMIN_DATABASE, ADMIN_DATABASE_URL};
use common::migrations::discover;
mod terminal;
use common::Error;
use terminal::Terminal;

const EXIT_CODES: &str = "\
Steps: 1 stop the runtime (sh -c CMD), 2 ask before terminating sessions still connected,
3 pg_dump -Fc (with --backup), 4 drop, 5 create with the same owner, encoding, collation and
privileges, 6 run every migration, 7 summary. The runtime is not restarted. Ctrl-C (SIGINT) or
SIGTERM or a lost terminal (SIGHUP) during steps 4-6 is held until the database is recreated
and migrated; the summary then says it was interrupted.

Exit codes:
  0  the reset is done (also when a signal was held during steps 4-6)
  1  a step failed or the operator did not confirm (the message says in which state the
     database is)
  2  invalid configuration, or not run by hand at a terminal (no terminal, CI, GITHUB_ACTIONS); nothing touched
  3  the database could not be reached

Environment:
  DATABASE_URL                  postgres://USER:PASSWORD@localhost[:PORT]/dreichor_<env> (never a flag)
  DREICHOR_ADMIN_DATABASE_URL   postgres://ADMIN:PASSWORD@localhost[:PORT]/postgres, same port
  DREICHOR_ENV                  dev or prod, when --env is not given
  PG_BIN                        where pg_dump and pg_restore are (default: PATH)";

/// Drops the environment's database, creates it again and re-runs every migration. Manual
/// only: it asks for the database name (and for prod a phrase) and has no flag to skip that.
#[derive(Parser, Debug)]
#[command(name = "hard-reset", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(flatten)]
    target: TargetArgs,

    /// The shell command that stops the runtime (run with `sh -c`; a non-zero exit aborts
    /// with nothing dropped), e.g. 'systemctl stop dreichor-runtime'.
    #[arg(long, value_name = "CMD")]
    stop_command: String,

    #[command(flatten)]
    backup: BackupArgs,
}

#[derive(Args, Debug)]
#[group(multiple = false)]
struct BackupArgs {
    /// Back up the database with `pg_dump -Fc` into FILE before dropping it: written to
    /// FILE.partial, checked with `pg_restore -l`, then renamed. Neither may exist yet. Prod
    /// needs this or --no-backup.
    #[arg(long, value_name = "FILE")]
    backup: Option<PathBuf>,

    /// Reset without a backup (prod needs this or --backup).
    #[arg(long)]
    no_backup: bool,
}

/// The command-line interface, for the man pages and shell completions generated from it.
pub fn command() -> clap::Command {
    Cli::command()
}

/// Runs the tool; the binary's `main`.
pub fn main() -> std::process::ExitCode {
    let cli: Cli = cli::parse_args(None);
    let out = Output::new("hard-reset", cli.target.dir.format);
    out.finish(run(&cli))
}

fn run(cli: &Cli) -> Result<reset::Summary, ResetError> {
    // First, before anything else is validated: a reset is never run by a machine.
    let var = |name: &str| std::env::var(name).ok();
    reset::refuse_unless_manual(
        std::io::stdin().is_terminal(),
        std::io::stderr().is_terminal() || std::io::stdout().is_terminal(),
        var("CI").as_deref(),
        var("GITHUB_ACTIONS").as_deref(),
    )?;
    let (env, url) = cli.target.resolve()?;
    let admin = DbUrl::from_process_env(ADMIN_DATABASE_URL, ADMIN_DATABASE).map_err(Error::from)?;
    let dir = cli.target.dir.dir.clone();
    let found = discover(&dir).map_err(Error::Directory)?;
    for warning in &found.warnings {
        let _ = writeln!(std::io::stderr(), "hard-reset: warning: {warning}");
    }
    let backup = match (&cli.backup.backup, cli.backup.no_backup) {
        (Some(file), _) => Backup::To(file.clone()),
        (None, true) => Backup::Declined,
        (None, false) => Backup::NotAsked,
    };
    let request = Request::new(
        env,
        url,
        admin,
        (found.migrations, dir),
        cli.stop_command.clone(),
        backup,
    )?;
    reset::run(&request, &mut Terminal)
}
