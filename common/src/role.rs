//! Which of an environment's two roles a session is: the migration owner, which may change
//! the schema, or a runtime role, which may only read and write rows.
//!
//! `infra/db/provision.sh` creates both per environment (SPEC.md, "Provisioning"): the owner
//! `dreichor_<env>` owns the database and everything the migrations create; the runtime role
//! `dreichor_<env>_runtime` owns nothing and has CREATE nowhere. `migrate` and `hard-reset`
//! need the owner: with the runtime role every migration would fail on its first DDL, and
//! `hard-reset` would drop a database it could not migrate again. So they refuse it before
//! anything is touched (exit 2). `schema-check` and [`crate::check`] only read and accept
//! either role.
//!
//! # The rule
//!
//! A role is recognised by what PostgreSQL lets it do, not by its name (a name proves
//! nothing, and an operator may have named roles otherwise): a session **cannot change the
//! schema** when its role has the privileges of neither the database's owner nor any role
//! with CREATE on the database or on a schema in it. That is exactly a runtime role as
//! provisioned, and it stays true in every state an operator can reach: a role that was
//! granted CREATE on a schema by hand, or that is a member of the owner, is let through (the
//! migrations may well succeed with it), and the message states only what was checked.

use postgres::Client;

use crate::config::{DbUrl, Env};
use crate::connect::{pinned_read_only, run_pinned};
use crate::error::Error;
use crate::rows::{rows, Row};

/// One round trip: the current user, the database's owner, whether the current user has the
/// owner's privileges (`USAGE`: membership that inherits), CREATE on the database, and CREATE
/// on any schema other than the system ones. `pinned_read_only` pins `search_path`.
const QUERY: &str =
    "SELECT current_user::text AS username, pg_catalog.pg_get_userbyid(d.datdba)::text AS owner, \
     pg_catalog.pg_has_role(current_user, d.datdba, 'USAGE') AS owns, \
     pg_catalog.has_database_privilege(d.oid, 'CREATE') AS create_on_database, \
     EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n \
             WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema' \
               AND pg_catalog.has_schema_privilege(n.oid, 'CREATE')) AS create_in_a_schema \
     FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()";

/// What a session's role may do to the schema, as read by [`read`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rights {
    /// `current_user`.
    pub user: String,
    /// The database's owner.
    pub owner: String,
    /// The role has the owner's privileges (it is the owner, or an inheriting member).
    pub owns: bool,
    /// CREATE on the database (new schemas).
    pub create_on_database: bool,
    /// CREATE on at least one schema (new tables, functions, ...).
    pub create_in_a_schema: bool,
}

impl Rights {
    /// The rights from a row of [`QUERY`].
    pub fn from_row(row: &Row) -> Rights {
        Rights {
            user: row.string("username"),
            owner: row.string("owner"),
            owns: row.bool("owns"),
            create_on_database: row.bool("create_on_database"),
            create_in_a_schema: row.bool("create_in_a_schema"),
        }
    }

    /// Whether the role can change the schema at all (see the module's rule).
    pub fn can_change_schema(&self) -> bool {
        self.owns || self.create_on_database || self.create_in_a_schema
    }
}

/// Reads the [`Rights`] of the session's role (a read-only transaction of its own).
pub fn read(client: &mut Client) -> Result<Rights, postgres::Error> {
    let messages = run_pinned(client, &pinned_read_only(QUERY))?;
    Ok(Rights::from_row(
        &rows(&messages).into_iter().next().unwrap_or_default(),
    ))
}

/// Refuses (exit 2) a session whose role cannot change the schema: `tool` (`migrate`,
/// `hard-reset`) needs the owner's credentials, and the message says which file holds them.
pub fn require_schema_owner(
    client: &mut Client,
    url: &DbUrl,
    env: Env,
    tool: &str,
) -> Result<(), Error> {
    let rights = read(client).map_err(|e| {
        crate::connect::failed(url, "reading the role's privileges on the database", &e)
    })?;
    check(&rights, url, env, tool)
}

/// The rule of [`require_schema_owner`] on rights already read.
pub fn check(rights: &Rights, url: &DbUrl, env: Env, tool: &str) -> Result<(), Error> {
    if rights.can_change_schema() {
        return Ok(());
    }
    let db = env.database();
    let why = if tool == "hard-reset" {
        "hard-reset never drops a database it could not migrate again"
    } else {
        "every migration would fail on its first statement that changes the schema"
    };
    Err(Error::Refused(format!(
        "the role {user:?} in DATABASE_URL ({url}) cannot change the schema of {db}: it does not own the database (the owner is {owner:?}) and has CREATE neither on the database nor on any schema in it, like the runtime role {db}_runtime that infra/db/provision.sh creates. {tool} needs the owner's credentials ({why}): load /etc/dreichor/{env}.env (or {env}.env in the directory given to provision.sh --credentials-dir), e.g. `set -a; . /etc/dreichor/{env}.env; set +a`; {env}.runtime.env is for the runtime and the deploy agent. Nothing was touched",
        user = rights.user,
        url = url.redacted(),
        owner = rights.owner,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url() -> DbUrl {
        DbUrl::for_env(
            "postgres://dreichor_dev_runtime:Sentinel-PW@localhost/dreichor_dev",
            Env::Dev,
        )
        .unwrap()
    }

    fn rights(owns: bool, db: bool, schema: bool) -> Rights {
        Rights {
            user: "dreichor_dev_runtime".into(),
            owner: "dreichor_dev".into(),
            owns,
            create_on_database: db,
            create_in_a_schema: schema,
        }
    }

    #[test]
    fn the_owner_and_roles_that_may_create_pass() {
        for (owns, db, schema) in [
            (true, true, true),
            (true, false, false),
            (false, true, false),
            (false, false, true),
        ] {
            check(&rights(owns, db, schema), &url(), Env::Dev, "migrate").unwrap();
        }
    }

    #[test]
    fn a_role_that_can_create_nothing_is_refused_naming_the_owners_file() {
        let err = check(&rights(false, false, false), &url(), Env::Dev, "hard-reset").unwrap_err();
        let text = err.to_string();
        assert_eq!(err.exit_code(), crate::ExitCode::Invalid);
        assert!(text.contains("/etc/dreichor/dev.env"), "{text}");
        assert!(text.contains("the owner is \"dreichor_dev\""), "{text}");
        assert!(text.contains("never drops a database"), "{text}");
        assert!(!text.contains("Sentinel-PW"), "{text}");
    }

    #[test]
    fn rights_are_read_from_the_row() {
        let columns = [
            "username",
            "owner",
            "owns",
            "create_on_database",
            "create_in_a_schema",
        ];
        let r = Rights::from_row(&Row::new(
            &columns,
            &[Some("u"), Some("o"), Some("f"), Some("f"), Some("t")],
        ));
        assert_eq!(
            r,
            Rights {
                user: "u".into(),
                owner: "o".into(),
                owns: false,
                create_on_database: false,
                create_in_a_schema: true,
            }
        );
        assert!(r.can_change_schema());
        assert!(!Rights::from_row(&Row::none()).can_change_schema());
    }
}
