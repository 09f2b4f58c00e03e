//! What a reset is asked to do, and the checks that need no server.
//!
//! A reset is refused before anything else when no person is at a terminal
//! ([`refuse_unless_manual`]); then [`Request::new`] checks the configuration: the admin URL
//! on the same instance, prod's backup decision, a backup file that must not exist yet (nor
//! its `.partial`, see `backup`), a stop command that is not blank. Everything here is pure
//! (or reads only the file system), so every refusal is a unit test; a refusal is exit 2 with
//! nothing touched.
//!
//! The [`Operator`] is the person at the terminal, behind a trait so that the binary answers
//! with `dialoguer` and the tests with a script.

use std::path::{Path, PathBuf};

use crate::reset::partial_path;
use common::config::{DbUrl, Env, ADMIN_DATABASE_URL, DATABASE_URL};
use common::error::Error;
use common::migrations::Migration;

/// Refuses (exit 2) unless a person is at a terminal: the design document says hard resets
/// "must be manual ... must never be automated", so no flag can stand in for the prompts, and
/// a job runner (`CI`, `GITHUB_ACTIONS`, set to anything) is refused even when it provides a
/// pseudo-terminal. `prompt_is_terminal` says whether the prompts can be shown (stderr or
/// stdout is a terminal).
///
/// ```
/// use hard_reset::reset::refuse_unless_manual;
/// assert!(refuse_unless_manual(true, true, None, None).is_ok());
/// assert!(refuse_unless_manual(false, true, None, None).is_err());
/// assert!(refuse_unless_manual(true, true, Some("true"), None).is_err());
/// ```
pub fn refuse_unless_manual(
    stdin_is_terminal: bool,
    prompt_is_terminal: bool,
    ci: Option<&str>,
    github_actions: Option<&str>,
) -> Result<(), Error> {
    for (var, value) in [("CI", ci), ("GITHUB_ACTIONS", github_actions)] {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            return Err(Error::Refused(format!(
                "{var}={value:?} is set: hard resets are manual and never automated, so hard-reset does not run in CI or a workflow; nothing was changed. An operator runs it at a terminal on the host"
            )));
        }
    }
    if !stdin_is_terminal {
        return Err(Error::Refused(
            "standard input is not a terminal: hard resets are manual, the operator must type the confirmations, and no flag replaces them; nothing was changed. Run hard-reset from an interactive shell on the host".into(),
        ));
    }
    if !prompt_is_terminal {
        return Err(Error::Refused(
            "neither stderr nor stdout is a terminal, so the confirmation prompts cannot be shown; nothing was changed. Run hard-reset without redirecting both".into(),
        ));
    }
    Ok(())
}

/// The backup the operator chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backup {
    /// `--backup FILE`: `pg_dump -Fc` into this new file before the drop.
    To(PathBuf),
    /// `--no-backup`: the operator said explicitly that no backup is wanted.
    Declined,
    /// Neither flag (allowed for dev only).
    NotAsked,
}

/// Everything a reset needs, checked as far as possible without a server.
#[derive(Debug, Clone)]
pub struct Request {
    /// The environment.
    pub env: Env,
    /// `DATABASE_URL`: the environment's role; runs the migrations.
    pub url: DbUrl,
    /// `DREICHOR_ADMIN_DATABASE_URL`: drops and creates the database.
    pub admin: DbUrl,
    /// The migrations to run after the create, in order.
    pub files: Vec<Migration>,
    /// Where they are, for messages.
    pub dir: PathBuf,
    /// Run with `sh -c` in step 1.
    pub stop_command: String,
    /// The backup choice.
    pub backup: Backup,
}

impl Request {
    /// Checks what can be checked before connecting: exit 2 with nothing touched when the
    /// admin URL is on another port than `DATABASE_URL` (another instance), when prod has
    /// neither `--backup` nor `--no-backup`, when the backup file (or `FILE.partial`) exists
    /// already or its directory does not, or when the stop command is blank.
    pub fn new(
        env: Env,
        url: DbUrl,
        admin: DbUrl,
        (files, dir): (Vec<Migration>, PathBuf),
        stop_command: String,
        backup: Backup,
    ) -> Result<Request, Error> {
        if admin.port() != url.port() {
            return Err(Error::Refused(format!(
                "{ADMIN_DATABASE_URL} ({}) is on port {} but {DATABASE_URL} ({}) is on port {}: the admin connection must reach the same PostgreSQL instance as the environment's database; nothing was changed",
                admin.redacted(),
                admin.port(),
                url.redacted(),
                url.port()
            )));
        }
        if stop_command.trim().is_empty() {
            return Err(Error::Refused(
                "--stop-command is empty: give the command that stops the runtime (run with sh -c), e.g. --stop-command 'systemctl stop dreichor-runtime'; nothing was changed".into(),
            ));
        }
        match &backup {
            Backup::NotAsked if env == Env::Prod => {
                return Err(Error::Refused(
                    "resetting prod needs a decision about the backup: pass --backup FILE (pg_dump -Fc, verified before anything is dropped) or --no-backup; nothing was changed".into(),
                ));
            }
            Backup::To(file) => check_backup_file(file)?,
            _ => {}
        }
        Ok(Request {
            env,
            url,
            admin,
            files,
            dir,
            stop_command,
            backup,
        })
    }

    /// The database the reset destroys: the environment's.
    pub(super) fn database(&self) -> &'static str {
        self.env.database()
    }
}

