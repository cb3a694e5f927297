//! `resume ID`: thaw a paused container.

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Container id.
    pub id: String,
}

pub fn run(g: &crate::Global, a: &Args) -> anyhow::Result<i32> {
    super::load(g, &a.id)?.resume()?;
    Ok(0)
}
