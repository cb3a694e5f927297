//! Query parameters, one struct per endpoint, and the codec both sides use.
//!
//! Docker's conventions differ from plain `application/x-www-form-urlencoded` decoding, so the
//! codec is ours rather than `serde_urlencoded`'s:
//!
//! - booleans: a parameter is false when absent or one of `""`, `0`, `no`, `false`, `none`
//!   (any case), true otherwise (Docker's `httputils.BoolValue`); the client sends `1`.
//! - lists (`names` of `/images/get`, `changes` of `/images/create`): the key repeats.
//! - `filters`: a JSON object in one parameter, either `{"label":["a=b"]}` or the older
//!   `{"label":{"a=b":true}}`; see [`Filters`].
//! - an empty value of an optional parameter (`?t=`) means "not given".
//! - unknown parameters are ignored.
//!
//! ```
//! use berth_api::query::{self, ContainerListQuery};
//! let q: ContainerListQuery = query::from_query_str("all=1&limit=3&filters=%7B%22status%22%3A%5B%22exited%22%5D%7D").unwrap();
//! assert!(q.all);
//! assert_eq!(q.limit, Some(3));
//! assert_eq!(q.filters.get("status"), ["exited"]);
//! assert_eq!(query::to_query_string(&q), "all=1&filters=%7B%22status%22%3A%7B%22exited%22%3Atrue%7D%7D&limit=3");
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeOwned, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use berth_oci::errdefs::{Classify, ErrorKind};

/// A query string that could not be decoded into an endpoint's parameters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(pub String);

impl Classify for QueryError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

impl de::Error for QueryError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        QueryError(msg.to_string())
    }
}

/// Docker's boolean parsing of a query value (`httputils.BoolValue`).
pub fn docker_bool(value: &str) -> bool {
    let v = value.trim().to_ascii_lowercase();
    !matches!(v.as_str(), "" | "0" | "no" | "false" | "none")
}

fn is_false(b: &bool) -> bool {
    !*b
}

// ---------------------------------------------------------------------------------------------
// Filters

/// The `filters` parameter: filter name → accepted values (`{"status":["running"]}`).
///
/// Serialized as a JSON string in Docker's current wire form (`{"status":{"running":true}}`,
/// which every daemon accepts); decoded from either form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters(pub BTreeMap<String, Vec<String>>);

impl Filters {
    /// No filters.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when no filter is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds `value` to filter `key` (keeps values unique, in insertion order).
    pub fn add(&mut self, key: &str, value: &str) {
        let values = self.0.entry(key.to_owned()).or_default();
        if !values.iter().any(|v| v == value) {
            values.push(value.to_owned());
        }
    }

    /// Adds one `--filter name=value` command-line argument.
    pub fn add_arg(&mut self, arg: &str) -> Result<(), QueryError> {
        match arg.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                self.add(&k.trim().to_ascii_lowercase(), v.trim());
                Ok(())
            }
            _ => Err(QueryError(format!(
                "bad format of filter (expected name=value): {arg:?}"
            ))),
        }
    }

    /// The values of filter `key` (empty when not set).
    pub fn get(&self, key: &str) -> &[String] {
        self.0.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Fails with Docker's message (`invalid filter 'x'`) when a filter outside `allowed` is set.
    pub fn validate(&self, allowed: &[&str]) -> Result<(), QueryError> {
        match self.0.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(QueryError(format!("invalid filter '{k}'"))),
            None => Ok(()),
        }
    }

    /// Decodes the JSON of a `filters` parameter (either wire form). An empty string is no
    /// filters.
    pub fn from_json(text: &str) -> Result<Self, QueryError> {
        if text.trim().is_empty() {
            return Ok(Filters::new());
        }
        let bad = |why: &str| QueryError(format!("invalid filters {text:?}: {why}"));
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| bad(&e.to_string()))?;
        let serde_json::Value::Object(map) = value else {
            return Err(bad("expected a JSON object"));
        };
        let mut filters = Filters::new();
        for (key, values) in map {
            match values {
                serde_json::Value::Array(items) => {
                    for item in items {
                        let serde_json::Value::String(s) = item else {
                            return Err(bad(&format!("values of filter {key:?} must be strings")));
                        };
                        filters.add(&key, &s);
                    }
                }
                serde_json::Value::Object(items) => {
                    for (value, enabled) in items {
                        match enabled {
                            serde_json::Value::Bool(true) => filters.add(&key, &value),
                            serde_json::Value::Bool(false) => {}
                            _ => {
                                return Err(bad(&format!(
                                    "values of filter {key:?} must map to true or false"
                                )));
                            }
                        }
                    }
                }
                _ => {
                    return Err(bad(&format!(
                        "filter {key:?} must be a list of strings or an object of booleans"
                    )));
                }
            }
        }
        Ok(filters)
    }

    /// The wire form: `{"key":{"value":true}}`.
    pub fn to_json(&self) -> String {
        let map: BTreeMap<&str, BTreeMap<&str, bool>> = self
            .0
            .iter()
            .map(|(k, vs)| (k.as_str(), vs.iter().map(|v| (v.as_str(), true)).collect()))
            .collect();
        serde_json::to_string(&map).expect("string maps always serialize")
    }
}

