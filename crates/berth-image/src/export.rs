//! `export` (a container's filesystem as a tar) and `diff` (what a container changed).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use berth_archive::{Change, DiffOptions, DiffStats};
use berth_store::{Overlay, Store};

use crate::error::{ImageError, Result};

/// The mount points Docker's init layer holds (moby `daemon/initlayer`): what `docker export`
/// shows at these paths whatever the image has there, since Docker mounts the init layer
/// between the image and the container's writable layer and bind-mounts over these paths at
/// run time. Files and directories are mode 0755, owned by root.
const INIT_LAYER: &[(&str, InitEntry)] = &[
    ("dev/pts", InitEntry::Dir),
    ("dev/shm", InitEntry::Dir),
    ("proc", InitEntry::Dir),
    ("sys", InitEntry::Dir),
    (".dockerenv", InitEntry::File),
    ("etc/resolv.conf", InitEntry::File),
    ("etc/hosts", InitEntry::File),
    ("etc/hostname", InitEntry::File),
    ("dev/console", InitEntry::File),
    ("etc/mtab", InitEntry::Symlink("/proc/mounts")),
];

/// The kind of an [`INIT_LAYER`] entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InitEntry {
    /// An empty directory.
    Dir,
    /// An empty file.
    File,
    /// A symbolic link to this target.
    Symlink(&'static str),
}

/// Writes the container's merged root filesystem as a tar to `out`, with Docker's init-layer
/// entries ([`INIT_LAYER`]) on top, as `docker export` has them. The overlay is mounted
/// read-only in a private mount namespace for the duration (never on the host). Pause or
/// stop the container first for a consistent result.
///
/// Berth's own init layer (per image, `berth_store::init`) holds only the mount points the
/// image lacks, with the runtime's modes, below the writable layer (containers made before
/// it have them in their writable layer). So the export stacks a temporary init directory
/// with Docker's entries above the writable layer, which is mounted as a lower layer
/// (whiteouts and opaque directories count there as well). The init entries
/// carry the writable layer's creation time (the container's), so exporting an unchanged
/// container twice gives the same bytes.
pub fn export_container(
    store: &Store,
    container: &str,
    out: impl Write + Send,
) -> Result<DiffStats> {
    let _op = store.op();
    let overlay = store.container_overlay(container)?;
    let scratch = store.temp_dir("export")?;
    let init = match store.temp_dir("export-init") {
        Ok(dir) => dir,
        Err(e) => {
            let _ = std::fs::remove_dir(&scratch);
            return Err(e.into());
        }
    };
    let result = (|| {
        let view = export_view(&overlay, &init)?;
        let r = view.with_mounted(&scratch, |root| {
            berth_archive::write_dir_tar(root, out, &DiffOptions::default())
        })?;
        r.map_err(|source| ImageError::Layer {
            what: format!("export of container {container}"),
            source,
        })
    })();
    let _ = std::fs::remove_dir(&scratch);
    let _ = std::fs::remove_dir_all(&init);
    result
}

/// Fills `init` with [`INIT_LAYER`] and returns a read-only overlay of it above the
/// container's layers.
fn export_view(overlay: &Overlay, init: &Path) -> Result<Overlay> {
    let mut lowers = vec![init.to_path_buf()];
    let mut dirs = vec![init.to_path_buf()];
    let mut created = None;
    if let Some(upper) = &overlay.upperdir {
        let meta = std::fs::symlink_metadata(upper)
            .map_err(|e| ImageError::io(format!("reading {}", upper.display()), e))?;
        created = meta.created().or_else(|_| meta.modified()).ok();
        lowers.push(upper.clone());
        dirs.push(upper.clone());
    }
    write_init_layer(init, created)?;
    lowers.extend(overlay.lowerdirs.iter().cloned());
    dirs.extend(overlay.layer_dirs.iter().cloned());
    Ok(Overlay {
        lowerdirs: lowers,
        layer_dirs: dirs,
        upperdir: None,
        workdir: None,
    })
}

/// Creates [`INIT_LAYER`] under `dir` (mode 0755, root-owned, times set to `time` if given).
fn write_init_layer(dir: &Path, time: Option<SystemTime>) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    let io =
        |what: &Path, e: std::io::Error| ImageError::io(format!("creating {}", what.display()), e);
    let mut made: Vec<PathBuf> = vec![dir.to_path_buf()];
    for (rel, kind) in INIT_LAYER {
        let path = dir.join(rel);
        let mut parents: Vec<PathBuf> = Vec::new();
        let mut p = path.parent();
        while let Some(d) = p {
            if d == dir || d.exists() {
                break;
            }
            parents.push(d.to_path_buf());
            p = d.parent();
        }
        for d in parents.into_iter().rev() {
            std::fs::DirBuilder::new()
                .mode(0o755)
                .create(&d)
                .map_err(|e| io(&d, e))?;
            made.push(d);
        }
        match kind {
            InitEntry::Dir => {
                std::fs::DirBuilder::new()
                    .mode(0o755)
                    .create(&path)
                    .map_err(|e| io(&path, e))?;
            }
            InitEntry::File => {
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o755)
                    .open(&path)
                    .map_err(|e| io(&path, e))?;
            }
            InitEntry::Symlink(target) => {
                std::os::unix::fs::symlink(target, &path).map_err(|e| io(&path, e))?;
            }
        }
        made.push(path);
    }
    // The mode given at creation is masked by the umask; Docker's is 0755 exactly.
    for p in &made {
        let meta = std::fs::symlink_metadata(p).map_err(|e| io(p, e))?;
        if !meta.file_type().is_symlink() {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| io(p, e))?;
        }
        std::os::unix::fs::lchown(p, Some(0), Some(0)).map_err(|e| io(p, e))?;
    }
    if let Some(t) = time {
        let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        let ts = rustix::fs::Timestamps {
            last_access: rustix::fs::Timespec {
                tv_sec: since.as_secs() as i64,
                tv_nsec: since.subsec_nanos() as _,
            },
            last_modification: rustix::fs::Timespec {
                tv_sec: since.as_secs() as i64,
                tv_nsec: since.subsec_nanos() as _,
            },
        };
        // Last made first: making an entry changed its parent's time, setting a time does not.
        for p in made.iter().rev() {
            rustix::fs::utimensat(
                rustix::fs::CWD,
                p,
                &ts,
                rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| io(p, e.into()))?;
        }
    }
    Ok(())
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
