//! What changed between the recorded snapshot and the live schema, each difference named.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::capture::Entry;

/// How an object differs from the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// Present now, not in the snapshot.
    Added,
    /// In the snapshot, gone now.
    Dropped,
    /// Present in both, rendered differently.
    Changed,
}

/// One object that drifted from the snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    /// The kind of object: `column`, `index`, `privileges`, ...
    pub kind: String,
    /// Its qualified name (`public.invoice.note`; for `owner`, `privileges` and `comment`
    /// the object they belong to, e.g. `table public.invoice`).
    pub object: String,
    /// Added, dropped or changed.
    pub change: Change,
    /// The recorded definition (dropped and changed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// The live definition (added and changed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<String>,
    /// For a member (column, constraint, trigger, policy, rule): its table's kind and name,
    /// and its own name, for the text.
    #[serde(skip)]
    member_of: Option<(String, String, String)>,
}

impl Drift {
    /// The recorded snapshot itself cannot be read (its row edited by hand?): that is drift
    /// too, since nothing can be proven against it.
    pub fn unreadable(why: &str) -> Drift {
        Drift {
            kind: "snapshot".into(),
            object: super::store::TABLE.into(),
            change: Change::Changed,
            expected: None,
            actual: Some(why.into()),
            member_of: None,
        }
    }
}

/// Definitions up to this long, on one line, are shown whole in the text.
const SHOWN: usize = 120;

fn short(definition: &str) -> Option<&str> {
    (definition.len() <= SHOWN && !definition.contains('\n')).then_some(definition)
}

/// A short definition in quotes; an empty one (a plain table) as `(nothing)`.
fn quoted(definition: &str) -> String {
    if definition.is_empty() {
        "(nothing)".to_string()
    } else {
        format!("{definition:?}")
    }
}

/// The first line where two definitions differ, both sides.
fn first_difference(expected: &str, actual: &str) -> String {
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let at = e
        .iter()
        .zip(&a)
        .position(|(x, y)| x != y)
        .unwrap_or(e.len().min(a.len()));
    let line = |lines: &[&str]| {
        lines
            .get(at)
            .map_or("(nothing)".to_string(), |l| l.trim().to_string())
    };
    format!(
        "line {} of the definition was {:?}, is {:?}",
        at + 1,
        line(&e),
        line(&a)
    )
}

impl Drift {
    /// What differs, named for a person: `table public.invoice: column note`,
    /// `index public.invoice_due`, `owner of table public.customer`.
    pub fn subject(&self) -> String {
        match &self.member_of {
            Some((parent_kind, parent, name)) => {
                format!("{parent_kind} {parent}: {} {name}", self.kind)
            }
            None => match self.kind.as_str() {
                "privileges" | "comment" => format!("{} on {}", self.kind, self.object),
                "owner" => format!("owner of {}", self.object),
                _ => format!("{} {}", self.kind, self.object),
            },
        }
    }
}

impl fmt::Display for Drift {
    /// `table public.invoice: column note (text) added outside migrations`,
    /// `index public.invoice_due: dropped outside migrations`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, " outside migrations")
    }
}

impl Drift {
    /// The difference without saying who made it (`... added`, `... dropped`, `... changed:
    /// was X, is Y`): for a snapshot older than the newest applied migration, where it may be
    /// that migration's own change as well as a hand change.
    pub fn since_snapshot(&self) -> impl fmt::Display + '_ {
        struct SinceSnapshot<'a>(&'a Drift);
        impl fmt::Display for SinceSnapshot<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.write(f, "")
            }
        }
        SinceSnapshot(self)
    }

    /// Writes the difference, `by` after its verb (" outside migrations", or nothing).
    fn write(&self, f: &mut fmt::Formatter<'_>, by: &str) -> fmt::Result {
        f.write_str(&self.subject())?;
        let column = self.kind == "column";
        match self.change {
            Change::Added => {
                if let Some(def) = self.actual.as_deref().and_then(short).filter(|_| column) {
                    write!(f, " ({def})")?;
                }
                write!(f, " added{by}")
            }
            Change::Dropped => write!(f, ": dropped{by}"),
            Change::Changed => {
                let expected = self.expected.as_deref().unwrap_or_default();
                let actual = self.actual.as_deref().unwrap_or_default();
                write!(f, ": changed{by}: ")?;
                match (short(expected), short(actual)) {
                    (Some(e), Some(a)) => write!(f, "was {}, is {}", quoted(e), quoted(a)),
                    _ => write!(f, "{}", first_difference(expected, actual)),
                }
            }
        }
    }
}

/// Kinds that belong to a table (or a domain) and are named within it.
fn parent_kind(entries: &[Entry], parent: &str) -> String {
    entries
        .iter()
        .find(|e| {
            e.parent.is_empty()
                && e.name == parent
                && !matches!(e.kind.as_str(), "owner" | "privileges" | "comment")
        })
        .map_or("table".to_string(), |e| e.kind.clone())
}

fn drift(
    change: Change,
    entry: &Entry,
    expected: Option<&Entry>,
    actual: Option<&Entry>,
    context: &[Entry],
) -> Drift {
    Drift {
        kind: entry.kind.clone(),
        object: entry.object(),
        change,
        expected: expected.map(|e| e.definition.clone()),
        actual: actual.map(|e| e.definition.clone()),
        member_of: (!entry.parent.is_empty()).then(|| {
            (
                parent_kind(context, &entry.parent),
                entry.parent.clone(),
                entry.name.clone(),
            )
        }),
    }
}