impl Serialize for Filters {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_json())
    }
}

impl<'de> Deserialize<'de> for Filters {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Filters::from_json(&text).map_err(de::Error::custom)
    }
}

// ---------------------------------------------------------------------------------------------
// Per-endpoint parameters

/// `GET /containers/json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerListQuery {
    /// Include stopped containers.
    #[serde(skip_serializing_if = "is_false")]
    pub all: bool,
    /// Only the `limit` most recently created containers (includes stopped ones).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// Compute `SizeRw` and `SizeRootFs`.
    #[serde(skip_serializing_if = "is_false")]
    pub size: bool,
    /// `id`, `name`, `label`, `status`, `ancestor`, `exited`, `before`, `since`, ...
    #[serde(skip_serializing_if = "Filters::is_empty")]
    pub filters: Filters,
}

/// `POST /containers/create`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerCreateQuery {
    /// The container's name (`[a-zA-Z0-9][a-zA-Z0-9_.-]+`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `os[/arch[/variant]]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
}

/// `GET /containers/{id}/json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerInspectQuery {
    /// Compute `SizeRw` and `SizeRootFs`.
    #[serde(skip_serializing_if = "is_false")]
    pub size: bool,
}

/// `GET /containers/{id}/logs`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerLogsQuery {
    /// Keep the connection open and stream new output.
    #[serde(skip_serializing_if = "is_false")]
    pub follow: bool,
    /// Include stdout.
    #[serde(skip_serializing_if = "is_false")]
    pub stdout: bool,
    /// Include stderr.
    #[serde(skip_serializing_if = "is_false")]
    pub stderr: bool,
    /// Only lines at or after this UNIX time (`seconds[.nanoseconds]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Only lines before this UNIX time (`seconds[.nanoseconds]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// Prefix every line with its RFC 3339 timestamp.
    #[serde(skip_serializing_if = "is_false")]
    pub timestamps: bool,
    /// `all` or the number of lines from the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tail: Option<String>,
}

/// `POST /containers/{id}/resize`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerResizeQuery {
    /// Rows.
    pub h: u32,
    /// Columns.
    pub w: u32,
}

/// `POST /containers/{id}/start`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerStartQuery {
    /// Key sequence for detaching (`ctrl-p,ctrl-q`).
    #[serde(rename = "detachKeys", skip_serializing_if = "Option::is_none")]
    pub detach_keys: Option<String>,
}

/// `POST /containers/{id}/stop` and `POST /containers/{id}/restart`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerStopQuery {
    /// Signal to send first (default: the container's `StopSignal`, else `SIGTERM`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// Seconds to wait before killing; `-1` waits forever.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub t: Option<i64>,
}

/// `POST /containers/{id}/kill`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerKillQuery {
    /// Signal name (`SIGKILL`, `KILL`) or number (`9`); default `SIGKILL`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
}

/// `POST /containers/{id}/rename`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerRenameQuery {
    /// The new name.
    pub name: String,
}

