//! `berth run`: create → attach (hijacked) → wait (next-exit, or removed with `--rm`) →
//! start, then stream output and exit with the container's code, like the docker CLI.

use anyhow::Result;
use berth_api::client::api::wait_result;
use berth_api::client::{Client, ClientError};
use berth_api::query::{
    ContainerAttachQuery, ContainerStartQuery, ContainerWaitQuery, ImageCreateQuery, WaitCondition,
};
use berth_api::stream::{JsonMessage, JsonStream};
use clap::{ArgAction, Args};

use super::Ctx;
use crate::StatusError;
use crate::opts::container::{ContainerOpts, CreateRequest, PullPolicy};
use crate::stream_io;

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Print usage
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
    /// Run container in background and print container ID
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Proxy received signals to the process
    #[arg(long = "sig-proxy", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub sig_proxy: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    /// Suppress the pull output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[command(flatten)]
    pub opts: ContainerOpts,
}

/// Docker's mapping of a start/create failure to an exit code: 127 for a missing command,
/// 126 for one that cannot be invoked, else 125.
pub fn start_error_code(message: &str) -> i32 {
    let m = message.trim_start_matches("Error response from daemon: ");
    if m.contains("executable file not found")
        || m.contains("no such file or directory")
        || m.contains("command not found")
    {
        127
    } else if m.contains("permission denied")
        || m.contains("is a directory")
        || m.contains("cannot invoke")
    {
        126
    } else {
        125
    }
}

/// The exit code of a failed create: daemon errors by their message, anything else
/// (daemon unreachable) 125.
pub fn create_error_code(e: &ClientError) -> i32 {
    match e {
        ClientError::Daemon { .. } => start_error_code(&e.to_string()),
        _ => 125,
    }
}

/// `berth: <msg>` plus the help hint, as docker 28 prints a failed `run`/`create`. A flag's
/// bad value (`invalid argument "x" for "--flag" flag: ...`) is a flag-parsing error to
/// docker: no prefix, and the usage line before the hint.
pub fn report(verb: &str, msg: &str, with_help: bool) -> String {
    if with_help && msg.starts_with("invalid argument \"") {
        let usage = crate::cli::docker_usage(verb).unwrap_or_default();
        return format!(
            "{}\n\nUsage:  berth {verb} {usage}\n\nRun 'berth {verb} --help' for more information",
            msg.trim_end()
        );
    }
    let mut s = format!("berth: {}", msg.trim_end());
    if with_help {
        s.push_str(&format!(
            "\n\nRun 'berth {verb} --help' for more information"
        ));
    }
    s
}

/// The reference Docker prints in "Unable to find image": a tag defaults to `latest`.
fn with_default_tag(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if last.contains(':') || image.contains('@') {
        image.to_owned()
    } else {
        format!("{image}:latest")
    }
}

fn pull(client: &Client, image: &str, quiet: bool) -> Result<(), ClientError> {
    // docker sends the normalized name (`busybox` → `docker.io/library/busybox`)
    let (name, tag) = match berth_oci::Reference::parse(image) {
        Ok(r) => {
            let tag = match (r.digest(), r.tag()) {
                (Some(d), _) => d.to_string(),
                (None, t) => t.unwrap_or("latest").to_owned(),
            };
            (r.name(), Some(tag))
        }
        Err(_) => crate::format::image::split_tag(&with_default_tag(image)),
    };
    let resp = client.image_create(
        &ImageCreateQuery {
            from_image: Some(name),
            tag,
            ..Default::default()
        },
        None,
    )?;
    for msg in JsonStream::<_, JsonMessage>::new(resp) {
        let msg = msg.map_err(|e| ClientError::Protocol(format!("reading pull progress: {e}")))?;
        if let Some(err) = msg.error_message() {
            return Err(ClientError::Daemon {
                status: 500,
                message: err.to_owned(),
            });
        }
        if !quiet && let Some(status) = &msg.status {
            match &msg.id {
                Some(id) => eprintln!("{id}: {status}"),
                None => eprintln!("{status}"),
            }
        }
    }
    Ok(())
}

/// Creates the container, pulling the image first according to `--pull`; prints warnings.
pub fn create_container(
    client: &Client,
    req: &CreateRequest,
    quiet: bool,
) -> Result<String, ClientError> {
    let image = req.body.config.image.clone().unwrap_or_default();
    if req.pull == PullPolicy::Always {
        pull(client, &image, quiet)?;
    }
    let resp = match client.container_create(&req.query, &req.body) {
        Err(e)
            if e.is_not_found()
                && req.pull == PullPolicy::Missing
                && e.to_string().to_ascii_lowercase().contains("no such image") =>
        {
            eprintln!(
                "Unable to find image '{}' locally",
                with_default_tag(&image)
            );
            pull(client, &image, quiet)?;
            client.container_create(&req.query, &req.body)?
        }
        other => other?,
    };
    for w in resp.warnings.iter().filter(|w| !w.is_empty()) {
        eprintln!("WARNING: {w}");
    }
    Ok(resp.id)
}

