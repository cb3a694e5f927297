//! The whole layer cycle on a real overlayfs mount: unpack a layer, change files through the
//! merged view, turn the upper dir into a layer (write_diff), list the changes, and check
//! that the new layer reproduces the merged view both as an overlay lower and flattened.

mod common;

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use berth_archive::{
    ApplyOptions, Change, ChangeKind, DiffOptions, WhiteoutMode, apply_layer, changes,
    changes_with_lowers, write_diff,
};
use common::{Spec, Tar, snapshot};

/// An overlay mount, detached on drop even if the test fails.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::DETACH);
    }
}

fn mount_overlay(lowers: &[&Path], upper: Option<(&Path, &Path)>, at: &Path) -> Mount {
    let lower = lowers
        .iter()
        .map(|p| p.to_str().unwrap())
        .collect::<Vec<_>>()
        .join(":");
    let mut data = format!("lowerdir={lower}");
    if let Some((u, w)) = upper {
        data += &format!(",upperdir={},workdir={}", u.display(), w.display());
    }
    let data = std::ffi::CString::new(data).unwrap();
    rustix::mount::mount(
        "overlay",
        at,
        "overlay",
        rustix::mount::MountFlags::empty(),
        Some(data.as_c_str()),
    )
    .unwrap();
    Mount(at.to_path_buf())
}

fn base_layer() -> Vec<u8> {
    let mut t = Tar::new();
    t.dir("etc/")
        .file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n")
        .file("etc/group", b"root:x:0:\n")
        .dir("var/")
        .dir("var/cache/")
        .file("var/cache/a", b"a")
        .file("var/cache/b", b"b")
        .dir("usr/")
        .dir("usr/bin/");
    let mut s = Spec::new(b"usr/bin/tool", b'0');
    s.mode = 0o755;
    s.data = b"\x7fELF";
    t.spec(s);
    t.dir("gone-dir/")
        .file("gone-dir/x", b"x")
        .dir("keep-dir/")
        .file("keep-dir/y", b"y")
        .symlink("link", "etc/passwd")
        .file("hl1", b"shared")
        .hardlink("hl2", "hl1");
    t.finish()
}

