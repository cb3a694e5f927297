//! `/containers/...`: create, list, inspect, start, stop, restart, kill, pause, unpause,
//! wait, attach (hijacked), resize, logs, rename, remove, prune, export.

use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use berth_api::query::{
    ContainerAttachQuery, ContainerCreateQuery, ContainerInspectQuery, ContainerKillQuery,
    ContainerListQuery, ContainerLogsQuery, ContainerRemoveQuery, ContainerRenameQuery,
    ContainerResizeQuery, ContainerStopQuery, ContainerWaitQuery, PruneQuery,
};
use berth_api::stream::{MULTIPLEXED_CONTENT_TYPE, RAW_CONTENT_TYPE};
use berth_engine::WaitCondition;
use berth_engine::logs::{self, Framer, LogOptions};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::{AppState, json_body, json_response, json_status, query, stream_response};
use crate::error::{ApiError, ApiResult};
use berth_oci::errdefs::ErrorKind;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/containers/create", post(create))
        .route("/containers/json", get(list))
        .route("/containers/prune", post(prune))
        .route("/containers/{id}/json", get(inspect))
        .route("/containers/{id}/start", post(start))
        .route("/containers/{id}/stop", post(stop))
        .route("/containers/{id}/restart", post(restart))
        .route("/containers/{id}/kill", post(kill))
        .route("/containers/{id}/pause", post(pause))
        .route("/containers/{id}/unpause", post(unpause))
        .route("/containers/{id}/wait", post(wait))
        .route("/containers/{id}/attach", post(attach))
        .route("/containers/{id}/resize", post(resize))
        .route("/containers/{id}/logs", get(logs_handler))
        .route("/containers/{id}/rename", post(rename))
        .route("/containers/{id}/export", get(export))
        .route("/containers/{id}", delete(remove))
}

const RESTART_POLICIES: [&str; 5] = ["", "no", "always", "on-failure", "unless-stopped"];

/// Checks what Docker checks before decoding (so the message is Docker's, not serde's).
fn precheck_create(v: &serde_json::Value) -> ApiResult<()> {
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "invalid JSON: the container config must be a JSON object",
        ));
    }
    if let Some(name) = v
        .pointer("/HostConfig/RestartPolicy/Name")
        .and_then(|n| n.as_str())
        && !RESTART_POLICIES.contains(&name)
    {
        return Err(ApiError::bad_request(format!(
            "invalid restart policy: unknown policy '{name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
        )));
    }
    Ok(())
}

/// Decodes a create request (query + body); shared with the fuzz target. Errors name the
/// field (`HostConfig.Memory: invalid type ...`); `Cmd`/`Entrypoint` may be a string, as
/// Docker's `StrSlice` allows.
pub fn decode_create(
    raw_query: Option<&str>,
    body: &[u8],
) -> ApiResult<(ContainerCreateQuery, berth_api::body::ContainerCreateBody)> {
    let q: ContainerCreateQuery = query(raw_query.map(str::to_string))?;
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ApiError::bad_request(
            "invalid JSON: the request body is empty: send the container's config",
        ));
    }
    let value: serde_json::Value = json_body(body)?;
    precheck_create(&value)?;
    let serde_json::Value::Object(mut map) = value else {
        unreachable!("precheck_create accepts objects only");
    };
    for key in ["Cmd", "Entrypoint"] {
        if let Some(serde_json::Value::String(s)) = map.get(key) {
            let one = serde_json::Value::Array(vec![serde_json::Value::String(s.clone())]);
            map.insert(key.to_string(), one);
        }
    }
    let part = |key: &str,
                map: &mut serde_json::Map<String, serde_json::Value>|
     -> ApiResult<Option<serde_json::Value>> {
        Ok(map.remove(key).filter(|v| !v.is_null()))
    };
    let host = part("HostConfig", &mut map)?;
    let net = part("NetworkingConfig", &mut map)?;
    let decode = |prefix: &str, v: serde_json::Value| -> ApiResult<serde_json::Value> {
        // Round-trip through the typed model with path tracking for precise errors.
        let text = serde_json::to_vec(&v).unwrap_or_default();
        let r: ApiResult<serde_json::Value> = match prefix {
            "HostConfig" => typed::<berth_api::models::HostConfig>(prefix, &text),
            "NetworkingConfig" => typed::<berth_api::models::NetworkingConfig>(prefix, &text),
            _ => typed::<berth_api::models::ContainerConfig>(prefix, &text),
        };
        r
    };
    let config = decode("", serde_json::Value::Object(map))?;
    let host_config = host.map(|h| decode("HostConfig", h)).transpose()?;
    let networking_config = net.map(|n| decode("NetworkingConfig", n)).transpose()?;
    let parsed = berth_api::body::ContainerCreateBody {
        config: serde_json::from_value(config)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?,
        host_config: host_config
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| ApiError::bad_request(format!("invalid JSON: HostConfig: {e}")))?,
        networking_config: networking_config
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| ApiError::bad_request(format!("invalid JSON: NetworkingConfig: {e}")))?,
    };
    Ok((q, parsed))
}

