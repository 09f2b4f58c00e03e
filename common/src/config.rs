//! Placeholder: the environment and `DATABASE_URL` validation (being written).

/// Placeholder.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {}
