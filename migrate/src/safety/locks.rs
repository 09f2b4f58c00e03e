//! The lock a statement takes, and on which table.
//!
//! From PostgreSQL's documented lock levels: the table of modes and the commands that take
//! them (<https://www.postgresql.org/docs/15/explicit-locking.html#LOCKING-TABLES>), refined
//! by the command pages where a sub-command takes less than the default ACCESS EXCLUSIVE
//! (<https://www.postgresql.org/docs/15/sql-altertable.html>: "ACCESS EXCLUSIVE lock is
//! acquired unless explicitly noted"). A statement whose lock this module does not know
//! gets none: a finding then says nothing about locks rather than something wrong.

use std::fmt;

use squawk_syntax::ast::{self, AstNode};
use squawk_syntax::{SyntaxKind, SyntaxNode};

/// PostgreSQL's table-level lock modes, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LockMode {
    /// `SELECT`.
    AccessShare,
    /// `SELECT ... FOR UPDATE`.
    RowShare,
    /// `INSERT`, `UPDATE`, `DELETE`.
    RowExclusive,
    /// `VACUUM`, `ANALYZE`, `CREATE INDEX CONCURRENTLY`, `VALIDATE CONSTRAINT`, ...
    ShareUpdateExclusive,
    /// `CREATE INDEX` (without `CONCURRENTLY`).
    Share,
    /// `CREATE TRIGGER`, `ADD FOREIGN KEY`, enabling or disabling a trigger.
    ShareRowExclusive,
    /// `REFRESH MATERIALIZED VIEW CONCURRENTLY`.
    Exclusive,
    /// Most of `ALTER TABLE`, `DROP TABLE`, `TRUNCATE`, `VACUUM FULL`, `CLUSTER`, ...
    AccessExclusive,
}

impl LockMode {
    /// What the lock stops other sessions from doing while it is held (or queued for: a
    /// waiting lock request blocks every later conflicting request too).
    pub fn blocks(self) -> &'static str {
        match self {
            LockMode::AccessExclusive => "blocks reads and writes",
            LockMode::Exclusive | LockMode::ShareRowExclusive | LockMode::Share => "blocks writes",
            LockMode::ShareUpdateExclusive => "blocks other schema changes and VACUUM",
            LockMode::RowExclusive | LockMode::RowShare => "blocks schema changes",
            LockMode::AccessShare => "blocks ACCESS EXCLUSIVE only",
        }
    }
}

impl fmt::Display for LockMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LockMode::AccessShare => "ACCESS SHARE",
            LockMode::RowShare => "ROW SHARE",
            LockMode::RowExclusive => "ROW EXCLUSIVE",
            LockMode::ShareUpdateExclusive => "SHARE UPDATE EXCLUSIVE",
            LockMode::Share => "SHARE",
            LockMode::ShareRowExclusive => "SHARE ROW EXCLUSIVE",
            LockMode::Exclusive => "EXCLUSIVE",
            LockMode::AccessExclusive => "ACCESS EXCLUSIVE",
        })
    }
}

/// The lock a statement takes on the table it works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    /// The mode.
    pub mode: LockMode,
    /// The table as written in the statement (`public.orders`), or, when the statement
    /// names only an index, `the table of index <name>`.
    pub table: String,
}

impl fmt::Display for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} on {} ({})",
            self.mode,
            self.table,
            self.mode.blocks()
        )
    }
}

