//! The runtime conformance suite: real containers, observed from inside with the probe.
//! Every `conformance!` test runs against berth-runtime and against runc (the oracle);
//! `berth_only!` tests cover what runc cannot do and say why.

mod common;
use common::*;

conformance!(runs_the_process_as_pid_1_with_its_environment, |rt| {
    let mut b = Bundle::new();
    b.set("/process/env/2", json!("BERTH_TEST=yes"));
    let (_, r) = run_probe(rt, &b, "basic");
    assert_eq!(r["pid"], 1);
    assert_eq!(r["hostname"], "berth-test");
    assert_eq!(r["cwd"], "/");
    assert_eq!(r["uid"], 0);
    let env: Vec<&str> = r["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(env.contains(&"BERTH_TEST=yes"), "{env:?}");
    assert!(env.iter().any(|e| e.starts_with("PATH=")), "{env:?}");
    assert_eq!(r["args"], json!(["/probe"]));
});

conformance!(exit_code_of_the_process_is_returned, |rt| {
    let mut b = Bundle::new();
    b.args(&["/probe", "--quiet", "--exit", "3"]);
    let id = unique_id("exit");
    let _g = ContainerGuard::new(rt, &id);
    let out = rt.run(&b, &id);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_nothing_left(rt, &id);
});

conformance!(new_namespaces_differ_from_the_host, |rt| {
    let b = Bundle::new();
    let (_, r) = run_probe(rt, &b, "ns");
    for kind in ["pid", "net", "ipc", "uts", "mnt"] {
        assert_ne!(
            r["namespaces"][kind],
            host_ns(kind),
            "{kind} namespace is the host's"
        );
    }
    for kind in ["user", "cgroup"] {
        assert_eq!(
            r["namespaces"][kind],
            host_ns(kind),
            "{kind} namespace should be shared"
        );
    }
});

/// A network namespace created for the test (`ip netns add`), removed on drop.
struct NetNs(String);
impl NetNs {
    fn new() -> NetNs {
        let name = unique_id("netns");
        let st = std::process::Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap();
        assert!(st.success(), "ip netns add");
        NetNs(name)
    }
    fn path(&self) -> String {
        format!("/run/netns/{}", self.0)
    }
}
impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.0])
            .status();
    }
}

conformance!(joins_a_namespace_by_path, |rt| {
    let ns = NetNs::new();
    let mut b = Bundle::new();
    b.set(
        "/linux/namespaces/1",
        json!({"type": "network", "path": ns.path()}),
    );
    let (_, r) = run_probe(rt, &b, "joinns");
    use std::os::unix::fs::MetadataExt;
    let want = format!("net:[{}]", std::fs::metadata(ns.path()).unwrap().ino());
    assert_eq!(r["namespaces"]["net"], want.as_str());
    assert_ne!(r["namespaces"]["pid"], host_ns("pid"));
});

conformance!(user_namespace_with_mappings, |rt| {
    let mut b = Bundle::new();
    let ns = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    ns.push(json!({"type": "user"}));
    b.set(
        "/linux/uidMappings",
        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
    );
    b.set(
        "/linux/gidMappings",
        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
    );
    // sysfs cannot be mounted without owning the network namespace's user namespace... we do.
    let (_, r) = run_probe(rt, &b, "userns");
    assert_eq!(r["uid"], 0);
    let map = r["uid_map"].as_str().unwrap();
    assert_eq!(
        map.split_whitespace().collect::<Vec<_>>(),
        ["0", "100000", "65536"]
    );
    assert_ne!(r["namespaces"]["user"], host_ns("user"));
});

conformance!(readonly_root_refuses_writes, |rt| {
    let mut b = Bundle::new();
    b.set("/root/readonly", json!(true));
    b.args(&[
        "/probe",
        "--try-create",
        "/newfile",
        "--try-create",
        "/tmp/x",
        "--try-create",
        "/dev/shm/x",
    ]);
    let (_, r) = run_probe(rt, &b, "rootro");
    assert_eq!(
        errno(&r, "try-create", "/newfile"),
        Some(30),
        "EROFS expected"
    );
    assert_eq!(errno(&r, "try-create", "/tmp/x"), Some(30));
    // Mounts below keep their own flags.
    assert_eq!(errno(&r, "try-create", "/dev/shm/x"), None);
});

conformance!(mounts_with_options_in_order, |rt| {
    let data = temp_dir("mountsrc");
    std::fs::write(data.path().join("file"), "hello").unwrap();
    let mut b = Bundle::new();
    b.mount(
        json!({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "nodev", "noexec", "size=1m", "mode=700"]}),
    );
    b.mount(
        json!({"destination": "/mnt/data", "type": "bind", "source": data.path(),
        "options": ["rbind", "ro", "rprivate"]}),
    );
    b.mount(json!({"destination": "/etc/hostfile", "type": "bind",
        "source": data.path().join("file"), "options": ["bind", "ro"]}));
    b.args(&[
        "/probe",
        "--read",
        "/mnt/data/file",
        "--try-create",
        "/mnt/data/new",
        "--try-create",
        "/mnt/new",
        "--read",
        "/etc/hostfile",
        "--stat",
        "/mnt",
    ]);
    let (_, r) = run_probe(rt, &b, "mounts");
    let m = mount_at(&r, "/mnt").expect("tmpfs at /mnt");
    assert_eq!(m["fstype"], "tmpfs");
    let opts = m["options"].as_str().unwrap();
    for o in ["nosuid", "nodev", "noexec"] {
        assert!(opts.split(',').any(|x| x == o), "{o} missing in {opts}");
    }
    let sopts = m["super_options"].as_str().unwrap();
    assert!(
        sopts.contains("size=1024k") && sopts.contains("mode=700"),
        "{sopts}"
    );
    assert_eq!(r["stats"]["/mnt"]["mode"], 0o700);
    assert_eq!(r["files"]["/mnt/data/file"], "hello");
    assert_eq!(errno(&r, "try-create", "/mnt/data/new"), Some(30));
    assert_eq!(errno(&r, "try-create", "/mnt/new"), None);
    assert_eq!(r["files"]["/etc/hostfile"], "hello");
    let d = mount_at(&r, "/mnt/data").expect("bind at /mnt/data");
    assert!(d["options"].as_str().unwrap().starts_with("ro"), "{d}");
    assert!(
        !d["propagation"].as_str().unwrap().contains("shared"),
        "{d}"
    );
    assert!(!data.path().join("new").exists());
});

conformance!(mount_targets_cannot_escape_through_symlinks, |rt| {
    let b = Bundle::new();
    let escape = temp_dir("escape-target");
    let target = escape.path().join("created-by-mount");
    // An image symlink pointing outside the rootfs (absolute and with ..).
    std::os::unix::fs::symlink(escape.path(), b.rootfs().join("abs")).unwrap();
    std::os::unix::fs::symlink(
        "../../../../../../..".to_string() + escape.path().to_str().unwrap(),
        b.rootfs().join("rel"),
    )
    .unwrap();
    let mut b = b;
    b.mount(json!({"destination": "/abs/created-by-mount", "type": "tmpfs", "source": "tmpfs"}));
    b.mount(json!({"destination": "/rel/created-by-mount/x", "type": "tmpfs", "source": "tmpfs"}));
    let (_, r) = run_probe(rt, &b, "symlink");
    assert!(
        !target.exists(),
        "{}: a mount target was created outside the rootfs",
        rt.name()
    );
    let inside = b
        .rootfs()
        .join(escape.path().strip_prefix("/").unwrap())
        .join("created-by-mount");
    assert!(
        inside.exists(),
        "the target should be created inside the rootfs: {}",
        inside.display()
    );
    let resolved = format!("{}/created-by-mount", escape.path().display());
    assert!(
        mount_at(&r, &resolved).is_some(),
        "tmpfs should be at {resolved} inside"
    );
});

