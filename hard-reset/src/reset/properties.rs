//! What `DROP DATABASE` loses besides the data, recorded just before the drop and checked
//! again just after the create: owner, encoding, collation and ctype, locale provider,
//! connection limit, tablespace, access privileges (`datacl`, item by item), the settings of
//! `ALTER DATABASE ... SET` and `ALTER ROLE ... IN DATABASE ... SET`, and the comment.
//!
//! Everything is read in one round trip of three statements; the statements that bring it
//! back are in `recreate`. After the create the same query runs again and the two
//! records are compared field by field: the promise is "the same database", so it is checked,
//! not assumed.

use std::fmt;

use postgres::Client;

use crate::reset::inside::Inside;
use common::connect::literal;
use common::rows::{result_sets, Row};

/// One `aclitem` of `datacl`, possibly covering several privileges: what one GRANT replays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Who granted it.
    pub grantor: String,
    /// To whom; `None` is PUBLIC.
    pub grantee: Option<String>,
    /// `CONNECT`, `CREATE`, `TEMPORARY`, in `aclexplode` order.
    pub privileges: Vec<String>,
    /// `WITH GRANT OPTION`.
    pub grantable: bool,
}

/// One `ALTER DATABASE ... SET` (role `None`) or `ALTER ROLE ... IN DATABASE ... SET` entry
/// of `pg_db_role_setting`, as stored: `name=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The role it applies to, or `None` for everyone.
    pub role: Option<String>,
    /// `name=value` as the server stores it.
    pub entry: String,
}

/// Everything about the database that `DROP DATABASE` loses besides its contents, read just
/// before the drop and replayed after the create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The database.
    pub database: String,
    /// The owner.
    pub owner: String,
    /// e.g. `UTF8`.
    pub encoding: String,
    /// `LC_COLLATE`.
    pub collate: String,
    /// `LC_CTYPE`.
    pub ctype: String,
    /// `datlocprovider` (PostgreSQL 15+): `c` libc, `i` ICU, `b` builtin; `None` before 15.
    pub locale_provider: Option<String>,
    /// The ICU or builtin locale (`daticulocale`, `datlocale` from 17).
    pub locale: Option<String>,
    /// `daticurules` (PostgreSQL 16+).
    pub icu_rules: Option<String>,
    /// `datconnlimit`; -1 is no limit.
    pub connection_limit: i32,
    /// The tablespace.
    pub tablespace: String,
    /// `datacl` as text, for messages and comparison; `None` is the default privileges.
    pub acl_text: Option<String>,
    /// `datacl`, item by item; `None` is the default privileges.
    pub acl: Option<Vec<Grant>>,
    /// Per-database and per-role-in-database settings.
    pub settings: Vec<Setting>,
    /// `COMMENT ON DATABASE`.
    pub comment: Option<String>,
    /// What provisioning set inside the database: schema `public`'s privileges and the
    /// default privileges (`inside`); recorded in a session in the database itself.
    pub inside: Inside,
}

impl Recorded {
    /// One line for the operator.
    pub fn describe(&self) -> String {
        let mut out = format!(
            "owner {}, encoding {}, LC_COLLATE {}, LC_CTYPE {}",
            self.owner, self.encoding, self.collate, self.ctype
        );
        match self.locale_provider.as_deref() {
            Some("i") => out.push_str(", locale provider icu"),
            Some("b") => out.push_str(", locale provider builtin"),
            _ => {}
        }
        if let Some(locale) = &self.locale {
            out.push_str(&format!(" ({locale})"));
        }
        out.push_str(&format!(
            ", privileges {}",
            self.acl_text.as_deref().unwrap_or("default")
        ));
        if self.connection_limit >= 0 {
            out.push_str(&format!(", connection limit {}", self.connection_limit));
        }
        if self.tablespace != "pg_default" {
            out.push_str(&format!(", tablespace {}", self.tablespace));
        }
        if !self.settings.is_empty() {
            out.push_str(&format!(", {} setting(s)", self.settings.len()));
        }
        if self.comment.is_some() {
            out.push_str(", a comment");
        }
        out.push_str(&format!("; inside: {}", self.inside.describe()));
        out
    }
}

