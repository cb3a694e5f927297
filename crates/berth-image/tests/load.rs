//! `load`: archives written here with the tar crate (not by Berth) load, verify, dedupe and
//! report like `docker load`; bad archives fail precisely and leave nothing behind.

mod common;

use berth_image::{ImageError, LoadOptions, load};
use berth_oci::Digest;
use common::*;

#[test]
fn loads_a_docker_archive_and_reports_like_docker() {
    let t = store();
    let (archive, config) = busybox_archive(&["busybox:latest", "example.com/x:1"]);
    let rep = load(&t.store, &archive[..], &LoadOptions::default()).unwrap();
    let id = Digest::of(&config);
    assert_eq!(rep.images.len(), 1);
    assert_eq!(rep.images[0].id, id);
    assert_eq!(
        rep.messages(),
        vec![
            "Loaded image: busybox:latest",
            "Loaded image: example.com/x:1"
        ]
    );
    assert_eq!(t.store.resolve_image("busybox").unwrap(), id);
    let img = t.store.image(&id).unwrap().unwrap();
    assert_eq!(img.layers.len(), 2);
    // Layers are unpacked once per chain id.
    let chain = t.store.layer_chain(img.top_chain_id().unwrap()).unwrap();
    assert_eq!(chain.len(), 2);
    let top = t.store.snapshot_path(&chain[0]);
    assert_eq!(
        std::fs::read(top.join("etc/motd")).unwrap(),
        b"hello from layer 2\n"
    );
    assert!(
        t.store
            .snapshot_path(&chain[1])
            .join("bin/busybox")
            .is_file()
    );
    let rep = t.store.fsck().unwrap();
    assert!(rep.is_clean() && rep.garbage.is_empty(), "{rep:?}");

    // Loading again is idempotent; the same layers are not unpacked twice.
    let before = t.store.snapshots().unwrap().len();
    let rep = load(&t.store, &archive[..], &LoadOptions::default()).unwrap();
    assert!(rep.retagged.is_empty());
    assert_eq!(t.store.snapshots().unwrap().len(), before);
    let _ = t.store.gc().unwrap();
    assert!(t.store.fsck().unwrap().garbage.is_empty());
}

