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
//! string that failed validation is shown only through [`redact`], which hides the password
//! under every interpretation a URL parser could take.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use postgres::config::{LoadBalanceHosts, SslMode, TargetSessionAttrs};

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

/// The longest accepted `application_name`: the server silently truncates longer names to
/// `NAMEDATALEN - 1` = 63 bytes, and a silent change is what this module refuses elsewhere.
const MAX_APPLICATION_NAME: usize = 63;

/// The longest accepted `connect_timeout`, in seconds. Longer than an hour is a typo, and the
/// tools promise to give up in bounded time (SPEC.md, `--timeout`).
const MAX_CONNECT_TIMEOUT_SECS: u32 = 3600;

/// The query parameters a URL may carry.
const ALLOWED_PARAMETERS: &str = "application_name, connect_timeout, sslmode";

/// The spellings of the host that are accepted, for messages.
const ALLOWED_HOSTS: &str = "localhost, 127.0.0.1 or [::1]";

/// Everything that is refused in the environment or a database URL. Each variant names one
/// rule; every message shows URLs only in their redacted form and says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Neither `--env` nor `DREICHOR_ENV` was given.
    #[error("the environment is not set: pass --env dev or --env prod, or set {ENV_VAR}")]
    EnvMissing,

    /// `--env` or `DREICHOR_ENV` is something other than `dev` or `prod`.
    #[error("{origin} must be exactly dev or prod (got {value:?}); environments are lower case and there are no others")]
    EnvInvalid {
        /// Where the value came from: `--env`, `DREICHOR_ENV`, or `the environment`.
        origin: &'static str,
        /// The value as given.
        value: String,
    },

    /// `--env` and `DREICHOR_ENV` are both given and name different environments.
    #[error("--env {flag} and {ENV_VAR}={var} disagree; refusing to guess which environment is meant: drop one or make them the same")]
    EnvConflict {
        /// The value of `--env`.
        flag: Env,
        /// The value of `DREICHOR_ENV`.
        var: Env,
    },

    /// The URL variable is unset or empty.
    #[error("{var} is not set; export it in the tool's environment (postgres://USER:PASSWORD@localhost:5432/{expected}); it is never read from a flag, which would show the password in process listings")]
    NotSet {
        /// The variable's name.
        var: &'static str,
        /// The database the URL must name.
        expected: String,
    },

    /// The URL contains whitespace or a control character.
    #[error("{var} contains whitespace or a control character (got {url}); remove it (a trailing newline or quote from an env file is the usual cause) and percent-encode a space in the password as %20")]
    Whitespace {
        /// The variable's name.
        var: &'static str,
        /// The URL, redacted.
        url: String,
    },

    /// The URL contains a character outside ASCII.
    #[error("{var} contains a non-ASCII character (got {url}); URLs are ASCII: percent-encode non-ASCII characters of the user or password as UTF-8 (ü is %C3%BC)")]
    NonAscii {
        /// The variable's name.
        var: &'static str,
        /// The URL, redacted.
        url: String,
    },

    /// The URL does not start with `postgres://`.
    #[error("{var} must start with postgres:// (got {url}); {hint}")]
    Scheme {
        /// The variable's name.
        var: &'static str,
        /// The URL, redacted.
        url: String,
        /// What to write instead.
        hint: &'static str,
    },

    /// The URL has a `#fragment`.
    #[error("{var} must not contain '#' (got {url}); a fragment means nothing to PostgreSQL and parsers disagree on where it starts: percent-encode a '#' in the password as %23")]
    Fragment {
        /// The variable's name.
        var: &'static str,
        /// The URL, redacted.
        url: String,
    },

    /// The URL has more than one `@`.
    #[error("{var} contains more than one '@' (got {url}); parsers disagree on which '@' ends the password (libpq takes the first, others the last), so the host cannot be known: percent-encode '@' in the user or password as %40")]
    SeveralAt {
        /// The variable's name.
        var: &'static str,
        /// The URL, redacted.
        url: String,
    },

    /// The only `@` comes after the host part: a `/` or `?` precedes it.
    #[error("{var} has its '@' after a '/' or '?' (got {url}); either the user is missing or the user or password contains an unencoded '/' or '?', which parsers split differently: percent-encode '/' as %2F and '?' as %3F")]
    AtOutsideAuthority {
        /// The variable's name.
        var: &'static str,
        /// The URL, redacted.
        url: String,
    },

    /// The URL names no user.
    #[error("{var} names no user (got {url}); a user is required, so that the connection never falls back to the operating system's user name: postgres://USER:PASSWORD@localhost:5432/DATABASE")]
    MissingUser {
        /// The variable's name.
        var: &'static str,
        /// The URL, redacted.
        url: String,
    },

    /// The user or password contains a character that must be percent-encoded.
    #[error("the {part} in {var} contains a character that must be percent-encoded (got {url}); only letters, digits, -._~!$&'()*+,;= (and ':' in the password) may appear as they are: percent-encode the rest, e.g. '[' as %5B")]
    UserinfoCharacter {
        /// The variable's name.
        var: &'static str,
        /// The URL, redacted.
        url: String,
        /// `user` or `password`.
        part: &'static str,
    },

    /// The user or password has a `%` that is not followed by two hex digits.
    #[error("the {part} in {var} has a '%' that is not followed by two hex digits (got {url}); write a literal '%' as %25")]
    PercentEncoding {
        /// The variable's name.
        var: &'static str,
        /// The URL, redacted.
        url: String,
        /// `user` or `password`.
        part: &'static str,
    },

    /// The user or password decodes to something that is not text without control characters.
    #[error("the {part} in {var} decodes to {problem} (got {url}); the {part} must be UTF-8 text without control characters: check its percent-encoding")]
    UndecodableUserinfo {
        /// The variable's name.
        var: &'static str,
        /// The URL, redacted.
        url: String,
        /// `user` or `password`.
        part: &'static str,
        /// `invalid UTF-8` or `a control character`.
        problem: &'static str,
    },

    /// The URL has a `:` after the user but nothing before the `@`.
    #[error("{var} has an empty password after ':' (got {url}); drop the ':' to connect without a password, or write the password")]
    EmptyPassword {
        /// The variable's name.
        var: &'static str,
        /// The URL, redacted.
        url: String,
    },

    /// The URL names no host (libpq would use a Unix socket).
    #[error("{var} names no host (got {url}); an empty host means a Unix socket, which the tools do not use: write exactly one of {ALLOWED_HOSTS}")]
    EmptyHost {
        /// The variable's name.
        var: &'static str,
        /// The URL, redacted.
        url: String,
    },

    /// The URL names several hosts.
    #[error("{var} names several hosts (got {url}); exactly one host is allowed, so that the connection cannot fail over to another machine: write exactly one of {ALLOWED_HOSTS}")]
    SeveralHosts {
        /// The variable's name.
        var: &'static str,
        /// The URL, redacted.
        url: String,
    },

    /// The host is percent-encoded.
    #[error("{var} has a percent-encoded host (got {url}); write the host literally, as exactly one of {ALLOWED_HOSTS}")]
    EncodedHost {
        /// The variable's name.
        var: &'static str,
        /// The URL, redacted.
        url: String,
    },

    /// The host is not one of the three accepted spellings.
    #[error("{var} must point at this machine as exactly one of {ALLOWED_HOSTS} (got {url}); no other spelling is accepted, not even of a loopback address (LOCALHOST, 127.1, ::1 without brackets, localhost.): write one of the three")]
    HostNotAllowed {
        /// The variable's name.
        var: &'static str,
        /// The URL, redacted.
        url: String,
    },

    /// The port is not a decimal number from 1 to 65535.
    #[error("{var} has an invalid port: {problem} (got {url}); write a decimal port from 1 to 65535 after the host (localhost:5432), or none for {DEFAULT_PORT}")]
    Port {
        /// The variable's name.
        var: &'static str,
        /// The URL, redacted.
        url: String,
        /// What is wrong with it.
        problem: &'static str,
    },

    /// The URL names no database.
    #[error("{var} names no database (got {url}); the database must be named explicitly: append /{expected}")]
    MissingDatabase {
        /// The variable's name.
        var: &'static str,
        /// The URL, redacted.
        url: String,
        /// The database the URL must name.
        expected: String,
    },

    /// The URL names another database than the one expected.
    #[error("{var} must name exactly the database {expected}, not {found:?} (got {url}); {hint}")]
    WrongDatabase {
        /// The variable's name.
        var: &'static str,
        /// The URL, redacted.
        url: String,
        /// The database the URL must name.
        expected: String,
        /// The path the URL has, without its leading `/`.
        found: String,
        /// What to do about it.
        hint: String,
    },

    /// The query string is not a list of `key=value` pairs.
    #[error("{var} has a malformed query string: {problem} (got {url}); write key=value pairs separated by '&'")]
    MalformedQuery {
        /// The variable's name.
        var: &'static str,
        /// The URL, redacted.
        url: String,
        /// What is wrong with it.
        problem: &'static str,
    },

    /// A known query parameter that could change what was validated.
    #[error("{var} sets the query parameter {key}, which is refused (got {url}): {reason}")]
    RefusedParameter {
        /// The variable's name.
        var: &'static str,
        /// The URL, redacted.
        url: String,
        /// The parameter's name.
        key: String,
        /// Why it is refused and what to do instead.
        reason: &'static str,
    },

    /// A query parameter the tools do not know.
    #[error("{var} sets the unknown query parameter {key} (got {url}); unknown parameters are refused, not ignored: only {ALLOWED_PARAMETERS} are accepted")]
    UnknownParameter {
        /// The variable's name.
        var: &'static str,
        /// The URL, redacted.
        url: String,
        /// The parameter's name.
        key: String,
    },

    /// A query parameter given twice.
    #[error("{var} sets the query parameter {key} more than once (got {url}); parsers disagree on which one wins: keep one")]
    DuplicateParameter {
        /// The variable's name.
        var: &'static str,
        /// The URL, redacted.
        url: String,
        /// The parameter's name.
        key: String,
    },

    /// An allowed query parameter with a value outside its rules.
    #[error("{var} has an invalid value for {key} (got {url}): {problem}")]
    ParameterValue {
        /// The variable's name.
        var: &'static str,
        /// The URL, redacted.
        url: String,
        /// The parameter's name.
        key: &'static str,
        /// What is wrong and what to write instead.
        problem: &'static str,
    },
}

/// The deployment environment a tool works on. Each has its own database and role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Env {
    /// Development: database `dreichor_dev`.
    Dev,
    /// Production: database `dreichor_prod`.
    Prod,
}

