//! The Bitcoin headers each epoch file carries, so auditors can tie jobs and
//! blocks to the chain from the files alone.
//!
//! Each file carries bitcoind's best chain from just above the last header
//! the previous file carried that is still in it (normally that file's last
//! header; lower after a reorg) up to the tip, read walking down from the
//! tip so the run is one consistent chain whatever arrives meanwhile. The
//! first file with headers (the first epoch with jobs, or one after a reorg
//! deeper than the previous file's headers) starts at the beginning of the
//! retarget period of its lowest job's parent, so an auditor can check every target from there
//! on. Jobs built on a block that has since left the best chain get that
//! block's header, and its stale ancestors, in `stale`.

use super::SettleError;
use alloy::primitives::{B256, Bytes};
use bitcoin::block::Header;
use bitcoin::hashes::Hash;
use proofpool_epoch::epoch_file::FileBitcoin;
use proofpool_node::{NodeClient, NodeError};
use proofpool_store::JobRecord;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

/// The most headers one file carries: a retarget period's worth is the
/// most a fresh start needs, and an epoch spans far fewer. A chain that
/// moved further (a settler down for weeks) starts afresh, and auditors
/// see the break.
const MAX_HEADERS: usize = 20_000;
/// The most stale ancestors followed for one job's previous block.
const MAX_STALE_DEPTH: usize = 100;

/// The part of an epoch file this module reads back: its headers.
#[derive(serde::Deserialize)]
struct CarriedOnly {
    #[serde(default)]
    bitcoin: Option<FileBitcoin>,
}

/// The headers the file at `path` carried; `None` if it has none or cannot
/// be read (the next file then starts afresh).
pub(crate) fn carried_by(path: &Path) -> Option<FileBitcoin> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) => {
            tracing::warn!(path = %path.display(), %err, "the previous epoch file cannot be read: its headers are not continued");
            return None;
        }
    };
    match serde_json::from_slice::<CarriedOnly>(&bytes) {
        Ok(c) => c.bitcoin,
        Err(err) => {
            tracing::warn!(path = %path.display(), %err, "the previous epoch file does not parse: its headers are not continued");
            None
        }
    }
}

/// The most files read back for the last headers carried: past them the
/// next file starts afresh (and auditors see the break).
const MAX_FILES_BACK: u64 = 256;

/// The headers the files before epoch `e` in `dir` carried last: the newest
/// file's, or, when it carried none (nothing new since the file before; its
/// `start_height` is then the carried tip's successor), the newest earlier
/// file's that did. A file without a `bitcoin` section (settled without
/// bitcoind), or an unreadable one, ends the search.
pub(crate) fn last_carried(dir: &Path, e: u64) -> Option<FileBitcoin> {
    let oldest = e.saturating_sub(MAX_FILES_BACK).max(1);
    for p in (oldest..e).rev() {
        let carried = carried_by(&dir.join(proofpool_epoch::epoch_file::EpochFile::file_name(p)))?;
        if !carried.headers.is_empty() {
            return Some(carried);
        }
    }
    None
}

fn decode_err(method: &'static str, reason: impl ToString) -> SettleError {
    SettleError::Node(NodeError::Decode {
        method,
        reason: reason.to_string(),
    })
}

/// A header's hash, display order.
fn hash_of(h: &Header) -> B256 {
    display(h.block_hash().to_byte_array())
}

/// A hash in bitcoin's internal order, as displayed.
fn display(internal: [u8; 32]) -> B256 {
    let mut bytes = internal;
    bytes.reverse();
    B256::from(bytes)
}

/// `getblockheader HASH false`: the serialized header.
async fn raw_header(node: &NodeClient, hash: B256) -> Result<(Header, Bytes), SettleError> {
    let hex: String = node
        .call(
            "getblockheader",
            serde_json::json!([alloy::hex::encode(hash), false]),
            None,
        )
        .await?;
    let bytes = alloy::hex::decode(hex.trim()).map_err(|e| decode_err("getblockheader", e))?;
    let header: Header =
        bitcoin::consensus::deserialize(&bytes).map_err(|e| decode_err("getblockheader", e))?;
    Ok((header, bytes.into()))
}

