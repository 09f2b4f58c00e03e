//! The compatibility check: the deploy agent's pre-start gate (`schema-check`) and the
//! runtime's startup check are this one function.
//!
//! Read-only by construction: the session is opened with `default_transaction_read_only=on`
//! and a `statement_timeout` as startup options (which take precedence over role and
//! database defaults, and which nothing in `DATABASE_URL` can override: the validator refuses
//! an `options` parameter), and the queries run inside `BEGIN READ ONLY`. It needs nothing
//! beyond CONNECT and SELECT on the tools' own tables (tracking and schema snapshot); a
//! missing table is reported, never created.
//!
//! Fast: it runs on every deployment, so the happy path is one connection and one round
//! trip: identity, lock holder, invalid indexes, the tracking rows and the schema snapshot's
//! fingerprint, recorded and live, travel in one simple-protocol message. A second message
//! follows only when the tracking table or the snapshot table is missing, the tracking table
//! has the two-column form, or the fingerprints differ ([`crate::snapshot`]: then the
//! rendered schema is compared, and diffed on a mismatch).
//!
//! The runtime may not have the SQL files. It checks against an [`Expected`] set: built from
//! the directory, or from a manifest (`migrate manifest` writes one), which the runtime can
//! embed at build time:
//!
//! ```no_run
//! use common::check::{check, CheckOptions, Expected};
//! use common::config::{DbUrl, Env};
//!
//! // In the runtime's build: `migrate manifest --dir infra/db/migrations > migrations.json`.
//! const MANIFEST: &str = r#"{"format":"dreichor-migrations/1","migrations":[
//!     {"version":"001_init","checksum":"0e2c7a..."}]}"#;
//!
//! let expected = Expected::from_manifest(MANIFEST).expect("manifest is valid");
//! let url = DbUrl::from_process_env("DATABASE_URL", Env::Dev.database()).expect("valid URL");
//! let report = check(&url, Env::Dev, &expected, &CheckOptions::default()).expect("reachable");
//! if !report.compatible {
//!     eprintln!("{report}");
//!     std::process::exit(1); // fail fast: never start against an incompatible schema
//! }
//! ```

use std::fmt;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::config::{DbUrl, Env};
use crate::connect;
use crate::error::{Error, ExitCode};
use crate::identity::{check_identity, identity_query};
use crate::lock::{self, Holder};
use crate::manifest::{Document, ManifestError};
use crate::migrations::Migration;
use crate::plan::{reconcile, Known, State};
use crate::report::Report;
use crate::rows::{result_sets, Row};
use crate::snapshot::store::{Comparison, Proof};
use crate::snapshot::{self, Drift};
use crate::tracking;

/// The application name of the check's session.
pub const APPLICATION: &str = "dreichor-schema-check";

/// The manifest format tag.
pub use crate::manifest::FORMAT as MANIFEST_FORMAT;

/// The migrations a release expects: versions and checksums.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expected {
    /// `(version, checksum)`, in version order.
    pub migrations: Vec<(String, String)>,
}

impl Expected {
    /// From discovered files.
    pub fn from_migrations(migrations: &[Migration]) -> Self {
        Expected {
            migrations: migrations
                .iter()
                .map(|m| (m.version.clone(), m.checksum.clone()))
                .collect(),
        }
    }

    /// From a manifest document (written by `migrate manifest`, see [`crate::manifest`]). A
    /// malformed manifest is invalid input (exit 2).
    pub fn from_manifest(text: &str) -> Result<Self, ManifestError> {
        Ok(Expected::from_document(Document::parse(text)?))
    }

    /// From a parsed manifest.
    pub fn from_document(doc: Document) -> Self {
        let mut migrations: Vec<(String, String)> = doc
            .migrations
            .into_iter()
            .map(|entry| (entry.version, entry.checksum))
            .collect();
        migrations.sort();
        Expected { migrations }
    }
}

/// How the check behaves.
#[derive(Debug, Clone, Copy)]
pub struct CheckOptions {
    /// Versions applied but unknown to this release make the schema incompatible.
    pub strict: bool,
    /// Bounds the whole check, connecting included.
    pub timeout: Duration,
    /// Also read when the newest migration was applied ([`CheckReport::newest_applied_at`],
    /// for `--textfile`): the gate alone skips the timestamps, which costs in a fresh backend.
    pub newest_applied_at: bool,
}

impl Default for CheckOptions {
    /// Not strict; 5 s.
    fn default() -> Self {
        CheckOptions {
            strict: false,
            timeout: Duration::from_secs(5),
            newest_applied_at: false,
        }
    }
}

