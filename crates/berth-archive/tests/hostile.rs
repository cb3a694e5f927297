//! Hostile layers: every trick gets its precise error, and nothing outside the destination
//! is created, changed or linked (the sandbox's canaries prove it after each case).

mod common;

use std::fs;
use std::os::unix::fs::symlink;

use berth_archive::{ApplyOptions, EntryError, Error, WhiteoutMode};
use common::{Sandbox, Spec, Tar, gzip};

fn entry_error(res: berth_archive::Result<berth_archive::ApplyStats>) -> (String, EntryError) {
    match res {
        Err(Error::Entry { entry, reason }) => (entry, reason),
        other => panic!("expected an entry error, got {other:?}"),
    }
}

fn both_modes(f: impl Fn(WhiteoutMode)) {
    f(WhiteoutMode::Overlay);
    f(WhiteoutMode::Delete);
}

#[test]
fn dotdot_escaping_the_root_is_refused() {
    both_modes(|mode| {
        for name in [
            "../canary",
            "a/../../canary",
            "./../../../../../../tmp/x",
            "/../canary",
        ] {
            let sb = Sandbox::new();
            let tar = Tar::new().file(name, b"pwned").finish();
            let (entry, reason) = entry_error(sb.apply(&tar, mode));
            assert_eq!(entry, name);
            assert_eq!(reason, EntryError::EscapesRoot);
            sb.assert_outside_untouched();
            assert!(common::names(&sb.dest).is_empty());
        }
    });
}

#[test]
fn dotdot_inside_the_root_is_resolved_lexically() {
    let sb = Sandbox::new();
    let tar = Tar::new().dir("a/").file("a/../b", b"ok").finish();
    sb.apply(&tar, WhiteoutMode::Overlay).unwrap();
    assert_eq!(fs::read(sb.dest.join("b")).unwrap(), b"ok");
    sb.assert_outside_untouched();
}

#[test]
fn absolute_names_are_made_relative() {
    let sb = Sandbox::new();
    let unique = format!("berth-test-abs-{}", std::process::id());
    let name = format!("/tmp/{unique}/x");
    let tar = Tar::new().file(&name, b"inside").finish();
    sb.apply(&tar, WhiteoutMode::Overlay).unwrap();
    assert_eq!(
        fs::read(sb.dest.join("tmp").join(&unique).join("x")).unwrap(),
        b"inside"
    );
    assert!(!std::path::Path::new("/tmp").join(&unique).exists());
    sb.assert_outside_untouched();
}

#[test]
fn long_names_with_dotdot_are_refused_too() {
    let sb = Sandbox::new();
    let long = format!("{}{}canary", "d/".repeat(60), "../".repeat(61));
    let tar = Tar::new().file(&long, b"x").finish();
    let (_, reason) = entry_error(sb.apply(&tar, WhiteoutMode::Overlay));
    assert_eq!(reason, EntryError::EscapesRoot);

    // The same trick through a GNU long name.
    let sb = Sandbox::new();
    let mut t = Tar::new();
    t.gnu_long_name(format!("{}../../../canary", "x/../".repeat(30)).as_bytes());
    t.spec(Spec::new(b"././@LongLink-placeholder", b'0'));
    let (_, reason) = entry_error(sb.apply(&t.finish(), WhiteoutMode::Overlay));
    assert_eq!(reason, EntryError::EscapesRoot);
    sb.assert_outside_untouched();
}

#[test]
fn nul_in_a_pax_name_is_refused() {
    let sb = Sandbox::new();
    let mut t = Tar::new();
    t.pax(&[(b"path", b"ok\0/../../../canary")]);
    t.file("placeholder", b"x");
    let (_, reason) = entry_error(sb.apply(&t.finish(), WhiteoutMode::Overlay));
    assert_eq!(reason, EntryError::NulInName);
    sb.assert_outside_untouched();
}

