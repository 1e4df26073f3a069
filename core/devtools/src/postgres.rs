//! A throwaway PostgreSQL cluster for tests.
//!
//! [`Postgres::start`] finds the server binaries (`$PROOFPOOL_PG_BIN`, else the
//! highest `/usr/lib/postgresql/<version>/bin`, where Debian puts them and
//! `scripts/install-postgres.sh` installs them), runs `initdb` into a fresh temp
//! dir, starts the server with `pg_ctl` on a free loopback port with its unix
//! socket in that dir, and creates the database `proofpool`. Dropping the handle
//! stops the server and deletes the dir.
//!
//! `initdb` and `pg_ctl` refuse to run as root, so as root they run as the
//! `postgres` system user (through `runuser`), which owns the temp dir.
//!
//! A watchdog shell holds the read end of a pipe whose write end only this
//! process has. If the process dies without dropping the handle (killed, a
//! panic with `panic = "abort"`, a handle kept in a `static`), the pipe closes
//! and the watchdog stops the server and deletes the dir.

use std::fs::{self, File};
use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::TempDir;

/// Where Debian installs each PostgreSQL major version, as `<version>/bin`.
const DEBIAN_ROOT: &str = "/usr/lib/postgresql";
/// Overrides the directory the binaries are taken from.
const BIN_ENV: &str = "PROOFPOOL_PG_BIN";
/// The programs [`Postgres`] runs, all from the same directory.
const PROGRAMS: [&str; 4] = ["initdb", "pg_ctl", "postgres", "createdb"];
/// The system user root runs `initdb` and `pg_ctl` as (Debian's package creates it).
const SERVICE_USER: &str = "postgres";
/// The superuser `initdb` creates, with trust authentication.
const SUPERUSER: &str = "postgres";
/// The database every cluster gets.
const DATABASE: &str = "proofpool";
/// How long `pg_ctl start -w` waits for the server to accept connections.
const START_TIMEOUT_SECS: &str = "60";
/// How long `pg_ctl stop -w` waits for the server to exit.
const STOP_TIMEOUT_SECS: &str = "30";
/// Starts tried on a fresh port when another process took the previous one
/// between [`crate::free_port`] releasing it and the server binding it.
const PORT_ATTEMPTS: usize = 5;
/// How much of a log an error carries.
const LOG_TAIL_LINES: usize = 30;

/// The watchdog (run as `sh -c WATCHDOG sh <pg_ctl> <data dir> <temp dir>`).
/// `read` returns when the owner writes a line or its process exits. The owner
/// writes `stopped` when it has stopped the server itself, and `kill` when it
/// could not; then it deletes the dir itself. At end of file the owner is gone,
/// so the watchdog deletes the dir too. `pg_ctl stop` checks that the pid in
/// postmaster.pid is this cluster's server; the `kill` is the last resort.
const WATCHDOG: &str = r#"
read -r line
[ "$line" = stopped ] && exit 0
if [ -f "$2/postmaster.pid" ]; then
  "$1" stop -D "$2" -m immediate -w -t 10 -s >/dev/null 2>&1 || {
    pid=$(head -n 1 "$2/postmaster.pid" 2>/dev/null)
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  }
fi
[ -z "$line" ] && rm -rf "$3"
"#;

/// Why a throwaway PostgreSQL cluster could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostgresError {
    /// The server binaries are not installed where they were looked for.
    #[error(
        "postgresql binaries ({}) not found in {searched}: run scripts/install-postgres.sh \
         (`make setup`), or set PROOFPOOL_PG_BIN to the directory that holds them",
        PROGRAMS.join(", ")
    )]
    Missing {
        /// Where they were looked for.
        searched: String,
    },
    /// Running as root, and there is no unprivileged user to run the server as.
    #[error(
        "running as root, where initdb and pg_ctl refuse to run, and there is no `postgres` \
         system user to run them as: install Debian's postgresql package \
         (scripts/install-postgres.sh), which creates it, or run the tests as a non-root user"
    )]
    NoServiceUser,
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A PostgreSQL program exited with an error.
    #[error("{what} failed ({status}):\n{output}")]
    Failed {
        /// The program and what it was asked to do.
        what: String,
        /// How it exited.
        status: ExitStatus,
        /// The end of its output and, for the server, of the server log.
        output: String,
    },
}

