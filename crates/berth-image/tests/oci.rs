//! OCI archives written here by hand: names from annotations, multi-platform indexes, deep
//! images, and every kind of bad input (digest and size mismatches, missing blobs, unknown
//! media types, bad JSON) failing precisely with nothing left behind.

mod common;

use berth_image::{LoadOptions, load};
use berth_oci::media_types as mt;
use berth_oci::{Digest, Platform};
use common::*;
use serde_json::json;

struct Blob {
    digest: Digest,
    data: Vec<u8>,
}

fn blob(data: Vec<u8>) -> Blob {
    Blob {
        digest: Digest::of(&data),
        data,
    }
}

fn desc(media_type: &str, b: &Blob) -> serde_json::Value {
    json!({"mediaType": media_type, "digest": b.digest, "size": b.data.len()})
}

/// An image: layers (uncompressed tars), config and manifest blobs.
fn image(layers: &[Vec<u8>], cmd: &str) -> (Vec<Blob>, Blob) {
    let diff_ids: Vec<Digest> = layers.iter().map(|l| Digest::of(l)).collect();
    let config = blob(config_json(&diff_ids, json!({"Cmd": [cmd]})));
    let layer_blobs: Vec<Blob> = layers.iter().map(|l| blob(gzip(l))).collect();
    let manifest = blob(
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": mt::OCI_MANIFEST,
            "config": desc(mt::OCI_CONFIG, &config),
            "layers": layer_blobs.iter().map(|b| desc(mt::OCI_LAYER_GZIP, b)).collect::<Vec<_>>(),
        }))
        .unwrap(),
    );
    let mut all = layer_blobs;
    all.push(config);
    (all, manifest)
}

fn oci_archive(blobs: &[&Blob], index: serde_json::Value) -> Vec<u8> {
    let mut t = TarWriter::new();
    t.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    t.file("index.json", &serde_json::to_vec(&index).unwrap());
    t.dir("blobs/").dir("blobs/sha256/");
    for b in blobs {
        t.file(&format!("blobs/sha256/{}", b.digest.hex()), &b.data);
    }
    t.finish()
}

fn small_layer(name: &str) -> Vec<u8> {
    let mut t = TarWriter::new();
    t.file(name, name.as_bytes());
    t.finish()
}

#[test]
fn names_come_from_annotations_and_indexes_resolve_to_the_host_platform() {
    let t = store();
    let (blobs, manifest) = image(&[busybox_layer()], "sh");
    let (other_blobs, other_manifest) = image(&[small_layer("foreign")], "foreign");
    let host = Platform::host();
    let foreign = if host.architecture == "amd64" {
        "arm64"
    } else {
        "amd64"
    };
    let nested = blob(
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": mt::OCI_INDEX,
            "manifests": [
                {"mediaType": mt::OCI_MANIFEST, "digest": other_manifest.digest, "size": other_manifest.data.len(),
                 "platform": {"os": "linux", "architecture": foreign}},
                {"mediaType": mt::OCI_MANIFEST, "digest": manifest.digest, "size": manifest.data.len(),
                 "platform": {"os": "linux", "architecture": host.architecture}},
            ],
        }))
        .unwrap(),
    );
    let mut all: Vec<&Blob> = blobs.iter().chain(other_blobs.iter()).collect();
    all.extend([&manifest, &other_manifest, &nested]);
    let index = json!({
        "schemaVersion": 2,
        "manifests": [
            {"mediaType": mt::OCI_INDEX, "digest": nested.digest, "size": nested.data.len(),
             "annotations": {"io.containerd.image.name": "example.com/multi:1"}},
            {"mediaType": mt::OCI_MANIFEST, "digest": manifest.digest, "size": manifest.data.len(),
             "annotations": {"org.opencontainers.image.ref.name": "latest"}},
            {"mediaType": mt::OCI_MANIFEST, "digest": manifest.digest, "size": manifest.data.len(),
             "annotations": {"org.opencontainers.image.ref.name": "localhost:5000/ref:2"}},
        ],
    });
    let rep = load(
        &t.store,
        &oci_archive(&all, index)[..],
        &LoadOptions::default(),
    )
    .unwrap();
    let id = Digest::of(&blobs.last().unwrap().data);
    assert_eq!(
        rep.messages(),
        vec![
            "Loaded image: example.com/multi:1".to_string(),
            format!("Loaded image ID: {id}"),
            "Loaded image: localhost:5000/ref:2".to_string(),
        ]
    );
    assert!(
        rep.images.iter().all(|i| i.id == id),
        "the host's manifest was picked"
    );
    let img = t.store.image(&id).unwrap().unwrap();
    assert_eq!(img.manifest, manifest.digest);
    assert_eq!(img.layers[0].media_type, mt::OCI_LAYER_GZIP);
    assert!(t.store.fsck().unwrap().is_clean());
}

