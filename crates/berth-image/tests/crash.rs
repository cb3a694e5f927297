//! Kill -9 during a load: a child process loads a large archive into a store and is
//! SIGKILLed at several points; the store then opens, passes fsck with no garbage left, shows
//! no half-loaded image, and loads the same archive fine.

mod common;

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_image::{LoadOptions, load};
use berth_oci::Digest;
use berth_store::Store;
use common::*;

const CHILD_ENV: &str = "BERTH_TEST_CRASH_CHILD";

/// Deterministic incompressible bytes (xorshift), streamed.
struct Noise {
    state: u64,
    left: u64,
}

impl Read for Noise {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize;
        for chunk in buf[..n].chunks_mut(8) {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            let b = self.state.to_le_bytes();
            chunk.copy_from_slice(&b[..chunk.len()]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// A layer tar with one big random file, written to `path`; returns its digest.
fn big_layer(path: &Path, seed: u64, size: u64) -> Digest {
    let f = File::create(path).unwrap();
    let mut w = berth_oci::digest::HashingWriter::new(io::BufWriter::new(f));
    {
        let mut b = tar::Builder::new(&mut w);
        let mut h = tar::Header::new_gnu();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(
            &mut h,
            format!("big-{seed}.bin"),
            Noise {
                state: seed | 1,
                left: size,
            },
        )
        .unwrap();
        b.finish().unwrap();
    }
    let (d, _, mut inner) = w.finish();
    inner.flush().unwrap();
    d
}

fn build_archive(dir: &Path) -> std::path::PathBuf {
    let mut diff_ids = Vec::new();
    let mut layer_paths = Vec::new();
    for i in 0..3u64 {
        let p = dir.join(format!("layer{i}.tar"));
        diff_ids.push(big_layer(&p, 0x9e37_79b9 + i, 48 << 20));
        layer_paths.push(p);
    }
    let config = config_json(&diff_ids, serde_json::json!({"Cmd": ["sh"]}));
    let archive = dir.join("big.tar");
    let mut b = tar::Builder::new(File::create(&archive).unwrap());
    let mut names = Vec::new();
    for (i, p) in layer_paths.iter().enumerate() {
        let name = format!("{:064x}/layer.tar", i + 1);
        b.append_path_with_name(p, &name).unwrap();
        names.push(name);
    }
    let cfg_name = format!("{}.json", Digest::of(&config).hex());
    let mut h = tar::Header::new_gnu();
    h.set_size(config.len() as u64);
    h.set_mode(0o644);
    b.append_data(&mut h, &cfg_name, &config[..]).unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!([
        {"Config": cfg_name, "RepoTags": ["big:latest"], "Layers": names}
    ]))
    .unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_size(manifest.len() as u64);
    h.set_mode(0o644);
    b.append_data(&mut h, "manifest.json", &manifest[..])
        .unwrap();
    b.into_inner().unwrap().sync_all().unwrap();
    for p in layer_paths {
        fs::remove_file(p).unwrap();
    }
    archive
}

fn bytes_under(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let m = match e.metadata() {
                Ok(m) => m,
                Err(_) => continue,
            };
            if m.is_dir() {
                total += bytes_under(&e.path());
            } else {
                total += m.len();
            }
        }
    }
    total
}

#[test]
fn kill_9_during_load_leaves_a_consistent_store() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        // Child mode: load and exit (the parent kills us somewhere in the middle).
        let (root, archive) = spec.split_once('\n').unwrap();
        let store = Store::open(root).unwrap();
        load(
            &store,
            File::open(archive).unwrap(),
            &LoadOptions::default(),
        )
        .unwrap();
        return;
    }
    let tmp = tempdir("crash");
    let archive = build_archive(tmp.path());
    let root = tmp.path().join("root");
    drop(Store::open(&root).unwrap());
    let me = std::env::current_exe().unwrap();
    // Kill points: bytes written into the store (ingest + blobs + snapshots) so far.
    let mut killed = 0;
    for threshold in [4u64 << 20, 90 << 20, 200 << 20] {
        let mut child = Command::new(&me)
            .args([
                "--exact",
                "kill_9_during_load_leaves_a_consistent_store",
                "--nocapture",
            ])
            .env(
                CHILD_ENV,
                format!("{}\n{}", root.display(), archive.display()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            if bytes_under(&root) >= threshold {
                child.kill().unwrap(); // SIGKILL
                killed += 1;
                break child.wait().unwrap();
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "child load hangs"
            );
            std::thread::sleep(Duration::from_millis(2));
        };
        eprintln!("threshold {threshold}: child ended with {status}");
        let store = Store::open(&root).unwrap();
        let rep = store.fsck().unwrap();
        assert!(rep.is_clean(), "after kill at {threshold}: {rep:?}");
        assert!(rep.garbage.is_empty(), "after kill at {threshold}: {rep:?}");
        if status.success() {
            // The load won the race: the image must be complete.
            assert_eq!(store.images().unwrap().len(), 1);
            let (img, _) = store.images().unwrap().remove(0);
            berth_image::remove(&store, &img.id.to_string(), Default::default(), &|_| false)
                .unwrap();
        } else {
            assert!(
                store.images().unwrap().is_empty(),
                "a half-loaded image is visible"
            );
            assert!(store.resolve_image("big").is_err());
        }
        assert_eq!(fs::read_dir(root.join("ingest")).unwrap().count(), 0);
    }
    assert!(
        killed >= 2,
        "the load finished before it could be killed ({killed} kills)"
    );
    let store = Store::open(&root).unwrap();
    let rep = load(
        &store,
        File::open(&archive).unwrap(),
        &LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(rep.messages(), vec!["Loaded image: big:latest"]);
    assert!(store.fsck().unwrap().is_clean());
}
