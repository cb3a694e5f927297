//! A container's state and the ONE function that changes it.
//!
//! ```text
//!             start                pause
//!  created ─────────▶ running ◀──────────▶ paused
//!     │  ▲ start fails    │      unpause      │
//!     │  └───(error)      │ exit              │ exit
//!     │                   ▼                   │
//!     │      start     exited ◀───────────────┘
//!     │   ┌─────────────┘ │
//!     ▼   ▼               ▼
//!   (running)          removing ──▶ (record deleted)
//!                         │ removal failed
//!                         ▼
//!                        dead
//! ```
//!
//! Every change goes through [`apply`], which rejects illegal transitions with Docker's
//! messages and kinds (409 conflict, 304 not modified), so no caller can leave a record in a
//! state the rest of the engine does not expect.

use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};

/// Docker's `State.Status` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "created" => Status::Created,
            "running" => Status::Running,
            "paused" => Status::Paused,
            "restarting" => Status::Restarting,
            "removing" => Status::Removing,
            "exited" => Status::Exited,
            "dead" => Status::Dead,
            _ => return None,
        })
    }

    /// Whether a process (and its shim) exists: running or paused.
    pub fn is_alive(self) -> bool {
        matches!(self, Status::Running | Status::Paused | Status::Restarting)
    }
}

/// Docker's zero time, shown for times that never happened.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// The persisted state (Docker's `State`, without Health for now).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub status: Status,
    #[serde(default)]
    pub oom_killed: bool,
    #[serde(default)]
    pub pid: i64,
    #[serde(default)]
    pub exit_code: i64,
    #[serde(default)]
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
}

impl Default for State {
    fn default() -> Self {
        State {
            status: Status::Created,
            oom_killed: false,
            pid: 0,
            exit_code: 0,
            error: String::new(),
            started_at: ZERO_TIME.into(),
            finished_at: ZERO_TIME.into(),
        }
    }
}

/// What happened to a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// The process runs (`pid` on the host).
    Started {
        pid: i64,
        at: String,
    },
    /// Creating or starting the process failed; the container stays where it was, with the
    /// error and Docker's exit code for it (127 not found, 126 cannot invoke, 128 otherwise).
    StartFailed {
        error: String,
        exit_code: i64,
    },
    Paused,
    Unpaused,
    /// The process is gone.
    Exited {
        exit_code: i64,
        oom_killed: bool,
        at: String,
        error: String,
    },
    /// `rm` began (from a stopped container; running ones are stopped first).
    RemovalStarted,
    /// `rm` failed half-way.
    RemovalFailed {
        error: String,
    },
}

/// Applies `t` to `state` for container `id` (used in messages), or explains why it cannot
/// happen. The one place container status changes.
pub fn apply(id: &str, state: &mut State, t: Transition) -> Result<()> {
    use Status::*;
    let s = state.status;
    match t {
        Transition::Started { pid, at } => match s {
            Created | Exited => {
                state.status = Running;
                state.pid = pid;
                state.started_at = at;
                state.exit_code = 0;
                state.error.clear();
                state.oom_killed = false;
            }
            Running | Restarting => {
                return Err(EngineError::NotModified("container already started".into()));
            }
            Paused => {
                return Err(EngineError::conflict(
                    "cannot start a paused container, try unpause instead",
                ));
            }
            Removing => {
                return Err(EngineError::conflict(format!(
                    "container is marked for removal and cannot be started: {id}"
                )));
            }
            Dead => {
                return Err(EngineError::conflict(format!(
                    "container {id} is dead and cannot be started; remove it with: rm -f"
                )));
            }
        },
        Transition::StartFailed { error, exit_code } => match s {
            Created | Exited => {
                state.error = error;
                state.exit_code = exit_code;
            }
            _ => return Err(illegal(id, s, "record a failed start")),
        },
        Transition::Paused => match s {
            Running => state.status = Paused,
            Paused => {
                return Err(EngineError::conflict(format!(
                    "Container {id} is already paused"
                )));
            }
            _ => {
                return Err(EngineError::conflict(format!(
                    "Container {id} is not running"
                )));
            }
        },
        Transition::Unpaused => match s {
            Paused => state.status = Running,
            _ => {
                return Err(EngineError::conflict(format!(
                    "Container {id} is not paused"
                )));
            }
        },
        Transition::Exited {
            exit_code,
            oom_killed,
            at,
            error,
        } => match s {
            Running | Paused | Restarting => {
                state.status = Exited;
                state.pid = 0;
                state.exit_code = exit_code;
                state.oom_killed = oom_killed;
                state.finished_at = at;
                state.error = error;
            }
            _ => return Err(illegal(id, s, "record an exit")),
        },
        Transition::RemovalStarted => match s {
            Created | Exited | Dead => state.status = Removing,
            Removing => {
                return Err(EngineError::conflict(format!(
                    "removal of container {id} is already in progress"
                )));
            }
            Running | Paused | Restarting => {
                return Err(EngineError::conflict(format!(
                    "cannot remove container {id}: container is running: stop the container before removing or force remove"
                )));
            }
        },
        Transition::RemovalFailed { error } => match s {
            Removing => {
                state.status = Dead;
                state.error = error;
            }
            _ => return Err(illegal(id, s, "record a failed removal")),
        },
    }
    Ok(())
}

