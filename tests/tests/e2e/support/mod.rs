//! The harness every end-to-end case builds on, one concern per file:
//!
//! - [`cluster`]: a throwaway PostgreSQL server per test (or one shared per process), started
//!   from a template made by one `initdb`, cleaned up even when the test process is killed;
//! - [`tool`]: running the tools' shim binaries with a cleared environment, a timeout and an
//!   automatic password-leak check on everything they print;
//! - [`secrets`]: the sentinel passwords the harness hands out and the leak check itself.
//!
//! Each case module uses only part of the harness, and this is one test binary, so an item
//! that no case module uses yet would be a dead-code warning (an error under
//! `clippy -D warnings`): hence the `allow` on this module only.

#![allow(dead_code)]

pub mod cluster;
pub mod secrets;
pub mod tool;

pub use cluster::Cluster;
pub use tool::{Outcome, Run, Tool};
