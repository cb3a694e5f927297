//! Premounted rootfs (`berth_engine::slots`, "Premounted rootfs"): the container slot mounts
//! the overlay the next create most likely wants in berthd's mount namespace; a create it
//! serves hands it to the shim, whose init binds it, and berthd unmounts its copy once the
//! shim has created the container, except an auto-remove container's, which it keeps and
//! hands on with the container's directories when they are recycled ("Kept mounts"). These
//! tests look at berthd's mount table (the test runs
//! in the same mount namespace) and at what the containers see, through real daemons.

mod common;
use common::{Daemon, require};
use std::path::{Path, PathBuf};

/// Mount points under `root` in this (berthd's) mount namespace, with their options.
fn mounts_under(root: &Path) -> Vec<(PathBuf, String)> {
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let mp = PathBuf::from(f.get(4)?.replace("\\040", " "));
            mp.starts_with(&root)
                .then(|| (mp, f.last().unwrap_or(&"").to_string()))
        })
        .collect()
}

/// Unmounts (lazily) whatever a failed test left under the daemon's root, before the
/// daemon's drop removes the directories: never delete through a mount.
struct Unmounter(PathBuf);

impl Drop for Unmounter {
    fn drop(&mut self) {
        for (mp, _) in mounts_under(&self.0).into_iter().rev() {
            let _ = rustix::mount::unmount(&mp, rustix::mount::UnmountFlags::DETACH);
        }
    }
}

fn rootfs(d: &Daemon, id: &str) -> PathBuf {
    d.data_root().join("containers").join(id).join("rootfs")
}

