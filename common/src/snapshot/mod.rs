//! The schema snapshot: a canonical picture of the environment's schema, recorded in the
//! database after every `migrate` run that applied a file, and compared with the live schema
//! by the gate (`schema-check`, [`crate::check`]). Every difference is drift: the schema
//! changed outside the migrations (SPEC.md, "Schema snapshot and drift").
//!
//! - [`capture`]: the catalog query that renders every object with the server's own deparse
//!   functions (`format_type`, `pg_get_expr`, `pg_get_indexdef`, `pg_get_functiondef`, ...),
//!   the entries' canonical order and JSON, and the SHA-256 digest of the whole;
//! - [`store`]: the table `public.dreichor_schema_snapshot` that holds the snapshots;
//! - [`accept`]: `migrate snapshot --reason TEXT`, the audited way to accept the live schema;
//! - [`diff`]: what changed between the recorded entries and the live ones, each difference
//!   named.
//!
//! The gate proves "unchanged" as cheaply as it can, in three steps, each only when the one
//! before could not decide:
//!
//! 1. the catalog fingerprint ([`FINGERPRINT`]), in the same round trip as the tracking rows
//!    (its first half; a second session reads the other half meanwhile, and the gate hashes
//!    them, [`fingerprint_of`]): a hash of the row versions of the catalog rows that describe
//!    user objects, recorded with the snapshot. No deparsing: about a tenth of the rendered snapshot's cost. Equal:
//!    nothing changed. It differs after a restore or VACUUM FULL without any drift;
//! 2. the digest of the rendered entries: the server renders them ([`capture::WHOLE`], one
//!    read-only round trip), the tool orders them, writes their canonical JSON and hashes it;
//!    equal digests prove equal entry lists;
//! 3. the recorded entries, read only now, diffed object by object with the live ones: the
//!    drift.
//!
//! `migrate` records a snapshot with the capture split in two halves run at once on its two
//! sessions ([`store::record`]).

pub mod accept;
pub mod capture;
pub mod diff;
pub mod earlier;
pub mod equivalent;
pub mod store;

pub use capture::Entry;

/// The catalog fingerprint query (`fingerprint.sql`, with the values of
/// `fingerprint_first.sql` and `fingerprint_second.sql`): one row, one column, the MD5 of the
/// values joined by `|`; see `fingerprint.sql` for what it covers and why equal fingerprints
/// prove an unchanged schema.
pub const FINGERPRINT: &str = concat!(
    include_str!("fingerprint.sql"),
    "SELECT pg_catalog.md5(pg_catalog.concat_ws('|',\n",
    include_str!("fingerprint_first.sql"),
    ",\n",
    include_str!("fingerprint_second.sql"),
    "))"
);

/// The first half of [`FINGERPRINT`]'s values, joined by `|` but not hashed: an expression,
/// for the gate's first round trip; [`fingerprint_of`] finishes it.
pub const FINGERPRINT_FIRST: &str = concat!(
    "SELECT pg_catalog.concat_ws('|',\n",
    include_str!("fingerprint_first.sql"),
    ")"
);

/// The second half of [`FINGERPRINT`]'s values, joined by `|` but not hashed: for a second
/// session of the gate, which reads it at the same time as the first.
pub const FINGERPRINT_SECOND: &str = concat!(
    "SELECT pg_catalog.concat_ws('|',\n",
    include_str!("fingerprint_second.sql"),
    ")"
);

/// The fingerprint from its two halves ([`FINGERPRINT_FIRST`], [`FINGERPRINT_SECOND`]): what
/// [`FINGERPRINT`] computes on the server, `md5(concat_ws('|', ...))` in lowercase hex. An
/// empty half has no values (`concat_ws` leaves NULLs out), so it adds no separator.
pub fn fingerprint_of(first: &str, second: &str) -> String {
    use md5::{Digest, Md5};
    let joined = [first, second]
        .into_iter()
        .filter(|half| !half.is_empty())
        .collect::<Vec<_>>()
        .join("|");
    crate::migrations::hex(&Md5::digest(joined.as_bytes()))
}
pub use diff::{diff, Change, Drift};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_halves_hash_as_the_server_hashes_them_all() {
        // md5('a|b'), md5('a'): what PostgreSQL's md5(concat_ws('|', ...)) returns.
        assert_eq!(fingerprint_of("a", "b"), "d0726241020676b14aa6298ce6a18b21");
        // A half whose values are all NULL is empty and adds no separator.
        assert_eq!(fingerprint_of("a", ""), "0cc175b9c0f1b6a831c399e269772661");
        assert_eq!(fingerprint_of("", "a"), "0cc175b9c0f1b6a831c399e269772661");
    }

    #[test]
    fn the_halves_make_the_whole_query() {
        let values = |sql: &str| {
            sql.lines()
                .filter(|line| line.trim_start().starts_with("(SELECT"))
                .count()
        };
        assert_eq!(
            values(FINGERPRINT),
            values(FINGERPRINT_FIRST) + values(FINGERPRINT_SECOND)
        );
        assert!(FINGERPRINT.contains(include_str!("fingerprint_first.sql")));
        assert!(FINGERPRINT.contains(include_str!("fingerprint_second.sql")));
    }
}
