//! `migrate`: the operator's one-shot migration runner.
//!
//! Parses flags, calls `common`, prints, and maps the outcome to an exit code. The rules and
//! all SQL live in `common` (`runner`, `apply`); what only `migrate` runs lives here:
//! [`lint`] (offline), [`append_only`] (against git), [`manifest`] (writing one) and the
//! safety lint ([`safety`]). Canonical entry point for operators: `infra/db/migrate.sh`,
//! which builds and runs this binary.

pub mod append_only;
pub mod lint;
pub mod manifest;

use std::path::Path;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand};
use cli::{Output, TargetArgs};
use common::apply::Settings;
use common::migrations::{discover, Migration};
use common::runner::{self, Options};
use common::wording::counted;
use common::Error;
use manifest::Manifest;

mod new;
pub mod safety;
mod snapshot;

const EXIT_CODES: &str = "\
Exit codes:
  0  success: applied, or nothing to do
  1  a problem: drift, a failed migration, the migration lock not acquired
  2  invalid configuration or input (DATABASE_URL, environment, flags, directory); nothing touched
  3  the database could not be reached (refused, timed out, authentication failed)

Environment:
  DATABASE_URL   postgres://USER:PASSWORD@localhost[:PORT]/dreichor_<env> (never a flag)
  DREICHOR_ENV   dev or prod, when --env is not given";

/// Applies pending SQL migrations from infra/db/migrations to the environment's database,
/// each file atomically with its row in public.dreichor_schema_migrations.
#[derive(Parser, Debug)]
#[command(name = "migrate", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// `--env`, `--dir`, `--format`: global, so accepted before or after the subcommand.
    #[command(flatten)]
    target: TargetArgs,

    #[command(flatten)]
    apply: ApplyArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the state of every migration (applied, pending, modified, missing file, out of
    /// order); changes nothing. Exit 0 when the state could be read.
    Status,
    /// Check the migrations directory offline (no DATABASE_URL needed), and each statement
    /// for what it locks and what can take production down: exit 0 when the directory is
    /// clean (safety findings are warnings), 2 with every violation listed.
    Lint(LintArgs),
    /// Print the manifest of the directory (versions and checksums, JSON) for
    /// `schema-check --manifest` and for embedding in the runtime; offline.
    Manifest,
    /// Accept the live schema as the schema snapshot, audited (who, when, why, old and new
    /// digests): for renderings that change with nobody touching the schema, such as a
    /// PostgreSQL major upgrade. Shows every difference it accepts and asks for the database
    /// name; at a terminal only, never under CI or GitHub Actions.
    Snapshot(snapshot::SnapshotArgs),
    /// Create the next migration file, <next prefix>_NAME.sql, with the directory's prefix
    /// width (001 in an empty directory), and print its path; offline. Refuses a NAME
    /// outside [a-z0-9_] and a directory that `lint` does not pass.
    New(new::NewArgs),
}

/// The flags of applying (no subcommand). Not global: a subcommand given with one of them
/// is refused rather than run without it.
#[derive(Args, Debug, PartialEq)]
struct ApplyArgs {
    /// Print what would be applied, in order, and change nothing at all (not even the
    /// tracking table).
    #[arg(long)]
    dry_run: bool,

    /// How long to wait for the migration lock when another run holds it, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    lock_wait: u64,

    /// PostgreSQL lock_timeout for migration statements, in seconds (0: off). A file that
    /// times out waiting for a lock is rolled back and retried a few times with backoff.
    /// `... CONCURRENTLY` statements (no-transaction files) run without it: they wait for
    /// older transactions by design, and their lock blocks no reads or writes.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    lock_timeout: u64,

    /// PostgreSQL statement_timeout for migration statements, in seconds (0: off; default:
    /// the server's setting).
    #[arg(long, value_name = "SECS")]
    statement_timeout: Option<u64>,
}

#[derive(Args, Debug)]
struct LintArgs {
    /// Also enforce append-only against this git revision: every file there must be
    /// unchanged, every new file must sort after the last one there (CI: the base branch).
    /// Only the files new since REV are linted for safety (old files cannot change).
    #[arg(long, value_name = "REV")]
    since: Option<String>,

