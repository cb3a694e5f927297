//! The client's HTTP/1.1 behaviour against a tiny protocol peer on a real unix socket: the
//! peer speaks raw HTTP written in the test (no daemon behaviour is imitated beyond the
//! bytes of the protocol).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread;

use berth_api::client::http::ChunkedReader;
use berth_api::client::{Body, Client, ClientError, Host, Request};
use berth_api::query::{ContainerAttachQuery, ContainerListQuery};
use berth_api::stream::{Demuxer, StreamType, write_frame};

struct Peer {
    _dir: tempfile::TempDir,
    path: PathBuf,
    listener: UnixListener,
}

fn peer() -> Peer {
    let dir = tempfile::Builder::new()
        .prefix("berth-test-client")
        .tempdir()
        .unwrap();
    let path = dir.path().join("api.sock");
    let listener = UnixListener::bind(&path).unwrap();
    Peer {
        _dir: dir,
        path,
        listener,
    }
}

/// Reads one request (head and a Content-Length or chunked body) from `r`.
type RawRequest = (String, Vec<(String, String)>, Vec<u8>);

fn read_request(r: &mut BufReader<UnixStream>) -> Option<RawRequest> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let request_line = line.trim_end().to_owned();
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').unwrap();
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let mut body = Vec::new();
    if let Some(len) = get("content-length") {
        body.resize(len.parse().unwrap(), 0);
        r.read_exact(&mut body).unwrap();
    } else if get("transfer-encoding").as_deref() == Some("chunked") {
        ChunkedReader::new(&mut *r).read_to_end(&mut body).unwrap();
    }
    Some((request_line, headers, body))
}

fn respond(w: &mut UnixStream, status: &str, extra: &str, body: &[u8]) {
    write!(
        w,
        "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    w.write_all(body).unwrap();
}

#[test]
fn keep_alive_reuses_one_connection_and_prefixes_the_version() {
    let p = peer();
    let client = Client::new(Host::Unix(p.path.clone()));
    let server = thread::spawn(move || {
        let (s, _) = p.listener.accept().unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut w = s;
        let mut lines = Vec::new();
        for i in 0..3 {
            let (line, _, _) = read_request(&mut r).unwrap();
            lines.push(line);
            respond(
                &mut w,
                "200 OK",
                "Content-Type: application/json\r\n",
                format!("[{i}]").as_bytes(),
            );
        }
        // No second accept: all three requests must have come on this connection.
        lines
    });
    for i in 0..3 {
        let v: Vec<i32> = client
            .call_json(
                Request::new("GET", "/containers/json").query(&ContainerListQuery {
                    all: true,
                    ..Default::default()
                }),
            )
            .unwrap();
        assert_eq!(v, [i]);
    }
    let lines = server.join().unwrap();
    assert_eq!(lines[0], "GET /v1.47/containers/json?all=1 HTTP/1.1");
    assert_eq!(lines.len(), 3);
}

#[test]
fn stale_idle_connection_is_replaced_transparently() {
    let p = peer();
    let client = Client::new(Host::Unix(p.path.clone()));
    let server = thread::spawn(move || {
        for _ in 0..2 {
            let (s, _) = p.listener.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut w = s;
            read_request(&mut r).unwrap();
            respond(&mut w, "200 OK", "", b"{}");
            // Close without "Connection: close": the client learns it on its next request.
        }
    });
    for _ in 0..2 {
        let v: serde_json::Value = client.call_json(Request::new("GET", "/info")).unwrap();
        assert_eq!(v, serde_json::json!({}));
    }
    server.join().unwrap();
}

#[test]
fn chunked_response_streams_before_it_ends() {
    let p = peer();
    let client = Client::new(Host::Unix(p.path.clone()));
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let server = thread::spawn(move || {
        let (s, _) = p.listener.accept().unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut w = s;
        read_request(&mut r).unwrap();
        write!(w, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap();
        write!(w, "6\r\nevent1\r\n").unwrap();
        // The second chunk is only sent after the client has seen the first one.
        go_rx.recv().unwrap();
        write!(w, "6\r\nevent2\r\n0\r\n\r\n").unwrap();
    });
    let mut resp = client.call(Request::new("GET", "/events")).unwrap();
    let mut first = [0u8; 6];
    resp.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"event1");
    go_tx.send(()).unwrap();
    let mut rest = String::new();
    resp.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "event2");
    server.join().unwrap();
}

