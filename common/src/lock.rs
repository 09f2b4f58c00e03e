//! The migration lock: one runner at a time per database.
//!
//! A session-level advisory lock on a key reserved for the tracking table. Session-level, so
//! that it spans the many transactions of a run, and so that PostgreSQL releases it by itself
//! when the runner's connection ends for any reason (kill -9, network loss): a crashed runner
//! never leaves a stale lock behind, unlike a lock row in a table.
//!
//! It is held by a session of its own ([`Hold`]) that never runs a line of a migration file.
//! A file runs in the runner's other session, and whatever it calls there
//! (`pg_advisory_unlock_all()`, in a `DO` block, through `EXECUTE`, by a quoted name or from a
//! function of its own) releases only that session's advisory locks: the hold cannot be
//! released from a file (issue 10, case 5). A file can still end the lock's session with
//! `pg_terminate_backend` (a migration that clears other sessions off a table does exactly
//! that); so the hold is proven before every commit ([`LOST_CONDITION`], inside the file's
//! transaction) and before every statement of a no-transaction file ([`Hold::verify`]), and
//! the run stops when it is gone.
//!
//! It is taken by polling `pg_try_advisory_lock` from an idle session, never by blocking in
//! `pg_advisory_lock`: a session waiting inside `pg_advisory_lock` holds a snapshot, and a
//! `CREATE INDEX CONCURRENTLY` in the running migration waits for every such snapshot to go
//! away, so the two would wait for each other forever (PostgreSQL docs, CREATE INDEX,
//! "Building Indexes Concurrently").

use std::time::{Duration, Instant};

use postgres::Client;

use crate::rows::{rows, Row};

/// The advisory lock key: the first 8 bytes of SHA-256("public.dreichor_schema_migrations")
/// read as a big-endian i64, so that it is tied to the table and unlikely to collide with a
/// key an application picks. In `pg_locks` a bigint key shows as `classid` (high 32 bits) and
/// `objid` (low 32 bits) with `objsubid = 1`.
pub const KEY: i64 = 8_575_455_468_313_837_003;

/// `classid` of [`KEY`] in `pg_locks`.
pub const CLASSID: u32 = (KEY as u64 >> 32) as u32;
/// `objid` of [`KEY`] in `pg_locks`.
pub const OBJID: u32 = KEY as u64 as u32;

/// The application name of the session that holds the lock, in `pg_stat_activity`. A file
/// that ends other sessions (to clear a table of its users, say) must spare it: ending it ends
/// the run.
pub const APPLICATION: &str = "dreichor-migrate-lock";

/// How often a waiting runner asks again.
const POLL: Duration = Duration::from_millis(100);

/// Who holds the lock, as far as `pg_stat_activity` lets this role see.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Holder {
    /// The backend's process id (for `pg_terminate_backend`, if it must come to that).
    pub pid: String,
    /// The holder's application name.
    pub application: String,
    /// The holder's role.
    pub user: String,
    /// The client address, or `local socket`.
    pub client: String,
    /// When the holder's session started.
    pub since: String,
    /// What the session is doing (`active`, `idle`, ...).
    pub state: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {}, application {:?}, user {}, client {}, connected since {}, state {}",
            self.pid, self.application, self.user, self.client, self.since, self.state
        )
    }
}

/// The query that finds the holder of the lock in the current database (none: no row).
/// Callers pin `search_path` ([`crate::connect::pinned`]). The activity row comes from
/// `pg_stat_get_activity(pid)` for the one holder rather than from the `pg_stat_activity`
/// view, which is markedly slower in a fresh backend (cold catalog caches), and the gate
/// runs in a fresh backend on every deployment. A role without `pg_read_all_stats` sees NULL
/// for another role's client address and times: that is said, not guessed.
pub fn holder_query() -> String {
    format!(
        "SELECT l.pid::text AS pid, coalesce(a.application_name, '') AS application, \
                coalesce(pg_catalog.pg_get_userbyid(a.usesysid)::text, '') AS role, \
                CASE WHEN a.client_port = -1 THEN 'local socket' \
                     WHEN a.client_addr IS NOT NULL THEN pg_catalog.host(a.client_addr) \
                     WHEN a.pid IS NULL THEN 'unknown (session ended)' \
                     ELSE 'not visible to this role' END AS client, \
                coalesce(a.backend_start::text, 'not visible to this role') AS since, \
                coalesce(a.state, 'not visible to this role') AS state \
         FROM pg_catalog.pg_locks l \
         LEFT JOIN LATERAL pg_catalog.pg_stat_get_activity(l.pid) a ON true \
         WHERE {}",
        held_in_this_database()
    )
}

/// A scalar subquery: the pids holding the lock in the current database as a JSON array,
/// NULL when nobody holds it. Cheaper than [`holder_query`] in a fresh backend; the gate asks
/// for the details only when there is a holder.
pub fn holder_pids_query() -> String {
    format!(
        "SELECT pg_catalog.json_agg(l.pid) FROM pg_catalog.pg_locks l \
         WHERE {}",
        held_in_this_database()
    )
}

