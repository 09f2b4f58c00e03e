//! The tracking table `public.dreichor_schema_migrations`: its DDL, reading it, upgrading the
//! design document's two-column form, and the row each applied file adds.
//!
//! Every statement names the table with its schema, so that `search_path` (which a role or a
//! migration can change) never decides which table is read or written.

use postgres::Client;

use crate::connect::{literal, pinned, pinned_read_only, run_pinned, PIN_SEARCH_PATH};
use crate::migrations::Migration;
use crate::plan::Applied;
use crate::rows::{rows, Row};

/// The table, always schema-qualified.
pub const TABLE: &str = "public.dreichor_schema_migrations";

/// Every table the tools keep for themselves, schema-qualified: this one and the schema
/// snapshot ([`crate::snapshot::store::TABLE`]), created by `migrate` next to each other.
/// Only their owner (the role that runs `migrate`) writes them; every other role, the
/// runtime role included, may at most read them, whatever `ALTER DEFAULT PRIVILEGES` would
/// grant on a new table ([`crate::grants`], and `infra/db/provision.sh`, which keeps the same
/// list). Their rows and definitions are not part of the schema snapshot; the gate needs
/// SELECT on both.
pub const TOOLS_TABLES: &[&str] = &[TABLE, crate::snapshot::store::TABLE];

/// Creates the table when it is missing. `checksum` is nullable only because rows of a
/// two-column table get theirs during the upgrade.
pub const CREATE: &str = "CREATE TABLE IF NOT EXISTS public.dreichor_schema_migrations (
    version     text PRIMARY KEY,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    checksum    text,
    duration_ms bigint,
    applied_by  text
)";

/// Whether the table exists, and which of the columns beyond the design document's two it
/// has (`checksum`, `duration_ms`, `applied_by`): one query, no error when the table is
/// missing.
pub const SHAPE: &str =
    "SELECT pg_catalog.to_regclass('public.dreichor_schema_migrations') IS NOT NULL AS table_exists, \
     (SELECT pg_catalog.array_agg(attname::text ORDER BY attname) FROM pg_catalog.pg_attribute \
      WHERE attrelid = pg_catalog.to_regclass('public.dreichor_schema_migrations') \
        AND attname IN ('checksum', 'duration_ms', 'applied_by') AND NOT attisdropped)::text AS extra_columns";

/// The rows, in version order.
pub const SELECT_APPLIED: &str =
    "SELECT version, checksum, applied_at::text AS applied_at FROM public.dreichor_schema_migrations ORDER BY version";

/// What the gate reads: no order (the planner sorts) and no timestamps, which is measurably
/// cheaper in a fresh backend than [`SELECT_APPLIED`].
pub const SELECT_FOR_CHECK: &str =
    "SELECT version, checksum FROM public.dreichor_schema_migrations";

/// [`SELECT_FOR_CHECK`] with each row's `applied_at` as a Unix time, for `schema-check
/// --textfile` (the newest one becomes a metric).
pub const SELECT_FOR_METRICS: &str =
    "SELECT version, checksum, extract(epoch FROM applied_at)::bigint::text AS applied_at FROM public.dreichor_schema_migrations";

/// The shape of the table as found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// No table yet.
    Missing,
    /// The design document's form: version and applied_at only.
    TwoColumn,
    /// With checksums, but without a column the runner writes (`duration_ms`,
    /// `applied_by`): SPEC.md's three-column form, say. Readable as is; `migrate` adds them.
    Partial,
    /// Every column the runner writes.
    Current,
}

/// The shape from a row of [`SHAPE`]: the existence flag and the extra columns present.
pub fn shape_from_row(row: &Row) -> Shape {
    let exists = row.bool("table_exists");
    let columns = row.string("extra_columns");
    let has = |name: &str| {
        columns
            .trim_matches(|c| c == '{' || c == '}')
            .split(',')
            .any(|c| c == name)
    };
    match (
        exists,
        has("checksum"),
        has("duration_ms") && has("applied_by"),
    ) {
        (false, _, _) => Shape::Missing,
        (true, false, _) => Shape::TwoColumn,
        (true, true, false) => Shape::Partial,
        (true, true, true) => Shape::Current,
    }
}

/// Reads the shape of the table (in a read-only transaction of its own).
pub fn shape(client: &mut Client) -> Result<Shape, postgres::Error> {
    let messages = run_pinned(client, &pinned_read_only(SHAPE))?;
    Ok(rows(&messages)
        .first()
        .map_or(Shape::Missing, shape_from_row))
}

