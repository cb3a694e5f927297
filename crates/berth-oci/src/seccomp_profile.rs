//! Docker's seccomp profile format → OCI `linux.seccomp`.
//!
//! Docker profiles (like `spec/seccomp-default.json`, which [`DEFAULT_PROFILE`] embeds) are a
//! superset of the OCI form: rules can be limited to architectures (`includes.arches` /
//! `excludes.arches`, in Go's names such as `amd64`), to capability sets (`includes.caps`:
//! all must be in the container's bounding set; `excludes.caps`: any present drops the rule)
//! and to kernel versions (`minKernel`); and `archMap` lists, per native architecture, the
//! sub-architectures to allow. [`DockerProfile::to_oci`] resolves all of that for one
//! container, exactly as moby's `setupSeccomp` does, giving the plain OCI `LinuxSeccomp` that a
//! runtime compiles.
//!
//! ```
//! use berth_oci::seccomp_profile::{DockerProfile, ProfileTarget, DEFAULT_PROFILE};
//! let profile = DockerProfile::parse(DEFAULT_PROFILE.as_bytes()).unwrap();
//! let caps = ["CAP_CHOWN".to_string(), "CAP_KILL".to_string()];
//! let oci = profile.to_oci(&ProfileTarget::new("amd64", &caps).with_kernel(6, 1)).unwrap();
//! assert!(oci.syscalls().as_ref().unwrap().iter().any(|s| s.names().contains(&"read".into())));
//! ```

use crate::errdefs::{Classify, ErrorKind};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompBuilder,
    LinuxSeccompFilterFlag, LinuxSyscall, LinuxSyscallBuilder,
};
use serde::Deserialize;
use std::path::PathBuf;

/// Docker's default profile (moby v27.5.1 `profiles/seccomp/default.json`).
pub const DEFAULT_PROFILE: &str = include_str!("../../../spec/seccomp-default.json");

/// Why a profile could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SeccompProfileError {
    /// The JSON is malformed or a field has the wrong type/value.
    #[error("invalid seccomp profile: {path}: {message}")]
    Parse { path: String, message: String },
    /// The JSON parses but is contradictory.
    #[error("invalid seccomp profile: {field}: {reason}")]
    Invalid { field: String, reason: String },
}

impl Classify for SeccompProfileError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

/// A seccomp profile in Docker's format.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerProfile {
    pub default_action: LinuxSeccompAction,
    #[serde(default)]
    pub default_errno_ret: Option<u32>,
    /// Explicit architectures (mutually exclusive with `archMap`).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub architectures: Vec<Arch>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub arch_map: Vec<ArchMapEntry>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub flags: Vec<LinuxSeccompFilterFlag>,
    #[serde(default)]
    pub listener_path: Option<PathBuf>,
    #[serde(default)]
    pub listener_metadata: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub syscalls: Vec<DockerSyscall>,
}

/// One `archMap` entry: a native architecture and the sub-architectures it can run.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchMapEntry {
    pub architecture: Arch,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub sub_architectures: Vec<Arch>,
}

/// One rule of a Docker profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerSyscall {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub names: Vec<String>,
    pub action: LinuxSeccompAction,
    #[serde(default)]
    pub errno_ret: Option<u32>,
    #[serde(default)]
    pub args: Option<Vec<LinuxSeccompArg>>,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub includes: Option<Filter>,
    #[serde(default)]
    pub excludes: Option<Filter>,
}

/// Conditions of `includes` / `excludes`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    #[serde(default, deserialize_with = "null_as_empty")]
    pub arches: Vec<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub caps: Vec<String>,
    #[serde(default)]
    pub min_kernel: Option<String>,
}

