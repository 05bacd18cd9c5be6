//! Who may read what patrol writes, driven through the real binary: reports shared as
//! configured, the textfile world-readable, the archive and state private whatever the umask; a
//! run as the service user after a `sudo patrol run` explained with the owner and the fix (with a
//! real second user); secret files other users can read warned about.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{files_under, text};

/// A fleet of this machine whose first run always has something to report, whatever the
/// machine's state: an endpoint on the discard port, where nothing listens, is down.
const CONFIG: &str = "fleet = \"Perm Test\"\ntimezone = \"UTC\"\n[[node]]\nname = \"here\"\n[node.host]\n[[node.http]]\nname = \"closed\"\nurl = \"http://127.0.0.1:9/\"\n";

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// `patrol ARGS` under a umask that would make everything private, so the modes seen are the
/// ones patrol set, not the umask's.
fn patrol_umask(umask: &str, args: &[&str], cwd: &Path) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_patrol"))
        .args(args)
        .current_dir(cwd)
        .env_remove("PATROL_LOG")
        .output()
        .expect("sh runs")
}

fn run_ok(out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "patrol run\n{}",
        text(&out.stderr)
    );
}

#[test]
fn reports_are_group_readable_the_textfile_world_readable_and_state_private() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("patrol.toml"),
        format!("{CONFIG}[report]\ntextfile = \"prom/patrol.prom\"\n"),
    )
    .unwrap();
    run_ok(&patrol_umask(
        "077",
        &["run", "--config", "patrol.toml"],
        dir.path(),
    ));
    let out = dir.path().join("output/perm-test");
    let archive = dir.path().join("snapshots/perm-test");
    assert_eq!(mode(&out), 0o750, "output dir");
    assert_eq!(mode(&out.join("improvements.md")), 0o640, "rolling report");
    assert_eq!(mode(&out.join("reports")), 0o750, "reports dir");
    let dated = files_under(&out.join("reports"));
    assert!(!dated.is_empty(), "a dated report was written");
    for f in &dated {
        assert_eq!(mode(f), 0o640, "{}", f.display());
    }
    assert_eq!(
        mode(&dir.path().join("prom/patrol.prom")),
        0o644,
        "textfile"
    );
    assert_eq!(mode(&dir.path().join("prom")), 0o755, "textfile dir");
    assert_eq!(mode(&out.join("ledger.json")), 0o600, "ledger");
    assert_eq!(mode(&out.join(".state")), 0o700, "output state dir");
    assert_eq!(mode(&out.join(".state/run.lock")), 0o600, "output lock");
    assert_eq!(mode(&archive), 0o700, "archive dir");
    let mut captures = 0;
    for f in files_under(&archive) {
        assert_eq!(mode(&f), 0o600, "{}", f.display());
        captures += f.to_string_lossy().ends_with(".json.zst") as usize;
        let mut d = f.parent().unwrap();
        while d != archive {
            assert_eq!(mode(d), 0o700, "{}", d.display());
            d = d.parent().unwrap();
        }
    }
    assert_eq!(captures, 1);
    assert!(archive.join(".state/collector.json").exists());
}

#[test]
fn a_configured_file_mode_is_what_reports_get_whatever_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("patrol.toml"),
        format!("{CONFIG}[report]\nfile_mode = \"0644\"\n"),
    )
    .unwrap();
    run_ok(&patrol_umask(
        "027",
        &["run", "--config", "patrol.toml"],
        dir.path(),
    ));
    let out = dir.path().join("output/perm-test");
    assert_eq!(mode(&out), 0o755);
    assert_eq!(mode(&out.join("improvements.md")), 0o644);
    for f in files_under(&out.join("reports")) {
        assert_eq!(mode(&f), 0o644, "{}", f.display());
    }
    assert_eq!(
        mode(&out.join("ledger.json")),
        0o600,
        "the ledger stays private"
    );

    std::fs::write(
        dir.path().join("bad.toml"),
        format!("{CONFIG}[report]\nfile_mode = \"0777\"\n"),
    )
    .unwrap();
    let bad = patrol_umask("022", &["run", "--config", "bad.toml"], dir.path());
    let stderr = text(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("bad.toml:10:") && stderr.contains("file_mode"),
        "{stderr}"
    );
}

