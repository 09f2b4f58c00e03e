//! `hard-reset`: the only allowed way to destroy an environment's data (design document,
//! "Hard Reset"): stop the runtime, drop the database, create it again, re-run every
//! migration. Manual, intentional, never automated.
//!
//! The binary only parses flags and talks to the operator; everything else is here, all SQL
//! included, so that the rules can be read (and unit-tested) in one place:
//!
//! - [`refuse_unless_manual`]: no terminal, `CI` or `GITHUB_ACTIONS` means exit 2 before
//!   anything else is even validated;
//! - [`Request::new`]: the configuration checks that need no server (the admin URL on the same
//!   instance, prod's backup choice, a backup file that must not exist yet);
//! - [`run`]: connects, shows what will be destroyed, asks through an [`Operator`], then runs
//!   the seven steps, each announced before it runs.
//!
//! # Why the steps are in this order and what a failure leaves behind
//!
//! Everything that can fail without harm runs before the drop: the stop command, the
//! sessions, the backup (dumped and then listed with `pg_restore -l`, so that a backup that
//! cannot be read is found while the data still exists). The drop is `DROP DATABASE` without
//! `WITH (FORCE)`: FORCE would terminate sessions the operator did not agree to terminate, and
//! a session that reconnected after step 2 (a runtime restarting itself) makes the plain drop
//! fail with nothing dropped, which is the safe outcome. Every failure says which step failed
//! and in which state it left the database ([`State`]): still there, dropped and not
//! recreated (with the statements that recreate it), or recreated but not (fully) migrated.
//!
//! # What "the same database" means
//!
//! `DROP DATABASE` loses more than the data: the owner, encoding, collation and ctype, locale
//! provider, connection limit, tablespace, access privileges (`datacl`), the settings made with
//! `ALTER DATABASE ... SET` and `ALTER ROLE ... IN DATABASE ... SET`, and the comment. All of
//! them are read just before the drop ([`Recorded`]) and replayed just after the create,
//! privileges grant by grant in their original order so that `datacl` comes back identical.
//!
//! # Passwords
//!
//! URLs are only ever shown redacted. `pg_dump` gets the credentials through `PGPASSWORD` and
//! friends in its environment, never on its command line, which any user can read in the
//! process list (<https://www.postgresql.org/docs/current/libpq-envars.html>).

use std::ffi::OsString;
use std::fmt;
use std::fs::OpenOptions;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use postgres::Client;
use serde_json::{json, Value};

use crate::cli::{human_duration, Report};
use crate::config::{DbUrl, Env, ADMIN_DATABASE_URL, DATABASE_URL};
use crate::connect::{self, literal, rows};
use crate::error::{describe_pg, Error};
use crate::migrations::Migration;
use crate::runner;
use crate::tracking::{self, Shape};

/// The application name of `hard-reset`'s own sessions in `pg_stat_activity`.
pub const APPLICATION: &str = "dreichor-hard-reset";

/// The application name `pg_dump` shows while it takes the backup.
pub const BACKUP_APPLICATION: &str = "dreichor-hard-reset-backup";

/// The phrase the second prompt requires for prod.
pub const PROD_PHRASE: &str = "destroy production data";

/// The only answer that terminates the sessions still connected in step 2.
pub const TERMINATE_ANSWER: &str = "yes";

/// How many steps a reset has (SPEC.md, "hard-reset").
pub const STEPS: usize = 7;

/// How long connecting may take, for both connections.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// After the stop command, how long sessions get to end by themselves before the operator is
/// asked about them: a stopped client's backend exits a moment after its socket closes.
const SESSIONS_GRACE: Duration = Duration::from_secs(2);

/// After `pg_terminate_backend`, how long the terminated sessions get to disappear.
const TERMINATE_WAIT: Duration = Duration::from_secs(10);

/// How often session lists are polled.
const POLL: Duration = Duration::from_millis(100);

/// Tables up to this size get an exact row count; larger ones show the planner's estimate
/// (`pg_class.reltuples`), because counting a big table could take minutes.
const EXACT_COUNT_MAX_BYTES: i64 = 8 * 1024 * 1024;

/// At most this many tables are listed one by one; the rest are summed up.
const MAX_TABLES_SHOWN: usize = 40;

/// Settings whose stored value is a list of identifiers quoted like `"$user", public`: they
/// must be replayed element by element, each as its own literal, or the list would come back
/// as one element. pg_dump keeps the same list (`variable_is_guc_list_quote` in
/// `src/bin/pg_dump/dumputils.c`) because the server exposes the flag nowhere.
const GUC_LIST_QUOTE: &[&str] = &[
    "local_preload_libraries",
    "search_path",
    "session_preload_libraries",
    "shared_preload_libraries",
    "temp_tablespaces",
    "unix_socket_directories",
];

/// Refuses (exit 2) unless a person is at a terminal: the design document says hard resets
/// "must be manual ... must never be automated", so no flag can stand in for the prompts, and
/// a job runner (`CI`, `GITHUB_ACTIONS`, set to anything) is refused even when it provides a
/// pseudo-terminal. `prompt_is_terminal` says whether the prompts can be shown (stderr or
/// stdout is a terminal).
///
/// ```
/// use common::reset::refuse_unless_manual;
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
    /// neither `--backup` nor `--no-backup`, when the backup file exists already or its
    /// directory does not, or when the stop command is blank.
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

    fn database(&self) -> &'static str {
        self.env.database()
    }
}

/// The backup file must be new (a reset never overwrites a file, least of all an older
/// backup) and its directory must exist.
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
    /// Asks and returns the answer as typed, or `None` when there is none (end of input, the
    /// terminal went away): the caller treats that as "no".
    fn ask(&mut self, prompt: &str) -> Option<String>;
}

/// A `"quoted"` identifier: every name that reaches SQL here is quoted, even though the
/// database name is one of two validated constants, because role names come from the
/// catalogue and may need it.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A session connected to the database.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Session {
    /// Backend process id.
    pub pid: i32,
    /// The session's role.
    pub user: String,
    /// Its `application_name`.
    pub application: String,
    /// The client address, `local socket`, or `hidden` when the admin role may not see it.
    pub client: String,
    /// When it connected.
    pub since: String,
    /// `active`, `idle`, `idle in transaction`, ...
    pub state: String,
}

impl fmt::Display for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pid {}  user {}  application {:?}  client {}  connected since {}  ({})",
            self.pid, self.user, self.application, self.client, self.since, self.state
        )
    }
}

/// One table that will be destroyed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// `schema.name`, quoted where needed.
    pub name: String,
    /// Exact row count, or the planner's estimate.
    pub rows: Rows,
}

/// A row count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    /// Counted.
    Exact(i64),
    /// `pg_class.reltuples`.
    Estimate(i64),
    /// Never analysed and too large (or not readable) to count.
    Unknown,
}

impl fmt::Display for Rows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = |n: i64| if n == 1 { "" } else { "s" };
        match *self {
            Rows::Exact(n) => write!(f, "{n} row{}", plural(n)),
            Rows::Estimate(n) => write!(f, "about {n} row{} (estimate)", plural(n)),
            Rows::Unknown => f.write_str("rows unknown (not analysed yet)"),
        }
    }
}

/// What the operator is shown before being asked: what will be destroyed.
#[derive(Debug, Clone)]
pub struct Inventory {
    /// The database.
    pub database: String,
    /// `pg_size_pretty(pg_database_size(...))`.
    pub size: String,
    /// The owner.
    pub owner: String,
    /// Every table, view-free, system schemas excluded.
    pub tables: Vec<Table>,
    /// Applied migrations: (count, latest version, its applied_at); `None` without a
    /// tracking table.
    pub migrations: Option<AppliedMigrations>,
    /// Other sessions connected to the database.
    pub sessions: Vec<Session>,
}

