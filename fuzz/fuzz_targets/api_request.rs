//! Request decoding of berthd: the container-create query and body (with Docker's
//! pre-checks and path-tracking errors), the create validation of the engine (HostConfig
//! rules, mounts, security options), and the query decoders of the other endpoints. Any
//! input must give a value or a 4xx error, never a panic.
//!
//! Input: `<query string>\n<body>`.
#![no_main]

use berth_api::query::{self, ContainerListQuery, ContainerLogsQuery, EventsQuery, ImageCreateQuery};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (q, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let q = String::from_utf8_lossy(q);
    let _ = query::from_query_str::<ContainerListQuery>(&q);
    let _ = query::from_query_str::<ContainerLogsQuery>(&q);
    let _ = query::from_query_str::<EventsQuery>(&q);
    let _ = query::from_query_str::<ImageCreateQuery>(&q);
    if let Ok((_, create)) = berthd::routes::containers::decode_create(Some(&q), body) {
        let host = create.host_config.unwrap_or_default();
        let info = berth_engine::spec::HostInfo {
            cap_last_cap: 40,
            bounding: u64::MAX,
            ncpu: 2,
            hostname: "fuzz".into(),
            devices: Vec::new(),
        };
        if berth_engine::spec::validate_host_config(&host, &info).is_ok() {
            let _ = berth_engine::spec::user_mounts(&host);
        }
    }
});