/// The verdict and every reason for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// The verdict.
    pub compatible: bool,
    /// The database checked.
    pub database: String,
    /// How many migrations the release expects.
    pub expected: usize,
    /// The tracking table does not exist.
    pub table_missing: bool,
    /// Expected versions not applied (out-of-order ones included).
    pub pending: Vec<String>,
    /// Pending versions that sort before the latest applied one.
    pub out_of_order: Vec<String>,
    /// Applied versions whose file has changed.
    pub modified: Vec<String>,
    /// Applied versions recorded without a checksum (two-column tracking table).
    pub unverified: Vec<String>,
    /// Applied versions this release does not know: the database is ahead.
    pub unknown_applied: Vec<String>,
    /// The migration lock's holder: a migration run is in progress.
    pub migration_in_progress: Option<Holder>,
    /// Indexes left invalid by a failed `CREATE INDEX CONCURRENTLY`.
    pub invalid_indexes: Vec<String>,
    /// Why it is incompatible, one line each.
    pub reasons: Vec<String>,
    /// Things worth knowing that do not make it incompatible.
    pub warnings: Vec<String>,
    /// Whether `--strict` was in force.
    pub strict: bool,
    /// A schema snapshot was recorded (`false`: none yet, a warning unless strict).
    pub snapshot_recorded: bool,
    /// How "no drift" was proven: `fingerprint` (the cheap path), `digest`, or `equivalent`
    /// (every differing definition is an equivalent rendering, as after a restore); `None`
    /// with drift or without a snapshot.
    pub snapshot_proof: Option<Proof>,
    /// The snapshot is older than the newest applied migration (a run ended before
    /// recording it): the drift may be that run's own changes.
    pub snapshot_stale: bool,
    /// Every object that differs from the recorded snapshot: changed outside migrations
    /// (unless the snapshot is stale).
    pub drift: Vec<Drift>,
    /// How many versions the tracking table records.
    pub applied: usize,
    /// When the newest migration was applied, in seconds since the Unix epoch: only with
    /// [`CheckOptions::newest_applied_at`], and not for a tracking table in the two-column
    /// form (the next `migrate` run upgrades it).
    pub newest_applied_at: Option<i64>,
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.compatible {
            write!(
                f,
                "compatible: {} has {} of this release",
                self.database,
                match self.expected {
                    1 => "the 1 migration".to_string(),
                    n => format!("all {n} migrations"),
                }
            )?;
        } else {
            write!(
                f,
                "INCOMPATIBLE: {}: {} {}; do not start the runtime",
                self.database,
                self.reasons.len(),
                if self.reasons.len() == 1 {
                    "reason"
                } else {
                    "reasons"
                }
            )?;
        }
        for reason in &self.reasons {
            write!(f, "\n  - {reason}")?;
        }
        for warning in &self.warnings {
            write!(f, "\n  warning: {warning}")?;
        }
        Ok(())
    }
}

impl Report for CheckReport {
    fn text(&self) -> String {
        self.to_string()
    }

    fn json(&self) -> Value {
        json!({
            "compatible": self.compatible,
            "database": self.database,
            "expected": self.expected,
            "strict": self.strict,
            "table_missing": self.table_missing,
            "pending": self.pending,
            "out_of_order": self.out_of_order,
            "modified": self.modified,
            "unverified": self.unverified,
            "unknown_applied": self.unknown_applied,
            "migration_in_progress": self.migration_in_progress,
            "invalid_indexes": self.invalid_indexes,
            "snapshot_recorded": self.snapshot_recorded,
            "snapshot_proof": self.snapshot_proof,
            "drift": self.drift,
            "reasons": self.reasons,
            "warnings": self.warnings,
        })
    }

    fn exit_code(&self) -> ExitCode {
        if self.compatible {
            ExitCode::Success
        } else {
            ExitCode::Failed
        }
    }
}

/// `too_many_connections`, as [`crate::error::describe_pg`] writes it.
const TOO_MANY_CONNECTIONS: &str = "(SQLSTATE 53300)";

/// How often, and how far apart, the check tries again for a connection slot its own second
/// session held (0.5 s in all): a slot held by anyone else fails the check as before.
const SLOT_RETRIES: u32 = 25;
const SLOT_RETRY_PAUSE: Duration = Duration::from_millis(20);

/// SQLSTATEs that mean "the tracking table is missing or has another shape".
const UNDEFINED_TABLE: &str = "42P01";
const UNDEFINED_COLUMN: &str = "42703";

