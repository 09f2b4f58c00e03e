//! What provisioning set inside the database, which `DROP DATABASE` loses and a `CREATE
//! DATABASE` from `template0` does not bring back: the owner and privileges of schema
//! `public`, and the default privileges that apply in every schema (`ALTER DEFAULT PRIVILEGES
//! FOR ROLE r` without `IN SCHEMA`).
//!
//! They are what keeps an environment's two roles apart (SPEC.md, "Provisioning"): the
//! runtime role gets USAGE on `public` and, through the owner's default privileges, read and
//! write access to every table the migrations create, and CREATE nowhere. A reset that lost
//! them would leave a runtime role that can no longer read the tables the re-migration
//! creates. So they are recorded just before the drop, restored right after the create (one
//! transaction, before any migration runs, so that the migrations' new objects get their
//! privileges as on the first run) and read again and compared, like the database's other
//! [`Recorded`](super::Recorded) properties. Default privileges of a single schema are not
//! recorded: the schema is gone with the database, and the migration that creates it again
//! sets them again.
//!
//! The statements run in an admin session connected to the database itself (these catalogues
//! are per database): a superuser, or a member of the owner with CREATEDB, which may act for
//! the owner. Identifiers are quoted, grants are replayed in their recorded order by their
//! recorded grantor, so that the ACLs come back identical.

use std::fmt;

use postgres::Client;

use crate::reset::properties::grants_from;
use crate::reset::recreate::{grant_clause, replay_acl};
use crate::reset::{quote_ident, Grant, Request, APPLICATION, CONNECT_TIMEOUT};
use common::connect;
use common::error::Error;
use common::rows::{result_sets, rows, Row};

/// Schema `public`'s owner and privileges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaPrivileges {
    /// The schema's owner (`pg_database_owner` from PostgreSQL 15).
    pub owner: String,
    /// `nspacl` as text; `None` is the default privileges.
    pub acl_text: Option<String>,
    /// `nspacl`, item by item.
    pub acl: Vec<Grant>,
}

/// One entry of `pg_default_acl` that applies in every schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultPrivileges {
    /// The role whose new objects get these privileges (`FOR ROLE`).
    pub role: String,
    /// `defaclobjtype`: `r` tables, `S` sequences, `f` functions, `T` types, `n` schemas,
    /// `L` large objects.
    pub object_type: String,
    /// `defaclacl` as text.
    pub acl_text: String,
    /// `defaclacl`, item by item.
    pub acl: Vec<Grant>,
}

/// What [`record`] reads inside the database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inside {
    /// Schema `public`, when the database has one.
    pub public: Option<SchemaPrivileges>,
    /// The default privileges for every schema, by role and object type.
    pub defaults: Vec<DefaultPrivileges>,
}

/// `ALTER DEFAULT PRIVILEGES ... ON <kind>` for a `defaclobjtype`.
fn object_kind(object_type: &str) -> Option<&'static str> {
    Some(match object_type {
        "r" => "TABLES",
        "S" => "SEQUENCES",
        "f" => "FUNCTIONS",
        "T" => "TYPES",
        "n" => "SCHEMAS",
        "L" => "LARGE OBJECTS",
        _ => return None,
    })
}

/// The three statements of one round trip: schema `public`, its ACL items in order, the
/// default-privilege entries with their items in order (an entry with every privilege
/// revoked has no items, hence the outer join).
const RECORD_QUERY: &str = "SELECT pg_catalog.pg_get_userbyid(n.nspowner) AS owner, \
            n.nspacl::text AS acl \
     FROM pg_catalog.pg_namespace n WHERE n.nspname = 'public';\n\
     SELECT pg_catalog.pg_get_userbyid(a.grantor) AS grantor, \
            CASE WHEN a.grantee = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(a.grantee) END AS grantee, \
            a.privilege_type AS privilege, a.is_grantable AS grantable \
     FROM pg_catalog.pg_namespace n, pg_catalog.aclexplode(n.nspacl) WITH ORDINALITY AS a \
     WHERE n.nspname = 'public' ORDER BY a.ordinality;\n\
     SELECT pg_catalog.pg_get_userbyid(d.defaclrole) AS role, d.defaclobjtype::text AS object_type, \
            d.defaclacl::text AS acl, \
            pg_catalog.pg_get_userbyid(a.grantor) AS grantor, \
            CASE WHEN a.grantee = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(a.grantee) END AS grantee, \
            a.privilege_type AS privilege, a.is_grantable AS grantable \
     FROM pg_catalog.pg_default_acl d \
          LEFT JOIN LATERAL pg_catalog.aclexplode(d.defaclacl) WITH ORDINALITY AS a ON true \
     WHERE d.defaclnamespace = 0 \
     ORDER BY 1, 2, a.ordinality";

