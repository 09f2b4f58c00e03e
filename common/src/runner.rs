//! A whole `migrate` run, its dry run, and `status`: the engine `migrate` and `hard-reset`
//! share.
//!
//! The order is SPEC.md's: refuse inside GitHub Actions, connect and check the identity, take
//! the migration lock, create or upgrade the tracking table, refuse on drift, apply the
//! pending files in order (each atomically with its row, see [`crate::apply`]), release.
//! The dry run and `status` only read, inside a read-only transaction, and take no lock.

use std::time::Duration;

use postgres::Client;
use serde_json::{json, Value};

use crate::apply::{self, Settings};
use crate::cancel::CancelOnSignal;
use crate::config::{DbUrl, Env};
use crate::connect::{self, failed};
use crate::error::Error;
use crate::lock::{self, Acquired};
use crate::migrations::Migration;
use crate::plan::{self, reconcile, Entry, Known, State};
use crate::report::{human_duration, Report};
use crate::run_error::{Interrupted, LockNotAcquired, MigrationFailed};
use crate::snapshot::store::{self as snapshots, Comparison, Proof, Second};
use crate::snapshot::Drift;
use crate::tracking::{self, Shape};
use crate::wording::counted;

/// The application name the runner's sessions show in `pg_stat_activity`.
pub const APPLICATION: &str = "dreichor-migrate";

/// How a run behaves.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Only say what would be applied; change nothing.
    pub dry_run: bool,
    /// How long to poll for the migration lock.
    pub lock_wait: Duration,
    /// Timeouts and retries of the statements.
    pub settings: Settings,
    /// Bounds connecting.
    pub connect_timeout: Duration,
    /// Ctrl-C or SIGTERM cancels the running file ([`crate::cancel`]). Off for a caller
    /// that handles the signals itself: `hard-reset` holds them until the database is
    /// migrated again, and a cancelled file there would leave it half-migrated.
    pub cancel_on_signal: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            dry_run: false,
            lock_wait: Duration::from_secs(60),
            settings: Settings::default(),
            connect_timeout: Duration::from_secs(10),
            cancel_on_signal: true,
        }
    }
}

/// One file applied by this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedFile {
    /// The version.
    pub version: String,
    /// How long it took.
    pub duration: Duration,
}

/// What a run did (or, dry, would do).
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// The database.
    pub database: String,
    /// A dry run.
    pub dry_run: bool,
    /// Applied by this run (dry: would be applied, with zero durations).
    pub applied: Vec<AppliedFile>,
    /// Applied before this run.
    pub already_applied: usize,
    /// The tracking table was created (dry: would be).
    pub table_created: bool,
    /// A two-column table was upgraded: the versions whose checksum was recorded.
    pub upgraded: Option<Vec<String>>,
    /// Drift from the schema snapshot found before applying (warned about, then applied).
    pub drift_before: Vec<Drift>,
    /// The digest of the schema snapshot this run recorded, if it recorded one.
    pub snapshot: Option<String>,
}

impl Report for Summary {
    fn text(&self) -> String {
        if self.dry_run {
            let mut out = format!(
                "dry run on {}: {} would be applied, {} already applied; nothing was changed",
                self.database,
                self.applied.len(),
                self.already_applied
            );
            for a in &self.applied {
                out.push_str(&format!("\n  would apply {}", a.version));
            }
            return out;
        }
        if self.applied.is_empty() {
            // The one line of a run with nothing to do.
            return format!(
                "{}: nothing to apply, {} already applied",
                self.database,
                counted(self.already_applied, "migration")
            );
        }
        format!(
            "{}: applied {}, already applied {}",
            self.database,
            self.applied.len(),
            self.already_applied
        )
    }

    fn json(&self) -> Value {
        json!({
            "ok": true,
            "database": self.database,
            "dry_run": self.dry_run,
            "applied": self.applied.iter().map(|a| json!({
                "version": a.version,
                "duration_ms": a.duration.as_millis() as u64,
            })).collect::<Vec<_>>(),
            "already_applied": self.already_applied,
            "table_created": self.table_created,
            "table_upgraded": self.upgraded,
            "drift_before": self.drift_before,
            "snapshot_digest": self.snapshot,
        })
    }
}

