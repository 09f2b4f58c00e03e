//! The table `public.dreichor_schema_snapshot`: one row per recorded snapshot, the newest
//! one the reference. Created next to the tracking table by `migrate`; the gate only reads it.
//!
//! A row keeps who recorded it (`taken_by`: the database role; `operator`: the OS user of
//! an audited `migrate snapshot`), when, why, the digest it replaced and its own, and the
//! entries themselves (JSON), so that a mismatch can be explained object by object.

use postgres::Client;

use super::capture::{self, CAPTURE};
use super::diff::{diff, Drift};
use super::FINGERPRINT;
use crate::pinned::{pinned, pinned_read_only, run_pinned};
use crate::quote::literal;
use crate::rows::{result_sets, rows, Row};

/// The table, always schema-qualified.
pub const TABLE: &str = "public.dreichor_schema_snapshot";

/// Creates the table when it is missing.
pub const CREATE: &str = "CREATE TABLE IF NOT EXISTS public.dreichor_schema_snapshot (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    taken_at        timestamptz NOT NULL DEFAULT now(),
    taken_by        text NOT NULL DEFAULT current_user,
    operator        text,
    reason          text NOT NULL,
    previous_digest text,
    digest          text NOT NULL,
    fingerprint     text,
    entries         jsonb NOT NULL
)";

/// The newest snapshot's digest (no row when there is none).
pub const LATEST_DIGEST: &str =
    "SELECT digest FROM public.dreichor_schema_snapshot ORDER BY id DESC LIMIT 1";

/// The gate's part of its one round trip: the recorded fingerprint, the live one, and the
/// recorded digest; no row when there is no snapshot (and then the live fingerprint is not
/// computed either). Needs `search_path` pinned. Continue with [`finish`].
pub fn gate_query() -> String {
    format!(
        "SELECT s.fingerprint AS recorded_fingerprint, ({FINGERPRINT}) AS live_fingerprint, s.digest AS recorded_digest \
         FROM (SELECT fingerprint, digest FROM public.dreichor_schema_snapshot ORDER BY id DESC LIMIT 1) s"
    )
}

/// How the live schema was proven equal to the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proof {
    /// Equal catalog fingerprints (the cheap path: nothing deparsed).
    Fingerprint,
    /// Equal digests of the rendered entries (after a restore, VACUUM FULL, ...).
    Digest,
}

/// Finishes a comparison from the row of [`gate_query`] (`None`: no snapshot): equal
/// fingerprints end it; otherwise the live digest is computed, and only when it differs are
/// the entries read and diffed. Each further step is one read-only round trip.
pub fn finish(client: &mut Client, gate_row: Option<&Row>) -> Result<Comparison, postgres::Error> {
    let Some(row) = gate_row else {
        return Ok(Comparison::NoSnapshot);
    };
    let recorded = row.string("recorded_digest");
    let fingerprint = row.text("recorded_fingerprint");
    if fingerprint.is_some() && fingerprint == row.text("live_fingerprint") {
        return Ok(Comparison::Same {
            digest: recorded,
            proof: Proof::Fingerprint,
        });
    }
    let messages = run_pinned(client, &pinned_read_only(&capture::live_digest_query()))?;
    let live = rows(&messages)
        .first()
        .map(|r| r.string("digest"))
        .unwrap_or_default();
    if live == recorded {
        return Ok(Comparison::Same {
            digest: live,
            proof: Proof::Digest,
        });
    }
    let messages = run_pinned(client, &pinned_read_only(&entries_query()))?;
    let mut drift =
        drift_from(&result_sets(&messages)).unwrap_or_else(|why| vec![Drift::unreadable(&why)]);
    if drift.is_empty() {
        // Equal entries under unequal digests: the recorded row was altered. Say so rather
        // than pass.
        drift.push(Drift::unreadable(&format!(
            "its digest {recorded} does not match its entries"
        )));
    }
    Ok(Comparison::Drifted {
        recorded,
        live,
        drift,
    })
}

/// On a digest mismatch: the recorded entries, then the live ones (two result sets, one
/// round trip). Needs `search_path` pinned.
pub fn entries_query() -> String {
    format!(
        "SELECT entries::text AS entries FROM public.dreichor_schema_snapshot ORDER BY id DESC LIMIT 1;\n{}",
        capture::live_entries_query()
    )
}

