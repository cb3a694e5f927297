//! `ps` rows: the fields Docker's container formatter offers (`.ID`, `.Image`, `.Command`,
//! `.RunningFor`, `.Status`, `.Ports`, `.Names`, `.Label "k"`, ...).

use std::time::{Duration, SystemTime};

use berth_api::humanize::{human_duration, human_size_with_precision};
use berth_api::models::{ContainerSummary, Port};

use super::{ellipsis, familiar_name, go_time_string, truncate_id};
use crate::format::FormatError;
use crate::template::Value;

/// Docker's default `ps` table.
pub const DEFAULT_TABLE: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

/// The Go type of docker's `ps` rows, named in its template errors.
pub const ROW_TYPE: &str = "*formatter.ContainerContext";

/// docker's check of a custom `ps --format` before listing (docker-cli
/// `buildContainerListOptions`): the whole format, `table` included, runs once over an empty
/// row, so a bad field fails even when no container matches, with docker's wording.
pub fn validate_ps_format(format: &str) -> Result<(), String> {
    let t = crate::template::Template::parse(format)
        .map_err(|e| format!("failed to parse template: {e}"))?;
    let probe = row(&ContainerSummary::default(), true, SystemTime::now());
    t.execute_as(&probe, ROW_TYPE)
        .map_err(|e| format!("failed to execute template: {e}"))?;
    Ok(())
}

/// The format `ps` uses for the given flags.
pub fn ps_format(custom: Option<&str>, quiet: bool, size: bool) -> String {
    match custom {
        Some("table") | Some("") | None => {
            if quiet {
                "{{.ID}}".into()
            } else if size {
                format!("{DEFAULT_TABLE}\t{{{{.Size}}}}")
            } else {
                DEFAULT_TABLE.into()
            }
        }
        Some(_) if quiet => "{{.ID}}".into(),
        Some(f) => f.to_owned(),
    }
}

/// Column titles.
pub fn header() -> Value {
    let h = |k: &str, v: &str| (k.to_owned(), Value::str(v));
    Value::Map(vec![
        h("ID", "CONTAINER ID"),
        h("Names", "NAMES"),
        h("Image", "IMAGE"),
        h("Command", "COMMAND"),
        h("CreatedAt", "CREATED AT"),
        h("RunningFor", "CREATED"),
        h("Ports", "PORTS"),
        h("State", "STATE"),
        h("Status", "STATUS"),
        h("Size", "SIZE"),
        h("Labels", "LABELS"),
        h("Mounts", "MOUNTS"),
        h("LocalVolumes", "LOCAL VOLUMES"),
        h("Networks", "NETWORKS"),
        h("Platform", "PLATFORM"),
        (
            "Label".to_owned(),
            Value::func(|args| {
                let name = match args {
                    [Value::Str(s)] => s.clone(),
                    _ => {
                        return Err(format!(
                            "wrong number of args for Label: want 1 got {}",
                            args.len()
                        ));
                    }
                };
                let last = name
                    .rsplit('.')
                    .next()
                    .unwrap_or("")
                    .replace(['-', '_'], " ");
                Ok(Value::Str(last))
            }),
        ),
    ])
}

