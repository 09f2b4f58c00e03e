//! Prepared transactions (two-phase commit) in the database to reset.
//!
//! A transaction prepared with `PREPARE TRANSACTION` belongs to no session: terminating
//! sessions does not end it, it keeps every lock it took, and `DROP DATABASE` refuses to run
//! while it exists ("database is being used by prepared transactions"). Its locks also stall
//! the inventory (listing the tables runs into the lock timeout). Only `COMMIT PREPARED` or
//! `ROLLBACK PREPARED`, run in that database by its owner or a superuser, ends it, and which
//! of the two is a decision for whoever prepared it, not for `hard-reset`. So a reset refuses
//! before anything changes and names each one.

use postgres::Client;

use common::connect::literal;
use common::rows::rows;

/// One prepared transaction, from `pg_prepared_xacts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// Its global identifier, as given to `PREPARE TRANSACTION`.
    pub gid: String,
    /// The role that prepared it.
    pub owner: String,
    /// When it was prepared.
    pub prepared: String,
}

/// The prepared transactions of database `db`, oldest first.
pub(super) fn list(admin: &mut Client, db: &str) -> Result<Vec<Prepared>, postgres::Error> {
    let messages = admin.simple_query(&format!(
        "SELECT gid, owner::text AS owner, prepared::text AS prepared FROM pg_catalog.pg_prepared_xacts \
         WHERE database = {} ORDER BY prepared",
        literal(db)
    ))?;
    Ok(rows(&messages)
        .into_iter()
        .map(|row| Prepared {
            gid: row.string("gid"),
            owner: row.string("owner"),
            prepared: row.string("prepared"),
        })
        .collect())
}

/// Why the reset cannot go on while `found` exist, what state that leaves (`state`), and
/// the statements that end them.
pub(super) fn explain(db: &str, found: &[Prepared], state: &str) -> String {
    let mut text = format!(
        "{db} has {} prepared transaction{} (pg_prepared_xacts):",
        found.len(),
        if found.len() == 1 { "" } else { "s" },
    );
    for p in found {
        text.push_str(&format!(
            "\n    gid {}, prepared by {} at {}",
            literal(&p.gid),
            p.owner,
            p.prepared
        ));
    }
    text.push_str(&format!(
        "\n  a prepared transaction belongs to no session: terminating sessions does not end it, it keeps its locks, and DROP DATABASE cannot run while it exists; {state}\n  decide with whoever prepared it whether it commits; then, connected to {db} as its owner or a superuser, run"
    ));
    for p in found {
        text.push_str(&format!(
            "\n    ROLLBACK PREPARED {gid};   (or COMMIT PREPARED {gid};)",
            gid = literal(&p.gid)
        ));
    }
    text.push_str("\n  and run hard-reset again");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_each_transaction_and_the_statements_that_end_it() {
        let found = [Prepared {
            gid: "it's".into(),
            owner: "app".into(),
            prepared: "2026-11-30 06:00:00+00".into(),
        }];
        let text = explain("dreichor_dev", &found, "nothing was changed");
        assert!(
            text.starts_with("dreichor_dev has 1 prepared transaction (pg_prepared_xacts)"),
            "{text}"
        );
        assert!(text.contains("; nothing was changed\n"), "{text}");
        assert!(
            text.contains("gid 'it''s', prepared by app at 2026-11-30"),
            "{text}"
        );
        assert!(text.contains("ROLLBACK PREPARED 'it''s';"), "{text}");
        assert!(text.contains("COMMIT PREPARED 'it''s';"), "{text}");
    }
}
