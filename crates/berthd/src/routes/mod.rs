//! The API's routes, one module per API tag (moby's `server/router/<resource>`), and the
//! helpers they share: query decoding (Docker's conventions, [`berth_api::query`]), JSON
//! bodies with errors naming the field, streaming bodies.

pub mod containers;
pub mod images;
pub mod system;

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use berth_engine::Engine;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::error::{ApiError, ApiResult};

/// Shared state of every handler.
pub type AppState = Arc<Engine>;

/// The API version a request asked for (`/v1.43/...`), if any.
#[derive(Debug, Clone, Copy)]
pub struct RequestedVersion(pub Option<(u32, u32)>);

fn parse_version(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Strips a `/vX.Y` prefix (routing sees bare paths) and remembers the version.
pub fn strip_version(mut req: Request) -> Request {
    let path = req.uri().path();
    let mut version = None;
    if let Some(rest) = path.strip_prefix("/v")
        && let Some((v, tail)) = rest.split_once('/')
        && let Some(parsed) = parse_version(v)
    {
        version = Some(parsed);
        let new_path = format!("/{tail}");
        let pq = match req.uri().query() {
            Some(q) => format!("{new_path}?{q}"),
            None => new_path,
        };
        if let Ok(uri) = pq.parse::<Uri>() {
            *req.uri_mut() = uri;
        }
    }
    req.extensions_mut().insert(RequestedVersion(version));
    req
}

const MAX: (u32, u32) = (1, 47);
const MIN: (u32, u32) = (1, 24);

/// Rejects versions outside what we serve, with Docker's messages.
async fn check_version(req: Request, next: Next) -> Response {
    if let Some(RequestedVersion(Some(v))) = req.extensions().get::<RequestedVersion>().copied() {
        if v > MAX {
            return ApiError::bad_request(format!(
                "client version {}.{} is too new. Maximum supported API version is {}",
                v.0,
                v.1,
                berth_api::API_VERSION
            ))
            .into_response();
        }
        if v < MIN {
            return ApiError::bad_request(format!(
                "client version {}.{} is too old. Minimum supported API version is {}, please upgrade your client to a newer version",
                v.0,
                v.1,
                berth_api::MIN_API_VERSION
            ))
            .into_response();
        }
    }
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        "Api-Version",
        HeaderValue::from_static(berth_api::API_VERSION),
    );
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert("Server", HeaderValue::from_static(SERVER));
    resp
}

/// The `Server` header.
pub const SERVER: &str = concat!("Berth/", env!("CARGO_PKG_VERSION"), " (linux)");

/// Every route.
pub fn router(engine: AppState) -> Router {
    Router::new()
        .merge(system::routes())
        .merge(containers::routes())
        .merge(images::routes())
        .fallback(fallback)
        .layer(axum::middleware::from_fn(check_version))
        .with_state(engine)
}

async fn fallback(req: Request) -> ApiError {
    ApiError::not_found(format!(
        "page not found: {} {}",
        req.method(),
        req.uri().path()
    ))
}

/// Decodes a query string into an endpoint's parameters (400 naming the parameter).
pub fn query<T: DeserializeOwned + Default>(raw: Option<String>) -> ApiResult<T> {
    match raw {
        None => Ok(T::default()),
        Some(q) => {
            berth_api::query::from_query_str(&q).map_err(|e| ApiError::bad_request(e.to_string()))
        }
    }
}

/// Decodes a JSON body; errors name the field (`HostConfig.Memory: invalid type: ...`).
pub fn json_body<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let v: T = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            ApiError::bad_request(format!("invalid JSON: {inner}"))
        } else {
            ApiError::bad_request(format!("invalid JSON: {path}: {inner}"))
        }
    })?;
    Ok(v)
}

/// A response whose body comes from a channel (streams, follow, exports).
pub fn stream_response(
    status: StatusCode,
    content_type: &str,
    rx: mpsc::Receiver<Bytes>,
) -> Response {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        resp.headers_mut()
            .insert(axum::http::header::CONTENT_TYPE, v);
    }
    resp
}

/// A JSON response with status 200.
pub fn json_response(v: &impl serde::Serialize) -> Response {
    json_status(StatusCode::OK, v)
}

pub fn json_status(status: StatusCode, v: &impl serde::Serialize) -> Response {
    let body = serde_json::to_vec(v).unwrap_or_else(|_| b"null".to_vec());
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// The request body as a blocking reader (for image loads and imports that run in
/// `spawn_blocking`), fed chunk by chunk without buffering the whole upload.
pub fn body_reader(body: Body) -> berth_engine::bridge::ChannelReader {
    use futures_util::StreamExt;
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let item = chunk.map_err(std::io::Error::other);
            let failed = item.is_err();
            if tx.send(item).await.is_err() || failed {
                break;
            }
        }
    });
    berth_engine::bridge::ChannelReader::new(rx)
}
