//! Request and response bodies that `bollard-stubs` lacks or models awkwardly.

use serde::{Deserialize, Serialize};

use crate::models::{ContainerConfig, HostConfig, NetworkingConfig};

/// The body of `POST /containers/create`: the container's portable configuration with the
/// host-specific parts beside it, as one flat JSON object (`{"Image": ..., "Cmd": ...,
/// "HostConfig": {...}, "NetworkingConfig": {...}}`).
///
/// Unknown fields are ignored on decoding, as Docker does.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerCreateBody {
    /// Image, command, environment and the rest of `Config`.
    #[serde(flatten)]
    pub config: ContainerConfig,
    /// Resources, mounts, security and the rest of `HostConfig`.
    #[serde(
        rename = "HostConfig",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub host_config: Option<HostConfig>,
    /// Per-network endpoint settings (`EndpointsConfig`).
    #[serde(
        rename = "NetworkingConfig",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub networking_config: Option<NetworkingConfig>,
}

/// Docker's error body: `{"message": "No such container: x"}`. Every non-2xx response of the
/// API carries one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorMessage {
    /// The human-readable message, shown by clients after `Error response from daemon: `.
    pub message: String,
}

impl ErrorMessage {
    /// The error body for `message`, serialized.
    pub fn to_json(message: &str) -> Vec<u8> {
        serde_json::to_vec(&ErrorMessage {
            message: message.to_owned(),
        })
        .expect("a struct of one string always serializes")
    }
}

/// The body of `GET /_ping`, and the headers that come with it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PingInfo {
    /// `API-Version` header.
    pub api_version: Option<String>,
    /// `Ostype` header (`linux`).
    pub os_type: Option<String>,
    /// `Server` header.
    pub server: Option<String>,
    /// `Builder-Version` header.
    pub builder_version: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::RestartPolicy;

    #[test]
    fn create_body_is_one_flat_object_with_host_config_inside() {
        let body = ContainerCreateBody {
            config: ContainerConfig {
                image: Some("busybox".into()),
                cmd: Some(vec!["true".into()]),
                ..Default::default()
            },
            host_config: Some(HostConfig {
                memory: Some(512 << 20),
                restart_policy: Some(RestartPolicy {
                    name: Some(crate::models::RestartPolicyNameEnum::ON_FAILURE),
                    maximum_retry_count: Some(3),
                }),
                ..Default::default()
            }),
            networking_config: None,
        };
        let json: serde_json::Value = serde_json::to_value(&body).unwrap();
        assert_eq!(json["Image"], "busybox");
        assert_eq!(json["Cmd"][0], "true");
        assert_eq!(json["HostConfig"]["Memory"], 536870912);
        assert_eq!(json["HostConfig"]["RestartPolicy"]["Name"], "on-failure");
        assert!(json.get("NetworkingConfig").is_none());
        let back: ContainerCreateBody = serde_json::from_value(json).unwrap();
        assert_eq!(back, body);
    }

    #[test]
    fn create_body_ignores_unknown_fields_like_docker() {
        let body: ContainerCreateBody =
            serde_json::from_str(r#"{"Image":"x","SomethingNew":1,"HostConfig":{"Init":true}}"#)
                .unwrap();
        assert_eq!(body.config.image.as_deref(), Some("x"));
        assert_eq!(body.host_config.unwrap().init, Some(true));
    }

    #[test]
    fn error_message_round_trips() {
        let bytes = ErrorMessage::to_json("No such container: x");
        assert_eq!(bytes, br#"{"message":"No such container: x"}"#);
    }
}
