//! Network namespaces made ahead of time, for containers with a private network.
//!
//! Creating a network namespace is the slowest single step of starting a container
//! (`clone3` with `CLONE_NEWNET` took 0.9–13 ms in the traces: the rtnl lock and RCU grace
//! periods, longer while earlier namespaces are still being torn down). berthd keeps a few
//! empty ones ready, made by a short-lived thread of its own off the request path, and a
//! container joins one by path instead of creating its own:
//!
//! ```text
//!  filler thread:  unshare(CLONE_NEWNET) → open /proc/thread-self/ns/net → lo up → setns back
//!  ready:          [fd, fd, ...]   (at most POOL_SIZE, close-on-exec)
//!  start:          take one → shim.json "netns": "/proc/<berthd>/fd/<n>" → the runtime joins
//!                  it with setns before cloning the init → berthd closes its fd
//! ```
//!
//! - **Held as descriptors, never as bind mounts**: nothing is on disk or in the mount table,
//!   so nothing can leak. When berthd stops — cleanly or by SIGKILL — the kernel closes the
//!   descriptors and frees every namespace no container joined; the next berthd starts with
//!   an empty pool.
//! - **Each namespace is used once**: berthd closes its descriptor as soon as the shim has
//!   created the container (whose init then holds the namespace); a restart takes a fresh
//!   one, so two containers never share a namespace and none inherits another's state.
//! - **Loopback is up** (`127.0.0.1/8` and `::1`, which the kernel assigns when `lo` comes
//!   up), as in a Docker `--network none` container.
//! - The pool fills lazily, on the first container that needs one, so daemons that never
//!   run a container (most tests) make none. If namespaces cannot be made here, containers
//!   create their own as before.
//! - **Refilled after the take, not at it**: berthd tops the pool up ([`NetnsPool::top_up`])
//!   once the container is set up, or, for a lone `docker run --rm`, once it has been
//!   removed (docs/engine.md, "Refills after the run"); only an empty pool refills at the
//!   take.
//! - **One filler thread, kept for a moment**: once the pool is full the filler waits
//!   [`FILLER_KEEP_ALIVE`] for the next take before it exits, so back-to-back starts reuse
//!   one thread instead of making and ending a thread per container, and an idle daemon
//!   still has no extra thread.
//! - **Retired in batches**: berthd keeps the descriptor of a container's namespace until
//!   the container exits, then retires it ([`NetnsPool::retire`]); retired namespaces are
//!   let go [`RETIRE_BATCH`] at a time (or [`RETIRE_WAIT`] after the first of a batch).
//!   Freeing a network namespace is the kernel's `cleanup_net` work: an RCU barrier (IPIs to
//!   every CPU), the TIME_WAIT purge over the whole TCP hash table, the loopback's
//!   unregistering with an expedited grace period. It handles every namespace queued at
//!   once in one pass, so a batch costs little more than one. Held one by one, each
//!   container's namespace died with its init — in the middle of the exit's critical path
//!   (`run --rm`'s removal and answer), on the other of this machine's two CPUs. A retired
//!   namespace has no process; nothing can join it (berthd never hands its path out again).

use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use rustix::fs::{Mode, OFlags};

/// How many namespaces are kept ready.
pub const POOL_SIZE: usize = 4;

/// How many retired namespaces are let go together (see the module docs).
pub const RETIRE_BATCH: usize = 8;

/// The longest a retired namespace waits for the rest of its batch.
pub const RETIRE_WAIT: Duration = Duration::from_secs(2);

/// How long the filler thread waits, with the pool full, for a take before it exits. Back
/// to back starts come milliseconds apart; and it must be gone before berthd's idle trim
/// (after a second without requests) returns the freed heap, or its thread's memory stays.
pub const FILLER_KEEP_ALIVE: Duration = Duration::from_millis(500);

/// A ready network namespace, held by berthd until the container joined it.
#[derive(Debug)]
pub struct PreparedNetns {
    fd: OwnedFd,
}

impl PreparedNetns {
    /// The path the runtime opens to join it (`/proc/<berthd>/fd/<n>`), valid while `self`
    /// lives.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            self.fd.as_raw_fd()
        ))
    }

    /// The namespace's inode (as `/proc/PID/ns/net` shows it: `net:[INODE]`).
    pub fn inode(&self) -> std::io::Result<u64> {
        Ok(rustix::fs::fstat(self.fd.as_fd())?.st_ino)
    }
}