/// The query that reads what [`Recorded`] holds. `to_jsonb` of the catalogue row reads
/// columns that only some versions have (`datlocprovider` 15+, `daticulocale` 15-16,
/// `datlocale` 17+, `daticurules` 16+) without failing on the others.
fn record_query(db: &str) -> String {
    format!(
        "SELECT pg_catalog.pg_get_userbyid(d.datdba), pg_catalog.pg_encoding_to_char(d.encoding), \
                d.datcollate::text, d.datctype::text, \
                pg_catalog.to_jsonb(d) ->> 'datlocprovider', \
                coalesce(pg_catalog.to_jsonb(d) ->> 'datlocale', pg_catalog.to_jsonb(d) ->> 'daticulocale'), \
                pg_catalog.to_jsonb(d) ->> 'daticurules', \
                d.datconnlimit, t.spcname, d.datacl::text, \
                pg_catalog.shobj_description(d.oid, 'pg_database') \
         FROM pg_catalog.pg_database d JOIN pg_catalog.pg_tablespace t ON t.oid = d.dattablespace \
         WHERE d.datname = {db};\n\
         SELECT pg_catalog.pg_get_userbyid(a.grantor), \
                CASE WHEN a.grantee = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(a.grantee) END, \
                a.privilege_type, a.is_grantable \
         FROM pg_catalog.pg_database d, pg_catalog.aclexplode(d.datacl) WITH ORDINALITY AS a \
         WHERE d.datname = {db} ORDER BY a.ordinality;\n\
         SELECT CASE WHEN s.setrole = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(s.setrole) END, c.entry \
         FROM pg_catalog.pg_db_role_setting s JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase, \
              pg_catalog.unnest(s.setconfig) WITH ORDINALITY AS c(entry, n) \
         WHERE d.datname = {db} ORDER BY s.setrole, c.n",
        db = literal(db)
    )
}

/// Reads the [`Recorded`] properties of `db` in one round trip.
pub(super) fn record(admin: &mut Client, db: &str) -> Result<Recorded, postgres::Error> {
    let messages = admin.simple_query(&record_query(db))?;
    // Read by position (the columns of record_query, in order).
    let sets: Vec<Vec<Vec<Option<String>>>> = result_sets(&messages)
        .into_iter()
        .map(|set| set.into_iter().map(Row::into_values).collect())
        .collect();
    Ok(recorded_from(db, &sets))
}

/// Groups `aclexplode` rows (grantor, grantee or NULL for PUBLIC, privilege, grantable), in
/// their order, into one [`Grant`] per `aclitem`: consecutive rows of one item share grantor,
/// grantee and grant option.
pub(super) fn grants_from(rows: &[Vec<Option<String>>]) -> Vec<Grant> {
    let mut grants: Vec<Grant> = Vec::new();
    for row in rows {
        let get = |i: usize| row.get(i).cloned().flatten();
        let grantor = get(0).unwrap_or_default();
        let grantee = get(1);
        let privilege = get(2).unwrap_or_default();
        let grantable = get(3).as_deref() == Some("t");
        match grants.last_mut() {
            Some(last)
                if last.grantor == grantor
                    && last.grantee == grantee
                    && last.grantable == grantable =>
            {
                last.privileges.push(privilege)
            }
            _ => grants.push(Grant {
                grantor,
                grantee,
                privileges: vec![privilege],
                grantable,
            }),
        }
    }
    grants
}