fn typed<T: serde::de::DeserializeOwned + serde::Serialize>(
    prefix: &str,
    text: &[u8],
) -> ApiResult<serde_json::Value> {
    let de = &mut serde_json::Deserializer::from_slice(text);
    let v: T = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let field = match (prefix.is_empty(), path == ".") {
            (true, true) => String::new(),
            (true, false) => format!("{path}: "),
            (false, true) => format!("{prefix}: "),
            (false, false) => format!("{prefix}.{path}: "),
        };
        ApiError::bad_request(format!("invalid JSON: {field}{}", e.into_inner()))
    })?;
    serde_json::to_value(v).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))
}

async fn create(
    State(e): State<AppState>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> ApiResult<Response> {
    let (q, body) = decode_create(q.as_deref(), &body)?;
    let (id, warnings) = e.create(q.name.as_deref(), body).await?;
    Ok(json_status(
        StatusCode::CREATED,
        &json!({"Id": id, "Warnings": warnings}),
    ))
}

async fn list(State(e): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let q: ContainerListQuery = query(q)?;
    // Sizes walk every container's writable layer: off the async workers.
    let rows = if q.size {
        berth_engine::images::blocking(move || e.list(q.all, q.limit, true, &q.filters)).await?
    } else {
        e.list(q.all, q.limit, false, &q.filters)?
    };
    Ok(json_response(&rows))
}

async fn inspect(
    State(e): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let q: ContainerInspectQuery = query(q)?;
    // The size walks the container's writable layer: off the async workers.
    let v = if q.size {
        berth_engine::images::blocking(move || e.inspect(&id, true)).await?
    } else {
        e.inspect(&id, false)?
    };
    Ok(json_response(&v))
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

async fn start(State(e): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    e.start(&id).await?;
    Ok(no_content())
}

async fn stop(
    State(e): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let q: ContainerStopQuery = query(q)?;
    e.stop(&id, q.signal.as_deref(), q.t).await?;
    Ok(no_content())
}

async fn restart(
    State(e): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let q: ContainerStopQuery = query(q)?;
    e.restart(&id, q.signal.as_deref(), q.t).await?;
    Ok(no_content())
}

async fn kill(
    State(e): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let q: ContainerKillQuery = query(q)?;
    e.kill(&id, q.signal.as_deref()).await?;
    Ok(no_content())
}

async fn pause(State(e): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    e.pause(&id).await?;
    Ok(no_content())
}

async fn unpause(State(e): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    e.unpause(&id).await?;
    Ok(no_content())
}

async fn resize(
    State(e): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let q: ContainerResizeQuery = query(q)?;
    let clamp = |v: u32| v.min(u16::MAX as u32) as u16;
    e.resize(&id, clamp(q.h), clamp(q.w)).await?;
    Ok(StatusCode::OK.into_response())
}

async fn rename(
    State(e): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let q: ContainerRenameQuery = query(q)?;
    e.rename(&id, &q.name)?;
    Ok(no_content())
}

async fn remove(
    State(e): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let q: ContainerRemoveQuery = query(q)?;
    if q.link {
        return Err(ApiError::bad_request("links are not supported"));
    }
    e.remove(&id, q.force, q.v).await?;
    Ok(no_content())
}

async fn prune(State(e): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let q: PruneQuery = query(q)?;
    Ok(json_response(&e.prune(&q.filters).await?))
}

/// Registers the wait, answers the headers at once (the docker CLI sends `start` only
/// after they arrived), then the body when the condition is met.
async fn wait(
    State(e): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let q: ContainerWaitQuery = query(q)?;
    let fut = e.wait(&id, q.condition.unwrap_or(WaitCondition::NotRunning))?;
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        let (code, error) = fut.await;
        let mut body = json!({"StatusCode": code});
        if let Some(err) = error {
            body["Error"] = json!({"Message": err});
        }
        let mut bytes = serde_json::to_vec(&body).unwrap_or_default();
        bytes.push(b'\n');
        let _ = tx.send(Bytes::from(bytes)).await;
    });
    Ok(stream_response(StatusCode::OK, "application/json", rx))
}

