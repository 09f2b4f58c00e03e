//! Running one migration file.
//!
//! A transactional file travels to the server as ONE simple-protocol message:
//! `BEGIN; <file>; INSERT <tracking row>; COMMIT;`. One round trip per file, and the file and
//! its row can only commit together: the server has the whole message, so a runner killed
//! with `kill -9` does not stop it (it finishes, or fails, both parts together), and a
//! statement that fails, is cancelled (Ctrl-C, see [`crate::cancel`]) or loses its backend
//! rolls both back. A file is either applied and recorded or neither. (A runner that commits
//! the file and then writes the row separately loses the record on a crash in between;
//! refinery's non-grouped mode is the known example.)
//!
//! A file above 8 MiB is the exception: it goes in parts of whole statements, in one
//! transaction all the same, so that the runner's memory stays near the file's size
//! (`send` says what that costs).
//!
//! A file whose first line is `-- dreichor:no-transaction` runs statement by statement in
//! autocommit, split by the lexer, because PostgreSQL refuses `CREATE INDEX CONCURRENTLY` and
//! the like inside a transaction. Its row is written after its last statement; such a file
//! cannot be atomic, so the failure report says exactly which statements had run.
//!
//! Each file starts from the session's defaults, and the runner's own bookkeeping (the guard,
//! the tracking row) runs with them, whatever the file did to its session (issue 10). The
//! reset runs at the END of each file's message, inside its transaction: PostgreSQL decodes
//! a whole simple-query message with the `client_encoding` in force when it arrives, parses all
//! of it with the `standard_conforming_strings` (and other settings) in force then, and fixes
//! a transaction's characteristics (read only, isolation) at `BEGIN`; a reset at the start of
//! the next file's message would come too late for all three. Reset and commit in one message
//! cost no round trip.
//!
//! PostgreSQL reports an error position as a character index into the query string; it is
//! mapped back to a line and column of the file. Errors without a position (a constraint
//! violation, a missing table in ALTER TABLE) are located by replaying the file statement by
//! statement in a transaction that is rolled back.

use std::fmt;
use std::time::{Duration, Instant};

use postgres::error::ErrorPosition;
use postgres::Client;

use crate::error::describe_pg;
use crate::lock::Hold;
use crate::migrations::Migration;
use crate::report::human_duration;
use crate::sql;
use crate::tracking;

/// SQLSTATE idle_session_timeout: the server ended the session while it was idle (a file that
/// set `idle_session_timeout` itself in a no-transaction file).
const IDLE_SESSION_TIMEOUT: &str = "57P05";

/// SQLSTATE lock_not_available: `lock_timeout` expired.
const LOCK_NOT_AVAILABLE: &str = "55P03";

/// SQLSTATE syntax_error.
const SYNTAX_ERROR: &str = "42601";

/// A failing file is replayed to locate the failing statement only when the failed attempt
/// was quick: replaying an hour-long backfill to name a line is not worth the hour.
const REPLAY_LIMIT: Duration = Duration::from_secs(5);

/// How statements run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// PostgreSQL `lock_timeout` for migration statements; zero turns it off.
    pub lock_timeout: Duration,
    /// PostgreSQL `statement_timeout`; `None` leaves the server's setting alone, zero turns
    /// it off.
    pub statement_timeout: Option<Duration>,
    /// How often a file that failed with `lock_not_available` is retried.
    pub lock_retries: u32,
    /// The first wait before a retry; doubled each time.
    pub backoff: Duration,
}

impl Default for Settings {
    /// `lock_timeout` 10 s (so that a DDL statement queued behind a long transaction does not
    /// stall every other query on its table for long), no statement timeout, 3 retries
    /// starting at 2 s.
    fn default() -> Self {
        Settings {
            lock_timeout: Duration::from_secs(10),
            statement_timeout: None,
            lock_retries: 3,
            backoff: Duration::from_secs(2),
        }
    }
}

impl Settings {
    /// The timeouts as startup options (`-c lock_timeout=...`). As startup options they are
    /// the session's defaults, which the `RESET ALL` before every file returns to.
    ///
    /// Idle timeouts are turned off as well: the runner waits between files (a retry's
    /// backoff) and must not lose its session to a default meant for clients. And strings are
    /// read the standard way whatever `ALTER DATABASE/ROLE ... SET standard_conforming_strings`
    /// says: the lexer that finds statements and transaction control reads them so, and
    /// a file must mean the same whether it runs in the run that set the default or a later
    /// one.
    pub fn startup_options(&self) -> String {
        let mut options = format!(
            "-c lock_timeout={} -c idle_session_timeout=0 -c idle_in_transaction_session_timeout=0 -c standard_conforming_strings=on",
            self.lock_timeout.as_millis()
        );
        if let Some(t) = self.statement_timeout {
            options.push_str(&format!(" -c statement_timeout={}", t.as_millis()));
        }
        options
    }
}

