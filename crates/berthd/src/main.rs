//! `berthd`: flags, config file, data-root lock and pid file, the unix socket(s), signals.
//! Containers outlive the daemon: SIGTERM, SIGINT or a crash leave every shim running, and
//! the next start re-attaches to them (live restore).
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use berth_engine::{Engine, EngineConfig};
use berthd::config::{Flags, Settings, unix_path};
use clap::Parser;

/// glibc's mmap/trim thresholds for the daemon: buffers of 128 KiB and more (upload chunks,
/// layer copies) are mmapped and go back to the kernel when freed (docs/engine.md, memory).
const MALLOC_THRESHOLD: usize = 128 << 10;

/// glibc malloc arenas for the daemon: one, shared by the async workers and blocking threads.
/// With one per thread, the freed chunks of several arenas stay resident side by side after
/// a busy burst; API work is dominated by syscalls and I/O, not allocator contention
/// (docs/engine.md, memory).
const MALLOC_ARENAS: usize = 1;

fn main() {
    berth_sys::process::pin_malloc_thresholds(MALLOC_THRESHOLD);
    berth_sys::process::limit_malloc_arenas(MALLOC_ARENAS);
    let flags = Flags::parse();
    if let Err(e) = run(flags) {
        eprintln!("berthd: {e:#}");
        std::process::exit(1);
    }
}

/// Holds `<root>/berthd.lock` for the daemon's lifetime; a second berthd on the same root
/// gets a clear error naming the owner.
fn lock_root(root: &Path) -> anyhow::Result<File> {
    std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    let path = root.join("berthd.lock");
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    if let Err(e) = rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        let mut owner = String::new();
        let _ = f.read_to_string(&mut owner);
        let owner = owner.trim();
        if e == rustix::io::Errno::WOULDBLOCK {
            bail!(
                "another berthd{} is using {}: stop it, or give this one its own --data-root, --exec-root and -H",
                if owner.is_empty() {
                    String::new()
                } else {
                    format!(" (pid {owner})")
                },
                root.display()
            );
        }
        bail!("locking {}: {e}", path.display());
    }
    f.set_len(0)?;
    f.rewind()?;
    writeln!(f, "{}", std::process::id())?;
    Ok(f)
}

fn find_shim(explicit: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p);
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        let p = dir.join("berth-shim");
        if p.exists() {
            return Ok(p);
        }
    }
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join("berth-shim");
        if p.exists() {
            return Ok(p);
        }
    }
    bail!("berth-shim not found next to berthd or in $PATH: install it or pass --shim-binary")
}

fn group_id(name: &str) -> anyhow::Result<u32> {
    if let Ok(n) = name.parse() {
        return Ok(n);
    }
    let groups = std::fs::read_to_string("/etc/group").unwrap_or_default();
    groups
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 2 && f[0] == name)
                .then(|| f[2].parse().ok())
                .flatten()
        })
        .with_context(|| {
            format!("group {name:?} not found in /etc/group (create it, or drop --group)")
        })
}

/// Logs to stderr: our crates at `--log-level`, everything else from warnings up. A fixed
/// per-target filter, not `EnvFilter`: its directive parser and regex engine would be
/// linked (and paged in) for a filter that never changes.
fn init_logging(log_level: &str) -> anyhow::Result<()> {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let level: LevelFilter = match log_level {
        "fatal" => LevelFilter::ERROR,
        l => l
            .parse()
            .with_context(|| format!("invalid log level {l:?}"))?,
    };
    let targets = Targets::new()
        .with_target("berthd", level)
        .with_target("berth_engine", level)
        .with_default(LevelFilter::WARN);
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(targets)
        .init();
    Ok(())
}

fn run(flags: Flags) -> anyhow::Result<()> {
    // Descriptors inherited from whoever started us must not reach the shims: a pipe at fd 3
    // would be taken for a shim's startup channel (shims report on their stdout).
    let _ = berth_sys::process::cloexec_from(3);
    let s = Settings::resolve(flags)?;
    init_logging(&s.log_level)?;
    let _data_lock = lock_root(&s.data_root)?;
    let _exec_lock = lock_root(&s.exec_root)?;
    let sockets: Vec<PathBuf> = s
        .hosts
        .iter()
        .filter(|h| !berthd::tls::is_tcp(h))
        .map(|h| unix_path(h))
        .collect::<anyhow::Result<_>>()?;
    let tcp = berthd::tls::TcpListeners::bind(&s.hosts, &s.tls)?;
    let gid = s.group.as_deref().map(group_id).transpose()?;
    let shim = find_shim(s.shim_binary.clone())?;

    let mut cfg = EngineConfig::new(&s.data_root, &s.exec_root, shim);
    cfg.default_runtime = s.default_runtime.clone();
    cfg.default_pids_limit = s.default_pids_limit;
    cfg.cgroup_parent = s.cgroup_parent.clone();
    cfg.runtimes.extend(s.runtimes.clone());
    if let Some(v) = &s.log_max_size {
        cfg.log_max_size = berth_engine::engine::parse_size(v)
            .with_context(|| format!("invalid log-opts max-size {v:?}"))?;
    }
    if let Some(v) = &s.log_max_file {
        cfg.log_max_file = v
            .parse()
            .ok()
            .filter(|n| *n >= 1)
            .with_context(|| format!("invalid log-opts max-file {v:?}"))?;
    }
    if cfg.default_runtime != "berth" && !cfg.runtimes.contains_key(&cfg.default_runtime) {
        bail!(
            "default runtime {:?} is not installed or configured",
            cfg.default_runtime
        );
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(32)
        // Idle blocking threads exit soon, handing back their stacks and caches before the
        // idle trim (below) runs.
        .thread_keep_alive(std::time::Duration::from_secs(1))
        .thread_stack_size(1 << 20)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let engine = Engine::open(cfg).await.context("opening the engine")?;
        tokio::spawn(berthd::memory::trim_when_idle(
            std::time::Duration::from_secs(1),
        ));
        let mut servers = Vec::new();
        for path in &sockets {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            // We hold the root locks, so a socket file left here is stale.
            let _ = std::fs::remove_file(path);
            let listener = tokio::net::UnixListener::bind(path)
                .with_context(|| format!("listening on {}", path.display()))?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
            if let Some(g) = gid {
                std::os::unix::fs::chown(path, None, Some(g))
                    .with_context(|| format!("giving {} to group {g}", path.display()))?;
            }
            servers.push(tokio::spawn(berthd::serve_unix(listener, engine.clone())));
        }
        servers.extend(tcp.serve(engine.clone())?);
        berth_sys::fs::atomic_write(
            &s.pidfile,
            format!("{}\n", std::process::id()).as_bytes(),
            0o644,
        )
        .with_context(|| format!("writing pid file {}", s.pidfile.display()))?;
        tracing::info!(
            "berthd {} ready on {} (data root {}, {} containers)",
            env!("CARGO_PKG_VERSION"),
            s.hosts.join(", "),
            s.data_root.display(),
            engine.all().len()
        );
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: stopping (containers keep running)"),
            _ = int.recv() => tracing::info!("SIGINT: stopping (containers keep running)"),
        }
        for srv in servers {
            srv.abort();
        }
        // Removed containers' directories still being deleted in the background: finish
        // while this daemon still owns the data root (pid file), so a stop leaves none.
        engine.shutdown().await;
        for path in &sockets {
            let _ = std::fs::remove_file(path);
        }
        let _ = std::fs::remove_file(&s.pidfile);
        anyhow::Ok(())
    })?;
    // Connections still open (logs -f, attach) must not keep the process alive.
    rt.shutdown_background();
    Ok(())
}