fn illegal(id: &str, s: Status, what: &str) -> EngineError {
    EngineError::conflict(format!(
        "container {id} is {}: cannot {what} in this state",
        s.as_str()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_oci::errdefs::{Classify, ErrorKind};

    fn started() -> Transition {
        Transition::Started {
            pid: 42,
            at: "2026-01-01T00:00:00Z".into(),
        }
    }
    fn exited(code: i64) -> Transition {
        Transition::Exited {
            exit_code: code,
            oom_killed: false,
            at: "2026-01-01T00:00:01Z".into(),
            error: String::new(),
        }
    }

    #[test]
    fn full_lifecycle_is_legal() {
        let mut s = State::default();
        apply("c", &mut s, started()).unwrap();
        assert_eq!((s.status, s.pid), (Status::Running, 42));
        apply("c", &mut s, Transition::Paused).unwrap();
        apply("c", &mut s, Transition::Unpaused).unwrap();
        apply("c", &mut s, exited(3)).unwrap();
        assert_eq!((s.status, s.pid, s.exit_code), (Status::Exited, 0, 3));
        assert_eq!(s.finished_at, "2026-01-01T00:00:01Z");
        // restart after exit clears the old exit code
        apply("c", &mut s, started()).unwrap();
        assert_eq!(s.exit_code, 0);
        apply("c", &mut s, exited(0)).unwrap();
        apply("c", &mut s, Transition::RemovalStarted).unwrap();
        assert_eq!(s.status, Status::Removing);
    }

    #[test]
    fn illegal_transitions_are_rejected_with_dockers_kinds() {
        let mut s = State::default();
        let e = apply("abc", &mut s, Transition::Paused).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert_eq!(e.to_string(), "Container abc is not running");
        let e = apply("abc", &mut s, exited(1)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict);
        apply("abc", &mut s, started()).unwrap();
        let e = apply("abc", &mut s, started()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotModified);
        let e = apply("abc", &mut s, Transition::RemovalStarted).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert!(e.to_string().contains("container is running"), "{e}");
        apply("abc", &mut s, Transition::Paused).unwrap();
        let e = apply("abc", &mut s, started()).unwrap_err();
        assert!(e.to_string().contains("unpause"), "{e}");
        let e = apply("abc", &mut s, Transition::Unpaused);
        assert!(e.is_ok());
        let e = apply("abc", &mut s, Transition::Unpaused).unwrap_err();
        assert_eq!(e.to_string(), "Container abc is not paused");
    }

    #[test]
    fn a_removing_container_cannot_start_and_a_failed_removal_is_dead() {
        let mut s = State::default();
        apply("c", &mut s, Transition::RemovalStarted).unwrap();
        let e = apply("c", &mut s, started()).unwrap_err();
        assert!(e.to_string().contains("marked for removal"), "{e}");
        apply(
            "c",
            &mut s,
            Transition::RemovalFailed {
                error: "busy".into(),
            },
        )
        .unwrap();
        assert_eq!(s.status, Status::Dead);
        // a dead container can still be removed
        apply("c", &mut s, Transition::RemovalStarted).unwrap();
    }

    #[test]
    fn failed_start_keeps_status_and_records_error() {
        let mut s = State::default();
        apply(
            "c",
            &mut s,
            Transition::StartFailed {
                error: "exec: \"nope\": executable file not found in $PATH".into(),
                exit_code: 127,
            },
        )
        .unwrap();
        assert_eq!(s.status, Status::Created);
        assert_eq!(s.exit_code, 127);
        assert!(s.error.contains("nope"));
    }

    #[test]
    fn status_names_round_trip() {
        for st in [
            Status::Created,
            Status::Running,
            Status::Paused,
            Status::Restarting,
            Status::Removing,
            Status::Exited,
            Status::Dead,
        ] {
            assert_eq!(Status::parse(st.as_str()), Some(st));
            assert_eq!(
                serde_json::to_value(st).unwrap(),
                serde_json::Value::from(st.as_str())
            );
        }
    }
}
