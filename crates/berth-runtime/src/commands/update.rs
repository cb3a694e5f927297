//! `update [--resources FILE|-] [flags] ID`: change a running container's resources.

use anyhow::Context;
use berth_oci::spec::runtime::LinuxResources;
use serde_json::{Value, json};

use crate::cli::{Command, Flag, Matches, opt};

const FLAGS: &[Flag] = &[
    opt(
        "resources",
        Some('r'),
        "FILE",
        "JSON linux.resources object (- for stdin)",
    ),
    opt(
        "memory",
        Some('m'),
        "BYTES",
        "memory limit (k/m/g suffixes; -1 unlimited)",
    ),
    opt("memory-reservation", None, "BYTES", "memory soft limit"),
    opt("memory-swap", None, "BYTES", "memory plus swap limit"),
    opt(
        "kernel-memory",
        None,
        "BYTES",
        "accepted and ignored (deprecated by the kernel)",
    ),
    opt("cpu-shares", None, "N", "CPU shares (relative weight)"),
    opt("cpu-period", None, "US", "CPU CFS period"),
    opt("cpu-quota", None, "US", "CPU CFS quota (-1 unlimited)"),
    opt("cpuset-cpus", None, "LIST", "CPUs allowed (e.g. 0-1)"),
    opt("cpuset-mems", None, "LIST", "memory nodes allowed"),
    opt("blkio-weight", None, "N", "block IO weight (10-1000)"),
    opt(
        "pids-limit",
        None,
        "N",
        "maximum number of processes (-1 unlimited)",
    ),
];

pub const COMMAND: Command = Command {
    name: "update",
    alias: None,
    args: "<container-id>",
    about: "Change a running container's resource limits",
    flags: FLAGS,
};

/// `512m` → 536870912; `-1` → -1.
pub fn parse_bytes(s: &str) -> anyhow::Result<i64> {
    let s = s.trim();
    if s == "-1" {
        return Ok(-1);
    }
    let lower = s.to_ascii_lowercase();
    let t = lower.trim_end_matches('b');
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num.parse().with_context(|| format!("invalid size {s:?}"))?;
    if n < 0.0 {
        anyhow::bail!("invalid size {s:?}: negative");
    }
    Ok((n * mult as f64) as i64)
}

pub fn resources(m: &Matches) -> anyhow::Result<LinuxResources> {
    let mut v: Value = match m.value("resources") {
        Some(p) => serde_json::from_slice(&super::read_input(p)?)
            .with_context(|| format!("--resources {p}: not JSON"))?,
        None => json!({}),
    };
    let mut set = |section: &str, key: &str, val: Value| {
        let o = v.as_object_mut().expect("object");
        o.entry(section).or_insert_with(|| json!({}))[key] = val;
    };
    for (flag, section, key) in [
        ("memory", "memory", "limit"),
        ("memory-reservation", "memory", "reservation"),
        ("memory-swap", "memory", "swap"),
    ] {
        if let Some(x) = m.value(flag) {
            set(section, key, json!(parse_bytes(x)?));
        }
    }
    if let Some(x) = m.parse::<u64>("cpu-shares")? {
        set("cpu", "shares", json!(x));
    }
    if let Some(x) = m.parse::<u64>("cpu-period")? {
        set("cpu", "period", json!(x));
    }
    if let Some(x) = m.parse::<i64>("cpu-quota")? {
        set("cpu", "quota", json!(x));
    }
    if let Some(x) = m.value("cpuset-cpus") {
        set("cpu", "cpus", json!(x));
    }
    if let Some(x) = m.value("cpuset-mems") {
        set("cpu", "mems", json!(x));
    }
    if let Some(x) = m.parse::<u16>("blkio-weight")? {
        set("blockIO", "weight", json!(x));
    }
    if let Some(x) = m.parse::<i64>("pids-limit")? {
        set("pids", "limit", json!(x));
    }
    let de = v.clone();
    serde_path_to_error::deserialize(de)
        .map_err(|e| anyhow::anyhow!("invalid resources: {}: {}", e.path(), e.inner()))
}

pub fn run(g: &crate::Global, m: &Matches) -> anyhow::Result<i32> {
    m.at_most(1, "update")?;
    let id = m.arg(0, "update", "<container-id>")?;
    let res = resources(m)?;
    let mut c = super::load(g, id)?;
    c.update(&res)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("512m").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("1G").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("1024").unwrap(), 1024);
        assert_eq!(parse_bytes("-1").unwrap(), -1);
        assert!(parse_bytes("lots").is_err());
    }
}
