//! Capturing the live schema: the catalog query (`capture_ctes.sql` with
//! `capture_relations.sql`, or with `capture_objects.sql` and `capture_others.sql`, or all
//! four), its canonical order, its JSON and the digest.
//!
//! One entry per object or aspect of an object: `(kind, parent, name, definition)`. `parent`
//! is the table (or domain) that a column, constraint, trigger, policy or rule belongs to, and
//! empty for everything else. Names are rendered with `search_path` pinned to
//! `pg_catalog, pg_temp`, so that everything outside `pg_catalog` is schema-qualified and no
//! name depends on the session. Entries are ordered by kind, parent and name in byte order
//! (PostgreSQL's "C" collation: no locale decides), columns within their table by position.
//!
//! The digest is the lowercase hex SHA-256 of the JSON array of all entries
//! (`[[kind, parent, name, definition], ...]`), written as PostgreSQL's
//! `json_agg(json_build_array(...))` writes it (`", "` between items, `escape_json`'s
//! escapes), so that a digest is the same whichever side computes it. The tools compute it:
//! the server only renders the rows. The query comes in two halves so that `migrate` can run
//! them at once on its two sessions ([`PARTS`]); the gate runs them as one query
//! ([`WHOLE`]).

use serde_json::Value;
use sha2::{Digest, Sha256};

use postgres::SimpleQueryMessage;

/// The `WITH` clause every part shares: the objects, filtered (extension members, the tools'
/// own tables and system schemas left out).
macro_rules! ctes {
    () => {
        include_str!("capture_ctes.sql")
    };
}

/// The two halves of the capture, each one query of rows `(kind, parent, name, pos,
/// definition)`, unordered: schemas, relations and their members; functions, types,
/// triggers, extensions, default privileges and every object's owner, privileges and
/// comment. About the same cost each. Each names only the objects it needs
/// (`capture_objects.sql` only in the second): the server parses and plans every one.
pub const PARTS: [&str; 2] = [
    concat!(ctes!(), include_str!("capture_relations.sql")),
    concat!(
        ctes!(),
        include_str!("capture_objects.sql"),
        include_str!("capture_others.sql")
    ),
];

/// The whole capture as one query.
pub const WHOLE: &str = concat!(
    ctes!(),
    include_str!("capture_objects.sql"),
    include_str!("capture_relations.sql"),
    "UNION ALL\n",
    include_str!("capture_others.sql")
);

/// The settings every rendering depends on, pinned for the capture's transaction (`SET
/// LOCAL`): a constant in a default, a check or a view is rendered by its type's output
/// function, which follows DateStyle, IntervalStyle, TimeZone, extra_float_digits,
/// bytea_output, xmlbinary and lc_monetary, and every name follows quote_all_identifiers. The
/// run's session has whatever its role and database set (`ALTER ROLE ... SET`), the gate's may
/// be another role's: without this, the same schema would render differently in each.
///
/// Also `jit = off`, which changes no rendering but the capture's cost: the query is mostly
/// calls of the server's deparse functions, which JIT compilation cannot speed up, and on a
/// large schema its estimated cost passes `jit_above_cost` (100 000 by default; about 1 100
/// tables of the bench's kind). Measured on the bench's 500-table schema, forced: 0.17 s
/// without, 0.66 s with JIT, 6.9 s with inlining and optimization (`jit_*_above_cost` 500 000).
pub const PIN_RENDERING: &str = "SET LOCAL DateStyle = 'ISO, MDY'; SET LOCAL IntervalStyle = 'postgres'; \
SET LOCAL TimeZone = 'UTC'; SET LOCAL extra_float_digits = 1; SET LOCAL bytea_output = 'hex'; \
SET LOCAL xmlbinary = 'base64'; SET LOCAL lc_monetary = 'C'; SET LOCAL quote_all_identifiers = off; \
SET LOCAL standard_conforming_strings = on; SET LOCAL jit = off";

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

/// The entries in the capture rows of `messages` (a simple query's answer; results without
/// the capture's `kind` column, like the fingerprint's, are skipped), unordered, each with its
/// position (a column's; 0 for everything else). Read straight from the messages: a snapshot
/// of a large schema is a megabyte of text, copied once.
pub fn unordered(messages: &[SimpleQueryMessage]) -> Vec<(i64, Entry)> {
    let text = |row: &postgres::SimpleQueryRow, column: &str| {
        row.try_get(column)
            .ok()
            .flatten()
            .unwrap_or_default()
            .to_string()
    };
    messages
        .iter()
        .filter_map(|message| match message {
            SimpleQueryMessage::Row(row) if row.columns().iter().any(|c| c.name() == "kind") => {
                Some((
                    text(row, "pos").parse().unwrap_or(0),
                    Entry {
                        kind: text(row, "kind"),
                        parent: text(row, "parent"),
                        name: text(row, "name"),
                        definition: text(row, "definition"),
                    },
                ))
            }
            _ => None,
        })
        .collect()
}

