//! Docker's human-readable durations, sizes and container status texts (the `go-units`
//! rules), so that `berth ps` and `docker ps` against berthd print the same words.

use std::time::{Duration, SystemTime};

/// `47 seconds`, `About a minute`, `3 hours`, `2 weeks`, ... (`units.HumanDuration`).
pub fn human_duration(d: Duration) -> String {
    let seconds = d.as_secs();
    if seconds < 1 {
        return "Less than a second".into();
    }
    if seconds == 1 {
        return "1 second".into();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = seconds / 60;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (d.as_secs_f64() / 3600.0).round() as u64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", seconds / 3600 / 24 / 365)
}

/// The time from `then` to `now`; zero when `then` is in the future (clock skew).
pub fn elapsed(then: SystemTime, now: SystemTime) -> Duration {
    now.duration_since(then).unwrap_or_default()
}

/// `2.5MB`-style size with 4 significant digits (`units.HumanSize`).
pub fn human_size(bytes: f64) -> String {
    human_size_with_precision(bytes, 4)
}

/// Decimal units (`B`, `kB`, `MB`, ...) with `precision` significant digits
/// (`units.HumanSizeWithPrecision`; `docker images` and `docker ps -s` use 3).
pub fn human_size_with_precision(bytes: f64, precision: usize) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut size = bytes;
    let mut i = 0;
    while size >= 1000.0 && i < UNITS.len() - 1 {
        size /= 1000.0;
        i += 1;
    }
    format!("{}{}", format_g(size, precision), UNITS[i])
}

/// `4.26MiB`-style size with binary units (`units.BytesSize`).
pub fn bytes_size(bytes: f64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut size = bytes;
    let mut i = 0;
    while size >= 1024.0 && i < UNITS.len() - 1 {
        size /= 1024.0;
        i += 1;
    }
    format!("{}{}", format_g(size, 4), UNITS[i])
}

