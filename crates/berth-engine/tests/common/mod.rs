//! Shared by the engine's integration tests.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Removes a test's cgroups (`<hierarchy>/<cgroup_parent>/...`, deepest first) in every v1
/// hierarchy and the unified one; shims that just exited may still hold theirs for a
/// moment, so this retries for up to two seconds.
pub fn remove_test_cgroups(cgroup_parent: &str) {
    let name = cgroup_parent.trim_start_matches('/').to_string();
    for _ in 0..40 {
        let mut left = false;
        for c in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let base = c.path().join(&name);
            if base.is_dir() {
                remove_tree(&base);
                left |= base.exists();
            }
        }
        if !left {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn remove_tree(dir: &Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            remove_tree(&e.path());
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// Imports the busybox of [`busybox_tar`] (with `applets`) as `busybox:latest`.
pub async fn import_busybox(
    engine: &std::sync::Arc<berth_engine::engine::Engine>,
    root: &Path,
    busybox: &Path,
    applets: &[&str],
) {
    engine
        .image_import(
            std::fs::File::open(busybox_tar(root, busybox, applets)).unwrap(),
            Some("busybox".into()),
            Some("latest".into()),
            None,
            Vec::new(),
        )
        .await
        .expect("import busybox");
}

/// A tar of a minimal busybox root filesystem (`bin/busybox` plus the given applet links),
/// made under `root`, for `image_import`.
pub fn busybox_tar(root: &Path, busybox: &Path, applets: &[&str]) -> PathBuf {
    let rootfs = root.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy(busybox, rootfs.join("bin/busybox")).unwrap();
    for applet in applets {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    let tar = root.join("busybox.tar");
    let ok = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(ok.success(), "tar of the busybox rootfs");
    tar
}

/// The `berth-shim` of this target dir; `None` (with the reason printed) without root or
/// without the binary.
pub fn shim_bin(test: &str) -> Option<PathBuf> {
    if !berth_fixtures::require_root(test) {
        return None;
    }
    let shim = berth_fixtures::workspace_bin("berth-shim");
    if !shim.is_file() {
        eprintln!(
            "skipped: {test}: {} missing (cargo build -p berth-shim)",
            shim.display()
        );
        return None;
    }
    Some(shim)
}
