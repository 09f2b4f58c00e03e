//! A throwaway PostgreSQL cluster per test (or one shared per test process), never the
//! system's.
//!
//! Why it is built this way:
//!
//! - **One `initdb` per test process.** `initdb` takes 0.4 to 0.8 s here; copying its result
//!   (`cp -a`, about 40 MB in a thousand files) takes a fraction of that. The first
//!   [`Cluster::start`] runs `initdb` into a template directory (a `OnceLock`), and every
//!   cluster starts from a copy, so a case that needs the real database names
//!   `dreichor_dev`/`dreichor_prod` can afford a cluster of its own (start and drop: about
//!   0.15 s).
//! - **Short paths, in memory when possible.** A unix socket path is limited to about 107
//!   bytes (`sun_path`), and the server puts its socket in the cluster directory, so clusters
//!   live directly in `/dev/shm` (when it is a roomy tmpfs and `TMPDIR` is not set: ten times
//!   faster to copy into than an ext4 `/tmp`) or in the system temp dir.
//! - **Run as the `postgres` user when root.** `initdb` and `postgres` refuse to run as root;
//!   `CommandExt::uid/gid` drops privileges without sudo. The directories are chowned first.
//! - **Cleanup that cannot be forgotten.** Statics are never dropped and a killed test process
//!   runs no destructors, so `Drop` alone would leave servers and directories behind. Each
//!   server therefore runs under a small `sh` supervisor whose standard input is a pipe held
//!   only by the test process: when that pipe closes (the `Cluster` is dropped, the test
//!   panicked, the process exited or was killed with SIGKILL) the supervisor stops the server
//!   (SIGINT, PostgreSQL's "fast" shutdown, then SIGKILL after 5 s) and removes the directory.
//!   The template directory has the same kind of reaper.
//! - **Settings for speed, not durability:** `fsync`, `synchronous_commit` and
//!   `full_page_writes` off (<https://www.postgresql.org/docs/15/non-durability.html>), a
//!   small `shared_buffers` and `max_connections` because the machine has two cores and tests
//!   run in parallel.
//! - **Authentication as in production.** TCP logins use `scram-sha-256` with a password, on
//!   `127.0.0.1` and `::1` (when the machine has IPv6 loopback), so a tool that fails to send
//!   its password, or mangles it, fails here too. The local socket trusts everyone: it is for
//!   the harness's own helpers ([`Cluster::sql`], [`Cluster::query_strings`]), where a SCRAM
//!   login per call would cost about 50 ms in an unoptimised build.
//! - **Never the system server.** The port is picked free (never 5432), children get a
//!   cleared environment (no `PG*`, no `DATABASE_URL`), and every connection names host, port,
//!   user and password explicitly.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpListener};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use postgres::{Client, NoTls, SimpleQueryMessage};

use super::secrets;

/// How long a freshly started server may take to accept a password login.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long `Drop` waits for the supervisor to stop the server and remove the directory; it
/// needs at most about 5 s (its SIGKILL deadline) plus the `rm -rf`.
const DROP_TIMEOUT: Duration = Duration::from_secs(20);

/// How often a start is retried with another port when the chosen one was taken between
/// probing it and the server binding it (another test process, another parallel test).
const START_ATTEMPTS: usize = 5;

/// The cluster superuser's name, as `initdb -U` creates it.
pub const SUPERUSER: &str = "postgres";

/// The supervisor. Arguments: the cluster directory, the template data directory, then the
/// server's command line. It copies the template (inside the supervised region, so that a
/// test process killed mid-copy leaves nothing behind; `cp -a` keeps the owner and the 0700
/// mode the server insists on), starts the server, prints its pid (0 when the copy failed),
/// then answers each line it reads with `stopped` after stopping the server; at end of input
/// it stops the server (if still running) and removes the directory. SIGPIPE and SIGHUP are
/// ignored so that neither a test process that vanished mid-reply nor a closed terminal can
/// kill it before it has cleaned up.
const SUPERVISOR: &str = r#"
trap '' PIPE HUP
dir=$1
template=$2
shift 2
pid=
if cp -a "$template" "$dir/data" 2>>"$dir/server.log"; then
  "$@" </dev/null >>"$dir/server.log" 2>&1 &
  pid=$!
fi
echo "${pid:-0}"
halted=
halt() {
  [ -n "$halted" ] && return
  halted=1
  [ -n "$pid" ] || return
  kill -INT "$pid" 2>/dev/null
  n=0
  while kill -0 "$pid" 2>/dev/null && [ "$n" -lt 250 ]; do
    sleep 0.02
    n=$((n + 1))
  done
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}
while read -r request; do
  halt
  echo stopped
done
halt
rm -rf "$dir"
"#;