/// What the database said, before judging.
#[derive(Debug, Default)]
struct Observed {
    identity: Row,
    lock_held: bool,
    holder: Option<Holder>,
    invalid_indexes: Vec<String>,
    shape: Option<tracking::Shape>,
    applied: Vec<crate::plan::Applied>,
    /// The row of the snapshot's gate query; `None` without a snapshot.
    gate_row: Option<Row>,
    /// The live catalog fingerprint, when the snapshot has one to compare it with.
    live_fingerprint: Option<String>,
    /// The live schema against the snapshot.
    snapshot: Option<Comparison>,
    newest_applied_at: Option<i64>,
}

/// Checks the database of `url` against `expected`. Changes nothing. Unreachable within
/// `options.timeout` is [`Error::Unreachable`] (exit 3); an incompatible schema is a report
/// with `compatible: false` (exit 1), not an error.
pub fn check(
    url: &DbUrl,
    env: Env,
    expected: &Expected,
    options: &CheckOptions,
) -> Result<CheckReport, Error> {
    start(url, env, options)?.finish(expected)
}

/// A check whose database side is under way on its own thread: [`start`] it, read the
/// migrations meanwhile, then [`InFlight::finish`]. Connecting (a backend fork and a SCRAM
/// exchange) and hashing the files take about as long as each other, so overlapping them
/// takes a good part off the gate's wall time.
#[derive(Debug)]
pub struct InFlight {
    observed: connect::Bounded<Observed>,
    url: DbUrl,
    env: Env,
    strict: bool,
}

/// Starts the database side of a check; the whole check stays bounded by `options.timeout`.
pub fn start(url: &DbUrl, env: Env, options: &CheckOptions) -> Result<InFlight, Error> {
    let timeout = options.timeout;
    let newest = options.newest_applied_at;
    let observed = {
        let url = url.clone();
        connect::Bounded::start(timeout, &url.clone(), move || {
            observe(&url, env, timeout, newest)
        })?
    };
    Ok(InFlight {
        observed,
        url: url.clone(),
        env,
        strict: options.strict,
    })
}

impl InFlight {
    /// Waits for the database side (within the deadline) and judges it against `expected`.
    pub fn finish(self, expected: &Expected) -> Result<CheckReport, Error> {
        let observed = self.observed.wait()?;
        check_identity(&self.url, self.env, &observed.identity)?;
        Ok(judge(self.env, expected, observed, self.strict))
    }
}

/// A query cancelled by the session's `statement_timeout` (set to the check's timeout): the
/// database did not answer in time, which is exit 3 like any other timeout.
const QUERY_CANCELED: &str = "57014";

/// Maps an error of the check's queries: a timeout is "unreachable in time".
fn query_failed(url: &DbUrl, err: &postgres::Error) -> Error {
    if err.code().map(|c| c.code()) == Some(QUERY_CANCELED) {
        return Error::Unreachable {
            url: url.redacted(),
            reason: format!(
                "the check's query did not finish within the timeout: {}",
                crate::error::describe_pg(err)
            ),
        };
    }
    let mut error = connect::failed(url, "reading the schema state", err);
    // The gate needs SELECT on the tools' two tables and nothing else (SPEC.md, schema-check):
    // say so, with the statement that grants it.
    if err.code() == Some(&postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) {
        if let Error::Failed(message) = &mut error {
            message.push_str(&format!(
                "\n  the check needs SELECT on {tracking} and {snapshot}, nothing more; the schema's owner grants it: GRANT SELECT ON {tracking}, {snapshot} TO {role}",
                tracking = tracking::TABLE,
                snapshot = snapshot::store::TABLE,
                role = crate::quote::identifier(url.user()),
            ));
        }
    }
    error
}

