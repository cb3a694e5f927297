//! `linux.seccomp` → a BPF program (libseccomp), cached on disk by content hash.
//!
//! Compiling Docker's default profile with libseccomp takes milliseconds; the result only
//! depends on the profile, the architecture and the libseccomp version. With a cache
//! directory the program is stored as `<dir>/<sha256>.bpf` (atomic write) and later
//! containers load it with one `read`. The program itself is installed by the container's
//! process with `seccomp(SECCOMP_SET_MODE_FILTER)` ([`berth_sys::seccomp`]), as late as
//! possible before `execve`.
//!
//! libseccomp's program is re-laid out by [`crate::seccomp_ranges`] (a search over
//! syscall-number ranges instead of one comparison per syscall: Docker's default profile
//! 1,237 → 222 instructions, the same action for every input) before it is cached.

use berth_oci::spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use berth_sys::seccomp::{self as sys, SockFilter};
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A compiled filter, ready to install.
#[derive(Debug, Clone)]
pub struct CompiledFilter {
    pub program: Vec<SockFilter>,
    /// `SECCOMP_FILTER_FLAG_*` for the `seccomp` call.
    pub flags: u32,
    /// Where to send the notification fd (`SCMP_ACT_NOTIFY` rules).
    pub listener_path: Option<PathBuf>,
    pub listener_metadata: Option<String>,
    /// Whether the program came from the cache.
    pub cached: bool,
}

fn action(a: LinuxSeccompAction, errno: Option<u32>, default_errno: Option<u32>) -> ScmpAction {
    use LinuxSeccompAction as A;
    match a {
        A::ScmpActKill | A::ScmpActKillThread => ScmpAction::KillThread,
        A::ScmpActKillProcess => ScmpAction::KillProcess,
        A::ScmpActTrap => ScmpAction::Trap,
        A::ScmpActErrno => {
            ScmpAction::Errno(errno.or(default_errno).unwrap_or(libc::EPERM as u32) as i32)
        }
        A::ScmpActNotify => ScmpAction::Notify,
        A::ScmpActTrace => ScmpAction::Trace(errno.or(default_errno).unwrap_or(0) as u16),
        A::ScmpActLog => ScmpAction::Log,
        A::ScmpActAllow => ScmpAction::Allow,
    }
}

fn arch(a: Arch) -> Option<ScmpArch> {
    Some(match a {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        _ => return None,
    })
}

fn flags(s: &LinuxSeccomp) -> u32 {
    let mut f = 0;
    for fl in s.flags().as_deref().unwrap_or_default() {
        f |= match fl {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => sys::FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => sys::FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => sys::FLAG_SPEC_ALLOW,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                sys::FLAG_WAIT_KILLABLE_RECV
            }
        };
    }
    let notify = s.default_action() == LinuxSeccompAction::ScmpActNotify
        || s.syscalls()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|r| r.action() == LinuxSeccompAction::ScmpActNotify);
    if notify {
        f |= sys::FLAG_NEW_LISTENER;
    }
    f
}

/// Checks what can be checked without compiling (names the field).
pub fn validate(s: &LinuxSeccomp) -> Result<()> {
    let notify = flags(s) & sys::FLAG_NEW_LISTENER != 0;
    if notify && s.listener_path().is_none() {
        return Err(Error::spec(
            "linux.seccomp.listenerPath",
            "SCMP_ACT_NOTIFY rules need a listenerPath to send the notification fd to",
        ));
    }
    if s.default_action() == LinuxSeccompAction::ScmpActNotify {
        return Err(Error::spec(
            "linux.seccomp.defaultAction",
            "SCMP_ACT_NOTIFY cannot be the default action (the runtime's own calls would block)",
        ));
    }
    for (i, a) in s
        .architectures()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        if arch(*a).is_none() {
            return Err(Error::spec(
                format!("linux.seccomp.architectures[{i}]"),
                format!("{a} is not supported by this libseccomp"),
            ));
        }
    }
    for (i, r) in s
        .syscalls()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        if r.names().is_empty() {
            return Err(Error::spec(
                format!("linux.seccomp.syscalls[{i}].names"),
                "must not be empty",
            ));
        }
        for (j, a) in r.args().as_deref().unwrap_or_default().iter().enumerate() {
            if a.index() > 5 {
                return Err(Error::spec(
                    format!("linux.seccomp.syscalls[{i}].args[{j}].index"),
                    "syscall arguments are numbered 0 to 5",
                ));
            }
        }
    }
    Ok(())
}

/// The linked libseccomp's version.
pub fn libseccomp_version() -> Option<(u32, u32, u32)> {
    libseccomp::ScmpVersion::current()
        .ok()
        .map(|v| (v.major, v.minor, v.micro))
}

