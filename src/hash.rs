//! The one stable hash of the crate: 64-bit FNV-1a.
//!
//! Everything that must hash the same way on every platform, Rust release and run uses it:
//! the seed of a journey's RNG (so a journey id gives the same person everywhere), the seeds
//! of fault draws, cache variants and the sanitizer's stand-ins. `std`'s `DefaultHasher`
//! promises none of that. It is not for maps that face clients (those use a randomly seeded
//! hasher, so ids cannot be chosen to collide).

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// A running FNV-1a hash.
#[derive(Debug, Clone, Copy)]
pub struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Self {
        Fnv64(OFFSET)
    }
}

impl Fnv64 {
    /// A hash whose start is moved by `seed` (0 is plain FNV-1a).
    pub fn seeded(seed: u64) -> Self {
        Fnv64(OFFSET ^ seed)
    }

    /// Feed `bytes`.
    pub fn write(mut self, bytes: &[u8]) -> Self {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(PRIME);
        }
        self
    }

    pub fn finish(self) -> u64 {
        self.0
    }
}

/// FNV-1a of `bytes`.
pub fn fnv64(bytes: &[u8]) -> u64 {
    Fnv64::default().write(bytes).finish()
}

/// A hash of (seed, key): the seed's little-endian bytes, a separator no UTF-8 text holds,
/// then the key. Seeds every journey's RNG, so it must never change for a given build.
pub fn stable_seed(seed: u64, key: &str) -> u64 {
    Fnv64::default()
        .write(&seed.to_le_bytes())
        .write(&[0xff])
        .write(key.as_bytes())
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_never_change() {
        // The published FNV-1a test vectors.
        assert_eq!(fnv64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv64(b"foobar"), 0x8594_4171_f739_67e8);
        // What every journey of seed 42 is drawn from: a change here changes every body.
        assert_eq!(stable_seed(42, "success-1"), 0x5bf7_51a1_7fb1_c971);
        assert_ne!(stable_seed(0, "a"), stable_seed(1, "a"));
        assert_ne!(stable_seed(0, "a"), stable_seed(0, "b"));
        assert_eq!(Fnv64::seeded(0).write(b"a").finish(), fnv64(b"a"));
        assert_ne!(Fnv64::seeded(7).write(b"a").finish(), fnv64(b"a"));
    }
}
