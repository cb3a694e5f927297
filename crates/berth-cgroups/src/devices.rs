//! Device access rules (`linux.resources.devices`): one meaning, two enforcements.
//!
//! The rules are first folded into a [`DeviceState`] with the semantics of the v1 `devices`
//! controller (and of runc's emulator): start from "deny everything", apply the rules in
//! order; a rule of type `a` resets the state to allow-all or deny-all, any other rule adds an
//! exception to the current default or removes access from an existing one. Removing access
//! that a broader wildcard exception still grants is refused instead of silently ignored (v1
//! would ignore it and leave the device reachable).
//!
//! - v1: [`DeviceState::v1_writes`] — reset with `a` in `devices.deny`/`devices.allow`, then
//!   one line per exception (skipped when `devices.list` already shows the target state).
//! - v2: [`DeviceState::bpf_program`] — a `BPF_PROG_TYPE_CGROUP_DEVICE` program that returns
//!   the exception's verdict when a request matches one, else the default.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use berth_oci::spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};
use berth_sys::bpf::Insn;

use crate::error::{Error, Result};

/// `BPF_DEVCG_DEV_*` and the `a` wildcard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DevType {
    All,
    Block,
    Char,
}

impl DevType {
    fn letter(self) -> char {
        match self {
            DevType::All => 'a',
            DevType::Block => 'b',
            DevType::Char => 'c',
        }
    }
}

/// Access bits as the kernel's BPF context encodes them (`BPF_DEVCG_ACC_*`).
pub const ACC_MKNOD: u8 = 1;
pub const ACC_READ: u8 = 2;
pub const ACC_WRITE: u8 = 4;
const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;

fn access_string(a: u8) -> String {
    let mut s = String::new();
    for (bit, c) in [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')] {
        if a & bit != 0 {
            s.push(c);
        }
    }
    s
}

/// A device class: type, major, minor (`None` = `*`).
pub type DevKey = (DevType, Option<u32>, Option<u32>);

/// One validated rule from the spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    pub key: DevKey,
    pub access: u8,
    pub allow: bool,
}

impl Rule {
    /// Validates one OCI rule; `index` names it in errors.
    pub fn from_oci(index: usize, d: &LinuxDeviceCgroup) -> Result<Rule> {
        let name = format!("devices[{index}]");
        let typ = match d.typ() {
            None | Some(LinuxDeviceType::A) => DevType::All,
            Some(LinuxDeviceType::B) => DevType::Block,
            Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => DevType::Char,
            Some(LinuxDeviceType::P) => {
                return Err(Error::invalid(
                    format!("{name}.type"),
                    "p",
                    "the device controller only knows types a, b and c",
                ));
            }
        };
        let num = |what: &str, v: Option<i64>| -> Result<Option<u32>> {
            match v {
                None => Ok(None),
                Some(v) if v < 0 => Ok(None), // -1 is runc's spelling of '*'
                Some(v) => u32::try_from(v).map(Some).map_err(|_| {
                    Error::invalid(format!("{name}.{what}"), v, "device numbers are 32-bit")
                }),
            }
        };
        let major = num("major", d.major())?;
        let minor = num("minor", d.minor())?;
        let access_text = d.access().as_deref().unwrap_or("");
        let mut access = 0;
        for c in access_text.chars() {
            access |= match c {
                'r' => ACC_READ,
                'w' => ACC_WRITE,
                'm' => ACC_MKNOD,
                _ => {
                    return Err(Error::invalid(
                        format!("{name}.access"),
                        format!("{access_text:?}"),
                        "access is a combination of r, w and m",
                    ));
                }
            };
        }
        if access == 0 {
            access = ACC_ALL; // absent access means all of it (as crun does)
        }
        Ok(Rule {
            key: (typ, major, minor),
            access,
            allow: d.allow(),
        })
    }
}

/// What the rules amount to: a default verdict and exceptions to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceState {
    pub default_allow: bool,
    /// Exceptions; each one reverses the default for the access bits it holds.
    pub exceptions: BTreeMap<DevKey, u8>,
}

impl Default for DeviceState {
    /// Deny everything: the starting point of a container's rules.
    fn default() -> Self {
        DeviceState {
            default_allow: false,
            exceptions: BTreeMap::new(),
        }
    }
}

