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
use super::{FINGERPRINT, FINGERPRINT_FIRST, FINGERPRINT_SECOND};
use crate::pinned::{pinned, pinned_read_only, run_pinned, PIN_SEARCH_PATH};
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

/// [`gate_query`] with the first half of the live fingerprint's values only
/// ([`FINGERPRINT_FIRST`], column `live_fingerprint_first`): the gate reads the second half
/// ([`FINGERPRINT_SECOND`]) on another session at the same time and hashes the two
/// ([`super::fingerprint_of`]). Each fresh backend pays a fixed cost for every catalog it
/// reads for the first time (about 0.35 ms each, 25 of them); two backends share that.
pub fn gate_query_first_half() -> String {
    format!(
        "SELECT s.fingerprint AS recorded_fingerprint, ({FINGERPRINT_FIRST}) AS live_fingerprint_first, \
                s.digest AS recorded_digest \
         FROM (SELECT fingerprint, digest FROM public.dreichor_schema_snapshot ORDER BY id DESC LIMIT 1) s"
    )
}

/// The query of the second half of the live fingerprint (column `fingerprint_second`), for
/// a session of its own; see [`gate_query_first_half`].
pub fn gate_query_second_half() -> String {
    pinned_read_only(&format!(
        "SELECT ({FINGERPRINT_SECOND}) AS fingerprint_second"
    ))
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

/// Finishes a comparison from the row of [`gate_query`] (`None`: no snapshot) and the live
/// fingerprint (that row's, or [`super::fingerprint_of`] the two halves): equal fingerprints
/// end it; otherwise the live schema is captured ([`WHOLE`], one read-only round
/// trip) and its digest compared, and only when that differs are the recorded entries read
/// (one more) and diffed. Differences that are only equivalent renderings
/// ([`equivalent::split`]) are no drift.
pub fn finish(
    client: &mut Client,
    gate_row: Option<&Row>,
    live_fingerprint: Option<&str>,
) -> Result<Comparison, postgres::Error> {
    let Some(row) = gate_row else {
        return Ok(Comparison::NoSnapshot);
    };
    let recorded = row.string("recorded_digest");
    let fingerprint = row.text("recorded_fingerprint");
    if fingerprint.is_some() && fingerprint == live_fingerprint {
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
    let stale = is_stale(client).unwrap_or(false);
    Ok(Comparison::Drifted {
        recorded,
        live,
        drift,
        stale,
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
/// An error (a tracking table of an older shape, without `applied_at`) is for the caller.
/// Both times are the server's (`now()` of each transaction), and a snapshot is recorded after
/// its run's files commit, so an up-to-date one is never older. Needs the snapshot table.
pub fn is_stale(client: &mut Client) -> Result<bool, postgres::Error> {
    let sql = "SELECT coalesce((SELECT max(applied_at) FROM public.dreichor_schema_migrations)
                 > (SELECT taken_at FROM public.dreichor_schema_snapshot ORDER BY id DESC LIMIT 1), false) AS stale";
    let messages = run_pinned(client, &pinned_read_only(sql))?;
    Ok(rows(&messages).first().is_some_and(|r| r.bool("stale")))
}

/// The prepared statements of [`prepare`]: the catalog fingerprint, and the half of the
/// capture that [`record`] runs on its second session.
const PREPARED_FINGERPRINT: &str = "dreichor_snapshot_fingerprint";
const PREPARED_PART: &str = "dreichor_snapshot_part_1";

/// Plans, ahead of time, what [`record`] will run on this session (its [`Second`]): the
/// fingerprint and the second half of the capture, each prepared (`PREPARE`) and planned
/// (`EXPLAIN EXECUTE` builds and caches the plan of a statement without parameters, without
/// running it). Planning is about a third of the capture's cost in a new session, and the
/// lock's session is idle while the run applies files ([`crate::lock::Hold::lend`]), so the
/// run calls this when it starts. A plan that a later file invalidates (a new schema, say) is
/// made again, from warm caches, when executed.
///
/// Reads only system catalogs: no user relation is named, opened or locked, so it cannot
/// block or deadlock with a file. It gives up rather than wait for a catalog lock (a
/// superuser's file may take one), and a failure only means that [`record`] plans as usual.
/// READ COMMITTED whatever the role's defaults: a serializable, deferrable read-only
/// transaction (`default_transaction_isolation`, `default_transaction_deferrable`) would
/// wait for a safe snapshot, that is for the running file to end.
pub fn prepare(client: &mut Client) {
    let sql = format!(
        "SET TRANSACTION ISOLATION LEVEL READ COMMITTED;\nSET LOCAL lock_timeout = '1ms';\nSET LOCAL statement_timeout = '5s';\n{PIN_RENDERING};\n\
         PREPARE {PREPARED_FINGERPRINT} AS SELECT ({FINGERPRINT}) AS fingerprint;\n\
         PREPARE {PREPARED_PART} AS {};\n\
         EXPLAIN EXECUTE {PREPARED_FINGERPRINT};\nEXPLAIN EXECUTE {PREPARED_PART}",
        PARTS[1]
    );
    let _ = run_pinned(client, &pinned_read_only(&sql));
}

/// What [`ensure`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ensured {
    /// The table was created.
    pub created: bool,
    /// The entries column should be set to lz4 ([`use_lz4`]), right before the next
    /// snapshot is recorded.
    pub lz4_pending: bool,
}

/// Creates the table when missing; says whether it did, and whether its entries column
/// waits for lz4. The caller holds the migration lock.
///
/// The entries (about 100 kB of JSON for 800 entries, stored out of line) are compressed with
/// lz4 rather than pglz where the server was built with lz4 (PostgreSQL 14+,
/// `default_toast_compression`'s choices): pglz cost about a tenth of recording a snapshot,
/// lz4 a small fraction of that. Set on the column once (`SET COMPRESSION`, which applies to
/// values written from then on), so that recording needs no setting; reading needs nothing,
/// the method is stored with each value. Not here but by [`use_lz4`], right before a snapshot
/// is recorded: it rewrites the column's `pg_attribute` row, which the catalog fingerprint
/// counts, so a run that records nothing must not do it (the recorded fingerprint would never
/// match again, and every gate would render the schema until the next migration).
pub fn ensure(client: &mut Client) -> Result<Ensured, postgres::Error> {
    let sql = format!(
        "SELECT pg_catalog.to_regclass('{TABLE}') IS NULL AS missing;\n{CREATE};\n{WANTS_LZ4}"
    );
    let messages = run_pinned(client, &pinned(&sql))?;
    let sets = result_sets(&messages);
    let flag = |set: Option<&Vec<Row>>, column: &str| {
        set.and_then(|set| set.first())
            .is_some_and(|r| r.bool(column))
    };
    Ok(Ensured {
        created: flag(sets.first(), "missing"),
        lz4_pending: flag(sets.last(), "wants_lz4"),
    })
}

/// Sets the entries column to lz4 ([`ensure`] says when it waits for it): call it right
/// before [`record`], whose fingerprint then counts the change. It takes an ACCESS EXCLUSIVE
/// lock on the table, so it waits at most 100 ms for one (a reader in an open transaction,
/// the gate): on any failure the column is left as it is, for the next run that records,
/// and the run goes on; nothing but the compression of new entries depends on it.
pub fn use_lz4(client: &mut Client) {
    let _ = run_pinned(
        client,
        &pinned(&format!(
            "SET LOCAL lock_timeout = '100ms';\n\
             ALTER TABLE {TABLE} ALTER COLUMN entries SET COMPRESSION lz4"
        )),
    );
}

/// Whether the entries column should be set to lz4: it is not yet, and the server has it
/// (the catalog lookup first: once set, `pg_settings` is never read).
const WANTS_LZ4: &str = "SELECT a.attcompression <> 'l' \
       AND EXISTS (SELECT FROM pg_catalog.pg_settings s \
                   WHERE s.name = 'default_toast_compression' AND 'lz4' = ANY (s.enumvals)) AS wants_lz4 \
     FROM pg_catalog.pg_attribute a \
     WHERE a.attrelid = 'public.dreichor_schema_snapshot'::pg_catalog.regclass AND a.attname = 'entries'";

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

/// The second session of [`record`]: the migration lock's, idle at that point.
pub struct Second<'a> {
    /// The session.
    pub session: &'a mut Client,
    /// Whether [`prepare`] ran on it; its half is then executed from the plan made ahead
    /// (and planned as usual if the statements turn out not to exist).
    pub prepared: bool,
}

impl std::fmt::Debug for Second<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Second")
            .field("prepared", &self.prepared)
            .finish_non_exhaustive()
    }
}

