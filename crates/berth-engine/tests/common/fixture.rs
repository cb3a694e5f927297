//! An engine for integration tests that run real containers: a temp data root, its own
//! cgroup parent and a busybox image. Included with `#[path]` by the tests that use it (not
//! from `common/mod.rs`, so the others do not carry it unused).
// Not every test that includes it calls every helper.
#![allow(dead_code)]

use std::sync::Arc;

use berth_engine::engine::{Engine, EngineConfig};

pub use crate::common::shim_bin;

/// On drop: its containers removed (forced), the engine shut down (the slots' premounted
/// rootfs unmounted) and its cgroups deleted, also when a test fails.
pub struct Fixture {
    engine: Option<Arc<Engine>>,
    pub dir: tempfile::TempDir,
    pub cgroup_parent: String,
}

impl Fixture {
    /// An engine named after `label` (temp dir and cgroup parent) with `busybox:latest`
    /// holding these applets; `None` when the test must skip (the reason is printed).
    pub async fn open(test: &str, label: &str, applets: &[&str]) -> Option<Fixture> {
        let shim = shim_bin(test)?;
        let Some(busybox) = berth_fixtures::busybox() else {
            eprintln!("skipped: {test}: no busybox");
            return None;
        };
        let dir = berth_fixtures::temp_dir(label);
        let cgroup_parent = format!("/{}", berth_fixtures::unique_id(label));
        let mut cfg = EngineConfig::new(dir.path().join("data"), dir.path().join("run"), shim);
        cfg.cgroup_parent = cgroup_parent.clone();
        let engine = Engine::open(cfg).await.expect("open the engine");
        let fx = Fixture {
            engine: Some(engine),
            dir,
            cgroup_parent,
        };
        crate::common::import_busybox(fx.engine(), fx.dir.path(), &busybox, applets).await;
        Some(fx)
    }

    pub fn engine(&self) -> &Arc<Engine> {
        self.engine.as_ref().unwrap()
    }

    /// Starts a created container and returns its exit code.
    pub async fn start_and_wait(&self, id: &str) -> i64 {
        let exited = self
            .engine()
            .wait(id, berth_engine::WaitCondition::NextExit)
            .expect("wait");
        self.engine().start(id).await.expect("start");
        tokio::time::timeout(std::time::Duration::from_secs(20), exited)
            .await
            .expect("the container exits")
            .0
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(engine) = self.engine.take() {
            let ids: Vec<String> = engine.all().iter().map(|c| c.id.clone()).collect();
            // Drop runs inside the test's runtime: remove on a thread with a runtime of its own.
            std::thread::scope(|s| {
                s.spawn(|| {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(async {
                        for id in ids {
                            let _ = engine.remove(&id, true, false).await;
                        }
                        // Idempotent: tests that shut the engine down themselves are fine.
                        engine.shutdown().await;
                    })
                });
            });
            drop(engine);
        }
        crate::common::remove_test_cgroups(&self.cgroup_parent);
    }
}
