//! Declared jobs (coinbase-only job declaration): built the way SRI's job
//! declarator client builds its coinbase (rust-bitcoin's `Transaction`, the
//! pool's required outputs first with the coinbase's value in the first),
//! and checked against rust-bitcoin's own txid, merkle root and header
//! hashing, and against the auditor's header rebuild from the job's record.

use super::*;
use crate::share::tests::regtest_job;
use bitcoin::{Amount, OutPoint, Sequence, TxIn, TxOut, Witness};
use proofpool_epoch::header::HeaderParts;

/// The token's commitment: an address, a share target, a log head.
fn commitment() -> ShareCommitment {
    ShareCommitment {
        miner: Address::repeat_byte(0x3c),
        target_bits: 0x1f00_ffff,
        log_head: B256::repeat_byte(0x77),
    }
}

fn payout() -> ScriptBuf {
    // The regtest fixture job's payout script (share::tests::regtest_job).
    let mut script = vec![0x00, 0x14];
    script.extend_from_slice(&[0x22; 20]);
    ScriptBuf::from_bytes(script)
}

/// The coinbase a job declarator client builds on `tip`: the BIP34 height
/// and a tag, room for a 12-byte extranonce, the pool's required outputs
/// (the first filled with the coinbase's value), then the template's
/// witness commitment; and the `SetCustomMiningJob` fields it sends.
struct Declared {
    prefix: Vec<u8>,
    outputs: Vec<u8>,
    tx: Transaction,
}

fn declare(tip: &Job) -> Declared {
    let mut outputs: Vec<TxOut> =
        bitcoin::consensus::deserialize(&required_outputs(&payout(), &commitment())).unwrap();
    assert_eq!(outputs.len(), 2);
    outputs[0].value = Amount::from_sat(tip.coinbase_value().0);
    // The template's witness commitment, as the pool's own job carries it.
    let own = &tip.coinbase.tx.output;
    outputs.extend(own.iter().skip(2).cloned());
    let mut prefix = height_push_bytes(tip.height());
    prefix.extend_from_slice(b"/jdc/");
    let tx = Transaction {
        version: bitcoin::transaction::Version::TWO,
        lock_time: bitcoin::absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            script_sig: ScriptBuf::from_bytes(prefix.clone()),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: outputs.clone(),
    };
    Declared {
        prefix,
        outputs: bitcoin::consensus::serialize(&outputs),
        tx,
    }
}

/// The BIP34 height push, by hand: a length byte and the little-endian
/// height without a sign bit set (heights here are small).
fn height_push_bytes(height: u32) -> Vec<u8> {
    if (1..=16).contains(&height) {
        return vec![0x50 + height as u8];
    }
    let mut le: Vec<u8> = height.to_le_bytes().to_vec();
    while le.len() > 1 && le[le.len() - 1] == 0 && le[le.len() - 2] & 0x80 == 0 {
        le.pop();
    }
    if le[le.len() - 1] & 0x80 != 0 {
        le.push(0);
    }
    let mut out = vec![le.len() as u8];
    out.extend(le);
    out
}

fn custom<'a>(tip: &Job, d: &'a Declared) -> CustomJob<'a> {
    CustomJob {
        version: tip.version(),
        prev_hash: tip.prev_hash(),
        min_ntime: tip.ntime(),
        nbits: tip.bits().to_consensus(),
        coinbase_tx_version: 2,
        coinbase_prefix: &d.prefix,
        coinbase_tx_input_n_sequence: u32::MAX,
        coinbase_tx_outputs: &d.outputs,
        coinbase_tx_locktime: 0,
        merkle_path: tip.merkle_branch().to_vec(),
    }
}

fn requirements<'a>(tip: &'a Job, payout: &'a ScriptBuf) -> Requirements<'a> {
    Requirements {
        tip,
        payout_script: payout.as_script(),
        commitment: commitment(),
        extranonce1_len: 4,
        extranonce2_len: 8,
        now: tip.ntime() + 10,
        min_value: subsidy(bitcoin::Network::Regtest, tip.height()),
    }
}