/// What every file leaves behind for the next, and what the runner's own bookkeeping runs
/// with: the session's defaults. A file may change its session (any `SET`, `SET SESSION
/// CHARACTERISTICS`, `SET ROLE`, `set_config(..., false)`, `client_encoding`, a temporary
/// table, a prepared statement, a cursor, a `LISTEN`, cached sequence values, session-level
/// advisory locks, cached plans), and that must not reach the next file or the tracking row:
/// otherwise the same files would store other data, build another schema, or fail, when
/// applied in one run rather than one run at a time (`hard-reset` applies everything in one
/// run). This is `DISCARD ALL` spelled out, because `DISCARD ALL` refuses to run in a
/// transaction; `RESET ALL` leaves the role alone, hence `RESET ROLE`. Only the migration lock
/// is out of reach of all of it: it is held by another session ([`crate::lock`]).
///
/// Plain ASCII keywords without quotes: it is parsed under whatever settings the file left,
/// and means the same under every one of them.
pub const FRESH_SESSION: &str = "RESET ALL;\nRESET ROLE;\nDISCARD TEMP;\nDISCARD PLANS;\nDISCARD SEQUENCES;\nDEALLOCATE ALL;\nCLOSE ALL;\nUNLISTEN *;\nSELECT pg_catalog.pg_advisory_unlock_all();\n";

/// Remembers, in a transaction-local setting, which transaction the runner opened for the
/// file, for [`guard`] to compare with at the end.
pub const MARK_TRANSACTION: &str =
    "SELECT pg_catalog.set_config('dreichor.txid', pg_catalog.txid_current()::text, true);\n";

/// The start of the messages that mark a guard failure: what [`Failure`] recognises.
const GUARD_MARK: &str = "dreichor:";

/// The guard's message when the file ended the runner's transaction.
const GUARD_TRANSACTION_ENDED: &str = "dreichor: the file ended the runner's transaction itself (a COMMIT, ROLLBACK or END that the lexer did not recognise): statements before that point may be committed; nothing was recorded";

/// The guard's message when the file put a trigger or rule on the tracking table: it would run
/// with the tracking row, after the reset to the session's defaults.
const GUARD_TOOLS_TABLE_HOOKED: &str = "dreichor: the file put a trigger or rule on public.dreichor_schema_migrations; it would run with the tracking row, after the session was reset for the next file. The file was rolled back and not recorded: migrations must leave the tools' tables alone";

/// A user trigger or rule on the tracking table (internal triggers are foreign-key
/// machinery). Three index lookups.
const TOOLS_TABLE_HOOKED: &str = "EXISTS (SELECT FROM pg_catalog.pg_trigger t WHERE t.tgrelid = pg_catalog.to_regclass('public.dreichor_schema_migrations') AND NOT t.tgisinternal) \
     OR EXISTS (SELECT FROM pg_catalog.pg_rewrite r WHERE r.ev_class = pg_catalog.to_regclass('public.dreichor_schema_migrations'))";

/// The guard's message when the migration lock's session has ended.
const GUARD_LOCK_LOST: &str = "dreichor: the migration lock was lost before this file could commit: the lock's session ended (terminated by a statement of this or an earlier file, such as pg_terminate_backend on other sessions, or by an operator); this file was rolled back and not recorded, and the run stopped. A file that ends other sessions must spare application_name dreichor-migrate-lock";

/// Raises `message` as an error when `condition` holds: plain SQL rather than a `DO` block
/// (compiling PL/pgSQL for every file cost about 0.2 ms a file). The error is a failed cast of
/// the message to `int`; the `left(pg_backend_pid()::text, 0)` (an empty string from a
/// non-immutable function) keeps the planner from evaluating that cast while folding
/// constants, i.e. always.
fn raise_when(condition: &str, message: &str) -> String {
    format!(
        "WHEN {condition} THEN ({}::text || pg_catalog.left(pg_catalog.pg_backend_pid()::text, 0))::int",
        crate::connect::literal(message)
    )
}

/// Runs just before the reset and the tracking row, with `search_path` pinned, and refuses to
/// record the file when
/// - the runner's transaction is not the one it opened, i.e. the file ended it with a COMMIT,
///   ROLLBACK or END that the lexer did not recognise (the lexer is the first line of defence,
///   this check the last); or
/// - the migration lock is no longer held ([`crate::lock::LOST_CONDITION`]).
pub fn guard() -> String {
    format!(
        "SELECT CASE {} {} {} END",
        raise_when(
            "pg_catalog.current_setting('dreichor.txid', true) IS DISTINCT FROM pg_catalog.txid_current()::text",
            GUARD_TRANSACTION_ENDED
        ),
        raise_when(crate::lock::LOST_CONDITION, GUARD_LOCK_LOST),
        raise_when(TOOLS_TABLE_HOOKED, GUARD_TOOLS_TABLE_HOOKED)
    )
}

