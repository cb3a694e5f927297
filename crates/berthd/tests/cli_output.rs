//! The `berth` CLI's output next to the docker CLI's against the same private berthd: inspect's
//! key order, template errors, export's init-layer entries, and `run -i` when stdout is gone.

mod common;
use common::{Daemon, berth_bin, require_cli, stderr, stdout};

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// A daemon with `busybox:latest` and one running container `berth-test-out`.
fn daemon_with_container() -> Daemon {
    let d = Daemon::start();
    d.import_busybox();
    let o = d.berth(&[
        "run",
        "-d",
        "--name",
        "berth-test-out",
        "--network",
        "none",
        "-l",
        "k=v",
        "busybox",
        "sleep",
        "1000",
    ]);
    assert!(o.status.success(), "berth run -d: {}", stderr(&o));
    d
}

/// The object keys of a JSON text in the order they appear, with their nesting depth.
fn key_order(json: &str) -> Vec<(usize, String)> {
    let mut keys = Vec::new();
    let mut depth = 0usize;
    let b = json.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth -= 1,
            b'"' => {
                let start = i + 1;
                i += 1;
                while b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                let s = &json[start..i];
                let rest = json[i + 1..].trim_start();
                if rest.starts_with(':') {
                    keys.push((depth, s.to_string()));
                }
            }
            _ => {}
        }
        i += 1;
    }
    keys
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

#[test]
fn inspect_keeps_the_daemons_key_order_like_docker() {
    require_cli!();
    let d = daemon_with_container();
    for (what, path) in [
        ("berth-test-out", "/containers/berth-test-out/json"),
        ("busybox", "/images/busybox/json"),
    ] {
        let raw = d.request("GET", path, None).unwrap();
        assert_eq!(raw.status, 200);
        let raw = String::from_utf8(raw.body).unwrap();
        let b = d.berth(&["inspect", what]);
        assert!(b.status.success(), "berth inspect {what}: {}", stderr(&b));
        let docker = d.docker_ok(&["inspect", what]);
        // the daemon's keys, in its order, one level down (inside the array)
        let want: Vec<(usize, String)> = key_order(&raw)
            .into_iter()
            .map(|(depth, k)| (depth + 1, k))
            .collect();
        assert!(want.len() > 20, "{raw}");
        assert_eq!(key_order(&stdout(&b)), want, "berth inspect {what}");
        assert_eq!(
            stdout(&b).trim_end(),
            docker,
            "berth vs docker inspect {what}"
        );
        // formats over the raw object print what docker prints (`json` is a compact array)
        for f in [
            "{{json .Config.Labels}}",
            "json",
            "{{.Id}} {{index .RepoTags 0}}",
        ] {
            if f.contains("RepoTags") && what != "busybox" {
                continue;
            }
            let b = d.berth(&["inspect", "--format", f, what]);
            let dk = d.docker_ok(&["inspect", "--format", f, what]);
            assert_eq!(stdout(&b).trim_end(), dk, "inspect --format {f} {what}");
        }
    }
}

/// Runs the same arguments through berth and docker; returns (exit code, stdout, stderr) of
/// each.
fn both(d: &Daemon, args: &[&str]) -> [(i32, String, String); 2] {
    let b = d.berth(args);
    let k = d.docker(args);
    [
        (code(&b), stdout(&b), stderr(&b)),
        (code(&k), stdout(&k), stderr(&k)),
    ]
}