/// The `pg_locks l` rows of the migration lock, granted, in the current database.
fn held_in_this_database() -> String {
    format!(
        "l.locktype = 'advisory' AND l.granted AND l.classid = {CLASSID} AND l.objid = {OBJID} \
         AND l.objsubid = 1 \
         AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())"
    )
}

/// Turns a row of [`holder_query`] into a [`Holder`].
pub fn holder_from_row(row: &Row) -> Holder {
    Holder {
        pid: row.string("pid"),
        application: row.string("application"),
        user: row.string("role"),
        client: row.string("client"),
        since: row.string("since"),
        state: row.string("state"),
    }
}

/// Who holds the lock now, if anyone.
pub fn holder(client: &mut Client) -> Result<Option<Holder>, postgres::Error> {
    let messages = match client.simple_query(&crate::connect::pinned(&holder_query())) {
        Ok(messages) => messages,
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK");
            return Err(e);
        }
    };
    Ok(rows(&messages).first().map(holder_from_row))
}

/// The outcome of [`acquire`].
#[derive(Debug)]
pub enum Acquired {
    /// The lock is held by the returned session until [`Hold::release`] or its end.
    Yes(Hold),
    /// Not within the wait; who held it when we gave up (if still visible).
    No(Option<Holder>),
}

/// The migration lock, held by a session that runs nothing but this module's queries.
pub struct Hold {
    /// `None` while lent ([`Hold::lend`]).
    session: Option<Client>,
    /// The thread that has the session while it is lent; it gives the session back.
    lent: Option<std::thread::JoinHandle<Client>>,
    pid: i32,
}

impl std::fmt::Debug for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hold")
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

/// The lock's session ended while the run held it: terminated (by a file's
/// `pg_terminate_backend`, or an operator), or the server went away. Another run may hold the
/// lock now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the migration lock was lost: its session (pid {pid}, application_name dreichor-migrate-lock) ended ({reason}); another migrate run may hold it now. A file that ends other sessions must spare that one")]
pub struct Lost {
    /// The process id the lock's session had.
    pub pid: i32,
    /// What the client saw.
    pub reason: String,
}

/// An SQL condition, for the runner's other session, that is true when the lock is no longer
/// held by anyone: `pg_try_advisory_xact_lock` succeeds only when no other session holds the
/// key. While the [`Hold`]'s session lives it holds the key, so the condition is false; when
/// that session has ended, the condition is true (and the transaction-level lock it took goes
/// with the transaction). No catalog read: it costs about as much as `SELECT 1` (a `pg_locks`
/// scan cost about 0.19 ms a call, `pg_stat_get_activity(pid)` about 0.06 ms).
///
/// A second run that took the key in between makes the condition false again; for a
/// transactional file that is harmless, because the tracking row's primary key lets only one
/// of two runs commit a version, together with the file.
pub const LOST_CONDITION: &str = "pg_catalog.pg_try_advisory_xact_lock(8575455468313837003)";

impl Hold {
    /// The lock's session's process id, as `pg_locks` shows the holder.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Proves that the lock is still held, with one round trip on the lock's session: that
    /// session runs nothing that could release the key, so while it answers, it holds it.
    /// # Errors
    /// [`Lost`] when the session is gone.
    pub fn verify(&mut self) -> Result<(), Lost> {
        self.session().simple_query("").map(drop).map_err(|e| Lost {
            pid: self.pid,
            reason: crate::error::describe_pg(&e),
        })
    }

    /// Waits, at most `wait`, until no session of this database named `application` (the
    /// runner's file session) is running a statement: the backend of a run killed with
    /// `kill -9` goes on with its file's message after its lock's session ended with the
    /// process, and a run that went ahead meanwhile could run the same file beside it.
    /// Waiting runners' file sessions are idle, so they do not count. Returns the pids still
    /// running when the wait ended (empty: none).
    /// # Errors
    /// A failed query on the lock's session.
    pub fn wait_for_orphans(
        &mut self,
        application: &str,
        wait: Duration,
        mut on_wait: impl FnMut(&[i32]),
    ) -> Result<Vec<i32>, postgres::Error> {
        let query = format!(
            "SELECT pid FROM pg_catalog.pg_stat_activity \
             WHERE datname = pg_catalog.current_database() AND application_name = {} \
               AND state <> 'idle' AND pid <> pg_catalog.pg_backend_pid() ORDER BY pid",
            crate::connect::literal(application)
        );
        let deadline = Instant::now() + wait;
        let mut told = false;
        loop {
            let pids: Vec<i32> = rows(&self.session().simple_query(&query)?)
                .iter()
                .filter_map(|row| row.i64("pid").and_then(|p| i32::try_from(p).ok()))
                .collect();
            if pids.is_empty() || Instant::now() >= deadline {
                return Ok(pids);
            }
            if !told {
                on_wait(&pids);
                told = true;
            }
            std::thread::sleep(POLL.min(deadline.saturating_duration_since(Instant::now())));
        }
    }