/// The pool (cheap to share: one per daemon).
#[derive(Debug, Default)]
pub struct NetnsPool {
    state: Arc<Mutex<PoolState>>,
    /// Wakes the filler waiting with the pool full.
    taken: Arc<Condvar>,
}

#[derive(Debug, Default)]
struct PoolState {
    ready: VecDeque<OwnedFd>,
    /// The filler thread exists (making namespaces, or waiting with the pool full).
    filling: bool,
    /// Why namespaces cannot be made here (then containers create their own).
    broken: Option<String>,
    /// Namespaces of exited containers, let go together ([`NetnsPool::retire`]).
    retired: Vec<OwnedFd>,
    /// A task lets the retired go after [`RETIRE_WAIT`].
    retire_timer: bool,
    /// The pool was dropped: the filler stops.
    closed: bool,
}

impl NetnsPool {
    pub fn new() -> NetnsPool {
        NetnsPool::default()
    }

    /// A ready namespace, or one made now when none is ready; `None` when namespaces
    /// cannot be made by berthd (the container then creates its own). A ready one is not
    /// replaced until [`NetnsPool::top_up`]: the filler's `unshare` is ~1 ms of CPU, and
    /// made at the take it ran beside the container's setup, on `run --rm`'s critical
    /// path (docs/engine.md, "Refills after the startup line"). An empty pool refills now.
    pub async fn take(&self) -> Option<PreparedNetns> {
        {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if st.broken.is_some() {
                return None;
            }
            if let Some(fd) = st.ready.pop_front() {
                return Some(PreparedNetns { fd });
            }
            self.refill(&mut st);
        }
        // Empty (the first container, or a burst): make one on a thread of its own.
        let (tx, rx) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("netns".into())
            .spawn(move || {
                let _ = tx.send(make_netns());
            });
        if spawned.is_err() {
            return None;
        }
        match rx.await {
            Ok(Ok(fd)) => Some(PreparedNetns { fd }),
            Ok(Err(e)) => {
                self.mark_broken(e);
                None
            }
            Err(_) => None,
        }
    }

    /// Refills the pool in the background (after a take, once the container is set up).
    pub fn top_up(&self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.refill(&mut st);
    }

    /// Keeps the namespace of an exited container until [`RETIRE_BATCH`] of them are
    /// retired, or [`RETIRE_WAIT`] passed, then lets them all go at once (see the module
    /// docs). Without a tokio runtime, a batch is the only trigger.
    pub fn retire(&self, ns: PreparedNetns) {
        let batch = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            st.retired.push(ns.fd);
            if st.retired.len() >= RETIRE_BATCH {
                std::mem::take(&mut st.retired)
            } else {
                if !st.retire_timer
                    && let Ok(rt) = tokio::runtime::Handle::try_current()
                {
                    st.retire_timer = true;
                    let state = self.state.clone();
                    rt.spawn(async move {
                        tokio::time::sleep(RETIRE_WAIT).await;
                        let batch = {
                            let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
                            st.retire_timer = false;
                            std::mem::take(&mut st.retired)
                        };
                        drop(batch);
                    });
                }
                Vec::new()
            }
        };
        // Closed outside the lock, back to back, so the kernel's cleanup finds them queued
        // together.
        drop(batch);
    }

    /// How many retired namespaces are still held.
    pub fn retired(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retired
            .len()
    }

    /// How many namespaces are ready now.
    pub fn ready(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .ready
            .len()
    }

    /// The inodes of the ready namespaces (tests: none of them may be in use).
    pub fn ready_inodes(&self) -> Vec<u64> {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.ready
            .iter()
            .filter_map(|fd| rustix::fs::fstat(fd.as_fd()).ok().map(|s| s.st_ino))
            .collect()
    }

    fn mark_broken(&self, why: String) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.broken.is_none() {
            tracing::warn!(
                "cannot prepare network namespaces ({why}); containers create their own"
            );
            st.broken = Some(why);
        }
    }

    /// Wakes the filler thread, or starts it, unless the pool is full. It exits once the
    /// pool stayed full for [`FILLER_KEEP_ALIVE`], so an idle daemon has no extra thread.
    fn refill(&self, st: &mut PoolState) {
        if st.broken.is_some() || st.ready.len() >= POOL_SIZE {
            return;
        }
        if st.filling {
            self.taken.notify_one();
            return;
        }
        st.filling = true;
        let state = self.state.clone();
        let taken = self.taken.clone();
        let spawned = std::thread::Builder::new()
            .name("netns-pool".into())
            .spawn(move || fill(&state, &taken));
        if spawned.is_err() {
            st.filling = false;
        }
    }
}