/// An admin session connected to the environment's database itself (these catalogues are
/// per database), its `search_path` pinned to the catalogue.
pub(super) fn connect(request: &Request) -> Result<Client, Error> {
    let db = request.database().to_string();
    let mut client = connect::connect_with(&request.admin, APPLICATION, CONNECT_TIMEOUT, |c| {
        c.dbname(&db);
    })?;
    client
        .batch_execute("SET search_path = pg_catalog, pg_temp")
        .map_err(|e| connect::failed(&request.admin, "setting up the admin session", &e))?;
    Ok(client)
}

/// Reads [`Inside`] in one round trip, in a session connected to the database.
pub(super) fn record(client: &mut Client) -> Result<Inside, postgres::Error> {
    let messages = client.simple_query(RECORD_QUERY)?;
    Ok(inside_from(&result_sets(&messages)))
}

/// Builds an [`Inside`] from the three result sets of [`RECORD_QUERY`]. The rows of the third
/// carry their `aclexplode` item in the columns [`grants_from`] reads; an entry with every
/// privilege revoked has one row whose item is NULL.
fn inside_from(sets: &[Vec<Row>]) -> Inside {
    let set = |i: usize| sets.get(i).map(Vec::as_slice).unwrap_or_default();
    let public = set(0).first().map(|row| SchemaPrivileges {
        owner: row.string("owner"),
        acl_text: row.text("acl").map(str::to_string),
        acl: grants_from(set(1)),
    });
    let mut defaults: Vec<DefaultPrivileges> = Vec::new();
    let mut items: Vec<Row> = Vec::new();
    for row in set(2) {
        let (role, object_type) = (row.string("role"), row.string("object_type"));
        let same = defaults
            .last()
            .is_some_and(|d| d.role == role && d.object_type == object_type);
        if !same {
            if let Some(last) = defaults.last_mut() {
                last.acl = grants_from(&items);
            }
            items.clear();
            defaults.push(DefaultPrivileges {
                role,
                object_type,
                acl_text: row.string("acl"),
                acl: Vec::new(),
            });
        }
        if row.text("privilege").is_some() {
            items.push(row.clone());
        }
    }
    if let Some(last) = defaults.last_mut() {
        last.acl = grants_from(&items);
    }
    Inside { public, defaults }
}

impl Inside {
    /// The statements that turn `now` (the new database, as read by [`record`]; an empty
    /// [`Inside`] when it could not be read) into `self`: nothing for what is already the
    /// same. For one transaction.
    pub fn restore_statements(&self, now: &Inside) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(want) = &self.public {
            let have = now.public.as_ref();
            if have.map(|h| &h.owner) != Some(&want.owner) {
                out.push(format!(
                    "ALTER SCHEMA public OWNER TO {}",
                    quote_ident(&want.owner)
                ));
            }
            if have.map(|h| &h.acl_text) != Some(&want.acl_text) && want.acl_text.is_some() {
                out.extend(replay_acl("SCHEMA public", &want.owner, &want.acl));
            }
        }
        for want in &self.defaults {
            if now.defaults.contains(want) {
                continue;
            }
            let Some(kind) = object_kind(&want.object_type) else {
                continue;
            };
            let alter = format!(
                "ALTER DEFAULT PRIVILEGES FOR ROLE {}",
                quote_ident(&want.role)
            );
            out.push(format!("{alter} REVOKE ALL ON {kind} FROM PUBLIC"));
            out.push(format!(
                "{alter} REVOKE ALL ON {kind} FROM {}",
                quote_ident(&want.role)
            ));
            for grant in &want.acl {
                out.push(format!("{alter} {}", grant_clause(grant, kind)));
            }
        }
        out
    }

    /// How `after` differs from `self`, if it does.
    pub fn differences(&self, after: &Inside) -> Option<String> {
        let mut out = Vec::new();
        let show = |v: &dyn fmt::Debug| format!("{v:?}");
        let owner = |i: &Inside| i.public.as_ref().map(|p| p.owner.clone());
        let acl = |i: &Inside| i.public.as_ref().and_then(|p| p.acl_text.clone());
        if owner(self) != owner(after) {
            out.push(format!(
                "schema public's owner was {}, is {}",
                show(&owner(self)),
                show(&owner(after))
            ));
        }
        if acl(self) != acl(after) {
            out.push(format!(
                "schema public's privileges were {}, are {}",
                show(&acl(self)),
                show(&acl(after))
            ));
        }
        let defaults = |i: &Inside| {
            i.defaults
                .iter()
                .map(|d| format!("{} {}: {}", d.role, d.object_type, d.acl_text))
                .collect::<Vec<_>>()
        };
        if defaults(self) != defaults(after) {
            out.push(format!(
                "the default privileges were {:?}, are {:?}",
                defaults(self),
                defaults(after)
            ));
        }
        (!out.is_empty()).then(|| out.join("; "))
    }

    /// One line for the operator.
    pub fn describe(&self) -> String {
        let public = self
            .public
            .as_ref()
            .map_or("no schema public".to_string(), |p| {
                format!(
                    "schema public owned by {}, privileges {}",
                    p.owner,
                    p.acl_text.as_deref().unwrap_or("default")
                )
            });
        let roles: Vec<&str> = {
            let mut roles: Vec<&str> = self.defaults.iter().map(|d| d.role.as_str()).collect();
            roles.dedup();
            roles
        };
        if roles.is_empty() {
            format!("{public}, no default privileges")
        } else {
            format!(
                "{public}, default privileges of {} ({} entries)",
                roles.join(", "),
                self.defaults.len()
            )
        }
    }
}

