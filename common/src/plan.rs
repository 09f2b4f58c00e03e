//! Placeholder: the pure planner.

/// Placeholder.
#[derive(Debug, thiserror::Error)]
#[error("placeholder")]
pub struct Drift;
