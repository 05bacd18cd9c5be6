//! Writing files so that a crash never leaves half of one: write to a temporary file in the same
//! directory, flush it to disk, then rename it over the target. A process killed between the two
//! leaves its temporary file (`.patrol-XXXXXX.tmp`); the next command that holds the fleet
//! removes those ([`remove_stale_temps`]).
//!
//! Who may read what patrol writes is decided here too, once, by the [`Mode`] every write names:
//! the archive and patrol's state are private, reports are shared with a group as configured,
//! the Prometheus textfile is world-readable. The modes are set explicitly (the process umask
//! does not change them), so a cron job and a systemd unit with different umasks write the same
//! files. And a file patrol cannot touch because another user left it (a `sudo patrol run`) is
//! explained with its owner and the fix, not as a bare "permission denied".

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::error::{Error, Result};

/// The name of patrol's temporary files: `.patrol-` + random + `.tmp`.
const TEMP_PREFIX: &str = ".patrol-";
const TEMP_SUFFIX: &str = ".tmp";

/// The mode of reports when the config does not say (`[report] file_mode`): the owner and its
/// group read them (teammates in the service user's group), others do not.
pub const DEFAULT_SHARED_MODE: u32 = 0o640;

/// Who may read a file patrol writes, and so the directories it creates for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// patrol's own: the archive, collector state, ledger, outbox, locks (0600; directories
    /// 0700). Snapshots are redacted but still describe the fleet's insides.
    Private,
    /// What people read: reports, digests, charts, compare and history outputs. The file mode
    /// as configured (`[report] file_mode`, [`DEFAULT_SHARED_MODE`]); directories get the
    /// search bit wherever the file mode has the read bit (0640 → 0750).
    Shared(u32),
    /// Read by another service's user whatever the config says: the Prometheus textfile,
    /// which node-exporter reads (0644; directories 0755).
    Public,
}

impl Mode {
    /// Reports with the default mode.
    pub const SHARED: Mode = Mode::Shared(DEFAULT_SHARED_MODE);

    pub fn file(self) -> u32 {
        match self {
            Mode::Private => 0o600,
            Mode::Shared(m) => m & 0o666,
            Mode::Public => 0o644,
        }
    }

    pub fn dir(self) -> u32 {
        let f = self.file();
        f | ((f & 0o444) >> 2)
    }

    /// A configured file mode: octal digits (`"0640"`, `"644"`), read and write for the owner,
    /// no execute or special bits.
    pub fn parse_shared(text: &str) -> std::result::Result<u32, String> {
        let digits = text.strip_prefix("0o").unwrap_or(text);
        let m = (!digits.is_empty() && digits.len() <= 4)
            .then(|| u32::from_str_radix(digits, 8).ok())
            .flatten()
            .ok_or_else(|| format!("`{text}` is not an octal file mode such as \"0640\""))?;
        if m & !0o666 != 0 {
            return Err(format!(
                "`{text}`: a report is not executable and has no special bits: use read and write bits only (e.g. \"0640\", \"0644\")"
            ));
        }
        if m & 0o600 != 0o600 {
            return Err(format!(
                "`{text}`: the owner (patrol) must be able to read and write its reports: start with 6 (e.g. \"0640\")"
            ));
        }
        Ok(m)
    }
}

/// Creates `dir` and its missing parents with `mode`'s directory mode; directories that exist
/// already keep theirs (the operator's choice).
pub fn create_dir_all(dir: &Path, mode: Mode) -> Result<()> {
    create_dirs(dir, mode, &[])
}

/// [`create_dir_all`], naming `fix` as what to give back when another user's directory is in
/// the way (see [`io_error_fixing`]).
pub fn create_dirs(dir: &Path, mode: Mode, fix: &[&Path]) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dirs(parent, mode, fix)?;
    }
    match std::fs::DirBuilder::new().mode(mode.dir()).create(dir) {
        // The umask may have taken bits away; the mode is meant as stated.
        Ok(()) => set_mode(dir, mode.dir()),
        // Another process made it meanwhile: it is theirs to have set.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(io_error_fixing(dir, e, fix)),
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| io_error(path, e))
}

