//! The client sessions connected to the database: listed for the inventory, and in step 2
//! waited for, shown, and terminated only after the operator typed `yes`; and, when the drop
//! gave up waiting for a lock (step 4), the sessions that hold one on the database.
//!
//! Sessions are read from `pg_stat_activity` by the admin, who may see every client's
//! address; an admin role without `pg_read_all_stats` (a CREATEDB admin that is not a
//! superuser) sees only the pid, role and application of another role's session, NULL for
//! the rest, its `backend_type` included. Such a session is listed all the same, its details
//! shown as `not visible to this role` (the wording of `lock`). The admin's own session is never listed, nor the environment's session the
//! inventory reads with. Step 2 polls: a stopped runtime's backend exits a moment after its
//! socket closes, and a terminated one a moment after `pg_terminate_backend`.

use std::fmt;
use std::time::{Duration, Instant};

use postgres::Client;

use crate::reset::{Operator, TERMINATE_ANSWER};
use common::connect::literal;
use common::error::describe_pg;
use common::report::human_duration;
use common::rows::rows;

/// After the stop command, how long sessions get to end by themselves before the operator is
/// asked about them: a stopped client's backend exits a moment after its socket closes.
const SESSIONS_GRACE: Duration = Duration::from_secs(2);

/// After `pg_terminate_backend`, how long the terminated sessions get to disappear.
const TERMINATE_WAIT: Duration = Duration::from_secs(10);

/// How often session lists are polled.
const POLL: Duration = Duration::from_millis(100);

/// What is shown for a session's detail that `pg_stat_activity` does not show the admin role.
const NOT_VISIBLE: &str = "not visible to this role";

/// The columns of a [`Session`] from `pg_stat_activity a`, named for [`sessions`].
fn session_columns() -> String {
    format!(
        "a.pid AS pid, coalesce(a.usename::text, '') AS usename, \
         coalesce(a.application_name, '') AS application_name, \
         CASE WHEN a.client_addr IS NOT NULL THEN pg_catalog.host(a.client_addr) \
              WHEN a.client_port = -1 THEN 'local socket' ELSE {not_visible} END AS client, \
         coalesce(date_trunc('second', a.backend_start)::text, {not_visible}) AS since, \
         coalesce(a.state, {not_visible}) AS state",
        not_visible = literal(NOT_VISIBLE)
    )
}

/// The sessions in the rows of a query that selects [`session_columns`].
fn sessions(messages: &[postgres::SimpleQueryMessage]) -> Vec<Session> {
    rows(messages)
        .into_iter()
        .map(|row| Session {
            pid: row
                .i64("pid")
                .and_then(|pid| i32::try_from(pid).ok())
                .unwrap_or(0),
            user: row.string("usename"),
            application: row.string("application_name"),
            client: row.string("client"),
            since: row.string("since"),
            state: row.string("state"),
        })
        .collect()
}

/// A session connected to the database.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Session {
    /// Backend process id.
    pub pid: i32,
    /// The session's role.
    pub user: String,
    /// Its `application_name`.
    pub application: String,
    /// The client address, `local socket`, or [`NOT_VISIBLE`] when the admin role may not
    /// see it.
    pub client: String,
    /// When it connected, or [`NOT_VISIBLE`].
    pub since: String,
    /// `active`, `idle`, `idle in transaction`, ..., or [`NOT_VISIBLE`].
    pub state: String,
}

impl fmt::Display for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pid {}  user {}  application {:?}  client {}  connected since {}  ({})",
            self.pid, self.user, self.application, self.client, self.since, self.state
        )
    }
}

/// The client sessions connected to `db`, except `ours` (and the caller's own backend).
///
/// A session the admin role may not see into has a NULL `backend_type` too, so it is kept
/// when it has a role: a background process (autovacuum) has none, and the drop ends those
/// itself.
pub(super) fn list(
    admin: &mut Client,
    db: &str,
    ours: &[i32],
) -> Result<Vec<Session>, postgres::Error> {
    let except: Vec<String> = ours.iter().map(i32::to_string).collect();
    let except = if except.is_empty() {
        "0".to_string()
    } else {
        except.join(", ")
    };
    let messages = admin.simple_query(&format!(
        "SELECT {} \
         FROM pg_catalog.pg_stat_activity a \
         WHERE a.datname = {} \
           AND (a.backend_type = 'client backend' \
                OR (a.backend_type IS NULL AND a.usesysid IS NOT NULL)) \
           AND a.pid <> pg_catalog.pg_backend_pid() AND a.pid NOT IN ({except}) \
         ORDER BY a.pid",
        session_columns(),
        literal(db)
    ))?;
    Ok(sessions(&messages))
}

/// The pids holding a lock on `db`'s database object, which `DROP DATABASE` needs
/// exclusively: an `object` lock on `pg_database` (`LockSharedObject`), taken by `COMMENT ON
/// DATABASE`, `GRANT ... ON DATABASE` and the like from any database, and held until that
/// session's transaction ends.
fn lock_holder_pids(db: &str) -> String {
    format!(
        "SELECT l.pid FROM pg_catalog.pg_locks l \
         WHERE l.locktype = 'object' AND l.granted \
           AND l.classid = 'pg_catalog.pg_database'::pg_catalog.regclass \
           AND l.objid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = {})",
        literal(db)
    )
}

/// A query the operator can run in psql (on any database) to see who holds a lock on `db`.
pub(super) fn lock_holders_query(db: &str) -> String {
    format!(
        "SELECT pid, usename, application_name, client_addr, state, xact_start, query FROM pg_stat_activity WHERE pid IN ({})",
        lock_holder_pids(db)
    )
}

