//! berthd's `tcp://` listener end to end: TLS with client certificates only.
//!
//! Every test makes a throwaway PKI with the `openssl` CLI (a CA, a server certificate for
//! 127.0.0.1, a client certificate, and a second CA with its own client certificate), starts a
//! real berthd on `unix://` plus `tcp://127.0.0.1:0` (the kernel picks a free port; the test
//! reads it from berthd's log), and drives it with the berth CLI, the real docker CLI and
//! docker-py. The rejected cases check that the handshake, not the API, turned the client
//! away: nothing is created, and berthd logs the failed handshake.

mod common;
use common::{Daemon, require, stderr, stdout, wait_until};

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn openssl_missing() -> bool {
    Command::new("openssl")
        .arg("version")
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true)
}

macro_rules! require_tls {
    () => {
        require!();
        if openssl_missing() {
            eprintln!("skipped: the openssl CLI is not installed (it makes the test certificates)");
            return;
        }
    };
}

/// Throwaway certificates in `dir`: `ca.pem`, `server-{cert,key}.pem` (signed by `ca`,
/// subjectAltName 127.0.0.1 and localhost), `cert.pem`/`key.pem` (a client certificate signed
/// by `ca`, the names docker's DOCKER_CERT_PATH expects), and `other-ca.pem` with
/// `other-{cert,key}.pem` (a client certificate from a CA berthd does not trust).
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(dir: &Path) -> Pki {
        std::fs::create_dir_all(dir).unwrap();
        let pki = Pki {
            dir: dir.to_path_buf(),
        };
        pki.ca("ca");
        pki.ca("other-ca");
        pki.leaf(
            "server",
            "ca",
            "localhost",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        );
        pki.leaf(
            "client",
            "ca",
            "berth-test-client",
            "extendedKeyUsage=clientAuth\n",
        );
        pki.leaf(
            "other",
            "other-ca",
            "berth-test-intruder",
            "extendedKeyUsage=clientAuth\n",
        );
        std::fs::rename(dir.join("client-cert.pem"), dir.join("cert.pem")).unwrap();
        std::fs::rename(dir.join("client-key.pem"), dir.join("key.pem")).unwrap();
        pki
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    fn openssl(&self, args: &[&str]) {
        let o = Command::new("openssl")
            .args(args)
            .current_dir(&self.dir)
            .output()
            .unwrap();
        assert!(o.status.success(), "openssl {args:?}: {}", stderr(&o));
    }

    /// A P-256 key and a CSR for `cn`.
    fn key_and_csr(&self, name: &str, cn: &str) {
        self.openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}-key.pem"),
            "-subj",
            &format!("/CN={cn}"),
            "-out",
            &format!("{name}.csr"),
        ]);
    }

    fn ca(&self, name: &str) {
        self.key_and_csr(name, &format!("berth-test {name}"));
        std::fs::write(
            self.dir.join(format!("{name}.ext")),
            "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n",
        )
        .unwrap();
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-signkey",
            &format!("{name}-key.pem"),
            "-extfile",
            &format!("{name}.ext"),
            "-days",
            "2",
            "-out",
            &format!("{name}.pem"),
        ]);
    }

    fn leaf(&self, name: &str, ca: &str, cn: &str, ext: &str) {
        self.key_and_csr(name, cn);
        std::fs::write(
            self.dir.join(format!("{name}.ext")),
            format!("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n{ext}"),
        )
        .unwrap();
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}-key.pem"),
            "-set_serial",
            &format!(
                "0x{:x}",
                std::process::id() as u64 * 1000 + name.len() as u64
            ),
            "-extfile",
            &format!("{name}.ext"),
            "-days",
            "2",
            "-out",
            &format!("{name}-cert.pem"),
        ]);
    }
}

/// A berthd listening on a unix socket and on `tcp://127.0.0.1:<free port>` with
/// `--tlsverify`. Built on [`Daemon`], whose roots, cgroup parent and cleanup it reuses: the
/// plain daemon is started once (so the harness has made its directories) and killed, then
/// berthd is started again on the same roots with the TLS flags. Dropping it removes the
/// containers, stops this berthd by PID, then lets [`Daemon`] clean up the rest.
struct TlsDaemon {
    child: Option<Child>,
    port: u16,
    pki: Pki,
    d: Daemon,
}

