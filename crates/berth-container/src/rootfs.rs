//! Setting up the container's root filesystem, run by the container's first process inside
//! its new mount namespace (before `pivot_root`).
//!
//! Every destination is resolved inside the rootfs with `openat2(RESOLVE_IN_ROOT)`, so a
//! symlink in the image can never point a mount outside of it; mounts are then made on the
//! resolved file descriptor (`/proc/self/fd/N` of the host procfs, or `move_mount` for bind
//! mounts), never on a path that could change in between.
//!
//! Order (like runc): root propagation → rootfs bind (or the overlay) → `mounts` in order →
//! devices and `/dev` symlinks → masked and read-only paths → (hooks) → `pivot_root` →
//! read-only root. One exception: when the runtime creates the v1 cgroup after the clone
//! ([`crate::cgroup_join`]), a cgroup mount's tmpfs and directories are made in order but
//! the hierarchies are bound after the read-only paths (once the process has joined), or
//! as soon as a later mount, masked or read-only path lands inside that mount (by name, or
//! through a symlink). Only the lines' order in mountinfo differs.

use berth_sys::mount::{AT_RECURSIVE, MountAttr, mount_setattr};
use nix::mount::{MntFlags, MsFlags};
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::mount::{MoveMountFlags, OpenTreeFlags};
use std::collections::BTreeMap;
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::devices::{DevicePlan, default_symlinks};
use crate::mounts::{MountKind, MountPlan, check_proc_mount};
use crate::plan::{OverlayMount, Plan};

pub(crate) type CResult<T> = std::result::Result<T, String>;

pub(crate) fn err<E: std::fmt::Display>(what: impl std::fmt::Display) -> impl FnOnce(E) -> String {
    move |e| format!("{what}: {e}")
}

/// The path through which mount(2) reaches the file `fd` refers to.
pub(crate) fn fd_path(fd: BorrowedFd<'_>) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// Checks that `fd` is on a real procfs (not something an image put there).
pub(crate) fn ensure_procfs(fd: BorrowedFd<'_>, what: &str) -> CResult<()> {
    let st = rustix::fs::fstatfs(fd).map_err(err(format!("statfs {what}")))?;
    if st.f_type != PROC_SUPER_MAGIC {
        return Err(format!("{what} is not on a procfs (type {:#x})", st.f_type));
    }
    Ok(())
}

fn rel(dest: &Path) -> &Path {
    dest.strip_prefix("/").unwrap_or(dest)
}

/// `openat2`, retrying the `EAGAIN` the kernel returns under `RESOLVE_IN_ROOT` or
/// `RESOLVE_BENEATH` when a rename or mount anywhere on the host raced with the lookup (it
/// cannot rule out an escape then; the retry resolves anew). Seen in a test while other
/// containers were being set up.
fn openat2<P: rustix::path::Arg + Copy>(
    dir: impl AsFd,
    path: P,
    flags: OFlags,
    mode: Mode,
    resolve: ResolveFlags,
) -> rustix::io::Result<OwnedFd> {
    let mut tries = 0;
    loop {
        match rustix::fs::openat2(dir.as_fd(), path, flags, mode, resolve) {
            Err(rustix::io::Errno::AGAIN) if tries < 16 => tries += 1,
            r => return r,
        }
    }
}

fn in_root_flags() -> ResolveFlags {
    ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS
}

/// Where a resolved fd lives inside the rootfs.
fn resolved_path(fd: BorrowedFd<'_>, rootfs: &Path) -> CResult<PathBuf> {
    let target = std::fs::read_link(fd_path(fd)).map_err(err("readlink resolved mount target"))?;
    match target.strip_prefix(rootfs) {
        Ok(r) => Ok(Path::new("/").join(r)),
        Err(_) => Err(format!(
            "{} resolved outside of the rootfs {}",
            target.display(),
            rootfs.display()
        )),
    }
}

/// Opens `path` (relative to `dir`) with `O_PATH`, refusing every symlink and every way out
/// of `dir`: what it opens is exactly the lexical path.
fn open_strict(dir: BorrowedFd<'_>, path: &Path) -> rustix::io::Result<OwnedFd> {
    openat2(
        dir,
        path,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
    )
}

/// The common case of a missing mount destination: only its last component is missing and
/// its parent is a real directory reached without any symlink (`/dev/pts` on a fresh `/dev`).
/// Creates the last component there and opens it, again refusing symlinks; the result is the
/// lexical path. `None` whenever that is not the case (a missing or symlinked ancestor, a
/// dangling symlink as the last component, anything appearing meanwhile, any error): the
/// caller then takes the careful component-by-component path, which also reports errors.
fn create_last(root: BorrowedFd<'_>, r: &Path, file: bool) -> Option<OwnedFd> {
    let name = r.file_name()?;
    let parent = match r.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let pfd = openat2(
        root,
        parent,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
    )
    .ok()?;
    create_in(pfd.as_fd(), name, file).ok()?;
    open_strict(pfd.as_fd(), Path::new(name)).ok()
}

/// Creates `name` in `dir`: an empty file (mode 0644, never through a symlink) or a
/// directory (0755). An existing entry is an error (`EEXIST`).
fn create_in(dir: BorrowedFd<'_>, name: &std::ffi::OsStr, file: bool) -> rustix::io::Result<()> {
    if file {
        rustix::fs::openat(
            dir,
            name,
            OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::WRONLY | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .map(drop)
    } else {
        rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o755))
    }
}

