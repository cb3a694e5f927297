//! The flags of `run` and `create`, and their pure mapping to a `POST /containers/create`
//! request (query + body), with Docker's parsing and error messages.

use std::collections::HashMap;
use std::path::PathBuf;

use berth_api::body::ContainerCreateBody;
use berth_api::models::{
    ContainerConfig, HealthConfig, HostConfig, HostConfigLogConfig, PortBinding,
};
use berth_api::query::ContainerCreateQuery;
use clap::Args;

use super::env::{env_value, read_kv_file};
use super::mount::{VolumeSpec, parse_mount, parse_tmpfs, parse_volume};
use super::units::{go_duration_nanos, nano_cpus, ram_in_bytes, restart_policy, ulimit};

// Flags shared by `run` and `create` (`-h` is `--hostname`, as in Docker; help is `--help`).
// Not a doc comment: clap would make it the help text of `run` and `create`, whose flags are
// added after their own text (`defer`, cli.rs).
#[derive(Debug, Clone, Default, Args)]
pub struct ContainerOpts {
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short = 'a', long = "attach", value_name = "STREAM")]
    pub attach: Vec<String>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Automatically remove the container and its associated anonymous volumes when it exits
    #[arg(long)]
    pub rm: bool,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Bind mount a volume
    #[arg(short = 'v', long = "volume", value_name = "[SRC:]DST[:MODE]")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount to the container
    #[arg(long, value_name = "SPEC")]
    pub mount: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long, allow_hyphen_values = true)]
    pub entrypoint: Option<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Container NIS domain name
    #[arg(long)]
    pub domainname: Option<String>,
    /// Set meta data on a container
    #[arg(short = 'l', long = "label", value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// Read in a line delimited file of labels
    #[arg(long = "label-file", value_name = "FILE")]
    pub label_file: Vec<PathBuf>,
    /// Memory limit
    #[arg(short = 'm', long, allow_hyphen_values = true, value_name = "BYTES")]
    pub memory: Option<String>,
    /// Memory soft limit
    #[arg(
        long = "memory-reservation",
        allow_hyphen_values = true,
        value_name = "BYTES"
    )]
    pub memory_reservation: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true, value_name = "BYTES")]
    pub memory_swap: Option<String>,
    /// Tune container memory swappiness (0 to 100)
    #[arg(long = "memory-swappiness", allow_hyphen_values = true)]
    pub memory_swappiness: Option<i64>,
    /// Disable OOM Killer
    #[arg(long = "oom-kill-disable")]
    pub oom_kill_disable: bool,
    /// Tune host's OOM preferences (-1000 to 1000)
    #[arg(long = "oom-score-adj", allow_hyphen_values = true)]
    pub oom_score_adj: Option<i64>,
    /// Number of CPUs
    #[arg(long, allow_hyphen_values = true, value_name = "DECIMAL")]
    pub cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares", allow_hyphen_values = true)]
    pub cpu_shares: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period", allow_hyphen_values = true)]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Ulimit options
    #[arg(long, value_name = "NAME=SOFT[:HARD]")]
    pub ulimit: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    /// Add Linux capabilities
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// Security Options
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Mount a tmpfs directory
    #[arg(long, value_name = "DST[:OPTS]")]
    pub tmpfs: Vec<String>,
    /// Size of /dev/shm
    #[arg(long = "shm-size", value_name = "BYTES")]
    pub shm_size: Option<String>,
    /// Sysctl options
    #[arg(long, value_name = "KEY=VALUE")]
    pub sysctl: Vec<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Restart policy to apply when a container exits
    #[arg(long)]
    pub restart: Option<String>,
    /// Signal to stop the container
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout", allow_hyphen_values = true)]
    pub stop_timeout: Option<i64>,
    /// Connect a container to a network (none, host)
    #[arg(long, alias = "net")]
    pub network: Option<String>,
    /// Runtime to use for this container
    #[arg(long)]
    pub runtime: Option<String>,
    /// Pull image before running ("always", "missing", "never")
    #[arg(long, default_value = "missing")]
    pub pull: String,
    /// Add additional groups to join
    #[arg(long = "group-add")]
    pub group_add: Vec<String>,
    /// Expose a port or a range of ports
    #[arg(long)]
    pub expose: Vec<String>,
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Command to run to check health
    #[arg(long = "health-cmd")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h)
    #[arg(long = "health-interval")]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h)
    #[arg(long = "health-timeout")]
    pub health_timeout: Option<String>,
    /// Start period for the container to initialize before starting health-retries countdown
    #[arg(long = "health-start-period")]
    pub health_start_period: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long = "health-retries", allow_hyphen_values = true)]
    pub health_retries: Option<i64>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// Logging driver for the container
    #[arg(long = "log-driver")]
    pub log_driver: Option<String>,
    /// Log driver options
    #[arg(long = "log-opt")]
    pub log_opt: Vec<String>,
    /// PID namespace to use
    #[arg(long)]
    pub pid: Option<String>,
    /// IPC mode to use
    #[arg(long)]
    pub ipc: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// The image, then the command and its arguments (flags after the image belong to the
    /// command, as with docker)
    #[arg(value_name = "IMAGE [COMMAND] [ARG...]", required = true, num_args = 1.., trailing_var_arg = true)]
    pub command: Vec<String>,
}

