//! `berth tag SOURCE TARGET`.

use anyhow::Result;
use berth_api::query::ImageTagQuery;
use clap::Args;

use super::Ctx;
use crate::StatusError;
use crate::format::image::split_tag;

#[derive(Debug, Args)]
pub struct TagArgs {
    /// SOURCE_IMAGE[:TAG]
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    pub source: String,
    /// TARGET_IMAGE[:TAG]
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    pub target: String,
}

/// Checks a target reference's syntax (lowercase repository path, valid tag).
pub fn parse_target(target: &str) -> Result<(String, Option<String>), String> {
    if target.contains('@') {
        return Err(format!(
            "refusing to create a tag with a digest reference: {target}"
        ));
    }
    let (repo, tag) = split_tag(target);
    let repo_ok = !repo.is_empty()
        && repo.split('/').enumerate().all(|(i, part)| {
            !part.is_empty()
                && (part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
                    || (i == 0
                        && repo.contains('/')
                        && part
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || ".-:".contains(c))))
        });
    if !repo_ok {
        // docker names the path after normalizing: `Bad` is `docker.io/library/Bad`
        let path = match repo.split_once('/') {
            None => format!("library/{repo}"),
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                rest.to_owned()
            }
            Some(_) => repo.clone(),
        };
        return Err(format!(
            "invalid reference format: repository name ({path}) must be lowercase"
        ));
    }
    if let Some(t) = &tag {
        let mut cs = t.chars();
        let ok = matches!(cs.next(), Some(c) if c.is_ascii_alphanumeric() || c == '_')
            && t.len() <= 128
            && cs.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !ok {
            return Err(format!("invalid reference format: tag {t:?} is not valid"));
        }
    }
    Ok((repo, tag))
}

pub fn run(ctx: &Ctx, args: TagArgs) -> Result<i32> {
    let (repo, tag) = parse_target(&args.target).map_err(|e| {
        StatusError::new(
            1,
            format!(
                "Error parsing reference: {:?} is not a valid repository/tag: {e}",
                args.target
            ),
        )
    })?;
    ctx.client
        .image_tag(&args.source, &ImageTagQuery { repo, tag })?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            parse_target("myapp:1.0"),
            Ok(("myapp".into(), Some("1.0".into())))
        );
        assert_eq!(
            parse_target("localhost:5000/team/app"),
            Ok(("localhost:5000/team/app".into(), None))
        );
        assert!(parse_target("MyApp").is_err());
        assert!(parse_target("app:bad tag").is_err());
        assert!(parse_target("app@sha256:abc").is_err());
        assert!(parse_target("a//b").is_err());
    }
}
