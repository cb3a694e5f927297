//! Image references: `busybox` → `docker.io/library/busybox:latest`.
//!
//! The grammar is the one of the distribution project (`distribution/reference`), which Docker
//! and containerd share:
//!
//! ```text
//! reference       := name [ ":" tag ] [ "@" digest ]
//! name            := [domain "/"] path-component ["/" path-component]*
//! domain          := host [":" port]      host: dns labels separated by ".", or [IPv6]
//! path-component  := alnum [separator alnum]*       alnum: [a-z0-9]+
//! separator       := "_" | "__" | "." | "-"+
//! tag             := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//! ```
//!
//! Normalization follows Docker: the first component is a registry only if it contains `.` or
//! `:` or is `localhost` (and is lowercase); otherwise the registry is `docker.io`, and a
//! single-component name on Docker Hub gets the `library/` prefix. `index.docker.io` is
//! spelled `docker.io`. The *familiar* form is what Docker shows: Docker Hub's domain and the
//! `library/` prefix stripped again (`busybox:latest`).

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;
use crate::errdefs::{Classify, ErrorKind};

/// The registry a name without one belongs to.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The legacy spelling of [`DEFAULT_DOMAIN`], normalized away.
pub const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// The namespace of official images on Docker Hub.
pub const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The tag a reference without tag or digest gets.
pub const DEFAULT_TAG: &str = "latest";
/// Longest allowed name (domain and path), as in distribution.
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// Why a string is not a valid reference. Messages follow Docker's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference format: {0:?}")]
    InvalidFormat(String),
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    NotLowercase(String),
    #[error("invalid reference format: repository name {0:?} must not be more than 255 characters")]
    NameTooLong(String),
    #[error(
        "invalid tag {tag:?} in reference {reference:?}: tags are [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}"
    )]
    InvalidTag { tag: String, reference: String },
    #[error("invalid digest in reference {reference:?}: {reason}")]
    InvalidDigest { reference: String, reason: String },
    #[error(
        "invalid repository name ({0}), cannot specify 64-byte hexadecimal strings (use the image ID sha256:{0} instead)"
    )]
    HexName(String),
    #[error("invalid reference format: empty reference")]
    Empty,
}

impl Classify for ReferenceError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

/// A normalized image reference: domain, path, and optionally a tag and/or a digest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalizes a reference the way `docker` does (`ParseNormalizedNamed`).
    /// A missing tag stays missing; use [`Reference::with_default_tag`] for `:latest`.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        if s.len() == 64 && is_lower_hex(s) {
            return Err(ReferenceError::HexName(s.to_string()));
        }
        // Split off the digest first (a digest contains ':' too).
        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => {
                let digest = d
                    .parse::<Digest>()
                    .map_err(|e| ReferenceError::InvalidDigest {
                        reference: s.to_string(),
                        reason: e.to_string(),
                    })?;
                (rest, Some(digest))
            }
            None => (s, None),
        };
        // A tag is after the last ':' that comes after the last '/'.
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let colon = last_slash + i;
                (&rest[..colon], Some(&rest[colon + 1..]))
            }
            None => (rest, None),
        };
        if let Some(tag) = tag
            && !is_valid_tag(tag)
        {
            return Err(ReferenceError::InvalidTag {
                tag: tag.to_string(),
                reference: s.to_string(),
            });
        }
        let (domain, path) = split_domain(name);
        if domain.is_empty() || path.is_empty() {
            return Err(ReferenceError::InvalidFormat(s.to_string()));
        }
        if !is_valid_domain(&domain) {
            return Err(ReferenceError::InvalidFormat(s.to_string()));
        }
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ReferenceError::NotLowercase(path));
        }
        if !path.split('/').all(is_valid_path_component) {
            return Err(ReferenceError::InvalidFormat(s.to_string()));
        }
        if domain.len() + 1 + path.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError::NameTooLong(name.to_string()));
        }
        Ok(Reference {
            domain,
            path,
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// Builds a reference from a repository name (normalized like [`Reference::parse`]) and a tag.
    pub fn from_name_and_tag(name: &str, tag: &str) -> Result<Self, ReferenceError> {
        let r = Reference::parse(name)?;
        if r.tag.is_some() || r.digest.is_some() {
            return Err(ReferenceError::InvalidFormat(name.to_string()));
        }
        r.with_tag(tag)
    }

    /// The reference with `:latest` added when it has neither tag nor digest (`TagNameOnly`).
    pub fn with_default_tag(mut self) -> Self {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_string());
        }
        self
    }

    /// The same repository with another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Result<Self, ReferenceError> {
        if !is_valid_tag(tag) {
            return Err(ReferenceError::InvalidTag {
                tag: tag.to_string(),
                reference: format!("{}:{tag}", self.name()),
            });
        }
        Ok(Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: Some(tag.to_string()),
            digest: None,
        })
    }

    /// The same repository pinned to a digest (and no tag), e.g. for RepoDigests.
    pub fn with_digest(&self, digest: Digest) -> Self {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: Some(digest),
        }
    }

    /// The registry, e.g. `docker.io` or `localhost:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }
    /// The repository path within the registry, e.g. `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The fully qualified repository name, e.g. `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The repository name as Docker shows it, e.g. `busybox` or `localhost:5000/x/y`.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.path.clone(),
            }
        } else {
            self.name()
        }
    }

    /// The whole reference as Docker shows it, e.g. `busybox:latest`.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        self.push_suffix(&mut s);
        s
    }

    fn push_suffix(&self, s: &mut String) {
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, ReferenceError> {
        Reference::parse(s)
    }
}