/// When to pull the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    Missing,
    Never,
}

/// A create request built from flags.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateRequest {
    pub query: ContainerCreateQuery,
    pub body: ContainerCreateBody,
    pub pull: PullPolicy,
}

type ExposedPorts = HashMap<String, HashMap<(), ()>>;
type PortMap = HashMap<String, Option<Vec<PortBinding>>>;

/// A flag value Docker would reject (printed as `berth: <msg>.` with exit code 125).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OptsError(pub String);

fn flag_err(value: &str, flag: &str, why: impl std::fmt::Display) -> OptsError {
    OptsError(format!(
        "invalid argument \"{value}\" for \"{flag}\" flag: {why}"
    ))
}

fn check_sysctl(kv: &str) -> Result<(String, String), OptsError> {
    let (k, v) = kv.split_once('=').ok_or_else(|| {
        flag_err(
            kv,
            "--sysctl",
            format!("sysctl '{kv}' is not allowed (expected KEY=VALUE)"),
        )
    })?;
    // the engine's and the runtime's rule, from berth-oci
    if berth_oci::sysctl::namespace_of(k).is_none() {
        return Err(flag_err(
            kv,
            "--sysctl",
            format!(
                "sysctl '{k}' is not allowed (only namespaced sysctls: net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*, kernel.domainname)"
            ),
        ));
    }
    Ok((k.to_owned(), v.to_owned()))
}

fn network_mode(n: &str) -> Result<String, OptsError> {
    match n {
        "none" | "host" | "bridge" | "default" => Ok(n.to_owned()),
        _ => {
            if let Some((mode, rest)) = n.split_once(':') {
                if mode == "container" {
                    if rest.is_empty() {
                        return Err(OptsError(format!(
                            "invalid --network value {n:?}: container: needs a container name or ID"
                        )));
                    }
                    return Ok(n.to_owned());
                }
                return Err(OptsError(format!(
                    "invalid --network value {n:?}: unknown network mode {mode:?} (expected none, host, bridge, container:<name|id> or a network name)"
                )));
            }
            let mut cs = n.chars();
            let ok = matches!(cs.next(), Some(c) if c.is_ascii_alphanumeric())
                && cs.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if !ok {
                return Err(OptsError(format!(
                    "invalid --network value {n:?}: expected none, host, bridge, container:<name|id> or a network name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)"
                )));
            }
            Ok(n.to_owned())
        }
    }
}

fn security_opts(opts: &[String]) -> Result<(Vec<String>, Option<Vec<String>>), OptsError> {
    let mut out = Vec::new();
    let mut unconfined_paths = false;
    for opt in opts {
        if opt == "systempaths=unconfined" {
            unconfined_paths = true;
            continue;
        }
        let (key, value) = match opt.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None if opt == "no-new-privileges" => (opt.as_str(), None),
            None => match opt.split_once(':') {
                Some((k, v)) => (k, Some(v)),
                None => return Err(OptsError(format!("Invalid --security-opt: {opt:?}"))),
            },
        };
        if key == "seccomp" {
            let v = value.unwrap_or("");
            if v != "unconfined" && !v.is_empty() {
                let text = std::fs::read(v)
                    .map_err(|e| OptsError(format!("opening seccomp profile ({v}) failed: {e}")))?;
                let json: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
                    OptsError(format!(
                        "compacting json for seccomp profile ({v}) failed: {e}"
                    ))
                })?;
                out.push(format!("seccomp={json}"));
                continue;
            }
        }
        out.push(opt.clone());
    }
    Ok((out, unconfined_paths.then(Vec::new)))
}

