//! `events [--stats] [--interval 5s] ID`: resource statistics (and OOM events) as JSON
//! lines, in runc's shape.

use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print one stats event and exit.
    #[arg(long)]
    pub stats: bool,
    /// How often to print stats (e.g. 5s, 500ms, 1m).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub interval: Duration,
    /// Container id.
    pub id: String,
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map(|i| s.split_at(i))
        .unwrap_or((s, "s"));
    let n: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("invalid duration {s:?} (use ms, s, m or h)")),
    };
    if secs <= 0.0 {
        return Err(format!("duration {s:?} must be positive"));
    }
    Ok(Duration::from_secs_f64(secs))
}

pub fn run(g: &crate::Global, a: &Args) -> anyhow::Result<i32> {
    let c = super::load(g, &a.id)?;
    let event = |c: &berth_container::Container| -> anyhow::Result<String> {
        Ok(serde_json::json!({"type": "stats", "id": c.id(), "data": c.stats()?}).to_string())
    };
    if a.stats {
        println!("{}", event(&c)?);
        return Ok(0);
    }
    let mut ooms = c.oom_kill_count().unwrap_or(0);
    loop {
        if c.status()? == berth_container::Status::Stopped {
            return Ok(0);
        }
        let n = c.oom_kill_count().unwrap_or(ooms);
        if n > ooms {
            println!("{}", serde_json::json!({"type": "oom", "id": c.id()}));
            ooms = n;
        }
        println!("{}", event(&c)?);
        std::thread::sleep(a.interval);
    }
}
