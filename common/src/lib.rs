//! The shared core of the Dreichor database tooling.
//!
//! What at least two of the three tools (`migrate`, `schema-check`, `hard-reset`) share, split
//! by concern. What only one tool runs lives in that tool's crate, so that the permission
//! boundary shows in the layout: the reset engine (`DROP DATABASE` included) in `hard-reset`,
//! the offline lint, the append-only check against git and manifest writing in `migrate`, and
//! the flag parsing of all three in `cli`. The runtime that embeds [`check`] links none of
//! them.
//!
//! - [`config`]: the environment and `DATABASE_URL` validation and redaction;
//! - [`migrations`]: discovery of migration files, naming rules, checksums;
//! - [`rules`]: the directory rules, one variant each;
//! - [`sql`]: a PostgreSQL-aware lexer (statements, transaction control, line numbers);
//! - [`transaction_context`]: statements PostgreSQL refuses inside a transaction block;
//! - [`plan`]: pure reconciliation of applied rows with the files on disk;
//! - [`connect`]: connecting and opening a checked session; [`identity`]: the checks every
//!   tool makes right after; [`pinned`]: its queries with `search_path` pinned;
//!   [`bounded`]: work on a connection under a deadline; [`quote`]: literals and identifiers;
//! - [`role`]: the owner or a runtime role: `migrate` and `hard-reset` refuse the latter;
//! - [`rows`]: reading simple-query rows by column name, as `bool`, `i64` or text;
//! - [`tracking`]: the tracking table `public.dreichor_schema_migrations`;
//! - [`grants`]: the tools' own tables stay read-only for every role but their owner;
//! - [`lock`]: the migration lock (a polled session advisory lock);
//! - [`apply`]: running one file atomically with its tracking row;
//! - [`cancel`]: Ctrl-C during a run cancels the running file instead of abandoning it;
//! - [`run_error`]: why a run stopped: a failed migration, the lock, an interruption;
//! - [`runner`]: a whole `migrate` run, its dry run, and `status`;
//! - [`check`]: the compatibility check of `schema-check` and the runtime;
//! - [`manifest`]: the manifest document (versions and checksums without the files);
//! - [`report`]: what a tool reports on success (text, JSON, exit code);
//! - [`snapshot`]: the schema snapshot and live-schema drift;
//! - [`error`]: typed errors and the exit code of each kind.
//!
//! The design document (`seeds/000_80c53156e563ee00.txt`) is the authority, `SPEC.md` pins
//! the interface.

#![warn(missing_docs)]

pub mod apply;
pub mod bounded;
pub mod cancel;
pub mod check;
pub mod config;
pub mod connect;
pub mod error;
pub mod file_checksum;
pub mod grants;
pub mod identity;
pub mod lock;
pub mod manifest;
pub mod migrations;
pub mod pinned;
pub mod plan;
pub mod quote;
pub mod report;
pub mod role;
pub mod rows;
pub mod rules;
pub mod run_error;
pub mod runner;
pub mod snapshot;
pub mod sql;
pub mod tracking;
pub mod transaction_context;
pub mod wording;

pub use error::{Error, ExitCode};