fn ports(publish: &[String], expose: &[String]) -> Result<(ExposedPorts, PortMap), OptsError> {
    let mut exposed = HashMap::new();
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    let split_proto = |p: &str| -> (String, String) {
        match p.rsplit_once('/') {
            Some((port, proto)) => (port.to_owned(), proto.to_ascii_lowercase()),
            None => (p.to_owned(), "tcp".to_owned()),
        }
    };
    // docker's nat.ParsePortSpec words a bad port by its side
    let port_range = |s: &str, side: &str| -> Result<(u16, u16), OptsError> {
        let bad = || OptsError(format!("invalid {side}: {s}"));
        let (a, b) = s.split_once('-').unwrap_or((s, s));
        let a: u16 = a.parse().map_err(|_| bad())?;
        let b: u16 = b.parse().map_err(|_| bad())?;
        if b < a {
            return Err(bad());
        }
        Ok((a, b))
    };
    for spec in publish {
        let (rest, proto) = split_proto(spec);
        if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
            return Err(OptsError(format!("invalid proto: {proto}")));
        }
        // [ip:][hostPort:]containerPort, with [v6] brackets allowed for the ip.
        let (ip, host, ctr) = match rest.rsplitn(3, ':').collect::<Vec<_>>().as_slice() {
            [c] => (String::new(), String::new(), c.to_string()),
            [c, h] => (String::new(), h.to_string(), c.to_string()),
            [c, h, ip] => (
                ip.trim_start_matches('[').trim_end_matches(']').to_owned(),
                h.to_string(),
                c.to_string(),
            ),
            _ => {
                return Err(OptsError(format!(
                    "invalid port format for --publish: {spec}"
                )));
            }
        };
        let (c0, c1) = port_range(&ctr, "containerPort")?;
        let host_range = if host.is_empty() {
            None
        } else {
            Some(port_range(&host, "hostPort")?)
        };
        if let Some((h0, h1)) = host_range
            && h1 - h0 != c1 - c0
            && h0 != h1
        {
            return Err(OptsError(format!(
                "invalid ranges specified for container and host Ports: {ctr} and {host}"
            )));
        }
        for (i, p) in (c0..=c1).enumerate() {
            let key = format!("{p}/{proto}");
            exposed.insert(key.clone(), HashMap::new());
            let host_port = match host_range {
                None => String::new(),
                Some((h0, h1)) if h0 == h1 => h0.to_string(),
                Some((h0, _)) => (h0 + i as u16).to_string(),
            };
            bindings
                .entry(key)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: Some(ip.clone()),
                    host_port: Some(host_port),
                });
        }
    }
    for e in expose {
        if e.contains(':') {
            return Err(OptsError(format!("invalid port format for --expose: {e}")));
        }
        let (port, proto) = split_proto(e);
        let (a, b) = port_range(&port, e)
            .map_err(|_| OptsError(format!("invalid range format for --expose: {e}")))?;
        for p in a..=b {
            exposed
                .entry(format!("{p}/{proto}"))
                .or_insert_with(HashMap::new);
        }
    }
    Ok((exposed, bindings))
}

fn kv_map(items: &[String]) -> HashMap<String, String> {
    items
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (kv.clone(), String::new()),
        })
        .collect()
}

