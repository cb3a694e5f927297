//! Interop with real tools: archives Berth writes are read by skopeo and umoci; archives skopeo
//! writes load into Berth; load → save → load keeps every digest.

mod common;

use std::process::Command;

use berth_image::{LoadOptions, SaveFormat, load, save};
use berth_oci::Digest;
use common::*;

fn save_to(t: &TestStore, names: &[&str], format: SaveFormat, file: &str) -> std::path::PathBuf {
    let p = t.dir.path().join(file);
    let f = std::fs::File::create(&p).unwrap();
    save(&t.store, names, f, format).unwrap();
    p
}

#[test]
fn load_save_load_round_trips_with_identical_digests_and_bytes() {
    let a = store();
    let (archive, config) = busybox_archive(&["busybox:latest"]);
    load(&a.store, &archive[..], &LoadOptions::default()).unwrap();
    let id = Digest::of(&config);
    let img_a = a.store.image(&id).unwrap().unwrap();
    let saved = save_to(&a, &["busybox"], SaveFormat::Docker, "a.tar");

    let b = store();
    let rep = load(
        &b.store,
        std::fs::File::open(&saved).unwrap(),
        &LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(rep.messages(), vec!["Loaded image: busybox:latest"]);
    let img_b = b.store.image(&id).unwrap().unwrap();
    assert_eq!(img_a.manifest, img_b.manifest, "manifest digest changed");
    assert_eq!(img_a.layers, img_b.layers);
    let saved_b = save_to(&b, &["busybox:latest"], SaveFormat::Docker, "b.tar");
    assert_eq!(
        std::fs::read(&saved).unwrap(),
        std::fs::read(&saved_b).unwrap(),
        "save is not reproducible across stores"
    );

    // Several images (and several tags of one) in one archive.
    let other = berth_image::import(
        &a.store,
        berth_image::ImportSource::Tar(&busybox_layer()[..]),
        &berth_image::ImportOptions {
            reference: Some(berth_oci::Reference::parse("imported:1").unwrap()),
            source_name: "-".into(),
            ..Default::default()
        },
    )
    .unwrap();
    berth_image::tag(&a.store, "busybox", "busybox:second").unwrap();
    let multi = save_to(
        &a,
        &["busybox", "imported:1"],
        SaveFormat::Docker,
        "multi.tar",
    );
    let d = store();
    let rep = load(
        &d.store,
        std::fs::File::open(&multi).unwrap(),
        &LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(
        rep.messages(),
        vec![
            "Loaded image: busybox:latest",
            "Loaded image: busybox:second",
            "Loaded image: imported:1"
        ]
    );
    assert_eq!(rep.images[1].id, other);
    assert!(d.store.fsck().unwrap().is_clean());

    // An OCI archive round-trips too, and an image saved by ID has no tags.
    let oci = save_to(&a, &[id.short()], SaveFormat::Oci, "a-oci.tar");
    let c = store();
    let rep = load(
        &c.store,
        std::fs::File::open(&oci).unwrap(),
        &LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(rep.messages(), vec![format!("Loaded image ID: {id}")]);
    assert_eq!(
        c.store.image(&id).unwrap().unwrap().manifest,
        img_a.manifest
    );
}

#[test]
fn skopeo_and_umoci_read_what_berth_writes() {
    if !have("skopeo") || !have("umoci") {
        eprintln!("skipped: skopeo and umoci are not installed (scripts/install-deps.sh)");
        return;
    }
    let t = store();
    let (archive, config) = busybox_archive(&["busybox:latest"]);
    load(&t.store, &archive[..], &LoadOptions::default()).unwrap();
    let id = Digest::of(&config);
    let docker = save_to(&t, &["busybox:latest"], SaveFormat::Docker, "docker.tar");
    let oci = save_to(&t, &["busybox:latest"], SaveFormat::Oci, "oci.tar");

    // skopeo reads the docker-archive form and finds our config.
    let out = run(Command::new("skopeo").args([
        "inspect",
        "--config",
        &format!("docker-archive:{}", docker.display()),
    ]));
    let cfg: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(cfg["config"]["Cmd"], serde_json::json!(["sh"]));
    let raw = run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        &format!("docker-archive:{}", docker.display()),
    ]));
    let manifest: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(manifest["config"]["digest"], id.to_string());

    // ... and both forms as OCI archives (the ref name is the tag).
    for archive in [&docker, &oci] {
        let out = run(Command::new("skopeo").args([
            "inspect",
            "--config",
            &format!("oci-archive:{}:latest", archive.display()),
        ]));
        assert!(out.contains("\"sh\""), "{out}");
    }

    // umoci unpacks the OCI layout into a runtime bundle with our files.
    let layout = t.dir.path().join("layout");
    std::fs::create_dir(&layout).unwrap();
    run(Command::new("tar")
        .arg("-xf")
        .arg(&oci)
        .arg("-C")
        .arg(&layout));
    let ls = run(Command::new("umoci").args(["ls", "--layout"]).arg(&layout));
    assert_eq!(ls.trim(), "latest");
    let bundle = t.dir.path().join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:latest", layout.display()))
        .arg(&bundle));
    assert_eq!(
        std::fs::read_to_string(bundle.join("rootfs/etc/motd")).unwrap(),
        "hello from layer 2\n"
    );
    assert!(bundle.join("rootfs/bin/busybox").is_file());
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(spec["process"]["args"], serde_json::json!(["sh"]));
}

