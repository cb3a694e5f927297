//! `kill [--all] ID [SIGNAL]`.

use crate::cli::{Command, Flag, Matches, flag};

const FLAGS: &[Flag] = &[flag(
    "all",
    Some('a'),
    "signal every process in the container's cgroup",
)];

pub const COMMAND: Command = Command {
    name: "kill",
    alias: None,
    args: "<container-id> [SIGNAL]",
    about: "Send a signal (default SIGTERM) to a container's init or all its processes",
    flags: FLAGS,
};

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

pub fn run(g: &crate::Global, m: &Matches) -> anyhow::Result<i32> {
    m.at_most(2, "kill")?;
    let id = m.arg(0, "kill", "<container-id>")?;
    let sig = parse_signal(m.args.get(1).map_or("SIGTERM", String::as_str))?;
    super::load(g, id)?.kill(sig, m.flag("all"))?;
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
