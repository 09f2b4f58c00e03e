//! A project as the tools see it: a cluster with both environments provisioned
//! ([`Cluster::provision_envs`]) and a temporary migrations directory. The fixture of every
//! case that runs `migrate`, `schema-check` or `hard-reset` against a database.
//!
//! The tools insist on the real database names `dreichor_dev` and `dreichor_prod`, so each
//! [`Project`] starts a cluster of its own ([`Cluster::start`], about 0.15 s) rather than a
//! database in the shared one. Its helpers do what every such case does:
//!
//! - run a tool as the deploy scripts run it: `DATABASE_URL` of the environment's role,
//!   `--env` and `--dir` ([`Project::tool`], [`Project::tool_in`], [`Project::hard_reset`]);
//! - read `dreichor_dev` as the superuser, over the socket, for assertions
//!   ([`Project::query`], [`Project::scalar`], [`Project::versions`], ...);
//! - log in as the dev role over TCP with its password, as the runtime does
//!   ([`Project::connect_as_dev`]), or as an attacker holding its rights would
//!   ([`Project::plant_decoy_operator`]).
//!
//! What only one case file needs stays in that file, as free functions or as methods of a
//! small extension trait on `Project`.

use std::path::Path;
use std::time::{Duration, Instant};

use postgres::Client;

use super::cluster::{connect, describe_error, Envs};
use super::tool::Running;
use super::{Cluster, Run, Tool};

/// The tracking table every tool reads, fully qualified as the tools name it.
const TRACKING_TABLE: &str = "public.dreichor_schema_migrations";

/// A cluster of its own with both environments provisioned, and an empty migrations
/// directory. Dropping it stops the cluster and removes both directories.
#[derive(Debug)]
pub struct Project {
    /// The project's cluster (for superuser SQL elsewhere than `dreichor_dev`, `stop`, URLs).
    pub cluster: Cluster,
    /// URLs and passwords of the two environments' roles.
    pub envs: Envs,
    dir: tempfile::TempDir,
}

impl Project {
    /// Starts a cluster, provisions `dreichor_dev` and `dreichor_prod`, and creates the
    /// migrations directory.
    ///
    /// ```ignore
    /// let p = Project::start();
    /// p.write("001_a.sql", "CREATE TABLE a (id int);\n");
    /// p.tool(Tool::Migrate, &[]).run().assert_code(0);
    /// assert_eq!(p.versions(), ["001_a"]);
    /// ```
    pub fn start() -> Project {
        let cluster = Cluster::start();
        let envs = cluster.provision_envs();
        let dir = tempfile::tempdir().expect("a temporary migrations directory");
        Project { cluster, envs, dir }
    }

    /// The migrations directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Writes (or overwrites) the migration file `name`.
    pub fn write(&self, name: &str, content: impl AsRef<[u8]>) {
        std::fs::write(self.dir().join(name), content).expect("writing a migration file");
    }

    /// Removes the migration file `name`.
    pub fn remove(&self, name: &str) {
        std::fs::remove_file(self.dir().join(name)).expect("removing a migration file");
    }

    /// `TOOL ARGS... --env dev --dir DIR` with the dev role's `DATABASE_URL`, not yet run.
    /// `args` come first so that a subcommand (`status`, `lint`) leads, as clap requires;
    /// add flags after with [`Run::arg`], or another URL with `.env("DATABASE_URL", ..)`.
    ///
    /// ```ignore
    /// p.tool(Tool::Migrate, &["status", "--format", "json"]).run().assert_code(0);
    /// p.tool(Tool::SchemaCheck, &[]).env("DATABASE_URL", &p.envs.prod_url).run();
    /// ```
    pub fn tool(&self, tool: Tool, args: &[&str]) -> Run {
        self.tool_in("dev", tool, args)
    }

    /// [`Project::tool`] for either environment: `TOOL ARGS... --env ENV --dir DIR` with
    /// `env`'s `DATABASE_URL`.
    ///
    /// ```ignore
    /// p.tool_in("prod", Tool::Migrate, &[]).run().assert_code(0);
    /// ```
    pub fn tool_in(&self, env: &str, tool: Tool, args: &[&str]) -> Run {
        tool.cmd()
            .env("DATABASE_URL", self.envs.url(env))
            .args(args)
            .args(["--env", env, "--dir"])
            .arg(self.dir())
    }

