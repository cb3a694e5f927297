//! Docker's value syntaxes: sizes (`512m`), CPU counts (`1.5`), ulimits
//! (`nofile=1024:2048`), Go durations (`1m30s`), restart policies (`on-failure:3`).

use berth_api::models::{ResourcesUlimits, RestartPolicy, RestartPolicyNameEnum};

/// `RAMInBytes`: a number with an optional binary unit (`k`, `m`, `g`, `t`, `p`, with optional
/// `i` and `b`), case-insensitive: `512m` = 536870912, `1.5g`, `64KiB`, `100`.
pub fn ram_in_bytes(s: &str) -> Result<i64, String> {
    let bad = || format!("invalid size: '{s}'");
    let lower = s.to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (num, mut unit) = lower.split_at(digits_end);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') || num.contains("..") {
        return Err(bad());
    }
    unit = unit.strip_prefix(' ').unwrap_or(unit);
    let mut chars = unit.chars();
    let mult: f64 = match chars.clone().next() {
        Some('k') => 1024.0,
        Some('m') => 1024f64.powi(2),
        Some('g') => 1024f64.powi(3),
        Some('t') => 1024f64.powi(4),
        Some('p') => 1024f64.powi(5),
        _ => 1.0,
    };
    if mult != 1.0 {
        chars.next();
    }
    let rest: String = chars.collect();
    if !matches!(rest.as_str(), "" | "b" | "i" | "ib") {
        return Err(bad());
    }
    // Go's regexp accepts "1.2.3" as a number and ParseFloat then rejects it.
    let value: f64 = num.parse().map_err(|_| bad())?;
    let bytes = value * mult;
    if !bytes.is_finite() || bytes > i64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as i64)
}

/// `--cpus`: a decimal or fraction (`1.5`, `3/2`) → nano CPUs; must be positive and at most
/// nanosecond precise.
pub fn nano_cpus(s: &str) -> Result<i64, String> {
    let (num, den) =
        parse_rational(s).ok_or_else(|| format!("failed to parse {s} as a rational number"))?;
    // value * 1e9 must be an integer: num * 1e9 divisible by den.
    let scaled = num
        .checked_mul(1_000_000_000)
        .ok_or_else(|| format!("value {s} is too large"))?;
    if scaled % den != 0 {
        return Err("value is too precise".into());
    }
    let nano = scaled / den;
    // 0 means no limit and a range check is the daemon's (it knows the CPUs), as docker's
    // CLI leaves it
    i64::try_from(nano).map_err(|_| format!("value {s} is too large"))
}

/// A decimal (`1.25`), integer or fraction (`3/2`) as numerator/denominator.
fn parse_rational(s: &str) -> Option<(i128, i128)> {
    let s = s.trim();
    if let Some((n, d)) = s.split_once('/') {
        let n: i128 = n.parse().ok()?;
        let d: i128 = d.parse().ok()?;
        if d == 0 {
            return None;
        }
        return Some(if d < 0 { (-n, -d) } else { (n, d) });
    }
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 18
    {
        return None;
    }
    let digits = format!("{int}{frac}");
    let n: i128 = digits.trim_start_matches('0').parse().unwrap_or(0);
    let d = 10i128.pow(frac.len() as u32);
    Some((if neg { -n } else { n }, d))
}

const ULIMIT_NAMES: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// `--ulimit name=soft[:hard]` (`infinity` or -1 for unlimited).
pub fn ulimit(s: &str) -> Result<ResourcesUlimits, String> {
    let (name, limits) = s
        .split_once('=')
        .ok_or_else(|| format!("invalid ulimit argument: {s}"))?;
    if !ULIMIT_NAMES.contains(&name) {
        return Err(format!("invalid ulimit type: {name}"));
    }
    let value = |v: &str| -> Result<i64, String> {
        if v == "infinity" {
            return Ok(-1);
        }
        // go-units parses with strconv.ParseInt; docker prints its error as is
        v.parse::<i64>().map_err(|e| {
            use std::num::IntErrorKind::{NegOverflow, PosOverflow};
            let why = match e.kind() {
                PosOverflow | NegOverflow => "value out of range",
                _ => "invalid syntax",
            };
            format!("strconv.ParseInt: parsing {v:?}: {why}")
        })
    };
    let parts: Vec<&str> = limits.split(':').collect();
    let (soft, hard) = match parts.as_slice() {
        [soft] => {
            let v = value(soft)?;
            (v, v)
        }
        [soft, hard] => (value(soft)?, value(hard)?),
        _ => {
            return Err(format!(
                "too many limit value arguments - {limits}, can only have up to two, `soft[:hard]`"
            ));
        }
    };
    if hard != -1 {
        if soft == -1 {
            return Err(format!(
                "ulimit soft limit must be less than or equal to hard limit: soft: -1 (unlimited), hard: {hard}"
            ));
        }
        if soft > hard {
            return Err(format!(
                "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
            ));
        }
    }
    Ok(ResourcesUlimits {
        name: Some(name.to_owned()),
        soft: Some(soft),
        hard: Some(hard),
    })
}

/// Go's `time.ParseDuration` → nanoseconds: `300ms`, `1m30s`, `2h`, `1.5s`.
pub fn go_duration_nanos(s: &str) -> Result<i64, String> {
    let bad = || format!("time: invalid duration {s:?}");
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if num_end == 0 {
            return Err(bad());
        }
        let n: f64 = rest[..num_end].parse().map_err(|_| bad())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("time: missing unit in duration {s:?}")),
            u => return Err(format!("time: unknown unit {u:?} in duration {s:?}")),
        };
        total += n * unit;
        rest = &rest[unit_end..];
    }
    if total > i64::MAX as f64 {
        return Err(bad());
    }
    Ok(if neg { -(total as i64) } else { total as i64 })
}