/// Reads the applied rows (in a read-only transaction of its own). In a two-column table
/// every checksum is `None`.
pub fn read(client: &mut Client, shape: Shape) -> Result<Vec<Applied>, postgres::Error> {
    let sql = match shape {
        Shape::Missing => return Ok(Vec::new()),
        Shape::TwoColumn => {
            "SELECT version, NULL::text AS checksum, applied_at::text AS applied_at FROM public.dreichor_schema_migrations ORDER BY version"
        }
        Shape::Partial | Shape::Current => SELECT_APPLIED,
    };
    let messages = run_pinned(client, &pinned_read_only(sql))?;
    Ok(applied_from_rows(&rows(&messages)))
}

/// Turns `version, checksum[, applied_at]` rows into [`Applied`] rows ([`SELECT_FOR_CHECK`]
/// reads no `applied_at`).
pub fn applied_from_rows(rows: &[Row]) -> Vec<Applied> {
    rows.iter()
        .map(|row| Applied {
            version: row.string("version"),
            checksum: row.text("checksum").map(str::to_string),
            applied_at: row
                .has("applied_at")
                .then(|| row.text("applied_at").map(str::to_string))
                .flatten(),
        })
        .collect()
}

/// What [`ensure`] did, to be said to the operator.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ensured {
    /// The table was created.
    pub created: bool,
    /// A two-column table was upgraded; the versions whose checksum was recorded from the
    /// current files.
    pub upgraded: Option<Vec<String>>,
    /// A table with checksums got the runner's other columns (`duration_ms`, `applied_by`).
    pub columns_added: bool,
}

/// Creates the table when missing, or upgrades a two-column table: adds the missing columns
/// and records the current checksum for rows that have none (trusting, as the design
/// document's runner did, that the files were not edited). Runs in one transaction; the
/// caller holds the migration lock.
pub fn ensure(client: &mut Client, files: &[Migration]) -> Result<Ensured, postgres::Error> {
    match shape(client)? {
        Shape::Current => Ok(Ensured::default()),
        Shape::Partial => {
            run_pinned(
                client,
                &pinned(
                    "ALTER TABLE public.dreichor_schema_migrations \
                     ADD COLUMN IF NOT EXISTS duration_ms bigint, \
                     ADD COLUMN IF NOT EXISTS applied_by text",
                ),
            )?;
            Ok(Ensured {
                created: false,
                upgraded: None,
                columns_added: true,
            })
        }
        Shape::Missing => {
            // Pinned: the column default `now()` is bound when the table is created.
            run_pinned(client, &pinned(CREATE))?;
            Ok(Ensured {
                created: true,
                ..Ensured::default()
            })
        }
        Shape::TwoColumn => {
            let mut sql = format!(
                "BEGIN;\n{PIN_SEARCH_PATH};\n\
                 ALTER TABLE public.dreichor_schema_migrations \
                 ADD COLUMN IF NOT EXISTS checksum text, \
                 ADD COLUMN IF NOT EXISTS duration_ms bigint, \
                 ADD COLUMN IF NOT EXISTS applied_by text;\n"
            );
            let before = read(client, Shape::TwoColumn)?;
            let mut upgraded = Vec::new();
            for row in &before {
                if let Some(file) = files.iter().find(|f| f.version == row.version) {
                    sql.push_str(&format!(
                        "UPDATE public.dreichor_schema_migrations SET checksum = {} WHERE version = {} AND checksum IS NULL;\n",
                        literal(&file.checksum),
                        literal(&file.version)
                    ));
                    upgraded.push(file.version.clone());
                }
            }
            sql.push_str("COMMIT;");
            if let Err(e) = client.batch_execute(&sql) {
                let _ = client.batch_execute("ROLLBACK");
                return Err(e);
            }
            Ok(Ensured {
                upgraded: Some(upgraded),
                ..Ensured::default()
            })
        }
    }
}

