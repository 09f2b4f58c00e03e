//! The shared core of the Dreichor database tooling.
//!
//! The three binaries (`migrate`, `schema-check`, `hard-reset`) only parse flags, call into
//! this crate, print and choose an exit code. Everything with rules in it lives here, split by
//! concern:
//!
//! - [`config`]: the environment and `DATABASE_URL` validation and redaction;
//! - [`migrations`]: discovery of migration files, naming rules, checksums;
//! - [`sql`]: a PostgreSQL-aware lexer (statements, transaction control, line numbers);
//! - [`plan`]: pure reconciliation of applied rows with the files on disk;
//! - [`error`]: typed errors and the exit code of each kind.
//!
//! The design document (`seeds/000_80c53156e563ee00.txt`) is the authority, `SPEC.md` pins
//! the interface.

pub mod config;
pub mod error;
pub mod migrations;
pub mod plan;
pub mod sql;

pub use error::{Error, ExitCode};
