//! The metadata database: one redb file, `meta.redb`, shared with the engine.
//!
//! ```text
//! meta.redb
//! ├── meta        &str → u64     "schema_version" → SCHEMA_VERSION
//! ├── images      &str → json    "sha256:<config hex>" (the image ID) → ImageRecord
//! │                                {id, manifest, manifest_media_type, config_media_type,
//! │                                 layers: [{blob, media_type, size, diff_id, chain_id}],
//! │                                 size, created_at, last_tag_time}
//! ├── tags        &str → &str    "docker.io/library/busybox:latest" → "sha256:<image id>"
//! ├── snapshots   &str → json    "sha256:<chain id>"  → SnapshotRecord{kind: layer, parent, diff_id, …}
//! │                              "container:<id>"     → SnapshotRecord{kind: container, parent
//! │                                                      (top chain id), image, init, …}
//! │                              "init:v1:<image id>" → SnapshotRecord{kind: layer, parent (top
//! │                                                      chain id), image, entries, …}
//! └── leases      &str → json    "<lease id>" → LeaseRecord{expires, blobs, snapshots}
//! ```
//!
//! An image's init layer ([`crate::init`]) is a read-only layer told apart by its key: with
//! `kind: layer`, a Berth that predates init layers can still open the store (it reads the
//! record as an unreferenced layer and GC removes it) instead of failing on a new kind.
//!
//! Values are JSON so records can grow fields without a migration; the schema version changes
//! only when a table's key or meaning changes, and [`migrate`] upgrades older files in place.
//! The engine keeps its own tables (containers, …) in the same file through
//! [`crate::Store::db`]; table names used here are reserved.

use std::collections::BTreeMap;

use berth_oci::Digest;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};

pub const SCHEMA_VERSION: u64 = 1;

pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub(crate) const IMAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("images");
pub(crate) const TAGS: TableDefinition<&str, &str> = TableDefinition::new("tags");
pub(crate) const SNAPSHOTS: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshots");
pub(crate) const LEASES: TableDefinition<&str, &[u8]> = TableDefinition::new("leases");

/// An image known to the store. Its ID is the digest of its config blob, like Docker's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    pub id: Digest,
    /// The manifest blob (stored; synthesized in OCI form when the source had none).
    pub manifest: Digest,
    pub manifest_media_type: String,
    pub config_media_type: String,
    /// Bottom layer first, as in the manifest.
    pub layers: Vec<LayerRef>,
    /// Sum of the layers' unpacked sizes, in bytes.
    pub size: u64,
    /// When the image entered this store (RFC 3339).
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_tag_time: Option<String>,
    /// Extra fields later versions may add.
    #[serde(default, flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl ImageRecord {
    /// The chain ID of the top layer (what a container's root is stacked on).
    pub fn top_chain_id(&self) -> Option<&Digest> {
        self.layers.last().map(|l| &l.chain_id)
    }
    /// Every blob the image needs: manifest, config, layers.
    pub fn blobs(&self) -> impl Iterator<Item = &Digest> {
        [&self.manifest, &self.id]
            .into_iter()
            .chain(self.layers.iter().map(|l| &l.blob))
    }
}

/// One layer of an image: the blob as distributed and the unpacked snapshot it became.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRef {
    pub blob: Digest,
    pub media_type: String,
    /// Blob size in bytes (compressed size when compressed).
    pub size: u64,
    /// Digest of the uncompressed tar (config `rootfs.diff_ids`).
    pub diff_id: Digest,
    /// Chain ID (the snapshot key of this layer with everything below it).
    pub chain_id: Digest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotKind {
    /// An unpacked, read-only layer keyed by chain ID.
    Layer,
    /// A container's writable upper/work dirs on top of a layer chain.
    Container,
}

/// A snapshot: a directory under `snapshots/<id>/` plus its short link `snapshots/l/<link>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRecord {
    pub key: String,
    pub kind: SnapshotKind,
    /// Directory name under `snapshots/`.
    pub id: String,
    /// Short link name under `snapshots/l/`.
    pub link: String,
    /// Chain ID of the layer below (for a container: the image's top layer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Digest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff_id: Option<Digest>,
    /// Unpacked size in bytes (layers).
    #[serde(default)]
    pub size: u64,
    /// The image a container or init snapshot was made from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Digest>,
    /// A container's: the key of the init snapshot stacked between its upper dir and the
    /// image's layers (None: none; containers made before init layers have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<String>,
    /// An init snapshot's: the paths it holds, relative to the root (empty when the image
    /// lacks nothing; containers then get no init layer).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<String>,
    pub created_at: String,
}

/// A lease persisted in the database: content it names survives GC until it expires or is
/// deleted (for holds that span calls or restarts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct LeaseRecord {
    pub id: String,
    pub created_at: String,
    /// Unix seconds after which the lease no longer protects anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_unix: Option<i64>,
    #[serde(default)]
    pub blobs: Vec<Digest>,
    #[serde(default)]
    pub snapshots: Vec<String>,
}

impl LeaseRecord {
    pub fn expired(&self, now_unix: i64) -> bool {
        self.expires_unix.is_some_and(|t| t <= now_unix)
    }
}

pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    table: &'static str,
    key: &str,
    bytes: &[u8],
) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        table,
        key: key.to_string(),
        reason: e.to_string(),
    })
}

pub(crate) fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("records always serialize")
}

/// Creates missing tables and upgrades older schemas. Refuses newer ones.
pub(crate) fn migrate(db: &redb::Database, path: &std::path::Path) -> Result<()> {
    let found = {
        let r = db.begin_read()?;
        match r.open_table(META) {
            Ok(t) => t.get("schema_version")?.map(|v| v.value()),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(e.into()),
        }
    };
    if let Some(v) = found
        && v > SCHEMA_VERSION
    {
        return Err(StoreError::SchemaTooNew {
            path: path.to_path_buf(),
            found: v,
            supported: SCHEMA_VERSION,
        });
    }
    if found == Some(SCHEMA_VERSION) {
        return Ok(());
    }
    // Version 0 (a new file) -> 1: create the tables. Later migrations go here, in order.
    let w = db.begin_write()?;
    {
        w.open_table(IMAGES)?;
        w.open_table(TAGS)?;
        w.open_table(SNAPSHOTS)?;
        w.open_table(LEASES)?;
        let mut m = w.open_table(META)?;
        m.insert("schema_version", SCHEMA_VERSION)?;
    }
    w.commit()?;
    Ok(())
}

/// Reads every record of a JSON table.
pub(crate) fn read_all<T: serde::de::DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    name: &'static str,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for item in table.iter()? {
        let (k, v) = item?;
        out.push(decode(name, k.value(), v.value())?);
    }
    Ok(out)
}
