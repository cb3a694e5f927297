//! Image operations over `berth-image`, run off the async threads, with Docker's image events
//! (`load`, `import`, `tag`, `untag`, `delete`, `save`, `prune`) and the engine's knowledge of
//! which containers run.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

use berth_api::query::Filters;
use berth_image::{
    DeleteItem, ImportOptions, ImportSource, ListOptions, LoadOptions, RemoveOptions, SaveFormat,
};
use serde_json::{Value, json};

use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::inspect::dir_size;

/// Runs `f` on the blocking pool. berthd has two async workers for all its connections, so
/// anything that can take long (the image store, walking a directory, reading a whole log)
/// runs there, never on a worker, where it would hold up the requests queued behind it.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| EngineError::Internal(format!("background task: {e}")))?
}

fn image_name_attr(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("name".to_string(), name.to_string())])
}

impl Engine {
    /// `GET /images/json`.
    pub async fn image_list(self: &Arc<Self>, all: bool, filters: Filters) -> Result<Value> {
        let _ = all;
        filters
            .validate(&["dangling", "label", "reference", "before", "since", "until"])
            .map_err(|e| EngineError::invalid(e.to_string()))?;
        let dangling = match filters.get("dangling").first().map(String::as_str) {
            None => None,
            Some("true" | "1") => Some(true),
            Some("false" | "0") => Some(false),
            Some(other) => {
                return Err(EngineError::invalid(format!(
                    "Invalid filter 'dangling={other}'"
                )));
            }
        };
        let opts = ListOptions {
            dangling,
            labels: filters.get("label").to_vec(),
            references: filters.get("reference").to_vec(),
            before: filters.get("before").first().cloned(),
            since: filters.get("since").first().cloned(),
            container_counts: true,
        };
        let store = self.store.clone();
        let list = blocking(move || Ok(berth_image::list(&store, &opts)?)).await?;
        serde_json::to_value(list).map_err(|e| EngineError::Internal(e.to_string()))
    }

    /// `GET /images/{name}/json`.
    pub async fn image_inspect(self: &Arc<Self>, name: &str) -> Result<Value> {
        let store = self.store.clone();
        let n = name.to_string();
        blocking(move || Ok(berth_image::inspect(&store, &n)?)).await
    }

    /// `GET /images/{name}/history`.
    pub async fn image_history(self: &Arc<Self>, name: &str) -> Result<Value> {
        let store = self.store.clone();
        let n = name.to_string();
        let h = blocking(move || Ok(berth_image::history(&store, &n)?)).await?;
        serde_json::to_value(h).map_err(|e| EngineError::Internal(e.to_string()))
    }

    /// `POST /images/{name}/tag`.
    pub async fn image_tag(
        self: &Arc<Self>,
        source: &str,
        repo: &str,
        tag: Option<&str>,
    ) -> Result<()> {
        if repo.is_empty() {
            return Err(EngineError::invalid(
                "repository name must have at least one component",
            ));
        }
        let target = match tag {
            Some(t) if !t.is_empty() => format!("{repo}:{t}"),
            _ => repo.to_string(),
        };
        let store = self.store.clone();
        let s = source.to_string();
        let (r, id) = blocking(move || {
            let r = berth_image::tag(&store, &s, &target)?;
            let id = store.resolve_image(&r.to_string())?;
            Ok((r, id))
        })
        .await?;
        self.events.publish(
            "image",
            "tag",
            &id.to_string(),
            image_name_attr(&r.familiar()),
        );
        Ok(())
    }

    /// `DELETE /images/{name}`.
    pub async fn image_remove(
        self: &Arc<Self>,
        name: &str,
        force: bool,
        noprune: bool,
    ) -> Result<Value> {
        let store = self.store.clone();
        let n = name.to_string();
        let engine = self.clone();
        let items = blocking(move || {
            let running = |id: &str| engine.is_running(id);
            Ok(berth_image::remove(
                &store,
                &n,
                RemoveOptions {
                    force,
                    no_prune: noprune,
                },
                &running,
            )?)
        })
        .await?;
        let mut out = Vec::new();
        for item in items {
            match item {
                DeleteItem::Untagged(r) => {
                    self.events
                        .publish("image", "untag", &r, image_name_attr(&r));
                    out.push(json!({"Untagged": r}));
                }
                DeleteItem::Deleted(d) => {
                    self.events
                        .publish("image", "delete", &d, image_name_attr(&d));
                    out.push(json!({"Deleted": d}));
                }
            }
        }
        Ok(Value::Array(out))
    }

    /// `POST /images/load`: returns the messages `docker load` prints.
    pub async fn image_load(
        self: &Arc<Self>,
        input: impl Read + Send + 'static,
    ) -> Result<Vec<String>> {
        let store = self.store.clone();
        let report =
            blocking(move || Ok(berth_image::load(&store, input, &LoadOptions::default())?))
                .await?;
        for img in &report.images {
            let name = img
                .tags
                .first()
                .map(|t| t.familiar())
                .unwrap_or_else(|| img.id.to_string());
            self.events
                .publish("image", "load", &img.id.to_string(), image_name_attr(&name));
        }
        Ok(report.messages())
    }

