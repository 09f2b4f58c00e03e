//! A small reader for the rows of simple-protocol queries.
//!
//! The tools read their catalog queries with the simple protocol (one round trip, several
//! statements, no prepared statements in a fresh backend), which hands every value over as
//! text or NULL. [`Row`] reads a value by its column name and turns PostgreSQL's text forms
//! into Rust values, so that code neither counts column positions nor compares strings with
//! `"t"`. Name the columns of a query (`AS name`) when PostgreSQL's own name would be vague.

use std::sync::Arc;

use postgres::SimpleQueryMessage;

/// One row: the column names of its result and its values (text, or `None` for NULL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    columns: Arc<[String]>,
    values: Vec<Option<String>>,
}

impl Row {
    /// A row from names and values (for tests and fixtures).
    pub fn new(columns: &[&str], values: &[Option<&str>]) -> Self {
        Row {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            values: values.iter().map(|v| v.map(str::to_string)).collect(),
        }
    }

    /// A row of no result (a query that found nothing): every column reads as NULL.
    pub fn none() -> Self {
        Row::new(&[], &[])
    }

    /// The value of `column` as text; `None` for NULL. A column the query does not have is a
    /// bug in the query next to the reader: it panics in tests and reads as NULL otherwise.
    pub fn text(&self, column: &str) -> Option<&str> {
        let index = self.columns.iter().position(|c| c == column);
        debug_assert!(
            index.is_some() || self.columns.is_empty(),
            "no column {column:?} in {:?}",
            self.columns
        );
        index
            .and_then(|i| self.values.get(i))
            .and_then(Option::as_deref)
    }

    /// Whether the result has `column` (for readers shared by queries that differ in it).
    pub fn has(&self, column: &str) -> bool {
        self.columns.iter().any(|c| c == column)
    }

    /// The value of `column` as an owned string; NULL reads as the empty string.
    pub fn string(&self, column: &str) -> String {
        self.text(column).unwrap_or_default().to_string()
    }

    /// A `boolean` column: PostgreSQL's text form of true is `t`; false and NULL are false.
    pub fn bool(&self, column: &str) -> bool {
        self.text(column) == Some("t")
    }

    /// An integer column (`int2`, `int4`, `int8`, `oid`); `None` for NULL.
    pub fn i64(&self, column: &str) -> Option<i64> {
        self.text(column).and_then(|v| v.parse().ok())
    }
}

impl Default for Row {
    /// [`Row::none`].
    fn default() -> Self {
        Row::none()
    }
}

/// The rows of every result in `messages`, in order.
pub fn rows(messages: &[SimpleQueryMessage]) -> Vec<Row> {
    result_sets(messages).into_iter().flatten().collect()
}

/// The rows of each statement's result in a multi-statement simple query: one list per
/// statement that returns rows (a `SELECT` that finds nothing gives an empty list), none for
/// statements without rows (`BEGIN`, `SET`, `COMMIT`). A result starts at its row description,
/// which the server sends even for zero rows, so an empty result is not a missing one.
pub fn result_sets(messages: &[SimpleQueryMessage]) -> Vec<Vec<Row>> {
    let mut sets: Vec<Vec<Row>> = Vec::new();
    let mut columns: Option<Arc<[String]>> = None;
    for message in messages {
        match message {
            SimpleQueryMessage::RowDescription(description) => {
                columns = Some(description.iter().map(|c| c.name().to_string()).collect());
                sets.push(Vec::new());
            }
            SimpleQueryMessage::Row(row) => {
                let columns = columns
                    .get_or_insert_with(|| {
                        row.columns().iter().map(|c| c.name().to_string()).collect()
                    })
                    .clone();
                if sets.is_empty() {
                    sets.push(Vec::new());
                }
                let values = (0..row.len()).map(|i| row.get(i).map(str::to_string));
                if let Some(set) = sets.last_mut() {
                    set.push(Row {
                        columns,
                        values: values.collect(),
                    });
                }
            }
            _ => {}
        }
    }
    sets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_read_by_name_and_type() {
        let row = Row::new(
            &["exists", "n", "name", "gone"],
            &[Some("t"), Some("42"), Some("x"), None],
        );
        assert!(row.bool("exists"));
        assert_eq!(row.i64("n"), Some(42));
        assert_eq!(row.text("name"), Some("x"));
        assert_eq!(row.text("gone"), None);
        assert_eq!(row.string("gone"), "");
        assert!(!row.bool("gone"));
        assert_eq!(row.i64("gone"), None);
    }

    #[test]
    #[should_panic(expected = "no column")]
    fn a_column_the_query_lacks_is_a_bug() {
        Row::new(&["a"], &[Some("1")]).text("b");
    }
}
