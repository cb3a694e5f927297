//! The store against a real filesystem (and, as root, real overlay mounts).

use std::fs;
use std::io::Write;
use std::path::Path;

use berth_oci::{Digest, Reference};
use berth_store::*;

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("berth-test-store")
        .tempdir()
        .unwrap()
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Registers an image whose layers each hold one file `layer<i>` (and `shared` overwritten by
/// every layer), with a config blob of `config` bytes.
fn add_image(store: &Store, config: &str, layers: usize, tags: &[&str]) -> ImageRecord {
    add_image_filled(store, config, layers, tags, |i, dir| {
        fs::write(dir.join(format!("layer{i}")), format!("{i}")).unwrap();
        fs::write(dir.join("shared"), format!("{i}")).unwrap();
    })
}

/// Like [`add_image`], with layer `i` (0 = bottom) filled by `fill(i, dir)`.
fn add_image_filled(
    store: &Store,
    config: &str,
    layers: usize,
    tags: &[&str],
    fill: impl Fn(usize, &Path),
) -> ImageRecord {
    let _op = store.op();
    let mut new_layers = Vec::new();
    let mut refs = Vec::new();
    let mut diff_ids = Vec::new();
    let mut blobs = Vec::new();
    for i in 0..layers {
        let data = format!("{config}-layer-{i}");
        let blob = store.content().write_bytes(data.as_bytes()).unwrap();
        diff_ids.push(blob.clone());
        blobs.push(blob);
    }
    let chains = chain_ids(&diff_ids);
    for i in 0..layers {
        let dir = store.begin_layer().unwrap();
        fill(i, &dir.path());
        new_layers.push(NewLayer {
            chain_id: chains[i].clone(),
            parent: if i == 0 {
                None
            } else {
                Some(chains[i - 1].clone())
            },
            diff_id: diff_ids[i].clone(),
            size: 1,
            dir,
        });
        refs.push(LayerRef {
            blob: blobs[i].clone(),
            media_type: berth_oci::media_types::OCI_LAYER.into(),
            size: 10,
            diff_id: diff_ids[i].clone(),
            chain_id: chains[i].clone(),
        });
    }
    let id = store.content().write_bytes(config.as_bytes()).unwrap();
    let manifest = store
        .content()
        .write_bytes(format!("manifest of {config}").as_bytes())
        .unwrap();
    let image = ImageRecord {
        id,
        manifest,
        manifest_media_type: berth_oci::media_types::OCI_MANIFEST.into(),
        config_media_type: berth_oci::media_types::OCI_CONFIG.into(),
        layers: refs,
        size: layers as u64,
        created_at: now_rfc3339(),
        last_tag_time: None,
        extra: Default::default(),
    };
    store.sync().unwrap();
    store
        .commit_image(ImageCommit {
            image: image.clone(),
            new_layers,
            tags: tags
                .iter()
                .map(|t| Reference::parse(t).unwrap().with_default_tag())
                .collect(),
        })
        .unwrap();
    store.image(&image.id).unwrap().unwrap()
}

#[test]
fn blob_ingest_verifies_digest_and_size_and_leaves_nothing_on_mismatch() {
    let dir = tempdir();
    let store = Store::open(dir.path()).unwrap();
    let c = store.content();
    let good = Digest::of(b"hello");
    let (d, n) = c.write_blob(&b"hello"[..], Some((&good, Some(5)))).unwrap();
    assert_eq!((d.clone(), n), (good.clone(), 5));
    assert_eq!(c.read_blob(&good, 100).unwrap(), b"hello");
    assert!(matches!(
        c.read_blob(&good, 2),
        Err(StoreError::TooLarge { .. })
    ));

    let wrong = Digest::of(b"other");
    let err = c
        .write_blob(&b"hello!"[..], Some((&wrong, None)))
        .unwrap_err();
    assert!(matches!(err, StoreError::DigestMismatch { .. }), "{err}");
    let err = c
        .write_blob(&b"hello!"[..], Some((&Digest::of(b"hello!"), Some(99))))
        .unwrap_err();
    assert!(
        err.to_string().contains("expected 99 bytes, got 6"),
        "{err}"
    );
    assert!(!c.exists(&Digest::of(b"hello!")));
    assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 0);

    // Unhashed ingests: published under a digest the caller computed (size checked), or
    // re-hashed when the caller cannot vouch for the bytes.
    let mut w = c.writer_unhashed().unwrap();
    w.write_all(b"layer bytes").unwrap();
    let err = w.commit_known(&Digest::of(b"layer bytes"), 3).unwrap_err();
    assert!(matches!(err, StoreError::SizeMismatch { .. }), "{err}");
    let mut w = c.writer_unhashed().unwrap();
    w.write_all(b"layer bytes").unwrap();
    w.commit_known(&Digest::of(b"layer bytes"), 11).unwrap();
    assert_eq!(c.verify(&Digest::of(b"layer bytes")).unwrap(), 11);
    let mut w = c.writer_unhashed().unwrap();
    w.write_all(b"other bytes").unwrap();
    let (d, _) = w.commit(None, None).unwrap();
    assert_eq!(d, Digest::of(b"other bytes"));

    // An uncommitted ingest disappears when dropped.
    let mut w = c.writer().unwrap();
    w.write_all(b"partial").unwrap();
    drop(w);
    assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 0);
    assert!(matches!(
        c.open_blob(&wrong),
        Err(StoreError::BlobNotFound(_))
    ));
}

