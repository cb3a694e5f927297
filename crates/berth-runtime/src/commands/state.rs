//! `state`: the OCI state as JSON.

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Container id.
    pub id: String,
}

pub fn run(g: &crate::Global, a: &Args) -> anyhow::Result<i32> {
    let s = super::load(g, &a.id)?.oci_state()?;
    println!("{}", serde_json::to_string_pretty(&s)?);
    Ok(0)
}