impl Env {
    /// The database of this environment.
    ///
    /// ```
    /// use common::config::Env;
    /// assert_eq!(Env::Prod.database(), "dreichor_prod");
    /// ```
    pub fn database(self) -> &'static str {
        match self {
            Env::Dev => "dreichor_dev",
            Env::Prod => "dreichor_prod",
        }
    }

    /// The other environment, whose database a role of this one must not reach.
    ///
    /// ```
    /// use common::config::Env;
    /// assert_eq!(Env::Dev.other(), Env::Prod);
    /// ```
    pub fn other(self) -> Env {
        match self {
            Env::Dev => Env::Prod,
            Env::Prod => Env::Dev,
        }
    }

    /// The name as written on the command line and in `DREICHOR_ENV`.
    pub fn as_str(self) -> &'static str {
        match self {
            Env::Dev => "dev",
            Env::Prod => "prod",
        }
    }

    /// Parses `value`, naming `origin` (`--env`, `DREICHOR_ENV`) in the error.
    fn parse_from(value: &str, origin: &'static str) -> Result<Env, ConfigError> {
        match value {
            "dev" => Ok(Env::Dev),
            "prod" => Ok(Env::Prod),
            _ => Err(ConfigError::EnvInvalid {
                origin,
                value: value.to_owned(),
            }),
        }
    }
}

impl fmt::Display for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Env {
    type Err = ConfigError;

    /// Exactly `dev` or `prod`: no other case, no surrounding whitespace, no abbreviations.
    fn from_str(value: &str) -> Result<Env, ConfigError> {
        Env::parse_from(value, "the environment")
    }
}

/// Resolves the environment from the `--env` flag and the `DREICHOR_ENV` value.
///
/// One of them is required; when both are given they must agree. An empty `DREICHOR_ENV`
/// counts as unset (an `export DREICHOR_ENV=` left in a file), but an empty `--env` was
/// typed on purpose and is refused. An invalid `DREICHOR_ENV` is refused even when `--env`
/// is given: a broken setting is reported, not masked.
///
/// ```
/// use common::config::{resolve_env, Env};
/// assert_eq!(resolve_env(Some("prod"), None).unwrap(), Env::Prod);
/// assert_eq!(resolve_env(None, Some("dev")).unwrap(), Env::Dev);
/// assert!(resolve_env(Some("dev"), Some("prod")).is_err());
/// ```
pub fn resolve_env(flag: Option<&str>, var: Option<&str>) -> Result<Env, ConfigError> {
    let flag = flag.map(|v| Env::parse_from(v, "--env")).transpose()?;
    let var = var
        .filter(|v| !v.is_empty())
        .map(|v| Env::parse_from(v, ENV_VAR))
        .transpose()?;
    match (flag, var) {
        (Some(flag), Some(var)) if flag != var => Err(ConfigError::EnvConflict { flag, var }),
        (Some(env), _) | (None, Some(env)) => Ok(env),
        (None, None) => Err(ConfigError::EnvMissing),
    }
}

/// [`resolve_env`] with `DREICHOR_ENV` read from the process environment. A value that is
/// not valid Unicode is refused as an invalid environment.
pub fn resolve_env_from_process(flag: Option<&str>) -> Result<Env, ConfigError> {
    let var = read_var(ENV_VAR);
    resolve_env(flag, var.as_deref())
}

/// Reads a variable of the process environment. Bytes that are not UTF-8 become U+FFFD,
/// which every validator here refuses, so a mangled value is reported instead of dropped.
fn read_var(name: &str) -> Option<String> {
    std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
}

/// A password, whose `Debug` never shows it and which has no `Display`.
#[derive(Clone, PartialEq, Eq)]
struct Password(String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The three accepted spellings of the host, as written in the URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LoopbackHost {
    /// `localhost`
    Localhost,
    /// `127.0.0.1`
    V4Loopback,
    /// `[::1]`
    V6Loopback,
}

/// 127.0.0.1 then ::1: the order in which `localhost` is tried. PostgreSQL's default
/// `listen_addresses = 'localhost'` listens on both; IPv4 loopback exists on every host while
/// IPv6 can be disabled, so it goes first and the second attempt is only a fallback.
const LOCALHOST_ADDRS: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::LOCALHOST),
    IpAddr::V6(Ipv6Addr::LOCALHOST),
];

impl LoopbackHost {
    fn as_written(self) -> &'static str {
        match self {
            LoopbackHost::Localhost => "localhost",
            LoopbackHost::V4Loopback => "127.0.0.1",
            LoopbackHost::V6Loopback => "[::1]",
        }
    }

    fn addrs(self) -> &'static [IpAddr] {
        match self {
            LoopbackHost::Localhost => &LOCALHOST_ADDRS,
            LoopbackHost::V4Loopback => &LOCALHOST_ADDRS[..1],
            LoopbackHost::V6Loopback => &LOCALHOST_ADDRS[1..],
        }
    }
}

/// A database URL that passed every rule of SPEC.md: `postgres://`, one loopback host, the
/// expected database, a user, and only allow-listed query parameters.
///
/// It can only be shown redacted ([`DbUrl::redacted`], `Display` and `Debug` alike), and it
/// connects only through [`DbUrl::pg_config`], built from these fields.
#[derive(Clone, PartialEq, Eq)]
pub struct DbUrl {
    user: String,
    password: Option<Password>,
    host: LoopbackHost,
    port: u16,
    database: String,
    application_name: Option<String>,
    connect_timeout: Option<Duration>,
}

/// Characters shown percent-encoded in the user of a redacted URL, so that the shown URL
/// parses back to the same user: everything but RFC 3986's unreserved characters.
const USER_DISPLAY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

impl DbUrl {
    /// Validates `raw` for a tool that connects to `expected_database`; `var` is the
    /// variable's name for messages (`DATABASE_URL`, `DREICHOR_ADMIN_DATABASE_URL`).
    ///
    /// Pure: no DNS, no I/O. An empty `raw` is refused as not set.
    ///
    /// ```
    /// use common::config::DbUrl;
    /// let url = DbUrl::parse("postgres://dreichor_dev:s3cret@localhost/dreichor_dev",
    ///                        "DATABASE_URL", "dreichor_dev").unwrap();
    /// assert_eq!(url.port(), 5432);
    /// assert_eq!(url.redacted(), "postgres://dreichor_dev:***@localhost:5432/dreichor_dev");
    /// assert!(DbUrl::parse("postgres://u:p@db.example.com/dreichor_dev",
    ///                      "DATABASE_URL", "dreichor_dev").is_err());
    /// ```
    pub fn parse(
        raw: &str,
        var: &'static str,
        expected_database: &str,
    ) -> Result<DbUrl, ConfigError> {
        Parser { raw, var }.parse(expected_database)
    }

    /// Validates `DATABASE_URL`'s value for `env`: its database must be `env.database()`.
    pub fn for_env(raw: &str, env: Env) -> Result<DbUrl, ConfigError> {
        DbUrl::parse(raw, DATABASE_URL, env.database())
    }

    /// Validates `DREICHOR_ADMIN_DATABASE_URL`'s value: its database must be `postgres`.
    pub fn for_admin(raw: &str) -> Result<DbUrl, ConfigError> {
        DbUrl::parse(raw, ADMIN_DATABASE_URL, ADMIN_DATABASE)
    }

    /// Validates the value of an environment variable as read by the caller: `None` or an
    /// empty value is refused as [`ConfigError::NotSet`], anything else as by
    /// [`DbUrl::parse`]. This is the entry point for binaries; `parse` is for values that
    /// are known to be present.
    pub fn from_env_var(
        var: &'static str,
        value: Option<String>,
        expected_database: &str,
    ) -> Result<DbUrl, ConfigError> {
        match value {
            Some(raw) if !raw.is_empty() => DbUrl::parse(&raw, var, expected_database),
            _ => Err(ConfigError::NotSet {
                var,
                expected: expected_database.to_owned(),
            }),
        }
    }

    /// [`DbUrl::from_env_var`] with the variable read from the process environment. A value
    /// that is not valid Unicode is refused (as non-ASCII), not treated as unset.
    pub fn from_process_env(
        var: &'static str,
        expected_database: &str,
    ) -> Result<DbUrl, ConfigError> {
        DbUrl::from_env_var(var, read_var(var), expected_database)
    }

    /// The user, percent-decoded.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The database, exactly the expected one.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// The port, [`DEFAULT_PORT`] when the URL names none.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The host as written in the URL: `localhost`, `127.0.0.1` or `[::1]` (with brackets).
    /// To connect, use [`DbUrl::host_addrs`] or [`DbUrl::pg_config`]: they never resolve
    /// a name.
    pub fn host(&self) -> &str {
        self.host.as_written()
    }

    /// The addresses to connect to, in order: `localhost` is 127.0.0.1 then ::1. For
    /// external tools (`pg_dump -h`), pass these rather than [`DbUrl::host`].
    pub fn host_addrs(&self) -> &'static [IpAddr] {
        self.host.addrs()
    }

    /// The password, percent-decoded. Only for handing to `pg_dump` through `PGPASSWORD`;
    /// never print it.
    pub fn password(&self) -> Option<&str> {
        self.password.as_ref().map(|p| p.0.as_str())
    }

    /// The `application_name` query parameter, when the URL sets one.
    pub fn application_name(&self) -> Option<&str> {
        self.application_name.as_deref()
    }

    /// The `connect_timeout` query parameter, when the URL sets one.
    pub fn connect_timeout(&self) -> Option<Duration> {
        self.connect_timeout
    }

    /// The only displayable form: `postgres://user:***@host:port/db`, with the port always
    /// spelled out and without `:***` when there is no password. Query parameters are left
    /// out: they are validated and carry nothing an operator needs to see.
    ///
    /// ```
    /// use common::config::{DbUrl, Env};
    /// let url = DbUrl::for_env("postgres://dreichor_prod@[::1]:5433/dreichor_prod", Env::Prod).unwrap();
    /// assert_eq!(url.redacted(), "postgres://dreichor_prod@[::1]:5433/dreichor_prod");
    /// ```
    pub fn redacted(&self) -> String {
        let password = if self.password.is_some() { ":***" } else { "" };
        format!(
            "postgres://{}{password}@{}:{}/{}",
            utf8_percent_encode(&self.user, USER_DISPLAY),
            self.host.as_written(),
            self.port,
            self.database,
        )
    }

    /// A `postgres::Config` built from the validated parts only (never from the raw string),
    /// so that nothing in the URL that was not validated can influence the connection.
    ///
    /// Each loopback address is set as host and as `hostaddr`, so the connection never
    /// resolves a name; `localhost` gives 127.0.0.1 then ::1, tried in that order. Sets the
    /// user, password, database, port, `application_name` (the URL's, else
    /// `app_name_default`), `connect_timeout` (the URL's, else `default_timeout`) and
    /// `sslmode=disable`: the tools connect over loopback TCP with `NoTls`.
    pub fn pg_config(&self, app_name_default: &str, default_timeout: Duration) -> postgres::Config {
        let mut config = self.base_config(app_name_default, default_timeout);
        for addr in self.host.addrs() {
            config.host(&addr.to_string());
            config.hostaddr(*addr);
        }
        config
    }

    /// One [`DbUrl::pg_config`] per address, in the order they are tried, for a caller that
    /// tries them itself: with several hosts in one config the client reports only the last
    /// error, so a wrong password on 127.0.0.1 would be shown as "connection refused" on ::1.
    pub fn pg_configs(
        &self,
        app_name_default: &str,
        default_timeout: Duration,
    ) -> Vec<postgres::Config> {
        self.host
            .addrs()
            .iter()
            .map(|addr| {
                let mut config = self.base_config(app_name_default, default_timeout);
                config.host(&addr.to_string());
                config.hostaddr(*addr);
                config
            })
            .collect()
    }

    /// Everything of [`DbUrl::pg_config`] but the hosts.
    fn base_config(&self, app_name_default: &str, default_timeout: Duration) -> postgres::Config {
        let mut config = postgres::Config::new();
        config.user(&self.user);
        if let Some(password) = &self.password {
            config.password(password.0.as_bytes());
        }
        config.dbname(&self.database);
        config.port(self.port);
        config.application_name(self.application_name.as_deref().unwrap_or(app_name_default));
        config.connect_timeout(self.connect_timeout.unwrap_or(default_timeout));
        config.ssl_mode(SslMode::Disable);
        // These are the defaults; spelled out because the order of the hosts is part of the
        // contract (127.0.0.1 first) and any server will do, read-only or not.
        config.load_balance_hosts(LoadBalanceHosts::Disable);
        config.target_session_attrs(TargetSessionAttrs::Any);
        config
    }
}