#[test]
fn tags_resolve_like_docker_and_move_between_images() {
    let dir = tempdir();
    let store = Store::open(dir.path()).unwrap();
    let a = add_image(
        &store,
        "config-a",
        2,
        &["busybox", "example.com:5000/x/y:v1"],
    );
    assert!(a.last_tag_time.is_some());
    assert_eq!(store.resolve_image("busybox").unwrap(), a.id);
    assert_eq!(store.resolve_image("busybox:latest").unwrap(), a.id);
    assert_eq!(
        store.resolve_image("docker.io/library/busybox").unwrap(),
        a.id
    );
    assert_eq!(store.resolve_image(&a.id.to_string()).unwrap(), a.id);
    assert_eq!(store.resolve_image(a.id.short()).unwrap(), a.id);
    assert_eq!(store.resolve_image(&a.id.hex()[..3]).unwrap(), a.id);
    assert!(matches!(
        store.resolve_image("nope"),
        Err(StoreError::ImageNotFound(n)) if n == "nope"
    ));
    let tags: Vec<String> = store
        .tags_of(&a.id)
        .unwrap()
        .iter()
        .map(|r| r.familiar())
        .collect();
    assert_eq!(tags, vec!["busybox:latest", "example.com:5000/x/y:v1"]);

    // A second image takes the tag; the first keeps its other tag.
    let b = add_image(&store, "config-b", 1, &[]);
    let prev = store
        .tag(
            &b.id,
            &Reference::parse("busybox").unwrap().with_default_tag(),
        )
        .unwrap();
    assert_eq!(prev, Some(a.id.clone()));
    assert_eq!(store.resolve_image("busybox").unwrap(), b.id);
    assert_eq!(
        store
            .untag(&Reference::parse("example.com:5000/x/y:v1").unwrap())
            .unwrap(),
        a.id
    );
    assert!(store.tags_of(&a.id).unwrap().is_empty());
    let all = store.images().unwrap();
    assert_eq!(all.len(), 2);

    // Prefix "" of both images' ids is ambiguous when they share a first digit; use the
    // common prefix of the two ids.
    let common: String =
        a.id.hex()
            .chars()
            .zip(b.id.hex().chars())
            .take_while(|(x, y)| x == y)
            .map(|(x, _)| x)
            .collect();
    if !common.is_empty() {
        assert!(matches!(
            store.resolve_image(&common),
            Err(StoreError::AmbiguousImage(_))
        ));
    }
}

