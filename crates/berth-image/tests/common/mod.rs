//! Test images built here, offline: a busybox rootfs from Debian's busybox-static, layer tars
//! and `docker save` / OCI archives written with the `tar` crate (independently of the code
//! under test), and a store in a `berth-test` temp dir.
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_oci::Digest;
use berth_store::Store;

pub const BUSYBOX_APPLETS: &[&str] = &[
    "sh", "ls", "cat", "echo", "true", "false", "id", "touch", "rm", "mkdir", "sleep", "env",
    "pwd", "whoami", "test", "grep", "wc",
];

pub fn tempdir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("berth-test-{tag}-"))
        .tempdir()
        .unwrap()
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

pub fn busybox() -> Option<PathBuf> {
    ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

pub struct TestStore {
    pub dir: tempfile::TempDir,
    pub store: Store,
}

pub fn store() -> TestStore {
    let dir = tempdir("images");
    let store = Store::open(dir.path().join("root")).unwrap();
    TestStore { dir, store }
}

/// A tar builder with deterministic headers.
pub struct TarWriter {
    pub b: tar::Builder<Vec<u8>>,
}

impl TarWriter {
    pub fn new() -> Self {
        let mut b = tar::Builder::new(Vec::new());
        b.mode(tar::HeaderMode::Deterministic);
        TarWriter { b }
    }
    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h
    }
    pub fn dir(&mut self, path: &str) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Directory, 0o755, 0);
        self.b.append_data(&mut h, path, &[][..]).unwrap();
        self
    }
    pub fn file(&mut self, path: &str, data: &[u8]) -> &mut Self {
        self.file_mode(path, data, 0o644)
    }
    pub fn file_mode(&mut self, path: &str, data: &[u8], mode: u32) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Regular, mode, data.len() as u64);
        self.b.append_data(&mut h, path, data).unwrap();
        self
    }
    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Symlink, 0o777, 0);
        self.b.append_link(&mut h, path, target).unwrap();
        self
    }
    /// A raw name (bypasses the tar crate's path checks) for hostile archives.
    pub fn raw_file(&mut self, name: &[u8], data: &[u8]) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Regular, 0o644, data.len() as u64);
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name);
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }
    pub fn finish(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }
}

/// A busybox rootfs layer: /bin/busybox, applet symlinks, /etc/passwd and /etc/group with a
/// few users, /tmp.
pub fn busybox_layer() -> Vec<u8> {
    let bb = fs::read(busybox().expect("busybox-static is installed")).unwrap();
    let mut t = TarWriter::new();
    t.dir("bin/")
        .dir("etc/")
        .dir("tmp/")
        .dir("root/")
        .dir("home/")
        .dir("home/app/");
    t.file_mode("bin/busybox", &bb, 0o755);
    for a in BUSYBOX_APPLETS {
        t.symlink(&format!("bin/{a}"), "busybox");
    }
    t.file(
        "etc/passwd",
        b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    );
    t.file(
        "etc/group",
        b"root:x:0:\napp:x:1001:\nstaff:x:50:app\nextra:x:60:app,nobody\nnogroup:x:65534:\n",
    );
    t.finish()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 1).unwrap()
}

/// An image config JSON for the given uncompressed layers.
pub fn config_json(diff_ids: &[Digest], cfg: serde_json::Value) -> Vec<u8> {
    let history: Vec<serde_json::Value> = diff_ids
        .iter()
        .enumerate()
        .map(|(i, _)| serde_json::json!({"created": "2023-11-14T22:13:20Z", "created_by": format!("layer {i}")}))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "architecture": berth_oci::Platform::host().architecture,
        "os": "linux",
        "created": "2023-11-14T22:13:20Z",
        "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }))
    .unwrap()
}

/// A classic `docker save` archive: `<id>/layer.tar`, `<config hex>.json`, manifest.json,
/// repositories. `layers` are the blobs as stored (possibly compressed); `diff_ids` the
/// digests of their uncompressed form.
pub fn docker_archive(layers: &[Vec<u8>], config: &[u8], tags: &[&str]) -> Vec<u8> {
    let mut t = TarWriter::new();
    let mut paths = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let dir = format!("{:064x}", i + 1);
        t.dir(&format!("{dir}/"));
        t.file(&format!("{dir}/VERSION"), b"1.0");
        t.file(&format!("{dir}/layer.tar"), l);
        paths.push(format!("{dir}/layer.tar"));
    }
    let cfg = format!("{}.json", Digest::of(config).hex());
    t.file(&cfg, config);
    let manifest = serde_json::json!([{"Config": cfg, "RepoTags": tags, "Layers": paths}]);
    t.file("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    t.file("repositories", b"{}");
    t.finish()
}

/// A busybox image archive with an extra layer on top, config with Cmd.
pub fn busybox_archive(tags: &[&str]) -> (Vec<u8>, Vec<u8>) {
    let base = busybox_layer();
    let mut top = TarWriter::new();
    top.dir("etc/").file("etc/motd", b"hello from layer 2\n");
    let top = top.finish();
    let diff_ids = [Digest::of(&base), Digest::of(&top)];
    let config = config_json(
        &diff_ids,
        serde_json::json!({"Cmd": ["sh"], "Env": ["PATH=/bin", "A=1"], "WorkingDir": "/", "Labels": {"berth.test": "yes"}}),
    );
    (docker_archive(&[base, top], &config, tags), config)
}

pub fn write_file(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, data).unwrap();
    p
}

pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
