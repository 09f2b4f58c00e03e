//! Running the tools under test, the way an operator's shell would, but hermetically.
//!
//! The binaries are the test package's shims (`src/bin/*.rs`), built from the same library
//! code as the shipped tools: Cargo builds a package's binaries for its integration tests
//! and tells the tests where they are through `CARGO_BIN_EXE_<name>`, which is why this
//! package carries shims instead of calling `cargo build` itself.
//!
//! Every run starts from an empty environment (as ripgrep's `TestCommand` does): a developer's
//! `DATABASE_URL`, `PGHOST`, `PGPASSWORD` or `DREICHOR_ENV` must never reach a tool under
//! test, or a green run could have talked to the wrong server. Only `PATH`, `LANG=C.UTF-8` and
//! what the test sets are passed on.
//!
//! Every [`Outcome`] is checked for leaked passwords before a test sees it (see
//! [`super::secrets`]): a leak fails the test that happened to provoke it, whatever that test
//! was about. Runs are bounded by a timeout (60 s unless the test says otherwise) so that a
//! tool that hangs on a lock fails with its output instead of stalling the whole suite.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::secrets;

/// The default bound on one run; generous because the machine has two cores shared by
/// parallel tests, and a run that needs more is a hang worth reporting.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// One of the three tools, built as this package's shim binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// `migrate` (shim `dreichor-test-migrate`).
    Migrate,
    /// `schema-check` (shim `dreichor-test-schema-check`).
    SchemaCheck,
    /// `hard-reset` (shim `dreichor-test-hard-reset`).
    HardReset,
}

impl Tool {
    /// The path of the shim binary. Panics, saying how to build it, when it is missing.
    ///
    /// ```ignore
    /// assert!(Tool::Migrate.path().ends_with("dreichor-test-migrate"));
    /// ```
    pub fn path(self) -> PathBuf {
        let (name, path) = match self {
            Tool::Migrate => (
                "dreichor-test-migrate",
                env!("CARGO_BIN_EXE_dreichor-test-migrate"),
            ),
            Tool::SchemaCheck => (
                "dreichor-test-schema-check",
                env!("CARGO_BIN_EXE_dreichor-test-schema-check"),
            ),
            Tool::HardReset => (
                "dreichor-test-hard-reset",
                env!("CARGO_BIN_EXE_dreichor-test-hard-reset"),
            ),
        };
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "the shim binary {name} is missing at {}: `cargo test -p dreichor-tests` builds it; \
             when running the test executable by hand, run `cargo build -p dreichor-tests --bins` first",
            path.display()
        );
        path
    }

    /// A run of this tool with no arguments and an empty environment.
    ///
    /// ```ignore
    /// Tool::Migrate.cmd().arg("lint").arg("--dir").arg(dir).run().assert_code(0);
    /// ```
    pub fn cmd(self) -> Run {
        Run::new(self.path())
    }
}

/// A command to run, built up by a test; see the module overview for what it guarantees.
#[derive(Debug, Clone)]
pub struct Run {
    program: PathBuf,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    current_dir: Option<PathBuf>,
    stdin: Option<String>,
    timeout: Duration,
}

impl Run {
    /// A run of any program with the same guarantees as the tools' (clean environment, leak
    /// check, timeout): for the harness's own tests and for helpers like `psql`.
    ///
    /// ```ignore
    /// Run::new("sh").args(["-c", "echo hi"]).run().assert_code(0);
    /// ```
    pub fn new(program: impl Into<PathBuf>) -> Run {
        Run {
            program: program.into(),
            args: Vec::new(),
            envs: Vec::new(),
            current_dir: None,
            stdin: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Appends one argument.
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().to_owned());
        self
    }

