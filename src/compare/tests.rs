//! The comparison's ordering and noise floor, on two captures of one node.

use super::*;
use crate::model::{ContainerState, Health, Host};
use chrono::TimeZone;

fn snap(minute: i64, uptime: u64, mem: u64) -> Snapshot {
    let at = chrono::Utc.with_ymd_and_hms(2026, 2, 18, 0, 0, 0).unwrap()
        + chrono::Duration::minutes(minute);
    let mut s = Snapshot::new("t", "vk01", at);
    s.host = Some(Host {
        uptime_s: Some(uptime),
        ..Host::default()
    });
    let mut c: Container = serde_json::from_value(serde_json::json!({
        "name": "app", "image": "app", "state": "running", "health": "none"
    }))
    .unwrap();
    c.mem_usage_bytes = Some(mem);
    c.state = ContainerState::Running;
    c.health = Health::None;
    s.containers = Some(vec![c]);
    s
}

#[test]
fn a_reboot_comes_before_the_memory_it_reset() {
    let a = snap(0, 100_000, 4_000_000_000);
    let b = snap(600, 300, 80_000_000);
    let d = diff(&a, &b, chrono_tz::UTC);
    assert!(d[0].text.contains("rebooted"), "{d:?}");
    assert!(d[1].text.contains("`app` memory 4GB → 80MB"), "{d:?}");
    let small = diff(
        &snap(0, 100, 100_000_000),
        &snap(15, 1000, 105_000_000),
        chrono_tz::UTC,
    );
    assert!(small.is_empty(), "a 5MB change is noise: {small:?}");
}
