//! `berth inspect`: the daemon's JSON, indented with 4 spaces in an array, or `--format`.

use anyhow::Result;
use clap::{Args, ValueEnum};

use super::{Ctx, print};
use crate::StatusError;
use crate::template::{Template, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ObjectType {
    Container,
    Image,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format output using a custom template ('json' or a Go template)
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short = 's', long)]
    pub size: bool,
    /// Return JSON for specified type (container or image)
    #[arg(long = "type", value_name = "TYPE")]
    pub typ: Option<String>,
    /// Names or IDs
    #[arg(required = true, value_name = "NAME|ID")]
    pub names: Vec<String>,
}

/// docker's check and message for `--type` (the object kinds Berth has are container and image).
fn parse_type(s: &str) -> std::result::Result<ObjectType, String> {
    match s {
        "container" => Ok(ObjectType::Container),
        "image" => Ok(ObjectType::Image),
        _ => Err(format!(
            "unknown type: {s:?}: must be one of \"config\", \"container\", \"image\", \"network\", \"node\", \"plugin\", \"secret\", \"service\", \"task\", \"volume\""
        )),
    }
}

/// Fetches one object's raw JSON.
fn fetch(ctx: &Ctx, name: &str, typ: Option<ObjectType>, size: bool) -> Result<Vec<u8>> {
    match typ {
        Some(ObjectType::Container) => Ok(ctx.client.container_inspect_raw(name, size)?),
        Some(ObjectType::Image) => Ok(ctx.client.image_inspect_raw(name)?),
        None => match ctx.client.container_inspect_raw(name, size) {
            Err(e) if e.is_not_found() => match ctx.client.image_inspect_raw(name) {
                Err(e) if e.is_not_found() => Err(anyhow::anyhow!("Error: No such object: {name}")),
                other => Ok(other?),
            },
            other => Ok(other?),
        },
    }
}

/// Renders inspect output for already-fetched objects (`Err` entries are printed to stderr).
pub fn render(objects: &[Value], format: Option<&str>) -> Result<String> {
    match format {
        None | Some("") => {
            let mut buf = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
            serde::Serialize::serialize(&Value::List(objects.to_vec()), &mut ser)?;
            buf.push(b'\n');
            Ok(String::from_utf8(buf)?)
        }
        Some(f) => {
            let src = if f == "json" { "{{json .}}" } else { f };
            let t = Template::parse(src)
                .map_err(|e| StatusError::new(1, format!("template parsing error: {e}")))?;
            let mut out = String::new();
            for o in objects {
                let line = t
                    .execute(o)
                    .map_err(|e| StatusError::new(1, format!("template parsing error: {e}")))?;
                out.push_str(&line);
                out.push('\n');
            }
            Ok(out)
        }
    }
}

pub fn run(ctx: &Ctx, args: InspectArgs) -> Result<i32> {
    let typ = match args.typ.as_deref() {
        None | Some("") => None,
        Some(t) => Some(parse_type(t).map_err(|e| StatusError::new(1, e))?),
    };
    inspect(ctx, &args.names, typ, args.size, args.format.as_deref())
}

/// Shared by `inspect`, `container inspect` and `image inspect`.
pub fn inspect(
    ctx: &Ctx,
    names: &[String],
    typ: Option<ObjectType>,
    size: bool,
    format: Option<&str>,
) -> Result<i32> {
    let mut objects = Vec::new();
    let mut errors = Vec::new();
    for n in names {
        match fetch(ctx, n, typ, size) {
            Ok(bytes) => objects.push(Value::from_json(&bytes)?),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !(objects.is_empty() && format.is_some()) {
        print(&render(&objects, format)?)?;
    }
    for e in &errors {
        eprintln!("{e}");
    }
    Ok(if errors.is_empty() { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indented_like_docker() {
        let v =
            Value::from_json(br#"{"Id":"abc","State":{"Running":true},"Mounts":[],"Args":["a"]}"#)
                .unwrap();
        let out = render(std::slice::from_ref(&v), None).unwrap();
        let want = "[\n    {\n        \"Id\": \"abc\",\n        \"State\": {\n            \"Running\": true\n        },\n        \"Mounts\": [],\n        \"Args\": [\n            \"a\"\n        ]\n    }\n]\n";
        assert_eq!(out, want);
        assert_eq!(render(&[], None).unwrap(), "[]\n");
        assert_eq!(
            render(std::slice::from_ref(&v), Some("{{.State.Running}}")).unwrap(),
            "true\n"
        );
        assert_eq!(
            render(std::slice::from_ref(&v), Some("json")).unwrap(),
            "{\"Id\":\"abc\",\"State\":{\"Running\":true},\"Mounts\":[],\"Args\":[\"a\"]}\n"
        );
        let e = render(&[v], Some("{{.Nope}}")).unwrap_err().to_string();
        assert!(e.contains("map has no entry for key \"Nope\""), "{e}");
    }
}