/// The template reaper: removes the template directory when the test process goes away.
const REAPER: &str = r#"
trap '' PIPE HUP
cat >/dev/null
rm -rf "$1"
"#;

/// The `pg_hba.conf` the design asks for: trust on the socket, passwords over TCP.
const PG_HBA: &str = "\
# Written by the dreichor test harness (tests/tests/e2e/support/cluster.rs).
local all all                trust
host  all all 127.0.0.1/32   scram-sha-256
host  all all ::1/128        scram-sha-256
";

/// What every cluster of this test process is copied from.
#[derive(Debug)]
struct Template {
    bin_dir: PathBuf,
    data: PathBuf,
    password: String,
    owner: Option<Owner>,
    ipv6: bool,
    initdb_took: Duration,
    /// Holds the reaper's stdin open for the life of the process; never read.
    _reaper: Mutex<Child>,
}

/// The OS user the server runs as, when the test process is root.
#[derive(Debug, Clone, Copy)]
struct Owner {
    uid: u32,
    gid: u32,
}

static TEMPLATE: OnceLock<Template> = OnceLock::new();
static SHARED: OnceLock<Cluster> = OnceLock::new();

/// Which loopback addresses a server listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listen {
    /// 127.0.0.1, and ::1 when the machine has it: the normal case.
    Both,
    /// 127.0.0.1 only: one of a pair of twins.
    V4Only,
    /// ::1 only: the other twin.
    V6Only,
}

/// A running PostgreSQL server on its own port and directory, stopped and deleted when dropped
/// (or, failing that, when the test process ends; see the module overview).
#[derive(Debug)]
pub struct Cluster {
    dir: PathBuf,
    port: u16,
    bin_dir: PathBuf,
    password: String,
    ipv6: bool,
    listen: Listen,
    supervisor: Mutex<Supervisor>,
}

#[derive(Debug)]
struct Supervisor {
    child: Child,
    /// Closing this is what tells the supervisor to clean up.
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    server_pid: u32,
    command_line: String,
    stopped: bool,
}

/// The two environments [`Cluster::provision_envs`] creates, with URLs for the tools.
#[derive(Debug, Clone)]
pub struct Envs {
    /// `postgres://dreichor_dev:PW@localhost:PORT/dreichor_dev`, password percent-encoded.
    pub dev_url: String,
    /// `postgres://dreichor_prod:PW@localhost:PORT/dreichor_prod`, password percent-encoded.
    pub prod_url: String,
    /// The raw (registered sentinel) password of `dreichor_dev`.
    pub dev_password: String,
    /// The raw (registered sentinel) password of `dreichor_prod`.
    pub prod_password: String,
}

impl Envs {
    /// The database of `env` (`"dev"` or `"prod"`, as the tools' `--env` spells it), which is
    /// also the name of its role. Panics on any other name.
    ///
    /// ```ignore
    /// assert_eq!(Envs::database("prod"), "dreichor_prod");
    /// ```
    pub fn database(env: &str) -> &'static str {
        match env {
            "dev" => "dreichor_dev",
            "prod" => "dreichor_prod",
            other => panic!("there is no environment {other:?}: dev or prod"),
        }
    }

    /// The URL of `env`'s role for its own database: [`Envs::dev_url`] or [`Envs::prod_url`].
    pub fn url(&self, env: &str) -> &str {
        if Envs::database(env) == "dreichor_dev" {
            &self.dev_url
        } else {
            &self.prod_url
        }
    }

    /// The password of `env`'s role: [`Envs::dev_password`] or [`Envs::prod_password`].
    pub fn password(&self, env: &str) -> &str {
        if Envs::database(env) == "dreichor_dev" {
            &self.dev_password
        } else {
            &self.prod_password
        }
    }
}

impl Cluster {
    /// Starts a new cluster from the template (running `initdb` first if this is the first
    /// cluster of the test process) and waits until it accepts a password login over TCP.
    /// Panics, with the command line and the server log, when it does not within 30 s.
    ///
    /// ```ignore
    /// let cluster = Cluster::start();
    /// let envs = cluster.provision_envs();
    /// ```
    pub fn start() -> Cluster {
        let template = template();
        let mut last_failure = String::new();
        for _ in 0..START_ATTEMPTS {
            match Cluster::try_start(template, Listen::Both, None) {
                Ok(cluster) => return cluster,
                Err(failure) => last_failure = failure,
            }
        }
        panic!("the test cluster did not start after {START_ATTEMPTS} attempts with different ports; last attempt:\n{last_failure}");
    }