/// Entries in the canonical order: kind, parent, position, name, each text compared byte by
/// byte as the "C" collation does. The definition breaks ties, which the catalog's own unique
/// names should never leave.
pub fn ordered(mut keyed: Vec<(i64, Entry)>) -> Vec<Entry> {
    keyed.sort_unstable_by(|(pa, a), (pb, b)| {
        (
            a.kind.as_bytes(),
            a.parent.as_bytes(),
            pa,
            a.name.as_bytes(),
            a.definition.as_bytes(),
        )
            .cmp(&(
                b.kind.as_bytes(),
                b.parent.as_bytes(),
                pb,
                b.name.as_bytes(),
                b.definition.as_bytes(),
            ))
    });
    keyed.into_iter().map(|(_, entry)| entry).collect()
}

/// The entries as the JSON array that is stored and hashed: `[["kind", "parent", "name",
/// "definition"], ...]`, byte for byte what PostgreSQL's `json_agg(json_build_array(kind,
/// parent, name, definition))` writes (items separated by `", "`; strings escaped as its
/// `escape_json` does, which is what `serde_json` does: `\"`, `\\`, `\b`, `\f`, `\n`,
/// `\r`, `\t`, other control characters as `\u00xx`, everything else as is).
pub fn to_json(entries: &[Entry]) -> String {
    let size: usize = entries
        .iter()
        .map(|e| e.kind.len() + e.parent.len() + e.name.len() + e.definition.len() + 20)
        .sum();
    let mut out = Vec::with_capacity(size + 2);
    out.push(b'[');
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        out.push(b'[');
        for (j, field) in [&e.kind, &e.parent, &e.name, &e.definition]
            .into_iter()
            .enumerate()
        {
            if j > 0 {
                out.extend_from_slice(b", ");
            }
            // Writing a string into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut out, field);
        }
        out.push(b']');
    }
    out.push(b']');
    String::from_utf8(out).unwrap_or_default()
}

/// The digest of a JSON array of entries ([`to_json`]): lowercase hex SHA-256 of its UTF-8
/// bytes.
pub fn digest(json: &str) -> String {
    crate::migrations::hex(&Sha256::digest(json.as_bytes()))
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
                !WHOLE.contains(&format!(" {word}(")) && !WHOLE.contains(&format!(" {word} ")),
                "{word} without pg_catalog."
            );
        }
    }

    #[test]
    fn the_tools_own_tables_are_left_out() {
        for table in crate::tracking::TOOLS_TABLES.iter() {
            let named = format!("pg_catalog.to_regclass('{table}')");
            for query in PARTS.iter().chain([&WHOLE]) {
                assert_eq!(query.matches(&named).count(), 1, "{table}");
            }
        }
    }

    fn row(kind: &str, parent: &str, name: &str, pos: i64, definition: &str) -> (i64, Entry) {
        (
            pos,
            Entry {
                kind: kind.into(),
                parent: parent.into(),
                name: name.into(),
                definition: definition.into(),
            },
        )
    }

    #[test]
    fn entries_are_ordered_as_the_c_collation_orders_text_and_columns_by_position() {
        let rows = vec![
            row("table", "", "public.b", 0, ""),
            row("column", "public.t", "z", 10, "text"),
            row("column", "public.t", "a", 2, "int"),
            row("table", "", "public.B", 0, ""),
            row("table", "", "public.é", 0, ""),
            row("column", "public.T", "x", 1, "int"),
        ];
        let names: Vec<String> = ordered(rows).iter().map(Entry::object).collect();
        assert_eq!(
            names,
            [
                "public.T.x",
                "public.t.a",
                "public.t.z",
                "public.B",
                "public.b",
                "public.é"
            ]
        );
    }

    #[test]
    fn the_json_is_written_as_postgresql_writes_json_agg_of_json_build_array() {
        // escape_json: quote, backslash and the five short escapes; other control characters
        // as \u00xx in lowercase; DEL, '/' and non-ASCII as they are.
        let entries = ordered(vec![
            row(
                "comment",
                "",
                "table public.\"q\"",
                0,
                "a \\ b\n\t\u{1}\u{1f}\u{8}\u{c}\r é / \u{7f}",
            ),
            row("schema", "", "public", 0, ""),
        ]);
        let expected = "[[\"comment\", \"\", \"table public.\\\"q\\\"\", \"a \\\\ b\\n\\t\\u0001\\u001f\\b\\f\\r é / \u{7f}\"], [\"schema\", \"\", \"public\", \"\"]]";
        assert_eq!(to_json(&entries), expected);
        assert_eq!(to_json(&[]), "[]");
        // sha256 of the UTF-8 bytes, lowercase hex.
        assert_eq!(
            digest("[]"),
            "4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945"
        );
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