/// One row; keys sorted like Docker's JSON form of the context.
pub fn row(c: &ContainerSummary, trunc: bool, now: SystemTime) -> Value {
    let id = c.id.clone().unwrap_or_default();
    let names: Vec<String> = c
        .names
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|n| n.trim_start_matches('/').to_owned())
        .collect();
    let names = if trunc {
        names
            .iter()
            .find(|n| !n.contains('/'))
            .cloned()
            .unwrap_or_default()
    } else {
        names.join(",")
    };
    let image = c.image.clone().unwrap_or_default();
    let image = if image.is_empty() {
        "<no image>".to_owned()
    } else if !trunc {
        image
    } else if truncate_id(c.image_id.as_deref().unwrap_or("")) == truncate_id(&image) {
        truncate_id(&image)
    } else {
        let no_digest = match image.split_once('@') {
            Some((name, _)) => name.to_owned(),
            None => image.clone(),
        };
        familiar_name(&no_digest)
    };
    let command = c.command.clone().unwrap_or_default();
    let command = crate::template::funcs::go_quote(&if trunc {
        ellipsis(&command, 20)
    } else {
        command
    });
    let created = c.created.unwrap_or(0);
    let created_at = SystemTime::UNIX_EPOCH + Duration::from_secs(created.max(0) as u64);
    let running_for = format!(
        "{} ago",
        human_duration(now.duration_since(created_at).unwrap_or_default())
    );
    let mut labels: Vec<String> = c
        .labels
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    labels.sort();
    let size_rw = c.size_rw.unwrap_or(0);
    let size_root = c.size_root_fs.unwrap_or(0);
    let size = if size_root > 0 {
        format!(
            "{} (virtual {})",
            human_size_with_precision(size_rw as f64, 3),
            human_size_with_precision(size_root as f64, 3)
        )
    } else {
        human_size_with_precision(size_rw as f64, 3)
    };
    let mounts: Vec<String> = c
        .mounts
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|m| {
            let name = m
                .name
                .clone()
                .filter(|n| !n.is_empty())
                .or_else(|| m.source.clone())
                .unwrap_or_default();
            if trunc { ellipsis(&name, 15) } else { name }
        })
        .collect();
    let local_volumes = c
        .mounts
        .as_ref()
        .map(|ms| {
            ms.iter()
                .filter(|m| m.driver.as_deref() == Some("local"))
                .count()
        })
        .unwrap_or(0);
    let mut networks: Vec<String> = c
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .map(|n| n.keys().cloned().collect())
        .unwrap_or_default();
    networks.sort();
    let label_map = c.labels.clone().unwrap_or_default();
    let s = |v: String| Value::Str(v);
    Value::Map(vec![
        ("Command".into(), s(command)),
        ("CreatedAt".into(), s(go_time_string(created))),
        ("ID".into(), s(if trunc { truncate_id(&id) } else { id })),
        ("Image".into(), s(image)),
        ("Labels".into(), s(labels.join(","))),
        ("LocalVolumes".into(), s(local_volumes.to_string())),
        ("Mounts".into(), s(mounts.join(","))),
        ("Names".into(), s(names)),
        ("Networks".into(), s(networks.join(","))),
        // docker 28 shows the image manifest's platform (API 1.48); 1.47 has none: nil
        ("Platform".into(), Value::Nil),
        (
            "Ports".into(),
            s(displayable_ports(c.ports.as_deref().unwrap_or(&[]))),
        ),
        ("RunningFor".into(), s(running_for)),
        ("Size".into(), s(size)),
        ("State".into(), s(c.state.clone().unwrap_or_default())),
        ("Status".into(), s(c.status.clone().unwrap_or_default())),
        (
            "Label".into(),
            Value::func(move |args| match args {
                [Value::Str(k)] => Ok(Value::Str(label_map.get(k).cloned().unwrap_or_default())),
                _ => Err(format!(
                    "wrong number of args for Label: want 1 got {}",
                    args.len()
                )),
            }),
        ),
    ])
}

/// Docker's `DisplayablePorts`: consecutive ports grouped into ranges, published ports as
/// `0.0.0.0:8080->80/tcp`.
pub fn displayable_ports(ports: &[Port]) -> String {
    let mut ports: Vec<&Port> = ports.iter().collect();
    ports.sort_by(|a, b| {
        (
            a.private_port,
            a.ip.clone().unwrap_or_default(),
            a.public_port,
            a.typ.map(|t| t.to_string()),
        )
            .cmp(&(
                b.private_port,
                b.ip.clone().unwrap_or_default(),
                b.public_port,
                b.typ.map(|t| t.to_string()),
            ))
    });
    let mut groups: Vec<(String, u16, u16)> = Vec::new();
    let mut result = Vec::new();
    let mut host_mappings = Vec::new();
    for p in ports {
        let current = p.private_port;
        let typ = p.typ.map(|t| t.to_string()).unwrap_or_else(|| "tcp".into());
        let ip = p.ip.clone().unwrap_or_default();
        let mut key = typ.clone();
        if !ip.is_empty() {
            let public = p.public_port.unwrap_or(0);
            if public != current {
                host_mappings.push(format!(
                    "{}->{}/{}",
                    join_host_port(&ip, &public.to_string()),
                    p.private_port,
                    typ
                ));
                continue;
            }
            key = format!("{ip}/{typ}");
        }
        match groups.iter_mut().find(|(k, _, _)| *k == key) {
            None => groups.push((key, current, current)),
            Some(g) if current == g.2.wrapping_add(1) => g.2 = current,
            Some(g) => {
                result.push(form_group(&g.0, g.1, g.2));
                *g = (key, current, current);
            }
        }
    }
    for (k, first, last) in &groups {
        result.push(form_group(k, *first, *last));
    }
    result.extend(host_mappings);
    result.join(", ")
}