#[test]
fn symlink_targets_climbing_out_are_refused() {
    both_modes(|mode| {
        let sb = Sandbox::new();
        let tar = Tar::new().dir("d/").symlink("d/up", "../../..").finish();
        let (entry, reason) = entry_error(sb.apply(&tar, mode));
        assert_eq!(entry, "d/up");
        assert_eq!(
            reason,
            EntryError::SymlinkTargetEscapes {
                target: "../../..".into()
            }
        );
        assert!(fs::symlink_metadata(sb.dest.join("d/up")).is_err());
        sb.assert_outside_untouched();
    });
}

#[test]
fn entries_below_an_absolute_symlink_are_refused() {
    both_modes(|mode| {
        let sb = Sandbox::new();
        let outside = sb.outside.to_str().unwrap().to_string();
        // An absolute symlink is fine in itself (containers resolve it in their root) ...
        let tar = Tar::new()
            .symlink("evil", &outside)
            .file("evil/secret", b"pwned")
            .finish();
        // ... but writing through it would leave the root.
        let (entry, reason) = entry_error(sb.apply(&tar, mode));
        assert_eq!(entry, "evil/secret");
        assert_eq!(reason, EntryError::SymlinkEscape);
        assert_eq!(
            fs::read_link(sb.dest.join("evil")).unwrap().to_str(),
            Some(&*outside)
        );
        sb.assert_outside_untouched();
    });
}

#[test]
fn symlink_chains_and_dangling_links_cannot_lead_out() {
    let sb = Sandbox::new();
    let outside = sb.outside.to_str().unwrap().to_string();
    let tar = Tar::new()
        .symlink("a", "b")
        .symlink("b", "c/..")
        .symlink("c", &outside)
        .file("a/secret", b"pwned")
        .finish();
    let (_, reason) = entry_error(sb.apply(&tar, WhiteoutMode::Overlay));
    assert_eq!(reason, EntryError::SymlinkEscape);
    sb.assert_outside_untouched();

    let sb = Sandbox::new();
    let tar = Tar::new()
        .symlink("loop1", "loop2")
        .symlink("loop2", "loop1")
        .file("loop1/x", b"x")
        .finish();
    let (_, reason) = entry_error(sb.apply(&tar, WhiteoutMode::Overlay));
    assert_eq!(reason, EntryError::SymlinkLoop);
    sb.assert_outside_untouched();
}

#[test]
fn a_directory_replaced_by_a_symlink_is_not_written_through() {
    // The parent cache must not keep using the old directory, nor follow the new link.
    both_modes(|mode| {
        let sb = Sandbox::new();
        let outside = sb.outside.to_str().unwrap().to_string();
        let tar = Tar::new()
            .dir("d/")
            .file("d/one", b"1")
            .symlink("d", &outside)
            .file("d/secret", b"pwned")
            .finish();
        let (entry, reason) = entry_error(sb.apply(&tar, mode));
        assert_eq!(entry, "d/secret");
        assert_eq!(reason, EntryError::SymlinkEscape);
        sb.assert_outside_untouched();
    });
}

#[test]
fn symlinks_already_in_the_destination_are_not_followed_out() {
    // Delete mode applies onto lower content, which may hold any symlink.
    let sb = Sandbox::new();
    symlink(&sb.outside, sb.dest.join("lib")).unwrap();
    symlink("../../..", sb.dest.join("up")).unwrap();
    for name in ["lib/secret", "up/a/canary"] {
        let tar = Tar::new().file(name, b"pwned").finish();
        let (_, reason) = entry_error(sb.apply(&tar, WhiteoutMode::Delete));
        assert_eq!(reason, EntryError::SymlinkEscape, "{name}");
    }
    sb.assert_outside_untouched();
}