/// Records a snapshot of the live schema. `reason` says why (`migrate applied 3 files`, or
/// the operator's text), `operator` who at the terminal, for the audited command.
///
/// With a [`Second`] session (the migration lock's, otherwise idle: rendering the schema is
/// the snapshot's main cost, and the server runs each session on its own core), the
/// capture's two halves ([`PARTS`]) run at once, one on each session, in one snapshot of
/// the catalogs: the second session exports its transaction's snapshot
/// (`pg_export_snapshot`) and reads the catalog fingerprint in it, and the run's session
/// imports it (`SET TRANSACTION SNAPSHOT`) before either half starts. Without one, the whole
/// capture runs after the fingerprint in one transaction. Either way in REPEATABLE READ, so
/// that the fingerprint and every row the capture reads come from the same snapshot: a hand
/// change committed meanwhile (the migration lock does not stop one) is counted by the
/// fingerprint only if the entries have it, and a fingerprint that counted a change the
/// entries miss would let every later gate prove "unchanged" on the cheap path. (The
/// server's deparse functions read the newest catalog rows: they may see such a change, which
/// only makes the entries newer than the fingerprint, and the gate then compares digests.)
/// The entries are then ordered, written and hashed here ([`capture::to_json`],
/// [`capture::digest`]) and stored in one statement.
/// # Errors
/// A failed query on either session.
pub fn record(
    client: &mut Client,
    second: Option<Second<'_>>,
    reason: &str,
    operator: Option<&str>,
) -> Result<Recorded, postgres::Error> {
    let (keyed, fingerprint) = match second {
        Some(second) => capture_in_two(client, second)?,
        None => {
            let message = format!(
                "{BEGIN_SNAPSHOT};\n{PIN_SEARCH_PATH};\n{PIN_RENDERING};\n\
                 SELECT ({FINGERPRINT}) AS fingerprint;\n{WHOLE};\nCOMMIT"
            );
            let messages = run_pinned(client, &message)?;
            (capture::unordered(&messages), fingerprint_in(&messages))
        }
    };
    let entries = capture::ordered(keyed);
    let json = capture::to_json(&entries);
    let digest = capture::digest(&json);
    let sql = format!(
        "INSERT INTO public.dreichor_schema_snapshot (operator, reason, previous_digest, digest, fingerprint, entries)
         SELECT {}, {}, ({LATEST_DIGEST}), {}, {}, {}::jsonb
         RETURNING previous_digest, digest",
        operator.map_or("NULL".to_string(), literal),
        literal(reason),
        literal(&digest),
        fingerprint.as_deref().map_or("NULL".to_string(), literal),
        literal(&json),
    );
    let messages = run_pinned(client, &pinned(&sql))?;
    let row = rows(&messages).into_iter().next().unwrap_or_default();
    Ok(Recorded {
        previous_digest: row.text("previous_digest").map(str::to_string),
        digest: row.string("digest"),
        entries: entries.len(),
    })
}