#[test]
fn a_secret_file_other_users_can_read_is_warned_about_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let planted = "perm-test-planted-secret-3f9a";
    let pw = dir.path().join("redis_password");
    std::fs::write(&pw, format!("{planted}\n")).unwrap();
    // A closed port: the source fails (exit 3), which is not what this test is about.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    std::fs::write(
        dir.path().join("patrol.toml"),
        format!(
            "{CONFIG}[[node.redis]]\nname = \"cache\"\nhost = \"127.0.0.1\"\nport = {port}\npassword_file = \"redis_password\"\n"
        ),
    )
    .unwrap();
    let warnings = |m: u32| {
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(m)).unwrap();
        let out = patrol_umask("022", &["run", "--config", "patrol.toml"], dir.path());
        let stderr = text(&out.stderr);
        assert!(
            matches!(out.status.code(), Some(0 | 3)),
            "the run goes on (mode {m:o}); stderr of the run in {}",
            dir.path().display()
        );
        assert!(
            !stderr.contains(planted) && !text(&out.stdout).contains(planted),
            "the secret of {} was printed",
            pw.display()
        );
        stderr
            .lines()
            .filter(|l| l.contains(&*pw.to_string_lossy()) && l.contains("can be read by"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let loose = warnings(0o644);
    assert_eq!(loose.len(), 1, "one warning line for {}", pw.display());
    assert!(loose[0].contains("chmod 600") && loose[0].contains("WARN"));
    assert!(loose[0].contains("password_file of node `here` source `redis:cache`"));
    assert!(
        warnings(0o640).is_empty(),
        "a group-readable password file is a set-up"
    );
    assert!(warnings(0o600).is_empty());
}

/// The service user of the tests, created when absent (the suite runs as root, as in CI):
/// its uid and gid.
fn service_user() -> (u32, u32) {
    const NAME: &str = "patrol-perms";
    let id = |flag: &str| {
        Command::new("id")
            .args([flag, NAME])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| text(&o.stdout).trim().parse::<u32>().ok())
    };
    if id("-u").is_none() {
        // Two tests may race to create it: whoever loses finds it made.
        let _ = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                NAME,
            ])
            .output();
    }
    (
        id("-u").expect("the test user exists"),
        id("-g").expect("the test user has a group"),
    )
}

/// The patrol binary where `uid` can run it: in place when every directory above it lets
/// others through, else a copy in `dir`.
fn binary_for_others(dir: &Path) -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_patrol"));
    let open = exe
        .ancestors()
        .skip(1)
        .all(|d| d.as_os_str().is_empty() || mode(d) & 0o001 != 0);
    if open {
        return exe;
    }
    let copy = dir.join("patrol");
    std::fs::copy(&exe, &copy).unwrap();
    copy
}

fn as_user(uid: u32, gid: u32, exe: &Path, args: &[&str], cwd: &Path) -> Output {
    Command::new("setpriv")
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .arg("--clear-groups")
        .arg(exe)
        .args(args)
        .current_dir(cwd)
        .env_remove("PATROL_LOG")
        .output()
        .expect("setpriv runs")
}

