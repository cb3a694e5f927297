//! Bad input over the raw API: 4xx with Docker's messages, never a 500, nothing created.

mod common;
use common::{Daemon, require};

#[test]
fn create_rejects_bad_bodies_with_dockers_messages() {
    require!();
    let d = Daemon::start();
    d.import_busybox();
    let cases: &[(&str, &[u8], u16, &str)] = &[
        ("/containers/create", b"{", 400, "invalid JSON"),
        ("/containers/create", b"", 400, "request body is empty"),
        ("/containers/create", b"[1]", 400, "JSON object"),
        ("/containers/create", br#"{"Image":"busybox","HostConfig":{"Memory":"lots"}}"#, 400, "HostConfig.Memory"),
        ("/containers/create", br#"{"Image":"busybox","Cmd":[1]}"#, 400, "Cmd[0]"),
        ("/containers/create", br#"{"Image":"busybox","Tty":"yes"}"#, 400, "Tty"),
        ("/containers/create", br#"{"Image":"busybox"}"#, 400, "No command specified"),
        ("/containers/create?name=-bad", br#"{"Image":"busybox"}"#, 400, "Invalid container name (-bad), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"),
        ("/containers/create", br#"{"Image":"nope"}"#, 404, "No such image: nope:latest"),
        ("/containers/create", br#"{"Image":"busybox","HostConfig":{"AutoRemove":true,"RestartPolicy":{"Name":"always"}}}"#, 400, "can't create 'AutoRemove' container with restart policy"),
        ("/containers/create", br#"{"Image":"busybox","HostConfig":{"RestartPolicy":{"Name":"sometimes"}}}"#, 400, "invalid restart policy: unknown policy 'sometimes'"),
        ("/containers/create", br#"{"Image":"busybox","HostConfig":{"Memory":1024}}"#, 400, "Minimum memory limit allowed is 6MB"),
        ("/containers/create", br#"{"Image":"busybox","HostConfig":{"NanoCpus":1000000000,"CpuQuota":50000}}"#, 400, "Conflicting options: Nano CPUs and CPU Quota"),
        ("/containers/create", br#"{"Image":"busybox","HostConfig":{"CapAdd":["CAP_BOGUS"]}}"#, 400, "unknown capability: \"CAP_BOGUS\""),
        ("/containers/create", br#"{"Image":"busybox","HostConfig":{"SecurityOpt":["bogus"]}}"#, 400, "invalid --security-opt 1"),
        ("/containers/create", br#"{"Image":"busybox","HostConfig":{"SecurityOpt":["seccomp={not json"]}}"#, 400, "seccomp"),
        ("/containers/create", br#"{"Image":"busybox","HostConfig":{"Ulimits":[{"Name":"nofile","Soft":10,"Hard":5}]}}"#, 400, "ulimit soft limit must be less than or equal to hard limit"),
        ("/containers/create", br#"{"Image":"busybox","HostConfig":{"Binds":["rel:/x"]}}"#, 501, "named volumes"),
        ("/containers/create", br#"{"Image":"busybox","HostConfig":{"Binds":["/tmp:rel"]}}"#, 400, "must be absolute"),
        ("/containers/create", br#"{"Image":"busybox","HostConfig":{"NetworkMode":"mynet"}}"#, 404, "network mynet not found"),
        ("/containers/create", br#"{"Image":"busybox","HostConfig":{"Runtime":"nope"}}"#, 400, "unknown or invalid runtime name: nope"),
        ("/containers/create", br#"{"Image":"busybox","HostConfig":{"Sysctls":{"kernel.panic":"1"}}}"#, 400, "kernel.panic"),
        ("/containers/create", br#"{"Image":"busybox","Cmd":["true"],"User":"nosuchuser"}"#, 400, "nosuchuser"),
        ("/containers/create", br#"{"Image":"busybox","Cmd":["true"],"WorkingDir":"rel"}"#, 400, "absolute path"),
    ];
    for (path, body, status, needle) in cases {
        let r = d.request("POST", path, Some(body)).unwrap();
        assert_eq!(
            r.status,
            *status,
            "{path} {}: {}",
            String::from_utf8_lossy(body),
            String::from_utf8_lossy(&r.body)
        );
        assert!(
            r.message().contains(needle),
            "{}: {:?} lacks {needle:?}",
            String::from_utf8_lossy(body),
            r.message()
        );
    }
    assert_eq!(
        d.container_count(),
        0,
        "a rejected create left a container behind"
    );
    // nothing half-made on disk either
    let leftovers = std::fs::read_dir(d.data_root().join("containers"))
        .unwrap()
        .count();
    assert_eq!(leftovers, 0);
}

#[test]
fn names_ids_and_states_conflict_like_docker() {
    require!();
    let d = Daemon::start();
    d.import_busybox();
    let r = d
        .request(
            "POST",
            "/containers/create?name=berth-test-x",
            Some(
                br#"{"Image":"busybox","Cmd":["sleep","100"],"HostConfig":{"NetworkMode":"none"}}"#,
            ),
        )
        .unwrap();
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let id = r.json()["Id"].as_str().unwrap().to_string();
    let r = d
        .request(
            "POST",
            "/containers/create?name=berth-test-x",
            Some(br#"{"Image":"busybox","Cmd":"true"}"#),
        )
        .unwrap();
    assert_eq!(r.status, 409);
    assert_eq!(
        r.message(),
        format!(
            "Conflict. The container name \"/berth-test-x\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
        )
    );
    // stop of a created container: 304; start twice: 204 then 304
    assert_eq!(
        d.request("POST", "/containers/berth-test-x/stop", None)
            .unwrap()
            .status,
        304
    );
    assert_eq!(
        d.request("POST", "/v1.47/containers/berth-test-x/start", None)
            .unwrap()
            .status,
        204
    );
    assert_eq!(
        d.request("POST", "/containers/berth-test-x/start", None)
            .unwrap()
            .status,
        304
    );
    let r = d
        .request("DELETE", "/containers/berth-test-x", None)
        .unwrap();
    assert_eq!(r.status, 409);
    assert!(
        r.message()
            .contains("container is running: stop the container before removing or force remove"),
        "{}",
        r.message()
    );
    assert_eq!(
        d.request("POST", "/containers/berth-test-x/unpause", None)
            .unwrap()
            .status,
        409
    );
    // unknown containers, bad query values, bad signal, bad filters, unknown routes
    for (method, path, status, needle) in [
        (
            "GET",
            "/containers/nope/json",
            404,
            "No such container: nope",
        ),
        (
            "POST",
            "/containers/nope/start",
            404,
            "No such container: nope",
        ),
        (
            "POST",
            "/containers/berth-test-x/kill?signal=SIGBOGUS",
            400,
            "Invalid signal: SIGBOGUS",
        ),
        ("POST", "/containers/berth-test-x/stop?t=soon", 400, "t"),
        ("GET", "/containers/json?filters=%7Bnope", 400, "filters"),
        (
            "GET",
            "/containers/json?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D",
            400,
            "bogus",
        ),
        (
            "GET",
            "/containers/json?filters=%7B%22status%22%3A%5B%22sleeping%22%5D%7D",
            400,
            "status=sleeping",
        ),
        (
            "POST",
            "/containers/berth-test-x/rename?name=a%20b",
            400,
            "Invalid container name",
        ),
        (
            "GET",
            "/containers/berth-test-x/logs",
            400,
            "choose at least one stream",
        ),
        (
            "GET",
            "/v9.99/version",
            400,
            "client version 9.99 is too new. Maximum supported API version is 1.47",
        ),
        ("GET", "/v1.12/version", 400, "is too old"),
        ("GET", "/images/nope/json", 404, "nope"),
        ("DELETE", "/images/nope", 404, "nope"),
        ("GET", "/no/such/route", 404, "page not found"),
        (
            "POST",
            "/images/create?fromImage=busybox",
            501,
            "not supported",
        ),
    ] {
        let r = d.request(method, path, None).unwrap();
        assert_eq!(
            r.status,
            status,
            "{method} {path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert!(
            r.message().contains(needle),
            "{method} {path}: {:?} lacks {needle:?}",
            r.message()
        );
    }
    // versioned and bare paths, ping headers
    let r = d.request("HEAD", "/_ping", None).unwrap();
    assert_eq!(r.status, 200);
    let head = r.head.to_ascii_lowercase();
    for h in [
        "api-version: 1.47",
        "ostype: linux",
        "server: berth/",
        "builder-version:",
    ] {
        assert!(head.contains(h), "missing {h} in {head}");
    }
    // a malformed image archive is a 400, and nothing is loaded
    let r = d
        .request("POST", "/images/load", Some(b"this is not a tar"))
        .unwrap();
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    let r = d.request("GET", "/images/json", None).unwrap();
    assert_eq!(r.json().as_array().unwrap().len(), 1);
    assert_eq!(
        d.request("DELETE", "/containers/berth-test-x?force=1", None)
            .unwrap()
            .status,
        204
    );
}