/// `fsync=` and the settings a production server would have beside it (as
/// pgtune suggests for this machine's size: shared buffers, WAL buffers,
/// checkpoint spacing), for [`Postgres::start_durable`]. The load
/// benchmark's report names them; change both together.
const DURABLE_SETTINGS: &str = "on -c shared_buffers=2GB -c wal_buffers=64MB \
     -c max_wal_size=8GB -c min_wal_size=2GB -c checkpoint_timeout=15min \
     -c checkpoint_completion_target=0.9";

/// WAL segments (16 MiB each) a durable cluster writes before it is handed
/// over, then recycles: 2 GiB, `min_wal_size`, more than a load benchmark
/// writes (about 450 bytes of WAL per share).
///
/// A server that has been running a while writes its WAL into recycled
/// segments, files already written once. A new cluster has none, so every
/// 16 MiB a commit had to create one (write 16 MiB of zeros and sync it) with
/// the WAL lock held, and all commits waited: measured as a fresh cluster's
/// WAL was, the benchmark saw stalls that a server in service does not have.
const PREALLOCATED_WAL_SEGMENTS: u32 = 128;

/// Pages a durable cluster writes through its shared buffers before it is
/// handed over: more than the 262,144 buffers of 8 KiB in `shared_buffers=2GB`
/// (`DURABLE_SETTINGS`; change both together). Rows of 800 bytes in a table
/// with `fillfactor = 10` take a page each.
///
/// A server in service has used all its shared buffers long ago. A new
/// cluster has touched none of that memory, and on the development VM first
/// touch of memory is slow (perf: page clearing under the share writer's
/// backend). Measured on a cold cluster, the share writer's commits grew
/// slower some 15 seconds into the benchmark, and at 50k shares/s the p99
/// submit latency was 23-418 ms (`proofpool-load --phases rate --postgres`,
/// a dozen runs); with the buffers warmed first it was 2.7-3.2 ms in seven.
/// Waiting 25 seconds instead of warming gave 3.3 and 90 ms. About 25
/// seconds on that VM; the table is unlogged and writes no WAL.
const WARM_PAGES: u32 = 270_000;

/// Wraps an I/O error with what was being done.
fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> PostgresError {
    let what = what.into();
    move |source| PostgresError::Io { what, source }
}

/// A throwaway PostgreSQL cluster on loopback: a temp dir, a free port, trust
/// auth for the superuser `postgres`, and a database `proofpool`. Stopped
/// (`pg_ctl stop -m immediate`) and deleted when dropped.
#[derive(Debug)]
pub struct Postgres {
    bin: PathBuf,
    /// The cluster (`PGDATA`), inside `dir`.
    data: PathBuf,
    port: u16,
    /// Who runs `initdb` and `pg_ctl`: this process's user, or the service user.
    run_as: Option<ServiceUser>,
    /// `None` only once dropped.
    watchdog: Option<Watchdog>,
    /// Whether the server fsyncs (benchmarks), or not (tests).
    durable: bool,
    /// The cluster, the unix socket, the logs. Deleted after `drop` has
    /// stopped the server (fields drop after `Drop::drop`).
    dir: TempDir,
}

impl Postgres {
    /// Initialises and starts a new cluster and creates the database
    /// `proofpool`. Takes about a second; the server start is bounded by
    /// `pg_ctl -w -t 60`. The server runs with `fsync=off`: a test throws
    /// the cluster away, so a crash of the machine costs nothing.
    pub fn start() -> Result<Self, PostgresError> {
        Self::start_with(false)
    }

