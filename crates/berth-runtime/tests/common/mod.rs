//! Shared helpers of the runtime test suites.
#![allow(dead_code)]

pub use berth_fixtures::{
    Bundle, ContainerGuard, Runtime, report, require_root, stderr, temp_dir, unique_id,
};
pub use serde_json::{Value, json};
pub use std::path::{Path, PathBuf};
pub use std::process::Output;

pub fn berth() -> Runtime {
    Runtime::Berth(PathBuf::from(env!("CARGO_BIN_EXE_berth-runtime")))
}

/// Defines a conformance test that runs against berth-runtime and against runc (the
/// oracle): a test failing on both is the test's fault.
#[macro_export]
macro_rules! conformance {
    ($name:ident, |$rt:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn case($rt: &Runtime) $body
            #[test]
            fn berth() {
                if !require_root(stringify!($name)) {
                    return;
                }
                case(&$crate::common::berth())
            }
            #[test]
            fn runc() {
                if !require_root(stringify!($name)) {
                    return;
                }
                if !Runtime::runc_available() {
                    eprintln!("skipped: runc (the oracle) is not installed");
                    return;
                }
                case(&Runtime::Runc)
            }
        }
    };
}

/// A test of a Berth-only feature; `why` says why runc cannot pass it.
#[macro_export]
macro_rules! berth_only {
    ($name:ident, $why:literal, |$rt:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[test]
            fn berth() {
                let _why: &str = $why;
                if !require_root(stringify!($name)) {
                    return;
                }
                let $rt = &$crate::common::berth();
                $body
            }
        }
    };
}

/// Runs the bundle in the foreground and returns (output, probe report).
pub fn run_probe(rt: &Runtime, b: &Bundle, name: &str) -> (Output, Value) {
    let id = unique_id(name);
    let _g = ContainerGuard::new(rt, &id);
    let out = rt.run(b, &id);
    assert!(
        out.status.success(),
        "{} run failed: {:?}\n{}",
        rt.name(),
        out.status,
        stderr(&out)
    );
    let r = report(&out);
    (out, r)
}

/// Runs the bundle expecting failure; returns stderr.
pub fn run_fails(rt: &Runtime, b: &Bundle, name: &str) -> String {
    let id = unique_id(name);
    let _g = ContainerGuard::new(rt, &id);
    let out = rt.run(b, &id);
    assert!(
        !out.status.success(),
        "{} run unexpectedly succeeded: {}",
        rt.name(),
        String::from_utf8_lossy(&out.stdout)
    );
    assert_nothing_left(rt, &id);
    stderr(&out)
}

/// No state directory, cgroup or process of container `id` remains.
pub fn assert_nothing_left(rt: &Runtime, id: &str) {
    assert!(
        !rt.root().join(id).exists(),
        "{}: state dir of {id} left behind",
        rt.name()
    );
    for sub in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        for parent in ["", "berth"] {
            let p = sub.path().join(parent).join(id);
            assert!(
                !p.exists(),
                "{}: cgroup {} left behind",
                rt.name(),
                p.display()
            );
        }
    }
}

/// The mount entry of the probe report at `mount_point` (the last one wins, like the kernel).
pub fn mount_at<'a>(r: &'a Value, mount_point: &str) -> Option<&'a Value> {
    r["mounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .rev()
        .find(|m| m["mount_point"] == mount_point)
}

/// The result of a probe action.
pub fn action<'a>(r: &'a Value, name: &str, arg: &str) -> &'a Value {
    r["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .find(|a| a["action"] == name && a["arg"] == arg)
        .unwrap_or_else(|| panic!("no action {name} {arg} in {r}"))
}

pub fn errno(r: &Value, name: &str, arg: &str) -> Option<i64> {
    let a = action(r, name, arg);
    if a["ok"] == true {
        None
    } else {
        Some(a["errno"].as_i64().expect("errno"))
    }
}

/// Polls `state` until the container has status `want` (or gives up after ~10 s).
pub fn wait_status(rt: &Runtime, id: &str, want: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..1000 {
        if let Some(s) = rt.state(id) {
            if s["status"] == want {
                return s;
            }
            last = s;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("{}: {id} never became {want}: {last}", rt.name());
}

/// Waits until `path` exists (up to ~10 s).
pub fn wait_file(path: &Path) {
    for _ in 0..1000 {
        if path.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("{} never appeared", path.display());
}

pub fn host_ns(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}"))
        .expect("ns link")
        .to_string_lossy()
        .into_owned()
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}
