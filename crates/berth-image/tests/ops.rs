//! Image operations against a real store: import with changes, tag, rmi rules and messages,
//! history, inspect and list shapes, prune; commit/export/diff of a container snapshot whose
//! upper dir is written directly (the runtime path is in e2e.rs).

mod common;

use std::fs;

use berth_image::*;
use berth_oci::Digest;
use common::*;

fn load_busybox(t: &TestStore, tags: &[&str]) -> Digest {
    let (archive, config) = busybox_archive(tags);
    load(&t.store, &archive[..], &LoadOptions::default()).unwrap();
    Digest::of(&config)
}

#[test]
fn import_tarball_and_directory_with_changes_and_message() {
    let t = store();
    let layer = busybox_layer();
    let opts = ImportOptions {
        changes: vec![
            "CMD [\"sh\", \"-c\", \"echo hi\"]".into(),
            "ENV FOO=bar".into(),
            "EXPOSE 8080".into(),
            "LABEL a=b".into(),
            "USER app".into(),
            "WORKDIR /home/app".into(),
            "VOLUME /data".into(),
            "STOPSIGNAL SIGINT".into(),
            "ONBUILD RUN true".into(),
        ],
        message: Some("from a test".into()),
        reference: Some(berth_oci::Reference::parse("imported:gz").unwrap()),
        source_name: "-".into(),
        ..Default::default()
    };
    let id = import(&t.store, ImportSource::Tar(&gzip(&layer)[..]), &opts).unwrap();
    let img = t.store.image(&id).unwrap().unwrap();
    // The diff id is the digest of the decompressed input, as with Docker.
    assert_eq!(img.layers[0].diff_id, Digest::of(&layer));
    assert_eq!(img.layers[0].blob, Digest::of(&layer));
    let cfg = image_config(&t.store, &img).unwrap();
    let c = cfg.container();
    assert_eq!(c.cmd.unwrap(), vec!["sh", "-c", "echo hi"]);
    assert_eq!(c.env.unwrap(), vec!["FOO=bar"]);
    assert_eq!(c.user.unwrap(), "app");
    assert_eq!(c.working_dir.unwrap(), "/home/app");
    assert_eq!(c.stop_signal.unwrap(), "SIGINT");
    assert_eq!(c.on_build.unwrap(), vec!["RUN true"]);
    assert_eq!(cfg.history[0].comment.as_deref(), Some("from a test"));
    let h = history(&t.store, "imported:gz").unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].id, id.to_string());
    assert_eq!(h[0].comment, "from a test");
    assert_eq!(h[0].tags, Some(vec!["imported:gz".to_string()]));

    // A directory import of an unpacked layer gives a usable image too.
    let snap = t.store.layer_chain(img.top_chain_id().unwrap()).unwrap();
    let dir = t.store.snapshot_path(&snap[0]);
    let id2 = import::<&[u8]>(
        &t.store,
        ImportSource::Dir(dir.clone()),
        &ImportOptions {
            source_name: dir.display().to_string(),
            ..Default::default()
        },
    )
    .unwrap();
    let img2 = t.store.image(&id2).unwrap().unwrap();
    let chain2 = t.store.layer_chain(img2.top_chain_id().unwrap()).unwrap();
    assert!(
        t.store
            .snapshot_path(&chain2[0])
            .join("bin/busybox")
            .is_file()
    );
    let h = history(&t.store, &id2.to_string()).unwrap();
    assert_eq!(h[0].comment, format!("Imported from {}", dir.display()));
    assert_eq!(h[0].tags, None);

    // Bad input: not a tar, and a bad change: nothing is created.
    let before = t.store.images().unwrap().len();
    let err = import(
        &t.store,
        ImportSource::Tar(&b"garbage that is not a tar"[..]),
        &opts,
    )
    .unwrap_err();
    assert!(err.to_string().contains("import source"), "{err}");
    let bad = ImportOptions {
        changes: vec!["RUN rm -rf /".into()],
        ..Default::default()
    };
    let err = import(&t.store, ImportSource::Tar(&layer[..]), &bad).unwrap_err();
    assert_eq!(err.to_string(), "RUN is not a valid change command");
    assert_eq!(t.store.images().unwrap().len(), before);
    let _ = t.store.gc().unwrap();
    let f = t.store.fsck().unwrap();
    assert!(f.is_clean() && f.garbage.is_empty(), "{f:?}");
}

