//! The seed epochs, edited field by field, through the auditor: see
//! `proofpool_fuzz::epoch::run_edits`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| proofpool_fuzz::epoch::run_edits(data));
