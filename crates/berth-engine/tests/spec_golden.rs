//! Golden tests of the create body → OCI spec function: a typical container with most
//! HostConfig settings, a privileged one, and the defaults. `BERTH_UPDATE_GOLDEN=1`
//! rewrites the files after a deliberate change; review the diff.

use std::path::Path;

use berth_api::body::ContainerCreateBody;
use berth_engine::spec::{self, HostDevice, HostInfo, SeccompSetting, SpecInput};
use berth_image::spec::{ProcessSpec, ResolvedUser};

fn info() -> HostInfo {
    HostInfo {
        cap_last_cap: 40,
        bounding: u64::MAX,
        ncpu: 2,
        hostname: "host-a".into(),
        devices: vec![HostDevice {
            path: "/dev/vda".into(),
            kind: 'b',
            major: 254,
            minor: 0,
            file_mode: 0o660,
            uid: 0,
            gid: 6,
        }],
    }
}

fn build(body: &str) -> serde_json::Value {
    let body: ContainerCreateBody = serde_json::from_str(body).unwrap();
    let host = body.host_config.clone().unwrap_or_default();
    let info = info();
    spec::validate_host_config(&host, &info).unwrap();
    let process = ProcessSpec {
        args: vec!["sh".into(), "-c".into(), "echo hi".into()],
        env: vec![
            "PATH=/usr/bin:/bin".into(),
            "A=1".into(),
            "HOME=/root".into(),
        ],
        cwd: "/work".into(),
        user: ResolvedUser {
            uid: 1000,
            gid: 1000,
            additional_gids: vec![10],
            home: "/root".into(),
        },
    };
    let input = SpecInput {
        id: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        config: &body.config,
        host: &host,
        process: &process,
        group_add: &[50],
        container_dir: Path::new("/var/lib/berth/containers/0123"),
        cgroup_parent: "/berth",
        default_pids_limit: 4096,
        info: &info,
    };
    let spec = spec::build(&input, &mut |s, caps| {
        Ok(match s {
            SeccompSetting::Unconfined => None,
            SeccompSetting::Default => Some(serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "profile": "default", "caps": caps})),
            SeccompSetting::Custom(j) => Some(serde_json::json!({"custom": j})),
        })
    })
    .unwrap();
    // Whatever we emit must be a valid OCI spec.
    let _: berth_oci::spec::runtime::Spec = serde_json::from_value(spec.clone()).unwrap();
    spec
}

fn golden(name: &str, v: &serde_json::Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    let text = serde_json::to_string_pretty(v).unwrap() + "\n";
    if std::env::var_os("BERTH_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} missing: run with BERTH_UPDATE_GOLDEN=1", path.display()));
    assert_eq!(text, want, "{name} differs from the golden file");
}

#[test]
fn defaults() {
    golden("defaults.json", &build(r#"{"Image":"busybox"}"#));
}

#[test]
fn typical_hostconfig() {
    let s = build(
        r#"{"Image":"busybox","Tty":true,"Hostname":"web","Domainname":"example.org",
        "HostConfig":{"Memory":67108864,"MemoryReservation":33554432,"MemorySwap":-1,"NanoCpus":1500000000,
        "CpuShares":512,"CpusetCpus":"0-1","PidsLimit":100,"Ulimits":[{"Name":"nofile","Soft":1024,"Hard":2048}],
        "CapAdd":["SYS_PTRACE"],"CapDrop":["NET_RAW","mknod"],"SecurityOpt":["no-new-privileges:true"],
        "ReadonlyRootfs":true,"Tmpfs":{"/run":"size=64m,exec"},"ShmSize":1048576,"Sysctls":{"net.ipv4.ip_forward":"1"},
        "OomKillDisable":true,"OomScoreAdj":100,"NetworkMode":"none",
        "Binds":["/srv/data:/data:ro","/srv/logs:/logs:rshared"],
        "Mounts":[{"Type":"tmpfs","Target":"/scratch","TmpfsOptions":{"SizeBytes":1000000,"Mode":448}},
                  {"Type":"bind","Source":"/etc/hosts","Target":"/etc/hosts","ReadOnly":true}]}}"#,
    );
    golden("typical.json", &s);
}

#[test]
fn privileged_host_network() {
    let s = build(
        r#"{"Image":"busybox","HostConfig":{"Privileged":true,"NetworkMode":"host","PidsLimit":-1,
        "SecurityOpt":["seccomp=unconfined"]}}"#,
    );
    golden("privileged.json", &s);
}