#[test]
fn a_fleet_left_to_root_by_sudo_is_explained_to_the_service_user() {
    if std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(1)
        != 0
    {
        eprintln!("not root: this test needs to act as root and as a second user; skipped");
        return;
    }
    let (uid, gid) = service_user();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = binary_for_others(tmp.path());
    let home = tmp.path().join("patrol");
    std::fs::create_dir(&home).unwrap();
    std::fs::write(home.join("patrol.toml"), CONFIG).unwrap();
    std::os::unix::fs::chown(&home, Some(uid), Some(gid)).unwrap();
    std::os::unix::fs::chown(home.join("patrol.toml"), Some(uid), Some(gid)).unwrap();
    let args = ["run", "--config", "patrol.toml"];

    // The service user's own runs work, then one `sudo patrol run` leaves a lock it cannot
    // open (its first run made it, or a root run that found none: here the lock is replaced).
    run_ok(&as_user(uid, gid, &exe, &args, &home));
    run_ok(
        &Command::new(&exe)
            .args(args)
            .current_dir(&home)
            .output()
            .unwrap(),
    );
    let archive = home.join("snapshots/perm-test");
    let lock = archive.join(".state/run.lock");
    std::fs::remove_file(&lock).unwrap();
    std::fs::write(&lock, "").unwrap();
    std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = as_user(uid, gid, &exe, &args, &home);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let who = format!("patrol runs as patrol-perms (uid {uid})");
    assert!(
        stderr.contains(&format!("{} belongs to root (uid 0)", lock.display())),
        "{stderr}"
    );
    assert!(stderr.contains(&who), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "sudo chown -R patrol-perms: {} {}",
            archive.display(),
            home.join("output/perm-test").display()
        )),
        "the fix gives back both roots of the fleet: {stderr}"
    );
    // With the lock given back, the ledger root's run rewrote is the next thing in the way.
    std::os::unix::fs::chown(&lock, Some(uid), Some(gid)).unwrap();
    let out = as_user(uid, gid, &exe, &args, &home);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let ledger = home.join("output/perm-test/ledger.json");
    assert!(
        stderr.contains(&format!("{} belongs to root (uid 0)", ledger.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "sudo chown -R patrol-perms: {}` gives",
            home.join("output/perm-test").display()
        )),
        "the fix gives back the output, known by its lock: {stderr}"
    );

    // A first run under sudo: every directory is root's, the output's parent too.
    let fresh = tmp.path().join("fresh");
    std::fs::create_dir(&fresh).unwrap();
    std::fs::write(fresh.join("patrol.toml"), CONFIG).unwrap();
    std::os::unix::fs::chown(&fresh, Some(uid), Some(gid)).unwrap();
    run_ok(
        &Command::new(&exe)
            .args(args)
            .current_dir(&fresh)
            .output()
            .unwrap(),
    );
    let out = as_user(uid, gid, &exe, &args, &fresh);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&who), "{stderr}");
    let fix = format!(
        "sudo chown -R patrol-perms: {} {}",
        fresh.join("output").display(),
        fresh.join("snapshots").display()
    );
    assert!(stderr.contains(&fix), "{stderr}");
    // The fix given works.
    for d in ["output", "snapshots"] {
        let st = Command::new("chown")
            .args(["-R", "patrol-perms:", &fresh.join(d).to_string_lossy()])
            .status()
            .unwrap();
        assert!(st.success());
    }
    run_ok(&as_user(uid, gid, &exe, &args, &fresh));
}

#[test]
fn digests_compare_and_history_outputs_are_group_readable() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = crate::support::root().join("scenarios/quiet.toml");
    let sim = patrol_umask(
        "077",
        &["simulate", &scenario.to_string_lossy(), "--out", "arch"],
        dir.path(),
    );
    assert!(sim.status.success(), "{}", text(&sim.stderr));
    for args in [
        &[
            "digest",
            "--archive",
            "arch",
            "--week",
            "2026-W10",
            "--out",
            "out",
        ][..],
        &[
            "compare",
            "proc001",
            "proc002",
            "--archive",
            "arch",
            "--at",
            "2026-03-02 12:00",
            "--out",
            "out",
        ],
        &["history", "proc001", "--archive", "arch", "--out", "out"],
    ] {
        let out = patrol_umask("077", args, dir.path());
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    }
    let out = dir.path().join("out");
    let files = files_under(&out);
    for sub in ["digests", "compare", "history"] {
        assert_eq!(mode(&out.join(sub)), 0o750, "{sub}");
        assert!(
            files.iter().any(|f| f.starts_with(out.join(sub))),
            "{sub} written"
        );
    }
    for f in files {
        // `.state/` is patrol's own (the digest's lock and record): private, as in a run.
        let expected = if f.starts_with(out.join(".state")) {
            0o600
        } else {
            0o640
        };
        assert_eq!(mode(&f), expected, "{}", f.display());
    }
}
