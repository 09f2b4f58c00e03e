//! The table `public.dreichor_schema_snapshot`: one row per recorded snapshot, the newest
//! one the reference. Created next to the tracking table by `migrate`; the gate only reads it.
//!
//! A row keeps who recorded it (`taken_by`: the database role; `operator`: the OS user of
//! an audited `migrate snapshot`), when, why, the digest it replaced and its own, and the
//! entries themselves (JSON), so that a mismatch can be explained object by object.

use postgres::Client;

use super::capture::{self, Entry, PARTS, PIN_RENDERING, WHOLE};
use super::diff::{diff, Drift};
use super::equivalent;
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
    /// Unequal digests, but every differing entry is an equivalent rendering of the recorded
    /// one ([`equivalent`]: what a restore's parse and deparse gives); until a snapshot is
    /// recorded again.
    Equivalent,
}

/// Finishes a comparison from the row of [`gate_query`] (`None`: no snapshot): equal
/// fingerprints end it; otherwise the live schema is captured ([`WHOLE`], one read-only round
/// trip) and its digest compared, and only when that differs are the recorded entries read
/// (one more) and diffed. Differences that are only equivalent renderings
/// ([`equivalent::split`]) are no drift.
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
            equivalent: Vec::new(),
        });
    }
    let live_entries = capture_live(client)?;
    let live = capture::digest(&capture::to_json(&live_entries));
    if live == recorded {
        return Ok(Comparison::Same {
            digest: live,
            proof: Proof::Digest,
            equivalent: Vec::new(),
        });
    }
    let messages = run_pinned(client, &pinned_read_only(RECORDED_ENTRIES))?;
    let recorded_json = rows(&messages)
        .first()
        .and_then(|r| r.text("entries").map(str::to_string))
        .unwrap_or_else(|| "[]".to_string());
    let (mut drift, renderings) = match capture::parse_entries(&recorded_json) {
        Ok(recorded_entries) => equivalent::split(diff(&recorded_entries, &live_entries)),
        Err(why) => (vec![Drift::unreadable(&why)], Vec::new()),
    };
    if drift.is_empty() && !renderings.is_empty() {
        return Ok(Comparison::Same {
            digest: recorded,
            proof: Proof::Equivalent,
            equivalent: renderings,
        });
    }
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

/// The newest snapshot's entries (JSON text). Needs `search_path` pinned.
const RECORDED_ENTRIES: &str =
    "SELECT entries::text AS entries FROM public.dreichor_schema_snapshot ORDER BY id DESC LIMIT 1";

/// The live schema's entries, in canonical order: the whole capture in one read-only round
/// trip.
pub fn capture_live(client: &mut Client) -> Result<Vec<Entry>, postgres::Error> {
    let messages = run_pinned(
        client,
        &pinned_read_only(&format!("{PIN_RENDERING};\n{WHOLE}")),
    )?;
    Ok(capture::ordered(capture::unordered(&messages)))
}

/// Whether the newest snapshot is older than the newest applied migration: a run applied
/// files and ended (killed, its connection lost) before recording the snapshot after them.
/// Both times are the server's (`now()` of each transaction), and a snapshot is recorded after
/// its run's files commit, so an up-to-date one is never older. Needs the snapshot table.
pub fn is_stale(client: &mut Client) -> Result<bool, postgres::Error> {
    let sql = "SELECT coalesce((SELECT max(applied_at) FROM public.dreichor_schema_migrations)
                 > (SELECT taken_at FROM public.dreichor_schema_snapshot ORDER BY id DESC LIMIT 1), false) AS stale";
    let messages = run_pinned(client, &pinned_read_only(sql))?;
    Ok(rows(&messages).first().is_some_and(|r| r.bool("stale")))
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

