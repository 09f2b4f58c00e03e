//! Step 3, the backup: `pg_dump -Fc` into `FILE.partial`, then `pg_restore -l` on it, so that
//! a backup that cannot be read is found while the data still exists, and only then renamed
//! to FILE.
//!
//! The client programs are found through `PG_BIN` or `PATH`. They get the credentials in
//! their environment only, never on their command line, which any user can read in the
//! process list (<https://www.postgresql.org/docs/current/libpq-envars.html>); every
//! inherited `PG*` variable is removed so that nothing redirects them, and so are our own
//! URLs (`command::without_secrets`).
//!
//! # Why `FILE.partial`
//!
//! Ctrl-C during step 3 reaches the whole foreground process group: `pg_dump` and the tool
//! both end at once, and nothing is left to remove a half-written file. Written straight to
//! FILE, that file would look like the backup the operator asked for. So the dump goes to
//! [`partial_path`] (created new, mode 0600: it holds the data), FILE appears only once
//! `pg_restore -l` has read the dump back, and any failure we live through removes the
//! `.partial`. One left behind by a killed run makes the next run refuse (`request`), naming
//! it: it is not a backup, and only the operator can tell whether anything else wrote it.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::reset::command::{stderr_for_child, without_secrets};
use crate::reset::{Operator, Request, BACKUP_APPLICATION, CONNECT_TIMEOUT};
use common::config::DbUrl;
use common::report::human_duration;

/// Where `name` (a PostgreSQL client program) is: in `PG_BIN` when set, else the first one on
/// `PATH`.
pub fn find_program(name: &str) -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("PG_BIN").filter(|d| !d.is_empty()) {
        let path = PathBuf::from(dir).join(name);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "PG_BIN is set but {} does not exist: point PG_BIN at the PostgreSQL client binaries (e.g. /usr/lib/postgresql/15/bin)",
                path.display()
            ))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!("{name} was not found on PATH: install the PostgreSQL client (apt-get install postgresql-client) or set PG_BIN to its directory")
        })
}

/// The environment `pg_dump` and `pg_restore` get from us: the libpq variables for the
/// validated URL, the password included, and nothing else of libpq's (every inherited `PG*`
/// variable is removed, so that `PGSERVICE`, `PGOPTIONS` and the like cannot redirect it).
pub fn libpq_env(url: &DbUrl) -> (Vec<OsString>, Vec<(String, String)>) {
    let remove: Vec<OsString> = std::env::vars_os()
        .map(|(k, _)| k)
        .filter(|k| k.to_string_lossy().starts_with("PG"))
        .collect();
    let addrs: Vec<String> = url.host_addrs().iter().map(|a| a.to_string()).collect();
    let mut set = vec![
        ("PGHOST".to_string(), addrs.join(",")),
        ("PGHOSTADDR".to_string(), addrs.join(",")),
        ("PGPORT".to_string(), url.port().to_string()),
        ("PGUSER".to_string(), url.user().to_string()),
        ("PGDATABASE".to_string(), url.database().to_string()),
        ("PGAPPNAME".to_string(), BACKUP_APPLICATION.to_string()),
        ("PGSSLMODE".to_string(), "disable".to_string()),
        (
            "PGCONNECT_TIMEOUT".to_string(),
            CONNECT_TIMEOUT.as_secs().to_string(),
        ),
    ];
    if let Some(password) = url.password() {
        set.push(("PGPASSWORD".to_string(), password.to_string()));
    }
    (remove, set)
}

/// Where the dump is written until it has been verified: FILE with `.partial` appended.
///
/// ```
/// use std::path::Path;
/// use hard_reset::reset::partial_path;
/// assert_eq!(partial_path(Path::new("/b/prod.dump")), Path::new("/b/prod.dump.partial"));
/// ```
pub fn partial_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// `pg_dump -Fc --no-password -f FILE` with the credentials in its environment only, and
/// neither `DATABASE_URL` nor `DREICHOR_ADMIN_DATABASE_URL` there.
pub fn pg_dump_command(pg_dump: &Path, url: &DbUrl, file: &Path) -> Command {
    let mut command = Command::new(pg_dump);
    command
        .arg("--format=custom")
        .arg("--no-password")
        .arg("--file")
        .arg(file);
    let (remove, set) = libpq_env(url);
    for k in remove {
        command.env_remove(k);
    }
    without_secrets(&mut command);
    command.envs(set);
    command
}

/// `pg_restore --list FILE`: it reads the file only, so it needs no credentials at all.
fn pg_restore_list_command(pg_restore: &Path, file: &Path) -> Command {
    let mut command = Command::new(pg_restore);
    command.arg("--list").arg(file);
    without_secrets(&mut command);
    command
}

