//! The per-connection coinbase commitment (docs/share-commitment.md): what
//! every share's proof of work binds besides the job, namely the miner to
//! credit, the share target it was given, and the head of the instance's
//! share log when the job was built.
//!
//! It is one `OP_RETURN` output of the coinbase, which the header's Merkle
//! root covers:
//!
//! ```text
//! 6a 3b                 OP_RETURN, push 59 bytes
//! 70 70                 "pp"
//! 01                    version
//! <20 bytes>            the miner's address
//! <4 bytes>             the share target, compact ("nbits") form, big-endian
//! <32 bytes>            the instance's share-log head
//! ```
//!
//! 61 bytes of script, within the 83-byte standardness limit for
//! `OP_RETURN` outputs, and nothing in the scriptSig, whose 100 bytes the
//! height, the pool tag and the extranonces already share.

use alloy_primitives::{Address, B256, U256};

/// The commitment's magic bytes, after the push opcode.
pub const MAGIC: [u8; 2] = *b"pp";
/// The layout this code writes and reads.
pub const VERSION: u8 = 1;
/// Bytes pushed after `OP_RETURN`.
pub const PAYLOAD_LEN: usize = 2 + 1 + 20 + 4 + 32;
/// The whole output script.
pub const SCRIPT_LEN: usize = 2 + PAYLOAD_LEN;
/// The output as the coinbase serializes it: an 8-byte zero value, the
/// script's length (one byte) and the script.
pub const OUTPUT_LEN: usize = 8 + 1 + SCRIPT_LEN;

const OP_RETURN: u8 = 0x6a;

/// A share's header time (`ntime`) and the time the pool accepted it lie at
/// most this many seconds apart, either way: the pool refuses a share
/// outside it, and the auditor fails a share listed outside it. The header
/// time is fixed by the share's proof of work, so this ties the share's
/// place in the log to when it was mined: a share withheld and slipped in
/// later, just before a block, is out of bounds once this has passed.
pub const NTIME_SKEW_SECS: u32 = 300;

/// What one connection's coinbase commits to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareCommitment {
    /// The address the connection's shares are credited to.
    pub miner: Address,
    /// The share target of the job, compact form (as a header's `nbits`).
    pub target_bits: u32,
    /// The instance's share-log head when the job was built.
    pub log_head: B256,
}

/// Why a script is not a commitment this code reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CommitmentError {
    /// Not `OP_RETURN` pushing exactly the payload, or another magic.
    #[error("not a proofpool share commitment")]
    NotACommitment,
    /// A commitment of a layout this code does not know.
    #[error("share commitment version {0} is not supported (this code reads version 1)")]
    UnknownVersion(u8),
}

impl ShareCommitment {
    /// The output script.
    pub fn script(&self) -> [u8; SCRIPT_LEN] {
        let mut s = [0u8; SCRIPT_LEN];
        s[0] = OP_RETURN;
        s[1] = PAYLOAD_LEN as u8;
        s[2..4].copy_from_slice(&MAGIC);
        s[4] = VERSION;
        s[5..25].copy_from_slice(self.miner.as_slice());
        s[25..29].copy_from_slice(&self.target_bits.to_be_bytes());
        s[29..61].copy_from_slice(self.log_head.as_slice());
        s
    }

    /// The serialized output: value zero, then the script with its length.
    pub fn output(&self) -> [u8; OUTPUT_LEN] {
        let mut out = [0u8; OUTPUT_LEN];
        out[8] = SCRIPT_LEN as u8;
        out[9..].copy_from_slice(&self.script());
        out
    }

    /// Reads an output script written by [`ShareCommitment::script`].
    pub fn from_script(script: &[u8]) -> Result<Self, CommitmentError> {
        if script.len() != SCRIPT_LEN
            || script[0] != OP_RETURN
            || usize::from(script[1]) != PAYLOAD_LEN
            || script[2..4] != MAGIC
        {
            return Err(CommitmentError::NotACommitment);
        }
        if script[4] != VERSION {
            return Err(CommitmentError::UnknownVersion(script[4]));
        }
        let mut bits = [0u8; 4];
        bits.copy_from_slice(&script[25..29]);
        Ok(Self {
            miner: Address::from_slice(&script[5..25]),
            target_bits: u32::from_be_bytes(bits),
            log_head: B256::from_slice(&script[29..61]),
        })
    }
}

