//! Compression contexts kept by the thread, for connections that keep no context between
//! messages (no context takeover, what a server asks for by default).
//!
//! Such a connection needs a compressor only while it compresses one message, and an inflater
//! only while one message arrives. Taking them from a per-thread pool, reset between uses,
//! means a connection between messages holds no compression memory at all (a server worker
//! with ten thousand connections keeps a handful of contexts, not ten thousand), and a message
//! costs no allocation of the ~300 KiB a compressor needs, nor the fragmentation that many
//! short-lived large blocks between long-lived small ones leave in the heap.
//!
//! Compressors are lent for the span of a closure (compressing a message is one call).
//! Inflaters are taken when a compressed message starts and given back when it ends, since
//! its frames may arrive over many reads; meanwhile the connection counts it as its own.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::cell::RefCell;
use flate2::{Compress, Compression, Decompress};

/// Idle contexts a thread keeps, at most; more are freed when given back.
const MAX_IDLE_COMPRESSORS: usize = 4;
const MAX_IDLE_INFLATERS: usize = 16;

std::thread_local! {
    /// Idle compressors, with their window bits and level.
    static COMPRESSORS: RefCell<Vec<(u8, u32, Box<Compress>)>> = const { RefCell::new(Vec::new()) };
    /// Idle inflaters, with their window bits.
    static INFLATERS: RefCell<Vec<(u8, Box<Decompress>)>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with a raw-deflate compressor of 2^`bits` window at `level`, fresh (as if just
/// made), and keeps it for the next caller on this thread.
pub(super) fn with_compressor<R>(bits: u8, level: u32, f: impl FnOnce(&mut Compress) -> R) -> R {
    let idle = COMPRESSORS.with(|pool| {
        let mut pool = pool.borrow_mut();
        let i = pool.iter().position(|&(b, l, _)| b == bits && l == level)?;
        Some(pool.swap_remove(i).2)
    });
    let mut compressor = idle.unwrap_or_else(|| {
        Box::new(Compress::new_with_window_bits(
            Compression::new(level),
            false,
            bits,
        ))
    });
    let result = f(&mut compressor);
    compressor.reset();
    COMPRESSORS.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.len() < MAX_IDLE_COMPRESSORS {
            pool.push((bits, level, compressor));
        }
    });
    result
}

/// A raw inflater with a 2^`bits` window, fresh: give it back with [`give_inflater`].
pub(super) fn take_inflater(bits: u8) -> Box<Decompress> {
    let idle = INFLATERS.with(|pool| {
        let mut pool = pool.borrow_mut();
        let i = pool.iter().position(|&(b, _)| b == bits)?;
        Some(pool.swap_remove(i).1)
    });
    idle.unwrap_or_else(|| Box::new(Decompress::new_with_window_bits(false, bits)))
}

/// Gives back an inflater of 2^`bits` window from [`take_inflater`], for the next message on
/// this thread (any connection's).
pub(super) fn give_inflater(bits: u8, mut inflater: Box<Decompress>) {
    inflater.reset(false);
    INFLATERS.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.len() < MAX_IDLE_INFLATERS {
            pool.push((bits, inflater));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{FlushCompress, FlushDecompress};

    fn compress(bits: u8, data: &[u8]) -> Vec<u8> {
        with_compressor(bits, 6, |c| {
            let mut out = Vec::with_capacity(data.len() + 64);
            c.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
            out
        })
    }

    #[test]
    fn a_reused_compressor_starts_each_message_without_context() {
        let first = compress(15, b"hello hello hello");
        // Were the context kept, the second copy would compress to a back-reference.
        let second = compress(15, b"hello hello hello");
        assert_eq!(first, second);
        // And it is the same context, not a new one.
        COMPRESSORS.with(|p| assert_eq!(p.borrow().len(), 1));
    }

    #[test]
    fn a_given_back_inflater_reads_a_new_stream() {
        let stream = compress(15, b"abcabcabc");
        for _ in 0..3 {
            let mut inflater = take_inflater(15);
            let mut out = Vec::with_capacity(64);
            inflater
                .decompress_vec(&stream, &mut out, FlushDecompress::Sync)
                .unwrap();
            assert_eq!(out, b"abcabcabc");
            give_inflater(15, inflater);
        }
        INFLATERS.with(|p| assert_eq!(p.borrow().len(), 1));
    }

    #[test]
    fn windows_are_not_mixed_and_the_pool_is_bounded() {
        let taken: Vec<_> = (0..20).map(|_| take_inflater(9)).collect();
        for inflater in taken {
            give_inflater(9, inflater);
        }
        INFLATERS.with(|p| assert_eq!(p.borrow().len(), MAX_IDLE_INFLATERS));
        let other = take_inflater(10);
        INFLATERS.with(|p| assert_eq!(p.borrow().len(), MAX_IDLE_INFLATERS));
        give_inflater(10, other);
    }
}