#[test]
fn a_share_on_a_declared_job_hashes_as_its_coinbase_says() {
    let tip = regtest_job();
    let d = declare(&tip);
    let payout = payout();
    let job = Job::declared(77, &custom(&tip, &d), &requirements(&tip, &payout)).unwrap();
    assert_eq!(job.id(), 77);
    assert_eq!(job.height(), tip.height());
    assert_eq!(job.coinbase_value(), tip.coinbase_value());
    assert_eq!(job.log_head(), commitment().log_head);
    assert!(!job.knows_transactions());
    // The binding of the token: its address at its target.
    let target = proofpool_epoch::share_commitment::target_of_bits(0x1f00_ffff).unwrap();
    let binding = Binding::new(Address::repeat_byte(0x3c), target);
    assert_eq!(binding.target_bits(), 0x1f00_ffff);

    let (en1, en2) = ([9u8, 8, 7, 6], [1u8, 2, 3, 4, 5, 6, 7, 8]);
    let (ntime, nonce, version) = (tip.ntime() + 5, 0xdead_beef, tip.version() | 0x4000);
    // rust-bitcoin's reading: the client's coinbase with the extranonce
    // after its prefix.
    let mut tx = d.tx.clone();
    let mut script_sig = d.prefix.clone();
    script_sig.extend_from_slice(&en1);
    script_sig.extend_from_slice(&en2);
    tx.input[0].script_sig = ScriptBuf::from_bytes(script_sig);
    let txid = tx.compute_txid().to_byte_array();
    assert_eq!(job.coinbase_txid(&en1, &en2, &binding), txid);
    let mut root = txid;
    for sibling in tip.merkle_branch() {
        let mut pair = [0u8; 64];
        pair[..32].copy_from_slice(&root);
        pair[32..].copy_from_slice(sibling);
        root = bitcoin::hashes::sha256d::Hash::hash(&pair).to_byte_array();
    }
    let header = Header {
        version: Version::from_consensus(version.cast_signed()),
        prev_blockhash: tip.prev_hash(),
        merkle_root: TxMerkleNode::from_byte_array(root),
        time: ntime,
        bits: tip.bits(),
        nonce,
    };
    let ours = job.header(&binding, &en1, &en2, ntime, nonce, version);
    assert_eq!(&ours[..], &bitcoin::consensus::serialize(&header)[..]);

    // The auditor's rebuild from the job's record (coinbase1, coinbase2 up
    // to the commitment, the suffix) and the share's own miner and target.
    let parts = HeaderParts {
        coinbase1: job.coinbase1(),
        extranonce1: &en1,
        extranonce2: &en2,
        coinbase2: job.coinbase2_prefix(),
        commitment: Some(ShareCommitment {
            miner: Address::repeat_byte(0x3c),
            target_bits: 0x1f00_ffff,
            log_head: job.log_head(),
        }),
        coinbase2_suffix: job.coinbase2_suffix(),
        branch: &tip
            .merkle_branch()
            .iter()
            .map(|h| B256::from(*h))
            .collect::<Vec<_>>(),
        version,
        prev_hash: B256::from(tip.prev_hash().to_byte_array()),
        ntime,
        nbits: tip.bits().to_consensus(),
        nonce,
    };
    assert_eq!(parts.header(), ours);
    // The pool cannot assemble its block: it has none of the transactions.
    assert_eq!(
        job.assemble_block(&binding, &en1, &en2, ntime, nonce, version),
        Err(JobError::TransactionsUnknown)
    );
}