conformance!(default_devices_and_dev_links, |rt| {
    let mut b = Bundle::new();
    b.args(&[
        "/probe",
        "--stat",
        "/dev/null",
        "--stat",
        "/dev/zero",
        "--stat",
        "/dev/full",
        "--stat",
        "/dev/random",
        "--stat",
        "/dev/urandom",
        "--stat",
        "/dev/tty",
        "--readlink",
        "/dev/ptmx",
        "--readlink",
        "/dev/fd",
        "--readlink",
        "/dev/stdin",
        "--readlink",
        "/dev/stdout",
        "--readlink",
        "/dev/stderr",
        "--try-write",
        "/dev/null",
    ]);
    let (_, r) = run_probe(rt, &b, "devices");
    for (dev, major, minor) in [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ] {
        let s = &r["stats"][dev];
        assert_eq!(s["type"], "char", "{dev}: {s}");
        assert_eq!(
            (s["major"].as_u64(), s["minor"].as_u64()),
            (Some(major), Some(minor)),
            "{dev}"
        );
        assert_eq!(s["mode"], 0o666, "{dev}");
    }
    assert_eq!(r["links"]["/dev/ptmx"], "pts/ptmx");
    let pts = mount_at(&r, "/dev/pts").expect("devpts");
    assert_eq!(pts["fstype"], "devpts");
    assert!(
        pts["super_options"]
            .as_str()
            .unwrap()
            .contains("ptmxmode=666"),
        "{pts}"
    );
    assert_eq!(
        mount_at(&r, "/dev/mqueue").expect("mqueue")["fstype"],
        "mqueue"
    );
    assert_eq!(r["links"]["/dev/fd"], "/proc/self/fd");
    assert_eq!(r["links"]["/dev/stdin"], "/proc/self/fd/0");
    assert_eq!(r["links"]["/dev/stderr"], "/proc/self/fd/2");
    assert_eq!(errno(&r, "try-write", "/dev/null"), None);
});

conformance!(linux_devices_and_device_cgroup_rules, |rt| {
    let mut b = Bundle::new();
    b.set("/linux/devices", json!([
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o640, "uid": 0, "gid": 0},
        {"path": "/dev/berth-denied", "type": "c", "major": 1, "minor": 11, "fileMode": 0o666}
    ]));
    b.set(
        "/linux/resources/devices/1",
        json!({"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rwm"}),
    );
    b.args(&[
        "/probe",
        "--stat",
        "/dev/fuse",
        "--try-write",
        "/dev/fuse",
        "--try-write",
        "/dev/berth-denied",
    ]);
    let (_, r) = run_probe(rt, &b, "devcg");
    assert_eq!(r["stats"]["/dev/fuse"]["type"], "char");
    assert_eq!(r["stats"]["/dev/fuse"]["minor"], 229);
    assert_eq!(r["stats"]["/dev/fuse"]["mode"], 0o640);
    // /dev/fuse is allowed by a rule (opening it may still fail for other reasons, but not EPERM).
    assert_ne!(errno(&r, "try-write", "/dev/fuse"), Some(1));
    // 1:11 (/dev/kmsg) has no allow rule: the device cgroup refuses it.
    assert_eq!(errno(&r, "try-write", "/dev/berth-denied"), Some(1));
});

conformance!(masked_and_readonly_paths, |rt| {
    let mut b = Bundle::new();
    // /proc/kcore does not exist on every kernel; /proc/keys and /proc/timer_list do here.
    b.set("/linux/maskedPaths/10", json!("/proc/keys"));
    b.args(&[
        "/probe",
        "--read",
        "/proc/keys",
        "--stat",
        "/proc/keys",
        "--ls",
        "/proc/acpi",
        "--try-write",
        "/proc/sys/kernel/hostname",
        "--try-write",
        "/proc/sysrq-trigger",
    ]);
    let (_, r) = run_probe(rt, &b, "masked");
    if Path::new("/proc/keys").exists() {
        assert_eq!(
            r["stats"]["/proc/keys"]["type"], "char",
            "masked by /dev/null: {}",
            r["stats"]
        );
        assert_eq!(r["files"]["/proc/keys"], "");
    }
    if Path::new("/proc/acpi").exists() {
        assert_eq!(r["dirs"]["/proc/acpi"], json!([]));
        assert_eq!(mount_at(&r, "/proc/acpi").unwrap()["fstype"], "tmpfs");
    }
    assert_eq!(
        errno(&r, "try-write", "/proc/sys/kernel/hostname"),
        Some(30)
    );
    if Path::new("/proc/sysrq-trigger").exists() {
        assert_eq!(errno(&r, "try-write", "/proc/sysrq-trigger"), Some(30));
    }
});

conformance!(hostname_and_domainname, |rt| {
    let mut b = Bundle::new();
    b.set("/hostname", json!("berth-host"));
    b.set("/domainname", json!("example.org"));
    let (_, r) = run_probe(rt, &b, "uts");
    assert_eq!(r["hostname"], "berth-host");
    // runc 1.1 predates the domainname field (runtime-spec 1.1).
    if matches!(rt, Runtime::Berth(_)) {
        assert_eq!(r["domainname"], "example.org");
    }
});

conformance!(namespaced_sysctls_are_set, |rt| {
    let mut b = Bundle::new();
    b.set(
        "/linux/sysctl",
        json!({"net.ipv4.ip_forward": "1", "kernel.shmmax": "4096",
                                  "net.ipv4.ping_group_range": "0 0"}),
    );
    b.args(&[
        "/probe",
        "--sysctl",
        "net.ipv4.ip_forward",
        "--sysctl",
        "kernel.shmmax",
        "--sysctl",
        "net.ipv4.ping_group_range",
    ]);
    let (_, r) = run_probe(rt, &b, "sysctl");
    assert_eq!(r["sysctls"]["net.ipv4.ip_forward"], "1\n");
    assert_eq!(r["sysctls"]["kernel.shmmax"], "4096\n");
    assert_eq!(r["sysctls"]["net.ipv4.ping_group_range"], "0\t0\n");
});

conformance!(host_sysctls_are_refused, |rt| {
    let mut b = Bundle::new();
    b.set("/linux/sysctl", json!({"vm.swappiness": "10"}));
    let err = run_fails(rt, &b, "sysctlbad");
    if matches!(rt, Runtime::Berth(_)) {
        assert!(err.contains("linux.sysctl.vm.swappiness"), "{err}");
        assert!(err.contains("not in a separate kernel namespace"), "{err}");
    }
});