/// The JSON array in the first cell of result set `i`; `[]` when there is none.
fn json_cell(sets: &[Vec<Row>], i: usize) -> String {
    sets.get(i)
        .and_then(|s| s.first())
        .and_then(|r| r.text("entries"))
        .unwrap_or("[]")
        .to_string()
}

/// Diffs the two result sets of [`entries_query`].
pub fn drift_from(sets: &[Vec<Row>]) -> Result<Vec<Drift>, String> {
    let recorded = capture::parse_entries(&json_cell(sets, 0))?;
    let live = capture::parse_entries(&json_cell(sets, 1))?;
    Ok(diff(&recorded, &live))
}

/// Creates the table when missing; says whether it did. The caller holds the migration lock.
pub fn ensure(client: &mut Client) -> Result<bool, postgres::Error> {
    let sql = format!("SELECT pg_catalog.to_regclass('{TABLE}') IS NULL AS missing;\n{CREATE}");
    let messages = run_pinned(client, &pinned(&sql))?;
    Ok(rows(&messages).first().is_some_and(|r| r.bool("missing")))
}

/// What [`record`] recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The digest it replaced; `None` for the first snapshot.
    pub previous_digest: Option<String>,
    /// The new digest.
    pub digest: String,
    /// How many entries.
    pub entries: usize,
}

/// Compresses the entries (about 100 kB of JSON for 800 entries, stored out of line) with
/// lz4 rather than pglz, for this transaction only, where the server was built with lz4
/// (`default_toast_compression`, PostgreSQL 14+): pglz costs about a tenth of recording a
/// snapshot, lz4 a small fraction of that. Reading needs nothing: the method is stored with
/// each value.
const LZ4_FOR_THIS_TRANSACTION: &str = "SELECT pg_catalog.set_config('default_toast_compression', 'lz4', true) \
     FROM pg_catalog.pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)";

/// Records a snapshot of the live schema, computed and stored by the server in one
/// statement (the entries never travel). `reason` says why (`migrate applied 3 files`, or
/// the operator's text), `operator` who at the terminal, for the audited command.
pub fn record(
    client: &mut Client,
    reason: &str,
    operator: Option<&str>,
) -> Result<Recorded, postgres::Error> {
    let sql = format!(
        "{LZ4_FOR_THIS_TRANSACTION};
         INSERT INTO public.dreichor_schema_snapshot (operator, reason, previous_digest, digest, fingerprint, entries)
         SELECT {}, {}, ({LATEST_DIGEST}), {}, ({FINGERPRINT}), coalesce(x.j::jsonb, '[]'::jsonb)
         FROM (SELECT {} AS j FROM (\n{CAPTURE}\n) e) x
         RETURNING previous_digest, digest, pg_catalog.jsonb_array_length(entries) AS entries",
        operator.map_or("NULL".to_string(), literal),
        literal(reason),
        capture::digest_of("x.j"),
        capture::entries_json(),
    );
    let messages = run_pinned(client, &pinned(&sql))?;
    let row = rows(&messages).into_iter().next().unwrap_or_default();
    Ok(Recorded {
        previous_digest: row.text("previous_digest").map(str::to_string),
        digest: row.string("digest"),
        entries: row.i64("entries").unwrap_or(0) as usize,
    })
}

/// The live schema against the newest snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Comparison {
    /// No snapshot recorded yet (or no snapshot table).
    NoSnapshot,
    /// The live schema is the recorded one.
    Same {
        /// The digest both have.
        digest: String,
        /// How that was proven.
        proof: Proof,
    },
    /// Differences, each named.
    Drifted {
        /// The recorded digest.
        recorded: String,
        /// The live digest.
        live: String,
        /// What differs.
        drift: Vec<Drift>,
    },
}

/// Compares the live schema with the newest snapshot, reading only (one read-only
/// transaction per round trip): fingerprints first, then digests, entries only on a
/// mismatch.
pub fn compare(client: &mut Client) -> Result<Comparison, postgres::Error> {
    let sql = format!("SELECT pg_catalog.to_regclass('{TABLE}') IS NOT NULL AS present");
    let present = rows(&run_pinned(client, &pinned_read_only(&sql))?)
        .first()
        .is_some_and(|r| r.bool("present"));
    if !present {
        return Ok(Comparison::NoSnapshot);
    }
    let messages = run_pinned(client, &pinned_read_only(&gate_query()))?;
    let row = rows(&messages).into_iter().next();
    finish(client, row.as_ref())
}