#[test]
fn bad_template_fields_fail_like_docker() {
    require_cli!();
    let d = daemon_with_container();
    let cases: &[(&[&str], i32, &str, &str)] = &[
        (
            &["ps", "--format", "{{.Bogus}}"],
            1,
            "",
            "failed to execute template: template: :1:2: executing \"\" at <.Bogus>: can't evaluate field Bogus in type *formatter.ContainerContext\n",
        ),
        // docker checks the whole format, `table` included, even when nothing matches
        (
            &[
                "ps",
                "-a",
                "--filter",
                "name=nothing",
                "--format",
                "table{{.Bogus}}",
            ],
            1,
            "",
            "failed to execute template: template: :1:7: executing \"\" at <.Bogus>: can't evaluate field Bogus in type *formatter.ContainerContext\n",
        ),
        (
            &["ps", "--format", "{{.ID"],
            1,
            "",
            "failed to parse template: template: :1: unclosed action\n",
        ),
        (
            &["ps", "--format", "{{.Names.Foo}}"],
            1,
            "",
            "failed to execute template: template: :1:8: executing \"\" at <.Names.Foo>: can't evaluate field Foo in type string\n",
        ),
        (
            &["ps", "--format", "{{.Label}}"],
            1,
            "",
            "failed to execute template: template: :1:2: executing \"\" at <.Label>: wrong number of args for Label: want 1 got 0\n",
        ),
        (
            &["images", "--format", "{{.ID}}{{.Bogus}}"],
            1,
            "",
            "template parsing error: template: :1:9: executing \"\" at <.Bogus>: can't evaluate field Bogus in type *formatter.imageContext\n",
        ),
        (
            &["history", "--format", "{{.Bogus}}", "busybox"],
            1,
            "",
            "template parsing error: template: :1:2: executing \"\" at <.Bogus>: can't evaluate field Bogus in type *image.historyContext\n",
        ),
        // inspect: every object is tried, an empty line when none rendered, exit 64 for a
        // template that does not parse
        (
            &[
                "inspect",
                "--format",
                "{{.State.Bogus}}",
                "berth-test-out",
                "berth-test-out",
            ],
            1,
            "\n",
            "template parsing error: template: :1:8: executing \"\" at <.State.Bogus>: map has no entry for key \"Bogus\"\ntemplate parsing error: template: :1:8: executing \"\" at <.State.Bogus>: map has no entry for key \"Bogus\"\n",
        ),
        (
            &[
                "inspect",
                "--format",
                "{{.Config.Cmd.Foo}}",
                "berth-test-out",
            ],
            1,
            "\n",
            "template parsing error: template: :1:9: executing \"\" at <.Config.Cmd.Foo>: can't evaluate field Foo in type interface {}\n",
        ),
        (
            &["inspect", "--format", "{{.ID", "berth-test-out"],
            64,
            "",
            "template parsing error: template: :1: unclosed action\n",
        ),
    ];
    // the other templated verbs: Go's type names, docker's prefixes and exit codes
    for args in [
        &["version", "--format", "{{.Bogus}}"][..],
        &["version", "--format", "{{.Server.Platform.Bogus}}"],
        &["version", "--format", "{{.ID"],
        &["info", "--format", "{{.Swarm.Bogus}}"],
        &["info", "--format", "{{.ID"],
        &["system", "df", "--format", "{{.Bogus}}"],
        &["system", "df", "-v", "--format", "{{.Bogus}}"],
        &[
            "events",
            "--since",
            "1",
            "--until",
            "2",
            "--format",
            "{{.Actor.Bogus}}",
        ],
        &[
            "events", "--since", "1", "--until", "2", "--format", "{{.ID",
        ],
        &[
            "events",
            "--since",
            "1",
            "--until",
            "2",
            "--format",
            "{{.Actor.Attributes.x}}",
        ],
    ] {
        let [b, k] = both(&d, args);
        // all fail but the last (a Go map: `<no value>`)
        assert_eq!(
            k.0 == 0,
            args.contains(&"{{.Actor.Attributes.x}}"),
            "{args:?}"
        );
        assert_eq!(b, k, "berth vs docker {args:?}");
    }
    for (args, want_code, want_out, want_err) in cases {
        let [b, k] = both(&d, args);
        assert_eq!(
            k,
            (*want_code, want_out.to_string(), want_err.to_string()),
            "docker {args:?}"
        );
        assert_eq!(b, k, "berth vs docker {args:?}");
    }
    // -q ignores the format with docker's warning, but still checks it
    let [b, k] = both(&d, &["ps", "-q", "--format", "{{.Bogus}}"]);
    assert_eq!(b, k);
    assert_eq!(b.0, 1);
    assert!(
        b.2.starts_with("WARNING: Ignoring custom format"),
        "{}",
        b.2
    );
}

