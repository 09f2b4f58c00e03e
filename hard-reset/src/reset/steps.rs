//! The seven steps, in order, each announced before it runs.
//!
//! [`Steps`] carries what every step needs (the request, the operator, the clock, the held
//! Ctrl-C); `run` calls one method per step, and the first error ends the reset. Every failure
//! is built by [`step_failed`], with the [`State`] the step leaves the database in.
//!
//! From just before the drop until the migrations have finished or failed, SIGINT, SIGTERM and
//! SIGHUP are held ([`Hold`]): the flag is looked at after each step and after each migration
//! file. The drop and the create run on the admin session, whose lock timeout (`admin`) keeps
//! them from waiting indefinitely for a lock while the signals are held.

use std::path::PathBuf;
use std::time::Instant;

use postgres::error::SqlState;
use postgres::Client;

use crate::reset::admin::LOCK_TIMEOUT;
use crate::reset::backup::take_backup;
use crate::reset::command::run_stop_command;
use crate::reset::failure::{step_failed, State};
use crate::reset::inside;
use crate::reset::interrupt::{Hold, Interruption};
use crate::reset::prepared;
use crate::reset::properties::{check_recreated, record};
use crate::reset::{
    quote_ident, sessions, Backup, Operator, Recorded, Request, ResetError, Summary, STEPS,
};
use common::error::describe_pg;
use common::report::human_duration;
use common::runner;

/// What a drop that timed out waiting for its lock (55P03) adds to the failure: that another
/// session holds a lock on the database, the sessions that do (when they can be read), and
/// the query that finds them.
fn lock_hint(admin: &mut Client, db: &str) -> String {
    let mut hint = format!(
        "\n  hint: another session holds a lock on the database {db} (an open transaction that ran COMMENT ON DATABASE, GRANT ... ON DATABASE or the like, connected to any database), and the drop gave up after waiting {LOCK_TIMEOUT}: find it in pg_locks / pg_stat_activity, end its transaction (or pg_terminate_backend its pid), and run hard-reset again"
    );
    match sessions::lock_holders(admin, db) {
        Ok(holders) if !holders.is_empty() => {
            hint.push_str("\n  holding a lock on it now:");
            for s in holders {
                hint.push_str(&format!("\n    {s}"));
            }
        }
        // Gone meanwhile, or not readable: the query lets the operator look.
        _ => {}
    }
    hint.push_str(&format!(
        "\n  to find it: {}",
        sessions::lock_holders_query(db)
    ));
    hint
}

/// A reset from step 1 on: the steps are its methods, called in order.
pub(super) struct Steps<'a> {
    request: &'a Request,
    operator: &'a mut dyn Operator,
    /// Step 1's start, for the summary's duration.
    started: Instant,
    /// SIGINT, SIGTERM and SIGHUP held, from just before the drop to the end of the migrations.
    hold: Option<Hold>,
    /// What the hold caught, once it has ended.
    interrupted: Option<Interruption>,
}

impl<'a> Steps<'a> {
    /// Starts the clock: the operator has confirmed.
    pub(super) fn start(request: &'a Request, operator: &'a mut dyn Operator) -> Self {
        Steps {
            request,
            operator,
            started: Instant::now(),
            hold: None,
            interrupted: None,
        }
    }

    fn announce(&mut self, step: usize, what: &str) {
        self.operator.say(&format!("step {step}/{STEPS}: {what}"));
    }

    /// The failure of `step`, including a held signal that arrived by now.
    fn fail(&self, step: usize, what: &str, state: &State) -> ResetError {
        let interrupted = self
            .interrupted
            .or_else(|| self.hold.as_ref().and_then(|hold| hold.arrived(step)));
        step_failed(self.request, step, what, state, interrupted)
    }

    /// Between steps: tells the operator once that a signal is held.
    fn check_held(&mut self, step: usize) {
        if let Some(hold) = &mut self.hold {
            hold.check(step, &mut *self.operator);
        }
    }

    /// Step 1: the stop command.
    pub(super) fn stop_runtime(&mut self) -> Result<(), ResetError> {
        let command = &self.request.stop_command;
        self.announce(1, &format!("running the stop command: sh -c {command:?}"));
        let took = run_stop_command(command).map_err(|e| self.fail(1, &e, &State::Untouched))?;
        self.operator.say(&format!(
            "  the stop command succeeded ({})",
            human_duration(took)
        ));
        Ok(())
    }