fn cache_key(s: &LinuxSeccomp) -> Result<String> {
    let mut h = Sha256::new();
    // v2: programs re-laid out by `seccomp_ranges`.
    h.update(b"berth-seccomp-v2\0");
    h.update(std::env::consts::ARCH.as_bytes());
    if let Ok(v) = libseccomp::ScmpVersion::current() {
        h.update(format!("\0{}.{}.{}\0", v.major, v.minor, v.micro).as_bytes());
    }
    h.update(serde_json::to_vec(s).map_err(|e| Error::Seccomp(e.to_string()))?);
    Ok(hex::encode(h.finalize()))
}

/// Compiles `s`, using and filling `cache_dir` when given.
pub fn compile(s: &LinuxSeccomp, cache_dir: Option<&Path>) -> Result<CompiledFilter> {
    validate(s)?;
    let mut out = CompiledFilter {
        program: Vec::new(),
        flags: flags(s),
        listener_path: s.listener_path().clone(),
        listener_metadata: s.listener_metadata().clone(),
        cached: false,
    };
    let cache_file = match cache_dir {
        Some(d) => Some(d.join(format!("{}.bpf", cache_key(s)?))),
        None => None,
    };
    if let Some(f) = &cache_file
        && let Ok(bytes) = std::fs::read(f)
        && let Ok(program) = sys::program_from_bytes(&bytes)
    {
        out.program = program;
        out.cached = true;
        return Ok(out);
    }
    let bytes = compile_bpf(s)?;
    let program = sys::program_from_bytes(&bytes)
        .map_err(|e| Error::Seccomp(format!("libseccomp produced a bad program: {e}")))?;
    out.program = match crate::seccomp_ranges::shorten(&program) {
        Ok(short) => short,
        Err(why) => {
            tracing::debug!("seccomp: keeping libseccomp's program: {why}");
            program
        }
    };
    let bytes = sys::program_to_bytes(&out.program);
    if let (Some(f), Some(d)) = (&cache_file, cache_dir) {
        // A cache that cannot be written only costs speed.
        let _ =
            std::fs::create_dir_all(d).and_then(|_| berth_sys::fs::atomic_write(f, &bytes, 0o600));
    }
    Ok(out)
}

