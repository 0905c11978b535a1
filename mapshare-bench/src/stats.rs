//! Figures both programs report: percentiles of samples, and the machine
//! they were taken on.

/// The nearest-rank `p`th percentile of `sorted`: the smallest sample with
/// at least `p`% of the samples at or below it (`p` in 0..=100; 0 gives the
/// smallest). `None` when there are no samples.
///
/// `sorted` must be in ascending order (checked in debug builds).
pub fn percentile<T: Copy + PartialOrd>(sorted: &[T], p: f64) -> Option<T> {
    debug_assert!(
        sorted.windows(2).all(|w| w[0] <= w[1]),
        "samples not sorted"
    );
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// The CPU's model name, from the first `model name` line of /proc/cpuinfo;
/// `None` where there is none.
pub fn cpu_model() -> Option<String> {
    std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_nearest_rank() {
        let s: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&s, 50.0), Some(50));
        assert_eq!(percentile(&s, 99.0), Some(99));
        assert_eq!(percentile(&s, 100.0), Some(100));
        assert_eq!(percentile(&s, 0.0), Some(1));
        assert_eq!(percentile(&[7u32], 99.0), Some(7));
        assert_eq!(percentile(&[1u32, 2, 3], 50.0), Some(2));
    }

    #[test]
    fn percentile_of_nothing_is_none() {
        assert_eq!(percentile::<u64>(&[], 50.0), None);
    }
}
