//! Regenerates `fixtures/INSECURE-test-primes.json`: prime pairs that only tests use.
//!
//! `cargo run --release -p wallet-engine --example generate_test_primes -- 9 fixtures/INSECURE-test-primes.json`

fn main() {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(9);
    let out = args.next().unwrap_or_else(|| "INSECURE-test-primes.json".into());
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            std::thread::spawn(move || {
                (0..count)
                    .filter(|i| i % threads == t)
                    .map(|_| {
                        cggmp21::PregeneratedPrimes::<cggmp21::security_level::SecurityLevel128>::generate(
                            &mut rand::rngs::OsRng,
                        )
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let all: Vec<_> = handles.into_iter().flat_map(|h| h.join().expect("generator thread")).collect();
    std::fs::write(&out, serde_json::to_vec_pretty(&all).expect("encode")).expect("write fixture file");
    println!("wrote {} pairs to {out}", all.len());
}
