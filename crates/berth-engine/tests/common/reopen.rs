//! Set-up for tests that drop an engine and open another on the same roots (a berthd
//! crash and its restore): the shim binary, busybox, a temp dir and a cgroup parent, and a
//! cleanup through a fresh engine. Included with `#[path]` (next to `common`).

use std::path::Path;
use std::sync::Arc;

use berth_engine::engine::{Engine, EngineConfig};

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Removes what the test made even when an assertion fails: the containers (through a
/// fresh engine), then the cgroups.
pub struct Cleanup {
    cfg: Option<EngineConfig>,
    pub cgroup_parent: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(cfg) = self.cfg.take() {
            let rt = runtime();
            rt.block_on(async {
                if let Ok(engine) = Engine::open(cfg).await {
                    let ids: Vec<String> = engine.all().iter().map(|c| c.id.clone()).collect();
                    for id in ids {
                        let _ = engine.remove(&id, true, false).await;
                    }
                    engine.shutdown().await;
                }
            });
        }
        crate::common::remove_test_cgroups(&self.cgroup_parent);
    }
}

pub fn config(root: &Path, shim: &Path, cgroup_parent: &str) -> EngineConfig {
    let mut cfg = EngineConfig::new(root.join("data"), root.join("run"), shim.to_path_buf());
    cfg.cgroup_parent = cgroup_parent.to_string();
    cfg
}

/// An engine on `root` with `busybox:latest` holding `applets`.
pub async fn open_with_busybox(
    root: &Path,
    shim: &Path,
    busybox: &Path,
    cgroup_parent: &str,
    applets: &[&str],
) -> Arc<Engine> {
    let engine = Engine::open(config(root, shim, cgroup_parent))
        .await
        .expect("open the engine");
    crate::common::import_busybox(&engine, root, busybox, applets).await;
    engine
}

/// What both tests need: the shim binary, busybox, a temp dir and a cgroup parent, and
/// their cleanup; `None` (the reason printed) when the test must skip.
/// (Bound in this order, `_cleanup` last, so it is dropped before the directory.)
pub struct Setup {
    pub shim: std::path::PathBuf,
    pub busybox: std::path::PathBuf,
    pub dir: tempfile::TempDir,
    pub cgroup_parent: String,
    pub _cleanup: Cleanup,
}

impl Setup {
    pub fn new(test: &str, label: &str) -> Option<Setup> {
        let shim = crate::common::shim_bin(test)?;
        let Some(busybox) = berth_fixtures::busybox() else {
            eprintln!("skipped: {test}: no busybox");
            return None;
        };
        let dir = berth_fixtures::temp_dir(label);
        let cgroup_parent = format!("/{}", berth_fixtures::unique_id(label));
        let _cleanup = Cleanup {
            cfg: Some(config(dir.path(), &shim, &cgroup_parent)),
            cgroup_parent: cgroup_parent.clone(),
        };
        Some(Setup {
            shim,
            busybox,
            dir,
            cgroup_parent,
            _cleanup,
        })
    }
}