/// Refreshes the newest snapshot's catalog fingerprint when the live schema renders exactly
/// as recorded (equal digests) but the catalog's row versions changed (`VACUUM FULL`, a
/// restore): the gate then proves "unchanged" on its cheap path again instead of rendering
/// the schema on every check. Nothing is accepted: the entries and the digest stay as they
/// are, and only a schema whose rendering is byte for byte the recorded one gets the new
/// fingerprint (SPEC.md: a run with nothing to apply never re-snapshots; this is not one).
///
/// One REPEATABLE READ transaction, two round trips: the fingerprint, the rendering and the
/// newest snapshot's id and digest read in one snapshot (as [`record`] reads them, so the
/// fingerprint never counts a change the rendering misses), then the update of that row,
/// only if its digest is still the live one. Returns the digest when refreshed, `None` when
/// the live schema renders differently (or there is no snapshot): nothing written.
/// # Errors
/// A failed query (the transaction is rolled back).
pub fn refresh_fingerprint(client: &mut Client) -> Result<Option<String>, postgres::Error> {
    let read = format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ;\n{PIN_SEARCH_PATH};\n{PIN_RENDERING};\n\
         SELECT ({FINGERPRINT}) AS fingerprint;\n{WHOLE};\n\
         SELECT id AS snapshot_id, digest AS recorded_digest FROM {TABLE} ORDER BY id DESC LIMIT 1"
    );
    let refreshed = run_pinned(client, &read).and_then(|messages| {
        let live = capture::digest(&capture::to_json(&capture::ordered(capture::unordered(
            &messages,
        ))));
        let newest = rows(&messages)
            .into_iter()
            .find(|row| row.has("recorded_digest"));
        let (Some(fingerprint), Some(newest)) = (fingerprint_in(&messages), newest) else {
            return Ok(None);
        };
        let Some(id) = newest.i64("snapshot_id") else {
            return Ok(None);
        };
        if newest.text("recorded_digest") != Some(live.as_str()) {
            return Ok(None);
        }
        let update = format!(
            "UPDATE {TABLE} SET fingerprint = {} WHERE id = {id} AND digest = {} RETURNING digest",
            literal(&fingerprint),
            literal(&live)
        );
        let updated = run_pinned(client, &update)?;
        Ok(rows(&updated).first().map(|row| row.string("digest")))
    });
    let finish = if matches!(refreshed, Ok(Some(_))) {
        "COMMIT"
    } else {
        "ROLLBACK"
    };
    match (refreshed, client.batch_execute(finish)) {
        (Err(e), _) | (Ok(_), Err(e)) => Err(e),
        (Ok(digest), Ok(())) => Ok(digest),
    }
}

