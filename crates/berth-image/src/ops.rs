//! Tag, remove, history, inspect, list and prune, with Docker's rules, messages and JSON
//! shapes (`/images/json`, `/images/{name}/json`, `/images/{name}/history`, `DELETE
//! /images/{name}`, `/images/prune`).
//!
//! Which containers use an image is the store's knowledge (container snapshots record their
//! image); whether such a container is *running* is the engine's, so [`remove`] and [`prune`]
//! take a callback answering that.

use std::collections::BTreeMap;

use berth_oci::{Digest, Reference};
use berth_store::{ImageRecord, Store};
use serde::Serialize;

use crate::error::{ImageError, Result, parse_json};
use crate::formats::{ContainerConfig, ImageConfig, parse_time};
use crate::load::MAX_JSON;

/// The parsed config of a stored image.
pub fn image_config(store: &Store, image: &ImageRecord) -> Result<ImageConfig> {
    let raw = store.read_verified(&image.id, MAX_JSON)?;
    parse_json(&format!("image config {}", image.id), &raw)
}

fn resolve(store: &Store, name: &str) -> Result<ImageRecord> {
    let id = store.resolve_image(name).map_err(|e| match e {
        berth_store::StoreError::ImageNotFound(_) => ImageError::NotFound(name.to_string()),
        other => other.into(),
    })?;
    store
        .image(&id)?
        .ok_or_else(|| ImageError::NotFound(name.to_string()))
}

/// `docker tag SOURCE TARGET`. A target without a tag gets `:latest`; digests are refused.
pub fn tag(store: &Store, source: &str, target: &str) -> Result<Reference> {
    let image = resolve(store, source)?;
    let r = Reference::parse(target)?;
    if r.digest().is_some() {
        return Err(ImageError::InvalidArgument(format!(
            "refusing to create a tag with a digest reference: {target}"
        )));
    }
    let r = r.with_default_tag();
    store.tag(&image.id, &r)?;
    Ok(r)
}

/// One line of a delete response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum DeleteItem {
    Untagged(String),
    Deleted(String),
}

/// `docker rmi` flags.
#[derive(Debug, Clone, Copy, Default)]
pub struct RemoveOptions {
    pub force: bool,
    /// `--no-prune`: accepted for compatibility; untagged parents do not exist for loaded
    /// images, so it changes nothing.
    pub no_prune: bool,
}

fn is_id_reference(name: &str, id: &Digest) -> bool {
    let n = name.strip_prefix("sha256:").unwrap_or(name);
    !n.is_empty() && id.hex().starts_with(n)
}

/// `docker rmi NAME`, following dockerd's rules:
/// - by name: untag; the image goes only with its last tag, and only if no container uses
///   it (a container using it needs `force`, a running one cannot be forced);
/// - by ID: refused if several repositories reference it (unless forced), or containers use
///   it; otherwise every tag is removed, then the image.
///
/// `running(container_id)` tells whether a container using the image is running.
pub fn remove(
    store: &Store,
    name: &str,
    opts: RemoveOptions,
    running: &dyn Fn(&str) -> bool,
) -> Result<Vec<DeleteItem>> {
    let image = resolve(store, name)?;
    let id = image.id.clone();
    let short = id.short().to_string();
    let tags = store.tags_of(&id)?;
    let users = store.containers_using(&id)?;
    let running_user = users.iter().find(|c| running(c)).cloned();
    let stopped_user = users.iter().find(|c| !running(c)).cloned();
    let mut items = Vec::new();
    let short_c = |c: &str| c.chars().take(12).collect::<String>();

    if !is_id_reference(name, &id) {
        let r = Reference::parse(name)?.with_default_tag();
        if let Some(c) = users.first()
            && tags.len() == 1
            && !opts.force
        {
            return Err(ImageError::Conflict(format!(
                "conflict: unable to remove repository reference \"{name}\" (must force) - container {} is using its referenced image {short}",
                short_c(c)
            )));
        }
        store.untag(&r)?;
        items.push(DeleteItem::Untagged(r.familiar()));
        if !store.tags_of(&id)?.is_empty() {
            return Ok(items);
        }
        // The last tag went: delete the image unless something still needs it.
        if running_user.is_some() || (!opts.force && stopped_user.is_some()) {
            return Ok(items);
        }
    } else {
        if let Some(c) = &running_user {
            return Err(ImageError::Conflict(format!(
                "conflict: unable to delete {short} (cannot be forced) - image is being used by running container {}",
                short_c(c)
            )));
        }
        let repos: std::collections::BTreeSet<String> = tags.iter().map(|t| t.name()).collect();
        if repos.len() > 1 && !opts.force {
            return Err(ImageError::Conflict(format!(
                "conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories"
            )));
        }
        if let Some(c) = &stopped_user
            && !opts.force
        {
            return Err(ImageError::Conflict(format!(
                "conflict: unable to delete {short} (must be forced) - image is being used by stopped container {}",
                short_c(c)
            )));
        }
    }
    let removed = store.delete_image(&id)?;
    for r in removed {
        items.push(DeleteItem::Untagged(r.familiar()));
    }
    items.push(DeleteItem::Deleted(id.to_string()));
    let _ = store.gc()?;
    for l in image.layers.iter().rev() {
        if !store.has_layer(&l.chain_id)? {
            items.push(DeleteItem::Deleted(l.chain_id.to_string()));
        }
    }
    Ok(items)
}