/// Opens `dest` inside the rootfs (O_PATH), creating missing directories (and, if `file`, the
/// final file) without ever leaving the rootfs. Returns the fd and the path it resolved to.
pub(crate) fn open_in_root(
    root: BorrowedFd<'_>,
    rootfs: &Path,
    dest: &Path,
    file: bool,
) -> CResult<(OwnedFd, PathBuf)> {
    let r = rel(dest);
    let what = || format!("mount destination {}", dest.display());
    // Fast path: exists and no symlink on the way, so the resolved path is the lexical one.
    match open_strict(root, r) {
        Ok(fd) => return Ok((fd, dest.to_path_buf())),
        Err(rustix::io::Errno::NOENT) => {
            if let Some(fd) = create_last(root, r, file) {
                return Ok((fd, dest.to_path_buf()));
            }
        }
        Err(rustix::io::Errno::LOOP | rustix::io::Errno::XDEV) => {}
        Err(e) => return Err(format!("{}: {e}", what())),
    }
    match openat2(
        root,
        r,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        in_root_flags(),
    ) {
        Ok(fd) => {
            let p = resolved_path(fd.as_fd(), rootfs)?;
            return Ok((fd, p));
        }
        Err(rustix::io::Errno::NOENT) => {}
        Err(e) => return Err(format!("{}: {e}", what())),
    }
    // Slow path: create what is missing, one component at a time, each resolved from the
    // rootfs again so that symlinks keep pointing inside it. A dangling symlink is followed
    // lexically inside the rootfs (its target is created), like runc's securejoin.
    let mut path = r.to_path_buf();
    let mut hops = 0;
    'restart: loop {
        let comps: Vec<std::ffi::OsString> = path
            .components()
            .filter_map(|c| match c {
                std::path::Component::Normal(n) => Some(n.to_os_string()),
                _ => None,
            })
            .collect();
        if comps.is_empty() {
            return Err(format!("{}: resolves to the rootfs itself", what()));
        }
        let mut i = 0;
        let mut created = false;
        while i < comps.len() {
            let parent: PathBuf = comps[..i].iter().collect();
            let prefix: PathBuf = comps[..=i].iter().collect();
            let last = i + 1 == comps.len();
            match openat2(
                root,
                &prefix,
                OFlags::PATH | OFlags::CLOEXEC,
                Mode::empty(),
                in_root_flags(),
            ) {
                Ok(fd) => {
                    if last {
                        let p = resolved_path(fd.as_fd(), rootfs)?;
                        return Ok((fd, p));
                    }
                    i += 1;
                    created = false;
                    continue;
                }
                Err(rustix::io::Errno::NOENT) if !created => {}
                Err(e) => return Err(format!("{}: {}: {e}", what(), prefix.display())),
            }
            let pfd = openat2(
                root,
                if parent.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    &parent
                },
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                in_root_flags(),
            )
            .map_err(|e| format!("{}: open {}: {e}", what(), parent.display()))?;
            let name = comps[i].as_os_str();
            if let Ok(target) = rustix::fs::readlinkat(&pfd, name, Vec::new()) {
                hops += 1;
                if hops > 40 {
                    return Err(format!("{}: too many levels of symlinks", what()));
                }
                let target = PathBuf::from(std::ffi::OsStr::from_bytes(target.as_bytes()));
                let base = resolved_path(pfd.as_fd(), rootfs)?;
                let mut next = if target.is_absolute() {
                    target
                } else {
                    base.join(target)
                };
                for c in &comps[i + 1..] {
                    next.push(c);
                }
                path = rel(&crate::mounts::clean_container_path(&next)).to_path_buf();
                continue 'restart;
            }
            match create_in(pfd.as_fd(), name, last && file) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => created = true,
                Err(e) => return Err(format!("{}: create {}: {e}", what(), prefix.display())),
            }
        }
    }
}

/// Everything the rootfs setup needs besides the plan.
pub(crate) struct RootfsEnv<'a> {
    pub plan: &'a Plan,
    /// Canonical rootfs path on the host.
    pub rootfs: &'a Path,
    /// cgroup subsystem → the container's cgroup directory on the host.
    pub cgroup_paths: &'a BTreeMap<String, PathBuf>,
    pub cgroupns: bool,
    pub userns: bool,
    /// Joins the process to its cgroups when the runtime creates them after the clone (v1:
    /// see [`crate::cgroup_join`]). Then the hierarchies' binds under the cgroup mount wait
    /// (their directories may not exist yet) until the end of the setup, or until something
    /// later would land inside that mount; this is called first. `None`: joined already.
    pub join_cgroups: Option<&'a dyn Fn() -> CResult<()>>,
}

/// The v1 hierarchies' binds of a cgroup mount, waiting for the runtime to have created the
/// container's cgroup directories. The tmpfs is mounted (read-only if asked) with its
/// directories in it: only the binds onto those directories are left.
pub(crate) struct CgroupBinds {
    /// Where the tmpfs is, inside the rootfs (resolved).
    dest: PathBuf,
    /// The tmpfs's device: a path that opens on it lands inside the mount.
    dev: u64,
    top: OwnedFd,
    /// host directory, and where it goes: a name in `top` (made by us), or a directory
    /// opened the careful way.
    subs: Vec<(PathBuf, String, Option<OwnedFd>)>,
    readonly: bool,
    what: String,
}

impl CgroupBinds {
    /// Whether `p` (a destination inside the rootfs, resolved or lexical) is in the mount.
    fn covers(&self, p: &Path) -> bool {
        p.starts_with(&self.dest)
    }
}

/// Joins the cgroups and attaches the waiting binds (if any).
fn bind_cgroups(env: &RootfsEnv<'_>, pending: &mut Option<CgroupBinds>) -> CResult<()> {
    let Some(b) = pending.take() else {
        return Ok(());
    };
    if let Some(join) = env.join_cgroups {
        join()?;
    }
    let what = &b.what;
    for (host_dir, name, sub) in &b.subs {
        bind_hierarchy(host_dir, &b.top, name, sub.as_ref(), b.readonly, what)?;
    }
    Ok(())
}

/// One v1 hierarchy's directory of the container's cgroup, bound onto `name` in the cgroup
/// tmpfs `top` (or onto `sub`).
fn bind_hierarchy(
    host_dir: &Path,
    top: &OwnedFd,
    name: &str,
    sub: Option<&OwnedFd>,
    readonly: bool,
    what: &str,
) -> CResult<()> {
    let tree = rustix::mount::open_tree(
        rustix::fs::CWD,
        host_dir,
        OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
    )
    .map_err(err(format!("{what}: bind {}", host_dir.display())))?;
    let mut set = berth_sys::mount::MOUNT_ATTR_NOSUID
        | berth_sys::mount::MOUNT_ATTR_NODEV
        | berth_sys::mount::MOUNT_ATTR_NOEXEC;
    if readonly {
        set |= berth_sys::mount::MOUNT_ATTR_RDONLY;
    }
    setattr(tree.as_fd(), set, 0, false).map_err(err(format!("{what}: cgroup {name} options")))?;
    match sub {
        None => rustix::mount::move_mount(
            &tree,
            "",
            top,
            name,
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
        ),
        Some(sub) => rustix::mount::move_mount(
            &tree,
            "",
            sub,
            "",
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
        ),
    }
    .map_err(err(format!("{what}: attach cgroup {name}")))
}

