//! Which rules run on a file, and what to write instead of what each one finds.
//!
//! squawk's rules, chosen for what takes a live database down while the old runtime is
//! still serving (locks, table rewrites, full scans, changes the deployed runtime cannot
//! survive), not for style. The file's transaction context decides the rest:
//!
//! - `ban-concurrent-index-creation-in-transaction`, `transaction-nesting` and
//!   `ban-uncommitted-transaction` are not run: discovery already refuses, as errors and in
//!   every tool, any statement that cannot run in the file's transaction and any
//!   transaction control ([`common::transaction_context`], [`common::migrations`]).
//! - `prefer-robust-stmts` runs only on no-transaction files: a transactional file that
//!   fails is rolled back whole and can simply run again; a no-transaction file that fails
//!   half way keeps what ran, and its next run meets those objects.
//! - `require-lock-timeout` and `require-statement-timeout` are this tool's own
//!   ([`super::timeouts`]): the runner sets both for every file, so they fire only where a
//!   file turns one off.

use squawk_linter::{Linter, Rule};

/// One enabled squawk rule and the advice for it.
#[derive(Debug, Clone, Copy)]
pub struct Enabled {
    /// The rule.
    pub rule: Rule,
    /// What to write instead, in this runner's terms.
    pub instead: &'static str,
}

/// The squawk rules run on every file, each with what to write instead.
pub const ENABLED: &[Enabled] = &[
    Enabled {
        rule: Rule::RequireConcurrentIndexCreation,
        instead: "CREATE INDEX CONCURRENTLY, in a file of its own whose first line is `-- dreichor:no-transaction`",
    },
    Enabled {
        rule: Rule::RequireConcurrentIndexDeletion,
        instead: "DROP INDEX CONCURRENTLY, in a file of its own whose first line is `-- dreichor:no-transaction`",
    },
    Enabled {
        rule: Rule::ConstraintMissingNotValid,
        instead: "ADD CONSTRAINT ... NOT VALID here, then ALTER TABLE ... VALIDATE CONSTRAINT in a later migration (SHARE UPDATE EXCLUSIVE: reads and writes go on)",
    },
    Enabled {
        rule: Rule::AddingForeignKeyConstraint,
        instead: "ADD CONSTRAINT ... FOREIGN KEY ... NOT VALID here, then VALIDATE CONSTRAINT in a later migration",
    },
    Enabled {
        rule: Rule::AddingFieldWithDefault,
        instead: "add the column with a constant default (or none), then backfill the computed value in batches",
    },
    Enabled {
        rule: Rule::ChangingColumnType,
        instead: "add a column of the new type, backfill it in batches, move the runtime to it, drop the old column in a later release",
    },
    Enabled {
        rule: Rule::AddingNotNullableField,
        instead: "ADD CONSTRAINT c CHECK (col IS NOT NULL) NOT VALID; VALIDATE CONSTRAINT c in a later migration; then SET NOT NULL uses it without a scan",
    },
    Enabled {
        rule: Rule::AddingSerialPrimaryKeyField,
        instead: "CREATE UNIQUE INDEX CONCURRENTLY in a no-transaction file, then ADD CONSTRAINT ... PRIMARY KEY USING INDEX",
    },
    Enabled {
        rule: Rule::AddingRequiredField,
        instead: "add the column nullable or with a constant default; the runtime still serving does not write it",
    },
    Enabled {
        rule: Rule::DisallowedUniqueConstraint,
        instead: "CREATE UNIQUE INDEX CONCURRENTLY in a no-transaction file, then ADD CONSTRAINT ... UNIQUE USING INDEX",
    },
    Enabled {
        rule: Rule::RenamingColumn,
        instead: "add the new column and backfill it; drop the old one once no deployed runtime reads it",
    },
    Enabled {
        rule: Rule::RenamingTable,
        instead: "create the new table (or a view under the old name) and drop the old name once no deployed runtime uses it",
    },
    Enabled {
        rule: Rule::BanDropColumn,
        instead: "release a runtime that no longer reads or writes the column first, then drop it in a later migration",
    },
    Enabled {
        rule: Rule::BanDropTable,
        instead: "release a runtime that no longer uses the table first, then drop it in a later migration",
    },
    Enabled {
        rule: Rule::BanDropNotNull,
        instead: "keep the constraint until every deployed runtime copes with NULL in the column",
    },
    Enabled {
        rule: Rule::BanTruncateCascade,
        instead: "TRUNCATE the tables by name, without CASCADE",
    },
    Enabled {
        rule: Rule::RequireConcurrentReindex,
        instead: "REINDEX ... CONCURRENTLY, in a file of its own whose first line is `-- dreichor:no-transaction`",
    },
    Enabled {
        rule: Rule::RequireConcurrentPartitionDetach,
        instead: "DETACH PARTITION ... CONCURRENTLY, in a file of its own whose first line is `-- dreichor:no-transaction`",
    },
    Enabled {
        rule: Rule::PreferRobustStmts,
        instead: "IF NOT EXISTS / IF EXISTS, so that the file can run again after failing half way (a no-transaction file is not rolled back)",
    },
];

/// What to write instead of what `rule` found.
pub fn instead(rule: Rule) -> Option<&'static str> {
    ENABLED.iter().find(|e| e.rule == rule).map(|e| e.instead)
}

/// A linter with the rules for a file in the given transaction context.
pub fn linter(transactional: bool) -> Linter {
    let rules = ENABLED
        .iter()
        .map(|e| e.rule)
        .filter(|rule| transactional.then_some(*rule) != Some(Rule::PreferRobustStmts));
    let mut linter = Linter::from(rules);
    linter.settings.assume_in_transaction = transactional;
    linter
}