#[test]
fn a_declared_job_that_breaks_a_rule_is_refused_by_its_code() {
    let tip = regtest_job();
    let d = declare(&tip);
    let payout = payout();
    let req = requirements(&tip, &payout);
    let refused = |job: CustomJob<'_>| Job::declared(1, &job, &req).unwrap_err().code();

    let mut other_tip = custom(&tip, &d);
    other_tip.prev_hash = BlockHash::from_byte_array([3; 32]);
    assert_eq!(refused(other_tip), "stale-chain-tip");
    let mut bits = custom(&tip, &d);
    bits.nbits = 0x1d00_ffff;
    assert_eq!(refused(bits), "invalid-nbits");
    let mut early = custom(&tip, &d);
    early.min_ntime = tip.mintime() - 1;
    assert_eq!(refused(early), "invalid-min-ntime");
    let mut late = custom(&tip, &d);
    late.min_ntime = req.now + 301;
    assert_eq!(refused(late), "invalid-min-ntime");
    let mut version = custom(&tip, &d);
    version.version = 1;
    assert_eq!(refused(version), "invalid-version");
    let mut tx_version = custom(&tip, &d);
    tx_version.coinbase_tx_version = 3;
    assert_eq!(refused(tx_version), "invalid-coinbase-tx-version");
    let mut locktime = custom(&tip, &d);
    locktime.coinbase_tx_locktime = 5;
    assert_eq!(refused(locktime), "invalid-coinbase-tx-locktime");
    let mut path = custom(&tip, &d);
    path.merkle_path = vec![[0; 32]; 25];
    assert_eq!(refused(path), "invalid-merkle-path");

    // The scriptSig: the next block's height first, and room for the
    // 12-byte extranonce within 100 bytes.
    let wrong_height = height_push_bytes(tip.height() + 1);
    let mut job = custom(&tip, &d);
    job.coinbase_prefix = &wrong_height;
    assert_eq!(refused(job), "invalid-coinbase-prefix");
    let mut long = height_push_bytes(tip.height());
    long.resize(89, 0x61);
    let mut job = custom(&tip, &d);
    job.coinbase_prefix = &long;
    assert_eq!(refused(job), "invalid-coinbase-prefix");
    long.truncate(88);
    let mut job = custom(&tip, &d);
    job.coinbase_prefix = &long;
    assert!(Job::declared(1, &job, &req).is_ok(), "88 + 12 bytes fit");

    // The outputs: the pool first, the token's commitment second, nothing
    // else paid.
    let outputs = |f: &dyn Fn(&mut Vec<TxOut>)| {
        let mut o = d.tx.output.clone();
        f(&mut o);
        bitcoin::consensus::serialize(&o)
    };
    let elsewhere = outputs(&|o| o[0].script_pubkey = ScriptBuf::from_bytes(vec![0x51]));
    let other_miner = outputs(&|o| {
        let mut c = commitment();
        c.miner = Address::repeat_byte(0x3d);
        o[1].script_pubkey = ScriptBuf::from_bytes(c.script().to_vec());
    });
    let easier = outputs(&|o| {
        let mut c = commitment();
        c.target_bits = 0x2000_ffff;
        o[1].script_pubkey = ScriptBuf::from_bytes(c.script().to_vec());
    });
    let split = outputs(&|o| {
        let half = o[0].value / 2;
        o[0].value -= half;
        o.push(TxOut {
            value: half,
            script_pubkey: ScriptBuf::from_bytes(vec![0x51]),
        });
    });
    let swapped = outputs(&|o| o.swap(0, 1));
    // Nothing, or less than the subsidy, for the pool: a block that pays it
    // nothing.
    let nothing = outputs(&|o| o[0].value = Amount::ZERO);
    let short = outputs(&|o| {
        o[0].value = subsidy(bitcoin::Network::Regtest, tip.height()) - Amount::from_sat(1)
    });
    let many = outputs(&|o| {
        for _ in 0..7 {
            o.push(TxOut {
                value: Amount::ZERO,
                script_pubkey: ScriptBuf::from_bytes(vec![0x6a]),
            });
        }
    });
    let large = outputs(&|o| {
        o.push(TxOut {
            value: Amount::ZERO,
            script_pubkey: ScriptBuf::from_bytes(vec![0x6a; 1000]),
        })
    });
    for (bytes, why) in [
        (&elsewhere, "pays someone else"),
        (&other_miner, "commits to another miner"),
        (&easier, "commits to an easier target"),
        (&split, "splits the value"),
        (&swapped, "commitment first"),
        (&nothing, "pays the pool nothing"),
        (&short, "pays the pool less than the subsidy"),
        (&many, "more than eight outputs"),
        (&large, "more than 1 KiB of outputs"),
        (&vec![0xff], "garbage"),
    ] {
        let mut job = custom(&tip, &d);
        job.coinbase_tx_outputs = bytes;
        assert_eq!(refused(job), "invalid-coinbase-tx-outputs", "{why}");
    }
}

