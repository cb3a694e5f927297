//! Per-image init layers (`berth_store::init`) through a real berthd and real containers:
//! the mount points an image lacks live in one layer per image, never in the containers'
//! upper dirs, and what the image has (symlinks, its `/etc`'s mode and owner) stays as the
//! container saw it before.

mod common;
use common::{Daemon, require_cli, stderr, stdout};

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs berth, asserting success; returns stdout without the trailing newline.
fn ok(d: &Daemon, args: &[&str]) -> String {
    let o = d.berth(args);
    assert!(
        o.status.success(),
        "berth {args:?} failed ({}): {}\n--- daemon log:\n{}",
        o.status,
        stderr(&o),
        d.log()
    );
    let s = stdout(&o);
    s.strip_suffix('\n').unwrap_or(&s).to_string()
}

/// Imports a one-layer image `name` holding `/bin/busybox` and what `build` adds to the
/// root (a temp dir, packed with GNU tar, which keeps modes, owners and times).
fn import_image(d: &Daemon, name: &str, build: impl FnOnce(&Path)) {
    let work = tempfile::Builder::new()
        .prefix("berth-test-initimg")
        .tempdir()
        .unwrap();
    let root = work.path().join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    for applet in [
        "sh", "cat", "grep", "readlink", "stat", "wc", "test", "sleep", "true", "echo",
    ] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    build(&root);
    let tar = work.path().join("image.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    ok(d, &["import", tar.to_str().unwrap(), name]);
}

/// A container's GraphDriver dirs: (init layer = first lower dir, upper dir).
fn layer_dirs(d: &Daemon, name: &str) -> (PathBuf, PathBuf) {
    let lower = ok(
        d,
        &["inspect", "-f", "{{.GraphDriver.Data.LowerDir}}", name],
    );
    let upper = ok(
        d,
        &["inspect", "-f", "{{.GraphDriver.Data.UpperDir}}", name],
    );
    let first = lower.split(':').next().unwrap().to_string();
    (PathBuf::from(first), PathBuf::from(upper))
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// `sh -c script` in a new `--rm` container of `image`; its stdout.
fn sh(d: &Daemon, image: &str, script: &str) -> String {
    ok(
        d,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            image,
            "/bin/busybox",
            "sh",
            "-c",
            script,
        ],
    )
}

/// An image without /proc, /dev, /sys and /etc (like busybox on Docker Hub, which lacks
/// /proc, /sys and /etc/hostname): a running container's upper dir stays empty, the mounts
/// work, the layer is shared by the image's next containers and removed with the image.
#[test]
fn mount_points_the_image_lacks_stay_out_of_the_containers_upper_dir() {
    require_cli!();
    let d = Daemon::start();
    import_image(&d, "berth-test-bare", |_| {});
    // The container reports what it sees, then keeps running while we look at its layers.
    let script = "cat /etc/hostname; grep -c ip6-allrouters /etc/hosts; \
        test -d /proc/self && test -d /sys/fs/cgroup && test -c /dev/null && echo mounted; \
        sleep 60";
    ok(
        &d,
        &[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            "berth-test-bare1",
            "berth-test-bare",
            "/bin/busybox",
            "sh",
            "-c",
            script,
        ],
    );
    let id = ok(&d, &["inspect", "-f", "{{.Id}}", "berth-test-bare1"]);
    let mut seen = String::new();
    common::wait_until("the container's report", || {
        seen = ok(&d, &["logs", "berth-test-bare1"]);
        seen.ends_with("mounted")
    });
    assert_eq!(seen, format!("{}\n1\nmounted", &id[..12]));
    let (init, upper) = layer_dirs(&d, "berth-test-bare1");
    assert_eq!(
        names(&upper),
        Vec::<String>::new(),
        "upper dir of a running container"
    );
    assert_eq!(names(&init), ["dev", "etc", "proc", "sys"]);
    assert_eq!(
        names(&init.join("etc")),
        ["hostname", "hosts", "resolv.conf"]
    );
    ok(&d, &["rm", "-f", "berth-test-bare1"]);

    // The next container shares the layer; the image's removal removes it.
    ok(
        &d,
        &[
            "create",
            "--name",
            "berth-test-bare2",
            "berth-test-bare",
            "/bin/busybox",
            "true",
        ],
    );
    assert_eq!(layer_dirs(&d, "berth-test-bare2").0, init);
    ok(&d, &["rm", "berth-test-bare2"]);
    assert!(init.exists(), "the image's, kept while the image exists");
    ok(&d, &["rmi", "berth-test-bare"]);
    assert!(!init.exists(), "removed with the image: {}", init.display());
}

/// A symlinked `/etc/hosts` or `/etc` is never shadowed: the container sees the links, and
/// the runtime writes through them as it always did.
#[test]
fn symlinked_etc_and_etc_hosts_are_kept() {
    require_cli!();
    let d = Daemon::start();
    import_image(&d, "berth-test-hostslink", |root| {
        std::fs::create_dir(root.join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc/hosts.real", root.join("etc/hosts")).unwrap();
    });
    import_image(&d, "berth-test-etclink", |root| {
        std::fs::create_dir_all(root.join("usr/etc")).unwrap();
        std::os::unix::fs::symlink("/usr/etc", root.join("etc")).unwrap();
    });
    assert_eq!(
        sh(
            &d,
            "berth-test-hostslink",
            "readlink /etc/hosts; grep -c ip6-allrouters /etc/hosts.real; cat /etc/hostname | wc -c"
        ),
        "/etc/hosts.real\n1\n13"
    );
    assert_eq!(
        sh(
            &d,
            "berth-test-etclink",
            "readlink /etc; wc -c < /usr/etc/hostname; grep -c ip6-allrouters /etc/hosts"
        ),
        "/usr/etc\n13\n1"
    );
    ok(
        &d,
        &[
            "create",
            "--name",
            "berth-test-l1",
            "berth-test-hostslink",
            "/bin/busybox",
            "true",
        ],
    );
    ok(
        &d,
        &[
            "create",
            "--name",
            "berth-test-l2",
            "berth-test-etclink",
            "/bin/busybox",
            "true",
        ],
    );
    let (init1, _) = layer_dirs(&d, "berth-test-l1");
    assert_eq!(names(&init1.join("etc")), ["hostname", "resolv.conf"]);
    let (init2, _) = layer_dirs(&d, "berth-test-l2");
    assert_eq!(
        names(&init2),
        ["dev", "proc", "sys"],
        "no /etc over the link"
    );
}

/// The init layer's `/etc` (it holds `/etc/hostname`) carries the image's mode, owner and
/// times, so the container (and a commit that copies `/etc` up) sees the image's `/etc`.
#[test]
fn etc_keeps_the_images_mode_owner_and_time() {
    require_cli!();
    let d = Daemon::start();
    import_image(&d, "berth-test-etc750", |root| {
        let etc = root.join("etc");
        std::fs::create_dir(&etc).unwrap();
        std::fs::write(etc.join("passwd"), "root:x:0:0::/:/bin/sh\n").unwrap();
        std::os::unix::fs::lchown(&etc, Some(1), Some(1)).unwrap();
        std::fs::set_permissions(&etc, std::os::unix::fs::PermissionsExt::from_mode(0o750))
            .unwrap();
        let st = Command::new("touch")
            .args(["-d", "@1000000000"])
            .arg(&etc)
            .status()
            .unwrap();
        assert!(st.success());
    });
    assert_eq!(
        sh(
            &d,
            "berth-test-etc750",
            "stat -c '%a %u %g %Y' /etc; echo x > /etc/new; stat -c '%a %u %g' /etc"
        ),
        "750 1 1 1000000000\n750 1 1"
    );
    ok(
        &d,
        &[
            "create",
            "--name",
            "berth-test-e1",
            "berth-test-etc750",
            "/bin/busybox",
            "true",
        ],
    );
    let (init, _) = layer_dirs(&d, "berth-test-e1");
    let m = std::fs::symlink_metadata(init.join("etc")).unwrap();
    assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o750, 1, 1));
}

/// Containers of a new image created at the same time share one init layer.
#[test]
fn parallel_creates_share_one_init_layer() {
    require_cli!();
    let d = Daemon::start();
    import_image(&d, "berth-test-par", |_| {});
    let names: Vec<String> = (0..4).map(|i| format!("berth-test-par{i}")).collect();
    std::thread::scope(|s| {
        for n in &names {
            let d = &d;
            s.spawn(move || {
                ok(
                    d,
                    &[
                        "create",
                        "--name",
                        n,
                        "berth-test-par",
                        "/bin/busybox",
                        "true",
                    ],
                );
            });
        }
    });
    let first = layer_dirs(&d, &names[0]).0;
    for n in &names[1..] {
        assert_eq!(layer_dirs(&d, n).0, first, "{n}");
    }
    let snapshots = d.data_root().join("snapshots");
    let inits = std::fs::read_dir(&snapshots)
        .unwrap()
        .filter(|e| {
            let p = e.as_ref().unwrap().path().join("fs/proc");
            p.is_dir()
        })
        .count();
    assert_eq!(inits, 1, "one init layer in {}", snapshots.display());
    for n in &names {
        ok(&d, &["start", "-a", n]);
    }
}
