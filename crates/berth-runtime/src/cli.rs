//! A small table-driven parser for runc's command line.
//!
//! It replaces a general argument-parsing library on purpose: building a full command tree
//! on every start cost about a millisecond and ~2 MB of resident binary pages, on the path
//! every container start takes. Syntax is runc's (urfave/cli): global flags, the command,
//! its flags, then positional arguments; flag parsing stops at the first positional
//! argument (so `exec ID sh -c ...` passes `-c` to the command) or at `--`. Values are
//! given as `--flag value`, `--flag=value`, `-f value` or `-f=value`.

use std::fmt::Write as _;

/// One flag of a command.
#[derive(Debug)]
pub struct Flag {
    pub long: &'static str,
    pub short: Option<char>,
    /// Name of the value (`None`: a boolean flag).
    pub value: Option<&'static str>,
    pub help: &'static str,
}

/// A command (or the global level).
#[derive(Debug)]
pub struct Command {
    pub name: &'static str,
    pub alias: Option<&'static str>,
    /// Positional arguments, for the usage line (`<container-id> [SIGNAL]`).
    pub args: &'static str,
    pub about: &'static str,
    pub flags: &'static [Flag],
}

/// Shorthand constructors for the flag tables.
pub const fn flag(long: &'static str, short: Option<char>, help: &'static str) -> Flag {
    Flag {
        long,
        short,
        value: None,
        help,
    }
}

pub const fn opt(
    long: &'static str,
    short: Option<char>,
    value: &'static str,
    help: &'static str,
) -> Flag {
    Flag {
        long,
        short,
        value: Some(value),
        help,
    }
}

/// What was given for one command level.
#[derive(Debug, Default)]
pub struct Matches {
    given: Vec<(&'static str, Option<String>)>,
    pub args: Vec<String>,
    pub help: bool,
}

/// A usage error (printed with a hint to `--help`).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

impl Matches {
    /// A boolean flag (also true for `--flag=true`).
    pub fn flag(&self, long: &str) -> bool {
        self.given
            .iter()
            .rev()
            .find(|(l, _)| *l == long)
            .is_some_and(|(_, v)| v.as_deref().is_none_or(|v| v != "false"))
    }

    /// The last value of a flag.
    pub fn value(&self, long: &str) -> Option<&str> {
        self.given
            .iter()
            .rev()
            .find(|(l, _)| *l == long)
            .and_then(|(_, v)| v.as_deref())
    }

    /// All values of a repeatable flag, in order.
    pub fn values(&self, long: &str) -> Vec<String> {
        self.given
            .iter()
            .filter(|(l, _)| *l == long)
            .filter_map(|(_, v)| v.clone())
            .collect()
    }

    /// A value parsed with `FromStr`.
    pub fn parse<T: std::str::FromStr>(&self, long: &str) -> Result<Option<T>, UsageError>
    where
        T::Err: std::fmt::Display,
    {
        self.value(long)
            .map(|v| {
                v.parse()
                    .map_err(|e| UsageError(format!("invalid value {v:?} for --{long}: {e}")))
            })
            .transpose()
    }

    /// A required positional argument.
    pub fn arg(&self, i: usize, cmd: &str, what: &str) -> Result<&str, UsageError> {
        self.args.get(i).map(String::as_str).ok_or_else(|| {
            UsageError(format!(
                "berth-runtime {cmd}: missing {what} (see berth-runtime {cmd} --help)"
            ))
        })
    }

