//! Arbitrary bytes as a layer (plain, gzip or zstd: apply detects it) applied into a
//! directory: apply may fail, but it must never panic, and nothing outside the destination
//! may ever be created, changed or linked.
#![no_main]

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use berth_archive::{ApplyOptions, WhiteoutMode};
use libfuzzer_sys::fuzz_target;

const CANARY: &[u8] = b"canary";

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fuzz_target!(|data: &[u8]| {
    // tmp/a/b/dest is the destination; tmp/a/canary and tmp/a/outside/secret must survive.
    let tmp = tempfile::Builder::new()
        .prefix("berth-test-fuzz-")
        .tempdir()
        .unwrap();
    let a = tmp.path().join("a");
    let dest = a.join("b").join("dest");
    fs::create_dir_all(&dest).unwrap();
    fs::write(a.join("canary"), CANARY).unwrap();
    fs::create_dir(a.join("outside")).unwrap();
    fs::write(a.join("outside/secret"), CANARY).unwrap();
    let mode_of = |p: &Path| fs::symlink_metadata(p).unwrap().mode();
    let modes = [mode_of(&a.join("canary")), mode_of(&a.join("outside/secret"))];

    let opts = ApplyOptions {
        // The last byte picks the mode, so both are explored without shifting the tar.
        whiteouts: if data.last().is_some_and(|b| b & 1 == 1) {
            WhiteoutMode::Delete
        } else {
            WhiteoutMode::Overlay
        },
        max_total_size: 64 << 20,
        max_entries: 10_000,
        ..ApplyOptions::default()
    };
    let _ = berth_archive::apply_layer(data, &dest, &opts);

    assert_eq!(names(tmp.path()), ["a"]);
    assert_eq!(names(&a), ["b", "canary", "outside"]);
    assert_eq!(names(&a.join("b")), ["dest"]);
    assert_eq!(names(&a.join("outside")), ["secret"]);
    for (p, mode) in [a.join("canary"), a.join("outside/secret")].iter().zip(modes) {
        assert_eq!(fs::read(p).unwrap(), CANARY);
        let st = fs::symlink_metadata(p).unwrap();
        assert_eq!(st.nlink(), 1, "{} was hardlinked", p.display());
        assert_eq!(st.mode(), mode, "{} changed mode", p.display());
    }
    // Root removes anything; others need write and search rights on every directory.
    if st_uid_is_not_root() {
        make_removable(&dest);
    }
});

fn st_uid_is_not_root() -> bool {
    fs::metadata("/proc/self").map(|m| m.uid() != 0).unwrap_or(true)
}

fn make_removable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                make_removable(&e.path());
            }
        }
    }
}
