//! Raw bytes from a miner, line by line, to the pool's replies: see
//! `proofpool_fuzz::stratum`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| proofpool_fuzz::stratum::run(data));