    /// [`start`](Self::start), but durable (`fsync=on`,
    /// `synchronous_commit=on`) and sized like a production server (see
    /// `DURABLE_SETTINGS`), and in the state of a server in service: its WAL
    /// segments written once for recycling (`PREALLOCATED_WAL_SEGMENTS`) and
    /// its shared buffers used (`WARM_PAGES`). What benchmarks of commit
    /// latency and throughput must measure. Takes about 35 seconds here.
    pub fn start_durable() -> Result<Self, PostgresError> {
        Self::start_with(true)
    }

    fn start_with(durable: bool) -> Result<Self, PostgresError> {
        let bin = find_bin_dir()?;
        let run_as = if effective_uid()? == 0 {
            Some(ServiceUser::lookup()?)
        } else {
            None
        };
        let dir = TempDir::new("postgres").map_err(io("cannot create a temp dir"))?;
        if let Some(user) = &run_as {
            std::os::unix::fs::chown(dir.path(), Some(user.uid), Some(user.gid)).map_err(io(
                format!("cannot give {} to {}", dir.path().display(), user.name),
            ))?;
        }
        let data = dir.path().join("data");
        let watchdog = Watchdog::spawn(&bin.join("pg_ctl"), &data, dir.path(), run_as.as_ref())?;
        // From here on, dropping `pg` cleans up after any step that fails.
        let mut pg = Self {
            bin,
            data,
            port: 0,
            run_as,
            watchdog: Some(watchdog),
            durable,
            dir,
        };
        pg.init()?;
        pg.start_server()?;
        pg.create_database()?;
        if durable {
            pg.preallocate_wal()?;
            pg.warm_shared_buffers()?;
        }
        Ok(pg)
    }