/// Records the current file's checksum for every applied row that has none and a file:
/// rows written by hand or by another tool into a table that has the checksum column (a
/// two-column table gets the same in [`ensure`]). Like that upgrade, it trusts that the
/// files were not edited since. Updates `applied` to match and returns the versions; runs
/// nothing when there are none. The caller holds the migration lock.
pub fn record_missing_checksums(
    client: &mut Client,
    applied: &mut [Applied],
    files: &[Migration],
) -> Result<Vec<String>, postgres::Error> {
    let mut sql = format!("BEGIN;\n{PIN_SEARCH_PATH};\n");
    let mut recorded = Vec::new();
    for row in applied.iter_mut().filter(|row| row.checksum.is_none()) {
        if let Some(file) = files.iter().find(|f| f.version == row.version) {
            sql.push_str(&format!(
                "UPDATE public.dreichor_schema_migrations SET checksum = {} WHERE version = {} AND checksum IS NULL;\n",
                literal(&file.checksum),
                literal(&file.version)
            ));
            row.checksum = Some(file.checksum.clone());
            recorded.push(file.version.clone());
        }
    }
    if recorded.is_empty() {
        return Ok(recorded);
    }
    sql.push_str("COMMIT;");
    if let Err(e) = client.batch_execute(&sql) {
        let _ = client.batch_execute("ROLLBACK");
        return Err(e);
    }
    Ok(recorded)
}

/// The INSERT that records `migration`, run in the same transaction as the file: `applied_at`
/// is the transaction's start and `duration_ms` the time the file took inside it. The caller
/// pins `search_path` before it (for the rest of the transaction only), so that a migration's
/// own `SET search_path` cannot change what `now()` or `-` mean here.
pub fn insert_row(migration: &Migration) -> String {
    let (version, checksum) = (literal(&migration.version), literal(&migration.checksum));
    // Checked through RETURNING: a rule (`DO INSTEAD NOTHING`), a trigger returning NULL or
    // changing the row, or a policy that a file put on the table must not let a file commit
    // without its row (it would be applied again by the next run). A `DO INSTEAD` rule is
    // refused by PostgreSQL itself in a data-modifying WITH.
    format!(
        "WITH recorded AS (INSERT INTO public.dreichor_schema_migrations (version, applied_at, checksum, duration_ms, applied_by) \
         VALUES ({version}, now(), {checksum}, (extract(epoch FROM clock_timestamp() - now()) * 1000)::bigint, current_user) \
         RETURNING version, checksum) \
         SELECT CASE WHEN (SELECT count(*) FROM recorded WHERE version = {version} AND checksum = {checksum}) <> 1 \
         THEN ({}::text || pg_catalog.left(pg_catalog.pg_backend_pid()::text, 0))::int END",
        literal(ROW_NOT_WRITTEN)
    )
}

/// The error [`insert_row`] raises when the row did not land as sent.
pub const ROW_NOT_WRITTEN: &str = "dreichor: the tracking row was not written as sent: a rule, trigger or policy on public.dreichor_schema_migrations dropped or changed it; the file was rolled back and not recorded. Migrations must not put rules, triggers or policies on the tools' tables: remove it (DROP RULE / DROP TRIGGER / DROP POLICY ... ON public.dreichor_schema_migrations) and run migrate again";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_statement_names_the_schema() {
        for sql in [CREATE, SHAPE, SELECT_APPLIED] {
            assert!(sql.contains("public.dreichor_schema_migrations"), "{sql}");
        }
        let m = Migration {
            version: "001_init".into(),
            file_name: "001_init.sql".into(),
            path: "x".into(),
            sql: String::new(),
            checksum: "ab".into(),
            transactional: true,
            blank: true,
        };
        assert!(insert_row(&m).contains("INTO public.dreichor_schema_migrations"));
        assert!(insert_row(&m).contains("'001_init'"));
    }

    #[test]
    fn shapes_are_read_from_the_columns_present() {
        let row = |exists: &str, columns: Option<&str>| {
            Row::new(&["table_exists", "extra_columns"], &[Some(exists), columns])
        };
        assert_eq!(shape_from_row(&row("f", None)), Shape::Missing);
        assert_eq!(shape_from_row(&row("t", None)), Shape::TwoColumn);
        assert_eq!(
            shape_from_row(&row("t", Some("{checksum}"))),
            Shape::Partial
        );
        assert_eq!(
            shape_from_row(&row("t", Some("{applied_by,checksum}"))),
            Shape::Partial
        );
        assert_eq!(
            shape_from_row(&row("t", Some("{applied_by,checksum,duration_ms}"))),
            Shape::Current
        );
    }

    #[test]
    fn rows_become_applied_versions() {
        let columns = ["version", "checksum"];
        let applied = applied_from_rows(&[
            Row::new(&columns, &[Some("001_a"), Some("c1")]),
            Row::new(&columns, &[Some("002_b"), None]),
        ]);
        assert_eq!(applied[1].version, "002_b");
        assert_eq!(applied[1].checksum, None);
    }
}