#[test]
fn hardlinks_to_outside_targets_are_refused() {
    both_modes(|mode| {
        let sb = Sandbox::new();
        let tar = Tar::new().hardlink("h", "../canary").finish();
        let (entry, reason) = entry_error(sb.apply(&tar, mode));
        assert_eq!(entry, "h");
        assert_eq!(
            reason,
            EntryError::HardlinkEscapes {
                target: "../canary".into()
            }
        );
        sb.assert_outside_untouched();

        // Through a symlink to outside.
        let sb = Sandbox::new();
        let outside = sb.outside.to_str().unwrap().to_string();
        let tar = Tar::new()
            .symlink("s", &outside)
            .hardlink("h", "s/secret")
            .finish();
        let (_, reason) = entry_error(sb.apply(&tar, mode));
        assert_eq!(
            reason,
            EntryError::HardlinkEscapes {
                target: "s/secret".into()
            }
        );
        sb.assert_outside_untouched();

        // An absolute target is inside the root, and missing there.
        let sb = Sandbox::new();
        let target = sb.a().join("canary").to_str().unwrap().to_string();
        let tar = Tar::new().hardlink("h", &target).finish();
        let (_, reason) = entry_error(sb.apply(&tar, mode));
        assert_eq!(reason, EntryError::HardlinkTargetMissing { target });
        sb.assert_outside_untouched();
    });
}

#[test]
fn hardlinks_to_missing_directories_or_themselves_are_refused() {
    let sb = Sandbox::new();
    let tar = Tar::new().hardlink("h", "nope").finish();
    let (_, reason) = entry_error(sb.apply(&tar, WhiteoutMode::Overlay));
    assert_eq!(
        reason,
        EntryError::HardlinkTargetMissing {
            target: "nope".into()
        }
    );

    let tar = Tar::new().dir("d/").hardlink("h", "d").finish();
    let (_, reason) = entry_error(sb.apply(&tar, WhiteoutMode::Overlay));
    assert_eq!(
        reason,
        EntryError::HardlinkToDirectory { target: "d".into() }
    );

    let tar = Tar::new().file("f", b"x").hardlink("f", "./f").finish();
    let (_, reason) = entry_error(sb.apply(&tar, WhiteoutMode::Overlay));
    assert_eq!(reason, EntryError::HardlinkToSelf);
    sb.assert_outside_untouched();
}

#[test]
fn whiteout_tricks_are_refused() {
    both_modes(|mode| {
        for (name, target) in [(".wh..", "."), ("d/.wh...", ".."), ("d/.wh.", "")] {
            let sb = Sandbox::new();
            fs::create_dir(sb.dest.join("d")).unwrap();
            fs::write(sb.dest.join("d/keep"), b"keep").unwrap();
            let tar = Tar::new().file(name, b"").finish();
            let (entry, reason) = entry_error(sb.apply(&tar, mode));
            assert_eq!(entry, name);
            assert_eq!(
                reason,
                EntryError::BadWhiteout {
                    name: target.into()
                }
            );
            assert_eq!(fs::read(sb.dest.join("d/keep")).unwrap(), b"keep");
            sb.assert_outside_untouched();
        }
        let sb = Sandbox::new();
        let tar = Tar::new().file("../.wh.canary", b"").finish();
        let (_, reason) = entry_error(sb.apply(&tar, mode));
        assert_eq!(reason, EntryError::EscapesRoot);
        sb.assert_outside_untouched();
    });
}

#[test]
fn whiteouts_and_opaque_markers_through_symlinks_are_refused() {
    both_modes(|mode| {
        let sb = Sandbox::new();
        let outside = sb.outside.to_str().unwrap().to_string();
        let tar = Tar::new()
            .symlink("s", &outside)
            .file("s/.wh.secret", b"")
            .finish();
        let (entry, reason) = entry_error(sb.apply(&tar, mode));
        assert_eq!(entry, "s/.wh.secret");
        assert_eq!(reason, EntryError::SymlinkEscape);
        sb.assert_outside_untouched();

        let sb = Sandbox::new();
        let tar = Tar::new()
            .symlink("s", &outside)
            .file("s/.wh..wh..opq", b"")
            .finish();
        let (entry, reason) = entry_error(sb.apply(&tar, mode));
        assert_eq!(entry, "s/.wh..wh..opq");
        assert_eq!(reason, EntryError::SymlinkEscape);
        sb.assert_outside_untouched();
    });
}

