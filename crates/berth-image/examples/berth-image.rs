//! A tiny command line over the image library, for benchmarks and manual checks (the real
//! CLI is `berth`, talking to `berthd`):
//!
//! ```text
//! berth-image --root DIR load -i FILE          (or stdin)
//! berth-image --root DIR save -o FILE [--oci] NAME...
//! berth-image --root DIR rmi [-f] NAME
//! berth-image --root DIR images | fsck | gc
//! ```

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use berth_image::*;
use berth_store::Store;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut take = |flag: &str| -> Option<String> {
        let i = args.iter().position(|a| a == flag)?;
        args.remove(i);
        (i < args.len()).then(|| args.remove(i))
    };
    let root = take("--root").ok_or("--root DIR is required")?;
    let input = take("-i");
    let output = take("-o");
    let oci = args
        .iter()
        .position(|a| a == "--oci")
        .map(|i| args.remove(i))
        .is_some();
    let force = args
        .iter()
        .position(|a| a == "-f")
        .map(|i| args.remove(i))
        .is_some();
    let cmd = if args.is_empty() {
        String::new()
    } else {
        args.remove(0)
    };
    let store = Store::open(&root)?;
    match cmd.as_str() {
        "load" => {
            let rep = match input {
                Some(p) => load(&store, File::open(&p)?, &LoadOptions::default())?,
                None => load(&store, io::stdin().lock(), &LoadOptions::default())?,
            };
            for m in rep.messages() {
                println!("{m}");
            }
        }
        "save" => {
            let names: Vec<&str> = args.iter().map(String::as_str).collect();
            let format = if oci {
                SaveFormat::Oci
            } else {
                SaveFormat::Docker
            };
            match output {
                Some(p) => {
                    let mut w = BufWriter::with_capacity(1 << 20, File::create(&p)?);
                    save(&store, &names, &mut w, format)?;
                    w.flush()?;
                }
                None => save(&store, &names, BufWriter::new(io::stdout().lock()), format)?,
            }
        }
        "rmi" => {
            for name in &args {
                for item in remove(
                    &store,
                    name,
                    RemoveOptions {
                        force,
                        no_prune: false,
                    },
                    &|_| false,
                )? {
                    match item {
                        DeleteItem::Untagged(t) => println!("Untagged: {t}"),
                        DeleteItem::Deleted(d) => println!("Deleted: {d}"),
                    }
                }
            }
        }
        "images" => {
            for s in list(&store, &ListOptions::default())? {
                println!("{} {:?} {}", &s.id[7..19], s.repo_tags, s.size);
            }
        }
        "fsck" => {
            let r = store.fsck()?;
            println!(
                "{} blobs ({} bytes) and {} images checked; {} errors, {} garbage",
                r.blobs_checked,
                r.bytes_checked,
                r.images_checked,
                r.errors.len(),
                r.garbage.len()
            );
            for e in &r.errors {
                println!("error: {e}");
            }
            if !r.is_clean() {
                return Err("the store is inconsistent".into());
            }
        }
        "gc" => println!("{:?}", store.gc()?),
        other => {
            return Err(
                format!("unknown command {other:?} (load, save, rmi, images, fsck, gc)").into(),
            );
        }
    }
    Ok(())
}