impl fmt::Display for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbUrl")
            .field("url", &self.redacted())
            .field("application_name", &self.application_name)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// Best-effort redaction of any string, also one that is not a URL at all, for messages
/// about a value that failed validation.
///
/// When the string has an `@`, everything between the first `:` after `scheme://` and the
/// *last* `@` becomes `***`: libpq ends the password at the first `@`, RFC 3986 parsers at
/// the last, and a password may hold unencoded `@`, `/`, `:` or `?`, so the widest span
/// covers every reading. Without a recognisable `scheme://` prefix the search starts at the
/// beginning, which hides more. Without an `@`, a `:` in the host part followed by anything
/// but a port number is hidden too (`postgres://user:password` without a host). Characters
/// outside printable ASCII are escaped, so a value cannot write control sequences to the
/// operator's terminal.
///
/// ```
/// use common::config::redact;
/// assert_eq!(redact("postgres://u:p@ss@localhost/db"), "postgres://u:***@localhost/db");
/// assert_eq!(redact("postgres://u@localhost:5432/db"), "postgres://u@localhost:5432/db");
/// ```
pub fn redact(raw: &str) -> String {
    let start = after_scheme(raw);
    let hidden = match raw.rfind('@') {
        Some(last_at) if last_at >= start => match raw[start..last_at].find(':') {
            Some(colon) => format!("{}***{}", &raw[..start + colon + 1], &raw[last_at..]),
            None => raw.to_owned(),
        },
        _ => redact_without_at(raw, start),
    };
    escape(&hide_password_parameters(&hidden))
}

/// Hides the value of every parameter whose name ends in `password` (`?password=`,
/// `&password=`, a libpq `password = '...'` keyword, a pasted `PGPASSWORD=`), whether
/// or not the name is percent-encoded or in another case. The value runs to the next `&` or
/// whitespace; a quoted value hides the rest of the string.
fn hide_password_parameters(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < text.len() {
        let key_start = i == 0
            || matches!(bytes[i - 1], b'?' | b'&' | b';')
            || bytes[i - 1].is_ascii_whitespace();
        if key_start && text.is_char_boundary(i) {
            if let Some((start, end)) = password_value(text, i) {
                out.push_str(&text[copied..start]);
                out.push_str("***");
                copied = end;
                i = end;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&text[copied..]);
    out
}

/// The span of the value when a parameter whose name ends in `password` starts at `key`.
fn password_value(text: &str, key: usize) -> Option<(usize, usize)> {
    let rest = &text[key..];
    let key_len = rest
        .find(|c: char| matches!(c, '=' | '&' | '?') || c.is_whitespace())
        .unwrap_or(rest.len());
    let name = percent_decode_str(&rest[..key_len])
        .decode_utf8_lossy()
        .to_ascii_lowercase();
    if !name.ends_with("password") {
        return None;
    }
    let value = rest[key_len..].trim_start().strip_prefix('=')?.trim_start();
    let start = text.len() - value.len();
    let end = if value.starts_with(['\'', '"']) {
        text.len()
    } else {
        start
            + value
                .find(|c: char| c == '&' || c.is_whitespace())
                .unwrap_or(value.len())
    };
    (end > start).then_some((start, end))
}

/// The index just after `scheme://` when `raw` starts with an RFC 3986 scheme followed by
/// `://`, else 0. The scheme check matters: in `u:pa://ss@host` the `://` belongs to the
/// password, and starting after it would reveal `pa`.
fn after_scheme(raw: &str) -> usize {
    let Some(end) = raw.find("://") else {
        return 0;
    };
    let scheme = &raw[..end];
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if valid {
        end + 3
    } else {
        0
    }
}

/// Without an `@` no parser finds a password, but `postgres://user:secret` (the host
/// forgotten) still holds one in the eyes of whoever wrote it: hide what follows the first
/// `:` of the host part unless it is a port number.
fn redact_without_at(raw: &str, start: usize) -> String {
    let rest = &raw[start..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_len];
    // In `[::1]:5432` the colons inside the brackets are part of the address.
    let search_from = if authority.starts_with('[') {
        match authority.find(']') {
            Some(close) => close,
            None => return raw.to_owned(),
        }
    } else {
        0
    };
    let Some(colon) = authority[search_from..].find(':').map(|c| c + search_from) else {
        return raw.to_owned();
    };
    let after = &authority[colon + 1..];
    if after.bytes().all(|b| b.is_ascii_digit()) {
        return raw.to_owned();
    }
    let colon = start + colon;
    format!("{}***{}", &raw[..colon + 1], &raw[start + authority_len..])
}

/// Escapes every character outside printable ASCII (`\n`, `\u{202e}`, ...).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == ' ' || c.is_ascii_graphic() {
            out.push(c);
        } else {
            out.extend(c.escape_default());
        }
    }
    out
}

/// The validation of one raw URL, holding what every error needs.
struct Parser<'a> {
    raw: &'a str,
    var: &'static str,
}

/// Builds a `ConfigError` variant whose only fields are `var` and `url`, plus any extra.
macro_rules! refuse {
    ($parser:expr, $variant:ident $(, $field:ident : $value:expr)* $(,)?) => {
        ConfigError::$variant {
            var: $parser.var,
            url: redact($parser.raw),
            $($field: $value,)*
        }
    };
}

