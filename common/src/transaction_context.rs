//! Statements PostgreSQL refuses inside a transaction block.
//!
//! A migration file without the `-- dreichor:no-transaction` marker runs in one transaction
//! together with its tracking row. A few commands cannot run inside a transaction block at
//! all: the server calls `PreventInTransactionBlock` for them and fails with SQLSTATE 25001
//! (`active_sql_transaction`). Left to the server, such a file fails only when its turn
//! comes, after every file before it was applied. Discovery refuses it instead, before
//! anything runs, in every tool that reads the directory (`migrate lint`, `migrate`,
//! `hard-reset`'s re-migration): the refusal needs only the statement's leading words, so
//! it lives here rather than in the safety lint of `migrate`, which needs a full parser.
//!
//! The list, each entry checked against PostgreSQL 15 in a transaction block by the
//! end-to-end test `every_statement_refused_in_a_transactional_file_fails_there_with_25001`
//! (sources: the "Notes" of each command's reference page, e.g.
//! <https://www.postgresql.org/docs/15/sql-createindex.html#SQL-CREATEINDEX-CONCURRENTLY>,
//! and the callers of `PreventInTransactionBlock` in the server):
//!
//! - `CREATE [UNIQUE] INDEX CONCURRENTLY`, `DROP INDEX CONCURRENTLY`;
//! - `REINDEX ... CONCURRENTLY`, and `REINDEX SCHEMA | DATABASE | SYSTEM` (many tables);
//! - `VACUUM` (any form; `ANALYZE` alone is allowed);
//! - `CLUSTER` without a table (every previously clustered table);
//! - `ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY`;
//! - `ALTER SYSTEM`;
//! - `CREATE DATABASE`, `DROP DATABASE`, `ALTER DATABASE ... SET TABLESPACE`;
//! - `CREATE TABLESPACE`, `DROP TABLESPACE`;
//! - `CREATE SUBSCRIPTION` (its default `create_slot = true` creates a replication slot);
//! - `DISCARD ALL` (the other `DISCARD` forms are allowed).
//!
//! Not listed, because PostgreSQL 15 allows them in a transaction: `ALTER TYPE ... ADD VALUE` (since 12),
//! `REFRESH MATERIALIZED VIEW CONCURRENTLY`, `ANALYZE`, `CLUSTER table`.

