//! [`redact`]: showing a string that failed validation without showing its password.
//!
//! A valid URL is shown through [`DbUrl::redacted`](super::DbUrl::redacted), built from
//! parts whose meaning is known. A refused string has no agreed meaning (that is usually why
//! it was refused), so its redaction cannot follow one parser: it hides the password under
//! every reading a URL parser, libpq's keyword syntax or a pasted `PGPASSWORD=` could take,
//! hiding too much rather than too little. It is also the last step before the operator's
//! terminal, so it escapes whatever is not printable ASCII.

use percent_encoding::percent_decode_str;

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
/// operator's terminal. A string with neither `scheme://` nor `@` has nothing that can be
/// told apart from a password: only its length is shown.
///
/// ```
/// use common::config::redact;
/// assert_eq!(redact("postgres://u:p@ss@localhost/db"), "postgres://u:***@localhost/db");
/// assert_eq!(redact("postgres://u@localhost:5432/db"), "postgres://u@localhost:5432/db");
/// assert_eq!(redact("not a url s3cret"), "16 characters, not shown");
/// ```
pub fn redact(raw: &str) -> String {
    if !raw.is_empty() && !has_structure(raw) {
        return format!("{} characters, not shown", raw.chars().count());
    }
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

/// Whether anything in `raw` can be told apart from a password: a `scheme://` or an `@`.
/// Without either (a password pasted alone, `not a url s3cret`) every character may be
/// secret, and [`redact`] shows only the length.
pub(super) fn has_structure(raw: &str) -> bool {
    after_scheme(raw) > 0 || raw.contains('@')
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::fixtures::{url, PW, PW_MARK};

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
        // Without `://` or `@` nothing tells the user from the password: length only.
        assert_eq!(
            redact(&format!("u:{PW}")),
            format!("{} characters, not shown", PW.chars().count() + 2)
        );
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
                format!("host=localhost password={PW}@x dbname=db"),
                "host=localhost password=*** dbname=db",
            ),
            (
                format!("host=x@localhost PGPASSWORD={PW} psql"),
                "host=x@localhost PGPASSWORD=*** psql",
            ),
            ("x@h?password=".to_owned(), "x@h?password="),
        ] {
            assert_eq!(redact(&raw), redacted);
        }
    }

    #[test]
    fn redact_shows_only_the_length_of_a_value_without_structure() {
        for raw in [
            PW.to_string(),
            format!("not a url {PW}"),
            format!("host=localhost password = '{PW} x' dbname=db"),
            format!("PGPASSWORD={PW} psql"),
        ] {
            let redacted = redact(&raw);
            assert_eq!(
                redacted,
                format!("{} characters, not shown", raw.chars().count())
            );
        }
    }

    #[test]
    fn redact_escapes_control_characters() {
        assert_eq!(redact("postgres://localhost\n"), "postgres://localhost\\n");
        assert_eq!(redact("a@\u{1b}[2Jb"), "a@\\u{1b}[2Jb");
        assert_eq!(redact("\u{202e}x@"), "\\u{202e}x@");
        assert_eq!(redact(""), "");
    }
}
