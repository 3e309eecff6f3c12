//! What discovery lists of an upload (`GET /v2/cost_services`, `/v2/tags`, `/v2/tags/{key}/values`): its
//! distinct services and tag key/value pairs, bounded. The engine reads it out of an upload's file
//! (`engine::discovery`); the store records it in the upload's commit.

use std::collections::{BTreeMap, BTreeSet};

/// Most distinct services and tag key/value pairs one upload records. The catalog is written in the upload's
/// commit, and SQLite has one writer: 7.2 million pairs (a tag with a value per row) held it long enough for
/// other tenants' writes to fail. Past the bound an upload's further values are not listed by discovery
/// (its costs are all there, and filter and group by them as ever); no real tag key has more values worth
/// picking from a list.
pub const MAX_CATALOG_ENTRIES: usize = 100_000;

/// An upload's distinct dimensions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    pub services: BTreeSet<String>,
    /// Tag key → its values (JSON strings as they are; other JSON values as JSON text).
    pub tags: BTreeMap<String, BTreeSet<String>>,
    /// Services and tag pairs held (at most [`MAX_CATALOG_ENTRIES`]).
    entries: usize,
}

impl Catalog {
    /// How many services and tag pairs the catalog holds.
    pub fn len(&self) -> usize {
        self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Whether it holds [`MAX_CATALOG_ENTRIES`] already (more is not recorded).
    pub fn full(&self) -> bool {
        self.entries >= MAX_CATALOG_ENTRIES
    }

    /// Adds a service (once).
    pub fn add_service(&mut self, service: &str) {
        if !self.full() && !self.services.contains(service) {
            self.services.insert(service.to_string());
            self.entries += 1;
        }
    }

    /// Adds one row's Tags text (a JSON object; anything else adds nothing).
    pub fn add_tags(&mut self, text: &str) {
        let Ok(object) = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text) else { return };
        for (key, value) in object {
            if self.full() {
                return;
            }
            let value = match value {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            if self.tags.entry(key).or_default().insert(value) {
                self.entries += 1;
            }
        }
    }
}
