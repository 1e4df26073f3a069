//! The store's contract, run on SQLite and on a real throwaway PostgreSQL:
//! group commit acknowledges only durable shares, sequence numbers are
//! gapless, closed epochs are fenced off, and back-pressure refuses rather
//! than drops.

use proofpool_devtools::Postgres;
use proofpool_primitives::{Address, B256, U256};
use proofpool_store::{
    BlockRecord, BlockStatus, CreditRow, EpochRecord, EpochStatus, JobRecord, NewShare,
    SettledEpoch, ShareLog, Store, StoreOptions, SubmitError, WorkerSeen, WriterConfig,
};
use std::collections::BTreeSet;
use std::time::Duration;

const EPOCH_SECS: u64 = 60;
const GENESIS: u64 = 1_700_000_000;

fn job(instance: u8, job_id: u64) -> JobRecord {
    JobRecord {
        instance,
        job_id,
        created_ms: GENESIS * 1000,
        height: 101,
        prev_hash: B256::repeat_byte(7),
        version: 0x2000_0000,
        nbits: 0x207f_ffff,
        template_time: 1_700_000_001,
        coinbase1: vec![1, 2, 3],
        coinbase2: vec![4, 5],
        coinbase2_suffix: Vec::new(),
        log_head: Default::default(),
        branch: vec![B256::repeat_byte(1), B256::repeat_byte(2)],
        network_target: U256::from(1u64) << 255,
        coinbase_value: 5_000_000_000,
    }
}

fn share(instance: u8, job_id: u64, i: u64, time_ms: u64) -> NewShare {
    NewShare {
        time_ms,
        instance,
        job_id,
        miner: Address::repeat_byte((i % 7) as u8 + 1),
        worker: format!("rig{}", i % 3),
        extranonce1: [instance, 0, 0, 1],
        extranonce2: i.to_be_bytes().to_vec(),
        ntime: 1_700_000_100,
        nonce: i as u32,
        version: 0x2000_0000,
        hash: B256::from(U256::from(i) + U256::from(u64::from(instance)) * U256::from(1u64 << 40)),
        share_target: U256::MAX >> 20,
        work: U256::from(1u64 << 20),
        network_target: U256::from(1u64) << 255,
    }
}

