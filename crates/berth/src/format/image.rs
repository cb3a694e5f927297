//! `images` rows (`REPOSITORY TAG IMAGE ID CREATED SIZE`) and `history` rows.

use std::time::{Duration, SystemTime};

use berth_api::humanize::{human_duration, human_size, human_size_with_precision};
use berth_api::models::{HistoryResponseItem, ImageSummary};

use super::{FormatError, Formatter, ellipsis, familiar_name, go_time_string, truncate_id};
use crate::template::Value;

/// Docker's default `images` table.
pub const DEFAULT_TABLE: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}";
const DEFAULT_TABLE_DIGEST: &str = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}";

/// The format `images` uses for the given flags.
pub fn images_format(custom: Option<&str>, quiet: bool, digests: bool) -> String {
    match custom {
        Some("table") | Some("") | None => {
            if quiet {
                "{{.ID}}".into()
            } else if digests {
                DEFAULT_TABLE_DIGEST.into()
            } else {
                DEFAULT_TABLE.into()
            }
        }
        Some(_) if quiet => "{{.ID}}".into(),
        Some(f) => {
            if f.starts_with("table") && digests && !f.contains("{{.Digest}}") {
                format!("{f}\t{{{{.Digest}}}}")
            } else {
                f.to_owned()
            }
        }
    }
}

fn header() -> Value {
    let h = |k: &str, v: &str| (k.to_owned(), Value::str(v));
    Value::Map(vec![
        h("ID", "IMAGE ID"),
        h("Repository", "REPOSITORY"),
        h("Tag", "TAG"),
        h("Digest", "DIGEST"),
        h("CreatedSince", "CREATED"),
        h("CreatedAt", "CREATED AT"),
        h("Size", "SIZE"),
        h("Containers", "CONTAINERS"),
        h("VirtualSize", "SIZE"),
        h("SharedSize", "SHARED SIZE"),
        h("UniqueSize", "UNIQUE SIZE"),
    ])
}

/// Splits `name:tag` (the tag is after the last colon that follows the last slash).
pub fn split_tag(reference: &str) -> (String, Option<String>) {
    let slash = reference.rfind('/').map(|i| i + 1).unwrap_or(0);
    match reference[slash..].rfind(':') {
        Some(i) => (
            reference[..slash + i].to_owned(),
            Some(reference[slash + i + 1..].to_owned()),
        ),
        None => (reference.to_owned(), None),
    }
}

fn row(
    img: &ImageSummary,
    repo: &str,
    tag: &str,
    digest: &str,
    trunc: bool,
    now: SystemTime,
) -> Value {
    let s = |v: String| Value::Str(v);
    let created_since = if img.created > 0 {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(img.created as u64);
        format!(
            "{} ago",
            human_duration(now.duration_since(t).unwrap_or_default())
        )
    } else {
        String::new()
    };
    Value::Map(vec![
        (
            "Containers".into(),
            s(if img.containers == -1 {
                "N/A".into()
            } else {
                img.containers.to_string()
            }),
        ),
        ("CreatedAt".into(), s(go_time_string(img.created))),
        ("CreatedSince".into(), s(created_since)),
        ("Digest".into(), s(digest.to_owned())),
        (
            "ID".into(),
            s(if trunc {
                truncate_id(&img.id)
            } else {
                img.id.clone()
            }),
        ),
        ("Repository".into(), s(repo.to_owned())),
        (
            "SharedSize".into(),
            s(if img.shared_size == -1 {
                "N/A".into()
            } else {
                human_size(img.shared_size as f64)
            }),
        ),
        (
            "Size".into(),
            s(human_size_with_precision(img.size as f64, 3)),
        ),
        ("Tag".into(), s(tag.to_owned())),
        (
            "UniqueSize".into(),
            s(if img.size == -1 || img.shared_size == -1 {
                "N/A".into()
            } else {
                human_size((img.size - img.shared_size) as f64)
            }),
        ),
        ("VirtualSize".into(), s(human_size(img.size as f64))),
    ])
}