/// Refuses inside GitHub Actions: migrations run with operator intent, never in CI
/// workflows (design document, "When Migrations Run").
pub fn refuse_in_github_actions() -> Result<(), Error> {
    if std::env::var("GITHUB_ACTIONS").as_deref() == Ok("true") {
        return Err(Error::Refused(
            "GITHUB_ACTIONS=true: migrations never run inside GitHub Actions; an operator runs infra/db/migrate.sh on the host".into(),
        ));
    }
    Ok(())
}

/// Runs `migrate`: applies every pending file of `files` (in order) to the database of `url`.
/// `progress` receives one line per step, for stderr.
pub fn migrate(
    url: &DbUrl,
    env: Env,
    files: &[Migration],
    options: &Options,
    progress: &mut dyn FnMut(&str),
) -> Result<Summary, Error> {
    refuse_in_github_actions()?;
    let mut client = connect::open_with(
        url,
        env,
        APPLICATION,
        options.connect_timeout,
        &options.settings.startup_options(),
    )?;
    crate::role::require_schema_owner(&mut client, url, env, "migrate")?;
    if options.dry_run {
        return dry_run(&mut client, url, env, files);
    }
    let mut hold = take_lock(url, env, options, progress)?;
    let (ensured, lz4_pending) = ensure_table(&mut client, url, files, progress)?;
    let before = snapshot_before(&mut client, url)?;
    let mut applied = tracking::read(&mut client, Shape::Current)
        .map_err(|e| failed(url, "reading the tracking table", &e))?;
    record_missing_checksums(&mut client, url, &mut applied, files, progress)?;
    let plan = plan::plan(&applied, files).map_err(Error::Drift)?;
    warn_drift_before(&before, plan.pending.len(), progress);
    let mut summary = Summary {
        database: env.database().to_string(),
        already_applied: plan.already_applied,
        table_created: ensured.created,
        upgraded: ensured.upgraded,
        drift_before: before.drift.clone(),
        ..Summary::default()
    };
    let mut run = Run {
        url,
        env,
        options,
        client: &mut client,
        hold: &mut hold,
        summary: &mut summary,
    };
    // A run that applies files records a snapshot after them: the lock's session plans its
    // half meanwhile, on the server's other core.
    let prepared = !plan.pending.is_empty();
    if prepared {
        run.hold.lend(snapshots::prepare);
    }
    let outcome = run.apply_pending(&plan.pending, progress);
    // After a failure too: what the applied files made is the migrations' schema, so the gate
    // reports the pending file, not their objects, as the problem. Only under the lock.
    if !summary.applied.is_empty() || (before.records_anyway() && outcome.is_ok()) {
        if !client.is_closed() && hold.verify().is_ok() {
            if lz4_pending {
                snapshots::use_lz4(&mut client);
            }
            match record_snapshot(
                &mut client,
                Second {
                    session: hold.session_for_reading(),
                    prepared,
                },
                url,
                &summary,
                &before,
                progress,
            ) {
                Ok(digest) => summary.snapshot = Some(digest),
                Err(e) if outcome.is_err() => progress(&format!("warning: {e}")),
                Err(e) => return Err(e),
            }
        } else {
            progress("warning: the migration lock or the connection was lost, so the schema snapshot was not recorded; run migrate again, which records it");
        }
    } else if outcome.is_ok() && before.proof == Some(Proof::Digest) && hold.verify().is_ok() {
        refresh_fingerprint(&mut client, progress);
    }
    outcome?;
    hold.release();
    Ok(summary)
}