/// Connects read-only and reads everything in (usually) one round trip.
fn observe(url: &DbUrl, env: Env, timeout: Duration, newest: bool) -> Result<Observed, Error> {
    // Startup options take precedence over role and database defaults. search_path is
    // pinned for the whole session: the gate's queries must mean the catalog's functions and
    // operators, not a look-alike a role put ahead of pg_catalog; the tracking table is
    // always named with its schema.
    // Not deferrable, whatever the role's defaults: a serializable, read-only, deferrable
    // transaction waits for a safe snapshot, that is until every serializable writer running
    // beside it ends (a migration's file, the runtime's work), and the gate would wait with it.
    let options = format!(
        "{} -c default_transaction_read_only=on -c default_transaction_deferrable=off -c statement_timeout={}",
        connect::TOOL_SESSION_OPTIONS,
        timeout.as_millis()
    );
    let deadline = Instant::now() + timeout;
    let mut second_half = read_second_half(url, &options, timeout, deadline);
    let connect = || {
        connect::connect_with(url, APPLICATION, timeout, |config| {
            config.options(&options);
        })
    };
    // The last connection slot (the role's CONNECTION LIMIT, or the server's) may go to the
    // second session: it ends within milliseconds (its backend a little after), then this
    // one takes the slot.
    let mut refused = 0;
    let mut client = loop {
        match connect() {
            Err(Error::Unreachable { reason, .. })
                if reason.contains(TOO_MANY_CONNECTIONS) && refused < SLOT_RETRIES =>
            {
                second_half.wait();
                refused += 1;
                std::thread::sleep(SLOT_RETRY_PAUSE);
            }
            other => break other?,
        }
    };
    // One statement for identity, "is the migration lock held" and invalid indexes: in a
    // fresh backend every statement and every catalog touched costs, and this is a third of
    // the three separate statements' server time. The holder's details are a second query,
    // only when there is a holder (a migration running: rare).
    let common = format!(
        "{}, ({}) AS lock_holders, \
         (SELECT pg_catalog.json_agg(indexrelid::regclass::text ORDER BY indexrelid) \
          FROM pg_catalog.pg_index WHERE NOT indisvalid) AS invalid_indexes;\n",
        identity_query(env),
        lock::holder_pids_query()
    );
    // The snapshot's digest and the live one ride along: a missing snapshot table is
    // handled like a missing tracking table, by the second message.
    let first = format!(
        "BEGIN READ ONLY;\n{common}{};\n{};\nCOMMIT;",
        if newest {
            tracking::SELECT_FOR_METRICS
        } else {
            tracking::SELECT_FOR_CHECK
        },
        snapshot::store::gate_query_first_half()
    );
    let mut observed = match client.simple_query(&first) {
        Ok(messages) => {
            let sets = result_sets(&messages);
            let mut observed = observed_from(&sets);
            observed.shape = Some(tracking::Shape::Current);
            observed.applied = tracking::applied_from_rows(sets.get(1).map_or(&[], Vec::as_slice));
            observed.gate_row = sets.get(2).and_then(|s| s.first()).cloned();
            if let Some(first) = observed
                .gate_row
                .as_ref()
                .filter(|row| row.text("recorded_fingerprint").is_some())
                .and_then(|row| row.text("live_fingerprint_first"))
            {
                let second = match second_half.wait() {
                    Some(second) => second,
                    // The second session could not read it: this one does.
                    None => second_half_here(&mut client).map_err(|e| query_failed(url, &e))?,
                };
                observed.live_fingerprint = Some(snapshot::fingerprint_of(first, &second));
            }
            if newest {
                // SELECT_FOR_METRICS puts the Unix time in the applied_at column.
                observed.newest_applied_at = observed
                    .applied
                    .iter()
                    .filter_map(|a| a.applied_at.as_deref()?.parse::<i64>().ok())
                    .max();
            }
            observed
        }
        Err(e)
            if matches!(
                e.code().map(|c| c.code()),
                Some(UNDEFINED_TABLE | UNDEFINED_COLUMN)
            ) =>
        {
            let _ = client.batch_execute("ROLLBACK");
            let second = format!(
                "BEGIN READ ONLY;\n{common}{};\nSELECT pg_catalog.to_regclass('{}') IS NOT NULL AS snapshot_table;\nCOMMIT;",
                tracking::SHAPE,
                snapshot::store::TABLE
            );
            let messages = client
                .simple_query(&second)
                .map_err(|e| query_failed(url, &e))?;
            let sets = result_sets(&messages);
            let mut observed = observed_from(&sets);
            let shape = sets
                .get(1)
                .and_then(|s| s.first())
                .map_or(tracking::Shape::Missing, tracking::shape_from_row);
            observed.applied =
                tracking::read(&mut client, shape).map_err(|e| query_failed(url, &e))?;
            observed.shape = Some(shape);
            let snapshot_table = sets
                .get(2)
                .and_then(|s| s.first())
                .is_some_and(|r| r.bool("snapshot_table"));
            if snapshot_table && shape != tracking::Shape::Missing {
                let gate = format!(
                    "BEGIN READ ONLY;\n{};\nCOMMIT;",
                    snapshot::store::gate_query()
                );
                let messages = client
                    .simple_query(&gate)
                    .map_err(|e| query_failed(url, &e))?;
                observed.gate_row = result_sets(&messages)
                    .first()
                    .and_then(|s| s.first())
                    .cloned();
                observed.live_fingerprint = observed
                    .gate_row
                    .as_ref()
                    .and_then(|row| row.text("live_fingerprint"))
                    .map(str::to_string);
            }
            observed
        }
        Err(e) => return Err(query_failed(url, &e)),
    };
    if observed.lock_held {
        observed.holder = lock::holder(&mut client).map_err(|e| query_failed(url, &e))?;
    }
    if observed.shape != Some(tracking::Shape::Missing) {
        // Further round trips only when the fingerprints differ (snapshot::store::finish).
        observed.snapshot = Some(
            snapshot::store::finish(
                &mut client,
                observed.gate_row.as_ref(),
                observed.live_fingerprint.as_deref(),
            )
            .map_err(|e| query_failed(url, &e))?,
        );
    }
    Ok(observed)
}

