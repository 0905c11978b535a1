//! The end-of-run report: details first, then the stable block the README
//! quotes, ending in PASS or FAIL.

use std::time::Duration;

use mapshare_bench::stats::{cpu_model, percentile};

use crate::checks::{EndChecks, Totals};
use crate::setup::GROUPS;

/// Everything a finished run found, for [`print()`].
pub(crate) struct Summary {
    pub(crate) elapsed: Duration,
    pub(crate) seed: u64,
    pub(crate) rate: f64,
    pub(crate) t: Totals,
    pub(crate) e: EndChecks,
    /// Chaos kills per kill group ([`GROUPS`]).
    pub(crate) kills: [u64; 4],
    /// Restarts killed again before their first message (no sample).
    pub(crate) censored: u64,
    pub(crate) unrecovered: u64,
    /// Restarts still waiting for their first message at the end.
    pub(crate) still_pending: usize,
    pub(crate) hangs: u64,
    pub(crate) failures: u64,
    pub(crate) journal_errors: u64,
    /// Journal or control locks the supervisor took over from a dead holder.
    pub(crate) sup_owner_died: u64,
    /// Longest time without progress, per kill group.
    pub(crate) longest_stall: [Duration; 4],
    /// Recovery samples: (kill group, ns from the kill to the first message).
    pub(crate) samples: Vec<(usize, u64)>,
    /// Children still running after the stop.
    pub(crate) procs_left: usize,
    /// What this run left in /dev/shm after gc.
    pub(crate) left: Vec<String>,
    pub(crate) gc_ok: bool,
}

/// Prints the report on stdout; `true` if the run passed.
pub(crate) fn print(s: Summary) -> bool {
    let Summary {
        elapsed,
        seed,
        rate,
        t,
        e,
        kills,
        censored,
        unrecovered,
        still_pending,
        hangs,
        failures,
        journal_errors,
        sup_owner_died,
        longest_stall,
        samples,
        procs_left,
        left,
        gc_ok,
    } = s;
    let duplicates = t.chan_dup + t.ps_dup + e.chan_extra + e.ps_extra;
    let lost = t.chan_lost + e.chan_tail_lost + e.chan_left + t.ps_lost + e.ps_tail_lost;
    let corrupt = t.chan_corrupt + t.ps_corrupt;
    let mut lat: Vec<u64> = samples.iter().map(|s| s.1).collect();
    lat.sort_unstable();
    let kills_total: u64 = kills.iter().sum();
    let ok = duplicates == 0
        && lost == 0
        && corrupt == 0
        && hangs == 0
        && failures == 0
        && unrecovered == 0
        && journal_errors == 0
        && procs_left == 0
        && left.is_empty()
        && gc_ok;

    // Details (not part of the stable block).
    println!(
        "soak: details: sent channel {} (taken once {}, drained channel held {}), published lossless {} / overwrite {}; \
         subscriber end positions off by {} (lost) / {} (extra)",
        e.chan_sent, t.chan_unique, e.chan_left, e.ps_published[0], e.ps_published[1], e.ps_tail_lost, e.ps_extra
    );
    println!(
        "soak: details: overwrite ring: {} messages overwritten before read, in {} Lagged reports (expected)",
        t.ow_lagged, t.ow_lagged_events
    );
    println!(
        "soak: details: journal lock taken over from a dead holder {} times (children {}, supervisor {}); \
         restarts killed again before their first message {}; still pending at the end {}; unrecovered {}; journal errors {}",
        t.owner_died + sup_owner_died, t.owner_died, sup_owner_died, censored, still_pending, unrecovered, journal_errors
    );
    for (g, name) in GROUPS.iter().enumerate() {
        let mut v: Vec<u64> = samples.iter().filter(|s| s.0 == g).map(|s| s.1).collect();
        v.sort_unstable();
        println!(
            "soak: details: recovery after killing a {name:<16}: p50 {} ms, p99 {} ms, max {} ms ({} samples); \
             longest stall of a {name} {} ms",
            ms(percentile(&v, 50.0).unwrap_or(0)),
            ms(percentile(&v, 99.0).unwrap_or(0)),
            ms(v.last().copied().unwrap_or(0)),
            v.len(),
            longest_stall[g].as_millis()
        );
    }
    if !left.is_empty() {
        println!("soak: left in /dev/shm: {left:?}");
    }
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "soak: {:.0} s, seed {:#x}, rate {}/s per producer, machine {}, {cpus} cpus",
        elapsed.as_secs_f64(),
        seed,
        rate,
        cpu_model().unwrap_or_else(|| "unknown cpu".into())
    );
    println!(
        "  kills survived                  {kills_total} ({} {}, {} {}, {} {}, {} {})",
        GROUPS[0], kills[0], GROUPS[1], kills[1], GROUPS[2], kills[2], GROUPS[3], kills[3]
    );
    println!(
        "  messages delivered+checked      {} (channel {}, pubsub {})",
        t.chan_delivered + t.ps_delivered,
        t.chan_delivered,
        t.ps_delivered
    );
    println!("  duplicates                      {duplicates}");
    println!(
        "  redelivered after receiver kill {} (dropped by sequence)",
        t.chan_redelivered
    );
    println!("  lost (lossless gaps)            {lost}");
    println!("  corrupt deliveries              {corrupt}");
    println!("  hangs                           {hangs}");
    println!("  child failures                  {failures}");
    println!(
        "  recovery latency                p50 {} ms, p99 {} ms, max {} ms ({} samples)",
        ms(percentile(&lat, 50.0).unwrap_or(0)),
        ms(percentile(&lat, 99.0).unwrap_or(0)),
        ms(lat.last().copied().unwrap_or(0)),
        lat.len()
    );
    println!("  left in /dev/shm after gc       {}", left.len());
    println!(
        "  result                          {}",
        if ok { "PASS" } else { "FAIL" }
    );
    ok
}

/// Nanoseconds as milliseconds with one decimal.
pub(crate) fn ms(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1e6)
}