/// The lock `stmt` takes, when this module knows it.
pub fn lock_of(stmt: &ast::Stmt) -> Option<Lock> {
    use LockMode::*;
    let (mode, table) = match stmt {
        ast::Stmt::AlterTable(alter) => {
            let mode = alter
                .actions()
                .map(|action| alter_table_action(&action))
                .max()
                .unwrap_or(AccessExclusive);
            (mode, relation(alter.table_relation_name()?.syntax()))
        }
        ast::Stmt::CreateIndex(create) => {
            let mode = if create.concurrently_token().is_some() {
                ShareUpdateExclusive
            } else {
                Share
            };
            (mode, relation(create.table_relation_name()?.syntax()))
        }
        ast::Stmt::DropIndex(drop) => {
            let mode = if drop.concurrently_token().is_some() {
                ShareUpdateExclusive
            } else {
                AccessExclusive
            };
            let index = drop.index_refs().next()?;
            (
                mode,
                format!("the table of index {}", relation(index.syntax())),
            )
        }
        ast::Stmt::DropTable(drop) => (
            AccessExclusive,
            relation(drop.table_name_refs().next()?.syntax()),
        ),
        ast::Stmt::Truncate(truncate) => (
            AccessExclusive,
            relation(&first_path(truncate.table_list()?.syntax())?),
        ),
        ast::Stmt::Cluster(cluster) => (
            AccessExclusive,
            relation(cluster.table_name_ref()?.syntax()),
        ),
        ast::Stmt::Vacuum(vacuum) => {
            let mode = if vacuum.full_token().is_some() || vacuum_options_say_full(vacuum) {
                AccessExclusive
            } else {
                ShareUpdateExclusive
            };
            let table = vacuum
                .table_and_columns_list()
                .and_then(|list| first_path(list.syntax()))
                .map(|path| relation(&path))
                .unwrap_or_else(|| "every table".into());
            (mode, table)
        }
        ast::Stmt::Refresh(refresh) => {
            let mode = if refresh.concurrently_token().is_some() {
                Exclusive
            } else {
                AccessExclusive
            };
            (mode, relation(refresh.view_ref()?.syntax()))
        }
        ast::Stmt::Reindex(reindex) => {
            // A plain REINDEX locks out writes to the table (SHARE) and everything on the
            // index being rebuilt (ACCESS EXCLUSIVE): the table is what the runtime feels.
            let mode = if reindex.is_concurrently() {
                ShareUpdateExclusive
            } else {
                Share
            };
            (mode, relation(&first_path(reindex.syntax())?))
        }
        ast::Stmt::CreateTrigger(trigger) => (
            ShareRowExclusive,
            relation(&first_path(trigger.on_relation()?.syntax())?),
        ),
        ast::Stmt::Lock(lock) => {
            let mode = lock
                .lock_mode_clause()
                .and_then(|clause| clause.lock_mode())
                .map_or(AccessExclusive, |mode| match mode {
                    ast::LockMode::AccessExclusive(_) => AccessExclusive,
                    ast::LockMode::AccessShare(_) => AccessShare,
                    ast::LockMode::Exclusive(_) => Exclusive,
                    ast::LockMode::RowExclusive(_) => RowExclusive,
                    ast::LockMode::RowShare(_) => RowShare,
                    ast::LockMode::Share(_) => Share,
                    ast::LockMode::ShareRowExclusive(_) => ShareRowExclusive,
                    ast::LockMode::ShareUpdateExclusive(_) => ShareUpdateExclusive,
                });
            (mode, relation(&first_path(lock.relation_list()?.syntax())?))
        }
        ast::Stmt::Insert(_)
        | ast::Stmt::Update(_)
        | ast::Stmt::Delete(_)
        | ast::Stmt::Merge(_) => (RowExclusive, relation(&first_path(stmt.syntax())?)),
        _ => return None,
    };
    Some(Lock { mode, table })
}

/// The lock of one `ALTER TABLE` action (the statement takes the strongest of its actions).
fn alter_table_action(action: &ast::AlterTableAction) -> LockMode {
    use LockMode::*;
    match action {
        // "SET STATISTICS ... SHARE UPDATE EXCLUSIVE", "VALIDATE CONSTRAINT ... SHARE UPDATE
        // EXCLUSIVE", "CLUSTER ON / SET WITHOUT CLUSTER ... SHARE UPDATE EXCLUSIVE", and the
        // storage parameters that only affect autovacuum, fillfactor and planning.
        ast::AlterTableAction::ClusterOn(_)
        | ast::AlterTableAction::SetWithoutCluster(_)
        | ast::AlterTableAction::ValidateConstraint(_)
        | ast::AlterTableAction::SetOptions(_)
        | ast::AlterTableAction::ResetOptions(_) => ShareUpdateExclusive,
        // "ATTACH PARTITION ... SHARE UPDATE EXCLUSIVE on the parent table" (PostgreSQL 12).
        ast::AlterTableAction::AttachPartition(_) => ShareUpdateExclusive,
        // "DETACH PARTITION ... CONCURRENTLY ... SHARE UPDATE EXCLUSIVE" (PostgreSQL 14).
        ast::AlterTableAction::DetachPartition(detach) => {
            if matches!(
                detach.detach_partition_option(),
                Some(ast::DetachPartitionOption::DetachConcurrently(_))
            ) {
                ShareUpdateExclusive
            } else {
                AccessExclusive
            }
        }
        // "ADD FOREIGN KEY ... SHARE ROW EXCLUSIVE" (on this table and the referenced one).
        ast::AlterTableAction::AddConstraint(add) => match add.constraint() {
            Some(ast::Constraint::ForeignKeyConstraint(_)) => ShareRowExclusive,
            _ => AccessExclusive,
        },
        // "DISABLE/ENABLE [ REPLICA | ALWAYS ] TRIGGER ... SHARE ROW EXCLUSIVE".
        ast::AlterTableAction::DisableTrigger(_)
        | ast::AlterTableAction::EnableTrigger(_)
        | ast::AlterTableAction::EnableAlwaysTrigger(_)
        | ast::AlterTableAction::EnableReplicaTrigger(_) => ShareRowExclusive,
        ast::AlterTableAction::AlterColumn(column) => match column.option() {
            Some(
                ast::AlterColumnOption::SetStatistics(_)
                | ast::AlterColumnOption::SetOptions(_)
                | ast::AlterColumnOption::ResetOptions(_),
            ) => ShareUpdateExclusive,
            _ => AccessExclusive,
        },
        _ => AccessExclusive,
    }
}

