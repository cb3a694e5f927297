//! Giving memory back after big operations.
//!
//! A `load` of a large image or a busy burst of container starts leaves glibc's arenas holding
//! freed heap (and blocking threads their stacks and caches) long after the work is done, so
//! an idle daemon would look many megabytes bigger than a fresh one. Every API request bumps
//! an activity counter; a background task calls `malloc_trim(0)` (all arenas, including free
//! pages in the middle of heaps) once the API has been quiet for a moment after any activity.
//! Nothing is trimmed on the request path, and a daemon that stays idle is never woken to
//! trim again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

static ACTIVITY: AtomicU64 = AtomicU64::new(0);

/// Records API activity (a request arrived or was answered).
pub fn touch() {
    ACTIVITY.fetch_add(1, Ordering::Relaxed);
}

/// When to trim: after activity, once the counter has not moved for `quiet`.
#[derive(Debug)]
pub struct IdleTrim {
    quiet: Duration,
    seen: u64,
    trimmed: u64,
    stable_since: Instant,
}

impl IdleTrim {
    pub fn new(quiet: Duration, count: u64, now: Instant) -> IdleTrim {
        IdleTrim {
            quiet,
            seen: count,
            trimmed: count,
            stable_since: now,
        }
    }

    /// Feeds one sample of the activity counter; true when it is time to trim.
    pub fn sample(&mut self, count: u64, now: Instant) -> bool {
        if count != self.seen {
            self.seen = count;
            self.stable_since = now;
            return false;
        }
        if count != self.trimmed && now.duration_since(self.stable_since) >= self.quiet {
            self.trimmed = count;
            return true;
        }
        false
    }
}

/// Runs forever: trims the heap once the API has been quiet for `quiet` after activity.
pub async fn trim_when_idle(quiet: Duration) {
    let mut state = IdleTrim::new(quiet, ACTIVITY.load(Ordering::Relaxed), Instant::now());
    let mut tick = tokio::time::interval(quiet / 2);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if state.sample(ACTIVITY.load(Ordering::Relaxed), Instant::now()) {
            let released = berth_sys::process::malloc_trim();
            tracing::debug!(released, "idle: returned free heap to the kernel");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_once_after_a_quiet_period_following_activity() {
        let t0 = Instant::now();
        let q = Duration::from_secs(1);
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut s = IdleTrim::new(q, 0, t0);
        // Fresh and idle: nothing to give back.
        assert!(!s.sample(0, at(500)));
        assert!(!s.sample(0, at(5000)));
        // Activity, still busy.
        assert!(!s.sample(3, at(5500)));
        assert!(!s.sample(7, at(6000)));
        // Quiet, but not for long enough yet.
        assert!(!s.sample(7, at(6500)));
        // Quiet for a second: trim, once.
        assert!(s.sample(7, at(7000)));
        assert!(!s.sample(7, at(7500)));
        assert!(!s.sample(7, at(60_000)));
        // New activity starts the wait again.
        assert!(!s.sample(8, at(60_500)));
        assert!(!s.sample(8, at(61_000)));
        assert!(s.sample(8, at(61_500)));
    }
}
