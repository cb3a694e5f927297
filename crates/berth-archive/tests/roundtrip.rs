//! Round trips: random trees → write_dir_tar → apply_layer → the identical tree, and the tar
//! of the result is byte-identical (reproducible output). GNU tar reads what we write.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_archive::{ApplyOptions, DiffOptions, WhiteoutMode, apply_layer, write_dir_tar};
use common::snapshot;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Node {
    Dir,
    File {
        size: usize,
        seed: u8,
    },
    Symlink(String),
    /// Hardlink to the n-th file created so far (modulo), if any.
    Hardlink(usize),
    Fifo,
    Char(u32, u32),
}

#[derive(Debug, Clone)]
struct Op {
    /// Index (modulo) of the directory to create it in.
    parent: usize,
    name: String,
    node: Node,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    xattr: Option<Vec<u8>>,
}

fn name_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,12}",
        "[a-zA-Z0-9 ._~-]{1,40}",
        "[a-z]{90,130}",
        "(é|ü|日本|\\$|%|#|\\\\|'|\"| ){1,6}",
    ]
    .prop_filter("not special", |n| {
        n != "." && n != ".." && !n.starts_with(".wh.") && n.len() <= 255
    })
}

fn node_strategy() -> impl Strategy<Value = Node> {
    prop_oneof![
        3 => Just(Node::Dir),
        5 => (prop_oneof![Just(0usize), Just(1), Just(511), Just(512), Just(513), 0usize..70_000, Just(2_100_000)], any::<u8>())
            .prop_map(|(size, seed)| Node::File { size, seed }),
        // Targets that stay inside the root wherever the link is (escaping ones are refused
        // on apply, as Docker does; hostile.rs covers them).
        2 => prop_oneof!["[a-z][a-z/]{0,29}", "/[a-z./]{1,20}", "[a-z]{120,160}", "\\./[a-z]{1,5}"].prop_map(Node::Symlink),
        1 => any::<usize>().prop_map(Node::Hardlink),
        1 => Just(Node::Fifo),
        1 => (0u32..300, 0u32..300).prop_map(|(a, b)| Node::Char(a, b)),
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    (
        any::<usize>(),
        name_strategy(),
        node_strategy(),
        prop_oneof![
            Just(0o755u32),
            Just(0o644),
            Just(0o4755),
            Just(0o2711),
            Just(0o1777),
            Just(0o600),
            0u32..0o7777
        ],
        prop_oneof![Just(0u32), 1u32..70_000, Just(3_000_000)],
        prop_oneof![Just(0u32), 1u32..70_000, Just(2_097_152)],
        prop_oneof![
            Just(1_700_000_000i64),
            0i64..4_000_000_000,
            Just(-86_400),
            Just(9_000_000_000)
        ],
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
    )
        .prop_map(|(parent, name, node, mode, uid, gid, mtime, xattr)| Op {
            parent,
            name,
            node,
            mode,
            uid,
            gid,
            mtime,
            xattr,
        })
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

/// Creates the tree; returns nothing, the tree on disk is the truth.
fn materialize(root: &Path, ops: &[Op], root_user: bool) {
    let mut dirs: Vec<(PathBuf, u32, i64)> = vec![];
    let mut files: Vec<PathBuf> = vec![];
    let mut all_dirs: Vec<PathBuf> = vec![root.to_path_buf()];
    for op in ops {
        let parent = all_dirs[op.parent % all_dirs.len()].clone();
        let p = parent.join(&op.name);
        if fs::symlink_metadata(&p).is_ok() || p.as_os_str().len() > 3000 {
            continue;
        }
        let owned = |p: &Path| {
            if root_user {
                std::os::unix::fs::lchown(p, Some(op.uid), Some(op.gid)).unwrap();
            }
        };
        match &op.node {
            Node::Dir => {
                fs::create_dir(&p).unwrap();
                owned(&p);
                dirs.push((p.clone(), op.mode | 0o700, op.mtime));
                all_dirs.push(p.clone());
            }
            Node::File { size, seed } => {
                let data: Vec<u8> = (0..*size)
                    .map(|i| (i as u8).wrapping_mul(31) ^ seed)
                    .collect();
                fs::write(&p, data).unwrap();
                owned(&p);
                fs::set_permissions(&p, fs::Permissions::from_mode(op.mode)).unwrap();
                files.push(p.clone());
            }
            Node::Symlink(target) => {
                symlink(target, &p).unwrap();
                owned(&p);
            }
            Node::Hardlink(i) => {
                if files.is_empty() {
                    continue;
                }
                let target = &files[i % files.len()];
                fs::hard_link(target, &p).unwrap();
                // Links share the inode: metadata is the target's.
                if let Some(x) = &op.xattr {
                    rustix::fs::setxattr(target, "user.t", x, rustix::fs::XattrFlags::empty())
                        .unwrap();
                }
                continue;
            }
            Node::Fifo => {
                rustix::fs::mknodat(
                    rustix::fs::CWD,
                    &p,
                    rustix::fs::FileType::Fifo,
                    rustix::fs::Mode::from_raw_mode(op.mode & 0o777),
                    0,
                )
                .unwrap();
                owned(&p);
                fs::set_permissions(&p, fs::Permissions::from_mode(op.mode & 0o777)).unwrap();
            }
            Node::Char(maj, min) => {
                if !root_user {
                    continue;
                }
                rustix::fs::mknodat(
                    rustix::fs::CWD,
                    &p,
                    rustix::fs::FileType::CharacterDevice,
                    rustix::fs::Mode::from_raw_mode(0o600),
                    rustix::fs::makedev(*maj, *min),
                )
                .unwrap();
                owned(&p);
            }
        }
        if let Some(x) = &op.xattr
            && !matches!(op.node, Node::Symlink(_) | Node::Char(..) | Node::Fifo)
        {
            rustix::fs::setxattr(&p, "user.t", x, rustix::fs::XattrFlags::empty()).unwrap();
        }
        if !matches!(op.node, Node::Dir) {
            set_mtime(&p, op.mtime);
        }
    }
    // Directory modes and times last, deepest first.
    dirs.reverse();
    for (p, mode, mtime) in dirs {
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        set_mtime(&p, mtime);
    }
}

fn tar_of(dir: &Path, opts: &DiffOptions) -> Vec<u8> {
    let mut out = Vec::new();
    let stats = write_dir_tar(dir, &mut out, opts).unwrap();
    assert_eq!(stats.size, out.len() as u64);
    assert_eq!(stats.diff_id, berth_oci::Digest::of(&out));
    out
}

fn tmp() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("berth-test-archive-rt-")
        .tempdir()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(32),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_trees_round_trip_exactly(ops in proptest::collection::vec(op_strategy(), 1..40)) {
        let root_user = common::is_root();
        let work = tmp();
        let src = work.path().join("src");
        let dst = work.path().join("dst");
        fs::create_dir(&src).unwrap();
        fs::create_dir(&dst).unwrap();
        materialize(&src, &ops, root_user);

        let tar = tar_of(&src, &DiffOptions::default());
        let opts = ApplyOptions { whiteouts: WhiteoutMode::Delete, ..ApplyOptions::default() };
        let stats = apply_layer(&tar[..], &dst, &opts).unwrap();
        prop_assert_eq!(stats.diff_id, berth_oci::Digest::of(&tar));
        prop_assert_eq!(stats.uncompressed_size, tar.len() as u64);

        let before = snapshot(&src);
        let after = snapshot(&dst);
        prop_assert_eq!(before.keys().collect::<Vec<_>>(), after.keys().collect::<Vec<_>>());
        for (k, v) in &before {
            prop_assert_eq!(&after[k], v, "{}", String::from_utf8_lossy(k));
        }
        // Reproducible: the unpacked copy archives to the very same bytes.
        prop_assert!(tar == tar_of(&dst, &DiffOptions::default()), "tar of the copy differs");
    }
}

#[test]
fn source_date_epoch_clamps_mtimes_and_nothing_else() {
    let work = tmp();
    let src = work.path().join("src");
    fs::create_dir_all(src.join("d")).unwrap();
    fs::write(src.join("d/new"), b"n").unwrap();
    fs::write(src.join("old"), b"o").unwrap();
    set_mtime(&src.join("d/new"), 2_000_000_000);
    set_mtime(&src.join("old"), 1_000_000_000);
    set_mtime(&src.join("d"), 2_000_000_000);
    let epoch = 1_500_000_000;
    let tar = tar_of(
        &src,
        &DiffOptions {
            source_date_epoch: Some(epoch),
        },
    );
    let dst = work.path().join("dst");
    fs::create_dir(&dst).unwrap();
    apply_layer(&tar[..], &dst, &ApplyOptions::default()).unwrap();
    assert_eq!(fs::metadata(dst.join("d/new")).unwrap().mtime(), epoch);
    assert_eq!(fs::metadata(dst.join("d")).unwrap().mtime(), epoch);
    assert_eq!(
        fs::metadata(dst.join("old")).unwrap().mtime(),
        1_000_000_000
    );
}

#[test]
fn equal_trees_built_in_different_orders_give_identical_tars() {
    let work = tmp();
    let build = |root: &Path, order: &[&str]| {
        fs::create_dir(root).unwrap();
        for name in order {
            fs::write(root.join(name), name.as_bytes()).unwrap();
            set_mtime(&root.join(name), 1_700_000_000);
        }
    };
    let names = ["b", "a", "a.txt", "Z", "é", "zz", "a-b", "0"];
    build(&work.path().join("one"), &names);
    let mut rev = names;
    rev.reverse();
    build(&work.path().join("two"), &rev);
    let one = tar_of(&work.path().join("one"), &DiffOptions::default());
    let two = tar_of(&work.path().join("two"), &DiffOptions::default());
    assert!(one == two);
    // Plain short names need no PAX headers, and user/group names are empty.
    for block in one.chunks(512) {
        if block[257..263] == *b"ustar\0" {
            assert_ne!(block[156], b'x', "unneeded PAX header");
            assert!(
                block[265..345].iter().all(|&b| b == 0),
                "uname/gname not empty"
            );
        }
    }
}

#[test]
fn gnu_tar_reads_what_we_write() {
    let work = tmp();
    let src = work.path().join("src");
    fs::create_dir(&src).unwrap();
    let ops: Vec<Op> = (0..30)
        .map(|i| Op {
            parent: i / 3,
            name: if i % 7 == 0 {
                format!("{}{i}", "n".repeat(110))
            } else {
                format!("e{i}")
            },
            node: match i % 5 {
                0 => Node::Dir,
                1 | 2 => Node::File {
                    size: i * 700,
                    seed: i as u8,
                },
                3 => Node::Symlink(format!("target-{i}")),
                _ => Node::Hardlink(i),
            },
            mode: 0o755,
            uid: 1000 + i as u32,
            gid: 2000,
            mtime: 1_600_000_000 + i as i64,
            xattr: (i % 4 == 1).then(|| vec![b'x'; i]),
        })
        .collect();
    materialize(&src, &ops, common::is_root());
    let tar_path = work.path().join("ours.tar");
    fs::write(&tar_path, tar_of(&src, &DiffOptions::default())).unwrap();
    let out_dir = work.path().join("gnu");
    fs::create_dir(&out_dir).unwrap();
    let out = Command::new("tar")
        .args([
            "--xattrs",
            "--xattrs-include=*",
            "--numeric-owner",
            "--same-owner",
            "-xpf",
        ])
        .arg(&tar_path)
        .current_dir(&out_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(snapshot(&out_dir), snapshot(&src));
}