/// Takes the migration lock in a session of its own that never runs a line of a migration
/// file, so that no file can release it (see [`crate::lock`]); pinned like every tool session.
fn take_lock(
    url: &DbUrl,
    env: Env,
    options: &Options,
    progress: &mut dyn FnMut(&str),
) -> Result<lock::Hold, Error> {
    let lock_session = connect::open(url, env, lock::APPLICATION, options.connect_timeout)?;
    let acquired = lock::acquire(lock_session, options.lock_wait, |holder| {
        let who = holder.map_or("an unknown session".to_string(), |h| h.to_string());
        progress(&format!(
            "waiting up to {} for the migration lock, held by {who}",
            human_duration(options.lock_wait)
        ));
    })
    .map_err(|e| failed(url, "taking the migration lock", &e))?;
    match acquired {
        Acquired::Yes(mut hold) => {
            let running = hold
                .wait_for_orphans(APPLICATION, options.lock_wait, |pids| {
                    progress(&format!(
                        "waiting up to {} for session(s) {pids:?} of an earlier migrate run (killed, its lock gone with it) to finish the file they are running",
                        human_duration(options.lock_wait)
                    ));
                })
                .map_err(|e| failed(url, "looking for an earlier run's session", &e))?;
            if running.is_empty() {
                return Ok(hold);
            }
            Err(Error::Failed(format!(
                "session(s) {running:?} of an earlier migrate run on {} are still running a migration file after {} (the run was killed and its lock went with it); nothing was applied. Wait for them, or end them with SELECT pg_terminate_backend(pid) (a transactional file is rolled back), then run migrate again",
                env.database(),
                human_duration(options.lock_wait)
            )))
        }
        Acquired::No(holder) => Err(Error::LockNotAcquired(Box::new(LockNotAcquired {
            database: env.database().to_string(),
            waited: options.lock_wait,
            holder,
        }))),
    }
}

/// Creates or upgrades the tracking table, keeps the tools' tables read-only for other roles,
/// and says what it did; with whether the snapshot table's entries column waits for lz4
/// ([`snapshots::use_lz4`], before a snapshot is recorded).
fn ensure_table(
    client: &mut Client,
    url: &DbUrl,
    files: &[Migration],
    progress: &mut dyn FnMut(&str),
) -> Result<(tracking::Ensured, bool), Error> {
    let ensured = tracking::ensure(client, files).map_err(|e| {
        let mut error = failed(url, "creating or upgrading the tracking table", &e);
        if e.code() == Some(&postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) {
            if let Error::Failed(message) = &mut error {
                message.push_str(&format!(
                    "\n  the role {} may not create or alter {} in schema public: it should own the database (infra/db/provision.sh sets that up), or be granted CREATE on schema public",
                    url.user(),
                    tracking::TABLE
                ));
            }
        }
        error
    })?;
    if ensured.created {
        progress(&format!("created the tracking table {}", tracking::TABLE));
    }
    if ensured.columns_added {
        progress(&format!(
            "added the columns duration_ms and applied_by to the tracking table {}",
            tracking::TABLE
        ));
    }
    if let Some(versions) = &ensured.upgraded {
        progress(&format!(
            "upgraded the two-column tracking table {}: added columns checksum, duration_ms, applied_by; recorded the current checksum for {}",
            tracking::TABLE,
            counted(versions.len(), "version")
        ));
    }
    // Created before the privileges on the tools' tables are put right, so that the
    // snapshot table is covered from its first run.
    let lz4_pending = ensure_snapshot_table(client, url, progress)?;
    let revoked = crate::grants::keep_tools_tables_read_only(client).map_err(|e| {
        failed(
            url,
            "keeping the tools' tables read-only for other roles",
            &e,
        )
    })?;
    if !revoked.is_empty() {
        progress(&format!(
            "only the owner writes the tools' own tables: {}",
            revoked.join("; ")
        ));
    }
    Ok((ensured, lz4_pending))
}

/// Creates the snapshot table next to the tracking table when it is missing; says whether
/// its entries column waits for lz4.
fn ensure_snapshot_table(
    client: &mut Client,
    url: &DbUrl,
    progress: &mut dyn FnMut(&str),
) -> Result<bool, Error> {
    let ensured = snapshots::ensure(client)
        .map_err(|e| failed(url, "creating the schema snapshot table", &e))?;
    if ensured.created {
        progress(&format!(
            "created the schema snapshot table {}",
            snapshots::TABLE
        ));
    }
    Ok(ensured.lz4_pending)
}

/// What the run found before applying: whether there is a snapshot, whether it is older than
/// the newest applied migration, and the drift.
struct Before {
    /// No snapshot yet: the first one is recorded even when nothing is applied (there is
    /// nothing to compare with yet).
    missing: bool,
    /// The newest snapshot is older than the newest applied migration: a run applied files and
    /// ended (killed, connection lost) before recording it. Recorded now, or the gate would
    /// report that run's own objects as drift for good.
    stale: bool,
    /// The differences from the snapshot.
    drift: Vec<Drift>,
    /// How "no drift" was proven, when it was.
    proof: Option<Proof>,
}

