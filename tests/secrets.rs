//! Secrets planted in a real container on the test bed (command arguments, environment, a
//! label and log lines, in every common form) must appear in no byte patrol writes: archive
//! files (decompressed), reports, ledger, state, outbox, stdout and stderr.

use std::hash::{BuildHasher, Hasher};
use std::path::Path;
use std::process::Command;

use crate::support::{files_under, patrol, succeeded, text};

fn socket() -> String {
    std::env::var("PATROL_TEST_DOCKER_SOCKET")
        .expect("PATROL_TEST_DOCKER_SOCKET is unset: run the suite with scripts/test")
}

fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .arg("-H")
        .arg(format!("unix://{}", socket()))
        .args(args)
        .output()
        .expect("the docker client runs")
}

/// Removes the planted container however the test ends.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.0]);
    }
}

/// A fresh value per form: letters and digits, starting with a letter (so no form treats it as
/// a port), never the same twice.
fn unique_value(i: usize) -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_usize(i);
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    let n = h.finish();
    let mut out = String::from("Qz");
    let alphabet = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut x = n;
    for _ in 0..18 {
        out.push(alphabet[(x % alphabet.len() as u64) as usize] as char);
        x = (x / alphabet.len() as u64) ^ n.rotate_left(17);
    }
    out
}

/// Every file's text, zstd archives decompressed.
fn readable(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    if path.to_string_lossy().ends_with(".zst") {
        let plain = zstd::decode_all(&bytes[..])
            .unwrap_or_else(|e| panic!("{} does not decompress: {e}", path.display()));
        String::from_utf8_lossy(&plain).into_owned()
    } else {
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

#[test]
#[ignore = "needs the test bed: scripts/test"]
fn planted_secrets_reach_no_byte_patrol_writes() {
    let v: Vec<String> = (0..20).map(unique_value).collect();
    let name = format!("pt-secrets-{}", &unique_value(99)[2..12].to_lowercase());
    start_planted_container(&name, &v);
    let _guard = Container(name.clone());
    // Wait for the log lines to be written.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let logs = docker(&["logs", &name]);
        if text(&logs.stdout).contains("password changed") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the container wrote no logs"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("patrol.toml");
    std::fs::write(
        &config,
        format!(
            "fleet = \"Secrets\"\ntimezone = \"UTC\"\n[[node]]\nname = \"node-a\"\n[node.docker]\nendpoint = \"unix://{}\"\n",
            socket()
        ),
    )
    .unwrap();
    let run = patrol(&["run", "--config", config.to_str().unwrap()], dir.path());
    assert!(
        matches!(run.status.code(), Some(0) | Some(1)),
        "patrol run exited {:?}",
        run.status.code()
    );
    let report = patrol(
        &["report", "--config", config.to_str().unwrap()],
        dir.path(),
    );
    succeeded(&report);

    let files = files_under(dir.path());
    let archived: Vec<String> = files
        .iter()
        .filter(|f| f.to_string_lossy().ends_with(".json.zst"))
        .map(|f| readable(f))
        .collect();
    assert!(!archived.is_empty(), "no capture archived");
    // The forms were captured, masked, not left out: the container, its flags and its log.
    let snapshot = archived.join("\n");
    assert!(snapshot.contains(&name), "the planted container is missing");
    assert!(
        snapshot.contains("--requirepass") && snapshot.contains("***"),
        "the command was not captured with its flags masked"
    );
    assert!(
        snapshot.contains("password changed for user bob"),
        "ordinary log text was lost"
    );

    let mut outputs: Vec<(String, String)> = files
        .iter()
        .filter(|f| **f != config)
        .map(|f| (f.display().to_string(), readable(f)))
        .collect();
    for (what, out) in [("patrol run", &run), ("patrol report", &report)] {
        outputs.push((format!("{what} stdout"), text(&out.stdout)));
        outputs.push((format!("{what} stderr"), text(&out.stderr)));
    }
    for (what, content) in &outputs {
        for (i, value) in v.iter().enumerate() {
            assert!(
                !content.contains(value.as_str()),
                "{what} holds planted secret number {i}"
            );
        }
    }
}

/// A container carrying the planted values `v` in every form patrol might read: its
/// environment, a label, secret flags of its command and lines of its log.
fn start_planted_container(name: &str, v: &[String]) {
    // Log lines, one form each; also part of the command (the script) itself.
    let log_lines = [
        format!(
            r#"printf '%s\n' '{{"password": "{}", "user": "bob"}}'"#,
            v[6]
        ),
        format!(r#"echo "{{'secret': '{}'}}""#, v[7]),
        format!(
            r#"printf '%s\n' '{{"token":"{}","api_key": "{}"}}'"#,
            v[8], v[9]
        ),
        format!(
            "echo 'dial postgres://app:pa/ss:{}@db.local:5432/app refused'",
            v[10]
        ),
        format!("echo 'GET /api Authorization: Bearer {} 200'", v[11]),
        format!("echo 'git fetch with token {}'", v[12]),
        format!("echo 'proxy sent Authorization: Basic {}'", v[13]),
        format!("echo 'header Authorization: {}'", v[14]),
        format!("echo 'login password={} ok'", v[15]),
        "echo 'password changed for user bob'".to_string(),
    ];
    let script = format!("{}; sleep 3600", log_lines.join("; "));
    let label = format!("org.opencontainers.image.revision=password={}", v[18]);
    let env_a = format!("DB_PASSWORD={}", v[16]);
    let env_b = format!("API_TOKEN={}", v[17]);
    let p_flag = format!("-p{}", v[1]);
    let password_eq = format!("--password={}", v[3]);
    let run = docker(&[
        "run",
        "-d",
        "--name",
        name,
        "-e",
        &env_a,
        "-e",
        &env_b,
        "--label",
        &label,
        "patrol-bb:1",
        "sh",
        "-c",
        &script,
        "--requirepass",
        &v[0],
        &p_flag,
        "--password",
        &v[2],
        &password_eq,
        "--token",
        &v[4],
        "--api-key",
        &v[5],
    ]);
    assert!(
        run.status.success(),
        "docker run failed: {}",
        text(&run.stderr)
    );
}
