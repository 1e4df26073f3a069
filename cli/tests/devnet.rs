//! The README's main command, end to end: `proofpool devnet` brings up
//! bitcoind, anvil, the pool, settlement and two reference miners, and an
//! epoch with credits becomes claimable on-chain.

use std::process::{Command, Stdio};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn devnet_reaches_a_claimable_epoch() {
    let state = proofpool_devtools::TempDir::new("devnet").unwrap();
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_proofpool"))
        .args(["devnet", "--until-claimable", "240", "--epoch-secs", "5"])
        .args(["--anvil-port", &free_port().to_string()])
        .args(["--stratum-port", &free_port().to_string()])
        .args(["--stratum-tls-port", &free_port().to_string()])
        .args(["--api-port", &free_port().to_string()])
        .args(["--metrics-port", &free_port().to_string()])
        .arg("--state-dir")
        .arg(state.path().join(".devnet"))
        .env("PROOFPOOL_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "devnet failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("stratum+tcp://127.0.0.1:"), "{stdout}");
    assert!(stdout.contains("stratum+ssl://127.0.0.1:"), "{stdout}");
    assert!(stdout.contains("distributor"), "{stdout}");
    // The second miner mined through the TLS port.
    let tls_line = stdout
        .lines()
        .find(|l| l.contains(" over TLS: "))
        .unwrap_or_else(|| panic!("no TLS miner line in\n{stdout}"));
    assert!(!tls_line.contains(" 0 shares accepted"), "{tls_line}");
    assert!(stdout.contains("first claimable epoch after"), "{stdout}");
    assert!(stdout.contains("with the API's proof"), "{stdout}");
    // Epoch files were written for the auditor.
    let files = std::fs::read_dir(state.path().join(".devnet/epochs"))
        .unwrap()
        .count();
    assert!(files >= 1);
    eprintln!(
        "devnet reached a claimable epoch in {:?}",
        started.elapsed()
    );
}