impl Before {
    /// Whether this run records a snapshot even if it applies nothing. Otherwise only a run
    /// that applied a file records one: re-recording after an empty run would accept a hand
    /// change silently.
    fn records_anyway(&self) -> bool {
        self.missing || self.stale
    }
}

/// Before applying: compares the live schema with the snapshot (the run goes on whatever it
/// finds: the files may be what fixes it; [`warn_drift_before`] says what becomes of it).
fn snapshot_before(client: &mut Client, url: &DbUrl) -> Result<Before, Error> {
    let (drift, proof) = match snapshots::compare(client)
        .map_err(|e| failed(url, "comparing the schema with its snapshot", &e))?
    {
        Comparison::NoSnapshot => {
            return Ok(Before {
                missing: true,
                stale: false,
                drift: Vec::new(),
                proof: None,
            })
        }
        Comparison::Same { proof, .. } => (Vec::new(), Some(proof)),
        Comparison::Drifted { drift, .. } => (drift, None),
    };
    let stale = snapshots::is_stale(client)
        .map_err(|e| failed(url, "comparing the snapshot with the tracking table", &e))?;
    Ok(Before {
        missing: false,
        stale,
        drift,
        proof,
    })
}

/// Warns about each difference found before applying, saying truly what this run does with
/// it: a run that records a snapshot (it applies files, or the snapshot is stale) records the
/// schema as it is then, so the difference becomes part of it (and the snapshot's reason
/// names it); a run that records none leaves it for the gate to report.
fn warn_drift_before(before: &Before, pending: usize, progress: &mut dyn FnMut(&str)) {
    let recorded = pending > 0 || before.records_anyway();
    for d in &before.drift {
        if before.stale {
            // The run that applied the newest migration ended before recording the snapshot:
            // the difference may be its own change, so it is not called a hand change. A
            // stale snapshot is always recorded again (records_anyway).
            progress(&format!(
                "warning: found before applying: {} since the schema snapshot, which is older than the newest applied migration (a migrate run applied files and ended before recording it): it may be that run's own change or a hand change; this run records the snapshot, which includes it (its reason names it). To keep a hand change out of it, revert it before running migrate; see docs/operations.md, 3.5 \"Schema drift\"",
                d.since_snapshot()
            ));
        } else if recorded {
            progress(&format!(
                "warning: drift found before applying: {d}; when this run records its snapshot after applying, the snapshot includes it, accepted (its reason names it). To keep a hand change out of it, revert it before running migrate; see docs/operations.md, 3.5 \"Schema drift\""
            ));
        } else {
            progress(&format!(
                "warning: drift found: {d}; this run applies nothing and records no snapshot, so the gate still reports it: revert it, or make it official with a migration; see docs/operations.md, 3.5 \"Schema drift\""
            ));
        }
    }
}

/// A run that records no snapshot, where the schema renders exactly as recorded but the
/// catalog fingerprint differs (after `VACUUM FULL` or a restore: every gate renders the
/// schema until then), refreshes the recorded fingerprint ([`snapshots::refresh_fingerprint`];
/// nothing is accepted). Only a warning when it cannot: nothing else depends on it.
fn refresh_fingerprint(client: &mut Client, progress: &mut dyn FnMut(&str)) {
    match snapshots::refresh_fingerprint(client) {
        Ok(Some(digest)) => progress(&format!(
            "refreshed the schema snapshot's catalog fingerprint: the schema renders exactly as recorded (digest {}), but the catalog's rows changed (VACUUM FULL, a restore, or an object of a kind the snapshot does not cover: docs/operations.md, 3.5); the gate proves it on its cheap path again",
            plan::short(&digest)
        )),
        // The schema changed since the comparison before applying: the gate reports it.
        Ok(None) => {}
        Err(e) => progress(&format!(
            "warning: could not refresh the schema snapshot's catalog fingerprint ({}); nothing changed: the gate renders the schema to prove it until the next migrate run refreshes it or records a snapshot",
            crate::error::describe_pg(&e)
        )),
    }
}

/// At most this many objects are named in a snapshot's reason.
const NAMED_IN_REASON: usize = 10;