#[test]
fn upper_dir_diff_reproduces_the_merged_view() {
    if !common::is_root() {
        eprintln!("skipped: mounting overlayfs needs root");
        return;
    }
    let work = tempfile::Builder::new()
        .prefix("berth-test-archive-ovl-")
        .tempdir()
        .unwrap();
    let dir = |name: &str| {
        let p = work.path().join(name);
        fs::create_dir(&p).unwrap();
        p
    };
    let (l1, upper, wd, merged) = (dir("l1"), dir("upper"), dir("work"), dir("merged"));
    let overlay = ApplyOptions {
        whiteouts: WhiteoutMode::Overlay,
        ..ApplyOptions::default()
    };
    apply_layer(&base_layer()[..], &l1, &overlay).unwrap();

    let expected = {
        let _m = mount_overlay(&[&l1], Some((&upper, &wd)), &merged);
        let m = &merged;
        fs::write(m.join("etc/passwd"), b"root:x:0:0::/root:/bin/bash\n").unwrap();
        fs::remove_file(m.join("etc/group")).unwrap();
        fs::remove_dir_all(m.join("gone-dir")).unwrap();
        fs::remove_dir_all(m.join("var/cache")).unwrap();
        fs::create_dir(m.join("var/cache")).unwrap();
        fs::write(m.join("var/cache/fresh"), b"fresh").unwrap();
        fs::set_permissions(m.join("usr/bin/tool"), fs::Permissions::from_mode(0o4755)).unwrap();
        fs::create_dir_all(m.join("new/dir")).unwrap();
        fs::write(m.join("new/dir/file"), b"new").unwrap();
        rustix::fs::setxattr(
            m.join("new/dir/file"),
            "user.x",
            b"1",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        fs::write(m.join("new/h1"), b"h").unwrap();
        fs::hard_link(m.join("new/h1"), m.join("new/h2")).unwrap();
        symlink("/etc", m.join("newlink")).unwrap();
        snapshot(m)
    };

    // docker diff
    let got = changes_with_lowers(&upper, std::slice::from_ref(&l1)).unwrap();
    let want: Vec<Change> = [
        ("/etc", ChangeKind::Modified),
        ("/etc/group", ChangeKind::Deleted),
        ("/etc/passwd", ChangeKind::Modified),
        ("/gone-dir", ChangeKind::Deleted),
        ("/new", ChangeKind::Added),
        ("/new/dir", ChangeKind::Added),
        ("/new/dir/file", ChangeKind::Added),
        ("/new/h1", ChangeKind::Added),
        ("/new/h2", ChangeKind::Added),
        ("/newlink", ChangeKind::Added),
        ("/usr", ChangeKind::Modified),
        ("/usr/bin", ChangeKind::Modified),
        ("/usr/bin/tool", ChangeKind::Modified),
        ("/var", ChangeKind::Modified),
        ("/var/cache", ChangeKind::Modified),
        ("/var/cache/fresh", ChangeKind::Added),
    ]
    .into_iter()
    .map(|(p, kind)| Change {
        path: p.into(),
        kind,
    })
    .collect();
    assert_eq!(got, want);
    assert_eq!(got[1].to_string(), "D /etc/group");
    // Without the lowers, only deletions can be told apart.
    let blind = changes(&upper).unwrap();
    assert_eq!(blind.len(), want.len());
    assert!(blind.iter().all(|c| c.kind != ChangeKind::Modified));

    // The layer tar.
    let mut diff = Vec::new();
    let stats = write_diff(&upper, &mut diff, &DiffOptions::default()).unwrap();
    assert_eq!(stats.diff_id, berth_oci::Digest::of(&diff));
    let names = tar_names(&diff);
    for n in [
        "etc/.wh.group",
        ".wh.gone-dir",
        "var/cache/",
        "var/cache/.wh..wh..opq",
        "new/h2",
    ] {
        assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
    }
    let opq = names
        .iter()
        .position(|n| n == "var/cache/.wh..wh..opq")
        .unwrap();
    assert_eq!(
        names[opq - 1],
        "var/cache/",
        "opaque marker right after its directory"
    );

    // As a new overlay lower on top of the base: the same view.
    let l2 = dir("l2");
    apply_layer(&diff[..], &l2, &overlay).unwrap();
    let merged2 = dir("merged2");
    {
        let _m = mount_overlay(&[&l2, &l1], None, &merged2);
        assert_same(&snapshot(&merged2), &expected);
    }

    // Flattened: base then diff into one plain directory.
    let flat = dir("flat");
    let delete = ApplyOptions {
        whiteouts: WhiteoutMode::Delete,
        ..ApplyOptions::default()
    };
    apply_layer(&base_layer()[..], &flat, &delete).unwrap();
    apply_layer(&diff[..], &flat, &delete).unwrap();
    assert_same(&snapshot(&flat), &expected);

    // Reproducible: the same upper dir gives the same bytes.
    let mut again = Vec::new();
    write_diff(&upper, &mut again, &DiffOptions::default()).unwrap();
    assert!(again == diff);
}

fn assert_same(
    got: &std::collections::BTreeMap<Vec<u8>, common::Meta>,
    want: &std::collections::BTreeMap<Vec<u8>, common::Meta>,
) {
    assert_eq!(
        got.keys()
            .map(|k| String::from_utf8_lossy(k))
            .collect::<Vec<_>>(),
        want.keys()
            .map(|k| String::from_utf8_lossy(k))
            .collect::<Vec<_>>()
    );
    for (k, v) in want {
        assert_eq!(&got[k], v, "{}", String::from_utf8_lossy(k));
    }
}

/// Member names of a tar, PAX-aware enough for our own output (short names).
fn tar_names(tar: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    let mut off = 0;
    while off + 512 <= tar.len() {
        let h = &tar[off..off + 512];
        if h.iter().all(|&b| b == 0) {
            break;
        }
        let name = String::from_utf8_lossy(&h[..100])
            .trim_end_matches('\0')
            .to_string();
        let size = u64::from_str_radix(
            String::from_utf8_lossy(&h[124..135]).trim_matches(['\0', ' ']),
            8,
        )
        .unwrap();
        if h[156] != b'x' {
            names.push(name);
        }
        off += 512 + (size as usize).div_ceil(512) * 512;
    }
    names
}