/// The premounted slots, (ID, mount options) oldest first (mount order, which is the order
/// the pool hands them out), once berthd's mounts under the data root have settled (the same
/// twice in a row, 200 ms apart) and there is at least one. Mounts of containers `ps -a`
/// lists are not slots' (a created container keeps its premount; berthd unmounts its copy
/// of a started container's rootfs on a blocking thread). The pool keeps up to two slots:
/// the one made after a start and one recycled from a removal.
fn premounted_slots(d: &Daemon) -> Vec<(String, String)> {
    let mut last: Vec<(String, String)> = Vec::new();
    common::wait_until("premounted slots", || {
        let listed = d.docker_ok(&["ps", "-aq", "--no-trunc"]);
        let now: Vec<(String, String)> = mounts_under(&d.data_root())
            .into_iter()
            .filter_map(|(mp, opts)| {
                (mp.file_name()? == "rootfs").then_some(())?;
                Some((
                    mp.parent()?.file_name()?.to_string_lossy().into_owned(),
                    opts,
                ))
            })
            .filter(|(id, _)| !listed.lines().any(|l| l == id))
            .collect();
        let settled = !now.is_empty() && now == last;
        last = now;
        if !settled {
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        settled
    });
    last
}

/// The slot the next create takes ([`premounted_slots`]' oldest).
fn premounted_slot(d: &Daemon) -> (String, String) {
    premounted_slots(d).remove(0)
}

/// No mount under the container `id`'s directory in berthd's mount namespace.
fn assert_unmounted(d: &Daemon, id: &str, what: &str) {
    let dir = d.data_root().join("containers").join(id);
    let left: Vec<_> = mounts_under(&d.data_root())
        .into_iter()
        .filter(|(mp, _)| mp.starts_with(&dir))
        .collect();
    assert!(left.is_empty(), "{what}: {left:?}\n{}", d.log());
}

fn assert_no_mounts(d: &Daemon, what: &str) {
    let left = mounts_under(&d.data_root());
    assert!(left.is_empty(), "{what}: {left:?}\n{}", d.log());
}

fn run(d: &Daemon, args: &[&str]) -> String {
    let mut a = vec!["run", "--network", "none"];
    a.extend_from_slice(args);
    d.docker_ok(&a)
}

/// `run --rm` and `run -d` after a create of the same image use the premounted rootfs: the
/// container gets the slot's ID, sees the image's files and its own /etc/hostname and
/// /etc/hosts, writes into its own upper dir, and berthd's mount table keeps no copy of it.
/// `--read-only` on a premounted rootfs is read-only. A restart of the exited container
/// mounts the overlay itself and sees what the first run wrote.
#[test]
fn run_rm_and_run_d_use_the_premounted_rootfs() {
    require!();
    let d = Daemon::start();
    let _u = Unmounter(d.data_root());
    d.import_busybox();
    // The first create finds no slot; the slot made after it mounts its image `volatile`
    // (it was an auto-remove one).
    run(&d, &["--rm", "busybox", "true"]);
    let (slot, opts) = premounted_slot(&d);
    assert!(opts.contains("volatile"), "{opts}");
    assert!(
        rootfs(&d, &slot).join("bin/busybox").exists(),
        "the slot's rootfs shows the image"
    );
    let out = run(
        &d,
        &[
            "--rm",
            "--hostname",
            "berth-test-pm",
            "busybox",
            "sh",
            "-c",
            "cat /etc/hostname; grep -c berth-test-pm /etc/hosts; echo w > /written; cat /written; \
             grep ' / ' /proc/self/mountinfo | grep -c volatile",
        ],
    );
    assert_eq!(out, "berth-test-pm\n1\nw\n1", "{}", d.log());
    // The container was the slot: removed (its directories go right after the answer), no
    // mount of it left, the next slot mounted.
    common::wait_until("the run's directory goes", || !rootfs(&d, &slot).exists());
    let (slot, _) = premounted_slot(&d);

    // run -d of an auto-remove container takes it; berthd keeps its copy while it runs.
    let id = run(
        &d,
        &[
            "-d",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "echo up > /up; sleep 100",
        ],
    );
    assert_eq!(id, slot, "the create took the premounted slot");
    // The write goes to this container's upper dir (its snapshot), not to the image.
    let upper =
        PathBuf::from(d.docker_ok(&["inspect", "-f", "{{.GraphDriver.Data.UpperDir}}", &id]));
    common::wait_until("the container wrote /up", || upper.join("up").exists());
    assert!(
        mounts_under(&d.data_root())
            .iter()
            .any(|(mp, _)| *mp == rootfs(&d, &id)),
        "berthd keeps the running auto-remove container's rootfs: {:?}",
        mounts_under(&d.data_root())
    );
    let (next, _) = premounted_slot(&d);
    assert_ne!(next, id);
    // It wrote /up: its removal unmounts the overlay and discards it.
    d.docker_ok(&["rm", "-f", &id]);
    assert_unmounted(&d, &id, "after the removal of a container that wrote");

    // A non-auto-remove container: the volatile premount does not serve it (unmounted,
    // marker removed, mounted by the init); the slot after it mounts non-volatile, which a
    // read-only `run --rm` then uses.
    let kept = run(
        &d,
        &[
            "-d",
            "--name",
            "berth-test-kept",
            "busybox",
            "sh",
            "-c",
            "echo $$ >> /runs; cat /runs | wc -l",
        ],
    );
    assert_eq!(d.docker_ok(&["wait", &kept]), "0");
    let (_, opts) = premounted_slot(&d);
    assert!(!opts.contains("volatile"), "{opts}");
    let out = run(
        &d,
        &[
            "--rm",
            "--read-only",
            "busybox",
            "sh",
            "-c",
            "touch /x || echo ro",
        ],
    );
    assert!(out.ends_with("ro"), "{out}");
    // A second run of the exited container mounts its overlay itself and sees the first
    // run's write.
    assert_eq!(d.docker_ok(&["start", "-a", "berth-test-kept"]), "2");
    assert_eq!(d.docker_ok(&["logs", "berth-test-kept"]), "1\n2");
    d.docker_ok(&["rm", "berth-test-kept"]);
    assert!(
        premounted_slots(&d).len() <= 2,
        "only the ready slots: {:?}",
        mounts_under(&d.data_root())
    );
}

/// A create the premount does not serve (another image, so other lower dirs; an external
/// runtime) unmounts it and runs as without one; the next slot mounts that image. A
/// created container never started keeps the premount until its removal, which unmounts
/// it; a stop of the daemon leaves no mount behind.
#[test]
fn a_create_the_premount_does_not_serve_unmounts_it() {
    require!();
    let mut d = Daemon::start();
    let _u = Unmounter(d.data_root());
    d.import_busybox();
    let tar = common::busybox_tar();
    d.docker_ok(&["import", &tar.to_string_lossy(), "berth-test-other:latest"]);
    run(&d, &["--rm", "busybox", "true"]);
    let (slot, _) = premounted_slot(&d);
    let out = run(
        &d,
        &[
            "--rm",
            "berth-test-other",
            "sh",
            "-c",
            "ls /bin/busybox && cat /etc/hostname | wc -c",
        ],
    );
    assert_eq!(out, "/bin/busybox\n13", "{}", d.log());
    common::wait_until("the run's directory goes", || !rootfs(&d, &slot).exists());
    // The slots made from now on mount the other image (a create of busybox is now the
    // mismatch); one more run takes the slot still mounted for busybox.
    run(&d, &["--rm", "berth-test-other", "true"]);
    let slots = premounted_slots(&d);
    let lower = |opts: &str| {
        opts.split(',')
            .find(|o| o.starts_with("lowerdir="))
            .map(String::from)
    };
    assert!(
        slots
            .iter()
            .all(|(_, opts)| lower(opts) == lower(&slots[0].1)),
        "every ready slot mounts the other image: {slots:?}"
    );
    let slot = slots[0].0.clone();
    let id = d.docker_ok(&[
        "create",
        "--rm",
        "--network",
        "none",
        "berth-test-other",
        "cat",
        "/etc/hostname",
    ]);
    assert_eq!(id, slot);
    assert!(
        rootfs(&d, &id).join("bin/busybox").exists(),
        "a created container keeps its premounted rootfs until it starts"
    );
    // Removed without ever starting: unmounted, then removed.
    d.docker_ok(&["rm", &id]);
    common::wait_until("the removed container's directory goes", || {
        !rootfs(&d, &id).exists()
    });
    assert_unmounted(&d, &id, "after the removal of a created container");
    // (A create takes the slot, a start makes the next one: no slot now, this run makes
    // its own directories and the next slot.)
    run(&d, &["--rm", "berth-test-other", "true"]);

    if Path::new("/usr/sbin/runc").exists() || Path::new("/usr/bin/runc").exists() {
        // Each runc create takes a premounted slot (unmounted: runc mounts on its own).
        let slots = premounted_slots(&d);
        for _ in &slots {
            let out = run(
                &d,
                &[
                    "--rm",
                    "--runtime",
                    "runc",
                    "berth-test-other",
                    "echo",
                    "via-runc",
                ],
            );
            assert_eq!(out, "via-runc", "{}", d.log());
        }
        for (slot, _) in &slots {
            common::wait_until("the run's directory goes", || !rootfs(&d, slot).exists());
        }
        // An external runtime mounts on its own: the next slot is not premounted.
        common::wait_until("the next slot", || {
            std::fs::read_dir(d.data_root().join("containers"))
                .unwrap()
                .count()
                == 1
        });
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert_no_mounts(&d, "after a runc create");
    } else {
        eprintln!("skipped part: runc is not installed");
    }
    run(&d, &["--rm", "busybox", "true"]);
    premounted_slot(&d);
    d.terminate();
    assert_no_mounts(&d, "after a stop");
}

/// A SIGKILLed berthd leaves its mounts behind: the restarted one unmounts the unused slot's
/// (and removes the slot) and a created container's, and the containers keep working: a
/// running premounted container can be stopped, its logs read, removed; the created one
/// starts (its overlay mounted by the init).
#[test]
fn a_daemon_crash_leaves_no_premount_behind() {
    require!();
    let mut d = Daemon::start();
    let _u = Unmounter(d.data_root());
    d.import_busybox();
    run(&d, &["--rm", "busybox", "true"]);
    let (slot, _) = premounted_slot(&d);
    let running = run(
        &d,
        &[
            "-d",
            "--rm",
            "--name",
            "berth-test-running",
            "busybox",
            "sh",
            "-c",
            "trap 'echo bye; exit 3' TERM; echo hello; while true; do sleep 0.1; done",
        ],
    );
    assert_eq!(running, slot);
    let (slot, _) = premounted_slot(&d);
    let created = d.docker_ok(&[
        "create",
        "--rm",
        "--name",
        "berth-test-created",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "ls /bin/busybox",
    ]);
    assert_eq!(created, slot);
    // A create takes the slot without making the next (the start does): this run makes
    // its own directories, then the next slot.
    run(&d, &["--rm", "busybox", "true"]);
    let slots = premounted_slots(&d);
    d.kill9();
    assert_eq!(
        mounts_under(&d.data_root()).len(),
        slots.len() + 2,
        "the crash left the slots', the created container's and the running auto-remove \
         container's mounts"
    );
    d.spawn();
    assert_no_mounts(&d, "after the restart");
    for (slot, _) in &slots {
        assert!(
            !d.data_root().join("containers").join(slot).exists(),
            "the unused slot was removed"
        );
    }
    assert_eq!(d.docker_ok(&["logs", &running]), "hello");
    d.docker_ok(&["stop", "-t", "5", &running]);
    // An auto-remove container: removed after its stop.
    common::wait_until("the stopped container is removed", || {
        !d.data_root().join("containers").join(&running).exists()
    });
    assert_eq!(
        d.docker_ok(&["start", "-a", "berth-test-created"]),
        "/bin/busybox",
        "{}",
        d.log()
    );
    d.terminate();
    assert_no_mounts(&d, "after a stop");
}

/// (mount ID and upper dir, mount point) of the overlays under `root` in this mount
/// namespace. The pair names one overlay: the kernel reuses a free mount ID for the next
/// mount, but never an upper dir (a discarded snapshot's directory is gone).
fn overlay_ids_under(root: &Path) -> Vec<((u64, String), PathBuf)> {
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(" - overlay "))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let mp = PathBuf::from(f.get(4)?.replace("\\040", " "));
            let upper = f
                .last()?
                .split(',')
                .find_map(|o| o.strip_prefix("upperdir="))?
                .to_string();
            Some(((f[0].parse().ok()?, upper), mp)).filter(|(_, mp)| mp.starts_with(&root))
        })
        .collect()
}

