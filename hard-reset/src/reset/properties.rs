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
        "SELECT pg_catalog.pg_get_userbyid(d.datdba) AS owner, \
                pg_catalog.pg_encoding_to_char(d.encoding) AS encoding, \
                d.datcollate::text AS lc_collate, d.datctype::text AS lc_ctype, \
                pg_catalog.to_jsonb(d) ->> 'datlocprovider' AS locale_provider, \
                coalesce(pg_catalog.to_jsonb(d) ->> 'datlocale', pg_catalog.to_jsonb(d) ->> 'daticulocale') AS locale, \
                pg_catalog.to_jsonb(d) ->> 'daticurules' AS icu_rules, \
                d.datconnlimit AS connection_limit, t.spcname AS tablespace, d.datacl::text AS acl, \
                pg_catalog.shobj_description(d.oid, 'pg_database') AS comment \
         FROM pg_catalog.pg_database d JOIN pg_catalog.pg_tablespace t ON t.oid = d.dattablespace \
         WHERE d.datname = {db};\n\
         SELECT pg_catalog.pg_get_userbyid(a.grantor) AS grantor, \
                CASE WHEN a.grantee = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(a.grantee) END AS grantee, \
                a.privilege_type AS privilege, a.is_grantable AS grantable \
         FROM pg_catalog.pg_database d, pg_catalog.aclexplode(d.datacl) WITH ORDINALITY AS a \
         WHERE d.datname = {db} ORDER BY a.ordinality;\n\
         SELECT CASE WHEN s.setrole = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(s.setrole) END AS role, \
                c.entry AS entry \
         FROM pg_catalog.pg_db_role_setting s JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase, \
              pg_catalog.unnest(s.setconfig) WITH ORDINALITY AS c(entry, n) \
         WHERE d.datname = {db} ORDER BY s.setrole, c.n",
        db = literal(db)
    )
}

/// Reads the [`Recorded`] properties of `db` in one round trip.
pub(super) fn record(admin: &mut Client, db: &str) -> Result<Recorded, postgres::Error> {
    let messages = admin.simple_query(&record_query(db))?;
    Ok(recorded_from(db, &result_sets(&messages)))
}

/// Groups `aclexplode` rows (columns `grantor`, `grantee` or NULL for PUBLIC, `privilege`,
/// `grantable`), in their order, into one [`Grant`] per `aclitem`: consecutive rows of one
/// item share grantor, grantee and grant option.
pub(super) fn grants_from(rows: &[Row]) -> Vec<Grant> {
    let mut grants: Vec<Grant> = Vec::new();
    for row in rows {
        let grantor = row.string("grantor");
        let grantee = row.text("grantee").map(str::to_string);
        let privilege = row.string("privilege");
        let grantable = row.bool("grantable");
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
fn recorded_from(db: &str, sets: &[Vec<Row>]) -> Recorded {
    let set = |i: usize| sets.get(i).map(Vec::as_slice).unwrap_or_default();
    let none = Row::none();
    let main = set(0).first().unwrap_or(&none);
    let field = |column: &str| main.text(column).map(str::to_string);
    let acl_text = field("acl");
    let acl = acl_text.as_ref().map(|_| grants_from(set(1)));
    let settings = set(2)
        .iter()
        .map(|row| Setting {
            role: row.text("role").map(str::to_string),
            entry: row.string("entry"),
        })
        .collect();
    Recorded {
        database: db.to_string(),
        owner: main.string("owner"),
        encoding: main.string("encoding"),
        collate: main.string("lc_collate"),
        ctype: main.string("lc_ctype"),
        locale_provider: field("locale_provider"),
        locale: field("locale"),
        icu_rules: field("icu_rules"),
        connection_limit: main
            .i64("connection_limit")
            .and_then(|n| i32::try_from(n).ok())
            .unwrap_or(-1),
        tablespace: field("tablespace").unwrap_or_else(|| "pg_default".into()),
        acl_text,
        acl,
        settings,
        comment: field("comment"),
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
        let grant = |grantee: Option<&str>, privilege: &str| {
            Row::new(
                &["grantor", "grantee", "privilege", "grantable"],
                &[Some("dreichor_dev"), grantee, Some(privilege), Some("f")],
            )
        };
        let sets = vec![
            vec![Row::new(
                &[
                    "owner",
                    "encoding",
                    "lc_collate",
                    "lc_ctype",
                    "locale_provider",
                    "locale",
                    "icu_rules",
                    "connection_limit",
                    "tablespace",
                    "acl",
                    "comment",
                ],
                &[
                    Some("dreichor_dev"),
                    Some("UTF8"),
                    Some("C"),
                    Some("C"),
                    Some("c"),
                    None,
                    None,
                    Some("-1"),
                    Some("pg_default"),
                    Some("{dreichor_dev=CTc/dreichor_dev,=c/dreichor_dev}"),
                    Some("the dev database"),
                ],
            )],
            vec![
                grant(Some("dreichor_dev"), "CREATE"),
                grant(Some("dreichor_dev"), "TEMPORARY"),
                grant(Some("dreichor_dev"), "CONNECT"),
                grant(None, "CONNECT"),
            ],
            vec![Row::new(
                &["role", "entry"],
                &[None, Some("search_path=\"$user\", public")],
            )],
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