conformance!(user_groups_umask_and_cwd, |rt| {
    let mut b = Bundle::new();
    std::fs::create_dir_all(b.rootfs().join("work")).unwrap();
    b.set(
        "/process/user",
        json!({"uid": 1000, "gid": 1000, "additionalGids": [5, 6], "umask": 23}),
    );
    b.set("/process/cwd", json!("/work"));
    let (_, r) = run_probe(rt, &b, "user");
    assert_eq!(
        (r["uid"].as_u64(), r["euid"].as_u64()),
        (Some(1000), Some(1000))
    );
    assert_eq!(
        (r["gid"].as_u64(), r["egid"].as_u64()),
        (Some(1000), Some(1000))
    );
    assert_eq!(r["groups"], json!([5, 6]));
    assert_eq!(r["umask"], 23);
    assert_eq!(r["cwd"], "/work");
    // HOME from /etc/passwd when the config does not set it.
    let env: Vec<&str> = r["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(env.contains(&"HOME=/home/user"), "{env:?}");
});

conformance!(rlimits_are_applied, |rt| {
    let mut b = Bundle::new();
    b.set(
        "/process/rlimits",
        json!([{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024},
                                     {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}]),
    );
    let (_, r) = run_probe(rt, &b, "rlimit");
    assert_eq!(r["rlimits"]["RLIMIT_NOFILE"], json!([512, 1024]));
    assert_eq!(r["rlimits"]["RLIMIT_CORE"], json!([0, 0]));
});

conformance!(rlimit_above_the_host_hard_limit_fails_clearly, |rt| {
    let host = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum;
    let have_sys_resource = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .is_some_and(|m| m & (1 << 24) != 0);
    let Some(host) = host.filter(|_| !have_sys_resource) else {
        eprintln!("skipped: this host lets the runtime raise RLIMIT_NOFILE");
        return;
    };
    let mut b = Bundle::new();
    b.set(
        "/process/rlimits",
        json!([{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": host + 1000}]),
    );
    let err = run_fails(rt, &b, "rlimitbad");
    if matches!(rt, Runtime::Berth(_)) {
        assert!(
            err.contains("process.rlimits[0]") && err.contains("above the host's hard limit"),
            "{err}"
        );
    }
});

conformance!(all_five_capability_sets, |rt| {
    let mut b = Bundle::new();
    b.set(
        "/process/capabilities",
        json!({
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
        "permitted": ["CAP_CHOWN", "CAP_KILL"],
        "effective": ["CAP_KILL"],
        "inheritable": ["CAP_KILL"],
        "ambient": ["CAP_KILL"]}),
    );
    b.set("/process/user", json!({"uid": 1000, "gid": 1000}));
    let (_, r) = run_probe(rt, &b, "caps");
    let c = &r["caps"];
    assert_eq!(
        c["bounding"],
        json!(["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"])
    );
    // A non-root process that execs keeps only ambient capabilities as permitted/effective.
    assert_eq!(c["permitted"], json!(["CAP_KILL"]));
    assert_eq!(c["effective"], json!(["CAP_KILL"]));
    assert_eq!(c["inheritable"], json!(["CAP_KILL"]));
    assert_eq!(c["ambient"], json!(["CAP_KILL"]));
});

conformance!(root_capabilities_without_ambient, |rt| {
    let mut b = Bundle::new();
    b.set(
        "/process/capabilities",
        json!({
        "bounding": ["CAP_CHOWN", "CAP_SYS_ADMIN"], "permitted": ["CAP_CHOWN", "CAP_SYS_ADMIN"],
        "effective": ["CAP_CHOWN"]}),
    );
    b.set("/process/noNewPrivileges", json!(false));
    let (_, r) = run_probe(rt, &b, "rootcaps");
    let c = &r["caps"];
    assert_eq!(c["bounding"], json!(["CAP_CHOWN", "CAP_SYS_ADMIN"]));
    assert_eq!(c["permitted"], json!(["CAP_CHOWN", "CAP_SYS_ADMIN"]));
    assert_eq!(c["ambient"], json!([]));
    assert_eq!(r["no_new_privs"], false);
});

conformance!(no_new_privileges_and_oom_score_adj, |rt| {
    let mut b = Bundle::new();
    b.set("/process/noNewPrivileges", json!(true));
    b.set("/process/oomScoreAdj", json!(500));
    let (_, r) = run_probe(rt, &b, "nnp");
    assert_eq!(r["no_new_privs"], true);
    assert_eq!(r["oom_score_adj"], 500);
});

conformance!(seccomp_rules_with_errno_and_args, |rt| {
    let mut b = Bundle::new();
    b.set(
        "/linux/seccomp",
        json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["sethostname"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 1, "value": 4, "op": "SCMP_CMP_EQ"}]}
        ]}),
    );
    b.set("/process/capabilities/bounding/3", json!("CAP_SYS_ADMIN"));
    b.set("/process/capabilities/effective/3", json!("CAP_SYS_ADMIN"));
    b.set("/process/capabilities/permitted/3", json!("CAP_SYS_ADMIN"));
    b.args(&[
        "/probe",
        "--try-mkdir",
        "/tmp/d",
        "--try-syscall",
        "sethostname:four",
        "--try-syscall",
        "sethostname:fives",
    ]);
    let (_, r) = run_probe(rt, &b, "seccomp");
    assert_eq!(r["seccomp"]["mode"], 2);
    assert_eq!(errno(&r, "try-mkdir", "/tmp/d"), Some(13));
    // Only the 4-byte name matches the argument rule (default errno: EPERM).
    assert_eq!(errno(&r, "try-syscall", "sethostname:four"), Some(1));
    assert_eq!(errno(&r, "try-syscall", "sethostname:fives"), None);
});

