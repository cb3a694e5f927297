//! `list [--format table|json] [-q]`.

#[derive(clap::Args, Debug)]
pub struct Args {
    /// table or json.
    #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Only ids.
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(g: &crate::Global, a: &Args) -> anyhow::Result<i32> {
    let states: Vec<_> = g
        .runtime()
        .list()?
        .iter()
        .filter_map(|c| c.oci_state().ok())
        .collect();
    if a.quiet {
        for s in &states {
            println!("{}", s.id);
        }
        return Ok(0);
    }
    if a.format == "json" {
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