async fn logs_handler(
    State(e): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let q: ContainerLogsQuery = query(q)?;
    if !q.stdout && !q.stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let since = match q.since.as_deref() {
        Some(s) if !s.is_empty() && s != "0" => Some(berth_engine::events::parse_time(s)?),
        _ => None,
    };
    let until = match q.until.as_deref() {
        Some(s) if !s.is_empty() && s != "0" => Some(berth_engine::events::parse_time(s)?),
        _ => None,
    };
    let (c, path, tty) = e.log_source(&id)?;
    let tail = logs::parse_tail(q.tail.as_deref());
    let framer = Framer::new(LogOptions {
        stdout: q.stdout,
        stderr: q.stderr,
        since,
        until,
        timestamps: q.timestamps,
        tail,
        raw: tty,
    });
    let follow = q.follow && c.status().is_alive();
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    // Subscribe before reading so an exit between the read and the follow loop is seen.
    let mut life = c.watch();
    let exits_at_start = life.borrow().exits;
    tokio::spawn(async move {
        // The whole log can be large: read it on the blocking pool, not the async workers.
        let read = tokio::task::spawn_blocking(move || {
            let mut chunks = Vec::new();
            let pos = logs::read_all(&path, &framer, tail, &mut |b| chunks.push(b));
            (chunks, pos, path, framer)
        });
        let Ok((chunks, mut pos, path, framer)) = read.await else {
            return;
        };
        for b in chunks {
            if tx.send(b).await.is_err() {
                return;
            }
        }
        if !follow || pos.until_reached {
            return;
        }
        loop {
            let done = {
                let l = life.borrow();
                l.exits > exits_at_start || l.removed
            };
            let mut chunks = Vec::new();
            let more = logs::read_new(&path, &framer, &mut pos, &mut |b| chunks.push(b));
            for b in chunks {
                if tx.send(b).await.is_err() {
                    return;
                }
            }
            if done || !more {
                return;
            }
            tokio::select! {
                _ = life.changed() => {
                    // The shim flushed its last output before reporting the exit.
                }
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = tx.closed() => return,
            }
        }
    });
    let ct = if tty {
        RAW_CONTENT_TYPE
    } else {
        MULTIPLEXED_CONTENT_TYPE
    };
    Ok(stream_response(StatusCode::OK, ct, rx))
}

async fn export(State(e): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    e.lookup(&id)?;
    let (tx, rx) = mpsc::channel(8);
    let writer = berth_engine::bridge::ChannelWriter::new(tx);
    tokio::spawn(async move {
        if let Err(err) = e.export(&id, writer).await {
            tracing::warn!("export of {id} failed: {err}");
        }
    });
    Ok(stream_response(StatusCode::OK, "application/x-tar", rx))
}

