//! The SQL that recreates a [`Recorded`] database: `CREATE DATABASE` with the same owner,
//! encoding, locale and tablespace, then one transaction that restores its privileges,
//! settings and comment.
//!
//! The same statements are printed for the operator when step 5 fails after the drop, so they
//! must be complete on their own. Identifiers are always quoted and values always passed as
//! literals ([`common::connect::literal`]): role names come from the catalogue, and settings
//! hold arbitrary text.

use crate::reset::{Grant, Recorded, Setting};
use common::connect::literal;

/// Settings whose stored value is a list of identifiers quoted like `"$user", public`: they
/// must be replayed element by element, each as its own literal, or the list would come back
/// as one element. pg_dump keeps the same list (`variable_is_guc_list_quote` in
/// `src/bin/pg_dump/dumputils.c`) because the server exposes the flag nowhere.
const GUC_LIST_QUOTE: &[&str] = &[
    "local_preload_libraries",
    "search_path",
    "session_preload_libraries",
    "shared_preload_libraries",
    "temp_tablespaces",
    "unix_socket_directories",
];

/// A `"quoted"` identifier: every name that reaches SQL here is quoted, even though the
/// database name is one of two validated constants, because role names come from the
/// catalogue and may need it.
pub fn quote_ident(name: &str) -> String {
    common::connect::identifier(name)
}

/// `GRANT <privileges> ON <on> TO <grantee> [WITH GRANT OPTION]` for one `aclitem`.
pub(super) fn grant_clause(grant: &Grant, on: &str) -> String {
    let grantee = grant
        .grantee
        .as_deref()
        .map_or("PUBLIC".to_string(), quote_ident);
    let option = if grant.grantable {
        " WITH GRANT OPTION"
    } else {
        ""
    };
    format!(
        "GRANT {} ON {on} TO {grantee}{option}",
        grant.privileges.join(", ")
    )
}

/// The statements that give `on` (`DATABASE "x"`, `SCHEMA public`) exactly the privileges
/// `acl` of an object owned by `owner`: every default entry is revoked (from PUBLIC and from
/// the owner), then each item is granted again in its original order, by its original
/// grantor (`SET ROLE`), which rebuilds the same `aclitem[]`. Granted by a superuser or a
/// member of the owner, a privilege is recorded as granted by the owner.
pub(super) fn replay_acl(on: &str, owner: &str, acl: &[Grant]) -> Vec<String> {
    let mut out = vec![
        format!("REVOKE ALL ON {on} FROM PUBLIC"),
        format!("REVOKE ALL ON {on} FROM {}", quote_ident(owner)),
    ];
    for grant in acl {
        let statement = grant_clause(grant, on);
        if grant.grantor == owner {
            out.push(statement);
        } else {
            out.push(format!("SET ROLE {}", quote_ident(&grant.grantor)));
            out.push(statement);
            out.push("RESET ROLE".into());
        }
    }
    out
}

impl Recorded {
    /// `CREATE DATABASE` with the same owner, encoding, collation, ctype, locale provider,
    /// tablespace and connection limit, from `template0` (the only template that accepts
    /// another encoding or locale than its own).
    pub fn create_statement(&self) -> String {
        let mut sql = format!(
            "CREATE DATABASE {} WITH OWNER = {} TEMPLATE = template0 ENCODING = {} LC_COLLATE = {} LC_CTYPE = {}",
            quote_ident(&self.database),
            quote_ident(&self.owner),
            literal(&self.encoding),
            literal(&self.collate),
            literal(&self.ctype)
        );
        match self.locale_provider.as_deref() {
            Some("i") => {
                sql.push_str(" LOCALE_PROVIDER = icu");
                if let Some(locale) = &self.locale {
                    sql.push_str(&format!(" ICU_LOCALE = {}", literal(locale)));
                }
                if let Some(rules) = &self.icu_rules {
                    sql.push_str(&format!(" ICU_RULES = {}", literal(rules)));
                }
            }
            Some("b") => {
                sql.push_str(" LOCALE_PROVIDER = builtin");
                if let Some(locale) = &self.locale {
                    sql.push_str(&format!(" BUILTIN_LOCALE = {}", literal(locale)));
                }
            }
            // Spelled out so that a template0 with another provider cannot change it.
            Some("c") => sql.push_str(" LOCALE_PROVIDER = libc"),
            _ => {}
        }
        // Naming pg_default would need CREATE on it, which a CREATEDB admin role that is not
        // a superuser lacks: the create would then fail after the drop. It is the default
        // anyway, so only another tablespace is spelled out.
        if self.tablespace != "pg_default" {
            sql.push_str(&format!(" TABLESPACE = {}", quote_ident(&self.tablespace)));
        }
        sql.push_str(&format!(" CONNECTION LIMIT = {}", self.connection_limit));
        sql
    }