/// Records the schema snapshot after a run (SPEC.md, "Schema snapshot and drift"); returns
/// its digest.
fn record_snapshot(
    client: &mut Client,
    second: Second<'_>,
    url: &DbUrl,
    summary: &Summary,
    before: &Before,
    progress: &mut dyn FnMut(&str),
) -> Result<String, Error> {
    let mut reason = match summary.applied.len() {
        0 if before.missing => "first snapshot".to_string(),
        0 => "the run that applied the newest migration ended before recording its snapshot"
            .to_string(),
        1 => format!("applied {}", summary.applied[0].version),
        n => format!(
            "applied {n} files, {} to {}",
            summary.applied[0].version,
            summary.applied[n - 1].version
        ),
    };
    if !before.drift.is_empty() {
        let named: Vec<String> = before
            .drift
            .iter()
            .take(NAMED_IN_REASON)
            .map(|d| {
                if before.stale {
                    d.since_snapshot().to_string()
                } else {
                    d.to_string()
                }
            })
            .collect();
        let more = before.drift.len().saturating_sub(NAMED_IN_REASON);
        reason.push_str(&format!(
            "; accepted {} found before applying{}: {}{}",
            crate::wording::counted(before.drift.len(), "difference"),
            if before.stale {
                " (from a snapshot older than the newest applied migration: that run's own changes, hand changes, or both)"
            } else {
                ""
            },
            named.join("; "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ));
    }
    let started = std::time::Instant::now();
    let recorded = snapshots::record(client, Some(second), &reason, None)
        .map_err(|e| failed(url, "recording the schema snapshot", &e))?;
    progress(&format!(
        "recorded the schema snapshot ({} entries, digest {}) in {}",
        recorded.entries,
        plan::short(&recorded.digest),
        human_duration(started.elapsed())
    ));
    if !before.drift.is_empty() {
        progress(&format!(
            "the snapshot accepts the {} found before applying (its reason names them)",
            crate::wording::counted(before.drift.len(), "difference")
        ));
    }
    Ok(recorded.digest)
}

/// The part of a run that applies the pending files, holding the lock.
struct Run<'a> {
    url: &'a DbUrl,
    env: Env,
    options: &'a Options,
    client: &'a mut Client,
    hold: &'a mut lock::Hold,
    summary: &'a mut Summary,
}

impl Run<'_> {
    /// Applies `pending` in order; the first failure or an interruption ends the run.
    fn apply_pending(
        &mut self,
        pending: &[&Migration],
        progress: &mut dyn FnMut(&str),
    ) -> Result<(), Error> {
        let interrupt = if self.options.cancel_on_signal {
            Some(
                CancelOnSignal::start(self.client.cancel_token())
                    .map_err(|e| Error::Failed(format!("cannot watch for Ctrl-C: {e}")))?,
            )
        } else {
            None
        };
        let interrupted_now = || interrupt.as_ref().is_some_and(CancelOnSignal::arrived);
        // "[n/N]" on each line: where a long run stands (N counts this run's files only).
        let total = pending.len();
        for (n, &migration) in (1..).zip(pending) {
            if interrupted_now() {
                return Err(self.interrupted(None));
            }
            progress(&format!("[{n}/{total}] applying {}", migration.version));
            match self.apply_one(migration, progress, &interrupted_now) {
                Ok(duration) => {
                    if let Some(watch) = &interrupt {
                        // A no-transaction file may have been recorded from a new session.
                        watch.retarget(self.client.cancel_token());
                    }
                    progress(&format!(
                        "[{n}/{total}] applied  {} ({})",
                        migration.version,
                        human_duration(duration)
                    ));
                    self.summary.applied.push(AppliedFile {
                        version: migration.version.clone(),
                        duration,
                    });
                }
                Err(failure) if interrupted_now() => return Err(self.interrupted(Some(*failure))),
                Err(failure) => return Err(self.failed(migration, *failure)),
            }
        }
        Ok(())
    }

    /// Applies one file; a no-transaction file whose session ended after its last statement
    /// is recorded from a new session ([`recover_unrecorded`]).
    fn apply_one(
        &mut self,
        migration: &Migration,
        progress: &mut dyn FnMut(&str),
        interrupted_now: &dyn Fn() -> bool,
    ) -> Result<Duration, Box<apply::Failure>> {
        let started = std::time::Instant::now();
        let (url, env, options) = (self.url, self.env, self.options);
        match apply::apply_one(
            self.client,
            self.hold,
            migration,
            &options.settings,
            progress,
            interrupted_now,
        ) {
            Err(failure) if failure.unrecorded_complete => {
                if recover_unrecorded(url, env, options, self.client, self.hold, migration) {
                    progress(&format!(
                        "  {}: its session ended after its last statement; recorded from a new session",
                        migration.file_name
                    ));
                    Ok(started.elapsed())
                } else {
                    Err(failure)
                }
            }
            other => other,
        }
    }

    /// The versions this run applied so far.
    fn applied(&self) -> Vec<String> {
        self.summary
            .applied
            .iter()
            .map(|file| file.version.clone())
            .collect()
    }

    /// A failed file: what was applied before it, and after a lost connection what a new
    /// session finds.
    fn failed(&self, migration: &Migration, failure: apply::Failure) -> Error {
        let after_lost_connection = self
            .client
            .is_closed()
            .then(|| after_lost_connection(self.url, self.env, migration));
        Error::Migration(Box::new(MigrationFailed {
            failure,
            applied_before: self.applied(),
            after_lost_connection,
        }))
    }

    /// The run stopped on the operator's Ctrl-C (or a SIGTERM): what was cancelled, and what
    /// stays applied.
    fn interrupted(&self, cancelled: Option<apply::Failure>) -> Error {
        Error::Interrupted(Box::new(Interrupted {
            cancelled,
            applied: self.applied(),
        }))
    }
}

