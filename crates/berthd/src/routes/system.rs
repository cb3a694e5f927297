//! `/_ping`, `/version`, `/info`, `/system/df`, `/events`, and the prunes of what Berth does
//! not have yet (`/networks/prune`, `/build/prune`).

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use berth_api::query::{EventsQuery, PruneQuery};
use berth_engine::events::{EventFilter, parse_time};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{AppState, SERVER, json_response, query, stream_response};
use crate::error::{ApiError, ApiResult};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/_ping", get(ping).head(ping))
        .route("/version", get(version))
        .route("/info", get(info))
        .route("/system/df", get(df))
        .route("/events", get(events))
        .route("/networks/prune", post(networks_prune))
        .route("/build/prune", post(build_prune))
}

/// Checks a prune's filters as Docker does: known keys only, `until` a valid time.
fn prune_filters(raw: Option<String>, allowed: &[&str]) -> ApiResult<()> {
    let q: PruneQuery = query(raw)?;
    q.filters
        .validate(allowed)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    if let Some(until) = q.filters.get("until").first() {
        parse_time(until)?;
    }
    Ok(())
}

/// `POST /networks/prune`. Berth has no user-defined networks yet (bridge networks come
/// with the networking issue), so nothing is ever unused; answering like Docker with an
/// empty list lets `docker system prune` and `docker network prune` complete.
async fn networks_prune(RawQuery(q): RawQuery) -> ApiResult<Response> {
    prune_filters(q, &["until", "label", "label!"])?;
    Ok(json_response(&json!({"NetworksDeleted": null})))
}

/// `POST /build/prune`. There is no build cache before the build issue, so nothing to free.
async fn build_prune(RawQuery(q): RawQuery) -> ApiResult<Response> {
    prune_filters(
        q,
        &[
            "until",
            "id",
            "parent",
            "type",
            "description",
            "inuse",
            "shared",
            "private",
        ],
    )?;
    Ok(json_response(
        &json!({"CachesDeleted": null, "SpaceReclaimed": 0}),
    ))
}

async fn ping() -> Response {
    let mut resp = (StatusCode::OK, "OK").into_response();
    let h = resp.headers_mut();
    h.insert(
        "API-Version",
        HeaderValue::from_static(berth_api::API_VERSION),
    );
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert("Server", HeaderValue::from_static(SERVER));
    h.insert("Builder-Version", HeaderValue::from_static("1"));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert("Swarm", HeaderValue::from_static("inactive"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn kernel_version() -> String {
    rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned()
}

fn go_arch() -> &'static str {
    berth_oci::seccomp_profile::host_arch()
}

const VERSION: &str = env!("CARGO_PKG_VERSION");

async fn version() -> Response {
    let kernel = kernel_version();
    json_response(&json!({
        "Platform": {"Name": "Berth"},
        "Components": [{
            "Name": "Engine",
            "Version": VERSION,
            "Details": {
                "ApiVersion": berth_api::API_VERSION,
                "Arch": go_arch(),
                "BuildTime": "",
                "Experimental": "false",
                "GitCommit": "",
                "GoVersion": "n/a (Rust)",
                "KernelVersion": kernel,
                "MinAPIVersion": berth_api::MIN_API_VERSION,
                "Os": "linux",
            },
        }],
        "Version": VERSION,
        "ApiVersion": berth_api::API_VERSION,
        "MinAPIVersion": berth_api::MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": "n/a (Rust)",
        "Os": "linux",
        "Arch": go_arch(),
        "KernelVersion": kernel,
        "BuildTime": "",
    }))
}

/// `cgroup2` on `/sys/fs/cgroup` means v2; anything else (tmpfs of v1 controllers, hybrid)
/// is v1, which is what the runtime manages there.
fn cgroup_version() -> &'static str {
    match rustix::fs::statfs("/sys/fs/cgroup") {
        Ok(s) if s.f_type == 0x6367_7270 => "2",
        _ => "1",
    }
}

fn os_release() -> (String, String) {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_default()
    };
    (get("PRETTY_NAME"), get("VERSION_ID"))
}

fn mem_total() -> i64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<i64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn count_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn count_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0)
}

