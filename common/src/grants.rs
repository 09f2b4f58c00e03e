//! The tools' own tables ([`crate::tracking::TOOLS_TABLES`]) stay read-only for every role
//! but their owner.
//!
//! Provisioning lets the runtime role read and write every table the migrations create,
//! through `ALTER DEFAULT PRIVILEGES FOR ROLE <owner>` (SPEC.md, "Provisioning"). Those
//! default privileges apply just as well to the tools' tables when `migrate` creates them
//! (on the first run, and after every `hard-reset`), and a runtime that can insert tracking
//! rows can make the gate pass on a schema that was never migrated. So after creating or
//! upgrading them, `migrate` takes every privilege but SELECT on them away from every role
//! other than the table's owner, whichever role that is: no role name is needed, and a grant
//! made by hand is taken away as well. The check is one catalogue query per run; the REVOKE
//! statements run only when it finds something.
//!
//! `REVOKE` by the owner removes what the owner granted (default privileges are granted by
//! it); a grant made by another grantor (a superuser's `GRANTED BY`) stays, and is found and
//! said again on every run.

use postgres::Client;

use crate::connect::{literal, pinned, pinned_read_only, run_pinned};
use crate::rows::rows;
use crate::tracking::TOOLS_TABLES;

/// The REVOKE statements that would take away every privilege but SELECT that a role other
/// than the owner has on one of the tools' tables, one row each, built by the server with
/// `format('%I')` so that names are quoted as PostgreSQL quotes them.
pub fn excess_query() -> String {
    let tables = TOOLS_TABLES
        .iter()
        .map(|t| format!("pg_catalog.to_regclass({})", literal(t)))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT pg_catalog.format('REVOKE %s ON TABLE %I.%I FROM %s', a.privilege_type, n.nspname, c.relname, \
                CASE WHEN a.grantee = 0 THEN 'PUBLIC' \
                     ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) END) AS revoke \
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace, \
              pg_catalog.aclexplode(c.relacl) a \
         WHERE c.oid::pg_catalog.regclass = ANY (ARRAY[{tables}]::pg_catalog.regclass[]) \
           AND a.grantee <> c.relowner AND a.privilege_type <> 'SELECT' \
         ORDER BY 1"
    )
}

/// Takes away every privilege but SELECT that a role other than the owner has on the tools'
/// tables; returns the statements it ran (none when there was nothing to take away), for the
/// operator to read.
pub fn keep_tools_tables_read_only(client: &mut Client) -> Result<Vec<String>, postgres::Error> {
    let messages = run_pinned(client, &pinned_read_only(&excess_query()))?;
    let revokes: Vec<String> = rows(&messages)
        .into_iter()
        .filter_map(|row| row.text("revoke").map(str::to_string))
        .collect();
    if !revokes.is_empty() {
        run_pinned(client, &pinned(&revokes.join(";\n")))?;
    }
    Ok(revokes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_covers_every_tools_table_and_spares_select_and_the_owner() {
        let sql = excess_query();
        for table in TOOLS_TABLES {
            assert!(sql.contains(&literal(table)), "{sql}");
        }
        assert!(sql.contains("a.privilege_type <> 'SELECT'"));
        assert!(sql.contains("a.grantee <> c.relowner"));
    }

    #[test]
    fn provisioning_keeps_the_same_list_of_tools_tables() {
        let script = include_str!("../../infra/db/provision.sh");
        for table in TOOLS_TABLES {
            assert!(
                script.contains(&format!("'{table}'")),
                "infra/db/provision.sh must list {table} in TOOLS_TABLES"
            );
        }
    }
}
