//! The Prometheus HTTP API: node-exporter host metrics (uptime, memory, swap, CPU steal over a
//! short window, load, disks), DCGM GPU metrics, and user-defined named queries, all as instant
//! queries answered at the same moment.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::model::{Disk, Gpu, Host, QueryResult};

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

/// One sample of an instant vector: its labels and value (NaN reads as null).
#[derive(Debug, Clone)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: Option<f64>,
}

pub fn parse_vector(body: &[u8]) -> Result<Vec<Sample>, String> {
    let answer: Answer =
        serde_json::from_slice(body).map_err(|e| format!("unexpected answer: {e}"))?;
    if answer.status != "success" {
        return Err(answer.error.unwrap_or_else(|| "query failed".into()));
    }
    let data = answer.data.ok_or("no data in the answer")?;
    let value_of = |v: &serde_json::Value| -> Option<f64> {
        v.get(1)?
            .as_str()?
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
    };
    match data.result_type.as_str() {
        "vector" => Ok(data
            .result
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|i| Sample {
                        labels: i
                            .get("metric")
                            .and_then(|m| serde_json::from_value(m.clone()).ok())
                            .unwrap_or_default(),
                        value: i.get("value").and_then(value_of),
                    })
                    .collect()
            })
            .unwrap_or_default()),
        "scalar" => Ok(vec![Sample {
            labels: BTreeMap::new(),
            value: value_of(&data.result),
        }]),
        other => Err(format!(
            "a {other} answer where an instant vector was expected"
        )),
    }
}

struct Api<'a> {
    client: &'a reqwest::Client,
    url: &'a str,
    timeout: Duration,
}

impl Api<'_> {
    async fn query(&self, q: &str) -> Result<Vec<Sample>, String> {
        let endpoint = format!("{}/api/v1/query", self.url);
        let request = self
            .client
            .get(format!("{endpoint}?query={}", percent_encode(q)))
            .timeout(self.timeout);
        let (status, body) = super::http::fetch(request, &endpoint).await?;
        if !status.is_success() && status.as_u16() != 400 && status.as_u16() != 422 {
            return Err(format!("{endpoint}: HTTP {status}"));
        }
        parse_vector(&body).map_err(|e| format!("{endpoint} `{q}`: {e}"))
    }

    async fn one(&self, q: &str) -> Result<Option<f64>, String> {
        Ok(self.query(q).await?.first().and_then(|s| s.value))
    }
}

/// Percent-encodes a query string value (RFC 3986 unreserved characters kept).
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub struct Answered {
    /// `None` when node-exporter has no series for the instance.
    pub host: Option<Host>,
    pub gpus: Option<Vec<Gpu>>,
    pub queries: Vec<QueryResult>,
}

fn selector(instance: Option<&str>, extra: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(i) = instance {
        parts.push(format!("instance=\"{}\"", i.replace('"', "\\\"")));
    }
    if !extra.is_empty() {
        parts.push(extra.to_string());
    }
    format!("{{{}}}", parts.join(","))
}

/// node-exporter's view of the node (when it has series for `instance`), the DCGM exporter's
/// GPUs when asked, and the source's own queries.
pub async fn collect(
    client: &reqwest::Client,
    url: &str,
    instance: Option<&str>,
    gpu: bool,
    queries: &BTreeMap<String, String>,
    timeout: Duration,
) -> Result<Answered, String> {
    let api = Api {
        client,
        url,
        timeout,
    };
    let up = api
        .one(&format!(
            "node_memory_MemTotal_bytes{}",
            selector(instance, "")
        ))
        .await?;
    let host = match up {
        None => None,
        Some(total) => Some(host(&api, instance, total).await?),
    };
    let gpus = if gpu {
        Some(gpus(&api, instance).await?)
    } else {
        None
    };
    let queries = own_queries(&api, queries).await?;
    Ok(Answered {
        host,
        gpus,
        queries,
    })
}