    /// The connection URL: `postgres://postgres@127.0.0.1:<port>/proofpool`.
    pub fn url(&self) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{DATABASE}", self.port)
    }

    /// The TCP port the server listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's data directory (`PGDATA`). It lies inside a temp dir that
    /// also holds the server's unix socket and log; both are deleted on drop.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The directory the server binaries were taken from; it also holds the
    /// matching client tools (`psql`, `pg_dump`).
    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }

    /// `initdb`: trust auth, UTF8 with the C locale (the same sort order
    /// whatever the host's locale), and no fsync of the new files.
    fn init(&self) -> Result<(), PostgresError> {
        let mut cmd = self.server_command("initdb");
        cmd.arg("-D").arg(&self.data).args([
            "--auth=trust",
            &format!("--username={SUPERUSER}"),
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ]);
        self.run("initdb", cmd)
    }

    /// `pg_ctl start -w` on a free port, on another port if that one was
    /// taken in the meantime.
    fn start_server(&mut self) -> Result<(), PostgresError> {
        let log = self.server_log();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = crate::free_port().map_err(io("cannot find a free port on 127.0.0.1"))?;
            // pg_ctl hands these to the server through /bin/sh, hence the quoting.
            // fsync=off (tests): a crash loses the cluster, which a test
            // throws away anyway.
            let options = format!(
                "-c listen_addresses=127.0.0.1 -c port={port} -k {} -c fsync={} \
                 -c max_connections=200",
                sh_quote(&self.dir.path().to_string_lossy()),
                if self.durable {
                    DURABLE_SETTINGS
                } else {
                    "off"
                }
            );
            let log_start = fs::metadata(&log).map_or(0, |m| m.len());
            let mut cmd = self.server_command("pg_ctl");
            cmd.arg("start")
                .arg("-D")
                .arg(&self.data)
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", START_TIMEOUT_SECS, "-s", "-o", &options]);
            match self.run("pg_ctl start", cmd) {
                Ok(()) => {
                    self.port = port;
                    return Ok(());
                }
                Err(PostgresError::Failed {
                    what,
                    status,
                    output,
                }) => {
                    let this_start = read_from(&log, log_start);
                    // lc_messages is C (initdb --locale=C), so this is the text.
                    if attempt < PORT_ATTEMPTS && this_start.contains("Address already in use") {
                        continue;
                    }
                    return Err(PostgresError::Failed {
                        what,
                        status,
                        output: format!(
                            "{output}\nserver log {}:\n{}",
                            log.display(),
                            tail(&this_start)
                        ),
                    });
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// `createdb proofpool`, over TCP like the tests will connect.
    fn create_database(&self) -> Result<(), PostgresError> {
        let mut cmd = Command::new(self.bin.join("createdb"));
        cmd.current_dir(self.dir.path())
            .env("PGCONNECT_TIMEOUT", "10")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", SUPERUSER, DATABASE]);
        self.run("createdb", cmd)
    }

    /// Writes [`PREALLOCATED_WAL_SEGMENTS`] WAL segments (a switch to the
    /// next segment after a one-record message, each a new zero-filled file),
    /// then checkpoints, which renames them as the segments to come. About
    /// 2.5 s here.
    fn preallocate_wal(&self) -> Result<(), PostgresError> {
        let mut cmd = self.psql();
        cmd.arg("-c")
            .arg(format!(
                "DO $$ BEGIN FOR i IN 1..{PREALLOCATED_WAL_SEGMENTS} LOOP \
                 PERFORM pg_logical_emit_message(false, 'proofpool', 'preallocate'); \
                 PERFORM pg_switch_wal(); END LOOP; END $$"
            ))
            .args(["-c", "CHECKPOINT"]);
        self.run("psql preallocate WAL", cmd)
    }

    /// Writes a scratch table of [`WARM_PAGES`] pages, one row each, through
    /// the shared buffers, then drops it: every buffer has held a page, as on
    /// a server in service (see [`WARM_PAGES`]).
    fn warm_shared_buffers(&self) -> Result<(), PostgresError> {
        let mut cmd = self.psql();
        cmd.args(["-c", "CREATE UNLOGGED TABLE proofpool_warm (pad text) WITH (fillfactor = 10)"])
            .arg("-c")
            .arg(format!(
                "INSERT INTO proofpool_warm SELECT repeat('x', 800) FROM generate_series(1, {WARM_PAGES})"
            ))
            .args(["-c", "DROP TABLE proofpool_warm"]);
        self.run("psql warm shared buffers", cmd)
    }

    /// `CHECKPOINT`: writes every changed page to the data files and syncs
    /// them, and recycles the WAL segments written since the last one. A load
    /// benchmark runs it between phases, as a server in service does
    /// periodically, so that a phase does not pay for the one before it.
    pub fn checkpoint(&self) -> Result<(), PostgresError> {
        let mut cmd = self.psql();
        cmd.args(["-c", "CHECKPOINT"]);
        self.run("psql checkpoint", cmd)
    }

    /// `psql` on the database as the superuser, stopping at the first error;
    /// the caller adds the commands.
    fn psql(&self) -> Command {
        let mut cmd = Command::new(self.bin.join("psql"));
        cmd.current_dir(self.dir.path())
            .env("PGCONNECT_TIMEOUT", "10")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", SUPERUSER, "-d", DATABASE, "-X", "-q"])
            .args(["-v", "ON_ERROR_STOP=1"]);
        cmd
    }

    /// `pg_ctl stop -m immediate`: no checkpoint, the cluster is deleted next.
    fn stop(&self) -> Result<(), PostgresError> {
        let mut cmd = self.server_command("pg_ctl");
        cmd.arg("stop").arg("-D").arg(&self.data).args([
            "-m",
            "immediate",
            "-w",
            "-t",
            STOP_TIMEOUT_SECS,
            "-s",
        ]);
        self.run("pg_ctl stop", cmd)
    }

    /// Stops the server at once (`pg_ctl stop -m immediate`), as a crash or
    /// an outage would: every connection fails until [`Postgres::resume`].
    pub fn pause(&self) -> Result<(), PostgresError> {
        self.stop()
    }

    /// Starts the server again on the same port after [`Postgres::pause`],
    /// so clients that keep the URL reconnect to it.
    pub fn resume(&self) -> Result<(), PostgresError> {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -k {} -c fsync={} -c max_connections=200",
            self.port,
            sh_quote(&self.dir.path().to_string_lossy()),
            if self.durable {
                DURABLE_SETTINGS
            } else {
                "off"
            }
        );
        let mut cmd = self.server_command("pg_ctl");
        cmd.arg("start")
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(self.server_log())
            .args(["-w", "-t", START_TIMEOUT_SECS, "-s", "-o", &options]);
        self.run("pg_ctl start", cmd)
    }

    /// The server's log, outside `data` so that it survives a failed initdb.
    fn server_log(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// A command for a server program, run as the user that owns the cluster.
    fn server_command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut cmd = Command::new("runuser");
                cmd.args(["-u", &user.name, "--"]).arg(path);
                cmd
            }
            None => Command::new(path),
        };
        // The service user may not be allowed into the caller's directory.
        cmd.current_dir(self.dir.path());
        cmd
    }

    /// Runs `cmd` to completion with its output in a file in the temp dir
    /// (a file, not a pipe: `pg_ctl start` leaves the server running, and a
    /// pipe it inherited would never close). Fails with the end of that output.
    fn run(&self, what: &str, mut cmd: Command) -> Result<(), PostgresError> {
        let out_path = self
            .dir
            .path()
            .join(format!("{}.out", what.replace(' ', "-")));
        let out =
            File::create(&out_path).map_err(io(format!("cannot create {}", out_path.display())))?;
        let err = out
            .try_clone()
            .map_err(io(format!("cannot duplicate {}", out_path.display())))?;
        let status = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .status()
            .map_err(io(format!("cannot run {:?}", cmd.get_program())))?;
        if status.success() {
            return Ok(());
        }
        Err(PostgresError::Failed {
            what: what.to_owned(),
            status,
            output: tail(&read_from(&out_path, 0)),
        })
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // postmaster.pid exists from the server's start until its clean exit.
        let server_pid = fs::read_to_string(self.data.join("postmaster.pid"))
            .ok()
            .and_then(|pid_file| pid_file.lines().next()?.trim().parse::<u32>().ok());
        let stopped = match server_pid {
            None => true,
            Some(pid) => match self.stop() {
                Ok(()) => {
                    // pg_ctl returns once postmaster.pid is gone, which the
                    // server removes just before it exits and closes its port.
                    wait_for_exit(pid, Duration::from_secs(5));
                    true
                }
                Err(e) => {
                    eprintln!(
                        "cannot stop the postgres server in {}: {e}",
                        self.dir.path().display()
                    );
                    false
                }
            },
        };
        if let Some(watchdog) = self.watchdog.take() {
            watchdog.finish(stopped);
        }
        // Then `self.dir` deletes the temp dir.
    }
}

