//! Hashing on a helper thread.
//!
//! sha256 costs about as much CPU as moving the bytes through the kernel, so both the layer
//! reader and the tar writer hash on a second thread: once a buffer has been used (parsed
//! and written out, or written to the output), it goes to the hasher, which hands it back
//! for reuse. Only buffers cross threads, so the caller's reader or writer need not be
//! `Send`. At most [`PIPELINE_BUFFERS`] buffers exist, which bounds memory and how far the
//! hasher may lag behind.

use std::sync::mpsc;

pub(crate) const PIPELINE_BUFFERS: usize = 4;

pub(crate) enum HashPipe {
    Inline(berth_oci::digest::Hasher),
    Thread {
        to_hasher: mpsc::SyncSender<(Vec<u8>, usize)>,
        recycled: mpsc::Receiver<Vec<u8>>,
        handle: std::thread::JoinHandle<berth_oci::digest::Hasher>,
        buffers: usize,
    },
}

impl HashPipe {
    pub fn start() -> HashPipe {
        let (to_hasher, inbox) = mpsc::sync_channel::<(Vec<u8>, usize)>(PIPELINE_BUFFERS);
        let (give_back, recycled) = mpsc::sync_channel::<Vec<u8>>(PIPELINE_BUFFERS);
        let spawned = std::thread::Builder::new()
            .name("berth-layer-hash".into())
            .spawn(move || {
                let mut hasher = berth_oci::digest::Hasher::new();
                for (buf, len) in inbox {
                    hasher.update(&buf[..len]);
                    // The reader may be gone (an error ended the apply): then just drop it.
                    let _ = give_back.try_send(buf);
                }
                hasher
            });
        match spawned {
            Ok(handle) => HashPipe::Thread {
                to_hasher,
                recycled,
                handle,
                buffers: 1,
            },
            // No thread to be had (resource limits): hash inline, just slower.
            Err(_) => HashPipe::Inline(berth_oci::digest::Hasher::new()),
        }
    }

    /// Hashes `buf[..len]` (in order with everything before) and returns a buffer of
    /// `capacity` bytes to fill next.
    pub fn swap(&mut self, buf: Vec<u8>, len: usize, capacity: usize) -> Vec<u8> {
        match self {
            HashPipe::Inline(h) => {
                h.update(&buf[..len]);
                buf
            }
            HashPipe::Thread {
                to_hasher,
                recycled,
                buffers,
                ..
            } => {
                // The hash thread lives until `finish`; should it have died, `finish` reports
                // its panic.
                let _ = to_hasher.send((buf, len));
                if let Ok(b) = recycled.try_recv() {
                    return b;
                }
                if *buffers < PIPELINE_BUFFERS {
                    *buffers += 1;
                    return vec![0; capacity];
                }
                recycled.recv().unwrap_or_else(|_| vec![0; capacity])
            }
        }
    }

    pub fn finish(self, last: Vec<u8>, len: usize) -> berth_oci::digest::Hasher {
        match self {
            HashPipe::Inline(mut h) => {
                h.update(&last[..len]);
                h
            }
            HashPipe::Thread {
                to_hasher, handle, ..
            } => {
                let _ = to_hasher.send((last, len));
                drop(to_hasher);
                match handle.join() {
                    Ok(h) => h,
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
        }
    }
}
