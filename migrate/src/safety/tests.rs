//! One test per rule: a file that triggers it and one that does not; then the allow
//! comments, the `DO` block `EXECUTE` bodies, and the lock on each finding.

use common::migrations::{checksum_of, Migration, NO_TRANSACTION_MARKER};

use super::rules::ENABLED;
use super::{lint_migration, Finding};

/// A migration file `001_test.sql` with `sql`, transactional unless it starts with the marker.
fn migration(sql: &str) -> Migration {
    Migration {
        version: "001_test".into(),
        file_name: "001_test.sql".into(),
        path: "001_test.sql".into(),
        sql: sql.into(),
        checksum: checksum_of(sql),
        transactional: !sql.starts_with(NO_TRANSACTION_MARKER),
        blank: false,
    }
}

fn findings(sql: &str) -> Vec<Finding> {
    lint_migration(&migration(sql))
}

fn rules_of(sql: &str) -> Vec<String> {
    findings(sql).into_iter().map(|f| f.rule).collect()
}

/// Asserts that `rule` fires on `triggers` and not on `passes`.
fn check(rule: &str, triggers: &str, passes: &str) {
    let fired = rules_of(triggers);
    assert!(
        fired.iter().any(|r| r == rule),
        "{rule} does not fire on {triggers:?}: {fired:?}"
    );
    let fired = rules_of(passes);
    assert!(
        !fired.iter().any(|r| r == rule),
        "{rule} fires on {passes:?}: {fired:?}"
    );
}

/// The tests below, by rule: [`every_enabled_rule_has_a_test`] keeps the two lists in step.
const TESTED: &[&str] = &[
    "require-concurrent-index-creation",
    "require-concurrent-index-deletion",
    "constraint-missing-not-valid",
    "adding-foreign-key-constraint",
    "adding-field-with-default",
    "changing-column-type",
    "adding-not-nullable-field",
    "adding-serial-primary-key-field",
    "adding-required-field",
    "disallowed-unique-constraint",
    "renaming-column",
    "renaming-table",
    "ban-drop-column",
    "ban-drop-table",
    "ban-drop-not-null",
    "ban-truncate-cascade",
    "require-concurrent-reindex",
    "require-concurrent-partition-detach",
    "prefer-robust-stmts",
];

#[test]
fn every_enabled_rule_has_a_test() {
    for enabled in ENABLED {
        let name = enabled.rule.to_string();
        assert!(TESTED.contains(&name.as_str()), "{name} has no test");
    }
    assert_eq!(TESTED.len(), ENABLED.len());
}

#[test]
fn require_concurrent_index_creation() {
    check(
        "require-concurrent-index-creation",
        "CREATE INDEX orders_customer ON orders (customer_id);\n",
        "-- dreichor:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer ON orders (customer_id);\n",
    );
    // A table created in the same file has no traffic yet.
    check(
        "require-concurrent-index-creation",
        "CREATE INDEX i ON orders (a);\n",
        "CREATE TABLE fresh (a bigint);\nCREATE INDEX fresh_a ON fresh (a);\n",
    );
}

#[test]
fn require_concurrent_index_deletion() {
    check(
        "require-concurrent-index-deletion",
        "DROP INDEX orders_customer;\n",
        "-- dreichor:no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS orders_customer;\n",
    );
}

#[test]
fn constraint_missing_not_valid() {
    check(
        "constraint-missing-not-valid",
        "ALTER TABLE orders ADD CONSTRAINT positive CHECK (amount > 0);\n",
        "ALTER TABLE orders ADD CONSTRAINT positive CHECK (amount > 0) NOT VALID;\n",
    );
}

#[test]
fn adding_foreign_key_constraint() {
    check(
        "adding-foreign-key-constraint",
        "ALTER TABLE orders ADD CONSTRAINT orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id);\n",
        "ALTER TABLE orders ADD CONSTRAINT orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;\n",
    );
}

#[test]
fn adding_field_with_default() {
    check(
        "adding-field-with-default",
        "ALTER TABLE orders ADD COLUMN token uuid DEFAULT gen_random_uuid();\n",
        "ALTER TABLE orders ADD COLUMN priority bigint DEFAULT 0;\n",
    );
}

#[test]
fn changing_column_type() {
    check(
        "changing-column-type",
        "ALTER TABLE orders ALTER COLUMN amount TYPE numeric(20, 2);\n",
        "ALTER TABLE orders ADD COLUMN amount_new numeric(20, 2);\n",
    );
}

#[test]
fn adding_not_nullable_field() {
    check(
        "adding-not-nullable-field",
        "ALTER TABLE orders ALTER COLUMN customer_id SET NOT NULL;\n",
        "ALTER TABLE orders ADD CONSTRAINT customer_set CHECK (customer_id IS NOT NULL) NOT VALID;\n",
    );
}

#[test]
fn adding_serial_primary_key_field() {
    check(
        "adding-serial-primary-key-field",
        "ALTER TABLE orders ADD PRIMARY KEY (id);\n",
        "ALTER TABLE orders ADD CONSTRAINT orders_pkey PRIMARY KEY USING INDEX orders_id_key;\n",
    );
}

