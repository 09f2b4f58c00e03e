//! The admin connection (`DREICHOR_ADMIN_DATABASE_URL`), which drops and creates the database,
//! and the checks made on it before the operator is shown anything: it landed in `postgres`,
//! the environment's database exists, and the role may drop it and create it again with the
//! same owner.
//!
//! # No unbounded wait
//!
//! `DROP DATABASE` waits for the lock on the database object, and any session may hold one
//! (an open transaction that ran `COMMENT ON DATABASE` or `GRANT ... ON DATABASE`, from any
//! database, so step 2 does not see it). The drop runs while Ctrl-C, SIGTERM and SIGHUP are
//! held, so an unbounded wait could only be ended with `kill -9`, and the orphaned backend
//! would then complete the drop when the lock was released: the database gone without a
//! word. So the session gets [`LOCK_TIMEOUT`] (the drop then fails with SQLSTATE 55P03 and
//! nothing dropped) and, from PostgreSQL 14 on, `client_connection_check_interval`, with which
//! a backend whose client has gone cancels its statement instead of carrying it out
//! (<https://www.postgresql.org/docs/current/runtime-config-connection.html>). Both are
//! session settings, so they cover `CREATE DATABASE` in step 5 too.

use postgres::Client;

use crate::reset::{Request, APPLICATION, CONNECT_TIMEOUT};
use common::connect::{self, literal};
use common::error::Error;
use common::rows::{rows, Row};

/// How long the admin session waits for a lock before its statement fails (55P03).
pub(super) const LOCK_TIMEOUT: &str = "10s";

/// How often a backend running a statement of the admin session checks that the client is
/// still there (PostgreSQL 14 and later).
const CLIENT_CHECK_INTERVAL: &str = "1s";

/// Connects as the admin and checks it can do the job: it is in `postgres`, the target exists,
/// and it is a superuser, or has CREATEDB and is a member of the owner (to drop and to create
/// with that owner). Exit 2 otherwise, exit 3 when unreachable.
pub(super) fn open(request: &Request) -> Result<Client, Error> {
    let db = request.database();
    let mut admin = connect::connect(&request.admin, APPLICATION, CONNECT_TIMEOUT)?;
    // The admin session's own queries mean the catalog's functions and operators, whatever
    // the admin role's settings put on its search_path.
    admin
        .batch_execute(&format!(
            "SET search_path = pg_catalog, pg_temp; SET lock_timeout = {}",
            literal(LOCK_TIMEOUT)
        ))
        .map_err(|e| connect::failed(&request.admin, "setting up the admin connection", &e))?;
    // Best effort: before PostgreSQL 14 the setting does not exist (42704), and the lock
    // timeout alone bounds the wait. An error outside a transaction leaves the session usable.
    let _ = admin.batch_execute(&format!(
        "SET client_connection_check_interval = {}",
        literal(CLIENT_CHECK_INTERVAL)
    ));
    let sql = format!(
        "SELECT current_database() AS database, current_user AS role, r.rolsuper AS superuser, \
                r.rolcreatedb AS createdb, d.oid IS NOT NULL AS database_exists, \
                pg_catalog.pg_get_userbyid(d.datdba) AS owner, \
                CASE WHEN d.oid IS NULL THEN NULL ELSE pg_catalog.pg_has_role(current_user, d.datdba, 'MEMBER') END AS owner_member \
         FROM pg_catalog.pg_roles r LEFT JOIN pg_catalog.pg_database d ON d.datname = {} \
         WHERE r.rolname = current_user",
        literal(db)
    );
    let messages = admin
        .simple_query(&sql)
        .map_err(|e| connect::failed(&request.admin, "checking the admin connection", &e))?;
    let row = rows(&messages).into_iter().next().unwrap_or_else(Row::none);
    let database = row.string("database");
    if database != common::config::ADMIN_DATABASE {
        return Err(Error::Refused(format!(
            "the admin connection ({}) landed in database {:?}, not postgres; nothing was changed",
            request.admin.redacted(),
            database
        )));
    }
    if !row.bool("database_exists") {
        return Err(Error::Refused(format!(
            "the database {db} does not exist on this instance: there is nothing to reset; create it with infra/db/provision.sh; nothing was changed"
        )));
    }
    let superuser = row.bool("superuser");
    let creates_as_owner = row.bool("createdb") && row.bool("owner_member");
    if !(superuser || creates_as_owner) {
        return Err(Error::Refused(format!(
            "the admin role {:?} ({}) can neither drop nor recreate {db}: it must be a superuser, or have CREATEDB and be a member of the owner {:?}; nothing was changed",
            row.string("role"),
            request.admin.redacted(),
            row.string("owner")
        )));
    }
    Ok(admin)
}