/// Records a snapshot of the live schema. `reason` says why (`migrate applied 3 files`, or
/// the operator's text), `operator` who at the terminal, for the audited command.
///
/// The capture's two halves ([`PARTS`]) run at once when a second session is given (the
/// migration lock's, which is otherwise idle: rendering the schema is the snapshot's main
/// cost, and the server runs each session on its own core), each after the catalog
/// fingerprint on its own session; the entries are then ordered, written and hashed here
/// ([`capture::to_json`], [`capture::digest`]) and stored in one statement. Both sessions
/// read after the run's last commit, under the migration lock.
///
/// The fingerprint is read before either half is rendered, never after: a hand change
/// committed while the halves render (the migration lock does not stop one) may be missing
/// from the entries, and a fingerprint that already counted it would prove "unchanged" to
/// every later gate. When the two sessions' fingerprints differ (such a change committed
/// between them) none is recorded, and the gate compares digests until the next snapshot.
/// # Errors
/// A failed query on either session.
pub fn record(
    client: &mut Client,
    second: Option<&mut Client>,
    reason: &str,
    operator: Option<&str>,
) -> Result<Recorded, postgres::Error> {
    // The first half on the run's session, whose catalog caches the run has warmed; the
    // second on the lock's session, cold: about the same time each. Each after the
    // fingerprint, in statements of their own, so that each half's snapshot is no older than
    // the fingerprint (see above).
    let half = |part: &str| {
        pinned_read_only(&format!(
            "{PIN_RENDERING};\nSELECT ({FINGERPRINT}) AS fingerprint;\n{part}"
        ))
    };
    let (first_half, second_half) = (half(PARTS[0]), half(PARTS[1]));
    // Each half's entries, and the fingerprint before it, are read on its own thread.
    let read = |client: &mut Client, message: &str| {
        run_pinned(client, message).map(|messages| {
            let fingerprint = messages.iter().find_map(|message| match message {
                postgres::SimpleQueryMessage::Row(row) => row
                    .try_get("fingerprint")
                    .ok()
                    .flatten()
                    .map(str::to_string),
                _ => None,
            });
            (capture::unordered(&messages), fingerprint)
        })
    };
    let (first, second) = match second {
        Some(session) => std::thread::scope(|scope| {
            let other = scope.spawn(|| read(session, &second_half));
            let first = read(client, &first_half);
            let second = other
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (first, second)
        }),
        None => {
            let first = read(client, &first_half);
            (first, read(client, &second_half))
        }
    };
    let ((mut keyed, fingerprint), (second_keyed, second_fingerprint)) = (first?, second?);
    // Unequal: a change committed between the two; the gate will compare digests.
    let fingerprint = fingerprint.filter(|f| Some(f) == second_fingerprint.as_ref());
    keyed.extend(second_keyed);
    let entries = capture::ordered(keyed);
    let json = capture::to_json(&entries);
    let digest = capture::digest(&json);
    let sql = format!(
        "{LZ4_FOR_THIS_TRANSACTION};
         INSERT INTO public.dreichor_schema_snapshot (operator, reason, previous_digest, digest, fingerprint, entries)
         SELECT {}, {}, ({LATEST_DIGEST}), {}, {}, {}::jsonb
         RETURNING previous_digest, digest, pg_catalog.jsonb_array_length(entries) AS entries",
        operator.map_or("NULL".to_string(), literal),
        literal(reason),
        literal(&digest),
        fingerprint.as_deref().map_or("NULL".to_string(), literal),
        literal(&json),
    );
    let messages = run_pinned(client, &pinned(&sql))?;
    // The last result: the first is the compression setting's.
    let row = result_sets(&messages)
        .pop()
        .and_then(|set| set.into_iter().next())
        .unwrap_or_default();
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
        /// The recorded digest (the live one too, unless the proof is `Equivalent`).
        digest: String,
        /// How that was proven.
        proof: Proof,
        /// With `Proof::Equivalent`: the entries rendered differently but meaning the same,
        /// as `changed` differences; empty otherwise.
        equivalent: Vec<Drift>,
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
