//! bitcoind's ZMQ `hashblock` feed: each block bitcoind connects is
//! announced at once, and the pool fetches a template for it without
//! waiting on the long-poll (which keeps running; whichever answers first
//! publishes the job, the other finds it already current).
//!
//! A message is three frames: the topic `hashblock`, the 32-byte block hash
//! (in RPC display order), and a 4-byte little-endian sequence number. A
//! gap in the sequence means bitcoind dropped messages (its high-water
//! mark); that is logged, and costs nothing since every message only asks
//! for the newest template.
//!
//! The SUB socket does not report a lost publisher, so it is replaced each
//! time bitcoind answers RPC again after failing (a restart also restarts
//! its publisher), and after a receive error, with backoff.

use super::Shared;
use bitcoin::hashes::Hash;
use std::sync::Arc;
use std::time::Duration;
use zeromq::{Socket, SocketRecv, SubSocket};

/// The topic bitcoind's `-zmqpubhashblock` publishes under.
const TOPIC: &str = "hashblock";

/// Longest wait between connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Checks an endpoint as `Pool::new` does: `tcp://HOST:PORT` (or `ipc://`).
pub(crate) fn check_endpoint(endpoint: &str) -> Result<(), String> {
    endpoint
        .parse::<zeromq::Endpoint>()
        .map(|_| ())
        .map_err(|e| {
            format!("zmq_hashblock {endpoint:?} is not a ZMQ endpoint (tcp://HOST:PORT): {e}")
        })
}

/// A decoded `hashblock` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HashBlock {
    pub(crate) hash: bitcoin::BlockHash,
    pub(crate) sequence: u32,
}

/// Decodes the frames of one message, or says what is wrong with them.
pub(crate) fn decode(frames: &[&[u8]]) -> Result<HashBlock, String> {
    let [topic, body, sequence] = frames else {
        return Err(format!("{} frames, expected 3", frames.len()));
    };
    if *topic != TOPIC.as_bytes() {
        return Err(format!("topic {:?}", String::from_utf8_lossy(topic)));
    }
    let mut hash: [u8; 32] = (*body)
        .try_into()
        .map_err(|_| format!("a {}-byte hash", body.len()))?;
    // Display order, as in RPC; the hash type holds internal order.
    hash.reverse();
    let sequence: [u8; 4] = (*sequence)
        .try_into()
        .map_err(|_| format!("a {}-byte sequence number", sequence.len()))?;
    Ok(HashBlock {
        hash: bitcoin::BlockHash::from_byte_array(hash),
        sequence: u32::from_le_bytes(sequence),
    })
}

/// Follows `endpoint` until `stop` resolves.
pub(crate) async fn follow(
    shared: Arc<Shared>,
    endpoint: String,
    stop: impl std::future::Future<Output = ()>,
) {
    tracing::info!(%endpoint, "following bitcoind's ZMQ hashblock feed");
    tokio::pin!(stop);
    let mut backoff = Duration::from_millis(250);
    loop {
        tokio::select! {
            () = &mut stop => return,
            ended = subscription(&shared, &endpoint) => match ended {
                Ended::NodeBack => {
                    tracing::debug!(%endpoint, "bitcoind is back; subscribing to hashblock again");
                    backoff = Duration::from_millis(250);
                }
                Ended::Failed(e) => {
                    shared.metrics.zmq_connected.set(0.0);
                    tracing::warn!(%endpoint, error = %e, retry_in = ?backoff, "ZMQ hashblock feed failed; the long-poll still brings new blocks");
                    tokio::select! {
                        () = &mut stop => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

/// Why one subscription ended.
enum Ended {
    /// bitcoind answered again after failing: its publisher may be new.
    NodeBack,
    /// Connecting or receiving failed.
    Failed(String),
}

/// One SUB socket's life: connect, subscribe, and ask for a template for
/// every announced block.
async fn subscription(shared: &Shared, endpoint: &str) -> Ended {
    let node_back = shared.work.node_back();
    tokio::pin!(node_back);
    let mut socket = SubSocket::new();
    // `connect` retries until the publisher listens.
    tokio::select! {
        () = &mut node_back => return Ended::NodeBack,
        connected = socket.connect(endpoint) => if let Err(e) = connected {
            return Ended::Failed(format!("connect: {e}"));
        },
    }
    if let Err(e) = socket.subscribe(TOPIC).await {
        return Ended::Failed(format!("subscribe: {e}"));
    }
    shared.metrics.zmq_connected.set(1.0);
    tracing::debug!(%endpoint, "subscribed to bitcoind's ZMQ hashblock feed");
    let mut last_sequence: Option<u32> = None;
    loop {
        let message = tokio::select! {
            () = &mut node_back => return Ended::NodeBack,
            m = socket.recv() => match m {
                Ok(m) => m,
                Err(e) => return Ended::Failed(format!("receive: {e}")),
            },
        };
        let frames: Vec<&[u8]> = message.iter().map(|b| b.as_ref()).collect();
        let block = match decode(&frames) {
            Ok(block) => block,
            Err(why) => {
                tracing::warn!(%endpoint, %why, "ignoring a ZMQ message that is not a hashblock");
                continue;
            }
        };
        shared.metrics.zmq_blocks.increment(1);
        if let Some(last) = last_sequence
            && block.sequence != last.wrapping_add(1)
        {
            tracing::warn!(%endpoint, last, next = block.sequence, "ZMQ hashblock messages were lost");
        }
        last_sequence = Some(block.sequence);
        let current = shared.work.current().map(|job| job.prev_hash());
        if current == Some(block.hash) {
            tracing::debug!(hash = %block.hash, "ZMQ hashblock: the long-poll was first");
        } else {
            tracing::debug!(hash = %block.hash, "ZMQ hashblock: fetching a template");
            shared.work.refresh_now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{HashBlock, check_endpoint, decode};
    use bitcoin::hashes::Hash;

    #[test]
    fn hashblock_messages_decode_and_bad_ones_say_why() {
        let mut body = [0u8; 32];
        body[0] = 0xab; // display order: first byte shown is the last stored
        let block = decode(&[b"hashblock", &body, &7u32.to_le_bytes()]).unwrap();
        let mut internal = [0u8; 32];
        internal[31] = 0xab;
        assert_eq!(
            block,
            HashBlock {
                hash: bitcoin::BlockHash::from_byte_array(internal),
                sequence: 7
            }
        );
        assert!(block.hash.to_string().starts_with("ab00"));
        assert!(
            decode(&[b"hashtx", &body, &[0; 4]])
                .unwrap_err()
                .contains("topic")
        );
        assert!(
            decode(&[b"hashblock", &body[..31], &[0; 4]])
                .unwrap_err()
                .contains("31-byte")
        );
        assert!(
            decode(&[b"hashblock", &body, &[0; 3]])
                .unwrap_err()
                .contains("sequence")
        );
        assert!(
            decode(&[b"hashblock", &body])
                .unwrap_err()
                .contains("2 frames")
        );
    }

    #[test]
    fn endpoints_are_checked() {
        assert!(check_endpoint("tcp://127.0.0.1:28332").is_ok());
        assert!(check_endpoint("127.0.0.1:28332").is_err());
        assert!(check_endpoint("tcp://nowhere").is_err());
    }
}
