//! Links the `berth-shim` binary at a fixed address (non-PIE).
//!
//! A shim idles for its container's whole life, one per container, so its private memory is
//! the engine's memory per container. As a PIE, the dynamic loader rewrites ~13k relative
//! relocations at every start, dirtying ~280 KB of `.data.rel.ro` in every shim (and taking
//! time on `docker run`'s path). Linked at a fixed address, those pages stay clean and are
//! shared by all shims. (The binary keeps linking glibc and libseccomp dynamically: rustc's
//! gnu target only links statically with `-C target-feature=+crt-static`, a flag a build
//! script cannot set.)
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-link-arg-bins=-no-pie");
}