/// Writes `bytes` to `path` atomically, the file with `mode`'s file mode and the directories
/// it creates with its directory mode.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: Mode) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    create_dir_all(dir, mode)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .suffix(TEMP_SUFFIX)
        .tempfile_in(dir)
        .map_err(|e| io_error(dir, e))?;
    // Before any byte is written: readers of the final file are decided here, not by umask.
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode.file()))
        .map_err(|e| io_error(tmp.path(), e))?;
    tmp.write_all(bytes).map_err(|e| io_error(tmp.path(), e))?;
    tmp.as_file().sync_all().map_err(|e| io_error(path, e))?;
    tmp.persist(path).map_err(|e| io_error(path, e.error))?;
    Ok(())
}

/// Appends `text` to `path` atomically: the whole new content is written beside it and renamed,
/// so a reader sees either the old file or the old file plus all of `text`.
pub fn append_atomic(path: &Path, text: &str, mode: Mode) -> Result<()> {
    let mut content = match std::fs::read_to_string(path) {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io_error(path, e)),
    };
    content.push_str(text);
    write_atomic(path, content.as_bytes(), mode)
}

/// The user this process runs as: uid and, when /etc/passwd knows it, name.
pub fn current_user() -> (u32, Option<String>) {
    #[allow(unsafe_code)]
    // SAFETY: geteuid takes nothing, touches no memory and cannot fail.
    let uid = unsafe { libc::geteuid() };
    (uid, user_name(uid))
}

/// The name /etc/passwd gives a uid (read directly: getpwuid is neither safe nor reentrant).
pub fn user_name(uid: u32) -> Option<String> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|line| {
        let mut f = line.split(':');
        let name = f.next()?;
        let id: u32 = f.nth(1)?.parse().ok()?;
        (id == uid && !name.is_empty()).then(|| name.to_string())
    })
}

fn who(uid: u32, name: Option<&str>) -> String {
    match name {
        Some(n) => format!("{n} (uid {uid})"),
        None => format!("uid {uid}"),
    }
}

/// Why patrol may not touch `path`, when the reason is another user's ownership: the nearest
/// existing one of `path` and its directories, if it belongs to someone else than this process,
/// with its owner.
pub fn foreign_owner(path: &Path) -> Option<(std::path::PathBuf, u32)> {
    let (me, _) = current_user();
    let found = path
        .ancestors()
        .filter(|p| !p.as_os_str().is_empty())
        .find_map(|p| std::fs::symlink_metadata(p).ok().map(|m| (p, m)))?;
    (found.1.uid() != me).then(|| (found.0.to_path_buf(), found.1.uid()))
}

/// The directory to give back when `blocking` (another user's) sits inside a directory of
/// `me`: the topmost of its ancestors that is not `me`'s, below one that is. None when no
/// ancestor is `me`'s (a system directory such as /var/lib: not patrol's to take).
fn give_back(blocking: &Path, me: u32) -> Option<std::path::PathBuf> {
    let blocking = std::path::absolute(blocking).ok()?;
    let mut top = blocking.as_path();
    for a in blocking.ancestors().skip(1) {
        match std::fs::symlink_metadata(a) {
            Ok(m) if m.uid() == me => return Some(top.to_path_buf()),
            Ok(_) => top = a,
            Err(_) => return None,
        }
    }
    None
}

