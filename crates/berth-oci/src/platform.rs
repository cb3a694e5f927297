//! Platforms (`linux/amd64`, `linux/arm64/v8`): parsing, the host's platform in OCI's
//! vocabulary (GOARCH names), and matching an index entry against a wanted platform.

use std::fmt;
use std::str::FromStr;

use crate::errdefs::{Classify, ErrorKind};

/// An OCI platform. Field names serialize as in the image spec.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid platform {0:?}: expected os[/arch[/variant]], e.g. linux/amd64")]
pub struct PlatformError(pub String);

impl Classify for PlatformError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

impl Platform {
    /// The platform this binary runs on, normalized.
    pub fn host() -> Platform {
        let (arch, variant) = normalize_arch(go_arch(std::env::consts::ARCH), None);
        Platform {
            os: std::env::consts::OS.to_string(),
            architecture: arch,
            variant,
            os_version: None,
            os_features: None,
        }
    }

    /// The platform with architecture aliases resolved (`x86_64` → `amd64`, `aarch64` →
    /// `arm64`, arm64's implied `v8` dropped, plain `arm` → `arm/v7`).
    pub fn normalized(&self) -> Platform {
        let (architecture, variant) =
            normalize_arch(go_arch(&self.architecture), self.variant.as_deref());
        Platform {
            os: self.os.to_lowercase(),
            architecture,
            variant,
            os_version: self.os_version.clone(),
            os_features: self.os_features.clone(),
        }
    }

    /// Whether content built for `self` runs on `wanted` (both normalized; a missing variant
    /// on `self` matches any variant).
    pub fn matches(&self, wanted: &Platform) -> bool {
        let a = self.normalized();
        let b = wanted.normalized();
        a.os == b.os
            && a.architecture == b.architecture
            && (a.variant.is_none() || b.variant.is_none() || a.variant == b.variant)
    }
}

fn go_arch(arch: &str) -> &str {
    match arch {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        "x86" | "i386" | "i686" => "386",
        "powerpc64" => "ppc64",
        "powerpc64le" => "ppc64le",
        "riscv64gc" => "riscv64",
        other => other,
    }
}

fn normalize_arch(arch: &str, variant: Option<&str>) -> (String, Option<String>) {
    let variant = variant.map(str::to_lowercase);
    match arch {
        "arm64" => {
            let v = match variant.as_deref() {
                None | Some("8") | Some("v8") => None,
                Some(v) => Some(v.to_string()),
            };
            ("arm64".into(), v)
        }
        "armhf" => ("arm".into(), Some("v7".into())),
        "armel" => ("arm".into(), Some("v6".into())),
        "arm" => {
            let v = match variant.as_deref() {
                None | Some("7") | Some("v7") => "v7".to_string(),
                Some("5") => "v5".into(),
                Some("6") => "v6".into(),
                Some("8") => "v8".into(),
                Some(v) => v.to_string(),
            };
            ("arm".into(), Some(v))
        }
        "amd64" => {
            let v = match variant.as_deref() {
                None | Some("v1") => None,
                Some(v) => Some(v.to_string()),
            };
            ("amd64".into(), v)
        }
        other => (other.to_lowercase(), variant),
    }
}

impl FromStr for Platform {
    type Err = PlatformError;
    fn from_str(s: &str) -> Result<Self, PlatformError> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        if parts.is_empty() || parts.len() > 3 || !parts.iter().all(|p| ok(p)) {
            return Err(PlatformError(s.to_string()));
        }
        let host = Platform::host();
        let p = Platform {
            os: parts[0].to_lowercase(),
            architecture: parts
                .get(1)
                .map(|a| a.to_string())
                .unwrap_or(host.architecture),
            variant: parts.get(2).map(|v| v.to_string()),
            os_version: None,
            os_features: None,
        };
        Ok(p.normalized())
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalizes() {
        let p: Platform = "linux/aarch64".parse().unwrap();
        assert_eq!(p.to_string(), "linux/arm64");
        let p: Platform = "linux/arm64/v8".parse().unwrap();
        assert_eq!(p.to_string(), "linux/arm64");
        let p: Platform = "linux/arm".parse().unwrap();
        assert_eq!(p.to_string(), "linux/arm/v7");
        let p: Platform = "Linux/x86_64".parse().unwrap();
        assert_eq!(p.to_string(), "linux/amd64");
        assert!("linux//x".parse::<Platform>().is_err());
        assert!("a/b/c/d".parse::<Platform>().is_err());
        assert!("".parse::<Platform>().is_err());
    }

    #[test]
    fn host_is_in_go_vocabulary_and_matches() {
        let h = Platform::host();
        assert_eq!(h.os, "linux");
        assert!(!h.architecture.contains('_'), "{h}");
        let amd: Platform = "linux/amd64".parse().unwrap();
        let arm: Platform = "linux/arm64".parse().unwrap();
        assert!(amd.matches(&amd));
        assert!(!amd.matches(&arm));
        let v7: Platform = "linux/arm/v7".parse().unwrap();
        let v6: Platform = "linux/arm/v6".parse().unwrap();
        assert!(!v6.matches(&v7));
        let j = serde_json::to_value(&arm).unwrap();
        assert_eq!(
            j,
            serde_json::json!({"os": "linux", "architecture": "arm64"})
        );
    }
}