    /// Step 2: sessions still connected end by themselves, or are terminated after `yes`.
    pub(super) fn end_sessions(&mut self, admin: &mut Client) -> Result<(), ResetError> {
        let db = self.request.database();
        self.announce(2, &format!("checking for sessions still connected to {db}"));
        sessions::end_remaining(admin, db, &mut *self.operator)
            .map_err(|what| self.fail(2, &what, &State::Untouched))
    }

    /// Step 3: the backup, when one was asked for; the verified file.
    pub(super) fn back_up(&mut self) -> Result<Option<PathBuf>, ResetError> {
        let request = self.request;
        match &request.backup {
            Backup::To(file) => {
                self.announce(
                    3,
                    &format!(
                        "backing up {} with pg_dump -Fc to {}",
                        request.database(),
                        file.display()
                    ),
                );
                let entries = take_backup(request, file, &mut *self.operator)
                    .map_err(|e| self.fail(3, &e, &State::Untouched))?;
                self.operator.say(&format!(
                    "  backup verified: pg_restore -l lists {entries} entries"
                ));
                Ok(Some(file.clone()))
            }
            Backup::Declined => {
                self.announce(3, "backup: skipped (--no-backup)");
                Ok(None)
            }
            Backup::NotAsked => {
                self.announce(3, "backup: skipped (no --backup FILE given)");
                Ok(None)
            }
        }
    }

