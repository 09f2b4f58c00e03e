//! The harness every end-to-end case builds on, one concern per file:
//!
//! - [`cluster`]: a throwaway PostgreSQL server per test (or one shared per process), started
//!   from a template made by one `initdb`, cleaned up even when the test process is killed;
//!   and [`cluster::connect`], the one way a case logs in as a role over TCP with a password;
//! - [`project`]: the fixture of the cases that run the tools, a cluster of its own with both
//!   environments provisioned and a temporary migrations directory, with the tools preset
//!   for it and superuser reads of `dreichor_dev` for assertions;
//! - [`tool`]: running the tools' shim binaries with a cleared environment, a timeout and an
//!   automatic password-leak check on everything they print;
//! - [`pty`]: running a program in a pseudo-terminal (`hard-reset` needs one), with the same
//!   environment and the same leak check on its transcript;
//! - [`secrets`]: the sentinel passwords the harness hands out and the leak check itself.
//!
//! Each case module uses only part of the harness, and this is one test binary, so an item
//! that no case module uses yet would be a dead-code warning (an error under
//! `clippy -D warnings`): hence the `allow` on this module only.

#![allow(dead_code)]

pub mod cluster;
pub mod project;
pub mod pty;
pub mod secrets;
pub mod tool;

pub use cluster::Cluster;
pub use project::Project;
pub use pty::{Pty, PtyOutcome};
pub use tool::{Outcome, Run, Tool};