/// The guard of a no-transaction file's tracking row: the lock alone (its own transaction was
/// opened just before).
fn lock_guard() -> String {
    format!(
        "SELECT CASE {} {} END",
        raise_when(crate::lock::LOST_CONDITION, GUARD_LOCK_LOST),
        raise_when(TOOLS_TABLE_HOOKED, GUARD_TOOLS_TABLE_HOOKED)
    )
}

/// Why a file failed, with everything an operator needs to act.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The file.
    pub file_name: String,
    /// 1-based line and column in the file, when known.
    pub location: Option<(usize, usize)>,
    /// Why there is no location, when there is none: said to the operator, who otherwise
    /// cannot tell "not looked for" from "not found".
    pub unlocated: Option<String>,
    /// SQLSTATE, when the server sent one.
    pub sqlstate: Option<String>,
    /// PostgreSQL's error with detail and hint (or the client-side error).
    pub error: String,
    /// True for a transactional file: its changes were rolled back.
    pub transactional: bool,
    /// For a no-transaction file: the lines of the statements that had run and stay.
    pub statements_run: Vec<usize>,
    /// For a no-transaction file: the number of statements in it.
    pub statements_total: usize,
    /// Indexes left invalid (a failed `CREATE INDEX CONCURRENTLY`).
    pub invalid_indexes: Vec<String>,
    /// How often it was retried after `lock_not_available`.
    pub retries: u32,
    /// The connection died during the file: whether it committed is for the caller to find
    /// out (it may have, with the reply lost), so this failure does not claim either way.
    pub connection_lost: bool,
    /// The migration lock's session ended during the file ([`crate::lock::Lost`], or the
    /// guard saw it): the run must stop, another run may hold the lock now.
    pub lock_lost: bool,
    /// A no-transaction file whose every statement ran, and whose tracking row could not be
    /// written because the session ended: the caller may record it from a new session.
    pub unrecorded_complete: bool,
    /// The tracking row's primary key was taken by another session at the same moment: the
    /// backend of a killed run still finishing this file (its lock's session ended at once).
    /// That session applied the file; this attempt was rolled back.
    pub recorded_by_another: bool,
}

