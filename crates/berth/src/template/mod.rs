//! A Go `text/template` engine over JSON, for `--format`.
//!
//! Why our own: the `gtmpl` crate (evaluated first) converts data into unordered hash maps,
//! so `{{json .}}` would scramble the daemon's field order, and it has no methods with
//! arguments, which Docker's list formatting needs (`{{.Label "com.example"}}`). Go's
//! template language is small; parser and evaluator are a few hundred lines with golden tests
//! below, and a bad template is an error (never a panic) worded like Go's, which the CLI
//! prefixes with `template parsing error: ` as Docker does.

mod exec;
pub mod funcs;
mod parse;
pub mod value;

pub use exec::{ExecError, MissingKey};
pub use parse::ParseError;
pub use value::Value;

use exec::Exec;
use funcs::FuncSet;

/// A template that failed to parse or execute.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("{0}")]
    Parse(ParseError),
    #[error("{0}")]
    Exec(ExecError),
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    tree: parse::Tree,
}

impl Template {
    /// Parses Go template source.
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        parse::parse(src, &funcs::is_func)
            .map(|tree| Template { tree })
            .map_err(TemplateError::Parse)
    }

    /// Renders over `data`; a missing map key is an error (Docker's behaviour for inspect
    /// and list formatting).
    pub fn execute(&self, data: &Value) -> Result<String, TemplateError> {
        Exec::new(&self.tree, FuncSet::Basic, MissingKey::Error)
            .run(data)
            .map_err(TemplateError::Exec)
    }

    /// Renders over `data` standing for the Go struct `type_name` (docker's row contexts):
    /// a missing field is `can't evaluate field X in type T`, as docker's formatter says.
    pub fn execute_as(
        &self,
        data: &Value,
        type_name: &'static str,
    ) -> Result<String, TemplateError> {
        Exec::new(&self.tree, FuncSet::Basic, MissingKey::Struct(type_name))
            .run(data)
            .map_err(TemplateError::Exec)
    }

    /// Renders over `data` standing for nested Go structs ([`MissingKey::Types`]).
    pub fn execute_typed(
        &self,
        data: &Value,
        types: &'static [(&'static str, &'static str)],
    ) -> Result<String, TemplateError> {
        Exec::new(&self.tree, FuncSet::Basic, MissingKey::Types(types))
            .run(data)
            .map_err(TemplateError::Exec)
    }

    /// Renders a table header over `header` (field name → column title) with Docker's header
    /// functions; missing keys print `<no value>`.
    pub fn execute_header(&self, header: &Value) -> Result<String, TemplateError> {
        Exec::new(&self.tree, FuncSet::Header, MissingKey::NoValue)
            .run(header)
            .map_err(TemplateError::Exec)
    }
}

