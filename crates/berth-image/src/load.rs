//! `load`: a `docker save` archive (either form) or an OCI archive → images in the store.
//!
//! One pass over the input stream, never a layer in memory: every archive member larger than
//! a small-file threshold is streamed into the content store while being hashed, and members
//! that look like layer tars (gzip/zstd magic or a ustar header) are unpacked into a new layer
//! directory in the same pass (a tee). Small members (JSON) stay in memory. Once the stream
//! ends, `manifest.json` (Docker) or `index.json` (OCI) says what the images are; every
//! layer's diff ID is checked against the config's `rootfs.diff_ids`, the store is synced
//! once, and each image is published in one transaction. Any error before that leaves no
//! image, no tag, only unreferenced content that GC removes.

use std::collections::HashMap;
use std::io::{self, Read};

use berth_archive::{ApplyOptions, Compression};
use berth_oci::media_types::{self as mt, Kind};
use berth_oci::{Digest, Platform, Reference};
use berth_store::{ImageCommit, ImageRecord, LayerRef, NewLayer, PendingLayer, Store, chain_ids};

use crate::error::{ImageError, IoContext, Result, parse_json};
use crate::formats::{ArchiveManifestEntry, Descriptor, ImageConfig, Index, Manifest, to_json};
use crate::unpack::{BackgroundIngest, Flusher, Tee, layer_apply_options, unpack_blob};

/// Members up to this size are kept in memory (manifests, configs, small layers).
const SMALL_FILE: u64 = 1 << 20;
/// At most this much small-member data is kept in memory; the rest goes to the store.
const SMALL_BUDGET: u64 = 64 << 20;
/// Largest JSON document (manifest, config, index) accepted.
pub(crate) const MAX_JSON: u64 = 16 << 20;

/// Options for [`load`].
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Limits and ownership handling for unpacking layers.
    pub apply: ApplyOptions,
    /// Which manifest to take from a multi-platform index.
    pub platform: Platform,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            apply: ApplyOptions::default(),
            platform: Platform::host(),
        }
    }
}

/// One image a load brought in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    pub id: Digest,
    pub tags: Vec<Reference>,
}

/// What [`load`] did.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub images: Vec<LoadedImage>,
    /// Tags moved away from another image: (tag, previous image ID).
    pub retagged: Vec<(Reference, Digest)>,
}

impl LoadReport {
    /// The lines `docker load` prints (without `-q`'s suppression of progress).
    pub fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (r, old) in &self.retagged {
            out.push(format!(
                "The image {} already exists, renaming the old one with ID {old} to empty string",
                r.familiar()
            ));
        }
        for img in &self.images {
            if img.tags.is_empty() {
                out.push(format!("Loaded image ID: {}", img.id));
            } else {
                for t in &img.tags {
                    out.push(format!("Loaded image: {}", t.familiar()));
                }
            }
        }
        out
    }
}

/// Loads every image of an archive read from `input` (plain, gzip or zstd compressed).
pub fn load(store: &Store, input: impl Read, opts: &LoadOptions) -> Result<LoadReport> {
    let result = {
        let _op = store.op();
        load_locked(store, input, opts)
    };
    if result.is_err() {
        // Content written before the failure is unreferenced; reclaim it now if we can.
        let _ = store.gc_if_idle();
    }
    result
}

fn load_locked(store: &Store, input: impl Read, opts: &LoadOptions) -> Result<LoadReport> {
    let (_, input) = berth_archive::decompress(input)
        .map_err(|e| ImageError::archive(format!("cannot read the archive stream: {e}")))?;
    let mut staging = Staging {
        store,
        opts,
        files: HashMap::new(),
        links: HashMap::new(),
        unpacked: HashMap::new(),
        unpack_errors: HashMap::new(),
        compression: HashMap::new(),
        small_bytes: 0,
        prepared: HashMap::new(),
        flusher: Flusher::new(store.root()),
    };
    staging.read_archive(input)?;
    let images = if staging.exists("manifest.json") {
        staging.docker_images()?
    } else if staging.exists("index.json") {
        staging.oci_images()?
    } else if staging.exists("repositories") {
        return Err(ImageError::archive(
            "legacy v1 archive (only \"repositories\", no manifest.json) is not supported",
        ));
    } else {
        return Err(ImageError::archive(
            "neither manifest.json (docker save) nor index.json (OCI) found; is this an image archive?",
        ));
    };
    if images.is_empty() {
        return Err(ImageError::archive("the archive lists no images"));
    }
    let mut commits = Vec::new();
    for img in images {
        commits.push(staging.prepare(img)?);
    }
    store.sync()?;
    let mut report = LoadReport::default();
    for (commit, tags) in commits {
        let id = commit.image.id.clone();
        let outcome = store.commit_image(commit)?;
        report.retagged.extend(outcome.retagged);
        report.images.push(LoadedImage { id, tags });
    }
    Ok(report)
}

