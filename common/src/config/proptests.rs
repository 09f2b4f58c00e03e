//! Property tests of the whole: arbitrary strings, concatenations of URL-ish fragments and
//! URLs shaped like the real thing go through the parser, the redaction and the connection
//! configuration together.
//!
//! The unit tests next to each rule show that a given URL is refused for the right reason; these
//! check the promises that must hold for every input: parsing never panics, whatever is
//! accepted connects only to loopback, to the expected database, as the crate's own parser
//! would read it, and no message, `Debug` or redaction ever shows the password.

use std::net::IpAddr;
use std::time::Duration;

use percent_encoding::percent_decode_str;
use postgres::config::Host;
use proptest::prelude::*;

use super::fixtures::{assert_agrees_with_crate_parser, PW, PW_MARK};
use super::{redact, DbUrl, Env};

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
            user.matches(PW_MARK).count() + raw[colon_free_tail(raw)..].matches(PW_MARK).count(),
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
