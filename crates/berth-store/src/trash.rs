//! Deferred deletion. Removing a layer with thousands of files can take seconds on a
//! filesystem mounted with `discard` (each freed extent is trimmed at journal commit), so
//! GC and container removal *rename* doomed directories and blobs into `trash/` (instant,
//! atomic: they vanish from the store at once) and a helper thread deletes them. Anything
//! left in `trash/` by a crash is deleted after the next open. Dropping the store waits for
//! the helper to finish.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc::{Sender, channel};
use std::thread::JoinHandle;

use crate::error::{IoContext, Result};
use crate::random_id;

pub(crate) struct Trash {
    dir: PathBuf,
    tx: Mutex<Option<Sender<PathBuf>>>,
    handle: Mutex<Option<JoinHandle<()>>>,
}

impl Trash {
    pub(crate) fn open(root: &Path) -> Result<Trash> {
        let dir = root.join("trash");
        fs::create_dir_all(&dir).ctx(|| format!("creating {}", dir.display()))?;
        let (tx, rx) = channel::<PathBuf>();
        let handle = std::thread::Builder::new()
            .name("berth-trash".into())
            .spawn(move || {
                for p in rx {
                    let _ = match fs::symlink_metadata(&p) {
                        Ok(m) if m.is_dir() => fs::remove_dir_all(&p),
                        Ok(_) => fs::remove_file(&p),
                        Err(_) => Ok(()),
                    };
                }
            })
            .ctx(|| "starting the trash thread")?;
        let trash = Trash {
            dir,
            tx: Mutex::new(Some(tx)),
            handle: Mutex::new(Some(handle)),
        };
        // Leftovers of a previous run.
        for e in fs::read_dir(&trash.dir).ctx(|| "listing trash")?.flatten() {
            trash.send(e.path());
        }
        Ok(trash)
    }

    fn send(&self, p: PathBuf) {
        let sent = self
            .tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|tx| tx.send(p.clone()).is_ok())
            .unwrap_or(false);
        if !sent {
            let _ = fs::remove_dir_all(&p).or_else(|_| fs::remove_file(&p));
        }
    }

    /// Moves `path` out of the store and schedules its deletion. Missing paths are fine.
    pub(crate) fn discard(&self, path: &Path) -> Result<()> {
        let dest = self.dir.join(random_id(12));
        match fs::rename(path, &dest) {
            Ok(()) => {
                self.send(dest);
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(crate::StoreError::io(
                format!("moving {} to the trash", path.display()),
                e,
            )),
        }
    }

    /// Waits until everything discarded so far is deleted, and stops the helper.
    pub(crate) fn drain(&self) {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = self.handle.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = h.join();
        }
    }
}
