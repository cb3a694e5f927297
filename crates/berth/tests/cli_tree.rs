//! The whole verb tree passes clap's consistency checks, which otherwise only run (and
//! panic) when a verb is first parsed in a debug build.

/// Regression: `berth history` panicked because its `-H/--human` clashed with the global
/// `-H/--host`.
#[test]
fn cli_tree_has_no_conflicting_flags() {
    berth::cli::Cli::command().debug_assert();
}

#[test]
fn history_parses_with_a_global_host() {
    let cli = berth::cli::Cli::try_parse_from(&[
        "berth",
        "-H",
        "unix:///x.sock",
        "history",
        "--human=false",
        "busybox",
    ]);
    let cli = cli.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cli.global.host.as_deref(), Some("unix:///x.sock"));
}

/// The shortcut of `Cli::try_parse_from` (a root with only the verb being run) parses to the
/// same as the whole tree, including when a global option's value looks like a verb.
#[test]
fn one_verb_parses_like_the_whole_tree() {
    let lines: &[&[&str]] = &[
        &[
            "-H",
            "unix:///x.sock",
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "true",
        ],
        &[
            "run", "-it", "-e", "A=1", "-v", "/a:/b:ro", "busybox", "sh", "-c", "x",
        ],
        &["container", "run", "-d", "--name", "c", "busybox"],
        &["create", "--name", "x", "-p", "80:80", "busybox"],
        &["start", "-a", "c"],
        &["stop", "-t", "1", "c", "d"],
        &["restart", "c"],
        &["kill", "-s", "HUP", "c"],
        &["rm", "-f", "c"],
        &["ps", "-a", "-q", "--format", "{{.ID}}"],
        &["logs", "-f", "--tail", "3", "c"],
        &["wait", "c"],
        &["inspect", "-f", "{{.Id}}", "c"],
        &["rename", "a", "b"],
        &["images", "-q"],
        &["rmi", "x"],
        &["tag", "a", "b"],
        &["load", "-i", "f"],
        &["save", "-o", "f", "x"],
        &["import", "f", "x"],
        &["export", "-o", "f", "c"],
        &["history", "--human=false", "x"],
        &["image", "ls"],
        &["image", "list", "-q"],
        &["container", "ls", "-a"],
        &["container", "list"],
        &["system", "df"],
        &["system", "prune", "-f"],
        &["version", "--format", "{{.Server.Version}}"],
        &["info"],
        &["events", "--since", "1m"],
        &["-D", "ps"],
        &["ps", "-D", "-H", "unix:///y.sock"],
        &["--tlsverify", "-H", "tcp://127.0.0.1:1", "ps"],
        &["-DH", "run", "ps"],
        &["-H", "run", "ps"],
        &["-v"],
        &["-D", "--tlsverify=false"],
    ];
    for line in lines {
        let mut argv = vec!["berth"];
        argv.extend_from_slice(line);
        let shortcut =
            berth::cli::Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        let mut matches = berth::cli::Cli::command()
            .try_get_matches_from(&argv)
            .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        let whole = berth::cli::Cli::from_matches(&mut matches).unwrap();
        assert_eq!(format!("{shortcut:?}"), format!("{whole:?}"), "{argv:?}");
    }
}
