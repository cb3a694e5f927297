//! `checkpoint` / `restore`: not supported (no CRIU integration).

use crate::cli::{Command, Matches};

pub const CHECKPOINT: Command = Command {
    name: "checkpoint",
    alias: None,
    args: "<container-id>",
    about: "Not supported: berth-runtime has no CRIU integration",
    flags: &[],
};

pub const RESTORE: Command = Command {
    name: "restore",
    alias: None,
    args: "<container-id>",
    about: "Not supported: berth-runtime has no CRIU integration",
    flags: &[],
};

pub fn run(_g: &crate::Global, _m: &Matches) -> anyhow::Result<i32> {
    anyhow::bail!(
        "checkpoint/restore is not supported by berth-runtime: it has no CRIU integration \
         (use runc for checkpoint and restore)"
    )
}
