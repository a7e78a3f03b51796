//! A latency histogram with bounded relative error, so millions of samples cost a few KiB.
//!
//! Values below 64 are exact; above, each power of two is split into 64 buckets, which keeps
//! any reported percentile within 1.6% of the true sample.

const SUB: u64 = 64;
const SUB_BITS: u32 = 6;
const BUCKETS: usize = (64 - SUB_BITS as usize + 1) * SUB as usize;

/// Counts of values (nanoseconds, say) in logarithmic buckets.
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    sum: u128,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.total)
            .field("p50", &self.percentile(0.5))
            .field("max", &self.max)
            .finish()
    }
}

fn index(value: u64) -> usize {
    if value < SUB {
        return value as usize;
    }
    let exp = 63 - value.leading_zeros();
    let mantissa = value >> (exp - SUB_BITS);
    ((exp - SUB_BITS + 1) as u64 * SUB + (mantissa - SUB)) as usize
}

/// The middle of a bucket's range.
fn value_at(index: usize) -> u64 {
    let index = index as u64;
    if index < SUB {
        return index;
    }
    let exp = index / SUB + SUB_BITS as u64 - 1;
    let mantissa = index % SUB + SUB;
    let shift = exp - SUB_BITS as u64;
    (mantissa << shift) + ((1u64 << shift) >> 1)
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            sum: 0,
            max: 0,
        }
    }

    /// Adds one value.
    #[inline]
    pub fn record(&mut self, value: u64) {
        self.counts[index(value)] += 1;
        self.total += 1;
        self.sum += value as u128;
        self.max = self.max.max(value);
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The largest value recorded.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The mean, 0 when empty.
    pub fn mean(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum as f64 / self.total as f64
        }
    }

    /// The value below which a fraction `q` (0 to 1) of the samples lie; 0 when empty.
    pub fn percentile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return value_at(i).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for v in (0..100_000u64).chain([1 << 40, u64::MAX / 3, u64::MAX]) {
            let i = index(v);
            assert!(i >= last, "{v}");
            last = i;
            let mid = value_at(i) as f64;
            assert!(
                (mid - v as f64).abs() <= v as f64 / 64.0 + 0.5,
                "{v} -> {mid}"
            );
        }
        assert!(index(u64::MAX) < BUCKETS);
    }

    #[test]
    fn percentiles() {
        let mut h = Histogram::new();
        for v in 1..=1000u64 {
            h.record(v * 1000);
        }
        let p50 = h.percentile(0.5) as f64;
        assert!((p50 - 500_000.0).abs() < 500_000.0 * 0.02, "{p50}");
        let p99 = h.percentile(0.99) as f64;
        assert!((p99 - 990_000.0).abs() < 990_000.0 * 0.02, "{p99}");
        assert_eq!(h.percentile(1.0), 1_000_000);
        assert_eq!(Histogram::new().percentile(0.5), 0);
    }
}
