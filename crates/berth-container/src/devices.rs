//! Device nodes created in the container's `/dev` and the device cgroup rules that let the
//! container use them (pure functions).
//!
//! Like runc: when `/dev` is not bind-mounted from the host, the default set (`null`, `zero`,
//! `full`, `random`, `urandom`, `tty`) plus `linux.devices` are created, and `/dev/ptmx`,
//! `/dev/fd`, `/dev/std{in,out,err}` (and `/dev/core` where `/proc/kcore` exists) become
//! symlinks. The cgroup rules are the spec's `linux.resources.devices` followed by runc's
//! default allow list, so the default devices always work.

use berth_oci::spec::runtime::{
    LinuxDevice, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType,
};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::mounts::clean_container_path;

/// A device node to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePlan {
    /// Absolute, clean path inside the container.
    pub path: PathBuf,
    /// `c`, `b` or `p`.
    pub kind: char,
    pub major: u32,
    pub minor: u32,
    /// Permission bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The default devices every container gets.
pub fn default_devices() -> Vec<DevicePlan> {
    [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ]
    .into_iter()
    .map(|(p, major, minor)| DevicePlan {
        path: p.into(),
        kind: 'c',
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

/// The symlinks created in `/dev` (target, link).
pub fn default_symlinks(with_core: bool) -> Vec<(&'static str, &'static str)> {
    let mut v = vec![
        ("/proc/self/fd", "/dev/fd"),
        ("/proc/self/fd/0", "/dev/stdin"),
        ("/proc/self/fd/1", "/dev/stdout"),
        ("/proc/self/fd/2", "/dev/stderr"),
        ("pts/ptmx", "/dev/ptmx"),
    ];
    if with_core {
        v.push(("/proc/kcore", "/dev/core"));
    }
    v
}

/// Default devices plus `linux.devices` (a spec device replaces a default one at the same
/// path).
pub fn plan_devices(spec_devices: &[LinuxDevice]) -> Result<Vec<DevicePlan>> {
    let mut out = default_devices();
    for (i, d) in spec_devices.iter().enumerate() {
        let field = |f: &str| format!("linux.devices[{i}]{f}");
        let raw = d.path();
        if !raw.is_absolute() {
            return Err(Error::spec(field(".path"), "must be an absolute path"));
        }
        let path = clean_container_path(raw);
        if path == Path::new("/") || path == Path::new("/dev") {
            return Err(Error::spec(field(".path"), "is not a device file path"));
        }
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => 'c',
            LinuxDeviceType::B => 'b',
            LinuxDeviceType::P => 'p',
            LinuxDeviceType::A => {
                return Err(Error::spec(field(".type"), "must be c, b, u or p"));
            }
        };
        let num = |v: i64, f: &str| -> Result<u32> {
            if kind == 'p' {
                return Ok(0);
            }
            u32::try_from(v).map_err(|_| Error::spec(field(f), format!("{v} is out of range")))
        };
        let plan = DevicePlan {
            path,
            kind,
            major: num(d.major(), ".major")?,
            minor: num(d.minor(), ".minor")?,
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        };
        out.retain(|p| p.path != plan.path);
        out.push(plan);
    }
    Ok(out)
}

/// runc's default device allow list, appended after the spec's rules.
pub fn default_allow_rules() -> Vec<LinuxDeviceCgroup> {
    let rule = |typ, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(typ)
            .access(access);
        if let Some(m) = major {
            b = b.major(m);
        }
        if let Some(m) = minor {
            b = b.minor(m);
        }
        b.build().expect("static device rule")
    };
    use LinuxDeviceType::{B, C};
    vec![
        // mknod of any device (opening it is what the rules below control)
        rule(C, None, None, "m"),
        rule(B, None, None, "m"),
        rule(C, Some(1), Some(3), "rwm"),
        rule(C, Some(1), Some(8), "rwm"),
        rule(C, Some(1), Some(7), "rwm"),
        rule(C, Some(5), Some(0), "rwm"),
        rule(C, Some(1), Some(5), "rwm"),
        rule(C, Some(1), Some(9), "rwm"),
        // /dev/pts/*, /dev/ptmx
        rule(C, Some(136), None, "rwm"),
        rule(C, Some(5), Some(2), "rwm"),
        // tun/tap
        rule(C, Some(10), Some(200), "rwm"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_devices_replace_defaults_and_validate() {
        let devs: Vec<LinuxDevice> = serde_json::from_str(
            r#"[{"path":"/dev/null","type":"c","major":1,"minor":3,"fileMode":438,"uid":5},
                {"path":"/dev/../dev/fuse","type":"c","major":10,"minor":229},
                {"path":"/dev/pipe","type":"p","major":0,"minor":0}]"#,
        )
        .unwrap();
        let p = plan_devices(&devs).unwrap();
        assert_eq!(p.len(), 8);
        let null: Vec<_> = p
            .iter()
            .filter(|d| d.path == Path::new("/dev/null"))
            .collect();
        assert_eq!(null.len(), 1);
        assert_eq!(null[0].uid, 5);
        assert!(
            p.iter()
                .any(|d| d.path == Path::new("/dev/fuse") && d.minor == 229)
        );
        assert!(p.iter().any(|d| d.kind == 'p'));

        let bad: Vec<LinuxDevice> =
            serde_json::from_str(r#"[{"path":"dev/x","type":"c","major":1,"minor":1}]"#).unwrap();
        let e = plan_devices(&bad).unwrap_err().to_string();
        assert!(e.contains("linux.devices[0].path"), "{e}");
        let bad: Vec<LinuxDevice> =
            serde_json::from_str(r#"[{"path":"/dev/x","type":"c","major":-1,"minor":1}]"#).unwrap();
        let e = plan_devices(&bad).unwrap_err().to_string();
        assert!(e.contains("linux.devices[0].major"), "{e}");
    }

    #[test]
    fn allow_rules_cover_default_devices() {
        let rules = default_allow_rules();
        for d in default_devices() {
            assert!(
                rules.iter().any(|r| r.major() == Some(d.major as i64)
                    && r.minor() == Some(d.minor as i64)
                    && r.access().as_deref() == Some("rwm")),
                "{d:?}"
            );
        }
    }
}
