//! The shared archive in PostgreSQL (issue 7): site collectors writing at once, one reporter,
//! copies both ways, schema migration. The tests that need a database are ignored in a plain
//! `cargo test`; `scripts/test` starts the test bed's PostgreSQL and runs them. Each test works in
//! a schema of its own and drops it at the end.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{files_under, root, succeeded, text};

fn archive_url() -> String {
    std::env::var("PATROL_TEST_ARCHIVE_URL")
        .expect("PATROL_TEST_ARCHIVE_URL is unset: run the suite with scripts/test")
}

fn password_file() -> String {
    std::env::var("PATROL_TEST_PG_PASSWORD_FILE")
        .expect("PATROL_TEST_PG_PASSWORD_FILE is unset: run the suite with scripts/test")
}

fn password() -> String {
    std::fs::read_to_string(password_file())
        .unwrap()
        .trim()
        .to_string()
}

/// A schema no other test (or run) uses.
fn fresh_schema(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("t_{tag}_{}_{nanos}", std::process::id())
}

/// The `patrol` binary in `cwd`, with the database password in PGPASSWORD (as an operator on
/// the command line) or without it (as a collector whose config names its password file).
fn patrol_cmd(args: &[&str], cwd: &Path, with_pgpassword: bool) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_patrol"));
    cmd.args(args).current_dir(cwd).env_remove("PATROL_LOG");
    if with_pgpassword {
        cmd.env("PGPASSWORD", password());
    } else {
        cmd.env_remove("PGPASSWORD");
    }
    cmd
}

