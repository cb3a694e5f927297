//! Typed endpoints: one method per API call the CLI makes.
//!
//! Ids and names are percent-encoded into the path; streaming endpoints return the
//! [`Response`] so the caller reads the body as it arrives.

use crate::body::{ContainerCreateBody, PingInfo};
use crate::client::{Body, Client, ClientError, Hijacked, Request, Response};
use crate::models::{
    ContainerCreateResponse, ContainerInspectResponse, ContainerPruneResponse, ContainerSummary,
    ContainerWaitResponse, HistoryResponseItem, ImageDeleteResponseItem, ImageInspect,
    ImagePruneResponse, ImageSummary, SystemDataUsageResponse, SystemInfo, SystemVersion,
};
use crate::query::{
    self, ContainerAttachQuery, ContainerCreateQuery, ContainerKillQuery, ContainerListQuery,
    ContainerLogsQuery, ContainerRemoveQuery, ContainerRenameQuery, ContainerResizeQuery,
    ContainerStartQuery, ContainerStopQuery, ContainerWaitQuery, EventsQuery, ImageCreateQuery,
    ImageListQuery, ImageLoadQuery, ImageRemoveQuery, ImageSaveQuery, ImageTagQuery, PruneQuery,
    SystemDfQuery,
};

fn container_path(id: &str, rest: &str) -> String {
    format!("/containers/{}{rest}", query::encode_component(id))
}

fn image_path(name: &str, rest: &str) -> String {
    format!("/images/{}{rest}", query::encode_path(name))
}

impl Client {
    /// `GET /_ping`: the daemon is up; its API version and OS.
    pub fn ping(&self) -> Result<PingInfo, ClientError> {
        let mut resp = self.call(Request::new("GET", "/_ping"))?;
        let header = |n: &str| resp.header(n).map(str::to_owned);
        let info = PingInfo {
            api_version: header("api-version"),
            os_type: header("ostype"),
            server: header("server"),
            builder_version: header("builder-version"),
        };
        let _ = resp.drain();
        Ok(info)
    }

    /// `GET /version`.
    pub fn version(&self) -> Result<SystemVersion, ClientError> {
        self.call_json(Request::new("GET", "/version"))
    }

    /// `GET /version`, undecoded (for `--format`).
    pub fn version_raw(&self) -> Result<Vec<u8>, ClientError> {
        self.raw(Request::new("GET", "/version"))
    }

    /// `GET /info`.
    pub fn info(&self) -> Result<SystemInfo, ClientError> {
        self.call_json(Request::new("GET", "/info"))
    }

    /// `GET /info`, undecoded (for `--format`).
    pub fn info_raw(&self) -> Result<Vec<u8>, ClientError> {
        self.raw(Request::new("GET", "/info"))
    }

    /// The whole body of a successful response.
    pub fn raw(&self, req: Request) -> Result<Vec<u8>, ClientError> {
        let resp = self.call(req)?;
        resp.bytes()
            .map_err(|e| ClientError::Protocol(format!("reading response body: {e}")))
    }

    /// `POST /containers/create`.
    pub fn container_create(
        &self,
        q: &ContainerCreateQuery,
        body: &ContainerCreateBody,
    ) -> Result<ContainerCreateResponse, ClientError> {
        self.call_json(
            Request::new("POST", "/containers/create")
                .query(q)
                .body(Body::json(body)?),
        )
    }

    /// `POST /containers/{id}/start` (a 304 "already started" is success).
    pub fn container_start(&self, id: &str, q: &ContainerStartQuery) -> Result<(), ClientError> {
        self.call_empty(Request::new("POST", container_path(id, "/start")).query(q))
    }

    /// `POST /containers/{id}/stop` (a 304 "already stopped" is success).
    pub fn container_stop(&self, id: &str, q: &ContainerStopQuery) -> Result<(), ClientError> {
        self.call_empty(Request::new("POST", container_path(id, "/stop")).query(q))
    }

    /// `POST /containers/{id}/restart`.
    pub fn container_restart(&self, id: &str, q: &ContainerStopQuery) -> Result<(), ClientError> {
        self.call_empty(Request::new("POST", container_path(id, "/restart")).query(q))
    }

    /// `POST /containers/{id}/kill`.
    pub fn container_kill(&self, id: &str, q: &ContainerKillQuery) -> Result<(), ClientError> {
        self.call_empty(Request::new("POST", container_path(id, "/kill")).query(q))
    }

    /// `DELETE /containers/{id}`.
    pub fn container_remove(&self, id: &str, q: &ContainerRemoveQuery) -> Result<(), ClientError> {
        self.call_empty(Request::new("DELETE", container_path(id, "")).query(q))
    }

    /// `POST /containers/{id}/rename`.
    pub fn container_rename(&self, id: &str, q: &ContainerRenameQuery) -> Result<(), ClientError> {
        self.call_empty(Request::new("POST", container_path(id, "/rename")).query(q))
    }

    /// `POST /containers/{id}/resize`.
    pub fn container_resize(&self, id: &str, q: &ContainerResizeQuery) -> Result<(), ClientError> {
        self.call_empty(Request::new("POST", container_path(id, "/resize")).query(q))
    }

    /// `GET /containers/{id}/json`.
    pub fn container_inspect(&self, id: &str) -> Result<ContainerInspectResponse, ClientError> {
        self.call_json(Request::new("GET", container_path(id, "/json")))
    }

    /// `GET /containers/{id}/json`, undecoded (for `inspect`, which keeps the daemon's
    /// field order).
    pub fn container_inspect_raw(&self, id: &str, size: bool) -> Result<Vec<u8>, ClientError> {
        self.raw(
            Request::new("GET", container_path(id, "/json"))
                .query(&query::ContainerInspectQuery { size }),
        )
    }

