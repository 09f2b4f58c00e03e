//! `migrate manifest`: writes the manifest of a directory (versions and checksums), for
//! `schema-check --manifest` and for embedding in the runtime. The document type and its
//! reader are shared ([`common::manifest`]); only `migrate` writes one.

use common::manifest::Document;
use common::migrations::Migration;
use common::report::Report;
use serde_json::Value;

/// The manifest document, printed as JSON whatever the format.
#[derive(Debug, Clone)]
pub struct Manifest(pub Document);

impl Manifest {
    /// The manifest of discovered migrations, in their (version) order.
    pub fn of(migrations: &[Migration]) -> Self {
        Manifest(Document::new(
            migrations
                .iter()
                .map(|m| (m.version.as_str(), m.checksum.as_str())),
        ))
    }
}

impl Report for Manifest {
    fn text(&self) -> String {
        self.json().to_string()
    }

    fn json(&self) -> Value {
        serde_json::to_value(&self.0).expect("a manifest is plain strings")
    }
}
