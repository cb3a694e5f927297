//! Image config + the user's overrides → what the container runs, with Docker's rules.
//!
//! - [`merge_config`]: Docker's daemon-side merge of a create request's config with the
//!   image's (`Entrypoint`/`Cmd` rules, Env by key, union of ExposedPorts and Volumes, Labels,
//!   WorkingDir, User, StopSignal, Healthcheck, OnBuild kept).
//! - [`resolve_user`]: `user`, `uid`, `user:group`, `uid:gid` resolved through the image's
//!   `/etc/passwd` and `/etc/group`, read from the layer chain honouring whiteouts and opaque
//!   directories (without mounting anything). Numeric IDs pass through when unknown.
//! - [`process_for`]: both, giving args, env (with PATH and HOME defaults), cwd, uid/gid and
//!   supplementary groups.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use berth_store::{ImageRecord, Store};

use crate::error::{ImageError, Result};
use crate::formats::ContainerConfig;

/// Docker's default PATH when neither the image nor the user sets one.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Merges a container create request's config (`user`) over the image's, as dockerd does.
/// `user.entrypoint == Some(vec![])` means `--entrypoint ""` (clear the image's entrypoint);
/// a non-empty entrypoint override drops the image's Cmd.
pub fn merge_config(image: &ContainerConfig, user: &ContainerConfig) -> ContainerConfig {
    let mut out = user.clone();
    if out.user.as_deref().unwrap_or("").is_empty() {
        out.user = image.user.clone();
    }
    // Ports and volumes: union.
    if let Some(ip) = &image.exposed_ports {
        let ports = out.exposed_ports.get_or_insert_with(BTreeMap::new);
        for (k, v) in ip {
            ports.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    if let Some(iv) = &image.volumes {
        let vols = out.volumes.get_or_insert_with(BTreeMap::new);
        for (k, v) in iv {
            vols.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    // Env: the user's entries, then the image's whose key the user did not set.
    match (&mut out.env, &image.env) {
        (None, ie) => out.env = ie.clone(),
        (Some(ue), Some(ie)) if ue.is_empty() => *ue = ie.clone(),
        (Some(ue), Some(ie)) => {
            let keys: Vec<String> = ue.iter().map(|e| env_key(e).to_string()).collect();
            for e in ie {
                if !keys.iter().any(|k| k == env_key(e)) {
                    ue.push(e.clone());
                }
            }
        }
        (Some(_), None) => {}
    }
    // Labels: the image's, overridden by the user's.
    if let Some(il) = &image.labels {
        let mut labels = il.clone();
        labels.extend(out.labels.take().unwrap_or_default());
        out.labels = Some(labels);
    }
    // Entrypoint / Cmd.
    let user_ep_empty = out.entrypoint.as_ref().is_none_or(|e| e.is_empty());
    if user_ep_empty {
        if out.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            out.cmd = image.cmd.clone();
            out.args_escaped = image.args_escaped;
        }
        if out.entrypoint.is_none() {
            out.entrypoint = image.entrypoint.clone();
        }
    }
    if out.working_dir.as_deref().unwrap_or("").is_empty() {
        out.working_dir = image.working_dir.clone();
    }
    if out.stop_signal.is_none() {
        out.stop_signal = image.stop_signal.clone();
    }
    if out.stop_timeout.is_none() {
        out.stop_timeout = image.stop_timeout;
    }
    match (&mut out.healthcheck, &image.healthcheck) {
        (None, ih) => out.healthcheck = ih.clone(),
        (Some(uh), Some(ih)) => {
            // Unset fields are inherited (a Test of ["NONE"] disables the check).
            if uh.test.as_ref().is_none_or(|t| t.is_empty()) {
                uh.test = ih.test.clone();
            }
            uh.interval = uh.interval.filter(|v| *v != 0).or(ih.interval);
            uh.timeout = uh.timeout.filter(|v| *v != 0).or(ih.timeout);
            uh.start_period = uh.start_period.filter(|v| *v != 0).or(ih.start_period);
            uh.start_interval = uh.start_interval.filter(|v| *v != 0).or(ih.start_interval);
            uh.retries = uh.retries.filter(|v| *v != 0).or(ih.retries);
        }
        (Some(_), None) => {}
    }
    if out.on_build.is_none() {
        out.on_build = image.on_build.clone();
    }
    if out.shell.is_none() {
        out.shell = image.shell.clone();
    }
    out
}

fn env_key(e: &str) -> &str {
    e.split_once('=').map(|(k, _)| k).unwrap_or(e)
}

/// The command line a merged config runs: Entrypoint ++ Cmd.
pub fn command_line(cfg: &ContainerConfig) -> Result<Vec<String>> {
    let mut args: Vec<String> = cfg.entrypoint.clone().unwrap_or_default();
    args.extend(cfg.cmd.clone().unwrap_or_default());
    if args.is_empty() {
        return Err(ImageError::InvalidArgument("no command specified".into()));
    }
    Ok(args)
}

/// A user resolved to numeric IDs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups from /etc/group (the user's memberships).
    pub additional_gids: Vec<u32>,
    /// Home directory from /etc/passwd ("/" when unknown).
    pub home: String,
}

/// Where to read the image's files from: layer directories, top first (as
/// [`berth_store::Overlay::layer_dirs`] lists them), or a plain rootfs directory.
#[derive(Debug, Clone)]
pub struct ImageFiles {
    layers: Vec<PathBuf>,
}

impl ImageFiles {
    pub fn from_layers(layers_top_first: Vec<PathBuf>) -> Self {
        ImageFiles {
            layers: layers_top_first,
        }
    }
    pub fn from_image(store: &Store, image: &ImageRecord) -> Result<Self> {
        Ok(ImageFiles {
            layers: store.image_overlay(image)?.layer_dirs,
        })
    }

    /// Reads a file of the merged view (`etc/passwd`), honouring whiteouts and opaque
    /// directories; `Ok(None)` if the merged view has no such file.
    pub fn read(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        let rel = rel.trim_start_matches('/');
        let comps: Vec<&str> = rel.split('/').filter(|c| !c.is_empty()).collect();
        'layers: for layer in &self.layers {
            let mut stop_after = false;
            let mut p = layer.clone();
            for (i, c) in comps.iter().enumerate() {
                p.push(c);
                let Ok(m) = fs::symlink_metadata(&p) else {
                    if stop_after {
                        return Ok(None);
                    }
                    continue 'layers;
                };
                if is_whiteout(&m) {
                    return Ok(None);
                }
                let last = i + 1 == comps.len();
                if !last {
                    if m.file_type().is_symlink() {
                        // Symlinked directories in /etc are rare; follow within the image.
                        return self.read_via_link(&p, layer, &comps[i + 1..]);
                    }
                    if !m.is_dir() {
                        return Ok(None);
                    }
                    if is_opaque(&p) {
                        stop_after = true;
                    }
                    continue;
                }
                if m.file_type().is_symlink() {
                    return self.read_via_link(&p, layer, &[]);
                }
                if !m.is_file() {
                    return Ok(None);
                }
                return fs::read(&p)
                    .map(Some)
                    .map_err(|e| ImageError::io(format!("reading {}", p.display()), e));
            }
            if stop_after {
                return Ok(None);
            }
        }
        Ok(None)
    }

    fn read_via_link(&self, link: &Path, layer: &Path, rest: &[&str]) -> Result<Option<Vec<u8>>> {
        let target = fs::read_link(link)
            .map_err(|e| ImageError::io(format!("reading link {}", link.display()), e))?;
        let rel_link = link.strip_prefix(layer).unwrap_or(link);
        let base = if target.is_absolute() {
            PathBuf::new()
        } else {
            rel_link.parent().map(Path::to_path_buf).unwrap_or_default()
        };
        let mut parts: Vec<String> = Vec::new();
        for c in base.join(&target).components() {
            match c {
                std::path::Component::Normal(n) => parts.push(n.to_string_lossy().into_owned()),
                std::path::Component::ParentDir => {
                    parts.pop();
                }
                _ => {}
            }
        }
        parts.extend(rest.iter().map(|s| s.to_string()));
        let joined = parts.join("/");
        if joined.len() > 4096 || rest.len() > 64 {
            return Ok(None);
        }
        // Bounded: each hop strictly consumes a symlink; a loop ends at the depth check.
        thread_local! { static DEPTH: std::cell::Cell<u32> = const { std::cell::Cell::new(0) }; }
        let depth = DEPTH.with(|d| {
            d.set(d.get() + 1);
            d.get()
        });
        let r = if depth > 40 {
            Ok(None)
        } else {
            self.read(&joined)
        };
        DEPTH.with(|d| d.set(d.get() - 1));
        r
    }
}

fn is_whiteout(m: &fs::Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

fn is_opaque(p: &Path) -> bool {
    let mut buf = [0u8; 4];
    matches!(
        rustix::fs::lgetxattr(p, "trusted.overlay.opaque", &mut buf),
        Ok(1) if buf[0] == b'y'
    )
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn parse_passwd(data: &[u8]) -> Vec<PasswdEntry> {
    String::from_utf8_lossy(data)
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).unwrap_or(&"/").to_string(),
            })
        })
        .collect()
}

