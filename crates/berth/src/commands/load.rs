//! `berth load`: send a `docker save` tarball (file or stdin) to the daemon.

use std::fs::File;

use anyhow::{Context, Result};
use berth_api::query::ImageLoadQuery;
use berth_api::stream::{JsonMessage, JsonStream};
use clap::Args;

use super::Ctx;
use crate::StatusError;

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short = 'i', long)]
    pub input: Option<String>,
    /// Suppress the load output
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// Prints a JSON message stream; returns the error message that ended it, if any.
pub fn print_messages<R: std::io::Read>(r: R, quiet: bool) -> Result<()> {
    for msg in JsonStream::<_, JsonMessage>::new(r) {
        let msg = msg.context("reading the daemon's progress messages")?;
        if let Some(err) = msg.error_message() {
            return Err(StatusError::new(1, err.to_owned()).into());
        }
        if quiet {
            continue;
        }
        if let Some(s) = &msg.stream {
            print!("{s}");
        } else if let Some(s) = &msg.status {
            match &msg.id {
                Some(id) => println!("{id}: {s}"),
                None => println!("{s}"),
            }
        }
    }
    Ok(())
}

pub fn run(ctx: &Ctx, args: LoadArgs) -> Result<i32> {
    let (reader, len): (Box<dyn std::io::Read + Send>, Option<u64>) = match &args.input {
        Some(path) => {
            let f =
                File::open(path).map_err(|e| StatusError::new(1, format!("open {path}: {e}")))?;
            let len = f.metadata().ok().map(|m| m.len());
            (Box::new(f), len)
        }
        None => {
            if rustix::termios::isatty(std::io::stdin()) {
                return Err(
                    StatusError::new(1, "requested load from stdin, but stdin is empty").into(),
                );
            }
            (Box::new(std::io::stdin()), None)
        }
    };
    let resp = ctx
        .client
        .image_load(&ImageLoadQuery { quiet: args.quiet }, reader, len)?;
    print_messages(resp, false)?;
    Ok(0)
}
