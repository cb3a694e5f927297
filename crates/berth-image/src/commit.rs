//! `commit`: a container's upper dir → a new layer on top of its image, plus config changes.

use berth_archive::{ApplyOptions, DiffOptions};
use berth_oci::media_types as mt;
use berth_oci::{Digest, Reference};
use berth_store::{LayerRef, NewLayer, Store, chain_ids};

use crate::change::apply_changes;
use crate::error::{ImageError, Result};
use crate::formats::{ContainerConfig, History};
use crate::import::publish;
use crate::ops::image_config;
use crate::unpack::unpack_blob;

/// Options for [`commit`], after `docker commit`'s flags.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    pub reference: Option<Reference>,
    /// `--author`.
    pub author: Option<String>,
    /// `--message`.
    pub comment: Option<String>,
    /// `--change` instructions, applied after `config`.
    pub changes: Vec<String>,
    /// The container's own config (as merged at create time); the image's when None.
    pub config: Option<ContainerConfig>,
    /// The history's `created_by` (Docker records the container's command).
    pub created_by: Option<String>,
    /// Limits for unpacking the new layer.
    pub apply: ApplyOptions,
}

/// Commits a container's changes as a new image and returns its ID. Pause the container
/// first (Docker's default) for a consistent layer.
pub fn commit(store: &Store, container: &str, opts: &CommitOptions) -> Result<Digest> {
    let _op = store.op();
    let snap = store.container_snapshot(container)?;
    let base_id = snap
        .image
        .clone()
        .ok_or_else(|| ImageError::NotFound(format!("image of container {container}")))?;
    let base = store.image(&base_id)?.ok_or_else(|| {
        ImageError::NotFound(format!("{base_id} (the image of container {container})"))
    })?;
    let mut config = image_config(store, &base)?;
    let mut cc = opts.config.clone().unwrap_or_else(|| config.container());
    apply_changes(&mut cc, &opts.changes)?;
    config.config = Some(cc);

    let upper = store.snapshot_path(&snap);
    let mut ingest = store.content().writer()?;
    let stats = berth_archive::write_diff(&upper, &mut ingest, &DiffOptions::default()).map_err(
        |source| ImageError::Layer {
            what: format!("diff of container {container}"),
            source,
        },
    )?;
    let (blob, size) = ingest.commit(Some(&stats.diff_id), None)?;
    let mut diff_ids = config.rootfs.diff_ids.clone();
    diff_ids.push(stats.diff_id.clone());
    let chain = chain_ids(&diff_ids).pop().expect("at least one layer");
    let new_layer = if store.has_layer(&chain)? {
        None
    } else {
        let (dir, applied) = unpack_blob(store, &blob, &opts.apply)?;
        Some(NewLayer {
            chain_id: chain.clone(),
            parent: base.top_chain_id().cloned(),
            diff_id: applied.diff_id,
            size: applied.uncompressed_size,
            dir,
        })
    };
    let now = berth_store::now_rfc3339();
    config.created = Some(now.clone());
    config.author = opts.author.clone().filter(|a| !a.is_empty());
    config.comment = opts.comment.clone().filter(|c| !c.is_empty());
    config.rootfs.diff_ids = diff_ids;
    config.history.push(History {
        created: Some(now),
        created_by: opts.created_by.clone(),
        author: config.author.clone(),
        comment: config.comment.clone(),
        empty_layer: false,
    });
    let mut layers = base.layers.clone();
    layers.push(LayerRef {
        blob,
        media_type: mt::OCI_LAYER.into(),
        size,
        diff_id: stats.diff_id,
        chain_id: chain,
    });
    let total = base.size + stats.size;
    publish(
        store,
        &config,
        layers,
        new_layer,
        total,
        opts.reference.iter().cloned().collect(),
    )
}
