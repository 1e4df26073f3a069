//! The header chain the files carry, on regtest headers mined here, and the
//! difficulty rules on hand-computed retargets.

use super::*;
use crate::finding::Findings;
use crate::headers::{HeaderChain, HeaderInfo, HeaderLookup, now, required_nbits};
use bitcoin::block::{Header, Version};
use bitcoin::hashes::Hash;
use bitcoin::pow::CompactTarget;
use bitcoin::{BlockHash, Network, TxMerkleNode};
use proofpool_epoch::epoch_file::FileBitcoin;

/// Regtest's target.
const REGTEST_BITS: u32 = 0x207f_ffff;

/// A header on `prev` (display order) with `bits`, whose hash meets its
/// target (`valid`) or does not.
fn mine(prev: B256, time: u32, bits: u32, valid: bool) -> Header {
    let mut internal = prev.0;
    internal.reverse();
    let mut h = Header {
        version: Version::from_consensus(0x2000_0000),
        prev_blockhash: BlockHash::from_byte_array(internal),
        merkle_root: TxMerkleNode::from_byte_array([7; 32]),
        time,
        bits: CompactTarget::from_consensus(bits),
        nonce: 0,
    };
    while h.validate_pow(h.target()).is_ok() != valid {
        h.nonce += 1;
    }
    h
}

fn hash(h: &Header) -> B256 {
    let mut bytes = h.block_hash().to_byte_array();
    bytes.reverse();
    B256::from(bytes)
}

fn raw(h: &Header) -> alloy::primitives::Bytes {
    bitcoin::consensus::serialize(h).into()
}

/// `n` valid regtest headers after `prev`.
fn run(mut prev: B256, n: usize, time: u32) -> Vec<Header> {
    (0..n)
        .map(|i| {
            let h = mine(prev, time + i as u32 * 600, REGTEST_BITS, true);
            prev = hash(&h);
            h
        })
        .collect()
}

fn segment(start: u64, headers: &[Header], stale: &[Header]) -> FileBitcoin {
    FileBitcoin {
        network: "regtest".to_owned(),
        start_height: start,
        headers: headers.iter().map(raw).collect(),
        stale: stale.iter().map(raw).collect(),
    }
}

/// Applies `b` and returns the mismatches as (subject, field).
fn apply(chain: &mut HeaderChain, b: &FileBitcoin) -> Vec<(Subject, &'static str)> {
    let mut f = Findings::default();
    chain.apply(&mut f, b);
    f.into_list()
        .into_iter()
        .filter(|x| x.severity == Severity::Mismatch)
        .map(|x| (x.subject, x.field))
        .collect()
}

#[test]
fn carried_headers_link_file_to_file_and_follow_a_reorg() {
    let genesis = B256::repeat_byte(0x01);
    let a = run(genesis, 3, 1_000);
    let b = run(hash(&a[2]), 2, 3_000);
    let mut chain = HeaderChain::new(Some(Checkpoint {
        height: 11,
        hash: hash(&a[1]),
    }));
    assert_eq!(apply(&mut chain, &segment(10, &a, &[])), vec![]);
    assert_eq!(chain.checkpoint().map(|(_, met)| met), Some(true));
    assert_eq!(apply(&mut chain, &segment(13, &b, &[])), vec![]);
    assert_eq!(chain.tip(), Some(14));
    assert_eq!(chain.best_at(13), Some(hash(&b[0])));
    // No new block: an empty run after the tip.
    assert_eq!(apply(&mut chain, &segment(15, &[], &[])), vec![]);

    // A reorg from height 13: the old 13 and 14 stay known, as stale.
    let fork = run(hash(&a[2]), 3, 3_100);
    assert_eq!(apply(&mut chain, &segment(13, &fork, &[])), vec![]);
    assert_eq!(chain.tip(), Some(15));
    assert_eq!(chain.best_at(14), Some(hash(&fork[1])));
    assert_eq!(chain.get(hash(&b[1])).map(|h| h.height), Some(14));

    // A stale tip a job built on, on height 15's parent.
    let tip = mine(hash(&fork[1]), 4_000, REGTEST_BITS, true);
    assert_eq!(apply(&mut chain, &segment(16, &[], &[tip])), vec![]);
    assert_eq!(chain.get(hash(&tip)).map(|h| h.height), Some(15));
    assert_eq!(chain.best_at(15), Some(hash(&fork[2])));
}

