//! `berth events`: the daemon's event stream.

use anyhow::{Context, Result};
use berth_api::query::{EventsQuery, Filters};
use clap::Args;

use super::{Ctx, api_timestamp};
use crate::StatusError;
use crate::template::{Template, Value};

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Format output using a custom template ('json' or a Go template)
    #[arg(long)]
    pub format: Option<String>,
    /// Show all events created since timestamp
    #[arg(long)]
    pub since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long)]
    pub until: Option<String>,
}

/// Docker's default event line: `2024-01-02T03:04:05.123456789Z container start <id> (image=x, name=y)`.
pub fn default_line(ev: &Value) -> String {
    let f = |k: &str| ev.field(k).map(Value::to_display).unwrap_or_default();
    let nanos = match ev.field("timeNano") {
        Some(Value::Int(n)) => *n as i128,
        _ => match ev.field("time") {
            Some(Value::Int(s)) => *s as i128 * 1_000_000_000,
            _ => 0,
        },
    };
    let ts = jiff::Timestamp::from_nanosecond(nanos)
        .map(|t| {
            // docker's RFC3339NanoFixed: always 9 digits, `Z` for UTC
            let z = t.to_zoned(jiff::tz::TimeZone::system());
            let offset = if z.offset().seconds() == 0 {
                "Z".to_owned()
            } else {
                z.strftime("%:z").to_string()
            };
            format!(
                "{}.{:09}{offset}",
                z.strftime("%Y-%m-%dT%H:%M:%S"),
                z.subsec_nanosecond()
            )
        })
        .unwrap_or_default();
    let actor = ev.field("Actor");
    let id = actor
        .and_then(|a| a.field("ID"))
        .map(Value::to_display)
        .unwrap_or_default();
    let mut line = format!("{ts} {} {} {id}", f("Type"), f("Action"));
    if let Some(Value::Map(attrs)) = actor.and_then(|a| a.field("Attributes")) {
        let mut kv: Vec<String> = attrs
            .iter()
            .map(|(k, v)| format!("{k}={}", v.to_display()))
            .collect();
        kv.sort();
        if !kv.is_empty() {
            line.push_str(&format!(" ({})", kv.join(", ")));
        }
    }
    line
}

/// The Go types of docker's event messages, named in template errors.
const EVENT_TYPES: &[(&str, &str)] = &[("", "*events.Message"), (".Actor", "events.Actor")];

/// An event with every field of docker's `events.Message` empty (to check a template).
fn empty_message() -> Value {
    let s = || Value::str("");
    Value::Map(vec![
        ("Status".into(), s()),
        ("ID".into(), s()),
        ("From".into(), s()),
        ("Type".into(), s()),
        ("Action".into(), s()),
        (
            "Actor".into(),
            Value::Map(vec![
                ("ID".into(), s()),
                ("Attributes".into(), Value::Map(Vec::new())),
            ]),
        ),
        ("Scope".into(), s()),
        ("Time".into(), Value::Int(0)),
        ("TimeNano".into(), Value::Int(0)),
    ])
}

pub fn run(ctx: &Ctx, args: EventsArgs) -> Result<i32> {
    let mut filters = Filters::new();
    for f in &args.filter {
        filters.add_arg(f).map_err(|e| {
            StatusError::new(
                125,
                format!("invalid argument \"{f}\" for \"-f, --filter\" flag: {e}"),
            )
        })?;
    }
    let now = ctx.now();
    let template = match args.format.as_deref() {
        None | Some("") => None,
        Some(f) => {
            let src = if f == "json" { "{{json .}}" } else { f };
            // docker checks the format over an empty message first: exit 64 either way
            let bad = |e: crate::template::TemplateError| {
                StatusError::new(64, format!("Error parsing format: {e}"))
            };
            let t = Template::parse(src).map_err(bad)?;
            t.execute_typed(&empty_message(), EVENT_TYPES)
                .map_err(bad)?;
            Some(t)
        }
    };
    let q = EventsQuery {
        since: args
            .since
            .as_deref()
            .map(|s| api_timestamp(s, now))
            .transpose()?,
        until: args
            .until
            .as_deref()
            .map(|s| api_timestamp(s, now))
            .transpose()?,
        filters,
    };
    let resp = ctx.client.events(&q)?;
    let stream = serde_json::Deserializer::from_reader(resp).into_iter::<Value>();
    use std::io::Write;
    for ev in stream {
        let ev = ev.context("reading the event stream")?;
        let line = match &template {
            Some(t) => t
                .execute(&ev)
                .map_err(|e| StatusError::new(1, format!("template parsing error: {e}")))?,
            None => default_line(&ev),
        };
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")?;
        out.flush()?;
    }
    Ok(0)
}
