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
//! 1. the catalog fingerprint ([`FINGERPRINT`]), in the same round trip as the tracking rows:
//!    a hash of the row versions of the catalog rows that describe user objects, recorded
//!    with the snapshot. No deparsing: about a tenth of the rendered snapshot's cost. Equal:
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
pub mod equivalent;
pub mod store;

pub use capture::Entry;

/// The catalog fingerprint query (`fingerprint.sql`): one row, one column; see that file for
/// what it covers and why equal fingerprints prove an unchanged schema.
pub const FINGERPRINT: &str = include_str!("fingerprint.sql");
pub use diff::{diff, Change, Drift};