impl DeviceState {
    /// Folds OCI rules, in order, over a deny-all start.
    pub fn from_oci(rules: &[LinuxDeviceCgroup]) -> Result<DeviceState> {
        let mut state = DeviceState::default();
        for (i, d) in rules.iter().enumerate() {
            state.apply(i, Rule::from_oci(i, d)?)?;
        }
        Ok(state)
    }

    fn apply(&mut self, index: usize, rule: Rule) -> Result<()> {
        if rule.key.0 == DevType::All {
            // The kernel treats any `a` line as "a *:* rwm": a reset.
            self.default_allow = rule.allow;
            self.exceptions.clear();
            return Ok(());
        }
        if rule.allow != self.default_allow {
            *self.exceptions.entry(rule.key).or_insert(0) |= rule.access;
            return Ok(());
        }
        // The rule agrees with the default: it takes access away from exceptions. Refuse to
        // punch a hole into a broader exception (v1 would silently keep granting it).
        let (t, maj, min) = rule.key;
        for broader in [(t, None, None), (t, maj, None), (t, None, min)] {
            if broader == rule.key {
                continue;
            }
            if let Some(&a) = self.exceptions.get(&broader)
                && a & rule.access != 0
            {
                return Err(Error::invalid(
                    format!("devices[{index}]"),
                    rule_line(rule.key, rule.access),
                    format!(
                        "cannot carve an exception out of the broader rule {:?} given earlier; \
                         list the specific devices instead",
                        rule_line(broader, a)
                    ),
                ));
            }
        }
        if let Some(a) = self.exceptions.get_mut(&rule.key) {
            *a &= !rule.access;
            if *a == 0 {
                self.exceptions.remove(&rule.key);
            }
        }
        Ok(())
    }

    /// Whether a request (type `b`/`c`, major, minor, access bits) is allowed: the reference
    /// semantics of the kernel's v1 controller, which the BPF program must reproduce.
    pub fn allows(&self, typ: DevType, major: u32, minor: u32, access: u8) -> bool {
        let matching = self.exceptions.iter().filter(|((t, ma, mi), _)| {
            *t == typ && ma.is_none_or(|m| m == major) && mi.is_none_or(|m| m == minor)
        });
        if self.default_allow {
            // Denied when any deny exception overlaps the requested access.
            !matching.into_iter().any(|(_, &a)| a & access != 0)
        } else {
            // Allowed when one allow exception covers all of the requested access.
            matching.into_iter().any(|(_, &a)| access & !a == 0)
        }
    }

    /// v1: `(file, line)` writes, or nothing when `current_list` (the text of `devices.list`)
    /// already shows this state.
    pub fn v1_writes(&self, current_list: Option<&str>) -> Vec<(&'static str, String)> {
        if let Some(cur) = current_list
            && self.matches_v1_list(cur)
        {
            return Vec::new();
        }
        let (reset_file, exception_file) = if self.default_allow {
            ("devices.allow", "devices.deny")
        } else {
            ("devices.deny", "devices.allow")
        };
        let mut out = vec![(reset_file, "a".to_string())];
        for (&key, &a) in &self.exceptions {
            out.push((exception_file, rule_line(key, a)));
        }
        out
    }

    /// `devices.list` shows `a *:* rwm` in allow-all mode (exceptions hidden) and the
    /// exceptions in deny-all mode.
    fn matches_v1_list(&self, list: &str) -> bool {
        let mut lines: Vec<&str> = list
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        lines.sort_unstable();
        if self.default_allow {
            return self.exceptions.is_empty() && lines == ["a *:* rwm"];
        }
        let mut want: Vec<String> = self
            .exceptions
            .iter()
            .map(|(&k, &a)| rule_line(k, a))
            .collect();
        want.sort_unstable();
        lines == want
    }