/// Steps before the hooks: propagation, rootfs, mounts, devices, masked/read-only paths.
/// Returns the rootfs fd (for `pivot_root`). Runs in the init with umask 0 (set at its
/// start), which device creation relies on.
pub(crate) fn setup(env: &RootfsEnv<'_>) -> CResult<OwnedFd> {
    let plan = env.plan;
    // Nothing we mount may propagate back to the host (default rslave, like runc).
    let prop = plan
        .root_propagation
        .unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC);
    nix::mount::mount(None::<&str>, "/", None::<&str>, prop, None::<&str>)
        .map_err(err("set propagation of /"))?;
    if prop.contains(MsFlags::MS_SHARED) {
        make_parent_private(env.rootfs)?;
    }
    match &plan.overlay {
        Some(o) => mount_overlay(o, env.rootfs)?,
        None => nix::mount::mount(
            Some(env.rootfs),
            env.rootfs,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(err(format!("bind mount rootfs {}", env.rootfs.display())))?,
    }
    let root = rustix::fs::open(
        env.rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(err(format!("open rootfs {}", env.rootfs.display())))?;

    let mut dev_readonly = false;
    // v1 hierarchies' binds waiting for the cgroup (see `RootfsEnv::join_cgroups`).
    let mut pending: Option<CgroupBinds> = None;
    for m in &plan.mounts {
        if m.dest == Path::new("/dev")
            && !m.is_bind()
            && m.flags.contains(MsFlags::MS_RDONLY)
            && plan.setup_dev
        {
            // Devices are created in /dev first; it becomes read-only at the end.
            dev_readonly = true;
            let mut m = m.clone();
            m.flags.remove(MsFlags::MS_RDONLY);
            mount_one(env, root.as_fd(), &m, &mut pending)?;
        } else {
            mount_one(env, root.as_fd(), m, &mut pending)?;
        }
    }
    if plan.setup_dev {
        // mknod needs no cgroup: the device rules always end with runc's "c *:* m" and
        // "b *:* m" (`devices::default_allow_rules`).
        create_devices(env, root.as_fd())?;
    }
    for p in &plan.masked_paths {
        mask_path(env, root.as_fd(), p, &mut pending)?;
    }
    for p in &plan.readonly_paths {
        readonly_path(env, root.as_fd(), p, &mut pending)?;
    }
    if dev_readonly {
        let (fd, _) = open_in_root(root.as_fd(), env.rootfs, Path::new("/dev"), false)?;
        setattr(fd.as_fd(), berth_sys::mount::MOUNT_ATTR_RDONLY, 0, false)
            .map_err(err("make /dev read-only"))?;
    }
    bind_cgroups(env, &mut pending)?;
    Ok(root)
}

/// pivot_root (or MS_MOVE + chroot), then the read-only root.
pub(crate) fn enter(plan: &Plan, root: OwnedFd, rootfs: &Path) -> CResult<()> {
    if plan.no_pivot {
        // Documented fallback for roots that cannot be pivoted (ramfs/initramfs): move the
        // rootfs over / and chroot into it. Weaker than pivot_root (the old root stays
        // reachable for CAP_SYS_CHROOT holders), so only on request (--no-pivot).
        rustix::process::fchdir(&root).map_err(err("chdir to rootfs"))?;
        nix::mount::mount(
            Some(rootfs),
            "/",
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        )
        .map_err(err("move rootfs to / (--no-pivot)"))?;
        rustix::process::chroot(".").map_err(err("chroot (--no-pivot)"))?;
    } else {
        let old = rustix::fs::open(
            "/",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(err("open /"))?;
        rustix::process::fchdir(&root).map_err(err("chdir to rootfs"))?;
        rustix::process::pivot_root(".", ".").map_err(|e| {
            format!(
                "pivot_root {}: {e} (if the host root is a ramfs, use --no-pivot)",
                rootfs.display()
            )
        })?;
        rustix::process::fchdir(&old).map_err(err("chdir to old root"))?;
        // Unmounting the old root must not propagate to the host.
        nix::mount::mount(
            None::<&str>,
            ".",
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(err("make old root rslave"))?;
        nix::mount::umount2(".", MntFlags::MNT_DETACH).map_err(err("unmount old root"))?;
    }
    drop(root);
    rustix::process::chdir("/").map_err(err("chdir /"))?;
    if plan.readonly_root {
        let cwd = rustix::fs::CWD;
        mount_setattr(
            cwd,
            c"/",
            0,
            &MountAttr {
                attr_set: berth_sys::mount::MOUNT_ATTR_RDONLY,
                ..Default::default()
            },
        )
        .map_err(err("make / read-only"))?;
    }
    if let Some(p) = plan.root_propagation {
        nix::mount::mount(None::<&str>, "/", None::<&str>, p, None::<&str>)
            .map_err(err("set rootfsPropagation"))?;
    }
    Ok(())
}

fn make_parent_private(rootfs: &Path) -> CResult<()> {
    // pivot_root refuses a new root whose parent mount is shared: find the mount containing
    // the rootfs and make it private.
    let info = std::fs::read_to_string("/proc/self/mountinfo").map_err(err("read mountinfo"))?;
    let mut best: Option<PathBuf> = None;
    for line in info.lines() {
        let mp = line.split(' ').nth(4).map(PathBuf::from);
        if let Some(mp) = mp
            && rootfs.starts_with(&mp)
            && best
                .as_ref()
                .is_none_or(|b| mp.as_os_str().len() > b.as_os_str().len())
        {
            best = Some(mp);
        }
    }
    let mp = best.unwrap_or_else(|| PathBuf::from("/"));
    nix::mount::mount(
        None::<&str>,
        &mp,
        None::<&str>,
        MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(err(format!("make {} private", mp.display())))
}

fn mount_overlay(o: &OverlayMount, target: &Path) -> CResult<()> {
    let join = |v: &[PathBuf]| {
        v.iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    };
    let mut data = format!("lowerdir={}", join(&o.lowerdirs));
    if let (Some(u), Some(w)) = (&o.upperdir, &o.workdir) {
        data.push_str(&format!(
            ",upperdir={},workdir={}",
            u.display(),
            w.display()
        ));
    }
    for opt in &o.options {
        data.push(',');
        data.push_str(opt);
    }
    if data.len() < 4000 {
        return nix::mount::mount(
            Some("overlay"),
            target,
            Some("overlay"),
            MsFlags::empty(),
            Some(data.as_str()),
        )
        .map_err(err(format!("mount overlay rootfs on {}", target.display())));
    }
    // Too long for one page of mount data: add the layers one by one (Linux 6.8+).
    let fs = rustix::mount::fsopen("overlay", rustix::mount::FsOpenFlags::FSOPEN_CLOEXEC)
        .map_err(err("fsopen overlay"))?;
    let set = |k: &str, v: &str| {
        rustix::mount::fsconfig_set_string(&fs, k, v).map_err(err(format!("overlay option {k}")))
    };
    for l in &o.lowerdirs {
        set("lowerdir+", &l.display().to_string())?;
    }
    if let (Some(u), Some(w)) = (&o.upperdir, &o.workdir) {
        set("upperdir", &u.display().to_string())?;
        set("workdir", &w.display().to_string())?;
    }
    for opt in &o.options {
        match opt.split_once('=') {
            Some((k, v)) => set(k, v)?,
            None => rustix::mount::fsconfig_set_flag(&fs, opt.as_str())
                .map_err(err(format!("overlay option {opt}")))?,
        }
    }
    rustix::mount::fsconfig_create(&fs).map_err(err("create overlay"))?;
    let mnt = rustix::mount::fsmount(
        &fs,
        rustix::mount::FsMountFlags::FSMOUNT_CLOEXEC,
        rustix::mount::MountAttrFlags::empty(),
    )
    .map_err(err("fsmount overlay"))?;
    rustix::mount::move_mount(
        &mnt,
        "",
        rustix::fs::CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(err(format!(
        "attach overlay rootfs on {}",
        target.display()
    )))
}

fn setattr(fd: BorrowedFd<'_>, set: u64, clr: u64, recursive: bool) -> io::Result<()> {
    mount_setattr(
        fd,
        c"",
        libc::AT_EMPTY_PATH as u32 | if recursive { AT_RECURSIVE } else { 0 },
        &MountAttr {
            attr_set: set,
            attr_clr: clr,
            ..Default::default()
        },
    )
}

fn propagate(fd: BorrowedFd<'_>, flags: &[MsFlags], what: &str) -> CResult<()> {
    for p in flags {
        nix::mount::mount(
            None::<&str>,
            fd_path(fd).as_str(),
            None::<&str>,
            *p,
            None::<&str>,
        )
        .map_err(err(format!("set propagation of {what}")))?;
    }
    Ok(())
}

fn statfs_is_proc(p: &Path) -> bool {
    rustix::fs::statfs(p).is_ok_and(|s| s.f_type == PROC_SUPER_MAGIC)
}

fn mount_one(
    env: &RootfsEnv<'_>,
    root: BorrowedFd<'_>,
    m: &MountPlan,
    pending: &mut Option<CgroupBinds>,
) -> CResult<()> {
    // A mount inside the waiting cgroup mount (or another cgroup mount) comes after its
    // binds, as in the spec's order.
    if pending
        .as_ref()
        .is_some_and(|p| matches!(m.kind, MountKind::Cgroup) || p.covers(&m.dest))
    {
        bind_cgroups(env, pending)?;
    }
    let what = format!("mounts[{}] ({})", m.index, m.dest.display());
    let file = match &m.kind {
        MountKind::Bind { source, .. } => {
            let md = std::fs::metadata(source)
                .map_err(err(format!("{what}: bind source {}", source.display())))?;
            !md.is_dir()
        }
        _ => false,
    };
    let (target, resolved) = open_in_root(root, env.rootfs, &m.dest, file)?;
    if pending.as_ref().is_some_and(|p| p.covers(&resolved)) {
        // Through a symlink: resolve again with the binds in place (anything the first
        // resolution made stays hidden under them, in our own tmpfs).
        drop(target);
        bind_cgroups(env, pending)?;
        return mount_one(env, root, m, pending);
    }
    // Only a bind landing exactly on /proc needs to know whether its source is a procfs.
    let source_is_proc = match &m.kind {
        MountKind::Bind { source, .. } if resolved == Path::new("/proc") => statfs_is_proc(source),
        _ => false,
    };
    check_proc_mount(m, &resolved, source_is_proc).map_err(|e| e.to_string())?;
    match &m.kind {
        MountKind::Bind { source, recursive } => {
            let mut flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC;
            if *recursive {
                flags |= OpenTreeFlags::AT_RECURSIVE;
            }
            let tree = rustix::mount::open_tree(rustix::fs::CWD, source, flags)
                .map_err(err(format!("{what}: bind {}", source.display())))?;
            let (set, clr) = m.bind_attrs();
            if set | clr != 0 {
                setattr(tree.as_fd(), set, clr, false)
                    .map_err(err(format!("{what}: set mount options")))?;
            }
            if m.rec_set | m.rec_clr != 0 {
                setattr(tree.as_fd(), m.rec_set, m.rec_clr, true)
                    .map_err(err(format!("{what}: set recursive mount options")))?;
            }
            rustix::mount::move_mount(
                &tree,
                "",
                &target,
                "",
                MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
            )
            .map_err(err(format!("{what}: attach bind mount")))?;
            propagate(tree.as_fd(), &m.propagation, &what)?;
        }
        MountKind::Fs { fstype, source } => {
            let mut flags = m.flags;
            // Recursive attributes of a fresh mount are its own flags.
            for (a, f) in [
                (berth_sys::mount::MOUNT_ATTR_RDONLY, MsFlags::MS_RDONLY),
                (berth_sys::mount::MOUNT_ATTR_NOSUID, MsFlags::MS_NOSUID),
                (berth_sys::mount::MOUNT_ATTR_NODEV, MsFlags::MS_NODEV),
                (berth_sys::mount::MOUNT_ATTR_NOEXEC, MsFlags::MS_NOEXEC),
                (
                    berth_sys::mount::MOUNT_ATTR_NODIRATIME,
                    MsFlags::MS_NODIRATIME,
                ),
            ] {
                if m.rec_set & a != 0 {
                    flags |= f;
                }
                if m.rec_clr & a != 0 {
                    flags.remove(f);
                }
            }
            let lower = if m.tmpcopyup {
                Some(
                    openat2(
                        root,
                        rel(&resolved),
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                        Mode::empty(),
                        in_root_flags(),
                    )
                    .map_err(err(format!("{what}: open for tmpcopyup")))?,
                )
            } else {
                None
            };
            let data = (!m.data.is_empty()).then_some(m.data.as_str());
            nix::mount::mount(
                Some(source.as_str()),
                fd_path(target.as_fd()).as_str(),
                Some(fstype.as_str()),
                flags,
                data,
            )
            .map_err(err(format!("{what}: mount {fstype}")))?;
            if !m.propagation.is_empty() || lower.is_some() {
                let (top, _) = open_in_root(root, env.rootfs, &resolved, false)?;
                if let Some(lower) = lower {
                    copy_up(lower.as_fd(), top.as_fd())
                        .map_err(err(format!("{what}: tmpcopyup")))?;
                }
                propagate(top.as_fd(), &m.propagation, &what)?;
            }
        }
        MountKind::Cgroup => {
            *pending = mount_cgroups(env, root, m, target, &resolved, &what)?;
        }
    }
    Ok(())
}

/// runc's `tmpcopyup`: copy the directory that the tmpfs now hides into it.
fn copy_up(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> io::Result<()> {
    let to = rustix::fs::openat(
        to,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut dir = rustix::fs::Dir::read_from(from)?;
    while let Some(entry) = dir.read() {
        let entry = entry?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let st = rustix::fs::statat(from, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)?;
        let mode = Mode::from_raw_mode(st.st_mode & 0o7777);
        match rustix::fs::FileType::from_raw_mode(st.st_mode) {
            rustix::fs::FileType::Directory => {
                rustix::fs::mkdirat(&to, name, mode)?;
                let sub_from = rustix::fs::openat(
                    from,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let sub_to = rustix::fs::openat(
                    &to,
                    name,
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                copy_up(sub_from.as_fd(), sub_to.as_fd())?;
            }
            rustix::fs::FileType::Symlink => {
                let target = rustix::fs::readlinkat(from, name, Vec::new())?;
                rustix::fs::symlinkat(target.as_c_str(), &to, name)?;
            }
            rustix::fs::FileType::RegularFile => {
                let src = rustix::fs::openat(
                    from,
                    name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let dst = rustix::fs::openat(
                    &to,
                    name,
                    OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
                    mode,
                )?;
                let mut left = st.st_size as usize;
                while left > 0 {
                    let n = rustix::fs::sendfile(&dst, &src, None, left)?;
                    if n == 0 {
                        break;
                    }
                    left -= n;
                }
            }
            _ => continue,
        }
        let _ = rustix::fs::chownat(
            &to,
            name,
            Some(rustix::fs::Uid::from_raw(st.st_uid)),
            Some(rustix::fs::Gid::from_raw(st.st_gid)),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        );
    }
    Ok(())
}

/// Mounts cgroupfs at `target`. With `RootfsEnv::join_cgroups` (v1, no cgroup namespace) the
/// hierarchies' binds are returned to be made later ([`bind_cgroups`]).
fn mount_cgroups(
    env: &RootfsEnv<'_>,
    root: BorrowedFd<'_>,
    m: &MountPlan,
    target: OwnedFd,
    resolved: &Path,
    what: &str,
) -> CResult<Option<CgroupBinds>> {
    let flags = m.flags & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
    let readonly = m.flags.contains(MsFlags::MS_RDONLY);
    // cgroup v2: one filesystem.
    if let Some(path) = env.cgroup_paths.get("") {
        let mut f = flags;
        if readonly {
            f |= MsFlags::MS_RDONLY;
        }
        if env.cgroupns {
            nix::mount::mount(
                Some("cgroup2"),
                fd_path(target.as_fd()).as_str(),
                Some("cgroup2"),
                f,
                None::<&str>,
            )
            .map_err(err(format!("{what}: mount cgroup2")))?;
        } else {
            let tree = rustix::mount::open_tree(
                rustix::fs::CWD,
                path,
                OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
            )
            .map_err(err(format!("{what}: bind {}", path.display())))?;
            if readonly {
                setattr(tree.as_fd(), berth_sys::mount::MOUNT_ATTR_RDONLY, 0, false)
                    .map_err(err(format!("{what}: read-only")))?;
            }
            rustix::mount::move_mount(
                &tree,
                "",
                &target,
                "",
                MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
            )
            .map_err(err(format!("{what}: attach cgroup2")))?;
        }
        return Ok(None);
    }
    // cgroup v1: a tmpfs with one directory per hierarchy, like runc.
    nix::mount::mount(
        Some("tmpfs"),
        fd_path(target.as_fd()).as_str(),
        Some("tmpfs"),
        flags,
        Some("mode=755"),
    )
    .map_err(err(format!("{what}: mount tmpfs for cgroups")))?;
    // The tmpfs is ours, empty, and nothing else runs in this mount namespace: its
    // directories are made right in it and the hierarchies attached by name relative to it
    // (one component, a trailing symlink is not followed), with no resolution from the
    // rootfs. Anything unusual takes the careful path.
    let (top, _) = open_in_root(root, env.rootfs, resolved, false)?;
    let sub_fd = |name: &str| -> CResult<OwnedFd> {
        match open_dir_in(top.as_fd(), name) {
            Some(fd) => Ok(fd),
            None => Ok(open_in_root(root, env.rootfs, &resolved.join(name), false)?.0),
        }
    };
    let defer = env.join_cgroups.is_some() && !env.cgroupns;
    let mut subs = Vec::new();
    for (subsystem, host_dir) in env.cgroup_paths {
        let name = subsystem.strip_prefix("name=").unwrap_or(subsystem);
        let made = make_dir(top.as_fd(), name);
        if env.cgroupns {
            let sub = sub_fd(name)?;
            let opts = if subsystem.starts_with("name=") {
                format!("none,{subsystem}")
            } else {
                subsystem.clone()
            };
            let mut f = flags;
            if readonly {
                f |= MsFlags::MS_RDONLY;
            }
            nix::mount::mount(
                Some("cgroup"),
                fd_path(sub.as_fd()).as_str(),
                Some("cgroup"),
                f,
                Some(opts.as_str()),
            )
            .map_err(err(format!("{what}: mount cgroup {subsystem}")))?;
        } else {
            // Resolved now, while the tmpfs is still writable (the careful path may create).
            let sub = if made { None } else { Some(sub_fd(name)?) };
            if defer {
                subs.push((host_dir.clone(), name.to_string(), sub));
            } else {
                bind_hierarchy(host_dir, &top, name, sub.as_ref(), readonly, what)?;
            }
        }
    }
    // Read-only before the waiting binds: attaching onto a read-only mount's directories
    // needs no write, and anything resolved into the tmpfs meanwhile sees it as it ends up.
    if readonly {
        setattr(top.as_fd(), berth_sys::mount::MOUNT_ATTR_RDONLY, 0, false)
            .map_err(err(format!("{what}: read-only")))?;
    }
    if !defer {
        return Ok(None);
    }
    let dev = rustix::fs::fstat(&top)
        .map_err(err(format!("{what}: stat the cgroup tmpfs")))?
        .st_dev;
    Ok(Some(CgroupBinds {
        dest: resolved.to_path_buf(),
        dev,
        top,
        subs,
        readonly,
        what: what.to_string(),
    }))
}

/// Makes directory `name` in `dir` if `name` is one plain component; whether this call
/// made it (an existing entry, whatever it is, is not ours to trust).
fn make_dir(dir: BorrowedFd<'_>, name: &str) -> bool {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return false;
    }
    rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o755)).is_ok()
}

/// Opens directory `name` (one plain component) in `dir`, refusing a symlink; `None` when
/// that does not work out (the caller resolves it the careful way).
fn open_dir_in(dir: BorrowedFd<'_>, name: &str) -> Option<OwnedFd> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return None;
    }
    openat2(
        dir,
        name,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
    )
    .ok()
}

fn create_devices(env: &RootfsEnv<'_>, root: BorrowedFd<'_>) -> CResult<()> {
    // The devices share a few parent directories (usually all are in /dev): each is resolved
    // once. Nodes are made with our umask of 0 (set at the init's start) by our
    // fsuid/fsgid, so chmod/chown only run when they would change something.
    let owner = (rustix::process::geteuid(), rustix::process::getegid());
    let mut parent: Option<(&Path, DevDir)> = None;
    for d in &env.plan.devices {
        let p = d.path.parent().unwrap_or(Path::new("/"));
        let dir = match &mut parent {
            Some((cached, dir)) if *cached == p => dir,
            slot => &mut slot.insert((p, open_dev_dir(env, root, p, owner.1)?)).1,
        };
        create_device(env, root, dir, owner, d)?;
    }
    let dev = match parent {
        Some((p, dir)) if p == Path::new("/dev") => dir.fd,
        _ => open_in_root(root, env.rootfs, Path::new("/dev"), false)?.0,
    };
    let with_core = Path::new("/proc/kcore").exists();
    for (target, link) in default_symlinks(with_core) {
        let name = Path::new(link).file_name().expect("static link name");
        match rustix::fs::symlinkat(target, &dev, name) {
            Ok(()) => {}
            Err(rustix::io::Errno::EXIST) if link == "/dev/ptmx" => {
                // A device node the image or linux.devices put there gives way to the
                // symlink into the container's own devpts instance.
                let _ = rustix::fs::unlinkat(&dev, name, rustix::fs::AtFlags::empty());
                match rustix::fs::symlinkat(target, &dev, name) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err(format!("symlink {link} -> {target}: {e}")),
                }
            }
            Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(format!("symlink {link} -> {target}: {e}")),
        }
    }
    Ok(())
}

/// A directory device nodes are made in.
struct DevDir {
    fd: OwnedFd,
    /// New entries may get the directory's group instead of our fsgid (a setgid
    /// directory, or a filesystem mounted `grpid`), and it is not ours.
    foreign_group: bool,
    /// A default ACL replaces the umask: the mode given to mknod may not be the result.
    default_acl: bool,
}

fn open_dev_dir(
    env: &RootfsEnv<'_>,
    root: BorrowedFd<'_>,
    p: &Path,
    egid: rustix::fs::Gid,
) -> CResult<DevDir> {
    let (fd, _) = open_in_root(root, env.rootfs, p, false)?;
    let foreign_group = rustix::fs::fstat(&fd).map_or(true, |st| {
        st.st_mode & libc::S_ISGID != 0 || st.st_gid != egid.as_raw()
    });
    let default_acl = !matches!(
        rustix::fs::getxattr_query(fd_path(fd.as_fd()).as_str(), "system.posix_acl_default"),
        Err(rustix::io::Errno::NODATA | rustix::io::Errno::NOTSUP)
    );
    Ok(DevDir {
        fd,
        foreign_group,
        default_acl,
    })
}

fn create_device(
    env: &RootfsEnv<'_>,
    root: BorrowedFd<'_>,
    dir: &DevDir,
    (euid, egid): (rustix::fs::Uid, rustix::fs::Gid),
    d: &DevicePlan,
) -> CResult<()> {
    let what = format!("device {}", d.path.display());
    let name = d
        .path
        .file_name()
        .ok_or_else(|| format!("{what}: no file name"))?;
    let pfd = &dir.fd;
    let kind = match d.kind {
        'b' => rustix::fs::FileType::BlockDevice,
        'p' => rustix::fs::FileType::Fifo,
        _ => rustix::fs::FileType::CharacterDevice,
    };
    let mk = if env.userns && d.kind != 'p' {
        Err(rustix::io::Errno::PERM)
    } else {
        rustix::fs::mknodat(
            pfd,
            name,
            kind,
            Mode::from_raw_mode(d.mode),
            rustix::fs::makedev(d.major, d.minor),
        )
    };
    match mk {
        Ok(()) => {}
        Err(rustix::io::Errno::EXIST) => return Ok(()),
        Err(rustix::io::Errno::PERM) => {
            // Not allowed to create device nodes (user namespace): bind the host's node.
            let (target, _) = open_in_root(root, env.rootfs, &d.path, true)?;
            let tree = rustix::mount::open_tree(
                rustix::fs::CWD,
                &d.path,
                OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
            )
            .map_err(err(format!("{what}: bind host device")))?;
            rustix::mount::move_mount(
                &tree,
                "",
                &target,
                "",
                MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
            )
            .map_err(err(format!("{what}: attach host device")))?;
            return Ok(());
        }
        Err(e) => return Err(format!("{what}: mknod: {e}")),
    }
    // With umask 0 and no default ACL, mknod applied the permission bits exactly; special
    // bits may have been dropped.
    if d.mode & !0o777 != 0 || dir.default_acl {
        rustix::fs::chmodat(
            pfd,
            name,
            Mode::from_raw_mode(d.mode),
            rustix::fs::AtFlags::empty(),
        )
        .map_err(err(format!("{what}: chmod")))?;
    }
    if d.uid != euid.as_raw() || d.gid != egid.as_raw() || dir.foreign_group {
        rustix::fs::chownat(
            pfd,
            name,
            Some(rustix::fs::Uid::from_raw(d.uid)),
            Some(rustix::fs::Gid::from_raw(d.gid)),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(err(format!("{what}: chown")))?;
    }
    Ok(())
}

fn open_existing(root: BorrowedFd<'_>, p: &Path) -> CResult<Option<OwnedFd>> {
    match openat2(
        root,
        rel(p),
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        in_root_flags(),
    ) {
        Ok(fd) => Ok(Some(fd)),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(format!("{}: {e}", p.display())),
    }
}

/// Opens an existing masked or read-only path; one inside the waiting cgroup mount (by name,
/// or found there through a symlink) gets the cgroup binds made first, as in the spec's
/// order.
fn open_after_cgroups(
    env: &RootfsEnv<'_>,
    root: BorrowedFd<'_>,
    p: &Path,
    pending: &mut Option<CgroupBinds>,
) -> CResult<Option<(OwnedFd, rustix::fs::Stat)>> {
    if pending.as_ref().is_some_and(|b| b.covers(p)) {
        bind_cgroups(env, pending)?;
    }
    let Some(fd) = open_existing(root, p)? else {
        // Missing. Without a symlink on the way (strict resolution fails the same way) it is
        // missing for good: the path is not in the mount by name. Through a symlink it may
        // be missing only because the binds are not there yet.
        if pending.is_some() && !matches!(open_strict(root, rel(p)), Err(rustix::io::Errno::NOENT))
        {
            bind_cgroups(env, pending)?;
            return open_after_cgroups(env, root, p, pending);
        }
        return Ok(None);
    };
    let st = rustix::fs::fstat(&fd).map_err(err(format!("{}", p.display())))?;
    if pending.as_ref().is_some_and(|b| b.dev == st.st_dev) {
        drop(fd);
        bind_cgroups(env, pending)?;
        return open_after_cgroups(env, root, p, pending);
    }
    Ok(Some((fd, st)))
}

fn mask_path(
    env: &RootfsEnv<'_>,
    root: BorrowedFd<'_>,
    p: &Path,
    pending: &mut Option<CgroupBinds>,
) -> CResult<()> {
    let Some((fd, st)) = open_after_cgroups(env, root, p, pending)? else {
        return Ok(());
    };
    let target = fd_path(fd.as_fd());
    if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory {
        nix::mount::mount(
            Some("tmpfs"),
            target.as_str(),
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None::<&str>,
        )
    } else {
        nix::mount::mount(
            Some("/dev/null"),
            target.as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
    }
    .map_err(err(format!("mask {}", p.display())))
}

fn readonly_path(
    env: &RootfsEnv<'_>,
    root: BorrowedFd<'_>,
    p: &Path,
    pending: &mut Option<CgroupBinds>,
) -> CResult<()> {
    let Some(fd) = (match pending {
        Some(_) => open_after_cgroups(env, root, p, pending)?.map(|(fd, _)| fd),
        None => open_existing(root, p)?,
    }) else {
        return Ok(());
    };
    let what = || format!("read-only path {}", p.display());
    let tree = rustix::mount::open_tree(
        &fd,
        "",
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_RECURSIVE
            | OpenTreeFlags::AT_EMPTY_PATH,
    )
    .map_err(|e| format!("{}: {e}", what()))?;
    setattr(tree.as_fd(), berth_sys::mount::MOUNT_ATTR_RDONLY, 0, true)
        .map_err(|e| format!("{}: {e}", what()))?;
    rustix::mount::move_mount(
        &tree,
        "",
        &fd,
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )
    .map_err(|e| format!("{}: {e}", what()))
}

/// Hostname, domainname and sysctls (in the new namespaces, through the host's procfs whose
/// sysctl files act on the caller's namespaces).
pub(crate) fn kernel_settings(plan: &Plan, procfd: BorrowedFd<'_>) -> CResult<()> {
    if let Some(h) = &plan.hostname {
        rustix::system::sethostname(h.as_bytes()).map_err(err("sethostname"))?;
    }
    if let Some(d) = &plan.domainname {
        rustix::system::setdomainname(d.as_bytes()).map_err(err("setdomainname"))?;
    }
    for (path, value) in &plan.sysctls {
        let full = format!("sys/{path}");
        let fd = openat2(
            procfd,
            full.as_str(),
            OFlags::WRONLY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
        )
        .map_err(err(format!("sysctl {}", path.replace('/', "."))))?;
        rustix::io::write(&fd, value.as_bytes())
            .map_err(err(format!("sysctl {} = {value}", path.replace('/', "."))))?;
    }
    Ok(())
}

/// A C string from text that is known to contain no NUL (an empty string otherwise).
pub(crate) fn cstr(s: &str) -> CString {
    CString::new(s).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    //! `open_in_root` on plain directories (no mounts, no root needed): the fast paths must
    //! give exactly what the careful path gives, and nothing may ever be created outside.
    use super::*;
    use std::os::unix::fs::{MetadataExt, symlink};

    struct Root {
        _dir: tempfile::TempDir,
        rootfs: PathBuf,
        outside: PathBuf,
        fd: OwnedFd,
    }

    fn root() -> Root {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-rootfs-")
            .tempdir()
            .unwrap();
        let base = dir.path().canonicalize().unwrap();
        let rootfs = base.join("rootfs");
        let outside = base.join("outside");
        std::fs::create_dir_all(rootfs.join("dev")).unwrap();
        std::fs::create_dir_all(rootfs.join("etc")).unwrap();
        std::fs::create_dir(&outside).unwrap();
        let fd = rustix::fs::open(
            &rootfs,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        Root {
            _dir: dir,
            rootfs,
            outside,
            fd,
        }
    }

    impl Root {
        fn open(&self, dest: &str, file: bool) -> CResult<(OwnedFd, PathBuf)> {
            open_in_root(self.fd.as_fd(), &self.rootfs, Path::new(dest), file)
        }

        /// The fd refers to `path` (inside the rootfs, relative to `/`).
        fn assert_is(&self, fd: &OwnedFd, path: &str) {
            let st = rustix::fs::fstat(fd).unwrap();
            let md = std::fs::symlink_metadata(self.rootfs.join(path.trim_start_matches('/')))
                .unwrap_or_else(|e| panic!("{path}: {e}"));
            assert_eq!((st.st_dev, st.st_ino), (md.dev(), md.ino()), "{path}");
        }

        fn assert_outside_untouched(&self) {
            let left: Vec<_> = std::fs::read_dir(&self.outside).unwrap().collect();
            assert!(left.is_empty(), "created outside the rootfs: {left:?}");
        }
    }

    #[test]
    fn missing_last_component_is_created_where_it_reads() {
        let r = root();
        let (fd, p) = r.open("/dev/pts", false).unwrap();
        assert_eq!(p, Path::new("/dev/pts"));
        r.assert_is(&fd, "/dev/pts");
        let md = std::fs::metadata(r.rootfs.join("dev/pts")).unwrap();
        assert!(md.is_dir());
        assert_eq!(md.mode() & 0o7777, 0o755 & !umask());

        let (fd, p) = r.open("/etc/hosts", true).unwrap();
        assert_eq!(p, Path::new("/etc/hosts"));
        r.assert_is(&fd, "/etc/hosts");
        assert!(
            std::fs::metadata(r.rootfs.join("etc/hosts"))
                .unwrap()
                .is_file()
        );

        // Existing: opened as is.
        let (fd, p) = r.open("/dev/pts", false).unwrap();
        assert_eq!(p, Path::new("/dev/pts"));
        r.assert_is(&fd, "/dev/pts");
    }

    fn umask() -> u32 {
        // Read, not set (other tests run on other threads).
        let s = std::fs::read_to_string("/proc/self/status").unwrap();
        let v = s.lines().find_map(|l| l.strip_prefix("Umask:")).unwrap();
        u32::from_str_radix(v.trim(), 8).unwrap()
    }

    #[test]
    fn missing_ancestors_are_created_one_by_one() {
        let r = root();
        let (fd, p) = r.open("/a/b/c", false).unwrap();
        assert_eq!(p, Path::new("/a/b/c"));
        r.assert_is(&fd, "/a/b/c");
    }

    // The fast path must not create a dangling symlink's target outside the rootfs: the
    // target is created inside, like runc's securejoin.
    #[test]
    fn dangling_symlink_as_last_component_stays_inside() {
        let r = root();
        let escape = r.outside.join("created");
        symlink(&escape, r.rootfs.join("dev/abs")).unwrap();
        symlink(
            format!("../../../../../../../..{}", escape.display()),
            r.rootfs.join("dev/rel"),
        )
        .unwrap();
        for (dest, file) in [("/dev/abs", false), ("/dev/rel", true)] {
            let (fd, p) = r.open(dest, file).unwrap();
            assert_eq!(p, escape, "{dest}");
            r.assert_is(&fd, escape.to_str().unwrap());
            r.assert_outside_untouched();
            std::fs::remove_dir_all(r.rootfs.join(escape.strip_prefix("/").unwrap()))
                .or_else(|_| std::fs::remove_file(r.rootfs.join(escape.strip_prefix("/").unwrap())))
                .unwrap();
        }
    }

    #[test]
    fn symlinked_parent_pointing_outside_stays_inside() {
        let r = root();
        // An existing directory outside, reached through an absolute symlink in the image.
        symlink(&r.outside, r.rootfs.join("abs")).unwrap();
        let (fd, p) = r.open("/abs/pts", false).unwrap();
        assert_eq!(p, r.outside.join("pts"));
        r.assert_is(&fd, p.to_str().unwrap());
        r.assert_outside_untouched();
        // Through `..` past the root.
        symlink("../../../../../../../..", r.rootfs.join("dev/up")).unwrap();
        let (fd, p) = r.open("/dev/up/etc/hostname", true).unwrap();
        assert_eq!(p, Path::new("/etc/hostname"));
        r.assert_is(&fd, "/etc/hostname");
        r.assert_outside_untouched();
    }

    #[test]
    fn made_dir_refuses_a_symlink() {
        let r = root();
        let cg = r.rootfs.join("dev");
        symlink(&r.outside, cg.join("cpu")).unwrap();
        let dir = rustix::fs::open(&cg, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
        assert!(
            !make_dir(dir.as_fd(), "cpu"),
            "an existing entry is not ours"
        );
        assert!(
            open_dir_in(dir.as_fd(), "cpu").is_none(),
            "a symlink is refused"
        );
        assert!(!make_dir(dir.as_fd(), "../x"));
        assert!(open_dir_in(dir.as_fd(), "..").is_none());
        assert!(make_dir(dir.as_fd(), "memory"));
        let fd = open_dir_in(dir.as_fd(), "memory").expect("a plain directory");
        r.assert_is(&fd, "/dev/memory");
        r.assert_outside_untouched();
    }
}