impl Drop for NetnsPool {
    /// Closes the ready and retired namespaces now, and stops the filler (which would
    /// otherwise hold them until its keep-alive ran out).
    fn drop(&mut self) {
        let (ready, retired) = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            st.closed = true;
            (
                std::mem::take(&mut st.ready),
                std::mem::take(&mut st.retired),
            )
        };
        self.taken.notify_all();
        drop((ready, retired));
    }
}

/// The filler: makes namespaces until the pool is full, from its own network namespace;
/// then waits for a take, and exits when none came for [`FILLER_KEEP_ALIVE`].
fn fill(state: &Mutex<PoolState>, taken: &Condvar) {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if st.closed {
            st.ready.clear();
        }
        if st.broken.is_some() || st.closed {
            st.filling = false;
            return;
        }
        if st.ready.len() < POOL_SIZE {
            drop(st);
            let made = make_netns();
            st = state.lock().unwrap_or_else(|e| e.into_inner());
            match made {
                Ok(fd) => st.ready.push_back(fd),
                Err(e) => {
                    tracing::warn!(
                        "cannot prepare network namespaces ({e}); containers create their own"
                    );
                    st.broken = Some(e);
                }
            }
            continue;
        }
        let (guard, waited) = taken
            .wait_timeout_while(st, FILLER_KEEP_ALIVE, |st| {
                st.ready.len() >= POOL_SIZE && st.broken.is_none() && !st.closed
            })
            .unwrap_or_else(|e| e.into_inner());
        st = guard;
        if waited.timed_out() {
            st.filling = false;
            return;
        }
    }
}

/// Makes one empty network namespace with `lo` up and returns a descriptor of it. The
/// calling thread enters the new namespace and goes back to berthd's (the process's: no
/// thread of berthd stays in another); if it cannot go back, it must not run anything else
/// (the error says so and the filler stops). Neither descriptor comes from
/// `/proc/thread-self`, whose entries procfs makes anew for each new thread (the filler is
/// one): `/proc/self` stays cached, and the new namespace's comes from the netlink socket
/// that brings `lo` up (`SIOCGSKNS`). The opens were a third of the filler's CPU.
pub fn make_netns() -> Result<OwnedFd, String> {
    let own = rustix::fs::open(
        "/proc/self/ns/net",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("open /proc/self/ns/net: {e}"))?;
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("unshare(CLONE_NEWNET): {e}"))?;
    let made = netlink_socket().and_then(|sock| {
        let fd = berth_sys::process::socket_netns(sock.as_fd())
            .map_err(|e| format!("a descriptor of the new network namespace: {e}"))?;
        loopback_up(&sock).map(|()| fd)
    });
    rustix::thread::move_into_link_name_space(
        own.as_fd(),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .map_err(|e| format!("return to berthd's network namespace: {e}"))?;
    made
}

/// A NETLINK_ROUTE socket in the calling thread's network namespace.
fn netlink_socket() -> Result<OwnedFd, String> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    rustix::net::socket_with(
        AddressFamily::NETLINK,
        SocketType::RAW,
        SocketFlags::CLOEXEC,
        None, // protocol 0: NETLINK_ROUTE
    )
    .map_err(|e| format!("open a netlink socket: {e}"))
}