/// The command a statement starts with when PostgreSQL refuses it inside a transaction
/// block, named as in the error PostgreSQL would give; `None` when it may run in one.
///
/// `words` are the statement's unquoted words in order ([`crate::sql::words`]), so a
/// `CONCURRENTLY` in a string, a comment or a quoted identifier does not count.
///
/// ```
/// use common::sql::words;
/// use common::transaction_context::refused_in_transaction;
///
/// let refused = |s: &str| refused_in_transaction(&words(s));
/// assert_eq!(refused("create unique index concurrently i on t (a)"), Some("CREATE INDEX CONCURRENTLY"));
/// assert_eq!(refused("VACUUM (ANALYZE) t"), Some("VACUUM"));
/// assert_eq!(refused("CREATE INDEX i ON t (a)"), None);
/// assert_eq!(refused("ANALYZE t"), None);
/// ```
pub fn refused_in_transaction(words: &[&str]) -> Option<&'static str> {
    let is = |i: usize, keyword: &str| {
        words
            .get(i)
            .is_some_and(|w| w.eq_ignore_ascii_case(keyword))
    };
    let has = |keyword: &str| words.iter().any(|w| w.eq_ignore_ascii_case(keyword));
    // `CONCURRENTLY` is a reserved word (type_func_name_keyword): unquoted, it can only be
    // the option, never a name, wherever it appears in these commands.
    if is(0, "create") {
        let index_at = if is(1, "unique") { 2 } else { 1 };
        if is(index_at, "index") && is(index_at + 1, "concurrently") {
            return Some("CREATE INDEX CONCURRENTLY");
        }
        if is(1, "database") {
            return Some("CREATE DATABASE");
        }
        if is(1, "tablespace") {
            return Some("CREATE TABLESPACE");
        }
        if is(1, "subscription") {
            return Some("CREATE SUBSCRIPTION");
        }
    }
    if is(0, "drop") {
        if is(1, "index") && is(2, "concurrently") {
            return Some("DROP INDEX CONCURRENTLY");
        }
        if is(1, "database") {
            return Some("DROP DATABASE");
        }
        if is(1, "tablespace") {
            return Some("DROP TABLESPACE");
        }
    }
    if is(0, "reindex") {
        if has("concurrently") {
            return Some("REINDEX CONCURRENTLY");
        }
        // `REINDEX [ ( option, ... ) ] SCHEMA | DATABASE | SYSTEM name`: the kind is the
        // first of these words after the options.
        let kind = words[1..].iter().find(|w| {
            ["index", "table", "schema", "database", "system"]
                .iter()
                .any(|k| w.eq_ignore_ascii_case(k))
        });
        if let Some(kind) = kind {
            for (k, command) in [
                ("schema", "REINDEX SCHEMA"),
                ("database", "REINDEX DATABASE"),
                ("system", "REINDEX SYSTEM"),
            ] {
                if kind.eq_ignore_ascii_case(k) {
                    return Some(command);
                }
            }
        }
    }
    if is(0, "vacuum") {
        return Some("VACUUM");
    }
    if is(0, "discard") && is(1, "all") {
        return Some("DISCARD ALL");
    }
    // `CLUSTER`, `CLUSTER VERBOSE`, `CLUSTER (VERBOSE)`: no table named.
    if is(0, "cluster") && words[1..].iter().all(|w| w.eq_ignore_ascii_case("verbose")) {
        return Some("CLUSTER");
    }
    if is(0, "alter") {
        if is(1, "system") {
            return Some("ALTER SYSTEM");
        }
        if is(1, "database")
            && words.windows(2).any(|p| {
                p[0].eq_ignore_ascii_case("set") && p[1].eq_ignore_ascii_case("tablespace")
            })
        {
            return Some("ALTER DATABASE SET TABLESPACE");
        }
        if is(1, "table") && has("detach") && has("concurrently") {
            return Some("ALTER TABLE DETACH PARTITION CONCURRENTLY");
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::words;

    fn refused(statement: &str) -> Option<&'static str> {
        refused_in_transaction(&words(statement))
    }

    #[test]
    fn finds_each_command_in_any_case() {
        for (statement, command) in [
            (
                "CREATE INDEX CONCURRENTLY i ON t (a)",
                "CREATE INDEX CONCURRENTLY",
            ),
            (
                "create unique index concurrently if not exists i on t (a)",
                "CREATE INDEX CONCURRENTLY",
            ),
            (
                "DROP INDEX CONCURRENTLY IF EXISTS i",
                "DROP INDEX CONCURRENTLY",
            ),
            ("REINDEX INDEX CONCURRENTLY i", "REINDEX CONCURRENTLY"),
            ("REINDEX (CONCURRENTLY) TABLE t", "REINDEX CONCURRENTLY"),
            ("REINDEX (VERBOSE) SCHEMA public", "REINDEX SCHEMA"),
            ("REINDEX DATABASE dreichor_dev", "REINDEX DATABASE"),
            ("REINDEX SYSTEM", "REINDEX SYSTEM"),
            ("VACUUM", "VACUUM"),
            ("vacuum full t", "VACUUM"),
            ("CLUSTER", "CLUSTER"),
            ("CLUSTER VERBOSE", "CLUSTER"),
            ("ALTER SYSTEM SET work_mem = '64MB'", "ALTER SYSTEM"),
            ("CREATE DATABASE x", "CREATE DATABASE"),
            ("DROP DATABASE IF EXISTS x", "DROP DATABASE"),
            (
                "ALTER DATABASE x SET TABLESPACE ts",
                "ALTER DATABASE SET TABLESPACE",
            ),
            (
                "CREATE TABLESPACE ts LOCATION '/srv/ts'",
                "CREATE TABLESPACE",
            ),
            ("DROP TABLESPACE ts", "DROP TABLESPACE"),
            (
                "ALTER TABLE p DETACH PARTITION p1 CONCURRENTLY",
                "ALTER TABLE DETACH PARTITION CONCURRENTLY",
            ),
            (
                "CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p",
                "CREATE SUBSCRIPTION",
            ),
        ] {
            assert_eq!(refused(statement), Some(command), "{statement}");
        }
    }

    #[test]
    fn passes_what_may_run_in_a_transaction() {
        for statement in [
            "CREATE INDEX i ON t (a)",
            "CREATE INDEX \"concurrently\" ON t (a)",
            "CREATE INDEX i ON t (a) WHERE b = 'concurrently'",
            "-- CREATE INDEX CONCURRENTLY\nCREATE INDEX i ON t (a)",
            "DROP INDEX i",
            "REINDEX TABLE t",
            "REINDEX INDEX i",
            "ANALYZE t",
            "CLUSTER t USING i",
            "CLUSTER VERBOSE t",
            "ALTER DATABASE x SET work_mem = '64MB'",
            "ALTER TABLE p DETACH PARTITION p1",
            "ALTER TYPE mood ADD VALUE 'meh'",
            "REFRESH MATERIALIZED VIEW CONCURRENTLY mv",
            "SELECT 'VACUUM'",
            "ALTER TABLE t ADD COLUMN vacuum_at timestamptz",
            "DISCARD TEMP",
        ] {
            assert_eq!(refused(statement), None, "{statement}");
        }
    }
}