/// The share target a job commits to when the pool asks for `target`:
/// rounded down to what the compact form holds, so never easier than asked,
/// with its compact form. The share is credited at exactly this target.
pub fn committed_target(target: U256) -> (u32, U256) {
    let bits = bitcoin::Target::from_le_bytes(target.to_le_bytes::<32>()).to_compact_lossy();
    let bits = bits.to_consensus();
    // A compact form made from a target always reads back.
    (bits, target_of_bits(bits).unwrap_or(U256::ZERO))
}

/// The target a compact form names, or `None` for one that is negative,
/// zero or overflows (no share target can be those).
pub fn target_of_bits(bits: u32) -> Option<U256> {
    let exponent = bits >> 24;
    let mantissa = bits & 0x007f_ffff;
    if bits & 0x0080_0000 != 0 || mantissa == 0 {
        return None;
    }
    let value = if exponent <= 3 {
        U256::from(mantissa >> (8 * (3 - exponent)))
    } else {
        let shift = 8 * (exponent - 3) as usize;
        let m = U256::from(mantissa);
        let shifted = m.checked_shl(shift)?;
        if shifted >> shift != m {
            return None;
        }
        shifted
    };
    (!value.is_zero()).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ShareCommitment {
        ShareCommitment {
            miner: Address::repeat_byte(0xab),
            target_bits: 0x1d00_ffff,
            log_head: B256::repeat_byte(0x5c),
        }
    }

    /// The layout, byte by byte, as docs/share-commitment.md gives it.
    #[test]
    fn the_script_is_the_documented_layout() {
        let s = sample().script();
        let mut expected = vec![0x6a, 59, b'p', b'p', 1];
        expected.extend([0xab; 20]);
        expected.extend([0x1d, 0x00, 0xff, 0xff]);
        expected.extend([0x5c; 32]);
        assert_eq!(s.to_vec(), expected);
        assert_eq!(s.len(), 61);
        assert!(s.len() <= 83, "within the OP_RETURN standardness limit");
    }

    #[test]
    fn scripts_round_trip_and_others_are_refused() {
        let c = sample();
        assert_eq!(ShareCommitment::from_script(&c.script()), Ok(c));
        let mut other = c.script();
        other[4] = 2;
        assert_eq!(
            ShareCommitment::from_script(&other),
            Err(CommitmentError::UnknownVersion(2))
        );
        for bad in [&c.script()[..60], &[0x6a, 0x00][..], &[0u8; SCRIPT_LEN][..]] {
            assert_eq!(
                ShareCommitment::from_script(bad),
                Err(CommitmentError::NotACommitment)
            );
        }
        let mut magic = c.script();
        magic[2] = b'q';
        assert_eq!(
            ShareCommitment::from_script(&magic),
            Err(CommitmentError::NotACommitment)
        );
    }

    /// Worked by hand: difficulty 1's target is `0xffff · 2^208`, compact
    /// `0x1d00ffff`; a target of `2^224 - 1` keeps its top three bytes
    /// (`0x00ffffff` would set the sign bit, so the mantissa is `0x00ffff`
    /// one byte up: `0x1d00ffff`, i.e. rounded down).
    #[test]
    fn committed_targets_round_down_to_the_compact_form() {
        let diff1 = U256::from(0xffffu64) << 208;
        assert_eq!(committed_target(diff1), (0x1d00_ffff, diff1));
        let all_ones = (U256::from(1u8) << 224) - U256::from(1u8);
        assert_eq!(committed_target(all_ones), (0x1d00_ffff, diff1));
        // 0x01_23_45_67_00 is five bytes; its top three, 0x012345, stay.
        let t = U256::from(0x0123_4567u64) << 8;
        assert_eq!(
            committed_target(t),
            (0x0501_2345, U256::from(0x0001_2345u64) << 16)
        );
        assert_eq!(
            committed_target(U256::from(0x7fu8)),
            (0x017f_0000, U256::from(0x7fu8))
        );
        assert_eq!(target_of_bits(0x1d00_ffff), Some(diff1));
        assert_eq!(target_of_bits(0x0480_0001), None, "negative");
        assert_eq!(target_of_bits(0x1d00_0000), None, "zero");
        assert_eq!(target_of_bits(0xff12_3456), None, "overflow");
    }

    #[test]
    fn the_output_is_a_zero_value_and_the_script() {
        let out = sample().output();
        assert_eq!(&out[..8], &[0u8; 8]);
        assert_eq!(out[8], 61);
        assert_eq!(&out[9..], &sample().script()[..]);
    }
}
