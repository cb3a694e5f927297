//! One module per verb. Each exposes its clap `Args` and `run(&Ctx, args) -> Result<i32>`.

pub mod container;
pub mod create;
pub mod events;
pub mod export;
pub mod history;
pub mod image;
pub mod images;
pub mod import;
pub mod info;
pub mod inspect;
pub mod kill;
pub mod load;
pub mod logs;
pub mod prune;
pub mod ps;
pub mod rename;
pub mod restart;
pub mod rm;
pub mod rmi;
pub mod run;
pub mod save;
pub mod start;
pub mod stop;
pub mod system;
pub mod tag;
pub mod version;
pub mod wait;

use std::io::Write;
use std::time::SystemTime;

use anyhow::Result;
use berth_api::client::{Client, Host};

use crate::StatusError;
use crate::cli::{Cli, Command};

/// What every command gets: the client (connected lazily on first use).
pub struct Ctx {
    pub client: Client,
    pub debug: bool,
}

impl Ctx {
    /// The current time (list commands humanize ages against it).
    pub fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Runs the parsed command line.
pub fn dispatch(cli: Cli) -> Result<i32> {
    if cli.global.version {
        println!("Berth version {}", env!("CARGO_PKG_VERSION"));
        return Ok(0);
    }
    let Some(command) = cli.command else {
        return Err(
            StatusError::new(125, "berth: a command is required; see 'berth --help'").into(),
        );
    };
    let host = Host::resolve_with_tls(
        cli.global.host.as_deref(),
        &cli.global.tls.to_flags(),
        |k| std::env::var(k).ok(),
    )
    .map_err(|e| StatusError::new(125, e.to_string()))?;
    let ctx = Ctx {
        client: Client::new(host),
        debug: cli.global.debug,
    };
    match command {
        Command::Run(a) => run::run(&ctx, a),
        Command::Create(a) => create::run(&ctx, a),
        Command::Start(a) => start::run(&ctx, a),
        Command::Stop(a) => stop::run(&ctx, a),
        Command::Restart(a) => restart::run(&ctx, a),
        Command::Kill(a) => kill::run(&ctx, a),
        Command::Rm(a) => rm::run(&ctx, a),
        Command::Ps(a) => ps::run(&ctx, a),
        Command::Logs(a) => logs::run(&ctx, a),
        Command::Wait(a) => wait::run(&ctx, a),
        Command::Inspect(a) => inspect::run(&ctx, a),
        Command::Rename(a) => rename::run(&ctx, a),
        Command::Images(a) => images::run(&ctx, a),
        Command::Rmi(a) => rmi::run(&ctx, a),
        Command::Tag(a) => tag::run(&ctx, a),
        Command::Load(a) => load::run(&ctx, a),
        Command::Save(a) => save::run(&ctx, a),
        Command::Import(a) => import::run(&ctx, a),
        Command::Export(a) => export::run(&ctx, a),
        Command::History(a) => history::run(&ctx, a),
        Command::Image(c) => image::run(&ctx, c.command),
        Command::Container(c) => container::run(&ctx, c.command),
        Command::System(c) => system::run(&ctx, c.command),
        Command::Version(a) => version::run(&ctx, a),
        Command::Info(a) => info::run(&ctx, a),
        Command::Events(a) => events::run(&ctx, a),
    }
}

/// Applies `op` to each name, printing the name on success, then the errors on stderr once
/// all are done, like docker's multi-container verbs; exit code 1 if any failed.
pub fn for_each(names: &[String], mut op: impl FnMut(&str) -> Result<()>) -> Result<i32> {
    let mut errors = Vec::new();
    let mut out = std::io::stdout().lock();
    for name in names {
        match op(name) {
            Ok(()) => {
                writeln!(out, "{name}")?;
            }
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    out.flush()?;
    for e in &errors {
        eprintln!("{e}");
    }
    Ok(if errors.is_empty() { 0 } else { 1 })
}

/// Runs `op` on up to `limit` names at once (one thread each) and returns the results in
/// the order of `names`: docker's CLI removes, stops and kills up to 50 containers at once
/// (its `parallelOperation`) and prints them in the order given. One name runs on the
/// calling thread. The client opens a connection per request in flight.
pub fn map_parallel<T: Send>(
    names: &[String],
    limit: usize,
    op: impl Fn(&str) -> T + Sync,
) -> Vec<T> {
    let workers = limit.min(names.len());
    if workers <= 1 {
        return names.iter().map(|n| op(n)).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        for _ in 0..workers {
            let tx = tx.clone();
            let (next, op) = (&next, &op);
            s.spawn(move || {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(name) = names.get(i) else { break };
                    if tx.send((i, op(name))).is_err() {
                        break;
                    }
                }
            });
        }
    });
    drop(tx);
    let mut results: Vec<(usize, T)> = rx.into_iter().collect();
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Writes `text` to stdout.
pub fn print(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Asks `question [y/N]` on the terminal; true for `y`/`yes`.
pub fn confirm(question: &str) -> Result<bool> {
    eprint!("{question} [y/N] ");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// Refuses to write binary data to a terminal (`docker save` without `-o`).
pub fn refuse_terminal_stdout(what: &str) -> Result<()> {
    if rustix::termios::isatty(std::io::stdout()) {
        return Err(StatusError::new(
            1,
            format!(
                "cowardly refusing to save to a terminal. Use the -o flag or redirect ({what})"
            ),
        )
        .into());
    }
    Ok(())
}

/// Docker's timestamp arguments (`--since`, `--until`): RFC 3339 times, dates, UNIX
/// timestamps (`1700000000[.123]`), or durations before now (`10m`, `1h30m`). Returns the
/// API's `seconds.nanoseconds` form.
pub fn api_timestamp(value: &str, now: SystemTime) -> Result<String> {
    let v = value.trim();
    if v.is_empty() {
        anyhow::bail!("invalid timestamp: empty value");
    }
    if let Ok(nanos) = crate::opts::units::go_duration_nanos(v) {
        let now_ns = now.duration_since(SystemTime::UNIX_EPOCH)?.as_nanos() as i128;
        let t = now_ns - nanos as i128;
        return Ok(format!(
            "{}.{:09}",
            t.div_euclid(1_000_000_000),
            t.rem_euclid(1_000_000_000)
        ));
    }
    if v.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && v.bytes().filter(|b| *b == b'.').count() <= 1
    {
        let (s, frac) = v.split_once('.').unwrap_or((v, ""));
        return Ok(format!("{s}.{:0<9}", &frac[..frac.len().min(9)]));
    }
    if let Ok(ts) = v.parse::<jiff::Timestamp>() {
        return Ok(format!("{}.{:09}", ts.as_second(), ts.subsec_nanosecond()));
    }
    let tz = jiff::tz::TimeZone::system();
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d",
    ] {
        let parsed = if fmt == "%Y-%m-%d" {
            jiff::civil::Date::strptime(fmt, v)
                .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
        } else {
            jiff::civil::DateTime::strptime(fmt, v)
        };
        if let Ok(dt) = parsed
            && let Ok(z) = dt.to_zoned(tz.clone())
        {
            let ts = z.timestamp();
            return Ok(format!("{}.{:09}", ts.as_second(), ts.subsec_nanosecond()));
        }
    }
    anyhow::bail!(
        "invalid value for timestamp {value:?}: expected an RFC 3339 time, a UNIX timestamp or a duration like 10m"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            api_timestamp("1700000000", now).unwrap(),
            "1700000000.000000000"
        );
        assert_eq!(
            api_timestamp("1700000000.5", now).unwrap(),
            "1700000000.500000000"
        );
        assert_eq!(api_timestamp("10m", now).unwrap(), "1699999400.000000000");
        assert_eq!(
            api_timestamp("2023-11-14T22:13:20Z", now).unwrap(),
            "1700000000.000000000"
        );
        assert!(api_timestamp("yesterday", now).is_err());
        assert!(api_timestamp("", now).is_err());
    }
}
