//! The emulator's one source of "randomness": a small stable hash (FNV-1a over
//! length-prefixed fields, finished with splitmix64), so every value it serves is a pure
//! function of what identifies it.

/// A stable 64-bit hash of `fields`: the emulator's one source of "randomness".
pub(crate) fn hash_fields(fields: &[&[u8]]) -> u64 {
    let mut h = Fnv::new();
    for f in fields {
        h.field(f);
    }
    splitmix64(h.0)
}

/// FNV-1a, 64 bit, with each field prefixed by its length so fields cannot run together.
pub(crate) struct Fnv(pub(crate) u64);

impl Fnv {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    pub(crate) fn new() -> Self {
        Fnv(Self::OFFSET)
    }

    fn bytes(&mut self, data: &[u8]) {
        for &b in data {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }

    pub(crate) fn field(&mut self, data: &[u8]) {
        self.bytes(&(data.len() as u64).to_le_bytes());
        self.bytes(data);
    }
}

/// The splitmix64 finaliser (Steele, Lea, Flood 2014), to spread FNV's low bits.
pub(crate) fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable() {
        // FNV-1a of "a" is the published test vector.
        let mut h = Fnv::new();
        h.bytes(b"a");
        assert_eq!(h.0, 0xaf63_dc4c_8601_ec8c);
        assert_eq!(splitmix64(0), 0xe220_a839_7b1d_cdaf);
    }
}
