//! Berth's daemon core, used by `berthd`.
//!
//! - [`engine`]: the [`Engine`]: container records (in the store's `meta.redb`, see
//!   [`record`]), lifecycle operations (create, start, stop, kill, restart, pause, wait,
//!   attach, remove, rename), shim supervision and live restore.
//! - [`status`]: the container state machine, changed only by [`status::apply`].
//! - [`spec`]: Docker's create body → OCI runtime spec (pure, golden-tested), with Docker's
//!   default security.
//! - [`shim`]: spawning `berth-shim` from one sealed memfd and its control protocol.
//! - [`logs`]: reading json-file logs (rotation, follow, tail, since/until, framing).
//! - [`events`]: the events bus with history and filters.
//! - [`inspect`]: Docker's JSON for inspect, list (with filters), prune, disk usage.
//! - [`images`]: image operations with events.
//! - [`netns`]: network namespaces made ahead of time, joined by private-network containers.
//! - [`slots`]: the next create's container and snapshot directories, made ahead of time.
//! - `group_sync`: durable removals in flight share one metadata `fdatasync`.
//!
//! Errors carry Docker's wording and a kind ([`berth_oci::errdefs::Classify`]); berthd maps
//! kinds to HTTP statuses in one place.
#![forbid(unsafe_code)]
#![recursion_limit = "256"]

pub mod bridge;
pub mod engine;
pub mod error;
pub mod events;
mod group_sync;
pub mod images;
pub mod inspect;
pub mod logs;
pub mod names;
pub mod netns;
pub mod record;
pub mod shim;
pub mod slots;
pub mod spec;
pub mod status;

pub use engine::{
    Attached, Container, DEFAULT_PIDS_LIMIT, Engine, EngineConfig, Life, PendingAttach,
    WaitCondition,
};
pub use error::{EngineError, Result};