/// An I/O error on `path`. A permission denied because another user owns what is in the way
/// (a `sudo patrol run` left it) says whose it is, who patrol runs as, and the fix: the
/// directories to give back are those in the way, and those of `fix` (patrol's roots) that
/// are someone else's too, so that one command repairs the lot.
pub fn io_error_fixing(path: &Path, e: std::io::Error, fix: &[&Path]) -> Error {
    if e.kind() != std::io::ErrorKind::PermissionDenied {
        return Error::io(path, e);
    }
    let Some((blocking, owner)) = foreign_owner(path) else {
        return Error::io(path, e);
    };
    let (me, my_name) = current_user();
    let owner_name = user_name(owner);
    let user = my_name.clone().unwrap_or_else(|| me.to_string());
    let mut targets: Vec<std::path::PathBuf> = Vec::new();
    let foreign = std::iter::once(blocking.clone())
        .chain(fix.iter().filter_map(|r| foreign_owner(r).map(|(p, _)| p)));
    let roots: Vec<std::path::PathBuf> = fix
        .iter()
        .filter_map(|r| std::path::absolute(r).ok())
        .collect();
    for t in foreign.filter_map(|p| give_back(&p, me)) {
        // Within one of patrol's roots (given, or known by its run lock), the whole root:
        // what left this left more there.
        let t = roots
            .iter()
            .find(|r| t.starts_with(r))
            .cloned()
            .or_else(|| {
                t.ancestors()
                    .find(|a| a.join(".state/run.lock").exists())
                    .map(Path::to_path_buf)
            })
            .unwrap_or(t);
        if !targets.iter().any(|k| t.starts_with(k)) {
            targets.retain(|k| !k.starts_with(&t));
            targets.push(t);
        }
    }
    if targets.iter().any(|t| roots.contains(t)) {
        for r in &roots {
            if !targets.contains(r) {
                targets.push(r.clone());
            }
        }
    }
    let remedy = if targets.is_empty() {
        format!(
            ": give patrol's user write access there, or a directory of its own (`sudo install -d -o {user} {}`)",
            path.display()
        )
    } else {
        let list: Vec<String> = targets.iter().map(|p| p.display().to_string()).collect();
        format!(
            " (an earlier `sudo patrol` leaves such files): `sudo chown -R {user}: {}` gives them back",
            list.join(" ")
        )
    };
    Error::bad_file(
        path,
        format!(
            "permission denied: {} belongs to {} but patrol runs as {}{remedy}, or run patrol as {}",
            blocking.display(),
            who(owner, owner_name.as_deref()),
            who(me, my_name.as_deref()),
            owner_name.unwrap_or_else(|| format!("uid {owner}")),
        ),
    )
}

/// [`io_error_fixing`] with only what is in the way to give back.
pub fn io_error(path: &Path, e: std::io::Error) -> Error {
    io_error_fixing(path, e, &[])
}

/// Who besides its owner can read a file that holds a secret, when that is a problem: the
/// warning to print (naming the file and the fix, never the content), or None. Other users
/// reading it always is; its group reading it is a deliberate set-up (a root-owned secret
/// shared with the service user's group) unless `strict`, as for ssh private keys, which ssh
/// itself refuses when group or others can read them.
pub fn exposed_secret(path: &Path, what: &str, strict: bool) -> Option<String> {
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    let loose = if strict { mode & 0o077 } else { mode & 0o007 };
    if loose == 0 {
        return None;
    }
    let by = if mode & 0o007 != 0 {
        "every user on this host"
    } else {
        "its group"
    };
    Some(format!(
        "{} ({what}) can be read by {by} (mode {mode:04o}): `chmod 600 {}`{}",
        path.display(),
        path.display(),
        if strict {
            " (ssh refuses such a key)"
        } else {
            ", or 640 with a group only patrol's user is in"
        }
    ))
}

/// An exclusive lock on a file (the OS releases it when the process ends, even by a kill), with
/// who holds it written inside for the message another process shows.
pub struct RunLock {
    _file: std::fs::File,
}

impl RunLock {
    /// Takes the lock, waiting up to `wait` for another holder to finish. When it stays taken,
    /// the error says by whom and since when.
    /// A lock file another user left (a `sudo patrol run`) is explained, with `fix` (the
    /// directories to give back; default the file in the way) in the remedy.
    pub fn acquire(path: &Path, wait: std::time::Duration, fix: &[&Path]) -> Result<RunLock> {
        use std::io::{Seek, Write};
        use std::os::unix::fs::OpenOptionsExt;
        if let Some(parent) = path.parent() {
            create_dirs(parent, Mode::Private, fix)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .mode(Mode::Private.file())
            .open(path)
            .map_err(|e| io_error_fixing(path, e, fix))?;
        let deadline = std::time::Instant::now() + wait;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {
                    if std::time::Instant::now() >= deadline {
                        let holder = std::fs::read_to_string(path).unwrap_or_default();
                        return Err(Error::Runtime(format!(
                            "{}: another patrol is running ({}); not starting a second one (use --wait to wait for it)",
                            path.display(),
                            holder.trim()
                        )));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io_error_fixing(path, e, fix)),
            }
        }
        let holder = format!(
            "pid {} since {}",
            std::process::id(),
            chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC")
        );
        file.set_len(0).map_err(|e| Error::io(path, e))?;
        file.rewind().map_err(|e| Error::io(path, e))?;
        file.write_all(holder.as_bytes())
            .map_err(|e| Error::io(path, e))?;
        Ok(RunLock { _file: file })
    }
}

