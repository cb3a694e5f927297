//! Media types of image content, OCI (image spec 1.1) and Docker (manifest v2 schema 2), and
//! the questions callers ask about them (is it a layer? compressed how? a manifest or an index?).

/// OCI image layout marker file content version.
pub const OCI_LAYOUT_VERSION: &str = "1.0.0";

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const OCI_LAYER_NONDIST: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
pub const OCI_LAYER_NONDIST_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
pub const OCI_LAYER_NONDIST_ZSTD: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";
pub const DOCKER_LAYER_FOREIGN: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// Annotation naming a manifest inside an OCI index (a tag, or a full reference).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's (and Docker's) annotation carrying the full image name in an index.
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";

/// What a piece of content is, as far as image handling cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Index,
    Manifest,
    Config,
    Layer,
    Unknown,
}

/// The compression a layer media type declares. The content is still sniffed by magic when
/// read; this is what Berth writes into manifests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerCompression {
    None,
    Gzip,
    Zstd,
}

/// Classifies a media type.
pub fn kind(media_type: &str) -> Kind {
    match media_type {
        OCI_INDEX | DOCKER_MANIFEST_LIST => Kind::Index,
        OCI_MANIFEST | DOCKER_MANIFEST => Kind::Manifest,
        OCI_CONFIG | DOCKER_CONFIG => Kind::Config,
        m if layer_compression(m).is_some() => Kind::Layer,
        _ => Kind::Unknown,
    }
}

/// The declared compression of a layer media type, or `None` if it is not a layer type.
pub fn layer_compression(media_type: &str) -> Option<LayerCompression> {
    Some(match media_type {
        OCI_LAYER | OCI_LAYER_NONDIST | DOCKER_LAYER => LayerCompression::None,
        OCI_LAYER_GZIP | OCI_LAYER_NONDIST_GZIP | DOCKER_LAYER_GZIP | DOCKER_LAYER_FOREIGN => {
            LayerCompression::Gzip
        }
        OCI_LAYER_ZSTD | OCI_LAYER_NONDIST_ZSTD | DOCKER_LAYER_ZSTD => LayerCompression::Zstd,
        _ => return None,
    })
}

pub fn is_layer(media_type: &str) -> bool {
    kind(media_type) == Kind::Layer
}
pub fn is_manifest(media_type: &str) -> bool {
    kind(media_type) == Kind::Manifest
}
pub fn is_index(media_type: &str) -> bool {
    kind(media_type) == Kind::Index
}
pub fn is_config(media_type: &str) -> bool {
    kind(media_type) == Kind::Config
}
/// Whether the media type belongs to the Docker family (as opposed to OCI).
pub fn is_docker(media_type: &str) -> bool {
    media_type.starts_with("application/vnd.docker.")
}

/// The OCI layer media type for a compression.
pub fn oci_layer(c: LayerCompression) -> &'static str {
    match c {
        LayerCompression::None => OCI_LAYER,
        LayerCompression::Gzip => OCI_LAYER_GZIP,
        LayerCompression::Zstd => OCI_LAYER_ZSTD,
    }
}

/// The Docker layer media type for a compression.
pub fn docker_layer(c: LayerCompression) -> &'static str {
    match c {
        LayerCompression::None => DOCKER_LAYER,
        LayerCompression::Gzip => DOCKER_LAYER_GZIP,
        LayerCompression::Zstd => DOCKER_LAYER_ZSTD,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_both_families() {
        assert_eq!(kind(OCI_INDEX), Kind::Index);
        assert_eq!(kind(DOCKER_MANIFEST_LIST), Kind::Index);
        assert_eq!(kind(DOCKER_MANIFEST), Kind::Manifest);
        assert_eq!(kind(OCI_CONFIG), Kind::Config);
        assert_eq!(kind(DOCKER_LAYER_GZIP), Kind::Layer);
        assert_eq!(
            kind("application/vnd.oci.image.layer.v1.tar+bzip2"),
            Kind::Unknown
        );
        assert_eq!(
            layer_compression(OCI_LAYER_ZSTD),
            Some(LayerCompression::Zstd)
        );
        assert_eq!(
            layer_compression(DOCKER_LAYER),
            Some(LayerCompression::None)
        );
        assert_eq!(layer_compression(OCI_CONFIG), None);
        assert!(is_docker(DOCKER_CONFIG) && !is_docker(OCI_CONFIG));
        assert_eq!(oci_layer(LayerCompression::Gzip), OCI_LAYER_GZIP);
        assert_eq!(docker_layer(LayerCompression::None), DOCKER_LAYER);
    }
}