#[test]
fn gc_removes_unreferenced_content_but_keeps_container_chains_and_leases() {
    let dir = tempdir();
    let store = Store::open(dir.path()).unwrap();
    let a = add_image(&store, "config-a", 3, &["a"]);
    let b = add_image(&store, "config-b", 2, &["b"]);
    let stray = store.content().write_bytes(b"stray").unwrap();
    let leased = store.content().write_bytes(b"leased").unwrap();
    store
        .put_lease(&LeaseRecord {
            id: "berth-test-lease".into(),
            created_at: now_rfc3339(),
            expires_unix: None,
            blobs: vec![leased.clone()],
            snapshots: vec![],
        })
        .unwrap();
    let r = store.gc().unwrap();
    assert_eq!(r.blobs_removed, 1, "{r:?}");
    assert!(!store.content().exists(&stray));
    assert!(store.content().exists(&leased));

    // A container on b keeps b's layers after b is deleted.
    let _ = store.prepare_container("berth-test-c1", &b.id).unwrap();
    assert_eq!(
        store.containers_using(&b.id).unwrap(),
        vec!["berth-test-c1"]
    );
    store.delete_image(&b.id).unwrap();
    let r = store.gc().unwrap();
    assert_eq!(r.snapshots_removed, 0, "{r:?}");
    assert!(!store.content().exists(&b.id));
    for l in &b.layers {
        assert!(store.has_layer(&l.chain_id).unwrap());
    }
    // ... and the init layer it stacks on (the image lacks every mount point).
    let init = store.snapshot(&init::init_key(&b.id)).unwrap().unwrap();
    assert_eq!(init.kind, SnapshotKind::Layer);
    store.remove_container("berth-test-c1").unwrap();
    let r = store.gc().unwrap();
    assert_eq!(
        r.snapshots_removed, 3,
        "b's two layers and its init layer: {r:?}"
    );
    assert!(!store.snapshot_path(&init).exists());

    store.delete_lease("berth-test-lease").unwrap();
    store.delete_image(&a.id).unwrap();
    let r = store.gc().unwrap();
    assert_eq!(r.snapshots_removed, 3);
    assert_eq!(store.content().list().unwrap(), vec![]);
    assert_eq!(
        fs::read_dir(dir.path().join("snapshots/l"))
            .unwrap()
            .count(),
        0
    );
    let rep = store.fsck().unwrap();
    assert!(rep.is_clean() && rep.garbage.is_empty(), "{rep:?}");
}

#[test]
fn fsck_finds_corrupt_blobs_and_missing_snapshots() {
    let dir = tempdir();
    let store = Store::open(dir.path()).unwrap();
    let a = add_image(&store, "config-a", 2, &["a"]);
    let rep = store.fsck().unwrap();
    assert!(rep.is_clean(), "{rep:?}");
    assert_eq!(rep.blobs_checked, 4);
    fs::write(store.content().path(&a.layers[0].blob), b"tampered").unwrap();
    let chain = store.layer_chain(a.top_chain_id().unwrap()).unwrap();
    fs::remove_dir_all(store.snapshot_path(&chain[0])).unwrap();
    let rep = store.fsck().unwrap();
    assert_eq!(rep.errors.len(), 2, "{rep:?}");
    assert!(
        rep.errors.iter().any(|e| e.contains("content hashes to")),
        "{rep:?}"
    );
    assert!(
        rep.errors.iter().any(|e| e.contains("is missing")),
        "{rep:?}"
    );
}

#[test]
fn open_cleans_up_after_a_crashed_operation() {
    let dir = tempdir();
    {
        let store = Store::open(dir.path()).unwrap();
        let _keep = add_image(&store, "kept", 1, &["kept"]);
        // What a killed load leaves: an ingest, a committed-but-unreferenced blob, and a
        // half-unpacked snapshot with its link.
        let mut w = store.content().writer().unwrap();
        w.write_all(b"half a layer").unwrap();
        std::mem::forget(w);
        store.content().write_bytes(b"orphan blob").unwrap();
        let pending = store.begin_layer().unwrap();
        fs::write(pending.path().join("f"), b"x").unwrap();
        std::mem::forget(pending);
        let rep = store.fsck().unwrap();
        assert!(rep.is_clean());
        assert_eq!(rep.garbage.len(), 2, "{rep:?}");
    }
    let store = Store::open(dir.path()).unwrap();
    let rep = store.fsck().unwrap();
    assert!(rep.is_clean() && rep.garbage.is_empty(), "{rep:?}");
    assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 0);
    assert_eq!(
        fs::read_dir(dir.path().join("snapshots/l"))
            .unwrap()
            .count(),
        1
    );
    assert_eq!(
        store.resolve_image("kept").unwrap(),
        store.images().unwrap()[0].0.id
    );
}

/// The links in `snapshots/l` and the snapshot directories that no record names, sorted.
fn unrecorded(store: &Store, root: &Path) -> (Vec<String>, Vec<String>) {
    let recs = store.snapshots().unwrap();
    let list = |d: &Path, known: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(d)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "l" && n != "empty" && !known.contains(&n.as_str()))
            .collect();
        v.sort();
        v
    };
    let links: Vec<&str> = recs.iter().map(|r| r.link.as_str()).collect();
    let ids: Vec<&str> = recs.iter().map(|r| r.id.as_str()).collect();
    (
        list(&root.join("snapshots/l"), &links),
        list(&root.join("snapshots"), &ids),
    )
}

