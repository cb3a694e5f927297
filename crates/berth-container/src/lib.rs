//! Creating and running containers from OCI bundles (runtime spec 1.2, Linux).
//!
//! Synchronous and without global state, so that one single-threaded process (the per-
//! container shim, or the `berth-runtime` CLI) can create containers in-process, one after
//! another, and keep running.
//!
//! ```text
//! let rt = Runtime::new("/run/berth-runtime").with_seccomp_cache("/run/berth-runtime/.seccomp");
//! let created = rt.create(CreateOptions { id, bundle, start: StartMode::Now, ..Default::default() })?;
//! // the caller is the init's parent: waitpid(created.pid), then
//! created.container.delete(false)?;
//!
//! // or runc's split:
//! rt.create(CreateOptions { id, bundle, ..Default::default() })?;   // init waits on a fifo
//! rt.load(&id)?.start()?;                                           // runs the app
//! rt.load(&id)?.exec(ExecOptions { process, .. })?;                 // another process inside
//! rt.load(&id)?.kill(libc::SIGTERM, false)?;
//! rt.load(&id)?.delete(false)?;
//!
//! // or held by its only user (the shim): no files under the root at all
//! let created = rt.create(CreateOptions { id, bundle, held: true, ..Default::default() })?;
//! let keep = created.container.held_state();                       // later: rt.adopt(keep)?
//! created.container.start_gated(created.start_gate.unwrap())?;      // runs the app
//! ```
//!
//! How a container comes to life (see [`sync`] for the messages): the spec is validated and
//! turned into a [`plan::Plan`] (every error names its JSON field, and nothing exists yet);
//! the cgroup and state directory are made; the init is cloned straight into its new
//! namespaces (`clone3`; a helper process first when namespaces are joined by path or a time
//! namespace is needed); the runtime writes id maps, joins it to the cgroup and runs the
//! runtime-side hooks while the init mounts the rootfs, pivots, drops privileges and loads
//! its seccomp filter; the init then waits on the exec fifo (create; a pipe, the start gate,
//! for a held container) or execs at once (run).
#![forbid(unsafe_code)]

pub mod caps;
mod cgroup_join;
mod child;
mod container;
pub mod devices;
mod error;
pub mod hooks;
pub mod mounts;
pub mod plan;
mod reaper;
mod rootfs;
pub mod seccomp;
pub mod seccomp_ranges;
mod spawn;
pub mod state;
pub mod sync;
pub mod sysctl;

pub use container::{
    Container, CreateOptions, Created, ExecOptions, Runtime, Spawned, StartMode, Stdio, load_spec,
    parse_spec,
};
pub use error::{Error, Result};
pub use plan::OverlayMount;
pub use state::{OciState, StateFile, Status, validate_id};
