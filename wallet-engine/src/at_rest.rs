//! What the engine keeps at rest: sealed shares (`seal`), and, sealed the same way, the
//! derivation cache and the prime pool.

pub(crate) mod cache;
pub(crate) mod primes;
pub(crate) mod seal;