/// Records the current file's checksum for applied rows that have none (written by hand or by
/// another tool), and says so.
fn record_missing_checksums(
    client: &mut Client,
    url: &DbUrl,
    applied: &mut [plan::Applied],
    files: &[Migration],
    progress: &mut dyn FnMut(&str),
) -> Result<(), Error> {
    let recorded = tracking::record_missing_checksums(client, applied, files)
        .map_err(|e| failed(url, "recording missing checksums in the tracking table", &e))?;
    if !recorded.is_empty() {
        progress(&format!(
            "recorded the checksum of the current file for {} that had none in {} (rows written by hand or by another tool; trusted, as when upgrading a two-column table): {}",
            counted(recorded.len(), "version"),
            tracking::TABLE,
            recorded.join(", ")
        ));
    }
    Ok(())
}

/// A no-transaction file whose every statement ran, but whose session ended before its row
/// was written (the file set a tiny `idle_session_timeout`, say): still the runner's to
/// record, from a new session, while it holds the lock. Otherwise such a file could never be
/// recorded, and every run would repeat its statements. True when it is recorded; the new
/// session then replaces `client`.
fn recover_unrecorded(
    url: &DbUrl,
    env: Env,
    options: &Options,
    client: &mut Client,
    hold: &mut lock::Hold,
    migration: &Migration,
) -> bool {
    if hold.verify().is_err() {
        return false;
    }
    let Ok(mut fresh) = connect::open_with(
        url,
        env,
        APPLICATION,
        options.connect_timeout,
        &options.settings.startup_options(),
    ) else {
        return false;
    };
    let recorded = tracking::read(&mut fresh, Shape::Current)
        .map(|applied| applied.iter().any(|a| a.version == migration.version));
    let done = match recorded {
        Ok(true) => true,
        Ok(false) => apply::record(&mut fresh, migration).is_ok(),
        Err(_) => false,
    };
    if done {
        *client = fresh;
    }
    done
}