/// A slot's directories, made before any container, survive GC and fsck calls them no
/// garbage; a container snapshot prepared in it is recorded in those very directories.
#[test]
fn a_snapshot_slot_survives_gc_and_becomes_the_container_snapshot() {
    let dir = tempdir();
    let store = Store::open(dir.path()).unwrap();
    let img = add_image(&store, "config-a", 2, &["a"]);
    let nothing = (vec![], vec![]);
    assert_eq!(unrecorded(&store, dir.path()), nothing);

    let slot = store.prepare_slot().unwrap();
    let slot_dir = slot.path().to_path_buf();
    let slot_id = slot_dir.file_name().unwrap().to_string_lossy().into_owned();
    assert!(slot_dir.join("fs").is_dir() && slot_dir.join("work").is_dir());
    let (links, dirs) = unrecorded(&store, dir.path());
    assert_eq!((links.len(), dirs), (1, vec![slot_id.clone()]));
    let r = store.gc().unwrap();
    assert_eq!(r.snapshots_removed, 0, "gc swept the slot: {r:?}");
    assert_eq!(unrecorded(&store, dir.path()).1, vec![slot_id.clone()]);
    assert_eq!(
        unrecorded(&store, dir.path()).0,
        links,
        "gc removed the slot's link"
    );
    let rep = store.fsck().unwrap();
    assert!(rep.is_clean() && rep.garbage.is_empty(), "{rep:?}");

    let overlay = store
        .prepare_container_in("berth-test-c1", &img.id, Some(slot))
        .unwrap();
    let rec = store.container_snapshot("berth-test-c1").unwrap();
    assert_eq!(slot_id, rec.id);
    assert_eq!(links, vec![rec.link.clone()]);
    assert_eq!(
        overlay.upperdir.as_deref(),
        Some(slot_dir.join("fs").as_path())
    );
    assert_eq!(
        overlay.workdir.as_deref(),
        Some(slot_dir.join("work").as_path())
    );
    assert_eq!(rec.image.as_ref(), Some(&img.id));
    assert_eq!(rec.parent.as_ref(), img.top_chain_id());
    // Recorded now: GC keeps it as a container snapshot, fsck checks its link.
    assert_eq!(store.gc().unwrap().snapshots_removed, 0);
    assert_eq!(unrecorded(&store, dir.path()), nothing);
    let rep = store.fsck().unwrap();
    assert!(rep.is_clean() && rep.garbage.is_empty(), "{rep:?}");
    store.remove_container("berth-test-c1").unwrap();
    store.drain_trash();
    assert!(!slot_dir.exists());
    assert_eq!(unrecorded(&store, dir.path()), nothing);
}

/// A slot is used once: a failed prepare (taken key, missing image) and a dropped slot
/// remove its directories and link; one a crash left behind goes at the next open.
#[test]
fn unused_slots_leave_nothing_behind() {
    let dir = tempdir();
    let nothing = (vec![], vec![]);
    {
        let store = Store::open(dir.path()).unwrap();
        let img = add_image(&store, "config-a", 1, &["a"]);
        store.prepare_container("berth-test-c1", &img.id).unwrap();
        assert_eq!(unrecorded(&store, dir.path()), nothing);

        let slot = store.prepare_slot().unwrap();
        let e = store
            .prepare_container_in("berth-test-c1", &img.id, Some(slot))
            .unwrap_err();
        assert!(matches!(e, StoreError::SnapshotExists(_)), "{e}");
        assert_eq!(unrecorded(&store, dir.path()), nothing);

        let slot = store.prepare_slot().unwrap();
        let missing = Digest::of(b"berth-test-no-such-image");
        let e = store
            .prepare_container_in("berth-test-c2", &missing, Some(slot))
            .unwrap_err();
        assert!(matches!(e, StoreError::ImageNotFound(_)), "{e}");
        assert_eq!(unrecorded(&store, dir.path()), nothing);

        drop(store.prepare_slot().unwrap());
        assert_eq!(unrecorded(&store, dir.path()), nothing);

        // What a SIGKILL leaves: a slot nobody recorded.
        std::mem::forget(store.prepare_slot().unwrap());
        let (links, dirs) = unrecorded(&store, dir.path());
        assert_eq!((links.len(), dirs.len()), (1, 1));
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(unrecorded(&store, dir.path()), nothing);
    let rep = store.fsck().unwrap();
    assert!(rep.is_clean() && rep.garbage.is_empty(), "{rep:?}");
    assert!(store.container_snapshot("berth-test-c1").is_ok());
}

/// GC running all the time beside slots being made and recorded never sweeps one: every
/// container snapshot keeps its directories and link.
#[test]
fn gc_never_sweeps_a_slot_made_or_recorded_beside_it() {
    let dir = tempdir();
    let store = Store::open(dir.path()).unwrap();
    let img = add_image(&store, "config-a", 1, &["a"]);
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                store.gc().unwrap();
            }
        });
        // Stops the GC thread also when an unwrap below panics.
        struct Done<'a>(&'a std::sync::atomic::AtomicBool);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let _done = Done(&done);
        for i in 0..150 {
            let slot = store.prepare_slot().unwrap();
            std::thread::yield_now();
            store
                .prepare_container_in(&format!("berth-test-c{i}"), &img.id, Some(slot))
                .unwrap();
        }
    });
    for i in 0..150 {
        let ov = store
            .container_overlay(&format!("berth-test-c{i}"))
            .unwrap();
        assert!(
            ov.upperdir.unwrap().is_dir() && ov.workdir.unwrap().is_dir(),
            "c{i}"
        );
    }
    let rep = store.fsck().unwrap();
    assert!(rep.is_clean() && rep.garbage.is_empty(), "{rep:?}");
}

