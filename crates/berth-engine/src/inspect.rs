//! Docker's JSON shapes for containers: `GET /containers/{id}/json` (inspect) and the rows
//! of `GET /containers/json` (list, with filters), plus prune and disk usage.
//!
//! Every field Docker sends is present (empty or `null` where unset), because clients index
//! into them (`{{.NetworkSettings.IPAddress}}`, `{{.State.Pid}}`, docker-py's
//! `attrs['HostConfig']['AutoRemove']`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use berth_api::humanize::{StatusInput, container_status};
use berth_api::query::Filters;
use serde_json::{Map, Value, json};

use crate::engine::{Container, Engine};
use crate::error::{EngineError, Result};
use crate::record::ContainerRecord;
use crate::spec;
use crate::status::{Status, ZERO_TIME};

fn time_of(s: &str) -> Option<SystemTime> {
    if s == ZERO_TIME || s.is_empty() {
        return None;
    }
    let t = s.parse::<jiff::Timestamp>().ok()?;
    let nanos = t.as_nanosecond();
    if nanos < 0 {
        return None;
    }
    Some(SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos as u64))
}

fn unix_of(s: &str) -> i64 {
    s.parse::<jiff::Timestamp>()
        .map(|t| t.as_second())
        .unwrap_or(0)
}

/// Docker's `Status` text of a container.
pub fn status_text(rec: &ContainerRecord) -> String {
    let st = &rec.state;
    container_status(
        &StatusInput {
            running: st.status.is_alive(),
            paused: st.status == Status::Paused,
            restarting: st.status == Status::Restarting,
            removing: st.status == Status::Removing,
            dead: st.status == Status::Dead,
            started_at: time_of(&st.started_at),
            finished_at: time_of(&st.finished_at),
            exit_code: st.exit_code,
            health: None,
        },
        SystemTime::now(),
    )
}

fn host_config_json(rec: &ContainerRecord) -> Value {
    let mut base = json!({
        "Binds": null,
        "ContainerIDFile": "",
        "LogConfig": {"Type": "json-file", "Config": {}},
        "NetworkMode": "bridge",
        "PortBindings": {},
        "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
        "AutoRemove": false,
        "VolumeDriver": "",
        "VolumesFrom": null,
        "ConsoleSize": [0, 0],
        "CapAdd": null,
        "CapDrop": null,
        "CgroupnsMode": "host",
        "Dns": [],
        "DnsOptions": [],
        "DnsSearch": [],
        "ExtraHosts": null,
        "GroupAdd": null,
        "IpcMode": "private",
        "Cgroup": "",
        "Links": null,
        "OomScoreAdj": 0,
        "PidMode": "",
        "Privileged": false,
        "PublishAllPorts": false,
        "ReadonlyRootfs": false,
        "SecurityOpt": null,
        "UTSMode": "",
        "UsernsMode": "",
        "ShmSize": spec::DEFAULT_SHM_SIZE,
        "Runtime": "berth",
        "Isolation": "",
        "CpuShares": 0,
        "Memory": 0,
        "NanoCpus": 0,
        "CgroupParent": "",
        "BlkioWeight": 0,
        "BlkioWeightDevice": [],
        "BlkioDeviceReadBps": [],
        "BlkioDeviceWriteBps": [],
        "BlkioDeviceReadIOps": [],
        "BlkioDeviceWriteIOps": [],
        "CpuPeriod": 0,
        "CpuQuota": 0,
        "CpuRealtimePeriod": 0,
        "CpuRealtimeRuntime": 0,
        "CpusetCpus": "",
        "CpusetMems": "",
        "Devices": [],
        "DeviceCgroupRules": null,
        "DeviceRequests": null,
        "MemoryReservation": 0,
        "MemorySwap": 0,
        "MemorySwappiness": null,
        "OomKillDisable": false,
        "PidsLimit": null,
        "Ulimits": [],
        "CpuCount": 0,
        "CpuPercent": 0,
        "IOMaximumIOps": 0,
        "IOMaximumBandwidth": 0,
        "MaskedPaths": spec::MASKED_PATHS,
        "ReadonlyPaths": spec::READONLY_PATHS,
    });
    if rec.host_config.privileged.unwrap_or(false) {
        base["MaskedPaths"] = Value::Null;
        base["ReadonlyPaths"] = Value::Null;
    }
    if let (Ok(Value::Object(given)), Some(obj)) =
        (serde_json::to_value(&rec.host_config), base.as_object_mut())
    {
        for (k, v) in given {
            obj.insert(k, v);
        }
    }
    base
}