#[test]
fn tag_rmi_follow_dockers_rules_and_messages() {
    let t = store();
    let id = load_busybox(&t, &["busybox:latest"]);
    let short = id.short().to_string();
    assert_eq!(
        tag(&t.store, "busybox", "mine").unwrap().familiar(),
        "mine:latest"
    );
    tag(&t.store, &short, "other/repo:v1").unwrap();
    assert!(tag(&t.store, "busybox", &format!("x@{id}")).is_err());
    assert!(matches!(
        tag(&t.store, "nope", "x"),
        Err(ImageError::NotFound(_))
    ));

    let never = |_: &str| false;
    // Several repositories: deleting by ID needs force.
    let err = remove(&t.store, &short, RemoveOptions::default(), &never).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories"
        )
    );
    // By name: untag only while other tags remain.
    let items = remove(&t.store, "mine", RemoveOptions::default(), &never).unwrap();
    assert_eq!(items, vec![DeleteItem::Untagged("mine:latest".into())]);
    remove(&t.store, "other/repo:v1", RemoveOptions::default(), &never).unwrap();

    // A container uses it: removing the last tag needs force; by ID it is a conflict.
    t.store.prepare_container("berth-test-rmi-c1", &id).unwrap();
    let err = remove(&t.store, "busybox", RemoveOptions::default(), &never).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "conflict: unable to remove repository reference \"busybox\" (must force) - container berth-test-r is using its referenced image {short}"
        )
    );
    let err = remove(&t.store, &id.to_string(), RemoveOptions::default(), &never).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "conflict: unable to delete {short} (must be forced) - image is being used by stopped container berth-test-r"
        )
    );
    let running = |_: &str| true;
    let err = remove(
        &t.store,
        &short,
        RemoveOptions {
            force: true,
            no_prune: false,
        },
        &running,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("(cannot be forced) - image is being used by running container"),
        "{err}"
    );
    assert_eq!(err.kind_name(), "conflict");

    // Forced removal of a stopped container's image: the image goes, its layers stay for the
    // container until it is removed.
    let items = remove(
        &t.store,
        &short,
        RemoveOptions {
            force: true,
            no_prune: false,
        },
        &never,
    )
    .unwrap();
    assert_eq!(items[0], DeleteItem::Untagged("busybox:latest".into()));
    assert_eq!(items[1], DeleteItem::Deleted(id.to_string()));
    assert_eq!(
        items.len(),
        2,
        "layers must survive while the container exists: {items:?}"
    );
    assert!(t.store.container_overlay("berth-test-rmi-c1").is_ok());
    t.store.remove_container("berth-test-rmi-c1").unwrap();
    t.store.gc().unwrap();
    let f = t.store.fsck().unwrap();
    assert!(f.is_clean() && f.garbage.is_empty(), "{f:?}");
    assert!(t.store.snapshots().unwrap().is_empty());

    // Plain delete of a single-tag image reports the removed layers too.
    let id = load_busybox(&t, &["busybox:latest"]);
    let items = remove(&t.store, "busybox", RemoveOptions::default(), &never).unwrap();
    assert_eq!(items.len(), 4, "{items:?}");
    assert_eq!(items[1], DeleteItem::Deleted(id.to_string()));
}

trait KindName {
    fn kind_name(&self) -> &'static str;
}
impl KindName for ImageError {
    fn kind_name(&self) -> &'static str {
        use berth_oci::errdefs::{Classify, ErrorKind};
        match self.kind() {
            ErrorKind::Conflict => "conflict",
            ErrorKind::NotFound => "not found",
            _ => "other",
        }
    }
}

