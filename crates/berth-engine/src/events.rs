//! The events bus: container and image events in Docker's message shape, broadcast to
//! `/events` subscribers and kept in a bounded in-memory history for `since`/`until`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use serde::Serialize;
use tokio::sync::broadcast;

use berth_api::query::Filters;

use crate::error::{EngineError, Result};

/// How many past events `since` can reach back to: Docker's 256 ("Only the last 256 log
/// events are returned", `docker system events`). Each kept event is ~1 KB of small heap
/// allocations; 1024 of them (before s19) were most of an idle berthd's live heap after a
/// few hundred containers (docs/engine.md, s19).
pub const HISTORY: usize = 256;

/// One event, serialized exactly as Docker's `/events` stream (`events.Message`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Deprecated fields older clients still read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(rename = "Type")]
    pub typ: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    pub scope: String,
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

/// The bus. Cheap to publish to when nobody listens.
pub struct Events {
    tx: broadcast::Sender<Event>,
    history: Mutex<VecDeque<Event>>,
}

impl Default for Events {
    fn default() -> Self {
        Self::new()
    }
}

impl Events {
    pub fn new() -> Events {
        let (tx, _) = broadcast::channel(1024);
        Events {
            tx,
            history: Mutex::new(VecDeque::with_capacity(64)),
        }
    }

    /// Publishes an event of `typ` (`container`, `image`) about `id`.
    pub fn publish(&self, typ: &str, action: &str, id: &str, attributes: BTreeMap<String, String>) {
        let now = jiff::Timestamp::now();
        let nanos = now.as_nanosecond() as i64;
        let from = attributes.get("image").cloned();
        let legacy = typ == "container" || typ == "image";
        let ev = Event {
            status: legacy.then(|| action.to_string()),
            id: legacy.then(|| id.to_string()),
            from: if typ == "container" { from } else { None },
            typ: typ.to_string(),
            action: action.to_string(),
            actor: Actor {
                id: id.to_string(),
                attributes,
            },
            scope: "local".into(),
            time: nanos.div_euclid(1_000_000_000),
            time_nano: nanos,
        };
        {
            let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
            if h.len() == HISTORY {
                h.pop_front();
            }
            h.push_back(ev.clone());
        }
        let _ = self.tx.send(ev);
    }

    /// Past events (oldest first) and a receiver for the next ones, taken atomically so that
    /// nothing falls between them.
    pub fn subscribe(&self) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let rx = self.tx.subscribe();
        (h.iter().cloned().collect(), rx)
    }
}

/// `/events` filters: `type`, `event`/`action`, `container`, `image`, `label`, `scope`
/// (values within a key are alternatives; keys must all match).
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    filters: Filters,
}

const EVENT_FILTERS: [&str; 11] = [
    "type",
    "event",
    "container",
    "image",
    "label",
    "scope",
    "daemon",
    "network",
    "volume",
    "plugin",
    "config",
];

impl EventFilter {
    pub fn new(filters: Filters) -> Result<EventFilter> {
        filters
            .validate(&EVENT_FILTERS)
            .map_err(|e| EngineError::invalid(e.to_string()))?;
        Ok(EventFilter { filters })
    }

    pub fn matches(&self, ev: &Event) -> bool {
        let f = &self.filters;
        let any = |key: &str, pred: &dyn Fn(&str) -> bool| {
            let vals = f.get(key);
            vals.is_empty() || vals.iter().any(|v| pred(v))
        };
        let attr = |k: &str| ev.actor.attributes.get(k).map(String::as_str);
        any("type", &|v| v == ev.typ)
            && any("event", &|v| {
                // `exec_start` matches `exec_start: sh -c ...` (moby matches by prefix of the
                // action up to ':').
                v == ev.action || ev.action.split(':').next() == Some(v)
            })
            && any("scope", &|v| v == ev.scope)
            && any("container", &|v| {
                ev.typ == "container" && (ev.actor.id.starts_with(v) || attr("name") == Some(v))
            })
            && any("image", &|v| {
                let image = match ev.typ.as_str() {
                    "image" => Some(ev.actor.id.as_str()),
                    _ => attr("image"),
                };
                image.is_some_and(|i| {
                    i == v
                        || i.strip_prefix("sha256:").is_some_and(|h| h.starts_with(v))
                        || i.strip_suffix(":latest") == Some(v)
                }) || (ev.typ == "image"
                    && attr("name").is_some_and(|n| n == v || n.strip_suffix(":latest") == Some(v)))
            })
            && f.get("label").iter().all(|l| match l.split_once('=') {
                Some((k, val)) => attr(k) == Some(val),
                None => attr(l).is_some(),
            })
    }
}

