//! Connecting, and the checks every tool makes right after: the right database, and
//! environment-specific credentials.
//!
//! The connection is built from the validated parts of the URL ([`DbUrl::pg_config`]), never
//! from the raw string. After connecting, one query confirms that the server put us in the
//! database that was validated and that the role is what the design document calls
//! environment-specific: not a superuser (a superuser reaches every database), and without
//! CONNECT on the other environment's database.

use std::time::Duration;

use postgres::{Client, NoTls, SimpleQueryMessage};

use crate::config::{DbUrl, Env};
use crate::error::{describe_pg, is_unreachable, Error};

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

/// Quotes a string as an SQL literal with `postgres_protocol::escape::escape_literal` (libpq's
/// `PQescapeLiteral`): a value with a backslash becomes an `E'...'` literal with the backslash
/// doubled, which reads the same whatever `standard_conforming_strings` says. Values read from
/// the catalog (a comment, a setting) and replayed by `hard-reset` may hold backslashes.
pub fn literal(value: &str) -> String {
    postgres_protocol::escape::escape_literal(value)
}

/// Quotes an identifier with `postgres_protocol::escape::escape_identifier`: always in double
/// quotes, embedded quotes doubled.
pub fn identifier(name: &str) -> String {
    postgres_protocol::escape::escape_identifier(name)
}

/// What pins `search_path` for the rest of a transaction: the tools' own queries must mean
/// the catalog's functions and operators, whatever a role or a migration put on its
/// `search_path` (a schema of its own ahead of `pg_catalog` could otherwise redefine `=`
/// and make a check see what it wants). `pg_temp` last, so that no temporary relation can
/// shadow a catalog one; functions and operators are never looked up in `pg_temp`.
pub const PIN_SEARCH_PATH: &str = "SET LOCAL search_path = pg_catalog, pg_temp";

/// `sql` in a transaction of its own with `search_path` pinned ([`PIN_SEARCH_PATH`]): still
/// one round trip. On error the caller must send `ROLLBACK`.
pub fn pinned(sql: &str) -> String {
    format!("BEGIN;\n{PIN_SEARCH_PATH};\n{sql};\nCOMMIT")
}

/// [`pinned`], in a read-only transaction: for the queries that only read.
pub fn pinned_read_only(sql: &str) -> String {
    format!("BEGIN READ ONLY;\n{PIN_SEARCH_PATH};\n{sql};\nCOMMIT")
}

/// Runs a [`pinned`] message, ending the failed transaction on error so that the session
/// stays usable.
pub fn run_pinned(
    client: &mut Client,
    message: &str,
) -> Result<Vec<SimpleQueryMessage>, postgres::Error> {
    client.simple_query(message).inspect_err(|_| {
        let _ = client.batch_execute("ROLLBACK");
    })
}

/// The rows of the first result set of a simple query, as optional strings.
pub fn rows(messages: &[SimpleQueryMessage]) -> Vec<Vec<Option<String>>> {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_string))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// The rows of each statement's result in a multi-statement simple query, in order: one
/// list per statement that returns rows (a `SELECT` that finds nothing gives an empty list),
/// none for statements without rows such as `BEGIN`, `SET` or `COMMIT`. A result set starts at
/// its row description, which the server sends even for zero rows, so an empty result cannot
/// be mistaken for a missing one.
///
/// One round trip can then carry several queries, as the compatibility check and the
/// recording of a database's properties before `hard-reset` drops it do.
pub fn result_sets(messages: &[SimpleQueryMessage]) -> Vec<Vec<Vec<Option<String>>>> {
    let mut sets = Vec::new();
    let mut current: Option<Vec<Vec<Option<String>>>> = None;
    for message in messages {
        match message {
            SimpleQueryMessage::RowDescription(_) => current = Some(Vec::new()),
            SimpleQueryMessage::Row(_) => current
                .get_or_insert_with(Vec::new)
                .extend(rows(std::slice::from_ref(message))),
            SimpleQueryMessage::CommandComplete(_) => {
                if let Some(set) = current.take() {
                    sets.push(set);
                }
            }
            _ => {}
        }
    }
    sets
}

/// The SQL that reports who we are: database, superuser, and CONNECT on the other
/// environment's database (NULL when it does not exist). One round trip.
pub fn identity_query(env: Env) -> String {
    format!(
        "SELECT pg_catalog.current_database(), current_user, \
         pg_catalog.current_setting('is_superuser') = 'on', \
         (SELECT pg_catalog.has_database_privilege(oid, 'CONNECT') FROM pg_catalog.pg_database WHERE datname = {})",
        literal(env.other().database())
    )
}

