//! `import`: a rootfs tarball (plain, gzip or zstd) or a directory → a one-layer image.
//!
//! The layer blob is the uncompressed tar (for a tarball: exactly the bytes given, so the
//! diff ID is the digest of the decompressed input, as with Docker); it is stored and
//! unpacked in one pass. `--change` instructions and `--message` shape the config.

use std::io::Read;
use std::path::PathBuf;

use berth_archive::{ApplyOptions, DiffOptions};
use berth_oci::media_types as mt;
use berth_oci::{Digest, Platform, Reference};
use berth_store::{ImageCommit, ImageRecord, LayerRef, NewLayer, Store};

use crate::change::apply_changes;
use crate::error::{ImageError, Result};
use crate::formats::{
    ContainerConfig, Descriptor, History, ImageConfig, Manifest, RootFs, to_json,
};
use crate::unpack::{Tee, layer_apply_options, unpack_blob};

/// Where the root filesystem comes from.
pub enum ImportSource<R: Read> {
    /// A tar stream (compression detected by magic).
    Tar(R),
    /// A directory tree, tarred reproducibly.
    Dir(PathBuf),
}

/// Options for [`import`], after `docker import`'s flags.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// `--change` instructions, in order.
    pub changes: Vec<String>,
    /// `--message`: the history comment (default `Imported from <source>`).
    pub message: Option<String>,
    /// The name to tag the image with.
    pub reference: Option<Reference>,
    /// `--platform`; the host's when unset.
    pub platform: Option<Platform>,
    /// What the source was called (`-` for stdin, a file name or URL), for the history.
    pub source_name: String,
    /// Limits for unpacking.
    pub apply: ApplyOptions,
}

/// Imports a root filesystem as a new image and returns its ID.
pub fn import<R: Read>(
    store: &Store,
    source: ImportSource<R>,
    opts: &ImportOptions,
) -> Result<Digest> {
    let mut cfg = ContainerConfig::default();
    apply_changes(&mut cfg, &opts.changes)?;
    let _op = store.op();
    let (blob, size, dir, diff_id, unpacked) = match source {
        ImportSource::Tar(r) => {
            let (_, mut plain) =
                berth_archive::decompress(r).map_err(|source| ImageError::Layer {
                    what: format!("import source {:?}", opts.source_name),
                    source,
                })?;
            let mut ingest = store.content().writer()?;
            let dir = store.begin_layer()?;
            let stats = {
                let mut tee = Tee::new(Vec::new(), &mut plain, &mut ingest);
                let stats = berth_archive::apply_layer(
                    &mut tee,
                    &dir.path(),
                    &layer_apply_options(&opts.apply),
                )
                .map_err(|source| ImageError::Layer {
                    what: format!("import source {:?}", opts.source_name),
                    source,
                })?;
                std::io::copy(&mut tee, &mut std::io::sink())
                    .map_err(|e| ImageError::io("reading the import source", e))?;
                stats
            };
            let (blob, size) = ingest.commit(Some(&stats.diff_id), None)?;
            (blob, size, dir, stats.diff_id, stats.uncompressed_size)
        }
        ImportSource::Dir(path) => {
            if !path.is_dir() {
                return Err(ImageError::InvalidArgument(format!(
                    "import source {} is not a directory",
                    path.display()
                )));
            }
            let mut ingest = store.content().writer()?;
            let stats = berth_archive::write_dir_tar(&path, &mut ingest, &DiffOptions::default())
                .map_err(|source| ImageError::Layer {
                what: format!("directory {}", path.display()),
                source,
            })?;
            let (blob, size) = ingest.commit(Some(&stats.diff_id), None)?;
            let (dir, applied) = unpack_blob(store, &blob, &opts.apply)?;
            (blob, size, dir, applied.diff_id, applied.uncompressed_size)
        }
    };
    let now = berth_store::now_rfc3339();
    let platform = opts.platform.clone().unwrap_or_else(Platform::host);
    let message = opts
        .message
        .clone()
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| format!("Imported from {}", opts.source_name));
    let config = ImageConfig {
        created: Some(now.clone()),
        architecture: platform.architecture.clone(),
        os: platform.os.clone(),
        variant: platform.variant.clone(),
        config: Some(cfg),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: vec![diff_id.clone()],
        },
        history: vec![History {
            created: Some(now),
            comment: Some(message),
            ..Default::default()
        }],
        ..Default::default()
    };
    let layer = LayerRef {
        blob,
        media_type: mt::OCI_LAYER.into(),
        size,
        diff_id: diff_id.clone(),
        chain_id: diff_id.clone(),
    };
    let id = publish(
        store,
        &config,
        vec![layer],
        Some(NewLayer {
            chain_id: diff_id.clone(),
            parent: None,
            diff_id,
            size: unpacked,
            dir,
        }),
        unpacked,
        opts.reference.iter().cloned().collect(),
    )?;
    Ok(id)
}

/// Stores a Berth-made config and its OCI manifest, syncs, and publishes the image.
pub(crate) fn publish(
    store: &Store,
    config: &ImageConfig,
    layers: Vec<LayerRef>,
    new_layer: Option<NewLayer>,
    size: u64,
    tags: Vec<Reference>,
) -> Result<Digest> {
    let config_bytes = to_json(config);
    let id = store.content().write_bytes(&config_bytes)?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(mt::OCI_MANIFEST.into()),
        artifact_type: None,
        config: Descriptor::new(mt::OCI_CONFIG, id.clone(), config_bytes.len() as u64),
        layers: layers
            .iter()
            .map(|l| Descriptor::new(&l.media_type, l.blob.clone(), l.size))
            .collect(),
        subject: None,
        annotations: None,
    };
    let manifest = store.content().write_bytes(&to_json(&manifest))?;
    store.sync()?;
    store.commit_image(ImageCommit {
        image: ImageRecord {
            id: id.clone(),
            manifest,
            manifest_media_type: mt::OCI_MANIFEST.into(),
            config_media_type: mt::OCI_CONFIG.into(),
            layers,
            size,
            created_at: berth_store::now_rfc3339(),
            last_tag_time: None,
            extra: Default::default(),
        },
        new_layers: new_layer.into_iter().collect(),
        tags,
    })?;
    Ok(id)
}