/// Waits until process `pid` has exited (or is a zombie: PID 1 here may not
/// reap the orphaned server), at most `limit`.
fn wait_for_exit(pid: u32, limit: Duration) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return;
        };
        // "pid (comm) S ...": the state follows the last ')'.
        if stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().next())
            == Some("Z")
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The system user that runs the server when this process is root.
#[derive(Debug)]
struct ServiceUser {
    name: String,
    uid: u32,
    gid: u32,
}

impl ServiceUser {
    /// Looks up [`SERVICE_USER`] (through NSS, with `getent`).
    fn lookup() -> Result<Self, PostgresError> {
        let output = Command::new("getent")
            .args(["passwd", SERVICE_USER])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .map_err(io("cannot run getent to look up the postgres user"))?;
        if !output.status.success() {
            return Err(PostgresError::NoServiceUser);
        }
        // name:password:uid:gid:gecos:home:shell
        let entry = String::from_utf8_lossy(&output.stdout);
        let mut fields = entry.trim().split(':').skip(2);
        let mut id = || fields.next().and_then(|f| f.parse::<u32>().ok());
        match (id(), id()) {
            (Some(uid), Some(gid)) => Ok(Self {
                name: SERVICE_USER.to_owned(),
                uid,
                gid,
            }),
            _ => Err(PostgresError::Io {
                what: format!("getent passwd {SERVICE_USER}"),
                source: std::io::Error::other(format!("unexpected entry {:?}", entry.trim())),
            }),
        }
    }
}

