//! `checkpoint` / `restore`: not supported (no CRIU integration).

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Any arguments (ignored).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

pub fn run(what: &str) -> anyhow::Result<i32> {
    anyhow::bail!(
        "{what} is not supported by berth-runtime: it has no CRIU integration (use runc for \
         checkpoint/restore)"
    )
}