fn config_json(rec: &ContainerRecord) -> Value {
    let mut base = json!({
        "Hostname": "",
        "Domainname": "",
        "User": "",
        "AttachStdin": false,
        "AttachStdout": false,
        "AttachStderr": false,
        "Tty": false,
        "OpenStdin": false,
        "StdinOnce": false,
        "Env": null,
        "Cmd": null,
        "Image": rec.image,
        "Volumes": null,
        "WorkingDir": "",
        "Entrypoint": null,
        "OnBuild": null,
        "Labels": {},
    });
    if let (Ok(Value::Object(given)), Some(obj)) =
        (serde_json::to_value(&rec.config), base.as_object_mut())
    {
        for (k, v) in given {
            obj.insert(k, v);
        }
    }
    base
}

fn network_name(rec: &ContainerRecord) -> String {
    match rec.host_config.network_mode.as_deref() {
        Some("" | "default") | None => "bridge".into(),
        Some(m) => m.to_string(),
    }
}

fn endpoint() -> Value {
    json!({
        "IPAMConfig": null,
        "Links": null,
        "Aliases": null,
        "MacAddress": "",
        "DriverOpts": null,
        "NetworkID": "",
        "EndpointID": "",
        "Gateway": "",
        "IPAddress": "",
        "IPPrefixLen": 0,
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "DNSNames": null,
    })
}

fn mounts_json(rec: &ContainerRecord) -> Value {
    Value::Array(
        rec.mounts
            .iter()
            .map(|m| {
                json!({
                    "Type": m.kind,
                    "Source": if m.kind == "tmpfs" { "" } else { m.source.as_str() },
                    "Destination": m.destination,
                    "Mode": m.mode,
                    "RW": m.rw,
                    "Propagation": m.propagation,
                })
            })
            .collect(),
    )
}

impl Engine {
    fn graph_driver(&self, rec: &ContainerRecord) -> Value {
        match self.store.container_overlay(&rec.id) {
            Ok(o) => {
                let lower: Vec<String> = o
                    .layer_dirs
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect();
                let upper = o
                    .upperdir
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                let merged = self.container_dir(&rec.id).join("rootfs");
                json!({
                    "Data": {
                        "LowerDir": lower.join(":"),
                        "MergedDir": merged,
                        "UpperDir": upper,
                        "WorkDir": o.workdir.map(|p| p.display().to_string()).unwrap_or_default(),
                    },
                    "Name": "overlay2",
                })
            }
            Err(_) => json!({"Data": null, "Name": "overlay2"}),
        }
    }

    /// Bytes in the container's writable layer.
    pub fn size_rw(&self, id: &str) -> i64 {
        self.store
            .container_overlay(id)
            .ok()
            .and_then(|o| o.upperdir)
            .map(|u| dir_size(&u) as i64)
            .unwrap_or(0)
    }

    fn size_root(&self, rec: &ContainerRecord) -> i64 {
        let image = rec
            .image_id
            .parse()
            .ok()
            .and_then(|d| self.store.image(&d).ok().flatten())
            .map(|i| i.size as i64)
            .unwrap_or(0);
        image + self.size_rw(&rec.id)
    }

    /// `GET /containers/{id}/json`.
    pub fn inspect(&self, name: &str, size: bool) -> Result<Value> {
        let c = self.lookup(name)?;
        let rec = c.record();
        let st = &rec.state;
        let net = network_name(&rec);
        let mut networks = Map::new();
        networks.insert(net.clone(), endpoint());
        let mut v = json!({
            "Id": rec.id,
            "Created": rec.created,
            "Path": rec.path,
            "Args": rec.args,
            "State": {
                "Status": st.status.as_str(),
                "Running": st.status.is_alive(),
                "Paused": st.status == Status::Paused,
                "Restarting": st.status == Status::Restarting,
                "OOMKilled": st.oom_killed,
                "Dead": st.status == Status::Dead,
                "Pid": st.pid,
                "ExitCode": st.exit_code,
                "Error": st.error,
                "StartedAt": st.started_at,
                "FinishedAt": st.finished_at,
            },
            "Image": rec.image_id,
            "ResolvConfPath": rec.resolv_conf_path,
            "HostnamePath": rec.hostname_path,
            "HostsPath": rec.hosts_path,
            "LogPath": rec.log_path,
            "Name": format!("/{}", rec.name),
            "RestartCount": rec.restart_count,
            "Driver": "overlay2",
            "Platform": "linux",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "ExecIDs": null,
            "HostConfig": host_config_json(&rec),
            "GraphDriver": self.graph_driver(&rec),
            "Mounts": mounts_json(&rec),
            "Config": config_json(&rec),
            "NetworkSettings": {
                "Bridge": "",
                "SandboxID": "",
                "SandboxKey": "",
                "Ports": {},
                "HairpinMode": false,
                "LinkLocalIPv6Address": "",
                "LinkLocalIPv6PrefixLen": 0,
                "SecondaryIPAddresses": null,
                "SecondaryIPv6Addresses": null,
                "EndpointID": "",
                "Gateway": "",
                "GlobalIPv6Address": "",
                "GlobalIPv6PrefixLen": 0,
                "IPAddress": "",
                "IPPrefixLen": 0,
                "IPv6Gateway": "",
                "MacAddress": "",
                "Networks": Value::Object(networks),
            },
        });
        if size {
            v["SizeRw"] = json!(self.size_rw(&rec.id));
            v["SizeRootFs"] = json!(self.size_root(&rec));
        }
        Ok(v)
    }

