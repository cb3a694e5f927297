//! `--format` handling shared by the list commands, after Docker's formatter: `table ...`
//! (tab-aligned with a header row), `json` (one JSON object per line), or any Go template
//! rendered once per row.

pub mod container;
pub mod image;
pub mod tabwriter;

use crate::template::{Template, Value};

/// A format that failed to parse or render: `template parsing error: ...` like Docker's.
#[derive(Debug, thiserror::Error)]
#[error("template parsing error: {0}")]
pub struct FormatError(pub String);

/// A prepared `--format`.
pub struct Formatter {
    template: Template,
    table: bool,
    /// `{{json .}}` of a whole row: escaped like Go's `json.Marshal` (docker's rows marshal
    /// themselves), so `<none>` prints as `\u003cnone\u003e`.
    row_json: bool,
    /// The Go type docker's rows have (`*formatter.ContainerContext`): unknown fields are
    /// `can't evaluate field X in type T`.
    row_type: Option<&'static str>,
}

impl Formatter {
    /// [`Formatter::new`] for rows that stand for docker's formatter context `row_type`.
    pub fn typed(format: &str, row_type: &'static str) -> Result<Formatter, FormatError> {
        let mut f = Formatter::new(format)?;
        f.row_type = Some(row_type);
        Ok(f)
    }

    /// Prepares `format` (already defaulted by the command): strips `table`, maps `json` to
    /// `{{json .}}`, turns literal `\t` and `\n` into tabs and newlines.
    pub fn new(format: &str) -> Result<Formatter, FormatError> {
        let table = format.starts_with("table");
        let mut body = if table {
            format["table".len()..].to_owned()
        } else if format == "json" {
            "{{json .}}".to_owned()
        } else {
            format.to_owned()
        };
        body = body
            .trim_matches(' ')
            .replace("\\t", "\t")
            .replace("\\n", "\n");
        let template = Template::parse(&body).map_err(|e| FormatError(e.to_string()))?;
        let row_json = body.trim() == "{{json .}}";
        Ok(Formatter {
            template,
            table,
            row_json,
            row_type: None,
        })
    }

    /// True for a `table` format.
    pub fn is_table(&self) -> bool {
        self.table
    }

    /// Renders every row (each followed by a newline); for tables, the header row rendered
    /// over `header` (field → column title) comes first and columns are aligned.
    pub fn render(&self, rows: &[Value], header: &Value) -> Result<String, FormatError> {
        let mut body = String::new();
        for row in rows {
            let line = match self.row_type {
                Some(t) => self.template.execute_as(row, t),
                None => self.template.execute(row),
            }
            .map_err(|e| FormatError(e.to_string()))?;
            if self.row_json {
                body.push_str(&crate::template::funcs::go_json_escape(&line));
            } else {
                body.push_str(&line);
            }
            body.push('\n');
        }
        if !self.table {
            return Ok(body);
        }
        let head = self
            .template
            .execute_header(header)
            .map_err(|e| FormatError(e.to_string()))?;
        Ok(tabwriter::tabwrite(&format!("{head}\n{body}"), 10, 3))
    }
}

/// Docker's `TruncateID`: the first 12 hex digits, without the `sha256:` prefix.
pub fn truncate_id(id: &str) -> String {
    let id = id.split_once(':').map(|(_, h)| h).unwrap_or(id);
    id.chars().take(12).collect()
}

/// Docker's `Ellipsis`: fits `s` into `max` display columns, ending in `…` when cut.
pub fn ellipsis(s: &str, max: usize) -> String {
    use unicode_width::UnicodeWidthChar;
    if max == 0 {
        return String::new();
    }
    let width: usize = s.chars().map(|c| c.width().unwrap_or(0)).sum();
    if width <= max {
        return s.to_owned();
    }
    if max == 1 {
        return s.chars().next().map(String::from).unwrap_or_default();
    }
    let mut out = String::new();
    let mut w = 0;
    for c in s.chars() {
        let cw = c.width().unwrap_or(0);
        if w + cw > max - 1 {
            break;
        }
        w += cw;
        out.push(c);
    }
    out.push('…');
    out
}

/// The familiar form of an image reference: `docker.io/library/busybox:latest` →
/// `busybox:latest`, `docker.io/user/app` → `user/app`.
pub fn familiar_name(reference: &str) -> String {
    let r = reference.strip_prefix("docker.io/").unwrap_or(reference);
    let r = r.strip_prefix("library/").unwrap_or(r);
    r.to_owned()
}