/// Removes patrol's own temporary files (`.patrol-*.tmp`) under `dir`, down to `depth` levels of
/// subdirectories, that were last modified before `before` (the start of the command that now
/// holds the fleet): what writes killed mid-way left. Nothing else is touched; a directory that
/// cannot be read is skipped. Returns how many were removed.
pub fn remove_stale_temps(dir: &Path, before: std::time::SystemTime, depth: usize) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if kind.is_dir() {
            if depth > 0 {
                removed += remove_stale_temps(&entry.path(), before, depth - 1);
            }
        } else if kind.is_file()
            && name.starts_with(TEMP_PREFIX)
            && name.ends_with(TEMP_SUFFIX)
            && entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < before)
            && std::fs::remove_file(entry.path()).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

/// For the crash tests: `PATROL_TEST_CRASH=<point>` ends the process at that point of a
/// write sequence, as a kill would (`after-archive`, `before-ledger`, `after-ledger`,
/// `after-report`, `after-send`).
pub fn crash_point(name: &str) {
    if std::env::var("PATROL_TEST_CRASH").is_ok_and(|v| v == name) {
        eprintln!("patrol: PATROL_TEST_CRASH={name}: stopping here");
        std::process::exit(86);
    }
}

/// Reads a file; a permission denied by another user's file says whose it is.
pub fn read_to_string(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| io_error(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("sub/file.txt");
        write_atomic(&target, b"one", Mode::Private).unwrap();
        write_atomic(&target, b"two", Mode::Private).unwrap();
        append_atomic(&target, "+three", Mode::Private).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "two+three");
        let names: Vec<_> = std::fs::read_dir(target.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "only the target remains: {names:?}");
    }

    #[test]
    fn only_old_temp_files_of_our_own_naming_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b");
        std::fs::create_dir_all(&deep).unwrap();
        for p in [
            dir.path().join(".patrol-x1Yz9q.tmp"),
            deep.join(".patrol-abcdef.tmp"),
            dir.path().join("report.tmp"),
            dir.path().join(".patrol-keep.md"),
        ] {
            std::fs::write(p, "x").unwrap();
        }
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        // Files newer than the command's start may belong to a writer still at work.
        assert_eq!(
            remove_stale_temps(dir.path(), std::time::SystemTime::UNIX_EPOCH, 9),
            0
        );
        assert_eq!(remove_stale_temps(dir.path(), later, 0), 1);
        assert_eq!(remove_stale_temps(dir.path(), later, 2), 1);
        assert!(dir.path().join("report.tmp").exists());
        assert!(dir.path().join(".patrol-keep.md").exists());
    }

    fn mode_of(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn each_mode_gives_its_file_and_the_directories_it_creates_their_bits() {
        let dir = tempfile::tempdir().unwrap();
        for (name, mode, file, dirs) in [
            ("private", Mode::Private, 0o600, 0o700),
            ("shared", Mode::SHARED, 0o640, 0o750),
            ("world", Mode::Shared(0o644), 0o644, 0o755),
            ("group-rw", Mode::Shared(0o660), 0o660, 0o770),
            ("textfile", Mode::Public, 0o644, 0o755),
        ] {
            let target = dir.path().join(name).join("sub/file");
            write_atomic(&target, b"x", mode).unwrap();
            assert_eq!(mode_of(&target), file, "{name}: file");
            assert_eq!(mode_of(target.parent().unwrap()), dirs, "{name}: sub");
            assert_eq!(mode_of(&dir.path().join(name)), dirs, "{name}: top");
            append_atomic(&target, "y", mode).unwrap();
            assert_eq!(mode_of(&target), file, "{name}: appended");
        }
    }

    #[test]
    fn a_rewrite_sets_the_mode_asked_and_existing_directories_keep_theirs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let target = dir.path().join("report.md");
        write_atomic(&target, b"one", Mode::Private).unwrap();
        write_atomic(&target, b"two", Mode::SHARED).unwrap();
        assert_eq!(mode_of(&target), 0o640);
        assert_eq!(
            mode_of(dir.path()),
            0o711,
            "an existing directory is the operator's"
        );
    }

    #[test]
    fn a_lock_file_and_its_directory_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("root/.state/run.lock");
        let _lock = RunLock::acquire(&path, std::time::Duration::ZERO, &[]).unwrap();
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(mode_of(path.parent().unwrap()), 0o700);
    }

    #[test]
    fn configured_modes_are_octal_read_write_bits_with_the_owner_able_to_write() {
        assert_eq!(Mode::parse_shared("0640"), Ok(0o640));
        assert_eq!(Mode::parse_shared("644"), Ok(0o644));
        assert_eq!(Mode::parse_shared("0o600"), Ok(0o600));
        assert_eq!(Mode::parse_shared("0660"), Ok(0o660));
        for bad in [
            "",
            "0755",
            "0400",
            "0440",
            "4644",
            "0648",
            "rw-r-----",
            "00640",
        ] {
            assert!(Mode::parse_shared(bad).is_err(), "{bad:?} is refused");
        }
    }

    #[test]
    fn a_secret_others_can_read_is_a_warning_and_a_group_one_only_for_ssh_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "planted-secret-value").unwrap();
        let chmod = |m| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(m));
        chmod(0o644).unwrap();
        let w = exposed_secret(&path, "password_file", false).unwrap();
        assert!(w.contains(&path.display().to_string()) && w.contains("chmod 600"));
        assert!(w.contains("every user") && !w.contains("planted-secret-value"));
        chmod(0o604).unwrap();
        assert!(exposed_secret(&path, "password_file", false).is_some());
        chmod(0o640).unwrap();
        assert_eq!(exposed_secret(&path, "password_file", false), None);
        assert!(exposed_secret(&path, "identity", true).is_some_and(|w| w.contains("its group")));
        chmod(0o600).unwrap();
        assert_eq!(exposed_secret(&path, "identity", true), None);
        assert_eq!(
            exposed_secret(&dir.path().join("missing"), "x", false),
            None
        );
    }

    /// Root (as these tests run in CI) can give a file away: the explanation names the owner.
    #[test]
    fn permission_denied_by_another_users_file_names_owner_and_fix() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("state");
        let path = root.join(".state/run.lock");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "").unwrap();
        if std::os::unix::fs::chown(&path, Some(54321), Some(54321)).is_err() {
            eprintln!("not root: cannot give a file to another user; skipped");
            return;
        }
        let denied = || std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let (me, _) = current_user();
        let msg = io_error_fixing(&path, denied(), &[&root]).to_string();
        assert!(msg.contains("belongs to uid 54321"), "{msg}");
        assert!(msg.contains(&format!("(uid {me})")), "{msg}");
        assert!(
            msg.contains(&format!(": {}` gives them back", root.display())),
            "the fix gives back the whole root: {msg}"
        );
        assert!(msg.contains("run patrol as uid 54321"), "{msg}");
        // Our own file denied for another reason is left as it was.
        let own = dir.path().join("own");
        std::fs::write(&own, "").unwrap();
        let msg = io_error(&own, denied()).to_string();
        assert!(!msg.contains("belongs to"), "{msg}");
        // Something else than a permission problem is not explained.
        let msg = io_error(&path, std::io::Error::from(std::io::ErrorKind::NotFound));
        assert!(!msg.to_string().contains("belongs to"));
    }

    #[test]
    fn a_system_directory_in_the_way_is_not_offered_to_chown() {
        let dir = tempfile::tempdir().unwrap();
        let sys = dir.path().join("sys");
        std::fs::create_dir(&sys).unwrap();
        let (me, _) = current_user();
        // Every ancestor up to / is someone else's only when run as a user other than their
        // owner; pretend with a directory given away under a tree that is not ours either.
        if me != 0 || std::os::unix::fs::chown(&sys, Some(54321), None).is_err() {
            eprintln!("not root: skipped");
            return;
        }
        // As root, the temp dir is ours, so `sys` is inside our territory: chown offered.
        let msg = io_error(
            &sys.join("out"),
            std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        )
        .to_string();
        assert!(
            msg.contains(&format!("chown -R root: {}", sys.display())),
            "{msg}"
        );
        // / belongs to root, and nothing above it is ours when we are someone else: install.
        assert_eq!(give_back(Path::new("/usr/lib"), 54321), None);
    }
}