/// `discard` makes a directory vanish at once; the trash is emptied in the background,
/// by `drain_trash`, and what a crash left in it is deleted at the next open.
#[test]
fn discarded_dirs_vanish_at_once_and_the_trash_is_emptied_at_open() {
    let dir = tempdir();
    let doomed = dir.path().join("containers/c1");
    fs::create_dir_all(doomed.join("rootfs")).unwrap();
    fs::write(doomed.join("config.json"), b"{}").unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        store.discard(&doomed).unwrap();
        assert!(!doomed.exists(), "gone from its place at once");
        store
            .discard(&dir.path().join("containers/missing"))
            .unwrap();
        store.drain_trash();
        assert_eq!(fs::read_dir(dir.path().join("trash")).unwrap().count(), 0);
    }
    // What a crash leaves: something in trash/ that no thread deleted.
    let left = dir.path().join("trash/leftover");
    fs::create_dir_all(left.join("deep/er")).unwrap();
    fs::write(left.join("deep/er/f"), b"x").unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.drain_trash();
    assert!(!left.exists(), "emptied at open");
}

#[test]
fn second_open_is_refused_and_newer_schema_is_refused() {
    let dir = tempdir();
    let store = Store::open(dir.path()).unwrap();
    assert!(matches!(Store::open(dir.path()), Err(StoreError::InUse(_))));
    let w = store.db().begin_write().unwrap();
    {
        let mut t = w
            .open_table(redb::TableDefinition::<&str, u64>::new("meta"))
            .unwrap();
        t.insert("schema_version", 99).unwrap();
    }
    w.commit().unwrap();
    drop(store);
    let err = Store::open(dir.path()).err().unwrap();
    assert!(err.to_string().contains("schema version 99"), "{err}");
}

fn read_merged(root: &Path, name: &str) -> String {
    fs::read_to_string(root.join(name)).unwrap()
}

#[test]
fn container_overlay_mounts_deep_chains_and_writes_go_to_upper() {
    if !is_root() {
        eprintln!("skipped: overlay mounts need root");
        return;
    }
    let dir = tempdir();
    let store = Store::open(dir.path()).unwrap();
    let img = add_image(&store, "deep", 120, &["deep"]);
    let ov = store.prepare_container("berth-test-deep", &img.id).unwrap();
    assert_eq!(
        ov.lowerdirs.len(),
        121,
        "the image's 120 layers and its init layer"
    );
    // The classic option string with short links stays under a page even for 120 layers
    // when the data root is short; the new mount API has no limit at all.
    let target = store.temp_dir("berth-test-mnt").unwrap();
    {
        let guard = ov.mount(&target).unwrap();
        assert_eq!(read_merged(guard.path(), "shared"), "119");
        assert_eq!(read_merged(guard.path(), "layer0"), "0");
        fs::write(guard.path().join("written"), b"by container").unwrap();
        fs::remove_file(guard.path().join("layer5")).unwrap();
    }
    let upper = ov.upperdir.clone().unwrap();
    assert_eq!(fs::read(upper.join("written")).unwrap(), b"by container");
    assert_eq!(store.container_size("berth-test-deep").unwrap(), 12);
    let wh = fs::symlink_metadata(upper.join("layer5")).unwrap();
    use std::os::unix::fs::FileTypeExt;
    assert!(
        wh.file_type().is_char_device(),
        "whiteout expected in upper"
    );

    // The private-namespace helper sees the same merged view, and the host never does.
    let seen = ov
        .with_mounted(&target, |p| {
            (read_merged(p, "written"), p.join("layer5").exists())
        })
        .unwrap();
    assert_eq!(seen, ("by container".to_string(), false));
    assert!(!target.join("written").exists(), "mount leaked to the host");
    let again = store.container_overlay("berth-test-deep").unwrap();
    assert_eq!(again, ov);
    assert!(matches!(
        store.prepare_container("berth-test-deep", &img.id),
        Err(StoreError::SnapshotExists(_))
    ));
    store.remove_container("berth-test-deep").unwrap();
    assert!(!upper.exists());
}

