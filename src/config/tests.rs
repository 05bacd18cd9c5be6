use super::*;

#[test]
fn reports_every_mistake_with_lines() {
    let text = r#"fleet = "x"
timezone = "Mars/Base"
windwo = "2h"

[[node]]
name = "vk01"
[node.docker]
endpoint = "http://10.0.0.1:2375"
[[node.postgres]]
name = "db"
password = "hunter2"
[[node.rabbitmq]]
name = "mq"
url = "http://guest:guest@127.0.0.1:15672"
"#;
    let err = parse(Path::new("p.toml"), text).unwrap_err().to_string();
    for needle in [
        "p.toml:2:12",
        "p.toml:3:1: patrol.toml: unknown key `windwo` (did you mean `window`?)",
        "p.toml:8:12",
        "p.toml:11:12",
        "p.toml:14:7",
    ] {
        assert!(err.contains(needle), "missing {needle} in:\n{err}");
    }
    assert!(
        !err.contains("hunter2"),
        "the error must not echo the secret"
    );
}

#[test]
fn archive_retention_is_on_unless_disabled_and_output_ages_are_read() {
    let base = "fleet = \"f\"\n[[node]]\nname = \"n\"\n";
    let plain = parse(Path::new("p.toml"), base).unwrap();
    let r = plain
        .retention
        .expect("retention on without a [retention] table");
    assert_eq!(r.full, chrono::Duration::days(14));
    assert_eq!(plain.report.keep_dated, Duration::from_secs(90 * 86400));
    assert_eq!(plain.report.keep_resolved, Duration::from_secs(30 * 86400));
    let off = parse(
        Path::new("p.toml"),
        &format!("{base}[retention]\nenabled = false\n"),
    )
    .unwrap();
    assert!(off.retention.is_none(), "enabled = false keeps everything");
    let set = parse(
        Path::new("p.toml"),
        "fleet = \"f\"\n[report]\nkeep_dated = \"10d\"\nkeep_resolved = \"2d\"\n[retention]\nfull = \"3d\"\n[[node]]\nname = \"n\"\n",
    )
    .unwrap();
    assert_eq!(set.report.keep_dated, Duration::from_secs(10 * 86400));
    assert_eq!(set.report.keep_resolved, Duration::from_secs(2 * 86400));
    assert_eq!(
        set.retention.map(|r| r.full),
        Some(chrono::Duration::days(3))
    );
    let err = parse(
        Path::new("p.toml"),
        &format!("{base}[report]\nkeep_dated = \"0d\"\n"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("p.toml:5"), "{err}");
}

#[test]
fn a_full_config_parses() {
    let text = r#"fleet = "VisionKing 03002"
timezone = "America/Sao_Paulo"
concurrency = 4
timeout = "5s"
redact = ["token=\\S+"]
[logs]
max_lines = 1000
fields = { bar_uuid = "bar_uuid='([^']*)'" }

[[node]]
name = "vk01"
role = "processing"
[node.host]
[node.docker]
endpoint = "ssh://root@10.244.70.25"
[node.ssh]
target = "root@10.244.70.25"
port = 2222
commands = ["uptime", "compose"]
[node.prometheus]
url = "http://10.244.70.25:9090/"
instance = "10.244.70.25:9100"
gpu = true
queries = { fps = "sum(rate(frames_total[5m]))" }
[[node.postgres]]
name = "database-server"
port = 2345
user = "patrol"
password_env = "PATROL_PG_PASSWORD"
[[node.redis]]
name = "keydb"
port = 4000
watch = [{ db = 1, key = "DB_Speed", fields = ["Velocidade_Tratada"] }]
[[node.http]]
name = "visualizer"
url = "http://10.244.70.25:8050/"
"#;
    let c = parse(Path::new("/etc/patrol/patrol.toml"), text).unwrap();
    assert_eq!(
        c.archive,
        ArchiveSpec::Dir(PathBuf::from("/etc/patrol/snapshots/visionking-03002"))
    );
    assert_eq!(c.logs.fields[0].0, "bar_uuid");
    let names: Vec<String> = c.nodes[0].sources.iter().map(Source::name).collect();
    assert_eq!(
        names,
        [
            "host",
            "ssh",
            "docker",
            "prometheus",
            "postgres:database-server",
            "redis:keydb",
            "http:visualizer"
        ]
    );
    let Source::Docker { ssh: Some(ssh), .. } = &c.nodes[0].sources[2] else {
        panic!()
    };
    assert_eq!(
        ssh.port,
        Some(2222),
        "the docker ssh:// endpoint uses the node's ssh settings"
    );
}

#[test]
fn report_file_mode_is_read_and_a_bad_one_is_an_error_with_its_line() {
    let base = "fleet = \"x\"\n[[node]]\nname = \"a\"\n[node.host]\n";
    let c = parse(Path::new("p.toml"), base).unwrap();
    assert_eq!(c.report.file_mode, 0o640);
    let c = parse(
        Path::new("p.toml"),
        &format!("{base}[report]\nfile_mode = \"0644\"\n"),
    )
    .unwrap();
    assert_eq!(c.report.file_mode, 0o644);
    for bad in ["\"0755\"", "\"0400\"", "\"x\""] {
        let err = parse(
            Path::new("p.toml"),
            &format!("{base}[report]\n\nfile_mode = {bad}\n"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("p.toml:7:") && err.contains("`file_mode`"),
            "{err}"
        );
    }
}

#[test]
fn secret_files_are_listed_once_each_with_ssh_identities_strict() {
    let text = r#"fleet = "x"
archive = "postgres://patrol@db/archive"
archive_password_file = "archive_pw"
[telegram]
token_file = "token"
chat_id = "1"
[[node]]
name = "a"
[node.ssh]
target = "patrol@a"
identity = "id_a"
[node.docker]
endpoint = "ssh://patrol@a"
[[node.postgres]]
name = "db"
password_file = "pw"
[[node.redis]]
name = "r"
password_file = "pw"
[[node.rabbitmq]]
name = "mq"
url = "http://a:15672"
password_file = "mq_pw"
[[node.http]]
name = "web"
url = "http://a/"
"#;
    let c = parse(Path::new("/etc/patrol/patrol.toml"), text).unwrap();
    let files: Vec<(String, bool)> = c
        .secret_files()
        .into_iter()
        .map(|(_, p, strict)| (p.display().to_string(), strict))
        .collect();
    let want = |p: &str, strict| (format!("/etc/patrol/{p}"), strict);
    assert_eq!(
        files,
        vec![
            want("archive_pw", false),
            want("token", false),
            want("pw", false),
            want("mq_pw", false),
            want("id_a", true),
        ]
    );
}

#[test]
fn slugs() {
    assert_eq!(slug("VisionKing 03002"), "visionking-03002");
}

#[test]
fn shared_archive_is_a_url_with_its_password_named_not_written() {
    let base = "fleet = \"vk\"\n[[node]]\nname = \"a\"\n";
    let c = parse(
        Path::new("/etc/patrol/patrol.toml"),
        &format!(
            "archive = \"postgres://patrol@db:5433/archive?schema=site_a\"\narchive_password_file = \"pw\"\n{base}"
        ),
    )
    .unwrap();
    match &c.archive {
        ArchiveSpec::Postgres { target, password } => {
            assert_eq!((target.host.as_str(), target.port), ("db", 5433));
            assert_eq!(target.schema, "site_a");
            assert_eq!(
                password,
                &Some(Secret::File(PathBuf::from("/etc/patrol/pw")))
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.state_root(), Path::new("/etc/patrol/output/vk"));
    let err = parse(
        Path::new("patrol.toml"),
        &format!("archive = \"postgres://patrol:hunter2@db/archive\"\n{base}"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("patrol.toml:1:") && err.contains("holds a password"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
    let err = parse(
        Path::new("patrol.toml"),
        &format!("archive = \"snapshots/vk\"\narchive_password_env = \"PW\"\n{base}"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("only for a postgres:// archive"), "{err}");
}

#[test]
fn every_bad_value_is_reported_at_once_with_its_line() {
    let text = r#"fleet = "x"
timeout = "99999999999999d"
window = "0m"
concurrency = 1000000000
[daemon]
interval = "0s"
[telegram]
api_base = "file:///etc/passwd"
token_env = "T"
chat_id = "1"
attempts = 1000
[[node]]
name = "a"
[node.ssh]
target = "-oProxyCommand=touch /tmp/pwned"
port = 70000
[node.docker]
endpoint = "tcp://docker-host"
[node.prometheus]
url = "localhost:9090"
[[node.postgres]]
name = "db"
port = -1
[[node.postgres]]
name = "db"
port = 0
[[node.redis]]
name = "cache"
timeout = "0s"
[[node.http]]
name = "web"
url = "ftp://10.0.0.1/"
[[node.http]]
name = "web"
url = "http://10.0.0.1:8080/"
[[node]]
name = "b"
[node.docker]
endpoint = "ssh://-oProxyCommand=x:22"
[[node.rabbitmq]]
name = "mq"
url = "http://:15672"
"#;
    let err = parse(Path::new("p.toml"), text).unwrap_err().to_string();
    for line in [
        2, 3, 4, 6, 8, 11, 15, 16, 18, 20, 23, 25, 26, 29, 32, 34, 39, 42,
    ] {
        assert!(
            err.contains(&format!("p.toml:{line}:")),
            "no problem at line {line}:\n{err}"
        );
    }
    assert!(err.contains("starts with `-`"), "{err}");
    assert!(err.contains("already defined in this node"), "{err}");
    assert!(err.contains("from 1 to 65535"), "{err}");
}

#[test]
fn log_read_bounds_and_the_size_schedule_are_read_and_checked() {
    let text = "fleet = \"x\"\n[logs]\nmax_bytes = \"8MB\"\nread_time = \"5s\"\nwarn_templates = 10\n[[node]]\nname = \"a\"\n[node.docker]\nendpoint = \"unix:///run/docker.sock\"\nsize_every = \"1h\"\n";
    let c = parse(Path::new("p.toml"), text).unwrap();
    assert_eq!(c.logs.max_bytes, 8_000_000);
    assert_eq!(c.logs.read_time, Duration::from_secs(5));
    assert_eq!(c.logs.warn_templates, 10);
    let Source::Docker { size_every, .. } = &c.nodes[0].sources[0] else {
        panic!("a docker source")
    };
    assert_eq!(*size_every, Duration::from_secs(3600));
    for bad in [
        "max_bytes = \"12\"",
        "max_bytes = \"lots\"",
        "read_time = \"0s\"",
    ] {
        let text = format!("fleet = \"x\"\n[logs]\n{bad}\n[[node]]\nname = \"a\"\n[node.host]\n");
        assert!(parse(Path::new("p.toml"), &text).is_err(), "{bad}");
    }
}

#[test]
fn durations_at_the_edges_of_their_ranges() {
    let base = "fleet = \"x\"\n[[node]]\nname = \"a\"\n[node.host]\n";
    let ok = |extra: &str| parse(Path::new("p.toml"), &format!("{extra}\n{base}")).is_ok();
    assert!(ok("timeout = \"1h\""));
    assert!(!ok("timeout = \"61m\""));
    assert!(ok("window = \"3650d\""));
    assert!(!ok("window = \"3651d\""));
    assert!(!ok("window = \"-1h\""));
}

mod never_panics {
    use super::super::*;
    use crate::tomlread::arbitrary::tomlish;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn loading_any_config_text_returns(text in tomlish()) {
            let _ = parse(Path::new("p.toml"), &text);
        }

        #[test]
        fn a_docker_endpoint_of_any_text_returns(text in "(unix|tcp|ssh)://[ -~]{0,20}") {
            let _ = DockerEndpoint::parse(&text);
        }
    }

    #[test]
    fn an_ipv6_docker_host_must_be_whole() {
        assert!(DockerEndpoint::parse("tcp://[::1]:2375").is_ok());
        for bad in [
            "tcp://[::1:2375",
            "tcp://::1]:2375",
            "tcp://[]:2375",
            "tcp://[zz]:2375",
        ] {
            assert!(DockerEndpoint::parse(bad).is_err(), "{bad}");
        }
    }
}