/// `POST /containers/{id}/attach` (hijacked).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerAttachQuery {
    /// Key sequence for detaching.
    #[serde(rename = "detachKeys", skip_serializing_if = "Option::is_none")]
    pub detach_keys: Option<String>,
    /// Replay the container's log first.
    #[serde(skip_serializing_if = "is_false")]
    pub logs: bool,
    /// Stream output as it is produced.
    #[serde(skip_serializing_if = "is_false")]
    pub stream: bool,
    /// Attach stdin.
    #[serde(skip_serializing_if = "is_false")]
    pub stdin: bool,
    /// Attach stdout.
    #[serde(skip_serializing_if = "is_false")]
    pub stdout: bool,
    /// Attach stderr.
    #[serde(skip_serializing_if = "is_false")]
    pub stderr: bool,
}

/// What `POST /containers/{id}/wait` waits for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum WaitCondition {
    /// The container is not running (returns at once for a created or exited container).
    #[default]
    #[serde(rename = "not-running")]
    NotRunning,
    /// The container's next exit (what `docker run` uses).
    #[serde(rename = "next-exit")]
    NextExit,
    /// The container is removed (`docker run --rm`).
    #[serde(rename = "removed")]
    Removed,
}

/// `POST /containers/{id}/wait`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerWaitQuery {
    /// Default: `not-running`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<WaitCondition>,
}

/// `DELETE /containers/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerRemoveQuery {
    /// Also remove anonymous volumes.
    #[serde(skip_serializing_if = "is_false")]
    pub v: bool,
    /// Kill a running container first.
    #[serde(skip_serializing_if = "is_false")]
    pub force: bool,
    /// Remove the legacy link instead of the container.
    #[serde(skip_serializing_if = "is_false")]
    pub link: bool,
}

/// `POST /containers/prune`, `POST /images/prune`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PruneQuery {
    /// `until`, `label`, `label!`, and for images `dangling`.
    #[serde(skip_serializing_if = "Filters::is_empty")]
    pub filters: Filters,
}

/// `GET /images/json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageListQuery {
    /// Include intermediate images.
    #[serde(skip_serializing_if = "is_false")]
    pub all: bool,
    /// `before`, `dangling`, `label`, `reference`, `since`, `until`.
    #[serde(skip_serializing_if = "Filters::is_empty")]
    pub filters: Filters,
    /// Compute `SharedSize`.
    #[serde(rename = "shared-size", skip_serializing_if = "is_false")]
    pub shared_size: bool,
    /// Include `RepoDigests` of untagged images.
    #[serde(skip_serializing_if = "is_false")]
    pub digests: bool,
    /// Include `Manifests`.
    #[serde(skip_serializing_if = "is_false")]
    pub manifests: bool,
}

/// `POST /images/create`: pull (`fromImage`) or import (`fromSrc`, `-` for the request body).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageCreateQuery {
    /// Image to pull.
    #[serde(rename = "fromImage", skip_serializing_if = "Option::is_none")]
    pub from_image: Option<String>,
    /// Source to import: `-` for the request body, or a URL.
    #[serde(rename = "fromSrc", skip_serializing_if = "Option::is_none")]
    pub from_src: Option<String>,
    /// Repository for the imported image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// Tag (or digest when pulling).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Commit message of the imported image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Dockerfile instructions applied to the imported image (`CMD ["sh"]`); repeated.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
    /// `os[/arch[/variant]]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
}

/// `POST /images/{name}/tag`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageTagQuery {
    /// The repository, e.g. `someuser/someimage` or `registry:5000/x`.
    pub repo: String,
    /// The tag; default `latest`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// `DELETE /images/{name}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageRemoveQuery {
    /// Remove even if in use by stopped containers or tagged in several repositories.
    #[serde(skip_serializing_if = "is_false")]
    pub force: bool,
    /// Keep untagged parents.
    #[serde(skip_serializing_if = "is_false")]
    pub noprune: bool,
}

/// `GET /images/get`: a `docker save` tarball of several images.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageSaveQuery {
    /// Image names or IDs; repeated.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
}