/// Attach: with `Upgrade: tcp` the connection is hijacked (101) and relays bytes both ways
/// between the client and the shim's attach stream; without it, output streams as the body.
async fn attach(
    State(e): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    mut req: Request,
) -> ApiResult<Response> {
    let q: ContainerAttachQuery = query(q)?;
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("tcp"));
    // Docker's `logs=1`: the output so far (from the log), before any live stream; with
    // `stream=0` that is all (and with neither, nothing: docker-py's default `attach()`).
    let (_, log_path, tty) = e.log_source(&id)?;
    let mut replay = Vec::new();
    if q.logs && (q.stdout || q.stderr) {
        let framer = Framer::new(LogOptions {
            stdout: q.stdout,
            stderr: q.stderr,
            raw: tty,
            ..Default::default()
        });
        // The whole log can be large: read it on the blocking pool, not the async workers.
        replay = tokio::task::spawn_blocking(move || {
            let mut replay = Vec::new();
            logs::read_all(&log_path, &framer, None, &mut |b| {
                replay.extend_from_slice(&b)
            });
            replay
        })
        .await
        .map_err(|e| ApiError::new(ErrorKind::Internal, format!("reading the log: {e}")))?;
    }
    if !q.stream {
        let ct = if tty {
            RAW_CONTENT_TYPE
        } else {
            MULTIPLEXED_CONTENT_TYPE
        };
        if !upgrade {
            let mut resp = Response::new(Body::from(replay));
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
            return Ok(resp);
        }
        let on_upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(u) = on_upgrade.await {
                let mut io = hyper_util::rt::TokioIo::new(u);
                replay_pause(&replay).await;
                let _ = io.write_all(&replay).await;
                let _ = io.shutdown().await;
            }
        });
        return Ok(switching_protocols(ct));
    }
    if upgrade {
        // The `101` goes out before the shim is spawned (`attach_begin` holds the
        // container's operations, so the client's start waits for the attach): `docker
        // run`'s wait and start requests overlap the spawn instead of following it.
        let pending = e.attach_begin(&id, q.stdin, q.stdout, q.stderr).await?;
        let ct = if tty {
            RAW_CONTENT_TYPE
        } else {
            MULTIPLEXED_CONTENT_TYPE
        };
        let on_upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            let attached = pending.finish_deferred().await;
            let upgraded = match on_upgrade.await {
                Ok(u) => u,
                Err(err) => {
                    tracing::warn!("attach upgrade failed: {err}");
                    return;
                }
            };
            let Ok(attached) = attached else { return };
            let mut io = hyper_util::rt::TokioIo::new(upgraded);
            replay_pause(&replay).await;
            if !replay.is_empty() && io.write_all(&replay).await.is_err() {
                return;
            }
            relay(io, attached).await;
        });
        return Ok(switching_protocols(ct));
    }
    let attached = e.attach(&id, q.stdin, q.stdout, q.stderr).await?;
    let ct = if attached.tty {
        RAW_CONTENT_TYPE
    } else {
        MULTIPLEXED_CONTENT_TYPE
    };
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let mut stream = attached.stream;
        if !replay.is_empty() && tx.send(Bytes::from(replay)).await.is_err() {
            return;
        }
        if !attached.buffered.is_empty() && tx.send(Bytes::from(attached.buffered)).await.is_err() {
            return;
        }
        let mut buf = vec![0u8; 32 << 10];
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 || tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                break;
            }
        }
    });
    Ok(stream_response(StatusCode::OK, ct, rx))
}

/// docker-py reads a hijacked stream from the raw socket, bypassing the buffered reader that
/// parsed the `101` head: bytes that arrive together with the head are lost to it. Docker's
/// log replay comes a file read after the head; give the client the same moment to take the
/// head alone before the replay (only when there is one).
async fn replay_pause(replay: &[u8]) {
    if !replay.is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `101` answer of a hijacked attach.
fn switching_protocols(ct: &'static str) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
    resp
}

/// Copies shim → client until the shim closes (the container exited), and client → shim
/// (stdin) until the client half-closes, which is passed on as a half-close.
async fn relay<C>(client: C, attached: berth_engine::Attached)
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut client_r, mut client_w) = tokio::io::split(client);
    let (mut shim_r, mut shim_w) = attached.stream.into_split();
    let stdin = tokio::spawn(async move {
        let mut buf = vec![0u8; 16 << 10];
        loop {
            match client_r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if shim_w.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
        let _ = shim_w.shutdown().await;
    });
    if !attached.buffered.is_empty() && client_w.write_all(&attached.buffered).await.is_err() {
        stdin.abort();
        return;
    }
    let mut buf = vec![0u8; 32 << 10];
    loop {
        match shim_r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if client_w.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = client_w.flush().await;
    let _ = client_w.shutdown().await;
    stdin.abort();
}
