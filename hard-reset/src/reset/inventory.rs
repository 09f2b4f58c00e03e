//! What will be destroyed, read and shown before the operator is asked: the database's size
//! and owner, every table with its row count, the applied migrations, and the sessions still
//! connected.
//!
//! Tables, size and migrations are read in a session of the environment's own role (it sees
//! its own database; the admin is in `postgres`), which ends before anything is terminated or
//! dropped. Row counts are exact for small tables and the planner's estimate for large ones:
//! the runtime is still running, and counting a big table could take minutes.

use std::fmt;

use postgres::Client;

use crate::reset::prepared;
use crate::reset::sessions::{self, Session};
use crate::reset::{Request, APPLICATION, CONNECT_TIMEOUT};
use common::connect;
use common::error::Error;
use common::rows::{rows, Row};
use common::tracking::{self, Shape};

/// Tables up to this size get an exact row count; larger ones show the planner's estimate
/// (`pg_class.reltuples`), because counting a big table could take minutes.
const EXACT_COUNT_MAX_BYTES: i64 = 8 * 1024 * 1024;

/// At most this many tables are listed one by one; the rest are summed up.
const MAX_TABLES_SHOWN: usize = 40;

/// One table that will be destroyed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// `schema.name`, quoted where needed.
    pub name: String,
    /// Exact row count, or the planner's estimate.
    pub rows: Rows,
}

/// A row count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    /// Counted.
    Exact(i64),
    /// `pg_class.reltuples`.
    Estimate(i64),
    /// Never analysed and too large (or not readable) to count.
    Unknown,
}

impl fmt::Display for Rows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = |n: i64| if n == 1 { "" } else { "s" };
        match *self {
            Rows::Exact(n) => write!(f, "{n} row{}", plural(n)),
            Rows::Estimate(n) => write!(f, "about {n} row{} (estimate)", plural(n)),
            Rows::Unknown => f.write_str("rows unknown (not analysed yet)"),
        }
    }
}

/// What the operator is shown before being asked: what will be destroyed.
#[derive(Debug, Clone)]
pub struct Inventory {
    /// The database.
    pub database: String,
    /// `pg_size_pretty(pg_database_size(...))`.
    pub size: String,
    /// The owner.
    pub owner: String,
    /// Every table, view-free, system schemas excluded.
    pub tables: Vec<Table>,
    /// Applied migrations: (count, latest version, its applied_at); `None` without a
    /// tracking table.
    pub migrations: Option<AppliedMigrations>,
    /// Other sessions connected to the database.
    pub sessions: Vec<Session>,
}

impl Inventory {
    /// The lines shown to the operator.
    pub fn describe(&self) -> Vec<String> {
        let mut out = vec![
            format!(
                "THIS DESTROYS the database {} and everything in it:",
                self.database
            ),
            format!("  size:      {}", self.size),
            format!("  owner:     {}", self.owner),
        ];
        if self.tables.is_empty() {
            out.push("  tables:    none".into());
        } else {
            out.push(format!("  tables:    {}", self.tables.len()));
            let width = self
                .tables
                .iter()
                .take(MAX_TABLES_SHOWN)
                .map(|t| t.name.len())
                .max()
                .unwrap_or(0);
            for table in self.tables.iter().take(MAX_TABLES_SHOWN) {
                out.push(format!("    {:<width$}  {}", table.name, table.rows));
            }
            if self.tables.len() > MAX_TABLES_SHOWN {
                out.push(format!(
                    "    ... and {} more",
                    self.tables.len() - MAX_TABLES_SHOWN
                ));
            }
        }
        out.push(match &self.migrations {
            None => format!(
                "  migrations applied: none (no tracking table {})",
                tracking::TABLE
            ),
            Some(AppliedMigrations {
                count,
                latest: Some(latest),
                latest_applied_at,
            }) if *count > 0 => format!(
                "  migrations applied: {count}, latest {latest}{}",
                latest_applied_at
                    .as_ref()
                    .map(|at| format!(" (applied {at})"))
                    .unwrap_or_default()
            ),
            Some(_) => "  migrations applied: none".into(),
        });
        if self.sessions.is_empty() {
            out.push("  sessions connected: none".into());
        } else {
            out.push(format!("  sessions connected: {}", self.sessions.len()));
            for s in &self.sessions {
                out.push(format!("    {s}"));
            }
        }
        out
    }
}

