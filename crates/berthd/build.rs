//! Links the `berthd` binary at a fixed address (non-PIE), as `berth-shim` is.
//!
//! As a PIE, the dynamic loader applies ~21k relative relocations at every start: it reads
//! all of `.rela.dyn` (~0.5 MB) and rewrites every page of `.data.rel.ro` (~0.4 MB), which
//! then stays resident as private memory for the daemon's life. Linked at a fixed address,
//! neither is touched at startup; `.data.rel.ro` is paged in from the file only where used
//! (docs/engine.md, "Speed and memory").
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-link-arg-bins=-no-pie");
}
