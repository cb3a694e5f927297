//! `--mount`, `-v` and `--tmpfs` syntaxes.

use std::collections::HashMap;

use berth_api::models::{
    Mount, MountBindOptions, MountBindOptionsPropagationEnum, MountTmpfsOptions, MountTypeEnum,
    MountVolumeOptions, MountVolumeOptionsDriverConfig,
};

use super::units::ram_in_bytes;

fn parse_bool(key: &str, v: &str) -> Result<bool, String> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("invalid value for {key}: {v}")),
    }
}

fn need<'a>(v: Option<&'a str>, field: &str) -> Result<&'a str, String> {
    v.ok_or_else(|| format!("invalid field '{field}' must be a key=value pair"))
}

/// `--mount type=bind,source=/src,target=/dst,readonly` (CSV of key=value; `readonly`,
/// `volume-nocopy` and `bind-nonrecursive` may stand alone).
pub fn parse_mount(spec: &str) -> Result<Mount, String> {
    let mut m = Mount {
        typ: Some(MountTypeEnum::VOLUME),
        ..Default::default()
    };
    let mut bind = MountBindOptions::default();
    let mut volume = MountVolumeOptions::default();
    let mut tmpfs = MountTmpfsOptions::default();
    let (mut has_bind, mut has_volume, mut has_tmpfs) = (false, false, false);
    if spec.trim().is_empty() {
        return Err("value is empty".into());
    }
    for field in spec.split(',') {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        match key.as_str() {
            "readonly" | "ro" => {
                m.read_only = Some(match value {
                    None => true,
                    Some(v) => parse_bool(&key, v)?,
                })
            }
            "volume-nocopy" => {
                has_volume = true;
                volume.no_copy = Some(match value {
                    None => true,
                    Some(v) => parse_bool(&key, v)?,
                });
            }
            "bind-nonrecursive" => {
                has_bind = true;
                bind.non_recursive = Some(match value {
                    None => true,
                    Some(v) => parse_bool(&key, v)?,
                });
            }
            "type" => {
                m.typ = Some(match need(value, field)? {
                    "bind" => MountTypeEnum::BIND,
                    "volume" => MountTypeEnum::VOLUME,
                    "tmpfs" => MountTypeEnum::TMPFS,
                    other => {
                        return Err(format!(
                            "invalid mount type {other:?} (expected bind, volume or tmpfs)"
                        ));
                    }
                })
            }
            "source" | "src" => m.source = Some(need(value, field)?.to_owned()),
            "target" | "destination" | "dst" => m.target = Some(need(value, field)?.to_owned()),
            "consistency" => m.consistency = Some(need(value, field)?.to_owned()),
            "bind-propagation" => {
                has_bind = true;
                bind.propagation = Some(match need(value, field)? {
                    "private" => MountBindOptionsPropagationEnum::PRIVATE,
                    "rprivate" => MountBindOptionsPropagationEnum::RPRIVATE,
                    "shared" => MountBindOptionsPropagationEnum::SHARED,
                    "rshared" => MountBindOptionsPropagationEnum::RSHARED,
                    "slave" => MountBindOptionsPropagationEnum::SLAVE,
                    "rslave" => MountBindOptionsPropagationEnum::RSLAVE,
                    other => return Err(format!("invalid bind propagation {other:?}")),
                })
            }
            "volume-label" => {
                has_volume = true;
                let (k, v) = need(value, field)?
                    .split_once('=')
                    .unwrap_or((need(value, field)?, ""));
                volume
                    .labels
                    .get_or_insert_with(HashMap::new)
                    .insert(k.to_owned(), v.to_owned());
            }
            "volume-driver" => {
                has_volume = true;
                volume
                    .driver_config
                    .get_or_insert_with(Default::default)
                    .name = Some(need(value, field)?.to_owned());
            }
            "volume-opt" => {
                has_volume = true;
                let v = need(value, field)?;
                let (k, val) = v.split_once('=').unwrap_or((v, ""));
                let dc: &mut MountVolumeOptionsDriverConfig =
                    volume.driver_config.get_or_insert_with(Default::default);
                dc.options
                    .get_or_insert_with(HashMap::new)
                    .insert(k.to_owned(), val.to_owned());
            }
            "volume-subpath" => {
                has_volume = true;
                volume.subpath = Some(need(value, field)?.to_owned());
            }
            "tmpfs-size" => {
                has_tmpfs = true;
                let v = need(value, field)?;
                tmpfs.size_bytes =
                    Some(ram_in_bytes(v).map_err(|_| format!("invalid value for {key}: {v}"))?);
            }
            "tmpfs-mode" => {
                has_tmpfs = true;
                let v = need(value, field)?;
                tmpfs.mode = Some(
                    i64::from_str_radix(v, 8)
                        .map_err(|_| format!("invalid value for {key}: {v}"))?,
                );
            }
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
    }
    let typ = m.typ.expect("type defaults to volume");
    let type_name = typ.to_string();
    if m.target.as_deref().unwrap_or("").is_empty() {
        return Err("target is required".into());
    }
    if !m.target.as_deref().unwrap_or("").starts_with('/') {
        return Err(format!(
            "invalid mount path: '{}' mount path must be absolute",
            m.target.as_deref().unwrap_or("")
        ));
    }
    if has_bind && typ != MountTypeEnum::BIND {
        return Err(format!(
            "cannot mix 'bind-*' options with mount type '{type_name}'"
        ));
    }
    if has_volume && typ != MountTypeEnum::VOLUME {
        return Err(format!(
            "cannot mix 'volume-*' options with mount type '{type_name}'"
        ));
    }
    if has_tmpfs && typ != MountTypeEnum::TMPFS {
        return Err(format!(
            "cannot mix 'tmpfs-*' options with mount type '{type_name}'"
        ));
    }
    match typ {
        MountTypeEnum::BIND if m.source.as_deref().unwrap_or("").is_empty() => {
            return Err(
                "invalid mount config for type \"bind\": field Source must not be empty".into(),
            );
        }
        MountTypeEnum::TMPFS if m.source.is_some() => {
            return Err(
                "invalid mount config for type \"tmpfs\": field Source must not be specified"
                    .into(),
            );
        }
        _ => {}
    }
    if has_bind {
        m.bind_options = Some(bind);
    }
    if has_volume {
        m.volume_options = Some(volume);
    }
    if has_tmpfs {
        m.tmpfs_options = Some(tmpfs);
    }
    Ok(m)
}

/// What a `-v` spec means: a bind mount (`/host:/ctr[:mode]`) goes into `Binds`, a bare
/// container path is an anonymous volume (`Config.Volumes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeSpec {
    Bind(String),
    Anonymous(String),
}

