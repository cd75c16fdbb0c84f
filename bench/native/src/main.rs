//! Native reference for bench/pow.ts: how fast the `blake3` crate hashes the handshake's 136-byte PoW input
//! (128-byte prefix ‖ 8-byte little-endian nonce) on one core, nonce by nonce, as an attacker's solver would.
//!
//! Usage: pow-native <attempts> [full|midstate]
//!   full      blake3::hash over the whole 136-byte input per attempt (the reference rate)
//!   midstate  clone a Hasher that has absorbed the prefix, then add the nonce (what a careful solver does)
//! Prints one JSON line: {"mode":…,"attempts":…,"seconds":…,"rate":…,"best":…}. Never used by the node itself.
use std::hint::black_box;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let attempts: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(2_000_000);
    let mode = args.get(2).map(String::as_str).unwrap_or("full");

    let mut input = [0u8; 136];
    for (i, b) in input.iter_mut().enumerate().take(128) {
        *b = (i as u8).wrapping_mul(37).wrapping_add(11);
    }
    let mut prefix_hasher = blake3::Hasher::new();
    prefix_hasher.update(&input[..128]);

    // `best` (most leading zero bits seen) depends on every digest, so no hash can be optimised away.
    let mut best = 0u32;
    let start = Instant::now();
    match mode {
        "midstate" => {
            for nonce in 0..attempts {
                let mut h = prefix_hasher.clone();
                h.update(&nonce.to_le_bytes());
                let d = h.finalize();
                let w = u32::from_be_bytes(d.as_bytes()[..4].try_into().unwrap());
                best = best.max(w.leading_zeros());
            }
        }
        _ => {
            for nonce in 0..attempts {
                input[128..].copy_from_slice(&nonce.to_le_bytes());
                let d = blake3::hash(black_box(&input));
                let w = u32::from_be_bytes(d.as_bytes()[..4].try_into().unwrap());
                best = best.max(w.leading_zeros());
            }
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let mode_name = if mode == "midstate" { "midstate" } else { "full" };
    println!(
        "{{\"mode\":\"{}\",\"attempts\":{},\"seconds\":{:.6},\"rate\":{:.0},\"best\":{}}}",
        mode_name,
        attempts,
        seconds,
        attempts as f64 / seconds,
        black_box(best)
    );
}
