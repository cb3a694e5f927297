//! The Docker SDK for Python (docker-py, from `target/pyvenv`, made by
//! scripts/install-deps.sh) drives the lifecycle calls against a real berthd.

mod common;
use common::{Daemon, require};

const SCRIPT: &str = r#"
import sys, docker
c = docker.DockerClient(base_url=sys.argv[1], version="auto")
assert c.ping()
assert c.version()["ApiVersion"] == "1.47"
out = c.containers.run("busybox", ["echo", "from-sdk"], remove=True, network_mode="none")
assert out == b"from-sdk\n", out
ct = c.containers.run("busybox", ["sh", "-c", "echo one; echo two >&2; sleep 1000"], detach=True,
                      name="berth-test-sdk", network_mode="none", labels={"k": "v"})
ct.reload()
assert ct.status == "running", ct.status
assert ct.attrs["Config"]["Labels"]["k"] == "v"
assert [x.name for x in c.containers.list(filters={"label": "k=v"})] == ["berth-test-sdk"]
ct.stop(timeout=1)
r = ct.wait()
assert r["StatusCode"] == 137, r
assert ct.logs(stdout=True, stderr=False) == b"one\n", ct.logs()
assert ct.logs(stdout=False, stderr=True) == b"two\n"
ct.start(); ct.reload(); assert ct.status == "running"
ct.kill(); assert ct.wait()["StatusCode"] == 137
ct.remove()
try:
    c.containers.get("berth-test-sdk")
    raise SystemExit("container still there")
except docker.errors.NotFound:
    pass
try:
    c.containers.create("nope:1")
    raise SystemExit("created from a missing image")
except docker.errors.ImageNotFound:
    pass
img = c.images.get("busybox")
assert "busybox:latest" in img.tags
print("sdk ok")
"#;

#[test]
fn docker_py_lifecycle() {
    require!();
    let py =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/pyvenv/bin/python");
    if !py.exists() {
        eprintln!(
            "skipped: {} missing (run scripts/install-deps.sh)",
            py.display()
        );
        return;
    }
    let d = Daemon::start();
    d.import_busybox();
    let o = std::process::Command::new(&py)
        .arg("-c")
        .arg(SCRIPT)
        .arg(d.host())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "docker-py failed:\n{}\n{}\n--- daemon log\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
        d.log()
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "sdk ok");
}
