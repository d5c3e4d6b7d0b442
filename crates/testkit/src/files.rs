//! Files of pseudo-random bytes: inputs that are not any format.

use std::path::Path;

/// `len` bytes from a xorshift generator started at `seed` (0 is replaced by a fixed odd value,
/// since xorshift from 0 stays 0): the same bytes for the same seed, on every machine.
pub fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = if seed == 0 {
        0x9e37_79b9_7f4a_7c15
    } else {
        seed
    };
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Writes `len` pseudo-random bytes (seed `0x9e37_79b9_7f4a_7c15`) to `path`.
pub fn random_file(path: &Path, len: usize) {
    write_random(path, len, 0x9e37_79b9_7f4a_7c15);
}

/// Writes `len` pseudo-random bytes from `seed` to `path`.
pub fn write_random(path: &Path, len: usize, seed: u64) {
    std::fs::write(path, pseudo_random_bytes(len, seed))
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_bytes_and_another_seed_others() {
        let a = pseudo_random_bytes(4096, 7);
        assert_eq!(a, pseudo_random_bytes(4096, 7));
        assert_ne!(a, pseudo_random_bytes(4096, 8));
        assert_ne!(pseudo_random_bytes(64, 0), vec![0u8; 64]);
        // Every byte value turns up in 4 KiB: not a short cycle.
        let mut seen = [false; 256];
        a.iter().for_each(|&b| seen[b as usize] = true);
        assert!(seen.iter().all(|&s| s));
    }
}
