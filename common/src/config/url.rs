//! [`DbUrl`]: a database URL that passed validation, and the only way to use one.
//!
//! A `DbUrl` holds the validated parts, not the string: the raw URL is dropped once parsed,
//! so nothing the parser did not look at can reach a connection. Its fields are visible to
//! the rest of `config` only so that the parser (`parse`, `userinfo`, `host`, `query`) can
//! build it; outside `config` a `DbUrl` comes only from [`DbUrl::parse`] and its wrappers.
//!
//! The password is wrapped in [`Password`], and the `Display` and `Debug` of a `DbUrl` are its
//! redacted form, so that a `{:?}` in a log line or an error cannot leak it. The host is kept
//! as which of the three spellings was written ([`LoopbackHost`]), which is what is shown, and
//! maps to fixed loopback addresses, which is what is connected to: [`DbUrl::pg_config`] sets
//! each as `hostaddr` too, so that no name is ever resolved (`/etc/hosts`, NSS or DNS could
//! point `localhost` elsewhere).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use postgres::config::{LoadBalanceHosts, SslMode, TargetSessionAttrs};

/// A password, whose `Debug` never shows it and which has no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct Password(pub(super) String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The three accepted spellings of the host, as written in the URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LoopbackHost {
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
    pub(super) user: String,
    pub(super) password: Option<Password>,
    pub(super) host: LoopbackHost,
    pub(super) port: u16,
    pub(super) database: String,
    pub(super) application_name: Option<String>,
    pub(super) connect_timeout: Option<Duration>,
}

/// Characters shown percent-encoded in the user of a redacted URL, so that the shown URL
/// parses back to the same user: everything but RFC 3986's unreserved characters.
const USER_DISPLAY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

impl DbUrl {
    /// The user, percent-decoded.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The database, exactly the expected one.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// The port, [`DEFAULT_PORT`](super::DEFAULT_PORT) when the URL names none.
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

#[cfg(test)]
mod tests {
    use postgres::config::Host;

    use super::*;
    use crate::config::fixtures::{accepted, assert_agrees_with_crate_parser, url, PW, PW_MARK};
    use crate::config::{ConfigError, Env, DATABASE_URL};

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

    #[test]
    fn debug_and_display_never_show_the_password() {
        let db = accepted(&url("localhost/dreichor_dev?application_name=x"));
        for text in [format!("{db:?}"), format!("{db:#?}"), db.to_string()] {
            assert!(!text.contains(PW_MARK), "{text}");
            assert!(text.contains("postgres://dreichor_dev:***@localhost:5432/dreichor_dev"));
        }
        assert_eq!(format!("{:?}", Password(PW.to_owned())), "***");
    }
}