impl Inventory {
    /// The lines shown to the operator.
    pub fn describe(&self) -> Vec<String> {
        let mut out = vec![
            format!(
                "THIS DESTROYS the database {} and everything in it:",
                self.database
            ),
            format!("  size:      {}", self.size),
            format!("  owner:     {}", self.owner),
        ];
        if self.tables.is_empty() {
            out.push("  tables:    none".into());
        } else {
            out.push(format!("  tables:    {}", self.tables.len()));
            let width = self
                .tables
                .iter()
                .take(MAX_TABLES_SHOWN)
                .map(|t| t.name.len())
                .max()
                .unwrap_or(0);
            for table in self.tables.iter().take(MAX_TABLES_SHOWN) {
                out.push(format!("    {:<width$}  {}", table.name, table.rows));
            }
            if self.tables.len() > MAX_TABLES_SHOWN {
                out.push(format!(
                    "    ... and {} more",
                    self.tables.len() - MAX_TABLES_SHOWN
                ));
            }
        }
        out.push(match &self.migrations {
            None => format!(
                "  migrations applied: none (no tracking table {})",
                tracking::TABLE
            ),
            Some(AppliedMigrations {
                count,
                latest: Some(latest),
                latest_applied_at,
            }) if *count > 0 => format!(
                "  migrations applied: {count}, latest {latest}{}",
                latest_applied_at
                    .as_ref()
                    .map(|at| format!(" (applied {at})"))
                    .unwrap_or_default()
            ),
            Some(_) => "  migrations applied: none".into(),
        });
        if self.sessions.is_empty() {
            out.push("  sessions connected: none".into());
        } else {
            out.push(format!("  sessions connected: {}", self.sessions.len()));
            for s in &self.sessions {
                out.push(format!("    {s}"));
            }
        }
        out
    }
}

/// What the tracking table says was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMigrations {
    /// How many versions.
    pub count: usize,
    /// The latest version, if any.
    pub latest: Option<String>,
    /// When it was applied.
    pub latest_applied_at: Option<String>,
}

/// One `aclitem` of `datacl`, possibly covering several privileges: what one GRANT replays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Who granted it.
    pub grantor: String,
    /// To whom; `None` is PUBLIC.
    pub grantee: Option<String>,
    /// `CONNECT`, `CREATE`, `TEMPORARY`, in `aclexplode` order.
    pub privileges: Vec<String>,
    /// `WITH GRANT OPTION`.
    pub grantable: bool,
}

/// One `ALTER DATABASE ... SET` (role `None`) or `ALTER ROLE ... IN DATABASE ... SET` entry
/// of `pg_db_role_setting`, as stored: `name=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The role it applies to, or `None` for everyone.
    pub role: Option<String>,
    /// `name=value` as the server stores it.
    pub entry: String,
}

/// Everything about the database that `DROP DATABASE` loses besides its contents, read just
/// before the drop and replayed after the create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The database.
    pub database: String,
    /// The owner.
    pub owner: String,
    /// e.g. `UTF8`.
    pub encoding: String,
    /// `LC_COLLATE`.
    pub collate: String,
    /// `LC_CTYPE`.
    pub ctype: String,
    /// `datlocprovider` (PostgreSQL 15+): `c` libc, `i` ICU, `b` builtin; `None` before 15.
    pub locale_provider: Option<String>,
    /// The ICU or builtin locale (`daticulocale`, `datlocale` from 17).
    pub locale: Option<String>,
    /// `daticurules` (PostgreSQL 16+).
    pub icu_rules: Option<String>,
    /// `datconnlimit`; -1 is no limit.
    pub connection_limit: i32,
    /// The tablespace.
    pub tablespace: String,
    /// `datacl` as text, for messages and comparison; `None` is the default privileges.
    pub acl_text: Option<String>,
    /// `datacl`, item by item; `None` is the default privileges.
    pub acl: Option<Vec<Grant>>,
    /// Per-database and per-role-in-database settings.
    pub settings: Vec<Setting>,
    /// `COMMENT ON DATABASE`.
    pub comment: Option<String>,
}

impl Recorded {
    /// `CREATE DATABASE` with the same owner, encoding, collation, ctype, locale provider,
    /// tablespace and connection limit, from `template0` (the only template that accepts
    /// another encoding or locale than its own).
    pub fn create_statement(&self) -> String {
        let mut sql = format!(
            "CREATE DATABASE {} WITH OWNER = {} TEMPLATE = template0 ENCODING = {} LC_COLLATE = {} LC_CTYPE = {}",
            quote_ident(&self.database),
            quote_ident(&self.owner),
            literal(&self.encoding),
            literal(&self.collate),
            literal(&self.ctype)
        );
        match self.locale_provider.as_deref() {
            Some("i") => {
                sql.push_str(" LOCALE_PROVIDER = icu");
                if let Some(locale) = &self.locale {
                    sql.push_str(&format!(" ICU_LOCALE = {}", literal(locale)));
                }
                if let Some(rules) = &self.icu_rules {
                    sql.push_str(&format!(" ICU_RULES = {}", literal(rules)));
                }
            }
            Some("b") => {
                sql.push_str(" LOCALE_PROVIDER = builtin");
                if let Some(locale) = &self.locale {
                    sql.push_str(&format!(" BUILTIN_LOCALE = {}", literal(locale)));
                }
            }
            // Spelled out so that a template0 with another provider cannot change it.
            Some("c") => sql.push_str(" LOCALE_PROVIDER = libc"),
            _ => {}
        }
        sql.push_str(&format!(
            " TABLESPACE = {} CONNECTION LIMIT = {}",
            quote_ident(&self.tablespace),
            self.connection_limit
        ));
        sql
    }

    /// The statements that restore privileges, settings and comment after the create, for one
    /// transaction.
    ///
    /// Privileges: a new database has the default ACL (`datacl` NULL). A recorded NULL needs
    /// nothing. Otherwise every default entry is revoked (from PUBLIC and from the owner) and
    /// each recorded item is granted again in its original order, by its original grantor
    /// (`SET ROLE`), which rebuilds the same `aclitem[]`.
    pub fn restore_statements(&self) -> Vec<String> {
        let db = quote_ident(&self.database);
        let mut out = Vec::new();
        if let Some(acl) = &self.acl {
            out.push(format!("REVOKE ALL ON DATABASE {db} FROM PUBLIC"));
            out.push(format!(
                "REVOKE ALL ON DATABASE {db} FROM {}",
                quote_ident(&self.owner)
            ));
            for grant in acl {
                let grantee = grant
                    .grantee
                    .as_deref()
                    .map_or("PUBLIC".to_string(), quote_ident);
                let option = if grant.grantable {
                    " WITH GRANT OPTION"
                } else {
                    ""
                };
                let statement = format!(
                    "GRANT {} ON DATABASE {db} TO {grantee}{option}",
                    grant.privileges.join(", ")
                );
                if grant.grantor == self.owner {
                    // Granted by a superuser or a member of the owner, a privilege is recorded
                    // as granted by the owner.
                    out.push(statement);
                } else {
                    out.push(format!("SET ROLE {}", quote_ident(&grant.grantor)));
                    out.push(statement);
                    out.push("RESET ROLE".into());
                }
            }
        }
        for setting in &self.settings {
            if let Some(statement) = setting_statement(&self.database, setting) {
                out.push(statement);
            }
        }
        if let Some(comment) = &self.comment {
            out.push(format!("COMMENT ON DATABASE {db} IS {}", literal(comment)));
        }
        out
    }