/// The directory entries of `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The init layers' records.
fn init_layers(store: &Store) -> Vec<SnapshotRecord> {
    store
        .snapshots()
        .unwrap()
        .into_iter()
        .filter(|s| s.key.starts_with(init::INIT_KEY_PREFIX))
        .collect()
}

/// The mount points an image lacks come from its init layer, made once by the first
/// container and shared by the next; the containers' upper dirs stay empty, and a whiteout of
/// `/proc` in the image's top layer does not hide the init layer's `/proc`.
#[test]
fn init_layer_holds_what_the_image_lacks_once_for_all_its_containers() {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    if !is_root() {
        eprintln!("skipped: whiteouts (mknod) and overlay mounts need root");
        return;
    }
    let dir = tempdir();
    let store = Store::open(dir.path()).unwrap();
    let img = add_image_filled(&store, "init", 2, &["init"], |i, d| {
        if i == 0 {
            for p in ["proc", "dev", "etc"] {
                fs::create_dir(d.join(p)).unwrap();
            }
            fs::write(d.join("etc/hosts"), "image's").unwrap();
            fs::write(d.join("etc/hostname"), "image's").unwrap();
        } else {
            // The top layer deletes /proc and /etc/hostname.
            for p in ["proc", "etc/hostname"] {
                if p.contains('/') {
                    fs::create_dir(d.join("etc")).unwrap();
                }
                rustix::fs::mknodat(
                    rustix::fs::CWD,
                    d.join(p),
                    rustix::fs::FileType::CharacterDevice,
                    rustix::fs::Mode::empty(),
                    rustix::fs::makedev(0, 0),
                )
                .unwrap();
            }
        }
    });
    let ov = store
        .prepare_container("berth-test-init1", &img.id)
        .unwrap();
    let init = store.snapshot(&init::init_key(&img.id)).unwrap().unwrap();
    assert_eq!(
        init.entries,
        ["etc", "etc/hostname", "etc/resolv.conf", "proc", "sys"],
        "what the image lacks (and /etc, their parent)"
    );
    assert_eq!(
        ov.layer_dirs[0],
        store.snapshot_path(&init),
        "init is the top lower"
    );
    assert_eq!(ov.layer_dirs.len(), 3);
    let upper = ov.upperdir.clone().unwrap();
    let target = store.temp_dir("berth-test-mnt").unwrap();
    let seen = ov
        .with_mounted(&target, |root| {
            let kind = |p: &str| {
                let m = fs::symlink_metadata(root.join(p)).unwrap();
                (m.file_type().is_dir(), m.mode() & 0o7777, m.len())
            };
            (
                kind("proc"),
                kind("sys"),
                kind("etc/hostname"),
                fs::read_to_string(root.join("etc/hosts")).unwrap(),
                names(&root.join("proc")),
            )
        })
        .unwrap();
    assert_eq!(
        seen,
        (
            (true, 0o755, seen.0.2),
            (true, 0o755, seen.1.2),
            (false, 0o644, 0),
            "image's".to_string(),
            Vec::<String>::new()
        )
    );
    assert!(names(&upper).is_empty(), "upper dir: {:?}", names(&upper));

    // The second container shares it; nothing new is made.
    let ov2 = store
        .prepare_container("berth-test-init2", &img.id)
        .unwrap();
    assert_eq!(ov2.lowerdirs[0], ov.lowerdirs[0]);
    assert_eq!(init_layers(&store).len(), 1);
    let rep = store.fsck().unwrap();
    assert!(rep.is_clean() && rep.garbage.is_empty(), "{rep:?}");

    // The init layer is the image's, not the containers': removing them keeps it; removing
    // the image (and running GC) removes it.
    store.remove_container("berth-test-init1").unwrap();
    store.remove_container("berth-test-init2").unwrap();
    assert_eq!(store.gc().unwrap().snapshots_removed, 0);
    let whiteout = fs::symlink_metadata(
        store
            .snapshot_path(&store.layer_chain(img.top_chain_id().unwrap()).unwrap()[0])
            .join("proc"),
    )
    .unwrap();
    assert!(whiteout.file_type().is_char_device());
    store.delete_image(&img.id).unwrap();
    assert_eq!(store.gc().unwrap().snapshots_removed, 3);
    assert!(!store.snapshot_path(&init).exists());
    assert_eq!(
        fs::read_dir(dir.path().join("snapshots/l"))
            .unwrap()
            .count(),
        0
    );
}

