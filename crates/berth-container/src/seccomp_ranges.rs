//! Re-laying out libseccomp's program: dispatch on syscall-number *ranges*.
//!
//! libseccomp compares the syscall number against every listed syscall (one `jeq` each,
//! arranged in a binary tree with `SCMP_FLTATR_CTL_OPTIMIZE=2`): Docker's default profile
//! for x86_64 + x86 + x32 becomes 1,237 instructions. Loading a filter costs the kernel time
//! linear in its length (cBPF → eBPF conversion, checks, JIT), and that load is on every
//! container start's critical path. Most allowed numbers are contiguous, so the same
//! decisions fit in a search over a few dozen ranges per architecture.
//!
//! [`shorten`] does not reimplement libseccomp (syscall tables, `socketcall`/`ipc`
//! multiplexing, 64-bit argument comparisons, rule merging stay libseccomp's). It
//! *partially evaluates* libseccomp's program over the two fields it dispatches on, the
//! architecture and the syscall number, as intervals:
//!
//! ```text
//! libseccomp's program ──(arch, nr) as intervals──▶ pieces: [arch lo..hi] × [nr lo..hi]
//!        → residual = `ret K`, or the argument checks reachable from there, copied exactly
//!                   (jumps on arch/nr folded: they are constant inside the piece)
//! new program:  ld arch; search over arch ranges → ld nr; search over nr ranges → residual
//! ```
//!
//! Identical residuals are shared (hash-consing), adjacent pieces with the same residual are
//! merged, a single value between two ranges of the same target becomes a `jeq` in front of
//! it (at most `MAX_EXCEPTIONS`), and the result is laid out backwards so that every
//! conditional jump fits its 8-bit offset (a `ja` or a copy of a `ret` where it would not).
//! Only the instructions libseccomp emits are understood (`ld [k]`, `jeq`/`jgt`/`jge`/
//! `jset #k`, `ja`, `and #k`, `ret #k`); anything else, a result that is not shorter, or a
//! result that disagrees with the original on the self-check ([`check_equivalent`] at both
//! ends of every merged range, with the argument checks' boundary values) is an error and
//! the caller keeps libseccomp's program. The kernel's action cache still sees constant
//! actions: the new dispatch only loads `nr`/`arch` and uses `jeq`/`jge`/`ja`/`ret`.
//!
//! Docker's default profile (x86_64 + x86 + x32, the 14 default capabilities): 1,237 → 222
//! instructions; the kernel loads it in ~0.2 ms instead of ~0.59 ms, and a filtered syscall
//! costs the same (docs/runtime.md, "The seccomp program"). Cost: 2–5 ms once per profile
//! (the program is cached on disk).

use berth_sys::seccomp::SockFilter;
use std::collections::HashMap;

const LD_W_ABS: u16 = 0x20;
const JA: u16 = 0x05;
const JEQ_K: u16 = 0x15;
const JGT_K: u16 = 0x25;
const JGE_K: u16 = 0x35;
const JSET_K: u16 = 0x45;
const AND_K: u16 = 0x54;
const RET_K: u16 = 0x06;

/// `struct seccomp_data` offsets of the two fields the dispatch folds.
const NR: u32 = 0;
const ARCH: u32 = 4;
/// At most this many `jeq`s for single values in front of a range's target.
const MAX_EXCEPTIONS: usize = 2;

/// `sizeof(struct seccomp_data)`.
const DATA_LEN: u32 = 64;

/// An inclusive range of a 32-bit field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Iv {
    lo: u32,
    hi: u32,
}

const FULL: Iv = Iv {
    lo: 0,
    hi: u32::MAX,
};

/// What the accumulator holds while evaluating symbolically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Acc {
    Const(u32),
    /// The field loaded from this offset (`NR` or `ARCH`): its range is in the state.
    Field(u32),
    /// Anything only known at run time (arguments, instruction pointer).
    Runtime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Node {
    Ret(u32),
    /// A conditional jump (`code` is one of the `J*_K`).
    Jump {
        code: u16,
        k: u32,
        jt: u32,
        jf: u32,
    },
    /// `ld [k]` or `and #k`, falling through to `next`.
    Stmt {
        code: u16,
        k: u32,
        next: u32,
    },
}

