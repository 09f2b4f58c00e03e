//! The host and port: the part between the `@` and the path.
//!
//! Exactly one host, written as exactly `localhost`, `127.0.0.1` or `[::1]`. The point is that
//! a reader can tell at a glance where the URL goes, so every other spelling is refused, even
//! of a loopback address (`LOCALHOST`, `127.1`, `0x7f000001`, `::1` without brackets,
//! `localhost.`), and so are a percent-encoded host and several hosts, which the client would
//! fail over between. An empty host is refused too: libpq reads it as a Unix socket. The port
//! is a plain decimal from 1 to 65535, [`DEFAULT_PORT`] when none is written.

use super::error::ConfigError;
use super::parse::{decimal, refuse, Parser};
use super::url::LoopbackHost;
use super::DEFAULT_PORT;

impl Parser<'_> {
    /// The host, one of the three literal spellings, and the port.
    pub(super) fn host_and_port(&self, hostport: &str) -> Result<(LoopbackHost, u16), ConfigError> {
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
}

#[cfg(test)]
mod tests {
    use crate::config::fixtures::{accepted, refusals, url, PW};
    use crate::config::ConfigError;

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
}