#[test]
fn the_subsidy_halves_on_schedule() {
    use bitcoin::Network::{Bitcoin, Regtest};
    // 50 BTC, halved every 210,000 blocks (150 on regtest).
    assert_eq!(subsidy(Bitcoin, 0).to_sat(), 5_000_000_000);
    assert_eq!(subsidy(Bitcoin, 209_999).to_sat(), 5_000_000_000);
    assert_eq!(subsidy(Bitcoin, 210_000).to_sat(), 2_500_000_000);
    assert_eq!(subsidy(Bitcoin, 840_000).to_sat(), 312_500_000);
    assert_eq!(subsidy(Regtest, 149).to_sat(), 5_000_000_000);
    assert_eq!(subsidy(Regtest, 150).to_sat(), 2_500_000_000);
    // 33 halvings leave 1 sat; 64 and beyond, nothing.
    assert_eq!(subsidy(Bitcoin, 33 * 210_000).to_sat(), 0);
    assert_eq!(subsidy(Bitcoin, 32 * 210_000).to_sat(), 1);
    assert_eq!(subsidy(Bitcoin, 64 * 210_000).to_sat(), 0);
}

/// `tx`'s bytes split around a `gap`-byte run of zeros `at` bytes from the
/// end of its scriptSig's `prefix_len` first bytes: what a full-template
/// declaration sends (`coinbase_tx_prefix`, `coinbase_tx_suffix`).
fn split_around_extranonce(tx: &Transaction, prefix_len: usize, gap: usize) -> (Vec<u8>, Vec<u8>) {
    let mut with_gap = tx.clone();
    let mut script_sig = tx.input[0].script_sig.as_bytes()[..prefix_len].to_vec();
    script_sig.extend(std::iter::repeat_n(0u8, gap));
    with_gap.input[0].script_sig = ScriptBuf::from_bytes(script_sig);
    let bytes = bitcoin::consensus::serialize(&with_gap);
    // Legacy serialization: version (4), one input (1), outpoint (36),
    // the scriptSig's length (1), then the scriptSig.
    let cut = 4 + 1 + 36 + 1 + prefix_len;
    (bytes[..cut].to_vec(), bytes[cut + gap..].to_vec())
}

#[test]
fn a_declared_coinbase_is_read_back_around_its_extranonce() {
    let tip = regtest_job();
    let d = declare(&tip);
    let payout = payout();
    for gap in [0usize, 8, 12, 32] {
        let (prefix, suffix) = split_around_extranonce(&d.tx, d.prefix.len(), gap);
        let read = declared_coinbase(&prefix, &suffix).unwrap();
        // The declared outputs and the scriptSig with `gap` zeros.
        assert_eq!(read.output, d.tx.output);
        let script_sig = read.input[0].script_sig.as_bytes();
        assert_eq!(&script_sig[..d.prefix.len()], d.prefix.as_slice());
        assert_eq!(script_sig.len(), d.prefix.len() + gap);
        assert!(script_sig[d.prefix.len()..].iter().all(|b| *b == 0));
        check_declared_coinbase(&read, &requirements(&tip, &payout)).unwrap();
    }
    // Bytes that make no transaction, and a gap beyond the longest
    // extranonce, are refused.
    assert!(declared_coinbase(b"not a coinbase", b"").is_err());
    let (prefix, suffix) =
        split_around_extranonce(&d.tx, d.prefix.len(), MAX_DECLARED_EXTRANONCE + 1);
    assert!(declared_coinbase(&prefix, &suffix).is_err());
}

#[test]
fn a_declared_coinbase_is_held_to_what_the_pool_requires() {
    let tip = regtest_job();
    let payout = payout();
    let req = requirements(&tip, &payout);
    // Paying someone else first.
    let mut d = declare(&tip);
    d.tx.output[0].script_pubkey = ScriptBuf::from_bytes(vec![0x51]);
    assert!(matches!(
        check_declared_coinbase(&d.tx, &req),
        Err(DeclaredError::InvalidCoinbaseTxOutputs(_))
    ));
    // Another block's height.
    let mut d = declare(&tip);
    d.tx.input[0].script_sig = ScriptBuf::from_bytes(height_push_bytes(tip.height() + 1));
    assert!(matches!(
        check_declared_coinbase(&d.tx, &req),
        Err(DeclaredError::InvalidCoinbasePrefix(_))
    ));
    // Another token's commitment.
    let mut d = declare(&tip);
    let other = ShareCommitment {
        miner: Address::repeat_byte(0x99),
        ..commitment()
    };
    d.tx.output[1].script_pubkey = ScriptBuf::from_bytes(other.script().to_vec());
    assert!(matches!(
        check_declared_coinbase(&d.tx, &req),
        Err(DeclaredError::InvalidCoinbaseTxOutputs(_))
    ));
}