/// Go's `%.{precision}g`: `precision` significant digits, trailing zeros dropped, exponent
/// form (`1e+03`) when the exponent is below -4 or at least `precision`.
pub fn format_g(x: f64, precision: usize) -> String {
    let p = precision.max(1);
    if x == 0.0 {
        return "0".into();
    }
    if !x.is_finite() {
        return if x.is_nan() {
            "NaN".into()
        } else if x > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let sci = format!("{:.*e}", p - 1, x);
    let (mantissa, exp) = sci.split_once('e').expect("{:e} always has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    if exp < -4 || exp >= p as i32 {
        let m = trim_fraction(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        trim_fraction(&format!("{x:.decimals$}")).to_owned()
    }
}

fn trim_fraction(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// What the `Status` text of a container (in `GET /containers/json`) is computed from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusInput<'a> {
    /// The process is running (also while paused or restarting).
    pub running: bool,
    /// Frozen.
    pub paused: bool,
    /// Waiting to be restarted by its restart policy.
    pub restarting: bool,
    /// Being removed.
    pub removing: bool,
    /// Failed to be removed.
    pub dead: bool,
    /// When it last started; `None` if never.
    pub started_at: Option<SystemTime>,
    /// When it last exited; `None` if never.
    pub finished_at: Option<SystemTime>,
    /// The last exit code.
    pub exit_code: i64,
    /// Health status (`starting`, `healthy`, `unhealthy`) when a healthcheck is configured.
    pub health: Option<&'a str>,
}

/// Docker's status text: `Up 2 seconds`, `Up 3 hours (Paused)`, `Up 1 second (healthy)`,
/// `Restarting (1) 5 seconds ago`, `Exited (0) 3 seconds ago`, `Created`, `Removal In
/// Progress`, `Dead`.
pub fn container_status(s: &StatusInput<'_>, now: SystemTime) -> String {
    let since =
        |t: Option<SystemTime>| human_duration(t.map(|t| elapsed(t, now)).unwrap_or_default());
    if s.running {
        if s.paused {
            return format!("Up {} (Paused)", since(s.started_at));
        }
        if s.restarting {
            return format!("Restarting ({}) {} ago", s.exit_code, since(s.finished_at));
        }
        if let Some(h) = s.health {
            let h = if h == "starting" {
                "health: starting".to_owned()
            } else {
                h.to_owned()
            };
            return format!("Up {} ({h})", since(s.started_at));
        }
        return format!("Up {}", since(s.started_at));
    }
    if s.removing {
        return "Removal In Progress".into();
    }
    if s.dead {
        return "Dead".into();
    }
    if s.started_at.is_none() {
        return "Created".into();
    }
    if s.finished_at.is_none() {
        return String::new();
    }
    format!("Exited ({}) {} ago", s.exit_code, since(s.finished_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1;
    const MIN: u64 = 60;
    const HOUR: u64 = 3600;
    const DAY: u64 = 24 * HOUR;
    const WEEK: u64 = 7 * DAY;
    const MONTH: u64 = 30 * DAY;
    const YEAR: u64 = 365 * DAY;

    #[test]
    fn durations_match_go_units() {
        let cases: &[(Duration, &str)] = &[
            (Duration::from_millis(450), "Less than a second"),
            (Duration::from_secs(SEC), "1 second"),
            (Duration::from_secs(45), "45 seconds"),
            (Duration::from_secs(59), "59 seconds"),
            (Duration::from_secs(60), "About a minute"),
            (Duration::from_secs(3 * MIN), "3 minutes"),
            (Duration::from_secs(35 * MIN + 40), "35 minutes"),
            (Duration::from_secs(59 * MIN), "59 minutes"),
            (Duration::from_secs(HOUR), "About an hour"),
            (Duration::from_secs(HOUR + 29 * MIN), "About an hour"),
            (Duration::from_secs(HOUR + 31 * MIN), "2 hours"),
            (Duration::from_secs(3 * HOUR + 29 * MIN), "3 hours"),
            (Duration::from_secs(3 * HOUR + 31 * MIN), "4 hours"),
            (Duration::from_secs(DAY), "24 hours"),
            (Duration::from_secs(DAY + 12 * HOUR), "36 hours"),
            (Duration::from_secs(2 * DAY), "2 days"),
            (Duration::from_secs(13 * DAY + 5 * HOUR), "13 days"),
            (Duration::from_secs(2 * WEEK), "2 weeks"),
            (Duration::from_secs(2 * WEEK + 4 * DAY), "2 weeks"),
            (Duration::from_secs(MONTH), "4 weeks"),
            (Duration::from_secs(MONTH + 2 * WEEK), "6 weeks"),
            (Duration::from_secs(2 * MONTH), "2 months"),
            (Duration::from_secs(5 * MONTH + 2 * WEEK), "5 months"),
            (Duration::from_secs(24 * MONTH), "24 months"),
            (Duration::from_secs(24 * MONTH + 2 * WEEK), "2 years"),
            (Duration::from_secs(3 * YEAR + 2 * MONTH), "3 years"),
        ];
        for (d, want) in cases {
            assert_eq!(human_duration(*d), *want, "{d:?}");
        }
    }

    #[test]
    fn sizes_match_go_units() {
        let cases: &[(f64, usize, &str)] = &[
            (0.0, 3, "0B"),
            (1.0, 3, "1B"),
            (999.0, 3, "999B"),
            (1000.0, 3, "1kB"),
            (1024.0, 3, "1.02kB"),
            (4_261_234.0, 3, "4.26MB"),
            (123_456_789.0, 3, "123MB"),
            (999_500.0, 3, "1e+03kB"),
            (1_000_000_000_000.0, 3, "1TB"),
            (1024.0, 4, "1.024kB"),
            (3_450_000.0, 4, "3.45MB"),
        ];
        for (bytes, p, want) in cases {
            assert_eq!(human_size_with_precision(*bytes, *p), *want, "{bytes}");
        }
        assert_eq!(human_size(4_261_234.0), "4.261MB");
        assert_eq!(bytes_size(1536.0), "1.5KiB");
        assert_eq!(bytes_size(512.0 * 1024.0 * 1024.0), "512MiB");
    }

    #[test]
    fn go_g_formatting() {
        assert_eq!(format_g(0.000012345, 3), "1.23e-05");
        assert_eq!(format_g(0.00012345, 3), "0.000123");
        assert_eq!(format_g(1234.5, 3), "1.23e+03");
        assert_eq!(format_g(12.0, 3), "12");
        assert_eq!(format_g(1.5, 3), "1.5");
        assert_eq!(format_g(-2.25, 2), "-2.2");
    }

    #[test]
    fn status_texts() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let ago = |s: u64| Some(now - Duration::from_secs(s));
        let base = StatusInput::default();
        assert_eq!(container_status(&base, now), "Created");
        let running = StatusInput {
            running: true,
            started_at: ago(2),
            ..base.clone()
        };
        assert_eq!(container_status(&running, now), "Up 2 seconds");
        let paused = StatusInput {
            paused: true,
            ..running.clone()
        };
        assert_eq!(container_status(&paused, now), "Up 2 seconds (Paused)");
        let healthy = StatusInput {
            health: Some("healthy"),
            ..running.clone()
        };
        assert_eq!(container_status(&healthy, now), "Up 2 seconds (healthy)");
        let starting = StatusInput {
            health: Some("starting"),
            ..running.clone()
        };
        assert_eq!(
            container_status(&starting, now),
            "Up 2 seconds (health: starting)"
        );
        let restarting = StatusInput {
            restarting: true,
            exit_code: 1,
            finished_at: ago(5),
            ..running.clone()
        };
        assert_eq!(
            container_status(&restarting, now),
            "Restarting (1) 5 seconds ago"
        );
        let exited = StatusInput {
            started_at: ago(100),
            finished_at: ago(3),
            exit_code: 137,
            ..base.clone()
        };
        assert_eq!(container_status(&exited, now), "Exited (137) 3 seconds ago");
        let removing = StatusInput {
            removing: true,
            ..exited.clone()
        };
        assert_eq!(container_status(&removing, now), "Removal In Progress");
        let future = StatusInput {
            running: true,
            started_at: Some(now + Duration::from_secs(10)),
            ..base
        };
        assert_eq!(container_status(&future, now), "Up Less than a second");
    }
}
