//! Shared vocabulary for every Berth crate.
//!
//! - [`spec`]: the OCI runtime, image and distribution types (the `oci-spec` crate, re-exported
//!   so that its version is chosen in exactly one place).
//! - [`caps`]: capability names and numbers (the one table) and Docker's default set;
//!   [`sysctl`]: which sysctls a container's own namespaces cover; [`paths`]: Docker's masked
//!   and read-only paths.
//! - [`digest`]: content digests and hashing readers/writers.
//! - [`errdefs`]: the kinds every library error is classified into; only the API server turns
//!   kinds into HTTP statuses.
#![forbid(unsafe_code)]

pub mod caps;
pub mod digest;
pub mod errdefs;
pub mod media_types;
pub mod namespaces;
pub mod paths;
pub mod platform;
pub mod reference;
pub mod seccomp_profile;
pub mod sysctl;

pub use digest::Digest;
/// The OCI specification types, re-exported from `oci-spec`.
pub use oci_spec as spec;
pub use platform::Platform;
pub use reference::Reference;