conformance!(docker_default_seccomp_profile_loads, |rt| {
    use berth_oci::seccomp_profile::{DEFAULT_PROFILE, DockerProfile, ProfileTarget};
    let mut b = Bundle::new();
    let caps: Vec<String> = b.config["process"]["capabilities"]["bounding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    let oci = DockerProfile::parse(DEFAULT_PROFILE.as_bytes())
        .unwrap()
        .to_oci(&ProfileTarget::host(&caps))
        .unwrap();
    b.set("/linux/seccomp", serde_json::to_value(&oci).unwrap());
    b.args(&[
        "/probe",
        "--try-syscall",
        "unshare-uts",
        "--try-syscall",
        "uname",
        "--try-mkdir",
        "/tmp/ok",
    ]);
    let (_, r) = run_probe(rt, &b, "dockerseccomp");
    assert_eq!(r["seccomp"]["mode"], 2);
    assert_eq!(errno(&r, "try-syscall", "unshare-uts"), Some(1));
    assert_eq!(errno(&r, "try-syscall", "uname"), None);
    assert_eq!(errno(&r, "try-mkdir", "/tmp/ok"), None);
});

conformance!(create_start_state_delete, |rt| {
    let mut b = Bundle::new();
    b.args(&["/probe"]);
    let id = unique_id("lifecycle");
    let _g = ContainerGuard::new(rt, &id);
    let out = rt.create(&b, &id);
    assert!(out.status.success(), "{}", stderr(&out));
    let s = rt.state(&id).expect("state after create");
    assert_eq!(s["status"], "created");
    assert_eq!(s["id"], id.as_str());
    assert!(s["pid"].as_i64().unwrap() > 0);
    assert_eq!(
        s["bundle"],
        path_str(&std::fs::canonicalize(b.path()).unwrap())
    );
    assert!(s["ociVersion"].is_string());
    // The process has not run yet.
    let output = b.path().join("container-output");
    assert_eq!(std::fs::read_to_string(&output).unwrap(), "");
    let st = rt.exec(&["start", &id]);
    assert!(st.status.success(), "{}", stderr(&st));
    wait_status(rt, &id, "stopped");
    let text = std::fs::read_to_string(&output).unwrap();
    let r: Value = serde_json::from_str(text.lines().next().expect("probe output")).unwrap();
    assert_eq!(r["pid"], 1);
    let again = rt.exec(&["start", &id]);
    assert!(
        !again.status.success(),
        "starting a stopped container must fail"
    );
    let d = rt.exec(&["delete", &id]);
    assert!(d.status.success(), "{}", stderr(&d));
    assert_nothing_left(rt, &id);
    let gone = rt.exec(&["state", &id]);
    assert!(!gone.status.success());
    assert!(
        stderr(&gone).contains("does not exist"),
        "{}",
        stderr(&gone)
    );
});

conformance!(kill_delivers_signals_and_delete_needs_force, |rt| {
    let mut b = Bundle::new();
    b.args(&["/probe", "--wait-signal"]);
    let id = unique_id("kill");
    let _g = ContainerGuard::new(rt, &id);
    assert!(rt.create(&b, &id).status.success());
    assert!(rt.exec(&["start", &id]).status.success());
    wait_status(rt, &id, "running");
    // The report is printed once the probe blocks signals (as PID 1 it would drop them).
    let output = b.path().join("container-output");
    for _ in 0..1000 {
        if std::fs::read_to_string(&output).is_ok_and(|t| t.contains('\n')) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let d = rt.exec(&["delete", &id]);
    assert!(
        !d.status.success(),
        "deleting a running container needs --force"
    );
    let k = rt.exec(&["kill", &id, "USR1"]);
    assert!(k.status.success(), "{}", stderr(&k));
    wait_status(rt, &id, "stopped");
    let text = std::fs::read_to_string(b.path().join("container-output")).unwrap();
    assert!(text.contains(r#"{"signal":10}"#), "{text}");
    let k = rt.exec(&["kill", &id, "KILL"]);
    assert!(!k.status.success(), "killing a stopped container must fail");
    if matches!(rt, Runtime::Berth(_)) {
        assert!(
            stderr(&k).contains("container not running"),
            "{}",
            stderr(&k)
        );
    }
    assert!(rt.exec(&["delete", &id]).status.success());
    assert_nothing_left(rt, &id);
});

conformance!(delete_force_kills_everything, |rt| {
    let mut b = Bundle::new();
    b.args(&["/bin/sh", "-c", "sleep 1000 & sleep 1000"]);
    let id = unique_id("force");
    let _g = ContainerGuard::new(rt, &id);
    assert!(rt.create(&b, &id).status.success());
    assert!(rt.exec(&["start", &id]).status.success());
    let s = wait_status(rt, &id, "running");
    let pid = s["pid"].as_i64().unwrap();
    let d = rt.exec(&["delete", "--force", &id]);
    assert!(d.status.success(), "{}", stderr(&d));
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap()
                .contains(") Z")
    );
    assert_nothing_left(rt, &id);
});

conformance!(exec_joins_the_container, |rt| {
    let mut b = Bundle::new();
    b.args(&["/probe", "--quiet", "--wait-file", "/tmp/stop"]);
    let id = unique_id("exec");
    let _g = ContainerGuard::new(rt, &id);
    assert!(rt.create(&b, &id).status.success());
    assert!(rt.exec(&["start", &id]).status.success());
    wait_status(rt, &id, "running");
    let o = rt.exec(&[
        "exec",
        "--cwd",
        "/tmp",
        "--env",
        "EXTRA=1",
        "--user",
        "1000:1000",
        &id,
        "/probe",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = report(&o);
    assert_ne!(r["pid"], 1);
    assert_eq!(r["cwd"], "/tmp");
    assert_eq!(r["uid"], 1000);
    assert_eq!(r["hostname"], "berth-test");
    assert_ne!(r["namespaces"]["pid"], host_ns("pid"));
    let env: Vec<&str> = r["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(env.contains(&"EXTRA=1"), "{env:?}");
    // exit codes come back
    let o = rt.exec(&["exec", &id, "/probe", "--quiet", "--exit", "7"]);
    assert_eq!(o.status.code(), Some(7));
    // ps lists the init
    let ps = rt.exec(&["ps", "--format", "json", &id]);
    let pids: Vec<i64> = serde_json::from_slice(&ps.stdout).unwrap();
    let init = rt.state(&id).unwrap()["pid"].as_i64().unwrap();
    assert!(pids.contains(&init), "{pids:?} lacks {init}");
    // a process file
    let pf = b.path().join("process.json");
    std::fs::write(
        &pf,
        json!({"args": ["/probe", "--write", "/tmp/marker", "x", "--read", "/tmp/marker"], "cwd": "/",
        "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"]})
        .to_string(),
    )
    .unwrap();
    let o = rt.exec(&["exec", "--process", path_str(&pf), &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(report(&o)["files"]["/tmp/marker"], "x");
    assert!(rt.exec(&["kill", &id, "KILL"]).status.success());
    wait_status(rt, &id, "stopped");
});

conformance!(exec_with_a_missing_program_fails_clearly, |rt| {
    let mut b = Bundle::new();
    b.args(&["/probe", "--quiet", "--sleep", "30"]);
    let id = unique_id("execmissing");
    let _g = ContainerGuard::new(rt, &id);
    assert!(rt.create(&b, &id).status.success());
    assert!(rt.exec(&["start", &id]).status.success());
    let o = rt.exec(&["exec", &id, "no-such-program"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("executable file not found"),
        "{}",
        stderr(&o)
    );
});

conformance!(pause_and_resume, |rt| {
    let mut b = Bundle::new();
    b.args(&["/probe", "--quiet", "--sleep", "30"]);
    let id = unique_id("pause");
    let _g = ContainerGuard::new(rt, &id);
    assert!(rt.create(&b, &id).status.success());
    assert!(rt.exec(&["start", &id]).status.success());
    wait_status(rt, &id, "running");
    let p = rt.exec(&["pause", &id]);
    assert!(p.status.success(), "{}", stderr(&p));
    assert_eq!(rt.state(&id).unwrap()["status"], "paused");
    let p = rt.exec(&["resume", &id]);
    assert!(p.status.success(), "{}", stderr(&p));
    assert_eq!(rt.state(&id).unwrap()["status"], "running");
    let e = rt.exec(&["events", "--stats", &id]);
    assert!(e.status.success(), "{}", stderr(&e));
    let ev: Value = serde_json::from_slice(&e.stdout).unwrap();
    assert_eq!(ev["type"], "stats");
    assert!(ev["data"]["memory"].is_object(), "{ev}");
    let l = rt.exec(&["list", "--format", "json"]);
    let list: Value = serde_json::from_slice(&l.stdout).unwrap();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == id.as_str())
    );
});

conformance!(update_changes_limits, |rt| {
    let mut b = Bundle::new();
    b.args(&["/probe", "--quiet", "--sleep", "30"]);
    let id = unique_id("update");
    let _g = ContainerGuard::new(rt, &id);
    assert!(rt.create(&b, &id).status.success());
    let res = b.path().join("res.json");
    std::fs::write(
        &res,
        json!({"pids": {"limit": 42}, "memory": {"limit": 67108864}}).to_string(),
    )
    .unwrap();
    let u = rt.exec(&["update", "--resources", path_str(&res), &id]);
    assert!(u.status.success(), "{}", stderr(&u));
    let pids_max = std::fs::read_to_string(format!("/sys/fs/cgroup/pids/{id}/pids.max")).unwrap();
    assert_eq!(pids_max.trim(), "42");
    let mem = std::fs::read_to_string(format!("/sys/fs/cgroup/memory/{id}/memory.limit_in_bytes"))
        .unwrap();
    assert_eq!(mem.trim(), "67108864");
    let u = rt.exec(&["update", "--pids-limit", "50", "--memory", "128m", &id]);
    assert!(u.status.success(), "{}", stderr(&u));
    let pids_max = std::fs::read_to_string(format!("/sys/fs/cgroup/pids/{id}/pids.max")).unwrap();
    assert_eq!(pids_max.trim(), "50");
    let mem = std::fs::read_to_string(format!("/sys/fs/cgroup/memory/{id}/memory.limit_in_bytes"))
        .unwrap();
    assert_eq!(mem.trim(), (128u64 << 20).to_string());
});

conformance!(hooks_run_with_state_on_stdin, |rt| {
    let out = temp_dir("hooks");
    let o = out.path().display().to_string();
    let mut b = Bundle::new();
    let hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {o}/{name}.json")]});
    b.mount(json!({"destination": "/hooks", "type": "bind", "source": o, "options": ["rbind"]}));
    b.set("/hooks", json!({
        "prestart": [hook("prestart")],
        "createRuntime": [hook("createRuntime")],
        "createContainer": [hook("createContainer")],
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "cat > /hooks/startContainer.json"]}],
        "poststart": [hook("poststart")],
        "poststop": [hook("poststop")]
    }));
    b.args(&["/probe", "--quiet"]);
    let id = unique_id("hooks");
    let _g = ContainerGuard::new(rt, &id);
    let r = rt.run(&b, &id);
    assert!(r.status.success(), "{}", stderr(&r));
    for name in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        let p = out.path().join(format!("{name}.json"));
        let text = std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("{} hook did not run: {e}", name));
        let s: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}: {text}"));
        assert_eq!(s["id"], id.as_str(), "{name}: {s}");
        assert!(s["ociVersion"].is_string(), "{name}: {s}");
        assert!(s["bundle"].is_string(), "{name}: {s}");
        if name != "poststop" {
            assert!(s["pid"].as_i64().unwrap_or(0) > 0, "{name}: {s}");
        }
    }
});