impl Parser<'_> {
    /// The rules in the order that gives the most useful message: characters, scheme, the
    /// structure that decides where the password ends, then host and port, user and
    /// password, database and query parameters.
    fn parse(&self, expected: &str) -> Result<DbUrl, ConfigError> {
        let raw = self.raw;
        if raw.is_empty() {
            return Err(ConfigError::NotSet {
                var: self.var,
                expected: expected.to_owned(),
            });
        }
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(refuse!(self, Whitespace));
        }
        // ASCII only: rules out look-alike hosts (fullwidth letters, Cyrillic 'о') and
        // leaves percent-encoding as the single way to write anything else.
        if !raw.is_ascii() {
            return Err(refuse!(self, NonAscii));
        }
        let Some(rest) = raw.strip_prefix("postgres://") else {
            return Err(refuse!(self, Scheme, hint: scheme_hint(raw)));
        };
        if raw.contains('#') {
            return Err(refuse!(self, Fragment));
        }

        // Where the password ends is the crux: with a single '@' that lies before the first
        // '/' or '?', libpq, tokio-postgres and RFC 3986 all read the same user, password and
        // host. Anything else is refused rather than interpreted.
        let mut ats = rest.match_indices('@').map(|(i, _)| i);
        let at = ats.next();
        if ats.next().is_some() {
            return Err(refuse!(self, SeveralAt));
        }
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (userinfo, hostport) = match at {
            Some(at) if at > authority_end => return Err(refuse!(self, AtOutsideAuthority)),
            Some(at) => (Some(&rest[..at]), &rest[at + 1..authority_end]),
            None => (None, &rest[..authority_end]),
        };
        // The host first: `postgres:///dreichor_dev` is better reported as a socket URL than
        // as one without a user.
        let (host, port) = self.host_and_port(hostport)?;
        let Some(userinfo) = userinfo else {
            return Err(refuse!(self, MissingUser));
        };
        let (user, password) = self.userinfo(userinfo)?;

        let after = &rest[authority_end..];
        let (path, query) = match after.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (after, None),
        };
        let database = self.database(path, expected)?;
        let (application_name, connect_timeout) = match query {
            Some(query) => self.query(query)?,
            None => (None, None),
        };

        Ok(DbUrl {
            user,
            password,
            host,
            port,
            database,
            application_name,
            connect_timeout,
        })
    }

    /// The user and the optional password, split at the first ':' (a user cannot hold an
    /// unencoded ':'; a password can, as every parser agrees).
    fn userinfo(&self, userinfo: &str) -> Result<(String, Option<Password>), ConfigError> {
        let (user, password) = match userinfo.split_once(':') {
            Some((user, password)) => (user, Some(password)),
            None => (userinfo, None),
        };
        if user.is_empty() {
            return Err(refuse!(self, MissingUser));
        }
        let user = self.decode_userinfo(user, "user")?;
        let password = match password {
            None => None,
            Some("") => return Err(refuse!(self, EmptyPassword)),
            Some(password) => Some(Password(self.decode_userinfo(password, "password")?)),
        };
        Ok((user, password))
    }

    /// Checks the characters of the user or password against RFC 3986's `userinfo` and
    /// percent-decodes it. A decoded NUL or other control character is refused: libpq stops
    /// at NUL, so it would read a different value than the one validated.
    fn decode_userinfo(&self, text: &str, part: &'static str) -> Result<String, ConfigError> {
        let allowed = |c: char| {
            c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    '-' | '.'
                        | '_'
                        | '~'
                        | '!'
                        | '$'
                        | '&'
                        | '\''
                        | '('
                        | ')'
                        | '*'
                        | '+'
                        | ','
                        | ';'
                        | '='
                        | '%'
                )
                || (c == ':' && part == "password")
        };
        if !text.chars().all(allowed) {
            return Err(refuse!(self, UserinfoCharacter, part: part));
        }
        if !well_formed_percent_encoding(text) {
            return Err(refuse!(self, PercentEncoding, part: part));
        }
        let decoded = percent_decode_str(text).decode_utf8().map_err(
            |_| refuse!(self, UndecodableUserinfo, part: part, problem: "invalid UTF-8"),
        )?;
        if decoded.chars().any(char::is_control) {
            return Err(refuse!(
                self,
                UndecodableUserinfo,
                part: part,
                problem: "a control character"
            ));
        }
        Ok(decoded.into_owned())
    }

    /// The host, one of the three literal spellings, and the port.
    fn host_and_port(&self, hostport: &str) -> Result<(LoopbackHost, u16), ConfigError> {
        if hostport.is_empty() {
            return Err(refuse!(self, EmptyHost));
        }
        if hostport.contains(',') {
            return Err(refuse!(self, SeveralHosts));
        }
        if hostport.contains('%') {
            return Err(refuse!(self, EncodedHost));
        }
        let (host, port) = if hostport.starts_with('[') {
            match hostport.find(']') {
                Some(close) => hostport.split_at(close + 1),
                None => (hostport, ""),
            }
        } else {
            match hostport.find(':') {
                Some(colon) => hostport.split_at(colon),
                None => (hostport, ""),
            }
        };
        let host = match host {
            "localhost" => LoopbackHost::Localhost,
            "127.0.0.1" => LoopbackHost::V4Loopback,
            "[::1]" => LoopbackHost::V6Loopback,
            // An IPv6 address without brackets (`::1`) reads as an empty host and a port.
            "" if port.matches(':').count() > 1 => return Err(refuse!(self, HostNotAllowed)),
            "" => return Err(refuse!(self, EmptyHost)),
            _ => return Err(refuse!(self, HostNotAllowed)),
        };
        let port = match port.strip_prefix(':') {
            None if port.is_empty() => DEFAULT_PORT,
            // Something other than ':' right after `[::1]`.
            None => return Err(refuse!(self, HostNotAllowed)),
            Some(port) => self.port(port)?,
        };
        Ok((host, port))
    }

    fn port(&self, text: &str) -> Result<u16, ConfigError> {
        let value = decimal(text).map_err(|problem| refuse!(self, Port, problem: problem))?;
        match value {
            0 => Err(refuse!(self, Port, problem: "0 is not a port")),
            1..=65535 => Ok(value as u16),
            _ => Err(refuse!(self, Port, problem: "above 65535")),
        }
    }

    /// The path must be exactly `/expected`.
    fn database(&self, path: &str, expected: &str) -> Result<String, ConfigError> {
        let found = match path.strip_prefix('/') {
            None | Some("") => {
                return Err(refuse!(self, MissingDatabase, expected: expected.to_owned()))
            }
            Some(found) => found,
        };
        if found == expected {
            return Ok(found.to_owned());
        }
        let hint = if found.contains('%') {
            format!("percent-encoding is not accepted in the database name: write /{expected}")
        } else if found.strip_suffix('/') == Some(expected) {
            format!("remove the trailing '/': the path is exactly /{expected}")
        } else if found.contains('/') {
            format!("the path is a single segment, exactly /{expected}")
        } else if found.eq_ignore_ascii_case(expected) {
            format!("database names are case-sensitive: write /{expected}")
        } else if self.var == DATABASE_URL {
            format!(
                "each environment has its own database: check --env/{ENV_VAR} and the URL \
                 (dev uses dreichor_dev, prod uses dreichor_prod)"
            )
        } else {
            format!("write /{expected}")
        };
        Err(refuse!(
            self,
            WrongDatabase,
            expected: expected.to_owned(),
            found: found.to_owned(),
            hint: hint,
        ))
    }

    /// The query parameters: only the allow-list, each at most once. An empty query (a bare
    /// trailing `?`) sets nothing and is accepted, as every parser reads it the same way.
    fn query(&self, query: &str) -> Result<(Option<String>, Option<Duration>), ConfigError> {
        let mut application_name = None;
        let mut connect_timeout = None;
        let mut seen: Vec<&str> = Vec::new();
        if query.is_empty() {
            return Ok((None, None));
        }
        for pair in query.split('&') {
            if pair.is_empty() {
                let problem = "an empty parameter (a doubled or trailing '&')";
                return Err(refuse!(self, MalformedQuery, problem: problem));
            }
            let Some((key, value)) = pair.split_once('=') else {
                let problem = "a parameter without '=value'";
                return Err(refuse!(self, MalformedQuery, problem: problem));
            };
            if key.is_empty() {
                let problem = "a parameter without a name";
                return Err(refuse!(self, MalformedQuery, problem: problem));
            }
            if seen.contains(&key) {
                return Err(refuse!(self, DuplicateParameter, key: key.to_owned()));
            }
            seen.push(key);
            match key {
                "application_name" => application_name = Some(self.application_name(value)?),
                "connect_timeout" => connect_timeout = Some(self.connect_timeout(value)?),
                "sslmode" => self.sslmode(value)?,
                _ => {
                    return Err(match refused_parameter(key) {
                        Some(reason) => refuse!(
                            self,
                            RefusedParameter,
                            key: key.to_owned(),
                            reason: reason
                        ),
                        None => refuse!(self, UnknownParameter, key: key.to_owned()),
                    })
                }
            }
        }
        Ok((application_name, connect_timeout))
    }

    fn application_name(&self, value: &str) -> Result<String, ConfigError> {
        let key = "application_name";
        let invalid = |problem| refuse!(self, ParameterValue, key: key, problem: problem);
        if !well_formed_percent_encoding(value) {
            return Err(invalid(
                "a '%' not followed by two hex digits: write '%' as %25",
            ));
        }
        let decoded = percent_decode_str(value)
            .decode_utf8()
            .map_err(|_| invalid("not printable ASCII: use letters, digits and punctuation"))?;
        if decoded.is_empty() {
            return Err(invalid("empty: give a name or drop the parameter"));
        }
        // Printable ASCII only: the server replaces anything else with '?', and the name ends
        // up in pg_stat_activity and the server log.
        if !decoded.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
            return Err(invalid(
                "not printable ASCII: use letters, digits and punctuation",
            ));
        }
        if decoded.len() > MAX_APPLICATION_NAME {
            return Err(invalid(
                "longer than 63 characters, which the server would silently truncate",
            ));
        }
        Ok(decoded.into_owned())
    }

    /// Whole seconds from 1 to 3600. 0, which libpq reads as "wait forever", is refused: the
    /// tools promise to give up in bounded time.
    fn connect_timeout(&self, value: &str) -> Result<Duration, ConfigError> {
        let problem = "write a whole number of seconds from 1 to 3600, without sign, leading \
                       zero or unit (0 would mean waiting forever)";
        match decimal(value) {
            Ok(secs @ 1..=MAX_CONNECT_TIMEOUT_SECS) => Ok(Duration::from_secs(secs.into())),
            _ => Err(refuse!(
                self,
                ParameterValue,
                key: "connect_timeout",
                problem: problem
            )),
        }
    }

    /// `disable` or `prefer`: the tools connect over loopback TCP with no TLS.
    fn sslmode(&self, value: &str) -> Result<(), ConfigError> {
        let problem = match value {
            "disable" | "prefer" => return Ok(()),
            "require" | "verify-ca" | "verify-full" => {
                "the tools connect over loopback without TLS, so a mode that requires TLS would \
                 fail every connection: use sslmode=disable or sslmode=prefer, or drop it"
            }
            _ => "only disable or prefer are accepted (the connection is loopback, without TLS)",
        };
        Err(refuse!(
            self,
            ParameterValue,
            key: "sslmode",
            problem: problem
        ))
    }
}

/// Why a parameter that libpq knows is refused, or `None` for one the tools do not know.
fn refused_parameter(key: &str) -> Option<&'static str> {
    Some(match key {
        "host" | "hostaddr" => {
            "it would replace the validated host; write the host after the '@' \
             (localhost, 127.0.0.1 or [::1])"
        }
        "port" => {
            "it would replace the validated port; write the port after the host (localhost:5432)"
        }
        "dbname" => "it would replace the validated database; write the database as the path",
        "user" => "it would replace the validated user; write the user before the '@'",
        "password" => {
            "the password belongs before the '@', percent-encoded (postgres://USER:PASSWORD@...)"
        }
        "options" => {
            "it passes server settings at connection start (role, search_path, \
             default_transaction_read_only, ...), changing the session behind the validation; \
             drop it"
        }
        "service" => {
            "it loads host, port, database and user from pg_service.conf, replacing the validated \
             ones; write them in the URL"
        }
        "passfile" => "it reads credentials from another file; put the password in the URL",
        "target_session_attrs" | "load_balance_hosts" => {
            "it chooses among several hosts, and exactly one host is allowed; drop it"
        }
        _ if key.contains('%') => {
            "percent-encoded parameter names are refused: parsers decode them (h%6Fst is host); \
             write the name literally"
        }
        _ => return None,
    })
}

/// A decimal number without sign, leading zero or anything else, at most 5 digits (every
/// value here is a port or a timeout in seconds).
fn decimal(text: &str) -> Result<u32, &'static str> {
    if text.is_empty() {
        return Err("nothing after ':'");
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err("not a decimal number");
    }
    if text.len() > 1 && text.starts_with('0') {
        return Err("a leading zero");
    }
    if text.len() > 5 {
        return Err("above 65535");
    }
    text.parse().map_err(|_| "not a decimal number")
}

/// Whether every '%' starts a `%XX` escape with two hex digits.
fn well_formed_percent_encoding(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3);
            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

