//! Job declaration tokens (docs/job-declaration.md): what the pool promised
//! a job declarator client in `AllocateMiningJobToken.Success`, so that a
//! later `SetCustomMiningJob` is held to it.
//!
//! A token names the address it was issued to, the share target and log
//! head its commitment output carries, and when it was issued. It lives for
//! a bounded time (so a declared job never commits to an old log head) and
//! the registry holds a bounded number (the oldest go first), so a client
//! asking for tokens without end cannot grow the pool's memory.

use crate::job::DeclaredTemplate;
use alloy_primitives::{Address, B256};
use proofpool_epoch::share_commitment::ShareCommitment;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A token's bytes: an 8-byte serial number, then 8 random bytes.
pub const TOKEN_LEN: usize = 16;

/// Live tokens that carry a full-template declaration, at most: each holds
/// its block's transactions (up to a block's size), so they are bounded
/// apart from the others; the oldest goes first.
pub const MAX_TEMPLATES: usize = 32;

/// Of those, at most this many for one address: its own oldest goes first,
/// so one client declaring without end evicts its own declarations, not
/// everyone's.
pub const MAX_TEMPLATES_PER_ADDRESS: usize = 4;

/// What a token promises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The address it was issued to: only a channel of this address may
    /// use it, and its jobs' shares are credited to it.
    pub miner: Address,
    /// The share target its commitment carries, compact form.
    pub target_bits: u32,
    /// The instance's share-log head when it was issued.
    pub log_head: B256,
    /// When it was issued.
    pub issued: Instant,
    /// Issued for a full-template declaration (`DeclareMiningJob`): the
    /// job set with it must be that one.
    pub template: Option<Arc<DeclaredTemplate>>,
}

impl Token {
    /// The share commitment output a job declared with it must carry.
    pub fn commitment(&self) -> ShareCommitment {
        ShareCommitment {
            miner: self.miner,
            target_bits: self.target_bits,
            log_head: self.log_head,
        }
    }
}

/// The live tokens.
#[derive(Debug)]
pub struct Tokens {
    next_serial: u64,
    /// Stands in for the random bytes if the system's source fails.
    salt: [u8; 8],
    live: HashMap<[u8; TOKEN_LEN], Token>,
    /// Issue order, for expiry and eviction.
    order: VecDeque<[u8; TOKEN_LEN]>,
    ttl: Duration,
    max_live: usize,
}

impl Tokens {
    /// A registry whose tokens live `ttl`, at most `max_live` at once.
    pub fn new(ttl: Duration, max_live: usize, salt: [u8; 8]) -> Self {
        Self {
            next_serial: 1,
            salt,
            live: HashMap::new(),
            order: VecDeque::new(),
            ttl,
            max_live: max_live.max(1),
        }
    }

    /// Issues a token for `miner` at `target_bits` and `log_head`.
    pub fn allocate(
        &mut self,
        miner: Address,
        target_bits: u32,
        log_head: B256,
        now: Instant,
    ) -> [u8; TOKEN_LEN] {
        let token = Token {
            miner,
            target_bits,
            log_head,
            issued: now,
            template: None,
        };
        self.issue(token, now)
    }

    /// Issues a token promising what `declared` promised (its address,
    /// target, log head, and expiry: the log head is no older for it) and
    /// the full-template declaration `template`.
    pub fn allocate_template(
        &mut self,
        declared: &Token,
        template: DeclaredTemplate,
        now: Instant,
    ) -> [u8; TOKEN_LEN] {
        self.expire(now);
        let with_templates: Vec<([u8; TOKEN_LEN], Address)> = self
            .order
            .iter()
            .filter_map(|key| {
                let t = self.live.get(key)?;
                t.template.as_ref().map(|_| (*key, t.miner))
            })
            .collect();
        let own: Vec<[u8; TOKEN_LEN]> = with_templates
            .iter()
            .filter(|(_, miner)| *miner == declared.miner)
            .map(|(key, _)| *key)
            .collect();
        let evict = if own.len() >= MAX_TEMPLATES_PER_ADDRESS {
            own.first().copied()
        } else if with_templates.len() >= MAX_TEMPLATES {
            with_templates.first().map(|(key, _)| *key)
        } else {
            None
        };
        if let Some(gone) = evict {
            self.live.remove(&gone);
            self.order.retain(|key| *key != gone);
        }
        let token = Token {
            template: Some(Arc::new(template)),
            ..declared.clone()
        };
        self.issue(token, now)
    }

    fn issue(&mut self, promise: Token, now: Instant) -> [u8; TOKEN_LEN] {
        self.expire(now);
        while self.live.len() >= self.max_live {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.live.remove(&oldest);
        }
        let mut token = [0u8; TOKEN_LEN];
        // Random, so that no token says anything of the others: a serial
        // number first (distinct even if the random source failed), then
        // random bytes.
        token[..8].copy_from_slice(&self.next_serial.to_be_bytes());
        self.next_serial += 1;
        if getrandom::fill(&mut token[8..]).is_err() {
            token[8..].copy_from_slice(&self.salt);
        }
        self.live.insert(token, promise);
        self.order.push_back(token);
        token
    }

    /// The token with these bytes, if it is live.
    pub fn get(&mut self, token: &[u8], now: Instant) -> Option<Token> {
        self.expire(now);
        let key: [u8; TOKEN_LEN] = token.try_into().ok()?;
        // A template token keeps its declaration's issue time, so it may
        // stand behind younger ones in `order`: its age is checked here.
        self.live
            .get(&key)
            .filter(|t| now.saturating_duration_since(t.issued) < self.ttl)
            .cloned()
    }

