//! Values the unit tests of several reset files share: URLs with sentinel passwords (so that a
//! leaked password is easy to spot), a request, and a recorded database.

use std::path::PathBuf;

use crate::reset::{Backup, Recorded, Request};
use common::config::{DbUrl, Env};
use common::error::Error;

pub(crate) fn dev_url() -> DbUrl {
    DbUrl::for_env(
        "postgres://dreichor_dev:Sentinel-PW@localhost:5433/dreichor_dev",
        Env::Dev,
    )
    .unwrap()
}

pub(crate) fn admin_url(port: u16) -> DbUrl {
    DbUrl::for_admin(&format!(
        "postgres://postgres:Admin-Sentinel@127.0.0.1:{port}/postgres"
    ))
    .unwrap()
}

pub(crate) fn request(
    env: Env,
    url: DbUrl,
    admin: DbUrl,
    backup: Backup,
) -> Result<Request, Error> {
    Request::new(
        env,
        url,
        admin,
        (Vec::new(), PathBuf::from("infra/db/migrations")),
        "systemctl stop dreichor-runtime".into(),
        backup,
    )
}

pub(crate) fn recorded() -> Recorded {
    Recorded {
        database: "dreichor_dev".into(),
        owner: "dreichor_dev".into(),
        encoding: "UTF8".into(),
        collate: "C.UTF-8".into(),
        ctype: "C.UTF-8".into(),
        locale_provider: Some("c".into()),
        locale: None,
        icu_rules: None,
        connection_limit: -1,
        tablespace: "pg_default".into(),
        acl_text: None,
        acl: None,
        settings: Vec::new(),
        comment: None,
        inside: Default::default(),
    }
}
