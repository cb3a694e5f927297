//! `/images/...`: list, inspect, history, tag, remove, load, save (`get`), import
//! (`create?fromSrc=-`), prune. Image names may contain `/` (`me/app:1`), so per-image routes
//! are matched on the path's tail.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use berth_api::query::{
    ImageCreateQuery, ImageListQuery, ImageLoadQuery, ImageRemoveQuery, ImageSaveQuery,
    ImageTagQuery, PruneQuery,
};
use serde_json::json;
use tokio::sync::mpsc;

use super::{AppState, json_response, query, stream_response};
use crate::error::{ApiError, ApiResult};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/images/json", get(list))
        .route("/images/load", post(load))
        .route("/images/get", get(save_many))
        .route("/images/create", post(create))
        .route("/images/prune", post(prune))
        .route(
            "/images/{*rest}",
            get(get_image).post(post_image).delete(delete_image),
        )
}

async fn list(State(e): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let q: ImageListQuery = query(q)?;
    Ok(json_response(&e.image_list(q.all, q.filters).await?))
}

/// `GET /images/{name}/json|history|get`.
async fn get_image(
    State(e): State<AppState>,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    if let Some(name) = rest.strip_suffix("/json") {
        return Ok(json_response(&e.image_inspect(name).await?));
    }
    if let Some(name) = rest.strip_suffix("/history") {
        return Ok(json_response(&e.image_history(name).await?));
    }
    if let Some(name) = rest.strip_suffix("/get") {
        let _ = q;
        return save(e, vec![name.to_string()]).await;
    }
    Err(ApiError::not_found(format!(
        "page not found: GET /images/{rest}"
    )))
}

/// `POST /images/{name}/tag` (and `push`, which needs a registry).
async fn post_image(
    State(e): State<AppState>,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    if let Some(name) = rest.strip_suffix("/tag") {
        let q: ImageTagQuery = query(q)?;
        e.image_tag(name, &q.repo, q.tag.as_deref()).await?;
        return Ok(StatusCode::CREATED.into_response_ok());
    }
    if rest.ends_with("/push") {
        return Err(ApiError::new(
            berth_oci::errdefs::ErrorKind::NotImplemented,
            "pushing images is not supported yet: save the image with `berth save` instead",
        ));
    }
    Err(ApiError::not_found(format!(
        "page not found: POST /images/{rest}"
    )))
}

trait OkResponse {
    fn into_response_ok(self) -> Response;
}

impl OkResponse for StatusCode {
    fn into_response_ok(self) -> Response {
        axum::response::IntoResponse::into_response(self)
    }
}

async fn delete_image(
    State(e): State<AppState>,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let q: ImageRemoveQuery = query(q)?;
    Ok(json_response(
        &e.image_remove(&rest, q.force, q.noprune).await?,
    ))
}

async fn save_many(State(e): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let q: ImageSaveQuery = query(q)?;
    if q.names.is_empty() {
        return Err(ApiError::bad_request(
            "no images given: pass names=IMAGE (repeatable)",
        ));
    }
    save(e, q.names).await
}

async fn save(e: AppState, names: Vec<String>) -> ApiResult<Response> {
    // Check every name first so a typo is a 404, not a truncated tar. A repository name
    // without a tag (`save busybox`) saves all its tags.
    let tagged = e
        .store()
        .images()
        .map_err(berth_engine::EngineError::from)?;
    for n in &names {
        if e.store().resolve_image(n).is_ok() {
            continue;
        }
        let repo = berth_oci::Reference::parse(n)
            .ok()
            .filter(|r| r.tag().is_none() && r.digest().is_none());
        let has_repo = repo.is_some_and(|r| {
            tagged
                .iter()
                .any(|(_, tags)| tags.iter().any(|t| t.name() == r.name()))
        });
        if !has_repo {
            return Err(berth_engine::EngineError::NoSuchImage(
                berth_engine::engine::display_reference(n),
            )
            .into());
        }
    }
    let (tx, rx) = mpsc::channel(8);
    let writer = berth_engine::bridge::ChannelWriter::new(tx);
    tokio::spawn(async move {
        if let Err(err) = e.image_save(names, writer).await {
            tracing::warn!("image save failed: {err}");
        }
    });
    Ok(stream_response(StatusCode::OK, "application/x-tar", rx))
}