/// `-v [SRC:]DST[:MODE]`.
pub fn parse_volume(spec: &str) -> Result<VolumeSpec, String> {
    let bad = |why: &str| format!("invalid volume specification: '{spec}': {why}");
    let parts: Vec<&str> = spec.split(':').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(bad("empty section between colons"));
    }
    // a mode (`[:MODE]`) is the daemon's to check, as docker's CLI leaves it
    // (`Error response from daemon: invalid mode: zz`)
    let (src, dst) = match parts.as_slice() {
        [dst] => (None, *dst),
        [src, dst] | [src, dst, _] => (Some(*src), *dst),
        _ => return Err(bad("too many colons")),
    };
    if !dst.starts_with('/') {
        return Err(bad(&format!(
            "invalid mount path: '{dst}' mount path must be absolute"
        )));
    }
    if dst == "/" {
        return Err(bad("invalid mount path: '/' cannot be a mount destination"));
    }
    match src {
        None => Ok(VolumeSpec::Anonymous(dst.to_owned())),
        Some(src) => {
            let is_path = src.starts_with('/') || src.starts_with('.') || src.starts_with('~');
            if !is_path && !valid_volume_name(src) {
                return Err(format!(
                    "{src:?} includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
                ));
            }
            Ok(VolumeSpec::Bind(spec.to_owned()))
        }
    }
}