fn parse_group(data: &[u8]) -> Vec<GroupEntry> {
    String::from_utf8_lossy(data)
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(GroupEntry {
                name: f.first()?.to_string(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Resolves `user` (`""`, `name`, `uid`, `name:group`, `uid:gid`, …) like runc/libcontainer:
/// names must exist in the image's files; numeric IDs need not.
pub fn resolve_user(files: &ImageFiles, user: &str) -> Result<ResolvedUser> {
    let passwd = files.read("etc/passwd")?.map(|d| parse_passwd(&d));
    let groups = files.read("etc/group")?.map(|d| parse_group(&d));
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let u = if u.is_empty() { "0" } else { u };
    let entry = match u.parse::<u32>() {
        Ok(uid) => passwd
            .as_ref()
            .and_then(|p| p.iter().find(|e| e.uid == uid)),
        Err(_) => {
            let found = passwd.as_ref().and_then(|p| p.iter().find(|e| e.name == u));
            if found.is_none() {
                let reason = if passwd.is_none() {
                    "the image has no /etc/passwd"
                } else {
                    "no matching entries in passwd file"
                };
                return Err(ImageError::User {
                    user: u.to_string(),
                    reason: reason.into(),
                });
            }
            found
        }
    };
    let uid = entry
        .map(|e| e.uid)
        .unwrap_or_else(|| u.parse().unwrap_or(0));
    let home = entry.map(|e| e.home.clone()).unwrap_or_else(|| "/".into());
    let gid = match g {
        Some(g) if !g.is_empty() => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => groups
                .as_ref()
                .and_then(|gs| gs.iter().find(|e| e.name == g))
                .map(|e| e.gid)
                .ok_or_else(|| ImageError::User {
                    user: user.to_string(),
                    reason: format!("unable to find group {g}: no matching entries in group file"),
                })?,
        },
        _ => entry.map(|e| e.gid).unwrap_or(0),
    };
    let mut additional_gids = Vec::new();
    if let (Some(e), Some(gs)) = (entry, &groups) {
        for grp in gs {
            if grp.members.iter().any(|m| m == &e.name) && !additional_gids.contains(&grp.gid) {
                additional_gids.push(grp.gid);
            }
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home,
    })
}

/// What the container's process looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSpec {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: ResolvedUser,
}

/// Merged config → process: command line, env (PATH and HOME defaults added as Docker
/// does), working dir (absolute, default `/`), user resolved through the image's files.
pub fn process_for(files: &ImageFiles, merged: &ContainerConfig) -> Result<ProcessSpec> {
    let args = command_line(merged)?;
    let cwd = merged
        .working_dir
        .clone()
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    if !cwd.starts_with('/') {
        return Err(ImageError::InvalidArgument(format!(
            "the working directory '{cwd}' is invalid, it needs to be an absolute path"
        )));
    }
    let user = resolve_user(files, merged.user.as_deref().unwrap_or(""))?;
    let mut env = merged.env.clone().unwrap_or_default();
    if !env.iter().any(|e| env_key(e) == "PATH") {
        env.insert(0, DEFAULT_PATH.to_string());
    }
    if !env.iter().any(|e| env_key(e) == "HOME") {
        env.push(format!("HOME={}", user.home));
    }
    Ok(ProcessSpec {
        args,
        env,
        cwd,
        user,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(ep: Option<&[&str]>, cmd: Option<&[&str]>) -> ContainerConfig {
        ContainerConfig {
            entrypoint: ep.map(|v| v.iter().map(|s| s.to_string()).collect()),
            cmd: cmd.map(|v| v.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn entrypoint_and_cmd_follow_dockers_rules() {
        let image = cfg(Some(&["/entry"]), Some(&["default-arg"]));
        // Nothing given: image's entrypoint + cmd.
        let m = merge_config(&image, &ContainerConfig::default());
        assert_eq!(command_line(&m).unwrap(), vec!["/entry", "default-arg"]);
        // Cmd given: replaces the image's cmd, keeps its entrypoint.
        let m = merge_config(&image, &cfg(None, Some(&["x"])));
        assert_eq!(command_line(&m).unwrap(), vec!["/entry", "x"]);
        // --entrypoint given: the image's cmd is dropped.
        let m = merge_config(&image, &cfg(Some(&["/other"]), None));
        assert_eq!(command_line(&m).unwrap(), vec!["/other"]);
        // --entrypoint "" clears the entrypoint but keeps the image's cmd.
        let m = merge_config(&image, &cfg(Some(&[]), None));
        assert_eq!(command_line(&m).unwrap(), vec!["default-arg"]);
        // Nothing at all to run.
        let err = command_line(&merge_config(
            &ContainerConfig::default(),
            &ContainerConfig::default(),
        ));
        assert_eq!(err.unwrap_err().to_string(), "no command specified");
    }

    #[test]
    fn env_labels_ports_volumes_merge() {
        let image = ContainerConfig {
            env: Some(vec!["PATH=/img".into(), "A=image".into(), "B=image".into()]),
            labels: Some([("l1".into(), "image".into()), ("l2".into(), "image".into())].into()),
            exposed_ports: Some([("80/tcp".into(), serde_json::json!({}))].into()),
            volumes: Some([("/data".into(), serde_json::json!({}))].into()),
            working_dir: Some("/app".into()),
            stop_signal: Some("SIGQUIT".into()),
            on_build: Some(vec!["RUN x".into()]),
            ..Default::default()
        };
        let user = ContainerConfig {
            env: Some(vec!["A=user".into(), "C=user".into()]),
            labels: Some([("l2".into(), "user".into())].into()),
            exposed_ports: Some([("53/udp".into(), serde_json::json!({}))].into()),
            ..Default::default()
        };
        let m = merge_config(&image, &user);
        assert_eq!(
            m.env.unwrap(),
            vec!["A=user", "C=user", "PATH=/img", "B=image"]
        );
        let labels = m.labels.unwrap();
        assert_eq!(
            (labels["l1"].as_str(), labels["l2"].as_str()),
            ("image", "user")
        );
        assert_eq!(m.exposed_ports.unwrap().len(), 2);
        assert_eq!(m.volumes.unwrap().len(), 1);
        assert_eq!(m.working_dir.unwrap(), "/app");
        assert_eq!(m.stop_signal.unwrap(), "SIGQUIT");
        assert_eq!(m.on_build.unwrap(), vec!["RUN x"]);
    }

    fn layer(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
        for (p, c) in files {
            let p = dir.join(p);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, c).unwrap();
        }
        dir.to_path_buf()
    }

    #[test]
    fn users_resolve_through_the_layer_chain() {
        let tmp = tempfile::Builder::new()
            .prefix("berth-test-user")
            .tempdir()
            .unwrap();
        let lower = layer(
            &tmp.path().join("lower"),
            &[
                (
                    "etc/passwd",
                    "root:x:0:0:root:/root:/bin/sh\nold:x:5:5::/old:/bin/sh\n",
                ),
                ("etc/group", "root:x:0:\n"),
            ],
        );
        let upper = layer(
            &tmp.path().join("upper"),
            &[
                (
                    "etc/passwd",
                    "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n",
                ),
                (
                    "etc/group",
                    "root:x:0:\napp:x:1001:\nstaff:x:50:app\ndev:x:60:other,app\n",
                ),
            ],
        );
        let files = ImageFiles::from_layers(vec![upper, lower]);
        let u = resolve_user(&files, "app").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (1000, 1001, "/home/app"));
        assert_eq!(u.additional_gids, vec![50, 60]);
        assert_eq!(resolve_user(&files, "").unwrap().uid, 0);
        let u = resolve_user(&files, "1000:staff").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 50));
        let u = resolve_user(&files, "4242:4343").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4242, 4343, "/"));
        // The upper layer's passwd hides the lower one's users.
        let err = resolve_user(&files, "old").unwrap_err().to_string();
        assert_eq!(
            err,
            "unable to find user old: no matching entries in passwd file"
        );
        let err = resolve_user(&files, "app:nogroup").unwrap_err().to_string();
        assert!(err.contains("unable to find group nogroup"), "{err}");

        let p = process_for(
            &files,
            &ContainerConfig {
                cmd: Some(vec!["sh".into()]),
                user: Some("app".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            p.env,
            vec![DEFAULT_PATH.to_string(), "HOME=/home/app".to_string()]
        );
        assert_eq!(p.cwd, "/");
    }

    #[test]
    fn whiteouts_hide_files_of_lower_layers() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: whiteout devices need root");
            return;
        }
        let tmp = tempfile::Builder::new()
            .prefix("berth-test-wh")
            .tempdir()
            .unwrap();
        let lower = layer(
            &tmp.path().join("lower"),
            &[("etc/passwd", "app:x:1:1::/:/bin/sh\n")],
        );
        let upper = tmp.path().join("upper");
        fs::create_dir_all(upper.join("etc")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            upper.join("etc/passwd").as_path(),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(0),
            0,
        )
        .unwrap();
        let files = ImageFiles::from_layers(vec![upper.clone(), lower.clone()]);
        assert_eq!(files.read("etc/passwd").unwrap(), None);
        assert!(resolve_user(&files, "app").is_err());
        // An opaque /etc in the upper layer hides the lower /etc entirely.
        let upper2 = tmp.path().join("upper2");
        fs::create_dir_all(upper2.join("etc")).unwrap();
        rustix::fs::setxattr(
            upper2.join("etc").as_path(),
            "trusted.overlay.opaque",
            b"y",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        let files = ImageFiles::from_layers(vec![upper2, lower.clone()]);
        assert_eq!(files.read("etc/passwd").unwrap(), None);
        let files = ImageFiles::from_layers(vec![lower]);
        assert!(files.read("/etc/passwd").unwrap().is_some());
    }
}
