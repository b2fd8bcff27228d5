//! vstick benchmarks (not part of the test suite; nothing here asserts a
//! time). See BENCHMARKS.md at the repository root.
//!
//! - `vstick-guest-io` (src/bin): the in-guest I/O driver of
//!   `bench/guest-bench.sh`.
//! - `benches/usbredir_loopback.rs` (`cargo bench -p vstick-bench`): the
//!   host-only benchmark of the usbredir stack, driven by [`redir_client`],
//!   against [`raw_server`], the raw loopback-socket limit.

pub mod raw_server;
pub mod redir_client;
