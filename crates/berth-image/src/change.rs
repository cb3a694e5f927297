//! `--change` instructions for `import` and `commit`: the Dockerfile instructions that only
//! touch the image config (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, WORKDIR, VOLUME,
//! STOPSIGNAL, ONBUILD), with Docker's parsing rules: JSON or shell form for CMD/ENTRYPOINT,
//! `k=v` pairs with quotes or the legacy `ENV k v` form, port ranges for EXPOSE. As in a
//! Dockerfile, ENTRYPOINT clears an inherited CMD unless a CMD change came before it.

use std::collections::BTreeMap;

use crate::error::{ImageError, Result};
use crate::formats::ContainerConfig;

/// Applies `changes` (in order) to `cfg`.
pub fn apply_changes(cfg: &mut ContainerConfig, changes: &[String]) -> Result<()> {
    let mut cmd_set = false;
    for change in changes {
        apply_one(cfg, change, &mut cmd_set)?;
    }
    Ok(())
}

fn bad(change: &str, reason: impl std::fmt::Display) -> ImageError {
    ImageError::InvalidArgument(format!("invalid change {change:?}: {reason}"))
}

fn apply_one(cfg: &mut ContainerConfig, change: &str, cmd_set: &mut bool) -> Result<()> {
    let trimmed = change.trim();
    let (instr, rest) = match trimmed.split_once(|c: char| c.is_whitespace()) {
        Some((i, r)) => (i, r.trim()),
        None => (trimmed, ""),
    };
    let upper = instr.to_ascii_uppercase();
    let need_args = |what: &str| -> Result<()> {
        if rest.is_empty() {
            Err(bad(
                change,
                format!("{what} requires at least one argument"),
            ))
        } else {
            Ok(())
        }
    };
    match upper.as_str() {
        "CMD" => {
            need_args("CMD")?;
            cfg.cmd = Some(command_form(rest));
            *cmd_set = true;
        }
        "ENTRYPOINT" => {
            need_args("ENTRYPOINT")?;
            cfg.entrypoint = Some(command_form(rest));
            if !*cmd_set {
                cfg.cmd = None;
            }
        }
        "ENV" => {
            need_args("ENV")?;
            let pairs = key_values(change, rest, "ENV")?;
            let env = cfg.env.get_or_insert_with(Vec::new);
            for (k, v) in pairs {
                let entry = format!("{k}={v}");
                match env
                    .iter_mut()
                    .find(|e| e.split('=').next() == Some(k.as_str()))
                {
                    Some(e) => *e = entry,
                    None => env.push(entry),
                }
            }
        }
        "LABEL" => {
            need_args("LABEL")?;
            let pairs = key_values(change, rest, "LABEL")?;
            let labels = cfg.labels.get_or_insert_with(BTreeMap::new);
            for (k, v) in pairs {
                labels.insert(k, v);
            }
        }
        "EXPOSE" => {
            need_args("EXPOSE")?;
            let ports = cfg.exposed_ports.get_or_insert_with(BTreeMap::new);
            for p in words(rest).map_err(|e| bad(change, e))? {
                for port in expand_port(&p).map_err(|e| bad(change, e))? {
                    ports.insert(port, serde_json::json!({}));
                }
            }
        }
        "USER" => {
            need_args("USER")?;
            cfg.user = Some(rest.to_string());
        }
        "WORKDIR" => {
            need_args("WORKDIR")?;
            let w = unquote(rest);
            let path = if w.starts_with('/') {
                w
            } else {
                let base = cfg.working_dir.clone().unwrap_or_else(|| "/".into());
                format!("{}/{w}", base.trim_end_matches('/'))
            };
            cfg.working_dir = Some(path);
        }
        "VOLUME" => {
            need_args("VOLUME")?;
            let list = match json_array(rest) {
                Some(v) => v,
                None => words(rest).map_err(|e| bad(change, e))?,
            };
            let vols = cfg.volumes.get_or_insert_with(BTreeMap::new);
            for v in list {
                if v.is_empty() {
                    return Err(bad(change, "VOLUME specified can not be an empty string"));
                }
                vols.insert(v, serde_json::json!({}));
            }
        }
        "STOPSIGNAL" => {
            need_args("STOPSIGNAL")?;
            let sig = rest.to_string();
            let ok = sig.parse::<u32>().is_ok()
                || sig.trim_start_matches("SIG").bytes().all(|b| {
                    b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'+' || b == b'-'
                });
            if !ok || sig.is_empty() {
                return Err(bad(change, format!("invalid signal {sig:?}")));
            }
            cfg.stop_signal = Some(sig);
        }
        "ONBUILD" => {
            need_args("ONBUILD")?;
            let inner = rest
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            if matches!(inner.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
                return Err(bad(
                    change,
                    format!("{inner} isn't allowed as an ONBUILD trigger"),
                ));
            }
            let trigger = match rest.split_once(|c: char| c.is_whitespace()) {
                Some((i, r)) => format!("{} {}", i.to_ascii_uppercase(), r.trim()),
                None => inner,
            };
            cfg.on_build.get_or_insert_with(Vec::new).push(trigger);
        }
        "" => return Err(bad(change, "empty change")),
        other => {
            return Err(ImageError::InvalidArgument(format!(
                "{other} is not a valid change command"
            )));
        }
    }
    Ok(())
}

/// JSON form (`["a", "b"]`) or shell form (`/bin/sh -c "<rest>"`).
fn command_form(rest: &str) -> Vec<String> {
    match json_array(rest) {
        Some(v) => v,
        None => vec!["/bin/sh".into(), "-c".into(), rest.to_string()],
    }
}

fn json_array(s: &str) -> Option<Vec<String>> {
    if !s.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(s).ok()
}