    fn summary(&self, rec: &ContainerRecord, size: bool) -> Value {
        let net = network_name(rec);
        let mut command = rec.path.clone();
        for a in &rec.args {
            command.push(' ');
            command.push_str(a);
        }
        let labels: BTreeMap<String, String> = spec::sorted(&rec.config.labels);
        let mut v = json!({
            "Id": rec.id,
            "Names": [format!("/{}", rec.name)],
            "Image": rec.image,
            "ImageID": rec.image_id,
            "Command": command,
            "Created": unix_of(&rec.created),
            "Ports": [],
            "Labels": labels,
            "State": rec.state.status.as_str(),
            "Status": status_text(rec),
            "HostConfig": {"NetworkMode": net},
            "NetworkSettings": {"Networks": {net.clone(): endpoint()}},
            "Mounts": mounts_json(rec),
        });
        if size {
            v["SizeRw"] = json!(self.size_rw(&rec.id));
            v["SizeRootFs"] = json!(self.size_root(rec));
        }
        v
    }

    /// `GET /containers/json` with Docker's filters, newest first.
    pub fn list(
        &self,
        all: bool,
        limit: Option<i64>,
        size: bool,
        filters: &Filters,
    ) -> Result<Vec<Value>> {
        const ALLOWED: [&str; 14] = [
            "id", "name", "label", "status", "ancestor", "exited", "before", "since", "health",
            "is-task", "network", "volume", "publish", "expose",
        ];
        filters
            .validate(&ALLOWED)
            .map_err(|e| EngineError::invalid(e.to_string()))?;
        for s in filters.get("status") {
            if Status::parse(s).is_none() {
                return Err(EngineError::invalid(format!("invalid filter 'status={s}'")));
            }
        }
        let exited: Vec<i64> = filters
            .get("exited")
            .iter()
            .map(|e| {
                e.parse::<i64>()
                    .map_err(|_| EngineError::invalid(format!("invalid filter 'exited={e}'")))
            })
            .collect::<Result<_>>()?;
        let created_of = |name: &str| -> Result<String> { Ok(self.lookup(name)?.record().created) };
        let before = filters
            .get("before")
            .first()
            .map(|n| created_of(n))
            .transpose()?;
        let since = filters
            .get("since")
            .first()
            .map(|n| created_of(n))
            .transpose()?;
        let ancestors: Vec<String> = filters
            .get("ancestor")
            .iter()
            .filter_map(|a| self.store.resolve_image(a).ok().map(|d| d.to_string()))
            .collect();
        let want_ancestor = !filters.get("ancestor").is_empty();

        let mut recs: Vec<ContainerRecord> = self
            .all()
            .iter()
            .map(|c: &Arc<Container>| c.record())
            .collect();
        recs.sort_by(|a, b| b.created.cmp(&a.created));
        let explicit_status = !filters.get("status").is_empty() || !exited.is_empty();
        let mut out = Vec::new();
        let mut taken = 0i64;
        for rec in recs {
            let st = rec.state.status;
            // `before`/`since` bound by creation time.
            if before.as_ref().is_some_and(|b| rec.created >= *b) {
                continue;
            }
            if since.as_ref().is_some_and(|s| rec.created <= *s) {
                continue;
            }
            let show_all = all || limit.is_some_and(|l| l > 0) || explicit_status;
            if !show_all && !st.is_alive() {
                continue;
            }
            let ids = filters.get("id");
            if !ids.is_empty() && !ids.iter().any(|i| rec.id.starts_with(i.as_str())) {
                continue;
            }
            let names = filters.get("name");
            if !names.is_empty() && !names.iter().any(|n| name_matches(n, &rec.name)) {
                continue;
            }
            let statuses = filters.get("status");
            if !statuses.is_empty() && !statuses.iter().any(|s| s == st.as_str()) {
                continue;
            }
            if !(exited.is_empty() || st == Status::Exited && exited.contains(&rec.state.exit_code))
            {
                continue;
            }
            if want_ancestor
                && !(ancestors.contains(&rec.image_id)
                    || filters.get("ancestor").contains(&rec.image))
            {
                continue;
            }
            let labels = spec::sorted(&rec.config.labels);
            if !filters
                .get("label")
                .iter()
                .all(|l| match l.split_once('=') {
                    Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
                    None => labels.contains_key(l.as_str()),
                })
            {
                continue;
            }
            out.push(self.summary(&rec, size));
            taken += 1;
            if limit.is_some_and(|l| l > 0 && taken >= l) {
                break;
            }
        }
        Ok(out)
    }