    /// Safety findings are errors (exit 2), as in CI. A finding is silenced only in the file,
    /// by `-- dreichor:allow <rule> <reason>` on the line directly above the statement.
    #[arg(long)]
    deny_warnings: bool,
}

/// The command-line interface, for the man pages and shell completions generated from it.
pub fn command() -> clap::Command {
    Cli::command()
}

/// Runs the tool; the binary's `main`.
pub fn main() -> std::process::ExitCode {
    let cli: Cli = cli::parse_args(None);
    let target = &cli.target;
    let out = Output::new("migrate", target.dir.format);
    if cli.command.is_some() && !apply_args_are_defaults(&cli.apply) {
        return out.finish(Err::<safety::report::Run, _>(Error::Refused(
            "--dry-run, --lock-wait, --lock-timeout and --statement-timeout apply only to migrate without a subcommand; drop them or the subcommand".into(),
        )));
    }
    match cli.command {
        None => out.finish(apply(target, &cli.apply, &out)),
        Some(Command::Status) => out.finish(status(target, &out)),
        Some(Command::Manifest) => {
            // The manifest is JSON whatever --format says, and an error goes to stderr only,
            // never into the file stdout is redirected to.
            let out = Output::new("migrate", cli::Format::Text);
            out.finish(
                discover(&target.dir.dir)
                    .map(|found| Manifest::of(&found.migrations))
                    .map_err(Error::Directory),
            )
        }
        Some(Command::Snapshot(args)) => out.finish(snapshot::run(target, &args, &out)),
        Some(Command::Lint(args)) => out.finish(Ok::<_, Error>(safety::report::lint(
            &target.dir.dir,
            args.since.as_deref(),
            args.deny_warnings,
        ))),
        Some(Command::New(args)) => out.finish(new::create(&target.dir.dir, &args.name)),
    }
}

/// Whether no apply flag was changed from its default (clap's `args_conflicts_with_subcommands`
/// would say it better, but it also refuses the global flags before a subcommand).
fn apply_args_are_defaults(args: &ApplyArgs) -> bool {
    Cli::try_parse_from(["migrate"]).is_ok_and(|defaults| defaults.apply == *args)
}

fn apply(
    target: &TargetArgs,
    args: &ApplyArgs,
    out: &Output,
) -> Result<safety::report::Run, Error> {
    let (env, url) = target.resolve()?;
    let files = read_dir(&target.dir.dir, out)?;
    let options = Options {
        dry_run: args.dry_run,
        lock_wait: Duration::from_secs(args.lock_wait),
        settings: Settings {
            lock_timeout: Duration::from_secs(args.lock_timeout),
            statement_timeout: args.statement_timeout.map(Duration::from_secs),
            ..Settings::default()
        },
        ..Options::default()
    };
    // Shown before the first line of progress: a run with nothing to do prints one line,
    // its summary.
    let mut intro = Some(format!(
        "migrate: {} ({} in {})",
        url.redacted(),
        counted(files.len(), "migration"),
        target.dir.dir.display()
    ));
    let summary = runner::migrate(&url, env, &files, &options, &mut |line| {
        if let Some(intro) = intro.take() {
            out.progress(&intro);
        }
        out.progress(line)
    })?;
    Ok(safety::report::Run::new(summary, &files))
}

fn status(target: &TargetArgs, out: &Output) -> Result<runner::Status, Error> {
    let (env, url) = target.resolve()?;
    let files = read_dir(&target.dir.dir, out)?;
    runner::status(&url, env, &files, Options::default().connect_timeout)
}

/// Discovers the directory; its warnings go to stderr.
fn read_dir(dir: &Path, out: &Output) -> Result<Vec<Migration>, Error> {
    let found = discover(dir).map_err(Error::Directory)?;
    for warning in &found.warnings {
        out.progress(&format!("migrate: warning: {warning}"));
    }
    Ok(found.migrations)
}