#[test]
fn error_bodies_become_daemon_errors() {
    let p = peer();
    let client = Client::new(Host::Unix(p.path.clone()));
    let server = thread::spawn(move || {
        let (s, _) = p.listener.accept().unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut w = s;
        read_request(&mut r).unwrap();
        respond(
            &mut w,
            "404 Not Found",
            "",
            br#"{"message":"No such container: nope"}"#,
        );
        read_request(&mut r).unwrap();
        respond(
            &mut w,
            "500 Internal Server Error",
            "",
            b"plain text failure",
        );
    });
    let e = client
        .call_empty(Request::new("POST", "/containers/nope/start"))
        .unwrap_err();
    assert!(e.is_not_found());
    assert_eq!(
        e.to_string(),
        "Error response from daemon: No such container: nope"
    );
    let e = client.call_empty(Request::new("GET", "/info")).unwrap_err();
    assert!(
        matches!(&e, ClientError::Daemon { status: 500, message } if message == "plain text failure")
    );
    server.join().unwrap();
}

#[test]
fn streamed_upload_is_sent_chunked() {
    let p = peer();
    let client = Client::new(Host::Unix(p.path.clone()));
    let server = thread::spawn(move || {
        let (s, _) = p.listener.accept().unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut w = s;
        let (_, headers, body) = read_request(&mut r).unwrap();
        assert!(headers.contains(&("transfer-encoding".into(), "chunked".into())));
        assert!(headers.contains(&("content-type".into(), "application/x-tar".into())));
        respond(&mut w, "200 OK", "", format!("{}", body.len()).as_bytes());
        body
    });
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let resp = client
        .call(Request::new("POST", "/images/load").body(Body::Reader {
            content_type: "application/x-tar",
            reader: Box::new(std::io::Cursor::new(payload.clone())),
            len: None,
        }))
        .unwrap();
    assert_eq!(resp.bytes().unwrap(), b"200000");
    assert_eq!(server.join().unwrap(), payload);
}

#[test]
fn hijacked_attach_carries_frames_both_ways() {
    let p = peer();
    let client = Client::new(Host::Unix(p.path.clone()));
    let server = thread::spawn(move || {
        let (s, _) = p.listener.accept().unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut w = s;
        let (line, headers, _) = read_request(&mut r).unwrap();
        assert!(
            line.starts_with("POST /v1.47/containers/berth-test-c1/attach?"),
            "{line}"
        );
        assert!(headers.contains(&("upgrade".into(), "tcp".into())));
        write!(
            w,
            "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
        )
        .unwrap();
        // Output that arrives in the same packet as the head must not be lost.
        write_frame(&mut w, StreamType::Stdout, b"ready\n").unwrap();
        // Echo stdin until the client half-closes, then report on stderr and close.
        let mut input = Vec::new();
        r.read_to_end(&mut input).unwrap();
        write_frame(&mut w, StreamType::Stdout, &input).unwrap();
        write_frame(&mut w, StreamType::Stderr, b"bye\n").unwrap();
    });
    let q = ContainerAttachQuery {
        stream: true,
        stdin: true,
        stdout: true,
        stderr: true,
        ..Default::default()
    };
    let mut h = client.container_attach("berth-test-c1", &q).unwrap();
    assert_eq!(h.multiplexed, Some(true));
    h.writer.write_all(b"hello from stdin").unwrap();
    h.close_write().unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    Demuxer::new(&mut h.reader)
        .copy_to(&mut out, &mut err)
        .unwrap();
    assert_eq!(out, b"ready\nhello from stdin");
    assert_eq!(err, b"bye\n");
    server.join().unwrap();
}

#[test]
fn wait_head_returns_before_the_body() {
    let p = peer();
    let client = Client::new(Host::Unix(p.path.clone()));
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let server = thread::spawn(move || {
        let (s, _) = p.listener.accept().unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut w = s;
        let (line, _, _) = read_request(&mut r).unwrap();
        assert!(line.contains("/wait?condition=next-exit"), "{line}");
        write!(w, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap();
        go_rx.recv().unwrap();
        let body = br#"{"StatusCode":3}"#;
        write!(w, "{:x}\r\n", body.len()).unwrap();
        w.write_all(body).unwrap();
        write!(w, "\r\n0\r\n\r\n").unwrap();
    });
    let resp = client
        .container_wait(
            "berth-test-c2",
            &berth_api::query::ContainerWaitQuery {
                condition: Some(berth_api::query::WaitCondition::NextExit),
            },
        )
        .unwrap();
    // The head is here although the container has not "exited" yet.
    assert_eq!(resp.status(), 200);
    go_tx.send(()).unwrap();
    let result = berth_api::client::api::wait_result(resp).unwrap();
    assert_eq!(result.status_code, 3);
    server.join().unwrap();
}

#[test]
fn garbage_from_the_socket_is_a_protocol_error() {
    let p = peer();
    let client = Client::new(Host::Unix(p.path.clone()));
    let server = thread::spawn(move || {
        let (mut s, _) = p.listener.accept().unwrap();
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf).unwrap();
        s.write_all(b"220 smtp.example.com ESMTP\r\n\r\n").unwrap();
    });
    let e = client
        .call_empty(Request::new("GET", "/_ping"))
        .unwrap_err();
    assert!(e.to_string().contains("malformed HTTP status line"), "{e}");
    server.join().unwrap();
}
