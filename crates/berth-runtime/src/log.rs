//! runc-style logging: `--log FILE` with `--log-format json` writes logrus JSON lines
//! (`{"level":"error","msg":"...","time":"..."}`), which containerd reads back to report why
//! a runtime call failed; errors also go to stderr.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::Mutex;

use crate::Global;

pub struct Logger {
    file: Option<Mutex<File>>,
    json: bool,
    debug: bool,
}

/// Sets up the logger (and routes the library's `tracing` warnings into it).
pub fn init(g: &Global) -> &'static Logger {
    let file = g.log.as_ref().and_then(|p| {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .map(Mutex::new)
            .map_err(|e| eprintln!("cannot open log file {}: {e}", p.display()))
            .ok()
    });
    let logger: &'static Logger = Box::leak(Box::new(Logger {
        file,
        json: g.log_format == "json",
        debug: g.debug,
    }));
    let _ = tracing::subscriber::set_global_default(Subscriber { logger });
    logger
}

impl Logger {
    pub fn log(&self, level: &str, msg: &str) {
        match &self.file {
            Some(f) => {
                let line = if self.json {
                    serde_json::json!({
                        "level": level,
                        "msg": msg,
                        "time": jiff::Timestamp::now().to_string(),
                    })
                    .to_string()
                } else {
                    format!(
                        "time=\"{}\" level={level} msg={:?}",
                        jiff::Timestamp::now(),
                        msg
                    )
                };
                if let Ok(mut f) = f.lock() {
                    let _ = writeln!(f, "{line}");
                }
            }
            None if level != "error" => eprintln!("{level}: {msg}"),
            None => {}
        }
    }

    /// An error: logged, and printed on stderr (what callers show the user).
    pub fn error(&self, msg: &str) {
        self.log("error", msg);
        eprintln!("{msg}");
    }
}

struct Subscriber {
    logger: &'static Logger,
}

struct MessageVisitor(String);

impl tracing::field::Visit for MessageVisitor {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        } else if !self.0.is_empty() {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.0 = value.to_string();
        } else {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
}

impl tracing::Subscriber for Subscriber {
    fn enabled(&self, m: &tracing::Metadata<'_>) -> bool {
        *m.level() <= tracing::Level::WARN
            || (self.logger.debug && *m.level() <= tracing::Level::DEBUG)
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, e: &tracing::Event<'_>) {
        let mut v = MessageVisitor(String::new());
        e.record(&mut v);
        let level = match *e.metadata().level() {
            tracing::Level::ERROR => "error",
            tracing::Level::WARN => "warning",
            tracing::Level::INFO => "info",
            _ => "debug",
        };
        self.logger.log(level, &v.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}