/// The connection died while a file was running: the server may have committed the file
/// (and its row) just before, with the reply lost. Ask a new session which it was rather
/// than guess.
///
/// Only a transactional file is all or nothing: of a no-transaction file, the statements the
/// failure lists as run stay applied whatever the tracking table says, so for it an
/// unrecorded version never means that nothing was committed.
fn after_lost_connection(url: &DbUrl, env: Env, migration: &Migration) -> String {
    let version = migration.version.as_str();
    let recorded = connect::open(url, env, APPLICATION, Duration::from_secs(5))
        .and_then(|mut client| {
            tracking::read(&mut client, Shape::Current)
                .map_err(|e| failed(url, "reading the tracking table", &e))
        })
        .map(|applied| applied.iter().any(|a| a.version == version));
    match recorded {
        Ok(true) if migration.transactional => format!(
            "the connection to the server was lost, but a new session finds {version} recorded: the file was committed with its row just before"
        ),
        Ok(true) => format!(
            "the connection to the server was lost, but a new session finds {version} recorded: every statement had run and the row was written just before"
        ),
        Ok(false) if migration.transactional => format!(
            "the connection to the server was lost during the file; a new session finds {version} not recorded, so nothing of it was committed"
        ),
        Ok(false) => format!(
            "the connection to the server was lost during the file; a new session finds {version} not recorded: the statements listed above as run stay applied, the others did not run (the one in flight was rolled back)"
        ),
        Err(_) => format!(
            "the connection to the server was lost during the file and the server cannot be asked now: {version} is recorded if and only if it was applied; run `migrate status` when the server is back"
        ),
    }
}

/// The dry run: reads in a read-only transaction and plans; the tracking table is neither
/// created nor upgraded.
fn dry_run(
    client: &mut Client,
    url: &DbUrl,
    env: Env,
    files: &[Migration],
) -> Result<Summary, Error> {
    let (shape, mut applied) = read_only(client, url)?;
    // migrate would record the current checksums first (upgrading a two-column table, or for
    // rows written without one); plan as it would.
    for row in applied.iter_mut().filter(|row| row.checksum.is_none()) {
        if let Some(file) = files.iter().find(|f| f.version == row.version) {
            row.checksum = Some(file.checksum.clone());
        }
    }
    let plan = plan::plan(&applied, files).map_err(Error::Drift)?;
    Ok(Summary {
        database: env.database().to_string(),
        dry_run: true,
        applied: plan
            .pending
            .iter()
            .map(|m| AppliedFile {
                version: m.version.clone(),
                duration: Duration::ZERO,
            })
            .collect(),
        already_applied: plan.already_applied,
        table_created: shape == Shape::Missing,
        upgraded: (shape == Shape::TwoColumn)
            .then(|| applied.iter().map(|a| a.version.clone()).collect()),
        ..Summary::default()
    })
}

/// The tracking table's shape and rows; reads only (each in a read-only transaction).
fn read_only(client: &mut Client, url: &DbUrl) -> Result<(Shape, Vec<plan::Applied>), Error> {
    let shape =
        tracking::shape(client).map_err(|e| failed(url, "reading the tracking table", &e))?;
    let applied =
        tracking::read(client, shape).map_err(|e| failed(url, "reading the tracking table", &e))?;
    Ok((shape, applied))
}

/// `migrate status`: the state of every version.
#[derive(Debug, Clone)]
pub struct Status {
    /// The database.
    pub database: String,
    /// The tracking table's shape.
    pub table: Shape,
    /// Every version, in order, with when it was applied.
    pub entries: Vec<(Entry, Option<String>)>,
    /// Who holds the migration lock (a run in progress).
    pub lock_holder: Option<lock::Holder>,
    /// The live schema against its snapshot.
    pub schema: Comparison,
}

fn state_name(state: &State) -> &'static str {
    match state {
        State::Applied => "applied",
        State::Pending => "pending",
        State::Modified { .. } => "modified",
        State::Unverified => "unverified",
        State::Missing => "missing file",
        State::NotAVersion => "not a version",
        State::OutOfOrder { .. } => "out of order",
    }
}

