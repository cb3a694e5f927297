//! berthd's settings: dockerd's flag names, and a `daemon.json`-style file
//! (`--config-file`, default `/etc/berth/daemon.json` when it exists) whose keys are the
//! flags' long names. Flags given on the command line win over the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Parser;

/// The default config file, read when it exists.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/berth/daemon.json";

#[derive(Debug, Clone, Parser)]
#[command(
    name = "berthd",
    version,
    about = "Berth daemon: serves the Docker Engine API on a unix socket"
)]
pub struct Flags {
    /// Root of persisted state (images, containers, metadata).
    #[arg(long)]
    pub data_root: Option<PathBuf>,
    /// Root of runtime state (socket, pid file, shim state).
    #[arg(long)]
    pub exec_root: Option<PathBuf>,
    /// Where to listen: unix:///path/to/socket, or tcp://ADDR:PORT with --tlsverify
    /// (repeatable).
    #[arg(short = 'H', long = "host")]
    pub hosts: Vec<String>,
    /// The pid file (default: <exec-root>/berthd.pid).
    #[arg(short = 'p', long)]
    pub pidfile: Option<PathBuf>,
    /// daemon.json-style configuration file.
    #[arg(long)]
    pub config_file: Option<PathBuf>,
    /// debug, info, warn, error, fatal.
    #[arg(short = 'l', long)]
    pub log_level: Option<String>,
    /// Runtime for containers that do not name one: berth (built in), runc, crun.
    #[arg(long)]
    pub default_runtime: Option<String>,
    /// Pids limit for containers that set none (0: none). Default 4096.
    #[arg(long, allow_hyphen_values = true)]
    pub default_pids_limit: Option<i64>,
    /// Group owning the unix socket (mode 0660).
    #[arg(short = 'G', long)]
    pub group: Option<String>,
    /// Parent cgroup of containers (default /berth).
    #[arg(long)]
    pub cgroup_parent: Option<String>,
    /// The berth-shim binary (default: next to berthd, then $PATH).
    #[arg(long)]
    pub shim_binary: Option<PathBuf>,
    #[command(flatten)]
    pub tls: crate::tls::TlsFlags,
}

/// The effective settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub hosts: Vec<String>,
    pub pidfile: PathBuf,
    pub log_level: String,
    pub default_runtime: String,
    pub default_pids_limit: i64,
    pub group: Option<String>,
    pub cgroup_parent: String,
    pub shim_binary: Option<PathBuf>,
    pub runtimes: BTreeMap<String, PathBuf>,
    pub log_max_size: Option<String>,
    pub log_max_file: Option<String>,
    /// TLS for `tcp://` hosts.
    pub tls: crate::tls::TlsSettings,
}

const KNOWN_KEYS: [&str; 13] = [
    "data-root",
    "exec-root",
    "hosts",
    "pidfile",
    "log-level",
    "default-runtime",
    "default-pids-limit",
    "group",
    "cgroup-parent",
    "shim-binary",
    "runtimes",
    "log-driver",
    "log-opts",
];

fn str_key(
    file: &serde_json::Map<String, serde_json::Value>,
    key: &str,
    path: &Path,
) -> anyhow::Result<Option<String>> {
    match file.get(key) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => bail!("{}: {key:?} must be a string, not {other}", path.display()),
    }
}