#[test]
fn deep_images_load_and_mount() {
    let t = store();
    let mut layers = vec![busybox_layer()];
    for i in 1..120 {
        layers.push(small_layer(&format!("layer-{i:03}")));
    }
    let (blobs, manifest) = image(&layers, "sh");
    let mut all: Vec<&Blob> = blobs.iter().collect();
    all.push(&manifest);
    let index = json!({"schemaVersion": 2, "manifests": [
        {"mediaType": mt::OCI_MANIFEST, "digest": manifest.digest, "size": manifest.data.len(),
         "annotations": {"io.containerd.image.name": "deep:120"}}]});
    let rep = load(
        &t.store,
        &oci_archive(&all, index)[..],
        &LoadOptions::default(),
    )
    .unwrap();
    let id = rep.images[0].id.clone();
    let ov = t
        .store
        .prepare_container("berth-test-deep-load", &id)
        .unwrap();
    assert_eq!(
        ov.lowerdirs.len(),
        121,
        "120 layers and the image's init layer"
    );
    if is_root() {
        let scratch = t.store.temp_dir("berth-test-mnt").unwrap();
        let seen = ov
            .with_mounted(&scratch, |root| {
                (
                    root.join("layer-001").is_file(),
                    root.join("layer-119").is_file(),
                    root.join("bin/busybox").is_file(),
                )
            })
            .unwrap();
        assert_eq!(seen, (true, true, true));
    } else {
        eprintln!("skipped (mount part): needs root");
    }
    t.store.remove_container("berth-test-deep-load").unwrap();
}

fn assert_fails_cleanly(t: &TestStore, archive: &[u8], needle: &str) {
    let err = load(&t.store, archive, &LoadOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains(needle),
        "expected {needle:?} in: {err}"
    );
    assert!(t.store.images().unwrap().is_empty());
    let rep = t.store.fsck().unwrap();
    assert!(rep.is_clean() && rep.garbage.is_empty(), "{rep:?}");
}

#[test]
fn bad_oci_archives_fail_precisely_and_leave_nothing() {
    let t = store();
    let (blobs, manifest) = image(&[small_layer("a"), small_layer("b")], "sh");
    let entry = |m: &Blob| {
        json!({"schemaVersion": 2, "manifests": [{"mediaType": mt::OCI_MANIFEST, "digest": m.digest,
               "size": m.data.len(), "annotations": {"io.containerd.image.name": "bad:1"}}]})
    };
    fn with<'a>(blobs: &'a [Blob], extra: &[&'a Blob]) -> Vec<&'a Blob> {
        let mut v: Vec<&Blob> = blobs.iter().collect();
        v.extend_from_slice(extra);
        v
    }

    // Missing layer blob.
    let mut missing: Vec<&Blob> = with(&blobs, &[&manifest]);
    missing.remove(0);
    assert_fails_cleanly(
        &t,
        &oci_archive(&missing, entry(&manifest)),
        &format!(
            "blobs/sha256/{}\" is referenced by manifest {}",
            blobs[0].digest.hex(),
            manifest.digest
        ),
    );
    // A blob whose content does not match its name.
    let mut t2 = TarWriter::new();
    t2.file(
        &format!("blobs/sha256/{}", blobs[0].digest.hex()),
        b"tampered",
    );
    assert_fails_cleanly(&t, &t2.finish(), "not the digest its name says");
    // Size mismatch in a descriptor.
    let mut idx = entry(&manifest);
    idx["manifests"][0]["size"] = json!(manifest.data.len() + 1);
    assert_fails_cleanly(
        &t,
        &oci_archive(&with(&blobs, &[&manifest]), idx),
        "but index.json says",
    );
    // Unknown media types: of a layer, and of an index entry.
    let odd = blob(
        String::from_utf8(manifest.data.clone())
            .unwrap()
            .replacen(
                mt::OCI_LAYER_GZIP,
                "application/vnd.example.layer.v1.tar+lz4",
                1,
            )
            .into_bytes(),
    );
    assert_fails_cleanly(
        &t,
        &oci_archive(&with(&blobs, &[&odd]), entry(&odd)),
        "unsupported media type \"application/vnd.example.layer.v1.tar+lz4\"",
    );
    let mut idx = entry(&manifest);
    idx["manifests"][0]["mediaType"] = json!("application/vnd.example.thing");
    assert_fails_cleanly(
        &t,
        &oci_archive(&with(&blobs, &[&manifest]), idx),
        "unsupported media type",
    );
    // Bad JSON in a manifest, naming the field.
    let bad = blob(br#"{"schemaVersion": 2, "config": {"mediaType": 1}, "layers": []}"#.to_vec());
    assert_fails_cleanly(
        &t,
        &oci_archive(&with(&blobs, &[&bad]), entry(&bad)),
        "config.mediaType",
    );
    // An image for another platform only.
    let other = if Platform::host().architecture == "amd64" {
        "arm64"
    } else {
        "amd64"
    };
    let list = blob(
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [
            {"mediaType": mt::OCI_MANIFEST, "digest": manifest.digest, "size": manifest.data.len(),
             "platform": {"os": "linux", "architecture": other}}]}))
        .unwrap(),
    );
    let idx = json!({"schemaVersion": 2, "manifests": [
        {"mediaType": mt::OCI_INDEX, "digest": list.digest, "size": list.data.len()}]});
    assert_fails_cleanly(
        &t,
        &oci_archive(&with(&blobs, &[&manifest, &list]), idx),
        "no manifest for platform",
    );
    // A wrong oci-layout version.
    let mut t3 = TarWriter::new();
    t3.file("oci-layout", br#"{"imageLayoutVersion":"2.0.0"}"#)
        .file("index.json", br#"{"schemaVersion":2,"manifests":[]}"#);
    assert_fails_cleanly(&t, &t3.finish(), "unsupported imageLayoutVersion");
}
