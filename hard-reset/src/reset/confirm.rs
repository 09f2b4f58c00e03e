//! Before anything changes: what the operator is shown, and the typed confirmations.
//!
//! The target and its URLs (redacted) come first, before any connection, so that a wrong
//! environment is visible even when connecting fails. Then what will be destroyed, a warning
//! when the checkout's migrations end before the database's, the plan of the seven steps,
//! and the questions: the database name, and for prod a phrase as well. Any other answer, or
//! none, aborts with nothing changed (exit 1); no flag stands in for them.

use crate::reset::{Backup, Inventory, Operator, Request, PROD_PHRASE};
use common::config::{Env, ADMIN_DATABASE_URL, DATABASE_URL};
use common::error::Error;

/// Names the environment, the database, both URLs (redacted) and the migrations directory.
pub(super) fn introduce(request: &Request, operator: &mut dyn Operator) {
    let db = request.database();
    operator.say(&format!(
        "hard-reset: environment {}, database {db}",
        request.env
    ));
    operator.say(&format!("  {DATABASE_URL}:  {}", request.url.redacted()));
    operator.say(&format!(
        "  {ADMIN_DATABASE_URL}:  {}",
        request.admin.redacted()
    ));
    let latest_file = request.files.last().map(|m| m.version.as_str());
    operator.say(&format!(
        "  migrations directory: {} ({} file{}{})",
        request.dir.display(),
        request.files.len(),
        if request.files.len() == 1 { "" } else { "s" },
        latest_file
            .map(|v| format!(", latest {v}"))
            .unwrap_or_default()
    ));
}

/// Shows what will be destroyed and what the steps will do.
pub(super) fn show_plan(request: &Request, inventory: &Inventory, operator: &mut dyn Operator) {
    let db = request.database();
    let latest_file = request.files.last().map(|m| m.version.as_str());
    operator.say("");
    for line in inventory.describe() {
        operator.say(&line);
    }
    if let Some(latest) = inventory
        .migrations
        .as_ref()
        .and_then(|m| m.latest.as_ref())
    {
        if latest_file.is_some_and(|f| f < latest.as_str()) || latest_file.is_none() {
            operator.say(&format!(
                "  WARNING: the database has {latest} applied but the migrations directory ends at {}: after the reset the schema will be OLDER than now (is this checkout out of date?)",
                latest_file.unwrap_or("nothing")
            ));
        }
    }
    operator.say("");
    operator.say("Then:");
    operator.say(&format!(
        "  1. stop the runtime: sh -c {:?}",
        request.stop_command
    ));
    operator.say(&format!(
        "  2. ask before terminating sessions still connected to {db}"
    ));
    operator.say(&match &request.backup {
        Backup::To(file) => format!("  3. back up with pg_dump -Fc to {}", file.display()),
        Backup::Declined => "  3. NO backup (--no-backup)".into(),
        Backup::NotAsked => "  3. no backup (pass --backup FILE for one)".into(),
    });
    operator.say(&format!(
        "  4-6. drop {db}, create it again with the same owner, encoding, collation and privileges, run the {} migration{}",
        request.files.len(),
        if request.files.len() == 1 { "" } else { "s" }
    ));
    operator.say("  The runtime is NOT restarted afterwards.");
    operator.say("");
}

/// Asks for the database name, and for prod the phrase; anything else aborts.
pub(super) fn ask(request: &Request, operator: &mut dyn Operator) -> Result<(), Error> {
    let db = request.database();
    let typed = operator
        .ask(&format!("Type the database name ({db}) to confirm"))
        .ok_or_else(|| aborted(NO_ANSWER))?;
    if typed != db {
        return Err(aborted(&format!(
            "the answer {typed:?} is not the database name {db:?}"
        )));
    }
    if request.env == Env::Prod {
        let typed = operator
            .ask(&format!("Type '{PROD_PHRASE}' to confirm"))
            .ok_or_else(|| aborted(NO_ANSWER))?;
        if typed != PROD_PHRASE {
            return Err(aborted(&format!(
                "the answer {typed:?} is not the phrase {PROD_PHRASE:?}"
            )));
        }
    }
    Ok(())
}

/// Why there is no answer: the operator pressed Ctrl-C or Ctrl-D, or the terminal went away.
pub(super) const NO_ANSWER: &str = "no answer (Ctrl-C, Ctrl-D or end of input)";

/// An answer that is not the expected one: exit 1, nothing changed.
fn aborted(why: &str) -> Error {
    Error::Failed(format!(
        "aborted: {why}; nothing was changed (the stop command did not run, nothing was dropped)"
    ))
}