    /// The cluster of this test process that cases share, each in a database of its own
    /// ([`Cluster::fresh_database`]). Started on first use; stopped when the process ends.
    ///
    /// ```ignore
    /// let db = Cluster::shared().fresh_database();
    /// ```
    pub fn shared() -> &'static Cluster {
        SHARED.get_or_init(Cluster::start)
    }

    /// Two servers on ONE port: the first listens on 127.0.0.1 only, the second on ::1 only.
    /// `localhost:PORT`, `127.0.0.1:PORT` and `[::1]:PORT` then reach different servers,
    /// which is what a tool that must act on one instance has to notice. Needs IPv6 loopback.
    pub fn start_twins() -> (Cluster, Cluster) {
        let template = template();
        assert!(template.ipv6, "twins need an IPv6 loopback");
        let mut last_failure = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port(true);
            let v4 = match Cluster::try_start(template, Listen::V4Only, Some(port)) {
                Ok(cluster) => cluster,
                Err(failure) => {
                    last_failure = failure;
                    continue;
                }
            };
            match Cluster::try_start(template, Listen::V6Only, Some(port)) {
                Ok(v6) => return (v4, v6),
                Err(failure) => last_failure = failure,
            }
        }
        panic!("the twin clusters did not start after {START_ATTEMPTS} attempts; last attempt:\n{last_failure}");
    }

    /// One start attempt; `Err` (with the reason) when the port turned out to be taken.
    fn try_start(
        template: &Template,
        listen_on: Listen,
        port: Option<u16>,
    ) -> Result<Cluster, String> {
        let dir = short_temp_dir("drpg-");
        if let Some(owner) = template.owner {
            chown(&dir, owner);
        }
        let data = dir.join("data");
        let port = port.unwrap_or_else(|| free_port(template.ipv6));
        let listen = match listen_on {
            Listen::Both if template.ipv6 => "127.0.0.1,::1",
            Listen::Both | Listen::V4Only => "127.0.0.1",
            Listen::V6Only => "::1",
        };
        let postgres = template.bin_dir.join("postgres");
        let server_args: Vec<String> = vec![
            "-D".into(),
            data.display().to_string(),
            "-p".into(),
            port.to_string(),
            "-k".into(),
            dir.display().to_string(),
            "-c".into(),
            format!("listen_addresses={listen}"),
            "-c".into(),
            "fsync=off".into(),
            "-c".into(),
            "synchronous_commit=off".into(),
            "-c".into(),
            "full_page_writes=off".into(),
            "-c".into(),
            "shared_buffers=16MB".into(),
            "-c".into(),
            "max_connections=40".into(),
            // Prepared transactions are a state the tools must describe (hard-reset).
            "-c".into(),
            "max_prepared_transactions=4".into(),
            "-c".into(),
            "password_encryption=scram-sha-256".into(),
            "-c".into(),
            "logging_collector=off".into(),
        ];
        let command_line = format!("{} {}", postgres.display(), server_args.join(" "));

        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(SUPERVISOR)
            .arg("sh")
            .arg(&dir)
            .arg(&template.data)
            .arg(&postgres)
            .args(&server_args)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            // Out of the terminal's process group: a Ctrl-C must reach the test process (whose
            // exit then closes the pipe) rather than kill the supervisor before it cleans up.
            .process_group(0);
        clean_env(&mut command);
        as_owner(&mut command, template.owner);
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the supervisor `sh` for {command_line}: {e}"));
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut line = String::new();
        let _ = stdout.read_line(&mut line);
        let server_pid = line.trim().parse::<u32>().unwrap_or(0);

        // From here on the Cluster exists, so any panic below still cleans up through Drop.
        let cluster = Cluster {
            dir,
            port,
            bin_dir: template.bin_dir.clone(),
            password: template.password.clone(),
            ipv6: template.ipv6 && listen_on != Listen::V4Only,
            listen: listen_on,
            supervisor: Mutex::new(Supervisor {
                child,
                stdin,
                stdout,
                server_pid,
                command_line,
                stopped: false,
            }),
        };
        if server_pid == 0 {
            cluster.fail_start(&format!(
                "copying the template {} failed, or the supervisor did not start (it said {line:?})",
                template.data.display()
            ));
        }
        cluster.wait_until_ready()?;
        Ok(cluster)
    }

    /// Polls a password login over TCP until it works. `Err` when the server exited because
    /// its port was taken (worth retrying elsewhere); panics on anything else.
    fn wait_until_ready(&self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let server_pid = self.lock_supervisor().server_pid;
        let data_dir = self.dir.join("data").display().to_string();
        loop {
            let log = self.log();
            if log.contains("could not bind") || log.contains("could not create any TCP/IP sockets")
            {
                // Someone took the port (or one of its two addresses) after it was probed.
                return Err(self.start_failure("the server could not bind its port", &log));
            }
            let error = match self.config("postgres", self.loopback()).connect(NoTls) {
                Ok(mut client) => {
                    // Clusters of one process share the superuser password, so a login alone
                    // does not prove it reached this cluster rather than one that won the port.
                    let reached: String = client
                        .query_one("SELECT current_setting('data_directory')", &[])
                        .map(|row| row.get(0))
                        .unwrap_or_default();
                    if reached == data_dir {
                        return Ok(());
                    }
                    return Err(self.start_failure(
                        &format!(
                            "port {} is served by another cluster ({reached})",
                            self.port
                        ),
                        &log,
                    ));
                }
                Err(e) => e,
            };
            if error.as_db_error().is_some() && error.code() != Some(&CANNOT_CONNECT_NOW) {
                // The server answered and refused: waiting will not help.
                self.fail_start(&format!(
                    "the server refused the superuser: {}",
                    describe_error(&error)
                ));
            }
            if !process_alive(server_pid) {
                let log = self.log();
                if log.contains("could not bind") {
                    return Err(self.start_failure("the server could not bind its port", &log));
                }
                panic!(
                    "{}",
                    self.start_failure("the server exited during startup", &log)
                );
            }
            if Instant::now() >= deadline {
                self.fail_start(&format!(
                    "the server did not accept a login within {READY_TIMEOUT:?}; last error: {}",
                    describe_error(&error)
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn fail_start(&self, why: &str) -> ! {
        panic!("{}", self.start_failure(why, &self.log()));
    }

    /// `why`, the server's command line and the end of its log.
    fn start_failure(&self, why: &str, log: &str) -> String {
        format!(
            "{why}\ncommand: {}\n--- last lines of the server log ---\n{}",
            self.lock_supervisor().command_line,
            tail(log, 30)
        )
    }

    fn lock_supervisor(&self) -> std::sync::MutexGuard<'_, Supervisor> {
        self.supervisor.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The TCP port the server listens on (on 127.0.0.1 and, when available, ::1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the server also listens on `::1`. False only on a machine without IPv6
    /// loopback, where the harness falls back to 127.0.0.1 alone.
    pub fn has_ipv6(&self) -> bool {
        self.ipv6
    }

    /// The cluster's directory: the data directory `data/`, the socket and `server.log`.
    /// Removed when the cluster is dropped.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory of the server's unix socket (for `psql -h`; trusted, no password).
    pub fn socket_dir(&self) -> &Path {
        &self.dir
    }

    /// A program from the server's installation, e.g. `pg_dump` or `psql`, so that client
    /// and server versions match. Panics when there is no such program.
    ///
    /// ```ignore
    /// Run::new(cluster.bin("pg_dump")).args(["--version"]).run().assert_code(0);
    /// ```
    pub fn bin(&self, name: &str) -> PathBuf {
        let path = self.bin_dir.join(name);
        assert!(
            path.is_file(),
            "{name} is not in the PostgreSQL binaries directory {}",
            self.bin_dir.display()
        );
        path
    }

    /// The superuser's password (a registered sentinel).
    pub fn superuser_password(&self) -> &str {
        &self.password
    }

    /// A connection configuration for the superuser on `db` over TCP at `addr`.
    /// The address the harness's own TCP logins use: 127.0.0.1, or ::1 for an IPv6-only twin.
    fn loopback(&self) -> IpAddr {
        match self.listen {
            Listen::V6Only => IpAddr::V6(Ipv6Addr::LOCALHOST),
            Listen::Both | Listen::V4Only => IpAddr::V4(Ipv4Addr::LOCALHOST),
        }
    }

    fn config(&self, db: &str, addr: IpAddr) -> postgres::Config {
        let mut config = postgres::Config::new();
        config
            .hostaddr(addr)
            .port(self.port)
            .user(SUPERUSER)
            .password(&self.password)
            .dbname(db)
            .application_name("dreichor-test-harness")
            .connect_timeout(Duration::from_secs(10));
        config
    }

    /// A superuser connection to the database `postgres`, over TCP with the password.
    ///
    /// ```ignore
    /// let n: i64 = cluster.admin().query_one("SELECT count(*) FROM pg_roles", &[])?.get(0);
    /// ```
    pub fn admin(&self) -> Client {
        self.admin_db("postgres")
    }

    /// A superuser connection to `db`, over TCP with the password. Panics with the server's
    /// message when it fails.
    pub fn admin_db(&self, db: &str) -> Client {
        self.config(db, self.loopback())
            .connect(NoTls)
            .unwrap_or_else(|e| {
                panic!(
                    "superuser connection to database {db} on port {}: {}",
                    self.port,
                    describe_error(&e)
                )
            })
    }

    /// A superuser connection over `::1`; panics when the cluster has no IPv6 listener.
    pub fn admin_v6(&self) -> Client {
        assert!(self.ipv6, "this machine has no IPv6 loopback");
        self.config("postgres", IpAddr::V6(Ipv6Addr::LOCALHOST))
            .connect(NoTls)
            .unwrap_or_else(|e| panic!("superuser connection over ::1: {}", describe_error(&e)))
    }

    /// A superuser connection to `db` over the unix socket (trusted, no password): what the
    /// helpers [`Cluster::sql`] and [`Cluster::query_strings`] use, because a SCRAM login
    /// computes 4096 HMAC rounds in the client, about 50 ms in an unoptimised test build.
    fn local(&self, db: &str) -> Client {
        postgres::Config::new()
            .host_path(&self.dir)
            .port(self.port)
            .user(SUPERUSER)
            .dbname(db)
            .application_name("dreichor-test-harness")
            .connect_timeout(Duration::from_secs(10))
            .connect(NoTls)
            .unwrap_or_else(|e| {
                panic!(
                    "superuser connection to database {db} over the socket in {}: {}",
                    self.dir.display(),
                    describe_error(&e)
                )
            })
    }

    /// `postgres://postgres:PW@localhost:PORT/postgres`, password percent-encoded: the admin
    /// URL as `hard-reset` expects it in `DREICHOR_ADMIN_DATABASE_URL`.
    pub fn admin_url(&self) -> String {
        self.url_for(SUPERUSER, &self.password, "localhost", "postgres")
    }

    /// `postgres://USER:PW@HOST:PORT/DB` with user and password percent-encoded. `host` is
    /// written as given: `localhost`, `127.0.0.1` or `[::1]`.
    ///
    /// ```ignore
    /// let url = cluster.url_for("dreichor_dev", &envs.dev_password, "[::1]", "dreichor_dev");
    /// ```
    pub fn url_for(&self, user: &str, password: &str, host: &str, db: &str) -> String {
        format!(
            "postgres://{}:{}@{host}:{}/{db}",
            secrets::percent_encode(user),
            secrets::percent_encode(password),
            self.port
        )
    }

    /// Runs `sql` (one or more statements) as the superuser in `db`, over the socket, in a
    /// session of its own; panics with the server's message, SQLSTATE, detail and position on
    /// error.
    ///
    /// ```ignore
    /// cluster.sql("dreichor_dev", "CREATE TABLE t (id int)");
    /// ```
    pub fn sql(&self, db: &str, sql: &str) {
        if let Err(e) = self.local(db).batch_execute(sql) {
            panic!(
                "{}\nin database {db}:\n{}",
                describe_error(&e),
                secrets::redact(sql)
            );
        }
    }

    /// The rows of `sql` (simple query protocol: every value as text, NULL as `None`), run as
    /// the superuser in `db` over the socket, for assertions.
    ///
    /// ```ignore
    /// let rows = cluster.query_strings("dreichor_dev", "SELECT version FROM public.dreichor_schema_migrations ORDER BY 1");
    /// assert_eq!(rows[0][0].as_deref(), Some("001_init"));
    /// ```
    pub fn query_strings(&self, db: &str, sql: &str) -> Vec<Vec<Option<String>>> {
        let messages = self.local(db).simple_query(sql).unwrap_or_else(|e| {
            panic!(
                "{}\nin database {db}:\n{}",
                describe_error(&e),
                secrets::redact(sql)
            )
        });
        messages
            .into_iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(row) => Some(
                    (0..row.len())
                        .map(|i| row.get(i).map(str::to_owned))
                        .collect(),
                ),
                _ => None,
            })
            .collect()
    }

    /// Creates an empty database with a unique name, owned by the superuser, and returns the
    /// name: how cases share [`Cluster::shared`] without seeing each other.
    pub fn fresh_database(&self) -> String {
        let name = format!("t_{}", secrets::random_hex(6));
        self.sql("postgres", &format!("CREATE DATABASE {name}"));
        name
    }

    /// Creates a role with a generated sentinel password and returns the password. `attrs`
    /// is appended to `CREATE ROLE ... WITH` (e.g. `"SUPERUSER"`, `"CREATEDB"`); `LOGIN` is
    /// added unless `attrs` says `LOGIN` or `NOLOGIN` itself.
    ///
    /// ```ignore
    /// let pw = cluster.create_role("intruder", "SUPERUSER");
    /// ```
    pub fn create_role(&self, name: &str, attrs: &str) -> String {
        let password = secrets::sentinel_password();
        let says_login = attrs
            .split_whitespace()
            .any(|w| w.eq_ignore_ascii_case("LOGIN") || w.eq_ignore_ascii_case("NOLOGIN"));
        let login = if says_login { "" } else { "LOGIN " };
        self.sql(
            "postgres",
            &format!(
                "CREATE ROLE {} WITH {login}PASSWORD {} {attrs}",
                quote_ident(name),
                quote_literal(&password)
            ),
        );
        password
    }

    /// Creates the two environments as the design wants them: roles `dreichor_dev` and
    /// `dreichor_prod` (LOGIN, not superuser, no CREATEDB/CREATEROLE) with sentinel passwords,
    /// databases `dreichor_dev`/`dreichor_prod` owned by them, CONNECT and TEMPORARY revoked
    /// from PUBLIC, CONNECT granted to the owner only.
    ///
    /// ```ignore
    /// let envs = cluster.provision_envs();
    /// Tool::Migrate.cmd().env("DATABASE_URL", &envs.dev_url).args(["--env", "dev"]).run();
    /// ```
    pub fn provision_envs(&self) -> Envs {
        let mut passwords = Vec::new();
        for env in ["dreichor_dev", "dreichor_prod"] {
            let password =
                self.create_role(env, "NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION");
            // CREATE DATABASE cannot run inside the implicit transaction of a multi-statement
            // batch, hence separate calls.
            self.sql("postgres", &format!("CREATE DATABASE {env} OWNER {env}"));
            self.sql(
                "postgres",
                &format!(
                    "REVOKE CONNECT, TEMPORARY ON DATABASE {env} FROM PUBLIC;\
                     GRANT CONNECT ON DATABASE {env} TO {env};"
                ),
            );
            passwords.push(password);
        }
        let prod_password = passwords.pop().expect("two passwords");
        let dev_password = passwords.pop().expect("two passwords");
        Envs {
            dev_url: self.url_for("dreichor_dev", &dev_password, "localhost", "dreichor_dev"),
            prod_url: self.url_for(
                "dreichor_prod",
                &prod_password,
                "localhost",
                "dreichor_prod",
            ),
            dev_password,
            prod_password,
        }
    }

    /// Stops the server now (fast shutdown, as for a database that went away), for tests of
    /// "unreachable". The directory stays until the cluster is dropped. Idempotent.
    pub fn stop(&self) {
        let mut supervisor = self.lock_supervisor();
        if supervisor.stopped {
            return;
        }
        supervisor.stopped = true;
        let stdin = supervisor
            .stdin
            .as_mut()
            .expect("the pipe is open while the cluster lives");
        stdin
            .write_all(b"stop\n")
            .and_then(|()| stdin.flush())
            .expect("asking the supervisor to stop the server");
        let mut reply = String::new();
        supervisor
            .stdout
            .read_line(&mut reply)
            .expect("reading the supervisor's reply");
        assert_eq!(
            reply.trim(),
            "stopped",
            "unexpected reply from the supervisor"
        );
    }

    /// The server log so far (everything the server wrote to stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// The template directory of this test process (removed when the process ends).
    pub fn template_dir() -> &'static Path {
        template()
            .data
            .parent()
            .expect("the template data directory has a parent")
    }

    /// How long the one-time `initdb` of this test process took.
    pub fn initdb_duration() -> Duration {
        template().initdb_took
    }
}

impl Drop for Cluster {
    /// Closes the supervisor's pipe and waits (bounded) until it has stopped the server and
    /// removed the directory. Never panics: it may run during a panic.
    fn drop(&mut self) {
        let supervisor = self.supervisor.get_mut().unwrap_or_else(|e| e.into_inner());
        drop(supervisor.stdin.take());
        let deadline = Instant::now() + DROP_TIMEOUT;
        loop {
            match supervisor.child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                _ => break,
            }
        }
        // The supervisor is stuck: do its job, loudly.
        eprintln!(
            "the supervisor of the test cluster in {} did not finish within {DROP_TIMEOUT:?}; killing the server",
            self.dir.display()
        );
        let _ = supervisor.child.kill();
        let _ = supervisor.child.wait();
        let _ = Command::new("kill")
            .args(["-s", "KILL", &supervisor.server_pid.to_string()])
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// SQLSTATE 57P03: the server is starting up or shutting down; keep polling.
const CANNOT_CONNECT_NOW: postgres::error::SqlState = postgres::error::SqlState::CANNOT_CONNECT_NOW;

/// The server's message with SQLSTATE, detail, hint and position, or the client error with
/// its causes: `Display` of `postgres::Error` alone is just "db error".
pub fn describe_error(error: &postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        let mut s = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
        if let Some(detail) = db.detail() {
            s.push_str(&format!("\nDETAIL: {detail}"));
        }
        if let Some(hint) = db.hint() {
            s.push_str(&format!("\nHINT: {hint}"));
        }
        if let Some(position) = db.position() {
            s.push_str(&format!("\nPOSITION: {position:?}"));
        }
        return s;
    }
    let mut s = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        s.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    s
}

/// Logs in with `url` (`postgres://USER:PW@HOST:PORT/DB`) the way the tools and the runtime
/// do: over TCP, with the password, giving up after 10 s, the session named `application`
/// (what `pg_stat_activity` and the tools' reports of a lock holder show). The error is
/// returned for tests of refusals; [`describe_error`] says what it was.
///
/// ```ignore
/// let url = cluster.url_for("dreichor_dev", &envs.dev_password, "localhost", "dreichor_dev");
/// let mut client = connect(&url, "held-by-the-test").expect("the dev role logs in");
/// ```
pub fn connect(url: &str, application: &str) -> Result<Client, postgres::Error> {
    let mut config: postgres::Config = url.parse().expect("a valid connection URL");
    config
        .application_name(application)
        .connect_timeout(Duration::from_secs(10));
    config.connect(NoTls)
}

/// `"name"`, with embedded double quotes doubled.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'`, with embedded single quotes doubled (the server runs with
/// `standard_conforming_strings` on, its default since 9.1).
fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The template, created on first use: find the binaries, `initdb`, write `pg_hba.conf`.
fn template() -> &'static Template {
    TEMPLATE.get_or_init(|| {
        let bin_dir = server_bin_dir();
        let owner = server_owner();
        let root = short_temp_dir("drpg-tpl-");
        // The reaper first, so that even a failing initdb leaves nothing behind.
        let reaper = {
            let mut command = Command::new("sh");
            command
                .arg("-c")
                .arg(REAPER)
                .arg("sh")
                .arg(&root)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0);
            clean_env(&mut command);
            command
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start the template reaper `sh`: {e}"))
        };
        if let Some(owner) = owner {
            chown(&root, owner);
        }
        let password = secrets::plain_sentinel_password();
        let pwfile = root.join("pwfile");
        std::fs::write(&pwfile, format!("{password}\n")).expect("writing the password file");
        if let Some(owner) = owner {
            chown(&pwfile, owner);
        }
        let data = root.join("data");
        let locale = utf8_locale();
        let mut initdb = Command::new(bin_dir.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                SUPERUSER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .args([
                "--encoding=UTF8",
                &format!("--locale={locale}"),
                "--no-sync",
            ])
            .current_dir(&root);
        clean_env(&mut initdb);
        as_owner(&mut initdb, owner);
        let started = Instant::now();
        run_checked(&mut initdb, "initdb of the template cluster");
        let initdb_took = started.elapsed();
        let _ = std::fs::remove_file(&pwfile);

        let hba = data.join("pg_hba.conf");
        std::fs::write(&hba, PG_HBA).expect("writing pg_hba.conf");
        std::fs::set_permissions(&hba, std::fs::Permissions::from_mode(0o600))
            .expect("chmod pg_hba.conf");
        if let Some(owner) = owner {
            chown(&hba, owner);
        }
        Template {
            bin_dir,
            data,
            password,
            owner,
            ipv6: TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_ok(),
            initdb_took,
            _reaper: Mutex::new(reaper),
        }
    })
}

/// The PostgreSQL server binaries: `PG_BIN`, else `pg_config --bindir`, else the highest
/// `/usr/lib/postgresql/*/bin`. Panics with what was searched when none has both `initdb`
/// and `postgres`: a missing PostgreSQL fails the run, it never skips it.
fn server_bin_dir() -> PathBuf {
    let complete = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(dir) = std::env::var_os("PG_BIN") {
        let dir = PathBuf::from(dir);
        assert!(
            complete(&dir),
            "PG_BIN is set to {} but that directory has no initdb and postgres: point it at \
             the server binaries (`pg_config --bindir`), or unset it and install them with \
             `apt-get install -y postgresql`",
            dir.display()
        );
        return dir;
    }
    let mut searched = vec!["PG_BIN (not set)".to_owned()];
    match Command::new("pg_config")
        .arg("--bindir")
        .stderr(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if complete(&dir) {
                return dir;
            }
            searched.push(format!(
                "pg_config --bindir ({}: no initdb/postgres)",
                dir.display()
            ));
        }
        Ok(out) => searched.push(format!("pg_config --bindir (failed: {})", out.status)),
        Err(e) => searched.push(format!("pg_config --bindir ({e})")),
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| complete(dir))
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return dir;
    }
    searched.push("/usr/lib/postgresql/*/bin (none with initdb and postgres)".to_owned());
    panic!(
        "the end-to-end tests need the PostgreSQL server binaries (initdb, postgres) and found none.\n\
         searched: {}\n\
         install them with `apt-get install -y postgresql`, or point PG_BIN at their directory",
        searched.join("; ")
    );
}

