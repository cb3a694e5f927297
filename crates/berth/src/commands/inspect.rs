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

/// What inspect prints for already-fetched objects, after docker-cli's inspectors: without a
/// format an indented array, `json` a compact array, otherwise the template once per object.
/// A template that fails on an object adds an error and goes on with the next; when nothing
/// rendered, the output is one empty line (docker's `Flush`). A template that does not parse
/// is an error with docker's exit code 64.
pub fn render(objects: &[Value], format: Option<&str>) -> Result<(String, Vec<String>)> {
    let json = |pretty: bool| -> Result<String> {
        let mut buf = Vec::new();
        let list = Value::List(objects.to_vec());
        if pretty {
            let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
            serde::Serialize::serialize(&list, &mut ser)?;
        } else {
            serde_json::to_writer(&mut buf, &list)?;
        }
        buf.push(b'\n');
        Ok(String::from_utf8(buf)?)
    };
    match format {
        None | Some("") => Ok((json(true)?, Vec::new())),
        Some("json") => Ok((json(false)?, Vec::new())),
        Some(f) => {
            let t = Template::parse(f)
                .map_err(|e| StatusError::new(64, format!("template parsing error: {e}")))?;
            let mut out = String::new();
            let mut errors = Vec::new();
            for o in objects {
                match t.execute(o) {
                    Ok(line) => {
                        out.push_str(&line);
                        out.push('\n');
                    }
                    Err(e) => errors.push(format!("template parsing error: {e}")),
                }
            }
            if out.is_empty() {
                out.push('\n');
            }
            Ok((out, errors))
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
    if let Some(f) = format.filter(|f| !f.is_empty() && *f != "json") {
        // docker parses the template before fetching anything
        Template::parse(f)
            .map_err(|e| StatusError::new(64, format!("template parsing error: {e}")))?;
    }
    let mut objects = Vec::new();
    let mut fetch_errors = Vec::new();
    for n in names {
        match fetch(ctx, n, typ, size) {
            Ok(bytes) => objects.push(Value::from_json(&bytes)?),
            Err(e) => fetch_errors.push(e.to_string()),
        }
    }
    let (out, template_errors) = render(&objects, format)?;
    print(&out)?;
    // docker lists the errors in the order of the names; fetch errors and template errors
    // never concern the same name, so fetch errors first is only a difference when both occur
    let errors: Vec<String> = fetch_errors.into_iter().chain(template_errors).collect();
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
        let out = render(std::slice::from_ref(&v), None).unwrap().0;
        let want = "[\n    {\n        \"Id\": \"abc\",\n        \"State\": {\n            \"Running\": true\n        },\n        \"Mounts\": [],\n        \"Args\": [\n            \"a\"\n        ]\n    }\n]\n";
        assert_eq!(out, want);
        assert_eq!(render(&[], None).unwrap().0, "[]\n");
        assert_eq!(
            render(std::slice::from_ref(&v), Some("{{.State.Running}}"))
                .unwrap()
                .0,
            "true\n"
        );
        // `json` is docker's compact array, not one object per line
        assert_eq!(
            render(&[v.clone(), v.clone()], Some("json")).unwrap().0,
            format!(
                "[{o},{o}]\n",
                o = "{\"Id\":\"abc\",\"State\":{\"Running\":true},\"Mounts\":[],\"Args\":[\"a\"]}"
            )
        );
        // a failing object is an error, the others still render; nothing rendered is one
        // empty line
        let (out, errs) = render(&[v.clone(), v.clone()], Some("{{.State.Nope}}")).unwrap();
        assert_eq!(out, "\n");
        assert_eq!(errs.len(), 2);
        assert_eq!(
            errs[0],
            "template parsing error: template: :1:8: executing \"\" at <.State.Nope>: map has no entry for key \"Nope\""
        );
        let e = render(&[v], Some("{{.Nope")).unwrap_err();
        assert_eq!(e.downcast_ref::<StatusError>().unwrap().code, 64);
    }
}
