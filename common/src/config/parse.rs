//! The validating parser: [`Parser`] takes one raw URL through the rules in a fixed order
//! and builds a [`DbUrl`], or refuses the URL with the first rule it breaks.
//!
//! The order is chosen for the message. Characters come first, since a stray newline or
//! quote from an env file would otherwise be reported as whatever part it happens to break.
//! Then the scheme, then the structure that decides where the password ends, which must be
//! settled before any part can be read: with a single `@` before the first `/` or `?`, libpq,
//! `tokio-postgres` and RFC 3986 all read the same user, password and host, and anything else
//! is refused rather than interpreted. Then the parts: host and port (`host`) before user and
//! password (`userinfo`), since `postgres:///db` is better reported as a socket URL than as
//! one without a user, then the database (here) and the query parameters (`query`). Each of
//! those files adds an `impl Parser` block with its rules and their tests.
//!
//! Parsing is pure: no name is resolved and nothing is connected to.

use super::env::Env;
use super::error::ConfigError;
use super::resolve::read_var;
use super::url::DbUrl;
use super::{ADMIN_DATABASE, ADMIN_DATABASE_URL, DATABASE_URL, ENV_VAR};

/// The constructors of [`DbUrl`]: every one goes through the [`Parser`]. They live here, not
/// next to the type, so that `url` (the validated parts) does not depend on the parser that
/// builds them.
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
}

/// The validation of one raw URL, holding what every error needs.
pub(super) struct Parser<'a> {
    pub(super) raw: &'a str,
    pub(super) var: &'static str,
}

/// Builds a `ConfigError` variant whose only fields are `var` and `url`, plus any extra.
/// The paths are absolute because `host`, `userinfo` and `query` use it too.
macro_rules! refuse {
    ($parser:expr, $variant:ident $(, $field:ident : $value:expr)* $(,)?) => {
        $crate::config::ConfigError::$variant {
            var: $parser.var,
            url: $crate::config::redact($parser.raw),
            $($field: $value,)*
        }
    };
}
pub(super) use refuse;

impl Parser<'_> {
    /// The rules in the order that gives the most useful message: characters, scheme, the
    /// structure that decides where the password ends, then host and port, user and
    /// password, database and query parameters.
    pub(super) fn parse(&self, expected: &str) -> Result<DbUrl, ConfigError> {
        let raw = self.raw;
        if raw.is_empty() {
            return Err(ConfigError::NotSet {
                var: self.var,
                expected: expected.to_owned(),
            });
        }
        if !super::redact::has_structure(raw) {
            return Err(ConfigError::NotAUrl {
                var: self.var,
                length: raw.chars().count(),
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
}

/// A decimal number without sign, leading zero or anything else, at most 5 digits (every
/// value here is a port or a timeout in seconds).
pub(super) fn decimal(text: &str) -> Result<u32, &'static str> {
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
pub(super) fn well_formed_percent_encoding(text: &str) -> bool {
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
    use crate::config::fixtures::{refusals, url, PW, PW_MARK};
    use crate::config::{Env, ADMIN_DATABASE_URL};

    // Rule 1: something that looks like a URL at all.
    refusals! {
        refuses_a_bare_password_without_showing_it: PW
            => ConfigError::NotAUrl { .. }, "is not a URL";
        refuses_words_without_showing_them: format!("not a url {PW}")
            => ConfigError::NotAUrl { .. }, "are not shown";
    }

    #[test]
    fn a_value_without_structure_is_described_by_its_length_only() {
        let err = DbUrl::for_env("not a url s3cret", Env::Dev).unwrap_err();
        assert_eq!(
            err.to_string(),
            "DATABASE_URL is not a URL: it has neither scheme:// nor '@' (its 16 characters are \
             not shown: nothing in them can be told apart from a password); set it to \
             postgres://USER:PASSWORD@localhost:5432/dreichor_dev"
        );
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

    // Rule 6: the user and password: where they end, and no fragment to blur it.
    refusals! {
        refuses_url_without_user: "postgres://localhost/dreichor_dev"
            => ConfigError::MissingUser { .. }, "names no user";
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
        refuses_fragment: url("localhost/dreichor_dev#x")
            => ConfigError::Fragment { .. }, "must not contain '#'";
        refuses_hash_in_password: url("localhost/dreichor_dev").replace(PW, &format!("{PW}#"))
            => ConfigError::Fragment { .. }, "as %23";
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
    fn accepts_prod_url_for_prod() {
        let raw = format!("postgres://dreichor_prod:{PW}@127.0.0.1:5432/dreichor_prod");
        let db = DbUrl::for_env(&raw, Env::Prod).unwrap();
        assert_eq!(db.database(), "dreichor_prod");
    }
}
