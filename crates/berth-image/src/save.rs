//! `save`: images → one archive, in Docker's or OCI's form.
//!
//! [`SaveFormat::Docker`] writes what Docker 25+ writes: an OCI image layout (`oci-layout`,
//! `index.json`, `blobs/sha256/…`) that is at the same time a classic `docker save` archive
//! (`manifest.json` whose `Config`/`Layers` name those blobs, and `repositories`), so both old
//! and new Docker, skopeo's `docker-archive:` and `oci-archive:` transports and Berth read it.
//! [`SaveFormat::Oci`] writes the OCI layout alone. Blobs are streamed from the store as they
//! are (original bytes, so digests survive load → save), each blob once per archive.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;

use berth_oci::media_types as mt;
use berth_oci::{Digest, Reference};
use berth_store::{ImageRecord, Store};

use crate::error::{ImageError, IoContext, Result};
use crate::formats::{ArchiveManifestEntry, Descriptor, Index, OciLayout, to_json};

/// Which archive layout [`save`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SaveFormat {
    /// Docker 25+'s combined form (OCI layout + `manifest.json` + `repositories`).
    #[default]
    Docker,
    /// A plain OCI image layout (no `manifest.json`).
    Oci,
}

/// An image chosen for saving, with the names it is saved under.
struct Selected {
    image: ImageRecord,
    tags: Vec<Reference>,
}

/// Writes the named images (names, IDs or ID prefixes, as `docker save` takes them) into one
/// tar archive. A repository name without a tag saves every tag of that repository.
pub fn save(store: &Store, names: &[&str], out: impl Write, format: SaveFormat) -> Result<()> {
    if names.is_empty() {
        return Err(ImageError::InvalidArgument(
            "save needs at least one image name".into(),
        ));
    }
    let _op = store.op();
    let selected = select(store, names)?;
    let mut w = ArchiveWriter::new(out);
    let mut written: HashSet<Digest> = HashSet::new();
    let mut index_entries = Vec::new();
    let mut manifest_json = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    w.dir("blobs/")?;
    w.dir("blobs/sha256/")?;
    for s in &selected {
        for d in s.image.blobs() {
            if written.insert(d.clone()) {
                w.blob(store, d)?;
            }
        }
        let manifest_size = store.content().size(&s.image.manifest)?;
        let mut desc = Descriptor::new(
            &s.image.manifest_media_type,
            s.image.manifest.clone(),
            manifest_size,
        );
        if s.tags.is_empty() {
            index_entries.push(desc.clone());
        }
        for t in &s.tags {
            let mut a = BTreeMap::new();
            a.insert(mt::ANNOTATION_IMAGE_NAME.to_string(), t.to_string());
            if let Some(tag) = t.tag() {
                a.insert(mt::ANNOTATION_REF_NAME.to_string(), tag.to_string());
            }
            desc.annotations = Some(a);
            index_entries.push(desc.clone());
            if let (Some(tag), Some(top)) = (t.tag(), s.image.layers.last()) {
                repositories
                    .entry(t.familiar_name())
                    .or_default()
                    .insert(tag.to_string(), top.blob.hex().to_string());
            }
        }
        manifest_json.push(ArchiveManifestEntry {
            config: format!("blobs/sha256/{}", s.image.id.hex()),
            repo_tags: Some(s.tags.iter().map(|t| t.familiar()).collect()),
            layers: s
                .image
                .layers
                .iter()
                .map(|l| format!("blobs/sha256/{}", l.blob.hex()))
                .collect(),
            layer_sources: None,
        });
    }
    let index = Index {
        schema_version: 2,
        media_type: Some(mt::OCI_INDEX.to_string()),
        manifests: index_entries,
        annotations: None,
    };
    w.file("index.json", &to_json(&index))?;
    if format == SaveFormat::Docker {
        w.file("manifest.json", &to_json(&manifest_json))?;
    }
    w.file(
        "oci-layout",
        &to_json(&OciLayout {
            image_layout_version: mt::OCI_LAYOUT_VERSION.to_string(),
        }),
    )?;
    if format == SaveFormat::Docker {
        w.file("repositories", &to_json(&repositories))?;
    }
    w.finish()
}

fn select(store: &Store, names: &[&str]) -> Result<Vec<Selected>> {
    let mut out: Vec<Selected> = Vec::new();
    let all = store.images()?;
    for name in names {
        let mut picked: Vec<(berth_oci::Digest, Option<Reference>)> = Vec::new();
        let parsed = Reference::parse(name).ok();
        match &parsed {
            Some(r) if r.tag().is_none() && r.digest().is_none() => {
                // Every tag of the repository.
                for (img, tags) in &all {
                    for t in tags.iter().filter(|t| t.name() == r.name()) {
                        picked.push((img.id.clone(), Some(t.clone())));
                    }
                }
            }
            Some(r) => {
                if let Some(id) = store.lookup_tag(r)? {
                    picked.push((id, r.digest().is_none().then(|| r.clone())));
                }
            }
            None => {}
        }
        if picked.is_empty() {
            let id = store
                .resolve_image(name)
                .map_err(|_| ImageError::NotFound(name.to_string()))?;
            picked.push((id, None));
        }
        for (id, tag) in picked {
            match out.iter_mut().find(|s| s.image.id == id) {
                Some(s) => {
                    if let Some(t) = tag
                        && !s.tags.contains(&t)
                    {
                        s.tags.push(t);
                    }
                }
                None => {
                    let image = store
                        .image(&id)?
                        .ok_or_else(|| ImageError::NotFound(name.to_string()))?;
                    out.push(Selected {
                        image,
                        tags: tag.into_iter().collect(),
                    });
                }
            }
        }
    }
    Ok(out)
}

/// A tar writer with normalized headers (root-owned, mtime 0), streaming blob files.
struct ArchiveWriter<W: Write> {
    b: tar::Builder<W>,
}

impl<W: Write> ArchiveWriter<W> {
    fn new(out: W) -> Self {
        ArchiveWriter {
            b: tar::Builder::new(out),
        }
    }

    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h
    }

    fn dir(&mut self, path: &str) -> Result<()> {
        let mut h = Self::header(tar::EntryType::Directory, 0o755, 0);
        self.b
            .append_data(&mut h, path, std::io::empty())
            .ctx(|| format!("writing {path} to the archive"))
    }

    fn file(&mut self, path: &str, data: &[u8]) -> Result<()> {
        let mut h = Self::header(tar::EntryType::Regular, 0o644, data.len() as u64);
        self.b
            .append_data(&mut h, path, data)
            .ctx(|| format!("writing {path} to the archive"))
    }

    fn blob(&mut self, store: &Store, d: &Digest) -> Result<()> {
        let f = store.content().open_blob(d)?;
        let size = f.metadata().ctx(|| format!("stat blob {d}"))?.len();
        let path = format!("blobs/sha256/{}", d.hex());
        let mut h = Self::header(tar::EntryType::Regular, 0o644, size);
        let r = std::io::BufReader::with_capacity(berth_store::content::COPY_BUFFER, f);
        self.b
            .append_data(&mut h, &path, r)
            .ctx(|| format!("writing {path} to the archive"))
    }

    fn finish(self) -> Result<()> {
        let mut out = self
            .b
            .into_inner()
            .ctx(|| "finishing the archive".to_string())?;
        out.flush().ctx(|| "flushing the archive".to_string())
    }
}