impl Failure {
    /// A failure of `migration` with nothing known yet beyond `error`.
    fn of(migration: &Migration, error: String) -> Failure {
        Failure {
            file_name: migration.file_name.clone(),
            location: None,
            unlocated: None,
            sqlstate: None,
            error,
            transactional: migration.transactional,
            statements_run: Vec::new(),
            statements_total: 0,
            invalid_indexes: Vec::new(),
            retries: 0,
            connection_lost: false,
            lock_lost: false,
            unrecorded_complete: false,
            recorded_by_another: false,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location {
            Some((line, col)) => write!(f, "{}:{line}:{col}: ", self.file_name)?,
            None => write!(f, "{}: ", self.file_name)?,
        }
        match self.error.find(GUARD_MARK) {
            // The guard raises its message as a failed cast; show the message alone.
            Some(at) => {
                let message = &self.error[at..];
                write!(f, "{}", message.split('"').next().unwrap_or(message))?;
            }
            None => write!(f, "{}", self.error)?,
        }
        if let Some(why) = &self.unlocated {
            write!(f, "\n  the line is not known: {why}")?;
        }
        if self.retries > 0 {
            write!(
                f,
                "\n  retried {} after lock_timeout; a long transaction holds a lock this file needs: find it in pg_stat_activity, or raise --lock-timeout",
                crate::wording::counted(self.retries as usize, "time")
            )?;
        }
        if self.transactional && self.sqlstate.as_deref() == Some("25001") {
            write!(
                f,
                "\n  this statement cannot run inside a transaction: make `{}` the first line of the file",
                crate::migrations::NO_TRANSACTION_MARKER
            )?;
        }
        if self.lock_lost && self.transactional {
            write!(
                f,
                "\n  run migrate again: it continues with this file once it holds the lock"
            )?;
        } else if self.recorded_by_another {
            write!(
                f,
                "\n  another session recorded this version at the same moment (the backend of a killed or lost run finishing this file): the file is applied once, by that session; this attempt was rolled back. Check with `migrate status`, then run migrate again"
            )?;
        } else if self.connection_lost && self.transactional {
            // The caller says what a new session finds. (Of a no-transaction file, what had
            // run stays whatever that is: listed below.)
        } else if self.error.contains(GUARD_TRANSACTION_ENDED) {
            // The guard's own message says what happened and what was not recorded.
            write!(
                f,
                "\n  look at what the file did before that point (it may be committed) and fix the database by hand before running migrate again"
            )?;
        } else if self.transactional && self.sqlstate.as_deref() == Some(LOCK_NOT_AVAILABLE) {
            write!(
                f,
                "\n  the file's changes were rolled back and it was not recorded; nothing is wrong with the file: run migrate again when the lock holder is gone"
            )?;
        } else if self.transactional {
            write!(
                f,
                "\n  the file's changes were rolled back and it was not recorded: fix it (a file that was never applied may be edited) and run migrate again"
            )?;
        } else {
            let run = &self.statements_run;
            if self.lock_lost {
                write!(
                    f,
                    "\n  the run stopped before the next statement: with the lock gone another run could start this file too"
                )?;
            }
            if run.is_empty() {
                write!(f, "\n  no statement of this no-transaction file had run")?;
            } else {
                let lines: Vec<String> = run.iter().map(|l| format!("line {l}")).collect();
                write!(
                    f,
                    "\n  this file runs without a transaction: {} of its {} had run and {} applied ({}); nothing was recorded: make the file safe to re-run (IF NOT EXISTS) or undo {} by hand, then run migrate again (an INVALID index must be dropped first: IF NOT EXISTS would keep it)",
                    run.len(),
                    crate::wording::counted(self.statements_total, "statement"),
                    if run.len() == 1 { "stays" } else { "stay" },
                    lines.join(", "),
                    if run.len() == 1 { "that statement" } else { "those statements" }
                )?;
            }
            for index in &self.invalid_indexes {
                write!(
                    f,
                    "\n  index {index} is INVALID (a failed CREATE INDEX CONCURRENTLY leaves it behind): DROP INDEX CONCURRENTLY {index}; before running again"
                )?;
            }
        }
        Ok(())
    }
}

/// Applies one file with its tracking row. `progress` hears about retries. Returns how long
/// it took.
///
/// `hold` is the migration lock: it is proven before the file commits and before every
/// statement of a no-transaction file. `interrupted` says whether the operator asked to stop
/// (Ctrl-C): it is looked at while waiting to retry and between the statements of a
/// no-transaction file, where no cancel request can reach a running statement.
///
/// # Errors
/// A [`Failure`] saying what of the file stays applied and what to do.
pub fn apply_one(
    client: &mut Client,
    hold: &mut Hold,
    migration: &Migration,
    settings: &Settings,
    progress: &mut dyn FnMut(&str),
    interrupted: &dyn Fn() -> bool,
) -> Result<Duration, Box<Failure>> {
    if migration.transactional {
        apply_transactional(client, migration, settings, progress, interrupted)
    } else {
        apply_statements(client, hold, migration, interrupted)
    }
}

/// Sleeps for `wait`, waking early (false) when `interrupted` says so.
fn sleep_unless(wait: Duration, interrupted: &dyn Fn() -> bool) -> bool {
    let until = Instant::now() + wait;
    while Instant::now() < until {
        if interrupted() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
    }
    !interrupted()
}

/// What precedes the file in the message (`BEGIN`, [`MARK_TRANSACTION`]); error positions
/// are shifted by its length.
fn prefix() -> String {
    format!("BEGIN;\n{MARK_TRANSACTION}")
}

/// `SET CONSTRAINTS ALL IMMEDIATE` fires the file's deferred triggers now, before the reset:
/// left to `COMMIT`, a deferred constraint trigger would run after it and could change the
/// session for the next file (`set_config(..., false)` in its function). Its checks are
/// the same ones `COMMIT` would make, in the same transaction.
const FIRE_DEFERRED: &str = "SET CONSTRAINTS ALL IMMEDIATE;\n";

/// The one message of a transactional file: the file, then (with `search_path` pinned) the
/// deferred triggers and the guard, then the reset to the session's defaults, then the
/// tracking row, then `COMMIT`. The
/// reset runs after the guard because `RESET ALL` also clears the guard's mark; the tracking
/// row after the reset, so that it is written as the runner's role with the runner's settings
/// whatever the file set (`SET ROLE` to a role that may not write the tracking table, say).
fn transactional_message(migration: &Migration) -> String {
    format!("{}{}{}", prefix(), migration.sql, suffix(migration))
}

/// What follows the file in its (last) message: the guard, the reset, the row, `COMMIT`.
fn suffix(migration: &Migration) -> String {
    // The newline before `;` ends a trailing line comment, and the lone `;` ends a final
    // statement written without one.
    format!(
        "\n;\n{pin};\n{FIRE_DEFERRED}{};\n{FRESH_SESSION}{pin};\n{};\nCOMMIT;",
        guard(),
        tracking::insert_row(migration),
        pin = crate::connect::PIN_SEARCH_PATH,
    )
}

/// Files larger than this travel in several messages ([`send`]).
const ONE_MESSAGE_MAX: usize = 8 << 20;

/// About how much of a large file each of its messages carries (whole statements).
const PART: usize = 1 << 20;

/// Where the failing message started: `skip` characters of the runner's own SQL, then the
/// file from byte `base` on. Error positions count from there.
#[derive(Debug, Clone, Copy)]
struct Sent {
    skip: usize,
    base: usize,
}

/// Sends a transactional file with its tracking row; on failure, the error and where the
/// failing message started.
///
/// A file up to [`ONE_MESSAGE_MAX`] is one message ([`transactional_message`]). A larger one
/// goes in several messages of one transaction: `BEGIN` (with the mark), then the file in
/// parts of whole statements (split by the lexer, as a no-transaction file is), each sent
/// straight from the file's text, then the guard, the reset, the row and `COMMIT`. Still all
/// or nothing: a failure or a lost connection at any point rolls the transaction back. What
/// it buys is memory: the client library copies every message twice on its way out, so one
/// 50 MB message cost four times the file, and parts cost the file plus a few MiB (a single
/// statement larger than a part still goes whole). What it costs: a few round trips, a part
/// runs before the next is parsed (as with psql), and a runner killed between parts leaves
/// the file rolled back rather than finished. Each part ends with [`BETWEEN_PARTS`], so that
/// the next part is read as a one-message file would be (issue 10).
fn send(client: &mut Client, migration: &Migration) -> Result<(), (postgres::Error, Sent)> {
    let src = &migration.sql;
    if src.len() <= ONE_MESSAGE_MAX {
        let skip = prefix().chars().count();
        return client
            .batch_execute(&transactional_message(migration))
            .map_err(|e| (e, Sent { skip, base: 0 }));
    }
    // Errors in the runner's own messages are positioned past the end of the file.
    let after_file = Sent {
        skip: 0,
        base: src.len(),
    };
    client
        .batch_execute(&prefix())
        .map_err(|e| (e, after_file))?;
    let statements = sql::split(src).statements;
    let mut next = 0;
    let mut start = 0;
    while next < statements.len() {
        let mut end = statements[next].end;
        next += 1;
        while next < statements.len() && statements[next].end - start <= PART {
            end = statements[next].end;
            next += 1;
        }
        client
            .batch_execute(&part_message(&src[start..end]))
            .map_err(|e| {
                (
                    e,
                    Sent {
                        skip: 0,
                        base: start,
                    },
                )
            })?;
        start = end;
    }
    client
        .batch_execute(&suffix(migration))
        .map_err(|e| (e, after_file))
}

/// What ends every part of a large file: the next part is decoded and parsed the way the
/// whole of a small file is (UTF-8, standard strings), whatever the part set, and the
/// session may not be ended as idle in transaction between parts. Transaction-local: the
/// reset before the tracking row ends it anyway.
const BETWEEN_PARTS: &str = "\n;\nSET LOCAL client_encoding = 'UTF8';\nSET LOCAL standard_conforming_strings = on;\nSET LOCAL idle_in_transaction_session_timeout = 0;\n";

/// A part of a large file as sent: the part, then [`BETWEEN_PARTS`].
fn part_message(part: &str) -> String {
    format!("{part}{BETWEEN_PARTS}")
}

fn apply_transactional(
    client: &mut Client,
    migration: &Migration,
    settings: &Settings,
    progress: &mut dyn FnMut(&str),
    interrupted: &dyn Fn() -> bool,
) -> Result<Duration, Box<Failure>> {
    let mut retries = 0;
    loop {
        let started = Instant::now();
        let (err, sent) = match send(client, migration) {
            Ok(()) => return Ok(started.elapsed()),
            Err(failed) => failed,
        };
        // The server skipped the rest of the message; end the failed transaction (which takes
        // back the file's SETs) and whatever of the session a rollback does not take back
        // (prepared statements, advisory locks), so that a retry starts where the first
        // attempt did. If the connection is gone, the server has rolled back already.
        let _ = client.batch_execute(&format!("ROLLBACK;\n{FRESH_SESSION}"));
        let code = sqlstate(&err);
        if code.as_deref() == Some(LOCK_NOT_AVAILABLE)
            && retries < settings.lock_retries
            && !interrupted()
        {
            let wait = settings.backoff * 2u32.pow(retries);
            retries += 1;
            progress(&format!(
                "  {}: lock_timeout expired waiting for a lock ({}); rolled back, retry {retries} of {} in {}",
                migration.file_name,
                first_line(&describe_pg(&err)),
                settings.lock_retries,
                human_duration(wait)
            ));
            if sleep_unless(wait, interrupted) {
                continue;
            }
            // Interrupted while waiting: the file stays rolled back; report that.
        }
        let mut error = describe_pg(&err);
        let lock_lost = error.contains(GUARD_LOCK_LOST);
        let mut location = position_in_file(&err, sent.skip, &migration.sql, sent.base);
        if location.is_none() && code.as_deref() == Some(SYNTAX_ERROR) && has_position(&err) {
            // The position is in the runner's own SQL after the file: the file ended inside a
            // statement (an unclosed `(`, say), and the runner's `;` took the blame. Ask the
            // server about the file alone, as psql would have sent it.
            if let Some((alone, at)) = parse_alone(client, &migration.sql, sent.base) {
                error = alone;
                location = at;
            }
        }
        let mut unlocated = None;
        if location.is_none() {
            match replay_refused(&err, started.elapsed(), lock_lost, client.is_closed()) {
                Some(why) => unlocated = Some(why),
                None => {
                    location = locate_by_replay(client, migration, code.as_deref());
                    if location.is_none() {
                        unlocated = Some(
                            "PostgreSQL gave no position, and replaying the file statement by statement (in a transaction that was rolled back) did not fail the same way: the error depends on something else that ran at the same time".into(),
                        );
                    }
                }
            }
        }
        return Err(Box::new(Failure {
            location,
            unlocated,
            sqlstate: code,
            retries,
            connection_lost: client.is_closed(),
            lock_lost,
            recorded_by_another: err
                .as_db_error()
                .and_then(|db| db.constraint())
                .is_some_and(|c| c == "dreichor_schema_migrations_pkey"),
            ..Failure::of(migration, error)
        }));
    }
}

fn apply_statements(
    client: &mut Client,
    hold: &mut Hold,
    migration: &Migration,
    interrupted: &dyn Fn() -> bool,
) -> Result<Duration, Box<Failure>> {
    let started = Instant::now();
    let src = &migration.sql;
    // The line of every statement that ran goes into the report: from an index made once,
    // not a scan from the start of the file per statement (quadratic in the statements).
    let lines = sql::Lines::new(src);
    let statements: Vec<_> = sql::split(src)
        .statements
        .into_iter()
        .filter(|s| !s.is_blank(src))
        .collect();
    let failure = |error: String, run: &[usize]| Failure {
        statements_run: run.to_vec(),
        statements_total: statements.len(),
        ..Failure::of(migration, error)
    };
    refuse_invalid_indexes(client, &failure)?;
    let mut run = Vec::new();
    for statement in &statements {
        let here = statement.first_token_offset(src).map(|o| lines.line_col(o));
        if interrupted() {
            return Err(Box::new(Failure {
                location: here,
                ..failure("interrupted before this statement".into(), &run)
            }));
        }
        // Before every statement, not only before the row: a statement that runs while another
        // run holds the lock may run twice.
        if let Err(lost) = hold.verify() {
            return Err(Box::new(Failure {
                location: here,
                lock_lost: true,
                ..failure(format!("{lost}; this statement did not run"), &run)
            }));
        }
        let result = run_statement(client, statement.text(src));
        let line = here.map_or(1, |(line, _)| line);
        if let Err(err) = result {
            let code = sqlstate(&err);
            let mut error = describe_pg(&err);
            if code.as_deref() == Some(IDLE_SESSION_TIMEOUT) {
                // The server ends only an idle session, but the error cannot say whether it
                // was idle after this statement (which then ran, and may be the one that set
                // the timeout) or before it arrived (which then did not run).
                error.push_str(&format!(
                    "; the server ended the session while it was idle, because a statement of this file set idle_session_timeout: whether the statement at line {line} ran is not known, look for its effect. Remove the SET idle_session_timeout from the file"
                ));
            }
            let location = position_in_file(&err, 0, src, statement.start).or(here);
            return Err(Box::new(Failure {
                location,
                sqlstate: code,
                invalid_indexes: invalid_indexes(client),
                connection_lost: client.is_closed(),
                ..failure(error, &run)
            }));
        }
        run.push(line);
    }
    record_after_statements(client, hold, migration, |error| failure(error, &run))?;
    Ok(started.elapsed())
}

/// An INVALID index (a CREATE INDEX CONCURRENTLY that failed earlier) would be kept by a
/// re-run written with IF NOT EXISTS, and the file recorded as applied over a broken index:
/// a no-transaction file is refused until it is dropped.
fn refuse_invalid_indexes(
    client: &mut Client,
    failure: &dyn Fn(String, &[usize]) -> Failure,
) -> Result<(), Box<Failure>> {
    let invalid = invalid_indexes(client);
    if invalid.is_empty() {
        return Ok(());
    }
    Err(Box::new(Failure {
        invalid_indexes: invalid.clone(),
        ..failure(
            format!(
                "refusing to run this no-transaction file while the database has INVALID indexes ({}); nothing of it ran",
                invalid.join(", ")
            ),
            &[],
        )
    }))
}

/// Runs one statement of a no-transaction file. `... CONCURRENTLY` runs without
/// lock_timeout: it waits for every older transaction to end, and those waits count against
/// lock_timeout (10 s would fail it on any busy database and leave an INVALID index). Its own
/// lock (SHARE UPDATE EXCLUSIVE) blocks no reads or writes, so waiting is harmless to others.
fn run_statement(client: &mut Client, text: &str) -> Result<(), postgres::Error> {
    let concurrent = is_concurrent(text);
    if concurrent {
        let _ = client.batch_execute("SET lock_timeout = 0");
    }
    let result = client.batch_execute(text);
    if concurrent {
        let _ = client.batch_execute("RESET lock_timeout");
    }
    result
}

/// After every statement of a no-transaction file ran: proves the lock, then writes the row.
/// `failure` builds a failure that lists the statements that ran.
fn record_after_statements(
    client: &mut Client,
    hold: &mut Hold,
    migration: &Migration,
    failure: impl Fn(String) -> Failure,
) -> Result<(), Box<Failure>> {
    if let Err(lost) = hold.verify() {
        return Err(Box::new(Failure {
            lock_lost: true,
            ..failure(format!(
                "{lost}; every statement ran, the version was not recorded"
            ))
        }));
    }
    record(client, migration).map_err(|err| {
        let lost = client.is_closed();
        Box::new(Failure {
            sqlstate: sqlstate(&err),
            connection_lost: lost,
            lock_lost: describe_pg(&err).contains(GUARD_LOCK_LOST),
            unrecorded_complete: lost,
            ..failure(format!(
                "every statement ran, but recording the version failed: {}",
                describe_pg(&err)
            ))
        })
    })
}

/// Writes the tracking row of a no-transaction file whose statements have all run: first the
/// session goes back to its defaults (the file may have changed its role, made transactions
/// read only, ...), then the row is written in a read-write transaction of its own, after the
/// lock is proven. A failed attempt is rolled back.
///
/// Also what the caller runs from a new session when the file's own session ended after its
/// last statement ([`Failure::unrecorded_complete`]); the caller makes sure the row is not
/// there yet.
///
/// # Errors
/// The server's error; nothing was recorded.
pub fn record(client: &mut Client, migration: &Migration) -> Result<(), postgres::Error> {
    client
        .batch_execute(&format!(
            "{FRESH_SESSION}BEGIN READ WRITE;\n{};\n{};\n{};\nCOMMIT",
            crate::connect::PIN_SEARCH_PATH,
            lock_guard(),
            tracking::insert_row(migration)
        ))
        .inspect_err(|_| {
            let _ = client.batch_execute("ROLLBACK");
        })
}

/// Whether a statement uses CONCURRENTLY (CREATE/DROP/REINDEX ... CONCURRENTLY, REFRESH
/// MATERIALIZED VIEW CONCURRENTLY), judged on its words outside comments and quotes.
fn is_concurrent(statement: &str) -> bool {
    sql::words(statement)
        .iter()
        .any(|w| w.eq_ignore_ascii_case("concurrently"))
}

fn sqlstate(err: &postgres::Error) -> Option<String> {
    err.code().map(|c| c.code().to_string())
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

/// Maps the server's error position to the file. `skip` is the number of characters sent
/// before the text that starts at byte `base` of `src`.
fn position_in_file(
    err: &postgres::Error,
    skip: usize,
    src: &str,
    base: usize,
) -> Option<(usize, usize)> {
    let Some(ErrorPosition::Original(position)) = err.as_db_error()?.position() else {
        return None;
    };
    let position = (*position as usize).checked_sub(skip)?;
    let text = &src[base..];
    let characters = text.chars().count();
    if position == 0 || position > characters + 1 {
        return None; // in the runner's own SQL (the tracking row), not in the file
    }
    if position == characters + 1 {
        // "at end of input": where the text ends, on its last line that holds anything, as
        // psql shows it, not on the empty line after a final newline.
        return Some(sql::line_col(src, base + text.trim_end().len()));
    }
    let offset = base + sql::byte_offset_of_char_position(text, position);
    Some(sql::line_col(src, offset))
}

/// Whether the server gave a position for the error.
fn has_position(err: &postgres::Error) -> bool {
    err.as_db_error().and_then(|e| e.position()).is_some()
}

/// The server's own syntax error for the file alone (from byte `base` of `src`: the last
/// part of a large file), sent on its own inside a transaction that is rolled back, and where
/// in the file it is. PostgreSQL parses a whole simple-query message before it runs any of
/// it, so text that does not parse runs nothing here. `None` unless that fails with a syntax
/// error too.
fn parse_alone(
    client: &mut Client,
    src: &str,
    base: usize,
) -> Option<(String, Option<(usize, usize)>)> {
    client.batch_execute("BEGIN").ok()?;
    let result = client.batch_execute(&src[base..]);
    let _ = client.batch_execute(&format!("ROLLBACK;\n{FRESH_SESSION}"));
    let err = result.err()?;
    (sqlstate(&err).as_deref() == Some(SYNTAX_ERROR))
        .then(|| (describe_pg(&err), position_in_file(&err, 0, src, base)))
}

/// Why the file is not replayed to find the failing statement, or `None` when it is. A
/// replay runs the file again, statement by statement, in a transaction that is rolled back:
/// safe for every error that the file's own statements and data cause (any SQLSTATE class,
/// `currval` before `nextval` in class 55 included), but not when a replay would hurt others
/// or cannot work.
fn replay_refused(
    err: &postgres::Error,
    took: Duration,
    lock_lost: bool,
    connection_closed: bool,
) -> Option<String> {
    if connection_closed {
        return Some(
            "the connection is gone, so the file cannot be replayed to find the statement".into(),
        );
    }
    if lock_lost {
        return Some("the migration lock was lost, so nothing more runs".into());
    }
    let Some(code) = err.code().map(|c| c.code()) else {
        return Some("the error did not come from the server".into());
    };
    let why = match &code[..2] {
        _ if code == LOCK_NOT_AVAILABLE => "a replay would queue for the same lock again and hold up other sessions while it waits (lock_not_available, 55P03)",
        "57" => "the statement was cancelled or the server is going away (SQLSTATE class 57): a replay would run into the same timeout or cancel",
        "40" => "a replay would take the same locks again and could make another session's transaction fail (deadlock or serialization failure, SQLSTATE class 40)",
        "53" => "the server is short of resources (SQLSTATE class 53: disk, memory, connections), which a replay would use again",
        "58" | "XX" => "a system or internal error of the server (SQLSTATE class 58 or XX), which a replay could make worse",
        "08" => "the connection failed (SQLSTATE class 08)",
        _ if took >= REPLAY_LIMIT => {
            return Some(format!(
                "PostgreSQL gave no position, and the failed attempt took {}: a replay to find the statement would take as long",
                human_duration(took)
            ))
        }
        _ => return None,
    };
    Some(format!(
        "PostgreSQL gave no position, and the file was not replayed to find the statement: {why}"
    ))
}

/// Replays the file statement by statement inside a transaction that is always rolled back,
/// until a statement fails with the same SQLSTATE; its position (or its first line) is the
/// location.
fn locate_by_replay(
    client: &mut Client,
    migration: &Migration,
    code: Option<&str>,
) -> Option<(usize, usize)> {
    let src = &migration.sql;
    client.batch_execute("BEGIN").ok()?;
    let mut found = None;
    for statement in sql::split(src).statements {
        if statement.is_blank(src) {
            continue;
        }
        if let Err(err) = client.batch_execute(statement.text(src)) {
            if sqlstate(&err).as_deref() == code {
                found = position_in_file(&err, 0, src, statement.start).or_else(|| {
                    statement
                        .first_token_offset(src)
                        .map(|o| sql::line_col(src, o))
                });
            }
            break;
        }
    }
    // What the replay did to the session goes too, as after the failed attempt.
    let _ = client.batch_execute(&format!("ROLLBACK;\n{FRESH_SESSION}"));
    found
}

/// Indexes marked invalid in the current database.
fn invalid_indexes(client: &mut Client) -> Vec<String> {
    let sql = "SELECT indexrelid::regclass::text AS index FROM pg_catalog.pg_index WHERE NOT indisvalid ORDER BY 1";
    client
        .simple_query(sql)
        .map(|m| {
            crate::rows::rows(&m)
                .iter()
                .filter_map(|r| r.text("index").map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_settings_follow_the_spec() {
        let s = Settings::default();
        assert_eq!(s.lock_timeout, Duration::from_secs(10));
        assert_eq!(s.statement_timeout, None);
        assert_eq!(
            s.startup_options(),
            "-c lock_timeout=10000 -c idle_session_timeout=0 -c idle_in_transaction_session_timeout=0 -c standard_conforming_strings=on"
        );
    }

    #[test]
    fn timeouts_can_be_turned_off() {
        let s = Settings {
            lock_timeout: Duration::ZERO,
            statement_timeout: Some(Duration::ZERO),
            ..Settings::default()
        };
        assert_eq!(
            s.startup_options(),
            "-c lock_timeout=0 -c idle_session_timeout=0 -c idle_in_transaction_session_timeout=0 -c standard_conforming_strings=on -c statement_timeout=0"
        );
    }

    #[test]
    fn a_transactional_failure_says_it_was_rolled_back() {
        let f = Failure {
            file_name: "003_x.sql".into(),
            location: Some((4, 7)),
            unlocated: None,
            sqlstate: Some("42P01".into()),
            error: "relation \"nope\" does not exist (SQLSTATE 42P01)".into(),
            transactional: true,
            statements_run: vec![],
            statements_total: 0,
            invalid_indexes: vec![],
            retries: 0,
            connection_lost: false,
            lock_lost: false,
            unrecorded_complete: false,
            recorded_by_another: false,
        };
        let text = f.to_string();
        assert!(text.starts_with("003_x.sql:4:7: relation"), "{text}");
        assert!(text.contains("rolled back"), "{text}");
    }

    #[test]
    fn a_no_transaction_failure_lists_what_ran() {
        let f = Failure {
            file_name: "004_y.sql".into(),
            location: Some((5, 1)),
            unlocated: None,
            sqlstate: None,
            error: "boom".into(),
            transactional: false,
            statements_run: vec![2, 3],
            statements_total: 3,
            invalid_indexes: vec!["i_t_a".into()],
            retries: 0,
            connection_lost: false,
            lock_lost: false,
            unrecorded_complete: false,
            recorded_by_another: false,
        };
        let text = f.to_string();
        assert!(text.contains("2 of its 3 statements had run"), "{text}");
        assert!(text.contains("line 2, line 3"), "{text}");
        assert!(text.contains("DROP INDEX CONCURRENTLY i_t_a"), "{text}");
    }
}