impl Settings {
    /// Merges flags over the config file over the defaults.
    pub fn resolve(flags: Flags) -> anyhow::Result<Settings> {
        let (file, path) = match &flags.config_file {
            Some(p) => (
                Some(
                    std::fs::read(p)
                        .with_context(|| format!("reading config file {}", p.display()))?,
                ),
                p.clone(),
            ),
            None => {
                let p = PathBuf::from(DEFAULT_CONFIG_FILE);
                (std::fs::read(&p).ok(), p)
            }
        };
        let file: serde_json::Map<String, serde_json::Value> = match file {
            Some(bytes) => serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{}: invalid JSON (a daemon.json-style object is expected)",
                    path.display()
                )
            })?,
            None => Default::default(),
        };
        let unknown: Vec<&String> = file
            .keys()
            .filter(|k| {
                !KNOWN_KEYS.contains(&k.as_str()) && !crate::tls::CONFIG_KEYS.contains(&k.as_str())
            })
            .collect();
        if !unknown.is_empty() {
            bail!(
                "{}: the following directives don't match any configuration option: {}",
                path.display(),
                unknown
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if let Some(d) = str_key(&file, "log-driver", &path)?
            && d != "json-file"
        {
            bail!(
                "{}: log-driver {d:?} is not supported: berth writes json-file logs",
                path.display()
            );
        }
        let data_root = flags
            .data_root
            .or(str_key(&file, "data-root", &path)?.map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/var/lib/berth"));
        let exec_root = flags
            .exec_root
            .or(str_key(&file, "exec-root", &path)?.map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/run/berth"));
        let mut hosts = flags.hosts;
        if hosts.is_empty()
            && let Some(v) = file.get("hosts")
        {
            hosts = serde_json::from_value(v.clone()).with_context(|| {
                format!("{}: \"hosts\" must be a list of strings", path.display())
            })?;
        }
        if hosts.is_empty() {
            hosts.push(format!("unix://{}", exec_root.join("berth.sock").display()));
        }
        let pidfile = flags
            .pidfile
            .or(str_key(&file, "pidfile", &path)?.map(PathBuf::from))
            .unwrap_or_else(|| exec_root.join("berthd.pid"));
        let log_level = flags
            .log_level
            .or(str_key(&file, "log-level", &path)?)
            .unwrap_or_else(|| "info".into());
        if !matches!(
            log_level.as_str(),
            "debug" | "info" | "warn" | "error" | "fatal" | "trace"
        ) {
            bail!("invalid log level {log_level:?}: use debug, info, warn, error or fatal");
        }
        let default_runtime = flags
            .default_runtime
            .or(str_key(&file, "default-runtime", &path)?)
            .unwrap_or_else(|| "berth".into());
        let default_pids_limit = match flags.default_pids_limit {
            Some(n) => n,
            None => match file.get("default-pids-limit") {
                None => berth_engine::DEFAULT_PIDS_LIMIT,
                Some(v) => v.as_i64().with_context(|| {
                    format!(
                        "{}: \"default-pids-limit\" must be an integer",
                        path.display()
                    )
                })?,
            },
        };
        let tls = crate::tls::TlsSettings::resolve(&flags.tls, &file, &path)?;
        let group = flags.group.or(str_key(&file, "group", &path)?);
        let cgroup_parent = flags
            .cgroup_parent
            .or(str_key(&file, "cgroup-parent", &path)?)
            .unwrap_or_else(|| "/berth".into());
        if !cgroup_parent.starts_with('/') || cgroup_parent.contains("..") {
            bail!(
                "invalid cgroup parent {cgroup_parent:?}: use an absolute cgroup path like /berth"
            );
        }
        let shim_binary = flags
            .shim_binary
            .or(str_key(&file, "shim-binary", &path)?.map(PathBuf::from));
        let mut runtimes = BTreeMap::new();
        if let Some(v) = file.get("runtimes") {
            let map: BTreeMap<String, serde_json::Value> = serde_json::from_value(v.clone())
                .with_context(|| format!("{}: \"runtimes\" must be an object", path.display()))?;
            for (name, spec) in map {
                let p = spec.get("path").and_then(|p| p.as_str()).with_context(|| {
                    format!("{}: runtimes.{name}.path must be a string", path.display())
                })?;
                runtimes.insert(name, PathBuf::from(p));
            }
        }
        let (mut log_max_size, mut log_max_file) = (None, None);
        if let Some(opts) = file.get("log-opts") {
            let map: BTreeMap<String, String> =
                serde_json::from_value(opts.clone()).with_context(|| {
                    format!("{}: \"log-opts\" must map names to strings", path.display())
                })?;
            for (k, v) in map {
                match k.as_str() {
                    "max-size" => log_max_size = Some(v),
                    "max-file" => log_max_file = Some(v),
                    other => bail!(
                        "{}: log-opts {other:?} is not supported by json-file here (use max-size, max-file)",
                        path.display()
                    ),
                }
            }
        }
        Ok(Settings {
            data_root,
            exec_root,
            hosts,
            pidfile,
            log_level,
            default_runtime,
            default_pids_limit,
            group,
            cgroup_parent,
            shim_binary,
            runtimes,
            log_max_size,
            log_max_file,
            tls,
        })
    }
}

/// The socket path of a `unix://` host (`tcp://` hosts: [`crate::tls`]).
pub fn unix_path(host: &str) -> anyhow::Result<PathBuf> {
    if let Some(p) = host.strip_prefix("unix://") {
        if p.is_empty() {
            bail!("invalid host {host:?}: unix:// needs a socket path");
        }
        return Ok(PathBuf::from(p));
    }
    bail!(
        "invalid host {host:?}: use unix:///path/to/berth.sock or tcp://ADDR:PORT (with --tlsverify)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> Flags {
        let mut v = vec!["berthd"];
        v.extend_from_slice(args);
        Flags::parse_from(v)
    }

    #[test]
    fn defaults_follow_dockerd() {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-cfg")
            .tempdir()
            .unwrap();
        let empty = dir.path().join("daemon.json");
        std::fs::write(&empty, "{}").unwrap();
        let s = Settings::resolve(flags(&["--config-file", empty.to_str().unwrap()])).unwrap();
        assert_eq!(s.data_root, PathBuf::from("/var/lib/berth"));
        assert_eq!(s.hosts, vec!["unix:///run/berth/berth.sock".to_string()]);
        assert_eq!(s.pidfile, PathBuf::from("/run/berth/berthd.pid"));
        assert_eq!(s.default_pids_limit, berth_engine::DEFAULT_PIDS_LIMIT);
    }

    #[test]
    fn file_then_flags() {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-cfg")
            .tempdir()
            .unwrap();
        let f = dir.path().join("daemon.json");
        std::fs::write(&f, r#"{"data-root":"/d","exec-root":"/e","default-pids-limit":10,"log-opts":{"max-size":"1m"},"runtimes":{"x":{"path":"/bin/x"}}}"#).unwrap();
        let s = Settings::resolve(flags(&[
            "--config-file",
            f.to_str().unwrap(),
            "--data-root",
            "/flag",
        ]))
        .unwrap();
        assert_eq!(s.data_root, PathBuf::from("/flag"));
        assert_eq!(s.exec_root, PathBuf::from("/e"));
        assert_eq!(s.hosts, vec!["unix:///e/berth.sock".to_string()]);
        assert_eq!(s.default_pids_limit, 10);
        assert_eq!(s.log_max_size.as_deref(), Some("1m"));
        assert_eq!(s.runtimes["x"], PathBuf::from("/bin/x"));
    }

    #[test]
    fn bad_files_are_rejected_precisely() {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-cfg")
            .tempdir()
            .unwrap();
        let f = dir.path().join("daemon.json");
        for (text, needle) in [
            (
                r#"{"bogus":1}"#,
                "don't match any configuration option: bogus",
            ),
            (r#"{"data-root":5}"#, "\"data-root\" must be a string"),
            ("{", "invalid JSON"),
            (r#"{"log-driver":"syslog"}"#, "not supported"),
            (r#"{"default-pids-limit":"x"}"#, "must be an integer"),
        ] {
            std::fs::write(&f, text).unwrap();
            let e = Settings::resolve(flags(&["--config-file", f.to_str().unwrap()])).unwrap_err();
            assert!(format!("{e:#}").contains(needle), "{text}: {e:#}");
        }
        assert!(unix_path("tcp://0.0.0.0:2375").is_err());
        assert_eq!(
            unix_path("unix:///x.sock").unwrap(),
            PathBuf::from("/x.sock")
        );
    }
}
