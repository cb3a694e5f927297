//! The `berth` CLI as a library: flag parsing and its mapping to API requests (`opts`), the
//! `--format` template engine (`template`), table rendering (`format`), the attach/stream
//! plumbing (`stream_io`), and one module per verb (`commands`).
//!
//! Exit codes follow Docker's: 125 when the CLI or the daemon fails before the container runs
//! (bad flags, daemon errors in `run`/`create`), 126 when the command cannot be invoked, 127
//! when it is not found, otherwise the container's own code; other verbs exit 1 on error.
#![forbid(unsafe_code)]

pub mod cli;
pub mod commands;
pub mod format;
pub mod opts;
pub mod stream_io;
pub mod template;

use std::ffi::OsString;
use std::io::Write;

/// An error that carries its exit code; `message` (if any) is printed to stderr as is.
#[derive(Debug, thiserror::Error)]
#[error("{}", message.as_deref().unwrap_or(""))]
pub struct StatusError {
    pub code: i32,
    pub message: Option<String>,
}

impl StatusError {
    /// Exit with `code` after printing `message`.
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        StatusError {
            code,
            message: Some(message.into()),
        }
    }

    /// Exit with `code`, printing nothing more.
    pub fn silent(code: i32) -> Self {
        StatusError {
            code,
            message: None,
        }
    }
}

/// True when `err` is a broken pipe and stdout is a pipe nobody reads any more (a broken
/// connection to the daemon is not this: that still gets its message).
fn broken_stdout(err: &anyhow::Error) -> bool {
    use rustix::event::{PollFd, PollFlags, poll};
    let epipe = err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if !epipe {
        return false;
    }
    let stdout = std::io::stdout();
    let mut fds = [PollFd::new(&stdout, PollFlags::OUT)];
    let zero = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    poll(&mut fds, Some(&zero)).is_ok() && fds[0].revents().contains(PollFlags::ERR)
}

/// docker's text for an unknown flag (`unknown flag: --x`, `unknown shorthand flag: 'x' in
/// -x`, then the verb's usage and the help hint), for the verbs whose usage we know.
fn docker_flag_error(e: &clap::Error, args: &[String]) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let Some(ContextValue::String(flag)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    let verb = cli::verb_of(args)?;
    let usage = cli::docker_usage(&verb)?;
    let what = match flag.strip_prefix("--") {
        Some(_) => format!("unknown flag: {}", flag.split('=').next().unwrap_or(flag)),
        None => {
            let c = flag.trim_start_matches('-').chars().next()?;
            format!("unknown shorthand flag: '{c}' in {flag}")
        }
    };
    Some(format!(
        "{what}\n\nUsage:  berth {verb} {usage}\n\nRun 'berth {verb} --help' for more information"
    ))
}

/// Runs the CLI with `args` (including the program name) and returns the exit code.
pub fn run_cli<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<String> = args
        .into_iter()
        .map(|a| a.into().to_string_lossy().into_owned())
        .collect();
    let parsed = match cli::Cli::try_parse_from(&args) {
        Ok(p) => p,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
                _ => 125,
            };
            if let Some(msg) = docker_flag_error(&e, &args) {
                eprintln!("{msg}");
                return 125;
            }
            let _ = e.print();
            return code;
        }
    };
    match commands::dispatch(parsed) {
        Ok(code) => code,
        Err(err) => {
            let _ = std::io::stdout().flush();
            if let Some(s) = err.downcast_ref::<StatusError>() {
                if let Some(m) = &s.message {
                    eprintln!("{m}");
                }
                return s.code;
            }
            if broken_stdout(&err) {
                // a Go program dies of SIGPIPE when its stdout is a closed pipe
                // (`docker events | head -1`): quietly, with the same status
                let _ =
                    signal_hook::low_level::emulate_default_handler(signal_hook::consts::SIGPIPE);
                return 141;
            }
            eprintln!("{err:#}");
            1
        }
    }
}
