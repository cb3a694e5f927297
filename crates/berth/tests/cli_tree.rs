//! The whole verb tree passes clap's consistency checks, which otherwise only run (and
//! panic) when a verb is first parsed in a debug build.

use clap::CommandFactory;

/// Regression: `berth history` panicked because its `-H/--human` clashed with the global
/// `-H/--host`.
#[test]
fn cli_tree_has_no_conflicting_flags() {
    berth::cli::Cli::command().debug_assert();
}

#[test]
fn history_parses_with_a_global_host() {
    let cli = <berth::cli::Cli as clap::Parser>::try_parse_from([
        "berth",
        "-H",
        "unix:///x.sock",
        "history",
        "--human=false",
        "busybox",
    ]);
    let cli = cli.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cli.host.as_deref(), Some("unix:///x.sock"));
}