    /// `POST /images/create?fromSrc=-`: import a rootfs tar; returns the image ID.
    pub async fn image_import(
        self: &Arc<Self>,
        input: impl Read + Send + 'static,
        repo: Option<String>,
        tag: Option<String>,
        message: Option<String>,
        changes: Vec<String>,
    ) -> Result<String> {
        let reference = match repo.filter(|r| !r.is_empty()) {
            Some(r) => {
                let full = match tag.filter(|t| !t.is_empty()) {
                    Some(t) => format!("{r}:{t}"),
                    None => r,
                };
                Some(
                    berth_oci::Reference::parse(&full)
                        .map_err(|e| EngineError::invalid(e.to_string()))?
                        .with_default_tag(),
                )
            }
            None => None,
        };
        let store = self.store.clone();
        let opts = ImportOptions {
            changes,
            message,
            reference: reference.clone(),
            platform: None,
            source_name: "-".into(),
            apply: Default::default(),
        };
        let id = blocking(move || {
            Ok(berth_image::import(
                &store,
                ImportSource::Tar(input),
                &opts,
            )?)
        })
        .await?;
        let name = reference
            .map(|r| r.familiar())
            .unwrap_or_else(|| id.to_string());
        self.events
            .publish("image", "import", &id.to_string(), image_name_attr(&name));
        Ok(id.to_string())
    }

    /// `GET /images/get` and `/images/{name}/get`: writes the archive to `out`.
    pub async fn image_save(
        self: &Arc<Self>,
        names: Vec<String>,
        out: impl std::io::Write + Send + 'static,
    ) -> Result<()> {
        let store = self.store.clone();
        let ns = names.clone();
        blocking(move || {
            let refs: Vec<&str> = ns.iter().map(String::as_str).collect();
            Ok(berth_image::save(&store, &refs, out, SaveFormat::Docker)?)
        })
        .await?;
        for n in names {
            self.events
                .publish("image", "save", &n, image_name_attr(&n));
        }
        Ok(())
    }

    /// `POST /images/prune`.
    pub async fn image_prune(self: &Arc<Self>, filters: Filters) -> Result<Value> {
        filters
            .validate(&["dangling", "label", "until"])
            .map_err(|e| EngineError::invalid(e.to_string()))?;
        let all = matches!(
            filters.get("dangling").first().map(String::as_str),
            Some("false" | "0")
        );
        let mut labels: Vec<String> = filters.get("label").to_vec();
        labels.extend(filters.get("label!").iter().map(|l| format!("!{l}")));
        let until = filters
            .get("until")
            .first()
            .map(|u| crate::events::parse_time(u).map(|n| n / 1_000_000_000))
            .transpose()?;
        let store = self.store.clone();
        let report = blocking(move || Ok(berth_image::prune(&store, all, &labels, until)?)).await?;
        let mut deleted = Vec::new();
        for item in &report.images_deleted {
            match item {
                DeleteItem::Untagged(r) => deleted.push(json!({"Untagged": r})),
                DeleteItem::Deleted(d) => {
                    self.events
                        .publish("image", "delete", d, image_name_attr(d));
                    deleted.push(json!({"Deleted": d}));
                }
            }
        }
        self.events.publish(
            "image",
            "prune",
            "",
            BTreeMap::from([("reclaimed".to_string(), report.space_reclaimed.to_string())]),
        );
        Ok(json!({
            "ImagesDeleted": if deleted.is_empty() { Value::Null } else { Value::Array(deleted) },
            "SpaceReclaimed": report.space_reclaimed,
        }))
    }

    /// `GET /containers/{id}/export`: writes the container's filesystem as a tar.
    pub async fn export(
        self: &Arc<Self>,
        name: &str,
        out: impl std::io::Write + Send + 'static,
    ) -> Result<()> {
        let c = self.lookup(name)?;
        let store = self.store.clone();
        let id = c.id.clone();
        blocking(move || {
            berth_image::export_container(&store, &id, out)?;
            Ok(())
        })
        .await?;
        self.container_event("export", &c.record(), &[]);
        Ok(())
    }

    /// `GET /system/df`.
    pub async fn disk_usage(self: &Arc<Self>) -> Result<Value> {
        let images = self.image_list(true, Filters::new()).await?;
        let engine = self.clone();
        let (containers, layers_size) = blocking(move || {
            let mut rows = Vec::new();
            for c in engine.all() {
                let rec = c.record();
                let mut row = engine.list(true, None, true, &{
                    let mut f = Filters::new();
                    f.add("id", &rec.id);
                    f
                })?;
                if let Some(r) = row.pop() {
                    rows.push(r);
                }
            }
            let layers: u64 = engine
                .store
                .snapshots()?
                .iter()
                .filter(|s| s.kind == berth_store::SnapshotKind::Layer)
                .map(|s| s.size)
                .sum();
            let _ = dir_size;
            Ok((rows, layers))
        })
        .await?;
        Ok(json!({
            "LayersSize": layers_size,
            "Images": images,
            "Containers": containers,
            "Volumes": [],
            "BuildCache": [],
        }))
    }
}