conformance!(hook_timeout_and_failure_abort_create, |rt| {
    let mut b = Bundle::new();
    b.set(
        "/hooks/prestart",
        json!([{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]),
    );
    let err = run_fails(rt, &b, "hooktimeout");
    if matches!(rt, Runtime::Berth(_)) {
        assert!(err.contains("timed out"), "{err}");
    }
    let mut b = Bundle::new();
    b.set("/hooks/createRuntime", json!([{"path": "/bin/false"}]));
    run_fails(rt, &b, "hookfail");
});

conformance!(malformed_config_names_the_field_and_leaves_nothing, |rt| {
    let b = Bundle::new();
    let id = unique_id("badjson");
    let _g = ContainerGuard::new(rt, &id);
    std::fs::write(b.path().join("config.json"), r#"{"ociVersion":"1.0.2","process":{"args":["/probe"],"cwd":"/","user":{"uid":"zero","gid":0}},"root":{"path":"rootfs"}}"#).unwrap();
    let o = rt.exec(&["run", "--bundle", path_str(b.path()), &id]);
    assert!(!o.status.success());
    if matches!(rt, Runtime::Berth(_)) {
        assert!(stderr(&o).contains("process.user.uid"), "{}", stderr(&o));
    }
    assert_nothing_left(rt, &id);
    std::fs::write(b.path().join("config.json"), "{not json").unwrap();
    let o = rt.exec(&["run", "--bundle", path_str(b.path()), &id]);
    assert!(!o.status.success());
    assert_nothing_left(rt, &id);
});

conformance!(invalid_and_unknown_ids, |rt| {
    let b = Bundle::new();
    for bad in ["a/b", "..", ""] {
        b.write_for("berth-test-invalid");
        let o = rt.exec(&["run", "--bundle", path_str(b.path()), bad]);
        assert!(!o.status.success(), "id {bad:?} accepted");
    }
    let missing = unique_id("missing");
    for cmd in [
        vec!["state", &missing],
        vec!["kill", &missing],
        vec!["start", &missing],
        vec!["delete", &missing],
    ] {
        let o = rt.exec(&cmd);
        assert!(!o.status.success(), "{cmd:?}");
        assert!(
            stderr(&o).contains("does not exist"),
            "{cmd:?}: {}",
            stderr(&o)
        );
    }
    let o = rt.exec(&["delete", "--force", &missing]);
    assert!(
        o.status.success(),
        "delete --force of a missing container is not an error"
    );
});

conformance!(duplicate_id_is_refused, |rt| {
    let mut b = Bundle::new();
    b.args(&["/probe", "--quiet", "--sleep", "30"]);
    let id = unique_id("dup");
    let _g = ContainerGuard::new(rt, &id);
    assert!(rt.create(&b, &id).status.success());
    let o = rt.create(&b, &id);
    assert!(
        !o.status.success(),
        "a second create with the same id must fail"
    );
    assert_eq!(rt.state(&id).unwrap()["status"], "created");
});

conformance!(pid_file_and_detached_run, |rt| {
    let mut b = Bundle::new();
    b.args(&["/probe", "--quiet", "--sleep", "30"]);
    let id = unique_id("detach");
    let _g = ContainerGuard::new(rt, &id);
    let pidfile = b.path().join("pid");
    b.write_for(&id);
    // The detached container keeps its stdio: files, not pipes we would wait on.
    let err = b.path().join("run-stderr");
    let st = rt
        .cmd()
        .args([
            "run",
            "--detach",
            "--pid-file",
            path_str(&pidfile),
            "--bundle",
            path_str(b.path()),
            &id,
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .status()
        .unwrap();
    assert!(st.success(), "{}", std::fs::read_to_string(&err).unwrap());
    let s = wait_status(rt, &id, "running");
    let pid: i64 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(s["pid"].as_i64(), Some(pid));
    let k = rt.exec(&["kill", "--all", &id, "KILL"]);
    assert!(k.status.success(), "{}", stderr(&k));
    wait_status(rt, &id, "stopped");
});

conformance!(preserve_fds_passes_extra_descriptors_only, |rt| {
    let mut b = Bundle::new();
    let id = unique_id("fds");
    let _g = ContainerGuard::new(rt, &id);
    b.args(&["/probe"]);
    b.write_for(&id);
    let script = format!(
        "exec 3</etc/hostname 4</etc/hostname; exec {} --root {} run --preserve-fds 1 --bundle {} {}",
        rt.bin().display(),
        rt.root().display(),
        b.path().display(),
        id
    );
    let o = std::process::Command::new("/bin/sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let r = report(&o);
    let fds: Vec<&String> = r["fds"].as_object().unwrap().keys().collect();
    assert_eq!(fds, ["0", "1", "2", "3"], "{}", r["fds"]);
    assert_eq!(r["fds"]["3"], "/etc/hostname");
});

conformance!(terminal_goes_to_the_console_socket, |rt| {
    use std::os::unix::net::UnixListener;
    let dir = temp_dir("console");
    let sock = dir.path().join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let mut b = Bundle::new();
    b.set("/process/terminal", json!(true));
    b.args(&["/probe"]);
    let id = unique_id("tty");
    let _g = ContainerGuard::new(rt, &id);
    b.write_for(&id);
    let receiver = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        recv_fd(&conn)
    });
    let o = rt.exec(&[
        "create",
        "--console-socket",
        path_str(&sock),
        "--bundle",
        path_str(b.path()),
        &id,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let master = receiver.join().unwrap();
    assert!(rt.exec(&["start", &id]).status.success());
    wait_status(rt, &id, "stopped");
    let mut text = Vec::new();
    let mut buf = [0u8; 65536];
    while let Ok(n) = rustix::io::read(&master, &mut buf) {
        if n == 0 {
            break;
        }
        text.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&text);
    let line = text
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no report on the pty: {text}"));
    let r: Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(r["tty"]["stdin"], true);
    assert_eq!(r["tty"]["stdout"], true);
    assert!(
        r["tty"]["name"].as_str().unwrap().starts_with("/dev/pts/"),
        "{}",
        r["tty"]
    );
    assert_eq!(r["session"]["sid"], 1, "the process leads its session");
});

fn recv_fd(conn: &std::os::unix::net::UnixStream) -> std::os::fd::OwnedFd {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut buf = [0u8; 4096];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut anc = RecvAncillaryBuffer::new(&mut space);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    rustix::net::recvmsg(conn, &mut iov, &mut anc, RecvFlags::empty()).unwrap();
    for m in anc.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = m {
            return fds.next().expect("an fd");
        }
    }
    panic!("no fd received");
}

conformance!(seccomp_notify_listener_receives_the_fd_and_state, |rt| {
    use std::os::unix::net::UnixListener;
    let dir = temp_dir("seccomp-agent");
    let sock = dir.path().join("agent.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let mut b = Bundle::new();
    b.set("/linux/seccomp", json!({
        "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": sock, "listenerMetadata": "berth-test-meta",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]}));
    b.args(&["/probe", "--try-mkdir", "/tmp/notified"]);
    let agent = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 65536];
        use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut anc = RecvAncillaryBuffer::new(&mut space);
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let n = rustix::net::recvmsg(&conn, &mut iov, &mut anc, RecvFlags::empty())
            .unwrap()
            .bytes;
        let mut got_fd = false;
        for m in anc.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = m {
                // Closing the listener makes the notified syscalls fail with ENOSYS.
                got_fd = fds.count() == 1;
            }
        }
        (String::from_utf8_lossy(&buf[..n]).into_owned(), got_fd)
    });
    let (_, r) = run_probe(rt, &b, "notify");
    let (msg, got_fd) = agent.join().unwrap();
    assert!(got_fd, "no listener fd");
    let v: Value = serde_json::from_str(&msg).unwrap_or_else(|e| panic!("{e}: {msg}"));
    assert_eq!(v["fds"], json!(["seccompFd"]));
    assert_eq!(v["metadata"], "berth-test-meta");
    assert!(v["pid"].as_i64().unwrap() > 0);
    assert!(
        v["state"]["id"]
            .as_str()
            .unwrap()
            .starts_with("berth-test-notify")
    );
    assert_eq!(errno(&r, "try-mkdir", "/tmp/notified"), Some(38));
});

