//! Who a tool's session is: the validated database, and environment-specific credentials
//! (not a superuser, no CONNECT on the other environment's database). Checked right after
//! every connection ([`crate::connect::open`]).

use crate::config::{DbUrl, Env};
use crate::error::Error;
use crate::quote::literal;
use crate::rows::Row;

/// The SQL that reports who we are: database, superuser, and CONNECT on the other
/// environment's database (NULL when it does not exist). One round trip.
pub fn identity_query(env: Env) -> String {
    format!(
        "SELECT pg_catalog.current_database() AS database, current_user AS role, \
         pg_catalog.current_setting('is_superuser') = 'on' AS superuser, \
         (SELECT pg_catalog.has_database_privilege(oid, 'CONNECT') FROM pg_catalog.pg_database WHERE datname = {}) AS reaches_other",
        literal(env.other().database())
    )
}

/// Checks the answer of [`identity_query`]: the validated database, and environment-specific
/// credentials. A violation is exit 2: the configuration is wrong, nothing was touched.
pub fn check_identity(url: &DbUrl, env: Env, row: &Row) -> Result<(), Error> {
    let database = row.string("database");
    let user = row.string("role");
    if database != env.database() {
        return Err(Error::Refused(format!(
            "connected to database {database:?} but DATABASE_URL names {:?}; refusing to touch it",
            env.database()
        )));
    }
    if row.bool("superuser") {
        return Err(Error::Refused(format!(
            "the role {user:?} in DATABASE_URL ({}) is a superuser; credentials must be environment-specific: use the {env} role (see infra/db/provision.sh)",
            url.redacted()
        )));
    }
    if row.bool("reaches_other") {
        return Err(Error::Refused(format!(
            "the role {user:?} can connect to {}, the other environment's database; credentials must be environment-specific: REVOKE CONNECT ON DATABASE {} FROM PUBLIC, {user} (see infra/db/provision.sh)",
            env.other().database(),
            env.other().database()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DbUrl;

    fn url() -> DbUrl {
        DbUrl::for_env(
            "postgres://dreichor_dev:Sentinel-PW@localhost/dreichor_dev",
            Env::Dev,
        )
        .unwrap()
    }

    fn row(values: &[Option<&str>]) -> Row {
        Row::new(&["database", "role", "superuser", "reaches_other"], values)
    }

    #[test]
    fn accepts_an_environment_specific_role() {
        let r = row(&[
            Some("dreichor_dev"),
            Some("dreichor_dev"),
            Some("f"),
            Some("f"),
        ]);
        check_identity(&url(), Env::Dev, &r).unwrap();
        let no_other_db = row(&[Some("dreichor_dev"), Some("dreichor_dev"), Some("f"), None]);
        check_identity(&url(), Env::Dev, &no_other_db).unwrap();
    }

    #[test]
    fn refuses_a_superuser() {
        let r = row(&[Some("dreichor_dev"), Some("postgres"), Some("t"), Some("t")]);
        let err = check_identity(&url(), Env::Dev, &r).unwrap_err();
        assert!(err.to_string().contains("superuser"), "{err}");
        assert!(!err.to_string().contains("Sentinel-PW"));
        assert_eq!(err.exit_code(), crate::ExitCode::Invalid);
    }

    #[test]
    fn refuses_a_role_that_reaches_the_other_environment() {
        let r = row(&[
            Some("dreichor_dev"),
            Some("dreichor_dev"),
            Some("f"),
            Some("t"),
        ]);
        let err = check_identity(&url(), Env::Dev, &r).unwrap_err();
        assert!(err.to_string().contains("dreichor_prod"), "{err}");
    }

    #[test]
    fn refuses_another_database() {
        let r = row(&[Some("postgres"), Some("dreichor_dev"), Some("f"), None]);
        assert!(check_identity(&url(), Env::Dev, &r).is_err());
    }
}