    /// The lock's session, for the tools' own read-only queries while the run holds the lock
    /// (half of the schema snapshot, [`crate::snapshot::store::record`]): never a line of a
    /// migration file, and nothing that takes or releases a lock, so the key stays held.
    pub fn session_for_reading(&mut self) -> &mut Client {
        self.session()
    }

    /// Lends the lock's session to `work` on a thread of its own, for the tools' own
    /// read-only queries while the run applies files on its other session (planning the
    /// snapshot's capture ahead, [`crate::snapshot::store::prepare`]); every later use of the
    /// session waits for `work` to end first, so `work` must end on its own, within its own
    /// timeouts. A file that ends the session meanwhile makes `work` fail and the next
    /// [`Hold::verify`] report the lock lost, as it would without the loan.
    pub fn lend(&mut self, work: impl FnOnce(&mut Client) + Send + 'static) {
        let mut session = self.take_session();
        self.lent = Some(std::thread::spawn(move || {
            work(&mut session);
            session
        }));
    }

    /// The session, back from a [`Hold::lend`] if it is lent.
    fn session(&mut self) -> &mut Client {
        if let Some(lent) = self.lent.take() {
            let session = lent
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            self.session = Some(session);
        }
        self.session
            .as_mut()
            .expect("the lock's session is either held or lent")
    }

    fn take_session(&mut self) -> Client {
        self.session();
        self.session
            .take()
            .expect("the lock's session is either held or lent")
    }

    /// Releases the lock and ends its session (the end of the session alone would release it).
    pub fn release(mut self) {
        let _ = self
            .session()
            .batch_execute(&format!("SELECT pg_catalog.pg_advisory_unlock({KEY})"));
    }
}

impl Drop for Hold {
    /// A session still lent ends after its work, as [`Hold::lend`] promises every other use:
    /// a run that fails or is interrupted before it needs the session again drops the hold
    /// and exits, and a detached thread would be killed mid-statement, which the server logs
    /// as a lost client (and which holds the lock until the server notices).
    fn drop(&mut self) {
        if let Some(lent) = self.lent.take() {
            // A panic of the work has nothing left to spoil; the session ends either way.
            let _ = lent.join();
        }
    }
}

/// Polls for the lock on `session`, a session of its own that will hold it, for at most `wait`.
/// `on_wait` is called once, with the holder, when the first attempt fails, so that the
/// operator knows why nothing happens.
/// # Errors
/// A failed query on `session`.
pub fn acquire(
    mut session: Client,
    wait: Duration,
    mut on_wait: impl FnMut(Option<&Holder>),
) -> Result<Acquired, postgres::Error> {
    let deadline = Instant::now() + wait;
    let try_lock =
        format!("SELECT pg_catalog.pg_try_advisory_lock({KEY}) AS acquired, pg_catalog.pg_backend_pid() AS pid");
    let mut told = false;
    loop {
        let messages = session.simple_query(&try_lock)?;
        let row = rows(&messages).into_iter().next().unwrap_or_else(Row::none);
        if row.bool("acquired") {
            let pid = row
                .i64("pid")
                .and_then(|p| i32::try_from(p).ok())
                .unwrap_or(0);
            return Ok(Acquired::Yes(Hold {
                session: Some(session),
                lent: None,
                pid,
            }));
        }
        if !told {
            on_wait(holder(&mut session)?.as_ref());
            told = true;
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(Acquired::No(holder(&mut session)?));
        }
        std::thread::sleep(POLL.min(deadline - now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn the_lost_condition_names_the_key() {
        assert!(LOST_CONDITION.contains(&format!("({KEY})")));
    }

    #[test]
    fn the_key_is_derived_from_the_table_name() {
        let digest = Sha256::digest(b"public.dreichor_schema_migrations");
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        assert_eq!(KEY, i64::from_be_bytes(first));
    }

    #[test]
    fn pg_locks_fields_split_the_key() {
        assert_eq!(((CLASSID as u64) << 32) | OBJID as u64, KEY as u64);
        assert_eq!(CLASSID, 1_996_628_816);
        assert_eq!(OBJID, 1_342_635_467);
    }

    #[test]
    fn holders_read_from_rows() {
        let row = Row::new(
            &["pid", "application", "role", "client", "since", "state"],
            &[
                Some("42"),
                Some("dreichor-migrate"),
                Some("dreichor_dev"),
                Some("127.0.0.1"),
                Some("2026-11-24 10:00:00+00"),
                Some("active"),
            ],
        );
        let h = holder_from_row(&row);
        assert_eq!(h.pid, "42");
        assert!(h.to_string().contains("pid 42"));
    }
}