    /// The statements that restore privileges, settings and comment after the create, for one
    /// transaction.
    ///
    /// Privileges: a new database has the default ACL (`datacl` NULL). A recorded NULL needs
    /// nothing. Otherwise every default entry is revoked (from PUBLIC and from the owner) and
    /// each recorded item is granted again in its original order, by its original grantor
    /// (`SET ROLE`), which rebuilds the same `aclitem[]`.
    pub fn restore_statements(&self) -> Vec<String> {
        let db = quote_ident(&self.database);
        let mut out = Vec::new();
        if let Some(acl) = &self.acl {
            out.extend(replay_acl(&format!("DATABASE {db}"), &self.owner, acl));
        }
        for setting in &self.settings {
            if let Some(statement) = setting_statement(&self.database, setting) {
                out.push(statement);
            }
        }
        if let Some(comment) = &self.comment {
            out.push(format!("COMMENT ON DATABASE {db} IS {}", literal(comment)));
        }
        out
    }
}

/// `ALTER DATABASE d SET name = value` (or `ALTER ROLE r IN DATABASE d SET ...`) for one
/// stored `name=value` entry; `None` for an entry without `=` (never written by the server).
/// Values are replayed as literals, list-quoted settings element by element (see
/// [`GUC_LIST_QUOTE`]), as pg_dump does.
pub fn setting_statement(database: &str, setting: &Setting) -> Option<String> {
    let (name, value) = setting.entry.split_once('=')?;
    let value = if GUC_LIST_QUOTE.iter().any(|n| n.eq_ignore_ascii_case(name)) {
        let elements = split_guc_list(value);
        if elements.is_empty() {
            // An empty list is stored as `""` and set with an empty string.
            literal("")
        } else {
            elements
                .iter()
                .map(|e| literal(e))
                .collect::<Vec<_>>()
                .join(", ")
        }
    } else {
        literal(value)
    };
    let target = match &setting.role {
        Some(role) => format!(
            "ALTER ROLE {} IN DATABASE {}",
            quote_ident(role),
            quote_ident(database)
        ),
        None => format!("ALTER DATABASE {}", quote_ident(database)),
    };
    Some(format!("{target} SET {} = {value}", quote_ident(name)))
}