#[test]
fn headers_that_do_not_link_or_lack_work_or_carry_another_target_are_mismatches() {
    let genesis = B256::repeat_byte(0x02);
    let a = run(genesis, 3, 1_000);
    let fresh = || {
        let mut chain = HeaderChain::new(None);
        assert_eq!(apply(&mut chain, &segment(10, &a, &[])), vec![]);
        chain
    };

    // The next file starts on a header no file carried.
    let elsewhere = run(B256::repeat_byte(0x03), 1, 2_000);
    assert_eq!(
        apply(&mut fresh(), &segment(13, &elsewhere, &[])),
        vec![(Subject::Header { height: 13 }, "prev_blockhash")]
    );
    // Or leaves a gap.
    let next = run(hash(&a[2]), 1, 2_000);
    assert_eq!(
        apply(&mut fresh(), &segment(14, &next, &[])),
        vec![(Subject::Epoch, "bitcoin.start_height")]
    );
    // A header inside a run that names another parent.
    let mut broken = run(hash(&a[2]), 2, 2_000);
    broken[1] = mine(B256::repeat_byte(0x04), 2_600, REGTEST_BITS, true);
    assert_eq!(
        apply(&mut fresh(), &segment(13, &broken, &[])),
        vec![(Subject::Header { height: 14 }, "prev_blockhash")]
    );
    // No proof of work.
    let lazy = mine(hash(&a[2]), 2_000, REGTEST_BITS, false);
    assert_eq!(
        apply(&mut fresh(), &segment(13, &[lazy], &[])),
        vec![(Subject::Header { height: 13 }, "bits")]
    );
    // A harder target than regtest's (regtest never retargets), with work
    // enough for it: still the wrong target.
    let harder = mine(hash(&a[2]), 2_000, 0x1f7f_ffff, true);
    assert_eq!(
        apply(&mut fresh(), &segment(13, &[harder], &[])),
        vec![(Subject::Header { height: 13 }, "bits")]
    );
    // An easier one than the network allows at all.
    let easier = mine(hash(&a[2]), 2_000, 0x2100_ffff, true);
    let found = apply(&mut fresh(), &segment(13, &[easier], &[]));
    assert!(
        found.contains(&(Subject::Header { height: 13 }, "bits")),
        "{found:?}"
    );
    // Not a header at all.
    let mut short = segment(13, &next, &[]);
    short.headers[0] = vec![0u8; 79].into();
    assert_eq!(
        apply(&mut fresh(), &short),
        vec![(Subject::Header { height: 13 }, "bitcoin.headers")]
    );
    // A stale header on a parent no file carried.
    let orphan = mine(B256::repeat_byte(0x05), 2_000, REGTEST_BITS, true);
    assert_eq!(
        apply(&mut fresh(), &segment(13, &[], &[orphan])),
        vec![(Subject::Epoch, "bitcoin.stale")]
    );
    // Another network than earlier files named.
    let mut testnet = segment(13, &next, &[]);
    testnet.network = "test".to_owned();
    assert_eq!(
        apply(&mut fresh(), &testnet),
        vec![(Subject::Epoch, "bitcoin.network")]
    );
    // A checkpoint the carried headers contradict.
    let mut chain = HeaderChain::new(Some(Checkpoint {
        height: 11,
        hash: B256::repeat_byte(0x06),
    }));
    assert_eq!(
        apply(&mut chain, &segment(10, &a, &[])),
        vec![(Subject::Header { height: 11 }, "checkpoint")]
    );
}

/// Headers by hash and by height, no proof of work needed: for the rules
/// alone.
#[derive(Default)]
struct Fake {
    by_hash: HashMap<B256, HeaderInfo>,
    by_height: BTreeMap<u64, HeaderInfo>,
}

