//! Other OCI runtimes selected per container (`--runtime`) through the runc CLI contract:
//! crun (runc is covered in berth_cli.rs). Debian 12's crun 1.8 refuses hybrid cgroup hosts
//! like this one, so berthd runs in a private mount namespace without the hybrid cgroup2
//! mount (what a v1-only host looks like).

mod common;
use common::{Daemon, require, stderr, stdout};

fn crun_installed() -> bool {
    ["/usr/bin/crun", "/usr/sbin/crun", "/usr/local/bin/crun"]
        .iter()
        .any(|p| std::path::Path::new(p).exists())
}

#[test]
fn crun_runs_containers_with_dockers_defaults() {
    require!();
    if !crun_installed() {
        eprintln!("skipped: crun is not installed (scripts/install-deps.sh installs it)");
        return;
    }
    let d = Daemon::start_without_unified_cgroup2();
    d.import_busybox();
    // Output, exit code, and Docker's default security (14 capabilities, seccomp filter).
    let o = d.docker(&[
        "run",
        "--rm",
        "--runtime",
        "crun",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo via-crun; grep -E '^(CapEff|Seccomp):' /proc/self/status; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}\n{}", stderr(&o), d.log());
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().map(|l| l.trim()).collect();
    assert_eq!(lines[0], "via-crun", "{out}");
    assert!(
        lines.contains(&"CapEff:\t00000000a80425fb") || out.contains("00000000a80425fb"),
        "{out}"
    );
    assert!(out.contains("Seccomp:\t2"), "{out}");
    // A detached container: running, then stopped (sleep as pid 1 ignores SIGTERM, so the
    // stop ends in SIGKILL: 137) and removed.
    let id = d.docker_ok(&[
        "run",
        "-d",
        "--runtime",
        "crun",
        "--network",
        "none",
        "busybox",
        "sleep",
        "1000",
    ]);
    assert_eq!(
        d.docker_ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.Runtime}} {{.State.Running}}",
            &id
        ]),
        "crun true"
    );
    d.docker_ok(&["stop", "-t", "1", &id]);
    assert_eq!(
        d.docker_ok(&["inspect", "-f", "{{.State.ExitCode}}", &id]),
        "137"
    );
    d.docker_ok(&["rm", &id]);
    assert_eq!(d.docker_ok(&["ps", "-aq"]), "");
}
