//! `berth start`: start containers; with `-a`/`-i`, attach and exit with the container's code.

use anyhow::Result;
use berth_api::client::api::wait_result;
use berth_api::query::{
    ContainerAttachQuery, ContainerStartQuery, ContainerWaitQuery, WaitCondition,
};
use clap::Args;

use super::{Ctx, for_each};
use crate::StatusError;
use crate::stream_io;

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short = 'a', long)]
    pub attach: bool,
    /// Attach container's STDIN
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    /// Containers to start
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

pub fn run(ctx: &Ctx, args: StartArgs) -> Result<i32> {
    let client = &ctx.client;
    if !(args.attach || args.interactive) {
        let mut failed = Vec::new();
        let code = for_each(&args.containers, |c| {
            let r = client.container_start(c, &ContainerStartQuery::default());
            if r.is_err() {
                failed.push(c.to_owned());
            }
            Ok(r?)
        })?;
        if !failed.is_empty() {
            // docker 28's closing line
            eprintln!("Error: failed to start containers: {}", failed.join(", "));
        }
        return Ok(code);
    }
    if args.containers.len() > 1 {
        return Err(
            StatusError::new(1, "you cannot start and attach multiple containers at once").into(),
        );
    }
    let name = &args.containers[0];
    let info = client.container_inspect(name)?;
    let config = info.config.unwrap_or_default();
    let tty = config.tty == Some(true);
    let stdin = args.interactive && config.open_stdin == Some(true);
    let id = info.id.unwrap_or_else(|| name.clone());
    let h = client.container_attach(
        &id,
        &ContainerAttachQuery {
            stream: true,
            stdin,
            stdout: true,
            stderr: true,
            detach_keys: args.detach_keys.clone(),
            logs: false,
        },
    )?;
    let auto_remove = info.host_config.and_then(|h| h.auto_remove) == Some(true);
    let wait = client.container_wait(
        &id,
        &ContainerWaitQuery {
            condition: Some(if auto_remove {
                WaitCondition::Removed
            } else {
                WaitCondition::NextExit
            }),
        },
    )?;
    let raw = if tty && stdin {
        stream_io::RawTerminal::enable()
    } else {
        None
    };
    if let Err(e) = client.container_start(&id, &ContainerStartQuery::default()) {
        drop(raw);
        return Err(StatusError::new(1, e.to_string()).into());
    }
    if tty {
        stream_io::resize(client, &id);
    }
    if stdin {
        stream_io::spawn_stdin_copy(&h)?;
    }
    let multiplexed = h.multiplexed.unwrap_or(!tty);
    if let Err(e) = stream_io::copy_output(h.reader, multiplexed) {
        // as `run`: stop at once rather than wait for a container nobody hears any more
        drop(raw);
        return Err(StatusError::new(1, e.to_string()).into());
    }
    let result = wait_result(wait);
    drop(raw);
    Ok(result?.status_code as i32)
}