/// Started, its output kept for `wait_with_output`.
fn spawned(mut cmd: Command) -> std::process::Child {
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// `patrol` with the database password in PGPASSWORD, as an operator would run it.
fn patrol_pg(args: &[&str], cwd: &Path) -> Output {
    patrol_cmd(args, cwd, true).output().unwrap()
}

/// [`succeeded`], and the database password appears in none of the output.
fn ok(out: &Output) -> String {
    let stdout = succeeded(out);
    let all = format!("{stdout}{}", text(&out.stderr));
    assert!(!all.contains(&password()), "the password was printed");
    stdout
}

/// `patrol archive copy --from FROM --to TO`, which must succeed; what it printed.
fn copy(from: &str, to: &str, cwd: &Path) -> String {
    ok(&patrol_pg(
        &["archive", "copy", "--from", from, "--to", to],
        cwd,
    ))
}

/// SQL through psql as the archive's role (the test's view of the database, not patrol's).
fn psql(sql: &str) -> String {
    try_psql(sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

pub(crate) fn try_psql(sql: &str) -> Result<String, String> {
    let port = std::env::var("PATROL_TEST_PG_PORT").map_err(|e| e.to_string())?;
    let password = std::fs::read_to_string(password_file()).map_err(|e| e.to_string())?;
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            "patrol",
            "-d",
            "patrol_archive",
            "-qtAX",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .env("PGPASSWORD", password.trim())
        .env("PGOPTIONS", "--client-min-messages=warning")
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(text(&out.stdout).trim().to_string())
    } else {
        Err(text(&out.stderr))
    }
}

struct DropSchema(String);

impl Drop for DropSchema {
    fn drop(&mut self) {
        // Best effort: a failing test must report its own failure, not abort on the cleanup.
        let _ = try_psql(&format!("drop schema if exists {} cascade", self.0));
    }
}

/// What `patrol report --format json` says (open findings with their lifecycle, events,
/// resolutions), without the section's path, which names the output directory.
fn findings(json: &str) -> serde_json::Value {
    let mut doc: serde_json::Value = serde_json::from_str(json).unwrap();
    doc.as_object_mut().unwrap().remove("section");
    doc
}

#[test]
#[ignore = "needs the test bed: scripts/test"]
fn two_collectors_writing_at_once_then_one_report_gives_the_findings_of_the_file_archive() {
    let schema = fresh_schema("sites");
    let _cleanup = DropSchema(schema.clone());
    let dir = tempfile::tempdir().unwrap();
    let url = format!("{}?schema={schema}", archive_url());
    let socket_a = std::env::var("PATROL_TEST_DOCKER_SOCKET").unwrap();
    let tcp_b = std::env::var("PATROL_TEST_DOCKER_TCP_B").unwrap();
    let http = std::env::var("PATROL_TEST_HTTP").unwrap();
    let site_a = site_config(
        dir.path(),
        &url,
        ("site-a", "node-a"),
        format!(
            "[node.docker]\nendpoint = \"unix://{socket_a}\"\n[[node.http]]\nname = \"unhealthy\"\nurl = \"{http}/cgi-bin/unhealthy\"\n"
        ),
    );
    let site_b = site_config(
        dir.path(),
        &url,
        ("site-b", "node-b"),
        format!("[node.docker]\nendpoint = \"tcp://{tcp_b}\"\n"),
    );
    capture_together(dir.path(), &site_a, &site_b);
    let shared = format!("{url}&fleet=Shared Fleet");
    assert_both_sites_are_in_the_shared_archive(dir.path(), &shared, &schema);

    // The same captures as files, then one report over each.
    let files = dir.path().join("files");
    let copied = copy(&shared, files.to_str().unwrap(), dir.path());
    assert!(copied.contains("copied 6 captures of 2 nodes"), "{copied}");
    let from_pg = findings(&report_json(dir.path(), &shared, "report-pg"));
    let from_files = findings(&report_json(
        dir.path(),
        files.to_str().unwrap(),
        "report-files",
    ));
    assert_eq!(from_pg, from_files);
    let titles: Vec<String> = from_pg["open"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            f["finding"]["title"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert!(
        titles.len() >= 2,
        "the bed's broken containers are found: {from_pg}"
    );
    assert!(
        titles.iter().any(|t| t.contains("pt-unhealthy")),
        "{titles:#?}"
    );
    let header = crate::support::rolling_report(&dir.path().join("report-pg"));
    assert!(header.starts_with("# Shared Fleet"), "{header}");

    assert_a_reporter_config_reads_the_same(dir.path(), &url, &from_files);
    assert_a_reporter_daemon_reports(dir.path());
}

/// A site collector's config: one node with `sources`, writing to the shared archive at `url`.
fn site_config(dir: &Path, url: &str, (name, node): (&str, &str), sources: String) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"fleet = "Shared Fleet"
timezone = "America/Sao_Paulo"
archive = "{url}"
archive_password_file = "{pw}"
output = "{name}-output"

[[node]]
name = "{node}"
role = "processing"
{sources}"#,
            pw = password_file()
        ),
    )
    .unwrap();
    path
}

/// Three rounds, both collectors started together each time: the first round also creates
/// the schema, from two processes at once.
fn capture_together(dir: &Path, site_a: &Path, site_b: &Path) {
    for round in 0..3 {
        let start = |config: &Path| {
            let args = [
                "run",
                "--capture-only",
                "--config",
                config.to_str().unwrap(),
            ];
            spawned(patrol_cmd(&args, dir, false))
        };
        let (a, b) = (start(site_a), start(site_b));
        ok(&a.wait_with_output().unwrap());
        ok(&b.wait_with_output().unwrap());
        if round < 2 {
            std::thread::sleep(std::time::Duration::from_secs(2));
        }
    }
}

/// Both sites' captures are in the database, each row naming its writer, and the collectors
/// kept only their own state locally: no archive files, no report.
fn assert_both_sites_are_in_the_shared_archive(dir: &Path, shared: &str, schema: &str) {
    let local: Vec<_> = files_under(dir)
        .into_iter()
        .filter(|p| !p.to_string_lossy().ends_with(".toml"))
        .collect();
    assert!(
        local
            .iter()
            .all(|p| p.to_string_lossy().contains("/.state/")),
        "{local:?}"
    );
    let stats = ok(&patrol_pg(&["archive", "stats", "--archive", shared], dir));
    assert!(stats.contains(": 6 captures"), "{stats}");
    assert!(stats.contains("schema version 2; written by:"), "{stats}");
    assert!(
        stats
            .lines()
            .any(|l| l.starts_with("node-a ") && l.contains(" 3 ")),
        "{stats}"
    );
    assert_eq!(
        psql(&format!(
            "select count(distinct written_by) from {schema}.snapshots"
        )),
        "1",
        "each row says which collector wrote it"
    );
}

/// `patrol report --format json` over `archive`, written to `out`.
fn report_json(dir: &Path, archive: &str, out: &str) -> String {
    ok(&patrol_pg(
        &[
            "report",
            "--archive",
            archive,
            "--out",
            out,
            "--format",
            "json",
        ],
        dir,
    ))
}

/// The reporter's own config (the archive and its password, no nodes) reports what the file
/// archive's report says, and refuses to capture.
fn assert_a_reporter_config_reads_the_same(dir: &Path, url: &str, from_files: &serde_json::Value) {
    std::fs::write(
        dir.join("reporter.toml"),
        format!(
            "fleet = \"Shared Fleet\"\ntimezone = \"America/Sao_Paulo\"\narchive = \"{url}\"\narchive_password_file = \"{}\"\noutput = \"report-config\"\n",
            password_file()
        ),
    )
    .unwrap();
    let reporter = |args: &[&str]| patrol_cmd(args, dir, false).output().unwrap();
    let by_config = findings(&ok(&reporter(&[
        "report",
        "--config",
        "reporter.toml",
        "--format",
        "json",
    ])));
    assert_eq!(&by_config, from_files);
    assert!(dir.join("report-config/improvements.md").exists());
    let out = reporter(&["run", "--config", "reporter.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("lists no nodes to capture"),
        "{}",
        text(&out.stderr)
    );
}

/// The same reporter as a daemon: each tick is a report; SIGTERM stops it.
fn assert_a_reporter_daemon_reports(dir: &Path) {
    let daemon_config = std::fs::read_to_string(dir.join("reporter.toml"))
        .unwrap()
        .replace("report-config", "report-daemon")
        + "[daemon]\ninterval = \"1s\"\ndigest = \"off\"\n";
    std::fs::write(dir.join("reporter-daemon.toml"), daemon_config).unwrap();
    let daemon = spawned(patrol_cmd(
        &["daemon", "--config", "reporter-daemon.toml"],
        dir,
        false,
    ));
    let report = dir.join("report-daemon/improvements.md");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !report.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // The shell's own `kill`: no procps needed.
    let kill = Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", daemon.id())])
        .status()
        .unwrap();
    assert!(kill.success());
    ok(&daemon.wait_with_output().unwrap());
    assert!(report.exists(), "the reporter daemon wrote its report");
}

#[test]
#[ignore = "needs the test bed: scripts/test"]
fn the_demo_archive_copied_into_postgres_by_two_writers_at_once_replays_to_the_same_report() {
    let schema = fresh_schema("demo");
    let _cleanup = DropSchema(schema.clone());
    let dir = tempfile::tempdir().unwrap();
    let url = format!("{}?schema={schema}", archive_url());
    let demo = root().join("snapshots/demo");
    // Two copies of the same archive at once: every row is written twice, concurrently.
    let spawn_copy = || {
        let args = [
            "archive",
            "copy",
            "--from",
            demo.to_str().unwrap(),
            "--to",
            &url,
        ];
        spawned(patrol_cmd(&args, dir.path(), true))
    };
    let (a, b) = (spawn_copy(), spawn_copy());
    for out in [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()] {
        let said = ok(&out);
        assert!(said.contains("copied 315 captures of 3 nodes"), "{said}");
    }
    assert_eq!(
        psql(&format!(
            "select count(*), count(distinct fleet) from {schema}.snapshots"
        )),
        "315|1"
    );
    let pg_out = dir.path().join("demo-pg");
    let fs_out = dir.path().join("demo-files");
    ok(&patrol_pg(
        &["demo", "--archive", &url, "--out", pg_out.to_str().unwrap()],
        &root(),
    ));
    ok(&patrol_pg(
        &[
            "demo",
            "--archive",
            demo.to_str().unwrap(),
            "--out",
            fs_out.to_str().unwrap(),
        ],
        &root(),
    ));
    // The run lock under .state/ names its holder (pid, time): not part of the report.
    let report_files = |dir: &Path| -> Vec<PathBuf> {
        files_under(dir)
            .into_iter()
            .filter(|p| !p.strip_prefix(dir).unwrap().starts_with(".state"))
            .collect()
    };
    let pg_files = report_files(&pg_out);
    assert!(pg_files.len() > 40, "{pg_files:?}");
    for f in &pg_files {
        let twin = fs_out.join(f.strip_prefix(&pg_out).unwrap());
        assert_eq!(
            std::fs::read(f).unwrap(),
            std::fs::read(&twin).unwrap(),
            "{} differs",
            f.display()
        );
    }
    assert_eq!(pg_files.len(), report_files(&fs_out).len());
    // The weekly digest reads nodes in parallel through the one connection.
    for (archive, out) in [(url.as_str(), &pg_out), (demo.to_str().unwrap(), &fs_out)] {
        ok(&patrol_pg(
            &[
                "digest",
                "--week",
                "2026-W08",
                "--archive",
                archive,
                "--out",
                out.to_str().unwrap(),
            ],
            &root(),
        ));
    }
    let digest = |out: &Path| std::fs::read_to_string(out.join("digests/2026-W08.md")).unwrap();
    assert!(digest(&pg_out).contains("capture rounds"));
    assert_eq!(digest(&pg_out), digest(&fs_out));

    // Back to files: the same bytes as the bundled demo.
    let back = dir.path().join("back");
    let said = copy(&url, back.to_str().unwrap(), dir.path());
    assert!(said.contains("copied 315 captures"), "{said}");
    let originals: Vec<_> = files_under(&demo)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".json.zst"))
        .collect();
    for f in &originals {
        let twin = back.join(f.strip_prefix(&demo).unwrap());
        assert_eq!(
            std::fs::read(f).unwrap(),
            std::fs::read(&twin).unwrap(),
            "{}",
            twin.display()
        );
    }
    let compare = ok(&patrol_pg(
        &[
            "compare",
            "vk01@2026-02-22 22:45",
            "vk01@2026-02-22 23:00",
            "--archive",
            &url,
            "--out",
            dir.path().join("cmp").to_str().unwrap(),
        ],
        dir.path(),
    ));
    assert!(compare.contains("vk01 rebooted in between"), "{compare}");

    // Retention works on rows as on files.
    let pruned = ok(&patrol_pg(
        &["archive", "prune", "--dry-run", "--archive", &url],
        dir.path(),
    ));
    assert!(pruned.contains("would delete"), "{pruned}");
}