/// `POST /images/load`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageLoadQuery {
    /// Suppress progress details.
    #[serde(skip_serializing_if = "is_false")]
    pub quiet: bool,
}

/// `GET /events`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EventsQuery {
    /// Events since this UNIX time (`seconds[.nanoseconds]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Events until this UNIX time, then the stream ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// `container`, `event`, `image`, `label`, `type`, ...
    #[serde(skip_serializing_if = "Filters::is_empty")]
    pub filters: Filters,
}

/// `GET /system/df`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SystemDfQuery {
    /// Object types to compute: `container`, `image`, `volume`, `build-cache`; repeated.
    #[serde(rename = "type", skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// Percent encoding

/// Percent-encodes `s` for a query component (everything but unreserved characters).
pub fn encode_component(s: &str) -> String {
    encode_except(s, |b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
}

/// Percent-encodes `s` for a path segment that may itself contain `/` and `:` (image names
/// such as `registry:5000/library/busybox:1.36` travel unescaped, as Docker's client sends
/// them).
pub fn encode_path(s: &str) -> String {
    encode_except(s, |b| b.is_ascii_alphanumeric() || b"-_.~/:@".contains(&b))
}

fn encode_except(s: &str, keep: impl Fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if keep(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes a form-encoded component (`+` is a space, `%XX` a byte). Invalid escapes are
/// kept literally; invalid UTF-8 is an error.
pub fn decode_component(s: &str) -> Result<String, QueryError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| QueryError(format!("query value {s:?} is not valid UTF-8")))
}

/// Splits a query string into decoded `(key, value)` pairs, in order.
pub fn parse_pairs(query: &str) -> Result<Vec<(String, String)>, QueryError> {
    let mut pairs = Vec::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        pairs.push((decode_component(k)?, decode_component(v)?));
    }
    Ok(pairs)
}

// ---------------------------------------------------------------------------------------------
// Encoding

/// Encodes an endpoint's parameters as a query string (without the leading `?`), keys in
/// alphabetical order: booleans as `1`/`0`, lists as repeated keys, `None` omitted.
pub fn to_query_string<T: Serialize>(params: &T) -> String {
    let value = serde_json::to_value(params).expect("query structs always serialize");
    let mut out = String::new();
    let serde_json::Value::Object(map) = value else {
        return out;
    };
    let mut push = |k: &str, v: &str| {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(&encode_component(k));
        out.push('=');
        out.push_str(&encode_component(v));
    };
    for (key, value) in map {
        match value {
            serde_json::Value::Array(items) => {
                for item in items {
                    push(&key, &scalar_text(&item));
                }
            }
            serde_json::Value::Null => {}
            other => push(&key, &scalar_text(&other)),
        }
    }
    out
}