    /// Appends several arguments.
    ///
    /// ```ignore
    /// Tool::Migrate.cmd().args(["--env", "dev", "--format", "json"]);
    /// ```
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets one environment variable for the child, on top of `PATH` and `LANG=C.UTF-8`
    /// (either of which it may override). Nothing else from the test's environment is passed.
    /// Setting a variable again replaces the earlier value, so a preset run (see
    /// [`super::Project::tool`]) can be pointed at another `DATABASE_URL`.
    ///
    /// ```ignore
    /// Tool::Migrate.cmd().env("DATABASE_URL", &envs.dev_url).env("DREICHOR_ENV", "dev");
    /// ```
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.envs
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// The child's working directory (default: the test's, which is the package directory).
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.current_dir = Some(dir.as_ref().to_owned());
        self
    }

    /// Text written to the child's standard input, which is then closed. Without it, standard
    /// input is `/dev/null`: never a terminal, as in CI.
    pub fn stdin(mut self, text: &str) -> Self {
        self.stdin = Some(text.to_owned());
        self
    }

    /// The same run under GNU time (`/usr/bin/time -v`), which adds its report to standard
    /// error; read the peak memory with [`Outcome::peak_rss_kib`].
    pub fn measured(mut self) -> Self {
        let mut args = vec![OsString::from("-v"), self.program.clone().into_os_string()];
        args.append(&mut self.args);
        self.program = PathBuf::from("/usr/bin/time");
        self.args = args;
        self
    }

    /// How long the run may take before it is killed and the test fails (default 60 s).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// Runs the program to completion and returns its checked [`Outcome`].
    ///
    /// ```ignore
    /// let out = Tool::SchemaCheck.cmd().args(["--env", "dev"]).run();
    /// out.assert_code(0);
    /// ```
    pub fn run(self) -> Outcome {
        self.spawn().wait()
    }

    /// Starts the program and returns at once, for concurrency and crash tests.
    ///
    /// ```ignore
    /// let mut running = Tool::Migrate.cmd().env(..).spawn();
    /// running.wait_for_stderr("applying", Duration::from_secs(10));
    /// running.kill_9();
    /// assert_eq!(running.wait().code, 137);
    /// ```
    pub fn spawn(self) -> Running {
        let mut command = self.command();
        command
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so that a timeout can kill whatever the tool started too
            // (the stop command of hard-reset, pg_dump) and a Ctrl-C in the terminal reaches
            // only the test process, which then cleans up in order.
            .process_group(0);
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.describe()));

        // Writing stdin and draining both pipes on their own threads: a child that fills one
        // pipe while the test waits on another would otherwise deadlock.
        if let (Some(text), Some(mut pipe)) = (self.stdin.clone(), child.stdin.take()) {
            std::thread::spawn(move || {
                // The child may exit without reading everything; that is its business.
                let _ = pipe.write_all(text.as_bytes());
            });
        }
        let stdout = Captured::start(child.stdout.take().expect("stdout is piped"));
        let stderr = Captured::start(child.stderr.take().expect("stderr is piped"));
        Running {
            child,
            description: self.describe(),
            deadline: Instant::now() + self.timeout,
            timeout: self.timeout,
            stdout,
            stderr,
            finished: false,
        }
    }

    /// The program, its arguments, the cleared environment (`PATH`, `LANG=C.UTF-8`, then what
    /// the test set) and the working directory, with the standard streams and the process
    /// group left alone: for a runner that provides its own, like [`super::pty::Pty`].
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(default_path),
            )
            .env("LANG", "C.UTF-8")
            .envs(self.envs.iter().map(|(k, v)| (k, v)));
        if let Some(dir) = &self.current_dir {
            command.current_dir(dir);
        }
        command
    }

    /// The command line, passwords redacted, for messages.
    pub fn describe(&self) -> String {
        let mut s = self.program.display().to_string();
        for a in &self.args {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        secrets::redact(&s)
    }
}

fn default_path() -> OsString {
    OsString::from("/usr/local/bin:/usr/bin:/bin")
}

/// How long output is still collected after the child exited; see [`Captured::finish`].
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// One output pipe being drained into a buffer the test can look at while the child runs.
#[derive(Debug)]
struct Captured {
    buffer: Arc<Mutex<Vec<u8>>>,
    reader: Option<JoinHandle<()>>,
}

impl Captured {
    fn start(mut pipe: impl Read + Send + 'static) -> Captured {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&buffer);
        let reader = std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            loop {
                match pipe.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => sink
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend_from_slice(&chunk[..n]),
                }
            }
        });
        Captured {
            buffer,
            reader: Some(reader),
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    /// Waits until every writer has closed the pipe and everything has been read, for at most
    /// [`DRAIN_GRACE`]: a grandchild the tool left running in the background may hold the pipe
    /// open for much longer, and the test should not wait for it.
    fn finish(&mut self) -> String {
        if let Some(reader) = self.reader.take() {
            let until = Instant::now() + DRAIN_GRACE;
            while !reader.is_finished() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(2));
            }
            if reader.is_finished() {
                let _ = reader.join();
            }
        }
        self.text()
    }
}

/// A started run. Dropping it without [`Running::wait`] kills the child, so that a failing
/// test never leaves a tool running (and holding a migration lock) behind it.
#[derive(Debug)]
pub struct Running {
    child: Child,
    description: String,
    deadline: Instant,
    timeout: Duration,
    stdout: Captured,
    stderr: Captured,
    finished: bool,
}

impl Running {
    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the child with SIGKILL, as a crash or an OOM kill would: no destructors, no
    /// cleanup. [`Running::wait`] then reports code 137 (128 + 9).
    pub fn kill_9(&mut self) {
        // An error means it has already exited, which is what the caller wanted.
        let _ = self.child.kill();
    }

    /// What the child has written to stdout so far (passwords redacted).
    pub fn stdout_so_far(&self) -> String {
        secrets::redact(&self.stdout.text())
    }

    /// What the child has written to stderr so far (passwords redacted).
    pub fn stderr_so_far(&self) -> String {
        secrets::redact(&self.stderr.text())
    }

