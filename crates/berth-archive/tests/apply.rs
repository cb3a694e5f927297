//! Applying honest layers: every entry type and attribute, whiteouts in both modes, diff IDs,
//! and GNU tar as the oracle for archives GNU tar writes (gnu, posix, sparse formats).

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use berth_archive::{ApplyOptions, Compression, WhiteoutMode, apply_layer};
use common::{MTIME, Sandbox, Spec, Tar, gzip, snapshot};

fn opts(mode: WhiteoutMode) -> ApplyOptions {
    ApplyOptions {
        whiteouts: mode,
        ..ApplyOptions::default()
    }
}

#[test]
fn diff_id_is_the_sha256_of_the_whole_uncompressed_stream() {
    let mut tar = Tar::new().file("a", b"hello").finish();
    // Extra zero blocks and junk after the end marker are part of the blob, hence of the
    // diff ID (Docker reads to EOF too).
    tar.extend_from_slice(&[0u8; 4096]);
    tar.extend_from_slice(b"trailing junk");
    let want = berth_oci::Digest::of(&tar);
    for input in [
        tar.clone(),
        gzip(&tar),
        zstd::encode_all(&tar[..], 3).unwrap(),
    ] {
        let sb = Sandbox::new();
        let kind = berth_archive::detect_compression(&input);
        let stats = apply_layer(&input[..], &sb.dest, &opts(WhiteoutMode::Overlay)).unwrap();
        assert_eq!(stats.diff_id, want, "{kind:?}");
        assert_eq!(stats.uncompressed_size, tar.len() as u64);
        assert_eq!(stats.entries, 1);
        assert_eq!(fs::read(sb.dest.join("a")).unwrap(), b"hello");
    }
    assert_eq!(
        berth_archive::detect_compression(&gzip(&tar)),
        Compression::Gzip
    );
}

