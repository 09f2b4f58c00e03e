//! `migrate snapshot --reason TEXT`: accept the live schema as the snapshot, audited. Only a
//! person at a terminal may: never under CI or GitHub Actions, never without a typed
//! confirmation after every accepted difference is shown. The engine (and its SQL) is
//! `common::snapshot::accept`.

use std::io::{BufRead, IsTerminal, Write};

use cli::{Output, TargetArgs};
use common::snapshot::accept::{accept, Accepted};
use common::snapshot::Drift;
use common::Error;

/// `migrate snapshot`'s flags.
#[derive(clap::Args, Debug)]
pub struct SnapshotArgs {
    /// Why the live schema is accepted (recorded with who and when), e.g. "PostgreSQL 16
    /// upgrade renders defaults differently".
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
}

/// Refuses (exit 2) unless a person is at a terminal and no job runner is around.
fn refuse_unless_manual() -> Result<(), Error> {
    for var in ["CI", "GITHUB_ACTIONS"] {
        if std::env::var_os(var).is_some_and(|v| !v.is_empty()) {
            return Err(Error::Refused(format!(
                "{var} is set: accepting the live schema is an audited, manual decision and never runs in CI or a workflow; nothing was recorded. An operator runs `migrate snapshot --reason TEXT` at a terminal on the host"
            )));
        }
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::Refused(
            "standard input is not a terminal: the operator must confirm what is accepted, and no flag replaces that; nothing was recorded. Run `migrate snapshot --reason TEXT` from an interactive shell".into(),
        ));
    }
    Ok(())
}

/// Who is at the terminal: the user behind sudo, else the login name.
fn operator() -> Option<String> {
    ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.is_empty()))
}

/// Runs the subcommand.
/// `target`: the global `--env`, `--dir`, `--format`.
pub fn run(target: &TargetArgs, args: &SnapshotArgs, out: &Output) -> Result<Accepted, Error> {
    refuse_unless_manual()?;
    let reason = args.reason.trim();
    if reason.is_empty() {
        return Err(Error::Refused(
            "--reason is empty: say why the live schema is accepted (it is recorded); nothing was recorded".into(),
        ));
    }
    let (env, url) = target.resolve()?;
    let files = crate::read_dir(&target.dir.dir, out)?;
    let database = env.database();
    let mut confirm = |drift: &[Drift], equivalent: &[Drift]| -> Result<(), Error> {
        if !equivalent.is_empty() {
            out.progress(&format!(
                "{database}: no drift; {} definition{} render{} differently from the snapshot but mean{} the same (a dump/restore parses them again); recording the live renderings makes the gate's check fast again:",
                equivalent.len(),
                if equivalent.len() == 1 { "" } else { "s" },
                if equivalent.len() == 1 { "s" } else { "" },
                if equivalent.len() == 1 { "s" } else { "" },
            ));
            for d in equivalent {
                out.progress(&format!("  equivalent: {}", d.subject()));
            }
        } else if drift.is_empty() {
            out.progress(&format!(
                "{database} has no schema snapshot yet: the live schema becomes the first one"
            ));
        } else {
            out.progress(&format!(
                "{database}: {} difference{} from the snapshot will be accepted:",
                drift.len(),
                if drift.len() == 1 { "" } else { "s" }
            ));
            for d in drift {
                out.progress(&format!("  accept: {d}"));
            }
        }
        let mut stderr = std::io::stderr();
        let _ = write!(stderr, "Type the database name ({database}) to accept: ");
        let _ = stderr.flush();
        let mut answer = String::new();
        let read = std::io::stdin().lock().read_line(&mut answer).unwrap_or(0);
        if read == 0 || answer.trim() != database {
            return Err(Error::Failed(format!(
                "aborted: the answer is not the database name {database:?}; nothing was recorded"
            )));
        }
        Ok(())
    };
    accept(
        &url,
        env,
        &files,
        reason,
        operator().as_deref(),
        &mut confirm,
    )
}