/// What to write instead of a scheme other than `postgres://`.
fn scheme_hint(raw: &str) -> &'static str {
    let lower = raw.to_ascii_lowercase();
    if lower.starts_with("postgresql:") {
        "postgresql:// is refused by policy: write postgres://"
    } else if lower.starts_with("postgres://") {
        "the scheme is lower case: write postgres://"
    } else if lower.starts_with("postgres:") {
        "postgres: must be followed by //: postgres://USER:PASSWORD@localhost:5432/DATABASE"
    } else {
        "write the URL as postgres://USER:PASSWORD@localhost:5432/DATABASE"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use postgres::config::Host;
    use proptest::prelude::*;
    use std::str::FromStr;

    /// In every test URL that has a password: no message, Debug or redaction may contain it.
    const PW: &str = "Sentinel-PW-7f3a";

    /// The part of the sentinel that survives any percent-encoding used in these tests.
    const PW_MARK: &str = "Sentinel";

    fn url(rest: &str) -> String {
        format!("postgres://dreichor_dev:{PW}@{rest}")
    }

    fn accepted(raw: &str) -> DbUrl {
        match DbUrl::for_env(raw, Env::Dev) {
            Ok(url) => url,
            Err(err) => panic!("refused {}: {err}", redact(raw)),
        }
    }

    /// Asserts that `raw` is refused for env dev with the variant `is_variant` accepts, and
    /// that the message names the rule and the variable and shows no password.
    fn assert_refused(raw: &str, is_variant: impl Fn(&ConfigError) -> bool, rule: &str) {
        let err = match DbUrl::for_env(raw, Env::Dev) {
            Ok(url) => panic!("accepted {}: {url:?}", redact(raw)),
            Err(err) => err,
        };
        let text = err.to_string();
        let debug = format!("{err:?}");
        assert!(
            is_variant(&err),
            "wrong variant for {}: {debug}",
            redact(raw)
        );
        assert!(
            !text.contains(PW_MARK),
            "message shows the password: {text}"
        );
        assert!(
            !debug.contains(PW_MARK),
            "Debug shows the password: {debug}"
        );
        assert!(
            text.contains(rule),
            "message does not name the rule {rule:?}: {text}"
        );
        assert!(
            text.contains(DATABASE_URL),
            "message does not name the variable: {text}"
        );
        assert!(
            !text.chars().any(char::is_control),
            "message holds a control character: {text:?}"
        );
    }

    /// One test per refused URL: `name: raw => Variant, "text naming the rule";`.
    macro_rules! refusals {
        ($($name:ident: $raw:expr => $variant:pat, $rule:expr;)*) => {$(
            #[test]
            fn $name() {
                assert_refused(&$raw, |err| matches!(err, $variant), $rule);
            }
        )*};
    }

    // Rule 2: the scheme.
    refusals! {
        refuses_postgresql_scheme: format!("postgresql://dreichor_dev:{PW}@localhost/dreichor_dev")
            => ConfigError::Scheme { .. }, "postgresql:// is refused by policy";
        refuses_upper_case_scheme: format!("POSTGRES://dreichor_dev:{PW}@localhost/dreichor_dev")
            => ConfigError::Scheme { .. }, "lower case";
        refuses_scheme_without_slashes: format!("postgres:dreichor_dev:{PW}@localhost/dreichor_dev")
            => ConfigError::Scheme { .. }, "must be followed by //";
        refuses_other_scheme: format!("mysql://dreichor_dev:{PW}@localhost/dreichor_dev")
            => ConfigError::Scheme { .. }, "must start with postgres://";
        refuses_missing_scheme: format!("dreichor_dev:{PW}@localhost/dreichor_dev")
            => ConfigError::Scheme { .. }, "must start with postgres://";
    }

    // Rule 3: exactly one host, spelled exactly localhost, 127.0.0.1 or [::1].
    refusals! {
        refuses_second_host: url("localhost,evil.example.com/dreichor_dev")
            => ConfigError::SeveralHosts { .. }, "several hosts";
        refuses_second_host_with_ports: url("localhost:5432,127.0.0.1:5433/dreichor_dev")
            => ConfigError::SeveralHosts { .. }, "several hosts";
        refuses_unix_socket_without_host: "postgres:///dreichor_dev"
            => ConfigError::EmptyHost { .. }, "Unix socket";
        refuses_empty_host_after_user: url("/dreichor_dev")
            => ConfigError::EmptyHost { .. }, "Unix socket";
        refuses_empty_host_with_port: url(":5432/dreichor_dev")
            => ConfigError::EmptyHost { .. }, "names no host";
        refuses_remote_host: url("db.example.com/dreichor_dev")
            => ConfigError::HostNotAllowed { .. }, "localhost, 127.0.0.1 or [::1]";
        refuses_upper_case_localhost: url("LOCALHOST/dreichor_dev")
            => ConfigError::HostNotAllowed { .. }, "localhost, 127.0.0.1 or [::1]";
        refuses_short_loopback_spelling: url("127.1/dreichor_dev")
            => ConfigError::HostNotAllowed { .. }, "localhost, 127.0.0.1 or [::1]";
        refuses_other_loopback_address: url("127.0.0.2/dreichor_dev")
            => ConfigError::HostNotAllowed { .. }, "localhost, 127.0.0.1 or [::1]";
        refuses_hexadecimal_loopback: url("0x7f000001/dreichor_dev")
            => ConfigError::HostNotAllowed { .. }, "localhost, 127.0.0.1 or [::1]";
        refuses_integer_loopback: url("2130706433/dreichor_dev")
            => ConfigError::HostNotAllowed { .. }, "localhost, 127.0.0.1 or [::1]";
        refuses_long_ipv6_loopback: url("[0:0:0:0:0:0:0:1]/dreichor_dev")
            => ConfigError::HostNotAllowed { .. }, "localhost, 127.0.0.1 or [::1]";
        refuses_ipv6_loopback_without_brackets: url("::1/dreichor_dev")
            => ConfigError::HostNotAllowed { .. }, "::1 without brackets";
        refuses_ipv6_loopback_without_brackets_with_port: url("::1:5432/dreichor_dev")
            => ConfigError::HostNotAllowed { .. }, "localhost, 127.0.0.1 or [::1]";
        refuses_localhost_with_trailing_dot: url("localhost./dreichor_dev")
            => ConfigError::HostNotAllowed { .. }, "localhost, 127.0.0.1 or [::1]";
        refuses_ipv4_mapped_loopback: url("[::ffff:127.0.0.1]/dreichor_dev")
            => ConfigError::HostNotAllowed { .. }, "localhost, 127.0.0.1 or [::1]";
        refuses_unclosed_ipv6_bracket: url("[::1/dreichor_dev")
            => ConfigError::HostNotAllowed { .. }, "localhost, 127.0.0.1 or [::1]";
        refuses_garbage_after_ipv6_bracket: url("[::1]x/dreichor_dev")
            => ConfigError::HostNotAllowed { .. }, "localhost, 127.0.0.1 or [::1]";
        refuses_subdomain_of_localhost: url("localhost.evil.example.com/dreichor_dev")
            => ConfigError::HostNotAllowed { .. }, "localhost, 127.0.0.1 or [::1]";
        refuses_percent_encoded_host: url("l%6Fcalhost/dreichor_dev")
            => ConfigError::EncodedHost { .. }, "percent-encoded host";
        refuses_look_alike_host: url("l\u{043e}calhost/dreichor_dev")
            => ConfigError::NonAscii { .. }, "non-ASCII";
    }

    // Rule 4: the port.
    refusals! {
        refuses_empty_port: url("localhost:/dreichor_dev")
            => ConfigError::Port { problem: "nothing after ':'", .. }, "invalid port";
        refuses_port_zero: url("localhost:0/dreichor_dev")
            => ConfigError::Port { .. }, "0 is not a port";
        refuses_port_above_65535: url("localhost:65536/dreichor_dev")
            => ConfigError::Port { .. }, "above 65535";
        refuses_very_long_port: url("localhost:4294972728/dreichor_dev")
            => ConfigError::Port { .. }, "above 65535";
        refuses_port_with_suffix: url("localhost:5432x/dreichor_dev")
            => ConfigError::Port { .. }, "not a decimal number";
        refuses_port_with_plus_sign: url("localhost:+5432/dreichor_dev")
            => ConfigError::Port { .. }, "not a decimal number";
        refuses_negative_port: url("localhost:-1/dreichor_dev")
            => ConfigError::Port { .. }, "not a decimal number";
        refuses_port_with_leading_zero: url("localhost:05432/dreichor_dev")
            => ConfigError::Port { .. }, "leading zero";
        refuses_second_port: url("localhost:5432:5433/dreichor_dev")
            => ConfigError::Port { .. }, "not a decimal number";
    }

    // Rule 5: the database.
    refusals! {
        refuses_other_environments_database: url("localhost/dreichor_prod")
            => ConfigError::WrongDatabase { .. }, "must name exactly the database dreichor_dev";
        refuses_missing_database: url("localhost")
            => ConfigError::MissingDatabase { .. }, "names no database";
        refuses_empty_database: url("localhost:5432/")
            => ConfigError::MissingDatabase { .. }, "append /dreichor_dev";
        refuses_query_without_database: url("localhost?application_name=x")
            => ConfigError::MissingDatabase { .. }, "names no database";
        refuses_trailing_slash_after_database: url("localhost/dreichor_dev/")
            => ConfigError::WrongDatabase { .. }, "trailing '/'";
        refuses_extra_path_segment: url("localhost/dreichor_dev/extra")
            => ConfigError::WrongDatabase { .. }, "single segment";
        refuses_database_in_other_case: url("localhost/Dreichor_Dev")
            => ConfigError::WrongDatabase { .. }, "case-sensitive";
        refuses_percent_encoded_database: url("localhost/dreichor%5Fdev")
            => ConfigError::WrongDatabase { .. }, "percent-encoding is not accepted";
        refuses_database_prefix: url("localhost/dreichor_dev_old")
            => ConfigError::WrongDatabase { .. }, "must name exactly the database dreichor_dev";
    }

    // Rule 6: the user and password.
    refusals! {
        refuses_url_without_user: "postgres://localhost/dreichor_dev"
            => ConfigError::MissingUser { .. }, "names no user";
        refuses_empty_user: format!("postgres://:{PW}@localhost/dreichor_dev")
            => ConfigError::MissingUser { .. }, "a user is required";
        refuses_unencoded_at_in_password: format!("postgres://u:{PW}@evil.example.com@localhost/dreichor_dev")
            => ConfigError::SeveralAt { .. }, "percent-encode '@' in the user or password as %40";
        refuses_unencoded_at_in_user: format!("postgres://me@corp:{PW}@localhost/dreichor_dev")
            => ConfigError::SeveralAt { .. }, "more than one '@'";
        refuses_at_in_query_with_userinfo: url("localhost/dreichor_dev?application_name=a@b")
            => ConfigError::SeveralAt { .. }, "more than one '@'";
        refuses_at_in_query_without_userinfo: "postgres://localhost/dreichor_dev?application_name=u@evil"
            => ConfigError::AtOutsideAuthority { .. }, "after a '/' or '?'";
        refuses_unencoded_slash_in_password: format!("postgres://u:a/{PW}@localhost/dreichor_dev")
            => ConfigError::AtOutsideAuthority { .. }, "percent-encode '/' as %2F";
        refuses_unencoded_question_mark_in_password: format!("postgres://u:a?{PW}@localhost/dreichor_dev")
            => ConfigError::AtOutsideAuthority { .. }, "'?' as %3F";
        refuses_empty_password: "postgres://dreichor_dev:@localhost/dreichor_dev"
            => ConfigError::EmptyPassword { .. }, "empty password";
        refuses_invalid_utf8_in_password: url("localhost/dreichor_dev").replace(PW, &format!("{PW}%FF"))
            => ConfigError::UndecodableUserinfo { part: "password", problem: "invalid UTF-8", .. }, "must be UTF-8 text";
        refuses_nul_in_password: url("localhost/dreichor_dev").replace(PW, &format!("{PW}%00"))
            => ConfigError::UndecodableUserinfo { part: "password", problem: "a control character", .. }, "without control characters";
        refuses_newline_in_user: format!("postgres://dreichor%0Adev:{PW}@localhost/dreichor_dev")
            => ConfigError::UndecodableUserinfo { part: "user", .. }, "a control character";
        refuses_malformed_percent_escape_in_password: url("localhost/dreichor_dev").replace(PW, &format!("{PW}%zz"))
            => ConfigError::PercentEncoding { part: "password", .. }, "write a literal '%' as %25";
        refuses_truncated_percent_escape_in_password: url("localhost/dreichor_dev").replace(PW, &format!("{PW}%4"))
            => ConfigError::PercentEncoding { part: "password", .. }, "two hex digits";
        refuses_bracket_in_password: url("localhost/dreichor_dev").replace(PW, &format!("{PW}["))
            => ConfigError::UserinfoCharacter { part: "password", .. }, "must be percent-encoded";
        refuses_quote_in_password: url("localhost/dreichor_dev").replace(PW, &format!("\"{PW}"))
            => ConfigError::UserinfoCharacter { part: "password", .. }, "must be percent-encoded";
        refuses_backslash_in_user: format!("postgres://corp\\me:{PW}@localhost/dreichor_dev")
            => ConfigError::UserinfoCharacter { part: "user", .. }, "must be percent-encoded";
        refuses_fragment: url("localhost/dreichor_dev#x")
            => ConfigError::Fragment { .. }, "must not contain '#'";
        refuses_hash_in_password: url("localhost/dreichor_dev").replace(PW, &format!("{PW}#"))
            => ConfigError::Fragment { .. }, "as %23";
    }

    // Rule 7: query parameters.
    refusals! {
        refuses_host_query_parameter: url("localhost/dreichor_dev?host=evil.example.com")
            => ConfigError::RefusedParameter { .. }, "would replace the validated host";
        refuses_hostaddr_query_parameter: url("localhost/dreichor_dev?hostaddr=10.0.0.1")
            => ConfigError::RefusedParameter { .. }, "would replace the validated host";
        refuses_socket_path_in_host_query_parameter: url("localhost/dreichor_dev?host=%2Ftmp")
            => ConfigError::RefusedParameter { .. }, "query parameter host";
        refuses_port_query_parameter: url("localhost/dreichor_dev?port=5433")
            => ConfigError::RefusedParameter { .. }, "would replace the validated port";
        refuses_dbname_query_parameter: url("localhost/dreichor_dev?dbname=dreichor_prod")
            => ConfigError::RefusedParameter { .. }, "would replace the validated database";
        refuses_user_query_parameter: url("localhost/dreichor_dev?user=postgres")
            => ConfigError::RefusedParameter { .. }, "would replace the validated user";
        refuses_password_query_parameter: format!("postgres://dreichor_dev@localhost/dreichor_dev?password={PW}")
            => ConfigError::RefusedParameter { .. }, "the password belongs before the '@'";
        refuses_options_query_parameter: url("localhost/dreichor_dev?options=-c%20role%3Dpostgres")
            => ConfigError::RefusedParameter { .. }, "search_path";
        refuses_service_query_parameter: url("localhost/dreichor_dev?service=prod")
            => ConfigError::RefusedParameter { .. }, "pg_service.conf";
        refuses_passfile_query_parameter: url("localhost/dreichor_dev?passfile=%2Ftmp%2Fpw")
            => ConfigError::RefusedParameter { .. }, "credentials from another file";
        refuses_target_session_attrs_query_parameter: url("localhost/dreichor_dev?target_session_attrs=read-write")
            => ConfigError::RefusedParameter { .. }, "exactly one host is allowed";
        refuses_load_balance_hosts_query_parameter: url("localhost/dreichor_dev?load_balance_hosts=random")
            => ConfigError::RefusedParameter { .. }, "exactly one host is allowed";
        refuses_percent_encoded_parameter_name: url("localhost/dreichor_dev?h%6Fst=evil")
            => ConfigError::RefusedParameter { .. }, "percent-encoded parameter names";
        refuses_unknown_query_parameter: url("localhost/dreichor_dev?sslrootcert=%2Fetc%2Fca")
            => ConfigError::UnknownParameter { .. }, "refused, not ignored";
        refuses_upper_case_parameter_name: url("localhost/dreichor_dev?HOST=evil")
            => ConfigError::UnknownParameter { .. }, "unknown query parameter HOST";
        refuses_duplicate_query_parameter: url("localhost/dreichor_dev?sslmode=disable&sslmode=prefer")
            => ConfigError::DuplicateParameter { .. }, "more than once";
        refuses_sslmode_require: url("localhost/dreichor_dev?sslmode=require")
            => ConfigError::ParameterValue { key: "sslmode", .. }, "without TLS";
        refuses_sslmode_verify_full: url("localhost/dreichor_dev?sslmode=verify-full")
            => ConfigError::ParameterValue { key: "sslmode", .. }, "requires TLS";
        refuses_unknown_sslmode: url("localhost/dreichor_dev?sslmode=allow")
            => ConfigError::ParameterValue { key: "sslmode", .. }, "only disable or prefer";
        refuses_zero_connect_timeout: url("localhost/dreichor_dev?connect_timeout=0")
            => ConfigError::ParameterValue { key: "connect_timeout", .. }, "waiting forever";
        refuses_negative_connect_timeout: url("localhost/dreichor_dev?connect_timeout=-5")
            => ConfigError::ParameterValue { key: "connect_timeout", .. }, "from 1 to 3600";
        refuses_connect_timeout_with_unit: url("localhost/dreichor_dev?connect_timeout=5s")
            => ConfigError::ParameterValue { key: "connect_timeout", .. }, "from 1 to 3600";
        refuses_huge_connect_timeout: url("localhost/dreichor_dev?connect_timeout=86400")
            => ConfigError::ParameterValue { key: "connect_timeout", .. }, "from 1 to 3600";
        refuses_control_character_in_application_name: url("localhost/dreichor_dev?application_name=a%0Ab")
            => ConfigError::ParameterValue { key: "application_name", .. }, "not printable ASCII";
        refuses_non_ascii_application_name: url("localhost/dreichor_dev?application_name=%C3%BC")
            => ConfigError::ParameterValue { key: "application_name", .. }, "not printable ASCII";
        refuses_empty_application_name: url("localhost/dreichor_dev?application_name=")
            => ConfigError::ParameterValue { key: "application_name", .. }, "empty";
        refuses_overlong_application_name: url(&format!("localhost/dreichor_dev?application_name={}", "a".repeat(64)))
            => ConfigError::ParameterValue { key: "application_name", .. }, "silently truncate";
        refuses_doubled_ampersand: url("localhost/dreichor_dev?sslmode=disable&&connect_timeout=5")
            => ConfigError::MalformedQuery { .. }, "empty parameter";
        refuses_trailing_ampersand: url("localhost/dreichor_dev?sslmode=disable&")
            => ConfigError::MalformedQuery { .. }, "empty parameter";
        refuses_parameter_without_value: url("localhost/dreichor_dev?sslmode")
            => ConfigError::MalformedQuery { .. }, "without '=value'";
        refuses_parameter_without_name: url("localhost/dreichor_dev?=disable")
            => ConfigError::MalformedQuery { .. }, "without a name";
    }

    // Rule 8: no whitespace, control or non-ASCII characters anywhere.
    refusals! {
        refuses_trailing_newline: format!("{}\n", url("localhost/dreichor_dev"))
            => ConfigError::Whitespace { .. }, "whitespace or a control character";
        refuses_leading_space: format!(" {}", url("localhost/dreichor_dev"))
            => ConfigError::Whitespace { .. }, "whitespace or a control character";
        refuses_space_in_password: url("localhost/dreichor_dev").replace(PW, &format!("{PW} x"))
            => ConfigError::Whitespace { .. }, "percent-encode a space";
        refuses_tab_in_host: url("local\thost/dreichor_dev")
            => ConfigError::Whitespace { .. }, "whitespace or a control character";
        refuses_escape_sequence: url("localhost/dreichor_dev\u{1b}[2J")
            => ConfigError::Whitespace { .. }, "whitespace or a control character";
        refuses_non_breaking_space: url("localhost/dreichor_dev\u{a0}")
            => ConfigError::Whitespace { .. }, "whitespace or a control character";
        refuses_non_ascii_password: url("localhost/dreichor_dev").replace(PW, &format!("{PW}\u{fc}"))
            => ConfigError::NonAscii { .. }, "%C3%BC";
    }

    // Rule 1: set and non-empty.
    #[test]
    fn refuses_unset_url() {
        for value in [None, Some(String::new())] {
            let err = DbUrl::from_env_var(DATABASE_URL, value, "dreichor_dev").unwrap_err();
            assert!(matches!(err, ConfigError::NotSet { .. }), "{err:?}");
            assert!(
                err.to_string().starts_with("DATABASE_URL is not set"),
                "{err}"
            );
        }
        let err = DbUrl::for_env("", Env::Dev).unwrap_err();
        assert!(matches!(err, ConfigError::NotSet { .. }), "{err:?}");
    }

    #[test]
    fn reads_url_from_the_variable_value() {
        let raw = url("localhost/dreichor_dev");
        let db = DbUrl::from_env_var(DATABASE_URL, Some(raw), "dreichor_dev").unwrap();
        assert_eq!(db.database(), "dreichor_dev");
    }

    #[test]
    fn admin_url_must_name_the_postgres_database() {
        let raw = format!("postgres://postgres:{PW}@localhost/postgres");
        let db = DbUrl::for_admin(&raw).unwrap();
        assert_eq!(db.database(), "postgres");
        assert_eq!(db.user(), "postgres");

        let err = DbUrl::for_admin(&url("localhost/dreichor_dev")).unwrap_err();
        assert!(matches!(err, ConfigError::WrongDatabase { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.starts_with(ADMIN_DATABASE_URL), "{text}");
        assert!(text.contains("write /postgres"), "{text}");
        assert!(!text.contains(PW_MARK), "{text}");
    }

    #[test]
    fn wrong_database_for_the_environment_points_at_the_environment() {
        let err = DbUrl::for_env(&url("localhost/dreichor_dev"), Env::Prod).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("must name exactly the database dreichor_prod"),
            "{text}"
        );
        assert!(text.contains("--env"), "{text}");
    }

    #[test]
    fn scheme_message_matches_the_documented_example() {
        let err = DbUrl::for_env(
            &format!("postgresql://dreichor_dev:{PW}@localhost/dreichor_dev"),
            Env::Dev,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "DATABASE_URL must start with postgres:// (got \
             postgresql://dreichor_dev:***@localhost/dreichor_dev); postgresql:// is refused by \
             policy: write postgres://"
        );
    }

    #[test]
    fn accepts_all_three_hosts_with_and_without_port() {
        for (host, written, port) in [
            ("localhost", "localhost", 5432),
            ("localhost:5433", "localhost", 5433),
            ("127.0.0.1", "127.0.0.1", 5432),
            ("127.0.0.1:1", "127.0.0.1", 1),
            ("[::1]", "[::1]", 5432),
            ("[::1]:65535", "[::1]", 65535),
        ] {
            let db = accepted(&url(&format!("{host}/dreichor_dev")));
            assert_eq!(db.host(), written);
            assert_eq!(db.port(), port);
            assert_eq!(db.user(), "dreichor_dev");
            assert_eq!(db.password(), Some(PW));
            assert_eq!(db.database(), "dreichor_dev");
            assert_eq!(
                db.redacted(),
                format!("postgres://dreichor_dev:***@{written}:{port}/dreichor_dev")
            );
        }
    }

    #[test]
    fn accepts_prod_url_for_prod() {
        let raw = format!("postgres://dreichor_prod:{PW}@127.0.0.1:5432/dreichor_prod");
        let db = DbUrl::for_env(&raw, Env::Prod).unwrap();
        assert_eq!(db.database(), "dreichor_prod");
    }

    #[test]
    fn decodes_percent_encoded_password() {
        let raw = "postgres://dreichor_dev:Sentinel%40PW%2F7f%3Aa%25@localhost/dreichor_dev";
        let db = accepted(raw);
        assert_eq!(db.password(), Some("Sentinel@PW/7f:a%"));
        assert_eq!(
            db.redacted(),
            "postgres://dreichor_dev:***@localhost:5432/dreichor_dev"
        );
    }

    #[test]
    fn accepts_unencoded_colon_in_password() {
        let db = accepted(&url("localhost/dreichor_dev").replace(PW, &format!("{PW}:x")));
        assert_eq!(db.password(), Some(format!("{PW}:x").as_str()));
    }

    #[test]
    fn decodes_percent_encoded_user_and_shows_it_encoded() {
        let db = accepted(&format!("postgres://me%40corp:{PW}@localhost/dreichor_dev"));
        assert_eq!(db.user(), "me@corp");
        assert_eq!(
            db.redacted(),
            "postgres://me%40corp:***@localhost:5432/dreichor_dev"
        );
    }

    #[test]
    fn accepts_non_ascii_password_when_percent_encoded() {
        let db = accepted(&url("localhost/dreichor_dev").replace(PW, &format!("{PW}%C3%BC")));
        assert_eq!(db.password(), Some(format!("{PW}\u{fc}").as_str()));
    }

    #[test]
    fn accepts_url_without_password() {
        let db = accepted("postgres://dreichor_dev@localhost/dreichor_dev");
        assert_eq!(db.password(), None);
        assert_eq!(
            db.redacted(),
            "postgres://dreichor_dev@localhost:5432/dreichor_dev"
        );
        let config = db.pg_config("migrate", Duration::from_secs(5));
        assert_eq!(config.get_password(), None);
    }

    #[test]
    fn accepts_allowed_query_parameters() {
        let db = accepted(&url(
            "localhost/dreichor_dev?application_name=deploy%20agent&connect_timeout=7&sslmode=prefer",
        ));
        assert_eq!(db.application_name(), Some("deploy agent"));
        assert_eq!(db.connect_timeout(), Some(Duration::from_secs(7)));
        let db = accepted(&url("localhost/dreichor_dev?sslmode=disable"));
        assert_eq!(db.application_name(), None);
        assert_eq!(db.connect_timeout(), None);
    }

    #[test]
    fn accepts_empty_query() {
        let db = accepted(&url("localhost/dreichor_dev?"));
        assert_eq!(db.application_name(), None);
    }

    #[test]
    fn pg_config_holds_only_the_validated_parts_and_loopback_literals() {
        let db = accepted(&url("localhost:5433/dreichor_dev"));
        let config = db.pg_config("migrate", Duration::from_secs(5));
        assert_eq!(
            config.get_hosts(),
            &[
                Host::Tcp("127.0.0.1".to_owned()),
                Host::Tcp("::1".to_owned())
            ]
        );
        assert_eq!(config.get_hostaddrs(), &LOCALHOST_ADDRS);
        assert_eq!(config.get_user(), Some("dreichor_dev"));
        assert_eq!(config.get_password(), Some(PW.as_bytes()));
        assert_eq!(config.get_dbname(), Some("dreichor_dev"));
        assert_eq!(config.get_ports(), &[5433]);
        assert_eq!(config.get_application_name(), Some("migrate"));
        assert_eq!(config.get_connect_timeout(), Some(&Duration::from_secs(5)));
        assert_eq!(config.get_ssl_mode(), SslMode::Disable);
        assert_eq!(config.get_options(), None);
    }

    #[test]
    fn pg_config_connects_each_literal_host_to_its_own_address() {
        let v4 = accepted(&url("127.0.0.1/dreichor_dev")).pg_config("t", Duration::from_secs(1));
        assert_eq!(v4.get_hosts(), &[Host::Tcp("127.0.0.1".to_owned())]);
        assert_eq!(v4.get_hostaddrs(), &[IpAddr::V4(Ipv4Addr::LOCALHOST)]);
        let v6 = accepted(&url("[::1]/dreichor_dev")).pg_config("t", Duration::from_secs(1));
        assert_eq!(v6.get_hosts(), &[Host::Tcp("::1".to_owned())]);
        assert_eq!(v6.get_hostaddrs(), &[IpAddr::V6(Ipv6Addr::LOCALHOST)]);
        assert_eq!(v6.get_ports(), &[5432]);
    }

    #[test]
    fn pg_config_prefers_the_urls_application_name_and_timeout() {
        let db = accepted(&url(
            "localhost/dreichor_dev?application_name=runtime&connect_timeout=9&sslmode=prefer",
        ));
        let config = db.pg_config("migrate", Duration::from_secs(5));
        assert_eq!(config.get_application_name(), Some("runtime"));
        assert_eq!(config.get_connect_timeout(), Some(&Duration::from_secs(9)));
        // prefer is accepted but the connection stays without TLS.
        assert_eq!(config.get_ssl_mode(), SslMode::Disable);
    }

    /// For accepted input, the crate's own URL parser reads the same user, password, database
    /// and port: there is no parser differential to exploit.
    #[test]
    fn crate_parser_agrees_on_accepted_urls() {
        for raw in [
            url("localhost/dreichor_dev"),
            url("localhost:5433/dreichor_dev"),
            url("127.0.0.1:6543/dreichor_dev"),
            url("[::1]:5432/dreichor_dev"),
            url("localhost/dreichor_dev?application_name=x&connect_timeout=3&sslmode=disable"),
            url("localhost/dreichor_dev?"),
            "postgres://dreichor_dev@localhost/dreichor_dev".to_owned(),
            "postgres://me%40corp:Sentinel%40PW%2F7f%3Aa@localhost/dreichor_dev".to_owned(),
            url("localhost/dreichor_dev").replace(PW, &format!("{PW}:x;y=z&")),
        ] {
            let db = accepted(&raw);
            assert_agrees_with_crate_parser(&raw, &db);
        }
    }

    fn assert_agrees_with_crate_parser(raw: &str, db: &DbUrl) {
        let theirs = postgres::Config::from_str(raw)
            .unwrap_or_else(|e| panic!("the crate refuses {}: {e}", redact(raw)));
        let ours = db.pg_config("t", Duration::from_secs(5));
        assert_eq!(
            theirs.get_user(),
            ours.get_user(),
            "user of {}",
            redact(raw)
        );
        assert_eq!(
            theirs.get_dbname(),
            ours.get_dbname(),
            "database of {}",
            redact(raw)
        );
        assert_eq!(
            theirs.get_ports(),
            ours.get_ports(),
            "port of {}",
            redact(raw)
        );
        assert!(
            theirs.get_password() == ours.get_password(),
            "password of {}",
            redact(raw)
        );
        assert_eq!(theirs.get_options(), None);
        let hosts: Vec<String> = theirs
            .get_hosts()
            .iter()
            .map(|h| match h {
                Host::Tcp(h) => h.clone(),
                Host::Unix(p) => panic!("a socket path {p:?} in {}", redact(raw)),
            })
            .collect();
        let written = db.host().trim_start_matches('[').trim_end_matches(']');
        assert_eq!(hosts, [written], "host of {}", redact(raw));
        assert!(theirs.get_hostaddrs().is_empty());
    }

    #[test]
    fn debug_and_display_never_show_the_password() {
        let db = accepted(&url("localhost/dreichor_dev?application_name=x"));
        for text in [format!("{db:?}"), format!("{db:#?}"), db.to_string()] {
            assert!(!text.contains(PW_MARK), "{text}");
            assert!(text.contains("postgres://dreichor_dev:***@localhost:5432/dreichor_dev"));
        }
        assert_eq!(format!("{:?}", Password(PW.to_owned())), "***");
    }

    #[test]
    fn redact_hides_the_password_of_a_valid_url() {
        assert_eq!(
            redact(&url("localhost:5432/dreichor_dev")),
            "postgres://dreichor_dev:***@localhost:5432/dreichor_dev"
        );
        assert_eq!(
            redact("postgres://u@localhost/dreichor_dev"),
            "postgres://u@localhost/dreichor_dev"
        );
    }

    #[test]
    fn redact_hides_everything_up_to_the_last_at() {
        for raw in [
            format!("postgres://u:{PW}@evil@localhost/db"),
            format!("postgres://u:a@{PW}@localhost/db"),
            format!("postgres://u:a/{PW}?x@localhost/db"),
            format!("postgres://u:{PW}@localhost/db?application_name=a@b"),
            format!("postgresql://u:{PW}:more@localhost"),
            format!("postgres:u:{PW}@localhost/db"),
            format!("postgres:/u:{PW}@localhost/db"),
            format!("u:{PW}@localhost/db"),
            format!("u:pa://{PW}@localhost"),
            format!(" postgres://u:{PW}@localhost"),
            format!("//:{PW}@"),
            format!("::{PW}@@@"),
            format!("postgres://:{PW}@/"),
            format!("postgres:///u:{PW}@x"),
            format!("x://a@b:{PW}@c"),
            format!("@:{PW}@"),
        ] {
            let redacted = redact(&raw);
            assert!(!redacted.contains(PW_MARK), "{raw:?} -> {redacted:?}");
        }
    }

    #[test]
    fn redact_hides_a_password_without_host() {
        assert_eq!(redact(&format!("postgres://u:{PW}")), "postgres://u:***");
        assert_eq!(
            redact(&format!("postgres://u:{PW}/db")),
            "postgres://u:***/db"
        );
        assert_eq!(redact(&format!("u:{PW}")), "u:***");
        assert_eq!(
            redact("postgres://localhost:5432/db"),
            "postgres://localhost:5432/db"
        );
        assert_eq!(
            redact("postgres://[::1]:5432/db"),
            "postgres://[::1]:5432/db"
        );
        assert_eq!(redact("postgres://[::1]/db"), "postgres://[::1]/db");
    }

    #[test]
    fn redact_hides_password_parameters() {
        for (raw, redacted) in [
            (
                format!("postgres://u@localhost/db?password={PW}"),
                "postgres://u@localhost/db?password=***",
            ),
            (
                format!("postgres://u@localhost/db?a=b&PassWord={PW}&c=d"),
                "postgres://u@localhost/db?a=b&PassWord=***&c=d",
            ),
            (
                format!("postgres://u@localhost/db?p%61ssword={PW}"),
                "postgres://u@localhost/db?p%61ssword=***",
            ),
            (
                format!("host=localhost password = '{PW} x' dbname=db"),
                "host=localhost password = ***",
            ),
            (
                format!("host=localhost password={PW}@x dbname=db"),
                "host=localhost password=*** dbname=db",
            ),
            (format!("PGPASSWORD={PW} psql"), "PGPASSWORD=*** psql"),
            ("password=".to_owned(), "password="),
        ] {
            assert_eq!(redact(&raw), redacted);
        }
    }

    #[test]
    fn redact_escapes_control_characters() {
        assert_eq!(redact("postgres://localhost\n"), "postgres://localhost\\n");
        assert_eq!(redact("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(redact("\u{202e}x"), "\\u{202e}x");
        assert_eq!(redact(""), "");
    }

    #[test]
    fn env_from_flag_only() {
        assert_eq!(resolve_env(Some("dev"), None).unwrap(), Env::Dev);
        assert_eq!(resolve_env(Some("prod"), None).unwrap(), Env::Prod);
    }

    #[test]
    fn env_from_variable_only() {
        assert_eq!(resolve_env(None, Some("prod")).unwrap(), Env::Prod);
    }

    #[test]
    fn env_from_flag_and_variable_that_agree() {
        assert_eq!(resolve_env(Some("prod"), Some("prod")).unwrap(), Env::Prod);
    }

    #[test]
    fn env_refuses_flag_and_variable_that_disagree() {
        let err = resolve_env(Some("dev"), Some("prod")).unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::EnvConflict {
                    flag: Env::Dev,
                    var: Env::Prod
                }
            ),
            "{err:?}"
        );
        assert!(err
            .to_string()
            .contains("--env dev and DREICHOR_ENV=prod disagree"));
    }

    #[test]
    fn env_refuses_neither_flag_nor_variable() {
        for var in [None, Some("")] {
            let err = resolve_env(None, var).unwrap_err();
            assert!(matches!(err, ConfigError::EnvMissing), "{err:?}");
            assert!(err.to_string().contains("--env dev or --env prod"));
        }
    }

    #[test]
    fn env_treats_an_empty_variable_as_unset() {
        assert_eq!(resolve_env(Some("dev"), Some("")).unwrap(), Env::Dev);
    }

    #[test]
    fn env_refuses_bad_values() {
        for bad in [
            "",
            "Dev",
            "PROD",
            "production",
            " dev",
            "dev\n",
            "test",
            "d",
        ] {
            let err = resolve_env(Some(bad), None).unwrap_err();
            assert!(
                matches!(
                    err,
                    ConfigError::EnvInvalid {
                        origin: "--env",
                        ..
                    }
                ),
                "{err:?}"
            );
            assert!(err.to_string().contains("must be exactly dev or prod"));
            if !bad.is_empty() {
                let err = resolve_env(None, Some(bad)).unwrap_err();
                assert!(
                    matches!(
                        err,
                        ConfigError::EnvInvalid {
                            origin: ENV_VAR,
                            ..
                        }
                    ),
                    "{err:?}"
                );
                // A broken variable is reported even when the flag is given.
                let err = resolve_env(Some("dev"), Some(bad)).unwrap_err();
                assert!(matches!(err, ConfigError::EnvInvalid { .. }), "{err:?}");
            }
            assert!(bad.parse::<Env>().is_err());
        }
    }

    #[test]
    fn env_names_databases_and_the_other_environment() {
        assert_eq!(Env::Dev.database(), "dreichor_dev");
        assert_eq!(Env::Prod.database(), "dreichor_prod");
        assert_eq!(Env::Dev.other(), Env::Prod);
        assert_eq!(Env::Prod.other(), Env::Dev);
        assert_eq!(Env::Prod.to_string(), "prod");
        assert_eq!("dev".parse::<Env>().unwrap(), Env::Dev);
        assert_eq!(Env::Dev.as_str(), "dev");
    }

    /// Checks everything an accepted URL promises: loopback literals only, the expected
    /// database, the user as written (decoded), agreement with the crate's parser, and a
    /// redaction that replaces exactly the password.
    fn check_accepted(raw: &str, db: &DbUrl) {
        let config = db.pg_config("t", Duration::from_secs(5));
        assert!(!config.get_hosts().is_empty());
        for host in config.get_hosts() {
            assert!(
                matches!(host, Host::Tcp(h) if h == "127.0.0.1" || h == "::1"),
                "{host:?} from {}",
                redact(raw)
            );
        }
        assert_eq!(config.get_hostaddrs().len(), config.get_hosts().len());
        assert!(config.get_hostaddrs().iter().all(IpAddr::is_loopback));
        assert_eq!(config.get_dbname(), Some("dreichor_dev"));

        let rest = raw
            .strip_prefix("postgres://")
            .expect("accepted without postgres://");
        let (userinfo, _) = rest.split_once('@').expect("accepted without '@'");
        let (user, password) = match userinfo.split_once(':') {
            Some((user, password)) => (user, Some(password)),
            None => (userinfo, None),
        };
        let decoded = percent_decode_str(user).decode_utf8().unwrap();
        assert_eq!(config.get_user(), Some(&*decoded));
        assert_eq!(db.user(), &*decoded);

        assert_agrees_with_crate_parser(raw, db);

        let redacted = redact(raw);
        if let Some(password) = password {
            let colon = "postgres://".len() + user.len();
            let at = colon + 1 + password.len();
            assert_eq!(redacted, format!("{}***{}", &raw[..=colon], &raw[at..]));
        } else {
            assert_eq!(redacted, raw);
        }
        for text in [redacted, db.redacted(), format!("{db:?}")] {
            assert_eq!(
                text.matches(PW_MARK).count(),
                user.matches(PW_MARK).count()
                    + raw[colon_free_tail(raw)..].matches(PW_MARK).count(),
                "{text}"
            );
        }
    }

    /// The index of the part after the password's '@' (where a sentinel may legitimately
    /// appear, e.g. in `application_name`).
    fn colon_free_tail(raw: &str) -> usize {
        raw.find('@').map_or(raw.len(), |at| at + 1)
    }

    /// URL-ish pieces whose concatenations reach every branch of the parser.
    const FRAGMENTS: &[&str] = &[
        "postgres://",
        "postgresql://",
        "u",
        "dreichor_dev",
        ":",
        "@",
        "localhost",
        "127.0.0.1",
        "[::1]",
        "[",
        "]",
        "::1",
        "/dreichor_dev",
        "/",
        "?",
        "&",
        "=",
        "%40",
        "%2F",
        "%",
        "%zz",
        "%00",
        ",",
        "host",
        "application_name",
        "connect_timeout",
        "sslmode",
        "disable",
        "5",
        "5432",
        "Sentinel-PW-7f3a",
        "#",
        " ",
        "\n",
        "\u{e9}",
    ];

    fn fragments() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(FRAGMENTS), 0..24).prop_map(|v| v.concat())
    }

    /// URLs shaped like the real thing, with a sentinel always inside the password and
    /// nowhere else, and every slot drawn from valid and invalid choices.
    fn shaped_urls() -> impl Strategy<Value = String> {
        let scheme = prop_oneof![
            8 => Just("postgres://"),
            1 => prop::sample::select(&["postgresql://", "POSTGRES://", "postgres:", ""][..]),
        ];
        let user = "([a-z_]|%4[1-9]|%40|%3A|%2F|%00){0,6}";
        // Mostly pieces a password may hold, so that many URLs are accepted with a password.
        let noise = prop_oneof![
            3 => prop::sample::select(&["", "%40", "%2F", "%3A", "%25", ":", "x", "&", "=", "%C3%BC"][..]),
            1 => prop::sample::select(
                &["@", "/", "?", "#", "%", "%zz", "[", " ", "%00", "%FF", "\n", "\u{fc}"][..]
            ),
        ];
        let password = prop::option::weighted(
            0.8,
            (noise.clone(), noise).prop_map(|(a, b)| format!("{a}{PW}{b}")),
        );
        let host = prop_oneof![
            6 => prop::sample::select(&["localhost", "127.0.0.1", "[::1]"][..]),
            1 => prop::sample::select(
                &["LOCALHOST", "127.1", "", "localhost,evil", "::1", "l%6Fcalhost", "[::1"][..]
            ),
        ];
        let port = prop::sample::select(
            &[
                "", "", ":5432", ":1", ":65535", ":0", ":", ":65536", ":05432", ":+1",
            ][..],
        );
        let path = prop_oneof![
            6 => Just("/dreichor_dev"),
            1 => prop::sample::select(&["/dreichor_prod", "", "/", "/dreichor_dev/", "/Dreichor_dev"][..]),
        ];
        let query = prop::sample::select(
            &[
                "",
                "",
                "?",
                "?application_name=x",
                "?connect_timeout=5",
                "?sslmode=prefer",
                "?application_name=a&sslmode=disable",
                "?host=evil",
                "?options=-c%20role%3Dx",
                "?a@b=c",
                "?sslmode=disable&sslmode=disable",
            ][..],
        );
        (scheme, user, password, host, port, path, query).prop_map(
            |(scheme, user, password, host, port, path, query)| {
                let password = password.map(|p| format!(":{p}")).unwrap_or_default();
                format!("{scheme}{user}{password}@{host}{port}{path}{query}")
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn parse_never_panics_on_arbitrary_strings(raw in any::<String>()) {
            let _ = redact(&raw);
            if let Ok(db) = DbUrl::for_env(&raw, Env::Dev) {
                check_accepted(&raw, &db);
            }
        }

        #[test]
        fn accepted_fragment_soup_connects_only_to_loopback(raw in fragments()) {
            let _ = redact(&raw);
            if let Ok(db) = DbUrl::for_env(&raw, Env::Dev) {
                check_accepted(&raw, &db);
            }
        }

        #[test]
        fn shaped_urls_never_show_the_password(raw in shaped_urls()) {
            let redacted = redact(&raw);
            prop_assert!(!redacted.contains(PW_MARK), "{:?}", redacted);
            match DbUrl::for_env(&raw, Env::Dev) {
                Ok(db) => {
                    check_accepted(&raw, &db);
                    if raw.contains(PW_MARK) {
                        prop_assert!(db.password().is_some_and(|p| p.contains(PW_MARK)));
                    }
                }
                Err(err) => {
                    let text = err.to_string();
                    prop_assert!(!text.contains(PW_MARK), "{}", text);
                    prop_assert!(!format!("{err:?}").contains(PW_MARK), "{:?}", err);
                }
            }
        }
    }
}