/// What the tracking table says was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMigrations {
    /// How many versions.
    pub count: usize,
    /// The latest version, if any.
    pub latest: Option<String>,
    /// When it was applied.
    pub latest_applied_at: Option<String>,
}

/// Reads what is shown before the confirmation. Tables, size and migrations come from the
/// environment's session (it sees its own database); sessions from the admin's, which may see
/// every client's details. The environment's own session is left out of the list, and ends
/// when this returns.
pub(super) fn read(request: &Request, admin: &mut Client) -> Result<Inventory, Error> {
    let db = request.database();
    // First: their locks would stall the listing below, and the drop could never run.
    let prepared = prepared::list(admin, db)
        .map_err(|e| connect::failed(&request.admin, "listing the prepared transactions", &e))?;
    if !prepared.is_empty() {
        return Err(Error::Failed(prepared::explain(
            db,
            &prepared,
            "nothing was changed (the stop command did not run, nothing was dropped)",
        )));
    }
    let mut env = connect::open(&request.url, request.env, APPLICATION, CONNECT_TIMEOUT)?;
    common::role::require_schema_owner(&mut env, &request.url, request.env, "hard-reset")?;
    let failed = |what: &str, e: &postgres::Error| connect::failed(&request.url, what, e);
    // Bounded: the runtime is still running and may hold locks.
    // Pinned search_path: what is shown must be what is there, whatever the role's settings.
    env.batch_execute(
        "SET statement_timeout = '10s'; SET lock_timeout = '2s'; SET search_path = pg_catalog, pg_temp",
    )
        .map_err(|e| failed("setting timeouts", &e))?;
    let messages = env
        .simple_query(
            "SELECT pg_catalog.pg_size_pretty(pg_catalog.pg_database_size(current_database())) AS size, \
                    pg_catalog.pg_get_userbyid(d.datdba) AS owner, pg_catalog.pg_backend_pid() AS pid, \
                    d.oid::text || '@' || pg_catalog.date_part('epoch', pg_catalog.pg_postmaster_start_time())::text AS instance \
             FROM pg_catalog.pg_database d WHERE d.datname = current_database()",
        )
        .map_err(|e| failed("reading the database's size", &e))?;
    let row = rows(&messages).into_iter().next().unwrap_or_else(Row::none);
    let (size, owner) = (row.string("size"), row.string("owner"));
    same_instance(request, admin, &row.string("instance"))?;
    let own_pid = row
        .i64("pid")
        .and_then(|pid| i32::try_from(pid).ok())
        .unwrap_or(0);
    let tables = tables(&mut env).map_err(|e| failed("listing the tables", &e))?;
    let migrations = applied(&mut env).map_err(|e| failed("reading the tracking table", &e))?;
    let sessions = sessions::list(admin, db, &[own_pid])
        .map_err(|e| connect::failed(&request.admin, "listing the sessions", &e))?;
    Ok(Inventory {
        database: db.to_string(),
        size,
        owner,
        tables,
        migrations,
        sessions,
    })
}

/// Refuses (exit 2) unless the admin connection sees the very database `DATABASE_URL` is in:
/// the same oid on a server started at the same moment. The start time is compared as a Unix
/// time, a value: its text form follows each session's `TimeZone` and `DateStyle`, which an
/// `ALTER DATABASE ... SET timezone` changes for one of the two sessions only (issue 10). `localhost`, `127.0.0.1` and `[::1]`
/// on one port can still be two servers (one on IPv4, one on IPv6), and the drop must hit the
/// database whose contents were just shown.
fn same_instance(request: &Request, admin: &mut Client, env_identity: &str) -> Result<(), Error> {
    let messages = admin
        .simple_query(&format!(
            "SELECT d.oid::text || '@' || pg_catalog.date_part('epoch', pg_catalog.pg_postmaster_start_time())::text AS instance \
             FROM pg_catalog.pg_database d WHERE d.datname = {}",
            connect::literal(request.database())
        ))
        .map_err(|e| connect::failed(&request.admin, "identifying the instance", &e))?;
    let admin_identity = rows(&messages)
        .into_iter()
        .next()
        .map(|row| row.string("instance"))
        .unwrap_or_default();
    if admin_identity.is_empty() || admin_identity != env_identity {
        return Err(Error::Refused(format!(
            "DREICHOR_ADMIN_DATABASE_URL ({}) and DATABASE_URL ({}) do not reach the same PostgreSQL instance (database {} is {:?} there and {:?} here); use the same host and port in both; nothing was changed",
            request.admin.redacted(),
            request.url.redacted(),
            request.database(),
            admin_identity,
            env_identity
        )));
    }
    Ok(())
}

