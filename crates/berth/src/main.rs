//! The `berth` binary: parses argv, runs the verb, exits with Docker's exit codes.
#![forbid(unsafe_code)]

fn main() {
    std::process::exit(berth::run_cli(std::env::args_os()));
}
