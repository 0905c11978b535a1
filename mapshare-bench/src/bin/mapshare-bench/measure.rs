//! Small measuring helpers: one-way figures from round trips, the byte
//! fold, CPU time, machine facts, the clock's own cost and memcpy bandwidth.
//! The percentile itself is the one the soak uses too
//! ([`mapshare_bench::stats`]).

use std::hint::black_box;
use std::time::{Duration, Instant};

use mapshare::View;
use mapshare_bench::stats::{cpu_model, percentile};

/// Median and 99th percentile of one-way times, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Dist {
    pub(super) median_ns: f64,
    pub(super) p99_ns: f64,
}

/// One-way figures from round-trip samples (ns): half of each; NaN without
/// samples.
pub(super) fn one_way(rtt_ns: &mut [u32]) -> Dist {
    rtt_ns.sort_unstable();
    let at = |p: f64| percentile(rtt_ns, p).map_or(f64::NAN, |v| f64::from(v) / 2.0);
    Dist {
        median_ns: at(50.0),
        p99_ns: at(99.0),
    }
}

/// Nanoseconds as a `u32` sample, saturating.
pub(super) fn ns(d: Duration) -> u32 {
    u32::try_from(d.as_nanos()).unwrap_or(u32::MAX)
}

/// XOR of the message read as little-endian u64 words (a tail shorter than
/// a word is folded byte by byte): touches every byte, cheaply.
#[inline]
pub(super) fn fold(msg: &[u8]) -> u64 {
    let mut words = msg.chunks_exact(8);
    let mut acc = (&mut words).fold(0u64, |a, w| {
        a ^ u64::from_le_bytes(w.try_into().expect("chunks of 8"))
    });
    for (i, &b) in words.remainder().iter().enumerate() {
        acc ^= u64::from(b) << (8 * i);
    }
    acc
}

/// Writes the message number into the first 8 bytes.
#[inline]
pub(super) fn stamp(buf: &mut [u8], seq: u64) {
    buf[..8].copy_from_slice(&seq.to_le_bytes());
}

/// Reads the message number from the first 8 bytes.
#[inline]
pub(super) fn seq_of(msg: &[u8]) -> u64 {
    msg.get(..8).map_or(u64::MAX, |b| {
        u64::from_le_bytes(b.try_into().expect("8 bytes"))
    })
}

/// Reads the message number from the first 8 bytes of a message in its
/// slot (as [`seq_of`]).
#[inline]
pub(super) fn seq_in(msg: &View<'_>) -> u64 {
    msg.u64_le_at(0).unwrap_or(u64::MAX)
}

/// What the peer's fold of messages `0..n` of `template` (stamped) must be.
pub(super) fn expected_fold(template: &[u8], n: u64) -> u64 {
    let mut t = template.to_vec();
    stamp(&mut t, 0);
    let rest = fold(&t);
    // fold(stamped k) = rest ^ k; XOR over k in 0..n.
    let xor_upto = |m: u64| match m % 4 {
        // XOR of 0..=m
        0 => m,
        1 => 1,
        2 => m + 1,
        _ => 0,
    };
    let ks = if n == 0 { 0 } else { xor_upto(n - 1) };
    (if n % 2 == 1 { rest } else { 0 }) ^ ks
}

/// This process's CPU time: (on-CPU ns from /proc/self/schedstat, user +
/// system ticks from /proc/self/stat). Either is `None` where unreadable.
pub(super) fn cpu_time() -> (Option<u64>, Option<u64>) {
    let sched = std::fs::read_to_string("/proc/self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok());
    let ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may hold spaces) in parentheses:
            // state is field 3; utime and stime are fields 14 and 15.
            let rest = &s[s.rfind(')')? + 1..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        });
    (sched, ticks)
}

/// Clock ticks per second of /proc/self/stat (`USER_HZ`, 100 on Linux).
pub(super) const USER_HZ: u64 = 100;