/// The fully qualified form: `docker.io/library/busybox:latest`.
impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        self.push_suffix(&mut s);
        f.write_str(&s)
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

impl serde::Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Reference {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

fn split_domain(name: &str) -> (String, String) {
    let (mut domain, mut path) = match name.split_once('/') {
        Some((first, rest))
            if (first.contains(['.', ':']) || first == "localhost")
                && first.to_lowercase() == first =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.to_string();
    }
    if domain == DEFAULT_DOMAIN && !path.contains('/') {
        path = format!("{OFFICIAL_REPO_PREFIX}{path}");
    }
    (domain, path)
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn is_valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || b"_.-".contains(&c))
}

/// `alnum [separator alnum]*` with separators `_`, `__`, `.`, `-+`.
fn is_valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "_" || sep == "__" || sep == "." || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn is_valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        // [IPv6]:port
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.is_empty() || !v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        match after {
            "" => return true,
            p => match p.strip_prefix(':') {
                Some(port) => return !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()),
                None => return false,
            },
        }
    } else {
        match d.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        }
    };
    if let Some(p) = port
        && (p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn full(s: &str) -> String {
        Reference::parse(s).unwrap().with_default_tag().to_string()
    }

    #[test]
    fn normalizes_like_docker() {
        assert_eq!(full("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(full("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(full("user/app"), "docker.io/user/app:latest");
        assert_eq!(
            full("index.docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            full("docker.io/library/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(full("localhost/app"), "localhost/app:latest");
        assert_eq!(full("localhost:5000/a/b:v1"), "localhost:5000/a/b:v1");
        assert_eq!(full("quay.io/coreos/etcd"), "quay.io/coreos/etcd:latest");
        assert_eq!(full("[::1]:5000/app:x"), "[::1]:5000/app:x");
        assert_eq!(
            full(&format!("busybox@sha256:{HEX}")),
            format!("docker.io/library/busybox@sha256:{HEX}")
        );
        assert_eq!(
            full(&format!("busybox:1@sha256:{HEX}")),
            format!("docker.io/library/busybox:1@sha256:{HEX}")
        );
        // "Foo" is not a domain (uppercase) so it is a path and must be lowercase.
        assert!(matches!(
            Reference::parse("Foo/bar"),
            Err(ReferenceError::NotLowercase(_))
        ));
    }

    #[test]
    fn familiar_form_strips_hub_and_library() {
        let f = |s: &str| Reference::parse(s).unwrap().with_default_tag().familiar();
        assert_eq!(f("docker.io/library/busybox"), "busybox:latest");
        assert_eq!(f("docker.io/user/app:1"), "user/app:1");
        assert_eq!(f("docker.io/library/a/b"), "library/a/b:latest");
        assert_eq!(f("localhost:5000/x"), "localhost:5000/x:latest");
        assert_eq!(
            Reference::parse("busybox").unwrap().familiar_name(),
            "busybox"
        );
    }

    #[test]
    fn rejects_bad_references_with_reasons() {
        assert_eq!(Reference::parse(""), Err(ReferenceError::Empty));
        assert!(matches!(
            Reference::parse(HEX),
            Err(ReferenceError::HexName(_))
        ));
        assert!(matches!(
            Reference::parse("Busybox"),
            Err(ReferenceError::NotLowercase(_))
        ));
        for bad in [
            "busybox:",
            "busybox:-x",
            "bad__-name",
            "a//b",
            "-a",
            "a-",
            "a/b:c:d",
            "registry:port/x",
            "host:/x",
            ":tag",
            "a b",
            "[::1/x",
            &format!("busybox:{}", "t".repeat(129)),
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(matches!(
            Reference::parse("busybox@sha512:abc"),
            Err(ReferenceError::InvalidDigest { .. })
        ));
        let long = format!("a/{}", "b".repeat(260));
        assert!(matches!(
            Reference::parse(&long),
            Err(ReferenceError::NameTooLong(_))
        ));
        for good in [
            "a__b",
            "a_b.c-d",
            "a---b",
            "a/b/c/d",
            "x:5000/y",
            "1",
            "a:_tag.-x",
        ] {
            assert!(Reference::parse(good).is_ok(), "{good:?} should parse");
        }
    }

    #[test]
    fn tag_and_digest_helpers() {
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(r.tag(), None);
        let t = r.with_tag("v2").unwrap();
        assert_eq!(t.familiar(), "busybox:v2");
        assert!(r.with_tag("bad tag").is_err());
        let d = r.with_digest(format!("sha256:{HEX}").parse().unwrap());
        assert_eq!(d.familiar(), format!("busybox@sha256:{HEX}"));
        let j = serde_json::to_string(&t).unwrap();
        assert_eq!(j, "\"docker.io/library/busybox:v2\"");
        let back: Reference = serde_json::from_str(&j).unwrap();
        assert_eq!(back, t);
        assert_eq!(
            Reference::from_name_and_tag("user/app", "x")
                .unwrap()
                .to_string(),
            "docker.io/user/app:x"
        );
    }
}