/// The second half of the live catalog fingerprint ([`snapshot::FINGERPRINT_SECOND`]), read
/// on a session of its own while the first session reads everything else: each new backend
/// pays a fixed cost for every catalog it reads for the first time, and the fingerprint
/// reads 25; two backends, each on its own core, take about 2.7 ms off the gate's 13 ms
/// (bench/, crates.io schema). Read-only and bounded like the first session.
///
/// Dropped, it waits for the session to end (as [`SecondHalf::wait`] does), so that the gate
/// does not exit with a session half-open, whatever path the check took.
struct SecondHalf {
    answer: std::sync::mpsc::Receiver<Option<String>>,
    /// What the session answered, once received (`Some(None)`: it could not read it).
    received: Option<Option<String>>,
    deadline: Instant,
}

impl SecondHalf {
    /// The half, if the second session read it in time; `None` when it could not
    /// (connection refused, too many connections, an error) or did not answer within
    /// [`SECOND_SESSION_GRACE`] (or the check's deadline), and the caller reads it itself:
    /// an optional session never fails or holds up the check.
    fn wait(&mut self) -> Option<String> {
        if self.received.is_none() {
            let left = self
                .deadline
                .saturating_duration_since(Instant::now())
                .min(SECOND_SESSION_GRACE);
            self.received = Some(self.answer.recv_timeout(left).ok().flatten());
        }
        self.received.clone().flatten()
    }
}

impl Drop for SecondHalf {
    fn drop(&mut self) {
        self.wait();
    }
}

/// How long the check waits for its second session beyond its own work: it takes about
/// 10 ms, so a second that does not answer within this has a problem the first does not.
const SECOND_SESSION_GRACE: Duration = Duration::from_secs(1);

/// Starts reading the second half of the fingerprint; see [`SecondHalf`].
fn read_second_half(
    url: &DbUrl,
    options: &str,
    timeout: Duration,
    deadline: Instant,
) -> SecondHalf {
    let (tx, rx) = std::sync::mpsc::channel();
    let (url, options) = (url.clone(), options.to_string());
    let _ = std::thread::Builder::new()
        .name("db-second".into())
        .spawn(move || {
            let half = connect::connect_with(&url, APPLICATION, timeout, |config| {
                config.options(&options);
            })
            .ok()
            .and_then(|mut client| second_half_here(&mut client).ok());
            let _ = tx.send(half);
        });
    SecondHalf {
        answer: rx,
        received: None,
        deadline,
    }
}

/// Reads the second half of the fingerprint on `client`.
fn second_half_here(client: &mut postgres::Client) -> Result<String, postgres::Error> {
    let messages = crate::pinned::run_pinned(client, &snapshot::store::gate_query_second_half())?;
    Ok(result_sets(&messages)
        .first()
        .and_then(|set| set.first())
        .and_then(|row| row.text("fingerprint_second"))
        .unwrap_or_default()
        .to_string())
}

/// Reads the first statement's row: the identity columns, then the lock holders' pids and
/// the invalid indexes as JSON arrays (NULL when there are none).
fn observed_from(sets: &[Vec<Row>]) -> Observed {
    let row = sets
        .first()
        .and_then(|s| s.first())
        .cloned()
        .unwrap_or_default();
    let json_list = |cell: Option<&str>| -> Vec<String> {
        cell.and_then(|text| serde_json::from_str::<Vec<Value>>(text).ok())
            .unwrap_or_default()
            .into_iter()
            .map(|v| match v {
                Value::String(s) => s,
                other => other.to_string(),
            })
            .collect()
    };
    let invalid_indexes = json_list(row.text("invalid_indexes"));
    let lock_held = !json_list(row.text("lock_holders")).is_empty();
    Observed {
        identity: row,
        lock_held,
        invalid_indexes,
        ..Observed::default()
    }
}

