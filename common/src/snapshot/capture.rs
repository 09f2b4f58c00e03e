//! Capturing the live schema: the catalog query ([`CAPTURE`], in `capture.sql`), its
//! canonical order, and the digest.
//!
//! One entry per object or aspect of an object: `(kind, parent, name, definition)`. `parent`
//! is the table (or domain) that a column, constraint, trigger, policy or rule belongs to, and
//! empty for everything else. Names are rendered with `search_path` pinned to
//! `pg_catalog, pg_temp`, so that everything outside `pg_catalog` is schema-qualified and no
//! name depends on the session. Entries are ordered by kind, parent and name in the "C"
//! collation (byte order: no locale decides), columns within their table by position.
//!
//! The digest is the lowercase hex SHA-256 of the JSON array of all entries
//! (`[[kind, parent, name, definition], ...]`) as `json_agg` writes it. The server computes
//! it, so the gate needs no entries on the wire to prove that nothing changed.

use serde_json::Value;

/// The catalog query: rows `(kind, parent, name, pos, definition)`, unordered.
pub const CAPTURE: &str = include_str!("capture.sql");

/// One object, or one aspect of an object (its owner, privileges, comment).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Entry {
    /// `table`, `column`, `index`, `function`, `owner`, `privileges`, `comment`, ...
    pub kind: String,
    /// The qualified name of the table or domain a member belongs to; empty otherwise.
    pub parent: String,
    /// The qualified name (a member's own name, quoted where needed). For `owner`,
    /// `privileges` and `comment`: the object's kind and qualified name, e.g.
    /// `table public.invoice`.
    pub name: String,
    /// The definition as the server renders it.
    pub definition: String,
}

impl Entry {
    /// The qualified name of the object: `public.invoice.note` for a column.
    pub fn object(&self) -> String {
        if self.parent.is_empty() {
            self.name.clone()
        } else {
            format!("{}.{}", self.parent, self.name)
        }
    }
}

/// The canonical order of the entries.
const ORDER: &str = r#"ORDER BY kind COLLATE "C", parent COLLATE "C", pos, name COLLATE "C""#;

/// The SQL expression (over the rows of [`CAPTURE`] named `e`) of the entries' JSON array,
/// in canonical order; NULL when there are none.
pub fn entries_json() -> String {
    format!(
        "pg_catalog.json_agg(pg_catalog.json_build_array(kind, parent, name, definition) {ORDER})"
    )
}

/// The SQL expression of the digest of a JSON array expression `json` (see the module doc).
pub fn digest_of(json: &str) -> String {
    format!(
        "pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(coalesce(({json})::text, '[]'), 'UTF8')), 'hex')"
    )
}

/// One row, one column: the live digest. Needs `search_path` pinned.
pub fn live_digest_query() -> String {
    format!(
        "SELECT {} AS digest FROM (\n{CAPTURE}\n) e",
        digest_of(&entries_json())
    )
}

/// One row, one column: the live entries as a JSON array. Needs `search_path` pinned.
pub fn live_entries_query() -> String {
    format!(
        "SELECT coalesce({}::text, '[]') AS entries FROM (\n{CAPTURE}\n) e",
        entries_json()
    )
}

/// Parses a JSON array of `[kind, parent, name, definition]` arrays (live or recorded).
pub fn parse_entries(text: &str) -> Result<Vec<Entry>, String> {
    let doc: Value =
        serde_json::from_str(text).map_err(|e| format!("the snapshot is not JSON: {e}"))?;
    let list = doc
        .as_array()
        .ok_or("the snapshot is not a JSON array")?
        .iter()
        .map(|item| {
            let field = |i: usize| {
                item.get(i)
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| format!("a snapshot entry is malformed: {item}"))
            };
            Ok(Entry {
                kind: field(0)?,
                parent: field(1)?,
                name: field(2)?,
                definition: field(3)?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_capture_names_every_catalog_object_with_its_schema() {
        // Every function and relation of the catalog is written pg_catalog.x, except the
        // handful of SQL keywords (coalesce, nullif) that have no schema.
        for word in [
            "pg_get_indexdef",
            "pg_get_functiondef",
            "format_type",
            "pg_class",
        ] {
            assert!(
                !CAPTURE.contains(&format!(" {word}(")) && !CAPTURE.contains(&format!(" {word} ")),
                "{word} without pg_catalog."
            );
        }
        assert!(live_digest_query().contains("pg_catalog.sha256"));
    }

    #[test]
    fn the_tools_own_tables_are_left_out() {
        for table in crate::tracking::TOOLS_TABLES.iter() {
            let named = format!("pg_catalog.to_regclass('{table}')");
            assert_eq!(CAPTURE.matches(&named).count(), 3, "{table}");
        }
    }

    #[test]
    fn entries_parse_and_name_their_object() {
        let entries = parse_entries(
            r#"[["column","public.invoice","note","text"],["table","","public.invoice",""]]"#,
        )
        .unwrap();
        assert_eq!(entries[0].object(), "public.invoice.note");
        assert_eq!(entries[1].object(), "public.invoice");
        assert!(parse_entries("{}").is_err());
        assert!(parse_entries(r#"[["a"]]"#).is_err());
    }
}
