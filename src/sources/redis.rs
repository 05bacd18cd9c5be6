//! Redis and KeyDB over RESP2: memory, keys per database, and watched keys and hash fields that
//! must exist. A few read-only commands need only a small client; the password is sent with AUTH
//! and never stored.

use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
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

/// Longest reply line (a status, an error, a length) patrol reads.
const MAX_LINE_BYTES: u64 = 64 * 1024;
/// Largest bulk string patrol accepts: INFO answers are a few kilobytes; a server that
/// announces more is broken or hostile, and its length must not become an allocation.
pub const MAX_BULK_BYTES: i64 = 16 * 1024 * 1024;
/// Most elements of an array reply (patrol's commands answer with none or a few).
pub const MAX_ARRAY_LEN: i64 = 100_000;
/// Deepest nesting of arrays (none of patrol's commands nest).
const MAX_DEPTH: usize = 8;
/// Most bytes of one whole reply: each bulk and array is bounded on its own, but 100,000 bulks
/// of 16 MiB are not.
pub const MAX_REPLY_BYTES: u64 = 32 * 1024 * 1024;

/// Reads one RESP2 reply. Every length the server sends is checked before anything is
/// allocated or awaited for it, so a hostile or broken server gives an error, never an abort.
async fn read_reply<R: AsyncBufRead + Unpin>(r: &mut R) -> Result<Reply, String> {
    let mut budget = MAX_REPLY_BYTES;
    read_nested(r, 0, &mut budget).await
}

async fn read_nested<R: AsyncBufRead + Unpin>(
    r: &mut R,
    depth: usize,
    budget: &mut u64,
) -> Result<Reply, String> {
    let mut raw = Vec::new();
    let n = (&mut *r)
        .take(MAX_LINE_BYTES)
        .read_until(b'\n', &mut raw)
        .await
        .map_err(|e| e.to_string())?;
    if n == 0 {
        return Err("the server closed the connection".into());
    }
    spend(budget, n as u64)?;
    if raw.last() != Some(&b'\n') {
        return Err(if n as u64 >= MAX_LINE_BYTES {
            format!("a reply line longer than {MAX_LINE_BYTES} bytes")
        } else {
            "the server closed the connection in a reply".into()
        });
    }
    let line = String::from_utf8_lossy(&raw);
    let line = line.trim_end_matches(['\r', '\n']);
    let mut chars = line.chars();
    let kind = chars.next();
    let rest = chars.as_str();
    match kind {
        Some('+') => Ok(Reply::Status(rest.to_string())),
        Some('-') => Ok(Reply::Error(rest.to_string())),
        Some(':') => rest
            .parse()
            .map(Reply::Int)
            .map_err(|_| format!("bad integer reply `{}`", shown(rest))),
        Some('$') => {
            let len: i64 = rest
                .parse()
                .map_err(|_| format!("bad bulk length `{}`", shown(rest)))?;
            if len < 0 {
                return Ok(Reply::Bulk(None));
            }
            if len > MAX_BULK_BYTES {
                return Err(format!(
                    "a bulk reply of {len} bytes, more than the {MAX_BULK_BYTES} patrol accepts"
                ));
            }
            // Read what arrives rather than allocate what was announced.
            let want = len as u64 + 2;
            spend(budget, want)?;
            let mut buf = Vec::new();
            (&mut *r)
                .take(want)
                .read_to_end(&mut buf)
                .await
                .map_err(|e| e.to_string())?;
            if (buf.len() as u64) < want {
                return Err("the server closed the connection in a bulk reply".into());
            }
            buf.truncate(len as usize);
            Ok(Reply::Bulk(Some(buf)))
        }
        Some('*') => {
            let len: i64 = rest
                .parse()
                .map_err(|_| format!("bad array length `{}`", shown(rest)))?;
            if len > MAX_ARRAY_LEN {
                return Err(format!(
                    "an array reply of {len} elements, more than the {MAX_ARRAY_LEN} patrol accepts"
                ));
            }
            if depth >= MAX_DEPTH {
                return Err(format!("array replies nested deeper than {MAX_DEPTH}"));
            }
            let mut items = Vec::new();
            for _ in 0..len.max(0) {
                items.push(Box::pin(read_nested(r, depth + 1, budget)).await?);
            }
            Ok(Reply::Array(items))
        }
        _ => Err(format!("not a RESP reply: `{}`", shown(line))),
    }
}

fn spend(budget: &mut u64, bytes: u64) -> Result<(), String> {
    *budget = budget
        .checked_sub(bytes)
        .ok_or_else(|| format!("a reply larger than the {MAX_REPLY_BYTES} bytes patrol accepts"))?;
    Ok(())
}

/// At most 80 characters of what the server sent, for an error message.
fn shown(text: &str) -> String {
    text.chars().take(80).collect()
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

    fn parse(bytes: &[u8]) -> Result<Reply, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let mut reader = bytes;
        runtime.block_on(read_reply(&mut reader))
    }

    #[test]
    fn reads_replies() {
        assert_eq!(parse(b"+OK\r\n"), Ok(Reply::Status("OK".into())));
        assert_eq!(parse(b":42\r\n"), Ok(Reply::Int(42)));
        assert_eq!(
            parse(b"$3\r\nabc\r\n"),
            Ok(Reply::Bulk(Some(b"abc".to_vec())))
        );
        assert_eq!(parse(b"$-1\r\n"), Ok(Reply::Bulk(None)));
        assert_eq!(
            parse(b"*2\r\n:1\r\n+x\r\n"),
            Ok(Reply::Array(vec![Reply::Int(1), Reply::Status("x".into())]))
        );
    }

    #[test]
    fn announced_lengths_are_bounded_before_allocating() {
        let err = parse(b"$100000000000\r\n").unwrap_err();
        assert!(err.contains("100000000000 bytes"), "{err}");
        let err = parse(b"*100000000000\r\n").unwrap_err();
        assert!(err.contains("100000000000 elements"), "{err}");
        // A length within the bound, but the data never comes.
        let err = parse(b"$1000000\r\nabc").unwrap_err();
        assert!(err.contains("closed"), "{err}");
        assert!(parse(&b"*1\r\n".repeat(100)).is_err(), "nesting is bounded");
    }

    #[test]
    fn a_whole_reply_is_bounded_not_only_each_part() {
        // 100 bulks of 1 MiB each are allowed one by one, not together past the reply's cap.
        let bulk = format!("$1048576\r\n{}\r\n", "x".repeat(1 << 20));
        let reply = format!("*100\r\n{}", bulk.repeat(40));
        let err = parse(reply.as_bytes()).unwrap_err();
        assert!(err.contains("a reply larger than"), "{err}");
        let small = format!("*3\r\n{}", bulk.repeat(3));
        assert!(parse(small.as_bytes()).is_ok());
    }

    #[test]
    fn a_multibyte_first_character_is_not_a_reply() {
        let err = parse("é\r\n".as_bytes()).unwrap_err();
        assert!(err.contains("not a RESP reply"), "{err}");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn any_bytes_are_a_reply_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
                let _ = parse(&bytes);
            }

            #[test]
            fn any_announced_length_is_an_answer_or_an_error(
                kind in prop_oneof![Just('$'), Just('*')],
                len in any::<i64>(),
                tail in proptest::collection::vec(any::<u8>(), 0..64)
            ) {
                let mut bytes = format!("{kind}{len}\r\n").into_bytes();
                bytes.extend(tail);
                let _ = parse(&bytes);
            }
        }
    }
}