/// Go's `time.Unix(secs, 0).String()` in the local time zone:
/// `2024-01-02 15:04:05 +0100 CET`.
pub fn go_time_string(secs: i64) -> String {
    let Ok(ts) = jiff::Timestamp::from_second(secs) else {
        return secs.to_string();
    };
    let zoned = ts.to_zoned(jiff::tz::TimeZone::system());
    zoned.strftime("%Y-%m-%d %H:%M:%S %z %Z").to_string()
}

/// Go's `time.RFC3339` of a UNIX time in the local zone (`2024-01-02T03:04:05Z`), as docker's
/// `history` rows print `CreatedAt`.
pub fn rfc3339_local(secs: i64) -> String {
    let Ok(ts) = jiff::Timestamp::from_second(secs) else {
        return secs.to_string();
    };
    let zoned = ts.to_zoned(jiff::tz::TimeZone::system());
    if zoned.offset().seconds() == 0 {
        zoned.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        zoned.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: `--format json` printed `"<none>"` where docker prints `"\u003cnone\u003e"`
    /// (a row marshals itself with Go's escaping); `{{json .Field}}` stays unescaped.
    #[test]
    fn row_json_escapes_like_go() {
        let rows = [Value::Map(vec![("D".into(), Value::Str("<none>&".into()))])];
        let head = Value::Map(Vec::new());
        let f = Formatter::new("json").unwrap();
        assert_eq!(
            f.render(&rows, &head).unwrap(),
            "{\"D\":\"\\u003cnone\\u003e\\u0026\"}\n"
        );
        let f = Formatter::new("{{json .D}}").unwrap();
        assert_eq!(f.render(&rows, &head).unwrap(), "\"<none>&\"\n");
    }

    #[test]
    fn table_format_aligns_with_header() {
        let f = Formatter::new("table {{.ID}}\\t{{.Name}}").unwrap();
        let rows = vec![
            Value::Map(vec![
                ("ID".into(), Value::str("abc")),
                ("Name".into(), Value::str("web")),
            ]),
            Value::Map(vec![
                ("ID".into(), Value::str("0123456789ab")),
                ("Name".into(), Value::str("db")),
            ]),
        ];
        let header = Value::Map(vec![
            ("ID".into(), Value::str("CONTAINER ID")),
            ("Name".into(), Value::str("NAME")),
        ]);
        assert_eq!(
            f.render(&rows, &header).unwrap(),
            "CONTAINER ID   NAME\nabc            web\n0123456789ab   db\n"
        );
        // Header only when there are no rows.
        assert_eq!(f.render(&[], &header).unwrap(), "CONTAINER ID   NAME\n");
    }

    #[test]
    fn json_and_custom_formats() {
        let rows = vec![Value::Map(vec![("ID".into(), Value::str("abc"))])];
        let header = Value::Map(vec![]);
        assert_eq!(
            Formatter::new("json")
                .unwrap()
                .render(&rows, &header)
                .unwrap(),
            "{\"ID\":\"abc\"}\n"
        );
        assert_eq!(
            Formatter::new("id={{.ID}}\\n")
                .unwrap()
                .render(&rows, &header)
                .unwrap(),
            "id=abc\n\n"
        );
        let e = Formatter::new("{{.ID").err().unwrap().to_string();
        assert_eq!(e, "template parsing error: template: :1: unclosed action");
        let e = Formatter::new("{{.Nope}}")
            .unwrap()
            .render(&rows, &header)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("template parsing error: template: :1:2: executing"),
            "{e}"
        );
    }

    #[test]
    fn display_helpers() {
        assert_eq!(
            truncate_id("sha256:4fa6e0f0c6786287e131c3852c58a2e01cc6"),
            "4fa6e0f0c678"
        );
        assert_eq!(truncate_id("4fa6e0f0c6786287e131"), "4fa6e0f0c678");
        assert_eq!(
            ellipsis("sh -c 'while true; do sleep 1; done'", 20),
            "sh -c 'while true; …"
        );
        assert_eq!(ellipsis("short", 20), "short");
        assert_eq!(ellipsis("中文中文中文", 5), "中文…");
        assert_eq!(
            familiar_name("docker.io/library/busybox:latest"),
            "busybox:latest"
        );
        assert_eq!(familiar_name("docker.io/user/app"), "user/app");
        assert_eq!(familiar_name("registry:5000/x"), "registry:5000/x");
    }
}
