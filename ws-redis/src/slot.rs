//! Redis Cluster's key slots: a key (or a shard channel) belongs to slot
//! `CRC16(hashed part) mod 16384`, CRC16 being the XMODEM variant (polynomial 0x1021, no
//! reflection, starting at zero). The hashed part is the key's hash tag, the bytes between its
//! first `{` and the first `}` after it, when that tag is not empty; else the whole key. Every
//! name of one room carries the room as its tag ([`crate::naming`]), so they share a slot.
//!
//! ```
//! use ws_redis::slot::slot;
//! assert_eq!(slot(b"123456789"), 12739);
//! assert_eq!(slot(b"ws:{lobby}:msg"), slot(b"lobby"));
//! ```

/// How many slots a Redis Cluster has.
pub const SLOTS: u16 = 16384;

/// The part of `key` that decides its slot.
pub fn hashed_part(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{') {
        let after = &key[open + 1..];
        if let Some(len) = after.iter().position(|&b| b == b'}') {
            if len > 0 {
                return &after[..len];
            }
        }
    }
    key
}

/// The slot of `key` (a key or a shard channel).
pub fn slot(key: &[u8]) -> u16 {
    crc16(hashed_part(key)) % SLOTS
}

/// CRC-16/XMODEM, bit by bit: keys are short, and no table is worth its space here.
fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in data {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = match crc & 0x8000 {
                0 => crc << 1,
                _ => (crc << 1) ^ 0x1021,
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_gives_the_xmodem_check_values() {
        assert_eq!(crc16(b""), 0);
        assert_eq!(crc16(b"123456789"), 0x31c3);
        assert_eq!(crc16(b"A"), 0x58e5);
    }

    #[test]
    fn slots_are_those_redis_cluster_gives() {
        // Values as `CLUSTER KEYSLOT` answers them.
        assert_eq!(slot(b"123456789"), 12739);
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"bar"), 5061);
        assert_eq!(slot(b"hello"), 866);
        assert_eq!(slot(b""), 0);
    }

    #[test]
    fn a_non_empty_hash_tag_decides_the_slot() {
        assert_eq!(slot(b"{user1000}.following"), slot(b"user1000"));
        assert_eq!(slot(b"{user1000}.followers"), slot(b"user1000"));
        assert_eq!(
            hashed_part(b"foo{}{bar}"),
            b"foo{}{bar}",
            "the first tag is empty"
        );
        assert_eq!(hashed_part(b"foo{{bar}}zap"), b"{bar");
        assert_eq!(hashed_part(b"foo{bar}{zap}"), b"bar");
        assert_eq!(hashed_part(b"foo{bar"), b"foo{bar", "no closing brace");
        assert_eq!(hashed_part(b"}{x}"), b"x");
    }
}
