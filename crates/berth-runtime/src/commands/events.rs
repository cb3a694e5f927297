//! `events [--stats] [--interval 5s] ID`: resource statistics (and OOM events) as JSON
//! lines, in runc's shape.

use std::time::Duration;

use crate::cli::{Command, Flag, Matches, UsageError, flag, opt};

const FLAGS: &[Flag] = &[
    flag("stats", None, "print one stats event and exit"),
    opt(
        "interval",
        None,
        "DURATION",
        "how often to print stats (default 5s; e.g. 500ms, 1m)",
    ),
];

pub const COMMAND: Command = Command {
    name: "events",
    alias: None,
    args: "<container-id>",
    about: "Print container events (OOM) and resource statistics as JSON lines",
    flags: FLAGS,
};

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

pub fn run(g: &crate::Global, m: &Matches) -> anyhow::Result<i32> {
    m.at_most(1, "events")?;
    let interval = parse_duration(m.value("interval").unwrap_or("5s"))
        .map_err(|e| UsageError(format!("--interval: {e}")))?;
    let c = super::load(g, m.arg(0, "events", "<container-id>")?)?;
    let event = |c: &berth_container::Container| -> anyhow::Result<String> {
        Ok(serde_json::json!({"type": "stats", "id": c.id(), "data": c.stats()?}).to_string())
    };
    if m.flag("stats") {
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
        std::thread::sleep(interval);
    }
}