fn scalar_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Bool(true) => "1".into(),
        serde_json::Value::Bool(false) => "0".into(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding

/// Decodes a query string (without the leading `?`) into an endpoint's parameters.
pub fn from_query_str<T: DeserializeOwned>(query: &str) -> Result<T, QueryError> {
    let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
    for (k, v) in parse_pairs(query)? {
        match grouped.iter_mut().find(|(key, _)| *key == k) {
            Some((_, values)) => values.push(v),
            None => grouped.push((k, vec![v])),
        }
    }
    T::deserialize(PairsDeserializer { pairs: grouped })
}

struct PairsDeserializer {
    pairs: Vec<(String, Vec<String>)>,
}

impl<'de> Deserializer<'de> for PairsDeserializer {
    type Error = QueryError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
        visitor.visit_map(PairsAccess {
            iter: self.pairs.into_iter(),
            pending: None,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

struct PairsAccess {
    iter: std::vec::IntoIter<(String, Vec<String>)>,
    pending: Option<(String, Vec<String>)>,
}

impl<'de> MapAccess<'de> for PairsAccess {
    type Error = QueryError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, QueryError> {
        match self.iter.next() {
            Some((k, v)) => {
                let key = seed.deserialize(k.clone().into_deserializer())?;
                self.pending = Some((k, v));
                Ok(Some(key))
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, QueryError> {
        let (key, values) = self
            .pending
            .take()
            .ok_or_else(|| QueryError("value requested before its key".into()))?;
        seed.deserialize(ValuesDeserializer { key, values })
    }
}

/// The values of one parameter (one or more, when the key repeats).
struct ValuesDeserializer {
    key: String,
    values: Vec<String>,
}

impl ValuesDeserializer {
    fn last(&self) -> &str {
        self.values.last().map(String::as_str).unwrap_or("")
    }

    fn invalid(&self, expected: &str) -> QueryError {
        QueryError(format!(
            "invalid value {:?} for query parameter {:?}: expected {expected}",
            self.last(),
            self.key
        ))
    }
}

macro_rules! parse_number {
    ($($method:ident => $visit:ident: $ty:ty, $what:literal;)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
                match self.last().trim().parse::<$ty>() {
                    Ok(n) => visitor.$visit(n),
                    Err(_) => Err(self.invalid($what)),
                }
            }
        )*
    };
}

impl<'de> Deserializer<'de> for ValuesDeserializer {
    type Error = QueryError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
        let last = self.last().to_owned();
        visitor.visit_string(last)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
        visitor.visit_bool(docker_bool(self.last()))
    }

    parse_number! {
        deserialize_i8 => visit_i8: i8, "an integer";
        deserialize_i16 => visit_i16: i16, "an integer";
        deserialize_i32 => visit_i32: i32, "an integer";
        deserialize_i64 => visit_i64: i64, "an integer";
        deserialize_u8 => visit_u8: u8, "a non-negative integer";
        deserialize_u16 => visit_u16: u16, "a non-negative integer";
        deserialize_u32 => visit_u32: u32, "a non-negative integer";
        deserialize_u64 => visit_u64: u64, "a non-negative integer";
        deserialize_f32 => visit_f32: f32, "a number";
        deserialize_f64 => visit_f64: f64, "a number";
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
        if self.last().is_empty() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
        let key = self.key;
        visitor.visit_seq(ValuesSeq {
            key,
            iter: self.values.into_iter(),
        })
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, QueryError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, QueryError> {
        let value = self.last().to_owned();
        if !variants.contains(&value.as_str()) {
            return Err(self.invalid(&format!("one of {}", variants.join(", "))));
        }
        visitor.visit_enum(IntoDeserializer::<QueryError>::into_deserializer(value))
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        i128 u128 char str string bytes byte_buf unit_struct tuple
        tuple_struct map struct identifier ignored_any
    }
}

struct ValuesSeq {
    key: String,
    iter: std::vec::IntoIter<String>,
}

impl<'de> SeqAccess<'de> for ValuesSeq {
    type Error = QueryError;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, QueryError> {
        match self.iter.next() {
            Some(v) => seed
                .deserialize(ValuesDeserializer {
                    key: self.key.clone(),
                    values: vec![v],
                })
                .map(Some),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_booleans() {
        for t in ["1", "true", "True", "yes", "anything"] {
            assert!(docker_bool(t), "{t}");
        }
        for f in ["", "0", "no", "false", "FALSE", "none", " 0 "] {
            assert!(!docker_bool(f), "{f}");
        }
    }

    #[test]
    fn list_query_round_trip() {
        let mut q = ContainerListQuery {
            all: true,
            limit: Some(5),
            size: false,
            filters: Filters::new(),
        };
        q.filters.add("label", "a=b");
        q.filters.add("status", "exited");
        let s = to_query_string(&q);
        assert!(s.starts_with("all=1&filters=%7B%22label"), "{s}");
        assert!(s.ends_with("&limit=5"), "{s}");
        assert!(!s.contains("size"), "{s}");
        let back: ContainerListQuery = from_query_str(&s).unwrap();
        assert_eq!(back, q);
    }

    #[test]
    fn absent_parameters_take_defaults() {
        let q: ContainerLogsQuery = from_query_str("").unwrap();
        assert_eq!(q, ContainerLogsQuery::default());
        let q: ContainerStopQuery = from_query_str("t=").unwrap();
        assert_eq!(q.t, None);
    }

    #[test]
    fn repeated_keys_become_lists() {
        let q: ImageSaveQuery = from_query_str("names=busybox&names=alpine%3A3").unwrap();
        assert_eq!(q.names, ["busybox", "alpine:3"]);
        assert_eq!(to_query_string(&q), "names=busybox&names=alpine%3A3");
        let q: ImageCreateQuery =
            from_query_str("fromSrc=-&repo=x&changes=CMD+%5B%22sh%22%5D&changes=ENV+A%3D1")
                .unwrap();
        assert_eq!(q.from_src.as_deref(), Some("-"));
        assert_eq!(q.changes, ["CMD [\"sh\"]", "ENV A=1"]);
    }

    #[test]
    fn enums_and_renamed_fields() {
        let q: ContainerWaitQuery = from_query_str("condition=next-exit").unwrap();
        assert_eq!(q.condition, Some(WaitCondition::NextExit));
        let err = from_query_str::<ContainerWaitQuery>("condition=soon").unwrap_err();
        assert!(err.0.contains("\"condition\""), "{err}");
        assert!(err.0.contains("next-exit"), "{err}");
        let q: ContainerAttachQuery =
            from_query_str("stream=1&stdout=1&detachKeys=ctrl-x").unwrap();
        assert!(q.stream && q.stdout && !q.stdin);
        assert_eq!(q.detach_keys.as_deref(), Some("ctrl-x"));
        let q: ImageListQuery = from_query_str("shared-size=true").unwrap();
        assert!(q.shared_size);
    }

    #[test]
    fn bad_numbers_name_the_parameter() {
        let err = from_query_str::<ContainerListQuery>("limit=ten").unwrap_err();
        assert_eq!(
            err.0,
            "invalid value \"ten\" for query parameter \"limit\": expected an integer"
        );
        let err = from_query_str::<ContainerResizeQuery>("h=-1&w=80").unwrap_err();
        assert!(err.0.contains("\"h\""), "{err}");
    }

    #[test]
    fn unknown_parameters_are_ignored() {
        let q: ContainerKillQuery = from_query_str("signal=HUP&whatever=1").unwrap();
        assert_eq!(q.signal.as_deref(), Some("HUP"));
    }

    #[test]
    fn filters_accept_both_wire_forms() {
        let a = Filters::from_json(r#"{"status":["running","paused"]}"#).unwrap();
        let b = Filters::from_json(r#"{"status":{"running":true,"paused":true,"dead":false}}"#)
            .unwrap();
        assert_eq!(a.get("status"), ["running", "paused"]);
        let mut b_sorted = b.get("status").to_vec();
        b_sorted.sort();
        assert_eq!(b_sorted, ["paused", "running"]);
        assert!(Filters::from_json("").unwrap().is_empty());
        for bad in [
            "[1]",
            r#"{"a":1}"#,
            r#"{"a":[1]}"#,
            r#"{"a":{"b":"yes"}}"#,
            "{",
        ] {
            assert!(Filters::from_json(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn filters_from_cli_arguments() {
        let mut f = Filters::new();
        f.add_arg("label=com.example=1").unwrap();
        f.add_arg("status=exited").unwrap();
        f.add_arg("status=exited").unwrap();
        assert_eq!(f.get("label"), ["com.example=1"]);
        assert_eq!(f.get("status"), ["exited"]);
        assert!(f.add_arg("nonsense").is_err());
        assert!(f.add_arg("=x").is_err());
        assert_eq!(f.validate(&["label", "status"]), Ok(()));
        assert_eq!(
            f.validate(&["label"]).unwrap_err().0,
            "invalid filter 'status'"
        );
    }

    #[test]
    fn percent_coding() {
        assert_eq!(encode_component("a b/c:d"), "a%20b%2Fc%3Ad");
        assert_eq!(
            encode_path("registry:5000/x/y:1 2"),
            "registry:5000/x/y:1%202"
        );
        assert_eq!(decode_component("a+b%2Fc%3a").unwrap(), "a b/c:");
        assert_eq!(decode_component("100%").unwrap(), "100%");
        assert_eq!(decode_component("%zz").unwrap(), "%zz");
        assert!(decode_component("%ff").is_err());
    }
}