/// One entry of `docker history` (`/images/{name}/history`), newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HistoryItem {
    pub id: String,
    pub created: i64,
    pub created_by: String,
    pub tags: Option<Vec<String>>,
    pub size: i64,
    pub comment: String,
}

/// `docker history`: the config's history, newest first; layer-making steps get their layer's
/// size, the top entry the image ID and tags, the others `<missing>`.
pub fn history(store: &Store, name: &str) -> Result<Vec<HistoryItem>> {
    let image = resolve(store, name)?;
    let config = image_config(store, &image)?;
    let chain = match image.top_chain_id() {
        Some(top) => {
            let mut c = store.layer_chain(top)?;
            c.reverse();
            c
        }
        None => Vec::new(),
    };
    let mut layer_sizes = chain.iter().map(|s| s.size as i64);
    let mut items: Vec<HistoryItem> = config
        .history
        .iter()
        .map(|h| HistoryItem {
            id: "<missing>".into(),
            created: parse_time(h.created.as_deref()),
            created_by: h.created_by.clone().unwrap_or_default(),
            tags: None,
            size: if h.empty_layer {
                0
            } else {
                layer_sizes.next().unwrap_or(0)
            },
            comment: h.comment.clone().unwrap_or_default(),
        })
        .collect();
    items.reverse();
    if let Some(top) = items.first_mut() {
        top.id = image.id.to_string();
        let tags: Vec<String> = store
            .tags_of(&image.id)?
            .iter()
            .map(|t| t.familiar())
            .collect();
        top.tags = (!tags.is_empty()).then_some(tags);
    }
    Ok(items)
}

/// `/images/{name}/json` in Docker's shape (API 1.47).
pub fn inspect(store: &Store, name: &str) -> Result<serde_json::Value> {
    let image = resolve(store, name)?;
    let config = image_config(store, &image)?;
    let tags = store.tags_of(&image.id)?;
    let overlay = store.image_overlay(&image)?;
    let lower: Vec<String> = overlay
        .layer_dirs
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let mut graph = serde_json::Map::new();
    if let Some((top, rest)) = lower.split_first() {
        graph.insert("MergedDir".into(), serde_json::Value::Null);
        graph.insert("UpperDir".into(), top.clone().into());
        if !rest.is_empty() {
            graph.insert("LowerDir".into(), rest.join(":").into());
        }
        graph.insert("WorkDir".into(), serde_json::Value::Null);
    }
    let mut v = serde_json::json!({
        "Id": image.id.to_string(),
        "RepoTags": tags.iter().map(|t| t.familiar()).collect::<Vec<_>>(),
        "RepoDigests": [],
        "Parent": "",
        "Comment": config.comment.clone().unwrap_or_default(),
        "Created": config.created.clone(),
        "DockerVersion": config.docker_version.clone().unwrap_or_default(),
        "Author": config.author.clone().unwrap_or_default(),
        "Config": docker_container_config(&config.container()),
        "Architecture": config.architecture,
        "Os": config.os,
        "Size": image.size,
        "GraphDriver": {"Data": graph, "Name": "overlay2"},
        "RootFS": {
            "Type": "layers",
            "Layers": config.rootfs.diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        },
        "Metadata": {
            "LastTagTime": image.last_tag_time.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
        },
    });
    if let Some(variant) = config.variant {
        v["Variant"] = variant.into();
    }
    if let Some(osv) = config.os_version {
        v["OsVersion"] = osv.into();
    }
    Ok(v)
}

