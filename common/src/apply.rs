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
//! A file whose first line is `-- dreichor:no-transaction` runs statement by statement in
//! autocommit, split by the lexer, because PostgreSQL refuses `CREATE INDEX CONCURRENTLY` and
//! the like inside a transaction. Its row is written after its last statement; such a file
//! cannot be atomic, so the failure report says exactly which statements had run.
//!
//! PostgreSQL reports an error position as a character index into the query string; it is
//! mapped back to a line and column of the file. Errors without a position (a constraint
//! violation, a missing table in ALTER TABLE) are located by replaying the file statement by
//! statement in a transaction that is rolled back.

use std::fmt;
use std::time::{Duration, Instant};

use postgres::error::ErrorPosition;
use postgres::Client;

use crate::cli::human_duration;
use crate::error::describe_pg;
use crate::migrations::Migration;
use crate::sql;
use crate::tracking;

/// SQLSTATE lock_not_available: `lock_timeout` expired.
const LOCK_NOT_AVAILABLE: &str = "55P03";

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
    pub fn startup_options(&self) -> String {
        let mut options = format!("-c lock_timeout={}", self.lock_timeout.as_millis());
        if let Some(t) = self.statement_timeout {
            options.push_str(&format!(" -c statement_timeout={}", t.as_millis()));
        }
        options
    }
}

/// What every file starts from: the session's defaults. A file may change its session
/// (`SET search_path`, `SET ROLE`, a temporary table, a prepared statement, a cursor, a
/// `LISTEN`, cached sequence values), and that must not reach the next file: otherwise the
/// same files would build a different schema, or fail, when applied in one run rather than
/// one run at a time (`hard-reset` applies everything in one run). `RESET ALL` leaves the
/// role alone, hence `RESET ROLE`; `DISCARD ALL` would do all of it but refuses to run in a
/// transaction.
const FRESH_SESSION: &str = "RESET ALL;\nRESET ROLE;\nDISCARD TEMP;\nDEALLOCATE ALL;\nCLOSE ALL;\nUNLISTEN *;\nDISCARD SEQUENCES;\n";

/// Remembers, in a transaction-local setting, which transaction the runner opened for the
/// file, for [`guard`] to compare with at the end.
pub const MARK_TRANSACTION: &str =
    "SELECT pg_catalog.set_config('dreichor.txid', pg_catalog.txid_current()::text, true);\n";

/// The start of the message that marks a guard failure: what [`Failure`] recognises.
const GUARD_MARK: &str = "dreichor:";

/// Runs just before the tracking row is written, with `search_path` pinned: refuses to
/// record the file when the runner's transaction is not the one it opened, i.e. when the file
/// ended it with a COMMIT, ROLLBACK or END that the lexer did not recognise. The lexer is the
/// first line of defence, this check the last. (A file that would release the migration lock
/// is refused by discovery: checking `pg_locks` here cost about 0.12 ms a file.)
///
/// Plain SQL rather than a `DO` block: compiling PL/pgSQL for every file cost about 0.2 ms a
/// file. The error is raised by casting the message to `int`; the
/// `left(pg_backend_pid()::text, 0)` (an empty string from a non-immutable function) keeps the
/// planner from evaluating that cast while folding constants, i.e. always.
pub fn guard() -> String {
    format!(
        "SELECT CASE WHEN pg_catalog.current_setting('dreichor.txid', true) IS DISTINCT FROM pg_catalog.txid_current()::text \
         THEN ({}::text || pg_catalog.left(pg_catalog.pg_backend_pid()::text, 0))::int END",
        crate::connect::literal(
            "dreichor: the file ended the runner's transaction itself (a COMMIT, ROLLBACK or END that the lexer did not recognise): statements before that point may be committed; nothing was recorded"
        )
    )
}