/// Go writes nil slices as `null` (Docker's own profile has `"subArchitectures": null`).
fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// The container a profile is resolved for.
#[derive(Debug, Clone)]
pub struct ProfileTarget<'a> {
    /// Docker's (Go's) architecture name: `amd64`, `arm64`, `x86`, `arm`, `ppc64le`, ...
    pub arch: &'a str,
    /// The container's bounding capability set (`CAP_...` names).
    pub bounding_caps: &'a [String],
    /// The host kernel's (major, minor); `None` treats every `minKernel` as satisfied.
    pub kernel: Option<(u32, u32)>,
}

impl<'a> ProfileTarget<'a> {
    pub fn new(arch: &'a str, bounding_caps: &'a [String]) -> Self {
        Self {
            arch,
            bounding_caps,
            kernel: None,
        }
    }

    /// The running host: its architecture and kernel version.
    pub fn host(bounding_caps: &'a [String]) -> Self {
        Self {
            arch: host_arch(),
            bounding_caps,
            kernel: host_kernel(),
        }
    }

    pub fn with_kernel(mut self, major: u32, minor: u32) -> Self {
        self.kernel = Some((major, minor));
        self
    }
}

/// Go's name for the architecture this program was built for (what Docker calls it).
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "x86",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" => {
            if cfg!(target_endian = "little") {
                "ppc64le"
            } else {
                "ppc64"
            }
        }
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "loongarch64" => "loong64",
        "mips64" => "mips64",
        other => other,
    }
}

/// The running kernel's (major, minor) from `/proc/sys/kernel/osrelease`.
pub fn host_kernel() -> Option<(u32, u32)> {
    let s = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    parse_kernel_version(s.trim())
}

fn parse_kernel_version(s: &str) -> Option<(u32, u32)> {
    let mut it = s.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next().unwrap_or("0").parse().ok()?;
    Some((major, minor))
}

/// The seccomp architecture of a Docker/Go architecture name.
fn native_seccomp_arch(arch: &str) -> Option<Arch> {
    Some(match arch {
        "amd64" => Arch::ScmpArchX86_64,
        "x86" | "386" => Arch::ScmpArchX86,
        "x32" => Arch::ScmpArchX32,
        "arm64" => Arch::ScmpArchAarch64,
        "arm" => Arch::ScmpArchArm,
        "ppc64le" => Arch::ScmpArchPpc64le,
        "ppc64" => Arch::ScmpArchPpc64,
        "ppc" => Arch::ScmpArchPpc,
        "s390x" => Arch::ScmpArchS390x,
        "s390" => Arch::ScmpArchS390,
        "riscv64" => Arch::ScmpArchRiscv64,
        "loong64" => Arch::ScmpArchLoongarch64,
        "mips64" => Arch::ScmpArchMips64,
        "mips64le" => Arch::ScmpArchMipsel64,
        "mips" => Arch::ScmpArchMips,
        "mipsle" => Arch::ScmpArchMipsel,
        _ => return None,
    })
}