/// The sessions other than ours that hold a lock on `db`'s database object.
pub(super) fn lock_holders(admin: &mut Client, db: &str) -> Result<Vec<Session>, postgres::Error> {
    let messages = admin.simple_query(&format!(
        "SELECT {} \
         FROM pg_catalog.pg_stat_activity a \
         WHERE a.pid <> pg_catalog.pg_backend_pid() AND a.pid IN ({}) \
         ORDER BY a.pid",
        session_columns(),
        lock_holder_pids(db)
    ))?;
    Ok(sessions(&messages))
}

/// Step 2: waits briefly for sessions to end by themselves, then lists the rest and asks; only
/// `yes` terminates them. Waits (bounded) until they are gone. The error says what failed;
/// nothing was dropped by then.
pub(super) fn end_remaining(
    admin: &mut Client,
    db: &str,
    operator: &mut dyn Operator,
) -> Result<(), String> {
    let remaining = after_grace(admin, db)?;
    if remaining.is_empty() {
        operator.say(&format!("  no other session is connected to {db}"));
        return Ok(());
    }
    ask_to_terminate(&remaining, db, operator)?;
    terminate(admin, db, &remaining, operator)
}

/// [`list`] for step 2, whose errors are messages.
fn listed(admin: &mut Client, db: &str) -> Result<Vec<Session>, String> {
    list(admin, db, &[]).map_err(|e| format!("listing the sessions: {}", describe_pg(&e)))
}

/// The sessions still connected once [`SESSIONS_GRACE`] has passed (or as soon as none is).
fn after_grace(admin: &mut Client, db: &str) -> Result<Vec<Session>, String> {
    let deadline = Instant::now() + SESSIONS_GRACE;
    let mut remaining = listed(admin, db)?;
    while !remaining.is_empty() && Instant::now() < deadline {
        std::thread::sleep(POLL);
        remaining = listed(admin, db)?;
    }
    Ok(remaining)
}

/// Shows the sessions and asks; anything but [`TERMINATE_ANSWER`] aborts.
fn ask_to_terminate(
    remaining: &[Session],
    db: &str,
    operator: &mut dyn Operator,
) -> Result<(), String> {
    operator.say(&format!(
        "  {} session{} still connected to {db}:",
        remaining.len(),
        if remaining.len() == 1 { " is" } else { "s are" }
    ));
    for s in remaining {
        operator.say(&format!("    {s}"));
    }
    let answer = operator.ask(&format!(
        "Type {TERMINATE_ANSWER} to terminate {} (pg_terminate_backend), anything else aborts",
        if remaining.len() == 1 {
            "this session".to_string()
        } else {
            format!("these {} sessions", remaining.len())
        }
    ));
    if answer.as_deref() == Some(TERMINATE_ANSWER) {
        return Ok(());
    }
    let why = match answer {
        None => super::confirm::NO_ANSWER.to_string(),
        Some(a) => format!("the answer was {a:?}, not {TERMINATE_ANSWER:?}"),
    };
    Err(format!("aborted: the sessions were not terminated ({why})"))
}

/// `pg_terminate_backend` for each session, then waits (at most [`TERMINATE_WAIT`]) until
/// they are gone.
fn terminate(
    admin: &mut Client,
    db: &str,
    sessions: &[Session],
    operator: &mut dyn Operator,
) -> Result<(), String> {
    let pids: Vec<String> = sessions.iter().map(|s| s.pid.to_string()).collect();
    let messages = admin
        .simple_query(&format!(
            "SELECT pid, pg_catalog.pg_terminate_backend(pid) AS terminated FROM pg_catalog.unnest(ARRAY[{}]::int[]) AS pid",
            pids.join(", ")
        ))
        .map_err(|e| format!("pg_terminate_backend: {}", describe_pg(&e)))?;
    let refused: Vec<String> = rows(&messages)
        .into_iter()
        .filter(|r| !r.bool("terminated"))
        .map(|r| r.string("pid"))
        .collect();
    // `false` also means the session had already gone; only those still there count.
    let deadline = Instant::now() + TERMINATE_WAIT;
    loop {
        let still: Vec<Session> = listed(admin, db)?
            .into_iter()
            .filter(|s| pids.contains(&s.pid.to_string()))
            .collect();
        if still.is_empty() {
            operator.say(&format!("  terminated {} session(s)", pids.len()));
            return Ok(());
        }
        if Instant::now() >= deadline {
            let hint = if refused.is_empty() {
                String::new()
            } else {
                format!(
                    " (pg_terminate_backend was refused for pid {}: the admin role needs to be a superuser or a member of the sessions' roles)",
                    refused.join(", ")
                )
            };
            return Err(format!(
                "{} session(s) still connected {} after pg_terminate_backend{hint}: {}",
                still.len(),
                human_duration(TERMINATE_WAIT),
                still
                    .iter()
                    .map(|s| s.pid.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_admin_may_not_see_is_said_as_lock_says_it() {
        let columns = session_columns();
        assert_eq!(columns.matches("'not visible to this role'").count(), 3);
        assert!(!columns.contains("hidden"), "{columns}");
        assert!(!columns.contains("'unknown'"), "{columns}");
    }

    #[test]
    fn the_lock_holder_query_names_the_database_as_a_literal() {
        let sql = lock_holders_query("dreichor_dev");
        assert!(sql.contains("pg_catalog.pg_locks"), "{sql}");
        assert!(sql.contains("datname = 'dreichor_dev'"), "{sql}");
    }
}
