//! Control groups for Berth containers: v1 and v2 behind one trait.
//!
//! CONTRACT (agreed with `berth-container`, which drives it; keep these signatures stable and
//! extend rather than change them):
//!
//! ```text
//! let host = Hierarchy::detect()?;                 // parse /proc/self/mountinfo once
//! let cg = host.manager(&CgroupPath::from_oci(spec_path, id)?)?;
//! cg.create()?;                                     // mkdir in every hierarchy (idempotent)
//! cg.apply(&resources)?;                            // validate everything, then write files
//! cg.add_process(pid)?;                             // before the container's init runs user code
//! ...
//! cg.freeze()? / cg.thaw()?                         // pause / resume
//! cg.stats()?  cg.pids()?  cg.oom_kill_count()?
//! cg.destroy()?                                     // rmdir everywhere; Ok if already gone
//! ```
//!
//! The implementation (by the owner of this crate) fills in the functions below; the
//! signatures are the contract.
#![forbid(unsafe_code)]