/// Checks the answer of [`identity_query`]: the validated database, and environment-specific
/// credentials. A violation is exit 2: the configuration is wrong, nothing was touched.
pub fn check_identity(url: &DbUrl, env: Env, row: &[Option<String>]) -> Result<(), Error> {
    let field = |i: usize| row.get(i).cloned().flatten();
    let database = field(0).unwrap_or_default();
    let user = field(1).unwrap_or_default();
    if database != env.database() {
        return Err(Error::Refused(format!(
            "connected to database {database:?} but DATABASE_URL names {:?}; refusing to touch it",
            env.database()
        )));
    }
    if field(2).as_deref() == Some("t") {
        return Err(Error::Refused(format!(
            "the role {user:?} in DATABASE_URL ({}) is a superuser; credentials must be environment-specific: use the {env} role (see infra/db/provision.sh)",
            url.redacted()
        )));
    }
    if field(3).as_deref() == Some("t") {
        return Err(Error::Refused(format!(
            "the role {user:?} can connect to {}, the other environment's database; credentials must be environment-specific: REVOKE CONNECT ON DATABASE {} FROM PUBLIC, {user} (see infra/db/provision.sh)",
            env.other().database(),
            env.other().database()
        )));
    }
    Ok(())
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
        let row = rows(&messages).into_iter().next().unwrap_or_default();
        check_identity(&url, env, &row)?;
        Ok(client)
    })
}

/// Runs `work` on its own thread and gives up after `timeout` with exit 3.
///
/// The client's `connect_timeout` only bounds the TCP connect: a server (or anything else
/// listening on the port) that accepts the connection and then never answers the startup or
/// a query would hang the caller forever. A deploy gate must not hang, so the whole exchange
/// runs on a thread that is abandoned on timeout (its socket closes when the process exits,
/// or when the peer finally answers).
pub fn within<T: Send + 'static>(
    timeout: Duration,
    url: &DbUrl,
    work: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    Bounded::start(timeout, url, work)?.wait()
}

/// Work running on its own thread under a deadline (see [`within`]); the caller can do
/// something else meanwhile (the gate reads the migrations while it connects).
#[derive(Debug)]
pub struct Bounded<T> {
    rx: std::sync::mpsc::Receiver<Result<T, Error>>,
    deadline: std::time::Instant,
    timeout: Duration,
    url: String,
}

impl<T: Send + 'static> Bounded<T> {
    /// Starts `work` now; its deadline is `timeout` from now.
    pub fn start(
        timeout: Duration,
        url: &DbUrl,
        work: impl FnOnce() -> Result<T, Error> + Send + 'static,
    ) -> Result<Bounded<T>, Error> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("db".into())
            .spawn(move || {
                let _ = tx.send(work());
            })
            .map_err(|e| Error::Failed(format!("cannot start a thread: {e}")))?;
        Ok(Bounded {
            rx,
            deadline: std::time::Instant::now() + timeout,
            timeout,
            url: url.redacted(),
        })
    }

    /// The result, or exit 3 when the deadline passes first.
    pub fn wait(self) -> Result<T, Error> {
        let left = self
            .deadline
            .saturating_duration_since(std::time::Instant::now());
        match self.rx.recv_timeout(left) {
            Ok(result) => result,
            Err(_) => Err(Error::Unreachable {
                url: self.url,
                reason: format!(
                    "no answer within {} s (the server accepted the connection but did not respond, is overloaded, or a lock blocked the query)",
                    self.timeout.as_secs_f64()
                ),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url() -> DbUrl {
        DbUrl::for_env(
            "postgres://dreichor_dev:Sentinel-PW@localhost/dreichor_dev",
            Env::Dev,
        )
        .unwrap()
    }

    fn row(values: &[Option<&str>]) -> Vec<Option<String>> {
        values.iter().map(|v| v.map(str::to_string)).collect()
    }

    #[test]
    fn literals_double_single_quotes() {
        assert_eq!(literal("it's"), "'it''s'");
    }

    #[test]
    fn literals_with_a_backslash_read_the_same_under_either_string_syntax() {
        // E'' strings always treat the backslash as an escape; escape_literal doubles it.
        assert_eq!(literal(r"C:\new"), r" E'C:\\new'");
        assert_eq!(identifier("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn accepts_an_environment_specific_role() {
        let r = row(&[
            Some("dreichor_dev"),
            Some("dreichor_dev"),
            Some("f"),
            Some("f"),
        ]);
        check_identity(&url(), Env::Dev, &r).unwrap();
        let no_other_db = row(&[Some("dreichor_dev"), Some("dreichor_dev"), Some("f"), None]);
        check_identity(&url(), Env::Dev, &no_other_db).unwrap();
    }

    #[test]
    fn refuses_a_superuser() {
        let r = row(&[Some("dreichor_dev"), Some("postgres"), Some("t"), Some("t")]);
        let err = check_identity(&url(), Env::Dev, &r).unwrap_err();
        assert!(err.to_string().contains("superuser"), "{err}");
        assert!(!err.to_string().contains("Sentinel-PW"));
        assert_eq!(err.exit_code(), crate::ExitCode::Invalid);
    }

    #[test]
    fn refuses_a_role_that_reaches_the_other_environment() {
        let r = row(&[
            Some("dreichor_dev"),
            Some("dreichor_dev"),
            Some("f"),
            Some("t"),
        ]);
        let err = check_identity(&url(), Env::Dev, &r).unwrap_err();
        assert!(err.to_string().contains("dreichor_prod"), "{err}");
    }

    #[test]
    fn refuses_another_database() {
        let r = row(&[Some("postgres"), Some("dreichor_dev"), Some("f"), None]);
        assert!(check_identity(&url(), Env::Dev, &r).is_err());
    }
}
