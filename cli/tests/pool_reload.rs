//! `proofpool pool --config FILE` re-reads the file on SIGHUP: the coinbase
//! settings apply to the running pool (a miner subscribed to extranonce
//! changes gets `mining.set_extranonce`), other changes are logged as
//! waiting for a restart, and a broken file changes nothing.

use proofpool_devtools::{Bitcoind, TempDir};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn free_port() -> u16 {
    proofpool_devtools::free_port().unwrap()
}

/// The `[pool]` section, with `extra` lines at the end.
fn config(node: &Bitcoind, payout: &str, db: &str, port: u16, extra: &str) -> String {
    format!(
        "[pool]\n\
         network = \"regtest\"\n\
         node_url = \"{}\"\n\
         cookie = {:?}\n\
         payout_address = \"{payout}\"\n\
         database_url = \"{db}\"\n\
         listen = \"127.0.0.1:{port}\"\n\
         difficulty = \"0.000000001\"\n\
         min_difficulty = \"0.000000001\"\n\
         {extra}\n",
        node.rpc_url(),
        node.cookie_path().display().to_string(),
    )
}

fn hangup(child: &Child) {
    let status = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Reads messages until one named `method` (or the reply with id `method`
/// parsed as a number), within the socket's read timeout.
fn until(lines: &mut impl BufRead, method: &str) -> Value {
    for _ in 0..100 {
        let mut line = String::new();
        assert!(
            lines.read_line(&mut line).unwrap() > 0,
            "closed before {method}"
        );
        let m: Value = serde_json::from_str(&line).unwrap();
        let id = m["id"].as_u64().map(|id| id.to_string());
        if m["method"] == method || id.as_deref() == Some(method) {
            return m;
        }
    }
    panic!("no {method} in 100 messages");
}

#[test]
fn sighup_applies_the_coinbase_settings_and_reports_the_rest() {
    let dir = TempDir::new("pool-reload-cli").unwrap();
    let db = dir.sqlite_url("pool.db");
    let (node, payout) =
        Bitcoind::with_pool_payout(101).expect("bitcoind (make setup installs it)");
    let port = free_port();
    let file = dir.path().join("proofpool.toml");
    std::fs::write(&file, config(&node, &payout, &db, port, "")).unwrap();
    let log = dir.path().join("pool.log");
    let mut pool = Command::new(env!("CARGO_BIN_EXE_proofpool"))
        .arg("--config")
        .arg(&file)
        .arg("pool")
        .env("PROOFPOOL_LOG", "info")
        .env("PROOFPOOL_LOG_FORMAT", "json")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut stream = None;
    for _ in 0..200 {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
            stream = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let stream = stream.expect("the pool listens");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut write = stream.try_clone().unwrap();
    let mut lines = BufReader::new(stream);
    write
        .write_all(
            concat!(
                r#"{"id":1,"method":"mining.extranonce.subscribe","params":[]}"#,
                "\n",
                r#"{"id":2,"method":"mining.subscribe","params":[]}"#,
                "\n",
                r#"{"id":3,"method":"mining.authorize","params":["0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed","x"]}"#,
                "\n",
            )
            .as_bytes(),
        )
        .unwrap();
    let subscribed = until(&mut lines, "2");
    let en1 = subscribed["result"][1].as_str().unwrap().to_owned();
    assert_eq!(subscribed["result"][2], 8);
    until(&mut lines, "mining.notify");

    // A new extranonce2 size and tag (applied) and an idle timeout (not).
    std::fs::write(
        &file,
        config(
            &node,
            &payout,
            &db,
            port,
            "extranonce2_size = 4\npool_tag = \"/hup/\"\nidle_timeout_secs = 1234",
        ),
    )
    .unwrap();
    hangup(&pool);
    let set = until(&mut lines, "mining.set_extranonce");
    assert_eq!(set["params"], serde_json::json!([en1, 4]));
    let job = until(&mut lines, "mining.notify");
    assert!(
        job["params"][2].as_str().unwrap().contains("2f6875702f"), // "/hup/"
        "{job}"
    );

    // A broken file: an error in the log, and the pool serves on unchanged.
    std::fs::write(
        &file,
        config(&node, &payout, &db, port, "extranonce2_size = 9"),
    )
    .unwrap();
    hangup(&pool);
    std::thread::sleep(Duration::from_millis(500));
    write
        .write_all(b"{\"id\":4,\"method\":\"mining.suggest_difficulty\",\"params\":[0.001]}\n")
        .unwrap();
    assert_eq!(until(&mut lines, "4")["result"], true);

    Command::new("kill")
        .args(["-TERM", &pool.id().to_string()])
        .status()
        .unwrap();
    let mut status = None;
    for _ in 0..200 {
        status = pool.try_wait().unwrap();
        if status.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if status.is_none() {
        let _ = pool.kill();
        let _ = pool.wait();
    }
    let mut said = String::new();
    std::fs::File::open(&log)
        .unwrap()
        .read_to_string(&mut said)
        .unwrap();
    assert!(status.is_some_and(|s| s.success()), "clean stop: {said}");
    assert!(
        said.contains("idle_timeout_secs") && said.contains("next restart"),
        "{said}"
    );
    assert!(said.contains("config reload failed"), "{said}");
    assert!(said.contains("extranonce2_size"), "{said}");
}