/// Every table outside the system schemas, counted exactly when that is cheap: small, plain,
/// readable, and among the first [`MAX_TABLES_SHOWN`].
fn tables(env: &mut Client) -> Result<Vec<Table>, postgres::Error> {
    let messages = env.simple_query(
        "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) AS name, c.relkind::text AS kind, \
                c.reltuples::bigint AS estimate, pg_catalog.pg_relation_size(c.oid) AS bytes, \
                pg_catalog.has_table_privilege(c.oid, 'SELECT') AS readable \
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p', 'm') \
           AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
           AND n.nspname !~ '^pg_(toast|temp_)' \
         ORDER BY n.nspname, c.relname",
    )?;
    let mut tables = Vec::new();
    for row in rows(&messages) {
        let name = row.string("name");
        let estimate = row.i64("estimate").unwrap_or(-1);
        let bytes = row.i64("bytes").unwrap_or(i64::MAX);
        let readable = row.bool("readable") && row.text("kind") == Some("r");
        let mut counted = None;
        if readable && bytes <= EXACT_COUNT_MAX_BYTES && tables.len() < MAX_TABLES_SHOWN {
            // Outside a transaction, so a failure (a lock held by the runtime) spoils nothing.
            if let Ok(m) = env.simple_query(&format!("SELECT count(*) FROM {name}")) {
                counted = rows(&m).first().and_then(|r| r.i64("count"));
            }
        }
        let rows = match (counted, estimate) {
            (Some(n), _) => Rows::Exact(n),
            (None, n) if n >= 0 => Rows::Estimate(n),
            _ => Rows::Unknown,
        };
        tables.push(Table { name, rows });
    }
    Ok(tables)
}

/// What the tracking table says was applied; `None` without a tracking table.
fn applied(env: &mut Client) -> Result<Option<AppliedMigrations>, postgres::Error> {
    let shape = tracking::shape(env)?;
    if shape == Shape::Missing {
        return Ok(None);
    }
    let applied = tracking::read(env, shape)?;
    Ok(Some(AppliedMigrations {
        count: applied.len(),
        latest: applied.last().map(|a| a.version.clone()),
        latest_applied_at: applied.last().and_then(|a| a.applied_at.clone()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inventory_lists_tables_migrations_and_sessions() {
        let inventory = Inventory {
            database: "dreichor_dev".into(),
            size: "7561 kB".into(),
            owner: "dreichor_dev".into(),
            tables: vec![
                Table {
                    name: "public.dreichor_schema_migrations".into(),
                    rows: Rows::Exact(1),
                },
                Table {
                    name: "public.big".into(),
                    rows: Rows::Estimate(120_000),
                },
            ],
            migrations: Some(AppliedMigrations {
                count: 1,
                latest: Some("001_init".into()),
                latest_applied_at: Some("2026-01-01".into()),
            }),
            sessions: vec![Session {
                pid: 42,
                user: "dreichor_dev".into(),
                application: "runtime".into(),
                client: "127.0.0.1".into(),
                since: "2026-01-01 10:00:00+00".into(),
                state: "idle".into(),
            }],
        };
        let text = inventory.describe().join("\n");
        assert!(text.contains("size:      7561 kB"), "{text}");
        assert!(
            text.contains("public.dreichor_schema_migrations  1 row"),
            "{text}"
        );
        assert!(text.contains("about 120000 rows (estimate)"), "{text}");
        assert!(
            text.contains("migrations applied: 1, latest 001_init"),
            "{text}"
        );
        assert!(
            text.contains("pid 42  user dreichor_dev  application \"runtime\""),
            "{text}"
        );
    }
}
