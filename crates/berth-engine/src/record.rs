//! Container records: what the engine persists about each container, in its own table of the
//! store's `meta.redb`.
//!
//! ```text
//! meta.redb
//! └── containers   &str → json   "<64-hex id>" → ContainerRecord {id, name, created, image,
//!                                  image_id, config (merged), host_config, state, mounts,
//!                                  runtime, restart_count, paths …}
//! ```
//!
//! Records are JSON so fields can be added without a migration. A record is written when a
//! container is created (made durable by the snapshot's commit that follows it: one fsync per
//! create) and whenever its state changes; state changes of running containers are written
//! without fsync, since a restarted daemon reconciles them from the shims and their
//! `exit.json` anyway (live restore). Removal deletes the record just before the snapshot's
//! durable removal, again one fsync for both.

use berth_api::models::{ContainerConfig, HostConfig};
use redb::{Durability, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};
use crate::spec::UserMount;
use crate::status::State;

pub(crate) const CONTAINERS: TableDefinition<&str, &[u8]> = TableDefinition::new("containers");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    /// Without Docker's leading `/`.
    pub name: String,
    /// RFC 3339 with nanoseconds.
    pub created: String,
    /// The image as the user named it (`Config.Image`).
    pub image: String,
    /// `sha256:<hex>`.
    pub image_id: String,
    /// The merged config (image defaults under the request), as inspect shows it.
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    pub state: State,
    /// Entrypoint ++ Cmd split as Docker's `Path` and `Args`.
    pub path: String,
    pub args: Vec<String>,
    pub mounts: Vec<UserMount>,
    /// `berth`, `runc`, `crun`.
    pub runtime: String,
    #[serde(default)]
    pub restart_count: i64,
    pub hostname_path: String,
    pub hosts_path: String,
    pub resolv_conf_path: String,
    pub log_path: String,
    /// `docker stop` was called (for `unless-stopped`).
    #[serde(default)]
    pub manually_stopped: bool,
    /// Extra fields of newer versions.
    #[serde(default, flatten)]
    pub extra: std::collections::BTreeMap<String, serde_json::Value>,
}

/// Writes a record; `durable` fsyncs the commit.
pub(crate) fn put(db: &redb::Database, rec: &ContainerRecord, durable: bool) -> Result<()> {
    let bytes = serde_json::to_vec(rec)
        .map_err(|e| EngineError::Internal(format!("encoding container record: {e}")))?;
    let mut w = db.begin_write()?;
    if !durable {
        let _ = w.set_durability(Durability::None);
    }
    {
        let mut t = w.open_table(CONTAINERS)?;
        t.insert(rec.id.as_str(), bytes.as_slice())?;
    }
    w.commit()?;
    Ok(())
}

/// Deletes a record; `durable` fsyncs the commit (without, the next durable commit of the
/// database carries it).
pub(crate) fn delete(db: &redb::Database, id: &str, durable: bool) -> Result<()> {
    let mut w = db.begin_write()?;
    if !durable {
        let _ = w.set_durability(Durability::None);
    }
    {
        let mut t = w.open_table(CONTAINERS)?;
        t.remove(id)?;
    }
    w.commit()?;
    Ok(())
}

/// Deletes a record inside a write transaction someone else commits (the removal's).
pub(crate) fn delete_in(w: &redb::WriteTransaction, id: &str) -> berth_store::Result<()> {
    let mut t = w.open_table(CONTAINERS)?;
    t.remove(id)?;
    Ok(())
}

/// Every record; undecodable ones are reported and skipped, never fatal.
pub(crate) fn load_all(db: &redb::Database) -> Result<Vec<ContainerRecord>> {
    {
        // Create the table on first use.
        let w = db.begin_write()?;
        w.open_table(CONTAINERS)?;
        w.commit()?;
    }
    let r = db.begin_read()?;
    let t = r.open_table(CONTAINERS)?;
    let mut out = Vec::new();
    for item in t.iter()? {
        let (k, v) = item?;
        match serde_json::from_slice::<ContainerRecord>(v.value()) {
            Ok(rec) => out.push(rec),
            Err(e) => tracing::error!(id = k.value(), "skipping corrupt container record: {e}"),
        }
    }
    Ok(out)
}