fn join_host_port(ip: &str, port: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

fn form_group(key: &str, first: u16, last: u16) -> String {
    let (ip, typ) = match key.rsplit_once('/') {
        Some((ip, t)) => (ip, t),
        None => ("", key),
    };
    let mut group = first.to_string();
    if first != last {
        group = format!("{group}-{last}");
    }
    if !ip.is_empty() {
        group = format!("{}->{group}", join_host_port(ip, &group));
    }
    format!("{group}/{typ}")
}

/// Renders `ps` output.
pub fn render(
    list: &[ContainerSummary],
    format: &str,
    trunc: bool,
    now: SystemTime,
) -> Result<String, FormatError> {
    let f = super::Formatter::typed(format, ROW_TYPE)?;
    let rows: Vec<Value> = list.iter().map(|c| row(c, trunc, now)).collect();
    f.render(&rows, &header())
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::models::PortTypeEnum;
    use std::collections::HashMap;

    fn sample(now: SystemTime) -> ContainerSummary {
        let created = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            - 75;
        ContainerSummary {
            id: Some("4fa6e0f0c6786287e131c3852c58a2e01cc697a68231826813597e4994f1d6e2".into()),
            names: Some(vec!["/web".into()]),
            image: Some("busybox".into()),
            image_id: Some("sha256:aaaaaaaaaaaabbbb".into()),
            command: Some("sh -c 'while true; do sleep 1; done'".into()),
            created: Some(created),
            state: Some("running".into()),
            status: Some("Up About a minute".into()),
            labels: Some(HashMap::from([
                ("b".into(), "2".into()),
                ("a".into(), "1".into()),
            ])),
            ..Default::default()
        }
    }

    #[test]
    fn default_table_matches_docker() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let out = render(&[sample(now)], &ps_format(None, false, false), true, now).unwrap();
        let want = "\
CONTAINER ID   IMAGE     COMMAND                  CREATED              STATUS              PORTS     NAMES
4fa6e0f0c678   busybox   \"sh -c 'while true; …\"   About a minute ago   Up About a minute             web
";
        assert_eq!(out, want);
    }

    #[test]
    fn quiet_no_trunc_and_labels() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let c = sample(now);
        assert_eq!(
            render(
                std::slice::from_ref(&c),
                &ps_format(None, true, false),
                true,
                now
            )
            .unwrap(),
            "4fa6e0f0c678\n"
        );
        let out = render(
            std::slice::from_ref(&c),
            "{{.ID}} {{.Labels}} {{.Label \"a\"}}",
            false,
            now,
        )
        .unwrap();
        assert_eq!(
            out,
            "4fa6e0f0c6786287e131c3852c58a2e01cc697a68231826813597e4994f1d6e2 a=1,b=2 1\n"
        );
        let out = render(
            &[c],
            "table {{.Names}}\t{{.Label \"com.example-x\"}}",
            true,
            now,
        )
        .unwrap();
        assert_eq!(out, "NAMES     example x\nweb       \n");
    }

    #[test]
    fn json_row_has_docker_keys_in_order() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let out = render(&[sample(now)], "json", true, now).unwrap();
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "Command",
                "CreatedAt",
                "ID",
                "Image",
                "Labels",
                "LocalVolumes",
                "Mounts",
                "Names",
                "Networks",
                "Platform",
                "Ports",
                "RunningFor",
                "Size",
                "State",
                "Status"
            ]
        );
        assert_eq!(v["Size"], "0B");
    }

    #[test]
    fn ports_group_like_docker() {
        let p = |private: u16, public: Option<u16>, ip: Option<&str>| Port {
            private_port: private,
            public_port: public,
            ip: ip.map(str::to_owned),
            typ: Some(PortTypeEnum::TCP),
        };
        assert_eq!(
            displayable_ports(&[p(80, None, None), p(81, None, None), p(443, None, None)]),
            "80-81/tcp, 443/tcp"
        );
        assert_eq!(
            displayable_ports(&[
                p(80, Some(8080), Some("0.0.0.0")),
                p(80, Some(8080), Some("::"))
            ]),
            "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"
        );
        assert_eq!(
            displayable_ports(&[p(80, Some(80), Some("0.0.0.0"))]),
            "0.0.0.0:80->80/tcp"
        );
        assert_eq!(displayable_ports(&[]), "");
    }
}