/// `C.UTF-8` when the system has it (it sorts like `C` but classifies all of Unicode), else `C`.
fn utf8_locale() -> &'static str {
    let listed = Command::new("locale")
        .arg("-a")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).to_lowercase())
        .unwrap_or_default();
    if listed
        .lines()
        .any(|l| l.trim() == "c.utf8" || l.trim() == "c.utf-8")
    {
        "C.UTF-8"
    } else {
        "C"
    }
}

/// `Some(postgres user)` when this process runs as root, because `initdb` and `postgres`
/// refuse to run as root; `None` otherwise (they then run as the current user).
fn server_owner() -> Option<Owner> {
    // The owner of /proc/self is the effective uid, without unsafe code or a libc call.
    let euid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .expect("reading /proc/self");
    if euid != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").expect("reading /etc/passwd");
    let owner = passwd.lines().find_map(|line| {
        // name:password:uid:gid:...
        let mut fields = line.split(':');
        if fields.next()? != "postgres" {
            return None;
        }
        let _password = fields.next()?;
        Some(Owner {
            uid: fields.next()?.parse().ok()?,
            gid: fields.next()?.parse().ok()?,
        })
    });
    Some(owner.unwrap_or_else(|| {
        panic!(
            "running as root, the harness runs the server as the `postgres` OS user, which \
             /etc/passwd lacks: install PostgreSQL with `apt-get install -y postgresql`"
        )
    }))
}

