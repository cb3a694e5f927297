//! `kill [--all] ID [SIGNAL]`.

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Signal every process in the container's cgroup.
    #[arg(short, long)]
    pub all: bool,
    /// Container id.
    pub id: String,
    /// Signal name (TERM, SIGKILL) or number; default SIGTERM.
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

/// Parses `9`, `KILL`, `SIGKILL`, `sigkill`.
pub fn parse_signal(s: &str) -> anyhow::Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        anyhow::bail!("invalid signal {s:?}: numbers go from 1 to 64");
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|sig| sig as i32)
        .map_err(|_| {
            anyhow::anyhow!("invalid signal {s:?} (try TERM, KILL, HUP, INT, USR1 or a number)")
        })
}

pub fn run(g: &crate::Global, a: &Args) -> anyhow::Result<i32> {
    let sig = parse_signal(&a.signal)?;
    super::load(g, &a.id)?.kill(sig, a.all)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("sigterm").unwrap(), 15);
        assert_eq!(parse_signal("SIGUSR1").unwrap(), 10);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("0").is_err());
    }
}