    /// One line for the operator.
    pub fn describe(&self) -> String {
        let mut out = format!(
            "owner {}, encoding {}, LC_COLLATE {}, LC_CTYPE {}",
            self.owner, self.encoding, self.collate, self.ctype
        );
        match self.locale_provider.as_deref() {
            Some("i") => out.push_str(", locale provider icu"),
            Some("b") => out.push_str(", locale provider builtin"),
            _ => {}
        }
        if let Some(locale) = &self.locale {
            out.push_str(&format!(" ({locale})"));
        }
        out.push_str(&format!(
            ", privileges {}",
            self.acl_text.as_deref().unwrap_or("default")
        ));
        if self.connection_limit >= 0 {
            out.push_str(&format!(", connection limit {}", self.connection_limit));
        }
        if self.tablespace != "pg_default" {
            out.push_str(&format!(", tablespace {}", self.tablespace));
        }
        if !self.settings.is_empty() {
            out.push_str(&format!(", {} setting(s)", self.settings.len()));
        }
        if self.comment.is_some() {
            out.push_str(", a comment");
        }
        out
    }
}

/// `ALTER DATABASE d SET name = value` (or `ALTER ROLE r IN DATABASE d SET ...`) for one
/// stored `name=value` entry; `None` for an entry without `=` (never written by the server).
/// Values are replayed as literals, list-quoted settings element by element (see
/// [`GUC_LIST_QUOTE`]), as pg_dump does.
pub fn setting_statement(database: &str, setting: &Setting) -> Option<String> {
    let (name, value) = setting.entry.split_once('=')?;
    let value = if GUC_LIST_QUOTE.iter().any(|n| n.eq_ignore_ascii_case(name)) {
        let elements = split_guc_list(value);
        if elements.is_empty() {
            // An empty list is stored as `""` and set with an empty string.
            "''".to_string()
        } else {
            elements
                .iter()
                .map(|e| literal(e))
                .collect::<Vec<_>>()
                .join(", ")
        }
    } else {
        literal(value)
    };
    let target = match &setting.role {
        Some(role) => format!(
            "ALTER ROLE {} IN DATABASE {}",
            quote_ident(role),
            quote_ident(database)
        ),
        None => format!("ALTER DATABASE {}", quote_ident(database)),
    };
    Some(format!("{target} SET {} = {value}", quote_ident(name)))
}

/// Splits a stored list setting (`"$user", public`) into its elements: commas outside double
/// quotes separate, surrounding whitespace is dropped, quotes are removed and `""` inside them
/// is one `"`. Case is kept (pg_dump's `SplitGUCList`, unlike `SplitIdentifierString`, does
/// not downcase). A lone `""` is the empty list.
pub fn split_guc_list(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut element = String::new();
        let mut quoted = false;
        if chars.peek() == Some(&'"') {
            quoted = true;
            chars.next();
            while let Some(c) = chars.next() {
                if c == '"' {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        element.push('"');
                    } else {
                        break;
                    }
                } else {
                    element.push(c);
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                element.push(c);
                chars.next();
            }
            let trimmed = element.trim_end().len();
            element.truncate(trimmed);
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if quoted || !element.is_empty() {
            out.push(element);
        }
        if chars.next().is_none() {
            break;
        }
    }
    if out.len() == 1 && out[0].is_empty() {
        return Vec::new();
    }
    out
}

/// What a successful reset did.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The environment.
    pub env: Env,
    /// The database.
    pub database: String,
    /// The verified backup, if one was taken.
    pub backup: Option<PathBuf>,
    /// What was recreated.
    pub recorded: Recorded,
    /// The migration run.
    pub migrated: runner::Summary,
    /// From the first step to the last.
    pub duration: Duration,
}

/// Said at the end of every successful reset: the design document's step 1 stops the runtime
/// and nothing in the reset starts it again.
pub const NOT_RESTARTED: &str = "the runtime was not restarted: start it yourself when ready";

impl Report for Summary {
    fn text(&self) -> String {
        let versions: Vec<&str> = self
            .migrated
            .applied
            .iter()
            .map(|a| a.version.as_str())
            .collect();
        format!(
            "hard-reset: {db} ({env}) was dropped and recreated (steps 1-6 took {took}, answers included)\n  backup: {backup}\n  recreated with {recorded}\n  migrations applied: {n}{list}\n{NOT_RESTARTED}",
            db = self.database,
            env = self.env,
            took = human_duration(self.duration),
            backup = self
                .backup
                .as_ref()
                .map_or("none".to_string(), |p| p.display().to_string()),
            recorded = self.recorded.describe(),
            n = versions.len(),
            list = if versions.is_empty() {
                String::new()
            } else {
                format!(" ({})", versions.join(", "))
            },
        )
    }

    fn json(&self) -> Value {
        json!({
            "ok": true,
            "env": self.env.as_str(),
            "database": self.database,
            "backup": self.backup.as_ref().map(|p| p.display().to_string()),
            "owner": self.recorded.owner,
            "encoding": self.recorded.encoding,
            "lc_collate": self.recorded.collate,
            "lc_ctype": self.recorded.ctype,
            "acl": self.recorded.acl_text,
            "migrations_applied": self.migrated.applied.iter().map(|a| a.version.clone()).collect::<Vec<_>>(),
            "duration_ms": self.duration.as_millis() as u64,
            "runtime_restarted": false,
        })
    }
}

/// The state a failure leaves the database in; part of every step failure's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Nothing was dropped.
    Untouched,
    /// Dropped; the statements that recreate it.
    DroppedNotRecreated(Vec<String>),
    /// Recreated, but privileges, settings or comment were not restored: the statements.
    RecreatedIncomplete(Vec<String>),
    /// Recreated; the migrations did not (all) run.
    RecreatedNotMigrated,
}

/// The names of the steps, for messages.
const STEP_NAMES: [&str; STEPS] = [
    "stop the runtime",
    "sessions still connected",
    "backup",
    "drop the database",
    "create the database",
    "run the migrations",
    "summary",
];

/// The error for a failure at `step` (1-based).
fn step_failed(request: &Request, step: usize, what: &str, state: &State) -> Error {
    let db = request.database();
    let env = request.env;
    let (state_text, next) = match state {
        State::Untouched => (
            "still there, untouched (nothing was dropped)".to_string(),
            "fix the cause and run hard-reset again".to_string(),
        ),
        State::DroppedNotRecreated(statements) => (
            format!(
                "DROPPED, NOT recreated: recreate it as the admin role (psql on database postgres) with:\n      {}",
                statements.join(";\n      ") + ";"
            ),
            format!("then run infra/db/migrate.sh --env {env}"),
        ),
        State::RecreatedIncomplete(statements) => (
            format!(
                "recreated empty, but its privileges/settings were not restored: run as the admin role:\n      {}",
                statements.join(";\n      ") + ";"
            ),
            format!("then run infra/db/migrate.sh --env {env}"),
        ),
        State::RecreatedNotMigrated => (
            "recreated, but not (fully) migrated".to_string(),
            format!("fix the cause and run infra/db/migrate.sh --env {env}"),
        ),
    };
    let mut message = format!(
        "step {step}/{STEPS} ({}) failed: {what}\n  state of {db}: {state_text}\n  next: {next}",
        STEP_NAMES[step - 1]
    );
    if step > 1 {
        message.push_str(
            "\n  the runtime was stopped in step 1 and is still stopped: start it yourself when ready",
        );
    }
    Error::Failed(message)
}