    /// `GET /containers/json`.
    pub fn container_list(
        &self,
        q: &ContainerListQuery,
    ) -> Result<Vec<ContainerSummary>, ClientError> {
        self.call_json(Request::new("GET", "/containers/json").query(q))
    }

    /// `POST /containers/{id}/wait`. Returns once the daemon has registered the waiter (the
    /// response head); read the result with [`wait_result`], possibly from another thread.
    pub fn container_wait(
        &self,
        id: &str,
        q: &ContainerWaitQuery,
    ) -> Result<Response, ClientError> {
        self.call(Request::new("POST", container_path(id, "/wait")).query(q))
    }

    /// `GET /containers/{id}/logs`: raw or multiplexed stream, depending on the container's TTY.
    pub fn container_logs(
        &self,
        id: &str,
        q: &ContainerLogsQuery,
    ) -> Result<Response, ClientError> {
        self.call(Request::new("GET", container_path(id, "/logs")).query(q))
    }

    /// `POST /containers/{id}/attach`, hijacked.
    pub fn container_attach(
        &self,
        id: &str,
        q: &ContainerAttachQuery,
    ) -> Result<Hijacked, ClientError> {
        self.upgrade(Request::new("POST", container_path(id, "/attach")).query(q))
    }

    /// `GET /containers/{id}/export`: a tarball of the container's filesystem.
    pub fn container_export(&self, id: &str) -> Result<Response, ClientError> {
        self.call(Request::new("GET", container_path(id, "/export")))
    }

    /// `POST /containers/prune`.
    pub fn container_prune(&self, q: &PruneQuery) -> Result<ContainerPruneResponse, ClientError> {
        self.call_json(Request::new("POST", "/containers/prune").query(q))
    }

    /// `GET /images/json`.
    pub fn image_list(&self, q: &ImageListQuery) -> Result<Vec<ImageSummary>, ClientError> {
        self.call_json(Request::new("GET", "/images/json").query(q))
    }

    /// `GET /images/{name}/json`.
    pub fn image_inspect(&self, name: &str) -> Result<ImageInspect, ClientError> {
        self.call_json(Request::new("GET", image_path(name, "/json")))
    }

    /// `GET /images/{name}/json`, undecoded.
    pub fn image_inspect_raw(&self, name: &str) -> Result<Vec<u8>, ClientError> {
        self.raw(Request::new("GET", image_path(name, "/json")))
    }

    /// `GET /images/{name}/history`.
    pub fn image_history(&self, name: &str) -> Result<Vec<HistoryResponseItem>, ClientError> {
        self.call_json(Request::new("GET", image_path(name, "/history")))
    }

    /// `POST /images/{name}/tag`.
    pub fn image_tag(&self, name: &str, q: &ImageTagQuery) -> Result<(), ClientError> {
        self.call_empty(Request::new("POST", image_path(name, "/tag")).query(q))
    }

    /// `DELETE /images/{name}`.
    pub fn image_remove(
        &self,
        name: &str,
        q: &ImageRemoveQuery,
    ) -> Result<Vec<ImageDeleteResponseItem>, ClientError> {
        self.call_json(Request::new("DELETE", image_path(name, "")).query(q))
    }

    /// `POST /images/prune`.
    pub fn image_prune(&self, q: &PruneQuery) -> Result<ImagePruneResponse, ClientError> {
        self.call_json(Request::new("POST", "/images/prune").query(q))
    }

    /// `POST /images/load` with a `docker save` tarball; the response is a JSON message
    /// stream.
    pub fn image_load(
        &self,
        q: &ImageLoadQuery,
        tarball: Box<dyn std::io::Read + Send>,
        len: Option<u64>,
    ) -> Result<Response, ClientError> {
        self.call(
            Request::new("POST", "/images/load")
                .query(q)
                .body(Body::Reader {
                    content_type: "application/x-tar",
                    reader: tarball,
                    len,
                }),
        )
    }

    /// `GET /images/get`: a `docker save` tarball of `names`.
    pub fn image_save(&self, q: &ImageSaveQuery) -> Result<Response, ClientError> {
        self.call(Request::new("GET", "/images/get").query(q))
    }

    /// `POST /images/create`: import (`fromSrc=-` with the tarball as body) or pull; the
    /// response is a JSON message stream.
    pub fn image_create(
        &self,
        q: &ImageCreateQuery,
        body: Option<(Box<dyn std::io::Read + Send>, Option<u64>)>,
    ) -> Result<Response, ClientError> {
        let mut req = Request::new("POST", "/images/create").query(q);
        if let Some((reader, len)) = body {
            req = req.body(Body::Reader {
                content_type: "application/x-tar",
                reader,
                len,
            });
        }
        self.call(req)
    }

    /// `GET /events`: a stream of `EventMessage` JSON objects.
    pub fn events(&self, q: &EventsQuery) -> Result<Response, ClientError> {
        self.call(Request::new("GET", "/events").query(q))
    }

    /// `GET /system/df`.
    pub fn system_df(&self, q: &SystemDfQuery) -> Result<SystemDataUsageResponse, ClientError> {
        self.call_json(Request::new("GET", "/system/df").query(q))
    }
}

/// Reads the result of [`Client::container_wait`]. A wait that ended with an error (the
/// container could not be waited for) is reported in `Error.Message` by the daemon.
pub fn wait_result(resp: Response) -> Result<ContainerWaitResponse, ClientError> {
    resp.json()
}
