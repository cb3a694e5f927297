//! The CLI's whole surface outside a daemon, pinned by a golden transcript
//! (`tests/golden/cli_surface.txt`): the help of every verb, unknown verbs and flags, usage
//! errors, bad flag values, and their exit codes, byte for byte. The verbs' flags are built
//! lazily (only the verb being run is built, `cli.rs`); this proves that what users see is the
//! same as with the whole tree built up front.
//!
//! The verbs come from the tree itself, so a new verb or flag shows up here as a diff. After
//! an intended change, regenerate and review the diff:
//! `BERTH_BLESS=1 cargo nextest run -p berth -E 'test(cli_surface)'`. To check a change
//! against another build, bless with that build's binary (`BERTH_SURFACE_BIN=/path/to/berth`)
//! first, then run the test as usual.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

/// A socket that does not exist: verbs that get past parsing fail to connect, the same way
/// every time, and never reach a real daemon.
const NO_DAEMON: &str = "unix:///nonexistent/berth-test-cli.sock";

/// Every verb path (`run`, `container ls`, ...), in the tree's order (built: verbs add their
/// own verbs when built; clap's generated `help` verbs are cases of their own).
fn verb_paths() -> Vec<Vec<String>> {
    let mut root = berth::cli::Cli::command();
    root.build();
    let ours = |c: &&clap::Command| c.get_name() != "help";
    let mut paths = Vec::new();
    for verb in root.get_subcommands().filter(ours) {
        paths.push(vec![verb.get_name().to_owned()]);
        for sub in verb.get_subcommands().filter(ours) {
            paths.push(vec![verb.get_name().to_owned(), sub.get_name().to_owned()]);
        }
    }
    paths
}

/// The argument lists to run: a fixed list of top-level and error cases, then for every verb
/// its help (both ways), an unknown long and short flag, and the verb alone.
fn cases() -> Vec<Vec<String>> {
    let fixed: &[&[&str]] = &[
        &[],
        &["--help"],
        &["-h"],
        &["help"],
        &["help", "help"],
        &["help", "bogus"],
        &["--version"],
        &["-v"],
        &["-D"],
        &["-H"],
        &["bogus"],
        &["--bogus"],
        &["-Z"],
        &["rn"],
        &["-Z", "run", "busybox"],
        &["--netwrk", "none", "run", "busybox"],
        &["--tlsverify", "true", "run", "busybox"],
        &["-DH", "run", "ps"],
        &["-H", "run", "ps"],
        &["--", "run", "busybox"],
        &["run", "--", "busybox"],
        &["run", "--help", "busybox"],
        &["run", "busybox", "--help"],
        &["container", "ls", "--", "x"],
        &["container", "--help"],
        &["container", "--version"],
        &["ps", "--version"],
        &["ps", "-v"],
        &["container", "bogus"],
        &["container", "list", "--help"],
        &["container", "ps", "--help"],
        &["container", "remove", "--help"],
        &["image", "list", "--help"],
        &["image", "remove", "--help"],
        &["run", "--rm", "--network", "none", "busybox", "true"],
        &["run", "--rm", "--netwrk", "none", "busybox", "true"],
        &["run", "--rm", "--restart", "always", "busybox"],
        &["run", "-m", "abc", "busybox"],
        &["run", "--sig-proxy=maybe", "busybox"],
        &["run", "--cpus", "x", "busybox"],
        &["run", "-it", "--rm"],
        &["run", "-dZ", "busybox"],
        &["create", "--name"],
        &["stop", "-t", "x", "c"],
        &["logs", "--tail"],
        &["-H", "tcp://127.0.0.1:1", "ps"],
        &["-H", "bogus://x", "version"],
        &["--tlsverify=maybe", "ps"],
        &["-D", "ps", "-a", "--format", "{{.ID}}"],
        &["history", "--human=false", "busybox"],
        &["ps", "--format", "{{.Nope"],
        &["rm", "-f"],
        &["tag", "a"],
    ];
    let mut cases: Vec<Vec<String>> = fixed
        .iter()
        .map(|c| c.iter().map(|s| s.to_string()).collect())
        .collect();
    for path in verb_paths() {
        let with = |extra: &[&str]| {
            let mut c = path.clone();
            c.extend(extra.iter().map(|s| s.to_string()));
            c
        };
        cases.push(with(&["--help"]));
        let mut help = vec!["help".to_owned()];
        help.extend(path.iter().cloned());
        cases.push(help);
        cases.push(with(&["--no-such-flag"]));
        cases.push(with(&["-Z"]));
        cases.push(with(&[]));
    }
    cases
}

/// `$ berth ARGS`, the exit code, stdout and stderr of one run.
fn transcript_of(args: &[String]) -> String {
    let bin =
        std::env::var_os("BERTH_SURFACE_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_berth").into());
    let out = Command::new(bin)
        .args(args)
        .env_clear()
        .env("BERTH_HOST", NO_DAEMON)
        .stdin(Stdio::null())
        .output()
        .expect("run the berth binary");
    let mut t = String::new();
    let _ = writeln!(t, "$ berth {}", args.join(" "));
    let _ = writeln!(t, "[exit {}]", out.status.code().unwrap_or(-1));
    for (name, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        if !bytes.is_empty() {
            let _ = writeln!(t, "--- {name}");
            t.push_str(&String::from_utf8_lossy(bytes));
            if !t.ends_with('\n') {
                t.push_str("[no newline at the end]\n");
            }
        }
    }
    t.push('\n');
    t
}

#[test]
fn cli_surface_matches_the_golden_transcript() {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/cli_surface.txt");
    let actual: String = cases().iter().map(|c| transcript_of(c)).collect();
    if std::env::var_os("BERTH_BLESS").is_some() {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(&golden, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&golden)
        .unwrap_or_else(|e| panic!("{}: {e} (create it with BERTH_BLESS=1)", golden.display()));
    if actual != expected {
        // the first differing case, whole, is what a reader needs
        let (a, e) = (actual.split("\n$ "), expected.split("\n$ "));
        let (got, want) = a
            .zip(e)
            .find(|(a, e)| a != e)
            .unwrap_or(("(more cases)", "(fewer cases)"));
        panic!(
            "the CLI's output changed (rerun with BERTH_BLESS=1 if intended, then review the \
             diff of {})\n--- expected:\n$ {want}\n--- actual:\n$ {got}",
            golden.display()
        );
    }
}