/// An answer that is not the expected one: exit 1, nothing changed.
fn aborted(why: &str) -> Error {
    Error::Failed(format!(
        "aborted: {why}; nothing was changed (the stop command did not run, nothing was dropped)"
    ))
}

/// Runs a reset: connects, shows what will be destroyed, asks, and runs the seven steps.
pub fn run(request: &Request, operator: &mut dyn Operator) -> Result<Summary, Error> {
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

    let mut admin = open_admin(request)?;
    let inventory = {
        let mut client = connect::open(&request.url, request.env, APPLICATION, CONNECT_TIMEOUT)?;
        inventory(request, &mut admin, &mut client)?
        // The environment's session ends here, before anything is terminated or dropped.
    };
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

    let typed = operator
        .ask(&format!("Type the database name ({db}) to confirm"))
        .ok_or_else(|| aborted("no answer (end of input)"))?;
    if typed != db {
        return Err(aborted(&format!(
            "the answer {typed:?} is not the database name {db:?}"
        )));
    }
    if request.env == Env::Prod {
        let typed = operator
            .ask(&format!("Type '{PROD_PHRASE}' to confirm"))
            .ok_or_else(|| aborted("no answer (end of input)"))?;
        if typed != PROD_PHRASE {
            return Err(aborted(&format!(
                "the answer {typed:?} is not the phrase {PROD_PHRASE:?}"
            )));
        }
    }

    let started = Instant::now();
    let announce = |operator: &mut dyn Operator, step: usize, what: &str| {
        operator.say(&format!("step {step}/{STEPS}: {what}"));
    };

    // 1. Stop the runtime.
    announce(
        operator,
        1,
        &format!("running the stop command: sh -c {:?}", request.stop_command),
    );
    let took = run_stop_command(&request.stop_command)
        .map_err(|e| step_failed(request, 1, &e, &State::Untouched))?;
    operator.say(&format!(
        "  the stop command succeeded ({})",
        human_duration(took)
    ));

    // 2. Sessions still connected.
    announce(
        operator,
        2,
        &format!("checking for sessions still connected to {db}"),
    );
    handle_sessions(request, &mut admin, operator)?;

    // 3. Backup.
    let backup = match &request.backup {
        Backup::To(file) => {
            announce(
                operator,
                3,
                &format!("backing up {db} with pg_dump -Fc to {}", file.display()),
            );
            let entries = take_backup(request, file, operator)
                .map_err(|e| step_failed(request, 3, &e, &State::Untouched))?;
            operator.say(&format!(
                "  backup verified: pg_restore -l lists {entries} entries"
            ));
            Some(file.clone())
        }
        Backup::Declined => {
            announce(operator, 3, "backup: skipped (--no-backup)");
            None
        }
        Backup::NotAsked => {
            announce(operator, 3, "backup: skipped (no --backup FILE given)");
            None
        }
    };

    // 4. Record, then drop.
    announce(
        operator,
        4,
        &format!("recording the properties of {db}, then dropping it"),
    );
    let recorded = record(&mut admin, db).map_err(|e| {
        step_failed(
            request,
            4,
            &format!("reading the database's properties: {}", describe_pg(&e)),
            &State::Untouched,
        )
    })?;
    operator.say(&format!("  recorded: {}", recorded.describe()));
    if let Err(e) = admin.batch_execute(&format!("DROP DATABASE {}", quote_ident(db))) {
        let mut what = format!("DROP DATABASE: {}", describe_pg(&e));
        if e.code() == Some(&postgres::error::SqlState::OBJECT_IN_USE) {
            what.push_str("\n  a session connected after step 2 (is the runtime restarting itself, or another client reconnecting?): make sure it stays stopped");
        }
        return Err(step_failed(request, 4, &what, &State::Untouched));
    }
    operator.say(&format!("  dropped {db}"));

    // 5. Create and restore.
    announce(
        operator,
        5,
        &format!("creating {db} again with the same properties"),
    );
    let create = recorded.create_statement();
    let restore = recorded.restore_statements();
    if let Err(e) = admin.batch_execute(&create) {
        let mut statements = vec![create.clone()];
        statements.extend(restore.iter().cloned());
        return Err(step_failed(
            request,
            5,
            &format!("CREATE DATABASE: {}", describe_pg(&e)),
            &State::DroppedNotRecreated(statements),
        ));
    }
    if !restore.is_empty() {
        let batch = format!("BEGIN;\n{};\nCOMMIT", restore.join(";\n"));
        if let Err(e) = admin.batch_execute(&batch) {
            let _ = admin.batch_execute("ROLLBACK");
            return Err(step_failed(
                request,
                5,
                &format!(
                    "restoring privileges, settings and comment: {}",
                    describe_pg(&e)
                ),
                &State::RecreatedIncomplete(restore),
            ));
        }
    }
    match check_recreated(&mut admin, &recorded) {
        Ok(None) => {}
        Ok(Some(difference)) => {
            return Err(step_failed(
                request,
                5,
                &format!("the new database differs from the old one: {difference}"),
                &State::RecreatedIncomplete(restore),
            ))
        }
        Err(e) => {
            return Err(step_failed(
                request,
                5,
                &format!("checking the new database: {}", describe_pg(&e)),
                &State::RecreatedIncomplete(restore),
            ))
        }
    }
    operator.say(&format!(
        "  created {db} and checked it against the recorded properties: identical"
    ));
    drop(admin);

    // 6. Migrations, with the engine `migrate` uses.
    announce(
        operator,
        6,
        &format!(
            "running {} migration{} from {} as {}",
            request.files.len(),
            if request.files.len() == 1 { "" } else { "s" },
            request.dir.display(),
            request.url.user()
        ),
    );
    let migrated = runner::migrate(
        &request.url,
        request.env,
        &request.files,
        &runner::Options::default(),
        &mut |line| operator.say(&format!("  {line}")),
    )
    .map_err(|e| step_failed(request, 6, &e.to_string(), &State::RecreatedNotMigrated))?;

    // 7. Summary (printed by the binary).
    announce(operator, 7, "summary");
    Ok(Summary {
        env: request.env,
        database: db.to_string(),
        backup,
        recorded,
        migrated,
        duration: started.elapsed(),
    })
}

/// Connects as the admin and checks it can do the job: it is in `postgres`, the target exists,
/// and it is a superuser, or has CREATEDB and is a member of the owner (to drop and to create
/// with that owner). Exit 2 otherwise, exit 3 when unreachable.
fn open_admin(request: &Request) -> Result<Client, Error> {
    let db = request.database();
    let mut admin = connect::connect(&request.admin, APPLICATION, CONNECT_TIMEOUT)?;
    let sql = format!(
        "SELECT current_database(), current_user, r.rolsuper, r.rolcreatedb, d.oid IS NOT NULL, \
                pg_catalog.pg_get_userbyid(d.datdba), \
                CASE WHEN d.oid IS NULL THEN NULL ELSE pg_catalog.pg_has_role(current_user, d.datdba, 'MEMBER') END \
         FROM pg_catalog.pg_roles r LEFT JOIN pg_catalog.pg_database d ON d.datname = {} \
         WHERE r.rolname = current_user",
        literal(db)
    );
    let messages = admin
        .simple_query(&sql)
        .map_err(|e| connect::failed(&request.admin, "checking the admin connection", &e))?;
    let row = rows(&messages).into_iter().next().unwrap_or_default();
    let field = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
    if field(0) != crate::config::ADMIN_DATABASE {
        return Err(Error::Refused(format!(
            "the admin connection ({}) landed in database {:?}, not postgres; nothing was changed",
            request.admin.redacted(),
            field(0)
        )));
    }
    if field(4) != "t" {
        return Err(Error::Refused(format!(
            "the database {db} does not exist on this instance: there is nothing to reset; create it with infra/db/provision.sh; nothing was changed"
        )));
    }
    let superuser = field(2) == "t";
    let creates_as_owner = field(3) == "t" && field(6) == "t";
    if !(superuser || creates_as_owner) {
        return Err(Error::Refused(format!(
            "the admin role {:?} ({}) can neither drop nor recreate {db}: it must be a superuser, or have CREATEDB and be a member of the owner {:?}; nothing was changed",
            field(1),
            request.admin.redacted(),
            field(5)
        )));
    }
    Ok(admin)
}