#[test]
fn inspect_and_list_have_dockers_shape_and_filters() {
    let t = store();
    let id = load_busybox(&t, &["busybox:latest", "busybox:1.36"]);
    let v = inspect(&t.store, "busybox:1.36").unwrap();
    assert_eq!(v["Id"], id.to_string());
    assert_eq!(
        v["RepoTags"],
        serde_json::json!(["busybox:1.36", "busybox:latest"])
    );
    assert_eq!(v["Config"]["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(v["Config"]["Hostname"], "");
    assert_eq!(v["Config"]["Entrypoint"], serde_json::Value::Null);
    assert_eq!(v["Config"]["Labels"]["berth.test"], "yes");
    assert_eq!(v["Os"], "linux");
    assert_eq!(v["RootFS"]["Layers"].as_array().unwrap().len(), 2);
    assert_eq!(v["GraphDriver"]["Name"], "overlay2");
    assert!(v["Size"].as_u64().unwrap() > 1_000_000);
    assert_eq!(v["Created"], "2023-11-14T22:13:20Z");
    for key in [
        "Parent",
        "Comment",
        "DockerVersion",
        "Author",
        "Architecture",
        "Metadata",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }

    // A second, newer, dangling image with another label.
    let imported = import(
        &t.store,
        ImportSource::Tar(&busybox_layer()[..]),
        &ImportOptions {
            changes: vec!["LABEL kind=imported".into()],
            source_name: "-".into(),
            ..Default::default()
        },
    )
    .unwrap();
    let all = list(&t.store, &ListOptions::default()).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].id, imported.to_string(), "newest first");
    assert_eq!(all[0].repo_tags, Vec::<String>::new());
    let json = serde_json::to_value(&all[1]).unwrap();
    for key in [
        "Id",
        "ParentId",
        "RepoTags",
        "RepoDigests",
        "Created",
        "Size",
        "SharedSize",
        "Labels",
        "Containers",
    ] {
        assert!(json.get(key).is_some(), "missing {key}");
    }
    let only = |o: ListOptions| -> Vec<String> {
        list(&t.store, &o)
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect()
    };
    assert_eq!(
        only(ListOptions {
            dangling: Some(true),
            ..Default::default()
        }),
        vec![imported.to_string()]
    );
    assert_eq!(
        only(ListOptions {
            dangling: Some(false),
            ..Default::default()
        }),
        vec![id.to_string()]
    );
    assert_eq!(
        only(ListOptions {
            labels: vec!["kind=imported".into()],
            ..Default::default()
        }),
        vec![imported.to_string()]
    );
    assert_eq!(
        only(ListOptions {
            labels: vec!["berth.test".into()],
            ..Default::default()
        }),
        vec![id.to_string()]
    );
    let by_ref = list(
        &t.store,
        &ListOptions {
            references: vec!["busy*:1.*".into()],
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(by_ref.len(), 1);
    assert_eq!(by_ref[0].repo_tags, vec!["busybox:1.36"]);
    assert_eq!(
        only(ListOptions {
            since: Some("busybox".into()),
            ..Default::default()
        }),
        vec![imported.to_string()]
    );
    assert_eq!(
        only(ListOptions {
            before: Some(imported.to_string()),
            ..Default::default()
        }),
        vec![id.to_string()]
    );

    // Prune: only the dangling one goes; with all, the rest unless a container uses it.
    t.store.prepare_container("berth-test-prune", &id).unwrap();
    let r = prune(&t.store, false, &[], None).unwrap();
    assert_eq!(
        r.images_deleted,
        vec![DeleteItem::Deleted(imported.to_string())]
    );
    let r = prune(&t.store, true, &[], None).unwrap();
    assert!(r.images_deleted.is_empty());
    t.store.remove_container("berth-test-prune").unwrap();
    let r = prune(&t.store, true, &[], None).unwrap();
    assert_eq!(r.images_deleted.len(), 3);
    assert!(r.space_reclaimed > 1_000_000);
    assert!(t.store.images().unwrap().is_empty());
}

#[test]
fn commit_export_and_diff_of_a_container_snapshot() {
    if !is_root() {
        eprintln!("skipped: overlay upper dirs with whiteouts need root");
        return;
    }
    let t = store();
    let id = load_busybox(&t, &["busybox:latest"]);
    let ov = t.store.prepare_container("berth-test-commit", &id).unwrap();
    let upper = ov.upperdir.clone().unwrap();
    // What a container would do: add a file, change one, delete one (through a mount).
    let scratch = t.store.temp_dir("berth-test-mnt").unwrap();
    ov.with_mounted(&scratch, |root| {
        fs::create_dir_all(root.join("data")).unwrap();
        fs::write(root.join("data/new.txt"), b"new file\n").unwrap();
        fs::write(root.join("etc/motd"), b"changed\n").unwrap();
        fs::remove_file(root.join("bin/wc")).unwrap();
    })
    .unwrap();
    assert!(upper.join("data/new.txt").is_file());

    let changes = container_changes(&t.store, "berth-test-commit").unwrap();
    let text: Vec<String> = changes
        .iter()
        .map(|c| format!("{} {}", c.kind.letter(), c.path))
        .collect();
    assert!(text.contains(&"A /data".to_string()), "{text:?}");
    assert!(text.contains(&"A /data/new.txt".to_string()), "{text:?}");
    assert!(text.contains(&"C /etc/motd".to_string()), "{text:?}");
    assert!(text.contains(&"D /bin/wc".to_string()), "{text:?}");

    let mut tar_bytes = Vec::new();
    export_container(&t.store, "berth-test-commit", &mut tar_bytes).unwrap();
    let mut names = Vec::new();
    let mut ar = tar::Archive::new(&tar_bytes[..]);
    for e in ar.entries().unwrap() {
        names.push(e.unwrap().path().unwrap().display().to_string());
    }
    assert!(
        names
            .iter()
            .any(|n| n.trim_start_matches("./") == "data/new.txt"),
        "{names:?}"
    );
    assert!(
        names
            .iter()
            .any(|n| n.trim_start_matches("./") == "bin/busybox")
    );
    assert!(
        !names.iter().any(|n| n.trim_start_matches("./") == "bin/wc"),
        "deleted file exported"
    );

    let new_id = commit(
        &t.store,
        "berth-test-commit",
        &CommitOptions {
            reference: Some(berth_oci::Reference::parse("committed:1").unwrap()),
            author: Some("tester".into()),
            comment: Some("a commit".into()),
            changes: vec!["CMD [\"cat\", \"/data/new.txt\"]".into()],
            created_by: Some("sh".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let img = t.store.image(&new_id).unwrap().unwrap();
    assert_eq!(img.layers.len(), 3);
    let cfg = image_config(&t.store, &img).unwrap();
    assert_eq!(cfg.author.as_deref(), Some("tester"));
    assert_eq!(cfg.container().cmd.unwrap(), vec!["cat", "/data/new.txt"]);
    assert_eq!(cfg.rootfs.diff_ids.len(), 3);
    let h = history(&t.store, "committed:1").unwrap();
    assert_eq!(h[0].comment, "a commit");
    assert_eq!(h[0].created_by, "sh");
    // The committed image's root shows the container's changes.
    let img_ov = t.store.image_overlay(&img).unwrap();
    let seen = img_ov
        .with_mounted(&scratch, |root| {
            (
                fs::read_to_string(root.join("data/new.txt")).ok(),
                fs::read_to_string(root.join("etc/motd")).ok(),
                root.join("bin/wc").exists(),
            )
        })
        .unwrap();
    assert_eq!(
        seen,
        (Some("new file\n".into()), Some("changed\n".into()), false)
    );
    // Save the committed image and load it elsewhere: same digests.
    let mut archive = Vec::new();
    save(&t.store, &["committed:1"], &mut archive, SaveFormat::Docker).unwrap();
    let other = store();
    let rep = load(&other.store, &archive[..], &LoadOptions::default()).unwrap();
    assert_eq!(rep.images[0].id, new_id);
    t.store.remove_container("berth-test-commit").unwrap();
    fs::remove_dir(&scratch).unwrap();
}