    /// `hard-reset ARGS... --env ENV --dir DIR` with all it needs besides a terminal: `env`'s
    /// `DATABASE_URL`, the admin URL (`DREICHOR_ADMIN_DATABASE_URL`) and the cluster's client
    /// programs (`PG_BIN`, for `pg_dump` and `pg_restore`). It refuses to run without a
    /// terminal: start it with [`super::pty::Pty::spawn`].
    ///
    /// ```ignore
    /// let mut pty = Pty::spawn(p.hard_reset("dev", &["--stop-command", "true"]));
    /// ```
    pub fn hard_reset(&self, env: &str, args: &[&str]) -> Run {
        self.tool_in(env, Tool::HardReset, args)
            .env("DREICHOR_ADMIN_DATABASE_URL", self.cluster.admin_url())
            .env(
                "PG_BIN",
                self.cluster.bin("pg_dump").parent().expect("a directory"),
            )
    }

    /// Runs `sql` as the superuser in `dreichor_dev`; see [`Cluster::sql`].
    pub fn sql(&self, sql: &str) {
        self.cluster.sql("dreichor_dev", sql);
    }

    /// The rows of `sql`, run as the superuser in `dreichor_dev`; see
    /// [`Cluster::query_strings`].
    pub fn query(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        self.cluster.query_strings("dreichor_dev", sql)
    }

    /// Waits, at most `within`, until a session of `dreichor_dev` waits for a lock (a test
    /// holds one to stop `run` at a known point), and returns that session's query. Panics
    /// with what `run` wrote so far when none does in time.
    #[track_caller]
    pub fn query_waiting_for_a_lock(&self, run: &Running, within: Duration) -> String {
        let until = Instant::now() + within;
        loop {
            if let Some(query) = self.scalar(
                "SELECT query FROM pg_catalog.pg_stat_activity \
                 WHERE wait_event_type = 'Lock' AND datname = 'dreichor_dev' LIMIT 1",
            ) {
                return query;
            }
            assert!(
                Instant::now() < until,
                "no session waited for a lock within {within:?}:\n{}",
                run.stderr_so_far()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The first value of the first row of `sql` in `dreichor_dev`; `None` when there is no
    /// row or the value is NULL.
    ///
    /// ```ignore
    /// assert_eq!(p.scalar("SELECT count(*) FROM a").as_deref(), Some("1"));
    /// ```
    pub fn scalar(&self, sql: &str) -> Option<String> {
        self.query(sql)
            .into_iter()
            .next()
            .and_then(|row| row.into_iter().next())
            .flatten()
    }

    /// Whether `public.NAME` (a table, index, view or sequence) exists in `dreichor_dev`.
    pub fn table_exists(&self, name: &str) -> bool {
        self.scalar(&format!("SELECT to_regclass('public.{name}') IS NOT NULL"))
            .as_deref()
            == Some("t")
    }

    /// The versions recorded in `dreichor_dev`'s tracking table, in order; empty when there
    /// is no tracking table.
    pub fn versions(&self) -> Vec<String> {
        self.versions_in("dev")
    }

    /// [`Project::versions`] for either environment's database.
    pub fn versions_in(&self, env: &str) -> Vec<String> {
        let db = Envs::database(env);
        let exists = self.cluster.query_strings(
            db,
            &format!("SELECT to_regclass('{TRACKING_TABLE}') IS NOT NULL"),
        );
        if exists[0][0].as_deref() != Some("t") {
            return Vec::new();
        }
        self.cluster
            .query_strings(
                db,
                &format!("SELECT version FROM {TRACKING_TABLE} ORDER BY version"),
            )
            .into_iter()
            .map(|row| row[0].clone().unwrap_or_default())
            .collect()
    }

    /// A client logged in as `dreichor_dev` over TCP with its password, like the runtime,
    /// the session named `application`. Panics with the server's message when the login
    /// fails.
    ///
    /// ```ignore
    /// let mut holder = p.connect_as_dev("stuck-operator");
    /// ```
    pub fn connect_as_dev(&self, application: &str) -> Client {
        connect(&self.envs.dev_url, application)
            .unwrap_or_else(|e| panic!("dreichor_dev login: {}", describe_error(&e)))
    }

    /// What `dreichor_dev` can do within its own rights to fool a catalogue query that
    /// compares names with an unqualified `=`: a schema `decoy` in its database with an `=` on
    /// `name` that is never true, ahead of `pg_catalog` on the role's own `search_path`. It
    /// takes effect in the role's next sessions.
    pub fn plant_decoy_operator(&self) {
        self.connect_as_dev("dreichor-test-decoy")
            .batch_execute(
                "CREATE SCHEMA decoy;\
                 CREATE FUNCTION decoy.never(name, name) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$ SELECT false $$;\
                 CREATE OPERATOR decoy.= (LEFTARG = name, RIGHTARG = name, FUNCTION = decoy.never);\
                 ALTER ROLE CURRENT_USER SET search_path = decoy, pg_catalog, public;",
            )
            .unwrap_or_else(|e| panic!("planting the decoy operator: {}", describe_error(&e)));
    }
}
