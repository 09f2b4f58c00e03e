//! `schema-check`: the deploy agent's read-only pre-start gate.
//!
//! Parses flags, calls [`common::check::check`] (the same function the runtime calls at
//! startup), prints the verdict and maps it to an exit code. No SQL here.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use cli::{Output, TargetArgs};
use common::check::{CheckOptions, CheckReport, Expected};
use common::manifest::Document;
use common::migrations::discover_checksums;
use common::Error;

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
}

/// Runs the tool; the binary's `main`.
pub fn main() -> std::process::ExitCode {
    let cli: Cli = cli::parse_args(Some(serde_json::json!({"compatible": false})));
    // The deploy agent reads "compatible" from every JSON document, errors included.
    let out = Output::new("schema-check", cli.target.dir.format)
        .with_error_fields(serde_json::json!({"compatible": false}));
    out.finish(run(&cli))
}

fn run(cli: &Cli) -> Result<CheckReport, Error> {
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
