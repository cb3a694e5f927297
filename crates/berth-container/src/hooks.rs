//! Lifecycle hooks: run each with the container state as JSON on stdin, its own argv and env,
//! and a timeout after which it is killed.

use berth_oci::spec::runtime::Hook;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::state::OciState;

/// Runs `hooks` in order; the first failure stops the list.
pub fn run_hooks(stage: &'static str, hooks: &[Hook], state: &OciState) -> Result<()> {
    if hooks.is_empty() {
        return Ok(());
    }
    let json = serde_json::to_vec(state).map_err(|e| Error::io("encode hook state", e))?;
    for h in hooks {
        run_hook(stage, h, &json)?;
    }
    Ok(())
}

/// Runs hooks whose failure must not stop anything (poststart, poststop): failures are
/// logged as warnings and returned for the caller to report.
pub fn run_hooks_warn(stage: &'static str, hooks: &[Hook], state: &OciState) -> Vec<Error> {
    let Ok(json) = serde_json::to_vec(state) else {
        return Vec::new();
    };
    let mut errors = Vec::new();
    for h in hooks {
        if let Err(e) = run_hook(stage, h, &json) {
            tracing::warn!("{e}");
            errors.push(e);
        }
    }
    errors
}

fn run_hook(stage: &'static str, h: &Hook, state_json: &[u8]) -> Result<()> {
    let path = h.path().display().to_string();
    let fail = |reason: String| Error::Hook {
        stage,
        path: path.clone(),
        reason,
    };
    let mut cmd = Command::new(h.path());
    if let Some((arg0, rest)) = h.args().as_deref().and_then(|a| a.split_first()) {
        cmd.arg0(arg0);
        cmd.args(rest);
    }
    cmd.env_clear();
    for e in h.env().as_deref().unwrap_or_default() {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    // stdin is a socket, not a pipe: the state is sent with MSG_NOSIGNAL, so a hook that
    // exits without reading it cannot kill us with SIGPIPE (whose disposition is default in
    // the container's process, and unknown in a library caller).
    let (ours, theirs) = std::os::unix::net::UnixStream::pair()
        .map_err(|e| fail(format!("socketpair for stdin: {e}")))?;
    cmd.stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let spawned = cmd.spawn();
    drop(cmd);
    let mut child = spawned.map_err(|e| fail(format!("cannot start: {e}")))?;
    let pidfd = rustix::process::Pid::from_raw(child.id() as i32)
        .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok());
    let mut sent = 0;
    while sent < state_json.len() {
        match rustix::net::send(&ours, &state_json[sent..], rustix::net::SendFlags::NOSIGNAL) {
            Ok(n) => sent += n,
            Err(rustix::io::Errno::INTR) => continue,
            // The hook does not read its stdin: not our failure.
            Err(_) => break,
        }
    }
    let _ = rustix::net::shutdown(&ours, rustix::net::Shutdown::Write);
    let timeout = h.timeout().map(|t| Duration::from_secs(t as u64));
    let status = match (timeout, pidfd) {
        (Some(t), Some(pidfd)) => {
            let deadline = Instant::now() + t;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(fail(format!("timed out after {} s (killed)", t.as_secs())));
                }
                let ts = rustix::time::Timespec {
                    tv_sec: left.as_secs() as i64,
                    tv_nsec: left.subsec_nanos() as i64,
                };
                let mut fds = [rustix::event::PollFd::new(
                    &pidfd,
                    rustix::event::PollFlags::IN,
                )];
                match rustix::event::poll(&mut fds, Some(&ts)) {
                    Ok(n) if n > 0 => break child.wait(),
                    Ok(_) | Err(rustix::io::Errno::INTR) => continue,
                    Err(e) => return Err(fail(format!("poll: {e}"))),
                }
            }
        }
        _ => child.wait(),
    }
    .map_err(|e| fail(format!("wait: {e}")))?;
    if status.success() {
        return Ok(());
    }
    let mut stderr = String::new();
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut stderr);
    }
    let stderr = stderr.trim();
    Err(fail(format!(
        "{status}{}{}",
        if stderr.is_empty() { "" } else { ": " },
        stderr
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Status;

    fn hook(json: &str) -> Hook {
        serde_json::from_str(json).unwrap()
    }

    fn state() -> OciState {
        OciState {
            oci_version: "1.2.1".into(),
            id: "berth-test-hook".into(),
            status: Status::Creating,
            pid: 42,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: String::new(),
            owner: String::new(),
            annotations: Default::default(),
        }
    }

    #[test]
    fn hook_gets_state_args_and_env() {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-hooks")
            .tempdir()
            .unwrap();
        let out = dir.path().join("out");
        let h = hook(&format!(
            r#"{{"path":"/bin/sh","args":["sh","-c","cat > {0}; echo \"$0 $1 $FOO\" >> {0}","zero","one"],"env":["FOO=bar"]}}"#,
            out.display()
        ));
        run_hooks("prestart", &[h], &state()).unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.contains(r#""id":"berth-test-hook""#), "{text}");
        assert!(text.contains(r#""status":"creating""#), "{text}");
        assert!(text.ends_with("zero one bar\n"), "{text}");
    }

    #[test]
    fn failing_and_slow_hooks_are_errors() {
        let h = hook(r#"{"path":"/bin/sh","args":["sh","-c","echo boom >&2; exit 3"]}"#);
        let e = run_hooks("createRuntime", &[h], &state())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("createRuntime hook /bin/sh") && e.contains("boom"),
            "{e}"
        );
        let h = hook(r#"{"path":"/bin/sleep","args":["sleep","30"],"timeout":1}"#);
        let t = Instant::now();
        let e = run_hooks("prestart", &[h], &state())
            .unwrap_err()
            .to_string();
        assert!(e.contains("timed out after 1 s"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(20));
        let h = hook(r#"{"path":"/nonexistent/hook"}"#);
        let e = run_hooks("poststop", std::slice::from_ref(&h), &state())
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot start"), "{e}");
        assert_eq!(run_hooks_warn("poststop", &[h], &state()).len(), 1);
    }
}
