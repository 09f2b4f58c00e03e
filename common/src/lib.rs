//! The shared core of the Dreichor database tooling.
//!
//! The three binaries (`migrate`, `schema-check`, `hard-reset`) only parse flags, call into
//! this crate, print and choose an exit code. Everything with rules in it lives here, split by
//! concern:
//!
//! - [`config`]: the environment and `DATABASE_URL` validation and redaction;
//! - [`migrations`]: discovery of migration files, naming rules, checksums;
//! - [`sql`]: a PostgreSQL-aware lexer (statements, transaction control, line numbers);
//! - [`transaction_context`]: statements PostgreSQL refuses inside a transaction block;
//! - [`plan`]: pure reconciliation of applied rows with the files on disk;
//! - [`history`]: the append-only check against git (`lint --since`);
//! - [`lint`]: the offline directory check behind `migrate lint`;
//! - [`connect`]: connecting, and the identity checks every tool makes;
//! - [`role`]: the owner or a runtime role: `migrate` and `hard-reset` refuse the latter;
//! - [`tracking`]: the tracking table `public.dreichor_schema_migrations`;
//! - [`grants`]: the tools' own tables stay read-only for every role but their owner;
//! - [`lock`]: the migration lock (a polled session advisory lock);
//! - [`apply`]: running one file atomically with its tracking row;
//! - [`cancel`]: Ctrl-C during a run cancels the running file instead of abandoning it;
//! - [`runner`]: a whole `migrate` run, its dry run, and `status`;
//! - [`check`]: the compatibility check of `schema-check` and the runtime;
//! - [`reset`]: `hard-reset`: what will be destroyed, the confirmations, the seven steps;
//! - [`cli`]: flags and output shared by the binaries;
//! - [`error`]: typed errors and the exit code of each kind.
//!
//! The design document (`seeds/000_80c53156e563ee00.txt`) is the authority, `SPEC.md` pins
//! the interface.

pub mod apply;
pub mod cancel;
pub mod check;
pub mod cli;
pub mod config;
pub mod connect;
pub mod error;
pub mod grants;
pub mod history;
pub mod lint;
pub mod lock;
pub mod migrations;
pub mod plan;
pub mod reset;
pub mod role;
pub mod runner;
pub mod sql;
pub mod tracking;
pub mod transaction_context;

pub use error::{Error, ExitCode};
