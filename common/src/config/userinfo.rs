//! The user and password: the part before the `@`, checked character by character against
//! RFC 3986's `userinfo`, then percent-decoded.
//!
//! A user is required, so that libpq never falls back to the operating system's user name. A
//! character that must be percent-encoded is refused rather than passed on, since parsers
//! treat such characters differently, and the decoded text must be UTF-8 without control
//! characters: libpq stops at a NUL, so it would log in with another value than the one
//! validated. The first `:` separates user and password, as every parser agrees, so a
//! password may hold more of them.

use percent_encoding::percent_decode_str;

use super::error::ConfigError;
use super::parse::{refuse, well_formed_percent_encoding, Parser};
use super::url::Password;

impl Parser<'_> {
    /// The user and the optional password, split at the first ':' (a user cannot hold an
    /// unencoded ':'; a password can, as every parser agrees).
    pub(super) fn userinfo(
        &self,
        userinfo: &str,
    ) -> Result<(String, Option<Password>), ConfigError> {
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
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::fixtures::{accepted, refusals, url, PW};
    use crate::config::ConfigError;

    // Rule 6: the user and password: present, and spelled as RFC 3986 allows.
    refusals! {
        refuses_empty_user: format!("postgres://:{PW}@localhost/dreichor_dev")
            => ConfigError::MissingUser { .. }, "a user is required";
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
}