/// Facts about the machine, for the report.
#[derive(Debug, Clone)]
pub(super) struct Machine {
    pub(super) cpu: String,
    pub(super) nproc: usize,
    pub(super) kernel: String,
    pub(super) clocksource: String,
    /// Median cost of one `Instant::now()`, in ns: every round trip below
    /// includes one.
    pub(super) clock_ns: f64,
    /// /proc/loadavg (1, 5, 15 min) before and after the run: other work
    /// on the machine is the main source of noise.
    pub(super) load_before: String,
    pub(super) load_after: String,
}

/// The three load averages of /proc/loadavg.
pub(super) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

pub(super) fn machine(load_before: String) -> Machine {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "unknown".into())
    };
    let cpu = cpu_model().unwrap_or_else(|| "unknown".into());
    Machine {
        cpu,
        nproc: std::thread::available_parallelism().map_or(0, |n| n.get()),
        kernel: read("/proc/sys/kernel/osrelease"),
        clocksource: read("/sys/devices/system/clocksource/clocksource0/current_clocksource"),
        clock_ns: clock_cost(),
        load_before,
        load_after: loadavg(),
    }
}

/// Median gap between two consecutive `Instant::now()` calls.
fn clock_cost() -> f64 {
    let mut s: Vec<u32> = Vec::with_capacity(100_000);
    let mut t0 = Instant::now();
    for _ in 0..100_000 {
        let t1 = Instant::now();
        s.push(ns(t1 - t0));
        t0 = t1;
    }
    // Samples are one clock read each; `one_way` halves, so undo that.
    one_way(&mut s).median_ns * 2.0
}

/// Single-process memcpy of `size`-byte buffers, `n` times: (messages/s, GB/s).
///
/// Both buffers start on a page boundary. Where they land matters on this
/// kind of machine: with glibc's `rep movsb` path on AMD, a destination 8 to
/// 16 bytes past the source modulo 4096 (what two `Vec`s from malloc often
/// are) copies 4 KiB to 64 KiB at a twentieth of the speed.
pub(super) fn memcpy(size: usize, n: u64) -> (f64, f64) {
    let page = |v: &[u8]| (4096 - v.as_ptr() as usize % 4096) % 4096;
    let src_buf: Vec<u8> = (0..size + 4096).map(|i| i as u8).collect();
    let mut dst_buf = vec![0u8; size + 4096];
    let (so, d_o) = (page(&src_buf), page(&dst_buf));
    let src = &src_buf[so..so + size];
    let dst = &mut dst_buf[d_o..d_o + size];
    for _ in 0..(n / 10).max(1) {
        dst.copy_from_slice(black_box(src));
        black_box(&mut *dst);
    }
    let t0 = Instant::now();
    for _ in 0..n {
        dst.copy_from_slice(black_box(src));
        black_box(&mut *dst);
    }
    let secs = t0.elapsed().as_secs_f64();
    (n as f64 / secs, n as f64 * size as f64 / secs / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_fold_matches_folding_each_message() {
        for size in [8, 13, 64] {
            let template: Vec<u8> = (0..size).map(|i| (i * 7 + 1) as u8).collect();
            for n in 0..9u64 {
                let mut acc = 0;
                let mut buf = template.clone();
                for k in 0..n {
                    stamp(&mut buf, k);
                    acc ^= fold(&buf);
                }
                assert_eq!(acc, expected_fold(&template, n), "size {size} n {n}");
            }
        }
    }

    #[test]
    fn percentiles_halve_round_trips() {
        let mut s: Vec<u32> = (1..=100).map(|x| x * 2).collect();
        let d = one_way(&mut s);
        assert_eq!(d.median_ns, 50.0);
        assert_eq!(d.p99_ns, 99.0);
        assert!(one_way(&mut []).median_ns.is_nan());
    }

    #[test]
    fn cpu_time_is_readable_here() {
        let (sched, ticks) = cpu_time();
        assert!(sched.is_some() && ticks.is_some());
    }
}