fn chown(path: &Path, owner: Owner) {
    std::os::unix::fs::chown(path, Some(owner.uid), Some(owner.gid))
        .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
}

fn as_owner(command: &mut Command, owner: Option<Owner>) {
    if let Some(owner) = owner {
        // std drops the supplementary groups too when it changes the uid.
        command.uid(owner.uid).gid(owner.gid);
    }
}

/// Children of the harness see no `PG*`, `DATABASE_URL` or anything else from the test's
/// environment: only `PATH`.
fn clean_env(command: &mut Command) {
    command.env_clear().env(
        "PATH",
        std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
    );
}

/// Where clusters live: `TMPDIR` when the developer set it; else `/dev/shm` when it is a
/// memory file system with room to spare; else the system temp dir. Copying the template's
/// thousand small files takes about 0.35 s on this machine's ext4 `/tmp` and 0.04 s on tmpfs,
/// and every case that needs the real database names starts a cluster of its own. A path
/// that would make the socket path too long falls back to `/tmp`.
fn base_dir() -> &'static Path {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        let chosen = if std::env::var_os("TMPDIR").is_some_and(|v| !v.is_empty()) {
            std::env::temp_dir()
        } else if has_room_in_memory("/dev/shm") {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        if chosen.as_os_str().len() > 60 {
            PathBuf::from("/tmp")
        } else {
            chosen
        }
    })
}