conformance!(no_pivot_uses_move_and_chroot, |rt| {
    let b = Bundle::new();
    let id = unique_id("nopivot");
    let _g = ContainerGuard::new(rt, &id);
    b.write_for(&id);
    let o = rt.exec(&["run", "--no-pivot", "--bundle", path_str(b.path()), &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = report(&o);
    let listing = r["root_listing"].as_array().unwrap();
    assert!(listing.contains(&json!("probe")), "{listing:?}");
    assert_eq!(r["pid"], 1);
});

conformance!(features_and_spec, |rt| {
    let f = rt.exec(&["features"]);
    assert!(f.status.success(), "{}", stderr(&f));
    let v: Value = serde_json::from_slice(&f.stdout).unwrap();
    assert!(v["ociVersionMax"].as_str().unwrap().starts_with("1."));
    assert!(
        v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .contains(&json!("user"))
    );
    assert!(v["linux"]["seccomp"]["enabled"].as_bool().unwrap());
    let d = temp_dir("spec");
    let s = rt
        .cmd()
        .args(["spec", "--bundle", path_str(d.path())])
        .output()
        .unwrap();
    assert!(s.status.success(), "{}", stderr(&s));
    let spec: Value =
        serde_json::from_slice(&std::fs::read(d.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(spec["process"]["args"], json!(["sh"]));
    assert_eq!(spec["root"]["path"], "rootfs");
    let again = rt
        .cmd()
        .args(["spec", "--bundle", path_str(d.path())])
        .output()
        .unwrap();
    assert!(
        !again.status.success(),
        "spec must not overwrite config.json"
    );
});

// ---------------------------------------------------------------- security regressions

// CVE-2019-5736: while the init of a created container still runs the runtime's code, its
// /proc/PID/exe must not be the runtime binary on the host (or be writable through it).
conformance!(cve_2019_5736_runtime_binary_is_not_reachable, |rt| {
    let bin = if matches!(rt, Runtime::Runc) {
        PathBuf::from("/usr/sbin/runc")
    } else {
        rt.bin()
    };
    let before = std::fs::read(&bin).unwrap();
    let mut b = Bundle::new();
    b.args(&["/probe", "--quiet"]);
    let id = unique_id("cve-2019-5736");
    let _g = ContainerGuard::new(rt, &id);
    assert!(rt.create(&b, &id).status.success());
    let pid = rt.state(&id).unwrap()["pid"].as_i64().unwrap();
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert_ne!(
        std::fs::canonicalize(&bin).unwrap(),
        exe,
        "{}: the init runs the host binary",
        rt.name()
    );
    if matches!(rt, Runtime::Berth(_)) {
        assert!(
            exe.to_string_lossy().starts_with("/memfd:berth-runtime"),
            "init runs from {}",
            exe.display()
        );
    }
    let w = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/{pid}/exe"));
    assert!(w.is_err(), "the init's executable is writable");
    // From inside the container: a process exec'd next to the waiting init.
    let o = rt.exec(&["exec", &id, "/probe", "--try-write", "/proc/1/exe"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = report(&o);
    assert!(
        errno(&r, "try-write", "/proc/1/exe").is_some(),
        "writable from inside"
    );
    assert_eq!(
        std::fs::read(&bin).unwrap(),
        before,
        "the runtime binary changed"
    );
});

// CVE-2024-21626: no descriptor of the runtime reaches the container, and a cwd through
// /proc/self/fd cannot point outside the container.
conformance!(cve_2024_21626_no_leaked_fds_and_cwd_inside, |rt| {
    let b = Bundle::new();
    let (_, r) = run_probe(rt, &b, "cve-2024-21626-fds");
    let fds: Vec<&String> = r["fds"].as_object().unwrap().keys().collect();
    assert_eq!(fds, ["0", "1", "2"], "leaked: {}", r["fds"]);
    for n in 3..10 {
        let mut b = Bundle::new();
        b.set("/process/cwd", json!(format!("/proc/self/fd/{n}")));
        let id = unique_id("cve-2024-21626-cwd");
        let _g = ContainerGuard::new(rt, &id);
        let o = rt.run(&b, &id);
        if o.status.success() {
            let r = report(&o);
            let cwd = r["cwd"].as_str().unwrap_or("");
            assert!(
                !cwd.starts_with("/sys") && !cwd.contains("cgroup") && !cwd.starts_with("/work"),
                "{}: fd {n} gave a host cwd {cwd}",
                rt.name()
            );
        }
    }
});

conformance!(cgroup_mount_shows_the_containers_cgroup, |rt| {
    let mut b = Bundle::new();
    b.mount(
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
        "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
    );
    b.set("/linux/resources/pids", json!({"limit": 77}));
    b.args(&[
        "/probe",
        "--read",
        "/sys/fs/cgroup/pids/pids.max",
        "--try-mkdir",
        "/sys/fs/cgroup/pids/x",
        "--ls",
        "/sys/fs/cgroup",
    ]);
    let (_, r) = run_probe(rt, &b, "cgmount");
    assert_eq!(
        r["files"]["/sys/fs/cgroup/pids/pids.max"], "77\n",
        "{}",
        r["files"]
    );
    assert_eq!(errno(&r, "try-mkdir", "/sys/fs/cgroup/pids/x"), Some(30));
    let dirs = r["dirs"]["/sys/fs/cgroup"].as_array().unwrap();
    for c in ["memory", "pids", "cpu", "devices", "freezer"] {
        assert!(dirs.contains(&json!(c)), "{c} missing in {dirs:?}");
    }
});

conformance!(rootfs_propagation_and_mount_propagation_flags, |rt| {
    let mut b = Bundle::new();
    b.set("/linux/rootfsPropagation", json!("private"));
    b.mount(json!({"destination": "/shared", "type": "tmpfs", "source": "tmpfs", "options": ["rshared"]}));
    let (_, r) = run_probe(rt, &b, "propagation");
    let root = mount_at(&r, "/").unwrap();
    assert!(
        !root["propagation"].as_str().unwrap().contains("shared"),
        "{root}"
    );
    let shared = mount_at(&r, "/shared").unwrap();
    assert!(
        shared["propagation"].as_str().unwrap().contains("shared"),
        "{shared}"
    );
});

conformance!(tmpcopyup_copies_the_image_content, |rt| {
    let mut b = Bundle::new();
    std::fs::create_dir_all(b.rootfs().join("etc/app/sub")).unwrap();
    std::fs::write(b.rootfs().join("etc/app/conf"), "from-image").unwrap();
    std::fs::write(b.rootfs().join("etc/app/sub/x"), "deep").unwrap();
    b.mount(json!({"destination": "/etc/app", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup"]}));
    b.args(&[
        "/probe",
        "--read",
        "/etc/app/conf",
        "--read",
        "/etc/app/sub/x",
        "--write",
        "/etc/app/new",
        "y",
    ]);
    let (_, r) = run_probe(rt, &b, "copyup");
    assert_eq!(mount_at(&r, "/etc/app").unwrap()["fstype"], "tmpfs");
    assert_eq!(r["files"]["/etc/app/conf"], "from-image");
    assert_eq!(r["files"]["/etc/app/sub/x"], "deep");
    assert!(
        !b.rootfs().join("etc/app/new").exists(),
        "the write went to the tmpfs"
    );
});

conformance!(exec_with_tty_and_capabilities, |rt| {
    use std::os::unix::net::UnixListener;
    let mut b = Bundle::new();
    b.args(&["/probe", "--quiet", "--sleep", "30"]);
    let id = unique_id("exectty");
    let _g = ContainerGuard::new(rt, &id);
    assert!(rt.create(&b, &id).status.success());
    assert!(rt.exec(&["start", &id]).status.success());
    let dir = temp_dir("exec-console");
    let sock = dir.path().join("c.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let receiver = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        recv_fd(&conn)
    });
    let pidfile = dir.path().join("pid");
    let o = rt.exec(&[
        "exec",
        "--tty",
        "--detach",
        "--console-socket",
        path_str(&sock),
        "--pid-file",
        path_str(&pidfile),
        "--cap",
        "CAP_NET_ADMIN",
        &id,
        "/probe",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let master = receiver.join().unwrap();
    let mut text = Vec::new();
    let mut buf = [0u8; 65536];
    while let Ok(n) = rustix::io::read(&master, &mut buf) {
        if n == 0 {
            break;
        }
        text.extend_from_slice(&buf[..n]);
        if text.ends_with(b"\n") && text.contains(&b'{') {
            break;
        }
    }
    let text = String::from_utf8_lossy(&text);
    let line = text
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no report: {text}"));
    let r: Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(r["tty"]["stdout"], true);
    assert!(
        r["caps"]["effective"]
            .as_array()
            .unwrap()
            .contains(&json!("CAP_NET_ADMIN")),
        "{}",
        r["caps"]
    );
    let pid: i64 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(pid > 0);
});

conformance!(exec_into_a_created_container, |rt| {
    let mut b = Bundle::new();
    b.args(&["/probe", "--quiet"]);
    let id = unique_id("execcreated");
    let _g = ContainerGuard::new(rt, &id);
    assert!(rt.create(&b, &id).status.success());
    let o = rt.exec(&["exec", &id, "/probe"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(report(&o)["hostname"], "berth-test");
    assert_eq!(rt.state(&id).unwrap()["status"], "created");
});

conformance!(ps_table_and_list_quiet, |rt| {
    let mut b = Bundle::new();
    b.args(&["/probe", "--quiet", "--sleep", "30"]);
    let id = unique_id("pstable");
    let _g = ContainerGuard::new(rt, &id);
    assert!(rt.create(&b, &id).status.success());
    assert!(rt.exec(&["start", &id]).status.success());
    let init = wait_status(rt, &id, "running")["pid"].as_i64().unwrap();
    let ps = rt.exec(&["ps", &id]);
    assert!(ps.status.success(), "{}", stderr(&ps));
    let text = String::from_utf8_lossy(&ps.stdout);
    assert!(text.lines().next().unwrap().contains("PID"), "{text}");
    assert!(
        text.lines()
            .skip(1)
            .any(|l| l.split_whitespace().nth(1) == Some(&init.to_string())),
        "{text}"
    );
    let l = rt.exec(&["list", "-q"]);
    assert!(
        String::from_utf8_lossy(&l.stdout).lines().any(|l| l == id),
        "{}",
        String::from_utf8_lossy(&l.stdout)
    );
    let l = rt.exec(&["list"]);
    let text = String::from_utf8_lossy(&l.stdout);
    assert!(text.starts_with("ID"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with(&id) && l.contains("running")),
        "{text}"
    );
});

conformance!(log_file_in_json_on_errors, |rt| {
    let dir = temp_dir("log");
    let log = dir.path().join("log.json");
    let missing = unique_id("nolog");
    let o = rt
        .cmd()
        .args([
            "--log",
            path_str(&log),
            "--log-format",
            "json",
            "state",
            &missing,
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let line: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(line["level"], "error");
    assert!(
        line["msg"].as_str().unwrap().contains("does not exist"),
        "{line}"
    );
    assert!(line["time"].is_string());
});

berth_only!(
    time_namespace_offsets,
    "runc 1.1 has no time namespace support",
    |rt| {
        let mut b = Bundle::new();
        b.set("/linux/namespaces/5", json!({"type": "time"}));
        b.set(
            "/linux/timeOffsets",
            json!({"monotonic": {"secs": 86400, "nanosecs": 0},
                                      "boottime": {"secs": 172800, "nanosecs": 0}}),
        );
        let host = |clock| {
            let t = rustix::time::clock_gettime(clock);
            t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
        };
        let before = host(rustix::time::ClockId::Monotonic);
        let (_, r) = run_probe(rt, &b, "timens");
        let after = host(rustix::time::ClockId::Monotonic);
        let inside = r["time"]["monotonic"].as_f64().unwrap();
        assert!(
            inside >= before + 86400.0 && inside <= after + 86400.0,
            "{inside} vs {before}..{after}"
        );
        let boot = r["time"]["boottime"].as_f64().unwrap();
        assert!(boot >= before + 172800.0, "{boot}");
        assert_ne!(r["namespaces"]["time"], host_ns("time"));
    }
);

berth_only!(
    apparmor_and_selinux_are_tolerated_without_an_lsm,
    "runc refuses AppArmor profiles on hosts without AppArmor",
    |rt| {
        if Path::new("/sys/module/apparmor/parameters/enabled").exists() {
            eprintln!("skipped: this host has AppArmor");
            return;
        }
        let mut b = Bundle::new();
        b.set("/process/apparmorProfile", json!("berth-test-profile"));
        b.set(
            "/process/selinuxLabel",
            json!("system_u:system_r:container_t:s0"),
        );
        let id = unique_id("lsm");
        let _g = ContainerGuard::new(rt, &id);
        let o = rt.run(&b, &id);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("apparmorProfile") && stderr(&o).contains("ignored"),
            "{}",
            stderr(&o)
        );
        assert_eq!(report(&o)["pid"], 1);
    }
);

berth_only!(
    checkpoint_and_systemd_cgroup_are_refused_clearly,
    "runc implements both",
    |rt| {
        let o = rt.exec(&["checkpoint", "--image-path", "/tmp/x", "some-id"]);
        assert!(!o.status.success());
        assert!(stderr(&o).contains("not supported"), "{}", stderr(&o));
        let o = rt.exec(&["--systemd-cgroup", "state", "x"]);
        assert!(!o.status.success());
        assert!(stderr(&o).contains("systemd"), "{}", stderr(&o));
    }
);

berth_only!(
    ids_starting_with_a_dot_are_reserved,
    "runc accepts them; berth keeps its cache in <root>/.seccomp-cache",
    |rt| {
        let b = Bundle::new();
        b.write_for("berth-test-dot");
        let o = rt.exec(&["run", "--bundle", path_str(b.path()), ".seccomp-cache"]);
        assert!(!o.status.success());
        assert!(
            stderr(&o).contains("must not start with '.'"),
            "{}",
            stderr(&o)
        );
    }
);

berth_only!(
    seccomp_filters_are_cached_by_the_cli,
    "runc compiles every time",
    |rt| {
        let cache = temp_dir("cli-seccomp-cache");
        let mut b = Bundle::new();
        b.set(
            "/linux/seccomp",
            json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5}]}),
        );
        b.args(&["/probe", "--try-mkdir", "/tmp/x"]);
        for i in 0..2 {
            let id = unique_id(&format!("clicache{i}"));
            let _g = ContainerGuard::new(rt, &id);
            b.write_for(&id);
            let o = rt
                .cmd()
                .args([
                    "--seccomp-cache",
                    path_str(cache.path()),
                    "run",
                    "--bundle",
                    path_str(b.path()),
                    &id,
                ])
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", stderr(&o));
            assert_eq!(errno(&report(&o), "try-mkdir", "/tmp/x"), Some(5));
        }
        assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 1);
    }
);

berth_only!(
    create_and_exec_run_from_a_sealed_memfd_and_run_skips_it,
    "runc always re-execs from its own copy",
    |rt| {
        // `run` with a new pid namespace: nothing can reach the init before it execs, so no copy.
        let b = Bundle::new();
        let (_, r) = run_probe(rt, &b, "memfd-run");
        assert_eq!(r["pid"], 1);
        let mut b = Bundle::new();
        b.args(&["/probe", "--quiet"]);
        let id = unique_id("memfd-create");
        let _g = ContainerGuard::new(rt, &id);
        assert!(rt.create(&b, &id).status.success());
        let pid = rt.state(&id).unwrap()["pid"].as_i64().unwrap();
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
        assert!(
            exe.to_string_lossy().starts_with("/memfd:berth-runtime"),
            "{}",
            exe.display()
        );
        // The sealed copy refuses writes even to root.
        let f = std::fs::File::open(format!("/proc/{pid}/exe")).unwrap();
        let seals = rustix::fs::fcntl_get_seals(&f).unwrap();
        assert!(
            berth_sys::memfd::is_sealed(&f) && seals.contains(rustix::fs::SealFlags::SEAL),
            "{seals:?}"
        );
    }
);

// /proc checks: an image whose /proc is a symlink must not get procfs mounted elsewhere
// (CVE-2019-16884 / CVE-2019-19921 family), and nothing may be mounted over /proc files
// other than the lxcfs ones.
conformance!(proc_symlink_in_the_image_is_refused, |rt| {
    let b = Bundle::new();
    std::fs::remove_dir(b.rootfs().join("proc")).unwrap();
    std::fs::create_dir(b.rootfs().join("evil")).unwrap();
    std::os::unix::fs::symlink("/evil", b.rootfs().join("proc")).unwrap();
    let err = run_fails(rt, &b, "procsymlink");
    if matches!(rt, Runtime::Berth(_)) {
        assert!(
            err.contains("mounts[0].destination") && err.contains("/proc"),
            "{err}"
        );
    }
    let evil = std::fs::read_dir(b.rootfs().join("evil")).unwrap().count();
    assert_eq!(evil, 0, "procfs was mounted through the symlink");
});

conformance!(mounts_over_proc_files_are_refused, |rt| {
    let src = temp_dir("procbind");
    std::fs::write(src.path().join("attr"), "x").unwrap();
    let mut b = Bundle::new();
    b.mount(
        json!({"destination": "/proc/self/attr/exec", "type": "bind",
        "source": src.path().join("attr"), "options": ["bind"]}),
    );
    run_fails(rt, &b, "procbind");
    // The lxcfs files are allowed.
    let mut b = Bundle::new();
    std::fs::write(src.path().join("meminfo"), "MemTotal: 1 kB\n").unwrap();
    b.mount(json!({"destination": "/proc/meminfo", "type": "bind",
        "source": src.path().join("meminfo"), "options": ["bind", "ro"]}));
    b.args(&["/probe", "--read", "/proc/meminfo"]);
    let (_, r) = run_probe(rt, &b, "lxcfs");
    assert_eq!(r["files"]["/proc/meminfo"], "MemTotal: 1 kB\n");
});

conformance!(foreground_run_proxies_the_terminal, |rt| {
    use std::os::fd::AsFd;
    let mut b = Bundle::new();
    b.set("/process/terminal", json!(true));
    b.args(&["/bin/sh", "-c", "read line; echo \"got:$line\"; /probe"]);
    let id = unique_id("fgtty");
    let _g = ContainerGuard::new(rt, &id);
    b.write_for(&id);
    let master =
        rustix::pty::openpt(rustix::pty::OpenptFlags::RDWR | rustix::pty::OpenptFlags::NOCTTY)
            .unwrap();
    rustix::pty::grantpt(&master).unwrap();
    rustix::pty::unlockpt(&master).unwrap();
    let name = rustix::pty::ptsname(&master, Vec::new()).unwrap();
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_str().unwrap())
        .unwrap();
    let mut child = rt
        .cmd()
        .args(["run", "--bundle", path_str(b.path()), &id])
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave)
        .spawn()
        .unwrap();
    rustix::io::write(&master, b"hello-tty\n").unwrap();
    let mut text = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        let mut fds = [rustix::event::PollFd::new(
            &master,
            rustix::event::PollFlags::IN,
        )];
        let ts = rustix::time::Timespec {
            tv_sec: 20,
            tv_nsec: 0,
        };
        if rustix::event::poll(&mut fds, Some(&ts)).unwrap() == 0 {
            break;
        }
        match rustix::io::read(master.as_fd(), &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
        }
        if String::from_utf8_lossy(&text).contains("\"tty\"") && text.ends_with(b"\n") {
            break;
        }
    }
    let status = child.wait().unwrap();
    let text = String::from_utf8_lossy(&text);
    assert!(status.success(), "{}: {status:?}\n{text}", rt.name());
    assert!(text.contains("got:hello-tty"), "{text}");
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with('{'))
        .unwrap_or_else(|| panic!("{text}"));
    let r: Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(r["tty"]["stdin"], true);
});

// Regression: a hook that exits without reading the (large) state on its stdin must not kill
// the container's process with SIGPIPE (its disposition is default there).
conformance!(hooks_that_ignore_their_stdin_do_not_break_the_start, |rt| {
    let mut b = Bundle::new();
    b.set(
        "/annotations",
        json!({"berth.test/big": "x".repeat(300_000)}),
    );
    b.set(
        "/hooks",
        json!({
            "createContainer": [{"path": "/bin/true"}],
            "startContainer": [{"path": "/bin/true"}],
            "prestart": [{"path": "/bin/true"}]
        }),
    );
    let (_, r) = run_probe(rt, &b, "hookpipe");
    assert_eq!(r["pid"], 1);
});

berth_only!(
    seccomp_filter_flags,
    "runc 1.1 refuses seccomp flags (\"not yet supported\")",
    |rt| {
        let mut b = Bundle::new();
        b.set("/linux/seccomp", json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_TSYNC"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}));
        b.args(&["/probe", "--try-mkdir", "/tmp/d"]);
        let (_, r) = run_probe(rt, &b, "seccompflags");
        assert_eq!(r["seccomp"]["mode"], 2);
        assert_eq!(errno(&r, "try-mkdir", "/tmp/d"), Some(13));
    }
);

conformance!(exec_into_a_user_namespace_container, |rt| {
    let mut b = Bundle::new();
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    b.set(
        "/linux/uidMappings",
        json!([{"containerID": 0, "hostID": 200000, "size": 65536}]),
    );
    b.set(
        "/linux/gidMappings",
        json!([{"containerID": 0, "hostID": 200000, "size": 65536}]),
    );
    b.args(&["/probe", "--quiet", "--sleep", "30"]);
    let id = unique_id("execuserns");
    let _g = ContainerGuard::new(rt, &id);
    let c = rt.create(&b, &id);
    assert!(c.status.success(), "{}", stderr(&c));
    assert!(rt.exec(&["start", &id]).status.success());
    wait_status(rt, &id, "running");
    let o = rt.exec(&["exec", "--user", "1000:1000", &id, "/probe"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = report(&o);
    assert_eq!(r["uid"], 1000);
    let map = r["uid_map"].as_str().unwrap();
    assert_eq!(
        map.split_whitespace().collect::<Vec<_>>(),
        ["0", "200000", "65536"]
    );
    assert_ne!(r["namespaces"]["user"], host_ns("user"));
});

berth_only!(
    a_runtime_on_a_read_only_mount_needs_no_copy,
    "runc always copies itself",
    |rt| {
        // Bind the binary read-only into a private directory and create from there.
        let dir = temp_dir("ro-runtime");
        let ro = dir.path().join("berth-runtime");
        std::fs::write(&ro, b"").unwrap();
        let st = std::process::Command::new("mount")
            .args(["--bind", path_str(&rt.bin()), path_str(&ro)])
            .status()
            .unwrap();
        assert!(st.success());
        struct Unmount(PathBuf);
        impl Drop for Unmount {
            fn drop(&mut self) {
                let _ = std::process::Command::new("umount").arg(&self.0).status();
            }
        }
        let _u = Unmount(ro.clone());
        let st = std::process::Command::new("mount")
            .args(["-o", "remount,bind,ro", path_str(&ro)])
            .status()
            .unwrap();
        assert!(st.success());
        let ro_rt = Runtime::Berth(ro.clone());
        let mut b = Bundle::new();
        b.args(&["/probe", "--quiet"]);
        let id = unique_id("ro-runtime");
        let _g = ContainerGuard::new(&ro_rt, &id);
        let o = ro_rt.create(&b, &id);
        assert!(o.status.success(), "{}", stderr(&o));
        let pid = ro_rt.state(&id).unwrap()["pid"].as_i64().unwrap();
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
        assert_eq!(exe, ro, "no memfd copy expected");
        // Busy while running (ETXTBSY) and, through that mount, read-only for good.
        let w = std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/proc/{pid}/exe"));
        assert!(w.is_err());
        let f = std::fs::File::open(format!("/proc/{pid}/exe")).unwrap();
        let vfs = rustix::fs::fstatvfs(&f).unwrap();
        assert!(vfs.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY));
        let _ = rt;
    }
);

// docker turns these messages into exit codes 127 ("not found", "no such file") and 126
// ("permission denied"), so they must read like runc's.
conformance!(program_errors_read_like_runc, |rt| {
    let mut b = Bundle::new();
    b.args(&["/etc/hostname"]);
    let err = run_fails(rt, &b, "noexec");
    assert!(err.contains("permission denied"), "{}: {err}", rt.name());
    let mut b = Bundle::new();
    b.args(&["/no/such/file"]);
    let err = run_fails(rt, &b, "nofile");
    assert!(
        err.contains("no such file or directory"),
        "{}: {err}",
        rt.name()
    );
    let mut b = Bundle::new();
    b.args(&["no-such-command"]);
    let err = run_fails(rt, &b, "nocmd");
    assert!(
        err.contains("executable file not found in $PATH"),
        "{}: {err}",
        rt.name()
    );
});

berth_only!(
    exec_with_tty_under_load_always_reports_the_pid,
    "regression test for a race in berth's namespace helper (the exec'd process's pty could \
     reach the runtime before the helper's pid message)",
    |rt| {
        use std::os::unix::net::UnixListener;
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        let mut b = Bundle::new();
        b.args(&["/probe", "--quiet", "--sleep", "60"]);
        let id = unique_id("exectty-load");
        let _g = ContainerGuard::new(rt, &id);
        assert!(rt.create(&b, &id).status.success());
        assert!(rt.exec(&["start", &id]).status.success());
        // Busy threads keep both cores loaded so the helper is often preempted between
        // cloning the process and reporting its pid, which is when the race shows.
        let stop = Arc::new(AtomicBool::new(false));
        let spinners: Vec<_> = (0..3)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        let dir = temp_dir("exec-load");
        let mut failures = Vec::new();
        for i in 0..60 {
            let sock = dir.path().join(format!("c{i}.sock"));
            let listener = UnixListener::bind(&sock).unwrap();
            let receiver = std::thread::spawn(move || {
                let (conn, _) = listener.accept().unwrap();
                recv_fd(&conn)
            });
            let o = rt.exec(&[
                "exec",
                "--tty",
                "--detach",
                "--console-socket",
                path_str(&sock),
                &id,
                "/probe",
                "--quiet",
            ]);
            if o.status.success() {
                drop(receiver.join().unwrap());
            } else {
                failures.push(format!("exec {i}: {}", stderr(&o)));
                // Unblock the receiver thread.
                drop(std::os::unix::net::UnixStream::connect(&sock));
                drop(receiver.join());
            }
        }
        stop.store(true, Ordering::Relaxed);
        for s in spinners {
            s.join().unwrap();
        }
        assert!(failures.is_empty(), "{failures:#?}");
    }
);