/// Parses Docker's `since`/`until` (`seconds[.nanos]`, or an RFC 3339 time) into unix nanos.
pub fn parse_time(s: &str) -> Result<i64> {
    let s = s.trim();
    if let Some((secs, frac)) = s.split_once('.')
        && let (Ok(a), true) = (
            secs.parse::<i64>(),
            frac.bytes().all(|b| b.is_ascii_digit()),
        )
    {
        let mut f = frac.to_string();
        f.truncate(9);
        while f.len() < 9 {
            f.push('0');
        }
        let nanos: i64 = f.parse().unwrap_or(0);
        return Ok(a * 1_000_000_000 + nanos);
    }
    if let Ok(a) = s.parse::<i64>() {
        return Ok(a * 1_000_000_000);
    }
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(t.as_nanosecond() as i64);
    }
    Err(EngineError::invalid(format!(
        "failed to parse value {s:?} as a timestamp: use unix seconds (with optional .nanoseconds) or RFC 3339"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn events_have_dockers_shape_and_history() {
        let bus = Events::new();
        bus.publish(
            "container",
            "start",
            "abc",
            attrs(&[("image", "busybox"), ("name", "web")]),
        );
        let (hist, _rx) = bus.subscribe();
        assert_eq!(hist.len(), 1);
        let v = serde_json::to_value(&hist[0]).unwrap();
        assert_eq!(v["Type"], "container");
        assert_eq!(v["Action"], "start");
        assert_eq!(v["status"], "start");
        assert_eq!(v["from"], "busybox");
        assert_eq!(v["Actor"]["ID"], "abc");
        assert_eq!(v["Actor"]["Attributes"]["name"], "web");
        assert_eq!(v["scope"], "local");
        assert_eq!(
            v["time"].as_i64().unwrap(),
            v["timeNano"].as_i64().unwrap() / 1_000_000_000
        );
    }

    /// Docker returns only the last 256 past events; the oldest go first.
    #[test]
    fn the_history_keeps_the_last_256_events() {
        let bus = Events::new();
        for i in 0..HISTORY + 10 {
            bus.publish("container", "create", &format!("c{i}"), BTreeMap::new());
        }
        let (hist, _) = bus.subscribe();
        assert_eq!(hist.len(), 256);
        assert_eq!(hist[0].actor.id, "c10");
        assert_eq!(hist[255].actor.id, format!("c{}", HISTORY + 9));
    }

    #[test]
    fn filters_select_like_docker() {
        let bus = Events::new();
        bus.publish(
            "container",
            "die",
            "abc123",
            attrs(&[
                ("image", "busybox"),
                ("name", "web"),
                ("exitCode", "0"),
                ("tier", "front"),
            ]),
        );
        bus.publish(
            "image",
            "tag",
            "sha256:feed",
            attrs(&[("name", "busybox:latest")]),
        );
        let (hist, _) = bus.subscribe();
        let f = |json: &str| EventFilter::new(Filters::from_json(json).unwrap()).unwrap();
        let count = |flt: &EventFilter| hist.iter().filter(|e| flt.matches(e)).count();
        assert_eq!(count(&f(r#"{"type":["container"]}"#)), 1);
        assert_eq!(count(&f(r#"{"event":["die","tag"]}"#)), 2);
        assert_eq!(count(&f(r#"{"container":["web"]}"#)), 1);
        assert_eq!(count(&f(r#"{"container":["abc"]}"#)), 1);
        assert_eq!(count(&f(r#"{"image":["busybox"]}"#)), 2);
        assert_eq!(count(&f(r#"{"label":["tier=front"]}"#)), 1);
        assert_eq!(count(&f(r#"{"label":["tier=back"]}"#)), 0);
        assert!(EventFilter::new(Filters::from_json(r#"{"bogus":["x"]}"#).unwrap()).is_err());
    }

    #[test]
    fn times_parse_in_dockers_forms() {
        assert_eq!(parse_time("10").unwrap(), 10_000_000_000);
        assert_eq!(parse_time("10.5").unwrap(), 10_500_000_000);
        assert_eq!(parse_time("1970-01-01T00:00:02Z").unwrap(), 2_000_000_000);
        assert!(parse_time("yesterday").is_err());
    }
}