/// Parses and renders in one step.
pub fn render(src: &str, data: &Value) -> Result<String, TemplateError> {
    Template::parse(src)?.execute(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inspect_data() -> Value {
        Value::from_json(
            br#"{
            "Id": "4fa6e0f0c6786287e131c3852c58a2e01cc697a68231826813597e4994f1d6e2",
            "Name": "/web",
            "State": {"Status": "running", "Running": true, "Pid": 4242, "ExitCode": 0, "Health": null},
            "Config": {
                "Labels": {"com.example.vendor": "ACME", "version": "1.0"},
                "Env": ["PATH=/usr/bin", "A=1"],
                "Cmd": ["sh", "-c", "echo hi"],
                "Tty": false
            },
            "HostConfig": {"Memory": 536870912, "NanoCpus": 1500000000, "Binds": null},
            "Mounts": [],
            "Ratio": 0.25
        }"#,
        )
        .unwrap()
    }

    fn ok(src: &str) -> String {
        render(src, &inspect_data()).unwrap_or_else(|e| panic!("{src}: {e}"))
    }

    fn err(src: &str) -> String {
        match render(src, &inspect_data()) {
            Ok(out) => panic!("{src}: expected an error, got {out:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn golden_renders() {
        let cases: &[(&str, &str)] = &[
            ("{{.State.Status}}", "running"),
            (
                "{{.ID}}",
                "4fa6e0f0c6786287e131c3852c58a2e01cc697a68231826813597e4994f1d6e2",
            ),
            ("{{.State.Pid}}", "4242"),
            ("{{.HostConfig.Memory}}", "536870912"),
            ("{{.Ratio}}", "0.25"),
            ("{{.State.Health}}", "<nil>"),
            ("{{.HostConfig.Binds}}", "<nil>"),
            ("{{.Mounts}}", "[]"),
            ("{{.Config.Cmd}}", "[sh -c echo hi]"),
            (
                "{{.Config.Labels}}",
                "map[com.example.vendor:ACME version:1.0]",
            ),
            (r#"{{index .Config.Labels "com.example.vendor"}}"#, "ACME"),
            (r#"{{index .Config.Labels "missing"}}"#, ""),
            ("{{index .Config.Cmd 1}}", "-c"),
            (
                "{{json .State}}",
                r#"{"Status":"running","Running":true,"Pid":4242,"ExitCode":0,"Health":null}"#,
            ),
            (
                "{{json .Config.Labels}}",
                r#"{"com.example.vendor":"ACME","version":"1.0"}"#,
            ),
            (
                "{{range .Config.Env}}[{{.}}]{{end}}",
                "[PATH=/usr/bin][A=1]",
            ),
            (
                "{{range $i, $e := .Config.Cmd}}{{$i}}={{$e}} {{end}}",
                "0=sh 1=-c 2=echo hi ",
            ),
            (
                "{{range $k, $v := .Config.Labels}}{{$k}}:{{$v}};{{end}}",
                "com.example.vendor:ACME;version:1.0;",
            ),
            ("{{range .Mounts}}x{{else}}none{{end}}", "none"),
            ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
            (
                "{{if .Config.Tty}}tty{{else if .State.Running}}running{{else}}other{{end}}",
                "running",
            ),
            (
                "{{if eq .State.Status \"exited\" \"running\"}}yes{{end}}",
                "yes",
            ),
            ("{{if ne .State.ExitCode 0}}bad{{else}}good{{end}}", "good"),
            ("{{if and .State.Running (not .Config.Tty)}}ok{{end}}", "ok"),
            ("{{or .Config.Tty \"fallback\"}}", "fallback"),
            ("{{if gt .State.Pid 1}}big{{end}}", "big"),
            ("{{if lt .Ratio 1}}small{{end}}", "small"),
            ("{{with .State}}{{.Status}}{{end}}", "running"),
            (
                "{{with .State.Health}}h{{else}}no health{{end}}",
                "no health",
            ),
            ("{{join .Config.Cmd \" \"}}", "sh -c echo hi"),
            ("{{split \"a:b:c\" \":\"}}", "[a b c]"),
            ("{{lower .State.Status | upper}}", "RUNNING"),
            ("{{.Name | printf \"%q\"}}", "\"/web\""),
            (
                "{{printf \"%s has pid %d\" .Name .State.Pid}}",
                "/web has pid 4242",
            ),
            (
                "{{printf \"%-6s|%5d|%05d|%.2f|%x|%v|%t\" \"ab\" 42 42 3.14159 255 .Config.Cmd true}}",
                "ab    |   42|00042|3.14|ff|[sh -c echo hi]|true",
            ),
            ("{{printf \"%d\"}}", "%!d(MISSING)"),
            ("{{printf \"%d\" \"x\"}}", "%!d(string=x)"),
            ("{{printf \"a\" 1}}", "a%!(EXTRA int=1)"),
            ("{{len .Config.Env}}", "2"),
            ("{{len .Name}}", "4"),
            ("{{title \"hello world\"}}", "Hello World"),
            ("{{pad .State.Status 1 2}}|", " running  |"),
            ("{{truncate .ID 12}}", "4fa6e0f0c678"),
            ("{{slice .ID 0 4}}", "4fa6"),
            ("{{$n := .Name}}{{$n}}{{$n = \"x\"}}{{$n}}", "/webx"),
            ("{{range .Config.Cmd}}{{$.Name}}{{break}}{{end}}", "/web"),
            (
                "{{range $i, $e := .Config.Cmd}}{{if eq $i 1}}{{continue}}{{end}}{{$e}},{{end}}",
                "sh,echo hi,",
            ),
            ("{{range 3}}{{.}}{{end}}", "012"),
            ("a  {{- .State.Status -}}  b", "arunningb"),
            ("{{/* a comment */}}x{{- /* trimmed */ -}} y", "xy"),
            ("{{\"\\t\"}}|{{`raw\\n`}}", "\t|raw\\n"),
            ("{{print 1 2 \"a\" 3}}", "1 2a3"),
            ("{{println .Name .State.Pid}}", "/web 4242\n"),
            ("{{(index .Config.Cmd 0)}}", "sh"),
            ("{{(.State).Status}}", "running"),
            (
                "{{define \"T\"}}<{{.}}>{{end}}{{template \"T\" .State.Status}}",
                "<running>",
            ),
            ("{{block \"B\" .Name}}[{{.}}]{{end}}", "[/web]"),
            (
                "{{0x10}} {{-1}} {{1.5}} {{'a'}} {{true}}",
                "16 -1 1.5 97 true",
            ),
            (
                "{{urlquery \"a b&c\"}} {{html \"<x>\"}}",
                "a+b%26c &lt;x&gt;",
            ),
            (
                "{{json .}}",
                r#"{"Id":"4fa6e0f0c6786287e131c3852c58a2e01cc697a68231826813597e4994f1d6e2","Name":"/web","State":{"Status":"running","Running":true,"Pid":4242,"ExitCode":0,"Health":null},"Config":{"Labels":{"com.example.vendor":"ACME","version":"1.0"},"Env":["PATH=/usr/bin","A=1"],"Cmd":["sh","-c","echo hi"],"Tty":false},"HostConfig":{"Memory":536870912,"NanoCpus":1500000000,"Binds":null},"Mounts":[],"Ratio":0.25}"#,
            ),
        ];
        for (src, want) in cases {
            assert_eq!(ok(src), *want, "template {src}");
        }
    }

    #[test]
    fn methods_with_arguments() {
        let labels = Value::Map(vec![("a".into(), Value::str("1"))]);
        let data = Value::Map(vec![
            ("ID".into(), Value::str("abc")),
            (
                "Label".into(),
                Value::func(move |args| {
                    let [Value::Str(k)] = args else {
                        return Err(format!(
                            "wrong number of args for Label: want 1 got {}",
                            args.len()
                        ));
                    };
                    Ok(labels.field(k).cloned().unwrap_or(Value::str("")))
                }),
            ),
        ]);
        assert_eq!(
            render(r#"{{.Label "a"}}|{{.Label "b"}}"#, &data).unwrap(),
            "1|"
        );
        assert_eq!(render(r#"{{"a" | .Label}}"#, &data).unwrap(), "1");
        let e = render(r#"{{.ID "x"}}"#, &data).unwrap_err().to_string();
        assert!(e.contains("can't give argument to non-function .ID"), "{e}");
        // Methods are not part of the JSON form.
        assert_eq!(render("{{json .}}", &data).unwrap(), r#"{"ID":"abc"}"#);
    }

    #[test]
    fn execution_errors_read_like_go() {
        assert_eq!(
            err("{{.Nope}}"),
            r#"template: :1:2: executing "" at <.Nope>: map has no entry for key "Nope""#
        );
        assert_eq!(
            err("{{.State.Health.Status}}"),
            r#"template: :1:8: executing "" at <.State.Health.Status>: nil pointer evaluating interface {}.Status"#
        );
        assert_eq!(
            err("{{.Name.Foo}}"),
            r#"template: :1:7: executing "" at <.Name.Foo>: can't evaluate field Foo in type interface {}"#
        );
        assert!(err("{{index .Config.Cmd 9}}").contains("index out of range: 9"));
        assert!(err("{{len 3}}").contains("len of type int"));
        assert!(err("{{lt .Config.Cmd 1}}").contains("invalid type for comparison"));
        assert!(err("{{eq .Name 1}}").contains("incompatible types for comparison"));
        assert!(err("{{range .Name}}{{end}}").contains("range can't iterate over /web"));
        assert!(err("{{template \"missing\"}}").contains("no template \"missing\""));
        assert!(err("{{$x}}").contains("undefined variable: $x"));
        assert!(err("line1\n{{.Nope}}").starts_with("template: :2:2:"));
        assert!(
            err("{{define \"r\"}}{{template \"r\" .}}{{end}}{{template \"r\" .}}")
                .contains("maximum template depth")
        );
    }

    #[test]
    fn parse_errors_read_like_go() {
        let e = |src: &str| Template::parse(src).unwrap_err().to_string();
        assert_eq!(e("{{foo}}"), r#"template: :1: function "foo" not defined"#);
        assert_eq!(e("{{.A"), "template: :1: unclosed action");
        assert_eq!(e("{{if .A}}x"), "template: :1: unexpected EOF");
        assert_eq!(e("{{end}}"), "template: :1: unexpected {{end}}");
        assert_eq!(e("{{else}}"), "template: :1: unexpected {{else}}");
        assert!(e("{{\"abc}}").contains("unterminated quoted string"));
        assert!(e("{{}}").contains("missing value for command"));
        assert!(e("{{.A | }}").contains("missing command after |"));
        assert!(e("{{(.A}}").contains("unclosed left paren"));
        assert!(e("{{.A)}}").contains("unexpected right paren"));
        assert!(e("{{/* x }}").contains("unclosed comment"));
        assert!(e("{{ # }}").contains("unexpected '#' in command"));
        assert!(e("x\n\n{{nope}}").starts_with("template: :3:"));
    }

    #[test]
    fn header_mode_uses_identity_functions_and_no_value() {
        let header = Value::Map(vec![
            ("Names".into(), Value::str("NAMES")),
            ("ID".into(), Value::str("CONTAINER ID")),
        ]);
        let t = Template::parse("{{upper .Names}}\t{{json .ID}}\t{{.Other}}\t{{pad .Names 1 1}}")
            .unwrap();
        assert_eq!(
            t.execute_header(&header).unwrap(),
            "NAMES\tCONTAINER ID\t<no value>\t NAMES "
        );
    }

    #[test]
    fn hostile_templates_never_panic() {
        // Every prefix of a set of tricky templates must parse-or-fail cleanly and, when it
        // parses, execute-or-fail cleanly.
        let sources = [
            r#"{{range $i, $e := .Config.Cmd}}{{if eq $i 1}}{{continue}}{{else if gt $i 5}}{{break}}{{end}}{{printf "%-5.2q|%#v" $e $e}}{{end}}"#,
            r#"{{with $x := index .Config.Labels "version"}}{{$x | printf "%s" | upper}}{{else}}none{{end}}"#,
            r#"{{define "a"}}{{template "a" .}}{{end}}{{(slice .ID 1 3).Foo}}{{'\u00e9'}}{{"\x41\u00e9"}}"#,
            "{{- /* c */ -}}{{ .A . . }}{{$}}{{$.}}{{..}}{{.A.}}{{ (( )) }}{{ 1e3 }}{{ 0b101 }}{{ 0o17 }}{{ 1_000 }}{{ -0x1p-2 }}",
        ];
        for src in sources {
            for end in 0..=src.len() {
                if !src.is_char_boundary(end) {
                    continue;
                }
                if let Ok(t) = Template::parse(&src[..end]) {
                    let _ = t.execute(&inspect_data());
                    let _ = t.execute_header(&inspect_data());
                }
            }
        }
    }
}