/// What a capture read: its entries, unordered, each with its position, and the catalog
/// fingerprint read in the same snapshot.
type Captured = (Vec<(i64, Entry)>, Option<String>);

/// How every capture transaction of [`record`] begins: one snapshot for all its statements.
const BEGIN_SNAPSHOT: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

/// The two halves of [`record`] at once, in one snapshot: the unordered entries, and the
/// fingerprint read in that snapshot. The second session's transaction ends only after the
/// run's session has imported its snapshot (an exported snapshot lives as long as the
/// transaction that exported it).
fn capture_in_two(client: &mut Client, second: Second<'_>) -> Result<Captured, postgres::Error> {
    let Second { session, prepared } = second;
    // The export first, on its own: the fingerprint is read in the same snapshot whenever it
    // runs, so it goes with the second half.
    let export = format!(
        "{BEGIN_SNAPSHOT};\n{PIN_SEARCH_PATH};\n{PIN_RENDERING};\n\
         SELECT pg_catalog.pg_export_snapshot() AS snapshot, \
                (SELECT count(*) FROM pg_catalog.pg_prepared_statements \
                 WHERE name IN ('{PREPARED_FINGERPRINT}', '{PREPARED_PART}')) = 2 AS prepared"
    );
    let exported = run_pinned(session, &export)?;
    let row = rows(&exported).into_iter().next().unwrap_or_default();
    let import = format!(
        "{BEGIN_SNAPSHOT};\nSET TRANSACTION SNAPSHOT {};\n{PIN_SEARCH_PATH};\n{PIN_RENDERING}",
        literal(&row.string("snapshot"))
    );
    if let Err(e) = run_pinned(client, &import) {
        let _ = session.batch_execute("ROLLBACK");
        return Err(e);
    }
    let second_half = if prepared && row.bool("prepared") {
        format!("EXECUTE {PREPARED_FINGERPRINT};\nEXECUTE {PREPARED_PART};\nCOMMIT")
    } else {
        format!(
            "SELECT ({FINGERPRINT}) AS fingerprint;\n{};\nCOMMIT",
            PARTS[1]
        )
    };
    let first_half = format!("{};\nCOMMIT", PARTS[0]);
    let (first, second) = std::thread::scope(|scope| {
        let other = scope.spawn(|| run_pinned(session, &second_half));
        let first = run_pinned(client, &first_half);
        let second = other
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (first, second)
    });
    let (first, second) = (first?, second?);
    let mut keyed = capture::unordered(&first);
    keyed.extend(capture::unordered(&second));
    Ok((keyed, fingerprint_in(&second)))
}

/// The value of the `fingerprint` column in a simple query's answer, if any.
fn fingerprint_in(messages: &[postgres::SimpleQueryMessage]) -> Option<String> {
    messages.iter().find_map(|message| match message {
        postgres::SimpleQueryMessage::Row(row) => row
            .try_get("fingerprint")
            .ok()
            .flatten()
            .map(str::to_string),
        _ => None,
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
        /// The snapshot is older than the newest applied migration ([`is_stale`]): a run
        /// applied files and ended before recording it, so the differences may be those
        /// files' own changes as well as hand changes.
        stale: bool,
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
    let live = row.as_ref().and_then(|r| r.text("live_fingerprint"));
    finish(client, row.as_ref(), live)
}