    /// Blocks until the child's stderr contains `needle`; panics with the output so far when
    /// `within` passes first or the child exits without writing it.
    ///
    /// ```ignore
    /// running.wait_for_stderr("002_slow", Duration::from_secs(10));
    /// ```
    pub fn wait_for_stderr(&mut self, needle: &str, within: Duration) {
        let until = Instant::now() + within;
        loop {
            if self.stderr.text().contains(needle) {
                return;
            }
            let exited = matches!(self.child.try_wait(), Ok(Some(_)));
            if exited && self.stderr.text().contains(needle) {
                return;
            }
            if exited || Instant::now() >= until {
                let why = if exited {
                    "the child exited".to_owned()
                } else {
                    format!("{within:?} passed")
                };
                self.kill_and_reap();
                panic!(
                    "{why} before stderr contained {needle:?}\ncommand: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                    self.description,
                    secrets::redact(&self.stdout.finish()),
                    secrets::redact(&self.stderr.finish()),
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the child to exit (bounded by the run's timeout) and returns its checked
    /// [`Outcome`]: panics with "password leaked" when either stream contains a registered
    /// password.
    pub fn wait(mut self) -> Outcome {
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() >= self.deadline => {
                    self.kill_and_reap();
                    panic!(
                        "timed out after {:?}, killed: {}\n--- stdout so far ---\n{}\n--- stderr so far ---\n{}",
                        self.timeout,
                        self.description,
                        secrets::redact(&self.stdout.finish()),
                        secrets::redact(&self.stderr.finish()),
                    );
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => panic!("waiting for {}: {e}", self.description),
            }
        };
        self.finished = true;
        let outcome = Outcome {
            code: exit_code(status),
            stdout: self.stdout.finish(),
            stderr: self.stderr.finish(),
        };
        outcome.assert_no_secrets();
        outcome
    }

    /// Kills the child's whole process group (see [`Run::spawn`]), then the child itself in
    /// case `kill` is unavailable, and reaps it.
    fn kill_and_reap(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &group])
            .env_clear()
            .env("PATH", default_path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.finished = true;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.finished {
            self.kill_and_reap();
        }
    }
}

/// The exit code, or 128 + the signal number for a child killed by a signal (as a shell
/// reports it), so that a test can tell "crashed" from any code a tool exits with.
fn exit_code(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => unreachable!("an exit status is either a code or a signal"),
    }
}

/// How a run ended. Only ever handed to a test after the leak check passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Exit code; 128 + N when killed by signal N.
    pub code: i32,
    /// Everything written to stdout, lossily decoded as UTF-8.
    pub stdout: String,
    /// Everything written to stderr, lossily decoded as UTF-8.
    pub stderr: String,
}

impl Outcome {
    /// Panics unless the exit code is `code`, showing both streams.
    ///
    /// ```ignore
    /// Tool::Migrate.cmd().run().assert_code(2);
    /// ```
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert!(
            self.code == code,
            "expected exit code {code}, got {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Panics, showing stderr, unless stderr contains `needle`.
    ///
    /// ```ignore
    /// out.assert_code(1).assert_stderr("rolled back");
    /// ```
    #[track_caller]
    pub fn assert_stderr(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n--- stderr ---\n{}",
            self.stderr
        );
        self
    }

    /// The CPU time (user + system) in seconds from the report of a [`Run::measured`] run:
    /// unlike wall time, hardly disturbed by other work on the machine.
    #[track_caller]
    pub fn cpu_seconds(&self) -> f64 {
        let field = |name: &str| -> f64 {
            self.stderr
                .lines()
                .find_map(|line| line.trim().strip_prefix(name))
                .and_then(|value| value.trim().parse().ok())
                .unwrap_or_else(|| {
                    panic!(
                        "no {name} in the report of /usr/bin/time -v:\n{}",
                        self.stderr
                    )
                })
        };
        field("User time (seconds): ") + field("System time (seconds): ")
    }

    /// The peak resident set size in KiB from the report of a [`Run::measured`] run.
    #[track_caller]
    pub fn peak_rss_kib(&self) -> u64 {
        self.stderr
            .lines()
            .find_map(|line| {
                line.trim()
                    .strip_prefix("Maximum resident set size (kbytes): ")
            })
            .and_then(|kib| kib.trim().parse().ok())
            .unwrap_or_else(|| panic!("no report of /usr/bin/time -v in:\n{}", self.stderr))
    }

    /// Parses stdout as exactly one JSON document (the contract for `--format json`);
    /// panics with both streams when it is not.
    ///
    /// ```ignore
    /// assert_eq!(out.json()["compatible"], true);
    /// ```
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document: {e}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// Looks for every registered password in both streams.
    pub fn check_no_secrets(&self) -> Result<(), secrets::Leak> {
        secrets::check_no_secrets(&self.stdout)?;
        secrets::check_no_secrets(&self.stderr)
    }

    /// Panics with "password leaked" (and the redacted output) when
    /// [`Outcome::check_no_secrets`] finds one. Every run and wait calls it.
    #[track_caller]
    pub fn assert_no_secrets(&self) {
        if let Err(leak) = self.check_no_secrets() {
            panic!(
                "{leak}\nexit code {}\n--- stdout (redacted) ---\n{}\n--- stderr (redacted) ---\n{}",
                self.code,
                secrets::redact(&self.stdout),
                secrets::redact(&self.stderr)
            );
        }
    }
}