/// Step 3: dumps into `FILE.partial` (created here, mode 0600: it holds the data), lists it
/// with `pg_restore -l`, and only then renames it to FILE; returns the number of entries. On
/// failure the `.partial` is removed: it was created by this run and is not a backup.
pub(super) fn take_backup(
    request: &Request,
    file: &Path,
    operator: &mut dyn Operator,
) -> Result<usize, String> {
    let pg_dump = find_program("pg_dump")?;
    let pg_restore = find_program("pg_restore")?;
    let partial = partial_path(file);
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .map_err(|e| format!("cannot create {}: {e}", partial.display()))?;
    let result = (|| {
        operator.say(&format!(
            "  running {} into {} (the password is passed in its environment, not on its command line)",
            pg_dump.display(),
            partial.display()
        ));
        let started = Instant::now();
        let status = pg_dump_command(&pg_dump, &request.url, &partial)
            .stdin(Stdio::null())
            .stdout(stderr_for_child())
            .status()
            .map_err(|e| format!("cannot run {}: {e}", pg_dump.display()))?;
        if !status.success() {
            return Err(format!("pg_dump failed ({status}); see its message above"));
        }
        let size = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
        operator.say(&format!(
            "  pg_dump wrote {size} bytes in {}",
            human_duration(started.elapsed())
        ));
        let listed = pg_restore_list_command(&pg_restore, &partial)
            .stdin(Stdio::null())
            .stderr(stderr_for_child())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", pg_restore.display()))?;
        let listing = String::from_utf8_lossy(&listed.stdout);
        let entries = listing
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with(';'))
            .count();
        if !listed.status.success() || entries == 0 {
            return Err(format!(
                "the backup {} could not be verified: pg_restore -l {} with {entries} entries",
                partial.display(),
                listed.status
            ));
        }
        publish(&partial, file)?;
        Ok(entries)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

/// Gives the verified dump its final name without ever replacing a file: FILE was checked
/// to be absent before step 1, but something may have created it while `pg_dump` ran. A hard
/// link fails when FILE exists; where the file system has no hard links, FILE is checked once
/// more and the dump renamed.
fn publish(partial: &Path, file: &Path) -> Result<(), String> {
    let exists_now = || {
        format!(
            "{} was created while pg_dump ran; hard-reset never overwrites a file: choose a new name",
            file.display()
        )
    };
    match std::fs::hard_link(partial, file) {
        Ok(()) => std::fs::remove_file(partial).map_err(|e| {
            format!(
                "the backup is in {}, but {} could not be removed: {e}",
                file.display(),
                partial.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(exists_now()),
        Err(_) if std::fs::symlink_metadata(file).is_ok() => Err(exists_now()),
        Err(_) => std::fs::rename(partial, file).map_err(|e| {
            format!(
                "cannot rename {} to {}: {e}",
                partial.display(),
                file.display()
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reset::command::{removed_vars, SECRET_VARS};
    use crate::reset::fixtures::dev_url;

    #[test]
    fn pg_dump_gets_the_password_only_through_its_environment() {
        let command = pg_dump_command(
            Path::new("/usr/bin/pg_dump"),
            &dev_url(),
            Path::new("x.dump"),
        );
        let args: Vec<String> = command
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            ["--format=custom", "--no-password", "--file", "x.dump"]
        );
        let envs: Vec<(String, Option<String>)> = command
            .get_envs()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.map(|v| v.to_string_lossy().into_owned()),
                )
            })
            .collect();
        let get = |k: &str| {
            envs.iter()
                .find(|(key, _)| key == k)
                .and_then(|(_, v)| v.clone())
        };
        assert_eq!(get("PGPASSWORD").as_deref(), Some("Sentinel-PW"));
        assert_eq!(get("PGHOST").as_deref(), Some("127.0.0.1,::1"));
        assert_eq!(get("PGHOSTADDR").as_deref(), Some("127.0.0.1,::1"));
        assert_eq!(get("PGPORT").as_deref(), Some("5433"));
        assert_eq!(get("PGUSER").as_deref(), Some("dreichor_dev"));
        assert_eq!(get("PGDATABASE").as_deref(), Some("dreichor_dev"));
        assert_eq!(get("PGSSLMODE").as_deref(), Some("disable"));
    }

    #[test]
    fn pg_dump_and_pg_restore_do_not_inherit_the_urls() {
        let dump = pg_dump_command(
            Path::new("/usr/bin/pg_dump"),
            &dev_url(),
            Path::new("x.dump.partial"),
        );
        let list = pg_restore_list_command(
            Path::new("/usr/bin/pg_restore"),
            Path::new("x.dump.partial"),
        );
        for command in [dump, list] {
            let removed = removed_vars(&command);
            for var in SECRET_VARS {
                assert!(removed.iter().any(|r| r == var), "{var} is passed on");
            }
        }
    }

    #[test]
    fn the_dump_is_written_beside_the_file_under_another_name() {
        assert_eq!(
            partial_path(Path::new("/backups/prod.dump")),
            Path::new("/backups/prod.dump.partial")
        );
        assert_eq!(partial_path(Path::new("b")), Path::new("b.partial"));
    }

    #[test]
    fn a_verified_dump_never_replaces_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("prod.dump");
        let partial = partial_path(&file);
        std::fs::write(&partial, "the dump").unwrap();
        std::fs::write(&file, "created meanwhile").unwrap();
        let err = publish(&partial, &file).unwrap_err();
        assert!(err.contains("never overwrites"), "{err}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "created meanwhile");

        std::fs::remove_file(&file).unwrap();
        publish(&partial, &file).unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "the dump");
        assert!(!partial.exists(), "the .partial is left behind");
    }
}
