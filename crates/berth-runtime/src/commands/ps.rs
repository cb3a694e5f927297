//! `ps [--format table|json] ID [PS_ARGS...]`.

use anyhow::Context;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// table (runs ps) or json (the pids).
    #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Container id.
    pub id: String,
    /// Options for ps (default -ef).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

pub fn run(g: &crate::Global, a: &Args) -> anyhow::Result<i32> {
    let c = super::load(g, &a.id)?;
    let pids = c.pids()?;
    if a.format == "json" {
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(0);
    }
    let args: Vec<String> = if a.ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        a.ps_args.clone()
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
