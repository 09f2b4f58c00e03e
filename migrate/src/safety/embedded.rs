//! Statements run by `EXECUTE '<constant string>'` inside a `DO` block.
//!
//! Migrations wrap DDL in `DO` blocks to make it conditional (`IF NOT EXISTS (...) THEN
//! EXECUTE 'ALTER TABLE ...'`). squawk lints the `DO` statement but not the SQL inside the
//! string, so a rewrite or a full-table lock hides there. squawk-syntax parses the PL/pgSQL
//! body; each `EXECUTE` whose argument is one string literal (no concatenation, no
//! variables: the text that runs is known) is parsed and linted as SQL of its own, and its
//! findings are mapped back through the literal's escapes and the body's quoting to the line
//! and column in the file. One rule applies only here: a statement PostgreSQL refuses inside
//! a transaction block (`VACUUM`, `CREATE INDEX CONCURRENTLY`, ...) fails inside a `DO`
//! block whatever the file's mode (`cannot-run-in-a-function`).

use rowan::{TextRange, TextSize};
use squawk_syntax::ast::{self, AstNode};
use squawk_syntax::decoded_text::DecodedText;
use squawk_syntax::plpgsql::Plpgsql;
use squawk_syntax::{Parse, SourceFile};

use super::Raw;

/// The rule for a statement in an `EXECUTE` that PostgreSQL refuses inside a function.
pub const CANNOT_RUN_IN_A_FUNCTION: &str = "cannot-run-in-a-function";

/// The SQL of one `EXECUTE '<constant>'`, and how to find its bytes in the file.
#[derive(Debug)]
pub struct Embedded {
    /// The `DO` block's body.
    body: Plpgsql,
    /// The string's value; positions map into the body's text.
    literal: DecodedText,
}

impl Embedded {
    /// The SQL that the `EXECUTE` runs.
    pub fn sql(&self) -> &str {
        self.literal.text()
    }

    /// Byte offset in the file of byte `offset` of [`Embedded::sql`].
    pub fn file_offset(&self, offset: usize) -> usize {
        let in_body = self.literal.source_pos(TextSize::new(offset as u32));
        usize::from(self.body.source_range(TextRange::empty(in_body)).start())
    }

    /// The findings in the SQL, at their offsets in the file.
    pub(crate) fn lint(&self, transactional: bool) -> Vec<Raw> {
        let parse = SourceFile::parse(self.sql());
        let mut raw = super::lint_parsed(&parse, self.sql(), transactional);
        // What PostgreSQL refuses inside a transaction block it refuses inside a function
        // too ("cannot be executed from a function"), so also in a no-transaction file.
        let words = common::sql::words(self.sql());
        if let Some(command) = common::transaction_context::refused_in_transaction(&words) {
            raw.push(Raw {
                offset: 0,
                statement_offset: 0,
                rule: CANNOT_RUN_IN_A_FUNCTION.into(),
                message: format!(
                    "`{command}` cannot be executed from a function or a DO block (PostgreSQL error 25001), whatever the file's transaction mode"
                ),
                instead: Some("the statement on its own, outside the DO block, in a file whose first line is `-- dreichor:no-transaction`"),
                lock: None,
            });
        }
        raw.into_iter()
            .map(|mut raw| {
                raw.offset = self.file_offset(raw.offset);
                raw.statement_offset = self.file_offset(raw.statement_offset);
                raw
            })
            .collect()
    }
}

/// Every `EXECUTE '<constant>'` in the PL/pgSQL `DO` blocks of a file.
pub fn find(parse: &Parse<SourceFile>) -> Vec<Embedded> {
    let mut found = Vec::new();
    for stmt in parse.tree().stmts() {
        let ast::Stmt::Do(block) = stmt else {
            continue;
        };
        let Some(body) = block.plpgsql() else {
            continue;
        };
        for node in body.syntax().descendants() {
            let Some(execute) = ast::PlpgsqlDynExecuteStmt::cast(node) else {
                continue;
            };
            let Some(query) = execute.query() else {
                continue;
            };
            let query_text = query.syntax().to_string();
            let literal = query
                .syntax()
                .descendants()
                .find_map(ast::Literal::cast)
                .filter(|literal| literal.syntax().to_string().trim() == query_text.trim());
            if let Some(decoded) = literal.and_then(|l| l.decoded_value()) {
                found.push(Embedded {
                    body: body.clone(),
                    literal: decoded,
                });
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_constant_executes_and_maps_their_bytes_to_the_file() {
        let sql = "DO $$\nBEGIN\n  EXECUTE 'ALTER TABLE t ADD COLUMN note text';\n  EXECUTE 'SELECT ''a''' || 'b';\n  EXECUTE format('DROP TABLE %I', 't');\nEND $$;\n";
        let parse = SourceFile::parse(sql);
        let found = find(&parse);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].sql(), "ALTER TABLE t ADD COLUMN note text");
        let at = found[0].file_offset(found[0].sql().find("ADD").unwrap());
        assert_eq!(&sql[at..at + 3], "ADD");
    }

    #[test]
    fn doubled_quotes_in_a_single_quoted_body_map_back() {
        let sql = "DO '\nBEGIN\n  EXECUTE ''CREATE INDEX i ON t (a)'';\nEND';\n";
        let parse = SourceFile::parse(sql);
        let found = find(&parse);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].sql(), "CREATE INDEX i ON t (a)");
        let at = found[0].file_offset(found[0].sql().find("ON").unwrap());
        assert_eq!(&sql[at..at + 2], "ON");
    }
}