impl Fake {
    fn add(&mut self, height: u64, bits: u32, time: u64) -> HeaderInfo {
        let prev = height
            .checked_sub(1)
            .and_then(|h| self.by_height.get(&h))
            .map(|h| h.hash);
        let info = HeaderInfo {
            hash: B256::from(alloy::primitives::U256::from(height).to_be_bytes::<32>()),
            height,
            bits,
            time,
            prev,
        };
        self.by_hash.insert(info.hash, info.clone());
        self.by_height.insert(height, info.clone());
        info
    }
}

impl HeaderLookup for Fake {
    async fn by_hash(&self, hash: B256) -> Result<Option<HeaderInfo>, AuditError> {
        Ok(self.by_hash.get(&hash).cloned())
    }
    async fn ancestor(
        &self,
        _of: &HeaderInfo,
        height: u64,
    ) -> Result<Option<HeaderInfo>, AuditError> {
        Ok(self.by_height.get(&height).cloned())
    }
}

fn required(network: Network, fake: &Fake, prev: &HeaderInfo, time: u64) -> Option<Vec<u32>> {
    now(required_nbits(network, fake, prev, time))
        .unwrap()
        .unwrap()
}

#[test]
fn retargets_follow_the_period_s_timespan_within_the_limits() {
    // Mainnet, difficulty 1 (0x1d00ffff) over the period 2016..=4031.
    // A period twice as fast as two weeks halves the target: 0x00ffff·2^208
    // halved is 0x7fff80·2^200, compact 0x1c7fff80 (by hand).
    let mut fake = Fake::default();
    fake.add(2016, 0x1d00_ffff, 1_000_000);
    let last = fake.add(4031, 0x1d00_ffff, 1_000_000 + 604_800);
    assert_eq!(
        required(Network::Bitcoin, &fake, &last, 0),
        Some(vec![0x1c7f_ff80])
    );
    // Ten times slower is clamped to four times the target, and the target
    // to the network's limit: difficulty 1 again.
    let mut fake = Fake::default();
    fake.add(2016, 0x1d00_ffff, 1_000_000);
    let last = fake.add(4031, 0x1d00_ffff, 1_000_000 + 12_096_000);
    assert_eq!(
        required(Network::Bitcoin, &fake, &last, 0),
        Some(vec![0x1d00_ffff])
    );
    // Inside a period: the parent's target.
    let mut fake = Fake::default();
    let prev = fake.add(4040, 0x1c7f_ff80, 0);
    assert_eq!(
        required(Network::Bitcoin, &fake, &prev, 0),
        Some(vec![0x1c7f_ff80])
    );
    // A retarget whose period start is not known cannot be checked.
    let mut fake = Fake::default();
    let last = fake.add(4031, 0x1d00_ffff, 0);
    assert_eq!(required(Network::Bitcoin, &fake, &last, 0), None);
    // Regtest never retargets.
    let mut fake = Fake::default();
    let last = fake.add(4031, REGTEST_BITS, 0);
    assert_eq!(
        required(Network::Regtest, &fake, &last, 0),
        Some(vec![REGTEST_BITS])
    );
}

#[test]
fn testnet_blocks_twenty_minutes_late_may_use_the_minimum_difficulty() {
    // Testnet3: 4033 at the real target, 4034 a minimum-difficulty block.
    let (real, min) = (0x1c0f_fff0, 0x1d00_ffff);
    let mut fake = Fake::default();
    fake.add(4032, real, 10_000);
    fake.add(4033, real, 10_600);
    let prev = fake.add(4034, min, 12_000);
    // On time: the last target that was not the minimum, found by walking
    // back over the minimum-difficulty block.
    assert_eq!(
        required(Network::Testnet, &fake, &prev, 12_600),
        Some(vec![real])
    );
    // More than two spacings (1,200 s) after its parent: either.
    assert_eq!(
        required(Network::Testnet, &fake, &prev, 13_201),
        Some(vec![real, min])
    );
    // Mainnet has no such rule.
    let mut fake = Fake::default();
    let prev = fake.add(4033, real, 10_600);
    assert_eq!(
        required(Network::Bitcoin, &fake, &prev, 99_999),
        Some(vec![real])
    );
}
