//! `ps [--format table|json] ID [PS_ARGS...]`.

use anyhow::Context;

use crate::cli::{Command, Flag, Matches, UsageError, opt};

const FLAGS: &[Flag] = &[opt(
    "format",
    Some('f'),
    "table|json",
    "output format (default table)",
)];

pub const COMMAND: Command = Command {
    name: "ps",
    alias: None,
    args: "<container-id> [PS_OPTIONS...]",
    about: "List the processes running in a container",
    flags: FLAGS,
};

pub fn run(g: &crate::Global, m: &Matches) -> anyhow::Result<i32> {
    let format = m.value("format").unwrap_or("table");
    if format != "table" && format != "json" {
        return Err(UsageError(format!("invalid --format {format:?}: use table or json")).into());
    }
    let c = super::load(g, m.arg(0, "ps", "<container-id>")?)?;
    let pids = c.pids()?;
    if format == "json" {
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(0);
    }
    let args: Vec<String> = if m.args.len() < 2 {
        vec!["-ef".into()]
    } else {
        m.args[1..].to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .context("run ps")?;
    if !out.status.success() {
        anyhow::bail!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .context("ps output has no PID column")?;
    println!("{header}");
    for l in lines {
        if let Some(p) = l
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok())
            && pids.contains(&p)
        {
            println!("{l}");
        }
    }
    Ok(0)
}
