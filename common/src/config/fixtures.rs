//! What the unit tests of several config files share: a sentinel password that no message,
//! `Debug` or redaction may show (so that a leak is easy to spot), URLs built around it, the
//! `refusals!` macro that turns one line per refused URL into one test, and the comparison
//! with the crate's own URL parser.

use std::str::FromStr;
use std::time::Duration;

use postgres::config::Host;

use super::{redact, ConfigError, DbUrl, Env, DATABASE_URL};

/// In every test URL that has a password: no message, Debug or redaction may contain it.
pub(super) const PW: &str = "Sentinel-PW-7f3a";

/// The part of the sentinel that survives any percent-encoding used in these tests.
pub(super) const PW_MARK: &str = "Sentinel";

/// A dev URL with the sentinel password, `rest` being what follows the `@`.
pub(super) fn url(rest: &str) -> String {
    format!("postgres://dreichor_dev:{PW}@{rest}")
}

/// `raw` validated for env dev; panics (showing `raw` redacted) when it is refused.
pub(super) fn accepted(raw: &str) -> DbUrl {
    match DbUrl::for_env(raw, Env::Dev) {
        Ok(url) => url,
        Err(err) => panic!("refused {}: {err}", redact(raw)),
    }
}

/// Asserts that `raw` is refused for env dev with the variant `is_variant` accepts, and
/// that the message names the rule and the variable and shows no password.
pub(super) fn assert_refused(raw: &str, is_variant: impl Fn(&ConfigError) -> bool, rule: &str) {
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
            $crate::config::fixtures::assert_refused(&$raw, |err| matches!(err, $variant), $rule);
        }
    )*};
}
pub(super) use refusals;

/// Asserts that the crate's own URL parser reads the same user, password, database, port and
/// host from `raw` as `db` holds, and no options: for accepted input there is no parser
/// differential to exploit.
pub(super) fn assert_agrees_with_crate_parser(raw: &str, db: &DbUrl) {
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
