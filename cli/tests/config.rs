//! The config file: the committed example and reference are generated from
//! the flags and stay current; `config check` reports every problem with its
//! key; flags override the environment, which overrides the file.

use std::process::{Command, Output};

fn proofpool(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_proofpool"));
    cmd.args(args)
        .env_remove("PROOFPOOL_DATABASE_URL")
        .env("RUST_BACKTRACE", "0")
        .env("PROOFPOOL_LOG", "error");
    cmd
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn repo(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

#[test]
fn committed_example_and_reference_are_current() {
    let out = proofpool(&["config", "example"]).output().unwrap();
    assert!(out.status.success());
    let committed = std::fs::read_to_string(repo("proofpool.example.toml")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        committed,
        "regenerate with `cargo run --bin proofpool -- config example > proofpool.example.toml`"
    );
    let out = proofpool(&[
        "config",
        "check",
        repo("proofpool.example.toml").to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", text(&out));

    let out = proofpool(&["config", "reference"]).output().unwrap();
    let reference = String::from_utf8_lossy(&out.stdout).into_owned();
    let guide = std::fs::read_to_string(repo("docs/operator-guide.md")).unwrap();
    let start = guide.find("<!-- config-reference:start -->").unwrap();
    let end = guide.find("<!-- config-reference:end -->").unwrap();
    assert_eq!(
        guide[start + "<!-- config-reference:start -->".len()..end].trim(),
        reference.trim(),
        "regenerate the table with `proofpool config reference`"
    );
}

#[test]
fn check_reports_every_problem_with_its_key() {
    let dir = proofpool_devtools::TempDir::new("config").unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "[pool]\nmax_connections = \"lots\"\nmin_difficulty = \"abc\"\nfrobnicate = 1\n\
         node_url = \"http://127.0.0.1:8332/\"\n[settle]\nfee_bps = -3\n[wat]\nx = 1\n",
    )
    .unwrap();
    let out = proofpool(&["config", "check", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let t = text(&out);
    for needle in [
        "pool.max_connections: invalid value \"lots\"",
        "pool.min_difficulty: invalid value \"abc\"",
        "pool.frobnicate: unknown key",
        "settle.fee_bps: invalid value \"-3\"",
        "wat: unknown section",
        "5 problems",
    ] {
        assert!(t.contains(needle), "missing {needle:?} in:\n{t}");
    }
    std::fs::write(&file, "[pool\n").unwrap();
    let out = proofpool(&["config", "check", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("not valid TOML"), "{}", text(&out));
    // A bad file stops `--config` runs before anything starts.
    std::fs::write(&file, "[pool]\nepoch_secs = \"soon\"\n").unwrap();
    let out = proofpool(&["--config", file.to_str().unwrap(), "pool"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("pool.epoch_secs"), "{}", text(&out));
}

#[test]
fn flags_override_environment_which_overrides_the_file() {
    let dir = proofpool_devtools::TempDir::new("config-precedence").unwrap();
    let file = dir.path().join("p.toml");
    std::fs::write(
        &file,
        "[pool]\nnode_url = [\"http://127.0.0.1:9/\"]\nnetwork = \"regtest\"\n\
         payout_address = \"bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080\"\n\
         database_url = \"mysql://from-file\"\ncookie = \"/nonexistent/cookie\"\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let out = proofpool(&["--config", f, "pool"]).output().unwrap();
    assert!(text(&out).contains("mysql://from-file"), "{}", text(&out));
    let out = proofpool(&["--config", f, "pool"])
        .env("PROOFPOOL_DATABASE_URL", "mysql://from-env")
        .output()
        .unwrap();
    assert!(text(&out).contains("mysql://from-env"), "{}", text(&out));
    let out = proofpool(&["--config", f, "pool", "--database-url", "mysql://from-flag"])
        .env("PROOFPOOL_DATABASE_URL", "mysql://from-env")
        .output()
        .unwrap();
    assert!(text(&out).contains("mysql://from-flag"), "{}", text(&out));
}

#[test]
fn a_pool_tag_that_does_not_fit_the_coinbase_stops_the_pool_at_start() {
    let dir = proofpool_devtools::TempDir::new("config-tag").unwrap();
    let db = dir.sqlite_url("pool.db");
    // 73 bytes: one more than the scriptSig leaves with 8-byte extranonce2s.
    let tag = "x".repeat(73);
    let pool = |en2: &str| {
        let mut cmd = proofpool(&[
            "pool",
            "--network",
            "regtest",
            "--node-url",
            "http://127.0.0.1:9/",
            "--payout-address",
            "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080",
            "--database-url",
            &db,
            "--listen",
            "127.0.0.1:0",
            "--pool-tag",
            &tag,
            "--extranonce2-size",
            en2,
        ]);
        cmd.env("PROOFPOOL_RPC_USER", "u")
            .env("PROOFPOOL_RPC_PASSWORD", "p");
        cmd
    };
    let out = pool("8").output().unwrap();
    assert!(!out.status.success());
    let said = text(&out);
    assert!(said.contains("pool_tag") && said.contains("72"), "{said}");
    // With 4-byte extranonce2s it fits: the pool starts (and waits for the
    // node at port 9, which is not there), so it is still running later.
    let mut child = pool("4")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let exited = child.try_wait().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        exited.is_none(),
        "a 73-byte tag fits with 4-byte extranonce2s"
    );
}

/// Every series the Grafana dashboard (`docs/grafana/proofpool.json`)
/// queries is one the pool or the API serves: its name is registered in
/// their metrics code.
#[test]
fn grafana_dashboard_uses_only_metrics_the_code_serves() {
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo("docs/grafana/proofpool.json")).unwrap(),
    )
    .unwrap();
    let served = [
        std::fs::read_to_string(repo("pool/src/server/telemetry.rs")).unwrap(),
        std::fs::read_to_string(repo("api/src/metrics.rs")).unwrap(),
    ]
    .concat();
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            exprs.push(target["expr"].as_str().unwrap().to_owned());
        }
    }
    assert!(exprs.len() >= 10, "{exprs:?}");
    let mut names = 0;
    for expr in &exprs {
        // `$pool_job` and `$api_job` are the dashboard's variables.
        for token in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$')) {
            if !(token.starts_with("pool_") || token.starts_with("proofpool_api_")) {
                continue;
            }
            let name = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| token.strip_suffix(suffix))
                .unwrap_or(token);
            assert!(
                served.contains(&format!("\"{name}")) || served.contains(&format!("{name} ")),
                "the dashboard queries {name}, which neither the pool nor the API serves"
            );
            names += 1;
        }
    }
    assert!(names >= exprs.len(), "every query names a metric");
    // The scrape config in the operator guide names the jobs the dashboard filters on.
    let guide = std::fs::read_to_string(repo("docs/operator-guide.md")).unwrap();
    for job in ["proofpool-pool", "proofpool-api"] {
        assert!(guide.contains(&format!("job_name: {job}")), "{job}");
    }
}

#[test]
fn keygen_writes_an_authority_key_once_and_shows_its_public_key() {
    let dir = proofpool_devtools::TempDir::new("keygen").unwrap();
    let path = dir.path().join("authority.toml");
    let file = path.to_str().unwrap();
    let out = proofpool(&["keygen", "--out", file]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let printed = String::from_utf8_lossy(&out.stdout);
    let public = printed.lines().last().unwrap().trim().to_owned();
    // What SRI clients pin: base58check of version 1 and the x-only key,
    // the same key the file's secret makes.
    let key = proofpool_pool::sv2::keys::AuthorityKey::read(&path).unwrap();
    assert_eq!(
        proofpool_pool::sv2::keys::decode_public(&public).unwrap(),
        *key.public()
    );
    // Never overwritten.
    let again = proofpool(&["keygen", "--out", file]).output().unwrap();
    assert!(!again.status.success());
    assert!(
        text(&again).contains("never overwritten"),
        "{}",
        text(&again)
    );
    assert_eq!(
        proofpool_pool::sv2::keys::AuthorityKey::read(&path).unwrap(),
        key
    );
    // --show reads it back.
    let shown = proofpool(&["keygen", "--show", file]).output().unwrap();
    assert!(shown.status.success(), "{}", text(&shown));
    assert_eq!(
        String::from_utf8_lossy(&shown.stdout)
            .lines()
            .last()
            .unwrap()
            .trim(),
        public
    );
    // A file that is not a key says so.
    std::fs::write(dir.path().join("bad.toml"), "secret = 1\n").unwrap();
    let bad = proofpool(&[
        "keygen",
        "--show",
        dir.path().join("bad.toml").to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(!bad.status.success());
    assert!(
        text(&bad).contains("not an authority key file"),
        "{}",
        text(&bad)
    );
}

#[test]
fn a_stratum_v2_miner_url_must_name_a_valid_authority_key() {
    let missing = proofpool(&[
        "miner",
        "--url",
        "stratum2+tcp://127.0.0.1:1",
        "--user",
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    ])
    .output()
    .unwrap();
    assert!(!missing.status.success());
    assert!(
        text(&missing).contains("AUTHORITY_PUBKEY"),
        "{}",
        text(&missing)
    );
    let garbled = proofpool(&[
        "miner",
        "--url",
        "stratum2+tcp://127.0.0.1:1/9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH73",
        "--user",
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    ])
    .output()
    .unwrap();
    assert!(!garbled.status.success());
    assert!(
        text(&garbled).contains("the authority key"),
        "{}",
        text(&garbled)
    );
}