async fn info(State(e): State<AppState>) -> ApiResult<Response> {
    let (running, paused, stopped) = e.running_count();
    let images = e.store().images().map(|i| i.len()).unwrap_or(0);
    let (os, os_version) = os_release();
    let cfg = e.config();
    let mut runtimes = serde_json::Map::new();
    runtimes.insert("berth".into(), json!({"path": "berth-shim (built in)"}));
    for (name, path) in &cfg.runtimes {
        runtimes.insert(name.clone(), json!({"path": path}));
    }
    let cgv = cgroup_version();
    let info = json!({
        "ID": e.daemon_id(),
        "Containers": running + paused + stopped,
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": stopped,
        "Images": images,
        "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"], ["Using metacopy", "false"], ["Native Overlay Diff", "true"], ["userxattr", "false"]],
        "Plugins": {
            "Volume": [],
            "Network": ["host", "none"],
            "Authorization": null,
            "Log": ["json-file"],
        },
        "MemoryLimit": true,
        "SwapLimit": true,
        "CpuCfsPeriod": true,
        "CpuCfsQuota": true,
        "CPUShares": true,
        "CPUSet": true,
        "PidsLimit": true,
        "IPv4Forwarding": false,
        "BridgeNfIptables": false,
        "BridgeNfIp6tables": false,
        "Debug": tracing::enabled!(tracing::Level::DEBUG),
        "NFd": count_fds(),
        "OomKillDisable": cgv == "1",
        "NGoroutines": count_threads(),
        "SystemTime": jiff::Timestamp::now().to_string(),
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": cgv,
        "NEventsListener": 0,
        "KernelVersion": kernel_version(),
        "OperatingSystem": os,
        "OSVersion": os_version,
        "OSType": "linux",
        "Architecture": std::env::consts::ARCH,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {
            "AllowNondistributableArtifactsCIDRs": null,
            "AllowNondistributableArtifactsHostnames": null,
            "InsecureRegistryCIDRs": ["::1/128", "127.0.0.0/8"],
            "IndexConfigs": {},
            "Mirrors": null,
        },
        "NCPU": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "MemTotal": mem_total(),
        "GenericResources": null,
        "DockerRootDir": cfg.data_root,
        "HttpProxy": "",
        "HttpsProxy": "",
        "NoProxy": "",
        "Name": rustix::system::uname().nodename().to_string_lossy(),
        "Labels": [],
        "ExperimentalBuild": false,
        "ServerVersion": VERSION,
        "Runtimes": Value::Object(runtimes),
        "DefaultRuntime": cfg.default_runtime,
        "Swarm": {
            "NodeID": "",
            "NodeAddr": "",
            "LocalNodeState": "inactive",
            "ControlAvailable": false,
            "Error": "",
            "RemoteManagers": null,
        },
        "LiveRestoreEnabled": true,
        "Isolation": "",
        "InitBinary": "",
        "ContainerdCommit": {"ID": ""},
        "RuncCommit": {"ID": ""},
        "InitCommit": {"ID": ""},
        "SecurityOptions": ["name=seccomp,profile=builtin", "name=cgroupns"],
        "CDISpecDirs": [],
        "Warnings": [],
    });
    Ok(json_response(&info))
}

async fn df(State(e): State<AppState>) -> ApiResult<Response> {
    Ok(json_response(&e.disk_usage().await?))
}

/// Streams events as JSON lines: history since `since`, then live ones, until `until`.
async fn events(State(e): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let q: EventsQuery = query(q)?;
    let filter = EventFilter::new(q.filters.clone())?;
    let since = q
        .since
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(parse_time)
        .transpose()?;
    let until = q
        .until
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(parse_time)
        .transpose()?;
    let (history, mut live) = e.events.subscribe();
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let encode = |ev: &berth_engine::events::Event| {
        let mut b = serde_json::to_vec(ev).unwrap_or_default();
        b.push(b'\n');
        Bytes::from(b)
    };
    let now = jiff::Timestamp::now().as_nanosecond() as i64;
    tokio::spawn(async move {
        if since.is_some() {
            for ev in &history {
                if since.is_some_and(|s| ev.time_nano < s)
                    || until.is_some_and(|u| ev.time_nano > u)
                {
                    continue;
                }
                if filter.matches(ev) && tx.send(encode(ev)).await.is_err() {
                    return;
                }
            }
        }
        if until.is_some_and(|u| u <= now) {
            return;
        }
        let deadline = until.map(|u| Duration::from_nanos((u - now).max(0) as u64));
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => return,
                _ = tx.closed() => return,
                ev = live.recv() => match ev {
                    Ok(ev) => {
                        if filter.matches(&ev) && tx.send(encode(&ev)).await.is_err() {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return,
                },
            }
        }
    });
    // Docker flushes the headers at once so clients know they are subscribed.
    Ok(stream_response(StatusCode::OK, "application/json", rx))
}