/// `--restart no|always|unless-stopped|on-failure[:N]`.
pub fn restart_policy(s: &str) -> Result<RestartPolicy, String> {
    let (name, count) = match s.split_once(':') {
        Some((n, c)) => (n, Some(c)),
        None => (s, None),
    };
    let count = match count {
        Some(c) if !c.is_empty() => Some(c.parse::<i64>().map_err(|_| {
            "invalid restart policy format: maximum retry count must be an integer".to_owned()
        })?),
        _ => None,
    };
    let name = match name {
        "" | "no" => RestartPolicyNameEnum::NO,
        "always" => RestartPolicyNameEnum::ALWAYS,
        "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
        "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
        other => {
            return Err(format!(
                "invalid restart policy: unknown policy '{other}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
            ));
        }
    };
    if let Some(c) = count {
        if name != RestartPolicyNameEnum::ON_FAILURE {
            return Err(
                "invalid restart policy: maximum retry count can only be used with 'on-failure'"
                    .into(),
            );
        }
        if c < 0 {
            return Err("invalid restart policy: maximum retry count cannot be negative".into());
        }
    }
    Ok(RestartPolicy {
        name: Some(name),
        maximum_retry_count: count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(ram_in_bytes("512m"), Ok(512 << 20));
        assert_eq!(ram_in_bytes("512M"), Ok(512 << 20));
        assert_eq!(ram_in_bytes("1g"), Ok(1 << 30));
        assert_eq!(ram_in_bytes("1.5GB"), Ok(1536 << 20));
        assert_eq!(ram_in_bytes("64KiB"), Ok(64 << 10));
        assert_eq!(ram_in_bytes("100"), Ok(100));
        assert_eq!(ram_in_bytes("100b"), Ok(100));
        assert_eq!(ram_in_bytes("10 k"), Ok(10240));
        for bad in [
            "abc",
            "",
            "m",
            "-1",
            "1x",
            "1.2.3",
            "1mbb",
            "1e3",
            ".5m",
            "99999999999p",
        ] {
            assert!(ram_in_bytes(bad).is_err(), "{bad}");
        }
        assert_eq!(ram_in_bytes("abc").unwrap_err(), "invalid size: 'abc'");
    }

    #[test]
    fn cpus() {
        assert_eq!(nano_cpus("1.5"), Ok(1_500_000_000));
        assert_eq!(nano_cpus("0.01"), Ok(10_000_000));
        assert_eq!(nano_cpus("3/2"), Ok(1_500_000_000));
        assert_eq!(nano_cpus("2"), Ok(2_000_000_000));
        assert_eq!(
            nano_cpus("0.0000000001").unwrap_err(),
            "value is too precise"
        );
        assert_eq!(
            nano_cpus("abc").unwrap_err(),
            "failed to parse abc as a rational number"
        );
        assert_eq!(nano_cpus("-1").unwrap(), -1_000_000_000);
        assert_eq!(nano_cpus("0").unwrap(), 0);
        assert!(nano_cpus("1/0").is_err());
    }

    #[test]
    fn ulimits() {
        let u = ulimit("nofile=1024:2048").unwrap();
        assert_eq!(
            (u.name.as_deref(), u.soft, u.hard),
            (Some("nofile"), Some(1024), Some(2048))
        );
        let u = ulimit("core=infinity").unwrap();
        assert_eq!((u.soft, u.hard), (Some(-1), Some(-1)));
        assert_eq!(
            ulimit("nofile").unwrap_err(),
            "invalid ulimit argument: nofile"
        );
        assert_eq!(ulimit("bogus=1").unwrap_err(), "invalid ulimit type: bogus");
        assert!(
            ulimit("nofile=2048:1024")
                .unwrap_err()
                .contains("2048 > 1024")
        );
        assert!(
            ulimit("nofile=1:2:3")
                .unwrap_err()
                .contains("too many limit value arguments")
        );
        assert!(ulimit("nofile=x").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(go_duration_nanos("30s"), Ok(30_000_000_000));
        assert_eq!(go_duration_nanos("1m30s"), Ok(90_000_000_000));
        assert_eq!(go_duration_nanos("1.5s"), Ok(1_500_000_000));
        assert_eq!(go_duration_nanos("300ms"), Ok(300_000_000));
        assert_eq!(go_duration_nanos("0"), Ok(0));
        for bad in ["", "5", "1x", "s", "1.s.", "--1s"] {
            assert!(go_duration_nanos(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn restart_policies() {
        let p = restart_policy("on-failure:3").unwrap();
        assert_eq!(
            (p.name, p.maximum_retry_count),
            (Some(RestartPolicyNameEnum::ON_FAILURE), Some(3))
        );
        assert_eq!(
            restart_policy("always").unwrap().name,
            Some(RestartPolicyNameEnum::ALWAYS)
        );
        assert_eq!(
            restart_policy("no").unwrap().name,
            Some(RestartPolicyNameEnum::NO)
        );
        assert!(
            restart_policy("sometimes")
                .unwrap_err()
                .contains("unknown policy 'sometimes'")
        );
        assert!(
            restart_policy("always:3")
                .unwrap_err()
                .contains("only be used with 'on-failure'")
        );
        assert!(
            restart_policy("on-failure:x")
                .unwrap_err()
                .contains("must be an integer")
        );
        assert!(
            restart_policy("on-failure:-1")
                .unwrap_err()
                .contains("cannot be negative")
        );
    }
}
