//! Flags and output shared by the three tools, so that `--env`, `--dir` and `--format` are
//! spelled, documented and handled the same everywhere.
//!
//! A crate of its own so that `common`, which the runtime embeds for its startup check, does
//! not depend on `clap`.
//!
//! Output rules (SPEC.md): with `--format json` exactly one JSON document goes to stdout, on
//! success and on failure alike, and everything else (progress, warnings) goes to stderr. With
//! `--format text` the result goes to stdout and progress and errors to stderr.

use std::io::Write;
use std::path::PathBuf;

use serde_json::{json, Value};

use common::config::{self, DbUrl, Env};
use common::error::{Error, ExitCode};
pub use common::report::{human_duration, Failure, Report};

/// The variable that names the migrations directory when `--dir` is not given: what an
/// installed tool run outside a checkout (a systemd unit, a deploy agent) uses.
pub const MIGRATIONS_DIR_VAR: &str = "DREICHOR_MIGRATIONS_DIR";

/// The migrations directory when neither `--dir` nor [`MIGRATIONS_DIR_VAR`] is given,
/// relative to the current directory: right at the top of a checkout.
pub const DEFAULT_MIGRATIONS_DIR: &str = "infra/db/migrations";

/// The output format.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// Human-readable lines.
    #[default]
    Text,
    /// Exactly one JSON document on stdout; progress and messages on stderr.
    Json,
}

/// `--dir` and `--format`. Global: accepted before or after a subcommand (SPEC.md), as users
/// of git or cargo expect.
#[derive(clap::Args, Debug, Clone)]
pub struct DirArgs {
    /// The migrations directory (default: infra/db/migrations, relative to the current
    /// directory). An installed tool run outside a checkout needs this or
    /// DREICHOR_MIGRATIONS_DIR.
    #[arg(
        long,
        value_name = "PATH",
        env = MIGRATIONS_DIR_VAR,
        default_value = DEFAULT_MIGRATIONS_DIR,
        global = true
    )]
    pub dir: PathBuf,

    /// Output format: `text`, or `json` (exactly one JSON document on stdout; progress and
    /// messages on stderr).
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = Format::Text, global = true)]
    pub format: Format,
}

/// `--env`, `--dir` and `--format`: what every tool that connects takes.
#[derive(clap::Args, Debug, Clone)]
pub struct TargetArgs {
    /// The environment: `dev` (database dreichor_dev) or `prod` (dreichor_prod). Required,
    /// here or in DREICHOR_ENV; both given and different is an error.
    #[arg(long, value_name = "ENV", global = true)]
    pub env: Option<String>,

    #[command(flatten)]
    pub dir: DirArgs,
}

impl TargetArgs {
    /// The environment from `--env` and `DREICHOR_ENV`.
    pub fn resolve_env(&self) -> Result<Env, Error> {
        // A DREICHOR_ENV that is not Unicode is refused, not taken for unset.
        Ok(config::resolve_env_from_process(self.env.as_deref())?)
    }

    /// The environment and the validated `DATABASE_URL`, before any connection.
    pub fn resolve(&self) -> Result<(Env, DbUrl), Error> {
        let env = self.resolve_env()?;
        let url = DbUrl::from_process_env("DATABASE_URL", env.database())?;
        Ok((env, url))
    }
}

/// Where a tool writes: progress to stderr, the result to stdout.
#[derive(Debug, Clone)]
pub struct Output {
    tool: &'static str,
    format: Format,
    error_fields: Option<Value>,
}

impl Output {
    /// An output for `tool` (used as the prefix of error lines).
    pub fn new(tool: &'static str, format: Format) -> Self {
        Output {
            tool,
            format,
            error_fields: None,
        }
    }

    /// Fields added to the JSON document printed on error (`schema-check` adds
    /// `"compatible": false`, so that its consumer reads one key whatever happened).
    pub fn with_error_fields(mut self, fields: Value) -> Self {
        self.error_fields = Some(fields);
        self
    }

    /// The format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// A progress or warning line: always stderr, so that stdout stays one JSON document.
    /// A closed stderr (the operator's terminal went away) is not a reason to stop halfway.
    pub fn progress(&self, line: &str) {
        let _ = writeln!(std::io::stderr(), "{line}");
    }

    /// Prints the result or the error and returns the exit code.
    pub fn finish<R: Report, E: Failure>(&self, result: Result<R, E>) -> std::process::ExitCode {
        let code = match result {
            Ok(report) => {
                match self.format {
                    Format::Text => {
                        let text = report.text();
                        if !text.is_empty() {
                            let _ = writeln!(std::io::stdout(), "{text}");
                        }
                    }
                    Format::Json => {
                        let _ = writeln!(std::io::stdout(), "{}", report.json());
                    }
                }
                report.exit_code()
            }
            Err(error) => {
                let code = error.exit_code();
                let _ = writeln!(std::io::stderr(), "{}: error: {error}", self.tool);
                if self.format == Format::Json {
                    let mut doc =
                        json!({"ok": false, "exit_code": code.code(), "error": error.to_string()});
                    if let Some(map) = doc.as_object_mut() {
                        map.extend(error.fields());
                        if let Some(Value::Object(extra)) = &self.error_fields {
                            map.extend(extra.clone());
                        }
                    }
                    let _ = writeln!(std::io::stdout(), "{doc}");
                }
                code
            }
        };
        code.into()
    }
}

/// Parses the command line like `P::parse()`, and keeps the JSON promise on a usage error
/// too: with `--format json`, clap's own error (exit 2, on stderr) is accompanied by the
/// usual error document on stdout, with `error_fields` added (`schema-check`'s
/// `"compatible": false`). Clap's message is prefixed with the tool's name, as every other
/// message is. `--help` and `--version` behave as always.
pub fn parse_args<P: clap::Parser>(error_fields: Option<Value>) -> P {
    match P::try_parse() {
        Ok(parsed) => parsed,
        Err(error) if !error.use_stderr() => error.exit(),
        Err(error) => {
            // Like every other message of the tool, clap's starts with the tool's name.
            let tool = P::command().get_name().to_string();
            let rendered = error.render().to_string();
            let _ = write!(std::io::stderr(), "{tool}: {rendered}");
            if wants_json(std::env::args_os().skip(1)) {
                let mut doc = json!({
                    "ok": false,
                    "exit_code": ExitCode::Invalid.code(),
                    "error": error.render().to_string().trim_end(),
                    "kind": "usage",
                });
                if let (Some(Value::Object(extra)), Some(map)) = (error_fields, doc.as_object_mut())
                {
                    map.extend(extra);
                }
                let _ = writeln!(std::io::stdout(), "{doc}");
            }
            std::process::exit(error.exit_code())
        }
    }
}

/// Whether the arguments ask for JSON output (`--format json` or `--format=json`).
fn wants_json(args: impl Iterator<Item = std::ffi::OsString>) -> bool {
    let args: Vec<String> = args.map(|a| a.to_string_lossy().into_owned()).collect();
    args.iter().any(|a| a == "--format=json")
        || args
            .windows(2)
            .any(|pair| pair[0] == "--format" && pair[1] == "json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_wanted_in_both_spellings() {
        let args = |list: &[&str]| {
            list.iter()
                .map(std::ffi::OsString::from)
                .collect::<Vec<_>>()
        };
        assert!(wants_json(
            args(&["--format", "json", "--bogus"]).into_iter()
        ));
        assert!(wants_json(args(&["--bogus", "--format=json"]).into_iter()));
        assert!(!wants_json(args(&["--format", "text"]).into_iter()));
        assert!(!wants_json(args(&["json"]).into_iter()));
    }
}
