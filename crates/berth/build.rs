//! Links the `berth` binary at a fixed address (non-PIE), as `berthd` and `berth-shim` are.
//!
//! The CLI is exec'd for every command, so its start is on the path of every `berth run`. As
//! a PIE, the dynamic loader applies ~3.1k relative relocations at each start: it reads the
//! 77 KB of `.rela.dyn` and rewrites the 13 pages of `.data.rel.ro` (~12 of the ~150 page
//! faults of a `berth --version`). Linked at a fixed address, none of that happens.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-link-arg-bins=-no-pie");
}