/// An auto-remove container that wrote nothing hands its mounted overlay (the same mount,
/// no new one) to a slot under a fresh ID, and a later container runs in it and sees the
/// image; one that wrote has its overlay unmounted at its removal.
#[test]
fn an_unwritten_auto_remove_container_hands_its_mount_on() {
    require!();
    let d = Daemon::start();
    let _u = Unmounter(d.data_root());
    d.import_busybox();
    run(&d, &["--rm", "busybox", "true"]);
    premounted_slot(&d);
    let id = run(&d, &["-d", "--rm", "busybox", "sleep", "100"]);
    let mount_of = |id: &str| {
        overlay_ids_under(&d.data_root())
            .into_iter()
            .find(|(_, mp)| *mp == rootfs(&d, id))
            .map(|(m, _)| m)
    };
    let mount = mount_of(&id).expect("berthd keeps the running container's overlay");
    d.docker_ok(&["rm", "-f", &id]);
    common::wait_until("the removed container's directory goes", || {
        !rootfs(&d, &id).exists()
    });
    common::wait_until("the overlay to come back as a slot", || {
        overlay_ids_under(&d.data_root())
            .iter()
            .any(|(m, mp)| *m == mount && *mp != rootfs(&d, &id))
    });
    // The pool hands out its oldest slot first: create until a container gets the kept
    // mount.
    let mut reused = false;
    for _ in 0..3 {
        premounted_slots(&d);
        let slot = d.docker_ok(&[
            "create",
            "--rm",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "test -x /bin/busybox && echo image; echo new > /new; cat /new",
        ]);
        let got = mount_of(&slot);
        let out = d.docker_ok(&["start", "-a", &slot]);
        assert_eq!(out, "image\nnew", "{}", d.log());
        if got.as_ref() != Some(&mount) {
            continue;
        }
        // It wrote: its removal unmounts the overlay instead of handing it on.
        common::wait_until("the written container's removal", || {
            !rootfs(&d, &slot).exists()
        });
        premounted_slots(&d);
        assert!(
            overlay_ids_under(&d.data_root())
                .iter()
                .all(|((_, upper), _)| *upper != mount.1),
            "the written overlay is unmounted: {:?}",
            overlay_ids_under(&d.data_root())
        );
        reused = true;
        break;
    }
    assert!(reused, "no later container got the kept mount\n{}", d.log());
}