/// Up to ten versions, then how many more: a message stays readable when a whole history
/// is unknown.
fn abbreviated(versions: &[String]) -> String {
    const SHOWN: usize = 10;
    let mut text = versions
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if versions.len() > SHOWN {
        text.push_str(&format!(" and {} more", versions.len() - SHOWN));
    }
    text
}

/// The verdict: pure, from what was observed.
fn judge(env: Env, expected: &Expected, observed: Observed, strict: bool) -> CheckReport {
    let renderings = match &observed.snapshot {
        Some(Comparison::Same { equivalent, .. }) => equivalent.len(),
        _ => 0,
    };
    let mut report = CheckReport {
        database: env.database().to_string(),
        expected: expected.migrations.len(),
        strict,
        invalid_indexes: observed.invalid_indexes,
        migration_in_progress: observed.holder,
        snapshot_recorded: !matches!(observed.snapshot, None | Some(Comparison::NoSnapshot)),
        snapshot_proof: match &observed.snapshot {
            Some(Comparison::Same { proof, .. }) => Some(*proof),
            _ => None,
        },
        snapshot_stale: matches!(
            observed.snapshot,
            Some(Comparison::Drifted { stale: true, .. })
        ),
        drift: match observed.snapshot {
            Some(Comparison::Drifted { drift, .. }) => drift,
            _ => Vec::new(),
        },
        applied: observed.applied.len(),
        newest_applied_at: observed.newest_applied_at,
        ..CheckReport::default()
    };
    if observed.shape == Some(tracking::Shape::Missing) {
        report.table_missing = true;
        report.reasons.push(format!(
            "the tracking table {} does not exist: no migration was ever applied to {}; run infra/db/migrate.sh --env {env}",
            tracking::TABLE,
            env.database()
        ));
    }
    if observed.shape == Some(tracking::Shape::TwoColumn) {
        report.warnings.push(format!(
            "the tracking table {} has the two-column form; the next migrate run upgrades it",
            tracking::TABLE
        ));
    }
    let known = expected.migrations.iter().map(|(v, c)| Known {
        version: v,
        checksum: c,
    });
    for entry in reconcile(&observed.applied, known) {
        match entry.state {
            State::Applied => {}
            State::Pending => report.pending.push(entry.version),
            State::OutOfOrder { .. } => {
                report.out_of_order.push(entry.version.clone());
                report.pending.push(entry.version);
            }
            State::Modified { .. } => report.modified.push(entry.version),
            State::Unverified => report.unverified.push(entry.version),
            State::Missing => report.unknown_applied.push(entry.version),
            State::NotAVersion => report.reasons.push(format!(
                "the tracking table has a row for {:?}, which is not a migration version (<digits>_<name>): no file can match it, so it was not written by migrate; remove it: {}",
                entry.version,
                crate::plan::remove_row(&entry.version)
            )),
        }
    }
    if !report.table_missing {
        for v in &report.pending {
            report.reasons.push(if report.out_of_order.contains(v) {
                format!(
                    "{v} is not applied but sorts before versions that are: the migrations directory broke the append-only rule, and migrate refuses such a file; rename it to sort after the latest applied version, then run infra/db/migrate.sh --env {env}"
                )
            } else {
                format!("{v} is pending: run infra/db/migrate.sh --env {env} before deploying")
            });
        }
    } else if !report.pending.is_empty() {
        report.reasons.push(match report.pending.len() {
            1 => "1 migration is pending".to_string(),
            n => format!("{n} migrations are pending"),
        });
    }
    for v in &report.modified {
        report.reasons.push(format!(
            "{v} was applied with another checksum: the release's {v}.sql differs from what ran; migration files must never be edited"
        ));
    }
    let two_column = observed.shape == Some(tracking::Shape::TwoColumn);
    for v in &report.unverified {
        let checksum = expected
            .migrations
            .iter()
            .find(|(version, _)| version == v)
            .map_or("", |(_, c)| c.as_str());
        report.reasons.push(if two_column {
            format!(
                "{v} is recorded without a checksum (the tracking table has the two-column form): run infra/db/migrate.sh --env {env}, which upgrades the table and records the checksum of the release's {v}.sql"
            )
        } else {
            format!(
                "{v} is recorded without a checksum (a row written by hand or by another tool): run infra/db/migrate.sh --env {env}, which records the checksum of the release's {v}.sql for it, or record it yourself: UPDATE {} SET checksum = {} WHERE version = {};",
                tracking::TABLE,
                crate::connect::literal(checksum),
                crate::connect::literal(v)
            )
        });
    }
    if !report.unknown_applied.is_empty() {
        let what = format!(
            "the database is ahead of this release: applied but unknown here: {} (after a runtime rollback this is expected)",
            abbreviated(&report.unknown_applied)
        );
        if strict {
            report
                .reasons
                .push(format!("{what}; --strict makes it incompatible"));
        } else {
            report.warnings.push(what);
        }
    }
    if let Some(holder) = &report.migration_in_progress {
        report.reasons.push(format!(
            "a migration run is in progress (the migration lock is held by {holder}); wait for it to finish"
        ));
    }
    if report.snapshot_stale {
        // A run applied files and ended before recording the snapshot: the differences may
        // be its files' own changes, so none is said to be made outside migrations.
        for drift in &report.drift {
            report.reasons.push(format!(
                "drift: {} since the snapshot",
                drift.since_snapshot()
            ));
        }
        report.reasons.push(format!(
            "the schema snapshot of {} is older than the newest applied migration: a migrate run applied files and ended before recording it, so the differences above may be those files' own changes, hand changes, or both. Run infra/db/migrate.sh --env {env} again: it records the snapshot (its reason names the differences it includes); revert any hand change first (docs/operations.md, 3.5 \"Schema drift\")",
            env.database()
        ));
    } else {
        for drift in &report.drift {
            report.reasons.push(format!("drift: {drift}"));
        }
    }
    if !report.drift.is_empty() && !report.snapshot_stale {
        report.reasons.push(format!(
            "the schema of {} was changed outside migrations: revert the change, or make it official with a new migration; a change nobody made (a PostgreSQL or extension upgrade) is accepted with `migrate snapshot --reason TEXT` (docs/operations.md, 3.5 \"Schema drift\")",
            env.database()
        ));
    }
    if renderings > 0 {
        let one = renderings == 1;
        report.warnings.push(format!(
            "{renderings} definition{} in {} render{} differently from the snapshot but mean{} the same (a dump/restore parses them again): no drift. The next migrate run that applies a file, or `migrate snapshot --reason TEXT`, records them, and the check is fast again",
            if one { "" } else { "s" },
            env.database(),
            if one { "s" } else { "" },
            if one { "s" } else { "" },
        ));
    }
    if !report.snapshot_recorded && !report.table_missing {
        let what = format!(
            "no schema snapshot is recorded in {} yet, so drift cannot be checked; the next migrate run records one",
            env.database()
        );
        if strict {
            report
                .reasons
                .push(format!("{what}; --strict makes it incompatible"));
        } else {
            report.warnings.push(what);
        }
    }
    for index in &report.invalid_indexes {
        report.warnings.push(format!(
            "index {index} is INVALID (left by a failed CREATE INDEX CONCURRENTLY?): drop it with DROP INDEX CONCURRENTLY {index}"
        ));
    }
    report.compatible = report.reasons.is_empty();
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Applied;

    fn expected(versions: &[(&str, &str)]) -> Expected {
        Expected {
            migrations: versions
                .iter()
                .map(|(v, c)| (v.to_string(), c.to_string()))
                .collect(),
        }
    }

    fn observed(rows: &[(&str, Option<&str>)]) -> Observed {
        Observed {
            shape: Some(tracking::Shape::Current),
            applied: rows
                .iter()
                .map(|(v, c)| Applied {
                    version: v.to_string(),
                    checksum: c.map(str::to_string),
                    applied_at: None,
                })
                .collect(),
            snapshot: Some(Comparison::Same {
                digest: "d".into(),
                proof: Proof::Fingerprint,
                equivalent: Vec::new(),
            }),
            ..Observed::default()
        }
    }

    #[test]
    fn no_snapshot_is_a_warning_unless_strict() {
        let o = || Observed {
            snapshot: Some(Comparison::NoSnapshot),
            ..observed(&[("001_a", Some("x"))])
        };
        let e = expected(&[("001_a", "x")]);
        let lenient = judge(Env::Dev, &e, o(), false);
        assert!(lenient.compatible, "{lenient}");
        assert!(
            lenient.warnings[0].contains("no schema snapshot"),
            "{lenient}"
        );
        assert!(!judge(Env::Dev, &e, o(), true).compatible);
    }

    #[test]
    fn drift_is_incompatible_and_each_object_named() {
        let recorded =
            snapshot::capture::parse_entries(r#"[["index","","public.i","CREATE INDEX i"]]"#)
                .unwrap();
        let o = Observed {
            snapshot: Some(Comparison::Drifted {
                recorded: "a".into(),
                live: "b".into(),
                drift: snapshot::diff(&recorded, &[]),
                stale: false,
            }),
            ..observed(&[("001_a", Some("x"))])
        };
        let r = judge(Env::Dev, &expected(&[("001_a", "x")]), o, false);
        assert!(!r.compatible);
        assert_eq!(
            r.reasons[0],
            "drift: index public.i: dropped outside migrations"
        );
        assert_eq!(r.json()["drift"][0]["change"], "dropped");
    }

    #[test]
    fn all_applied_is_compatible() {
        let r = judge(
            Env::Dev,
            &expected(&[("001_a", "x")]),
            observed(&[("001_a", Some("x"))]),
            false,
        );
        assert!(r.compatible, "{r}");
        assert_eq!(r.exit_code(), ExitCode::Success);
    }

    #[test]
    fn pending_and_modified_are_each_a_reason() {
        let r = judge(
            Env::Dev,
            &expected(&[("001_a", "new"), ("002_b", "y"), ("003_c", "z")]),
            observed(&[("001_a", Some("old"))]),
            false,
        );
        assert!(!r.compatible);
        assert_eq!(r.pending, ["002_b", "003_c"]);
        assert_eq!(r.modified, ["001_a"]);
        assert_eq!(r.reasons.len(), 3, "{r}");
        assert_eq!(r.exit_code(), ExitCode::Failed);
    }

    #[test]
    fn a_database_ahead_is_compatible_with_a_warning_unless_strict() {
        let e = expected(&[("001_a", "x")]);
        let o = || observed(&[("001_a", Some("x")), ("002_b", Some("y"))]);
        let lenient = judge(Env::Dev, &e, o(), false);
        assert!(lenient.compatible);
        assert_eq!(lenient.unknown_applied, ["002_b"]);
        assert_eq!(lenient.warnings.len(), 1);
        let strict = judge(Env::Dev, &e, o(), true);
        assert!(!strict.compatible);
    }

    #[test]
    fn a_missing_table_is_incompatible() {
        let mut o = observed(&[]);
        o.shape = Some(tracking::Shape::Missing);
        let r = judge(Env::Prod, &expected(&[("001_a", "x")]), o, false);
        assert!(!r.compatible);
        assert!(r.table_missing);
        assert!(r.reasons[0].contains("does not exist"), "{r}");
    }

    #[test]
    fn a_running_migration_is_incompatible() {
        let mut o = observed(&[("001_a", Some("x"))]);
        o.holder = Some(lock::holder_from_row(&Row::new(
            &["pid", "application", "role", "client", "since", "state"],
            &[Some("7"), None, None, None, None, None],
        )));
        let r = judge(Env::Dev, &expected(&[("001_a", "x")]), o, false);
        assert!(!r.compatible);
        assert!(r.reasons[0].contains("in progress"), "{r}");
    }

    #[test]
    fn invalid_indexes_are_warnings() {
        let mut o = observed(&[("001_a", Some("x"))]);
        o.invalid_indexes = vec!["public.i".into()];
        let r = judge(Env::Dev, &expected(&[("001_a", "x")]), o, false);
        assert!(r.compatible);
        assert!(r.warnings[0].contains("public.i"));
    }

    #[test]
    fn json_has_the_documented_keys() {
        let r = judge(Env::Dev, &expected(&[]), observed(&[]), false);
        let doc = r.json();
        for key in ["compatible", "pending", "modified", "unknown_applied"] {
            assert!(doc.get(key).is_some(), "{key}");
        }
    }

    #[test]
    fn manifests_round_trip() {
        let e = expected(&[("001_a", "x"), ("002_b", "y")]);
        let doc = Document::new(e.migrations.iter().map(|(v, c)| (v.as_str(), c.as_str())));
        let text = serde_json::to_string(&doc).unwrap();
        assert_eq!(Expected::from_manifest(&text).unwrap(), e);
        assert!(Expected::from_manifest("{}").is_err());
        assert!(Expected::from_manifest("not json").is_err());
    }
}
