//! Connecting, and the checks every tool makes right after: the right database, and
//! environment-specific credentials ([`crate::identity`]).
//!
//! The connection is built from the validated parts of the URL ([`DbUrl::pg_config`]), never
//! from the raw string. After connecting, one query confirms that the server put us in the
//! database that was validated and that the role is what the design document calls
//! environment-specific: not a superuser (a superuser reaches every database), and without
//! CONNECT on the other environment's database.

use std::time::Duration;

use postgres::{Client, NoTls};

use crate::config::{DbUrl, Env};
use crate::error::{describe_pg, is_unreachable, Error};
use crate::identity::{check_identity, identity_query};
use crate::rows::{rows, Row};

// Where these lived before they got files of their own; callers may name them either way.
pub use crate::bounded::{within, Bounded};
pub use crate::pinned::{pinned, pinned_read_only, run_pinned, PIN_SEARCH_PATH};
pub use crate::quote::{identifier, literal};

/// The settings every session of the tools' own pins at startup (startup options win over
/// role and database defaults), so that what the tools' queries mean, and how long a session
/// may idle, do not depend on an `ALTER ROLE/DATABASE ... SET` (issue 10):
/// - `search_path`: the catalog's functions and operators, never a look-alike;
/// - `standard_conforming_strings`: how the literals the tools send are read (they are
///   quoted with [`literal`], which is right under either setting, but a pinned setting makes
///   that one less thing to reason about);
/// - `DateStyle`, `IntervalStyle`, `extra_float_digits`, `bytea_output`: the text forms of
///   the values the tools read (identities are compared as values, never as text, anyway);
/// - `idle_session_timeout`, `idle_in_transaction_session_timeout`: the migration lock's
///   session idles for a whole run, and must not be ended by a default meant for clients.
///
/// Not for the session that runs migration files: that one sees the database's own defaults,
/// as psql would ([`crate::apply::Settings::startup_options`]).
pub const TOOL_SESSION_OPTIONS: &str = "-c search_path=pg_catalog,pg_temp -c standard_conforming_strings=on -c DateStyle=ISO,MDY -c IntervalStyle=postgres -c extra_float_digits=1 -c bytea_output=hex -c idle_session_timeout=0 -c idle_in_transaction_session_timeout=0";

/// Opens a connection with [`TOOL_SESSION_OPTIONS`]. Any failure to get a working session
/// (refused, timed out, authentication failed, no such database) is [`Error::Unreachable`],
/// exit 3.
pub fn connect(url: &DbUrl, application: &str, timeout: Duration) -> Result<Client, Error> {
    connect_with(url, application, timeout, |config| {
        config.options(TOOL_SESSION_OPTIONS);
    })
}

/// [`connect`], with the configuration adjusted by `adjust` (startup options, say). The
/// addresses of `localhost` are tried one by one: a server that answered (a wrong password,
/// a missing database) is the answer, and is reported as such rather than hidden behind
/// "connection refused" from the next address.
pub fn connect_with(
    url: &DbUrl,
    application: &str,
    timeout: Duration,
    adjust: impl Fn(&mut postgres::Config),
) -> Result<Client, Error> {
    let mut last = None;
    for mut config in url.pg_configs(application, timeout) {
        adjust(&mut config);
        match config.connect(NoTls) {
            Ok(client) => return Ok(client),
            Err(e) if e.as_db_error().is_some() => return Err(unreachable(url, &e)),
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => unreachable(url, &e),
        None => Error::Unreachable {
            url: url.redacted(),
            reason: "no address to connect to".into(),
        },
    })
}

/// The error for a failed connection, with the redacted URL.
pub fn unreachable(url: &DbUrl, err: &postgres::Error) -> Error {
    Error::Unreachable {
        url: url.redacted(),
        reason: describe_pg(err),
    }
}

/// Maps an error on an open connection: a lost connection is exit 3, anything else is a
/// failure of the operation described by `context`.
pub fn failed(url: &DbUrl, context: &str, err: &postgres::Error) -> Error {
    if err.as_db_error().is_none() && is_unreachable(err) {
        Error::Unreachable {
            url: url.redacted(),
            reason: format!("{context}: {}", describe_pg(err)),
        }
    } else {
        Error::Failed(format!("{context}: {}", describe_pg(err)))
    }
}

/// Connects with [`TOOL_SESSION_OPTIONS`] and makes the identity checks: the session every
/// tool's own queries run in (the migration lock's, `hard-reset`'s inventory, a second look
/// after a lost connection). The whole of it, authentication included, is bounded by
/// `timeout`.
pub fn open(url: &DbUrl, env: Env, application: &str, timeout: Duration) -> Result<Client, Error> {
    open_with(url, env, application, timeout, TOOL_SESSION_OPTIONS)
}

/// [`open`] with startup `options` (`-c name=value ...`; empty for none), which become the
/// session's defaults.
pub fn open_with(
    url: &DbUrl,
    env: Env,
    application: &str,
    timeout: Duration,
    options: &str,
) -> Result<Client, Error> {
    let (url, application, options) = (url.clone(), application.to_string(), options.to_string());
    within(timeout, &url.clone(), move || {
        let mut client = connect_with(&url, &application, timeout, |config| {
            if !options.is_empty() {
                config.options(&options);
            }
        })?;
        let messages = run_pinned(&mut client, &pinned_read_only(&identity_query(env)))
            .map_err(|e| failed(&url, "checking the connection", &e))?;
        let row = rows(&messages).into_iter().next().unwrap_or_else(Row::none);
        check_identity(&url, env, &row)?;
        Ok(client)
    })
}
