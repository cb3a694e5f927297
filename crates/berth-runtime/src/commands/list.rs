//! `list [--format table|json] [-q]`.

use crate::cli::{Command, Flag, Matches, UsageError, flag, opt};

const FLAGS: &[Flag] = &[
    opt(
        "format",
        Some('f'),
        "table|json",
        "output format (default table)",
    ),
    flag("quiet", Some('q'), "print only the ids"),
];

pub const COMMAND: Command = Command {
    name: "list",
    alias: Some("ls"),
    args: "",
    about: "List containers",
    flags: FLAGS,
};

pub fn run(g: &crate::Global, m: &Matches) -> anyhow::Result<i32> {
    m.at_most(0, "list")?;
    let format = m.value("format").unwrap_or("table");
    if format != "table" && format != "json" {
        return Err(UsageError(format!("invalid --format {format:?}: use table or json")).into());
    }
    let states: Vec<_> = g
        .runtime()
        .list()?
        .iter()
        .filter_map(|c| c.oci_state().ok())
        .collect();
    if m.flag("quiet") {
        for s in &states {
            println!("{}", s.id);
        }
        return Ok(0);
    }
    if format == "json" {
        println!("{}", serde_json::to_string(&states)?);
        return Ok(0);
    }
    let mut rows = vec![[
        "ID".to_string(),
        "PID".into(),
        "STATUS".into(),
        "BUNDLE".into(),
        "CREATED".into(),
        "OWNER".into(),
    ]];
    for s in &states {
        rows.push([
            s.id.clone(),
            s.pid.to_string(),
            s.status.to_string(),
            s.bundle.display().to_string(),
            s.created.clone(),
            if s.owner.is_empty() {
                "root".into()
            } else {
                s.owner.clone()
            },
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == 5 {
                    c.clone()
                } else {
                    format!("{c:<w$}", w = widths[i])
                }
            })
            .collect();
        println!("{}", line.join("   ").trim_end());
    }
    Ok(0)
}
