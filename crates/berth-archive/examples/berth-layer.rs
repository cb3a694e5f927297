//! A small command line over berth-archive, for benchmarks and poking at layers by hand.
//!
//! ```text
//! berth-layer apply LAYER|- DEST [--delete] [--sync] [--max-size BYTES]
//! berth-layer diff UPPER OUT|-      (overlay upper dir → layer tar)
//! berth-layer tar DIR OUT|-         (plain tree → tar)
//! berth-layer changes UPPER [LOWER...]
//! ```
//! Prints a one-line summary (diff ID, sizes, entries) on stderr.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use berth_archive::{ApplyOptions, DiffOptions, WhiteoutMode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth-layer: {e}");
            ExitCode::FAILURE
        }
    }
}

fn input(path: &str) -> io::Result<Box<dyn Read>> {
    Ok(if path == "-" {
        Box::new(io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(path)?)
    })
}

fn output(path: &str) -> io::Result<Box<dyn Write>> {
    Ok(if path == "-" {
        Box::new(io::stdout().lock())
    } else {
        Box::new(std::fs::File::create(path)?)
    })
}

fn run(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let usage = "usage: berth-layer apply LAYER DEST [--delete] [--sync] [--max-size N] | diff UPPER OUT | tar DIR OUT | changes UPPER [LOWER...]";
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.parse().ok());
    match args.first().map(String::as_str) {
        Some("apply") if args.len() >= 3 => {
            let mut opts = ApplyOptions::default();
            let mut rest = args[3..].iter();
            while let Some(flag) = rest.next() {
                match flag.as_str() {
                    "--delete" => opts.whiteouts = WhiteoutMode::Delete,
                    "--sync" => opts.sync = true,
                    "--max-size" => {
                        opts.max_total_size = rest.next().ok_or(usage)?.parse()?;
                    }
                    _ => return Err(usage.into()),
                }
            }
            let stats = berth_archive::apply_layer(input(&args[1])?, Path::new(&args[2]), &opts)?;
            eprintln!(
                "{} uncompressed={} entries={}",
                stats.diff_id, stats.uncompressed_size, stats.entries
            );
        }
        Some(cmd @ ("diff" | "tar")) if args.len() == 3 => {
            let opts = DiffOptions {
                source_date_epoch: epoch,
            };
            let out = io::BufWriter::new(output(&args[2])?);
            let stats = if cmd == "diff" {
                berth_archive::write_diff(Path::new(&args[1]), out, &opts)?
            } else {
                berth_archive::write_dir_tar(Path::new(&args[1]), out, &opts)?
            };
            eprintln!(
                "{} size={} entries={}",
                stats.diff_id, stats.size, stats.entries
            );
        }
        Some("changes") if args.len() >= 2 => {
            let lowers: Vec<PathBuf> = args[2..].iter().map(PathBuf::from).collect();
            for c in berth_archive::changes_with_lowers(Path::new(&args[1]), &lowers)? {
                println!("{c}");
            }
        }
        _ => return Err(usage.into()),
    }
    Ok(())
}