/// Reads what is shown before the confirmation. Tables, size and migrations come from the
/// environment's session (it sees its own database); sessions from the admin's, which may see
/// every client's details. The environment's own session is left out of the list.
fn inventory(request: &Request, admin: &mut Client, env: &mut Client) -> Result<Inventory, Error> {
    let db = request.database();
    let failed = |what: &str, e: &postgres::Error| connect::failed(&request.url, what, e);
    // Bounded: the runtime is still running and may hold locks.
    env.batch_execute("SET statement_timeout = '10s'; SET lock_timeout = '2s'")
        .map_err(|e| failed("setting timeouts", &e))?;
    let messages = env
        .simple_query(
            "SELECT pg_catalog.pg_size_pretty(pg_catalog.pg_database_size(current_database())), \
                    pg_catalog.pg_get_userbyid(d.datdba), pg_catalog.pg_backend_pid() \
             FROM pg_catalog.pg_database d WHERE d.datname = current_database()",
        )
        .map_err(|e| failed("reading the database's size", &e))?;
    let row = rows(&messages).into_iter().next().unwrap_or_default();
    let field = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
    let (size, owner) = (field(0), field(1));
    let own_pid: i32 = field(2).parse().unwrap_or(0);

    let messages = env
        .simple_query(
            "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname), c.relkind::text, \
                    c.reltuples::bigint, pg_catalog.pg_relation_size(c.oid), \
                    pg_catalog.has_table_privilege(c.oid, 'SELECT') \
             FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p', 'm') \
               AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
               AND n.nspname !~ '^pg_(toast|temp_)' \
             ORDER BY n.nspname, c.relname",
        )
        .map_err(|e| failed("listing the tables", &e))?;
    let mut tables = Vec::new();
    for row in rows(&messages) {
        let field = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
        let name = field(0);
        let estimate: i64 = field(2).parse().unwrap_or(-1);
        let bytes: i64 = field(3).parse().unwrap_or(i64::MAX);
        let readable = field(4) == "t" && field(1) == "r";
        let mut counted = None;
        if readable && bytes <= EXACT_COUNT_MAX_BYTES && tables.len() < MAX_TABLES_SHOWN {
            // Outside a transaction, so a failure (a lock held by the runtime) spoils nothing.
            if let Ok(m) = env.simple_query(&format!("SELECT count(*) FROM {name}")) {
                counted = rows(&m)
                    .first()
                    .and_then(|r| r.first().cloned().flatten())
                    .and_then(|n| n.parse().ok());
            }
        }
        let rows = match (counted, estimate) {
            (Some(n), _) => Rows::Exact(n),
            (None, n) if n >= 0 => Rows::Estimate(n),
            _ => Rows::Unknown,
        };
        tables.push(Table { name, rows });
    }

    let shape = tracking::shape(env).map_err(|e| failed("reading the tracking table", &e))?;
    let migrations = if shape == Shape::Missing {
        None
    } else {
        let applied =
            tracking::read(env, shape).map_err(|e| failed("reading the tracking table", &e))?;
        Some(AppliedMigrations {
            count: applied.len(),
            latest: applied.last().map(|a| a.version.clone()),
            latest_applied_at: applied.last().and_then(|a| a.applied_at.clone()),
        })
    };

    let sessions = sessions(admin, db, &[own_pid])
        .map_err(|e| connect::failed(&request.admin, "listing the sessions", &e))?;
    Ok(Inventory {
        database: db.to_string(),
        size,
        owner,
        tables,
        migrations,
        sessions,
    })
}

/// The client sessions connected to `db`, except `ours` (and the caller's own backend).
fn sessions(admin: &mut Client, db: &str, ours: &[i32]) -> Result<Vec<Session>, postgres::Error> {
    let except: Vec<String> = ours.iter().map(i32::to_string).collect();
    let except = if except.is_empty() {
        "0".to_string()
    } else {
        except.join(", ")
    };
    let messages = admin.simple_query(&format!(
        "SELECT a.pid, coalesce(a.usename::text, ''), coalesce(a.application_name, ''), \
                CASE WHEN a.client_addr IS NOT NULL THEN pg_catalog.host(a.client_addr) \
                     WHEN a.client_port = -1 THEN 'local socket' ELSE 'hidden' END, \
                coalesce(date_trunc('second', a.backend_start)::text, 'unknown'), \
                coalesce(a.state, 'unknown') \
         FROM pg_catalog.pg_stat_activity a \
         WHERE a.datname = {} AND a.backend_type = 'client backend' \
           AND a.pid <> pg_catalog.pg_backend_pid() AND a.pid NOT IN ({except}) \
         ORDER BY a.pid",
        literal(db)
    ))?;
    Ok(rows(&messages)
        .into_iter()
        .map(|row| {
            let field = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
            Session {
                pid: field(0).parse().unwrap_or(0),
                user: field(1),
                application: field(2),
                client: field(3),
                since: field(4),
                state: field(5),
            }
        })
        .collect())
}

/// Runs the stop command with `sh -c`. Its output goes to stderr (stdout may be a JSON
/// document), its standard input is the terminal (it may ask for a sudo password).
fn run_stop_command(command: &str) -> Result<Duration, String> {
    let started = Instant::now();
    let status = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdout(stderr_for_child())
        .status()
        .map_err(|e| format!("cannot run sh -c {command:?}: {e}"))?;
    if !status.success() {
        return Err(format!(
            "the stop command sh -c {command:?} failed ({status}); the runtime may still be running"
        ));
    }
    Ok(started.elapsed())
}

/// Our stderr, for a child's stdout; falls back to inheriting stdout if it cannot be cloned.
fn stderr_for_child() -> Stdio {
    std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::inherit())
}