fn unquote(s: &str) -> String {
    words(s)
        .ok()
        .filter(|w| w.len() == 1)
        .and_then(|mut w| w.pop())
        .unwrap_or_else(|| s.to_string())
}

/// Splits on whitespace, honouring double and single quotes and backslash escapes.
fn words(s: &str) -> std::result::Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, '"') | (None, '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => cur.push(c),
            (_, '\\') => {
                in_word = true;
                match chars.next() {
                    Some(n) => cur.push(n),
                    None => cur.push('\\'),
                }
            }
            (_, c) => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if let Some(q) = quote {
        return Err(format!("unmatched {q} quote"));
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// `k=v k2="v 2"` pairs, or the legacy `k v w` form (one key, the rest is the value).
fn key_values(change: &str, rest: &str, what: &str) -> Result<Vec<(String, String)>> {
    let ws = words(rest).map_err(|e| bad(change, e))?;
    let first_has_eq = ws.first().is_some_and(|w| w.contains('='));
    if !first_has_eq {
        if ws.len() < 2 {
            return Err(bad(change, format!("{what} must have two arguments")));
        }
        // Legacy form: the value is the raw text after the key.
        let key = ws[0].clone();
        let value = rest[rest.find(char::is_whitespace).unwrap_or(rest.len())..]
            .trim()
            .to_string();
        return Ok(vec![(key, unquote(&value))]);
    }
    let mut out = Vec::new();
    for w in ws {
        let (k, v) = w.split_once('=').ok_or_else(|| {
            bad(
                change,
                format!("{what} names can not be blank: {w:?} has no '='"),
            )
        })?;
        if k.is_empty() {
            return Err(bad(change, format!("{what} names can not be blank")));
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// `80`, `80/udp`, `8000-8002/tcp` → `["80/tcp"]`, …
fn expand_port(p: &str) -> std::result::Result<Vec<String>, String> {
    let (range, proto) = match p.split_once('/') {
        Some((r, proto)) => (r, proto.to_ascii_lowercase()),
        None => (p, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    let parse = |s: &str| {
        s.parse::<u16>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("invalid port: {s:?}"))
    };
    let (lo, hi) = match range.split_once('-') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => {
            let n = parse(range)?;
            (n, n)
        }
    };
    if hi < lo {
        return Err(format!("invalid port range: {range}"));
    }
    Ok((lo..=hi).map(|n| format!("{n}/{proto}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(base: ContainerConfig, changes: &[&str]) -> Result<ContainerConfig> {
        let mut c = base;
        apply_changes(
            &mut c,
            &changes.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )?;
        Ok(c)
    }

    #[test]
    fn all_instructions() {
        let c = apply(
            ContainerConfig {
                env: Some(vec!["PATH=/bin".into(), "A=old".into()]),
                ..Default::default()
            },
            &[
                r#"CMD ["echo", "hi"]"#,
                "ENV A=new B=\"two words\"",
                "ENV LEGACY some value",
                "EXPOSE 80 53/udp 8000-8001",
                r#"LABEL "com.x"=y z=1"#,
                "USER app:staff",
                "WORKDIR /srv",
                "WORKDIR data",
                r#"VOLUME ["/v1", "/v2"]"#,
                "VOLUME /v3",
                "STOPSIGNAL SIGINT",
                "onbuild run echo x",
            ],
        )
        .unwrap();
        assert_eq!(c.cmd.unwrap(), vec!["echo", "hi"]);
        assert_eq!(
            c.env.unwrap(),
            vec!["PATH=/bin", "A=new", "B=two words", "LEGACY=some value"]
        );
        let ports: Vec<_> = c.exposed_ports.unwrap().into_keys().collect();
        assert_eq!(ports, vec!["53/udp", "80/tcp", "8000/tcp", "8001/tcp"]);
        let labels = c.labels.unwrap();
        assert_eq!(labels["com.x"], "y");
        assert_eq!(labels["z"], "1");
        assert_eq!(c.user.unwrap(), "app:staff");
        assert_eq!(c.working_dir.unwrap(), "/srv/data");
        assert_eq!(c.volumes.unwrap().len(), 3);
        assert_eq!(c.stop_signal.unwrap(), "SIGINT");
        assert_eq!(c.on_build.unwrap(), vec!["RUN echo x"]);
    }

    #[test]
    fn entrypoint_resets_inherited_cmd_like_a_dockerfile() {
        let base = ContainerConfig {
            cmd: Some(vec!["sh".into()]),
            ..Default::default()
        };
        let c = apply(base.clone(), &["ENTRYPOINT top -b"]).unwrap();
        assert_eq!(c.entrypoint.unwrap(), vec!["/bin/sh", "-c", "top -b"]);
        assert_eq!(c.cmd, None);
        let c = apply(base, &["CMD [\"-x\"]", "ENTRYPOINT [\"app\"]"]).unwrap();
        assert_eq!(c.cmd.unwrap(), vec!["-x"]);
    }

    #[test]
    fn rejects_bad_changes_with_reasons() {
        let e = |c: &str| {
            apply(ContainerConfig::default(), &[c])
                .unwrap_err()
                .to_string()
        };
        assert_eq!(e("RUN rm -rf /"), "RUN is not a valid change command");
        assert!(e("EXPOSE 99999").contains("invalid port"));
        assert!(e("EXPOSE 80/xyz").contains("invalid proto"));
        assert!(e("ENV").contains("requires at least one argument"));
        assert!(e("ENV =x").contains("names can not be blank"));
        assert!(e("LABEL a=\"unterminated").contains("unmatched"));
        assert!(e("ONBUILD FROM x").contains("isn't allowed"));
        assert!(e("STOPSIGNAL kill!").contains("invalid signal"));
    }
}