#[test]
fn gzip_and_zstd_layers_are_detected_by_magic_and_checked_against_diff_ids() {
    let t = store();
    let base = busybox_layer();
    let mut top = TarWriter::new();
    top.file("zfile", b"zstd layer");
    let top = top.finish();
    let config = config_json(
        &[Digest::of(&base), Digest::of(&top)],
        serde_json::json!({"Cmd": ["sh"]}),
    );
    let archive = docker_archive(&[gzip(&base), zstd(&top)], &config, &["multi:c"]);
    let gz = load(&t.store, &gzip(&archive)[..], &LoadOptions::default()).unwrap();
    let img = t.store.image(&gz.images[0].id).unwrap().unwrap();
    assert_eq!(
        img.layers[0].media_type,
        berth_oci::media_types::OCI_LAYER_GZIP
    );
    assert_eq!(
        img.layers[1].media_type,
        berth_oci::media_types::OCI_LAYER_ZSTD
    );
    assert_eq!(img.layers[1].diff_id, Digest::of(&top));

    // A config whose diff id does not match the layer content.
    let bad_config = config_json(
        &[Digest::of(&base), Digest::of(b"something else")],
        serde_json::json!({}),
    );
    let archive = docker_archive(&[base.clone(), top.clone()], &bad_config, &["bad:diff"]);
    let err = load(&t.store, &archive[..], &LoadOptions::default()).unwrap_err();
    assert!(
        matches!(err, ImageError::DiffIdMismatch { index: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("rootfs.diff_ids[1]"), "{err}");
    assert!(t.store.resolve_image("bad:diff").is_err());
    let rep = t.store.fsck().unwrap();
    assert!(rep.is_clean() && rep.garbage.is_empty(), "{rep:?}");
}

fn assert_fails_cleanly(t: &TestStore, archive: &[u8], needle: &str) {
    let images_before = t.store.images().unwrap().len();
    let err = load(&t.store, archive, &LoadOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains(needle),
        "expected {needle:?} in the error, got: {err}"
    );
    assert_eq!(t.store.images().unwrap().len(), images_before);
    let rep = t.store.fsck().unwrap();
    assert!(rep.is_clean(), "{rep:?}");
    assert!(rep.garbage.is_empty(), "content left behind: {rep:?}");
}

#[test]
fn bad_archives_fail_precisely_and_leave_nothing() {
    let t = store();
    let (good, config) = busybox_archive(&["ok:1"]);
    // Truncated in the middle of the busybox layer.
    assert_fails_cleanly(&t, &good[..good.len() / 2], "truncated");
    // Not a tar at all.
    assert_fails_cleanly(&t, b"hello, I am not an archive", "");
    // No manifest.
    let mut a = TarWriter::new();
    a.file("random.txt", b"x");
    assert_fails_cleanly(&t, &a.finish(), "neither manifest.json");
    // Bad JSON in manifest.json, with the field named.
    let mut a = TarWriter::new();
    a.file("manifest.json", br#"[{"Config": 5, "Layers": []}]"#);
    assert_fails_cleanly(&t, &a.finish(), "Config");
    // Missing layer file.
    let mut a = TarWriter::new();
    a.file("c.json", &config).file(
        "manifest.json",
        br#"[{"Config":"c.json","RepoTags":["x:1"],"Layers":["nope/layer.tar","n2/layer.tar"]}]"#,
    );
    assert_fails_cleanly(
        &t,
        &a.finish(),
        "\"nope/layer.tar\" is referenced by manifest.json entry 0",
    );
    // Traversal in an archive member name.
    let mut a = TarWriter::new();
    a.raw_file(b"../escape.json", b"{}");
    assert_fails_cleanly(&t, &a.finish(), "\"..\"");
    // A hostile layer (entry escaping through ..) inside a well-formed archive.
    let mut evil = TarWriter::new();
    evil.raw_file(b"../../../tmp/berth-test-evil", b"pwned");
    let evil = evil.finish();
    let cfg = config_json(&[Digest::of(&evil)], serde_json::json!({}));
    let big_evil = {
        // Make it large enough to take the streaming (tee) path too.
        let mut e = TarWriter::new();
        e.file("pad", &vec![0u8; 2 << 20]);
        e.raw_file(b"../../../tmp/berth-test-evil", b"pwned");
        e.finish()
    };
    let cfg2 = config_json(&[Digest::of(&big_evil)], serde_json::json!({}));
    assert_fails_cleanly(&t, &docker_archive(&[evil], &cfg, &["evil:1"]), "escapes");
    assert_fails_cleanly(
        &t,
        &docker_archive(&[big_evil], &cfg2, &["evil:2"]),
        "escapes",
    );
    assert!(!std::path::Path::new("/tmp/berth-test-evil").exists());
    // Wrong diff id count.
    let cfg = config_json(&[], serde_json::json!({}));
    assert_fails_cleanly(
        &t,
        &docker_archive(&[busybox_layer()], &cfg, &["n:1"]),
        "0 diff_ids but there are 1 layers",
    );
    // An invalid tag.
    let mut a = TarWriter::new();
    a.file(
        "manifest.json",
        br#"[{"Config":"c.json","RepoTags":["UPPER:1"],"Layers":[]}]"#,
    )
    .file("c.json", &config_json(&[], serde_json::json!({})));
    assert_fails_cleanly(&t, &a.finish(), "must be lowercase");
}

#[test]
fn gc_running_alongside_loads_never_breaks_them() {
    let t = store();
    let (archive, config) = busybox_archive(&["concurrent:1"]);
    let id = Digest::of(&config);
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                t.store.gc().unwrap();
            }
        });
        for _ in 0..5 {
            load(&t.store, &archive[..], &LoadOptions::default()).unwrap();
            let rep = t.store.fsck().unwrap();
            assert!(rep.is_clean(), "{rep:?}");
            berth_image::remove(&t.store, "concurrent:1", Default::default(), &|_| false).unwrap();
            assert!(t.store.image(&id).unwrap().is_none());
        }
        load(&t.store, &archive[..], &LoadOptions::default()).unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    t.store.gc().unwrap();
    let rep = t.store.fsck().unwrap();
    assert!(rep.is_clean() && rep.garbage.is_empty(), "{rep:?}");
    assert_eq!(t.store.resolve_image("concurrent:1").unwrap(), id);
}

/// Mutation test: truncations and byte flips of a valid archive never panic, and a load that
/// fails leaves no image and no garbage behind (a load that succeeds leaves a clean store).
#[test]
fn corrupted_archives_never_panic_or_leave_state() {
    let t = store();
    let mut l1 = TarWriter::new();
    l1.dir("etc/")
        .file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n");
    let l1 = l1.finish();
    let mut l2 = TarWriter::new();
    l2.file("data.txt", &vec![b'x'; 3000])
        .symlink("link", "data.txt");
    let l2 = l2.finish();
    let config = config_json(
        &[Digest::of(&l1), Digest::of(&l2)],
        serde_json::json!({"Cmd": ["sh"]}),
    );
    let good = docker_archive(&[l1, gzip(&l2)], &config, &["mutant:1"]);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut ok, mut failed) = (0, 0);
    for i in 0..300 {
        let mut a = good.clone();
        if i % 3 == 0 {
            a.truncate((next() % good.len() as u64) as usize);
        } else {
            for _ in 0..(1 + next() % 4) {
                let pos = (next() % a.len() as u64) as usize;
                a[pos] ^= 1 << (next() % 8);
            }
        }
        match load(&t.store, &a[..], &LoadOptions::default()) {
            Ok(rep) => {
                ok += 1;
                for img in rep.images {
                    let force = berth_image::RemoveOptions {
                        force: true,
                        no_prune: false,
                    };
                    berth_image::remove(&t.store, &img.id.to_string(), force, &|_| false).ok();
                }
            }
            Err(e) => {
                failed += 1;
                assert!(!e.to_string().is_empty());
                assert!(
                    t.store.images().unwrap().is_empty(),
                    "image visible after: {e}"
                );
            }
        }
        let rep = t.store.fsck().unwrap();
        assert!(rep.is_clean(), "iteration {i}: {rep:?}");
        assert!(rep.garbage.is_empty(), "iteration {i}: {rep:?}");
    }
    assert!(
        failed > 100,
        "mutations should mostly fail ({ok} loaded, {failed} failed)"
    );
}