/// Step 2: waits briefly for sessions to end by themselves, then lists the rest and asks; only
/// `yes` terminates them. Waits (bounded) until they are gone.
fn handle_sessions(
    request: &Request,
    admin: &mut Client,
    operator: &mut dyn Operator,
) -> Result<(), Error> {
    let db = request.database();
    let list = |admin: &mut Client| {
        sessions(admin, db, &[]).map_err(|e| {
            step_failed(
                request,
                2,
                &format!("listing the sessions: {}", describe_pg(&e)),
                &State::Untouched,
            )
        })
    };
    let deadline = Instant::now() + SESSIONS_GRACE;
    let mut remaining = list(admin)?;
    while !remaining.is_empty() && Instant::now() < deadline {
        std::thread::sleep(POLL);
        remaining = list(admin)?;
    }
    if remaining.is_empty() {
        operator.say(&format!("  no other session is connected to {db}"));
        return Ok(());
    }
    operator.say(&format!(
        "  {} session{} still connected to {db}:",
        remaining.len(),
        if remaining.len() == 1 { " is" } else { "s are" }
    ));
    for s in &remaining {
        operator.say(&format!("    {s}"));
    }
    let answer = operator.ask(&format!(
        "Type {TERMINATE_ANSWER} to terminate {} (pg_terminate_backend), anything else aborts",
        if remaining.len() == 1 {
            "this session".to_string()
        } else {
            format!("these {} sessions", remaining.len())
        }
    ));
    if answer.as_deref() != Some(TERMINATE_ANSWER) {
        let why = match answer {
            None => "no answer (end of input)".to_string(),
            Some(a) => format!("the answer was {a:?}, not {TERMINATE_ANSWER:?}"),
        };
        return Err(step_failed(
            request,
            2,
            &format!("aborted: the sessions were not terminated ({why})"),
            &State::Untouched,
        ));
    }
    let pids: Vec<String> = remaining.iter().map(|s| s.pid.to_string()).collect();
    let messages = admin
        .simple_query(&format!(
            "SELECT pid, pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.unnest(ARRAY[{}]::int[]) AS pid",
            pids.join(", ")
        ))
        .map_err(|e| {
            step_failed(
                request,
                2,
                &format!("pg_terminate_backend: {}", describe_pg(&e)),
                &State::Untouched,
            )
        })?;
    let refused: Vec<String> = rows(&messages)
        .into_iter()
        .filter(|r| r.get(1).cloned().flatten().as_deref() != Some("t"))
        .filter_map(|r| r.first().cloned().flatten())
        .collect();
    // `false` also means the session had already gone; only those still there count.
    let deadline = Instant::now() + TERMINATE_WAIT;
    loop {
        let still: Vec<Session> = list(admin)?
            .into_iter()
            .filter(|s| pids.contains(&s.pid.to_string()))
            .collect();
        if still.is_empty() {
            operator.say(&format!("  terminated {} session(s)", pids.len()));
            return Ok(());
        }
        if Instant::now() >= deadline {
            let hint = if refused.is_empty() {
                String::new()
            } else {
                format!(
                    " (pg_terminate_backend was refused for pid {}: the admin role needs to be a superuser or a member of the sessions' roles)",
                    refused.join(", ")
                )
            };
            return Err(step_failed(
                request,
                2,
                &format!(
                    "{} session(s) still connected {} after pg_terminate_backend{hint}: {}",
                    still.len(),
                    human_duration(TERMINATE_WAIT),
                    still
                        .iter()
                        .map(|s| s.pid.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                &State::Untouched,
            ));
        }
        std::thread::sleep(POLL);
    }
}

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

/// `pg_dump -Fc --no-password -f FILE` with the credentials in its environment only.
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
    command.envs(set);
    command
}

/// Step 3: dumps into a new file (created here, mode 0600: it holds the data), then lists it
/// with `pg_restore -l` and returns the number of entries. On failure the partial file is
/// removed: it was created by this run and is not a backup.
fn take_backup(
    request: &Request,
    file: &Path,
    operator: &mut dyn Operator,
) -> Result<usize, String> {
    let pg_dump = find_program("pg_dump")?;
    let pg_restore = find_program("pg_restore")?;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .map_err(|e| format!("cannot create the backup file {}: {e}", file.display()))?;
    let result = (|| {
        operator.say(&format!(
            "  running {} (the password is passed in its environment, not on its command line)",
            pg_dump.display()
        ));
        let started = Instant::now();
        let status = pg_dump_command(&pg_dump, &request.url, file)
            .stdin(Stdio::null())
            .stdout(stderr_for_child())
            .status()
            .map_err(|e| format!("cannot run {}: {e}", pg_dump.display()))?;
        if !status.success() {
            return Err(format!("pg_dump failed ({status}); see its message above"));
        }
        let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
        operator.say(&format!(
            "  pg_dump wrote {size} bytes in {}",
            human_duration(started.elapsed())
        ));
        let listed = Command::new(&pg_restore)
            .arg("--list")
            .arg(file)
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
                file.display(),
                listed.status
            ));
        }
        Ok(entries)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(file);
    }
    result
}

/// The query that reads what [`Recorded`] holds. `to_jsonb` of the catalogue row reads
/// columns that only some versions have (`datlocprovider` 15+, `daticulocale` 15-16,
/// `datlocale` 17+, `daticurules` 16+) without failing on the others.
fn record_query(db: &str) -> String {
    format!(
        "SELECT pg_catalog.pg_get_userbyid(d.datdba), pg_catalog.pg_encoding_to_char(d.encoding), \
                d.datcollate::text, d.datctype::text, \
                pg_catalog.to_jsonb(d) ->> 'datlocprovider', \
                coalesce(pg_catalog.to_jsonb(d) ->> 'datlocale', pg_catalog.to_jsonb(d) ->> 'daticulocale'), \
                pg_catalog.to_jsonb(d) ->> 'daticurules', \
                d.datconnlimit, t.spcname, d.datacl::text, \
                pg_catalog.shobj_description(d.oid, 'pg_database') \
         FROM pg_catalog.pg_database d JOIN pg_catalog.pg_tablespace t ON t.oid = d.dattablespace \
         WHERE d.datname = {db};\n\
         SELECT pg_catalog.pg_get_userbyid(a.grantor), \
                CASE WHEN a.grantee = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(a.grantee) END, \
                a.privilege_type, a.is_grantable \
         FROM pg_catalog.pg_database d, pg_catalog.aclexplode(d.datacl) WITH ORDINALITY AS a \
         WHERE d.datname = {db} ORDER BY a.ordinality;\n\
         SELECT CASE WHEN s.setrole = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(s.setrole) END, c.entry \
         FROM pg_catalog.pg_db_role_setting s JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase, \
              pg_catalog.unnest(s.setconfig) WITH ORDINALITY AS c(entry, n) \
         WHERE d.datname = {db} ORDER BY s.setrole, c.n",
        db = literal(db)
    )
}

/// Splits the messages of a multi-statement simple query into one row list per statement.
fn result_sets(messages: &[postgres::SimpleQueryMessage]) -> Vec<Vec<Vec<Option<String>>>> {
    let mut sets = vec![Vec::new()];
    for message in messages {
        match message {
            postgres::SimpleQueryMessage::Row(_) => {
                let row = rows(std::slice::from_ref(message)).remove(0);
                sets.last_mut().expect("never empty").push(row);
            }
            postgres::SimpleQueryMessage::CommandComplete(_) => sets.push(Vec::new()),
            _ => {}
        }
    }
    sets
}

/// Reads the [`Recorded`] properties of `db` in one round trip.
fn record(admin: &mut Client, db: &str) -> Result<Recorded, postgres::Error> {
    let messages = admin.simple_query(&record_query(db))?;
    Ok(recorded_from(db, &result_sets(&messages)))
}