/// The DAG of the new program, hash-consed.
#[derive(Default)]
struct Dag {
    nodes: Vec<Node>,
    ids: HashMap<Node, u32>,
}

impl Dag {
    fn add(&mut self, n: Node) -> u32 {
        if let Some(&id) = self.ids.get(&n) {
            return id;
        }
        let id = self.nodes.len() as u32;
        self.nodes.push(n);
        self.ids.insert(n, id);
        id
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, String> {
    Err(msg.into())
}

/// The outcome of a jump on a field whose value lies in a range: known when the same for
/// every value, else the sub-ranges (two or three) to evaluate separately.
enum Cmp {
    Known(bool),
    Split(Vec<Iv>),
}

fn compare(code: u16, k: u32, iv: Iv) -> Result<Cmp, String> {
    let test = |v: u32| match code {
        JEQ_K => v == k,
        JGT_K => v > k,
        JGE_K => v >= k,
        _ => v & k != 0,
    };
    if iv.lo == iv.hi {
        return Ok(Cmp::Known(test(iv.lo)));
    }
    // The value where the outcome changes (first value of the upper part).
    let cuts: Vec<u32> = match code {
        JEQ_K => vec![k, k.wrapping_add(1)],
        JGT_K => vec![k.wrapping_add(1)],
        JGE_K => vec![k],
        _ => return err("jset on the syscall number or architecture over a range"),
    };
    let mut parts = Vec::new();
    let mut lo = iv.lo;
    for c in cuts {
        if c > lo && c <= iv.hi {
            parts.push(Iv { lo, hi: c - 1 });
            lo = c;
        }
    }
    if parts.is_empty() {
        return Ok(Cmp::Known(test(iv.lo)));
    }
    parts.push(Iv { lo, hi: iv.hi });
    Ok(Cmp::Split(parts))
}

fn field_index(off: u32) -> usize {
    (off / 4) as usize
}

struct Eval<'a> {
    prog: &'a [SockFilter],
    dag: Dag,
    /// The constants of the copied argument checks (`jeq`/`jgt`/`jge`/`jset`/`and`).
    arg_consts: Vec<u32>,
}

/// One evaluation state: program counter, accumulator, ranges of `nr` and `arch`.
#[derive(Clone, Copy)]
struct State {
    pc: usize,
    acc: Acc,
    ivs: [Iv; 2],
}

/// A rectangle of (arch, nr) values and what the program does there.
struct Piece {
    arch: Iv,
    nr: Iv,
    node: u32,
}

impl Eval<'_> {
    fn insn(&self, pc: usize) -> Result<SockFilter, String> {
        self.prog
            .get(pc)
            .copied()
            .ok_or_else(|| format!("instruction {pc} is past the end"))
    }

    fn target(&self, pc: usize, off: u32) -> Result<usize, String> {
        let t = pc + 1 + off as usize;
        if t >= self.prog.len() {
            return err(format!("jump from {pc} past the end"));
        }
        Ok(t)
    }