/// The node's memory, swap, CPUs, load, uptime and filesystems; `total` is its memory, already
/// read. A reading node-exporter does not answer is left empty; only an impossible uptime fails.
async fn host(api: &Api<'_>, instance: Option<&str>, total: f64) -> Result<Host, String> {
    let sel = |extra: &str| selector(instance, extra);
    let b = |q: String| async move { api.one(&q).await.ok().flatten() };
    let uptime = b(format!(
        "node_time_seconds{0} - node_boot_time_seconds{0}",
        sel("")
    ))
    .await
    .map(crate::units::checked_uptime)
    .transpose()
    .map_err(|e| {
        format!(
            "{}: node_time_seconds - node_boot_time_seconds: {e}",
            api.url
        )
    })?;
    let available = b(format!("node_memory_MemAvailable_bytes{}", sel(""))).await;
    let free = b(format!("node_memory_MemFree_bytes{}", sel(""))).await;
    let swap_total = b(format!("node_memory_SwapTotal_bytes{}", sel(""))).await;
    let swap_used = b(format!(
        "node_memory_SwapTotal_bytes{0} - node_memory_SwapFree_bytes{0}",
        sel("")
    ))
    .await;
    let swap_cached = b(format!("node_memory_SwapCached_bytes{}", sel(""))).await;
    let steal = b(format!(
        "100 * sum(rate(node_cpu_seconds_total{}[1m])) / count(node_cpu_seconds_total{})",
        sel("mode=\"steal\""),
        sel("mode=\"idle\"")
    ))
    .await;
    let cpus = b(format!(
        "count(node_cpu_seconds_total{})",
        sel("mode=\"idle\"")
    ))
    .await;
    let load1 = b(format!("node_load1{}", sel(""))).await;
    let disks = disks(api, instance).await;
    let now = chrono::Utc::now();
    Ok(Host {
        hostname: None,
        uptime_s: uptime,
        boot_time: uptime.and_then(|u| crate::units::boot_time(now, u)),
        clock_offset_ms: None,
        ntp_synced: None,
        cpu_count: cpus.map(|c| c as u32),
        mem_total_bytes: Some(total as u64),
        mem_available_bytes: available.map(|v| v as u64),
        mem_free_bytes: free.map(|v| v as u64),
        swap_total_bytes: swap_total.map(|v| v as u64),
        swap_used_bytes: swap_used.map(|v| v.max(0.0) as u64),
        swap_cached_bytes: swap_cached.map(|v| v as u64),
        cpu_steal_pct: steal.map(|s| (s * 10.0).round() / 10.0),
        load1,
        disks,
    })
}

/// Real filesystems (not tmpfs, overlays and the like), one per mount point, with used and
/// available as `df` counts them.
async fn disks(api: &Api<'_>, instance: Option<&str>) -> Vec<Disk> {
    let fs = selector(
        instance,
        "fstype!~\"tmpfs|overlay|squashfs|nsfs|ramfs|devtmpfs|fuse.*\"",
    );
    let sizes = api
        .query(&format!("node_filesystem_size_bytes{fs}"))
        .await
        .unwrap_or_default();
    let avails = api
        .query(&format!("node_filesystem_avail_bytes{fs}"))
        .await
        .unwrap_or_default();
    let frees = api
        .query(&format!("node_filesystem_free_bytes{fs}"))
        .await
        .unwrap_or_default();
    let by_mount = |samples: &[Sample], mount: &str| {
        samples
            .iter()
            .find(|s| s.labels.get("mountpoint").map(String::as_str) == Some(mount))
            .and_then(|s| s.value)
    };
    let mut disks: Vec<Disk> = sizes
        .iter()
        .filter_map(|s| {
            let mount = s.labels.get("mountpoint")?.clone();
            let size = s.value?;
            let used = by_mount(&frees, &mount).map(|f| size - f);
            let avail = by_mount(&avails, &mount);
            Some(Disk {
                used_pct: match (used, avail) {
                    (Some(u), Some(a)) if u + a > 0.0 => {
                        Some((u / (u + a) * 1000.0).round() / 10.0)
                    }
                    _ => None,
                },
                fs_type: s.labels.get("fstype").cloned(),
                size_bytes: Some(size as u64),
                used_bytes: used.map(|u| u.max(0.0) as u64),
                mount,
            })
        })
        .collect();
    disks.sort_by(|a, b| a.mount.cmp(&b.mount));
    disks.dedup_by(|a, b| a.mount == b.mount);
    disks
}