async fn exercise(url: &str) {
    let store = Store::open(url, &StoreOptions::default()).await.unwrap();
    let clock = store.init_clock(EPOCH_SECS, GENESIS).await.unwrap();
    assert_eq!(
        (clock.genesis_unix, clock.epoch_secs, clock.next_seq),
        (GENESIS, EPOCH_SECS, 1)
    );
    // Reopening with another epoch length is refused with the key's name.
    let err = store
        .init_clock(30, GENESIS + 5)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("epoch_secs"), "{err}");

    // Times as given: this part exercises the store's epoch rule on
    // arbitrary (backdated) times.
    let raw_times = WriterConfig {
        monotone_times: false,
        ..WriterConfig::default()
    };
    let (log, writer) = ShareLog::spawn(store.clone(), raw_times);
    log.record_job(job(0, 1));
    log.record_job(job(1, 1));
    log.record_worker(WorkerSeen {
        miner: Address::repeat_byte(1),
        worker: "rig0".into(),
        time_ms: GENESIS * 1000,
    });

    // 2 000 shares from 20 concurrent "sessions", two instances.
    let epoch1_ms = (GENESIS + 10) * 1000;
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..20u64 {
        let log = log.clone();
        tasks.spawn(async move {
            let mut seen = Vec::new();
            for k in 0..100u64 {
                let i = t * 100 + k;
                let ack = log.submit(share((t % 2) as u8, 1, i, epoch1_ms)).unwrap();
                seen.push(ack.await.unwrap().unwrap());
            }
            seen
        });
    }
    let mut seqs = BTreeSet::new();
    while let Some(r) = tasks.join_next().await {
        for c in r.unwrap() {
            assert_eq!(c.epoch, 1);
            assert!(seqs.insert(c.seq), "seq {} given twice", c.seq);
        }
    }
    assert_eq!(seqs.len(), 2000);
    assert_eq!(*seqs.first().unwrap(), 1);
    assert_eq!(*seqs.last().unwrap(), 2000, "sequence numbers are gapless");
    assert!(
        log.stats()
            .batches_committed
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );

    // Everything acknowledged is readable, in order, exactly once.
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let page = store.shares_in_epoch(1, after, 700).await.unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().unwrap().seq;
        all.extend(page);
    }
    assert_eq!(all.len(), 2000);
    assert!(all.windows(2).all(|w| w[0].seq + 1 == w[1].seq));
    // The concurrent whole-epoch read gives the same shares in the same order,
    // however it is split and paged.
    for (parts, page) in [(1, 5000), (4, 700), (3, 1), (7, 333)] {
        assert_eq!(
            store.shares_of_epoch(1, parts, page).await.unwrap(),
            all,
            "{parts} parts of {page}"
        );
    }
    assert!(store.shares_of_epoch(99, 4, 700).await.unwrap().is_empty());
    let hashes: BTreeSet<B256> = all.iter().map(|s| s.share.hash).collect();
    assert_eq!(hashes.len(), 2000, "no share stored twice");
    let first = &all[0].share;
    assert_eq!(first.share_target, U256::MAX >> 20);
    assert_eq!(store.share_count(1).await.unwrap(), 2000);
    let jobs = store.jobs_for_epoch(1).await.unwrap();
    assert_eq!(jobs, vec![job(0, 1), job(1, 1)]);
    assert_eq!(store.max_job_id(0).await.unwrap(), 1);
    assert_eq!(store.max_job_id(9).await.unwrap(), 0);

    // Closing epoch 1 fences it: a late share timed in epoch 1 lands in 2.
    store.close_epoch(1).await.unwrap();
    store.close_epoch(1).await.unwrap();
    assert!(store.close_epoch(3).await.is_err(), "epochs close in order");
    let late = log
        .submit(share(0, 1, 9_999, epoch1_ms))
        .unwrap()
        .await
        .unwrap()
        .unwrap();
    assert_eq!((late.seq, late.epoch), (2001, 2));
    let next = log
        .submit(share(0, 1, 10_000, (GENESIS + 3 * EPOCH_SECS) * 1000))
        .unwrap()
        .await
        .unwrap()
        .unwrap();
    assert_eq!((next.seq, next.epoch), (2002, 4));

    // PPLNS window: newest first from a seq.
    let window = store.window_from(2001, 3).await.unwrap();
    assert_eq!(
        window.iter().map(|w| w.seq).collect::<Vec<_>>(),
        vec![2001, 2000, 1999]
    );

    // Blocks: insert, then update through the same writer; then settle.
    let hash = B256::repeat_byte(0xbb);
    let mut block = BlockRecord {
        hash,
        height: 101,
        coinbase_value: 5_000_000_000,
        finder: Address::repeat_byte(1),
        worker: "rig0".into(),
        share_seq: 2000,
        instance: 0,
        found_ms: epoch1_ms,
        status: BlockStatus::Submitted,
        confirmations: 0,
        reject_reason: None,
        paid_epoch: None,
    };
    log.record_block(block.clone());
    block.status = BlockStatus::Immature;
    block.confirmations = 1;
    log.record_block(block.clone());
    log.flush().await;
    assert_eq!(store.blocks().await.unwrap(), vec![block.clone()]);
    store
        .set_block_status(hash, BlockStatus::Mature, 100)
        .await
        .unwrap();
    // A block that left the best chain waits to be listed by an epoch file.
    let orphan = BlockRecord {
        hash: B256::repeat_byte(0xbc),
        height: 102,
        status: BlockStatus::Orphaned,
        ..block.clone()
    };
    log.record_block(orphan.clone());
    log.flush().await;
    assert_eq!(
        store.unlisted_orphans().await.unwrap(),
        vec![orphan.clone()]
    );

    let record = EpochRecord {
        epoch: 1,
        status: EpochStatus::Closed,
        share_count: 2000,
        seq_range: Some((1, 2000)),
        share_root: B256::repeat_byte(1),
        reward_root: B256::repeat_byte(2),
        total_cumulative: U256::from(4_000_000_000u64),
        blocks_hash: B256::repeat_byte(3),
        params_hash: B256::repeat_byte(4),
        data_hash: B256::repeat_byte(5),
        prev_epoch_hash: B256::ZERO,
        file_name: "epoch-000001.json".into(),
        commit_tx: None,
        finalize_tx: None,
        updated_ms: 1,
    };
    assert_eq!(store.luck().await.unwrap(), None, "nothing settled yet");
    let credits = vec![
        CreditRow {
            block_hash: hash,
            miner: Address::repeat_byte(1),
            sats: 3_000_000_000,
        },
        CreditRow {
            block_hash: hash,
            miner: Address::repeat_byte(2),
            sats: 1_000_000_000,
        },
    ];
    store
        .record_settled_epoch(&SettledEpoch {
            record: record.clone(),
            credits: credits.clone(),
            paid_blocks: vec![hash],
            orphaned_blocks: vec![orphan.hash],
            scheme: "pplns",
            // A block and a half expected.
            expected_work: U256::from(3u8) << 127,
        })
        .await
        .unwrap();
    assert!(
        store
            .record_settled_epoch(&SettledEpoch {
                record: record.clone(),
                credits: vec![],
                paid_blocks: vec![],
                orphaned_blocks: vec![],
                scheme: "pps",
                expected_work: U256::ZERO,
            })
            .await
            .is_err(),
        "an epoch is settled once"
    );
    assert_eq!(store.epoch(1).await.unwrap().unwrap(), record);
    assert_eq!(store.last_settled_epoch().await.unwrap(), 1);
    // Both blocks were found by a share of epoch 1 (the orphan too: the
    // work found it), against 1.5 expected.
    assert_eq!(
        store.luck().await.unwrap(),
        Some(proofpool_store::Luck {
            epochs: (1, 1),
            blocks_found: 2,
            expected_work: U256::from(3u8) << 127,
        })
    );
    // The first write's scheme, not the refused second's.
    assert_eq!(
        store.epoch_scheme(1).await.unwrap().as_deref(),
        Some("pplns")
    );
    assert_eq!(store.epoch_scheme(2).await.unwrap(), None);
    assert_eq!(store.credits_in(1).await.unwrap(), credits);
    let balances = store.balances_at(1).await.unwrap();
    assert_eq!(balances.get(&Address::repeat_byte(1)), Some(&3_000_000_000));
    assert_eq!(store.blocks().await.unwrap()[0].paid_epoch, Some(1));
    assert_eq!(store.unlisted_orphans().await.unwrap(), vec![]);
    let tx = B256::repeat_byte(9);
    store
        .set_epoch_status(1, EpochStatus::Committed, Some(tx), 2)
        .await
        .unwrap();
    let got = store.epoch(1).await.unwrap().unwrap();
    assert_eq!(
        (got.status, got.commit_tx),
        (EpochStatus::Committed, Some(tx))
    );

    // Hashrate series: whole buckets that can no longer change come from the
    // rollup table (computed once, then read), the rest from the shares; the
    // answer is the same either way, pool-wide and per miner.
    let (since, until, bucket) = (GENESIS * 1000, (GENESIS + 240) * 1000, 60_000);
    let live = store
        .work_buckets(since, until, bucket, None, 0)
        .await
        .unwrap();
    assert_eq!(live.iter().map(|b| b.shares).sum::<u64>(), 2002);
    for _ in 0..2 {
        assert_eq!(
            store
                .work_buckets(since, until, bucket, None, until)
                .await
                .unwrap(),
            live
        );
    }
    let m = Some(Address::repeat_byte(1));
    let miner_live = store
        .work_buckets(since, until, bucket, m, 0)
        .await
        .unwrap();
    assert!(!miner_live.is_empty() && miner_live != live);
    assert_eq!(
        store
            .work_buckets(since, until, bucket, m, until)
            .await
            .unwrap(),
        miner_live
    );
    // A share timed into a bucket already rolled up (empty: [G+40 s, G+100 s),
    // the first whole bucket after `since`): a live answer counts it, the
    // rolled-up one does not (the rollup is final, which is why the
    // API only rolls up buckets that ended minutes ago). This shows which
    // path each answer took.
    log.submit(share(0, 1, 10_001, (GENESIS + 50) * 1000))
        .unwrap()
        .await
        .unwrap()
        .unwrap();
    let total = |b: &[proofpool_store::api::WorkBucket]| b.iter().map(|b| b.shares).sum::<u64>();
    assert_eq!(
        total(
            &store
                .work_buckets(since, until, bucket, None, 0)
                .await
                .unwrap()
        ),
        2003
    );
    assert_eq!(
        total(
            &store
                .work_buckets(since, until, bucket, None, until)
                .await
                .unwrap()
        ),
        2002
    );

    // A share timed before genesis lands in the first epoch still open, and
    // every late share is stored in the epoch the writer acknowledged.
    let early = log
        .submit(share(0, 1, 10_002, 0))
        .unwrap()
        .await
        .unwrap()
        .unwrap();
    assert_eq!((early.seq, early.epoch), (2004, 2));
    for (seq, epoch) in [(2001, 2), (2002, 4), (2003, 2), (2004, 2)] {
        let stored = store.shares_in_epoch(epoch, seq - 1, 1).await.unwrap();
        assert_eq!(
            stored.first().map(|s| s.seq),
            Some(seq),
            "share {seq} is stored in epoch {epoch}"
        );
    }

    drop(log);
    writer.await.unwrap();

    // Batches too big for one statement (256 shares on PostgreSQL, 512 on
    // SQLite), alone and behind a job record, are still one transaction each: every share is stored once, in the epoch
    // and under the gapless number it was acknowledged with.
    let config = WriterConfig {
        max_delay: Duration::from_millis(300),
        monotone_times: false,
        ..WriterConfig::default()
    };
    let (log, writer) = ShareLog::spawn(store.clone(), config);
    let epoch6_ms = (GENESIS + 5 * EPOCH_SECS) * 1000;
    let mut next = 2005;
    for with_job in [false, true] {
        if with_job {
            log.record_job(job(0, 2));
        }
        let acks: Vec<_> = (0..1300u64)
            .map(|k| {
                log.submit(share(0, 2, 20_000 + next + k, epoch6_ms))
                    .unwrap()
            })
            .collect();
        for (k, ack) in acks.into_iter().enumerate() {
            let c = ack.await.unwrap().unwrap();
            assert_eq!((c.seq, c.epoch), (next + k as u64, 6));
        }
        let stored = store.shares_in_epoch(6, next - 1, 5000).await.unwrap();
        let seqs: Vec<u64> = stored.iter().map(|s| s.seq).collect();
        assert_eq!(seqs, (next..next + 1300).collect::<Vec<_>>());
        // Every field round-trips through the multi-statement path.
        for (k, s) in stored.iter().enumerate() {
            assert_eq!(s.share, share(0, 2, 20_000 + next + k as u64, epoch6_ms));
        }
        next += 1300;
    }
    assert!(
        log.stats()
            .last_batch_size
            .load(std::sync::atomic::Ordering::Relaxed)
            > 512,
        "the test must produce batches of several statements"
    );
    assert_eq!(store.jobs_for_epoch(6).await.unwrap(), vec![job(0, 2)]);

    // A veto rolled epoch 1 back on-chain: its settlement is forgotten (the
    // block unpaid, the orphan unlisted, no credits), its shares stay, and
    // it can be settled again while it stays closed to new shares.
    let closed = store.clock().await.unwrap().closed_epoch;
    assert_eq!(store.roll_back_epochs(1).await.unwrap(), 1);
    assert_eq!(store.last_settled_epoch().await.unwrap(), 0);
    assert_eq!(store.credits_in(1).await.unwrap(), vec![]);
    assert!(store.balances_at(1).await.unwrap().is_empty());
    assert_eq!(store.blocks().await.unwrap()[0].paid_epoch, None);
    assert_eq!(store.unlisted_orphans().await.unwrap().len(), 1);
    assert_eq!(store.clock().await.unwrap().closed_epoch, closed);
    store.close_epoch(1).await.unwrap();
    assert_eq!(store.roll_back_epochs(1).await.unwrap(), 0);
    drop(log);
    writer.await.unwrap();
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store() {
    let dir = std::env::temp_dir().join(format!("proofpool-store-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("pool.db").display());
    exercise(&url).await;
    share_log_chain(&url).await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store() {
    let pg = Postgres::start().unwrap();
    exercise(&pg.url()).await;
    share_log_chain(&pg.url()).await;
}

/// Each instance's chain, folded by hand from the stored shares in
/// sequence order: `head_n = keccak256(head_{n-1} ‖ epoch ‖ seq ‖ miner ‖
/// work ‖ hash)`, integers big-endian.
async fn fold_by_hand(store: &Store, instance: u8, upto: u64) -> (u64, B256) {
    let shares = store.shares_after(0, 1_000_000).await.unwrap();
    let mut point = (0, B256::ZERO);
    for s in shares
        .iter()
        .filter(|s| s.share.instance == instance && s.seq <= upto)
    {
        let leaf = proofpool_merkle::ShareLeaf {
            epoch: proofpool_primitives::EpochId(s.epoch),
            seq: s.seq,
            miner: s.share.miner,
            work: proofpool_primitives::Work(s.share.work),
            share_hash: proofpool_primitives::ShareHash(s.share.hash),
        };
        let mut bytes = point.1.to_vec();
        bytes.extend_from_slice(&leaf.epoch.0.to_be_bytes());
        bytes.extend_from_slice(&leaf.seq.to_be_bytes());
        bytes.extend_from_slice(leaf.miner.as_slice());
        bytes.extend_from_slice(&leaf.work.0.to_be_bytes::<32>());
        bytes.extend_from_slice(leaf.share_hash.0.as_slice());
        point = (s.seq, alloy_primitives::keccak256(bytes));
    }
    point
}

/// The writer keeps each instance's share-log head as it commits (two
/// instances interleaved on one store), checkpoints it, and a restarted
/// writer (or the settler) reads the same head from the store at any
/// point; and an instance's times never go back an epoch in seq order.
async fn share_log_chain(url: &str) {
    let store = Store::open(url, &StoreOptions::default()).await.unwrap();
    let clock = store.clock().await.unwrap();
    let (log, writer) = ShareLog::spawn(store.clone(), WriterConfig::default());
    let start = store.last_seq().await.unwrap();
    for instance in [5u8, 6] {
        assert_eq!(log.load_log_head(&store, instance).await.unwrap().seq, 0);
        log.record_job(job(instance, 1));
    }
    let open_ms = (clock.genesis_unix + (clock.closed_epoch + 3) * clock.epoch_secs) * 1000;
    for i in 0..40u64 {
        let instance = if i % 3 == 0 { 6 } else { 5 };
        log.submit(share(instance, 1, 90_000 + i, open_ms + i))
            .unwrap()
            .await
            .unwrap()
            .unwrap();
    }
    // Timed one epoch back, after a later one of the same instance: stored
    // at the later time, in the later epoch.
    let back = log
        .submit(share(5, 1, 90_100, open_ms - clock.epoch_secs * 1000))
        .unwrap()
        .await
        .unwrap()
        .unwrap();
    let stored = store.shares_after(back.seq - 1, 1).await.unwrap();
    assert_eq!(stored[0].share.time_ms, open_ms + 38);
    assert_eq!(back.epoch, clock.epoch_of_ms(open_ms + 38));
    let last = store.last_seq().await.unwrap();
    // The heads are folded after the acknowledgements; a flush waits for them.
    log.flush().await;
    for instance in [5u8, 6] {
        let by_hand = fold_by_hand(&store, instance, last).await;
        let head = log.log_head(instance);
        assert_eq!((head.seq, head.head), by_hand, "instance {instance}");
        let read = store.log_point(instance, None).await.unwrap();
        assert_eq!((read.seq, read.head), by_hand);
        // Just before any of its shares, from whatever checkpoint is older.
        for before in [start + 1, start + 7, start + 20, last] {
            let read = store.log_point(instance, Some(before)).await.unwrap();
            assert_eq!(
                (read.seq, read.head),
                fold_by_hand(&store, instance, before - 1).await,
                "instance {instance} before {before}"
            );
        }
    }
    drop(log);
    writer.await.unwrap();
    // A new writer starts from the store's record.
    let (log, writer) = ShareLog::spawn(store.clone(), WriterConfig::default());
    let head = log.load_log_head(&store, 5).await.unwrap();
    assert_eq!((head.seq, head.head), fold_by_hand(&store, 5, last).await);
    drop(log);
    writer.await.unwrap();
    store.close().await;
}

/// A writer closed while its database is down ends after one
/// `give_up_after` with what it could not write, instead of retrying the
/// carried records forever (that hung the pool's shutdown, and every test
/// runtime holding it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_closed_during_an_outage_ends() {
    let pg = Postgres::start().unwrap();
    let store = Store::open(&pg.url(), &StoreOptions::default())
        .await
        .unwrap();
    store.init_clock(EPOCH_SECS, GENESIS).await.unwrap();
    let config = WriterConfig {
        give_up_after: Duration::from_secs(1),
        ..WriterConfig::default()
    };
    let (log, writer) = ShareLog::spawn(store.clone(), config);
    pg.pause().unwrap();
    log.record_job(job(0, 1));
    let ack = log.submit(share(0, 1, 1, GENESIS * 1000)).unwrap();
    drop(log);
    // The share is answered with an error, not lost silently...
    let outcome = tokio::time::timeout(Duration::from_secs(20), ack)
        .await
        .expect("the share is answered within 20 s")
        .unwrap();
    assert!(outcome.is_err(), "{outcome:?}");
    // ...and the writer ends although the job record was never written.
    tokio::time::timeout(Duration::from_secs(20), writer)
        .await
        .expect("the writer ends within 20 s of closing")
        .unwrap();
    pg.resume().unwrap();
    assert_eq!(store.jobs_for_epoch(1).await.unwrap(), vec![]);
    store.close().await;
}

#[tokio::test(flavor = "current_thread")]
async fn full_queue_refuses_instead_of_dropping() {
    let dir = std::env::temp_dir().join(format!("proofpool-store-q-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("pool.db").display());
    let store = Store::open(&url, &StoreOptions::default()).await.unwrap();
    store.init_clock(EPOCH_SECS, GENESIS).await.unwrap();
    let config = WriterConfig {
        queue_capacity: 8,
        ..WriterConfig::default()
    };
    let (log, writer) = ShareLog::spawn(store.clone(), config);
    log.record_job(job(0, 1));
    // On a current-thread runtime the writer cannot run until we yield, so
    // the ninth submission finds the queue full.
    let mut acks = Vec::new();
    for i in 0..8 {
        acks.push(log.submit(share(0, 1, i, GENESIS * 1000)).unwrap());
    }
    let err = log.submit(share(0, 1, 8, GENESIS * 1000)).unwrap_err();
    assert_eq!(err, SubmitError::Overloaded { capacity: 8 });
    assert!(err.to_string().contains("not recorded"));
    for ack in acks {
        ack.await.unwrap().unwrap();
    }
    // Once drained, submissions are accepted again.
    log.submit(share(0, 1, 9, GENESIS * 1000))
        .unwrap()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.last_seq().await.unwrap(), 9);
    // An idle writer holds no connection, so the store closes while the log
    // is still alive (as the devnet closes its store before the pool that
    // owns the log is dropped).
    tokio::time::timeout(Duration::from_secs(10), store.close())
        .await
        .expect("Store::close waited for an idle writer");
    drop(log);
    tokio::time::timeout(Duration::from_secs(10), writer)
        .await
        .unwrap()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn bad_url_is_a_clear_error() {
    let err = Store::open("mysql://x", &StoreOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("sqlite://"), "{err}");
}
