//! [`ConfigError`]: everything that is refused in the environment or a database URL.
//!
//! One variant per rule rather than one variant with a message string: the tests match on the
//! variant, so a URL refused for the wrong reason fails its test even when it is refused. All
//! the messages are here, next to each other, so that their tone stays the same: each names
//! the variable, shows the URL only redacted (the callers pass it through
//! [`redact`](fn@super::redact)), says which rule was broken and what to write instead. They are
//! the operator's only clue, since nothing is connected to before they are shown.

use super::env::Env;
use super::{DEFAULT_PORT, ENV_VAR};

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

    /// The value has no URL structure at all: neither `scheme://` nor `@`. Nothing in it can
    /// be told apart from a password (a password pasted on its own, a stray word), so none of
    /// it is shown, not even redacted.
    #[error("{var} is not a URL: it has neither scheme:// nor '@' (its {length} characters are not shown: nothing in them can be told apart from a password); set it to postgres://USER:PASSWORD@localhost:5432/{expected}")]
    NotAUrl {
        /// The variable's name.
        var: &'static str,
        /// The length of the value in characters.
        length: usize,
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
