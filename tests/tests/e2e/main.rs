//! End-to-end tests of the Dreichor database tools against a real, throwaway PostgreSQL.
//!
//! One integration-test binary (as ripgrep does) so that the expensive part, the one-time
//! `initdb` of the cluster template, is paid once per run, and so that Cargo links one binary
//! instead of one per file. The harness lives in [`support`]; [`harness`] proves the harness
//! itself (logins, isolation, cleanup, the leak check) before any case relies on it.
//!
//! Nothing here is skipped for lack of PostgreSQL: a missing server fails the run and says how
//! to install one.

mod corpus;
mod drift;
mod drift_equivalent;
mod drift_fingerprint;
mod drift_gate_privileges;
mod drift_histories;
mod drift_record_race;
mod drift_recording;
mod drift_rule_enabled;
mod hard_reset;
mod hard_reset_signal;
mod harness;
mod isolation;
mod least_privilege;
mod messages;
mod migrate;
mod migrate_new;
mod provision;
mod safety_lint;
mod schema_check;
mod support;
mod textfile;
mod transaction_context;