impl ContainerOpts {
    /// Builds the create request. `detach` is true for `run -d` and for `create`'s attach
    /// flags as Docker computes them; `lookup` resolves `-e KEY` from the environment.
    pub fn build(
        &self,
        detach: bool,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<CreateRequest, OptsError> {
        let pull = match self.pull.as_str() {
            "always" => PullPolicy::Always,
            "missing" => PullPolicy::Missing,
            "never" => PullPolicy::Never,
            other => {
                return Err(OptsError(format!(
                    "invalid pull option: '{other}': must be one of \"always\", \"missing\" or \"never\""
                )));
            }
        };
        let image = self.command.first().cloned().unwrap_or_default();
        let args: Vec<String> = self.command.iter().skip(1).cloned().collect();
        if image.is_empty() {
            return Err(OptsError("image name cannot be empty".into()));
        }
        // the name is the daemon's to check (docker's CLI sends it as is, so the error reads
        // `Error response from daemon: Invalid container name ...`)
        // Streams.
        let mut attach_stdin = false;
        let mut attach_stdout = false;
        let mut attach_stderr = false;
        for a in &self.attach {
            match a.to_ascii_lowercase().as_str() {
                "stdin" => attach_stdin = true,
                "stdout" => attach_stdout = true,
                "stderr" => attach_stderr = true,
                _ => {
                    return Err(flag_err(
                        a,
                        "-a, --attach",
                        "valid streams are STDIN, STDOUT and STDERR",
                    ));
                }
            }
        }
        if self.interactive {
            attach_stdin = true;
        }
        if self.attach.is_empty() {
            attach_stdout = true;
            attach_stderr = true;
        }
        if detach {
            if !self.attach.is_empty() {
                return Err(OptsError(
                    "conflicting options: cannot specify both --attach and --detach".into(),
                ));
            }
            attach_stdin = false;
            attach_stdout = false;
            attach_stderr = false;
        }
        // Environment and labels: files first, flags override.
        let mut env = Vec::new();
        for f in &self.env_file {
            env.extend(read_kv_file(f, Some(lookup)).map_err(OptsError)?);
        }
        for e in &self.env {
            env.push(env_value(e, lookup).map_err(|why| flag_err(e, "-e, --env", why))?);
        }
        let mut labels = Vec::new();
        for f in &self.label_file {
            labels.extend(read_kv_file(f, None).map_err(OptsError)?);
        }
        labels.extend(self.label.iter().cloned());
        // Filesystem.
        let mut binds = Vec::new();
        let mut volumes = HashMap::new();
        for v in &self.volume {
            match parse_volume(v).map_err(OptsError)? {
                VolumeSpec::Bind(b) => binds.push(b),
                VolumeSpec::Anonymous(dst) => {
                    volumes.insert(dst, HashMap::new());
                }
            }
        }
        let mut mounts = Vec::new();
        for m in &self.mount {
            mounts.push(parse_mount(m).map_err(|why| flag_err(m, "--mount", why))?);
        }
        let mut tmpfs = HashMap::new();
        for t in &self.tmpfs {
            let (dst, opts) = parse_tmpfs(t).map_err(OptsError)?;
            tmpfs.insert(dst, opts);
        }
        // Resources.
        let size = |v: &Option<String>, flag: &str| -> Result<Option<i64>, OptsError> {
            v.as_deref()
                .map(|s| ram_in_bytes(s).map_err(|why| flag_err(s, flag, why)))
                .transpose()
        };
        let memory = size(&self.memory, "-m, --memory")?;
        let memory_reservation = size(&self.memory_reservation, "--memory-reservation")?;
        let memory_swap = match self.memory_swap.as_deref() {
            Some("-1") => Some(-1),
            other => size(&other.map(str::to_owned), "--memory-swap")?,
        };
        let shm_size = size(&self.shm_size, "--shm-size")?;
        if let Some(s) = self.memory_swappiness
            && s != -1
            && !(0..=100).contains(&s)
        {
            return Err(OptsError(format!(
                "invalid value: {s}. Valid memory swappiness range is 0-100"
            )));
        }
        let nano = self
            .cpus
            .as_deref()
            .map(|c| nano_cpus(c).map_err(|why| flag_err(c, "--cpus", why)))
            .transpose()?;
        if nano.is_some_and(|n| n > 0) && (self.cpu_period.is_some() || self.cpu_quota.is_some()) {
            return Err(OptsError(
                "Conflicting options: Nano CPUs and CPU Period cannot both be set".into(),
            ));
        }
        if let Some(shares) = self.cpu_shares
            && shares < 0
        {
            return Err(flag_err(
                &shares.to_string(),
                "-c, --cpu-shares",
                "must not be negative",
            ));
        }
        let mut ulimits = Vec::new();
        for u in &self.ulimit {
            ulimits.push(ulimit(u).map_err(|why| flag_err(u, "--ulimit", why))?);
        }
        let mut sysctls = HashMap::new();
        for s in &self.sysctl {
            let (k, v) = check_sysctl(s)?;
            sysctls.insert(k, v);
        }
        let (security_opt, unconfined_paths) = security_opts(&self.security_opt)?;
        // docker checks the conflict with --rm on the policy's name before (and whether or
        // not) the name is a known one
        if self.rm
            && let Some(r) = self.restart.as_deref()
            && !matches!(r.split(':').next(), Some("" | "no"))
        {
            return Err(OptsError(
                "conflicting options: cannot specify both --restart and --rm".into(),
            ));
        }
        let restart = self
            .restart
            .as_deref()
            .map(|r| restart_policy(r).map_err(OptsError))
            .transpose()?;
        let network = self.network.as_deref().map(network_mode).transpose()?;
        let (exposed, port_bindings) = ports(&self.publish, &self.expose)?;
        // Healthcheck.
        let have_health = self.health_cmd.is_some()
            || self.health_interval.is_some()
            || self.health_timeout.is_some()
            || self.health_start_period.is_some()
            || self.health_retries.is_some();
        let healthcheck = if self.no_healthcheck {
            if have_health {
                return Err(OptsError(
                    "--no-healthcheck conflicts with --health-* options".into(),
                ));
            }
            Some(HealthConfig {
                test: Some(vec!["NONE".into()]),
                ..Default::default()
            })
        } else if have_health {
            let dur = |v: &Option<String>, flag: &str| -> Result<Option<i64>, OptsError> {
                match v.as_deref() {
                    None => Ok(None),
                    Some(s) => {
                        let n = go_duration_nanos(s).map_err(|why| flag_err(s, flag, why))?;
                        if n < 0 {
                            return Err(OptsError(format!("{flag} cannot be negative")));
                        }
                        Ok(Some(n))
                    }
                }
            };
            if let Some(r) = self.health_retries
                && r < 0
            {
                return Err(OptsError("--health-retries cannot be negative".into()));
            }
            Some(HealthConfig {
                test: self
                    .health_cmd
                    .as_ref()
                    .map(|c| vec!["CMD-SHELL".into(), c.clone()]),
                interval: dur(&self.health_interval, "--health-interval")?,
                timeout: dur(&self.health_timeout, "--health-timeout")?,
                start_period: dur(&self.health_start_period, "--health-start-period")?,
                retries: self.health_retries,
                start_interval: None,
            })
        } else {
            None
        };
        let log_config = if self.log_driver.is_some() || !self.log_opt.is_empty() {
            if self.log_driver.as_deref() == Some("none") && !self.log_opt.is_empty() {
                return Err(OptsError("invalid logging opts for driver none".into()));
            }
            Some(HostConfigLogConfig {
                typ: Some(self.log_driver.clone().unwrap_or_default()),
                config: (!self.log_opt.is_empty()).then(|| kv_map(&self.log_opt)),
            })
        } else {
            None
        };
        let entrypoint = self.entrypoint.as_ref().map(|e| vec![e.clone()]);
        let open_stdin = self.interactive;
        let config = ContainerConfig {
            hostname: self.hostname.clone(),
            domainname: self.domainname.clone(),
            user: self.user.clone(),
            attach_stdin: Some(attach_stdin),
            attach_stdout: Some(attach_stdout),
            attach_stderr: Some(attach_stderr),
            exposed_ports: (!exposed.is_empty()).then_some(exposed),
            tty: Some(self.tty),
            open_stdin: Some(open_stdin),
            stdin_once: Some(open_stdin && attach_stdin),
            env: (!env.is_empty()).then_some(env),
            cmd: (!args.is_empty()).then_some(args),
            healthcheck,
            image: Some(image),
            volumes: (!volumes.is_empty()).then_some(volumes),
            working_dir: self.workdir.clone(),
            entrypoint,
            labels: (!labels.is_empty()).then(|| kv_map(&labels)),
            stop_signal: self.stop_signal.clone(),
            stop_timeout: self.stop_timeout,
            ..Default::default()
        };
        let host_config = HostConfig {
            binds: (!binds.is_empty()).then_some(binds),
            mounts: (!mounts.is_empty()).then_some(mounts),
            tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
            memory,
            memory_reservation,
            memory_swap,
            memory_swappiness: self.memory_swappiness,
            oom_kill_disable: self.oom_kill_disable.then_some(true),
            oom_score_adj: self.oom_score_adj,
            nano_cpus: nano,
            cpu_shares: self.cpu_shares,
            cpu_period: self.cpu_period,
            cpu_quota: self.cpu_quota,
            cpuset_cpus: self.cpuset_cpus.clone(),
            cpuset_mems: self.cpuset_mems.clone(),
            pids_limit: self.pids_limit,
            ulimits: (!ulimits.is_empty()).then_some(ulimits),
            privileged: self.privileged.then_some(true),
            cap_add: (!self.cap_add.is_empty()).then(|| self.cap_add.clone()),
            cap_drop: (!self.cap_drop.is_empty()).then(|| self.cap_drop.clone()),
            security_opt: (!security_opt.is_empty()).then_some(security_opt),
            masked_paths: unconfined_paths.clone(),
            readonly_paths: unconfined_paths,
            readonly_rootfs: self.read_only.then_some(true),
            shm_size,
            sysctls: (!sysctls.is_empty()).then_some(sysctls),
            init: self.init.then_some(true),
            auto_remove: self.rm.then_some(true),
            restart_policy: restart,
            network_mode: network,
            runtime: self.runtime.clone(),
            group_add: (!self.group_add.is_empty()).then(|| self.group_add.clone()),
            port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
            log_config,
            pid_mode: self.pid.clone(),
            ipc_mode: self.ipc.clone(),
            ..Default::default()
        };
        Ok(CreateRequest {
            query: ContainerCreateQuery {
                name: self.name.clone(),
                platform: self.platform.clone(),
            },
            body: ContainerCreateBody {
                config,
                host_config: Some(host_config),
                networking_config: None,
            },
            pull,
        })
    }
}