    /// Refuses positional arguments beyond `max`.
    pub fn at_most(&self, max: usize, cmd: &str) -> Result<(), UsageError> {
        if self.args.len() > max {
            return Err(UsageError(format!(
                "berth-runtime {cmd}: unexpected argument {:?} (see berth-runtime {cmd} --help)",
                self.args[max]
            )));
        }
        Ok(())
    }
}

/// Parses `argv` against `cmd`'s flags. With `stop_at_command`, parsing also stops at the
/// first positional argument and returns it plus the rest unparsed (the global level).
pub fn parse(cmd: &Command, argv: &[String], context: &str) -> Result<Matches, UsageError> {
    let mut m = Matches::default();
    let mut i = 0;
    while i < argv.len() {
        let a = &argv[i];
        i += 1;
        if a == "--" {
            m.args.extend(argv[i..].iter().cloned());
            break;
        }
        if a == "-h" || a == "--help" {
            m.help = true;
            continue;
        }
        let (name, inline) = if let Some(rest) = a.strip_prefix("--") {
            match rest.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (rest.to_string(), None),
            }
        } else if a.len() > 1
            && a.starts_with('-')
            && !a[1..].starts_with(|c: char| c.is_ascii_digit())
        {
            let rest = &a[1..];
            let (s, v) = match rest.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (rest, None),
            };
            let mut chars = s.chars();
            let (Some(c), None) = (chars.next(), chars.next()) else {
                return Err(UsageError(format!(
                    "unknown flag {a:?} for {context} (see {context} --help)"
                )));
            };
            match cmd.flags.iter().find(|f| f.short == Some(c)) {
                Some(f) => (f.long.to_string(), v),
                None => {
                    return Err(UsageError(format!(
                        "unknown flag -{c} for {context} (see {context} --help)"
                    )));
                }
            }
        } else {
            // The first positional argument ends the flags.
            m.args.push(a.clone());
            m.args.extend(argv[i..].iter().cloned());
            break;
        };
        let Some(f) = cmd.flags.iter().find(|f| f.long == name) else {
            return Err(UsageError(format!(
                "unknown flag --{name} for {context} (see {context} --help)"
            )));
        };
        let value = match (f.value, inline) {
            (None, v) => v,
            (Some(_), Some(v)) => Some(v),
            (Some(vn), None) => match argv.get(i) {
                Some(v) => {
                    i += 1;
                    Some(v.clone())
                }
                None => {
                    return Err(UsageError(format!(
                        "flag --{name} of {context} needs a value ({vn})"
                    )));
                }
            },
        };
        m.given.push((f.long, value));
    }
    Ok(m)
}

/// The help text of a command.
pub fn help(prog: &str, cmd: &Command, commands: &[&Command]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{}\n", cmd.about);
    let _ = writeln!(
        s,
        "Usage: {prog}{} [OPTIONS] {}\n",
        if cmd.name.is_empty() {
            String::new()
        } else {
            format!(" {}", cmd.name)
        },
        cmd.args
    );
    if !commands.is_empty() {
        let _ = writeln!(s, "Commands:");
        for c in commands {
            let _ = writeln!(s, "  {:<12} {}", c.name, c.about);
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "Options:");
    for f in cmd.flags {
        let names = match (f.short, f.value) {
            (Some(c), Some(v)) => format!("-{c}, --{} <{v}>", f.long),
            (Some(c), None) => format!("-{c}, --{}", f.long),
            (None, Some(v)) => format!("    --{} <{v}>", f.long),
            (None, None) => format!("    --{}", f.long),
        };
        let _ = writeln!(s, "  {names:<34} {}", f.help);
    }
    let _ = writeln!(s, "  {:<34} Print help", "-h, --help");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLAGS: &[Flag] = &[
        opt("bundle", Some('b'), "DIR", "bundle"),
        flag("detach", Some('d'), "detach"),
        opt("env", Some('e'), "KEY=VALUE", "env"),
    ];
    const CMD: Command = Command {
        name: "run",
        alias: None,
        args: "<container-id>",
        about: "",
        flags: FLAGS,
    };

    fn argv(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_values_and_positionals() {
        let m = parse(
            &CMD,
            &argv(&["-b", "/x", "--detach", "--env=A=1", "-e", "B=2", "id", "-d"]),
            "t",
        )
        .unwrap();
        assert_eq!(m.value("bundle"), Some("/x"));
        assert!(m.flag("detach"));
        assert_eq!(m.values("env"), ["A=1", "B=2"]);
        assert_eq!(
            m.args,
            ["id", "-d"],
            "flags after the first positional are arguments"
        );
        let m = parse(&CMD, &argv(&["--bundle=/y", "--", "-id"]), "t").unwrap();
        assert_eq!(m.value("bundle"), Some("/y"));
        assert_eq!(m.args, ["-id"]);
        let m = parse(&CMD, &argv(&["--detach=false", "x"]), "t").unwrap();
        assert!(!m.flag("detach"));
        let m = parse(&CMD, &argv(&["id", "-9"]), "t").unwrap();
        assert_eq!(m.args, ["id", "-9"]);
    }

    #[test]
    fn errors_are_clear() {
        let e = parse(&CMD, &argv(&["--nope"]), "berth-runtime run")
            .unwrap_err()
            .0;
        assert!(
            e.contains("unknown flag --nope for berth-runtime run"),
            "{e}"
        );
        let e = parse(&CMD, &argv(&["--bundle"]), "berth-runtime run")
            .unwrap_err()
            .0;
        assert!(e.contains("needs a value"), "{e}");
        let e = parse(&CMD, &argv(&["-z"]), "x").unwrap_err().0;
        assert!(e.contains("-z"), "{e}");
        let m = parse(&CMD, &argv(&[]), "t").unwrap();
        assert!(
            m.arg(0, "run", "<container-id>")
                .unwrap_err()
                .0
                .contains("missing <container-id>")
        );
        assert!(help("berth-runtime", &CMD, &[]).contains("-b, --bundle <DIR>"));
    }
}
