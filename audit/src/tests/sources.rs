//! The driver over real sources: a directory, an HTTP API, a chain (anvil).

use super::*;

fn write_all(dir: &std::path::Path, fx: &Fixture) {
    for (i, bytes) in fx.bytes.iter().enumerate() {
        std::fs::write(dir.join(EpochFile::file_name(i as u64 + 1)), bytes).unwrap();
    }
}

#[derive(Default)]
struct Recorder {
    started: Vec<(u64, u64)>,
    finished: Vec<u64>,
}

impl AuditObserver for Recorder {
    fn epoch_started(&mut self, epoch: u64, shares: u64) {
        self.started.push((epoch, shares));
    }

    fn epoch_finished(&mut self, verdict: &EpochVerdict) {
        self.finished.push(verdict.epoch);
    }
}

#[tokio::test]
async fn the_driver_audits_a_directory() {
    let fx = fixture();
    let dir = proofpool_devtools::TempDir::new("audit").unwrap();
    write_all(dir.path(), fx);
    std::fs::write(dir.path().join("notes.txt"), b"not an epoch").unwrap();
    let source = EpochSource::dir(dir.path());
    assert_eq!(source.newest().await.unwrap(), Some(3));

    let mut rec = Recorder::default();
    let report = audit(&source, None, None, &AuditOptions::default(), &mut rec)
        .await
        .unwrap();
    assert!(report.is_ok());
    assert_eq!(rec.started, vec![(1, 6), (2, 4), (3, 0)]);
    assert_eq!(rec.finished, vec![1, 2, 3]);
    assert!(!report.chain_checked);

    let options = AuditOptions {
        from: 2,
        to: Some(2),
        ..AuditOptions::default()
    };
    let report = audit(&source, None, None, &options, &mut NoObserver)
        .await
        .unwrap();
    assert_eq!(report.verdicts.len(), 1);
    assert_eq!(report.verdicts[0].epoch, 2);
    assert!(report.is_ok());

    // A forged epoch 3 on disk.
    std::fs::write(
        dir.path().join(EpochFile::file_name(3)),
        tampered(fx, 2, |f| f.blocks[0].credits[0].sats += 1),
    )
    .unwrap();
    let report = audit(
        &source,
        None,
        None,
        &AuditOptions::default(),
        &mut NoObserver,
    )
    .await
    .unwrap();
    assert_eq!(report.failed_epochs(), vec![3]);

    // A missing epoch 2.
    std::fs::remove_file(dir.path().join(EpochFile::file_name(2))).unwrap();
    let report = audit(
        &source,
        None,
        None,
        &AuditOptions::default(),
        &mut NoObserver,
    )
    .await
    .unwrap();
    assert!(has(&report.verdicts[1], Subject::File, "file"));
    let err = audit(
        &source,
        None,
        None,
        &AuditOptions {
            from: 3,
            ..AuditOptions::default()
        },
        &mut NoObserver,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, AuditError::Replay { epoch: 2, .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_driver_matches_epochs_committed_on_anvil() {
    use alloy::network::EthereumWallet;
    use alloy::signers::local::PrivateKeySigner;
    use proofpool_chain::{DeployParams, DistributorClient, deploy};

    let anvil =
        proofpool_devtools::spawn_anvil(None).expect("anvil from node_modules (make setup)");
    let settler = PrivateKeySigner::from(anvil.keys()[0].clone());
    let provider =
        proofpool_chain::connect(anvil.endpoint_url(), EthereumWallet::from(settler.clone()));
    let deployment = deploy(
        &provider,
        &DeployParams {
            token: None,
            owner: settler.address(),
            settler: settler.address(),
            guardian: settler.address(),
            challenge_period: 3600,
            mint_to_settler: U256::from(10u128.pow(30)),
            params: settle::pool_params(U256::from(1u64)),
        },
    )
    .await
    .unwrap();
    let client = DistributorClient::new(deployment.distributor, provider);
    let domain = client.domain().await.unwrap();

    // Settle and commit three epochs the way the engine does; write a fourth
    // file that is not committed.
    let dir = proofpool_devtools::TempDir::new("audit-anvil").unwrap();
    let mut settle = settle::Settle::new(&default_plan(), domain);
    // MockBTC has 8 decimals: one base unit per sat.
    settle.token_per_sat = U256::from(1u64);
    let mut prev = B256::ZERO;
    let mut files = Vec::new();
    for e in 1..=4u64 {
        let built = settle.epoch(prev);
        std::fs::write(dir.path().join(EpochFile::file_name(e)), &built.bytes).unwrap();
        if e <= 3 {
            let increase = built.commit.totalCumulative - built.prev_total;
            if !increase.is_zero() {
                let pull = client.funding_for(increase).await.unwrap();
                client.approve_funding(pull).await.unwrap();
            }
            client.commit_epoch(built.commit.clone()).await.unwrap();
            prev = client.epoch_hash(e).await.unwrap();
        }
        files.push(built.file);
    }

    let source = EpochSource::dir(dir.path());
    let chain = ChainReader::connect(anvil.endpoint_url(), deployment.distributor);
    let report = audit(
        &source,
        Some(&chain),
        None,
        &AuditOptions::default(),
        &mut NoObserver,
    )
    .await
    .unwrap();
    for v in &report.verdicts {
        assert_ok(v);
        assert!(v.onchain_checked);
        assert_eq!(v.finalized, Some(false));
    }
    assert_eq!(
        report.verdicts.len(),
        3,
        "only committed epochs are audited"
    );

    // The same content in other bytes: epoch 2 fails on its dataHash.
    std::fs::write(
        dir.path().join(EpochFile::file_name(2)),
        serde_json::to_vec_pretty(&files[1]).unwrap(),
    )
    .unwrap();
    let report = audit(
        &source,
        Some(&chain),
        None,
        &AuditOptions::default(),
        &mut NoObserver,
    )
    .await
    .unwrap();
    assert_eq!(report.failed_epochs(), vec![2]);
    assert_fails_with(&report.verdicts[1], Subject::Chain, "dataHash");
}

/// Serves `files` as `GET /api/v1/epochs/{n}/file` (404 otherwise) on a
/// loopback port, one connection at a time, until the test process ends.
fn serve_files(files: Vec<Vec<u8>>) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            reader.read_line(&mut request).unwrap();
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap() > 2 {
                line.clear();
            }
            let body = request
                .split(' ')
                .nth(1)
                .and_then(|p| p.strip_prefix("/api/v1/epochs/"))
                .and_then(|p| p.strip_suffix("/file"))
                .and_then(|n| n.parse::<usize>().ok())
                .and_then(|n| files.get(n.wrapping_sub(1)));
            let head = match body {
                Some(b) => format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n", b.len()),
                None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n".to_owned(),
            };
            stream
                .write_all(format!("{head}Connection: close\r\n\r\n").as_bytes())
                .unwrap();
            stream.write_all(body.map_or(&[][..], |b| b)).unwrap();
        }
    });
    url
}

#[tokio::test]
async fn the_driver_reads_files_from_the_api() {
    let fx = fixture();
    let url = serve_files(fx.bytes.clone());
    let source = EpochSource::api(url.parse().unwrap()).unwrap();
    assert_eq!(source.describe(2), format!("{url}api/v1/epochs/2/file"));
    assert_eq!(source.fetch(4).await.unwrap(), None);
    // Without the chain the newest epoch is unknown: the driver stops at the first 404.
    let report = audit(
        &source,
        None,
        None,
        &AuditOptions::default(),
        &mut NoObserver,
    )
    .await
    .unwrap();
    assert_eq!(report.verdicts.len(), 3);
    assert!(report.is_ok());
}