#[test]
#[ignore = "needs the test bed: scripts/test"]
fn a_schema_left_by_an_older_patrol_is_migrated_and_a_newer_one_refused() {
    let schema = fresh_schema("migrate");
    let _cleanup = DropSchema(schema.clone());
    let dir = tempfile::tempdir().unwrap();
    let url = format!("{}?schema={schema}", archive_url());
    let demo = root().join("snapshots/demo");
    copy(demo.to_str().unwrap(), &url, dir.path());
    // Back to version 1, as the first release left it.
    psql(&format!(
        "alter table {schema}.snapshots drop column written_by; delete from {schema}.migrations where version > 1"
    ));
    let stats = ok(&patrol_pg(
        &["archive", "stats", "--archive", &url],
        dir.path(),
    ));
    assert!(stats.contains(": 315 captures"), "{stats}");
    assert_eq!(
        psql(&format!(
            "select string_agg(version::text, ',' order by version) from {schema}.migrations"
        )),
        "1,2"
    );
    assert_eq!(
        psql(&format!(
            "select count(*) from information_schema.columns where table_schema = '{schema}' and column_name = 'written_by'"
        )),
        "1"
    );
    psql(&format!(
        "insert into {schema}.migrations (version, about) values (99, 'from the future')"
    ));
    let out = patrol_pg(&["archive", "stats", "--archive", &url], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("at version 99, newer than this patrol knows") && err.contains(&schema),
        "{err}"
    );
}

