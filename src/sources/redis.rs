//! Redis and KeyDB over RESP2: memory, keys per database, and watched keys and hash fields that
//! must exist. A few read-only commands need only a small client; the password is sent with AUTH
//! and never stored.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::config::WatchKey;
use crate::model::{Redis, RedisDb, WatchedKey};

#[derive(Debug, PartialEq)]
enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

struct Conn {
    stream: BufReader<TcpStream>,
    endpoint: String,
}

impl Conn {
    async fn command(&mut self, args: &[&str]) -> Result<Reply, String> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend(format!("${}\r\n", a.len()).as_bytes());
            out.extend(a.as_bytes());
            out.extend(b"\r\n");
        }
        self.stream
            .get_mut()
            .write_all(&out)
            .await
            .map_err(|e| format!("{}: {e}", self.endpoint))?;
        let reply = Box::pin(read_reply(&mut self.stream))
            .await
            .map_err(|e| format!("{}: {e}", self.endpoint))?;
        match reply {
            // The command name is safe to show; its arguments (AUTH's password) are not.
            Reply::Error(e) => Err(format!("{}: {} failed: {e}", self.endpoint, args[0])),
            other => Ok(other),
        }
    }
}

async fn read_reply(r: &mut BufReader<TcpStream>) -> Result<Reply, String> {
    let mut line = String::new();
    let n = r.read_line(&mut line).await.map_err(|e| e.to_string())?;
    if n == 0 {
        return Err("the server closed the connection".into());
    }
    let line = line.trim_end_matches(['\r', '\n']);
    let (kind, rest) = line.split_at(1.min(line.len()));
    match kind {
        "+" => Ok(Reply::Status(rest.to_string())),
        "-" => Ok(Reply::Error(rest.to_string())),
        ":" => rest
            .parse()
            .map(Reply::Int)
            .map_err(|_| format!("bad integer reply `{rest}`")),
        "$" => {
            let len: i64 = rest
                .parse()
                .map_err(|_| format!("bad bulk length `{rest}`"))?;
            if len < 0 {
                return Ok(Reply::Bulk(None));
            }
            let mut buf = vec![0u8; len as usize + 2];
            r.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
            buf.truncate(len as usize);
            Ok(Reply::Bulk(Some(buf)))
        }
        "*" => {
            let len: i64 = rest
                .parse()
                .map_err(|_| format!("bad array length `{rest}`"))?;
            let mut items = Vec::new();
            for _ in 0..len.max(0) {
                items.push(Box::pin(read_reply(r)).await?);
            }
            Ok(Reply::Array(items))
        }
        _ => Err(format!("not a RESP reply: `{line}`")),
    }
}

fn bulk_text(r: Reply) -> String {
    match r {
        Reply::Bulk(Some(b)) => String::from_utf8_lossy(&b).into_owned(),
        Reply::Status(s) => s,
        _ => String::new(),
    }
}

/// `db0:keys=3,expires=0,avg_ttl=0` lines of INFO keyspace.
pub fn parse_keyspace(info: &str) -> Vec<RedisDb> {
    info.lines()
        .filter_map(|l| {
            let (db, rest) = l.trim().split_once(':')?;
            let index = db.strip_prefix("db")?.parse().ok()?;
            let keys = rest
                .split(',')
                .find_map(|kv| kv.strip_prefix("keys="))?
                .parse()
                .ok();
            Some(RedisDb { index, keys })
        })
        .collect()
}

pub fn parse_info_field(info: &str, field: &str) -> Option<u64> {
    info.lines()
        .find_map(|l| l.trim().strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
}

pub async fn collect(
    name: &str,
    host: &str,
    port: u16,
    password: Option<String>,
    watch: &[WatchKey],
    timeout: Duration,
) -> Result<Redis, String> {
    let endpoint = format!("redis://{host}:{port}");
    let stream = tokio::time::timeout(timeout, TcpStream::connect((host, port)))
        .await
        .map_err(|_| format!("{endpoint}: no connection within {timeout:?}"))?
        .map_err(|e| format!("{endpoint}: {e}"))?;
    let mut conn = Conn {
        stream: BufReader::new(stream),
        endpoint,
    };
    if let Some(p) = &password {
        conn.command(&["AUTH", p]).await?;
    }
    let memory = bulk_text(conn.command(&["INFO", "memory"]).await?);
    let keyspace = bulk_text(conn.command(&["INFO", "keyspace"]).await?);
    let mut dbs = parse_keyspace(&keyspace);
    // Empty databases are not listed by INFO; the watched ones are shown with 0 keys.
    for w in watch {
        if !dbs.iter().any(|d| d.index == w.db) {
            dbs.push(RedisDb {
                index: w.db,
                keys: Some(0),
            });
        }
    }
    dbs.sort_by_key(|d| d.index);
    let mut watched = Vec::new();
    for w in watch {
        conn.command(&["SELECT", &w.db.to_string()]).await?;
        let exists = matches!(conn.command(&["EXISTS", &w.key]).await?, Reply::Int(n) if n > 0);
        let kind = if exists {
            Some(bulk_text(conn.command(&["TYPE", &w.key]).await?))
        } else {
            None
        };
        let mut fields_missing = Vec::new();
        for f in &w.fields {
            let present = exists
                && kind.as_deref() == Some("hash")
                && matches!(conn.command(&["HEXISTS", &w.key, f]).await?, Reply::Int(1));
            if !present {
                fields_missing.push(f.clone());
            }
        }
        watched.push(WatchedKey {
            db: w.db,
            key: w.key.clone(),
            exists,
            kind,
            fields_missing,
        });
    }
    Ok(Redis {
        name: name.to_string(),
        port: Some(port),
        used_memory_bytes: parse_info_field(&memory, "used_memory"),
        dbs,
        watched,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_info() {
        let ks = "# Keyspace\r\ndb0:keys=3,expires=0,avg_ttl=0\r\ndb2:keys=3,expires=1,avg_ttl=86371698\r\n";
        assert_eq!(
            parse_keyspace(ks),
            vec![
                RedisDb {
                    index: 0,
                    keys: Some(3)
                },
                RedisDb {
                    index: 2,
                    keys: Some(3)
                }
            ]
        );
        assert_eq!(
            parse_info_field(
                "# Memory\r\nused_memory:1012336\r\nused_memory_human:988.61K\r\n",
                "used_memory"
            ),
            Some(1012336)
        );
    }
}
