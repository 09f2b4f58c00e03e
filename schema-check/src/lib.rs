//! `schema-check`: the deploy agent's read-only pre-start gate.
//!
//! Parses flags, calls [`common::check::check`] (the same function the runtime calls at
//! startup), prints the verdict and maps it to an exit code. No SQL here.

use std::path::PathBuf;
use std::time::Duration;

use std::time::Instant;

use clap::{CommandFactory, Parser};
use cli::{Output, TargetArgs};
use common::check::{CheckOptions, CheckReport, Expected};
use common::manifest::Document;
use common::migrations::discover_checksums;
use common::Error;

mod textfile;

const EXIT_CODES: &str = "\
Exit codes:
  0  compatible: every migration of this release is applied with a matching checksum
  1  incompatible: every reason is listed (missing table, pending, modified, a migration
     run in progress, each object changed outside migrations (drift from the schema
     snapshot), with --strict versions unknown to this release or no snapshot yet)
  2  invalid configuration or input (DATABASE_URL, environment, flags, directory)
  3  the database could not be reached within --timeout

Read-only: it never creates or alters anything and needs only CONNECT and SELECT on
public.dreichor_schema_migrations and public.dreichor_schema_snapshot.

Environment:
  DATABASE_URL   postgres://USER:PASSWORD@localhost[:PORT]/dreichor_<env> (never a flag)
  DREICHOR_ENV   dev or prod, when --env is not given";

/// Checks, read-only, that the environment's database has every migration of this release:
/// the gate a deployment passes before the runtime starts.
#[derive(Parser, Debug)]
#[command(name = "schema-check", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(flatten)]
    target: TargetArgs,

    /// Versions applied in the database but unknown to this release (the database is
    /// ahead, e.g. after a runtime rollback), and a database without a schema snapshot, make
    /// it incompatible instead of a warning.
    #[arg(long)]
    strict: bool,

    /// Bound on the whole check, connecting included, in seconds; exit 3 past it.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    timeout: f64,

    /// Check against a manifest written by `migrate manifest` instead of the SQL files of
    /// --dir (for hosts that do not have the files).
    #[arg(long, value_name = "FILE", conflicts_with = "dir")]
    manifest: Option<PathBuf>,

    /// Also write the result as metrics for node_exporter's textfile collector to PATH (a
    /// name ending in .prom; written to a temporary file and renamed), on every outcome.
    #[arg(long, value_name = "PATH")]
    textfile: Option<PathBuf>,
}

/// The command-line interface, for the man pages and shell completions generated from it.
pub fn command() -> clap::Command {
    Cli::command()
}

/// Runs the tool; the binary's `main`.
pub fn main() -> std::process::ExitCode {
    let cli: Cli = cli::parse_args(Some(serde_json::json!({"compatible": false})));
    // The deploy agent reads "compatible" from every JSON document, errors included.
    let out = Output::new("schema-check", cli.target.dir.format)
        .with_error_fields(serde_json::json!({"compatible": false}));
    let started = Instant::now();
    let result = run(&cli);
    let result = match &cli.textfile {
        Some(path) => with_textfile(&cli, path, result, started.elapsed()),
        None => result,
    };
    out.finish(result)
}

/// Writes the textfile for `result` (unless the path itself was refused). A textfile that
/// cannot be written turns a compatible verdict into an error: monitoring would go stale
/// without anyone being told. An incompatible or failed check keeps its own exit code.
fn with_textfile(
    cli: &Cli,
    path: &std::path::Path,
    result: Result<CheckReport, Error>,
    took: Duration,
) -> Result<CheckReport, Error> {
    if textfile::validate(path).is_err() {
        return result; // run() refused it before connecting
    }
    let database = cli
        .target
        .resolve_env()
        .map_or("unknown", |env| env.database());
    match textfile::write(path, database, &result, took) {
        Ok(()) => result,
        Err(error) if matches!(&result, Ok(report) if report.compatible) => Err(error),
        Err(error) => {
            eprintln!("schema-check: error: {error}");
            result
        }
    }
}

fn run(cli: &Cli) -> Result<CheckReport, Error> {
    if let Some(path) = &cli.textfile {
        textfile::validate(path)?;
    }
    let (env, url) = cli.target.resolve()?;
    if !(cli.timeout.is_finite() && cli.timeout > 0.0 && cli.timeout <= 3600.0) {
        return Err(Error::Refused(format!(
            "--timeout {} is out of range: give a number of seconds greater than 0 and at most 3600 (the default is 5)",
            cli.timeout
        )));
    }
    let options = CheckOptions {
        strict: cli.strict,
        timeout: Duration::from_secs_f64(cli.timeout),
        newest_applied_at: cli.textfile.is_some(),
    };
    // Connect first and read the migrations while the server answers.
    let in_flight = common::check::start(&url, env, &options)?;
    let expected = match &cli.manifest {
        Some(path) => Expected::from_document(Document::read(path)?),
        // Only checksums: hashed while read, never a whole file in memory.
        None => Expected {
            migrations: discover_checksums(&cli.target.dir.dir).map_err(Error::Directory)?,
        },
    };
    in_flight.finish(&expected)
}