#[test]
fn every_entry_type_and_attribute_is_applied() {
    if !common::is_root() {
        eprintln!("skipped: needs root for ownership and device nodes");
        return;
    }
    let sb = Sandbox::new();
    let mut t = Tar::new();
    let mut s = Spec::new(b"dir/", b'5');
    s.mode = 0o3775; // setgid + sticky
    s.uid = 1234;
    s.gid = 5678;
    s.mtime = 1_000_000_000;
    t.spec(s);
    let mut s = Spec::new(b"dir/suid", b'0');
    s.mode = 0o4755;
    s.uid = 1000;
    s.gid = 1000;
    s.data = b"#!/bin/sh\n";
    t.spec(s);
    t.pax(&[
        (b"SCHILY.xattr.user.note", b"hello\0world"),
        (
            b"SCHILY.xattr.security.capability",
            &[1, 0, 0, 2, 0, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        ),
        (b"SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
        (b"mtime", b"1600000000.25"),
    ]);
    t.file("dir/caps", b"binary");
    t.hardlink("dir/caps-link", "dir/caps");
    t.symlink("dir/abs-link", "/etc/passwd");
    let mut s = Spec::new(b"dir/rel-link", b'2');
    s.link = b"suid";
    s.uid = 42;
    s.mtime = 1_100_000_000;
    t.spec(s);
    t.fifo("dir/fifo");
    let mut s = Spec::new(b"dir/null", b'3');
    s.dev = (1, 3);
    s.mode = 0o666;
    t.spec(s);
    let mut s = Spec::new(b"dir/loop9", b'4');
    s.dev = (7, 9);
    s.mode = 0o660;
    t.spec(s);
    let long = format!("{}/long-file-name", "deep-directory-name".repeat(12));
    t.file(&long, b"long");
    // An implied parent (no directory entry for "implied/").
    t.file("implied/x", b"x");
    let stats = apply_layer(&t.finish()[..], &sb.dest, &opts(WhiteoutMode::Overlay)).unwrap();
    assert_eq!(stats.entries, 11);

    let d = &sb.dest;
    let st = fs::metadata(d.join("dir")).unwrap();
    assert_eq!(
        (st.mode() & 0o7777, st.uid(), st.gid()),
        (0o3775, 1234, 5678)
    );
    assert_eq!(
        st.mtime(),
        1_000_000_000,
        "directory mtime set after its content"
    );
    let st = fs::metadata(d.join("dir/suid")).unwrap();
    assert_eq!(
        (st.mode() & 0o7777, st.uid(), st.gid()),
        (0o4755, 1000, 1000)
    );
    assert_eq!(st.mtime(), MTIME as i64);
    let st = fs::metadata(d.join("dir/caps")).unwrap();
    assert_eq!((st.mtime(), st.mtime_nsec()), (1_600_000_000, 250_000_000));
    assert_eq!(st.nlink(), 2);
    assert_eq!(
        st.ino(),
        fs::metadata(d.join("dir/caps-link")).unwrap().ino()
    );
    let x = common::xattrs(&d.join("dir/caps"));
    let keys: Vec<&[u8]> = x.iter().map(|(k, _)| k.as_slice()).collect();
    assert_eq!(
        keys,
        vec![&b"security.capability"[..], b"user.note"],
        "overlay xattrs dropped"
    );
    assert_eq!(x[1].1, b"hello\0world");
    assert_eq!(
        fs::read_link(d.join("dir/abs-link")).unwrap(),
        Path::new("/etc/passwd")
    );
    let st = fs::symlink_metadata(d.join("dir/rel-link")).unwrap();
    assert_eq!((st.uid(), st.mtime()), (42, 1_100_000_000));
    assert!(
        fs::symlink_metadata(d.join("dir/fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    let st = fs::symlink_metadata(d.join("dir/null")).unwrap();
    assert!(st.file_type().is_char_device());
    assert_eq!(
        (st.rdev(), st.mode() & 0o7777),
        (rustix::fs::makedev(1, 3), 0o666)
    );
    let st = fs::symlink_metadata(d.join("dir/loop9")).unwrap();
    assert!(st.file_type().is_block_device());
    assert_eq!(st.rdev(), rustix::fs::makedev(7, 9));
    assert_eq!(fs::read(d.join(&long)).unwrap(), b"long");
    let st = fs::metadata(d.join("implied")).unwrap();
    assert_eq!(st.mode() & 0o777, 0o755);
}

#[test]
fn entries_replace_existing_entries_of_another_type() {
    let sb = Sandbox::new();
    let t = Tar::new()
        .dir("x/")
        .file("x/inner", b"1")
        .file("x", b"now a file") // a directory (with content) replaced by a file
        .file("y", b"file")
        .dir("y/") // a file replaced by a directory
        .symlink("z", "y")
        .file("z", b"not a link") // a symlink replaced by a file (not followed)
        .dir("w/")
        .file("w/keep", b"k")
        .dir("w/") // a directory meeting a directory merges
        .file("f", b"old")
        .hardlink("f2", "f")
        .file("f", b"new") // replacing f leaves f2 with the old content
        .finish();
    apply_layer(&t[..], &sb.dest, &opts(WhiteoutMode::Overlay)).unwrap();
    let d = &sb.dest;
    assert_eq!(fs::read(d.join("x")).unwrap(), b"now a file");
    assert!(fs::metadata(d.join("y")).unwrap().is_dir());
    assert_eq!(fs::read(d.join("z")).unwrap(), b"not a link");
    assert!(
        !fs::symlink_metadata(d.join("z"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(fs::read_dir(d.join("y")).unwrap().next().is_none());
    assert_eq!(fs::read(d.join("w/keep")).unwrap(), b"k");
    assert_eq!(fs::read(d.join("f")).unwrap(), b"new");
    assert_eq!(fs::read(d.join("f2")).unwrap(), b"old");
    sb.assert_outside_untouched();
}

#[test]
fn overlay_mode_writes_whiteout_devices_and_opaque_xattrs() {
    if !common::is_root() {
        eprintln!("skipped: trusted.* xattrs need root");
        return;
    }
    let sb = Sandbox::new();
    let t = Tar::new()
        .dir("etc/")
        .file("etc/.wh.passwd", b"")
        .dir("var/")
        .dir("var/cache/")
        .file("var/cache/.wh..wh..opq", b"")
        .file("var/cache/new", b"n")
        .file(".wh..wh..opq", b"") // the layer root itself opaque
        .dir(".wh..wh.plnk/") // aufs metadata: skipped
        .file(".wh..wh.plnk/123.456", b"aufs")
        .finish();
    let stats = apply_layer(&t[..], &sb.dest, &opts(WhiteoutMode::Overlay)).unwrap();
    assert_eq!(stats.entries, 9);
    let st = fs::symlink_metadata(sb.dest.join("etc/passwd")).unwrap();
    assert!(st.file_type().is_char_device());
    assert_eq!(st.rdev(), 0);
    assert!(!sb.dest.join("etc/.wh.passwd").exists());
    let opaque = |p: &Path| {
        common::xattrs(p)
            .into_iter()
            .any(|(k, v)| k == b"trusted.overlay.opaque" && v == b"y")
    };
    assert!(opaque(&sb.dest.join("var/cache")));
    assert!(!opaque(&sb.dest.join("var")));
    assert!(opaque(&sb.dest));
    assert_eq!(fs::read(sb.dest.join("var/cache/new")).unwrap(), b"n");
    assert!(!sb.dest.join(".wh..wh.plnk").exists());
}

#[test]
fn delete_mode_removes_lower_content_but_keeps_this_layers() {
    let sb = Sandbox::new();
    // Lower content, as if earlier layers were applied here.
    let lower = Tar::new()
        .dir("etc/")
        .file("etc/passwd", b"root")
        .file("etc/group", b"root")
        .dir("cache/")
        .file("cache/a", b"a")
        .dir("cache/sub/")
        .file("cache/sub/b", b"b")
        .dir("gone/")
        .file("gone/x", b"x")
        .file("shared", b"shared")
        .finish();
    apply_layer(&lower[..], &sb.dest, &opts(WhiteoutMode::Delete)).unwrap();
    let upper = Tar::new()
        .file("etc/.wh.passwd", b"")
        .file(".wh.gone", b"")
        .dir("cache/")
        .file("cache/kept-from-this-layer", b"k") // before the marker: must survive it
        .file("cache/.wh..wh..opq", b"")
        .file("cache/after", b"after")
        .hardlink("link-to-lower", "shared") // a hardlink to lower content
        .file("nothing/.wh.here", b"") // whiteout in a missing dir: nothing to do
        .finish();
    apply_layer(&upper[..], &sb.dest, &opts(WhiteoutMode::Delete)).unwrap();
    let d = &sb.dest;
    assert!(!d.join("etc/passwd").exists());
    assert!(!d.join("etc/.wh.passwd").exists());
    assert_eq!(fs::read(d.join("etc/group")).unwrap(), b"root");
    assert!(!d.join("gone").exists());
    assert_eq!(
        common::names(&d.join("cache")),
        vec!["after", "kept-from-this-layer"]
    );
    assert_eq!(
        fs::metadata(d.join("link-to-lower")).unwrap().ino(),
        fs::metadata(d.join("shared")).unwrap().ino()
    );
    assert!(!d.join("nothing").exists());
    sb.assert_outside_untouched();
}

#[test]
fn unprivileged_style_modes_still_allow_filling_directories() {
    // A read-only directory (0555) with content: created writable, fixed at the end.
    let sb = Sandbox::new();
    let mut t = Tar::new();
    let mut s = Spec::new(b"ro/", b'5');
    s.mode = 0o555;
    t.spec(s);
    t.file("ro/inside", b"x");
    apply_layer(&t.finish()[..], &sb.dest, &opts(WhiteoutMode::Overlay)).unwrap();
    assert_eq!(
        fs::metadata(sb.dest.join("ro"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o555
    );
    assert_eq!(fs::read(sb.dest.join("ro/inside")).unwrap(), b"x");
    fs::set_permissions(sb.dest.join("ro"), fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn sync_option_works_and_dest_must_exist() {
    let sb = Sandbox::new();
    let t = Tar::new().file("a", b"a").finish();
    let o = ApplyOptions {
        sync: true,
        ..opts(WhiteoutMode::Overlay)
    };
    apply_layer(&t[..], &sb.dest, &o).unwrap();
    let err = apply_layer(&t[..], &sb.dest.join("missing"), &o).unwrap_err();
    assert!(
        err.to_string()
            .contains("opening the destination directory"),
        "{err}"
    );
    assert_eq!(
        berth_oci::errdefs::Classify::kind(&err),
        berth_oci::errdefs::ErrorKind::NotFound
    );
}

// ---------------------------------------------------------------- GNU tar as the oracle

fn gnu_tar(args: &[&str], dir: &Path) {
    let out = Command::new("tar")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tar {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A tree with most of what GNU tar can archive: long names, hardlinks, symlinks, sparse
/// files, odd modes, xattrs, owners, fifos.
fn oracle_tree(root: &Path) {
    use std::os::unix::fs::symlink;
    fs::create_dir_all(root.join("a/b/c")).unwrap();
    fs::write(root.join("a/file"), b"content").unwrap();
    fs::write(root.join("a/b/c/empty"), b"").unwrap();
    fs::write(root.join("block-aligned"), vec![3u8; 4096]).unwrap();
    let long_dir = root.join("x".repeat(90)).join("y".repeat(90));
    fs::create_dir_all(&long_dir).unwrap();
    fs::write(long_dir.join("z".repeat(120)), b"long").unwrap();
    fs::hard_link(root.join("a/file"), root.join("a/b/hard")).unwrap();
    symlink("../file", root.join("a/b/rel")).unwrap();
    symlink("/nonexistent/abs", root.join("abs")).unwrap();
    symlink("t".repeat(150), root.join("long-target")).unwrap();
    fs::set_permissions(root.join("a/file"), fs::Permissions::from_mode(0o4711)).unwrap();
    fs::set_permissions(root.join("a/b"), fs::Permissions::from_mode(0o1777)).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        root.join("fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o640),
        0,
    )
    .unwrap();
    // Sparse: holes at the start, middle and end.
    let f = fs::File::create(root.join("sparse")).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(b"data in the middle", 1 << 20).unwrap();
    f.write_all_at(&vec![9u8; 10000], 5 << 20).unwrap();
    f.set_len(9 << 20).unwrap();
    let f = fs::File::create(root.join("all-hole")).unwrap();
    f.set_len(3 << 20).unwrap();
    rustix::fs::setxattr(
        root.join("a/file"),
        "user.berth",
        b"v1",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    if common::is_root() {
        std::os::unix::fs::chown(root.join("a/b/c"), Some(4321), Some(8765)).unwrap();
        std::os::unix::fs::lchown(root.join("abs"), Some(11), Some(12)).unwrap();
    }
    // Fixed times, directories last (creating entries changes them).
    for p in [
        "a/file",
        "sparse",
        "all-hole",
        "block-aligned",
        "a/b/c/empty",
        "fifo",
    ] {
        set_mtime(&root.join(p), 1_500_000_000);
    }
    for p in ["a/b/c", "a/b", "a", ""] {
        set_mtime(&root.join(p), 1_400_000_000);
    }
}

fn set_mtime(p: &Path, secs: i64) {
    let t = rustix::fs::Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        p,
        &rustix::fs::Timestamps {
            last_access: t,
            last_modification: t,
        },
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

#[test]
fn archives_written_by_gnu_tar_apply_like_gnu_tar_extracts_them() {
    let work = tempfile::Builder::new()
        .prefix("berth-test-archive-gnu-")
        .tempdir()
        .unwrap();
    let src = work.path().join("src");
    fs::create_dir(&src).unwrap();
    oracle_tree(&src);
    let formats: &[(&str, &[&str])] = &[
        ("gnu", &["--format=gnu"]),
        ("gnu-sparse", &["--format=gnu", "--sparse"]),
        ("posix", &["--format=posix"]),
        (
            "posix-sparse-0.0",
            &["--format=posix", "--sparse", "--sparse-version=0.0"],
        ),
        (
            "posix-sparse-0.1",
            &["--format=posix", "--sparse", "--sparse-version=0.1"],
        ),
        (
            "posix-sparse-1.0",
            &["--format=posix", "--sparse", "--sparse-version=1.0"],
        ),
    ];
    for (label, fmt) in formats {
        let tar_path = work.path().join(format!("{label}.tar"));
        let posix = label.starts_with("posix");
        // GNU tar stores xattrs only in POSIX archives.
        let mut args = if posix {
            vec!["--xattrs", "--xattrs-include=user.*"]
        } else {
            vec![]
        };
        args.extend(["--numeric-owner", "-cf"]);
        args.push(tar_path.to_str().unwrap());
        args.extend_from_slice(fmt);
        args.push(".");
        gnu_tar(&args, &src);

        let by_gnu = work.path().join(format!("{label}-gnu"));
        fs::create_dir(&by_gnu).unwrap();
        gnu_tar(
            &[
                "--xattrs",
                "--xattrs-include=*",
                "--numeric-owner",
                "--same-permissions",
                "--same-owner",
                "-xf",
                tar_path.to_str().unwrap(),
            ],
            &by_gnu,
        );
        let by_us = work.path().join(format!("{label}-ours"));
        fs::create_dir(&by_us).unwrap();
        let f = fs::File::open(&tar_path).unwrap();
        apply_layer(f, &by_us, &opts(WhiteoutMode::Delete)).unwrap();

        let ours = snapshot(&by_us);
        let theirs = snapshot(&by_gnu);
        assert_eq!(
            ours.keys().collect::<Vec<_>>(),
            theirs.keys().collect::<Vec<_>>(),
            "{label}"
        );
        for (k, v) in &theirs {
            assert_eq!(&ours[k], v, "{label}: {}", String::from_utf8_lossy(k));
        }
        if posix {
            assert_eq!(
                ours,
                snapshot(&src),
                "{label}: differs from the source tree"
            );
        }
        if label.contains("sparse") {
            // Holes stay holes: the 9 MiB file with 10 KiB of data uses little disk.
            let blocks = fs::metadata(by_us.join("sparse")).unwrap().blocks();
            assert!(
                blocks * 512 < 1 << 20,
                "{label}: sparse file not sparse ({blocks} blocks)"
            );
            assert_eq!(fs::metadata(by_us.join("all-hole")).unwrap().len(), 3 << 20);
        }
    }
}

/// The applier skips `chown` for new entries that already have the header's owner; entries
/// whose group would come from a setgid directory, existing directories, and destinations
/// that are not empty must still get exactly the header's owner.
#[test]
fn owners_are_exact_when_chown_is_skipped() {
    use std::os::unix::fs::chown;
    if !common::is_root() {
        eprintln!("skipped: needs root for ownership");
        return;
    }
    let owner = |p: &Path| {
        let st = fs::symlink_metadata(p).unwrap();
        (st.uid(), st.gid())
    };
    // A setgid directory of the layer: entries created below it take its group unless
    // chowned, so root-owned (0:0) children must be chowned back to group 0.
    let sb = Sandbox::new();
    let mut t = Tar::new();
    t.file("first", b"before any setgid directory");
    let mut s = Spec::new(b"sg/", b'5');
    s.mode = 0o2775;
    s.uid = 1234;
    s.gid = 5678;
    t.spec(s);
    t.file("sg/file", b"x");
    t.symlink("sg/link", "file");
    t.fifo("sg/fifo");
    t.dir("sg/sub");
    t.file("sg/sub/deep", b"y");
    t.file("later", b"after the setgid directory");
    // A directory met twice: the second header's owner wins.
    let mut s = Spec::new(b"twice/", b'5');
    s.uid = 1000;
    s.gid = 1000;
    t.spec(s);
    t.dir("twice");
    apply_layer(&t.finish()[..], &sb.dest, &opts(WhiteoutMode::Overlay)).unwrap();
    let d = &sb.dest;
    assert_eq!(owner(&d.join("sg")), (1234, 5678));
    for p in [
        "first",
        "sg/file",
        "sg/link",
        "sg/fifo",
        "sg/sub",
        "sg/sub/deep",
        "later",
        "twice",
    ] {
        assert_eq!(owner(&d.join(p)), (0, 0), "{p}");
    }
    assert_eq!(
        fs::metadata(d.join("sg/sub")).unwrap().mode() & 0o7777,
        0o755,
        "the header's mode, not the inherited setgid bit"
    );

    // A destination that is setgid itself, or already holds a setgid directory (applying
    // onto an existing root filesystem): every entry is chowned.
    for pre_existing in [false, true] {
        let sb = Sandbox::new();
        let dir = if pre_existing {
            let p = sb.dest.join("pre");
            fs::create_dir(&p).unwrap();
            p
        } else {
            sb.dest.clone()
        };
        chown(&dir, Some(0), Some(4321)).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o2775)).unwrap();
        let tar = Tar::new()
            .file("pre/a", b"a")
            .symlink("pre/l", "a")
            .dir("pre/d")
            .finish();
        apply_layer(&tar[..], &sb.dest, &opts(WhiteoutMode::Delete)).unwrap();
        for p in ["pre/a", "pre/l", "pre/d"] {
            assert_eq!(
                owner(&sb.dest.join(p)),
                (0, 0),
                "{p} (pre-existing {pre_existing})"
            );
        }
    }
}