/// Stops the cluster and deletes its dir if this process dies holding it.
#[derive(Debug)]
struct Watchdog {
    child: Child,
    /// The pipe's only write end; closed when this process exits.
    pipe: ChildStdin,
}

impl Watchdog {
    fn spawn(
        pg_ctl: &Path,
        data: &Path,
        dir: &Path,
        run_as: Option<&ServiceUser>,
    ) -> Result<Self, PostgresError> {
        let mut cmd = match run_as {
            Some(user) => {
                let mut cmd = Command::new("runuser");
                cmd.args(["-u", &user.name, "--", "sh"]);
                cmd
            }
            None => Command::new("sh"),
        };
        let mut child = cmd
            .args(["-c", WATCHDOG, "sh"])
            .arg(pg_ctl)
            .arg(data)
            .arg(dir)
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: a Ctrl-C in the terminal reaches the
            // tests, not the watchdog that cleans up after them.
            .process_group(0)
            .spawn()
            .map_err(io("cannot start the cleanup watchdog (sh)"))?;
        let pipe = child.stdin.take().expect("stdin was set to Stdio::piped()");
        Ok(Self { child, pipe })
    }

    /// Tells the watchdog that the server has `stopped`, or has it kill the
    /// server, and waits for it to exit. Either way the caller deletes the dir.
    fn finish(mut self, stopped: bool) {
        let line: &[u8] = if stopped { b"stopped\n" } else { b"kill\n" };
        if let Err(e) = self.pipe.write_all(line) {
            eprintln!("cannot reach the postgres cleanup watchdog: {e}");
        }
        drop(self.pipe);
        if let Err(e) = self.child.wait() {
            eprintln!("cannot reap the postgres cleanup watchdog: {e}");
        }
    }
}

/// `$PROOFPOOL_PG_BIN`, else the highest `/usr/lib/postgresql/<version>/bin`
/// that has every program in [`PROGRAMS`].
fn find_bin_dir() -> Result<PathBuf, PostgresError> {
    let complete = |dir: &Path| PROGRAMS.iter().all(|p| dir.join(p).is_file());
    if let Some(dir) = std::env::var_os(BIN_ENV) {
        let dir = PathBuf::from(dir);
        if complete(&dir) {
            return Ok(dir);
        }
        return Err(PostgresError::Missing {
            searched: format!("{BIN_ENV}={}", dir.display()),
        });
    }
    let mut best: Option<(Vec<u32>, PathBuf)> = None;
    for entry in fs::read_dir(DEBIAN_ROOT).into_iter().flatten().flatten() {
        let version = entry.file_name().to_str().and_then(|name| {
            name.split('.')
                .map(|part| part.parse::<u32>().ok())
                .collect::<Option<Vec<u32>>>()
        });
        let Some(version) = version else { continue };
        let bin = entry.path().join("bin");
        if complete(&bin) && best.as_ref().is_none_or(|(v, _)| version > *v) {
            best = Some((version, bin));
        }
    }
    best.map(|(_, bin)| bin)
        .ok_or_else(|| PostgresError::Missing {
            searched: format!("{DEBIAN_ROOT}/*/bin"),
        })
}

/// This process's effective uid, from /proc (no libc: `unsafe_code` is
/// forbidden in the workspace).
fn effective_uid() -> Result<u32, PostgresError> {
    let status = fs::read_to_string("/proc/self/status").map_err(io(
        "cannot read /proc/self/status to find the effective uid",
    ))?;
    // "Uid:\t<real>\t<effective>\t<saved>\t<filesystem>"
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1)?.parse().ok())
        .ok_or_else(|| PostgresError::Io {
            what: "cannot find the effective uid".to_owned(),
            source: std::io::Error::other("no Uid line in /proc/self/status"),
        })
}

/// `s` as one /bin/sh word.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The file's text from byte `offset` on, or nothing if it cannot be read.
fn read_from(path: &Path, offset: u64) -> String {
    let bytes = fs::read(path).unwrap_or_default();
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

/// The last [`LOG_TAIL_LINES`] lines of `text`.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}