/// Whether `dir` is a tmpfs with at least [`MIN_SHM_FREE_KIB`] available (Docker's default
/// `/dev/shm` is 64 MiB: too small for a template and a few clusters of about 40 MB each).
fn has_room_in_memory(dir: &str) -> bool {
    let Ok(out) = Command::new("df").args(["-P", "-k", "-T", dir]).output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    // Filesystem Type 1024-blocks Used Available Capacity Mounted-on
    let Some(fields) = text
        .lines()
        .nth(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
    else {
        return false;
    };
    out.status.success()
        && fields.get(1) == Some(&"tmpfs")
        && fields
            .get(4)
            .and_then(|kib| kib.parse::<u64>().ok())
            .is_some_and(|kib| kib >= MIN_SHM_FREE_KIB)
}

/// 1 GiB, in KiB.
const MIN_SHM_FREE_KIB: u64 = 1024 * 1024;

/// A new directory `<base>/<prefix><random>`, mode 0700; see [`base_dir`].
fn short_temp_dir(prefix: &str) -> PathBuf {
    let base = base_dir();
    loop {
        let dir = base.join(format!("{prefix}{}", secrets::random_hex(4)));
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                    .expect("chmod of the cluster directory");
                return dir;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("cannot create a directory in {}: {e}", base.display()),
        }
    }
}

/// A port free on 127.0.0.1 (and on ::1 when `ipv6`), never 5432. Another process may take it
/// before the server binds it; [`Cluster::start`] retries then.
fn free_port(ipv6: bool) -> u16 {
    loop {
        let v4 = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding 127.0.0.1:0");
        let port = v4.local_addr().expect("local address").port();
        if port == 5432 {
            continue;
        }
        if ipv6 && TcpListener::bind((Ipv6Addr::LOCALHOST, port)).is_err() {
            continue;
        }
        return port;
    }
}

/// Whether `pid` is a live process (not gone, not a zombie).
fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses, which may itself contain ") ".
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
        Err(_) => false,
    }
}

/// Runs a harness command to completion, panicking with its output when it fails.
fn run_checked(command: &mut Command, what: &str) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {command:?}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({})\ncommand: {command:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
