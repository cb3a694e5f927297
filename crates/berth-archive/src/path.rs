//! Lexical clean-up of entry names, before anything touches the filesystem.
//!
//! Decision (as Docker): absolute names are made relative to the layer root (`/etc/passwd`
//! is `etc/passwd`), `.` components and repeated slashes vanish, and `..` is resolved
//! lexically; a `..` that would climb above the root is refused. Symlinks are not looked at
//! here: the filesystem side resolves the cleaned path with `RESOLVE_BENEATH`, which refuses
//! any symlink leaving the root.

use crate::error::EntryError;

/// A cleaned, relative path: components joined by `/`, no `.`/`..`/empty components. The
/// empty path is the root itself.
pub(crate) fn clean(raw: &[u8]) -> Result<Vec<u8>, EntryError> {
    if raw.contains(&0) {
        return Err(EntryError::NulInName);
    }
    let mut out: Vec<u8> = Vec::with_capacity(raw.len());
    for comp in raw.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                if out.is_empty() {
                    return Err(EntryError::EscapesRoot);
                }
                let cut = out.iter().rposition(|&b| b == b'/').unwrap_or(0);
                out.truncate(cut);
            }
            c => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(c);
            }
        }
    }
    Ok(out)
}

/// Splits a cleaned path into (parent, file name); the parent is empty for top-level names.
pub(crate) fn split(clean: &[u8]) -> (&[u8], &[u8]) {
    match clean.iter().rposition(|&b| b == b'/') {
        Some(i) => (&clean[..i], &clean[i + 1..]),
        None => (&[], clean),
    }
}

/// Where a symlink stored at `entry` (cleaned) with a relative `target` points, lexically;
/// `None` when it climbs above the root. Absolute targets stay inside by construction: a
/// container resolves them against its own root.
pub(crate) fn symlink_target_escapes(entry: &[u8], target: &[u8]) -> bool {
    if target.starts_with(b"/") {
        return false;
    }
    let (parent, _) = split(entry);
    let mut depth: usize = if parent.is_empty() {
        0
    } else {
        parent.split(|&b| b == b'/').count()
    };
    for comp in target.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                if depth == 0 {
                    return true;
                }
                depth -= 1;
            }
            _ => depth += 1,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_normalises_like_docker() {
        assert_eq!(clean(b"/etc/passwd").unwrap(), b"etc/passwd");
        assert_eq!(clean(b"./a//b/./c/").unwrap(), b"a/b/c");
        assert_eq!(clean(b"a/b/../c").unwrap(), b"a/c");
        assert_eq!(clean(b"a/..").unwrap(), b"");
        assert_eq!(clean(b"./").unwrap(), b"");
        assert_eq!(clean(b"/../x"), Err(EntryError::EscapesRoot));
        assert_eq!(clean(b"../x"), Err(EntryError::EscapesRoot));
        assert_eq!(clean(b"a/../../x"), Err(EntryError::EscapesRoot));
        assert_eq!(clean(b"a\0b"), Err(EntryError::NulInName));
        assert_eq!(clean(b"..."), Ok(b"...".to_vec()));
    }

    #[test]
    fn split_separates_parent_and_name() {
        assert_eq!(split(b"a/b/c"), (&b"a/b"[..], &b"c"[..]));
        assert_eq!(split(b"c"), (&b""[..], &b"c"[..]));
    }

    #[test]
    fn symlink_escape_is_lexical_and_relative_to_the_link() {
        assert!(!symlink_target_escapes(b"a/b/link", b"../c"));
        assert!(!symlink_target_escapes(b"a/b/link", b"../../c"));
        assert!(symlink_target_escapes(b"a/b/link", b"../../../c"));
        assert!(symlink_target_escapes(b"link", b".."));
        assert!(!symlink_target_escapes(b"link", b"/etc/passwd"));
        assert!(!symlink_target_escapes(b"link", b"x/../y"));
        assert!(symlink_target_escapes(b"link", b"x/../../y"));
    }
}
