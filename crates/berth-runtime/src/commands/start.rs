//! `start`: let a created container run its process.

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Container id.
    pub id: String,
}

pub fn run(g: &crate::Global, a: &Args) -> anyhow::Result<i32> {
    super::load(g, &a.id)?.start()?;
    Ok(0)
}