/// The roles the restore acts as: the owner of schema `public` and the grantors of its
/// privileges, and each role whose default privileges are replayed (`FOR ROLE`).
fn roles_acted_for(recorded: &Inside) -> Vec<String> {
    let mut roles: Vec<String> = Vec::new();
    if let Some(public) = &recorded.public {
        if public.acl_text.is_some() {
            roles.push(public.owner.clone());
            roles.extend(public.acl.iter().map(|g| g.grantor.clone()));
        }
    }
    roles.extend(recorded.defaults.iter().map(|d| d.role.clone()));
    roles.sort();
    roles.dedup();
    roles
}

/// Before the drop: the roles of [`roles_acted_for`] that the admin session may not act for
/// (it is neither a superuser nor a member of them), so that a reset never drops a database
/// whose privileges it could not restore. Empty when it may act for all.
pub(super) fn roles_not_restorable(
    client: &mut Client,
    recorded: &Inside,
) -> Result<Vec<String>, postgres::Error> {
    let roles = roles_acted_for(recorded);
    if roles.is_empty() {
        return Ok(Vec::new());
    }
    let list = roles
        .iter()
        .map(|r| common::connect::literal(r))
        .collect::<Vec<_>>()
        .join(", ");
    let messages = client.simple_query(&format!(
        "SELECT r AS role FROM pg_catalog.unnest(ARRAY[{list}]::text[]) AS r \
         WHERE NOT pg_catalog.pg_has_role(current_user, r::name, 'MEMBER') ORDER BY 1"
    ))?;
    Ok(rows(&messages)
        .iter()
        .filter_map(|row| row.text("role").map(str::to_string))
        .collect())
}

/// The statements an operator runs by hand when the new database could not even be read:
/// everything recorded, after a comment naming the database to run them in.
pub(super) fn by_hand(db: &str, recorded: &Inside) -> Vec<String> {
    let mut out = vec![format!("-- connected to the database {db} (psql -d {db})")];
    out.extend(recorded.restore_statements(&Inside::default()));
    out
}

/// What [`restore`] did: the statements it ran, and how the database still differs from the
/// record, if it does.
pub(super) type Restored = (Vec<String>, Option<String>);

