//! `update [--resources FILE|-] [flags] ID`: change a running container's resources.

use anyhow::Context;
use berth_oci::spec::runtime::LinuxResources;
use serde_json::{Value, json};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// JSON file with an OCI linux.resources object ("-" for stdin).
    #[arg(short, long)]
    pub resources: Option<String>,
    /// Memory limit (bytes, or with k/m/g suffix; -1 for unlimited).
    #[arg(short, long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory soft limit.
    #[arg(long = "memory-reservation", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit.
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// CPU shares (relative weight).
    #[arg(long = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    /// CPU CFS period (microseconds).
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    /// CPU CFS quota (microseconds; -1 for unlimited).
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPUs allowed (e.g. 0-1).
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes allowed.
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Block IO weight (10-1000).
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// Maximum number of processes (-1 for unlimited).
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Container id.
    pub id: String,
}

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

pub fn resources(a: &Args) -> anyhow::Result<LinuxResources> {
    let mut v: Value = match &a.resources {
        Some(p) => serde_json::from_slice(&super::read_input(p)?)
            .with_context(|| format!("--resources {p}: not JSON"))?,
        None => json!({}),
    };
    let mut set = |section: &str, key: &str, val: Value| {
        let o = v.as_object_mut().expect("object");
        o.entry(section).or_insert_with(|| json!({}))[key] = val;
    };
    if let Some(m) = &a.memory {
        set("memory", "limit", json!(parse_bytes(m)?));
    }
    if let Some(m) = &a.memory_reservation {
        set("memory", "reservation", json!(parse_bytes(m)?));
    }
    if let Some(m) = &a.memory_swap {
        set("memory", "swap", json!(parse_bytes(m)?));
    }
    if let Some(x) = a.cpu_shares {
        set("cpu", "shares", json!(x));
    }
    if let Some(x) = a.cpu_period {
        set("cpu", "period", json!(x));
    }
    if let Some(x) = a.cpu_quota {
        set("cpu", "quota", json!(x));
    }
    if let Some(x) = &a.cpuset_cpus {
        set("cpu", "cpus", json!(x));
    }
    if let Some(x) = &a.cpuset_mems {
        set("cpu", "mems", json!(x));
    }
    if let Some(x) = a.blkio_weight {
        set("blockIO", "weight", json!(x));
    }
    if let Some(x) = a.pids_limit {
        set("pids", "limit", json!(x));
    }
    let de = v.clone();
    serde_path_to_error::deserialize(de)
        .map_err(|e| anyhow::anyhow!("invalid resources: {}: {}", e.path(), e.inner()))
}

pub fn run(g: &crate::Global, a: &Args) -> anyhow::Result<i32> {
    let res = resources(a)?;
    let mut c = super::load(g, &a.id)?;
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
