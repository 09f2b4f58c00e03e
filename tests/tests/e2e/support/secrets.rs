//! Passwords the harness hands out, and the check that no tool ever prints one.
//!
//! The contract says no tool prints a password: not in errors, logs, JSON or panics. A test
//! can only catch a leak if it knows what to look for, so every password the harness creates
//! (the cluster superuser's included) is a *sentinel*: `Sntnl-` followed by 16 random hex
//! digits, and for role passwords a tail of URL-special characters (`@/:%?#`) so that a tool
//! that forgets to percent-decode its `DATABASE_URL`, or prints the URL back half-decoded,
//! is caught as well. Each sentinel is recorded in one process-wide set, and
//! [`check_no_secrets`] looks in a text for each of them in three forms: raw,
//! percent-encoded, and just the random core. The core alone is unique enough that it catches
//! any other re-encoding of the special characters (JSON escaping, lower-case hex, partial
//! encoding) without the harness having to enumerate them.
//!
//! Randomness comes from `/dev/urandom`: the harness needs unguessable-enough, distinct
//! strings, not a cryptographic API, and that keeps the dependency list short.

use std::collections::BTreeSet;
use std::fmt;
use std::io::Read;
use std::sync::Mutex;

/// The prefix every sentinel password starts with, so a leaked one is recognisable by eye.
pub const SENTINEL_PREFIX: &str = "Sntnl-";

/// URL-special characters appended to role passwords: each one changes the meaning of a URL
/// when it is not percent-encoded (`@` ends the user info, `/` starts the path, `:` splits
/// user and password, `%` starts an escape, `?` the query and `#` the fragment).
pub const URL_SPECIAL_TAIL: &str = "@/:%?#";

/// Every password registered so far in this test process.
static REGISTERED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Returns `bytes` random bytes from `/dev/urandom`, as lower-case hex.
///
/// ```ignore
/// assert_eq!(random_hex(8).len(), 16);
/// ```
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("reading /dev/urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates and registers a sentinel password with the URL-special tail, for login roles.
///
/// ```ignore
/// let pw = sentinel_password();
/// assert!(check_no_secrets(&pw).is_err());
/// ```
pub fn sentinel_password() -> String {
    let pw = format!("{SENTINEL_PREFIX}{}{URL_SPECIAL_TAIL}", random_hex(8));
    register(&pw);
    pw
}

/// Creates and registers a sentinel password without special characters, for places where
/// one would need quoting that is beside the point (the `initdb --pwfile` superuser).
pub fn plain_sentinel_password() -> String {
    let pw = format!("{SENTINEL_PREFIX}{}", random_hex(8));
    register(&pw);
    pw
}

/// Adds a password to the set that every tool run is checked against.
pub fn register(password: &str) {
    assert!(
        password.len() >= 12,
        "a registered password must be distinctive enough to search for"
    );
    lock().insert(password.to_owned());
}

fn lock() -> std::sync::MutexGuard<'static, BTreeSet<String>> {
    // A test that panicked while holding the lock leaves the set intact: keep using it.
    REGISTERED.lock().unwrap_or_else(|e| e.into_inner())
}

/// Percent-encodes everything but RFC 3986's unreserved characters, which is always a
/// correct encoding of a URL's user-info component.
///
/// ```ignore
/// assert_eq!(percent_encode("a@b/c"), "a%40b%2Fc");
/// ```
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A registered password found in a text. Its `Display` names the form that matched and the
/// password's position in the registry, never the password itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leak {
    /// How the password appeared: `raw`, `percent-encoded` or `random core`.
    pub form: &'static str,
    /// Byte offset of the first match in the text.
    pub offset: usize,
}

impl fmt::Display for Leak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "password leaked: a registered password appears ({} form) at byte {}",
            self.form, self.offset
        )
    }
}

/// The searchable forms of one password, most specific first.
fn forms(password: &str) -> Vec<(&'static str, String)> {
    let mut forms = vec![
        ("raw", password.to_owned()),
        ("percent-encoded", percent_encode(password)),
    ];
    if let Some(rest) = password.strip_prefix(SENTINEL_PREFIX) {
        let core: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
        if core.len() >= 12 {
            forms.push(("random core", core));
        }
    }
    forms
}

/// Looks in `text` for every registered password, raw, percent-encoded, or by its random core.
///
/// ```ignore
/// let pw = sentinel_password();
/// assert!(check_no_secrets("nothing here").is_ok());
/// assert!(check_no_secrets(&format!("url: postgres://u:{}@h/db", percent_encode(&pw))).is_err());
/// ```
pub fn check_no_secrets(text: &str) -> Result<(), Leak> {
    for password in lock().iter() {
        for (form, needle) in forms(password) {
            if let Some(offset) = text.find(&needle) {
                return Err(Leak { form, offset });
            }
        }
    }
    Ok(())
}

/// Replaces every registered password (in any form [`check_no_secrets`] knows) with
/// `<password>`, so that a failing test can show a tool's output without spreading it.
pub fn redact(text: &str) -> String {
    let mut out = text.to_owned();
    for password in lock().iter() {
        for (_, needle) in forms(password) {
            out = out.replace(&needle, "<password>");
        }
    }
    out
}