#[test]
fn archives_written_by_skopeo_load_into_berth() {
    if !have("skopeo") {
        eprintln!("skipped: skopeo is not installed (scripts/install-deps.sh)");
        return;
    }
    let t = store();
    let (archive, config) = busybox_archive(&["busybox:latest"]);
    let src = write_file(t.dir.path(), "src.tar", &archive);
    let id = Digest::of(&config);
    let sk_docker = t.dir.path().join("sk-docker.tar");
    let sk_oci = t.dir.path().join("sk-oci.tar");
    let sk_gzip = t.dir.path().join("sk-oci-gzip.tar");
    run(Command::new("skopeo").args([
        "copy",
        &format!("docker-archive:{}", src.display()),
        &format!("docker-archive:{}:skopeo/docker:v1", sk_docker.display()),
    ]));
    run(Command::new("skopeo").args([
        "copy",
        &format!("docker-archive:{}", src.display()),
        &format!("oci-archive:{}:skopeo/oci:v2", sk_oci.display()),
    ]));
    run(Command::new("skopeo").args([
        "copy",
        "--dest-compress-format",
        "zstd",
        "--dest-compress",
        &format!("docker-archive:{}", src.display()),
        &format!("oci-archive:{}:skopeo/zstd:v3", sk_gzip.display()),
    ]));
    let rep = load(
        &t.store,
        std::fs::File::open(&sk_docker).unwrap(),
        &LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(rep.messages(), vec!["Loaded image: skopeo/docker:v1"]);
    assert_eq!(rep.images[0].id, id);
    let rep = load(
        &t.store,
        std::fs::File::open(&sk_oci).unwrap(),
        &LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(rep.messages(), vec!["Loaded image: skopeo/oci:v2"]);
    // skopeo rewrites the config when converting to OCI; the image ID is its config digest.
    let raw = run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        &format!("oci-archive:{}", sk_oci.display()),
    ]));
    let manifest: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(manifest["config"]["digest"], rep.images[0].id.to_string());
    let img = t.store.image(&rep.images[0].id).unwrap().unwrap();
    assert_eq!(
        img.manifest,
        Digest::of(raw.as_bytes()),
        "the manifest bytes were kept"
    );
    let rep = load(
        &t.store,
        std::fs::File::open(&sk_gzip).unwrap(),
        &LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(rep.messages(), vec!["Loaded image: skopeo/zstd:v3"]);
    let img = t.store.image(&rep.images[0].id).unwrap().unwrap();
    assert_eq!(
        img.layers[0].media_type,
        berth_oci::media_types::OCI_LAYER_ZSTD
    );
    let f = t.store.fsck().unwrap();
    assert!(f.is_clean(), "{f:?}");
}