impl TlsDaemon {
    /// With dockerd's flags, or with `config_file` the same settings as config file keys.
    fn start(config_file: bool) -> TlsDaemon {
        let mut d = Daemon::start();
        d.kill9();
        let pki = Pki::new(&d.dir.path().join("pki"));
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(d.dir.path().join("daemon.log"))
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_berthd"));
        if config_file {
            let cfg = serde_json::json!({
                "hosts": [d.host(), "tcp://127.0.0.1:0"],
                "tlsverify": true,
                "tlscacert": pki.path("ca.pem"),
                "tlscert": pki.path("server-cert.pem"),
                "tlskey": pki.path("server-key.pem"),
            });
            std::fs::write(d.dir.path().join("daemon.json"), cfg.to_string()).unwrap();
        } else {
            cmd.args(["-H", &d.host(), "-H", "tcp://127.0.0.1:0"])
                .args(["--tlsverify", "--tlscacert", &pki.path("ca.pem")])
                .args(["--tlscert", &pki.path("server-cert.pem")])
                .args(["--tlskey", &pki.path("server-key.pem")]);
        }
        let child = cmd
            .arg("--data-root")
            .arg(d.data_root())
            .arg("--exec-root")
            .arg(d.exec_root())
            .arg("--cgroup-parent")
            .arg(&d.cgroup_parent)
            .arg("--shim-binary")
            .arg(common::bin_dir().join("berth-shim"))
            .arg("--config-file")
            .arg(d.dir.path().join("daemon.json"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawning berthd");
        let mut t = TlsDaemon {
            child: Some(child),
            port: 0,
            pki,
            d,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(port) = listening_port(&t.d.log())
                && t.d
                    .request("GET", "/_ping", None)
                    .is_ok_and(|r| r.status == 200)
            {
                t.port = port;
                return t;
            }
            if let Ok(Some(st)) = t.child.as_mut().unwrap().try_wait() {
                panic!("berthd exited with {st}: {}", t.d.log());
            }
            assert!(
                Instant::now() < deadline,
                "berthd did not answer: {}",
                t.d.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn tcp_host(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    /// The berth CLI against the TCP host with `tls_args`, and a HOME without ~/.docker.
    fn berth(&self, tls_args: &[&str], args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut cmd = Command::new(common::bin_dir().join("berth"));
        cmd.arg("-H").arg(self.tcp_host()).args(tls_args).args(args);
        run(self.clean_env(&mut cmd), stdin)
    }

    /// The berth CLI with the good client certificate.
    fn berth_ok(&self, args: &[&str]) -> String {
        let (ca, cert, key) = (
            self.pki.path("ca.pem"),
            self.pki.path("cert.pem"),
            self.pki.path("key.pem"),
        );
        let tls = [
            "--tlsverify",
            "--tlscacert",
            &ca,
            "--tlscert",
            &cert,
            "--tlskey",
            &key,
        ];
        let o = self.berth(&tls, args, None);
        assert!(
            o.status.success(),
            "berth {args:?}: {}\n--- daemon log:\n{}",
            stderr(&o),
            self.d.log()
        );
        stdout(&o)
    }

    /// The real docker CLI against the TCP host with `tls_args`.
    fn docker(&self, tls_args: &[&str], args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut cmd = Command::new(common::docker_cli());
        cmd.arg("-H").arg(self.tcp_host()).args(tls_args).args(args);
        run(self.clean_env(&mut cmd), stdin)
    }

    fn docker_good_tls(&self) -> Vec<String> {
        vec![
            "--tlsverify".into(),
            format!("--tlscacert={}", self.pki.path("ca.pem")),
            format!("--tlscert={}", self.pki.path("cert.pem")),
            format!("--tlskey={}", self.pki.path("key.pem")),
        ]
    }

    fn clean_env<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        let home = self.d.dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        for var in [
            "BERTH_HOST",
            "DOCKER_HOST",
            "BERTH_TLS",
            "DOCKER_TLS",
            "BERTH_TLS_VERIFY",
            "DOCKER_TLS_VERIFY",
            "BERTH_CERT_PATH",
            "DOCKER_CERT_PATH",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("HOME", &home)
            .env("DOCKER_CONFIG", self.d.dir.path().join("docker-config"))
    }

    /// How many TLS handshakes berthd logged as failed.
    fn failed_handshakes(&self) -> usize {
        self.d
            .log()
            .matches("tls handshake with 127.0.0.1:")
            .count()
    }
}

fn run(cmd: &mut Command, stdin: Option<&[u8]>) -> Output {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawning the client");
    if let Some(input) = stdin {
        let mut w = child.stdin.take().unwrap();
        w.write_all(input).unwrap();
    }
    child.wait_with_output().unwrap()
}

/// The port of berthd's `listening on tcp://127.0.0.1:PORT` log line.
fn listening_port(log: &str) -> Option<u16> {
    let at = log.find("listening on tcp://127.0.0.1:")? + "listening on tcp://127.0.0.1:".len();
    let digits: String = log[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

impl Drop for TlsDaemon {
    fn drop(&mut self) {
        if let Ok(r) = self.d.request("GET", "/containers/json?all=1", None) {
            let list: Vec<serde_json::Value> = serde_json::from_slice(&r.body).unwrap_or_default();
            for c in list {
                if let Some(id) = c["Id"].as_str() {
                    let _ = self
                        .d
                        .request("DELETE", &format!("/containers/{id}?force=1"), None);
                }
            }
        }
        if let Some(mut c) = self.child.take() {
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_raw(c.id() as i32).unwrap(),
                rustix::process::Signal::TERM,
            );
            let _ = c.wait();
        }
    }
}

#[test]
fn berth_cli_works_over_tls_with_flags_and_with_docker_env() {
    require_tls!();
    let t = TlsDaemon::start(false);
    t.d.import_busybox();

    let v = t.berth_ok(&["version", "--format", "{{.Server.APIVersion}}"]);
    assert_eq!(v.trim(), "1.47");
    // run --rm: create, the attach hijack (over TLS), start, wait, remove.
    let out = t.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "echo",
        "hello",
    ]);
    assert_eq!(out, "hello\n");
    // stdin through the hijacked TLS connection, closed with close_notify.
    let (ca, cert, key) = (
        t.pki.path("ca.pem"),
        t.pki.path("cert.pem"),
        t.pki.path("key.pem"),
    );
    let tls = [
        "--tlsverify",
        "--tlscacert",
        &ca,
        "--tlscert",
        &cert,
        "--tlskey",
        &key,
    ];
    let input = "line one\n".repeat(4000);
    let o = t.berth(
        &tls,
        &[
            "run",
            "--rm",
            "-i",
            "--network",
            "none",
            "busybox",
            "wc",
            "-l",
        ],
        Some(input.as_bytes()),
    );
    assert!(o.status.success(), "{}\n{}", stderr(&o), t.d.log());
    assert_eq!(stdout(&o).trim(), "4000");
    // Exit codes pass through.
    let o = t.berth(
        &tls,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "exit 3",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    // run -d, ps, logs, rm -f.
    let id = t.berth_ok(&[
        "run",
        "-d",
        "--name",
        "berth-test-tls",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "sleep 1000",
    ]);
    let ps = t.berth_ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.starts_with("berth-test-tls Up"), "{ps}");
    // The same container is seen through the unix socket: one daemon, two listeners.
    assert_eq!(t.d.container_count(), 1);
    t.berth_ok(&["rm", "-f", id.trim()]);
    let id = t.berth_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo up; echo err >&2",
    ]);
    assert_eq!(t.berth_ok(&["wait", id.trim()]).trim(), "0");
    let o = t.berth(&tls, &["logs", id.trim()], None);
    assert_eq!(
        (stdout(&o).as_str(), stderr(&o).as_str()),
        ("up\n", "err\n")
    );
    t.berth_ok(&["rm", id.trim()]);
    assert_eq!(t.d.container_count(), 0);

    // docker's environment: DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH with ca.pem,
    // cert.pem and key.pem; BERTH_* wins over DOCKER_*.
    let mut cmd = Command::new(common::bin_dir().join("berth"));
    t.clean_env(&mut cmd)
        .args(["version", "--format", "{{.Server.Os}}"])
        .env("DOCKER_HOST", "unix:///nonexistent/berth-test.sock")
        .env("BERTH_HOST", t.tcp_host())
        .env("DOCKER_TLS_VERIFY", "1")
        .env("DOCKER_CERT_PATH", "/nonexistent/berth-test-certs")
        .env("BERTH_CERT_PATH", &t.pki.dir);
    let o = run(&mut cmd, None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "linux");
    // docker's config directory ($DOCKER_CONFIG, else ~/.docker) is the default certificate
    // directory, as docker's.
    let dot_docker = t.d.dir.path().join("docker-config");
    std::fs::create_dir_all(&dot_docker).unwrap();
    for f in ["ca.pem", "cert.pem", "key.pem"] {
        std::fs::copy(t.pki.dir.join(f), dot_docker.join(f)).unwrap();
    }
    let o = t.berth(
        &["--tlsverify"],
        &["info", "--format", "{{.Containers}}"],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "0");
}

/// Regression: the CLI's TLS reader fed rustls more ciphertext than its 16 KiB plaintext
/// buffer holds ("received plaintext buffer full") on any response larger than a few
/// records: `save`, big logs, `run -i` echoing its input.
#[test]
fn berth_cli_moves_large_streams_over_tls() {
    require_tls!();
    let t = TlsDaemon::start(false);
    t.d.import_busybox();
    let (ca, cert, key) = (
        t.pki.path("ca.pem"),
        t.pki.path("cert.pem"),
        t.pki.path("key.pem"),
    );
    let tls = [
        "--tlsverify",
        "--tlscacert",
        &ca,
        "--tlscert",
        &cert,
        "--tlskey",
        &key,
    ];
    // save (download), rmi, load (upload): the image comes back with the same id.
    let id = t.berth_ok(&["image", "inspect", "--format", "{{.Id}}", "busybox"]);
    let tar = t.d.dir.path().join("saved.tar");
    t.berth_ok(&["save", "-o", tar.to_str().unwrap(), "busybox"]);
    assert!(std::fs::metadata(&tar).unwrap().len() > 1 << 20);
    t.berth_ok(&["rmi", "busybox"]);
    let out = t.berth_ok(&["load", "-i", tar.to_str().unwrap()]);
    assert!(out.contains("busybox:latest"), "{out}");
    let again = t.berth_ok(&["image", "inspect", "--format", "{{.Id}}", "busybox"]);
    assert_eq!(again, id);
    // 4 MB through stdin and back through the multiplexed output of the same connection.
    let input: Vec<u8> = (0..4u32 << 20)
        .map(|i| b"0123456789abcdefghijklmnopqrstuvwxyz\n"[(i % 37) as usize])
        .collect();
    let o = t.berth(
        &tls,
        &["run", "--rm", "-i", "--network", "none", "busybox", "cat"],
        Some(&input),
    );
    assert!(o.status.success(), "{}\n{}", stderr(&o), t.d.log());
    assert!(
        o.stdout == input,
        "cat returned {} bytes of {}",
        o.stdout.len(),
        input.len()
    );
    // logs, follow until the container exits.
    t.berth_ok(&[
        "run",
        "-d",
        "--name",
        "berth-test-tls-logs",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "seq 1 100000; sleep 1; echo done",
    ]);
    let logs = t.berth_ok(&["logs", "-f", "berth-test-tls-logs"]);
    assert_eq!(logs.lines().count(), 100001);
    assert!(
        logs.ends_with("100000\ndone\n"),
        "{}",
        &logs[logs.len() - 20..]
    );
}

#[test]
fn docker_cli_works_over_tls() {
    require_tls!();
    let t = TlsDaemon::start(false);
    t.d.import_busybox();
    let tls = t.docker_good_tls();
    let tls: Vec<&str> = tls.iter().map(String::as_str).collect();
    let ok = |args: &[&str], stdin: Option<&[u8]>| {
        let o = t.docker(&tls, args, stdin);
        assert!(
            o.status.success(),
            "docker {args:?}: {}\n--- daemon log:\n{}",
            stderr(&o),
            t.d.log()
        );
        stdout(&o)
    };
    let v = ok(
        &[
            "version",
            "--format",
            "{{.Server.APIVersion}} {{.Server.Os}}",
        ],
        None,
    );
    assert_eq!(v.trim(), "1.47 linux");
    let out = ok(
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "echo",
            "hello",
        ],
        None,
    );
    assert_eq!(out, "hello\n");
    let out = ok(
        &[
            "run",
            "--rm",
            "-i",
            "--network",
            "none",
            "busybox",
            "tr",
            "a-z",
            "A-Z",
        ],
        Some(b"over tls\n"),
    );
    assert_eq!(out, "OVER TLS\n");
    let o = t.docker(
        &tls,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "exit 7",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    ok(
        &[
            "run",
            "-d",
            "--name",
            "berth-test-tls-docker",
            "--network",
            "none",
            "busybox",
            "sleep",
            "1000",
        ],
        None,
    );
    let ps = ok(&["ps", "--format", "{{.Names}} {{.Image}}"], None);
    assert_eq!(ps.trim(), "berth-test-tls-docker busybox");
    let st = ok(
        &[
            "inspect",
            "--format",
            "{{.State.Status}}",
            "berth-test-tls-docker",
        ],
        None,
    );
    assert_eq!(st.trim(), "running");
    ok(&["rm", "-f", "berth-test-tls-docker"], None);
    assert_eq!(t.d.container_count(), 0);
    // docker's environment variables instead of flags.
    let mut cmd = Command::new(common::docker_cli());
    t.clean_env(&mut cmd)
        .args(["version", "--format", "{{.Server.APIVersion}}"])
        .env("DOCKER_HOST", t.tcp_host())
        .env("DOCKER_TLS_VERIFY", "1")
        .env("DOCKER_CERT_PATH", &t.pki.dir);
    let o = run(&mut cmd, None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "1.47");
    assert_eq!(t.failed_handshakes(), 0, "{}", t.d.log());
}

const SDK_SCRIPT: &str = r#"
import sys, docker, docker.tls, requests
host, d = sys.argv[1], sys.argv[2]
good = docker.tls.TLSConfig(client_cert=(d + "/cert.pem", d + "/key.pem"), ca_cert=d + "/ca.pem", verify=True)
c = docker.DockerClient(base_url=host, tls=good, version="auto")
assert c.ping()
assert c.version()["ApiVersion"] == "1.47"
out = c.containers.run("busybox", ["echo", "from-sdk"], remove=True, network_mode="none")
assert out == b"from-sdk\n", out
ct = c.containers.run("busybox", ["sleep", "1000"], detach=True,
                      name="berth-test-tls-sdk", network_mode="none")
ct.reload()
assert ct.status == "running", ct.status
assert [x.name for x in c.containers.list()] == ["berth-test-tls-sdk"]
ct.kill()
assert ct.wait()["StatusCode"] == 137
ct.remove()
lg = c.containers.run("busybox", ["sh", "-c", "echo one; echo two >&2"], detach=True,
                      network_mode="none")
assert lg.wait()["StatusCode"] == 0
assert lg.logs(stderr=False) == b"one\n", lg.logs()
assert lg.logs(stdout=False) == b"two\n", lg.logs()
lg.remove()
assert c.containers.list(all=True) == []
print("good ok")

def refused(tls, what):
    try:
        docker.DockerClient(base_url=host, tls=tls, version="1.47").ping()
    except (requests.exceptions.SSLError, requests.exceptions.ConnectionError) as e:
        return
    raise SystemExit(what + ": the daemon answered")

refused(docker.tls.TLSConfig(ca_cert=d + "/ca.pem", verify=True), "no client certificate")
refused(docker.tls.TLSConfig(client_cert=(d + "/other-cert.pem", d + "/other-key.pem"),
                             ca_cert=d + "/ca.pem", verify=True), "client certificate of another CA")
refused(docker.tls.TLSConfig(client_cert=(d + "/cert.pem", d + "/key.pem"),
                             ca_cert=d + "/other-ca.pem", verify=True), "daemon not signed by the given CA")
print("refused ok")
"#;

#[test]
fn docker_py_works_over_tls_and_is_refused_without_a_good_certificate() {
    require_tls!();
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/pyvenv/bin/python");
    if !py.exists() {
        eprintln!(
            "skipped: {} missing (run scripts/install-deps.sh)",
            py.display()
        );
        return;
    }
    // This daemon takes its TLS settings and hosts from the config file.
    let t = TlsDaemon::start(true);
    t.d.import_busybox();
    let o = Command::new(&py)
        .arg("-c")
        .arg(SDK_SCRIPT)
        .arg(t.tcp_host())
        .arg(&t.pki.dir)
        // requests would verify berthd against these bundles instead of the test CA.
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("CURL_CA_BUNDLE")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "docker-py failed:\n{}\n{}\n--- daemon log\n{}",
        stdout(&o),
        stderr(&o),
        t.d.log()
    );
    assert_eq!(stdout(&o), "good ok\nrefused ok\n");
    // The first two refusals were berthd's (the third was the client's own check).
    wait_until("berthd to log both refused handshakes", || {
        t.failed_handshakes() >= 2
    });
}

#[test]
fn clients_without_a_certificate_from_the_ca_are_rejected_at_the_handshake() {
    require_tls!();
    let t = TlsDaemon::start(false);
    // With the image present, a request that got through would create a container.
    t.d.import_busybox();
    let (ca, cert, key) = (
        t.pki.path("ca.pem"),
        t.pki.path("cert.pem"),
        t.pki.path("key.pem"),
    );
    let (other_ca, other_cert, other_key) = (
        t.pki.path("other-ca.pem"),
        t.pki.path("other-cert.pem"),
        t.pki.path("other-key.pem"),
    );
    let create = [
        "create",
        "--name",
        "berth-test-tls-intruder",
        "busybox",
        "true",
    ];

    // No client certificate.
    let o = t.berth(&["--tlsverify", "--tlscacert", &ca], &create, None);
    assert!(!o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("the daemon requires a client certificate signed by its CA"),
        "{}",
        stderr(&o)
    );
    // A client certificate from another CA.
    let o = t.berth(
        &[
            "--tlsverify",
            "--tlscacert",
            &ca,
            "--tlscert",
            &other_cert,
            "--tlskey",
            &other_key,
        ],
        &create,
        None,
    );
    assert!(!o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("the daemon rejected the client certificate"),
        "{}",
        stderr(&o)
    );
    // berthd logs a refusal after the client has already seen the handshake fail.
    wait_until("berthd to log both refused handshakes", || {
        t.failed_handshakes() >= 2
    });
    let rejected = t.failed_handshakes();
    assert_eq!(
        rejected,
        2,
        "berthd logs each refused handshake: {}",
        t.d.log()
    );
    // The client refuses a daemon its CA did not sign (before sending anything).
    let o = t.berth(
        &[
            "--tlsverify",
            "--tlscacert",
            &other_ca,
            "--tlscert",
            &cert,
            "--tlskey",
            &key,
        ],
        &create,
        None,
    );
    assert!(!o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("not signed by the CA given with --tlscacert"),
        "{}",
        stderr(&o)
    );
    // Plain `--tls` still needs the client certificate.
    let o = t.berth(&["--tls"], &create, None);
    assert!(!o.status.success(), "{}", stderr(&o));
    // No TLS at all: the CLI refuses before connecting and says what to add.
    let o = t.berth(&[], &create, None);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("berthd serves tcp:// only over TLS with client certificates"),
        "{}",
        stderr(&o)
    );

    // The docker CLI: without a client certificate, and with one from another CA.
    let o = t.docker(
        &["--tlsverify", &format!("--tlscacert={ca}")],
        &create,
        None,
    );
    assert!(
        !o.status.success(),
        "docker without a client certificate got in"
    );
    assert!(
        stderr(&o).contains("tls: certificate required"),
        "{}",
        stderr(&o)
    );
    let o = t.docker(
        &[
            "--tlsverify",
            &format!("--tlscacert={ca}"),
            &format!("--tlscert={other_cert}"),
            &format!("--tlskey={other_key}"),
        ],
        &create,
        None,
    );
    assert!(
        !o.status.success(),
        "docker with another CA's certificate got in"
    );
    // (berthd names its CA in the certificate request, so Go sends no certificate at all
    // when its own is from another CA: "certificate required".)
    assert!(stderr(&o).contains("remote error: tls: "), "{}", stderr(&o));
    // Go's client (TLS 1.3) sends its request before it learns of the refusal; either way
    // berthd logged the failed handshakes and served nothing.
    wait_until("berthd to log docker's refused handshakes", || {
        t.failed_handshakes() >= rejected + 2
    });

    // Plain HTTP to the TLS port: no HTTP answer, the connection is closed.
    let mut s = TcpStream::connect(("127.0.0.1", t.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    assert!(
        !reply.starts_with(b"HTTP/"),
        "plain HTTP was answered: {:?}",
        String::from_utf8_lossy(&reply)
    );
    // docker's plain-HTTP client (tcp:// without TLS) fails too.
    let o = t.docker(&[], &["version", "--format", "{{.Server.Version}}"], None);
    assert!(!o.status.success(), "plain docker got a server version");

    // Nothing was created, and the good client still gets in.
    assert_eq!(t.d.container_count(), 0);
    let v = t.berth_ok(&["version", "--format", "{{.Server.APIVersion}}"]);
    assert_eq!(v.trim(), "1.47");
}

/// berthd with `args`, on a fresh berth-test data root; returns its exit status and output.
fn berthd_fails(dir: &Path, args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_berthd"))
        .arg("--data-root")
        .arg(dir.join("data"))
        .arg("--exec-root")
        .arg(dir.join("run"))
        .arg("--config-file")
        .arg(dir.join("daemon.json"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!o.status.success(), "berthd {args:?} started");
    assert!(
        !dir.join("run/berthd.pid").exists(),
        "berthd {args:?} wrote a pid file"
    );
    stderr(&o)
}

#[test]
fn berthd_refuses_tcp_without_client_verification() {
    require!();
    let dir = tempfile::Builder::new()
        .prefix("berth-test-tls")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::write(dir.path().join("daemon.json"), "{}").unwrap();
    let tcp = "tcp://127.0.0.1:0";

    let e = berthd_fails(dir.path(), &["-H", tcp]);
    assert!(
        e.contains(
            "tcp://127.0.0.1:0: berthd listens on TCP only with TLS client authentication: add --tlsverify --tlscacert"
        ),
        "{e}"
    );
    let e = berthd_fails(dir.path(), &["-H", tcp, "--tls"]);
    assert!(
        e.contains("(--tls without --tlsverify would let in any client)"),
        "{e}"
    );
    let e = berthd_fails(dir.path(), &["-H", tcp, "--tlsverify=false"]);
    assert!(e.contains("only with TLS client authentication"), "{e}");
    // --tlsverify without usable files: each is named with its flag.
    let missing = dir.path().join("nope.pem");
    let missing = missing.to_str().unwrap();
    let e = berthd_fails(
        dir.path(),
        &["-H", tcp, "--tlsverify", "--tlscacert", missing],
    );
    assert!(
        e.contains(&format!(
            "--tlscacert {missing}: cannot read the certificate"
        )),
        "{e}"
    );
    let pki = Pki::new(&dir.path().join("pki"));
    let e = berthd_fails(
        dir.path(),
        &[
            "-H",
            tcp,
            "--tlsverify",
            "--tlscacert",
            &pki.path("ca.pem"),
            "--tlscert",
            &pki.path("server-cert.pem"),
            "--tlskey",
            &pki.path("key.pem"),
        ],
    );
    assert!(e.contains("--tlscert") && e.contains("--tlskey"), "{e}");
    let e = berthd_fails(
        dir.path(),
        &[
            "-H",
            tcp,
            "--tlsverify",
            "--tlscacert",
            &pki.path("server-key.pem"),
        ],
    );
    assert!(
        e.contains("no CERTIFICATE block found"),
        "a key given as the CA: {e}"
    );
    // The same keys in the config file: "tls" alone is refused, a bad type is named.
    std::fs::write(
        dir.path().join("daemon.json"),
        format!(r#"{{"hosts": ["{tcp}"], "tls": true}}"#),
    )
    .unwrap();
    let e = berthd_fails(dir.path(), &[]);
    assert!(
        e.contains("would let in any client"),
        "config file tls without tlsverify: {e}"
    );
    std::fs::write(
        dir.path().join("daemon.json"),
        format!(r#"{{"hosts": ["{tcp}"], "tlsverify": "yes"}}"#),
    )
    .unwrap();
    let e = berthd_fails(dir.path(), &[]);
    assert!(e.contains("\"tlsverify\" must be true or false"), "{e}");
}