#[test]
fn export_has_dockers_init_layer_entries() {
    require_cli!();
    let d = daemon_with_container();
    let listing = |cli: &str| -> Vec<String> {
        let o = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "set -o pipefail; {cli} export berth-test-out | tar --numeric-owner -tvf -"
            ))
            .env("BERTH_HOST", d.host())
            .env("DOCKER_HOST", d.host())
            .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{cli} export: {}", stderr(&o));
        stdout(&o).lines().map(str::to_string).collect()
    };
    let berth = listing(berth_bin().to_str().unwrap());
    // moby daemon/initlayer: dirs and empty files 0755 root:root, etc/mtab a symlink
    let want = [
        ("-rwxr-xr-x", ".dockerenv", ""),
        ("-rwxr-xr-x", "dev/console", ""),
        ("drwxr-xr-x", "dev/pts/", ""),
        ("drwxr-xr-x", "dev/shm/", ""),
        ("drwxr-xr-x", "proc/", ""),
        ("drwxr-xr-x", "sys/", ""),
        ("-rwxr-xr-x", "etc/hostname", ""),
        ("-rwxr-xr-x", "etc/hosts", ""),
        ("-rwxr-xr-x", "etc/resolv.conf", ""),
        ("lrwxrwxrwx", "etc/mtab", " -> /proc/mounts"),
    ];
    for (mode, path, link) in want {
        let line = berth
            .iter()
            .find(|l| l.ends_with(&format!(" {path}{link}")))
            .unwrap_or_else(|| panic!("no {path} in berth export:\n{}", berth.join("\n")));
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f[0], mode, "{line}");
        assert_eq!(f[1], "0/0", "{line}");
        if !mode.starts_with('l') {
            assert_eq!(f[2], "0", "{path} is empty: {line}");
        }
    }
    // the image's own files are still there, and the export is reproducible
    assert!(berth.iter().any(|l| l.ends_with(" bin/busybox")));
    assert!(berth.iter().any(|l| l.ends_with(" etc/passwd")));
    assert_eq!(listing(berth_bin().to_str().unwrap()), berth);
    assert_eq!(listing(common::docker_cli()), berth);
}

#[test]
fn run_i_with_a_closed_stdout_exits_like_docker() {
    require_cli!();
    let d = daemon_with_container();
    // stdin stays open (we hold it) and the container waits for more input: the CLI must
    // notice its stdout is gone, say so as docker does, and exit instead of waiting.
    for cli in [berth_bin().to_str().unwrap(), common::docker_cli()] {
        let mut c = Command::new("timeout")
            .args(["60", cli, "run", "-i", "--rm", "--network", "none"])
            .args(["busybox", "sh", "-c", "echo hi; cat"])
            .env("BERTH_HOST", d.host())
            .env("DOCKER_HOST", d.host())
            .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(c.stdout.take()); // a closed pipe: writes fail with EPIPE
        let mut sin = c.stdin.take().unwrap();
        sin.write_all(b"more\n").unwrap();
        let o = c.wait_with_output().unwrap();
        drop(sin);
        assert_ne!(code(&o), 124, "{cli} run -i hung after its stdout closed");
        assert_eq!(code(&o), 1, "{cli}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("write /dev/stdout: broken pipe"),
            "{cli}: {}",
            stderr(&o)
        );
    }
    // the --rm containers go away once the attach connection is gone
    common::wait_until("the run -i containers to be removed", || {
        d.container_count() == 1
    });
}

/// `berth` and `docker` print the same for the same request: `(code, stdout, stderr)` with
/// the program names swapped.
fn same_as_docker(d: &Daemon, args: &[&str]) {
    let [b, k] = both(d, args);
    let swap = |s: &str| {
        s.replace("docker: ", "berth: ")
            .replace("Usage:  docker ", "Usage:  berth ")
            .replace("'docker ", "'berth ")
    };
    let k = (k.0, swap(&k.1), swap(&k.2));
    assert_eq!(b, k, "berth vs docker {args:?}");
}

