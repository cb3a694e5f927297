//! `export` (a container's filesystem as a tar) and `diff` (what a container changed).

use std::io::Write;

use berth_archive::{Change, DiffOptions, DiffStats};
use berth_store::Store;

use crate::error::{ImageError, Result};

/// Writes the container's merged root filesystem as a tar to `out`. The overlay is mounted
/// in a private mount namespace for the duration (never on the host). Pause or stop the
/// container first for a consistent result.
pub fn export_container(
    store: &Store,
    container: &str,
    out: impl Write + Send,
) -> Result<DiffStats> {
    let _op = store.op();
    let overlay = store.container_overlay(container)?;
    let scratch = store.temp_dir("export")?;
    let result = overlay.with_mounted(&scratch, |root| {
        berth_archive::write_dir_tar(root, out, &DiffOptions::default())
    });
    let _ = std::fs::remove_dir(&scratch);
    result?.map_err(|source| ImageError::Layer {
        what: format!("export of container {container}"),
        source,
    })
}

/// `docker diff`: what the container added (A), changed (C) or deleted (D), sorted by path.
pub fn container_changes(store: &Store, container: &str) -> Result<Vec<Change>> {
    let overlay = store.container_overlay(container)?;
    let upper = overlay
        .upperdir
        .clone()
        .ok_or_else(|| ImageError::NotFound(format!("upper dir of container {container}")))?;
    berth_archive::changes_with_lowers(&upper, &overlay.layer_dirs).map_err(|source| {
        ImageError::Layer {
            what: format!("changes of container {container}"),
            source,
        }
    })
}