impl DockerProfile {
    /// Parses a profile; errors name the JSON path of the bad field.
    pub fn parse(json: &[u8]) -> Result<Self, SeccompProfileError> {
        let de = &mut serde_json::Deserializer::from_slice(json);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            SeccompProfileError::Parse {
                path: if path == "." {
                    "(document)".into()
                } else {
                    path
                },
                message: e.into_inner().to_string(),
            }
        })
    }

    /// Resolves the profile for one container (see the module docs).
    pub fn to_oci(&self, target: &ProfileTarget<'_>) -> Result<LinuxSeccomp, SeccompProfileError> {
        if !self.architectures.is_empty() && !self.arch_map.is_empty() {
            return Err(SeccompProfileError::Invalid {
                field: "architectures".into(),
                reason: "both 'architectures' and 'archMap' are set; use one of them".into(),
            });
        }
        let mut arches: Vec<Arch> = self.architectures.clone();
        if let Some(native) = native_seccomp_arch(target.arch) {
            for entry in &self.arch_map {
                if entry.architecture == native {
                    arches.push(entry.architecture);
                    arches.extend(entry.sub_architectures.iter().copied());
                }
            }
        }
        let has_cap = |c: &String| target.bounding_caps.iter().any(|b| b == c);
        let kernel_at_least = |field: &str, v: &str| -> Result<bool, SeccompProfileError> {
            let want = parse_kernel_version(v).ok_or_else(|| SeccompProfileError::Invalid {
                field: field.into(),
                reason: format!("{v:?} is not a kernel version like \"4.8\""),
            })?;
            Ok(target.kernel.is_none_or(|k| k >= want))
        };
        let mut syscalls: Vec<LinuxSyscall> = Vec::new();
        for (i, call) in self.syscalls.iter().enumerate() {
            let mut names = call.names.clone();
            if let Some(name) = &call.name {
                if !names.is_empty() {
                    return Err(SeccompProfileError::Invalid {
                        field: format!("syscalls[{i}]"),
                        reason: "both 'name' and 'names' are set; use one of them".into(),
                    });
                }
                names.push(name.clone());
            }
            if names.is_empty() {
                return Err(SeccompProfileError::Invalid {
                    field: format!("syscalls[{i}].names"),
                    reason: "a rule needs at least one syscall name".into(),
                });
            }
            if let Some(ex) = &call.excludes {
                if ex.arches.iter().any(|a| a == target.arch) {
                    continue;
                }
                if ex.caps.iter().any(has_cap) {
                    continue;
                }
                if let Some(v) = &ex.min_kernel
                    && kernel_at_least(&format!("syscalls[{i}].excludes.minKernel"), v)?
                {
                    continue;
                }
            }
            if let Some(inc) = &call.includes {
                if !inc.arches.is_empty() && !inc.arches.iter().any(|a| a == target.arch) {
                    continue;
                }
                if !inc.caps.iter().all(has_cap) {
                    continue;
                }
                if let Some(v) = &inc.min_kernel
                    && !kernel_at_least(&format!("syscalls[{i}].includes.minKernel"), v)?
                {
                    continue;
                }
            }
            let mut b = LinuxSyscallBuilder::default()
                .names(names)
                .action(call.action);
            if let Some(e) = call.errno_ret {
                b = b.errno_ret(e);
            }
            if let Some(args) = &call.args {
                b = b.args(args.clone());
            }
            syscalls.push(b.build().map_err(|e| SeccompProfileError::Invalid {
                field: format!("syscalls[{i}]"),
                reason: e.to_string(),
            })?);
        }
        let mut b = LinuxSeccompBuilder::default()
            .default_action(self.default_action)
            .syscalls(syscalls);
        if !arches.is_empty() {
            b = b.architectures(arches);
        }
        if let Some(e) = self.default_errno_ret {
            b = b.default_errno_ret(e);
        }
        if !self.flags.is_empty() {
            b = b.flags(self.flags.clone());
        }
        if let Some(p) = &self.listener_path {
            b = b.listener_path(p.clone());
        }
        if let Some(m) = &self.listener_metadata {
            b = b.listener_metadata(m.clone());
        }
        b.build().map_err(|e| SeccompProfileError::Invalid {
            field: "(profile)".into(),
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn rules_for<'a>(s: &'a LinuxSeccomp, name: &str) -> Vec<&'a LinuxSyscall> {
        s.syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .filter(|r| r.names().iter().any(|n| n == name))
            .collect()
    }

    use crate::caps::DOCKER_DEFAULT as DOCKER_DEFAULT_CAPS;

    #[test]
    fn default_profile_for_docker_default_caps_on_amd64() {
        let p = DockerProfile::parse(DEFAULT_PROFILE.as_bytes()).unwrap();
        let c = caps(&DOCKER_DEFAULT_CAPS);
        let oci = p
            .to_oci(&ProfileTarget::new("amd64", &c).with_kernel(6, 1))
            .unwrap();
        assert_eq!(oci.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(oci.default_errno_ret(), Some(1));
        assert_eq!(
            oci.architectures().as_ref().unwrap(),
            &vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
        );
        // arch-specific rules: arch_prctl is amd64-only, s390 rules are dropped.
        assert_eq!(rules_for(&oci, "arch_prctl").len(), 1);
        assert!(rules_for(&oci, "s390_runtime_instr").is_empty());
        // CAP_SYS_ADMIN absent: clone only with the namespace-flag mask, clone3 → ENOSYS.
        let clone = rules_for(&oci, "clone");
        assert_eq!(clone.len(), 1);
        let arg = clone[0].args().as_ref().unwrap()[0];
        assert_eq!(arg.index(), 0);
        assert_eq!(arg.value(), 2114060288);
        let clone3 = rules_for(&oci, "clone3");
        assert_eq!(clone3.len(), 1);
        assert_eq!(clone3[0].action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(clone3[0].errno_ret(), Some(38));
        // caps-gated rules: chroot (SYS_CHROOT present) kept, reboot (SYS_BOOT) dropped.
        assert_eq!(rules_for(&oci, "chroot").len(), 1);
        assert!(rules_for(&oci, "reboot").is_empty());
        // minKernel 4.8 satisfied by 6.1: ptrace allowed.
        assert_eq!(rules_for(&oci, "ptrace").len(), 1);
    }

    #[test]
    fn sys_admin_changes_clone_rules_and_old_kernels_lose_ptrace() {
        let p = DockerProfile::parse(DEFAULT_PROFILE.as_bytes()).unwrap();
        let mut c = caps(&DOCKER_DEFAULT_CAPS);
        c.push("CAP_SYS_ADMIN".into());
        let oci = p
            .to_oci(&ProfileTarget::new("amd64", &c).with_kernel(4, 4))
            .unwrap();
        let clone = rules_for(&oci, "clone");
        assert!(
            clone.iter().all(|r| r.args().is_none()),
            "unrestricted clone"
        );
        assert!(
            rules_for(&oci, "clone3")
                .iter()
                .all(|r| r.action() == LinuxSeccompAction::ScmpActAllow)
        );
        assert!(rules_for(&oci, "ptrace").is_empty(), "minKernel 4.8 > 4.4");
    }

    #[test]
    fn arm64_gets_its_own_arch_map_entry() {
        let p = DockerProfile::parse(DEFAULT_PROFILE.as_bytes()).unwrap();
        let oci = p.to_oci(&ProfileTarget::new("arm64", &[])).unwrap();
        assert_eq!(
            oci.architectures().as_ref().unwrap(),
            &vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]
        );
        assert!(rules_for(&oci, "arch_prctl").is_empty());
        assert_eq!(rules_for(&oci, "arm_fadvise64_64").len(), 1);
    }

    #[test]
    fn bad_input_names_the_field() {
        let e = DockerProfile::parse(br#"{"defaultAction":"SCMP_ACT_NOPE"}"#).unwrap_err();
        assert!(e.to_string().contains("defaultAction"), "{e}");
        let e = DockerProfile::parse(
            br#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":"x"}]}]}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("syscalls[0].args[0].index"), "{e}");
        let p = DockerProfile::parse(
            br#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ALLOW"}]}"#,
        )
        .unwrap();
        let e = p.to_oci(&ProfileTarget::new("amd64", &[])).unwrap_err();
        assert!(e.to_string().contains("syscalls[0]"), "{e}");
        let p = DockerProfile::parse(
            br#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["a"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"new"}}]}"#,
        )
        .unwrap();
        let e = p.to_oci(&ProfileTarget::new("amd64", &[])).unwrap_err();
        assert!(e.to_string().contains("includes.minKernel"), "{e}");
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    }

    #[test]
    fn kernel_versions_parse() {
        assert_eq!(parse_kernel_version("6.18.44-fc-v769"), Some((6, 18)));
        assert_eq!(parse_kernel_version("4.8"), Some((4, 8)));
        assert_eq!(parse_kernel_version("5"), Some((5, 0)));
        assert_eq!(parse_kernel_version("x"), None);
    }
}