/// `VACUUM (FULL) t` / `VACUUM (FULL true) t`.
fn vacuum_options_say_full(vacuum: &ast::Vacuum) -> bool {
    vacuum.vacuum_option_list().is_some_and(|options| {
        options
            .syntax()
            .to_string()
            .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .any(|word| word.eq_ignore_ascii_case("full"))
    })
}

/// The first qualified name under `node` (a name being defined or one referred to).
fn first_path(node: &SyntaxNode) -> Option<SyntaxNode> {
    node.descendants()
        .find(|n| matches!(n.kind(), SyntaxKind::PATH | SyntaxKind::PATH_REF))
}

/// A relation as written, without `ONLY` and a trailing `*`, whitespace squeezed.
fn relation(node: &SyntaxNode) -> String {
    let text = node.to_string();
    let words: Vec<&str> = text
        .split_whitespace()
        .filter(|w| !w.eq_ignore_ascii_case("only") && *w != "*")
        .collect();
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use squawk_syntax::SourceFile;

    fn lock(sql: &str) -> Option<String> {
        let parse = SourceFile::parse(sql);
        let stmt = parse.tree().stmts().next().expect("a statement");
        lock_of(&stmt).map(|l| format!("{} on {}", l.mode, l.table))
    }

    /// One row per command of the documented table, and the ALTER TABLE sub-commands that
    /// take less than ACCESS EXCLUSIVE.
    #[test]
    fn statements_take_the_documented_lock() {
        for (sql, expected) in [
            ("CREATE INDEX i ON public.t (a)", "SHARE on public.t"),
            (
                "CREATE INDEX CONCURRENTLY i ON ONLY t (a)",
                "SHARE UPDATE EXCLUSIVE on t",
            ),
            ("DROP INDEX i", "ACCESS EXCLUSIVE on the table of index i"),
            (
                "DROP INDEX CONCURRENTLY i",
                "SHARE UPDATE EXCLUSIVE on the table of index i",
            ),
            ("ALTER TABLE t ADD COLUMN c int", "ACCESS EXCLUSIVE on t"),
            (
                "ALTER TABLE t ALTER COLUMN c TYPE bigint",
                "ACCESS EXCLUSIVE on t",
            ),
            (
                "ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES o (id)",
                "SHARE ROW EXCLUSIVE on t",
            ),
            (
                "ALTER TABLE t VALIDATE CONSTRAINT f",
                "SHARE UPDATE EXCLUSIVE on t",
            ),
            (
                "ALTER TABLE t ALTER COLUMN c SET STATISTICS 100",
                "SHARE UPDATE EXCLUSIVE on t",
            ),
            (
                "ALTER TABLE t VALIDATE CONSTRAINT f, ADD COLUMN d int",
                "ACCESS EXCLUSIVE on t",
            ),
            (
                "ALTER TABLE t DISABLE TRIGGER x",
                "SHARE ROW EXCLUSIVE on t",
            ),
            (
                "ALTER TABLE p DETACH PARTITION p1 CONCURRENTLY",
                "SHARE UPDATE EXCLUSIVE on p",
            ),
            ("ALTER TABLE p DETACH PARTITION p1", "ACCESS EXCLUSIVE on p"),
            (
                "ALTER TABLE p ATTACH PARTITION p1 FOR VALUES IN (1)",
                "SHARE UPDATE EXCLUSIVE on p",
            ),
            ("DROP TABLE a, b", "ACCESS EXCLUSIVE on a"),
            ("TRUNCATE t", "ACCESS EXCLUSIVE on t"),
            ("VACUUM t", "SHARE UPDATE EXCLUSIVE on t"),
            ("VACUUM FULL t", "ACCESS EXCLUSIVE on t"),
            ("VACUUM (FULL) t", "ACCESS EXCLUSIVE on t"),
            ("CLUSTER t USING i", "ACCESS EXCLUSIVE on t"),
            ("REFRESH MATERIALIZED VIEW mv", "ACCESS EXCLUSIVE on mv"),
            (
                "REFRESH MATERIALIZED VIEW CONCURRENTLY mv",
                "EXCLUSIVE on mv",
            ),
            ("REINDEX TABLE t", "SHARE on t"),
            (
                "REINDEX TABLE CONCURRENTLY t",
                "SHARE UPDATE EXCLUSIVE on t",
            ),
            (
                "CREATE TRIGGER x AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()",
                "SHARE ROW EXCLUSIVE on t",
            ),
            ("LOCK TABLE t IN SHARE MODE", "SHARE on t"),
            ("LOCK t", "ACCESS EXCLUSIVE on t"),
            ("UPDATE t SET a = 1", "ROW EXCLUSIVE on t"),
        ] {
            assert_eq!(lock(sql).as_deref(), Some(expected), "{sql}");
        }
        assert_eq!(lock("CREATE TYPE mood AS ENUM ('a')"), None);
    }
}