pub fn run(ctx: &Ctx, args: RunArgs) -> Result<i32> {
    let req = args
        .opts
        .build(args.detach, &|k| std::env::var(k).ok())
        .map_err(|e| StatusError::new(125, report("run", &e.0, true)))?;
    let config = &req.body.config;
    let tty = config.tty == Some(true);
    let attach_stdin = config.attach_stdin == Some(true);
    let attach_stdout = config.attach_stdout == Some(true);
    let attach_stderr = config.attach_stderr == Some(true);
    if !args.detach && attach_stdin && tty && !rustix::termios::isatty(std::io::stdin()) {
        return Err(StatusError::new(1, "the input device is not a TTY").into());
    }
    let client = &ctx.client;
    let id = create_container(client, &req, args.quiet).map_err(|e| {
        StatusError::new(create_error_code(&e), report("run", &e.to_string(), true))
    })?;

    if args.detach {
        // docker prints the ID before starting, so it is there even when the start fails
        println!("{id}");
        client
            .container_start(&id, &ContainerStartQuery::default())
            .map_err(|e| {
                StatusError::new(
                    start_error_code(&e.to_string()),
                    report("run", &e.to_string(), true),
                )
            })?;
        return Ok(0);
    }

    let attach = attach_stdin || attach_stdout || attach_stderr;
    let hijacked = if attach {
        let q = ContainerAttachQuery {
            stream: true,
            stdin: attach_stdin,
            stdout: attach_stdout,
            stderr: attach_stderr,
            detach_keys: args.detach_keys.clone(),
            logs: false,
        };
        Some(
            client
                .container_attach(&id, &q)
                .map_err(|e| StatusError::new(125, report("run", &e.to_string(), true)))?,
        )
    } else {
        None
    };
    let auto_remove = req.body.host_config.as_ref().and_then(|h| h.auto_remove) == Some(true);
    let wait = client
        .container_wait(
            &id,
            &ContainerWaitQuery {
                condition: Some(if auto_remove {
                    WaitCondition::Removed
                } else {
                    WaitCondition::NextExit
                }),
            },
        )
        .map_err(|e| StatusError::new(125, report("run", &e.to_string(), true)))?;

    let mut raw = if tty && attach_stdin {
        stream_io::RawTerminal::enable()
    } else {
        None
    };
    if let Err(e) = client.container_start(&id, &ContainerStartQuery::default()) {
        drop(raw.take());
        let msg = e.to_string();
        let code = start_error_code(&msg);
        eprintln!("{}", report("run", &msg, true));
        if auto_remove {
            let _ = wait_result(wait);
        }
        return Err(StatusError::silent(code).into());
    }
    // Signals and window-size changes are forwarded while this thread waits below.
    let mut proxy =
        stream_io::SignalProxy::start(client, &id, tty, args.sig_proxy && !tty).unwrap_or(None);
    if tty && attach {
        stream_io::resize(client, &id);
    }
    if !attach_stdout && !attach_stderr {
        println!("{id}");
    }
    if let Some(h) = hijacked {
        if attach_stdin {
            stream_io::spawn_stdin_copy(&h)?;
        }
        let multiplexed = h.multiplexed.unwrap_or(!tty);
        let reader = stream_io::Proxied {
            conn: h.reader,
            proxy: proxy.as_mut(),
        };
        if let Err(e) = stream_io::copy_output(reader, multiplexed) {
            // docker returns here: nobody can see the output any more, and waiting for the
            // container (which may wait for more input) could last forever.
            drop(raw.take());
            return Err(StatusError::new(1, e.to_string()).into());
        }
    }
    if let Some(p) = proxy.as_mut()
        && let Some(fd) = wait.poll_fd()
    {
        p.wait_readable(fd)
            .map_err(|e| StatusError::new(125, format!("Error waiting for container: {e}")))?;
    }
    let result = wait_result(wait)
        .map_err(|e| StatusError::new(125, format!("Error waiting for container: {e}")))?;
    drop(raw.take());
    if let Some(msg) = result
        .error
        .and_then(|e| e.message)
        .filter(|m| !m.is_empty())
    {
        return Err(StatusError::new(125, format!("Error waiting for container: {msg}")).into());
    }
    Ok(result.status_code as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_for_start_failures() {
        assert_eq!(
            start_error_code(
                "Error response from daemon: failed to create task: exec: \"nope\": executable file not found in $PATH"
            ),
            127
        );
        assert_eq!(
            start_error_code("exec /bin/x: no such file or directory"),
            127
        );
        assert_eq!(start_error_code("exec /etc: permission denied"), 126);
        assert_eq!(
            start_error_code("Error response from daemon: No such image: x"),
            125
        );
    }

    #[test]
    fn reports() {
        assert_eq!(
            report(
                "run",
                "conflicting options: cannot specify both --restart and --rm",
                true
            ),
            "berth: conflicting options: cannot specify both --restart and --rm\n\nRun 'berth run --help' for more information"
        );
        assert_eq!(report("run", "x.", false), "berth: x.");
        assert_eq!(with_default_tag("busybox"), "busybox:latest");
        assert_eq!(
            with_default_tag("registry:5000/busybox"),
            "registry:5000/busybox:latest"
        );
        assert_eq!(with_default_tag("busybox:1"), "busybox:1");
    }
}