#[test]
fn a_job_set_with_a_full_template_token_must_be_the_declared_one() {
    let tip = regtest_job();
    let d = declare(&tip);
    let payout = payout();
    // Declared with room for the channel's 12-byte extranonce (4 + 8).
    let mut coinbase = d.tx.clone();
    let mut script_sig = d.prefix.clone();
    script_sig.extend([0u8; 12]);
    coinbase.input[0].script_sig = ScriptBuf::from_bytes(script_sig);
    let declared = |coinbase: &Transaction, txs: &[Transaction], version: u32| {
        DeclaredTemplate::new(&tip, version, coinbase.clone(), txs.to_vec())
    };
    let template = declared(&coinbase, tip.transactions(), tip.version());
    assert!(
        !tip.transactions().is_empty(),
        "the fixture carries transactions"
    );
    let set = || Job::declared(78, &custom(&tip, &d), &requirements(&tip, &payout)).unwrap();
    let job = set().with_template(&template).unwrap();
    assert!(job.knows_transactions() && job.is_declared());
    // Its blocks assemble: the declared transactions after the coinbase,
    // rust-bitcoin's merkle root and witness commitment hold.
    let target = proofpool_epoch::share_commitment::target_of_bits(commitment().target_bits)
        .expect("a valid compact target");
    let binding = Binding::new(commitment().miner, target);
    let block = job
        .assemble_block(
            &binding,
            &[1, 2, 3, 4],
            &[0; 8],
            tip.ntime(),
            7,
            tip.version(),
        )
        .unwrap();
    assert_eq!(&block.txdata[1..], tip.transactions());
    assert!(block.check_merkle_root());
    assert!(block.check_witness_commitment());
    // The node's proposal is the same block, less the extranonce and nonce.
    let proposal = template.proposal(&tip);
    assert_eq!(&proposal.txdata[1..], tip.transactions());
    assert!(proposal.check_merkle_root());
    assert!(proposal.check_witness_commitment());
    assert_eq!(proposal.header.prev_blockhash, tip.prev_hash());

    // Without the last transaction the merkle path is not the declared one.
    let txs = tip.transactions();
    let fewer = declared(&coinbase, &txs[..txs.len() - 1], tip.version());
    assert!(matches!(
        set().with_template(&fewer),
        Err(DeclaredError::InvalidMerklePath(_))
    ));
    // Other outputs, another scriptSig, another version: refused.
    let mut other = coinbase.clone();
    other.output[0].value = Amount::from_sat(other.output[0].value.to_sat() - 1);
    assert!(matches!(
        set().with_template(&declared(&other, txs, tip.version())),
        Err(DeclaredError::InvalidCoinbaseTxOutputs(_))
    ));
    let mut other = coinbase.clone();
    let mut longer = other.input[0].script_sig.to_bytes();
    longer.push(0);
    other.input[0].script_sig = ScriptBuf::from_bytes(longer);
    assert!(matches!(
        set().with_template(&declared(&other, txs, tip.version())),
        Err(DeclaredError::InvalidCoinbasePrefix(_))
    ));
    assert!(matches!(
        set().with_template(&declared(&coinbase, txs, tip.version() ^ 0x2000)),
        Err(DeclaredError::InvalidVersion(_))
    ));
    // Declared on another tip: stale.
    let mut elsewhere = template.clone();
    elsewhere.prev_hash = bitcoin::BlockHash::from_byte_array([9; 32]);
    assert_eq!(
        set().with_template(&elsewhere).unwrap_err(),
        DeclaredError::StaleChainTip
    );
}