#[test]
fn rules_in_isolation() {
    let info = info();
    let caps = |j: &str| {
        let h: berth_api::models::HostConfig = serde_json::from_str(j).unwrap();
        spec::capabilities(&h, &info).unwrap()
    };
    assert_eq!(caps("{}").len(), 14);
    assert_eq!(
        caps(r#"{"CapDrop":["ALL"],"CapAdd":["chown"]}"#),
        vec!["CAP_CHOWN"]
    );
    assert_eq!(caps(r#"{"CapAdd":["ALL"]}"#).len(), 41);
    let limited = HostInfo {
        bounding: !(1u64 << 24),
        ..info.clone()
    };
    let h: berth_api::models::HostConfig = serde_json::from_str(r#"{"Privileged":true}"#).unwrap();
    let c = spec::capabilities(&h, &limited).unwrap();
    assert!(!c.contains(&"CAP_SYS_RESOURCE".to_string()) && c.len() == 40);
    // -v sources and options
    let h: berth_api::models::HostConfig =
        serde_json::from_str(r#"{"Binds":["/a/../b:/c/./d:ro,z"]}"#).unwrap();
    let m = spec::user_mounts(&h).unwrap();
    assert_eq!(
        (m[0].source.as_str(), m[0].destination.as_str(), m[0].rw),
        ("/b", "/c/d", false)
    );
    let dup: berth_api::models::HostConfig =
        serde_json::from_str(r#"{"Binds":["/a:/x"],"Tmpfs":{"/x":""}}"#).unwrap();
    assert!(
        spec::user_mounts(&dup)
            .unwrap_err()
            .to_string()
            .contains("Duplicate mount point: /x")
    );
    assert_eq!(spec::parse_cpuset("0-2,5"), Some(vec![0, 1, 2, 5]));
    assert_eq!(spec::parse_cpuset("2-1"), None);
    let resolv = spec::resolv_conf(
        "nameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch lan\n",
        spec::NetworkMode::None,
        &[],
        &[],
        &[],
    );
    assert_eq!(resolv, "nameserver 10.0.0.2\nsearch lan\n");
}

/// The store's init layers hold exactly the default mount points that live on the image's
/// root (not those inside another default mount, like `/dev/pts` or `/sys/fs/cgroup`), each
/// as the kind the runtime mounts there: a bind-mounted file or a directory.
#[test]
fn init_layer_entries_are_the_default_mount_points_on_the_rootfs() {
    use berth_store::init::{INIT_ENTRIES, InitKind};
    let spec = build("{}");
    let mounts = spec["mounts"].as_array().unwrap();
    let dests: Vec<&str> = mounts
        .iter()
        .map(|m| m["destination"].as_str().unwrap())
        .collect();
    let mut on_rootfs: Vec<(String, InitKind)> = mounts
        .iter()
        .filter(|m| {
            let d = m["destination"].as_str().unwrap();
            !dests
                .iter()
                .any(|p| *p != d && d.starts_with(&format!("{p}/")))
        })
        .map(|m| {
            let kind = if m["type"] == "bind" {
                InitKind::File
            } else {
                InitKind::Dir
            };
            (m["destination"].as_str().unwrap().to_string(), kind)
        })
        .collect();
    on_rootfs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut init: Vec<(String, InitKind)> = INIT_ENTRIES
        .iter()
        .map(|(p, k)| (p.to_string(), *k))
        .collect();
    init.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(on_rootfs, init);
}
