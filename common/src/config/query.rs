//! The query parameters: an allow-list of three (`application_name`, `connect_timeout`,
//! `sslmode`), each at most once, each value checked.
//!
//! Unknown parameters are refused, not ignored: a parameter the validator skips could still be
//! read by the driver. The ones libpq knows and that could change what was validated (`host`,
//! `dbname`, `user`, `options`, `service`, ...) are refused with their own reason, and so is a
//! percent-encoded name, which parsers decode (`h%6Fst` is `host`). A parameter given twice is
//! refused because parsers disagree on which one wins. The values are bounded so that nothing
//! changes silently: the server would truncate a long `application_name`, `connect_timeout=0`
//! means waiting forever, and an `sslmode` that requires TLS would fail every loopback
//! connection.

use std::time::Duration;

use percent_encoding::percent_decode_str;

use super::error::ConfigError;
use super::parse::{decimal, refuse, well_formed_percent_encoding, Parser};

/// The longest accepted `application_name`: the server silently truncates longer names to
/// `NAMEDATALEN - 1` = 63 bytes, and a silent change is what this module refuses elsewhere.
const MAX_APPLICATION_NAME: usize = 63;

/// The longest accepted `connect_timeout`, in seconds. Longer than an hour is a typo, and the
/// tools promise to give up in bounded time (SPEC.md, `--timeout`).
const MAX_CONNECT_TIMEOUT_SECS: u32 = 3600;

impl Parser<'_> {
    /// The query parameters: only the allow-list, each at most once. An empty query (a bare
    /// trailing `?`) sets nothing and is accepted, as every parser reads it the same way.
    pub(super) fn query(
        &self,
        query: &str,
    ) -> Result<(Option<String>, Option<Duration>), ConfigError> {
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::fixtures::{accepted, refusals, url, PW};
    use crate::config::ConfigError;

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
}