/// Why a file failed, with everything an operator needs to act.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The file.
    pub file_name: String,
    /// 1-based line and column in the file, when known.
    pub location: Option<(usize, usize)>,
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
        if self.retries > 0 {
            write!(
                f,
                "\n  retried {} times after lock_timeout; a long transaction holds a lock this file needs: find it in pg_stat_activity, or raise --lock-timeout",
                self.retries
            )?;
        }
        if self.transactional && self.sqlstate.as_deref() == Some("25001") {
            write!(
                f,
                "\n  this statement cannot run inside a transaction: make `{}` the first line of the file",
                crate::migrations::NO_TRANSACTION_MARKER
            )?;
        }
        if self.connection_lost {
            // The caller says what a new session finds.
        } else if self.error.contains(GUARD_MARK) {
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
            if run.is_empty() {
                write!(f, "\n  no statement of this no-transaction file had run")?;
            } else {
                let lines: Vec<String> = run.iter().map(|l| format!("line {l}")).collect();
                write!(
                    f,
                    "\n  this file runs without a transaction: {} of its {} statements had run and stay applied ({}); nothing was recorded: make the file safe to re-run (IF NOT EXISTS) or undo those statements by hand, then run migrate again (an INVALID index must be dropped first: IF NOT EXISTS would keep it)",
                    run.len(),
                    self.statements_total,
                    lines.join(", ")
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
/// `interrupted` says whether the operator asked to stop (Ctrl-C): it is looked at while
/// waiting to retry and between the statements of a no-transaction file, where no cancel
/// request can reach a running statement.
pub fn apply_one(
    client: &mut Client,
    migration: &Migration,
    settings: &Settings,
    progress: &mut dyn FnMut(&str),
    interrupted: &dyn Fn() -> bool,
) -> Result<Duration, Box<Failure>> {
    if migration.transactional {
        apply_transactional(client, migration, settings, progress, interrupted)
    } else {
        apply_statements(client, migration, interrupted)
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

/// What precedes the file in the message (`BEGIN`, [`FRESH_SESSION`], [`MARK_TRANSACTION`]);
/// error positions are shifted by its length.
fn prefix() -> String {
    format!("BEGIN;\n{FRESH_SESSION}{MARK_TRANSACTION}")
}

fn apply_transactional(
    client: &mut Client,
    migration: &Migration,
    settings: &Settings,
    progress: &mut dyn FnMut(&str),
    interrupted: &dyn Fn() -> bool,
) -> Result<Duration, Box<Failure>> {
    // The newline before `;` ends a trailing line comment, and the lone `;` ends a final
    // statement written without one.
    let message = format!(
        "{}{}\n;\n{};\n{};\n{};\nCOMMIT;",
        prefix(),
        migration.sql,
        crate::connect::PIN_SEARCH_PATH,
        guard(),
        tracking::insert_row(migration)
    );
    let mut retries = 0;
    loop {
        let started = Instant::now();
        let err = match client.batch_execute(&message) {
            Ok(()) => return Ok(started.elapsed()),
            Err(err) => err,
        };
        // The server skipped the rest of the message; end the failed transaction. If the
        // connection is gone, the server has rolled it back already.
        let _ = client.batch_execute("ROLLBACK");
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
        let location =
            position_in_file(&err, prefix().chars().count(), &migration.sql, 0).or_else(|| {
                if started.elapsed() < REPLAY_LIMIT && replayable(&err) {
                    locate_by_replay(client, migration, code.as_deref())
                } else {
                    None
                }
            });
        return Err(Box::new(Failure {
            file_name: migration.file_name.clone(),
            location,
            sqlstate: code,
            error: describe_pg(&err),
            transactional: true,
            statements_run: Vec::new(),
            statements_total: 0,
            invalid_indexes: Vec::new(),
            retries,
            connection_lost: client.is_closed(),
        }));
    }
}

fn apply_statements(
    client: &mut Client,
    migration: &Migration,
    interrupted: &dyn Fn() -> bool,
) -> Result<Duration, Box<Failure>> {
    let started = Instant::now();
    let src = &migration.sql;
    let statements: Vec<_> = sql::split(src)
        .statements
        .into_iter()
        .filter(|s| !s.is_blank(src))
        .collect();
    let failure = |error: String, invalid_indexes: Vec<String>| Failure {
        file_name: migration.file_name.clone(),
        location: None,
        sqlstate: None,
        error,
        transactional: false,
        statements_run: Vec::new(),
        statements_total: statements.len(),
        invalid_indexes,
        retries: 0,
        connection_lost: false,
    };
    // An INVALID index (a CREATE INDEX CONCURRENTLY that failed earlier) would be kept by a
    // re-run written with IF NOT EXISTS, and the file recorded as applied over a broken
    // index: refuse until it is dropped.
    if let Err(err) = client.batch_execute(FRESH_SESSION) {
        return Err(Box::new(Failure {
            sqlstate: sqlstate(&err),
            ..failure(describe_pg(&err), Vec::new())
        }));
    }
    let invalid = invalid_indexes(client);
    if !invalid.is_empty() {
        return Err(Box::new(failure(
            format!(
                "refusing to run this no-transaction file while the database has INVALID indexes ({}); nothing of it ran",
                invalid.join(", ")
            ),
            invalid,
        )));
    }
    let mut run = Vec::new();
    for statement in &statements {
        if interrupted() {
            return Err(Box::new(Failure {
                location: statement
                    .first_token_offset(src)
                    .map(|o| sql::line_col(src, o)),
                statements_run: run,
                ..failure("interrupted before this statement".into(), Vec::new())
            }));
        }
        let text = statement.text(src);
        let concurrent = is_concurrent(text);
        if concurrent {
            // CONCURRENTLY waits for every older transaction to end, and those waits count
            // against lock_timeout: 10 s would fail it on any busy database and leave an
            // INVALID index. Its own lock (SHARE UPDATE EXCLUSIVE) blocks no reads or writes,
            // so waiting is harmless to everyone else.
            let _ = client.batch_execute("SET lock_timeout = 0");
        }
        let result = client.batch_execute(text);
        if concurrent {
            let _ = client.batch_execute("RESET lock_timeout");
        }
        if let Err(err) = result {
            let location = position_in_file(&err, 0, src, statement.start).or_else(|| {
                statement
                    .first_token_offset(src)
                    .map(|o| sql::line_col(src, o))
            });
            return Err(Box::new(Failure {
                file_name: migration.file_name.clone(),
                location,
                sqlstate: sqlstate(&err),
                error: describe_pg(&err),
                transactional: false,
                statements_run: run,
                statements_total: statements.len(),
                invalid_indexes: invalid_indexes(client),
                retries: 0,
                connection_lost: false,
            }));
        }
        let line = statement
            .first_token_offset(src)
            .map_or(1, |o| sql::line_col(src, o).0);
        run.push(line);
    }
    client
        .batch_execute(&format!(
            "BEGIN;\n{};\n{};\nCOMMIT",
            crate::connect::PIN_SEARCH_PATH,
            tracking::insert_row(migration)
        ))
        .map_err(|err| {
            let _ = client.batch_execute("ROLLBACK");
            Box::new(Failure {
                file_name: migration.file_name.clone(),
                location: None,
                sqlstate: sqlstate(&err),
                error: format!(
                    "every statement ran, but recording the version failed: {}",
                    describe_pg(&err)
                ),
                transactional: false,
                statements_run: run.clone(),
                statements_total: statements.len(),
                invalid_indexes: Vec::new(),
                retries: 0,
                connection_lost: false,
            })
        })?;
    Ok(started.elapsed())
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
    if position == 0 || position > text.chars().count() {
        return None; // in the tracking row, not in the file
    }
    let offset = base + sql::byte_offset_of_char_position(text, position);
    Some(sql::line_col(src, offset))
}

/// Errors worth a replay: not timeouts, cancellations, deadlocks or a lost connection,
/// which a replay would only repeat or cannot reach.
fn replayable(err: &postgres::Error) -> bool {
    match err.code() {
        Some(code) => !["55", "57", "40", "08", "53", "58", "XX"]
            .iter()
            .any(|class| code.code().starts_with(class)),
        None => false,
    }
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
    let _ = client.batch_execute("ROLLBACK");
    found
}

/// Indexes marked invalid in the current database.
fn invalid_indexes(client: &mut Client) -> Vec<String> {
    let sql = "SELECT indexrelid::regclass::text FROM pg_catalog.pg_index WHERE NOT indisvalid ORDER BY 1";
    client
        .simple_query(sql)
        .map(|m| {
            crate::connect::rows(&m)
                .into_iter()
                .filter_map(|r| r.into_iter().next().flatten())
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
        assert_eq!(s.startup_options(), "-c lock_timeout=10000");
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
            "-c lock_timeout=0 -c statement_timeout=0"
        );
    }

    #[test]
    fn a_transactional_failure_says_it_was_rolled_back() {
        let f = Failure {
            file_name: "003_x.sql".into(),
            location: Some((4, 7)),
            sqlstate: Some("42P01".into()),
            error: "relation \"nope\" does not exist (SQLSTATE 42P01)".into(),
            transactional: true,
            statements_run: vec![],
            statements_total: 0,
            invalid_indexes: vec![],
            retries: 0,
            connection_lost: false,
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
            sqlstate: None,
            error: "boom".into(),
            transactional: false,
            statements_run: vec![2, 3],
            statements_total: 3,
            invalid_indexes: vec!["i_t_a".into()],
            retries: 0,
            connection_lost: false,
        };
        let text = f.to_string();
        assert!(text.contains("2 of its 3 statements had run"), "{text}");
        assert!(text.contains("line 2, line 3"), "{text}");
        assert!(text.contains("DROP INDEX CONCURRENTLY i_t_a"), "{text}");
    }
}
