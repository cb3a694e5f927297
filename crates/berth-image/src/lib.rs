//! Images: formats and operations over the [`berth_store`] store.
//!
//! - [`formats`]: OCI index/manifest/descriptor, Docker `manifest.json`, the image config.
//! - [`load()`] / [`save()`]: `docker load` / `docker save` archives (both the classic and the
//!   Docker 25+ `blobs/sha256` form) and OCI archives, byte-compatible with the peers.
//! - [`import()`] / [`export_container`]: rootfs tarball or directory → one-layer image;
//!   container filesystem → tar.
//! - [`commit()`], [`container_changes`]: container upper dir → new layer; `docker diff`.
//! - [`ops`]: tag, rmi, history, inspect, list with filters, prune.
//! - [`spec`]: image config + user overrides → the container's process (Entrypoint/Cmd rules,
//!   Env, WorkingDir, User resolved through the image's /etc/passwd and /etc/group).
//!
//! Everything is synchronous; the engine calls it from `spawn_blocking`. Operations hold the
//! store's operation guard so GC never removes content they are still writing.
#![forbid(unsafe_code)]

pub mod change;
pub mod commit;
pub mod error;
pub mod export;
pub mod formats;
pub mod import;
pub mod load;
pub mod ops;
pub mod save;
pub mod spec;
mod unpack;

pub use error::{ImageError, Result};

pub use formats::{ContainerConfig, ImageConfig};

pub use commit::{CommitOptions, commit};
pub use export::{container_changes, export_container};
pub use import::{ImportOptions, ImportSource, import};
pub use load::{LoadOptions, LoadReport, LoadedImage, load};
pub use ops::{
    DeleteItem, HistoryItem, ImageSummary, ListOptions, PruneReport, RemoveOptions, history,
    image_config, inspect, list, prune, remove, tag,
};
pub use save::{SaveFormat, save};
