//! `berth info`: system-wide information.

use anyhow::Result;
use berth_api::humanize::bytes_size;
use clap::Args;

use super::{Ctx, print};
use crate::StatusError;
use crate::template::{Template, Value};

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
}

/// Renders `/info` as Docker's text: the fields a reader looks for, in Docker's order.
pub fn render_text(info: &Value) -> String {
    let f = |k: &str| info.field(k).map(Value::to_display).unwrap_or_default();
    let mut out = String::new();
    out.push_str("Client:\n");
    out.push_str(&format!(" Version:    {}\n", env!("CARGO_PKG_VERSION")));
    out.push_str(
        " Context:    default
 Debug Mode: false

Server:
",
    );
    out.push_str(&format!(" Containers: {}\n", f("Containers")));
    out.push_str(&format!("  Running: {}\n", f("ContainersRunning")));
    out.push_str(&format!("  Paused: {}\n", f("ContainersPaused")));
    out.push_str(&format!("  Stopped: {}\n", f("ContainersStopped")));
    out.push_str(&format!(" Images: {}\n", f("Images")));
    out.push_str(&format!(" Server Version: {}\n", f("ServerVersion")));
    out.push_str(&format!(" Storage Driver: {}\n", f("Driver")));
    if let Some(Value::List(status)) = info.field("DriverStatus") {
        for pair in status {
            if let Value::List(kv) = pair
                && kv.len() == 2
            {
                out.push_str(&format!(
                    "  {}: {}\n",
                    kv[0].to_display(),
                    kv[1].to_display()
                ));
            }
        }
    }
    out.push_str(&format!(" Logging Driver: {}\n", f("LoggingDriver")));
    out.push_str(&format!(" Cgroup Driver: {}\n", f("CgroupDriver")));
    out.push_str(&format!(" Cgroup Version: {}\n", f("CgroupVersion")));
    // docker-cli's prettyPrintServerInfo: plugins by kind, swarm state, then runtimes
    if let Some(plugins) = info.field("Plugins") {
        out.push_str(" Plugins:\n");
        for kind in ["Volume", "Network", "Authorization", "Log"] {
            match plugins.field(kind) {
                Some(Value::List(names)) if kind != "Authorization" || !names.is_empty() => {
                    let names: Vec<String> = names.iter().map(Value::to_display).collect();
                    out.push_str(&format!("  {kind}: {}\n", names.join(" ")));
                }
                _ => {}
            }
        }
    }
    if let Some(swarm) = info.field("Swarm") {
        let state = swarm
            .field("LocalNodeState")
            .map(Value::to_display)
            .unwrap_or_default();
        out.push_str(&format!(" Swarm: {state}\n"));
    }
    if let Some(Value::Map(runtimes)) = info.field("Runtimes") {
        let mut names: Vec<&str> = runtimes.iter().map(|(k, _)| k.as_str()).collect();
        names.sort();
        out.push_str(&format!(" Runtimes: {}\n", names.join(" ")));
    }
    out.push_str(&format!(" Default Runtime: {}\n", f("DefaultRuntime")));
    let commit = |k: &str| {
        info.field(k)
            .and_then(|c| c.field("ID"))
            .map(Value::to_display)
            .unwrap_or_default()
    };
    out.push_str(&format!(" Init Binary: {}\n", f("InitBinary")));
    out.push_str(&format!(
        " containerd version: {}\n",
        commit("ContainerdCommit")
    ));
    out.push_str(&format!(" runc version: {}\n", commit("RuncCommit")));
    out.push_str(&format!(" init version: {}\n", commit("InitCommit")));
    if let Some(Value::List(opts)) = info.field("SecurityOptions") {
        out.push_str(" Security Options:\n");
        for o in opts {
            let text = o.to_display();
            for (i, part) in text.split(',').enumerate() {
                match part.split_once('=') {
                    Some(("name", v)) if i == 0 => out.push_str(&format!("  {v}\n")),
                    Some((k, v)) => out.push_str(&format!("   {}: {v}\n", capitalize(k))),
                    None => out.push_str(&format!("  {part}\n")),
                }
            }
        }
    }
    out.push_str(&format!(" Kernel Version: {}\n", f("KernelVersion")));
    out.push_str(&format!(" Operating System: {}\n", f("OperatingSystem")));
    out.push_str(&format!(" OSType: {}\n", f("OSType")));
    out.push_str(&format!(" Architecture: {}\n", f("Architecture")));
    out.push_str(&format!(" CPUs: {}\n", f("NCPU")));
    let mem = info
        .field("MemTotal")
        .and_then(|v| {
            if let Value::Int(i) = v {
                Some(*i)
            } else {
                None
            }
        })
        .unwrap_or(0);
    out.push_str(&format!(" Total Memory: {}\n", bytes_size(mem as f64)));
    out.push_str(&format!(" Name: {}\n", f("Name")));
    out.push_str(&format!(" ID: {}\n", f("ID")));
    out.push_str(&format!(" Docker Root Dir: {}\n", f("DockerRootDir")));
    out.push_str(&format!(" Debug Mode: {}\n", f("Debug")));
    out.push_str(&format!(" Experimental: {}\n", f("ExperimentalBuild")));
    if let Some(Value::List(cidrs)) = info
        .field("RegistryConfig")
        .and_then(|r| r.field("InsecureRegistryCIDRs"))
        && !cidrs.is_empty()
    {
        out.push_str(" Insecure Registries:\n");
        for c in cidrs {
            out.push_str(&format!("  {}\n", c.to_display()));
        }
    }
    out.push_str(&format!(
        " Live Restore Enabled: {}\n",
        f("LiveRestoreEnabled")
    ));
    // docker ends the server section with an empty line
    out.push('\n');
    out
}

fn capitalize(s: &str) -> String {
    let mut cs = s.chars();
    match cs.next() {
        Some(c) => c.to_uppercase().chain(cs).collect(),
        None => String::new(),
    }
}

/// The Go types docker's info template walks, named in its errors.
const INFO_TYPES: &[(&str, &str)] = &[
    ("", "system.dockerInfo"),
    (".ClientInfo", "*system.clientInfo"),
    (".Swarm", "swarm.Info"),
    (".Plugins", "system.PluginsInfo"),
];

pub fn run(ctx: &Ctx, args: InfoArgs) -> Result<i32> {
    let bytes = ctx.client.info_raw()?;
    let info = Value::from_json(&bytes)?;
    match &args.format {
        Some(f) => {
            let src = if f == "json" {
                "{{json .}}"
            } else {
                f.as_str()
            };
            let t = Template::parse(src)
                .map_err(|e| StatusError::new(64, format!("template parsing error: {e}")))?;
            match t.execute_typed(&info, INFO_TYPES) {
                Ok(out) => print(&format!("{out}\n"))?,
                Err(e) => {
                    // docker has printed the (empty) line before the error
                    print("\n")?;
                    return Err(StatusError::new(1, e.to_string()).into());
                }
            }
        }
        None => print(&render_text(&info))?,
    }
    Ok(0)
}