fn compile_bpf(s: &LinuxSeccomp) -> Result<Vec<u8>> {
    let se =
        |what: &str, e: libseccomp::error::SeccompError| Error::Seccomp(format!("{what}: {e}"));
    let default_errno = s.default_errno_ret();
    let default = action(s.default_action(), None, default_errno);
    let mut ctx = ScmpFilterContext::new(default).map_err(|e| se("new filter", e))?;
    // We install the program ourselves; these only matter for libseccomp's own load().
    let _ = ctx.set_ctl_nnp(false);
    // A binary tree of syscall numbers: fewer instructions per syscall for big profiles.
    let _ = ctx.set_ctl_optimize(2);
    for a in s.architectures().as_deref().unwrap_or_default() {
        let sa = arch(*a).expect("validated");
        if !ctx.is_arch_present(sa).unwrap_or(false) {
            ctx.add_arch(sa)
                .map_err(|e| se(&format!("add architecture {a}"), e))?;
        }
    }
    for (i, r) in s
        .syscalls()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let act = action(r.action(), r.errno_ret(), default_errno);
        if act == default {
            // libseccomp refuses rules that repeat the default action; they are no-ops.
            continue;
        }
        let args = r.args().as_deref().unwrap_or_default();
        let conds: Vec<ScmpArgCompare> = args
            .iter()
            .map(|a| {
                use LinuxSeccompOperator as O;
                let op = match a.op() {
                    O::ScmpCmpNe => ScmpCompareOp::NotEqual,
                    O::ScmpCmpLt => ScmpCompareOp::Less,
                    O::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
                    O::ScmpCmpEq => ScmpCompareOp::Equal,
                    O::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
                    O::ScmpCmpGt => ScmpCompareOp::Greater,
                    O::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(a.value()),
                };
                let datum = if a.op() == O::ScmpCmpMaskedEq {
                    a.value_two().unwrap_or(0)
                } else {
                    a.value()
                };
                ScmpArgCompare::new(a.index() as u32, op, datum)
            })
            .collect();
        // libseccomp cannot AND two conditions on the same argument; like runc, such rules
        // become one rule per condition (OR).
        let mut counts = [0u8; 6];
        for a in args {
            counts[a.index().min(5)] += 1;
        }
        let split = counts.iter().any(|&c| c > 1);
        for name in r.names() {
            let Ok(sc) = ScmpSyscall::from_name(name) else {
                // Profiles list syscalls newer than this libseccomp; skip them like runc.
                tracing::debug!("seccomp: unknown syscall {name:?} ignored");
                continue;
            };
            let res = if conds.is_empty() {
                ctx.add_rule(act, sc)
            } else if split {
                conds
                    .iter()
                    .try_for_each(|c| ctx.add_rule_conditional(act, sc, &[*c]).map(|_| ()))
                    .map(|_| &mut ctx)
            } else {
                ctx.add_rule_conditional(act, sc, &conds)
            };
            res.map_err(|e| {
                Error::spec(
                    format!("linux.seccomp.syscalls[{i}]"),
                    format!("libseccomp refused the rule for {name}: {e}"),
                )
            })?;
        }
    }
    let mut mem = std::fs::File::from(
        rustix::fs::memfd_create("berth-seccomp", rustix::fs::MemfdFlags::CLOEXEC)
            .map_err(|e| Error::io("memfd_create", e))?,
    );
    ctx.export_bpf(&mem).map_err(|e| se("export", e))?;
    use std::io::{Read, Seek};
    let mut bytes = Vec::new();
    mem.rewind()
        .and_then(|_| mem.read_to_end(&mut bytes))
        .map_err(|e| Error::io("read compiled seccomp program", e))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_oci::seccomp_profile::{DEFAULT_PROFILE, DockerProfile, ProfileTarget};

    fn docker_default() -> LinuxSeccomp {
        docker_default_with(&["CAP_CHOWN", "CAP_KILL", "CAP_SETUID", "CAP_SETGID"])
    }

    fn docker_default_with(caps: &[&str]) -> LinuxSeccomp {
        let caps: Vec<String> = caps.iter().map(|s| s.to_string()).collect();
        DockerProfile::parse(DEFAULT_PROFILE.as_bytes())
            .unwrap()
            .to_oci(&ProfileTarget::host(&caps))
            .unwrap()
    }

    #[test]
    fn compiles_docker_default_and_caches_it() {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-seccomp")
            .tempdir()
            .unwrap();
        let s = docker_default();
        let a = compile(&s, Some(dir.path())).unwrap();
        assert!(!a.cached);
        assert!(a.program.len() > 100, "{} instructions", a.program.len());
        assert_eq!(a.flags, 0);
        let b = compile(&s, Some(dir.path())).unwrap();
        assert!(b.cached);
        assert_eq!(a.program, b.program);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn notify_needs_listener_and_sets_flag() {
        let s: LinuxSeccomp = serde_json::from_str(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        )
        .unwrap();
        let e = compile(&s, None).unwrap_err().to_string();
        assert!(e.contains("listenerPath"), "{e}");
        let s: LinuxSeccomp = serde_json::from_str(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/x.sock","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        )
        .unwrap();
        let c = compile(&s, None).unwrap();
        assert_ne!(c.flags & sys::FLAG_NEW_LISTENER, 0);
    }

    #[test]
    fn bad_rules_name_the_field_and_unknown_syscalls_are_skipped() {
        let s: LinuxSeccomp = serde_json::from_str(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
                {"names":["read","no_such_syscall_xyz"],"action":"SCMP_ACT_ALLOW"},
                {"names":["write"],"action":"SCMP_ACT_ALLOW","args":[{"index":7,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#,
        )
        .unwrap();
        let e = compile(&s, None).unwrap_err().to_string();
        assert!(e.contains("linux.seccomp.syscalls[1].args[0].index"), "{e}");
        let s: LinuxSeccomp = serde_json::from_str(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
                {"names":["read","no_such_syscall_xyz"],"action":"SCMP_ACT_ALLOW"},
                {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[
                    {"index":0,"value":0,"op":"SCMP_CMP_EQ"},{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]}]}"#,
        )
        .unwrap();
        compile(&s, None).unwrap();
    }

    /// libseccomp's program and the re-laid-out one give the same action for every syscall
    /// number 0..1024 (and with the x32 bit) of x86_64, x86, another and a bogus
    /// architecture, and at the boundary values of every rule's argument comparisons (each
    /// (high, low) half combination, in each argument).
    fn assert_shortened_equivalent(s: &LinuxSeccomp) -> (usize, usize) {
        use crate::seccomp_ranges::{boundary_values, check_equivalent, shorten};
        let long = sys::program_from_bytes(&compile_bpf(s).unwrap()).unwrap();
        let short = shorten(&long).unwrap();
        assert!(
            short.len() < long.len(),
            "{} >= {}",
            short.len(),
            long.len()
        );
        const X86_64: u32 = 0xc000_003e;
        const I386: u32 = 0x4000_0003;
        const AARCH64: u32 = 0xc000_00b7;
        let mut nrs: Vec<u32> = (0..1024)
            .chain((0..1024).map(|n| n | 0x4000_0000))
            .collect();
        nrs.extend([
            0x3fff_ffff,
            0x7fff_ffff,
            0x8000_0000,
            u32::MAX - 1,
            u32::MAX,
        ]);
        let mut points = Vec::new();
        for arch in [X86_64, I386, AARCH64, 0, u32::MAX] {
            points.extend(nrs.iter().map(|&n| (arch, n)));
        }
        let mut consts = Vec::new();
        for r in s.syscalls().as_deref().unwrap_or_default() {
            for a in r.args().as_deref().unwrap_or_default() {
                for v in [a.value(), a.value_two().unwrap_or(0)] {
                    consts.extend([v as u32, (v >> 32) as u32]);
                }
            }
        }
        let values = boundary_values(consts);
        check_equivalent(&long, &short, &points, &values, true).unwrap();
        (long.len(), short.len())
    }

    #[test]
    fn shortened_docker_default_is_equivalent() {
        let (long, short) = assert_shortened_equivalent(&docker_default());
        eprintln!("docker default: libseccomp {long} instructions, re-laid out {short}");
        assert!(short * 3 < long, "{short} vs {long}");
        let all = docker_default_with(&[
            "CAP_SYS_ADMIN",
            "CAP_SYS_PTRACE",
            "CAP_SYS_BOOT",
            "CAP_SYS_MODULE",
            "CAP_SYS_TIME",
            "CAP_BPF",
            "CAP_PERFMON",
            "CAP_SYSLOG",
            "CAP_SYS_NICE",
            "CAP_SYS_RESOURCE",
            "CAP_SYS_PACCT",
            "CAP_SYS_RAWIO",
            "CAP_SYS_TTY_CONFIG",
            "CAP_DAC_READ_SEARCH",
            "CAP_NET_ADMIN",
        ]);
        assert_shortened_equivalent(&all);
    }

    #[test]
    fn shortened_alternating_allowlist_is_equivalent() {
        // Every other syscall of Docker's list allowed: hundreds of ranges per
        // architecture, so the layout needs `ja`s and copies of `ret`s for far targets.
        let mut names: Vec<String> = docker_default()
            .syscalls()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .filter(|r| r.action() == LinuxSeccompAction::ScmpActAllow && r.args().is_none())
            .flat_map(|r| r.names().clone())
            .collect();
        names.sort_by_key(|n| ScmpSyscall::from_name(n).map(i32::from).unwrap_or(-1));
        let names: Vec<&String> = names.iter().step_by(2).collect();
        let s: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}],
        }))
        .unwrap();
        let (long, short) = assert_shortened_equivalent(&s);
        assert!(
            short > 300,
            "{short} instructions: too few to need far jumps"
        );
        eprintln!("alternating: libseccomp {long} instructions, re-laid out {short}");
    }

    #[test]
    fn shortened_argument_rules_are_equivalent() {
        // Every comparison operator, 64-bit values, two conditions on one argument,
        // `socket` by argument on x86 (libseccomp may filter `socketcall` too), several
        // actions, default allow.
        let s: LinuxSeccomp = serde_json::from_str(
            r#"{"defaultAction":"SCMP_ACT_ALLOW",
                "architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],
                "syscalls":[
                {"names":["socket"],"action":"SCMP_ACT_ERRNO","errnoRet":97,"args":[{"index":0,"value":40,"op":"SCMP_CMP_EQ"}]},
                {"names":["mmap","mprotect"],"action":"SCMP_ACT_ERRNO","args":[{"index":2,"value":4294967296,"op":"SCMP_CMP_GT"}]},
                {"names":["read"],"action":"SCMP_ACT_TRAP","args":[{"index":2,"value":8,"op":"SCMP_CMP_LT"},{"index":0,"value":3,"op":"SCMP_CMP_GE"}]},
                {"names":["write"],"action":"SCMP_ACT_LOG","args":[{"index":1,"value":9223372036854775808,"op":"SCMP_CMP_LE"}]},
                {"names":["clone"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":2114060288,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}]},
                {"names":["personality"],"action":"SCMP_ACT_KILL_PROCESS","args":[{"index":0,"value":8,"op":"SCMP_CMP_NE"},{"index":0,"value":0,"op":"SCMP_CMP_NE"}]},
                {"names":["kexec_load","reboot","mount","umount2","swapon","init_module"],"action":"SCMP_ACT_ERRNO","errnoRet":1},
                {"names":["openat2"],"action":"SCMP_ACT_ERRNO","errnoRet":38}]}"#,
        )
        .unwrap();
        assert_shortened_equivalent(&s);
    }

    #[test]
    fn shortened_program_is_cached_and_smaller() {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-seccomp")
            .tempdir()
            .unwrap();
        let s = docker_default();
        let long = sys::program_from_bytes(&compile_bpf(&s).unwrap()).unwrap();
        let a = compile(&s, Some(dir.path())).unwrap();
        assert!(a.program.len() < long.len());
        let b = compile(&s, Some(dir.path())).unwrap();
        assert!(b.cached);
        assert_eq!(a.program, b.program);
    }
}
