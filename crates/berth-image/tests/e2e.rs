//! End to end: load a busybox image, stack a container root from it, run a container in it
//! through a real OCI runtime (berth-runtime when built, runc as the oracle), see its writes
//! in the upper dir and in `diff`, commit, and run the committed image.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_image::spec::{ImageFiles, merge_config, process_for};
use berth_image::*;
use berth_oci::Digest;
use common::*;

/// The runtimes to run with: berth-runtime next to this test binary (built by
/// `cargo build --workspace --bins`), and runc.
fn runtimes() -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let exe = std::env::current_exe().unwrap();
    if let Some(debug) = exe.parent().and_then(Path::parent) {
        let br = debug.join("berth-runtime");
        if br.is_file() {
            out.push(("berth-runtime".to_string(), br));
        } else {
            eprintln!("skipped for berth-runtime: {} not built", br.display());
        }
    }
    if have("runc") {
        out.push(("runc".to_string(), PathBuf::from("runc")));
    } else {
        eprintln!("skipped for runc: not installed");
    }
    out
}

/// Writes an OCI bundle config for `process` with the rootfs at `bundle/rootfs`, starting
/// from runc's default spec (the oracle's, so every runtime gets the same bundle).
fn write_bundle(bundle: &Path, p: &spec::ProcessSpec) {
    run(Command::new("runc").arg("spec").arg("--bundle").arg(bundle));
    let path = bundle.join("config.json");
    let mut cfg: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    cfg["process"]["terminal"] = false.into();
    cfg["process"]["args"] = serde_json::json!(p.args);
    cfg["process"]["env"] = serde_json::json!(p.env);
    cfg["process"]["cwd"] = p.cwd.clone().into();
    cfg["process"]["user"] = serde_json::json!({
        "uid": p.user.uid, "gid": p.user.gid, "additionalGids": p.user.additional_gids,
    });
    cfg["root"] = serde_json::json!({"path": "rootfs", "readonly": false});
    fs::write(&path, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();
}

struct Runtime<'a> {
    bin: &'a Path,
    state: PathBuf,
}

impl Runtime<'_> {
    /// Runs the container to completion; returns its stdout.
    fn run(&self, bundle: &Path, id: &str) -> String {
        let out = Command::new(self.bin)
            .arg("--root")
            .arg(&self.state)
            .args(["run", "--bundle"])
            .arg(bundle)
            .arg(id)
            .output()
            .unwrap();
        // Best effort: a failed run may leave state behind.
        let _ = Command::new(self.bin)
            .arg("--root")
            .arg(&self.state)
            .args(["delete", "--force", id])
            .output();
        assert!(
            out.status.success(),
            "{} run failed: {}\n{}",
            self.bin.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn container_run(
    t: &TestStore,
    rt: &Runtime,
    key: &str,
    image: &Digest,
    user_cfg: &ContainerConfig,
) -> String {
    let ov = t.store.prepare_container(key, image).unwrap();
    let img = t.store.image(image).unwrap().unwrap();
    let merged = merge_config(&image_config(&t.store, &img).unwrap().container(), user_cfg);
    let process = process_for(&ImageFiles::from_layers(ov.layer_dirs.clone()), &merged).unwrap();
    let bundle = t.dir.path().join(format!("bundle-{key}"));
    let rootfs = bundle.join("rootfs");
    fs::create_dir_all(&rootfs).unwrap();
    write_bundle(&bundle, &process);
    let _mount = ov.mount(&rootfs).unwrap();
    rt.run(&bundle, key)
}

#[test]
fn run_diff_commit_and_run_again() {
    if !is_root() {
        eprintln!("skipped: containers need root");
        return;
    }
    if !have("runc") {
        eprintln!("skipped: runc (the oracle, also used for `runc spec`) is not installed");
        return;
    }
    let runtimes = runtimes();
    for (name, bin) in &runtimes {
        let t = store();
        let rt = Runtime {
            bin,
            state: t.dir.path().join("runtime-state"),
        };
        let (archive, config) = busybox_archive(&["busybox:latest"]);
        load(&t.store, &archive[..], &LoadOptions::default()).unwrap();
        let id = Digest::of(&config);
        let c1 = format!("berth-test-e2e-{name}-1");
        let out = container_run(
            &t,
            &rt,
            &c1,
            &id,
            &ContainerConfig {
                cmd: Some(vec![
                    "sh".into(),
                    "-c".into(),
                    "mkdir /data && echo hello-from-container > /data/hello && rm /etc/motd && id -u && cat /etc/passwd >/dev/null && echo ok".into(),
                ]),
                ..Default::default()
            },
        );
        assert_eq!(out, "0\nok\n", "{name}");
        let upper = t.store.container_overlay(&c1).unwrap().upperdir.unwrap();
        assert_eq!(
            fs::read_to_string(upper.join("data/hello")).unwrap(),
            "hello-from-container\n",
            "{name}: the write did not land in the upper dir"
        );
        let changes: Vec<String> = container_changes(&t.store, &c1)
            .unwrap()
            .iter()
            .map(|c| format!("{} {}", c.kind.letter(), c.path))
            .collect();
        for want in ["A /data", "A /data/hello", "D /etc/motd"] {
            assert!(changes.contains(&want.to_string()), "{name}: {changes:?}");
        }
        let committed = commit(
            &t.store,
            &c1,
            &CommitOptions {
                reference: Some(berth_oci::Reference::parse("committed:e2e").unwrap()),
                changes: vec!["CMD [\"cat\", \"/data/hello\"]".into(), "USER app".into()],
                ..Default::default()
            },
        )
        .unwrap();
        // The committed image runs with the container's writes, as the user the change set.
        let c2 = format!("berth-test-e2e-{name}-2");
        let out = container_run(&t, &rt, &c2, &committed, &ContainerConfig::default());
        assert_eq!(out, "hello-from-container\n", "{name}");
        let c3 = format!("berth-test-e2e-{name}-3");
        let out = container_run(
            &t,
            &rt,
            &c3,
            &committed,
            &ContainerConfig {
                cmd: Some(vec![
                    "sh".into(),
                    "-c".into(),
                    "id -u; id -g; test -e /etc/motd || echo gone".into(),
                ]),
                ..Default::default()
            },
        );
        assert_eq!(out, "1000\n1001\ngone\n", "{name}");
        for c in [&c1, &c2, &c3] {
            t.store.remove_container(c).unwrap();
        }
        assert!(t.store.fsck().unwrap().is_clean());
    }
}