/// Expands images into rows: one per repository tag, `<none>` for dangling images.
pub fn rows(
    images: &[ImageSummary],
    trunc: bool,
    show_digests: bool,
    now: SystemTime,
) -> Vec<Value> {
    let mut out = Vec::new();
    for img in images {
        let dangling = (img.repo_tags.is_empty() && img.repo_digests.is_empty())
            || (img.repo_tags == ["<none>:<none>"] && img.repo_digests == ["<none>@<none>"]);
        if dangling {
            out.push(row(img, "<none>", "<none>", "<none>", trunc, now));
            continue;
        }
        let mut tagged: Vec<(String, Vec<String>)> = Vec::new();
        for r in &img.repo_tags {
            let (repo, tag) = split_tag(r);
            let repo = familiar_name(&repo);
            let tag = tag.unwrap_or_else(|| "latest".into());
            match tagged.iter_mut().find(|(k, _)| *k == repo) {
                Some((_, tags)) => tags.push(tag),
                None => tagged.push((repo, vec![tag])),
            }
        }
        let mut digested: Vec<(String, Vec<String>)> = Vec::new();
        for r in &img.repo_digests {
            if let Some((repo, digest)) = r.split_once('@') {
                let repo = familiar_name(repo);
                match digested.iter_mut().find(|(k, _)| *k == repo) {
                    Some((_, ds)) => ds.push(digest.to_owned()),
                    None => digested.push((repo, vec![digest.to_owned()])),
                }
            }
        }
        for (repo, tags) in &tagged {
            let digests = digested
                .iter()
                .position(|(k, _)| k == repo)
                .map(|i| digested.remove(i).1)
                .unwrap_or_default();
            for tag in tags {
                if !show_digests || digests.is_empty() {
                    out.push(row(img, repo, tag, "<none>", trunc, now));
                } else {
                    for d in &digests {
                        out.push(row(img, repo, tag, d, trunc, now));
                    }
                }
            }
        }
        for (repo, digests) in digested {
            if show_digests {
                for d in digests {
                    out.push(row(img, &repo, "<none>", &d, trunc, now));
                }
            } else {
                out.push(row(img, &repo, "<none>", "", trunc, now));
            }
        }
    }
    out
}

/// Renders `images` output.
pub fn render(
    images: &[ImageSummary],
    format: &str,
    trunc: bool,
    digests: bool,
    now: SystemTime,
) -> Result<String, FormatError> {
    let f = Formatter::typed(format, "*formatter.imageContext")?;
    let show_digests = digests || format.contains("{{.Digest}}");
    f.render(&rows(images, trunc, show_digests, now), &header())
}

/// Docker's default `history` table.
pub const HISTORY_TABLE: &str =
    "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";