#[test]
fn a_file_cannot_be_used_as_a_directory() {
    let sb = Sandbox::new();
    let tar = Tar::new().file("f", b"x").file("f/x", b"y").finish();
    let (entry, reason) = entry_error(sb.apply(&tar, WhiteoutMode::Overlay));
    assert_eq!(entry, "f/x");
    assert_eq!(reason, EntryError::ParentNotDirectory);
}

#[test]
fn the_root_can_only_be_a_directory() {
    let sb = Sandbox::new();
    let tar = Tar::new().dir("./").file("/", b"x").finish();
    let (entry, reason) = entry_error(sb.apply(&tar, WhiteoutMode::Overlay));
    assert_eq!(entry, "/");
    assert_eq!(reason, EntryError::RootNotDirectory);
    sb.assert_outside_untouched();
}

#[test]
fn absurd_sizes_are_refused_before_anything_is_written() {
    let sb = Sandbox::new();
    let mut t = Tar::new();
    t.raw_header(b"huge", b'0', 1 << 60);
    t.buf.extend_from_slice(&[0u8; 4096]);
    let (entry, reason) = entry_error(sb.apply(&t.buf, WhiteoutMode::Overlay));
    assert_eq!(entry, "huge");
    assert!(
        matches!(reason, EntryError::TooLarge { size, .. } if size == 1 << 60),
        "{reason:?}"
    );
    assert!(!sb.dest.join("huge").exists());

    // Within the default limit but past the configured one.
    let opts = ApplyOptions {
        max_total_size: 64 << 10,
        ..ApplyOptions::default()
    };
    let tar = Tar::new().file("big", &vec![1u8; 100 << 10]).finish();
    let err = berth_archive::apply_layer(&tar[..], &sb.dest, &opts).unwrap_err();
    // Depending on how much the reader buffered, the stream limit may trip first.
    assert!(
        matches!(
            err,
            Error::Entry {
                reason: EntryError::TooLarge { .. },
                ..
            } | Error::TooLarge { .. }
        ),
        "{err}"
    );
    assert!(!sb.dest.join("big").exists());
    sb.assert_outside_untouched();
}

