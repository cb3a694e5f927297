//! The one crate of Berth allowed to contain `unsafe`.
//!
//! Everything here is a thin, documented wrapper over a kernel interface that the safe
//! crates (`rustix`, `nix`) do not cover, plus filesystem primitives that every crate needs
//! to get exactly right once (atomic writes). Each `unsafe` block carries a `// SAFETY:`
//! proof; the workspace denies undocumented ones.
//!
//! Modules are owned by the crate that needed them first; keep each one small and give it a
//! safe API, so callers never see raw pointers.

pub mod bpf;
pub mod fs;
pub mod memfd;
pub mod mount;
pub mod process;
pub mod seccomp;
