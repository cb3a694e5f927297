//! `pause ID`: freeze every process of the container.

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Container id.
    pub id: String,
}

pub fn run(g: &crate::Global, a: &Args) -> anyhow::Result<i32> {
    super::load(g, &a.id)?.pause()?;
    Ok(0)
}