/// An image that has every mount point gets no init layer (no extra lower dir to look up),
/// while its record still remembers that nothing was needed.
#[test]
fn complete_images_get_no_init_layer() {
    let dir = tempdir();
    let store = Store::open(dir.path()).unwrap();
    let img = add_image_filled(&store, "complete", 1, &["complete"], |_, d| {
        for p in ["proc", "dev", "sys", "etc"] {
            fs::create_dir(d.join(p)).unwrap();
        }
        for f in ["hostname", "hosts"] {
            fs::write(d.join("etc").join(f), "").unwrap();
        }
        std::os::unix::fs::symlink("/run/resolv.conf", d.join("etc/resolv.conf")).unwrap();
    });
    let ov = store
        .prepare_container("berth-test-complete", &img.id)
        .unwrap();
    assert_eq!(ov.lowerdirs.len(), 1);
    let init = store.snapshot(&init::init_key(&img.id)).unwrap().unwrap();
    assert!(init.entries.is_empty(), "{init:?}");
    assert_eq!(
        store
            .container_snapshot("berth-test-complete")
            .unwrap()
            .init,
        None
    );
    let rep = store.fsck().unwrap();
    assert!(rep.is_clean() && rep.garbage.is_empty(), "{rep:?}");
}

/// Containers of one image created in parallel make its init layer once, and all stack on
/// it; no directory is left behind.
#[test]
fn parallel_creates_of_one_image_make_one_init_layer() {
    let dir = tempdir();
    let store = Store::open(dir.path()).unwrap();
    let img = add_image(&store, "parallel", 2, &["parallel"]);
    let overlays: Vec<Overlay> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..6)
            .map(|i| {
                let (store, img) = (&store, &img);
                s.spawn(move || {
                    store
                        .prepare_container(&format!("berth-test-par{i}"), &img.id)
                        .unwrap()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let inits = init_layers(&store);
    assert_eq!(inits.len(), 1);
    for ov in &overlays {
        assert_eq!(ov.layer_dirs[0], store.snapshot_path(&inits[0]));
    }
    // 2 layers + 1 init + 6 containers, plus `l`: nothing else.
    assert_eq!(
        fs::read_dir(dir.path().join("snapshots")).unwrap().count(),
        10
    );
    let rep = store.fsck().unwrap();
    assert!(rep.is_clean() && rep.garbage.is_empty(), "{rep:?}");
}

/// A crash while the init layer is being made (its directory written, its record not yet
/// committed) leaves nothing trusted: the next open removes the directory, and the next
/// container makes a complete layer.
#[test]
fn a_crash_before_the_init_records_commit_leaves_nothing_behind() {
    let dir = tempdir();
    let img;
    {
        let store = Store::open(dir.path()).unwrap();
        img = add_image(&store, "crash", 1, &["crash"]);
        // What a SIGKILL between the layer's directory and its record leaves.
        let pending = store.begin_layer().unwrap();
        fs::create_dir(pending.path().join("proc")).unwrap();
        std::mem::forget(pending);
    }
    let store = Store::open(dir.path()).unwrap();
    let rep = store.fsck().unwrap();
    assert!(rep.is_clean() && rep.garbage.is_empty(), "{rep:?}");
    assert!(store.snapshot(&init::init_key(&img.id)).unwrap().is_none());
    let ov = store
        .prepare_container("berth-test-crash", &img.id)
        .unwrap();
    assert_eq!(names(&ov.layer_dirs[0]), ["dev", "etc", "proc", "sys"]);
}

/// What an older Berth (without init layers) leaves after opening this store: it reads an
/// init layer as an unreferenced layer and GC drops its record and directory. A container
/// that named it then mounts without it (the runtime creates the mount points in its upper
/// dir, as before), fsck says so, and the image's next container makes a new one.
#[test]
fn a_container_whose_init_layer_an_older_berth_removed_still_mounts() {
    let dir = tempdir();
    let store = Store::open(dir.path()).unwrap();
    let img = add_image(&store, "downgrade", 1, &["downgrade"]);
    let before = store
        .prepare_container("berth-test-down1", &img.id)
        .unwrap();
    assert_eq!(before.lowerdirs.len(), 2);
    let key = init::init_key(&img.id);
    let rec = store.snapshot(&key).unwrap().unwrap();
    {
        const SNAPSHOTS: redb::TableDefinition<&str, &[u8]> =
            redb::TableDefinition::new("snapshots");
        let w = store.db().begin_write().unwrap();
        w.open_table(SNAPSHOTS)
            .unwrap()
            .remove(key.as_str())
            .unwrap();
        w.commit().unwrap();
        fs::remove_dir_all(store.snapshot_path(&rec).parent().unwrap()).unwrap();
        fs::remove_file(dir.path().join("snapshots/l").join(&rec.link)).unwrap();
    }
    let after = store.container_overlay("berth-test-down1").unwrap();
    assert_eq!(after.lowerdirs, before.lowerdirs[1..]);
    let rep = store.fsck().unwrap();
    assert!(
        rep.errors.len() == 1 && rep.errors[0].contains("init layer"),
        "{rep:?}"
    );
    let next = store
        .prepare_container("berth-test-down2", &img.id)
        .unwrap();
    assert_eq!(next.lowerdirs.len(), 2);
    assert_ne!(next.lowerdirs[0], before.lowerdirs[0]);
}

/// A removed container snapshot whose upper dir is empty is kept as a slot (unrecorded,
/// reserved: GC leaves it, a later container records it with a fresh work dir); one whose
/// upper dir holds a file goes to the trash; a kept slot nobody records is gone after the
/// next open.
#[test]
fn a_removed_snapshot_with_an_empty_upper_dir_is_kept_as_a_slot() {
    let dir = tempdir();
    let nothing = (vec![], vec![]);
    {
        let store = Store::open(dir.path()).unwrap();
        let img = add_image(&store, "config-a", 1, &["a"]);
        let first = store.prepare_container("berth-test-c1", &img.id).unwrap();
        let upper = first.upperdir.clone().unwrap();
        let work = first.workdir.clone().unwrap();
        std::fs::create_dir(work.join("work")).unwrap();
        let kept = store
            .remove_container_keeping("berth-test-c1", true, |_| Ok(()))
            .unwrap()
            .expect("an empty upper dir is kept");
        assert!(
            store.container_snapshot("berth-test-c1").is_err(),
            "unrecorded"
        );
        store.gc().unwrap();
        assert!(upper.is_dir(), "GC leaves a kept slot alone");
        store.renew_slot_work(&kept).unwrap();
        assert_eq!(
            std::fs::read_dir(&work).unwrap().count(),
            0,
            "a fresh work dir"
        );
        let second = store
            .prepare_container_in("berth-test-c2", &img.id, Some(kept))
            .unwrap();
        assert_eq!(second.upperdir.as_ref(), Some(&upper), "the same upper dir");
        assert_eq!(unrecorded(&store, dir.path()), nothing);

        std::fs::write(upper.join("written"), b"x").unwrap();
        let discarded = store
            .remove_container_keeping("berth-test-c2", true, |_| Ok(()))
            .unwrap();
        assert!(discarded.is_none(), "a written upper dir is not kept");
        assert!(!upper.exists());
        let e = store
            .remove_container_keeping("berth-test-c2", true, |_| Ok(()))
            .unwrap_err();
        assert!(matches!(e, StoreError::SnapshotNotFound(_)), "{e}");

        // What a SIGKILL leaves: a kept slot nobody recorded.
        let third = store.prepare_container("berth-test-c3", &img.id).unwrap();
        std::mem::forget(
            store
                .remove_container_keeping("berth-test-c3", true, |_| Ok(()))
                .unwrap(),
        );
        assert!(third.upperdir.unwrap().is_dir());
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(unrecorded(&store, dir.path()), nothing);
    let rep = store.fsck().unwrap();
    assert!(rep.is_clean() && rep.garbage.is_empty(), "{rep:?}");
}
