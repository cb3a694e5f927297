//! The Docker SDK for Python drives the lifecycle calls of issue 4 against a real berthd:
//! `tests/py/lifecycle.py` (containers, images, logs, events, df, error types), run with the
//! venv scripts/install-deps.sh makes (`target/pyvenv`).

mod common;
use common::{Daemon, require};

#[test]
fn docker_py_containers_images_logs_events_errors() {
    require!();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let py = root.join("../../target/pyvenv/bin/python");
    if !py.exists() {
        eprintln!(
            "skipped: {} missing (run scripts/install-deps.sh)",
            py.display()
        );
        return;
    }
    let d = Daemon::start();
    let o = std::process::Command::new(&py)
        .arg(root.join("tests/py/lifecycle.py"))
        .arg(d.host())
        .arg(common::busybox_tar())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "docker-py failed:\n{}\n{}\n--- daemon log\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
        d.log()
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "ok");
    assert_eq!(d.container_count(), 0);
}
