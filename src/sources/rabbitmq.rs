//! The RabbitMQ management API: per queue the ready and unacknowledged counts, consumers, and the
//! publish, deliver and redeliver counters with their rates.

use std::time::Duration;

use serde::Deserialize;

use crate::model::{Queue, RabbitMq};

#[derive(Deserialize)]
struct Overview {
    rabbitmq_version: Option<String>,
}

#[derive(Deserialize, Default)]
struct Rate {
    rate: Option<f64>,
}

#[derive(Deserialize, Default)]
struct MessageStats {
    publish: Option<u64>,
    #[serde(default)]
    publish_details: Rate,
    deliver_get: Option<u64>,
    #[serde(default)]
    deliver_get_details: Rate,
    redeliver: Option<u64>,
    #[serde(default)]
    redeliver_details: Rate,
}

#[derive(Deserialize)]
struct ApiQueue {
    name: String,
    vhost: String,
    messages_ready: Option<u64>,
    messages_unacknowledged: Option<u64>,
    consumers: Option<u64>,
    #[serde(default)]
    message_stats: Option<MessageStats>,
}

pub fn queues_from(body: &[u8]) -> Result<Vec<Queue>, String> {
    let queues: Vec<ApiQueue> =
        serde_json::from_slice(body).map_err(|e| format!("unexpected answer: {e}"))?;
    Ok(queues
        .into_iter()
        .map(|q| {
            let stats = q.message_stats.unwrap_or_default();
            Queue {
                name: q.name,
                vhost: q.vhost,
                messages_ready: q.messages_ready,
                messages_unacked: q.messages_unacknowledged,
                consumers: q.consumers,
                // An idle queue's counters are absent: nothing was published or delivered.
                publish_total: Some(stats.publish.unwrap_or(0)),
                deliver_total: Some(stats.deliver_get.unwrap_or(0)),
                redeliver_total: Some(stats.redeliver.unwrap_or(0)),
                publish_rate: Some(stats.publish_details.rate.unwrap_or(0.0)),
                deliver_rate: Some(stats.deliver_get_details.rate.unwrap_or(0.0)),
                redeliver_rate: Some(stats.redeliver_details.rate.unwrap_or(0.0)),
            }
        })
        .collect())
}

pub async fn collect(
    client: &reqwest::Client,
    name: &str,
    url: &str,
    user: &str,
    password: Option<String>,
    timeout: Duration,
) -> Result<RabbitMq, String> {
    let get = |path: &str| {
        let endpoint = format!("{url}{path}");
        let request = client
            .get(&endpoint)
            .basic_auth(user, password.clone())
            .timeout(timeout);
        async move {
            let (status, body) = super::http::fetch(request, &endpoint).await?;
            if status.is_success() {
                Ok(body)
            } else {
                Err(format!(
                    "{endpoint}: HTTP {status}{}",
                    if status.as_u16() == 401 {
                        " (user or password refused)"
                    } else {
                        ""
                    }
                ))
            }
        }
    };
    let overview: Overview = serde_json::from_slice(&get("/api/overview").await?)
        .map_err(|e| format!("{url}/api/overview: unexpected answer: {e}"))?;
    let mut queues =
        queues_from(&get("/api/queues").await?).map_err(|e| format!("{url}/api/queues: {e}"))?;
    queues.sort_by(|a, b| a.vhost.cmp(&b.vhost).then_with(|| a.name.cmp(&b.name)));
    Ok(RabbitMq {
        name: name.to_string(),
        version: overview.rabbitmq_version,
        queues,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_counters_and_rates() {
        let q = queues_from(br#"[{"name":"work","vhost":"/","messages_ready":5,"messages_unacknowledged":1,"consumers":0,
            "message_stats":{"publish":135,"publish_details":{"rate":9.8},"deliver_get":59,"deliver_get_details":{"rate":3.6},"redeliver":5,"redeliver_details":{"rate":0.0}}},
            {"name":"idle","vhost":"/","messages_ready":0,"messages_unacknowledged":0,"consumers":1}]"#).unwrap();
        assert_eq!(q[0].publish_total, Some(135));
        assert_eq!(q[0].publish_rate, Some(9.8));
        assert_eq!(q[0].deliver_total, Some(59));
        assert_eq!(q[1].publish_total, Some(0));
    }
}
