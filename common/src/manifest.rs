//! The manifest: the versions and checksums of a release's migrations, for hosts that do not
//! have the SQL files (`schema-check --manifest`, the runtime's embedded copy).
//!
//! The document is `{"format": "dreichor-migrations/1", "migrations": [{"checksum", "version"}]}`.
//! `migrate manifest` writes it; [`crate::check::Expected::from_manifest`] reads it. Both go
//! through the one [`Document`] type, so that writer and reader cannot disagree.

use serde::{Deserialize, Serialize};

/// The format tag; a manifest with another one is refused.
pub const FORMAT: &str = "dreichor-migrations/1";

/// The manifest document. Fields are declared in the order they are printed (alphabetical,
/// as the document has always been printed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    /// Always [`FORMAT`].
    pub format: String,
    /// One entry per migration, in version order.
    pub migrations: Vec<Entry>,
}

/// One migration of the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The SHA-256 of the file's bytes, lowercase hex.
    pub checksum: String,
    /// The version: the file name without `.sql`.
    pub version: String,
}

/// Why a manifest was refused (exit 2: invalid input, nothing touched).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read the manifest {path}: {reason}")]
    Unreadable {
        /// The path, as given.
        path: String,
        /// The operating system's reason.
        reason: String,
    },
    /// Not JSON, or not the shape above (a missing or non-string field).
    #[error("the migrations manifest is invalid: {0}; regenerate it with `migrate manifest`")]
    Malformed(String),
    /// Another format tag (a manifest of a newer or older tool).
    #[error("the migrations manifest is invalid: \"format\" must be {FORMAT:?}, not {found:?}; regenerate it with `migrate manifest`")]
    WrongFormat {
        /// The tag found.
        found: String,
    },
}

impl ManifestError {
    /// A stable identifier, for `--format json` (`"manifest_error"`).
    pub fn id(&self) -> &'static str {
        match self {
            ManifestError::Unreadable { .. } => "unreadable",
            ManifestError::Malformed(_) => "malformed",
            ManifestError::WrongFormat { .. } => "wrong-format",
        }
    }
}

impl Document {
    /// A manifest of `(version, checksum)` pairs.
    pub fn new<'a>(migrations: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Document {
            format: FORMAT.to_string(),
            migrations: migrations
                .into_iter()
                .map(|(version, checksum)| Entry {
                    checksum: checksum.to_string(),
                    version: version.to_string(),
                })
                .collect(),
        }
    }

    /// Parses and checks a manifest's text.
    pub fn parse(text: &str) -> Result<Self, ManifestError> {
        let doc: Document =
            serde_json::from_str(text).map_err(|e| ManifestError::Malformed(e.to_string()))?;
        if doc.format != FORMAT {
            return Err(ManifestError::WrongFormat { found: doc.format });
        }
        Ok(doc)
    }

    /// Reads and parses the manifest at `path`.
    pub fn read(path: &std::path::Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|e| ManifestError::Unreadable {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Document::parse(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_reads_back_what_was_written() {
        let doc = Document::new([("001_a", "aa"), ("002_b", "bb")]);
        let text = serde_json::to_string(&doc).unwrap();
        assert_eq!(
            text,
            r#"{"format":"dreichor-migrations/1","migrations":[{"checksum":"aa","version":"001_a"},{"checksum":"bb","version":"002_b"}]}"#
        );
        assert_eq!(Document::parse(&text).unwrap(), doc);
    }

    #[test]
    fn malformed_manifests_are_refused_by_kind() {
        assert!(matches!(
            Document::parse("not json"),
            Err(ManifestError::Malformed(_))
        ));
        assert!(matches!(
            Document::parse("{}"),
            Err(ManifestError::Malformed(_))
        ));
        assert!(matches!(
            Document::parse(
                r#"{"format":"dreichor-migrations/1","migrations":[{"version":"001_a"}]}"#
            ),
            Err(ManifestError::Malformed(_))
        ));
        assert_eq!(
            Document::parse(r#"{"format":"other/2","migrations":[]}"#),
            Err(ManifestError::WrongFormat {
                found: "other/2".into()
            })
        );
    }
}