/// Builds a [`Recorded`] from the three result sets of [`record_query`].
fn recorded_from(db: &str, sets: &[Vec<Vec<Option<String>>>]) -> Recorded {
    let empty = Vec::new();
    let main = sets.first().and_then(|s| s.first()).unwrap_or(&empty);
    let field = |i: usize| main.get(i).cloned().flatten();
    let acl_text = field(9);
    let acl = acl_text.as_ref().map(|_| {
        // Consecutive rows of one aclitem share grantor, grantee and grant option.
        let mut grants: Vec<Grant> = Vec::new();
        for row in sets.get(1).map(Vec::as_slice).unwrap_or_default() {
            let get = |i: usize| row.get(i).cloned().flatten();
            let grantor = get(0).unwrap_or_default();
            let grantee = get(1);
            let privilege = get(2).unwrap_or_default();
            let grantable = get(3).as_deref() == Some("t");
            match grants.last_mut() {
                Some(last)
                    if last.grantor == grantor
                        && last.grantee == grantee
                        && last.grantable == grantable =>
                {
                    last.privileges.push(privilege)
                }
                _ => grants.push(Grant {
                    grantor,
                    grantee,
                    privileges: vec![privilege],
                    grantable,
                }),
            }
        }
        grants
    });
    let settings = sets
        .get(2)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|row| Setting {
            role: row.first().cloned().flatten(),
            entry: row.get(1).cloned().flatten().unwrap_or_default(),
        })
        .collect();
    Recorded {
        database: db.to_string(),
        owner: field(0).unwrap_or_default(),
        encoding: field(1).unwrap_or_default(),
        collate: field(2).unwrap_or_default(),
        ctype: field(3).unwrap_or_default(),
        locale_provider: field(4),
        locale: field(5),
        icu_rules: field(6),
        connection_limit: field(7).and_then(|n| n.parse().ok()).unwrap_or(-1),
        tablespace: field(8).unwrap_or_else(|| "pg_default".into()),
        acl_text,
        acl,
        settings,
        comment: field(10),
    }
}