#[test]
#[ignore = "needs the test bed: scripts/test"]
fn a_wrong_password_is_a_clear_error_that_does_not_print_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = patrol_cmd(&["report", "--archive", &archive_url()], dir.path(), false)
        .env("PGPASSWORD", "not-the-password-42")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains(&archive_url()) && err.contains("password authentication failed"),
        "{err}"
    );
    assert!(!err.contains("not-the-password-42"), "{err}");
}

#[test]
fn an_archive_url_with_a_password_or_an_unreachable_database_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::support::patrol(
        &[
            "report",
            "--archive",
            "postgres://patrol:hunter2@127.0.0.1/x",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("holds a password"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");

    // Port 1 on loopback: nothing listens there.
    let out = crate::support::patrol(
        &[
            "archive",
            "stats",
            "--archive",
            "postgres://patrol@127.0.0.1:1/x?connect_timeout=2",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("postgres://patrol@127.0.0.1:1/x") && err.to_lowercase().contains("refused"),
        "{err}"
    );
    assert!(files_under(dir.path()).is_empty(), "nothing written");
}

#[test]
#[ignore = "needs the test bed: scripts/test"]
fn captures_made_while_the_shared_archive_is_out_of_reach_wait_in_a_spool_and_go_next_time() {
    let schema = fresh_schema("spool");
    let _cleanup = DropSchema(schema.clone());
    let dir = tempfile::tempdir().unwrap();
    let write_config = |url: &str| {
        std::fs::write(
            dir.path().join("patrol.toml"),
            format!(
                "fleet = \"Remote Site\"\narchive = \"{url}\"\narchive_password_file = \"{}\"\n\n[[node]]\nname = \"edge-1\"\n[node.host]\n",
                password_file()
            ),
        )
        .unwrap();
    };
    // Port 1: nothing listens; the capture is kept, the run says so and exits 2.
    write_config(&format!(
        "postgres://patrol@127.0.0.1:1/patrol_archive?schema={schema}&connect_timeout=2"
    ));
    let run = || {
        patrol_cmd(&["run", "--capture-only"], dir.path(), false)
            .output()
            .unwrap()
    };
    for _ in 0..2 {
        let out = run();
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(
            err.contains("postgres://patrol@127.0.0.1:1/patrol_archive")
                && err.contains("1 snapshot of this capture waits in"),
            "{err}"
        );
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let spool = dir.path().join("output/remote-site/.state/spool");
    assert_eq!(
        files_under(&spool)
            .iter()
            .filter(|p| p.to_string_lossy().ends_with(".json.zst"))
            .count(),
        2
    );

    // The database is back: this capture and the two kept ones are archived, the spool empties.
    write_config(&format!("{}?schema={schema}", archive_url()));
    let out = run();
    ok(&out);
    assert!(
        text(&out.stderr).contains("2 snapshots kept while"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        files_under(&spool)
            .iter()
            .all(|p| !p.to_string_lossy().ends_with(".json.zst")),
        "spool emptied"
    );
    assert_eq!(
        psql(&format!(
            "select count(*) from {schema}.snapshots where fleet = 'Remote Site' and node = 'edge-1'"
        )),
        "3"
    );
}

/// A database that accepts connections and never says a word.
fn silent_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    port
}

#[test]
fn a_shared_archive_that_accepts_and_never_answers_cannot_hold_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let port = silent_server();
    std::fs::write(
        dir.path().join("patrol.toml"),
        format!(
            "fleet = \"Silent\"\narchive = \"postgres://patrol@127.0.0.1:{port}/x?connect_timeout=2\"\n\n[[node]]\nname = \"edge-1\"\n[node.host]\n"
        ),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let out = patrol_cmd(&["run", "--capture-only"], dir.path(), false)
        .env("PGPASSWORD", "not-used")
        .output()
        .unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "the run waited {:?}",
        started.elapsed()
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("postgres://patrol@127.0.0.1:{port}/x"))
            && err.contains("no answer within 2 s")
            && err.contains("1 snapshot of this capture waits in"),
        "{err}"
    );
    // The lock is free again: the next run starts (and waits in the spool too).
    let again = patrol_cmd(&["run", "--capture-only"], dir.path(), false)
        .env("PGPASSWORD", "not-used")
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(
        text(&again.stderr).contains("waits in"),
        "{}",
        text(&again.stderr)
    );
    let spooled = files_under(&dir.path().join("output/silent/.state/spool"))
        .iter()
        .filter(|p| p.to_string_lossy().ends_with(".json.zst"))
        .count();
    assert_eq!(spooled, 2, "both captures wait in the spool");
    // `report` over it gives up as clearly.
    let out = crate::support::patrol(
        &[
            "report",
            "--archive",
            &format!("postgres://patrol@127.0.0.1:{port}/x?connect_timeout=2"),
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no answer within 2 s"),
        "{}",
        text(&out.stderr)
    );
}

fn tls_archive_url() -> String {
    std::env::var("PATROL_TEST_TLS_ARCHIVE_URL")
        .expect("PATROL_TEST_TLS_ARCHIVE_URL is unset: run the suite with scripts/test")
}

fn test_bed_ca() -> String {
    let dir = std::env::var("PATROL_TEST_TLS_DIR")
        .expect("PATROL_TEST_TLS_DIR is unset: run the suite with scripts/test");
    format!("{dir}/ca.pem")
}

#[test]
#[ignore = "needs the test bed: scripts/test"]
fn the_shared_archive_works_over_tls_and_refuses_an_untrusted_certificate() {
    let schema = fresh_schema("tls");
    let dir = tempfile::tempdir().unwrap();
    // The bed's role patrol_tls is refused on a connection without TLS.
    let base = format!("{}?schema={schema}", tls_archive_url());
    let config = |url: &str| {
        std::fs::write(
            dir.path().join("patrol.toml"),
            format!(
                "fleet = \"Over TLS\"\narchive = \"{url}\"\narchive_password_file = \"{}\"\n\n[[node]]\nname = \"edge-1\"\n[node.host]\n",
                password_file()
            ),
        )
        .unwrap();
    };
    let run = || {
        patrol_cmd(&["run", "--capture-only"], dir.path(), false)
            .output()
            .unwrap()
    };
    config(&format!("{base}&sslmode=disable"));
    let out = run();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no encryption"),
        "{}",
        text(&out.stderr)
    );
    // verify-full against the platform's roots: the bed's CA is not among them.
    config(&format!("{base}&sslmode=verify-full"));
    let out = run();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("postgres://patrol_tls@127.0.0.1") && err.contains("certificate"),
        "{err}"
    );
    // With the CA: the spooled captures and this one go over TLS.
    let ca = test_bed_ca();
    config(&format!("{base}&sslmode=verify-full&sslrootcert={ca}"));
    ok(&run());
    let stats = ok(&patrol_pg(
        &[
            "archive",
            "stats",
            "--archive",
            &format!("{base}&sslmode=verify-full&sslrootcert={ca}&fleet=Over TLS"),
        ],
        dir.path(),
    ));
    assert!(stats.contains(": 3 captures"), "{stats}");
    let report = patrol_pg(
        &[
            "report",
            "--archive",
            &format!("{base}&sslmode=verify-ca&sslrootcert={ca}&fleet=Over TLS"),
            "--out",
            "report",
        ],
        dir.path(),
    );
    ok(&report);
    // Clean up as the TLS role, over TLS.
    let drop = Command::new("psql")
        .arg(format!(
            "host=127.0.0.1 port={} user=patrol_tls dbname=patrol_tls_archive sslmode=verify-full sslrootcert={ca}",
            std::env::var("PATROL_TEST_PG_PORT").unwrap()
        ))
        .args(["-qtAX", "-c", &format!("drop schema {schema} cascade")])
        .env("PGPASSWORD", password())
        .output()
        .unwrap();
    assert!(drop.status.success(), "{}", text(&drop.stderr));
}

/// A reporter daemon's tick holds the fleet as `patrol report` does (its output's lock, where a
/// shared archive's state lives): while another holds it the tick waits, then reports.
#[test]
#[ignore = "needs the test bed: scripts/test"]
fn a_reporter_daemon_tick_waits_for_the_fleet() {
    use crate::integrity::{copy_demo, hold_lock};
    let schema = fresh_schema("tick");
    let _cleanup = DropSchema(schema.clone());
    let dir = tempfile::tempdir().unwrap();
    let url = format!("{}?schema={schema}", archive_url());
    let archive = dir.path().join("archive");
    copy_demo(&archive, "20260218T", "20260218T1600");
    copy(archive.to_str().unwrap(), &url, dir.path());
    let out = dir.path().join("out");
    let config = dir.path().join("reporter.toml");
    std::fs::write(
        &config,
        format!(
            "fleet = \"VisionKing 03002\"\ntimezone = \"America/Sao_Paulo\"\narchive = \"{url}\"\narchive_password_file = \"{}\"\noutput = {:?}\n[daemon]\ninterval = \"1h\"\ndigest = \"off\"\n",
            password_file(),
            out.to_str().unwrap()
        ),
    )
    .unwrap();
    let held = hold_lock(&out);
    let child = spawned(patrol_cmd(
        &["daemon", "--config", config.to_str().unwrap()],
        dir.path(),
        false,
    ));
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let early = out.join("improvements.md").exists();
    drop(held);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !out.join("improvements.md").exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let kill = Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", child.id())])
        .status()
        .unwrap();
    assert!(kill.success());
    let done = child.wait_with_output().unwrap();
    ok(&done);
    assert!(!early, "the tick reported while the fleet was held");
    assert!(
        out.join("improvements.md").exists(),
        "the tick reported once the fleet was free"
    );
}