#[test]
fn adding_required_field() {
    check(
        "adding-required-field",
        "ALTER TABLE orders ADD COLUMN region text NOT NULL;\n",
        "ALTER TABLE orders ADD COLUMN region text NOT NULL DEFAULT 'eu';\n",
    );
}

#[test]
fn disallowed_unique_constraint() {
    check(
        "disallowed-unique-constraint",
        "ALTER TABLE orders ADD CONSTRAINT orders_ref UNIQUE (reference);\n",
        "ALTER TABLE orders ADD CONSTRAINT orders_ref UNIQUE USING INDEX orders_ref_idx;\n",
    );
}

#[test]
fn renaming_column() {
    check(
        "renaming-column",
        "ALTER TABLE orders RENAME COLUMN amount TO total;\n",
        "ALTER TABLE orders ADD COLUMN total numeric;\n",
    );
}

#[test]
fn renaming_table() {
    check(
        "renaming-table",
        "ALTER TABLE orders RENAME TO purchases;\n",
        "CREATE VIEW purchases AS SELECT * FROM orders;\n",
    );
}

#[test]
fn ban_drop_column() {
    check(
        "ban-drop-column",
        "ALTER TABLE orders DROP COLUMN legacy_note;\n",
        "ALTER TABLE orders ALTER COLUMN legacy_note DROP DEFAULT;\n",
    );
}

#[test]
fn ban_drop_table() {
    check(
        "ban-drop-table",
        "DROP TABLE orders_archive;\n",
        "CREATE TABLE orders_archive (id bigint);\n",
    );
}

#[test]
fn ban_drop_not_null() {
    check(
        "ban-drop-not-null",
        "ALTER TABLE orders ALTER COLUMN note DROP NOT NULL;\n",
        "ALTER TABLE orders ALTER COLUMN note SET DEFAULT '';\n",
    );
}

#[test]
fn ban_truncate_cascade() {
    check(
        "ban-truncate-cascade",
        "TRUNCATE staging CASCADE;\n",
        "TRUNCATE staging;\n",
    );
}

#[test]
fn require_concurrent_reindex() {
    check(
        "require-concurrent-reindex",
        "REINDEX TABLE orders;\n",
        "-- dreichor:no-transaction\nREINDEX TABLE CONCURRENTLY orders;\n",
    );
}

#[test]
fn require_concurrent_partition_detach() {
    check(
        "require-concurrent-partition-detach",
        "ALTER TABLE events DETACH PARTITION events_2020;\n",
        "-- dreichor:no-transaction\nALTER TABLE events DETACH PARTITION events_2020 CONCURRENTLY;\n",
    );
}

#[test]
fn prefer_robust_stmts_only_where_a_failure_is_not_rolled_back() {
    check(
        "prefer-robust-stmts",
        "-- dreichor:no-transaction\nCREATE INDEX CONCURRENTLY orders_customer ON orders (customer_id);\n",
        "-- dreichor:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer ON orders (customer_id);\n",
    );
    // A transactional file is rolled back whole on failure: nothing to be robust against.
    check(
        "prefer-robust-stmts",
        "-- dreichor:no-transaction\nCREATE TABLE audit (id bigint);\n",
        "CREATE TABLE audit (id bigint);\n",
    );
}

#[test]
fn require_lock_timeout_fires_only_where_the_file_turns_it_off() {
    check(
        "require-lock-timeout",
        "SET lock_timeout = 0;\nALTER TABLE orders ADD COLUMN note text;\n",
        "ALTER TABLE orders ADD COLUMN note text;\n",
    );
    check(
        "require-lock-timeout",
        "SET LOCAL lock_timeout TO '0s';\nALTER TABLE orders ADD COLUMN note text;\n",
        "SET lock_timeout = 0;\nRESET lock_timeout;\nALTER TABLE orders ADD COLUMN note text;\nSET lock_timeout = '2s';\nALTER TABLE orders ADD COLUMN more text;\n",
    );
    let found = findings("SET lock_timeout = 0;\n\nALTER TABLE orders ADD COLUMN note text;\n");
    assert_eq!((found[0].line, found[0].column), (3, 1));
}

#[test]
fn require_statement_timeout_fires_only_where_the_file_turns_it_off() {
    check(
        "require-statement-timeout",
        "SET statement_timeout = 0;\nCREATE INDEX i ON orders (a);\n",
        "SET statement_timeout = 0;\nSET statement_timeout = '1min';\nCREATE INDEX i ON orders (a);\n",
    );
}

#[test]
fn each_finding_names_the_lock_and_the_table() {
    let found = findings("ALTER TABLE public.orders ALTER COLUMN amount TYPE bigint;\n");
    let lock = found[0].lock.as_ref().expect("a lock");
    assert_eq!(
        lock.to_string(),
        "ACCESS EXCLUSIVE on public.orders (blocks reads and writes)"
    );
    let described = found[0].describe();
    assert!(described.starts_with("001_test.sql:1:"), "{described}");
    assert!(described.contains("changing-column-type"), "{described}");
    assert!(
        described.contains("instead: add a column of the new type"),
        "{described}"
    );
    let json = found[0].json("warning");
    for key in ["file", "line", "column", "rule", "severity", "message"] {
        assert!(!json[key].is_null(), "{key} missing from {json}");
    }
    assert_eq!(json["lock"]["mode"], "ACCESS EXCLUSIVE");
}

