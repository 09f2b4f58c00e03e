//! The tools' own queries in a transaction with `search_path` pinned, in one round trip.

use postgres::{Client, SimpleQueryMessage};

/// What pins `search_path` for the rest of a transaction: the tools' own queries must mean
/// the catalog's functions and operators, whatever a role or a migration put on its
/// `search_path` (a schema of its own ahead of `pg_catalog` could otherwise redefine `=`
/// and make a check see what it wants). `pg_temp` last, so that no temporary relation can
/// shadow a catalog one; functions and operators are never looked up in `pg_temp`.
pub const PIN_SEARCH_PATH: &str = "SET LOCAL search_path = pg_catalog, pg_temp";

/// `sql` in a transaction of its own with `search_path` pinned ([`PIN_SEARCH_PATH`]): still
/// one round trip. On error the caller must send `ROLLBACK`.
pub fn pinned(sql: &str) -> String {
    format!("BEGIN;\n{PIN_SEARCH_PATH};\n{sql};\nCOMMIT")
}

/// [`pinned`], in a read-only transaction: for the queries that only read. Never deferrable,
/// whatever the role's defaults (`default_transaction_isolation = serializable` with
/// `default_transaction_deferrable`): a deferrable one waits for a safe snapshot, that is
/// until every serializable writer running beside it ends.
pub fn pinned_read_only(sql: &str) -> String {
    format!("BEGIN READ ONLY, NOT DEFERRABLE;\n{PIN_SEARCH_PATH};\n{sql};\nCOMMIT")
}

/// Runs a [`pinned`] message, ending the failed transaction on error so that the session
/// stays usable.
pub fn run_pinned(
    client: &mut Client,
    message: &str,
) -> Result<Vec<SimpleQueryMessage>, postgres::Error> {
    client.simple_query(message).inspect_err(|_| {
        let _ = client.batch_execute("ROLLBACK");
    })
}
