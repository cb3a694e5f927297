//! berthd's server: the Docker Engine API (v1.47) over a unix socket, on top of
//! [`berth_engine::Engine`].
//!
//! - [`routes`]: one module per API tag (`containers`, `images`, `system`), `/vX.Y/`
//!   prefixes stripped before routing, versions outside 1.24–1.47 rejected with Docker's
//!   messages;
//! - [`error`]: the one mapping from error kinds to HTTP statuses and Docker's error body;
//! - [`config`]: flags and the `daemon.json`-style config file;
//! - [`memory`]: returning freed heap to the kernel once the API goes quiet;
//! - [`tls`]: `tcp://` listeners, TLS with client certificates only.
#![forbid(unsafe_code)]
#![recursion_limit = "256"]

pub mod config;
pub mod error;
pub mod memory;
pub mod routes;
pub mod tls;

use std::sync::Arc;

use axum::extract::Request;
use berth_engine::Engine;
use tower::Layer;

/// Serves the API on `listener` until the future is dropped.
pub async fn serve_unix(
    listener: tokio::net::UnixListener,
    engine: Arc<Engine>,
) -> std::io::Result<()> {
    serve(listener, engine).await
}

/// Serves the API on any axum listener (unix sockets, [`tls::TlsListener`]) until the future
/// is dropped.
pub async fn serve<L>(listener: L, engine: Arc<Engine>) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let counted = tower::util::MapResponseLayer::new(|res: axum::response::Response| {
        memory::touch();
        res
    })
    .layer(routes::router(engine));
    let app = tower::util::MapRequestLayer::new(|req: Request| {
        memory::touch();
        routes::strip_version(req)
    })
    .layer(counted);
    axum::serve(
        listener,
        axum::ServiceExt::<Request>::into_make_service(app),
    )
    .await
}
