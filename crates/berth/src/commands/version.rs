//! `berth version`: client and server versions.

use anyhow::Result;
use clap::Args;

use super::{Ctx, print};
use crate::StatusError;
use crate::template::{Template, Value};

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
}

fn client_info() -> Value {
    let s = |v: &str| Value::str(v);
    Value::Map(vec![
        (
            "Platform".into(),
            Value::Map(vec![("Name".into(), s("Berth"))]),
        ),
        ("Version".into(), s(env!("CARGO_PKG_VERSION"))),
        ("ApiVersion".into(), s(berth_api::API_VERSION)),
        ("DefaultAPIVersion".into(), s(berth_api::API_VERSION)),
        ("Os".into(), s(std::env::consts::OS)),
        ("Arch".into(), s(go_arch())),
    ])
}

/// Go's name for this architecture (`amd64`, `arm64`), as Docker prints it.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

/// The Go types docker's version template walks, named in its errors.
const VERSION_TYPES: &[(&str, &str)] = &[
    ("", "system.versionInfo"),
    (".Client", "system.clientVersion"),
    (".Server", "*types.Version"),
    (".Server.Platform", "struct { Name string }"),
];

/// A template error as Go words it for a template named `name` (ours are unnamed).
pub fn named(name: &str, msg: &str) -> String {
    msg.replacen("template: :", &format!("template: {name}:"), 1)
        .replacen("executing \"\"", &format!("executing \"{name}\""), 1)
}

pub fn run(ctx: &Ctx, args: VersionArgs) -> Result<i32> {
    let client = client_info();
    let server = ctx.client.version_raw().map(|b| Value::from_json(&b));
    if let Some(f) = &args.format {
        let src = if f == "json" {
            "{{json .}}"
        } else {
            f.as_str()
        };
        // docker names this template "version"; a bad one is exit 64
        let t = Template::parse(src).map_err(|e| {
            StatusError::new(
                64,
                format!(
                    "template parsing error: {}",
                    named("version", &e.to_string())
                ),
            )
        })?;
        let server_value = match &server {
            Ok(Ok(v)) => v.clone(),
            _ => Value::Nil,
        };
        let data = Value::Map(vec![
            ("Client".into(), client),
            ("Server".into(), server_value),
        ]);
        let out = match t.execute_typed(&data, VERSION_TYPES) {
            Ok(out) => out,
            Err(e) => {
                // docker has printed the (empty) line before the error
                print("\n")?;
                return Err(StatusError::new(1, named("version", &e.to_string())).into());
            }
        };
        print(&format!("{out}\n"))?;
        return match server {
            Ok(_) => Ok(0),
            Err(e) => Err(e.into()),
        };
    }
    let field = |v: &Value, k: &str| v.field(k).map(Value::to_display).unwrap_or_default();
    let mut out = String::new();
    out.push_str("Client:\n");
    out.push_str(&format!(
        " Version:           {}\n",
        env!("CARGO_PKG_VERSION")
    ));
    out.push_str(&format!(" API version:       {}\n", berth_api::API_VERSION));
    // docker's client lines; Berth has no Go, no build stamp and one (default) context
    out.push_str(" Go version:        n/a (Rust)\n");
    out.push_str(" Git commit:        \n");
    out.push_str(" Built:             \n");
    out.push_str(&format!(
        " OS/Arch:           {}/{}\n",
        std::env::consts::OS,
        go_arch()
    ));
    out.push_str(" Context:           default\n");
    print(&out)?;
    let server = server?.map_err(|e| anyhow::anyhow!("decoding /version: {e}"))?;
    let mut out = String::new();
    let platform = server
        .field("Platform")
        .map(|p| field(p, "Name"))
        .unwrap_or_default();
    out.push_str(&format!("\nServer: {platform}\n"));
    let engine_name = "Engine";
    let components = match server.field("Components") {
        Some(Value::List(items)) => items.clone(),
        _ => Vec::new(),
    };
    if components.is_empty() {
        out.push_str(&format!(" {engine_name}:\n"));
        out.push_str(&format!(
            "  Version:          {}\n",
            field(&server, "Version")
        ));
        out.push_str(&format!(
            "  API version:      {} (minimum version {})\n",
            field(&server, "ApiVersion"),
            field(&server, "MinAPIVersion")
        ));
        out.push_str(&format!(
            "  OS/Arch:          {}/{}\n",
            field(&server, "Os"),
            field(&server, "Arch")
        ));
    }
    for c in components {
        out.push_str(&format!(" {}:\n", field(&c, "Name")));
        out.push_str(&format!("  Version:          {}\n", field(&c, "Version")));
        let details = match c.field("Details") {
            Some(Value::Map(d)) => d.clone(),
            _ => Vec::new(),
        };
        let detail = |k: &str| {
            details
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.to_display())
                .unwrap_or_default()
        };
        let line = |label: &str, value: String| format!("  {:<18}{value}\n", format!("{label}:"));
        if field(&c, "Name") == "Engine" {
            // docker's fixed Engine lines (cli/command/system/version.go)
            out.push_str(&line(
                "API version",
                format!(
                    "{} (minimum version {})",
                    detail("ApiVersion"),
                    detail("MinAPIVersion")
                ),
            ));
            out.push_str(&line("Go version", detail("GoVersion")));
            out.push_str(&line("Git commit", detail("GitCommit")));
            out.push_str(&line("Built", detail("BuildTime")));
            out.push_str(&line(
                "OS/Arch",
                format!("{}/{}", detail("Os"), detail("Arch")),
            ));
            out.push_str(&line("Experimental", detail("Experimental")));
        } else {
            let mut keys: Vec<&String> = details.iter().map(|(k, _)| k).collect();
            keys.sort();
            for k in keys {
                out.push_str(&line(k, detail(k)));
            }
        }
    }
    print(&out)?;
    Ok(0)
}
