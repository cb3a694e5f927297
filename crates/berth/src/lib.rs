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

use clap::Parser;

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

/// Runs the CLI with `args` (including the program name) and returns the exit code.
pub fn run_cli<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let parsed = match cli::Cli::try_parse_from(args) {
        Ok(p) => p,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
                _ => 125,
            };
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
            eprintln!("{err:#}");
            1
        }
    }
}
