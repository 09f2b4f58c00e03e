//! Statements that cannot run inside a transaction block: the list in
//! `common::transaction_context` checked against the real server, and the refusal before
//! anything runs in `lint`, `migrate` and `hard-reset`.

use postgres::error::SqlState;

use crate::support::{Cluster, Project, Pty, Tool};

/// Each statement the list refuses, with the objects it needs set up beforehand.
const REFUSED: &[&str] = &[
    "CREATE INDEX CONCURRENTLY t_a_c ON t (a)",
    "CREATE UNIQUE INDEX CONCURRENTLY t_a_u ON t (a)",
    "DROP INDEX CONCURRENTLY t_a",
    "REINDEX INDEX CONCURRENTLY t_a",
    "REINDEX (CONCURRENTLY) TABLE t",
    "REINDEX SCHEMA public",
    "REINDEX DATABASE {db}",
    "REINDEX SYSTEM {db}",
    "VACUUM",
    "VACUUM t",
    "VACUUM (ANALYZE) t",
    "VACUUM FULL t",
    "CLUSTER",
    "CLUSTER VERBOSE",
    "ALTER TABLE p DETACH PARTITION p1 CONCURRENTLY",
    "ALTER SYSTEM SET work_mem = '64MB'",
    "CREATE DATABASE {db}_x",
    "DROP DATABASE {db}",
    "ALTER DATABASE {db} SET TABLESPACE pg_default",
    "CREATE TABLESPACE ts LOCATION '/nonexistent'",
    "DROP TABLESPACE pg_default",
    "CREATE SUBSCRIPTION s CONNECTION 'host=127.0.0.1 port=1' PUBLICATION p",
    "DISCARD ALL",
];

/// Statements with the same leading words that PostgreSQL 15 runs in a transaction.
const ALLOWED: &[&str] = &[
    "CREATE INDEX t_a_2 ON t (a)",
    "DROP INDEX t_a",
    "REINDEX TABLE t",
    "REINDEX INDEX t_a",
    "ANALYZE t",
    "CLUSTER t USING t_a",
    "ALTER TABLE p DETACH PARTITION p1",
    "ALTER DATABASE {db} SET work_mem = '64MB'",
    "ALTER TYPE mood ADD VALUE 'meh'",
    "REFRESH MATERIALIZED VIEW CONCURRENTLY mv",
    "DISCARD TEMP",
    "DISCARD PLANS",
];

const SETUP: &str = "CREATE TABLE t (a int);
CREATE INDEX t_a ON t (a);
CREATE TABLE p (a int) PARTITION BY RANGE (a);
CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (10);
CREATE TYPE mood AS ENUM ('sad', 'ok');
CREATE MATERIALIZED VIEW mv AS SELECT 1 AS one;
CREATE UNIQUE INDEX mv_one ON mv (one);";

#[test]
fn every_statement_refused_in_a_transactional_file_fails_there_with_25001() {
    let cluster = Cluster::shared();
    let db = cluster.fresh_database();
    cluster.sql(&db, SETUP);
    let mut client = cluster.admin_db(&db);
    let mut in_transaction = |statement: &str| {
        let mut tx = client.transaction().unwrap();
        let result = tx.batch_execute(statement);
        tx.rollback().unwrap();
        result.err().and_then(|e| e.code().cloned())
    };
    for template in REFUSED {
        let statement = template.replace("{db}", &db);
        assert!(
            common::transaction_context::refused_in_transaction(&common::sql::words(&statement))
                .is_some(),
            "the list does not refuse {statement}"
        );
        assert_eq!(
            in_transaction(&statement),
            Some(SqlState::ACTIVE_SQL_TRANSACTION),
            "PostgreSQL runs {statement} in a transaction block"
        );
    }
    for template in ALLOWED {
        let statement = template.replace("{db}", &db);
        assert_eq!(
            common::transaction_context::refused_in_transaction(&common::sql::words(&statement)),
            None,
            "the list refuses {statement}"
        );
        assert_eq!(
            in_transaction(&statement),
            None,
            "PostgreSQL refuses {statement} in a transaction block"
        );
    }
}

#[test]
fn lint_and_migrate_refuse_vacuum_in_a_transactional_file_before_anything_runs() {
    let f = Project::start();
    f.write("001_a.sql", "CREATE TABLE a (id bigint);\n");
    f.write(
        "002_b.sql",
        "CREATE TABLE b (id bigint);\n-- reclaim space\nVACUUM a;\n",
    );
    let lint = Tool::Migrate
        .cmd()
        .args(["lint", "--dir"])
        .arg(f.dir())
        .run();
    lint.assert_code(2);
    assert!(
        lint.stdout
            .contains("002_b.sql:3:1: `VACUUM` cannot run inside a transaction block")
            && lint.stdout.contains("-- dreichor:no-transaction"),
        "{}",
        lint.stdout
    );

    let out = f.tool(Tool::Migrate, &[]).run();
    out.assert_code(2);
    out.assert_stderr("002_b.sql:3:1: `VACUUM` cannot run inside a transaction block");
    assert!(!f.table_exists("a"), "001_a.sql was applied");
    assert!(!f.table_exists("dreichor_schema_migrations"));

    // The same statement in a no-transaction file is fine.
    f.write(
        "002_b.sql",
        "-- dreichor:no-transaction\nCREATE TABLE b (id bigint);\nVACUUM a;\n",
    );
    f.tool(Tool::Migrate, &[]).run().assert_code(0);
    assert_eq!(f.versions(), ["001_a", "002_b"]);
}

#[test]
fn hard_reset_refuses_a_directory_it_could_not_migrate_again_before_dropping_anything() {
    let f = Project::start();
    f.write("001_a.sql", "CREATE TABLE a (id bigint);\n");
    f.tool(Tool::Migrate, &[]).run().assert_code(0);
    f.write("002_b.sql", "DROP INDEX CONCURRENTLY IF EXISTS a_id;\n");
    let out = Pty::spawn(f.hard_reset("dev", &["--stop-command", "true"])).finish();
    out.assert_code(2)
        .assert_contains("`DROP INDEX CONCURRENTLY` cannot run inside a transaction block")
        .assert_lacks("Type the database name");
    assert!(f.table_exists("a"));
    assert_eq!(f.versions(), ["001_a"]);
}