impl Report for Status {
    fn text(&self) -> String {
        let mut out = format!("{}: tracking table ", self.database);
        out.push_str(match self.table {
            Shape::Missing => "missing (nothing applied yet)",
            Shape::TwoColumn => "in the two-column form (migrate will upgrade it)",
            Shape::Partial => "present, without duration_ms/applied_by (migrate adds them)",
            Shape::Current => "present",
        });
        if let Some(h) = &self.lock_holder {
            out.push_str(&format!("\nmigration in progress: lock held by {h}"));
        }
        match &self.schema {
            Comparison::NoSnapshot => out
                .push_str("\nschema: no snapshot recorded yet (the next migrate run records one)"),
            Comparison::Same {
                digest,
                equivalent,
                proof,
            } => {
                out.push_str(&format!(
                    "\nschema: matches the snapshot (digest {})",
                    plan::short(digest)
                ));
                if *proof == Proof::Digest {
                    out.push_str(", proven by rendering it: the catalog fingerprint differs (after VACUUM FULL or a restore, say), so every check renders the schema until the next migrate run refreshes the fingerprint");
                }
                if !equivalent.is_empty() {
                    out.push_str(&format!(
                        ", up to {} equivalent rendering{} (a dump/restore parses definitions again; the next run that applies a file, or `migrate snapshot`, records them)",
                        equivalent.len(),
                        if equivalent.len() == 1 { "" } else { "s" }
                    ));
                }
            }
            Comparison::Drifted {
                drift, stale: true, ..
            } => {
                out.push_str(&format!(
                    "\nschema: {} difference{} from the snapshot, which is older than the newest applied migration (a migrate run applied files and ended before recording it): that run's own changes, hand changes, or both; the next migrate run records the snapshot",
                    drift.len(),
                    if drift.len() == 1 { "" } else { "s" }
                ));
                for d in drift {
                    out.push_str(&format!(
                        "\ndrift: {} since the snapshot",
                        d.since_snapshot()
                    ));
                }
            }
            Comparison::Drifted { drift, .. } => {
                out.push_str(&format!(
                    "\nschema: DRIFT, {} difference{} from the snapshot",
                    drift.len(),
                    if drift.len() == 1 { "" } else { "s" }
                ));
                for d in drift {
                    out.push_str(&format!("\ndrift: {d}"));
                }
            }
        }
        for (entry, applied_at) in &self.entries {
            out.push_str(&format!(
                "\n{:<13} {}",
                state_name(&entry.state),
                entry.version
            ));
            match &entry.state {
                State::Applied | State::Missing | State::Unverified | State::NotAVersion => {
                    if let Some(at) = applied_at {
                        out.push_str(&format!("  (applied {at})"));
                    }
                }
                State::Modified { recorded, actual } => out.push_str(&format!(
                    "  (applied with checksum {}, file now {})",
                    plan::short(recorded),
                    plan::short(actual)
                )),
                State::OutOfOrder { latest_applied } => out.push_str(&format!(
                    "  (sorts before {latest_applied}, which is applied)"
                )),
                State::Pending => {}
            }
        }
        out
    }

    fn json(&self) -> Value {
        json!({
            "ok": true,
            "database": self.database,
            "table": match self.table {
                Shape::Missing => "missing",
                Shape::TwoColumn => "two-column",
                Shape::Partial | Shape::Current => "present",
            },
            "lock_holder": self.lock_holder,
            "snapshot": match &self.schema {
                Comparison::NoSnapshot => "none",
                Comparison::Same { .. } => "same",
                Comparison::Drifted { .. } => "drifted",
            },
            "drift": match &self.schema {
                Comparison::Drifted { drift, .. } => drift.clone(),
                _ => Vec::new(),
            },
            "migrations": self.entries.iter().map(|(e, at)| json!({
                "version": e.version,
                "state": state_name(&e.state),
                "applied_at": at,
            })).collect::<Vec<_>>(),
        })
    }
}

/// Reads the state of every version; changes nothing.
pub fn status(
    url: &DbUrl,
    env: Env,
    files: &[Migration],
    timeout: Duration,
) -> Result<Status, Error> {
    // Bounded: a lock on the tracking table (a migration altering it, a stuck session) must
    // not make a status read hang.
    let mut client = connect::open_with(
        url,
        env,
        APPLICATION,
        timeout,
        &format!(
            "{} -c lock_timeout=5000 -c statement_timeout=30000",
            connect::TOOL_SESSION_OPTIONS
        ),
    )?;
    let (shape, applied) = read_only(&mut client, url)?;
    let lock_holder = lock::holder(&mut client).map_err(|e| failed(url, "reading pg_locks", &e))?;
    let schema = snapshots::compare(&mut client)
        .map_err(|e| failed(url, "comparing the schema with its snapshot", &e))?;
    let entries = reconcile(&applied, files.iter().map(Known::from))
        .into_iter()
        .map(|entry| {
            let at = applied
                .iter()
                .find(|a| a.version == entry.version)
                .and_then(|a| a.applied_at.clone());
            (entry, at)
        })
        .collect();
    Ok(Status {
        database: env.database().to_string(),
        table: shape,
        entries,
        lock_holder,
        schema,
    })
}