/// Restores `recorded` in the new database (one transaction), then reads it again and says
/// how it differs, if it does. `Err` carries the error and the statements, for the operator
/// to run by hand; both lists start with a comment naming the database to run them in.
pub(super) fn restore(
    client: &mut Client,
    db: &str,
    recorded: &Inside,
) -> Result<Restored, (String, Vec<String>)> {
    let now =
        record(client).map_err(|e| (common::error::describe_pg(&e), by_hand(db, recorded)))?;
    let statements = recorded.restore_statements(&now);
    let shown = || {
        let mut shown = vec![format!("-- connected to the database {db} (psql -d {db})")];
        shown.extend(statements.iter().cloned());
        shown
    };
    if !statements.is_empty() {
        let batch = format!("BEGIN;\n{};\nCOMMIT", statements.join(";\n"));
        if let Err(e) = client.batch_execute(&batch) {
            let _ = client.batch_execute("ROLLBACK");
            return Err((common::error::describe_pg(&e), shown()));
        }
    }
    let after = record(client).map_err(|e| (common::error::describe_pg(&e), shown()))?;
    Ok((shown(), recorded.differences(&after)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUBLIC: [&str; 2] = ["owner", "acl"];
    const ITEM: [&str; 4] = ["grantor", "grantee", "privilege", "grantable"];
    const DEFAULT: [&str; 7] = [
        "role",
        "object_type",
        "acl",
        "grantor",
        "grantee",
        "privilege",
        "grantable",
    ];

    fn provisioned() -> Inside {
        let owner = Some("pg_database_owner");
        let item = |grantee: Option<&str>, privilege: &str| {
            Row::new(&ITEM, &[owner, grantee, Some(privilege), Some("f")])
        };
        let dev = Some("dreichor_dev");
        let sequences = Some("{rt=rU/dreichor_dev}");
        let tables = Some("{dreichor_dev=arwdDxt/dreichor_dev,rt=arwd/dreichor_dev}");
        let default = |kind: &str, acl, grantee, privilege: &str| {
            Row::new(
                &DEFAULT,
                &[
                    dev,
                    Some(kind),
                    acl,
                    dev,
                    grantee,
                    Some(privilege),
                    Some("f"),
                ],
            )
        };
        let sets = vec![
            vec![Row::new(
                &PUBLIC,
                &[
                    owner,
                    Some("{pg_database_owner=UC/pg_database_owner,=U/pg_database_owner,rt=U/pg_database_owner}"),
                ],
            )],
            vec![
                item(owner, "USAGE"),
                item(owner, "CREATE"),
                item(None, "USAGE"),
                item(Some("rt"), "USAGE"),
            ],
            vec![
                default("S", sequences, Some("rt"), "SELECT"),
                default("S", sequences, Some("rt"), "USAGE"),
                default("r", tables, dev, "INSERT"),
                default("r", tables, Some("rt"), "SELECT"),
                Row::new(
                    &DEFAULT,
                    &[dev, Some("f"), Some("{}"), None, None, None, None],
                ),
            ],
        ];
        inside_from(&sets)
    }

    fn fresh() -> Inside {
        inside_from(&[
            vec![Row::new(
                &PUBLIC,
                &[
                    Some("pg_database_owner"),
                    Some("{pg_database_owner=UC/pg_database_owner,=U/pg_database_owner}"),
                ],
            )],
            vec![],
            vec![],
        ])
    }

    #[test]
    fn entries_and_items_are_grouped_in_order() {
        let r = provisioned();
        assert_eq!(r.public.as_ref().unwrap().acl.len(), 3);
        assert_eq!(r.defaults.len(), 3);
        assert_eq!(r.defaults[0].object_type, "S");
        assert_eq!(r.defaults[0].acl.len(), 1);
        assert_eq!(r.defaults[0].acl[0].privileges, ["SELECT", "USAGE"]);
        assert_eq!(r.defaults[1].acl.len(), 2);
        assert!(r.defaults[2].acl.is_empty(), "everything revoked");
    }

    #[test]
    fn the_fresh_database_is_brought_to_the_recorded_state() {
        let statements = provisioned().restore_statements(&fresh());
        assert_eq!(
            statements,
            [
                "REVOKE ALL ON SCHEMA public FROM PUBLIC",
                "REVOKE ALL ON SCHEMA public FROM \"pg_database_owner\"",
                "GRANT USAGE, CREATE ON SCHEMA public TO \"pg_database_owner\"",
                "GRANT USAGE ON SCHEMA public TO PUBLIC",
                "GRANT USAGE ON SCHEMA public TO \"rt\"",
                "ALTER DEFAULT PRIVILEGES FOR ROLE \"dreichor_dev\" REVOKE ALL ON SEQUENCES FROM PUBLIC",
                "ALTER DEFAULT PRIVILEGES FOR ROLE \"dreichor_dev\" REVOKE ALL ON SEQUENCES FROM \"dreichor_dev\"",
                "ALTER DEFAULT PRIVILEGES FOR ROLE \"dreichor_dev\" GRANT SELECT, USAGE ON SEQUENCES TO \"rt\"",
                "ALTER DEFAULT PRIVILEGES FOR ROLE \"dreichor_dev\" REVOKE ALL ON TABLES FROM PUBLIC",
                "ALTER DEFAULT PRIVILEGES FOR ROLE \"dreichor_dev\" REVOKE ALL ON TABLES FROM \"dreichor_dev\"",
                "ALTER DEFAULT PRIVILEGES FOR ROLE \"dreichor_dev\" GRANT INSERT ON TABLES TO \"dreichor_dev\"",
                "ALTER DEFAULT PRIVILEGES FOR ROLE \"dreichor_dev\" GRANT SELECT ON TABLES TO \"rt\"",
                "ALTER DEFAULT PRIVILEGES FOR ROLE \"dreichor_dev\" REVOKE ALL ON FUNCTIONS FROM PUBLIC",
                "ALTER DEFAULT PRIVILEGES FOR ROLE \"dreichor_dev\" REVOKE ALL ON FUNCTIONS FROM \"dreichor_dev\"",
            ]
        );
        assert!(provisioned().restore_statements(&provisioned()).is_empty());
        assert!(fresh().restore_statements(&fresh()).is_empty());
    }

    #[test]
    fn differences_name_what_changed() {
        assert_eq!(provisioned().differences(&provisioned()), None);
        let text = provisioned().differences(&fresh()).unwrap();
        assert!(text.contains("schema public's privileges"), "{text}");
        assert!(text.contains("default privileges"), "{text}");
    }
}
