//! The environment (`dev` or `prod`) and validation and redaction of the database URLs.
//!
//! Every tool is pointed at a database by an environment variable (`DATABASE_URL`, or
//! `DREICHOR_ADMIN_DATABASE_URL` for the admin connection of `hard-reset`) and at an
//! environment by `--env` or `DREICHOR_ENV` (SPEC.md, "Configuration shared by the three
//! tools"). This module turns those strings into an [`Env`] and a [`DbUrl`], or refuses them
//! with a [`ConfigError`] (exit 2) before any connection is attempted.
//!
//! # Why the validation is strict
//!
//! The URL decides which database a migration or a reset hits, so it is treated as hostile
//! input. PostgreSQL URLs have no single grammar: libpq, `tokio-postgres` and RFC 3986
//! parsers disagree on where the password ends (first or last `@`), on `host=`/`dbname=`
//! query parameters that override the authority, on several comma-separated hosts, on
//! percent-encoding and on what an empty host means (a Unix socket). A lenient validator that
//! reads a URL one way while the driver reads it another is a bypass. So the validator
//! accepts one narrow, unambiguous form (`postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`
//! with a short allow-list of query parameters) and refuses everything else by name, rather
//! than normalising or ignoring it. Loopback is accepted only as the literal spellings
//! `localhost`, `127.0.0.1` and `[::1]`: the point is that a reader can tell at a glance where
//! the URL goes, not that it eventually resolves to 127.0.0.0/8.
//!
//! # Why the connection configuration is rebuilt from the parts
//!
//! [`DbUrl::pg_config`] never hands the raw string to a parser. It builds a
//! `postgres::Config` from the validated fields only, so nothing that the validator did not
//! look at (a parameter it does not know, a parser quirk) can reach the connection.
//!
//! # Why `localhost` becomes loopback literals
//!
//! `localhost` is a name, and names are resolved through `/etc/hosts`, NSS and possibly DNS,
//! any of which can point it elsewhere. The connection therefore goes to `127.0.0.1` and then
//! `::1`, set both as host and as `hostaddr`, so no name resolution happens at all.
//!
//! # Redaction
//!
//! No password is ever printed. A valid URL is shown only through [`DbUrl::redacted`]; a
//! string that failed validation is shown only through [`redact`](fn@redact), which hides the
//! password under every interpretation a URL parser could take.
//!
//! # Where things are
//!
//! One file per concern, so that each rule can be read next to its tests:
//!
//! - `env`: [`Env`], the environment and its database;
//! - `resolve`: [`resolve_env`], the environment from `--env` and `DREICHOR_ENV`;
//! - `error`: [`ConfigError`], one variant and one message per rule;
//! - `url`: [`DbUrl`], the validated parts, how they are shown and the `postgres::Config`
//!   built from them;
//! - `parse`: the validating parser and [`DbUrl`]'s constructors, the order of its rules,
//!   the scheme, the structure that decides where the password ends, and the database;
//!
//! The imports between these files run one way (no circles): `env` and `url` import none of
//! the others, `error` imports only `env`, and `resolve`, `parse` and the rules build on them.
//! - `userinfo`, `host` and `query`: the rules for the user and password, for the host and
//!   port, and for the query parameters;
//! - `redact`: [`redact`](fn@redact), for strings that failed validation.
//!
//! The tests shared by several files (the sentinel password, the refusal macro) are in
//! `fixtures`; the property tests, which exercise the parser, the redaction and the
//! connection configuration together, are in `proptests`.

mod env;
mod error;
#[cfg(test)]
mod fixtures;
mod host;
mod parse;
#[cfg(test)]
mod proptests;
mod query;
mod redact;
mod resolve;
mod url;
mod userinfo;

pub use env::Env;
pub use error::ConfigError;
pub use redact::redact;
pub use resolve::{resolve_env, resolve_env_from_process};
pub use url::DbUrl;

/// The variable that holds the URL of the environment's database.
pub const DATABASE_URL: &str = "DATABASE_URL";

/// The variable that holds `hard-reset`'s admin URL (SPEC.md, "hard-reset").
pub const ADMIN_DATABASE_URL: &str = "DREICHOR_ADMIN_DATABASE_URL";

/// The database the admin URL must name: the maintenance database, from which the
/// environment's database can be dropped and created.
pub const ADMIN_DATABASE: &str = "postgres";

/// The variable that selects the environment when `--env` is not given.
pub const ENV_VAR: &str = "DREICHOR_ENV";

/// The port PostgreSQL listens on when the URL names none.
pub const DEFAULT_PORT: u16 = 5432;