fn json_lines(messages: &[serde_json::Value]) -> Response {
    let mut body = Vec::new();
    for m in messages {
        body.extend_from_slice(&serde_json::to_vec(m).unwrap_or_default());
        body.push(b'\n');
    }
    let (tx, rx) = mpsc::channel(1);
    let _ = tx.try_send(Bytes::from(body));
    stream_response(StatusCode::OK, "application/json", rx)
}

/// An uploaded tarball's chunks are coalesced to at least this size before they cross to the
/// blocking image code: hyper yields one frame per socket read (the docker CLI writes ~10 KiB
/// at a time), and every frame would otherwise cost a wake-up of the blocking thread and,
/// behind it, of the hashing and storing threads (~80000 context switches per 165 MB).
const UPLOAD_CHUNK: usize = 256 << 10;

/// The request body as a blocking reader, in chunks of at least [`UPLOAD_CHUNK`] (the last
/// may be shorter). At most 4 chunks wait in the channel.
fn upload_reader(body: Body) -> berth_engine::bridge::ChannelReader {
    use futures_util::StreamExt;
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut stream = body.into_data_stream();
        let mut pending = bytes::BytesMut::new();
        loop {
            let item = match stream.next().await {
                Some(Ok(chunk)) if pending.is_empty() && chunk.len() >= UPLOAD_CHUNK => Ok(chunk),
                Some(Ok(chunk)) => {
                    pending.extend_from_slice(&chunk);
                    if pending.len() < UPLOAD_CHUNK {
                        continue;
                    }
                    Ok(pending.split().freeze())
                }
                Some(Err(err)) => {
                    if !pending.is_empty() && tx.send(Ok(pending.split().freeze())).await.is_err() {
                        return;
                    }
                    let _ = tx.send(Err(std::io::Error::other(err))).await;
                    return;
                }
                None => {
                    if !pending.is_empty() {
                        let _ = tx.send(Ok(pending.split().freeze())).await;
                    }
                    return;
                }
            };
            if tx.send(item).await.is_err() {
                return;
            }
        }
    });
    berth_engine::bridge::ChannelReader::new(rx)
}

async fn load(State(e): State<AppState>, RawQuery(q): RawQuery, body: Body) -> ApiResult<Response> {
    let q: ImageLoadQuery = query(q)?;
    let reader = upload_reader(body);
    let messages = e.image_load(reader).await?;
    let _ = q.quiet;
    let lines: Vec<serde_json::Value> = messages
        .iter()
        .map(|m| json!({"stream": format!("{m}\n")}))
        .collect();
    Ok(json_lines(&lines))
}

async fn create(
    State(e): State<AppState>,
    RawQuery(q): RawQuery,
    body: Body,
) -> ApiResult<Response> {
    let q: ImageCreateQuery = query(q)?;
    match (q.from_src.as_deref(), q.from_image.as_deref()) {
        (Some("-"), _) => {
            let reader = upload_reader(body);
            let id = e
                .image_import(
                    reader,
                    q.repo.clone(),
                    q.tag.clone(),
                    q.message.clone(),
                    q.changes.clone(),
                )
                .await?;
            Ok(json_lines(&[json!({"status": id})]))
        }
        (Some(src), _) => Err(ApiError::new(
            berth_oci::errdefs::ErrorKind::NotImplemented,
            format!(
                "importing from {src:?} is not supported: send the tarball in the request body with fromSrc=-"
            ),
        )),
        (None, Some(image)) => Err(ApiError::new(
            berth_oci::errdefs::ErrorKind::NotImplemented,
            format!(
                "pulling {image} is not supported yet (Berth has no registry client): load it with `berth load` or import a rootfs with `berth import`"
            ),
        )),
        (None, None) => Err(ApiError::bad_request(
            "either fromSrc or fromImage must be given",
        )),
    }
}

async fn prune(State(e): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let q: PruneQuery = query(q)?;
    Ok(json_response(&e.image_prune(q.filters).await?))
}