/// Every difference between the recorded entries and the live ones, in canonical order:
/// objects added, dropped or changed, and tables whose columns kept their names but not
/// their order.
pub fn diff(recorded: &[Entry], live: &[Entry]) -> Vec<Drift> {
    let key = |e: &Entry| (e.kind.clone(), e.parent.clone(), e.name.clone());
    let before: BTreeMap<_, &Entry> = recorded.iter().map(|e| (key(e), e)).collect();
    let after: BTreeMap<_, &Entry> = live.iter().map(|e| (key(e), e)).collect();
    let mut out = Vec::new();
    for (k, old) in &before {
        match after.get(k) {
            None => out.push(drift(Change::Dropped, old, Some(old), None, recorded)),
            Some(new) if new.definition != old.definition => {
                out.push(drift(Change::Changed, new, Some(old), Some(new), live))
            }
            Some(_) => {}
        }
    }
    for (k, new) in &after {
        if !before.contains_key(k) {
            out.push(drift(Change::Added, new, None, Some(new), live));
        }
    }
    out.extend(column_order(recorded, live, &before, &after));
    out
}

type Keyed<'a> = BTreeMap<(String, String, String), &'a Entry>;

/// Tables whose common columns appear in another order (a column dropped and added again
/// under its old name moves to the end).
fn column_order(recorded: &[Entry], live: &[Entry], before: &Keyed, after: &Keyed) -> Vec<Drift> {
    let columns = |entries: &[Entry], other: &Keyed| {
        let mut by_table: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for e in entries.iter().filter(|e| e.kind == "column") {
            if other.contains_key(&(e.kind.clone(), e.parent.clone(), e.name.clone())) {
                by_table
                    .entry(e.parent.clone())
                    .or_default()
                    .push(e.name.clone());
            }
        }
        by_table
    };
    let (old, new) = (columns(recorded, after), columns(live, before));
    old.into_iter()
        .filter_map(|(table, names)| {
            let now = new.get(&table)?;
            (*now != names).then(|| Drift {
                kind: parent_kind(live, &table),
                object: table,
                change: Change::Changed,
                expected: Some(format!("columns in the order {}", names.join(", "))),
                actual: Some(format!("columns in the order {}", now.join(", "))),
                member_of: None,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(kind: &str, parent: &str, name: &str, definition: &str) -> Entry {
        Entry {
            kind: kind.into(),
            parent: parent.into(),
            name: name.into(),
            definition: definition.into(),
        }
    }

    fn base() -> Vec<Entry> {
        vec![
            e("column", "public.invoice", "id", "bigint NOT NULL"),
            e("column", "public.invoice", "amount", "numeric"),
            e(
                "index",
                "",
                "public.invoice_due",
                "CREATE INDEX invoice_due ON public.invoice USING btree (due)",
            ),
            e("table", "", "public.invoice", ""),
        ]
    }

    #[test]
    fn the_same_entries_have_no_drift() {
        assert!(diff(&base(), &base()).is_empty());
    }

    #[test]
    fn an_added_column_is_named_with_its_table_and_type() {
        let mut live = base();
        live.insert(2, e("column", "public.invoice", "note", "text"));
        let found = diff(&base(), &live);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            found[0].to_string(),
            "table public.invoice: column note (text) added outside migrations"
        );
        assert_eq!(found[0].object, "public.invoice.note");
        assert_eq!(found[0].change, Change::Added);
    }

    #[test]
    fn a_dropped_index_is_named() {
        let live: Vec<Entry> = base().into_iter().filter(|x| x.kind != "index").collect();
        let found = diff(&base(), &live);
        assert_eq!(
            found[0].to_string(),
            "index public.invoice_due: dropped outside migrations"
        );
        let doc = serde_json::to_value(&found[0]).unwrap();
        assert_eq!(doc["change"], "dropped");
        assert!(doc["expected"].is_string());
    }

    #[test]
    fn a_changed_definition_shows_both_sides() {
        let mut live = base();
        live[1].definition = "text".into();
        let found = diff(&base(), &live);
        assert_eq!(found[0].expected.as_deref(), Some("numeric"));
        assert_eq!(found[0].actual.as_deref(), Some("text"));
        assert!(
            found[0]
                .to_string()
                .contains("was \"numeric\", is \"text\""),
            "{}",
            found[0]
        );
    }

    #[test]
    fn a_reordered_column_is_drift_even_with_equal_entries() {
        let mut live = base();
        live.swap(0, 1);
        let found = diff(&base(), &live);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].object, "public.invoice");
        assert!(found[0].actual.as_deref().unwrap().contains("amount, id"));
    }

    #[test]
    fn long_definitions_show_the_first_differing_line() {
        let old = vec![e("function", "", "public.f()", "BEGIN\n  RETURN 1;\nEND")];
        let new = vec![e("function", "", "public.f()", "BEGIN\n  RETURN 2;\nEND")];
        let text = diff(&old, &new)[0].to_string();
        assert!(text.contains("line 2"), "{text}");
        assert!(text.contains("RETURN 2;"), "{text}");
    }
}
