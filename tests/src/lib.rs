//! Integration tests live in `tests/`; they start the real components on
//! loopback through [`proofpool_devtools`](../proofpool_devtools/index.html).