#[test]
fn verbs_print_what_docker_prints() {
    require_cli!();
    let d = daemon_with_container();
    let o = d.berth(&[
        "run",
        "--name",
        "berth-test-ex3",
        "busybox",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(code(&o), 3);
    let since = jiff::Timestamp::now().as_second() - 600;
    let until = jiff::Timestamp::now().as_second() + 1;
    // events at fixed bounds: RFC 3339 with 9 digits and `Z` (docker's RFC3339NanoFixed)
    let (since, until) = (since.to_string(), until.to_string());
    let ev = [
        "events",
        "--since",
        since.as_str(),
        "--until",
        until.as_str(),
    ];
    same_as_docker(&d, &ev);
    let out = stdout(&d.berth(&ev));
    assert!(out.lines().count() >= 4, "{out}");
    // df: docker's reclaimable formula (in-use images with unknown shared size count as
    // reclaimable), and -v without the summary and the containers' virtual size
    for args in [
        &["system", "df"][..],
        &[
            "system",
            "df",
            "-v",
            "--format",
            "{{range .Containers}}{{.Names}} {{.Size}};{{end}}",
        ],
        &[
            "system",
            "df",
            "-v",
            "--format",
            "{{range .Images}}{{.Digest}}|{{.Containers}};{{end}}",
        ],
    ] {
        same_as_docker(&d, args);
    }
    // daemon-side checks and the pull of a missing image name docker's normalized reference
    for args in [
        &["run", "--rm", "--name", "bad name", "busybox", "true"][..],
        &["create", "--name", "x", "busybox"],
        &["run", "--rm", "-v", "/tmp:/x:zz", "busybox", "true"],
        // flag errors: docker's layout (no prefix, the usage line, the hint), exit 125
        &["run", "--rm", "--memory", "abc", "busybox", "true"],
        &["run", "--rm", "--cpus", "-1", "busybox", "true"],
        &["run", "--rm", "--bogus", "busybox", "true"],
        &["ps", "--bogus"],
        &["ps", "-z"],
        &["container", "ls", "--bogus=1"],
        &["image", "inspect", "--bogus", "busybox"],
        &["run", "--rm", "--ulimit", "nofile=x", "busybox", "true"],
        &["run", "--rm", "--restart", "sometimes", "busybox", "true"],
        &["run", "--rm", "-p", "abc:80", "busybox", "true"],
        &["run", "--rm", "berth-test-nothere"],
        &["create", "berth-test-nothere:1"],
        &["rm", "berth-test-nothere"],
        &["wait", "berth-test-ex3"],
    ] {
        same_as_docker(&d, args);
    }
    assert_eq!(d.container_count(), 2, "nothing created by the failures");
    // sizes asked for when `{{json .}}` reads them; history's RFC 3339 times
    for args in [
        &["ps", "-a", "--format", "{{.Size}}"][..],
        &["history", "--format", "{{.CreatedAt}} {{.ID}}", "busybox"],
    ] {
        same_as_docker(&d, args);
    }
    let size_of = |cli_out: &str| -> String {
        let v: serde_json::Value = serde_json::from_str(cli_out.lines().next().unwrap()).unwrap();
        v["Size"].as_str().unwrap().to_string()
    };
    let args = ["ps", "-l", "--format", "{{json .}}"];
    let [b, k] = both(&d, &args);
    assert_eq!(size_of(&b.1), size_of(&k.1));
    assert!(size_of(&b.1).contains("virtual"), "{}", b.1);
    // version: the server part is docker's template; info: all but the client's version
    let server_part = |s: &str| s[s.find("Server:").unwrap()..].to_string();
    let [b, k] = both(&d, &["version"]);
    assert_eq!(server_part(&b.1), server_part(&k.1));
    let [b, k] = both(&d, &["info"]);
    let skip = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| !l.starts_with(" Version:") && !l.starts_with(" Runtimes:"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(skip(&b.1), skip(&k.1));
    assert!(b.1.ends_with("\n\n"), "info ends with an empty line");
    // a closed stdout ends both CLIs by SIGPIPE, silently
    for cli in [berth_bin().to_str().unwrap(), common::docker_cli()] {
        let mut c = Command::new(cli)
            .args(["inspect", "berth-test-out"])
            .env("BERTH_HOST", d.host())
            .env("DOCKER_HOST", d.host())
            .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(c.stdout.take());
        let o = c.wait_with_output().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            o.status.signal(),
            Some(13),
            "{cli}: {:?} {}",
            o.status,
            stderr(&o)
        );
        assert_eq!(stderr(&o), "", "{cli}");
    }
}