/// The image's container config in the full shape Docker's inspect shows (every field
/// present, `null` for unset lists and maps).
pub fn docker_container_config(c: &ContainerConfig) -> serde_json::Value {
    let mut m = serde_json::json!({
        "Hostname": "",
        "Domainname": "",
        "User": c.user.clone().unwrap_or_default(),
        "AttachStdin": false,
        "AttachStdout": false,
        "AttachStderr": false,
        "Tty": false,
        "OpenStdin": false,
        "StdinOnce": false,
        "Env": c.env,
        "Cmd": c.cmd,
        "Image": "",
        "Volumes": c.volumes,
        "WorkingDir": c.working_dir.clone().unwrap_or_default(),
        "Entrypoint": c.entrypoint,
        "OnBuild": c.on_build,
        "Labels": c.labels,
    });
    let obj = m.as_object_mut().expect("object");
    for (k, v) in &c.extra {
        if obj.contains_key(k) {
            obj.insert(k.clone(), v.clone());
        }
    }
    if let Some(p) = &c.exposed_ports {
        obj.insert("ExposedPorts".into(), serde_json::json!(p));
    }
    if let Some(h) = &c.healthcheck {
        obj.insert("Healthcheck".into(), serde_json::json!(h));
    }
    if let Some(a) = c.args_escaped {
        obj.insert("ArgsEscaped".into(), a.into());
    }
    if let Some(s) = &c.stop_signal {
        obj.insert("StopSignal".into(), s.clone().into());
    }
    if let Some(s) = &c.shell {
        obj.insert("Shell".into(), serde_json::json!(s));
    }
    if let Some(t) = c.stop_timeout {
        obj.insert("StopTimeout".into(), t.into());
    }
    m
}

/// One row of `/images/json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageSummary {
    pub id: String,
    pub parent_id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub created: i64,
    pub size: i64,
    pub shared_size: i64,
    pub labels: BTreeMap<String, String>,
    pub containers: i64,
}

/// `docker images` filters (`/images/json?filters=`).
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// `dangling=true|false`.
    pub dangling: Option<bool>,
    /// `label=key` or `label=key=value` (all must match).
    pub labels: Vec<String>,
    /// `reference=pattern` (glob over the familiar name or name:tag; any may match).
    pub references: Vec<String>,
    /// `before=image`: only images created before it.
    pub before: Option<String>,
    /// `since=image`: only images created after it.
    pub since: Option<String>,
    /// Count the containers using each image (else -1, as Docker without `?shared-size`).
    pub container_counts: bool,
}

/// `docker images`: newest first.
pub fn list(store: &Store, opts: &ListOptions) -> Result<Vec<ImageSummary>> {
    let before = match &opts.before {
        Some(n) => Some(created_of(store, &resolve(store, n)?)?),
        None => None,
    };
    let since = match &opts.since {
        Some(n) => Some(created_of(store, &resolve(store, n)?)?),
        None => None,
    };
    let mut out = Vec::new();
    for (image, tags) in store.images()? {
        let config = image_config(store, &image)?;
        let created = config.created_unix();
        let labels = config.container().labels.unwrap_or_default();
        if let Some(d) = opts.dangling
            && d != tags.is_empty()
        {
            continue;
        }
        if !opts.labels.iter().all(|f| label_matches(&labels, f)) {
            continue;
        }
        if before.is_some_and(|b| created >= b) || since.is_some_and(|s| created <= s) {
            continue;
        }
        let mut shown: Vec<&Reference> = tags.iter().collect();
        if !opts.references.is_empty() {
            shown.retain(|t| opts.references.iter().any(|p| reference_matches(p, t)));
            if shown.is_empty() {
                continue;
            }
        }
        let containers = if opts.container_counts {
            store.containers_using(&image.id)?.len() as i64
        } else {
            -1
        };
        out.push(ImageSummary {
            id: image.id.to_string(),
            parent_id: String::new(),
            repo_tags: shown.iter().map(|t| t.familiar()).collect(),
            repo_digests: Vec::new(),
            created,
            size: image.size as i64,
            shared_size: -1,
            labels,
            containers,
        });
    }
    out.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
    Ok(out)
}