    /// v2: the eBPF program enforcing this state.
    ///
    /// Registers: r2 = device type, r3 = requested access, r4 = major, r5 = minor (all loaded
    /// once from `struct bpf_cgroup_dev_ctx`); each exception is a block that jumps to the next
    /// block on the first mismatch and otherwise returns the exception's verdict.
    pub fn bpf_program(&self) -> Vec<Insn> {
        let mut p = vec![
            Insn::new(LDX_W, 2, 1, 0, 0),        // r2 = ctx->access_type
            Insn::new(AND32_K, 2, 0, 0, 0xffff), // r2 &= 0xffff (device type)
            Insn::new(LDX_W, 3, 1, 0, 0),        // r3 = ctx->access_type
            Insn::new(RSH32_K, 3, 0, 0, 16),     // r3 >>= 16 (access)
            Insn::new(LDX_W, 4, 1, 4, 0),        // r4 = ctx->major
            Insn::new(LDX_W, 5, 1, 8, 0),        // r5 = ctx->minor
        ];
        let verdict = i32::from(!self.default_allow);
        for (&(t, major, minor), &access) in &self.exceptions {
            // Conditions, each "if mismatch goto next"; offsets patched once the block size is
            // known.
            let mut block: Vec<Insn> = Vec::new();
            let mut jumps: Vec<usize> = Vec::new();
            let type_imm = match t {
                DevType::Block => 1,
                DevType::Char => 2,
                DevType::All => 0,
            };
            if type_imm != 0 {
                jumps.push(block.len());
                block.push(Insn::new(JNE32_K, 2, 0, 0, type_imm));
            }
            if access != ACC_ALL {
                block.push(Insn::new(MOV32_X, 1, 3, 0, 0)); // r1 = r3
                block.push(Insn::new(AND32_K, 1, 0, 0, i32::from(access))); // r1 &= access
                jumps.push(block.len());
                if self.default_allow {
                    // Deny exception: matches when the request overlaps its access.
                    block.push(Insn::new(JEQ32_K, 1, 0, 0, 0));
                } else {
                    // Allow exception: matches when it covers the whole request.
                    block.push(Insn::new(JNE32_X, 1, 3, 0, 0));
                }
            }
            if let Some(m) = major {
                jumps.push(block.len());
                block.push(Insn::new(JNE32_K, 4, 0, 0, m as i32));
            }
            if let Some(m) = minor {
                jumps.push(block.len());
                block.push(Insn::new(JNE32_K, 5, 0, 0, m as i32));
            }
            block.push(Insn::new(MOV64_K, 0, 0, 0, verdict));
            block.push(Insn::new(EXIT, 0, 0, 0, 0));
            let len = block.len();
            for j in jumps {
                block[j].off = (len - j - 1) as i16;
            }
            p.extend(block);
        }
        p.push(Insn::new(MOV64_K, 0, 0, 0, i32::from(self.default_allow)));
        p.push(Insn::new(EXIT, 0, 0, 0, 0));
        p
    }
}

/// `c 1:3 rwm` — the v1 file syntax.
pub fn rule_line((t, major, minor): DevKey, access: u8) -> String {
    let mut s = String::new();
    let n = |v: Option<u32>| v.map_or_else(|| "*".to_string(), |v| v.to_string());
    let _ = write!(
        s,
        "{} {}:{} {}",
        t.letter(),
        n(major),
        n(minor),
        access_string(access)
    );
    s
}

// The opcodes the generated programs use (include/uapi/linux/bpf{,_common}.h).
pub(crate) const LDX_W: u8 = 0x61; // BPF_LDX | BPF_W | BPF_MEM
pub(crate) const AND32_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
pub(crate) const RSH32_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
pub(crate) const MOV32_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
pub(crate) const MOV64_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
pub(crate) const JNE32_K: u8 = 0x56; // BPF_JMP32 | BPF_JNE | BPF_K
pub(crate) const JNE32_X: u8 = 0x5e; // BPF_JMP32 | BPF_JNE | BPF_X
pub(crate) const JEQ32_K: u8 = 0x16; // BPF_JMP32 | BPF_JEQ | BPF_K
pub(crate) const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

#[cfg(test)]
mod tests {
    use super::*;
    use berth_oci::spec::runtime::LinuxDeviceCgroupBuilder;
    use proptest::prelude::*;

    fn rule(
        allow: bool,
        t: Option<LinuxDeviceType>,
        maj: Option<i64>,
        min: Option<i64>,
        acc: &str,
    ) -> LinuxDeviceCgroup {
        let mut b = LinuxDeviceCgroupBuilder::default().allow(allow).access(acc);
        if let Some(t) = t {
            b = b.typ(t);
        }
        if let Some(m) = maj {
            b = b.major(m);
        }
        if let Some(m) = min {
            b = b.minor(m);
        }
        b.build().unwrap()
    }