#[test]
fn an_allow_with_a_reason_silences_one_rule_on_the_statement_below() {
    let sql = "-- dreichor:allow changing-column-type orders has 40 rows, rewritten in milliseconds\nALTER TABLE orders ALTER COLUMN amount TYPE bigint;\nALTER TABLE orders ALTER COLUMN note TYPE varchar(10);\n";
    let found = findings(sql);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].rule.as_str(), found[0].line),
        ("changing-column-type", 3)
    );
    // Stacked allows, one rule each, for a statement two rules fire on.
    let sql = "-- dreichor:allow constraint-missing-not-valid the table is empty\n-- dreichor:allow adding-foreign-key-constraint the table is empty\nALTER TABLE orders ADD CONSTRAINT f FOREIGN KEY (c) REFERENCES customers (id);\n";
    assert_eq!(findings(sql), []);
}

#[test]
fn an_allow_without_a_reason_silences_nothing_and_is_a_finding() {
    let sql = "-- dreichor:allow changing-column-type\nALTER TABLE orders ALTER COLUMN amount TYPE bigint;\n";
    let mut rules = rules_of(sql);
    rules.sort();
    assert_eq!(rules, ["allow-without-reason", "changing-column-type"]);
    assert_eq!(findings(sql)[0].line, 1);
}

#[test]
fn an_allow_for_a_rule_that_does_not_fire_there_is_a_finding() {
    for sql in [
        // The rule does not fire on the statement below.
        "-- dreichor:allow ban-drop-table not needed\nALTER TABLE orders ADD COLUMN note text;\n",
        // Not directly above the statement.
        "-- dreichor:allow changing-column-type small\n\nALTER TABLE orders ALTER COLUMN amount TYPE bigint;\n",
        // An unknown rule.
        "-- dreichor:allow no-such-rule because\nSELECT 1;\n",
    ] {
        let rules = rules_of(sql);
        assert!(rules.contains(&"unused-allow".to_string()), "{sql:?}: {rules:?}");
    }
    // squawk's own ignore comments do not silence anything here.
    let sql = "-- squawk-ignore changing-column-type\nALTER TABLE orders ALTER COLUMN amount TYPE bigint;\n";
    assert_eq!(rules_of(sql), ["changing-column-type"]);
}

#[test]
fn a_statement_run_by_execute_in_a_do_block_is_linted_at_its_line() {
    let sql = "DO $$\nBEGIN\n  IF NOT EXISTS (SELECT 1 FROM pg_indexes WHERE indexname = 'orders_customer') THEN\n    EXECUTE 'CREATE INDEX orders_customer ON orders (customer_id)';\n  END IF;\nEND\n$$;\n";
    let found = findings(sql);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].rule, "require-concurrent-index-creation");
    assert_eq!(found[0].line, 4);
    assert_eq!(found[0].column, 14);
    assert_eq!(found[0].lock.as_ref().unwrap().table, "orders");
    // Quotes doubled inside the string and a single-quoted body still map to the line.
    let sql =
        "DO 'BEGIN\n  EXECUTE ''ALTER TABLE orders ALTER COLUMN amount TYPE bigint'';\nEND';\n";
    let found = findings(sql);
    assert_eq!(
        (found[0].rule.as_str(), found[0].line),
        ("changing-column-type", 2)
    );
    // An EXECUTE that does nothing a rule knows, and one that is not a constant.
    let sql = "DO $$\nBEGIN\n  EXECUTE 'ALTER TABLE orders ADD COLUMN note text';\n  EXECUTE 'DROP TABLE ' || quote_ident('x');\nEND $$;\n";
    assert_eq!(findings(sql), []);
    // The allow goes on the line above the EXECUTE.
    let sql = "DO $$\nBEGIN\n  -- dreichor:allow require-concurrent-index-creation orders is empty in every environment\n  EXECUTE 'CREATE INDEX i ON orders (a)';\nEND $$;\n";
    assert_eq!(findings(sql), []);
}

#[test]
fn a_statement_that_cannot_run_in_a_function_is_a_finding_inside_a_do_block() {
    for marker in ["", "-- dreichor:no-transaction\n"] {
        let sql = format!("{marker}DO $$\nBEGIN\n  EXECUTE 'VACUUM orders';\nEND $$;\n");
        let found = findings(&sql);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].rule, "cannot-run-in-a-function");
        assert!(
            found[0].message.contains("`VACUUM`"),
            "{}",
            found[0].message
        );
    }
    let sql = "DO $$\nBEGIN\n  EXECUTE 'ANALYZE orders';\nEND $$;\n";
    assert_eq!(findings(sql), []);
}