/// Where an archive member's content went.
enum Stored {
    Mem(Vec<u8>),
    Blob { digest: Digest, size: u64 },
}

struct Unpacked {
    dir: PendingLayer,
    diff_id: Digest,
    size: u64,
}

/// An image found in the archive, before verification.
struct Candidate {
    source: String,
    config: Vec<u8>,
    config_media_type: String,
    /// (blob digest, blob size, declared media type or None to detect)
    layers: Vec<(Digest, u64, Option<String>)>,
    manifest: Option<(Vec<u8>, String)>,
    tags: Vec<Reference>,
}

struct Staging<'s> {
    store: &'s Store,
    opts: &'s LoadOptions,
    files: HashMap<String, Stored>,
    links: HashMap<String, String>,
    unpacked: HashMap<Digest, Unpacked>,
    unpack_errors: HashMap<Digest, ImageError>,
    compression: HashMap<Digest, Compression>,
    small_bytes: u64,
    /// Chains an earlier image of this archive already unpacked: chain → (diff id, size).
    prepared: HashMap<Digest, (Digest, u64)>,
    flusher: Flusher,
}

/// Normalizes an archive member name; refuses absolute paths and `..`.
fn member_name(raw: &[u8]) -> Result<String> {
    let s = String::from_utf8_lossy(raw).into_owned();
    let bad = |reason: &str| ImageError::BadEntry {
        entry: s.clone(),
        reason: reason.to_string(),
    };
    if s.starts_with('/') {
        return Err(bad("absolute path in an image archive"));
    }
    let mut parts = Vec::new();
    for c in s.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(bad("path with \"..\" in an image archive")),
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

/// Normalizes a link target inside the archive (`a/../b` → `b`); None if it climbs out.
fn resolve_link(p: &str) -> Option<String> {
    if p.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

impl Staging<'_> {
    fn read_archive(&mut self, input: impl Read) -> Result<()> {
        let mut ar = tar::Archive::new(input);
        let entries = ar
            .entries()
            .map_err(|e| ImageError::archive(format!("not a tar archive: {e}")))?;
        for entry in entries {
            let mut e = entry.map_err(|e| {
                ImageError::archive(format!("reading the next archive entry (truncated?): {e}"))
            })?;
            let name = member_name(&e.path_bytes())?;
            let kind = e.header().entry_type();
            match kind {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let size = e.size();
                    self.read_file(&name, size, &mut e)?;
                }
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let target = e
                        .link_name_bytes()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default();
                    let joined = if kind == tar::EntryType::Symlink && !target.starts_with('/') {
                        match name.rsplit_once('/') {
                            Some((dir, _)) => format!("{dir}/{target}"),
                            None => target.clone(),
                        }
                    } else {
                        target.clone()
                    };
                    let resolved = resolve_link(&joined).ok_or_else(|| ImageError::BadEntry {
                        entry: name.clone(),
                        reason: format!("link target {target:?} leaves the archive"),
                    })?;
                    self.links.insert(name, resolved);
                }
                tar::EntryType::Directory
                | tar::EntryType::XGlobalHeader
                | tar::EntryType::XHeader
                | tar::EntryType::GNULongName
                | tar::EntryType::GNULongLink => {}
                other => {
                    return Err(ImageError::BadEntry {
                        entry: name,
                        reason: format!("unexpected entry type {other:?} in an image archive"),
                    });
                }
            }
        }
        Ok(())
    }

    fn read_file(&mut self, name: &str, size: u64, e: &mut impl Read) -> Result<()> {
        let trunc = |err: io::Error| ImageError::BadEntry {
            entry: name.to_string(),
            reason: format!("archive truncated or unreadable: {err}"),
        };
        let named_digest = name
            .strip_prefix("blobs/sha256/")
            .and_then(|h| Digest::from_hex(h).ok());
        if size <= SMALL_FILE && self.small_bytes + size <= SMALL_BUDGET {
            let mut buf = Vec::with_capacity(size as usize);
            e.take(size).read_to_end(&mut buf).map_err(trunc)?;
            if buf.len() as u64 != size {
                return Err(trunc(io::ErrorKind::UnexpectedEof.into()));
            }
            if let Some(want) = &named_digest {
                let got = Digest::of(&buf);
                if &got != want {
                    return Err(ImageError::BadEntry {
                        entry: name.to_string(),
                        reason: format!("content hashes to {got}, not the digest its name says"),
                    });
                }
            }
            self.small_bytes += size;
            self.files.insert(name.to_string(), Stored::Mem(buf));
            return Ok(());
        }
        let mut head = vec![0u8; 512.min(size as usize)];
        e.read_exact(&mut head).map_err(trunc)?;
        let compression = berth_archive::detect_compression(&head);
        let is_tar = head.len() >= 262 && &head[257..262] == b"ustar";
        // An uncompressed layer's blob digest is its diff ID, which the unpacker computes
        // over the same bytes: hash once.
        let raw = if compression == Compression::None && is_tar {
            self.store.content().writer_unhashed()?
        } else {
            self.store.content().writer()?
        };
        let mut ingest = BackgroundIngest::new(raw);
        let mut unpacked = None;
        let mut unpack_error = None;
        let mut drained = 0;
        if compression != Compression::None || is_tar {
            let dir = self.store.begin_layer()?;
            let mut tee = Tee::new(head, e, &mut ingest);
            let applied = berth_archive::apply_layer(
                &mut tee,
                &dir.path(),
                &layer_apply_options(&self.opts.apply),
            );
            // Whatever the unpacker left unread still belongs to the blob.
            drained = io::copy(&mut tee, &mut io::sink()).map_err(trunc)?;
            match applied {
                Ok(stats) => {
                    unpacked = Some(Unpacked {
                        dir,
                        diff_id: stats.diff_id,
                        size: stats.uncompressed_size,
                    })
                }
                Err(err) => {
                    if err.is_truncated() {
                        return Err(trunc(io::ErrorKind::UnexpectedEof.into()));
                    }
                    unpack_error = Some(ImageError::Layer {
                        what: format!("{name:?}"),
                        source: err,
                    });
                }
            }
        } else {
            std::io::Write::write_all(&mut ingest, &head)
                .ctx(|| format!("storing archive entry {name}"))?;
            berth_store::content::copy_buffered(e, &mut ingest).map_err(trunc)?;
        }
        let mut ingest = ingest
            .finish()
            .ctx(|| format!("storing archive entry {name}"))?;
        if ingest.len() != size {
            return Err(trunc(io::ErrorKind::UnexpectedEof.into()));
        }
        let known = match &unpacked {
            Some(u) if !ingest.is_hashing() && drained == 0 && u.size == size => {
                Some(u.diff_id.clone())
            }
            _ => None,
        };
        let digest_now = match &known {
            Some(d) => d.clone(),
            None => {
                ingest.rehash()?;
                ingest.digest()
            }
        };
        if let Some(want) = &named_digest
            && &digest_now != want
        {
            return Err(ImageError::BadEntry {
                entry: name.to_string(),
                reason: format!("content hashes to {digest_now}, not the digest its name says"),
            });
        }
        let (digest, size) = match known {
            Some(d) => ingest.commit_known(&d, size)?,
            None => ingest.commit(None, Some(size))?,
        };
        self.flusher.kick();
        self.compression.insert(digest.clone(), compression);
        if let Some(u) = unpacked {
            self.unpacked.insert(digest.clone(), u);
        }
        if let Some(err) = unpack_error {
            self.unpack_errors.insert(digest.clone(), err);
        }
        self.files
            .insert(name.to_string(), Stored::Blob { digest, size });
        Ok(())
    }

    fn resolve<'a>(&'a self, path: &str) -> Option<&'a Stored> {
        let mut p = path.to_string();
        for _ in 0..16 {
            if let Some(s) = self.files.get(&p) {
                return Some(s);
            }
            p = self.links.get(&p)?.clone();
        }
        None
    }

    fn exists(&self, path: &str) -> bool {
        self.resolve(path).is_some()
    }

    fn get(&self, path: &str, by: &str) -> Result<&Stored> {
        self.resolve(path).ok_or_else(|| ImageError::MissingFile {
            path: path.to_string(),
            by: by.to_string(),
        })
    }

    /// A member's bytes (for JSON documents).
    fn bytes(&self, path: &str, by: &str) -> Result<Vec<u8>> {
        match self.get(path, by)? {
            Stored::Mem(b) => Ok(b.clone()),
            Stored::Blob { digest, size } => {
                if *size > MAX_JSON {
                    return Err(ImageError::InvalidArchive(format!(
                        "{path:?} ({size} bytes) is too large for a JSON document"
                    )));
                }
                Ok(self.store.content().read_blob(digest, MAX_JSON)?)
            }
        }
    }

    /// A member as a stored blob (small members are written to the store now).
    fn blob(&mut self, path: &str, by: &str) -> Result<(Digest, u64)> {
        let (digest, size, compression) = match self.get(path, by)? {
            Stored::Blob { digest, size } => return Ok((digest.clone(), *size)),
            Stored::Mem(b) => (
                self.store.content().write_bytes(b)?,
                b.len() as u64,
                berth_archive::detect_compression(b),
            ),
        };
        self.compression.insert(digest.clone(), compression);
        Ok((digest, size))
    }

    fn docker_images(&mut self) -> Result<Vec<Candidate>> {
        let raw = self.bytes("manifest.json", "the archive")?;
        let entries: Vec<ArchiveManifestEntry> = parse_json("manifest.json", &raw)?;
        // Docker 25+ archives are also OCI layouts: reuse their manifests so that digests
        // survive a round trip.
        let mut oci_manifests: HashMap<Digest, (Vec<u8>, String)> = HashMap::new();
        if self.exists("index.json")
            && let Ok(idx) = parse_json::<Index>("index.json", &self.bytes("index.json", "")?)
        {
            for d in idx
                .manifests
                .iter()
                .filter(|d| mt::is_manifest(&d.media_type))
            {
                if let Ok(b) = self.bytes(&blob_path(&d.digest), "index.json")
                    && let Ok(m) = parse_json::<Manifest>("manifest", &b)
                {
                    oci_manifests.insert(m.config.digest.clone(), (b, d.media_type.clone()));
                }
            }
        }
        let mut out = Vec::new();
        for (i, entry) in entries.into_iter().enumerate() {
            let by = format!("manifest.json entry {i}");
            let config = self.bytes(&entry.config, &by)?;
            let mut layers = Vec::new();
            for l in &entry.layers {
                let (d, s) = self.blob(l, &by)?;
                layers.push((d, s, None));
            }
            let mut tags = Vec::new();
            for t in entry.repo_tags.iter().flatten() {
                let r = Reference::parse(t).map_err(|e| ImageError::BadJson {
                    what: "manifest.json".into(),
                    reason: format!("entry {i}: RepoTags {t:?}: {e}"),
                })?;
                tags.push(r.with_default_tag());
            }
            let config_digest = Digest::of(&config);
            let manifest = oci_manifests.get(&config_digest).cloned().filter(|(b, _)| {
                parse_json::<Manifest>("manifest", b)
                    .map(|m| {
                        m.layers.len() == layers.len()
                            && m.layers.iter().zip(&layers).all(|(d, l)| d.digest == l.0)
                    })
                    .unwrap_or(false)
            });
            out.push(Candidate {
                source: format!("{} ({by})", entry.config),
                config,
                config_media_type: mt::OCI_CONFIG.to_string(),
                layers,
                manifest,
                tags,
            });
        }
        Ok(out)
    }

    fn oci_images(&mut self) -> Result<Vec<Candidate>> {
        if let Some(Stored::Mem(b)) = self.resolve("oci-layout") {
            let layout: crate::formats::OciLayout = parse_json("oci-layout", b)?;
            if !layout.image_layout_version.starts_with("1.") {
                return Err(ImageError::archive(format!(
                    "oci-layout: unsupported imageLayoutVersion {:?}",
                    layout.image_layout_version
                )));
            }
        }
        let raw = self.bytes("index.json", "the archive")?;
        let index: Index = parse_json("index.json", &raw)?;
        let mut out = Vec::new();
        for desc in &index.manifests {
            let tags = names_from_annotations(desc);
            let mut target = desc.clone();
            if mt::is_index(&desc.media_type) {
                target = self.pick_platform(desc)?;
            }
            match mt::kind(&target.media_type) {
                Kind::Manifest => out.push(self.oci_candidate(&target, tags)?),
                _ => {
                    return Err(ImageError::UnsupportedMediaType {
                        what: format!("index.json entry {}", desc.digest),
                        media_type: desc.media_type.clone(),
                    });
                }
            }
        }
        Ok(out)
    }

    fn verified_json(&self, desc: &Descriptor, by: &str) -> Result<Vec<u8>> {
        let b = self.bytes(&blob_path(&desc.digest), by)?;
        if b.len() as u64 != desc.size {
            return Err(ImageError::InvalidArchive(format!(
                "{} is {} bytes but {by} says {}",
                desc.digest,
                b.len(),
                desc.size
            )));
        }
        if Digest::of(&b) != desc.digest {
            return Err(ImageError::InvalidArchive(format!(
                "{} does not match its content ({by})",
                desc.digest
            )));
        }
        Ok(b)
    }

    fn pick_platform(&self, desc: &Descriptor) -> Result<Descriptor> {
        let b = self.verified_json(desc, "index.json")?;
        let idx: Index = parse_json(&format!("index {}", desc.digest), &b)?;
        let want = &self.opts.platform;
        idx.manifests
            .iter()
            .filter(|d| mt::is_manifest(&d.media_type))
            .find(|d| d.platform.as_ref().is_some_and(|p| p.matches(want)))
            .or_else(|| {
                idx.manifests
                    .iter()
                    .find(|d| mt::is_manifest(&d.media_type) && d.platform.is_none())
            })
            .cloned()
            .ok_or_else(|| ImageError::InvalidImage {
                image: desc.digest.to_string(),
                reason: format!("no manifest for platform {want} in the index"),
            })
    }

    fn oci_candidate(&mut self, desc: &Descriptor, tags: Vec<Reference>) -> Result<Candidate> {
        let by = format!("manifest {}", desc.digest);
        let raw = self.verified_json(desc, "index.json")?;
        let m: Manifest = parse_json(&by, &raw)?;
        if !mt::is_config(&m.config.media_type) {
            return Err(ImageError::UnsupportedMediaType {
                what: format!("{by}: config"),
                media_type: m.config.media_type.clone(),
            });
        }
        let config = self.verified_json(&m.config, &by)?;
        let mut layers = Vec::new();
        for (i, l) in m.layers.iter().enumerate() {
            if !mt::is_layer(&l.media_type) {
                return Err(ImageError::UnsupportedMediaType {
                    what: format!("{by}: layer {i}"),
                    media_type: l.media_type.clone(),
                });
            }
            let (d, s) = self.blob(&blob_path(&l.digest), &by)?;
            if s != l.size {
                return Err(ImageError::InvalidArchive(format!(
                    "layer {i} {} is {s} bytes but {by} says {}",
                    l.digest, l.size
                )));
            }
            layers.push((d, s, Some(l.media_type.clone())));
        }
        Ok(Candidate {
            source: by,
            config,
            config_media_type: m.config.media_type.clone(),
            layers,
            manifest: Some((raw, desc.media_type.clone())),
            tags,
        })
    }

    /// Verifies a candidate and turns it into a commit (plus the tags to report).
    fn prepare(&mut self, c: Candidate) -> Result<(ImageCommit, Vec<Reference>)> {
        let config: ImageConfig = parse_json(&format!("image config {}", c.source), &c.config)?;
        let id = Digest::of(&c.config);
        let image_name = id.to_string();
        if config.rootfs.kind != "layers" {
            return Err(ImageError::InvalidImage {
                image: image_name,
                reason: format!(
                    "rootfs.type is {:?}, expected \"layers\"",
                    config.rootfs.kind
                ),
            });
        }
        if config.rootfs.diff_ids.len() != c.layers.len() {
            return Err(ImageError::InvalidImage {
                image: image_name,
                reason: format!(
                    "the config lists {} diff_ids but there are {} layers",
                    config.rootfs.diff_ids.len(),
                    c.layers.len()
                ),
            });
        }
        let chains = chain_ids(&config.rootfs.diff_ids);
        let mut new_layers = Vec::new();
        let mut refs = Vec::new();
        let mut total = 0u64;
        for (i, (blob, blob_size, media_type)) in c.layers.iter().enumerate() {
            let expected = &config.rootfs.diff_ids[i];
            let chain = &chains[i];
            let parent = if i == 0 {
                None
            } else {
                Some(chains[i - 1].clone())
            };
            let (diff_id, size, dir) = if let Some(err) = self.unpack_errors.remove(blob) {
                return Err(err);
            } else if let Some((d, s)) = self.prepared.get(chain) {
                (d.clone(), *s, None)
            } else if let Some(u) = self.unpacked.remove(blob) {
                (u.diff_id, u.size, Some(u.dir))
            } else if let Some(existing) = self.store.snapshot(&chain.to_string())? {
                // Already unpacked by an earlier load: only the diff id needs checking, and
                // the stored snapshot was verified against the same chain id.
                (
                    existing.diff_id.clone().unwrap_or_else(|| expected.clone()),
                    existing.size,
                    None,
                )
            } else {
                let (dir, stats) = unpack_blob(self.store, blob, &self.opts.apply)?;
                (stats.diff_id, stats.uncompressed_size, Some(dir))
            };
            if &diff_id != expected {
                return Err(ImageError::DiffIdMismatch {
                    image: image_name,
                    index: i,
                    blob: blob.to_string(),
                    expected: expected.to_string(),
                    actual: diff_id.to_string(),
                });
            }
            total += size;
            self.prepared.insert(chain.clone(), (diff_id.clone(), size));
            if let Some(dir) = dir {
                if self.store.has_layer(chain)? {
                    drop(dir);
                } else {
                    new_layers.push(NewLayer {
                        chain_id: chain.clone(),
                        parent: parent.clone(),
                        diff_id: diff_id.clone(),
                        size,
                        dir,
                    });
                }
            }
            let media_type = match media_type {
                Some(m) => m.clone(),
                None => mt::oci_layer(match self.compression.get(blob) {
                    Some(Compression::Gzip) => mt::LayerCompression::Gzip,
                    Some(Compression::Zstd) => mt::LayerCompression::Zstd,
                    _ => mt::LayerCompression::None,
                })
                .to_string(),
            };
            refs.push(LayerRef {
                blob: blob.clone(),
                media_type,
                size: *blob_size,
                diff_id,
                chain_id: chain.clone(),
            });
        }
        let config_digest = self.store.content().write_bytes(&c.config)?;
        debug_assert_eq!(config_digest, id);
        let (manifest_bytes, manifest_media_type) = match c.manifest {
            Some(m) => m,
            None => (
                to_json(&Manifest {
                    schema_version: 2,
                    media_type: Some(mt::OCI_MANIFEST.to_string()),
                    artifact_type: None,
                    config: Descriptor::new(mt::OCI_CONFIG, id.clone(), c.config.len() as u64),
                    layers: refs
                        .iter()
                        .map(|l| Descriptor::new(&l.media_type, l.blob.clone(), l.size))
                        .collect(),
                    subject: None,
                    annotations: None,
                }),
                mt::OCI_MANIFEST.to_string(),
            ),
        };
        let manifest = self.store.content().write_bytes(&manifest_bytes)?;
        let image = ImageRecord {
            id,
            manifest,
            manifest_media_type,
            config_media_type: c.config_media_type,
            layers: refs,
            size: total,
            created_at: berth_store::now_rfc3339(),
            last_tag_time: None,
            extra: Default::default(),
        };
        Ok((
            ImageCommit {
                image,
                new_layers,
                tags: c.tags.clone(),
            },
            c.tags,
        ))
    }
}

/// The image names an index entry carries: containerd's full-name annotation, or an OCI
/// ref.name that is a full reference (a bare tag like `latest` names no repository).
fn names_from_annotations(desc: &Descriptor) -> Vec<Reference> {
    if let Some(n) = desc.annotation(mt::ANNOTATION_IMAGE_NAME)
        && let Ok(r) = Reference::parse(n)
    {
        return vec![r.with_default_tag()];
    }
    if let Some(n) = desc.annotation(mt::ANNOTATION_REF_NAME)
        && (n.contains('/') || n.contains(':'))
        && let Ok(r) = Reference::parse(n)
    {
        return vec![r.with_default_tag()];
    }
    Vec::new()
}
