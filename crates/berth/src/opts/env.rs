//! `-e`, `--env-file`, `-l` and `--label-file` values.

use std::path::Path;

/// Resolves an environment variable of the CLI's process.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// `-e KEY=VALUE` as is; `-e KEY` takes the value from `lookup` (the CLI's environment) and
/// stays a bare `KEY` when unset, as Docker does.
pub fn env_value(v: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let (key, has_value) = match v.split_once('=') {
        Some((k, _)) => (k, true),
        None => (v, false),
    };
    if key.is_empty() {
        return Err(format!("invalid environment variable: {v}"));
    }
    if has_value {
        return Ok(v.to_owned());
    }
    Ok(match lookup(key) {
        Some(val) => format!("{key}={val}"),
        None => v.to_owned(),
    })
}

/// Reads a Docker env file: `KEY=VALUE` lines, `#` comments and blank lines skipped, a bare
/// `KEY` takes its value from `lookup`. `what` is `env` or `label` for messages.
pub fn read_kv_file(path: &Path, lookup: Option<Lookup<'_>>) -> Result<Vec<String>, String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("open {}: {}", path.display(), io_reason(&e)))?;
    let mut out = Vec::new();
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line_no = i + 1;
        let raw = if i == 0 {
            raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw)
        } else {
            raw
        };
        let line = std::str::from_utf8(raw).map_err(|_| {
            format!(
                "env file {} contains invalid utf8 bytes at line {line_no}",
                path.display()
            )
        })?;
        let line = line.trim_end_matches('\r').trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (line, None),
        };
        if key.is_empty() {
            return Err(format!(
                "no variable name on line '{line}' of {}",
                path.display()
            ));
        }
        if key.contains(char::is_whitespace) {
            return Err(format!(
                "variable '{key}' contains whitespaces (line {line_no} of {})",
                path.display()
            ));
        }
        match (value, lookup) {
            (Some(v), _) => out.push(format!("{key}={v}")),
            (None, Some(lookup)) => out.push(match lookup(key) {
                Some(v) => format!("{key}={v}"),
                None => key.to_owned(),
            }),
            (None, None) => out.push(key.to_owned()),
        }
    }
    Ok(out)
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(k: &str) -> Option<String> {
        (k == "HOME_DIR").then(|| "/home/me".to_owned())
    }

    #[test]
    fn env_values() {
        assert_eq!(env_value("A=1", &lookup), Ok("A=1".into()));
        assert_eq!(env_value("A=", &lookup), Ok("A=".into()));
        assert_eq!(
            env_value("HOME_DIR", &lookup),
            Ok("HOME_DIR=/home/me".into())
        );
        assert_eq!(env_value("UNSET", &lookup), Ok("UNSET".into()));
        assert_eq!(
            env_value("=x", &lookup).unwrap_err(),
            "invalid environment variable: =x"
        );
    }

    #[test]
    fn env_files() {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-env")
            .tempdir()
            .unwrap();
        let p = dir.path().join("app.env");
        std::fs::write(
            &p,
            "\u{feff}# comment\nA=1\n\n  B=two words\r\nHOME_DIR\nUNSET\nC==x\n",
        )
        .unwrap();
        let got = read_kv_file(&p, Some(&lookup)).unwrap();
        assert_eq!(
            got,
            ["A=1", "B=two words", "HOME_DIR=/home/me", "UNSET", "C==x"]
        );
        std::fs::write(&p, "BAD KEY=1\n").unwrap();
        assert!(
            read_kv_file(&p, Some(&lookup))
                .unwrap_err()
                .contains("contains whitespaces")
        );
        std::fs::write(&p, "=1\n").unwrap();
        assert!(
            read_kv_file(&p, Some(&lookup))
                .unwrap_err()
                .contains("no variable name")
        );
        std::fs::write(&p, b"A=\xff\n").unwrap();
        assert!(read_kv_file(&p, None).unwrap_err().contains("invalid utf8"));
        let e = read_kv_file(&dir.path().join("missing.env"), None).unwrap_err();
        assert!(e.contains("no such file or directory"), "{e}");
    }
}