/// Renders `history` output; `human` selects humanized times and sizes.
pub fn render_history(
    items: &[HistoryResponseItem],
    format: &str,
    trunc: bool,
    human: bool,
    now: SystemTime,
) -> Result<String, FormatError> {
    let f = Formatter::typed(format, "*image.historyContext")?;
    let h = |k: &str, v: &str| (k.to_owned(), Value::str(v));
    let header = Value::Map(vec![
        h("ID", "IMAGE"),
        h("CreatedSince", "CREATED"),
        h("CreatedAt", "CREATED AT"),
        h("CreatedBy", "CREATED BY"),
        h("Size", "SIZE"),
        h("Comment", "COMMENT"),
    ]);
    let rows: Vec<Value> = items
        .iter()
        .map(|it| {
            let id = if it.id.starts_with("sha256:") && trunc {
                truncate_id(&it.id)
            } else {
                it.id.clone()
            };
            let t = SystemTime::UNIX_EPOCH + Duration::from_secs(it.created.max(0) as u64);
            let created_since = if human {
                format!(
                    "{} ago",
                    human_duration(now.duration_since(t).unwrap_or_default())
                )
            } else {
                jiff::Timestamp::from_second(it.created)
                    .map(|t| t.to_string())
                    .unwrap_or_default()
            };
            let created_by = it.created_by.replace('\t', " ");
            let created_by = if trunc {
                ellipsis(&created_by, 45)
            } else {
                created_by
            };
            let size = if human {
                human_size_with_precision(it.size as f64, 3)
            } else {
                it.size.to_string()
            };
            let s = |v: String| Value::Str(v);
            Value::Map(vec![
                ("Comment".into(), s(it.comment.clone())),
                ("CreatedAt".into(), s(super::rfc3339_local(it.created))),
                ("CreatedBy".into(), s(created_by)),
                ("CreatedSince".into(), s(created_since)),
                ("ID".into(), s(id)),
                ("Size".into(), s(size)),
            ])
        })
        .collect();
    f.render(&rows, &header)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(tags: &[&str], digests: &[&str], created_ago: u64, now: SystemTime) -> ImageSummary {
        ImageSummary {
            id: "sha256:65ad0d468eb1c558bf7f4e64e790f586e9eda649ee9f130cd0e835b292bbc5ac".into(),
            repo_tags: tags.iter().map(|s| s.to_string()).collect(),
            repo_digests: digests.iter().map(|s| s.to_string()).collect(),
            created: (now
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs()
                - created_ago) as i64,
            size: 4_261_234,
            shared_size: -1,
            containers: -1,
            ..Default::default()
        }
    }

    #[test]
    fn default_table_matches_docker() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let imgs = vec![
            image(&["busybox:latest", "busybox:1.36"], &[], 3 * 24 * 3600, now),
            image(&[], &[], 3600, now),
        ];
        let out = render(&imgs, &images_format(None, false, false), true, false, now).unwrap();
        let want = "\
REPOSITORY   TAG       IMAGE ID       CREATED         SIZE
busybox      latest    65ad0d468eb1   3 days ago      4.26MB
busybox      1.36      65ad0d468eb1   3 days ago      4.26MB
<none>       <none>    65ad0d468eb1   About an hour ago   4.26MB
";
        // The last row is wider: columns are sized over the whole block.
        let _ = want;
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "REPOSITORY   TAG       IMAGE ID       CREATED             SIZE"
        );
        assert_eq!(
            lines[1],
            "busybox      latest    65ad0d468eb1   3 days ago          4.26MB"
        );
        assert_eq!(
            lines[3],
            "<none>       <none>    65ad0d468eb1   About an hour ago   4.26MB"
        );
    }

    #[test]
    fn digests_and_familiar_names() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let imgs = vec![image(
            &["docker.io/library/alpine:3"],
            &["docker.io/library/alpine@sha256:abc"],
            60,
            now,
        )];
        let out = render(
            &imgs,
            "{{.Repository}} {{.Tag}} {{.Digest}}",
            true,
            true,
            now,
        )
        .unwrap();
        assert_eq!(out, "alpine 3 sha256:abc\n");
        let out = render(&imgs, &images_format(None, true, false), true, false, now).unwrap();
        assert_eq!(out, "65ad0d468eb1\n");
        assert_eq!(
            split_tag("registry:5000/x/y:1.0"),
            ("registry:5000/x/y".into(), Some("1.0".into()))
        );
        assert_eq!(
            split_tag("registry:5000/x"),
            ("registry:5000/x".into(), None)
        );
    }

    #[test]
    fn history_table() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let items = vec![HistoryResponseItem {
            id: "sha256:65ad0d468eb1c558bf7f4e64e790f586e9eda649ee9f130cd0e835b292bbc5ac".into(),
            created: 1_700_000_000 - 120,
            created_by: "/bin/sh -c #(nop) ADD file:abcdef0123456789abcdef0123456789 in /".into(),
            tags: vec![],
            size: 4_261_234,
            comment: "imported".into(),
        }];
        let out = render_history(&items, HISTORY_TABLE, true, true, now).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "IMAGE          CREATED         CREATED BY                                      SIZE      COMMENT"
        );
        assert_eq!(
            lines[1],
            "65ad0d468eb1   2 minutes ago   /bin/sh -c #(nop) ADD file:abcdef0123456789a…   4.26MB    imported"
        );
        let out = render_history(&items, "{{.Size}}", true, false, now).unwrap();
        assert_eq!(out, "4261234\n");
    }
}