    /// Step 4: records the database's properties, starts holding SIGINT, SIGTERM and SIGHUP,
    /// drops it. A drop that cannot get its lock within the admin session's lock timeout fails
    /// with nothing dropped, naming the sessions that hold one.
    pub(super) fn drop_database(&mut self, admin: &mut Client) -> Result<Recorded, ResetError> {
        let db = self.request.database();
        self.announce(
            4,
            &format!("recording the properties of {db}, then dropping it"),
        );
        let mut recorded = record(admin, db).map_err(|e| {
            self.fail(
                4,
                &format!("reading the database's properties: {}", describe_pg(&e)),
                &State::Untouched,
            )
        })?;
        // In a session of its own, closed before the drop (which waits a few seconds for a
        // closing backend to go).
        let (inside, not_restorable) = inside::connect(self.request)
            .map_err(|e| e.to_string())
            .and_then(|mut client| {
                let inside = inside::record(&mut client).map_err(|e| describe_pg(&e))?;
                let not_restorable = inside::roles_not_restorable(&mut client, &inside)
                    .map_err(|e| describe_pg(&e))?;
                Ok((inside, not_restorable))
            })
            .map_err(|e| {
                self.fail(
                    4,
                    &format!("reading the privileges inside the database: {e}"),
                    &State::Untouched,
                )
            })?;
        if !not_restorable.is_empty() {
            return Err(self.fail(
                4,
                &format!(
                    "the admin role cannot restore schema public's privileges or the default privileges of {} after the recreate (it is neither a superuser nor a member of them), so the database is not dropped: use a superuser as DREICHOR_ADMIN_DATABASE_URL, or GRANT those roles to the admin role",
                    not_restorable.join(", ")
                ),
                &State::Untouched,
            ));
        }
        recorded.inside = inside;
        self.operator
            .say(&format!("  recorded: {}", recorded.describe()));
        let hold = Hold::start().map_err(|e| {
            self.fail(
                4,
                &format!("cannot hold Ctrl-C, SIGTERM and SIGHUP during the drop: {e}"),
                &State::Untouched,
            )
        })?;
        self.hold = Some(hold);
        if let Err(e) = admin.batch_execute(&format!("DROP DATABASE {}", quote_ident(db))) {
            let mut what = format!("DROP DATABASE: {}", describe_pg(&e));
            let prepared = prepared::list(admin, db).unwrap_or_default();
            if !prepared.is_empty() {
                // Prepared after the inventory looked: no session to blame.
                what.push_str(&format!(
                    "\n  {}",
                    prepared::explain(db, &prepared, "nothing was dropped")
                ));
            } else if e.code() == Some(&SqlState::OBJECT_IN_USE) {
                what.push_str("\n  a session connected after step 2 (is the runtime restarting itself, or another client reconnecting?): make sure it stays stopped");
            } else if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) {
                what.push_str(&lock_hint(admin, db));
            }
            return Err(self.fail(4, &what, &State::Untouched));
        }
        self.operator.say(&format!("  dropped {db}"));
        self.check_held(4);
        Ok(recorded)
    }

    /// Step 5: creates the database again, restores its privileges, settings and comment, and
    /// checks it against the record. The admin session ends here.
    pub(super) fn create_database(
        &mut self,
        mut admin: Client,
        recorded: &Recorded,
    ) -> Result<(), ResetError> {
        let db = self.request.database();
        self.announce(5, &format!("creating {db} again with the same properties"));
        let create = recorded.create_statement();
        let restore = recorded.restore_statements();
        if let Err(e) = admin.batch_execute(&create) {
            let mut statements = vec![create.clone()];
            statements.extend(restore.iter().cloned());
            return Err(self.fail(
                5,
                &format!("CREATE DATABASE: {}", describe_pg(&e)),
                &State::DroppedNotRecreated(statements),
            ));
        }
        if !restore.is_empty() {
            let batch = format!("BEGIN;\n{};\nCOMMIT", restore.join(";\n"));
            if let Err(e) = admin.batch_execute(&batch) {
                let _ = admin.batch_execute("ROLLBACK");
                return Err(self.fail(
                    5,
                    &format!(
                        "restoring privileges, settings and comment: {}",
                        describe_pg(&e)
                    ),
                    &State::RecreatedIncomplete(restore),
                ));
            }
        }
        match check_recreated(&mut admin, recorded) {
            Ok(None) => {}
            Ok(Some(difference)) => {
                return Err(self.fail(
                    5,
                    &format!("the new database differs from the old one: {difference}"),
                    &State::RecreatedIncomplete(restore),
                ))
            }
            Err(e) => {
                return Err(self.fail(
                    5,
                    &format!("checking the new database: {}", describe_pg(&e)),
                    &State::RecreatedIncomplete(restore),
                ))
            }
        }
        let inside = inside::connect(self.request)
            .map_err(|e| (e.to_string(), inside::by_hand(db, &recorded.inside)))
            .and_then(|mut client| inside::restore(&mut client, db, &recorded.inside));
        match inside {
            Ok((_, None)) => {}
            Ok((statements, Some(difference))) => {
                return Err(self.fail(
                    5,
                    &format!("the privileges inside the new database differ from the old ones: {difference}"),
                    &State::RecreatedIncomplete(statements),
                ))
            }
            Err((e, statements)) => {
                return Err(self.fail(
                    5,
                    &format!("restoring schema public's privileges and the default privileges (connected to {db}): {e}"),
                    &State::RecreatedIncomplete(statements),
                ))
            }
        }
        self.operator.say(&format!(
            "  created {db} and checked it against the recorded properties: identical"
        ));
        self.check_held(5);
        Ok(())
    }

    /// Step 6: every migration, with the engine `migrate` uses. The hold ends here, whether
    /// the migrations finished or failed.
    pub(super) fn run_migrations(&mut self) -> Result<runner::Summary, ResetError> {
        let request = self.request;
        let count = request.files.len();
        self.announce(
            6,
            &format!(
                "running {count} migration{} from {} as {}",
                if count == 1 { "" } else { "s" },
                request.dir.display(),
                request.url.user()
            ),
        );
        let (operator, hold) = (&mut *self.operator, &mut self.hold);
        let migrated = runner::migrate(
            &request.url,
            request.env,
            &request.files,
            // The reset holds Ctrl-C itself until the migrations are done.
            &runner::Options {
                cancel_on_signal: false,
                ..runner::Options::default()
            },
            &mut |line| {
                operator.say(&format!("  {line}"));
                if let Some(hold) = hold.as_mut() {
                    hold.check(6, &mut *operator);
                }
            },
        );
        if migrated.is_ok() {
            self.check_held(6);
        }
        self.interrupted = self.hold.take().and_then(|hold| hold.arrived(6));
        migrated.map_err(|e| self.fail(6, &e.to_string(), &State::RecreatedNotMigrated))
    }

    /// Step 7: the summary (printed by the binary).
    pub(super) fn summary(
        mut self,
        backup: Option<PathBuf>,
        recorded: Recorded,
        migrated: runner::Summary,
    ) -> Summary {
        self.announce(7, "summary");
        Summary {
            env: self.request.env,
            database: self.request.database().to_string(),
            backup,
            recorded,
            migrated,
            duration: self.started.elapsed(),
            interrupted: self.interrupted,
        }
    }
}