    /// `POST /containers/prune`: removes stopped containers (filters `label`, `label!`,
    /// `until`).
    pub async fn prune(self: &Arc<Self>, filters: &Filters) -> Result<Value> {
        filters
            .validate(&["label", "label!", "until"])
            .map_err(|e| EngineError::invalid(e.to_string()))?;
        let until = filters
            .get("until")
            .first()
            .map(|u| crate::events::parse_time(u))
            .transpose()?;
        let mut deleted = Vec::new();
        let mut reclaimed = 0i64;
        for c in self.all() {
            let rec = c.record();
            if rec.state.status.is_alive() || rec.state.status == Status::Removing {
                continue;
            }
            let labels = spec::sorted(&rec.config.labels);
            let label_ok = filters
                .get("label")
                .iter()
                .all(|l| match l.split_once('=') {
                    Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
                    None => labels.contains_key(l.as_str()),
                })
                && !filters
                    .get("label!")
                    .iter()
                    .any(|l| match l.split_once('=') {
                        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
                        None => labels.contains_key(l.as_str()),
                    });
            if !label_ok {
                continue;
            }
            if let Some(u) = until {
                let created = rec
                    .created
                    .parse::<jiff::Timestamp>()
                    .map(|t| t.as_nanosecond() as i64)
                    .unwrap_or(0);
                if created >= u {
                    continue;
                }
            }
            let size = self.size_rw(&rec.id);
            if self.remove(&rec.id, false, false).await.is_ok() {
                deleted.push(rec.id.clone());
                reclaimed += size;
            }
        }
        self.events.publish(
            "container",
            "prune",
            "",
            BTreeMap::from([("reclaimed".to_string(), reclaimed.to_string())]),
        );
        Ok(
            json!({"ContainersDeleted": if deleted.is_empty() { Value::Null } else { json!(deleted) }, "SpaceReclaimed": reclaimed}),
        )
    }
}

/// Docker matches `name=` filters as a regular expression against `/name`; the common forms
/// (exact, substring, `^x`, `x$`) are handled here.
fn name_matches(pattern: &str, name: &str) -> bool {
    let full = format!("/{name}");
    let p = pattern;
    let anchored_start = p.starts_with('^');
    let anchored_end = p.ends_with('$') && !p.ends_with("\\$");
    let core = p.trim_start_matches('^');
    let core = if anchored_end {
        &core[..core.len() - 1]
    } else {
        core
    };
    let core_noslash = core.strip_prefix('/').unwrap_or(core);
    match (anchored_start, anchored_end) {
        (true, true) => full == core || name == core_noslash,
        (true, false) => full.starts_with(core) || name.starts_with(core_noslash),
        (false, true) => full.ends_with(core),
        (false, false) => full.contains(core),
    }
}

/// Bytes under a directory (regular files' sizes; no crossing into mounts).
pub fn dir_size(path: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else {
                total += m.len();
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::name_matches;

    #[test]
    fn name_filters() {
        assert!(name_matches("web", "web"));
        assert!(name_matches("we", "web"));
        assert!(name_matches("^web$", "web"));
        assert!(name_matches("^/web$", "web"));
        assert!(!name_matches("^web$", "web2"));
        assert!(name_matches("^we", "web2"));
        assert!(!name_matches("x", "web"));
    }
}