/// The source's own queries, in name order: one result per sample (labels kept only when there
/// are several), an empty answer as one result without a value.
async fn own_queries(
    api: &Api<'_>,
    queries: &BTreeMap<String, String>,
) -> Result<Vec<QueryResult>, String> {
    let mut results = Vec::new();
    for (name, q) in queries {
        match api.query(q).await {
            Ok(samples) if samples.is_empty() => results.push(QueryResult {
                name: name.clone(),
                labels: BTreeMap::new(),
                value: None,
            }),
            Ok(samples) => {
                let single = samples.len() == 1;
                for s in samples {
                    let labels = if single {
                        BTreeMap::new()
                    } else {
                        s.labels
                            .into_iter()
                            .filter(|(k, _)| k != "__name__")
                            .collect()
                    };
                    results.push(QueryResult {
                        name: name.clone(),
                        labels,
                        value: s.value,
                    });
                }
            }
            Err(e) => return Err(format!("query `{name}`: {e}")),
        }
    }
    Ok(results)
}

/// DCGM exporter metrics, one GPU per `gpu` label. A metric missing for a GPU the exporter still
/// lists reads as null: the exporter answered without a value.
async fn gpus(api: &Api<'_>, instance: Option<&str>) -> Result<Vec<Gpu>, String> {
    let host_sel = instance
        .and_then(|i| i.rsplit_once(':').map(|(h, _)| h))
        .map(|h| {
            format!(
                "{{instance=~\"{}:.*\"}}",
                regex::escape(h).replace('\\', "\\\\")
            )
        })
        .unwrap_or_default();
    let util = api
        .query(&format!("DCGM_FI_DEV_GPU_UTIL{host_sel}"))
        .await?;
    let used = api.query(&format!("DCGM_FI_DEV_FB_USED{host_sel}")).await?;
    let free = api.query(&format!("DCGM_FI_DEV_FB_FREE{host_sel}")).await?;
    let temp = api
        .query(&format!("DCGM_FI_DEV_GPU_TEMP{host_sel}"))
        .await?;
    let mut ids: Vec<String> = util
        .iter()
        .chain(&used)
        .chain(&temp)
        .filter_map(|s| s.labels.get("gpu").cloned())
        .collect();
    ids.sort();
    ids.dedup();
    fn pick<'s>(samples: &'s [Sample], id: &str) -> Option<&'s Sample> {
        samples
            .iter()
            .find(|s| s.labels.get("gpu").map(String::as_str) == Some(id))
    }
    Ok(ids
        .iter()
        .map(|id| {
            let used_mib = pick(&used, id).and_then(|s| s.value);
            let free_mib = pick(&free, id).and_then(|s| s.value);
            let name = [&util, &used, &temp]
                .iter()
                .find_map(|v| pick(v, id).and_then(|s| s.labels.get("modelName").cloned()))
                .unwrap_or_else(|| format!("GPU {id}"));
            Gpu {
                index: id.parse().unwrap_or(0),
                name,
                util_pct: pick(&util, id).and_then(|s| s.value),
                mem_used_pct: match (used_mib, free_mib) {
                    (Some(u), Some(f)) if u + f > 0.0 => {
                        Some((u / (u + f) * 1000.0).round() / 10.0)
                    }
                    _ => None,
                },
                mem_used_bytes: used_mib.map(|u| (u * 1048576.0) as u64),
                mem_total_bytes: match (used_mib, free_mib) {
                    (Some(u), Some(f)) => Some(((u + f) * 1048576.0) as u64),
                    _ => None,
                },
                temp_c: pick(&temp, id).and_then(|s| s.value),
                fan_pct: None,
                exporter: Some("dcgm-exporter".into()),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vectors_with_nan_as_null_and_errors() {
        let v = parse_vector(br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"gpu":"0","modelName":"NVIDIA RTX A5000"},"value":[1795352785.675,"NaN"]},{"metric":{"gpu":"1"},"value":[1795352785.675,"27"]}]}}"#).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].value, None);
        assert_eq!(v[1].value, Some(27.0));
        let e = parse_vector(
            br#"{"status":"error","errorType":"bad_data","error":"parse error at char 5"}"#,
        )
        .unwrap_err();
        assert!(e.contains("parse error"));
    }
}