/// Splits a stored list setting (`"$user", public`) into its elements: commas outside double
/// quotes separate, surrounding whitespace is dropped, quotes are removed and `""` inside them
/// is one `"`. Case is kept (pg_dump's `SplitGUCList`, unlike `SplitIdentifierString`, does
/// not downcase). A lone `""` is the empty list.
pub fn split_guc_list(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut element = String::new();
        let mut quoted = false;
        if chars.peek() == Some(&'"') {
            quoted = true;
            chars.next();
            while let Some(c) = chars.next() {
                if c == '"' {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        element.push('"');
                    } else {
                        break;
                    }
                } else {
                    element.push(c);
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                element.push(c);
                chars.next();
            }
            let trimmed = element.trim_end().len();
            element.truncate(trimmed);
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if quoted || !element.is_empty() {
            out.push(element);
        }
        if chars.next().is_none() {
            break;
        }
    }
    if out.len() == 1 && out[0].is_empty() {
        return Vec::new();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reset::fixtures::recorded;
    use crate::reset::Grant;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("dreichor_dev"), "\"dreichor_dev\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn the_create_statement_keeps_owner_encoding_and_locale() {
        let r = recorded();
        assert_eq!(
            r.create_statement(),
            "CREATE DATABASE \"dreichor_dev\" WITH OWNER = \"dreichor_dev\" TEMPLATE = template0 ENCODING = 'UTF8' LC_COLLATE = 'C.UTF-8' LC_CTYPE = 'C.UTF-8' LOCALE_PROVIDER = libc CONNECTION LIMIT = -1"
        );
        let elsewhere = Recorded {
            tablespace: "fast_ssd".into(),
            ..recorded()
        };
        assert!(elsewhere
            .create_statement()
            .contains(" TABLESPACE = \"fast_ssd\" CONNECTION LIMIT"));
        let icu = Recorded {
            locale_provider: Some("i".into()),
            locale: Some("de-DE".into()),
            connection_limit: 20,
            ..recorded()
        };
        let sql = icu.create_statement();
        assert!(
            sql.contains("LOCALE_PROVIDER = icu ICU_LOCALE = 'de-DE'"),
            "{sql}"
        );
        assert!(sql.ends_with("CONNECTION LIMIT = 20"), "{sql}");
        // Before PostgreSQL 15 there is no provider column and no clause.
        let old = Recorded {
            locale_provider: None,
            ..recorded()
        };
        assert!(!old.create_statement().contains("LOCALE_PROVIDER"));
    }

    #[test]
    fn default_privileges_need_no_statement() {
        assert!(recorded().restore_statements().is_empty());
    }

    #[test]
    fn recorded_privileges_are_replayed_in_order_by_their_grantor() {
        let r = Recorded {
            acl_text: Some(
                "{dreichor_dev=CTc/dreichor_dev,reader=c/dreichor_dev,=T/dreichor_dev,x=c*/admin}"
                    .into(),
            ),
            acl: Some(vec![
                Grant {
                    grantor: "dreichor_dev".into(),
                    grantee: Some("dreichor_dev".into()),
                    privileges: vec!["CREATE".into(), "TEMPORARY".into(), "CONNECT".into()],
                    grantable: false,
                },
                Grant {
                    grantor: "dreichor_dev".into(),
                    grantee: Some("reader".into()),
                    privileges: vec!["CONNECT".into()],
                    grantable: false,
                },
                Grant {
                    grantor: "dreichor_dev".into(),
                    grantee: None,
                    privileges: vec!["TEMPORARY".into()],
                    grantable: false,
                },
                Grant {
                    grantor: "admin".into(),
                    grantee: Some("x".into()),
                    privileges: vec!["CONNECT".into()],
                    grantable: true,
                },
            ]),
            ..recorded()
        };
        assert_eq!(
            r.restore_statements(),
            [
                "REVOKE ALL ON DATABASE \"dreichor_dev\" FROM PUBLIC",
                "REVOKE ALL ON DATABASE \"dreichor_dev\" FROM \"dreichor_dev\"",
                "GRANT CREATE, TEMPORARY, CONNECT ON DATABASE \"dreichor_dev\" TO \"dreichor_dev\"",
                "GRANT CONNECT ON DATABASE \"dreichor_dev\" TO \"reader\"",
                "GRANT TEMPORARY ON DATABASE \"dreichor_dev\" TO PUBLIC",
                "SET ROLE \"admin\"",
                "GRANT CONNECT ON DATABASE \"dreichor_dev\" TO \"x\" WITH GRANT OPTION",
                "RESET ROLE",
            ]
        );
    }

    #[test]
    fn guc_lists_split_like_pg_dump() {
        assert_eq!(split_guc_list("\"$user\", public"), ["$user", "public"]);
        assert_eq!(split_guc_list("a,b ,  c"), ["a", "b", "c"]);
        assert_eq!(
            split_guc_list("\"with \"\"quote\"\", comma\",x"),
            ["with \"quote\", comma", "x"]
        );
        assert_eq!(split_guc_list("MixedCase"), ["MixedCase"]);
        assert!(split_guc_list("\"\"").is_empty());
        assert!(split_guc_list("").is_empty());
    }

    #[test]
    fn settings_are_replayed_as_literals() {
        let setting = |role: Option<&str>, entry: &str| Setting {
            role: role.map(str::to_string),
            entry: entry.into(),
        };
        assert_eq!(
            setting_statement("dreichor_dev", &setting(None, "TimeZone=Europe/Berlin")).unwrap(),
            "ALTER DATABASE \"dreichor_dev\" SET \"TimeZone\" = 'Europe/Berlin'"
        );
        assert_eq!(
            setting_statement("dreichor_dev", &setting(Some("app"), "work_mem=64MB")).unwrap(),
            "ALTER ROLE \"app\" IN DATABASE \"dreichor_dev\" SET \"work_mem\" = '64MB'"
        );
        assert_eq!(
            setting_statement("d", &setting(None, "DateStyle=ISO, MDY")).unwrap(),
            "ALTER DATABASE \"d\" SET \"DateStyle\" = 'ISO, MDY'"
        );
        assert_eq!(
            setting_statement("d", &setting(None, "search_path=\"\"")).unwrap(),
            "ALTER DATABASE \"d\" SET \"search_path\" = ''"
        );
        assert_eq!(
            setting_statement("d", &setting(None, "x.y=it's")).unwrap(),
            "ALTER DATABASE \"d\" SET \"x.y\" = 'it''s'"
        );
        assert!(setting_statement("d", &setting(None, "garbage")).is_none());
    }
}