/// The headers epoch `jobs`' file carries, continuing `prev` (the previous
/// file's). See the module docs. `None` while no file has carried headers
/// and this epoch has no job: the chain starts with the first jobs, whose
/// parents a start at the settle-time tip could miss.
pub(crate) async fn carry(
    node: &NodeClient,
    prev: Option<&FileBitcoin>,
    jobs: &[JobRecord],
) -> Result<Option<FileBitcoin>, SettleError> {
    if prev.is_none() && jobs.is_empty() {
        return Ok(None);
    }
    let info = node.get_blockchain_info().await?;
    let network = info.chain.clone();
    let tip_hash: B256 = info
        .bestblockhash
        .parse()
        .map_err(|e| decode_err("getblockchaininfo", e))?;
    // The previous file's best chain, by height.
    let mut linked: BTreeMap<u64, B256> = BTreeMap::new();
    if let Some(p) = prev.filter(|p| p.network == network) {
        for (i, raw) in p.headers.iter().enumerate() {
            if let Ok(h) = bitcoin::consensus::deserialize::<Header>(raw) {
                linked.insert(p.start_height.saturating_add(i as u64), hash_of(&h));
            }
        }
    }
    let retargets = !matches!(network.as_str(), "regtest");
    let lowest_parent = jobs
        .iter()
        .map(|j| j.height.saturating_sub(1))
        .min()
        .unwrap_or(info.blocks)
        .min(info.blocks);
    let fresh_start = if retargets {
        lowest_parent - lowest_parent % 2016
    } else {
        lowest_parent
    };

    let mut headers = Vec::new();
    let (mut height, mut hash) = (info.blocks, tip_hash);
    let start = loop {
        if let Some((&first, _)) = linked.first_key_value() {
            if linked.get(&height) == Some(&hash) {
                break height + 1;
            }
            if height < first {
                tracing::warn!(
                    height,
                    "a reorg deeper than the previous epoch file's headers: starting them afresh"
                );
                linked.clear();
            }
        }
        if linked.is_empty() && height < fresh_start {
            break height + 1;
        }
        if headers.len() >= MAX_HEADERS {
            tracing::warn!(
                height,
                "more than {MAX_HEADERS} headers since the previous epoch file: starting them afresh"
            );
            break height + 1;
        }
        let (header, raw) = raw_header(node, hash).await?;
        headers.push(raw);
        if height == 0 {
            break 0;
        }
        height -= 1;
        hash = display(header.prev_blockhash.to_byte_array());
    };
    headers.reverse();

    // Jobs on blocks that left the best chain: those blocks and their stale
    // ancestors, parents first.
    let mut stale: Vec<Bytes> = Vec::new();
    let mut asked: HashSet<B256> = HashSet::new();
    let mut included: HashSet<B256> = HashSet::new();
    for prev_hash in jobs.iter().map(|j| display(j.prev_hash.0)) {
        if !asked.insert(prev_hash) {
            continue;
        }
        let mut branch = Vec::new();
        let mut cur = prev_hash;
        for _ in 0..MAX_STALE_DEPTH {
            if included.contains(&cur) {
                break;
            }
            match node.get_block_header(&alloy::hex::encode(cur)).await? {
                Some(h) if h.confirmations < 0 => {
                    let (header, raw) = raw_header(node, cur).await?;
                    branch.push(raw);
                    included.insert(cur);
                    cur = display(header.prev_blockhash.to_byte_array());
                }
                // In the best chain (carried by this file or an earlier
                // one), or unknown to bitcoind (the auditor reports it).
                _ => break,
            }
        }
        branch.reverse();
        stale.extend(branch);
    }
    Ok(Some(FileBitcoin {
        network,
        start_height: start,
        headers,
        stale,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, e: u64, bitcoin: serde_json::Value) {
        let name = proofpool_epoch::epoch_file::EpochFile::file_name(e);
        std::fs::write(
            dir.join(name),
            serde_json::json!({ "bitcoin": bitcoin }).to_string(),
        )
        .unwrap();
    }

    /// A file that carried no new header (the chain had not moved) does not
    /// break the run: the next file continues the newest headers carried,
    /// as the auditor requires. Seen as a settler bug when a pool idled
    /// for epochs before mining on.
    #[test]
    fn an_epoch_without_new_headers_is_skipped_back_over() {
        let dir = proofpool_devtools::TempDir::new("carried").unwrap();
        let header = |n: u8| format!("0x{}", alloy::hex::encode([n; 80]));
        write(
            dir.path(),
            1,
            serde_json::json!({"network": "regtest", "start_height": 10, "headers": [header(1), header(2)]}),
        );
        write(
            dir.path(),
            2,
            serde_json::json!({"network": "regtest", "start_height": 12, "headers": []}),
        );
        let last = last_carried(dir.path(), 3).unwrap();
        assert_eq!((last.start_height, last.headers.len()), (10, 2));
        // The newest file's own headers when it has some.
        write(
            dir.path(),
            3,
            serde_json::json!({"network": "regtest", "start_height": 12, "headers": [header(3)]}),
        );
        assert_eq!(last_carried(dir.path(), 4).unwrap().start_height, 12);
        // A file settled without bitcoind ends the search; so does none.
        write(dir.path(), 4, serde_json::Value::Null);
        assert!(last_carried(dir.path(), 5).is_none());
        assert!(last_carried(dir.path(), 1).is_none());
    }
}