    /// Splits the (arch, nr) space into pieces, folding every jump on those two fields.
    fn split(&mut self) -> Result<Vec<Piece>, String> {
        let mut out = Vec::new();
        let mut work = vec![State {
            pc: 0,
            acc: Acc::Const(0),
            ivs: [FULL, FULL],
        }];
        while let Some(mut s) = work.pop() {
            loop {
                let i = self.insn(s.pc)?;
                match i.code {
                    RET_K => {
                        let node = self.dag.add(Node::Ret(i.k));
                        out.push(piece(&s, node));
                        break;
                    }
                    LD_W_ABS if i.k == NR || i.k == ARCH => {
                        s.acc = Acc::Field(i.k);
                        s.pc += 1;
                    }
                    JA => s.pc = self.target(s.pc, i.k)?,
                    JEQ_K | JGT_K | JGE_K | JSET_K if !matches!(s.acc, Acc::Runtime) => {
                        let taken = match s.acc {
                            Acc::Const(v) => match compare(i.code, i.k, Iv { lo: v, hi: v })? {
                                Cmp::Known(t) => t,
                                Cmp::Split(_) => unreachable!("a single value"),
                            },
                            Acc::Field(f) => {
                                let fi = field_index(f);
                                match compare(i.code, i.k, s.ivs[fi])? {
                                    Cmp::Known(t) => t,
                                    Cmp::Split(parts) => {
                                        for p in parts {
                                            let mut n = s;
                                            n.ivs[fi] = p;
                                            work.push(n);
                                        }
                                        break;
                                    }
                                }
                            }
                            Acc::Runtime => unreachable!(),
                        };
                        let off = if taken { i.jt } else { i.jf };
                        s.pc = self.target(s.pc, off as u32)?;
                    }
                    _ => {
                        // From here the program looks at run-time data: copy what it does.
                        let node = self.residual(s, &mut HashMap::new())?;
                        out.push(piece(&s, node));
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    /// The code reachable from `s`, with jumps on arch/nr folded (they must be constant
    /// over the piece's ranges).
    fn residual(&mut self, s: State, memo: &mut HashMap<(usize, Acc), u32>) -> Result<u32, String> {
        if let Some(&id) = memo.get(&(s.pc, s.acc)) {
            return Ok(id);
        }
        let i = self.insn(s.pc)?;
        let next = |acc| State {
            pc: s.pc + 1,
            acc,
            ivs: s.ivs,
        };
        let node = match i.code {
            RET_K => self.dag.add(Node::Ret(i.k)),
            LD_W_ABS if i.k == NR || i.k == ARCH => {
                return self.residual(next(Acc::Field(i.k)), memo);
            }
            LD_W_ABS if i.k % 4 == 0 && i.k < DATA_LEN => {
                let n = self.residual(next(Acc::Runtime), memo)?;
                self.dag.add(Node::Stmt {
                    code: LD_W_ABS,
                    k: i.k,
                    next: n,
                })
            }
            AND_K => match s.acc {
                Acc::Runtime => {
                    self.arg_consts.push(i.k);
                    let n = self.residual(next(Acc::Runtime), memo)?;
                    self.dag.add(Node::Stmt {
                        code: AND_K,
                        k: i.k,
                        next: n,
                    })
                }
                Acc::Const(v) => return self.residual(next(Acc::Const(v & i.k)), memo),
                Acc::Field(_) => return err("and on the syscall number or architecture"),
            },
            JA => {
                let t = self.target(s.pc, i.k)?;
                return self.residual(State { pc: t, ..s }, memo);
            }
            JEQ_K | JGT_K | JGE_K | JSET_K => {
                let jt = self.target(s.pc, i.jt as u32)?;
                let jf = self.target(s.pc, i.jf as u32)?;
                let iv = match s.acc {
                    Acc::Runtime => None,
                    Acc::Const(v) => Some(Iv { lo: v, hi: v }),
                    Acc::Field(f) => Some(s.ivs[field_index(f)]),
                };
                if let Some(iv) = iv {
                    let Cmp::Known(taken) = compare(i.code, i.k, iv)? else {
                        return err(
                            "the syscall number or architecture is tested after an argument",
                        );
                    };
                    let pc = if taken { jt } else { jf };
                    return self.residual(State { pc, ..s }, memo);
                }
                self.arg_consts.push(i.k);
                let t = self.residual(State { pc: jt, ..s }, memo)?;
                let f = self.residual(State { pc: jf, ..s }, memo)?;
                self.dag.add(Node::Jump {
                    code: i.code,
                    k: i.k,
                    jt: t,
                    jf: f,
                })
            }
            c => return err(format!("unsupported instruction {c:#06x} at {}", s.pc)),
        };
        memo.insert((s.pc, s.acc), node);
        Ok(node)
    }

    /// Folds each single value between two ranges of the same target into one range
    /// tested with `jeq` (one instruction instead of two in the tree), up to
    /// [`MAX_EXCEPTIONS`] values per range so that paths stay short.
    fn fold_singles(&mut self, ranges: &[(Iv, u32)]) -> Vec<(Iv, u32)> {
        // node → (background target, number of `jeq`s in front of it)
        let mut folded: HashMap<u32, (u32, usize)> = HashMap::new();
        let mut out: Vec<(Iv, u32)> = Vec::new();
        for &r in ranges {
            out.push(r);
            let n = out.len();
            if n < 3 {
                continue;
            }
            let (a, s, b) = (out[n - 3], out[n - 2], out[n - 1]);
            let (bg, count) = folded.get(&a.1).copied().unwrap_or((a.1, 0));
            if s.0.lo != s.0.hi || bg != b.1 || count >= MAX_EXCEPTIONS {
                continue;
            }
            let node = self.dag.add(Node::Jump {
                code: JEQ_K,
                k: s.0.lo,
                jt: s.1,
                jf: a.1,
            });
            folded.insert(node, (bg, count + 1));
            out.truncate(n - 3);
            out.push((
                Iv {
                    lo: a.0.lo,
                    hi: b.0.hi,
                },
                node,
            ));
        }
        out
    }

    /// A search over sorted, contiguous `(lo, node)` ranges.
    fn search(&mut self, ranges: &[(Iv, u32)]) -> u32 {
        let ranges = &self.fold_singles(ranges);
        self.tree(ranges)
    }

    fn tree(&mut self, ranges: &[(Iv, u32)]) -> u32 {
        if ranges.len() == 1 {
            return ranges[0].1;
        }
        // Mostly one target with a few single values elsewhere (the architectures): a
        // chain of `jeq` is shorter than a tree.
        if let Some(chain) = self.jeq_chain(ranges) {
            return chain;
        }
        let mid = ranges.len() / 2;
        let hi = self.tree(&ranges[mid..]);
        let lo = self.tree(&ranges[..mid]);
        self.dag.add(Node::Jump {
            code: JGE_K,
            k: ranges[mid].0.lo,
            jt: hi,
            jf: lo,
        })
    }

    fn jeq_chain(&mut self, ranges: &[(Iv, u32)]) -> Option<u32> {
        let background = ranges.iter().find(|(iv, _)| iv.lo != iv.hi)?.1;
        let singles: Vec<(u32, u32)> = ranges
            .iter()
            .filter(|(_, n)| *n != background)
            .map(|(iv, n)| (iv.lo == iv.hi).then_some((iv.lo, *n)))
            .collect::<Option<_>>()?;
        if singles.len() + 1 >= ranges.len() {
            return None;
        }
        let mut node = background;
        // Highest value first: the 64-bit architectures (`__AUDIT_ARCH_64BIT`) are tested
        // before their 32-bit compat ones.
        for (k, n) in singles.into_iter() {
            node = self.dag.add(Node::Jump {
                code: JEQ_K,
                k,
                jt: n,
                jf: node,
            });
        }
        Some(node)
    }
}

fn piece(s: &State, node: u32) -> Piece {
    Piece {
        arch: s.ivs[field_index(ARCH)],
        nr: s.ivs[field_index(NR)],
        node,
    }
}

/// Sorted pieces → contiguous ranges covering all 32-bit values, adjacent equal merged.
fn ranges(mut v: Vec<(Iv, u32)>, what: &str) -> Result<Vec<(Iv, u32)>, String> {
    v.sort_by_key(|(iv, _)| iv.lo);
    let mut out: Vec<(Iv, u32)> = Vec::new();
    let mut expect = 0u64;
    for (iv, n) in v {
        if iv.lo as u64 != expect {
            return err(format!(
                "{what} ranges overlap or leave a gap at {expect:#x}"
            ));
        }
        expect = iv.hi as u64 + 1;
        match out.last_mut() {
            Some((last, ln)) if *ln == n => last.hi = iv.hi,
            _ => out.push((iv, n)),
        }
    }
    if expect != 1 << 32 {
        return err(format!("{what} ranges stop at {expect:#x}"));
    }
    Ok(out)
}

/// Lays the DAG out as a program (built backwards: positions count from the end).
struct Layout<'a> {
    dag: &'a Dag,
    rev: Vec<SockFilter>,
    /// Latest position (from the end) of each emitted node.
    pos: HashMap<u32, usize>,
    /// A jump offset did not fit (a bug: the result is discarded).
    overflow: bool,
}

impl Layout<'_> {
    fn push(&mut self, code: u16, jt: u8, jf: u8, k: u32) -> usize {
        self.rev.push(SockFilter { code, jt, jf, k });
        self.rev.len() - 1
    }

    fn emit(&mut self, id: u32) -> usize {
        if let Some(&p) = self.pos.get(&id) {
            return p;
        }
        let p = match self.dag.nodes[id as usize] {
            Node::Ret(k) => self.push(RET_K, 0, 0, k),
            Node::Stmt { code, k, next } => {
                self.emit(next);
                self.fall_through_to(next);
                self.push(code, 0, 0, k)
            }
            Node::Jump { code, k, jt, jf } => {
                self.emit(jf);
                self.emit(jt);
                // A `ja` for `jt` may still come between the jump and `jf`'s target.
                let jf_at = self.reachable(jf, 1);
                let jt_at = self.reachable(jt, 0);
                let at = self.rev.len();
                let off = |t: usize| u8::try_from(at - t - 1);
                let (Ok(t), Ok(f)) = (off(jt_at), off(jf_at)) else {
                    self.overflow = true;
                    return at;
                };
                self.push(code, t, f, k)
            }
        };
        self.pos.insert(id, p);
        p
    }

    /// Makes the next instruction pushed fall through to `id`.
    fn fall_through_to(&mut self, id: u32) {
        let p = self.pos[&id];
        if p + 1 != self.rev.len() {
            self.redirect(id, p);
        }
    }

    /// A position of `id` that a conditional jump pushed next can reach (8-bit offset).
    fn reachable(&mut self, id: u32, slack: usize) -> usize {
        let p = self.pos[&id];
        if self.rev.len() + slack - p - 1 <= u8::MAX as usize {
            return p;
        }
        self.redirect(id, p)
    }

    /// A copy of a `ret`, or a `ja` to `id`, pushed now.
    fn redirect(&mut self, id: u32, p: usize) -> usize {
        let at = self.rev.len();
        let q = match self.dag.nodes[id as usize] {
            Node::Ret(k) => self.push(RET_K, 0, 0, k),
            _ => self.push(JA, 0, 0, (at - p - 1) as u32),
        };
        // Later jumps may use the copy or the `ja` as well.
        self.pos.insert(id, q);
        q
    }
}

/// A shorter program with the same action for every input (see the module docs), or why
/// there is none (the caller keeps `prog`).
pub fn shorten(prog: &[SockFilter]) -> Result<Vec<SockFilter>, String> {
    let mut ev = Eval {
        prog,
        dag: Dag::default(),
        arg_consts: Vec::new(),
    };
    let pieces = ev.split()?;
    // Group by architecture range; each group's nr ranges must cover all values.
    let mut groups: HashMap<Iv, Vec<(Iv, u32)>> = HashMap::new();
    for p in &pieces {
        groups.entry(p.arch).or_default().push((p.nr, p.node));
    }
    let mut arch_ranges = Vec::new();
    // The self-check's inputs: both ends of every merged range.
    let mut points = Vec::new();
    for (arch, nrs) in groups {
        let nrs = ranges(nrs, "syscall number")?;
        for (nr, _) in &nrs {
            for a in [arch.lo, arch.hi] {
                points.extend([(a, nr.lo), (a, nr.hi)]);
            }
        }
        let node = if nrs.len() == 1 {
            nrs[0].1
        } else {
            let tree = ev.search(&nrs);
            ev.dag.add(Node::Stmt {
                code: LD_W_ABS,
                k: NR,
                next: tree,
            })
        };
        arch_ranges.push((arch, node));
    }
    let arch_ranges = ranges(arch_ranges, "architecture")?;
    let root = if arch_ranges.len() == 1 {
        arch_ranges[0].1
    } else {
        let tree = ev.search(&arch_ranges);
        ev.dag.add(Node::Stmt {
            code: LD_W_ABS,
            k: ARCH,
            next: tree,
        })
    };
    let mut l = Layout {
        dag: &ev.dag,
        rev: Vec::new(),
        pos: HashMap::new(),
        overflow: false,
    };
    l.emit(root);
    if l.overflow {
        return err("a jump offset does not fit in 8 bits");
    }
    let mut out = l.rev;
    out.reverse();
    if out.len() >= prog.len() {
        return err(format!(
            "not shorter ({} instructions, libseccomp's {})",
            out.len(),
            prog.len()
        ));
    }
    points.sort_unstable();
    points.dedup();
    // The constants the copied argument checks compare with.
    let values = boundary_values(ev.arg_consts.iter().copied());
    check_equivalent(prog, &out, &points, &values, false)?;
    Ok(out)
}

/// `struct seccomp_data` as 16 native 32-bit words (x86: little-endian halves of the args).
pub type Data = [u32; 16];

/// Runs a classic BPF seccomp program (the subset libseccomp emits) on `data`.
pub fn run(prog: &[SockFilter], data: &Data) -> Result<u32, String> {
    let mut pc = 0usize;
    let mut a = 0u32;
    loop {
        let i = prog
            .get(pc)
            .ok_or_else(|| format!("ran past the end at {pc}"))?;
        let jump = |taken: bool| pc + 1 + if taken { i.jt } else { i.jf } as usize;
        pc = match i.code {
            RET_K => return Ok(i.k),
            LD_W_ABS if i.k % 4 == 0 && i.k < DATA_LEN => {
                a = data[(i.k / 4) as usize];
                pc + 1
            }
            AND_K => {
                a &= i.k;
                pc + 1
            }
            JA => pc + 1 + i.k as usize,
            JEQ_K => jump(a == i.k),
            JGT_K => jump(a > i.k),
            JGE_K => jump(a >= i.k),
            JSET_K => jump(a & i.k != 0),
            c => return err(format!("unsupported instruction {c:#06x} at {pc}")),
        };
    }
}

/// Each constant with its neighbours and complement, plus the extremes: the values where
/// a comparison with one of `consts` can change its outcome.
pub fn boundary_values(consts: impl IntoIterator<Item = u32>) -> Vec<u32> {
    let mut v = vec![0, 1, u32::MAX];
    for k in consts {
        v.extend([k.wrapping_sub(1), k, k.wrapping_add(1), !k]);
    }
    v.sort_unstable();
    v.dedup();
    v
}

/// Compares the two programs' actions at each `(arch, nr)` point: with zero arguments,
/// and where either program reads run-time data, with each of `values` in each word of
/// the instruction pointer and the arguments (the others zero), and with `pairs`, every
/// (high, low) combination of `values` in each argument.
pub fn check_equivalent(
    a: &[SockFilter],
    b: &[SockFilter],
    points: &[(u32, u32)],
    values: &[u32],
    pairs: bool,
) -> Result<(), String> {
    for &(arch, nr) in points {
        let mut d: Data = [0; 16];
        d[field_index(NR)] = nr;
        d[field_index(ARCH)] = arch;
        let same = |d: &Data| -> Result<bool, String> {
            let (x, y) = (run(a, d)?, run(b, d)?);
            if x != y {
                return err(format!(
                    "actions differ for arch {arch:#x} nr {nr:#x} data {d:x?}: {x:#x} != {y:#x}"
                ));
            }
            Ok(true)
        };
        same(&d)?;
        if !reads_args(a, &d)? && !reads_args(b, &d)? {
            continue;
        }
        // Words 2..16: the instruction pointer and the six arguments, low and high halves.
        for w in 2..16 {
            for &v in values {
                let mut e = d;
                e[w] = v;
                same(&e)?;
            }
        }
        if pairs {
            for arg in 0..6 {
                for &hi in values {
                    for &lo in values {
                        let mut e = d;
                        e[4 + 2 * arg] = lo;
                        e[5 + 2 * arg] = hi;
                        same(&e)?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Whether running `prog` on `d` loads anything but the syscall number and architecture.
fn reads_args(prog: &[SockFilter], d: &Data) -> Result<bool, String> {
    let mut pc = 0usize;
    let mut a = 0u32;
    loop {
        let i = prog
            .get(pc)
            .ok_or_else(|| format!("ran past the end at {pc}"))?;
        let jump = |taken: bool| pc + 1 + if taken { i.jt } else { i.jf } as usize;
        pc = match i.code {
            RET_K => return Ok(false),
            LD_W_ABS if i.k == NR || i.k == ARCH => {
                a = d[(i.k / 4) as usize];
                pc + 1
            }
            LD_W_ABS => return Ok(true),
            AND_K => {
                a &= i.k;
                pc + 1
            }
            JA => pc + 1 + i.k as usize,
            JEQ_K => jump(a == i.k),
            JGT_K => jump(a > i.k),
            JGE_K => jump(a >= i.k),
            JSET_K => jump(a & i.k != 0),
            c => return err(format!("unsupported instruction {c:#06x} at {pc}")),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn i(code: u16, jt: u8, jf: u8, k: u32) -> SockFilter {
        SockFilter { code, jt, jf, k }
    }

    const ALLOW: u32 = 0x7fff_0000;
    const EPERM: u32 = 0x0005_0001;
    const X86_64: u32 = 0xc000_003e;

    /// What libseccomp emits for "allow 0, 1, 2, 3 and write(fd 1), else EPERM" on x86_64.
    fn one_per_syscall() -> Vec<SockFilter> {
        vec![
            i(LD_W_ABS, 0, 0, ARCH),
            i(JEQ_K, 1, 0, X86_64),
            i(RET_K, 0, 0, 0),
            i(LD_W_ABS, 0, 0, NR),
            i(JEQ_K, 8, 0, 0),
            i(JEQ_K, 7, 0, 1),
            i(JEQ_K, 6, 0, 2),
            i(JEQ_K, 5, 0, 3),
            i(JEQ_K, 0, 5, 4),
            i(LD_W_ABS, 0, 0, 20),
            i(JEQ_K, 0, 3, 0),
            i(LD_W_ABS, 0, 0, 16),
            i(JEQ_K, 0, 1, 1),
            i(RET_K, 0, 0, ALLOW),
            i(RET_K, 0, 0, EPERM),
        ]
    }

    fn points() -> Vec<(u32, u32)> {
        let mut p = Vec::new();
        for arch in [0, X86_64 - 1, X86_64, X86_64 + 1, u32::MAX] {
            for nr in (0..8).chain([0x4000_0000, u32::MAX]) {
                p.push((arch, nr));
            }
        }
        p
    }

    #[test]
    fn contiguous_syscalls_become_one_range() {
        let long = one_per_syscall();
        let short = shorten(&long).unwrap();
        // ld arch; jeq; ret kill; ld nr; jge 4; ret allow; jge 5 (write's range)...
        let jumps_on_nr = short.iter().filter(|i| i.code == JGE_K).count();
        assert!(jumps_on_nr <= 2, "{short:?}");
        assert!(short.len() < long.len(), "{} instructions", short.len());
        check_equivalent(&long, &short, &points(), &boundary_values([0, 1]), true).unwrap();
    }

    #[test]
    fn the_check_catches_a_changed_action() {
        let long = one_per_syscall();
        let mut short = shorten(&long).unwrap();
        let ret = short
            .iter_mut()
            .rev()
            .find(|i| i.code == RET_K && i.k == ALLOW)
            .unwrap();
        ret.k = EPERM;
        let e =
            check_equivalent(&long, &short, &points(), &boundary_values([0, 1]), true).unwrap_err();
        assert!(e.contains("actions differ"), "{e}");
    }

    #[test]
    fn unknown_instructions_and_bad_jumps_are_refused() {
        let mut p = one_per_syscall();
        p[11] = i(0x01, 0, 0, 0); // ldx #0
        let e = shorten(&p).unwrap_err();
        assert!(e.contains("unsupported instruction 0x0001"), "{e}");
        let mut p = one_per_syscall();
        p[4].jt = 200;
        let e = shorten(&p).unwrap_err();
        assert!(e.contains("past the end"), "{e}");
        let e = shorten(&[i(LD_W_ABS, 0, 0, NR)]).unwrap_err();
        assert!(e.contains("past the end"), "{e}");
    }

    #[test]
    fn far_targets_get_a_copy_of_the_ret() {
        // 150 blocks of 4 allowed numbers (8b..8b+3), each ending in its own `ret allow`:
        // 901 instructions, 300 ranges; the new tree spans more than an 8-bit jump.
        let mut long = vec![i(LD_W_ABS, 0, 0, NR)];
        for b in 0..150 {
            for j in 0..4u8 {
                long.push(i(JEQ_K, 4 - j, 0, 8 * b + j as u32));
            }
            long.push(i(JA, 0, 0, 1));
            long.push(i(RET_K, 0, 0, ALLOW));
        }
        long.push(i(RET_K, 0, 0, EPERM));
        let short = shorten(&long).unwrap();
        let pts: Vec<(u32, u32)> = (0..1300).map(|nr| (X86_64, nr)).collect();
        check_equivalent(&long, &short, &pts, &[0], false).unwrap();
        assert!(short.len() > 256, "{} instructions", short.len());
        let allows = short
            .iter()
            .filter(|i| i.code == RET_K && i.k == ALLOW)
            .count();
        assert!(allows > 1, "{allows} ret allow");
        assert!(short.len() < long.len());
    }
}