#[test]
fn decompression_bombs_stop_at_the_limit() {
    // 48 MiB of tar (one file of zeros) compresses to ~50 KiB; the limit is 16 MiB.
    let mut tar = Vec::new();
    let mut t = Tar::new();
    t.raw_header(b"bomb", b'0', 48 << 20);
    tar.extend_from_slice(&t.buf);
    tar.resize(tar.len() + (48 << 20) + 1024, 0);
    let gz = gzip(&tar);
    assert!(gz.len() < 1 << 20, "{}", gz.len());
    drop(tar);
    let sb = Sandbox::new();
    let opts = ApplyOptions {
        max_total_size: 16 << 20,
        ..ApplyOptions::default()
    };
    let err = berth_archive::apply_layer(&gz[..], &sb.dest, &opts).unwrap_err();
    // The header already declares more than the limit ...
    assert!(
        matches!(
            err,
            Error::Entry {
                reason: EntryError::TooLarge { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(!sb.dest.join("bomb").exists());
    // ... and a small layer followed by 48 MiB of zeros after its end marker (all of it is
    // read: it is part of the diff ID) hits the stream limit.
    let mut tar = Tar::new().file("a", b"small").finish();
    tar.resize(tar.len() + (48 << 20), 0);
    let gz = gzip(&tar);
    drop(tar);
    let sb = Sandbox::new();
    let err = berth_archive::apply_layer(&gz[..], &sb.dest, &opts).unwrap_err();
    assert!(
        matches!(err, Error::TooLarge { limit } if limit == 16 << 20),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("exceeds the limit of 16777216 uncompressed bytes"),
        "{err}"
    );
    sb.assert_outside_untouched();
}

#[test]
fn too_many_entries_are_refused() {
    let sb = Sandbox::new();
    let mut t = Tar::new();
    for i in 0..11 {
        t.file(&format!("f{i}"), b"");
    }
    let opts = ApplyOptions {
        max_entries: 10,
        ..ApplyOptions::default()
    };
    let err = berth_archive::apply_layer(&t.finish()[..], &sb.dest, &opts).unwrap_err();
    assert!(matches!(err, Error::TooManyEntries { limit: 10 }), "{err}");
    assert!(!sb.dest.join("f10").exists());
}

#[test]
fn truncated_layers_leave_no_partial_file() {
    let sb = Sandbox::new();
    let full = Tar::new()
        .file("a", b"first")
        .file("b", &vec![7u8; 10_000])
        .finish();
    let cut = &full[..512 * 3 + 4000];
    let err = sb.apply(cut, WhiteoutMode::Overlay).unwrap_err();
    assert!(matches!(err, Error::Truncated { .. }), "{err}");
    assert!(
        err.to_string().contains("inside the data of entry \"b\""),
        "{err}"
    );
    assert_eq!(fs::read(sb.dest.join("a")).unwrap(), b"first");
    assert!(!sb.dest.join("b").exists(), "partial file left behind");

    // Truncated gzip and zstd: reported as truncation too.
    for compressed in [gzip(&full), zstd::encode_all(&full[..], 3).unwrap()] {
        let sb = Sandbox::new();
        let err = sb
            .apply(&compressed[..compressed.len() - 20], WhiteoutMode::Overlay)
            .unwrap_err();
        assert!(err.is_truncated(), "{err:?}");
        assert!(err.to_string().contains("ends early"), "{err}");
    }
    // Corrupt (not truncated) compressed data is a compression error.
    let mut gz = gzip(&full);
    let mid = gz.len() / 2;
    gz[mid] ^= 0x55;
    gz[mid + 1] ^= 0x55;
    let sb = Sandbox::new();
    let err = sb.apply(&gz, WhiteoutMode::Overlay).unwrap_err();
    assert!(
        matches!(err, Error::Compression(_) | Error::Malformed { .. }),
        "{err:?}"
    );
}

#[test]
fn garbage_is_not_a_tar() {
    let sb = Sandbox::new();
    let mut junk = vec![b'x'; 2048];
    junk[0] = b'a';
    let err = sb.apply(&junk, WhiteoutMode::Overlay).unwrap_err();
    assert!(matches!(err, Error::Malformed { offset: 0, .. }), "{err}");
    assert!(err.to_string().contains("checksum"), "{err}");
    assert!(common::names(&sb.dest).is_empty());
}

#[test]
fn oversized_extension_headers_are_refused_without_reading_them() {
    let sb = Sandbox::new();
    let mut t = Tar::new();
    t.raw_header(b"PaxHeaders/x", b'x', 1 << 40);
    let err = sb.apply(&t.buf, WhiteoutMode::Overlay).unwrap_err();
    assert!(matches!(err, Error::Malformed { .. }), "{err}");
    assert!(err.to_string().contains("exceeds the 1 MiB limit"), "{err}");
}

#[test]
fn unknown_entry_types_are_refused() {
    let sb = Sandbox::new();
    let tar = Tar::new().spec(Spec::new(b"vol", b'V')).finish();
    let (_, reason) = entry_error(sb.apply(&tar, WhiteoutMode::Overlay));
    assert_eq!(reason, EntryError::UnsupportedType('V'));
}

/// Device nodes need root: run the check in a child process that dropped to `nobody`.
#[test]
fn device_nodes_are_refused_when_not_root() {
    if std::env::var_os("BERTH_TEST_AS_NOBODY").is_some() {
        // Child: we are uid 65534 here.
        let dest = std::path::PathBuf::from(std::env::var_os("BERTH_TEST_DEST").unwrap());
        let mut s = Spec::new(b"null", b'3');
        s.dev = (1, 3);
        let tar = Tar::new().spec(s).finish();
        let opts = ApplyOptions::default();
        assert!(!opts.preserve_ownership);
        let err = berth_archive::apply_layer(&tar[..], &dest, &opts).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Entry {
                    reason: EntryError::DeviceNotPermitted,
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("device nodes can only be created by root")
        );
        // A fifo needs no privilege.
        let tar = Tar::new().fifo("pipe").finish();
        berth_archive::apply_layer(&tar[..], &dest, &opts).unwrap();
        return;
    }
    if !common::is_root() {
        eprintln!("skipped: needs root to switch to nobody");
        return;
    }
    use std::os::unix::process::CommandExt;
    let sb = Sandbox::new();
    std::process::Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(sb.tmp.path())
        .status()
        .unwrap();
    // The test binary must be reachable by nobody.
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(&exe)
        .args([
            "--exact",
            "device_nodes_are_refused_when_not_root",
            "--nocapture",
        ])
        .env("BERTH_TEST_AS_NOBODY", "1")
        .env("BERTH_TEST_DEST", &sb.dest)
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && text.contains("Permission denied") && !text.contains("test result")
    {
        eprintln!("skipped: nobody cannot execute the test binary here: {text}");
        return;
    }
    assert!(out.status.success(), "child failed: {text}");
    assert!(text.contains("1 passed"), "{text}");
    assert!(!sb.dest.join("null").exists());
    assert!(sb.dest.join("pipe").exists());
}

#[test]
fn sparse_files_with_absurd_apparent_sizes_are_refused() {
    // PAX sparse 0.1: 10 bytes of data at offset 0 of a file claiming 4 GiB, against a
    // 1 GiB limit.
    let sb = Sandbox::new();
    let mut t = Tar::new();
    t.pax(&[
        (b"GNU.sparse.size", b"4294967296"),
        (b"GNU.sparse.numblocks", b"1"),
        (b"GNU.sparse.map", b"0,10"),
        (b"GNU.sparse.name", b"holes"),
    ]);
    let mut s = Spec::new(b"GNUSparseFile.1/holes", b'0');
    s.data = b"0123456789";
    t.spec(s);
    let opts = ApplyOptions {
        max_total_size: 1 << 30,
        ..ApplyOptions::default()
    };
    let err = berth_archive::apply_layer(&t.finish()[..], &sb.dest, &opts).unwrap_err();
    assert!(
        matches!(&err, Error::Entry { entry, reason: EntryError::TooLarge { size, .. } }
            if entry == "holes" && *size == 4 << 30),
        "{err:?}"
    );
    assert!(!sb.dest.join("holes").exists());
    // Within the limit it is a sparse file of that size.
    let opts = ApplyOptions::default();
    let stats = berth_archive::apply_layer(&t.finish()[..], &sb.dest, &opts).unwrap();
    assert_eq!(stats.entries, 1);
    let st = fs::metadata(sb.dest.join("holes")).unwrap();
    assert_eq!(st.len(), 4 << 30);
    assert!(std::os::unix::fs::MetadataExt::blocks(&st) < 64);
}

/// Trees deeper than any path can name (a container can build them with relative mkdirs)
/// must give an error, not overflow a 2 MiB thread stack.
#[test]
fn walks_over_very_deep_trees_stop_with_an_error() {
    use rustix::fs::{Mode, OFlags, mkdirat, openat};
    let make_chain = |root: &std::path::Path, depth: usize| {
        let mut fd = openat(
            rustix::fs::CWD,
            root,
            OFlags::DIRECTORY | OFlags::RDONLY,
            Mode::empty(),
        )
        .unwrap();
        for _ in 0..depth {
            mkdirat(&fd, "d", Mode::from_raw_mode(0o755)).unwrap();
            fd = openat(&fd, "d", OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty()).unwrap();
        }
        rustix::fs::openat(
            &fd,
            "leaf",
            OFlags::CREATE | OFlags::WRONLY,
            Mode::from_raw_mode(0o644),
        )
        .unwrap();
    };
    let in_small_stack = |f: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(f)
            .unwrap()
            .join()
            .unwrap()
    };
    let too_deep = Sandbox::new();
    make_chain(&too_deep.dest, 2100);
    let dest = too_deep.dest.clone();
    in_small_stack(Box::new(move || {
        let err =
            berth_archive::write_dir_tar(&dest, std::io::sink(), &Default::default()).unwrap_err();
        assert!(err.to_string().contains("deeper than 2048 levels"), "{err}");
        let err = berth_archive::changes(&dest).unwrap_err();
        assert!(err.to_string().contains("too deep"), "{err}");
        // Removing it (a whiteout in Delete mode) fails cleanly too.
        let tar = Tar::new().file(".wh.d", b"").finish();
        let opts = ApplyOptions {
            whiteouts: WhiteoutMode::Delete,
            ..ApplyOptions::default()
        };
        let err = berth_archive::apply_layer(&tar[..], &dest, &opts).unwrap_err();
        assert!(matches!(err, Error::EntryIo { .. }), "{err}");
    }));

    // Just within reach of a path (2000 levels, names of 4000 bytes): archived and applied.
    let deep = Sandbox::new();
    make_chain(&deep.dest, 2000);
    let dest = deep.dest.clone();
    let copy = deep.outside.join("copy");
    fs::create_dir(&copy).unwrap();
    in_small_stack(Box::new(move || {
        let mut tar = Vec::new();
        let stats = berth_archive::write_dir_tar(&dest, &mut tar, &Default::default()).unwrap();
        assert_eq!(stats.entries, 2001);
        berth_archive::apply_layer(&tar[..], &copy, &ApplyOptions::default()).unwrap();
        let leaf = format!("{}leaf", "d/".repeat(2000));
        assert!(copy.join(leaf).exists());
        assert_eq!(berth_archive::changes(&copy).unwrap().len(), 2001);
        // And a whiteout removes all of it.
        let tar = Tar::new().file(".wh.d", b"").finish();
        let opts = ApplyOptions {
            whiteouts: WhiteoutMode::Delete,
            ..ApplyOptions::default()
        };
        berth_archive::apply_layer(&tar[..], &copy, &opts).unwrap();
        assert!(!copy.join("d").exists());
    }));
    fs::remove_dir(deep.outside.join("copy")).unwrap();
}

#[test]
fn errors_are_classified_for_the_api_boundary() {
    use berth_oci::errdefs::{Classify, ErrorKind};
    let sb = Sandbox::new();
    let err = sb
        .apply(
            &Tar::new().file("../x", b"").finish(),
            WhiteoutMode::Overlay,
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert_eq!(
        err.to_string(),
        "layer entry \"../x\": path escapes the layer root through \"..\""
    );
    let err = Error::Entry {
        entry: "dev/sda".into(),
        reason: EntryError::DeviceNotPermitted,
    };
    assert_eq!(err.kind(), ErrorKind::Forbidden);
    let err = sb.apply(b"short", WhiteoutMode::Overlay).unwrap_err();
    assert!(err.is_truncated(), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    let err =
        berth_archive::write_dir_tar(&sb.dest.join("nope"), std::io::sink(), &Default::default())
            .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(
        err.to_string()
            .contains("nope: opening the directory to archive"),
        "{err}"
    );
}
