//! Raw bytes as an epoch file, through the decoder and the auditor: see
//! `proofpool_fuzz::epoch::run_raw`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| proofpool_fuzz::epoch::run_raw(data));