/// Builds a [`Recorded`] from the three result sets of [`record_query`].
fn recorded_from(db: &str, sets: &[Vec<Vec<Option<String>>>]) -> Recorded {
    let empty = Vec::new();
    let main = sets.first().and_then(|s| s.first()).unwrap_or(&empty);
    let field = |i: usize| main.get(i).cloned().flatten();
    let acl_text = field(9);
    let acl = acl_text
        .as_ref()
        .map(|_| grants_from(sets.get(1).map(Vec::as_slice).unwrap_or_default()));
    let settings = sets
        .get(2)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|row| Setting {
            role: row.first().cloned().flatten(),
            entry: row.get(1).cloned().flatten().unwrap_or_default(),
        })
        .collect();
    Recorded {
        database: db.to_string(),
        owner: field(0).unwrap_or_default(),
        encoding: field(1).unwrap_or_default(),
        collate: field(2).unwrap_or_default(),
        ctype: field(3).unwrap_or_default(),
        locale_provider: field(4),
        locale: field(5),
        icu_rules: field(6),
        connection_limit: field(7).and_then(|n| n.parse().ok()).unwrap_or(-1),
        tablespace: field(8).unwrap_or_else(|| "pg_default".into()),
        acl_text,
        acl,
        settings,
        comment: field(10),
        inside: Inside::default(),
    }
}

/// Reads the new database's properties and says how they differ from the recorded ones,
/// if they do: the promise is "the same", so it is checked, not assumed.
pub(super) fn check_recreated(
    admin: &mut Client,
    before: &Recorded,
) -> Result<Option<String>, postgres::Error> {
    let after = record(admin, &before.database)?;
    let mut differences = Vec::new();
    let mut compare = |what: &str, a: &dyn fmt::Debug, b: &dyn fmt::Debug| {
        let (a, b) = (format!("{a:?}"), format!("{b:?}"));
        if a != b {
            differences.push(format!("{what} was {a}, is {b}"));
        }
    };
    compare("owner", &before.owner, &after.owner);
    compare("encoding", &before.encoding, &after.encoding);
    compare("LC_COLLATE", &before.collate, &after.collate);
    compare("LC_CTYPE", &before.ctype, &after.ctype);
    compare(
        "locale provider",
        &before.locale_provider,
        &after.locale_provider,
    );
    compare("locale", &before.locale, &after.locale);
    compare("privileges", &before.acl_text, &after.acl_text);
    compare(
        "connection limit",
        &before.connection_limit,
        &after.connection_limit,
    );
    compare("tablespace", &before.tablespace, &after.tablespace);
    compare("settings", &before.settings, &after.settings);
    compare("comment", &before.comment, &after.comment);
    Ok((!differences.is_empty()).then(|| differences.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aclexplode_rows_are_grouped_into_one_grant_per_item() {
        let s = |v: &str| Some(v.to_string());
        let sets = vec![
            vec![vec![
                s("dreichor_dev"),
                s("UTF8"),
                s("C"),
                s("C"),
                s("c"),
                None,
                None,
                s("-1"),
                s("pg_default"),
                s("{dreichor_dev=CTc/dreichor_dev,=c/dreichor_dev}"),
                s("the dev database"),
            ]],
            vec![
                vec![s("dreichor_dev"), s("dreichor_dev"), s("CREATE"), s("f")],
                vec![s("dreichor_dev"), s("dreichor_dev"), s("TEMPORARY"), s("f")],
                vec![s("dreichor_dev"), s("dreichor_dev"), s("CONNECT"), s("f")],
                vec![s("dreichor_dev"), None, s("CONNECT"), s("f")],
            ],
            vec![vec![None, s("search_path=\"$user\", public")]],
        ];
        let r = recorded_from("dreichor_dev", &sets);
        assert_eq!(r.acl.as_ref().unwrap().len(), 2);
        assert_eq!(r.acl.as_ref().unwrap()[0].privileges.len(), 3);
        assert_eq!(r.acl.as_ref().unwrap()[1].grantee, None);
        assert_eq!(r.comment.as_deref(), Some("the dev database"));
        assert_eq!(r.settings.len(), 1);
        assert_eq!(r.connection_limit, -1);
        let statements = r.restore_statements();
        assert!(statements.contains(
            &"ALTER DATABASE \"dreichor_dev\" SET \"search_path\" = '$user', 'public'".to_string()
        ));
        assert_eq!(
            statements.last().unwrap(),
            "COMMENT ON DATABASE \"dreichor_dev\" IS 'the dev database'"
        );
    }
}
