//! The load generator end to end, briefly, so it keeps working: a real
//! regtest bitcoind, a SQLite store, the pool in its own process, four
//! connections for two seconds over Stratum V1 and then V2, then a few idle
//! ones (and 30 idle V2 ones), then more idle ones
//! than one instance may hold (`--idle-per-instance`), spread over three
//! pool processes as the 100k step is. Every share must be accepted, none
//! rejected or left unanswered.

use serde_json::Value;
use std::process::Command;

#[test]
fn a_short_sqlite_run_accepts_every_share() {
    let dir = std::env::temp_dir().join(format!("proofpool-load-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_proofpool-load"))
        .args(["--phases", "throughput,throughput-v2,idle,idle-v2"])
        .args(["--connections", "4", "--window", "8"])
        .args(["--duration", "2", "--warmup", "0", "--max-rate", "20000"])
        .args([
            "--idle",
            "20,50",
            "--idle-per-instance",
            "24",
            "--source-ips",
            "2",
            "--idle-v2",
            "30",
        ])
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "proofpool-load failed:\n{stderr}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();

    assert_eq!(report["store"], "sqlite");
    let load = &report["load"][0];
    assert_eq!(load["phase"], "throughput");
    assert_eq!(load["connections"], 4);
    assert!(load["accepted_per_sec"].as_f64().unwrap() > 0.0, "{load}");
    assert_eq!(load["rejected"], serde_json::json!({}), "{load}");
    assert_eq!(load["unanswered"], 0, "{load}");
    assert_eq!(load["clean_jobs"], 0, "{load}");
    assert_eq!(load["errors"], serde_json::json!([]), "{load}");
    assert!(load["latency_us"]["count"].as_u64().unwrap() > 0, "{load}");
    assert!(load["cpu"]["pool"].as_f64().unwrap() > 0.0, "{load}");
    assert!(
        load["store"]["commits_per_sec"].as_f64().unwrap() > 0.0,
        "{load}"
    );

    // The same closed loop over Stratum V2 extended channels: every share
    // accepted, and fewer bytes on the wire per share than V1's JSON lines
    // (a V1 submit line alone is over 100 bytes; a V2 SubmitSharesExtended
    // frame, encrypted, is 71).
    let v2 = &report["load"][1];
    assert_eq!(v2["phase"], "throughput-v2");
    assert_eq!(v2["connections"], 4);
    assert!(v2["accepted_per_sec"].as_f64().unwrap() > 0.0, "{v2}");
    assert_eq!(v2["rejected"], serde_json::json!({}), "{v2}");
    assert_eq!(v2["unanswered"], 0, "{v2}");
    assert_eq!(v2["errors"], serde_json::json!([]), "{v2}");
    let bytes = |r: &Value, way: &str| r["wire_bytes_per_share"][way].as_f64().unwrap();
    assert!(bytes(load, "up") > 100.0, "{load}");
    assert!(bytes(v2, "up") < bytes(load, "up"), "{v2}");
    assert!(bytes(v2, "down") < bytes(load, "down"), "{v2}");
    let idle_v2 = &report["idle_v2"];
    assert_eq!(idle_v2["connections"], 30, "{idle_v2}");
    assert!(idle_v2["pool_rss_kib"].as_u64().unwrap() > 0, "{idle_v2}");

    let idle = &report["idle"];
    assert_eq!(idle["points"][0]["connections"], 20, "{idle}");
    assert_eq!(idle["points"][0]["instances"], 1, "{idle}");
    assert_eq!(idle["points"][1]["connections"], 50, "{idle}");
    assert_eq!(idle["points"][1]["instances"], 3, "{idle}");
    assert!(
        idle["points"][1]["pool_rss_kib"].as_u64().unwrap()
            > 2 * idle["points"][0]["pool_rss_kib"].as_u64().unwrap(),
        "three pools hold more than one: {idle}"
    );
    assert_eq!(idle["errors"], serde_json::json!([]), "{idle}");
    assert!(idle["baseline_rss_kib"].as_u64().unwrap() > 0, "{idle}");

    // The table went to stdout.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("| throughput | 4 | window 8 |"), "{stdout}");
}