/// The backup file must be new (a reset never overwrites a file, least of all an older
/// backup) and its directory must exist. So must `FILE.partial`, where the dump is written
/// until it is verified: one that exists is left by a run that was killed during its backup
/// (or is somebody else's file). It is refused rather than removed: it is not a backup, but
/// only the operator can tell that nothing else wrote it.
fn check_backup_file(file: &Path) -> Result<(), Error> {
    if file.as_os_str().is_empty() {
        return Err(Error::Refused(
            "--backup needs a file name; nothing was changed".into(),
        ));
    }
    if std::fs::symlink_metadata(file).is_ok() {
        return Err(Error::Refused(format!(
            "the backup file {} exists already; hard-reset never overwrites a file: choose a new name or move the old one away; nothing was changed",
            file.display()
        )));
    }
    let partial = partial_path(file);
    if std::fs::symlink_metadata(&partial).is_ok() {
        return Err(Error::Refused(format!(
            "{} exists already: it is where the backup is written until pg_restore -l has verified it, so it is most likely left by an earlier hard-reset that was interrupted during its backup, and it is NOT a usable backup; remove it (or choose another --backup name); nothing was changed",
            partial.display()
        )));
    }
    let parent = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(Error::Refused(format!(
            "the directory of the backup file {} does not exist: create {} first; nothing was changed",
            file.display(),
            parent.display()
        )));
    }
    Ok(())
}

/// The person at the terminal: the binary implements it with `dialoguer`, tests with a script.
pub trait Operator {
    /// A line for the operator (stderr).
    fn say(&mut self, line: &str);
    /// Asks and returns the answer as typed, or `None` when there is none (Ctrl-C, Ctrl-D, the
    /// terminal went away): the caller treats that as "no".
    fn ask(&mut self, prompt: &str) -> Option<String>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reset::fixtures::{admin_url, dev_url, request};

    fn prod_url() -> DbUrl {
        DbUrl::for_env(
            "postgres://dreichor_prod:Sentinel-PW@localhost:5433/dreichor_prod",
            Env::Prod,
        )
        .unwrap()
    }

    #[test]
    fn a_terminal_without_ci_is_manual() {
        refuse_unless_manual(true, true, None, None).unwrap();
        refuse_unless_manual(true, true, Some(""), Some("")).unwrap();
    }

    #[test]
    fn ci_or_github_actions_with_any_value_is_refused() {
        for (ci, gha) in [
            (Some("1"), None),
            (Some("true"), None),
            (Some("false"), None),
            (None, Some("true")),
            (None, Some("x")),
        ] {
            let err = refuse_unless_manual(true, true, ci, gha).unwrap_err();
            assert_eq!(err.exit_code(), common::ExitCode::Invalid, "{err}");
            assert!(err.to_string().contains("never automated"), "{err}");
        }
    }

    #[test]
    fn no_terminal_is_refused() {
        let err = refuse_unless_manual(false, true, None, None).unwrap_err();
        assert_eq!(err.exit_code(), common::ExitCode::Invalid);
        assert!(err.to_string().contains("not a terminal"), "{err}");
        assert!(refuse_unless_manual(true, false, None, None).is_err());
    }

    #[test]
    fn the_admin_url_must_be_on_the_same_port() {
        let err = request(Env::Dev, dev_url(), admin_url(5432), Backup::NotAsked).unwrap_err();
        assert_eq!(err.exit_code(), common::ExitCode::Invalid);
        let text = err.to_string();
        assert!(
            text.contains("port 5432") && text.contains("port 5433"),
            "{text}"
        );
        assert!(
            !text.contains("Sentinel") && !text.contains("Admin-Sentinel"),
            "{text}"
        );
        request(Env::Dev, dev_url(), admin_url(5433), Backup::NotAsked).unwrap();
    }

    #[test]
    fn prod_needs_a_backup_decision() {
        let err = request(Env::Prod, prod_url(), admin_url(5433), Backup::NotAsked).unwrap_err();
        assert_eq!(err.exit_code(), common::ExitCode::Invalid);
        assert!(err.to_string().contains("--no-backup"), "{err}");
        request(Env::Prod, prod_url(), admin_url(5433), Backup::Declined).unwrap();
    }

    #[test]
    fn an_existing_backup_file_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("old.dump");
        std::fs::write(&file, "an older backup").unwrap();
        let err = request(
            Env::Dev,
            dev_url(),
            admin_url(5433),
            Backup::To(file.clone()),
        )
        .unwrap_err();
        assert_eq!(err.exit_code(), common::ExitCode::Invalid);
        assert!(err.to_string().contains("exists already"), "{err}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "an older backup");

        let missing_dir = dir.path().join("no/such/dir/new.dump");
        let err = request(
            Env::Dev,
            dev_url(),
            admin_url(5433),
            Backup::To(missing_dir),
        )
        .unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");

        request(
            Env::Dev,
            dev_url(),
            admin_url(5433),
            Backup::To(dir.path().join("new.dump")),
        )
        .unwrap();
    }

    #[test]
    fn a_partial_backup_left_by_an_earlier_run_is_refused_not_removed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("prod.dump");
        let partial = dir.path().join("prod.dump.partial");
        std::fs::write(&partial, "half a dump").unwrap();
        let err = request(Env::Dev, dev_url(), admin_url(5433), Backup::To(file)).unwrap_err();
        assert_eq!(err.exit_code(), common::ExitCode::Invalid);
        let text = err.to_string();
        assert!(text.contains(&partial.display().to_string()), "{text}");
        assert!(text.contains("NOT a usable backup"), "{text}");
        assert_eq!(std::fs::read_to_string(&partial).unwrap(), "half a dump");
    }

    #[test]
    fn a_blank_stop_command_is_refused() {
        let err = Request::new(
            Env::Dev,
            dev_url(),
            admin_url(5433),
            (Vec::new(), PathBuf::new()),
            "  ".into(),
            Backup::NotAsked,
        )
        .unwrap_err();
        assert_eq!(err.exit_code(), common::ExitCode::Invalid);
    }
}
