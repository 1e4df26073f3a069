//! Real throwaway PostgreSQL clusters: two start side by side, answer on their
//! own ports, and leave neither a process nor a file behind, whether the
//! handle is dropped or the process holding it is killed.

use proofpool_devtools::Postgres;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `sql` with psql from the cluster's own bin dir, connecting by its URL.
fn psql(pg: &Postgres, sql: &str) -> String {
    let output = Command::new(pg.bin_dir().join("psql"))
        .args(["-d", &pg.url(), "-Atc", sql])
        .output()
        .expect("psql runs");
    assert!(
        output.status.success(),
        "psql {sql:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn accepts_connections(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
}

/// Waits up to `limit` for the port to close and the cluster's temp dir to go.
fn wait_until_gone(port: u16, data_dir: &Path, limit: Duration) {
    let temp_dir = data_dir
        .parent()
        .expect("the data dir is inside a temp dir");
    let deadline = Instant::now() + limit;
    while accepts_connections(port) || temp_dir.exists() {
        assert!(
            Instant::now() < deadline,
            "after {limit:?}: port {port} open: {}, {} exists: {}",
            accepts_connections(port),
            temp_dir.display(),
            temp_dir.exists()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn two_clusters_start_side_by_side_and_vanish_on_drop() {
    let starts: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(|| {
                let started = Instant::now();
                let pg = Postgres::start().unwrap_or_else(|e| panic!("{e}"));
                (pg, started.elapsed())
            })
        })
        .collect();
    let clusters: Vec<(Postgres, Duration)> = starts
        .into_iter()
        .map(|start| start.join().expect("the start thread does not panic"))
        .collect();
    for (pg, took) in &clusters {
        eprintln!("cluster on port {} started in {took:?}", pg.port());
    }
    let (a, b) = (&clusters[0].0, &clusters[1].0);
    assert_ne!(a.port(), b.port());
    assert_ne!(a.data_dir(), b.data_dir());

    for pg in [a, b] {
        assert_eq!(
            pg.url(),
            format!("postgres://postgres@127.0.0.1:{}/proofpool", pg.port())
        );
        assert!(pg.data_dir().join("PG_VERSION").is_file());
        assert_eq!(psql(pg, "select 1"), "1");
        assert_eq!(
            psql(pg, "select current_database(), current_user"),
            "proofpool|postgres"
        );
        assert_eq!(psql(pg, "show max_connections"), "200");
    }
    // Separate clusters: a table made in one does not appear in the other.
    psql(a, "create table only_in_a (id int)");
    assert_eq!(psql(a, "select to_regclass('only_in_a') is not null"), "t");
    assert_eq!(psql(b, "select to_regclass('only_in_a') is not null"), "f");

    let gone: Vec<(u16, PathBuf)> = clusters
        .iter()
        .map(|(pg, _)| (pg.port(), pg.data_dir().to_path_buf()))
        .collect();
    drop(clusters);
    for (port, data_dir) in gone {
        // Drop returns only after the server has exited and the dir is deleted.
        assert!(!accepts_connections(port), "port {port} still open");
        let temp_dir = data_dir
            .parent()
            .expect("the data dir is inside a temp dir");
        assert!(!temp_dir.exists(), "{} still exists", temp_dir.display());
    }
}

/// Set for the child process of `a_killed_owner_leaves_nothing_behind`.
const HOLDER_ENV: &str = "PROOFPOOL_TEST_HOLD_POSTGRES";
/// Starts the child's report line: `<HELD> <port> <data dir>`.
const HELD: &str = "held-postgres-cluster:";

/// Kills the child process when dropped, so that a failed assert does not
/// leave it waiting.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // It may have exited already; then there is nothing to do.
        if self.0.kill().is_ok() {
            self.0.wait().unwrap();
        }
    }
}

/// The child process of `a_killed_owner_leaves_nothing_behind`: starts a
/// cluster, reports it, and waits to be killed. Does nothing on its own.
#[test]
#[ignore = "run by a_killed_owner_leaves_nothing_behind in a child process"]
fn hold_a_cluster_until_killed() {
    if std::env::var_os(HOLDER_ENV).is_none() {
        return;
    }
    let started = Instant::now();
    let pg = Postgres::start().unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "cluster on port {} started in {:?}",
        pg.port(),
        started.elapsed()
    );
    let mut stdout = std::io::stdout();
    writeln!(stdout, "\n{HELD} {} {}", pg.port(), pg.data_dir().display()).unwrap();
    stdout.flush().unwrap();
    std::thread::sleep(Duration::from_secs(120));
    drop(pg);
}

#[test]
fn a_killed_owner_leaves_nothing_behind() {
    let mut holder = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args(["hold_a_cluster_until_killed", "--exact", "--ignored"])
            .args(["--nocapture", "--test-threads=1"])
            .env(HOLDER_ENV, "1")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = holder.0.stdout.take().unwrap();
    let report = BufReader::new(stdout)
        .lines()
        .find_map(|line| Some(line.unwrap().strip_prefix(HELD)?.trim().to_owned()))
        .expect("the holder reports its cluster");
    let (port, data_dir) = report.split_once(' ').unwrap();
    let (port, data_dir): (u16, PathBuf) = (port.parse().unwrap(), data_dir.into());
    assert!(accepts_connections(port));
    assert!(data_dir.is_dir());

    // SIGKILL: no unwinding, no Drop; only the watchdog is left to clean up.
    drop(holder);
    wait_until_gone(port, &data_dir, Duration::from_secs(20));
}
