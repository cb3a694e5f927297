//! `berth wait`: print each container's exit code once it stops.

use anyhow::Result;
use berth_api::client::api::wait_result;
use berth_api::query::ContainerWaitQuery;
use clap::Args;

use super::Ctx;

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Containers to wait for
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

pub fn run(ctx: &Ctx, args: WaitArgs) -> Result<i32> {
    // like docker's: each code as it comes, the errors at the end
    let mut errors = Vec::new();
    for c in &args.containers {
        let r = ctx
            .client
            .container_wait(c, &ContainerWaitQuery::default())
            .and_then(wait_result);
        match r {
            Ok(w) => println!("{}", w.status_code),
            Err(e) => errors.push(e.to_string()),
        }
    }
    for e in &errors {
        eprintln!("{e}");
    }
    Ok(if errors.is_empty() { 0 } else { 1 })
}
