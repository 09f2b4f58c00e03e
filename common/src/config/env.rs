//! The deployment environment ([`Env`]): `dev` or `prod`, each with its own database and role.
//! How a tool learns it (`--env`, `DREICHOR_ENV`) is in `resolve`.

use std::fmt;

/// The deployment environment a tool works on. Each has its own database and role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Env {
    /// Development: database `dreichor_dev`.
    Dev,
    /// Production: database `dreichor_prod`.
    Prod,
}

impl Env {
    /// The database of this environment.
    ///
    /// ```
    /// use common::config::Env;
    /// assert_eq!(Env::Prod.database(), "dreichor_prod");
    /// ```
    pub fn database(self) -> &'static str {
        match self {
            Env::Dev => "dreichor_dev",
            Env::Prod => "dreichor_prod",
        }
    }

    /// The other environment, whose database a role of this one must not reach.
    ///
    /// ```
    /// use common::config::Env;
    /// assert_eq!(Env::Dev.other(), Env::Prod);
    /// ```
    pub fn other(self) -> Env {
        match self {
            Env::Dev => Env::Prod,
            Env::Prod => Env::Dev,
        }
    }

    /// The name as written on the command line and in `DREICHOR_ENV`.
    pub fn as_str(self) -> &'static str {
        match self {
            Env::Dev => "dev",
            Env::Prod => "prod",
        }
    }
}

impl fmt::Display for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