    /// How many tokens are live.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    fn expire(&mut self, now: Instant) {
        while let Some(front) = self.order.front() {
            match self.live.get(front) {
                Some(t) if now.saturating_duration_since(t.issued) < self.ttl => break,
                _ => {
                    if let Some(gone) = self.order.pop_front() {
                        self.live.remove(&gone);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> Tokens {
        Tokens::new(Duration::from_secs(600), 3, [7; 8])
    }

    #[test]
    fn a_token_is_what_was_promised_until_it_expires() {
        let t0 = Instant::now();
        let mut tokens = registry();
        let a = Address::repeat_byte(1);
        let token = tokens.allocate(a, 0x1d00_ffff, B256::repeat_byte(2), t0);
        let got = tokens.get(&token, t0 + Duration::from_secs(599)).unwrap();
        assert_eq!((got.miner, got.target_bits), (a, 0x1d00_ffff));
        assert_eq!(
            got.commitment(),
            ShareCommitment {
                miner: a,
                target_bits: 0x1d00_ffff,
                log_head: B256::repeat_byte(2),
            }
        );
        // Ten minutes after issue it is gone.
        assert_eq!(tokens.get(&token, t0 + Duration::from_secs(600)), None);
        assert!(tokens.is_empty());
    }

    #[test]
    fn tokens_are_distinct_bounded_and_exact() {
        let t0 = Instant::now();
        let mut tokens = registry();
        let issued: Vec<_> = (0..5u8)
            .map(|i| tokens.allocate(Address::repeat_byte(i), 1, B256::ZERO, t0))
            .collect();
        for (i, a) in issued.iter().enumerate() {
            for b in &issued[i + 1..] {
                assert_ne!(a, b);
            }
        }
        // At most three live: the two oldest went first.
        assert_eq!(tokens.len(), 3);
        assert_eq!(tokens.get(&issued[0], t0), None);
        assert_eq!(tokens.get(&issued[1], t0), None);
        assert_eq!(
            tokens.get(&issued[4], t0).map(|t| t.miner),
            Some(Address::repeat_byte(4))
        );
        // Only the exact bytes name a token.
        assert_eq!(tokens.get(&issued[4][..15], t0), None);
        let mut other = issued[4];
        other[15] ^= 1;
        assert_eq!(tokens.get(&other, t0), None);
    }

    fn template() -> DeclaredTemplate {
        use bitcoin::hashes::Hash as _;
        DeclaredTemplate {
            prev_hash: bitcoin::BlockHash::all_zeros(),
            version: 0x2000_0000,
            coinbase: bitcoin::Transaction {
                version: bitcoin::transaction::Version::TWO,
                lock_time: bitcoin::absolute::LockTime::ZERO,
                input: Vec::new(),
                output: Vec::new(),
            },
            transactions: Vec::new().into(),
            branch: Vec::new(),
        }
    }

    #[test]
    fn template_tokens_are_bounded_per_address_and_keep_their_declarations_age() {
        let t0 = Instant::now();
        let mut tokens = Tokens::new(Duration::from_secs(600), 1000, [7; 8]);
        let (a, b) = (Address::repeat_byte(0xa), Address::repeat_byte(0xb));
        let issued_a = tokens.allocate(a, 1, B256::ZERO, t0);
        let declared_a = tokens.get(&issued_a, t0).unwrap();
        // Five declarations by one address: its first is evicted, the
        // plain token and the other address's declaration stay.
        let issued_b = tokens.allocate(b, 1, B256::ZERO, t0);
        let declared_b = tokens.get(&issued_b, t0).unwrap();
        let of_b = tokens.allocate_template(&declared_b, template(), t0);
        let of_a: Vec<_> = (0..5)
            .map(|i| tokens.allocate_template(&declared_a, template(), t0 + Duration::from_secs(i)))
            .collect();
        let later = t0 + Duration::from_secs(10);
        assert_eq!(tokens.get(&of_a[0], later), None);
        for key in &of_a[1..] {
            let t = tokens.get(key, later).expect("live");
            assert_eq!(t.miner, a);
            assert_eq!(t.template.as_deref(), Some(&template()));
        }
        assert!(tokens.get(&of_b, later).is_some());
        assert!(tokens.get(&issued_a, later).is_some());
        // A declaration's token expires with the token it was declared
        // with, though issued later.
        let at_expiry = t0 + Duration::from_secs(600);
        assert_eq!(tokens.get(&of_a[4], at_expiry), None);
        assert_eq!(tokens.get(&of_b, at_expiry), None);
    }

    #[test]
    fn template_tokens_are_bounded_over_all_addresses() {
        let t0 = Instant::now();
        let mut tokens = Tokens::new(Duration::from_secs(600), 1000, [7; 8]);
        let keys: Vec<_> = (0..MAX_TEMPLATES as u8 + 1)
            .map(|i| {
                let plain = tokens.allocate(Address::repeat_byte(i), 1, B256::ZERO, t0);
                let declared = tokens.get(&plain, t0).unwrap();
                tokens.allocate_template(&declared, template(), t0)
            })
            .collect();
        // The oldest declaration went; the other 32 are live.
        assert_eq!(tokens.get(&keys[0], t0), None);
        assert!(keys[1..].iter().all(|k| tokens.get(k, t0).is_some()));
    }
}