/// `ip link set lo up` in the network namespace of `sock` (a NETLINK_ROUTE socket), over
/// rtnetlink (RTM_NEWLINK for ifindex 1 — `lo` is always the first device of a new
/// namespace — with IFF_UP in `ifi_flags` and `ifi_change`). The kernel then gives it
/// 127.0.0.1/8 and ::1.
fn loopback_up(sock: &OwnedFd) -> Result<(), String> {
    use rustix::net::{RecvFlags, SendFlags};
    const RTM_NEWLINK: u16 = 16;
    const NLM_F_REQUEST: u16 = 1;
    const NLM_F_ACK: u16 = 4;
    const NLMSG_ERROR: u16 = 2;
    const IFF_UP: u32 = 1;
    // nlmsghdr (16 bytes) + ifinfomsg (16 bytes), native endian.
    let mut msg = Vec::with_capacity(32);
    msg.extend_from_slice(&32u32.to_ne_bytes()); // nlmsg_len
    msg.extend_from_slice(&RTM_NEWLINK.to_ne_bytes()); // nlmsg_type
    msg.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes()); // nlmsg_flags
    msg.extend_from_slice(&1u32.to_ne_bytes()); // nlmsg_seq
    msg.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid (the kernel assigns it)
    msg.extend_from_slice(&[0, 0]); // ifi_family AF_UNSPEC, padding
    msg.extend_from_slice(&0u16.to_ne_bytes()); // ifi_type
    msg.extend_from_slice(&1i32.to_ne_bytes()); // ifi_index: lo
    msg.extend_from_slice(&IFF_UP.to_ne_bytes()); // ifi_flags
    msg.extend_from_slice(&IFF_UP.to_ne_bytes()); // ifi_change
    rustix::net::send(sock, &msg, SendFlags::empty())
        .map_err(|e| format!("send RTM_NEWLINK for lo: {e}"))?;
    let mut buf = [0u8; 512];
    let (n, _) = rustix::net::recv(sock, &mut buf, RecvFlags::empty())
        .map_err(|e| format!("read the answer to RTM_NEWLINK: {e}"))?;
    let typ = buf
        .get(4..6)
        .map(|b| u16::from_ne_bytes([b[0], b[1]]))
        .filter(|_| n >= 20);
    let code = buf
        .get(16..20)
        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
    match (typ, code) {
        (Some(NLMSG_ERROR), Some(0)) => Ok(()),
        (Some(NLMSG_ERROR), Some(c)) => Err(format!(
            "bring lo up: {}",
            std::io::Error::from_raw_os_error(-c)
        )),
        _ => Err(format!(
            "bring lo up: unexpected netlink answer ({n} bytes)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_root() -> bool {
        rustix::process::geteuid().is_root()
    }

    fn own_netns() -> u64 {
        std::fs::metadata("/proc/thread-self/ns/net")
            .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
            .unwrap()
    }

    /// A made namespace is new, has lo up with 127.0.0.1, and the thread is back home.
    #[test]
    fn made_namespace_has_loopback_up_and_thread_returns() {
        if !is_root() {
            eprintln!("skipped: needs root to create network namespaces");
            return;
        }
        let before = own_netns();
        let fd = make_netns().unwrap();
        assert_eq!(
            own_netns(),
            before,
            "the thread must return to its namespace"
        );
        let ino = rustix::fs::fstat(fd.as_fd()).unwrap().st_ino;
        assert_ne!(ino, before, "a new namespace");
        let ns = PreparedNetns { fd };
        let path = ns.path();
        // `ip` run inside the namespace shows lo UP with 127.0.0.1.
        let out = std::process::Command::new("nsenter")
            .arg(format!("--net={}", path.display()))
            .args(["ip", "-o", "addr", "show", "dev", "lo"])
            .output();
        let out = match out {
            Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
            Ok(o) => panic!("nsenter failed: {}", String::from_utf8_lossy(&o.stderr)),
            Err(e) => {
                eprintln!("skipped: nsenter/ip not runnable: {e}");
                return;
            }
        };
        assert!(out.contains("inet 127.0.0.1/8"), "{out}");
        let link = std::process::Command::new("nsenter")
            .arg(format!("--net={}", path.display()))
            .args(["ip", "-o", "link", "show"])
            .output()
            .unwrap();
        let link = String::from_utf8_lossy(&link.stdout);
        assert_eq!(link.lines().count(), 1, "only lo: {link}");
        assert!(link.contains("lo:") && link.contains(",UP"), "{link}");
    }

    /// The tests that run a pool's filler, one at a time: `filler_threads` counts this
    /// process's fillers (under `cargo test` the tests share a process).
    static POOL_TESTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    /// Every take gives a different namespace, and the pool refills in the background.
    #[tokio::test]
    async fn pool_gives_distinct_namespaces_and_refills() {
        let _one = POOL_TESTS.lock().await;
        if !is_root() {
            eprintln!("skipped: needs root to create network namespaces");
            return;
        }
        let pool = NetnsPool::new();
        let mut seen = std::collections::HashSet::new();
        let mut held = Vec::new();
        for _ in 0..POOL_SIZE + 2 {
            let ns = pool.take().await.expect("a namespace");
            assert!(seen.insert(ns.inode().unwrap()), "namespace given twice");
            held.push(ns);
        }
        // The filler tops the pool up to POOL_SIZE (it stops when full).
        until_full(&pool).await;
        for ino in pool.ready_inodes() {
            assert!(
                !seen.contains(&ino),
                "a given namespace is back in the pool"
            );
        }
        // Nothing but descriptors holds them: dropping the pool (as berthd's exit does)
        // leaves this process with no network namespace open.
        let ours: Vec<u64> = seen.iter().copied().chain(pool.ready_inodes()).collect();
        assert!(ours.iter().all(|i| open_netns().contains(i)));
        drop(held);
        drop(pool);
        let open = open_netns();
        assert!(
            !ours.iter().any(|i| open.contains(i)),
            "namespaces left open"
        );
    }

    /// The tids of this process's filler threads.
    fn filler_threads() -> Vec<String> {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| {
                let t = t.ok()?;
                let comm = std::fs::read_to_string(t.path().join("comm")).ok()?;
                (comm.trim() == "netns-pool").then(|| t.file_name().to_string_lossy().into_owned())
            })
            .collect()
    }

    async fn until_full(pool: &NetnsPool) {
        for _ in 0..500 {
            if pool.ready() == POOL_SIZE {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the pool did not fill: {} ready", pool.ready());
    }

    /// Takes within the keep-alive reuse the one filler thread; it exits once the pool stayed
    /// full that long; dropping the pool closes the ready namespaces at once and stops it.
    #[tokio::test]
    async fn one_filler_thread_serves_back_to_back_takes_then_exits() {
        let _one = POOL_TESTS.lock().await;
        if !is_root() {
            eprintln!("skipped: needs root to create network namespaces");
            return;
        }
        let pool = NetnsPool::new();
        let first = pool.take().await.expect("a namespace");
        until_full(&pool).await;
        let filler = filler_threads();
        assert_eq!(filler.len(), 1, "one filler while it waits: {filler:?}");
        let second = pool.take().await.expect("a namespace");
        assert_eq!(pool.ready(), POOL_SIZE - 1, "a take alone does not refill");
        pool.top_up();
        until_full(&pool).await;
        assert_eq!(filler_threads(), filler, "the same thread refilled");
        let mut gone = false;
        for _ in 0..100 {
            tokio::time::sleep(FILLER_KEEP_ALIVE / 10).await;
            if filler_threads().is_empty() {
                gone = true;
                break;
            }
        }
        assert!(gone, "the filler exits after its keep-alive");
        assert_eq!(pool.ready(), POOL_SIZE, "and leaves the pool full");
        // Started again by a top-up; the pool's drop closes what is ready and stops it.
        let third = pool.take().await.expect("a namespace");
        pool.top_up();
        until_full(&pool).await;
        assert_eq!(filler_threads().len(), 1);
        let ready = pool.ready_inodes();
        drop(pool);
        let open = open_netns();
        assert!(
            !ready.iter().any(|i| open.contains(i)),
            "ready namespaces left open"
        );
        let mut stopped = false;
        for _ in 0..500 {
            if filler_threads().is_empty() {
                stopped = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(stopped, "the dropped pool's filler stops");
        drop((first, second, third));
    }

    /// Retired namespaces stay open until a batch is full, then all go at once; a lone
    /// one goes after RETIRE_WAIT.
    #[tokio::test]
    async fn retired_namespaces_go_in_batches() {
        let _one = POOL_TESTS.lock().await;
        if !is_root() {
            eprintln!("skipped: needs root to create network namespaces");
            return;
        }
        let pool = NetnsPool::new();
        let mut inodes = Vec::new();
        for _ in 0..RETIRE_BATCH - 1 {
            let ns = pool.take().await.expect("a namespace");
            inodes.push(ns.inode().unwrap());
            pool.retire(ns);
        }
        assert_eq!(pool.retired(), RETIRE_BATCH - 1);
        let open = open_netns();
        assert!(
            inodes.iter().all(|i| open.contains(i)),
            "retired ones stay held"
        );
        let last = pool.take().await.expect("a namespace");
        inodes.push(last.inode().unwrap());
        pool.retire(last);
        assert_eq!(pool.retired(), 0, "a full batch goes");
        let open = open_netns();
        assert!(
            !inodes.iter().any(|i| open.contains(i)),
            "a full batch is closed at once"
        );
        // A lone retired namespace goes after RETIRE_WAIT.
        let lone = pool.take().await.expect("a namespace");
        let ino = lone.inode().unwrap();
        pool.retire(lone);
        assert!(open_netns().contains(&ino));
        tokio::time::sleep(RETIRE_WAIT + Duration::from_millis(500)).await;
        assert_eq!(pool.retired(), 0);
        assert!(!open_netns().contains(&ino), "the timer let it go");
    }

    /// The network namespaces this process holds descriptors of (their inodes).
    fn open_netns() -> std::collections::HashSet<u64> {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .flatten()
            .filter_map(|e| {
                let l = std::fs::read_link(e.path()).ok()?;
                let l = l.to_string_lossy();
                l.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
            })
            .collect()
    }
}
