//! Placeholder: migration discovery.

/// Placeholder.
#[derive(Debug, thiserror::Error)]
#[error("placeholder")]
pub struct DirectoryError;
