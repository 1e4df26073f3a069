//! The Stratum V2 connection end to end over an in-memory pipe: the Noise
//! handshake both ways, `SetupConnection`, and what a hostile peer can send.

use super::keys::AuthorityKey;
use super::noise::{MAX_FRAME, Sv2Connection, Sv2Error};
use super::setup::{REQUIRES_VERSION_ROLLING, SetupReply, mining_request, negotiate};
use std::time::Duration;
use stratum_core::common_messages_sv2::SetupConnectionOwned;
use stratum_core::mining_sv2::NewExtendedMiningJobOwned;
use stratum_core::parsers_sv2::{AnyMessageOwned, CommonMessagesOwned, MiningOwned};
use tokio::io::{AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};

const SECOND: Duration = Duration::from_secs(1);
const HOUR: Duration = Duration::from_secs(3600);

type Conn = Sv2Connection<ReadHalf<DuplexStream>, WriteHalf<DuplexStream>>;

fn setup_message() -> SetupConnectionOwned {
    mining_request(REQUIRES_VERSION_ROLLING, "proofpool-test", "").unwrap()
}

/// Both ends of one connection, the miner pinning `pinned`.
async fn pair(
    key: &AuthorityKey,
    pinned: [u8; 32],
) -> (Result<Conn, Sv2Error>, Result<Conn, Sv2Error>) {
    let (pool_side, miner_side) = tokio::io::duplex(MAX_FRAME * 2);
    let (pr, pw) = tokio::io::split(pool_side);
    let (mr, mw) = tokio::io::split(miner_side);
    tokio::join!(
        Sv2Connection::accept(pr, pw, key, HOUR, SECOND),
        Sv2Connection::connect(mr, mw, pinned, SECOND),
    )
}

#[tokio::test]
async fn a_miner_pinning_the_pool_key_sets_up_a_mining_connection() {
    let key = AuthorityKey::generate().unwrap();
    let (pool, miner) = pair(&key, *key.public()).await;
    let (mut pool, mut miner) = (pool.unwrap(), miner.unwrap());
    miner.send(setup_message()).await.unwrap();
    let Some(AnyMessageOwned::Common(CommonMessagesOwned::SetupConnection(setup))) =
        pool.read_message().await.unwrap()
    else {
        panic!("not a SetupConnection");
    };
    assert_eq!(setup, setup_message());
    let SetupReply::Accepted(success, _) = negotiate(&setup, false) else {
        panic!("refused");
    };
    pool.send(success).await.unwrap();
    match miner.read_message().await.unwrap() {
        Some(AnyMessageOwned::Common(CommonMessagesOwned::SetupConnectionSuccess(s))) => {
            assert_eq!((s.used_version, s.flags), (2, 0));
        }
        other => panic!("{other:?}"),
    }
    // The miner hangs up between frames: a clean end, not an error.
    drop(miner);
    assert!(pool.read_message().await.unwrap().is_none());
}

#[tokio::test]
async fn a_miner_pinning_another_key_refuses_the_pool() {
    let key = AuthorityKey::generate().unwrap();
    let other = AuthorityKey::generate().unwrap();
    let (_, miner) = pair(&key, *other.public()).await;
    assert!(matches!(miner, Err(Sv2Error::Handshake(_))), "{miner:?}");
}

#[tokio::test]
async fn a_silent_or_garbling_peer_is_dropped_with_a_clear_error() {
    let key = AuthorityKey::generate().unwrap();
    // Silent: the handshake times out.
    let (pool_side, _miner_side) = tokio::io::duplex(1024);
    let (r, w) = tokio::io::split(pool_side);
    let silent = Sv2Connection::accept(r, w, &key, HOUR, Duration::from_millis(50)).await;
    assert!(
        matches!(silent, Err(Sv2Error::HandshakeTimeout(_))),
        "{silent:?}"
    );
    // 64 bytes that are no ElligatorSwift key of any handshake.
    let (pool_side, mut miner_side) = tokio::io::duplex(1024);
    let (r, w) = tokio::io::split(pool_side);
    miner_side.write_all(&[0xff; 64]).await.unwrap();
    let garbage = Sv2Connection::accept(r, w, &key, HOUR, SECOND).await;
    // Either refused at once or answered (ElligatorSwift maps any 64 bytes
    // to a point); then the first frame cannot decrypt.
    if let Ok(mut pool) = garbage {
        miner_side.write_all(&[0xab; 22]).await.unwrap();
        let read = pool.read_message().await;
        assert!(matches!(read, Err(Sv2Error::Frame(_))), "{read:?}");
    }
}

#[tokio::test]
async fn a_frame_over_the_limit_is_refused_before_it_is_buffered() {
    let key = AuthorityKey::generate().unwrap();
    let (pool, miner) = pair(&key, *key.public()).await;
    let (mut pool, mut miner) = (pool.unwrap(), miner.unwrap());
    // The largest message a miner could send the pool: a 65,000-byte
    // coinbase prefix (one message type is as good as another here).
    let big = NewExtendedMiningJobOwned {
        channel_id: 1,
        job_id: 1,
        min_ntime: stratum_core::binary_sv2::Sv2OptionOwned::new(None),
        version: 0x2000_0000,
        version_rolling_allowed: true,
        merkle_path: Vec::new().try_into().unwrap(),
        coinbase_tx_prefix: vec![0u8; 65_000].try_into().unwrap(),
        coinbase_tx_suffix: vec![0u8; 1_000].try_into().unwrap(),
    };
    let sending = tokio::spawn(async move {
        let _ = miner
            .send(AnyMessageOwned::Mining(MiningOwned::NewExtendedMiningJob(
                big,
            )))
            .await;
        miner
    });
    let read = pool.read_message().await;
    assert!(matches!(read, Err(Sv2Error::TooLarge)), "{read:?}");
    drop(pool);
    let _ = sending.await;
}

#[tokio::test]
async fn a_raised_limit_lets_a_large_frame_in() {
    let key = AuthorityKey::generate().unwrap();
    let (pool, miner) = pair(&key, *key.public()).await;
    let (mut pool, mut miner) = (pool.unwrap(), miner.unwrap());
    // Job declaration's messages carry blocks: 120 KB, over several Noise
    // messages, whole once the limit is raised.
    pool.frame_limit().raise(1 << 20);
    assert_eq!(pool.frame_limit().get(), 1 << 20);
    let big = NewExtendedMiningJobOwned {
        channel_id: 1,
        job_id: 1,
        min_ntime: stratum_core::binary_sv2::Sv2OptionOwned::new(None),
        version: 0x2000_0000,
        version_rolling_allowed: true,
        merkle_path: Vec::new().try_into().unwrap(),
        coinbase_tx_prefix: vec![7u8; 60_000].try_into().unwrap(),
        coinbase_tx_suffix: vec![9u8; 60_000].try_into().unwrap(),
    };
    let sent = big.clone();
    let sending = tokio::spawn(async move {
        miner
            .send(AnyMessageOwned::Mining(MiningOwned::NewExtendedMiningJob(
                sent,
            )))
            .await
            .unwrap();
        miner
    });
    match pool.read_message().await {
        Ok(Some(AnyMessageOwned::Mining(MiningOwned::NewExtendedMiningJob(read)))) => {
            assert_eq!(
                read.coinbase_tx_prefix.as_ref(),
                big.coinbase_tx_prefix.as_ref()
            );
            assert_eq!(
                read.coinbase_tx_suffix.as_ref(),
                big.coinbase_tx_suffix.as_ref()
            );
        }
        other => panic!("{other:?}"),
    }
    let _ = sending.await;
}