fn created_of(store: &Store, image: &ImageRecord) -> Result<i64> {
    Ok(image_config(store, image)?.created_unix())
}

fn label_matches(labels: &BTreeMap<String, String>, filter: &str) -> bool {
    match filter.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(filter),
    }
}

/// Docker's `FamiliarMatch`: the pattern against `name:tag`, then against the name alone.
fn reference_matches(pattern: &str, r: &Reference) -> bool {
    glob(pattern, &r.familiar()) || glob(pattern, &r.familiar_name())
}

/// Go's `path.Match`: `*` and `?` never match `/`; `[...]` classes with ranges and `^`.
pub fn glob(pattern: &str, name: &str) -> bool {
    fn class(p: &[char], c: char) -> Option<(bool, usize)> {
        let mut i = 1;
        let negate = p.get(1) == Some(&'^');
        if negate {
            i += 1;
        }
        let mut matched = false;
        let mut first = true;
        while i < p.len() {
            if p[i] == ']' && !first {
                return Some((matched != negate, i + 1));
            }
            first = false;
            let lo = p[i];
            if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|c| *c != ']') {
                let hi = p[i + 2];
                if lo <= c && c <= hi {
                    matched = true;
                }
                i += 3;
            } else {
                if lo == c {
                    matched = true;
                }
                i += 1;
            }
        }
        None
    }
    fn rec(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len())
                .take_while(|i| *i == 0 || n[i - 1] != '/')
                .any(|i| rec(&p[1..], &n[i..])),
            Some('?') => !n.is_empty() && n[0] != '/' && rec(&p[1..], &n[1..]),
            Some('[') => match (n.first(), class(p, *n.first().unwrap_or(&'\0'))) {
                (Some(c), Some((true, len))) if *c != '/' => rec(&p[len..], &n[1..]),
                _ => false,
            },
            Some('\\') if p.len() > 1 => !n.is_empty() && n[0] == p[1] && rec(&p[2..], &n[1..]),
            Some(c) => !n.is_empty() && n[0] == *c && rec(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    rec(&p, &n)
}

/// What [`prune`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PruneReport {
    pub images_deleted: Vec<DeleteItem>,
    pub space_reclaimed: u64,
}

/// `docker image prune`: dangling images (or, with `all`, every image) that no container
/// uses, filtered by labels (`label=`/`label!=`) and `until` (unix seconds).
pub fn prune(
    store: &Store,
    all: bool,
    labels: &[String],
    until: Option<i64>,
) -> Result<PruneReport> {
    let mut report = PruneReport::default();
    for (image, tags) in store.images()? {
        if !all && !tags.is_empty() {
            continue;
        }
        if !store.containers_using(&image.id)?.is_empty() {
            continue;
        }
        let config = image_config(store, &image)?;
        let image_labels = config.container().labels.unwrap_or_default();
        let label_ok = labels.iter().all(|f| match f.strip_prefix('!') {
            Some(neg) => !label_matches(&image_labels, neg),
            None => label_matches(&image_labels, f),
        });
        if !label_ok || until.is_some_and(|u| config.created_unix() >= u) {
            continue;
        }
        for t in store.delete_image(&image.id)? {
            report
                .images_deleted
                .push(DeleteItem::Untagged(t.familiar()));
        }
        report
            .images_deleted
            .push(DeleteItem::Deleted(image.id.to_string()));
    }
    if !report.images_deleted.is_empty() {
        let gc = store.gc()?;
        report.space_reclaimed = gc.bytes_freed;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn glob_matches_like_go_path_match() {
        assert!(glob("busy*", "busybox:latest"));
        assert!(glob("busybox:1.*", "busybox:1.36"));
        assert!(!glob("*", "a/b"));
        assert!(glob("*/*", "a/b"));
        assert!(glob("b?sybox", "busybox"));
        assert!(glob("[a-c]usybox", "busybox"));
        assert!(!glob("[^b]usybox", "busybox"));
        assert!(!glob("busybox", "busybox:latest"));
    }
}