    /// Docker's default: deny all, then the standard character devices.
    fn docker_default() -> Vec<LinuxDeviceCgroup> {
        use LinuxDeviceType::C;
        vec![
            rule(false, None, None, None, "rwm"),
            rule(true, Some(C), None, None, "m"),
            rule(true, Some(LinuxDeviceType::B), None, None, "m"),
            rule(true, Some(C), Some(1), Some(3), "rwm"),
            rule(true, Some(C), Some(1), Some(5), "rwm"),
            rule(true, Some(C), Some(136), None, "rwm"),
            rule(true, Some(C), Some(5), Some(2), "rwm"),
        ]
    }

    /// A tiny interpreter for exactly the opcodes above (what the verifier would run).
    pub(crate) fn run(prog: &[Insn], typ: DevType, major: u32, minor: u32, access: u8) -> u64 {
        let t: u32 = match typ {
            DevType::Block => 1,
            DevType::Char => 2,
            DevType::All => 0,
        };
        let ctx = [(u32::from(access) << 16) | t, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        for _ in 0..10_000 {
            let i = prog[pc];
            let (d, s) = (i.dst() as usize, i.src() as usize);
            pc += 1;
            let lo = |v: u64| v as u32;
            match i.code {
                LDX_W => {
                    assert_eq!(s, 1, "loads only from the context");
                    r[d] = u64::from(ctx[(i.off / 4) as usize]);
                }
                AND32_K => r[d] = u64::from(lo(r[d]) & i.imm as u32),
                RSH32_K => r[d] = u64::from(lo(r[d]) >> i.imm),
                MOV32_X => r[d] = u64::from(lo(r[s])),
                MOV64_K => r[d] = i.imm as i64 as u64,
                JNE32_K | JNE32_X | JEQ32_K => {
                    let rhs = if i.code == JNE32_X {
                        lo(r[s])
                    } else {
                        i.imm as u32
                    };
                    let taken = if i.code == JEQ32_K {
                        lo(r[d]) == rhs
                    } else {
                        lo(r[d]) != rhs
                    };
                    if taken {
                        assert!(i.off >= 0, "forward jumps only");
                        pc += i.off as usize;
                    }
                }
                EXIT => return r[0],
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
        panic!("program did not terminate");
    }

    #[test]
    fn docker_default_state_and_v1_lines() {
        let s = DeviceState::from_oci(&docker_default()).unwrap();
        assert!(!s.default_allow);
        let w = s.v1_writes(Some("a *:* rwm\n"));
        let lines: Vec<String> = w.iter().map(|(f, l)| format!("{f}: {l}")).collect();
        assert_eq!(
            lines,
            [
                "devices.deny: a",
                "devices.allow: b *:* m",
                "devices.allow: c *:* m",
                "devices.allow: c 1:3 rwm",
                "devices.allow: c 1:5 rwm",
                "devices.allow: c 5:2 rwm",
                "devices.allow: c 136:* rwm",
            ]
        );
        // Re-applying onto a cgroup that already shows exactly this: no writes at all.
        let list = "c 136:* rwm\nc 1:3 rwm\nb *:* m\nc *:* m\nc 1:5 rwm\nc 5:2 rwm\n";
        assert!(s.v1_writes(Some(list)).is_empty());
    }

    #[test]
    fn golden_program_for_a_small_rule_set() {
        use LinuxDeviceType::C;
        let s = DeviceState::from_oci(&[
            rule(true, Some(C), Some(1), Some(3), "r"),
            rule(true, Some(C), Some(136), None, "rwm"),
        ])
        .unwrap();
        let text: Vec<String> = s
            .bpf_program()
            .iter()
            .map(|i| format!("{:02x} {} {} {} {}", i.code, i.dst(), i.src(), i.off, i.imm))
            .collect();
        assert_eq!(
            text,
            [
                "61 2 1 0 0",
                "54 2 0 0 65535",
                "61 3 1 0 0",
                "74 3 0 0 16",
                "61 4 1 4 0",
                "61 5 1 8 0",
                // c 1:3 r
                "56 2 0 7 2",
                "bc 1 3 0 0",
                "54 1 0 0 2",
                "5e 1 3 4 0",
                "56 4 0 3 1",
                "56 5 0 2 3",
                "b7 0 0 0 1",
                "95 0 0 0 0",
                // c 136:* rwm
                "56 2 0 3 2",
                "56 4 0 2 136",
                "b7 0 0 0 1",
                "95 0 0 0 0",
                // default deny
                "b7 0 0 0 0",
                "95 0 0 0 0",
            ]
        );
        let p = s.bpf_program();
        assert_eq!(run(&p, DevType::Char, 1, 3, ACC_READ), 1);
        assert_eq!(run(&p, DevType::Char, 1, 3, ACC_READ | ACC_WRITE), 0);
        assert_eq!(run(&p, DevType::Char, 136, 7, ACC_WRITE), 1);
        assert_eq!(run(&p, DevType::Block, 136, 7, ACC_WRITE), 0);
    }

    #[test]
    fn allow_all_then_deny_is_a_blacklist() {
        use LinuxDeviceType::C;
        let s = DeviceState::from_oci(&[
            rule(true, None, None, None, "rwm"),
            rule(false, Some(C), Some(1), Some(3), "w"),
        ])
        .unwrap();
        assert!(s.default_allow);
        let p = s.bpf_program();
        assert_eq!(run(&p, DevType::Char, 1, 3, ACC_READ), 1);
        // Overlapping the denied bit denies, even when more is asked (kernel semantics).
        assert_eq!(run(&p, DevType::Char, 1, 3, ACC_READ | ACC_WRITE), 0);
        assert_eq!(run(&p, DevType::Char, 1, 5, ACC_WRITE), 1);
        let w = s.v1_writes(None);
        assert_eq!(
            w,
            [
                ("devices.allow", "a".into()),
                ("devices.deny", "c 1:3 w".into())
            ]
        );
    }

    #[test]
    fn later_denies_remove_access() {
        use LinuxDeviceType::C;
        let s = DeviceState::from_oci(&[
            rule(true, Some(C), Some(1), Some(3), "rwm"),
            rule(false, Some(C), Some(1), Some(3), "w"),
        ])
        .unwrap();
        assert_eq!(
            s.exceptions.get(&(DevType::Char, Some(1), Some(3))),
            Some(&(ACC_READ | ACC_MKNOD))
        );
    }

    #[test]
    fn bad_rules_name_the_entry() {
        let e = DeviceState::from_oci(&[rule(true, Some(LinuxDeviceType::P), None, None, "r")])
            .unwrap_err();
        assert!(e.to_string().contains("devices[0].type"), "{e}");
        let e = DeviceState::from_oci(&[rule(true, None, None, None, "rx")]).unwrap_err();
        assert!(e.to_string().contains("devices[0].access"), "{e}");
        let e = DeviceState::from_oci(&[rule(
            true,
            Some(LinuxDeviceType::C),
            Some(1 << 33),
            None,
            "r",
        )])
        .unwrap_err();
        assert!(e.to_string().contains("devices[0].major"), "{e}");
        // Punching a hole into a wildcard exception is refused.
        let e = DeviceState::from_oci(&[
            rule(true, Some(LinuxDeviceType::C), Some(1), None, "rwm"),
            rule(false, Some(LinuxDeviceType::C), Some(1), Some(3), "w"),
        ])
        .unwrap_err();
        assert!(
            e.to_string().contains("devices[1]") && e.to_string().contains("c 1:* rwm"),
            "{e}"
        );
    }

    fn arb_rule() -> impl Strategy<Value = LinuxDeviceCgroup> {
        (
            any::<bool>(),
            prop_oneof![
                Just(None),
                Just(Some(LinuxDeviceType::B)),
                Just(Some(LinuxDeviceType::C))
            ],
            prop_oneof![Just(None), (1i64..4).prop_map(Some)],
            prop_oneof![Just(None), (1i64..4).prop_map(Some)],
            prop_oneof![
                Just("r"),
                Just("w"),
                Just("m"),
                Just("rw"),
                Just("rwm"),
                Just("wm")
            ],
        )
            .prop_map(|(allow, t, maj, min, acc)| rule(allow, t, maj, min, acc))
    }

    proptest! {
        /// The program decides exactly like the reference semantics, for every request.
        #[test]
        fn program_matches_reference(rules in proptest::collection::vec(arb_rule(), 0..8)) {
            let Ok(state) = DeviceState::from_oci(&rules) else { return Ok(()); };
            let prog = state.bpf_program();
            for typ in [DevType::Block, DevType::Char] {
                for major in 0..5 {
                    for minor in 0..5 {
                        for access in 1..=ACC_ALL {
                            let want = state.allows(typ, major, minor, access);
                            let got = run(&prog, typ, major, minor, access) == 1;
                            prop_assert_eq!(got, want, "{:?} {}:{} {}", typ, major, minor, access);
                        }
                    }
                }
            }
        }
    }
}