/// Reads the new database's properties and says how they differ from the recorded ones,
/// if they do: the promise is "the same", so it is checked, not assumed.
fn check_recreated(
    admin: &mut Client,
    before: &Recorded,
) -> Result<Option<String>, postgres::Error> {
    let after = record(admin, &before.database)?;
    let mut differences = Vec::new();
    let mut compare = |what: &str, a: &dyn fmt::Debug, b: &dyn fmt::Debug| {
        let (a, b) = (format!("{a:?}"), format!("{b:?}"));
        if a != b {
            differences.push(format!("{what} was {a}, is {b}"));
        }
    };
    compare("owner", &before.owner, &after.owner);
    compare("encoding", &before.encoding, &after.encoding);
    compare("LC_COLLATE", &before.collate, &after.collate);
    compare("LC_CTYPE", &before.ctype, &after.ctype);
    compare(
        "locale provider",
        &before.locale_provider,
        &after.locale_provider,
    );
    compare("locale", &before.locale, &after.locale);
    compare("privileges", &before.acl_text, &after.acl_text);
    compare(
        "connection limit",
        &before.connection_limit,
        &after.connection_limit,
    );
    compare("tablespace", &before.tablespace, &after.tablespace);
    compare("settings", &before.settings, &after.settings);
    compare("comment", &before.comment, &after.comment);
    Ok((!differences.is_empty()).then(|| differences.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev_url() -> DbUrl {
        DbUrl::for_env(
            "postgres://dreichor_dev:Sentinel-PW@localhost:5433/dreichor_dev",
            Env::Dev,
        )
        .unwrap()
    }

    fn prod_url() -> DbUrl {
        DbUrl::for_env(
            "postgres://dreichor_prod:Sentinel-PW@localhost:5433/dreichor_prod",
            Env::Prod,
        )
        .unwrap()
    }

    fn admin_url(port: u16) -> DbUrl {
        DbUrl::for_admin(&format!(
            "postgres://postgres:Admin-Sentinel@127.0.0.1:{port}/postgres"
        ))
        .unwrap()
    }

    fn request(env: Env, url: DbUrl, admin: DbUrl, backup: Backup) -> Result<Request, Error> {
        Request::new(
            env,
            url,
            admin,
            (Vec::new(), PathBuf::from("infra/db/migrations")),
            "systemctl stop dreichor-runtime".into(),
            backup,
        )
    }

    fn recorded() -> Recorded {
        Recorded {
            database: "dreichor_dev".into(),
            owner: "dreichor_dev".into(),
            encoding: "UTF8".into(),
            collate: "C.UTF-8".into(),
            ctype: "C.UTF-8".into(),
            locale_provider: Some("c".into()),
            locale: None,
            icu_rules: None,
            connection_limit: -1,
            tablespace: "pg_default".into(),
            acl_text: None,
            acl: None,
            settings: Vec::new(),
            comment: None,
        }
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
            assert_eq!(err.exit_code(), crate::ExitCode::Invalid, "{err}");
            assert!(err.to_string().contains("never automated"), "{err}");
        }
    }

    #[test]
    fn no_terminal_is_refused() {
        let err = refuse_unless_manual(false, true, None, None).unwrap_err();
        assert_eq!(err.exit_code(), crate::ExitCode::Invalid);
        assert!(err.to_string().contains("not a terminal"), "{err}");
        assert!(refuse_unless_manual(true, false, None, None).is_err());
    }

    #[test]
    fn the_admin_url_must_be_on_the_same_port() {
        let err = request(Env::Dev, dev_url(), admin_url(5432), Backup::NotAsked).unwrap_err();
        assert_eq!(err.exit_code(), crate::ExitCode::Invalid);
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
        assert_eq!(err.exit_code(), crate::ExitCode::Invalid);
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
        assert_eq!(err.exit_code(), crate::ExitCode::Invalid);
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
        assert_eq!(err.exit_code(), crate::ExitCode::Invalid);
    }

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
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("dreichor_dev"), "\"dreichor_dev\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn the_create_statement_keeps_owner_encoding_and_locale() {
        let r = recorded();
        assert_eq!(
            r.create_statement(),
            "CREATE DATABASE \"dreichor_dev\" WITH OWNER = \"dreichor_dev\" TEMPLATE = template0 ENCODING = 'UTF8' LC_COLLATE = 'C.UTF-8' LC_CTYPE = 'C.UTF-8' LOCALE_PROVIDER = libc TABLESPACE = \"pg_default\" CONNECTION LIMIT = -1"
        );
        let icu = Recorded {
            locale_provider: Some("i".into()),
            locale: Some("de-DE".into()),
            connection_limit: 20,
            ..recorded()
        };
        let sql = icu.create_statement();
        assert!(
            sql.contains("LOCALE_PROVIDER = icu ICU_LOCALE = 'de-DE'"),
            "{sql}"
        );
        assert!(sql.ends_with("CONNECTION LIMIT = 20"), "{sql}");
        // Before PostgreSQL 15 there is no provider column and no clause.
        let old = Recorded {
            locale_provider: None,
            ..recorded()
        };
        assert!(!old.create_statement().contains("LOCALE_PROVIDER"));
    }

    #[test]
    fn default_privileges_need_no_statement() {
        assert!(recorded().restore_statements().is_empty());
    }

    #[test]
    fn recorded_privileges_are_replayed_in_order_by_their_grantor() {
        let r = Recorded {
            acl_text: Some(
                "{dreichor_dev=CTc/dreichor_dev,reader=c/dreichor_dev,=T/dreichor_dev,x=c*/admin}"
                    .into(),
            ),
            acl: Some(vec![
                Grant {
                    grantor: "dreichor_dev".into(),
                    grantee: Some("dreichor_dev".into()),
                    privileges: vec!["CREATE".into(), "TEMPORARY".into(), "CONNECT".into()],
                    grantable: false,
                },
                Grant {
                    grantor: "dreichor_dev".into(),
                    grantee: Some("reader".into()),
                    privileges: vec!["CONNECT".into()],
                    grantable: false,
                },
                Grant {
                    grantor: "dreichor_dev".into(),
                    grantee: None,
                    privileges: vec!["TEMPORARY".into()],
                    grantable: false,
                },
                Grant {
                    grantor: "admin".into(),
                    grantee: Some("x".into()),
                    privileges: vec!["CONNECT".into()],
                    grantable: true,
                },
            ]),
            ..recorded()
        };
        assert_eq!(
            r.restore_statements(),
            [
                "REVOKE ALL ON DATABASE \"dreichor_dev\" FROM PUBLIC",
                "REVOKE ALL ON DATABASE \"dreichor_dev\" FROM \"dreichor_dev\"",
                "GRANT CREATE, TEMPORARY, CONNECT ON DATABASE \"dreichor_dev\" TO \"dreichor_dev\"",
                "GRANT CONNECT ON DATABASE \"dreichor_dev\" TO \"reader\"",
                "GRANT TEMPORARY ON DATABASE \"dreichor_dev\" TO PUBLIC",
                "SET ROLE \"admin\"",
                "GRANT CONNECT ON DATABASE \"dreichor_dev\" TO \"x\" WITH GRANT OPTION",
                "RESET ROLE",
            ]
        );
    }

    #[test]
    fn aclexplode_rows_are_grouped_into_one_grant_per_item() {
        let s = |v: &str| Some(v.to_string());
        let sets = vec![
            vec![vec![
                s("dreichor_dev"),
                s("UTF8"),
                s("C"),
                s("C"),
                s("c"),
                None,
                None,
                s("-1"),
                s("pg_default"),
                s("{dreichor_dev=CTc/dreichor_dev,=c/dreichor_dev}"),
                s("the dev database"),
            ]],
            vec![
                vec![s("dreichor_dev"), s("dreichor_dev"), s("CREATE"), s("f")],
                vec![s("dreichor_dev"), s("dreichor_dev"), s("TEMPORARY"), s("f")],
                vec![s("dreichor_dev"), s("dreichor_dev"), s("CONNECT"), s("f")],
                vec![s("dreichor_dev"), None, s("CONNECT"), s("f")],
            ],
            vec![vec![None, s("search_path=\"$user\", public")]],
        ];
        let r = recorded_from("dreichor_dev", &sets);
        assert_eq!(r.acl.as_ref().unwrap().len(), 2);
        assert_eq!(r.acl.as_ref().unwrap()[0].privileges.len(), 3);
        assert_eq!(r.acl.as_ref().unwrap()[1].grantee, None);
        assert_eq!(r.comment.as_deref(), Some("the dev database"));
        assert_eq!(r.settings.len(), 1);
        assert_eq!(r.connection_limit, -1);
        let statements = r.restore_statements();
        assert!(statements.contains(
            &"ALTER DATABASE \"dreichor_dev\" SET \"search_path\" = '$user', 'public'".to_string()
        ));
        assert_eq!(
            statements.last().unwrap(),
            "COMMENT ON DATABASE \"dreichor_dev\" IS 'the dev database'"
        );
    }

    #[test]
    fn guc_lists_split_like_pg_dump() {
        assert_eq!(split_guc_list("\"$user\", public"), ["$user", "public"]);
        assert_eq!(split_guc_list("a,b ,  c"), ["a", "b", "c"]);
        assert_eq!(
            split_guc_list("\"with \"\"quote\"\", comma\",x"),
            ["with \"quote\", comma", "x"]
        );
        assert_eq!(split_guc_list("MixedCase"), ["MixedCase"]);
        assert!(split_guc_list("\"\"").is_empty());
        assert!(split_guc_list("").is_empty());
    }

    #[test]
    fn settings_are_replayed_as_literals() {
        let setting = |role: Option<&str>, entry: &str| Setting {
            role: role.map(str::to_string),
            entry: entry.into(),
        };
        assert_eq!(
            setting_statement("dreichor_dev", &setting(None, "TimeZone=Europe/Berlin")).unwrap(),
            "ALTER DATABASE \"dreichor_dev\" SET \"TimeZone\" = 'Europe/Berlin'"
        );
        assert_eq!(
            setting_statement("dreichor_dev", &setting(Some("app"), "work_mem=64MB")).unwrap(),
            "ALTER ROLE \"app\" IN DATABASE \"dreichor_dev\" SET \"work_mem\" = '64MB'"
        );
        assert_eq!(
            setting_statement("d", &setting(None, "DateStyle=ISO, MDY")).unwrap(),
            "ALTER DATABASE \"d\" SET \"DateStyle\" = 'ISO, MDY'"
        );
        assert_eq!(
            setting_statement("d", &setting(None, "search_path=\"\"")).unwrap(),
            "ALTER DATABASE \"d\" SET \"search_path\" = ''"
        );
        assert_eq!(
            setting_statement("d", &setting(None, "x.y=it's")).unwrap(),
            "ALTER DATABASE \"d\" SET \"x.y\" = 'it''s'"
        );
        assert!(setting_statement("d", &setting(None, "garbage")).is_none());
    }

    #[test]
    fn every_failure_says_the_step_and_the_state() {
        let r = request(Env::Dev, dev_url(), admin_url(5433), Backup::NotAsked).unwrap();
        let text = step_failed(&r, 1, "boom", &State::Untouched).to_string();
        assert!(
            text.starts_with("step 1/7 (stop the runtime) failed: boom"),
            "{text}"
        );
        assert!(text.contains("still there, untouched"), "{text}");
        assert!(!text.contains("runtime was stopped"), "{text}");

        let text = step_failed(
            &r,
            5,
            "no space",
            &State::DroppedNotRecreated(vec![recorded().create_statement()]),
        )
        .to_string();
        assert!(text.contains("DROPPED, NOT recreated"), "{text}");
        assert!(text.contains("CREATE DATABASE \"dreichor_dev\""), "{text}");
        assert!(text.contains("infra/db/migrate.sh --env dev"), "{text}");
        assert!(text.contains("start it yourself"), "{text}");

        let text = step_failed(&r, 6, "bad sql", &State::RecreatedNotMigrated).to_string();
        assert!(
            text.contains("recreated, but not (fully) migrated"),
            "{text}"
        );
        assert!(text.contains("run infra/db/migrate.sh --env dev"), "{text}");
        assert_eq!(
            step_failed(&r, 6, "x", &State::RecreatedNotMigrated).exit_code(),
            crate::ExitCode::Failed
        );
    }

    #[test]
    fn the_inventory_lists_tables_migrations_and_sessions() {
        let inventory = Inventory {
            database: "dreichor_dev".into(),
            size: "7561 kB".into(),
            owner: "dreichor_dev".into(),
            tables: vec![
                Table {
                    name: "public.dreichor_schema_migrations".into(),
                    rows: Rows::Exact(1),
                },
                Table {
                    name: "public.big".into(),
                    rows: Rows::Estimate(120_000),
                },
            ],
            migrations: Some(AppliedMigrations {
                count: 1,
                latest: Some("001_init".into()),
                latest_applied_at: Some("2026-01-01".into()),
            }),
            sessions: vec![Session {
                pid: 42,
                user: "dreichor_dev".into(),
                application: "runtime".into(),
                client: "127.0.0.1".into(),
                since: "2026-01-01 10:00:00+00".into(),
                state: "idle".into(),
            }],
        };
        let text = inventory.describe().join("\n");
        assert!(text.contains("size:      7561 kB"), "{text}");
        assert!(
            text.contains("public.dreichor_schema_migrations  1 row"),
            "{text}"
        );
        assert!(text.contains("about 120000 rows (estimate)"), "{text}");
        assert!(
            text.contains("migrations applied: 1, latest 001_init"),
            "{text}"
        );
        assert!(
            text.contains("pid 42  user dreichor_dev  application \"runtime\""),
            "{text}"
        );
    }
}