fn valid_volume_name(s: &str) -> bool {
    let mut cs = s.chars();
    matches!(cs.next(), Some(c) if c.is_ascii_alphanumeric())
        && cs.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// `--tmpfs /dst[:opts]` → (`/dst`, `opts`).
pub fn parse_tmpfs(spec: &str) -> Result<(String, String), String> {
    let (dst, opts) = spec.split_once(':').unwrap_or((spec, ""));
    if !dst.starts_with('/') {
        return Err(format!(
            "invalid tmpfs specification '{spec}': mount path '{dst}' must be absolute"
        ));
    }
    for opt in opts.split(',').filter(|o| !o.is_empty()) {
        if let Some(size) = opt.strip_prefix("size=") {
            ram_in_bytes(size)
                .map_err(|e| format!("invalid tmpfs option '{opt}' in '{spec}': {e}"))?;
        }
    }
    Ok((dst.to_owned(), opts.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts() {
        let m = parse_mount("type=bind,src=/srv,dst=/data,readonly").unwrap();
        assert_eq!(m.typ, Some(MountTypeEnum::BIND));
        assert_eq!(
            (m.source.as_deref(), m.target.as_deref(), m.read_only),
            (Some("/srv"), Some("/data"), Some(true))
        );
        let m = parse_mount("type=tmpfs,destination=/x,tmpfs-size=64m,tmpfs-mode=1770").unwrap();
        let t = m.tmpfs_options.unwrap();
        assert_eq!((t.size_bytes, t.mode), (Some(64 << 20), Some(0o1770)));
        let m =
            parse_mount("type=bind,source=/a,target=/b,bind-propagation=rshared,ro=false").unwrap();
        assert_eq!(
            m.bind_options.unwrap().propagation,
            Some(MountBindOptionsPropagationEnum::RSHARED)
        );
        assert_eq!(m.read_only, Some(false));
        let m = parse_mount("target=/v,volume-label=a=b,volume-opt=o=1").unwrap();
        assert_eq!(m.typ, Some(MountTypeEnum::VOLUME));
        assert_eq!(m.volume_options.unwrap().labels.unwrap()["a"], "b");
    }

    #[test]
    fn bad_mounts() {
        let cases = [
            ("", "value is empty"),
            ("type=bind,src=/a", "target is required"),
            ("type=bind,dst=/b", "field Source must not be empty"),
            ("type=tmpfs,src=/a,dst=/b", "must not be specified"),
            ("type=nfs,dst=/b", "invalid mount type"),
            ("type=bind,src=/a,dst=b", "must be absolute"),
            (
                "type=bind,src=/a,dst=/b,color=red",
                "unexpected key 'color'",
            ),
            ("type=bind,src,dst=/b", "must be a key=value pair"),
            (
                "type=bind,src=/a,dst=/b,readonly=maybe",
                "invalid value for readonly",
            ),
            (
                "type=tmpfs,dst=/b,tmpfs-size=big",
                "invalid value for tmpfs-size",
            ),
            (
                "type=volume,dst=/b,bind-propagation=shared",
                "cannot mix 'bind-*'",
            ),
            (
                "type=bind,src=/a,dst=/b,volume-nocopy",
                "cannot mix 'volume-*'",
            ),
        ];
        for (spec, want) in cases {
            let e = parse_mount(spec).unwrap_err();
            assert!(e.contains(want), "{spec}: {e}");
        }
    }

    #[test]
    fn volumes() {
        assert_eq!(
            parse_volume("/src:/dst:ro"),
            Ok(VolumeSpec::Bind("/src:/dst:ro".into()))
        );
        assert_eq!(
            parse_volume("data:/dst"),
            Ok(VolumeSpec::Bind("data:/dst".into()))
        );
        assert_eq!(
            parse_volume("/dst"),
            Ok(VolumeSpec::Anonymous("/dst".into()))
        );
        assert_eq!(
            parse_volume("/a:/b:ro,rshared"),
            Ok(VolumeSpec::Bind("/a:/b:ro,rshared".into()))
        );
        assert!(
            parse_volume("/a:b")
                .unwrap_err()
                .contains("must be absolute")
        );
        assert!(
            parse_volume("/a::/b")
                .unwrap_err()
                .contains("empty section")
        );
        assert!(
            parse_volume("/a:/b:c:d")
                .unwrap_err()
                .contains("too many colons")
        );
        // modes are checked by the daemon, as docker's CLI leaves them
        assert_eq!(
            parse_volume("/a:/b:rx").unwrap(),
            VolumeSpec::Bind("/a:/b:rx".into())
        );
        assert!(
            parse_volume("bad name:/b")
                .unwrap_err()
                .contains("invalid characters")
        );
        assert!(parse_volume("/a:/").is_err());
    }

    #[test]
    fn tmpfs() {
        assert_eq!(
            parse_tmpfs("/x:size=64m,mode=1777"),
            Ok(("/x".into(), "size=64m,mode=1777".into()))
        );
        assert_eq!(parse_tmpfs("/run"), Ok(("/run".into(), String::new())));
        assert!(parse_tmpfs("x:size=1m").is_err());
        assert!(parse_tmpfs("/x:size=lots").is_err());
    }
}
