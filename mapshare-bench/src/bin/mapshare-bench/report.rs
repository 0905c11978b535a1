//! The tables, the JSON object and the targets' verdicts.

use std::fmt::Write as _;

use serde_json::{json, Value};

use super::jobs::{Config, Job, Mode, Transport, Wait};
use super::measure::{Machine, USER_HZ};
use super::parent::{size_label, Idle, Memcpy, Outcome, Results, Sample};
use super::{IDLE, PACED_PERIOD, STB_SPIN};

/// A contender's best repetition: the lowest median (latency) or the most
/// messages per second (throughput).
/// Repetitions whose floor moved count only when no other was measured.
fn best(r: &Results, want: impl Fn(&Job) -> bool) -> Option<&Sample> {
    let steady = r.samples.iter().any(|s| want(&s.job) && !r.moved(&s.floor));
    let pool = r
        .samples
        .iter()
        .filter(|s| want(&s.job) && !(steady && r.moved(&s.floor)));
    pool.min_by(|a, b| {
        let key = |s: &Sample| match s.outcome {
            Outcome::Latency(d) | Outcome::Paced(d, _) => d.median_ns,
            Outcome::Throughput { msgs_per_s, .. } => -msgs_per_s,
        };
        key(a).total_cmp(&key(b))
    })
}

/// The best repetition of each contender, in plan order.
fn contenders(r: &Results, mode: Mode) -> Vec<&Sample> {
    let mut seen: Vec<Job> = Vec::new();
    let mut out = Vec::new();
    for s in r.samples.iter().filter(|s| s.job.mode == mode) {
        let same = |j: &Job| j.transport == s.job.transport && j.size == s.job.size;
        if seen.iter().any(same) {
            continue;
        }
        seen.push(s.job);
        out.extend(best(r, |j| j.mode == mode && same(j)));
    }
    out
}

fn best_memcpy(r: &Results, size: usize) -> Option<Memcpy> {
    r.memcpy
        .iter()
        .filter(|m| m.size == size)
        .copied()
        .max_by(|a, b| a.gb_per_s.total_cmp(&b.gb_per_s))
}

fn median_of(s: &Sample) -> f64 {
    match s.outcome {
        Outcome::Latency(d) | Outcome::Paced(d, _) => d.median_ns,
        Outcome::Throughput { .. } => f64::NAN,
    }
}

fn gb_of(s: &Sample) -> f64 {
    match s.outcome {
        Outcome::Throughput { gb_per_s, .. } => gb_per_s,
        _ => f64::NAN,
    }
}

fn msgs_of(s: &Sample) -> f64 {
    match s.outcome {
        Outcome::Throughput { msgs_per_s, .. } => msgs_per_s,
        _ => f64::NAN,
    }
}

const SHM_SPIN: Transport = Transport::Shm {
    wait: Wait::Spin,
    loaned: false,
    topic: false,
};
const SHM_LOAN: Transport = Transport::Shm {
    wait: Wait::Spin,
    loaned: true,
    topic: false,
};
const SHM_BLOCK: Transport = Transport::Shm {
    wait: Wait::Block,
    loaned: false,
    topic: false,
};
const PS_SPIN: Transport = Transport::Shm {
    wait: Wait::Spin,
    loaned: false,
    topic: true,
};
const PS_LOAN: Transport = Transport::Shm {
    wait: Wait::Spin,
    loaned: true,
    topic: true,
};

fn lat(r: &Results, t: Transport, size: usize) -> Option<&Sample> {
    best(r, |j| {
        j.mode == Mode::Latency && j.transport == t && j.size == size
    })
}

fn tput(r: &Results, t: Transport, size: usize) -> Option<&Sample> {
    best(r, |j| {
        j.mode == Mode::Throughput && j.transport == t && j.size == size
    })
}

/// CPU use of the idle peer, as a fraction of one core: (schedstat, stat).
fn idle_cpu(i: &Idle) -> (Option<f64>, Option<f64>) {
    let wall = i.wall_ns as f64;
    (
        i.sched_ns.map(|n| n as f64 / wall),
        i.ticks.map(|t| t as f64 * 1e9 / USER_HZ as f64 / wall),
    )
}

/// The worst idle CPU use over the repetitions.
fn worst_idle(r: &Results) -> Option<Idle> {
    r.samples
        .iter()
        .filter_map(|s| match s.outcome {
            Outcome::Paced(_, i) => Some(i),
            _ => None,
        })
        .max_by(|a, b| {
            let k = |i: &Idle| idle_cpu(i).0.or(idle_cpu(i).1).unwrap_or(f64::INFINITY);
            k(a).total_cmp(&k(b))
        })
}

/// One target's verdict.
struct Verdict {
    target: String,
    measured: String,
    met: Option<bool>,
}

fn verdicts(r: &Results) -> Vec<Verdict> {
    let mut v = Vec::new();
    let mut push = |target: &str, got: Option<(String, bool)>| {
        v.push(match got {
            Some((measured, met)) => Verdict {
                target: target.into(),
                measured,
                met: Some(met),
            },
            None => Verdict {
                target: target.into(),
                measured: "not measured in this run".into(),
                met: None,
            },
        })
    };
    let mib = 1 << 20;

    push(
        "polling latency, 64 B: at most 1.5x the floor",
        lat(r, SHM_SPIN, 64).map(|s| {
            let x = median_of(s) / s.floor.median_ns;
            (
                format!(
                    "{:.1} ns vs floor {:.1} ns = {x:.2}x",
                    median_of(s),
                    s.floor.median_ns
                ),
                x <= 1.5,
            )
        }),
    );
    push(
        "blocking latency, 64 B: no worse than a pipe",
        lat(r, SHM_BLOCK, 64)
            .zip(lat(r, Transport::Pipe, 64))
            .map(|(b, p)| {
                (
                    format!(
                        "{:.0} ns vs pipe {:.0} ns = {:.2}x",
                        median_of(b),
                        median_of(p),
                        median_of(b) / median_of(p)
                    ),
                    median_of(b) <= median_of(p),
                )
            }),
    );
    let paced = best(r, |j| j.mode == Mode::Paced);
    push(
        "spin-then-block, 1 msg / 20 us: median within 2x of polling",
        paced.zip(lat(r, SHM_SPIN, 64)).map(|(s, p)| {
            let x = median_of(s) / median_of(p);
            (
                format!(
                    "{:.0} ns vs polling {:.0} ns = {x:.2}x",
                    median_of(s),
                    median_of(p)
                ),
                x <= 2.0,
            )
        }),
    );
    push(
        "spin-then-block receiver with no traffic: no CPU (< 1% of a core)",
        worst_idle(r).map(|i| {
            let (sched, ticks) = idle_cpu(&i);
            let f = sched.or(ticks).unwrap_or(f64::INFINITY);
            (
                format!(
                    "{} (schedstat), {} (utime+stime) over {:.2} s, worst repetition",
                    pct(sched),
                    pct(ticks),
                    i.wall_ns as f64 / 1e9
                ),
                f < 0.01,
            )
        }),
    );
    push(
        "throughput, 64 B: at least 20 M msgs/s one way",
        tput(r, SHM_SPIN, 64).map(|s| {
            (
                format!("{:.1} M msgs/s", msgs_of(s) / 1e6),
                msgs_of(s) >= 20e6,
            )
        }),
    );
    push(
        "throughput, 1 MiB, every byte read: at least 85% of memcpy",
        tput(r, SHM_SPIN, mib)
            .zip(best_memcpy(r, mib))
            .map(|(s, m)| {
                let x = gb_of(s) / m.gb_per_s;
                (
                    format!(
                        "{:.2} GB/s vs memcpy {:.2} GB/s = {:.0}%",
                        gb_of(s),
                        m.gb_per_s,
                        x * 100.0
                    ),
                    x >= 0.85,
                )
            }),
    );
    push(
        "throughput, 1 MiB: at least 5x a Unix socket",
        tput(r, SHM_SPIN, mib)
            .zip(tput(r, Transport::Uds, mib))
            .map(|(s, u)| {
                let x = gb_of(s) / gb_of(u);
                (
                    format!(
                        "{:.2} GB/s vs socket {:.2} GB/s = {x:.1}x",
                        gb_of(s),
                        gb_of(u)
                    ),
                    x >= 5.0,
                )
            }),
    );
    push(
        "loaned latency flat from 64 B to 1 MiB (1 MiB at most 1.5x 64 B)",
        lat(r, SHM_LOAN, 64)
            .zip(lat(r, SHM_LOAN, mib))
            .map(|(a, b)| {
                let x = median_of(b) / median_of(a);
                (
                    format!(
                        "{:.0} ns at 64 B, {:.0} ns at 1 MiB = {x:.2}x",
                        median_of(a),
                        median_of(b)
                    ),
                    x <= 1.5,
                )
            }),
    );
    // Issue 12's targets for pub/sub.
    push(
        "pub/sub, 1 MiB, every byte read: within 1.2x of memcpy",
        tput(r, PS_SPIN, mib)
            .zip(best_memcpy(r, mib))
            .map(|(s, m)| {
                let x = m.gb_per_s / gb_of(s);
                (
                    format!(
                        "{:.2} GB/s vs memcpy {:.2} GB/s = {x:.2}x the time",
                        gb_of(s),
                        m.gb_per_s
                    ),
                    x <= 1.2,
                )
            }),
    );
    push(
        "pub/sub zero-copy latency flat from 64 B to 1 MiB (1 MiB within 2x of 64 B)",
        lat(r, PS_LOAN, 64).zip(lat(r, PS_LOAN, mib)).map(|(a, b)| {
            let x = median_of(b) / median_of(a);
            (
                format!(
                    "{:.0} ns at 64 B, {:.0} ns at 1 MiB = {x:.2}x",
                    median_of(a),
                    median_of(b)
                ),
                x <= 2.0,
            )
        }),
    );
    push(
        "pub/sub polling latency, 64 B: within 1.3x of the channel's",
        lat(r, PS_SPIN, 64).zip(lat(r, SHM_SPIN, 64)).map(|(p, c)| {
            let x = median_of(p) / median_of(c);
            (
                format!(
                    "{:.1} ns vs channel {:.1} ns = {x:.2}x",
                    median_of(p),
                    median_of(c)
                ),
                x <= 1.3,
            )
        }),
    );
    // Figures measured while the floor had moved: say so; a ratio to such a
    // floor decides nothing.
    let involved: [(Vec<Option<&Sample>>, bool); 11] = [
        (vec![lat(r, SHM_SPIN, 64)], true),
        (
            vec![lat(r, SHM_BLOCK, 64), lat(r, Transport::Pipe, 64)],
            false,
        ),
        (vec![paced, lat(r, SHM_SPIN, 64)], false),
        (vec![], false),
        (vec![tput(r, SHM_SPIN, 64)], false),
        (vec![tput(r, SHM_SPIN, mib)], false),
        (
            vec![tput(r, SHM_SPIN, mib), tput(r, Transport::Uds, mib)],
            false,
        ),
        (vec![lat(r, SHM_LOAN, 64), lat(r, SHM_LOAN, mib)], false),
        (vec![tput(r, PS_SPIN, mib)], false),
        (vec![lat(r, PS_LOAN, 64), lat(r, PS_LOAN, mib)], false),
        (vec![lat(r, PS_SPIN, 64), lat(r, SHM_SPIN, 64)], false),
    ];
    for (verdict, (samples, ratio)) in v.iter_mut().zip(involved) {
        if verdict.met.is_some() && samples.iter().flatten().any(|s| r.moved(&s.floor)) {
            verdict.measured += " [floor moved next to it]";
            if ratio {
                verdict.met = None;
                verdict.measured += ": inconclusive";
            }
        }
    }
    v
}

fn pct(f: Option<f64>) -> String {
    f.map_or("n/a".into(), |f| format!("{:.2}%", f * 100.0))
}

fn fmt_ns(ns: f64) -> String {
    if ns < 10_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 10_000_000.0 {
        format!("{:.1} us", ns / 1e3)
    } else {
        format!("{:.1} ms", ns / 1e6)
    }
}

/// Floor statistics over the run: (first, min, max, moved count, samples).
fn floor_stats(r: &Results) -> (f64, f64, f64, usize, usize) {
    let f: Vec<f64> = r.samples.iter().map(|s| s.floor.median_ns).collect();
    let min = f.iter().copied().fold(f64::INFINITY, f64::min);
    let max = f.iter().copied().fold(0.0, f64::max);
    let moved = r.samples.iter().filter(|s| r.moved(&s.floor)).count();
    (
        r.first_floor().unwrap_or(f64::NAN),
        min,
        max,
        moved,
        f.len(),
    )
}

/// The human-readable report.
pub(super) fn human(cfg: &Config, m: &Machine, r: &Results) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "mapshare-bench: {} ({} CPUs), Linux {}, clock {} ({:.0} ns per read), load average {} \
         before, {} after",
        m.cpu, m.nproc, m.kernel, m.clocksource, m.clock_ns, m.load_before, m.load_after
    );
    let _ = writeln!(
        o,
        "Two processes, no CPU pinning. Each contender ran {} time(s), each in a fresh peer process \
         right after {} ms of floor; the best repetition is shown{}.",
        cfg.reps,
        cfg.floor_time().as_millis(),
        if cfg.quick {
            " (--quick: few iterations, figures are rough)"
        } else {
            ""
        }
    );
    if !r.samples.is_empty() {
        let (first, min, max, moved, n) = floor_stats(r);
        let retries: u32 = r.samples.iter().map(|s| s.retries).sum();
        let _ = writeln!(
            o,
            "Floor (two processes ping-ponging one cache line), one way: reference {first:.1} ns \
             (best of the calibrations before the first contender); next to the {n} contender runs \
             min {min:.1} ns, max {max:.1} ns; {moved} moved more than 50% from the reference \
             or above 5 us, i.e. time-sliced (marked *); {retries} runs redone because their floor had risen."
        );
    }
    let mark = |s: &Sample| if r.moved(&s.floor) { " *" } else { "" };

    let lats = contenders(r, Mode::Latency);
    if !lats.is_empty() {
        let _ = writeln!(
            o,
            "\nLatency, one way (round trip / 2, including half a clock read); ratio = median / floor \
             measured next to it"
        );
        let _ = writeln!(
            o,
            "{:<8} {:<28} {:>10} {:>10} {:>9} {:>9}",
            "size", "contender", "median", "p99", "x floor", "floor"
        );
        for &size in &cfg.sizes {
            for s in lats.iter().filter(|s| s.job.size == size) {
                let Outcome::Latency(d) = s.outcome else {
                    continue;
                };
                let _ = writeln!(
                    o,
                    "{:<8} {:<28} {:>10} {:>10} {:>9.2} {:>9}{}",
                    size_label(size),
                    s.job.name(),
                    fmt_ns(d.median_ns),
                    fmt_ns(d.p99_ns),
                    d.median_ns / s.floor.median_ns,
                    format!("{:.1} ns", s.floor.median_ns),
                    mark(s)
                );
            }
        }
    }
    if let Some(s) = best(r, |j| j.mode == Mode::Paced) {
        if let Outcome::Paced(d, _) = s.outcome {
            let _ = writeln!(
                o,
                "\nSpin-then-block (spin {} us), one 64 B round trip every {} us: median {}, p99 {}, \
                 {:.2}x floor ({:.1} ns){}",
                STB_SPIN.as_micros(),
                PACED_PERIOD.as_micros(),
                fmt_ns(d.median_ns),
                fmt_ns(d.p99_ns),
                d.median_ns / s.floor.median_ns,
                s.floor.median_ns,
                mark(s)
            );
        }
        if let Some(i) = worst_idle(r) {
            let (sched, ticks) = idle_cpu(&i);
            let _ = writeln!(
                o,
                "Idle receiver (blocking recv_timeout of {} s, no traffic): {} of one core by \
                 /proc/self/schedstat, {} by utime+stime (worst repetition)",
                IDLE.as_secs_f64(),
                pct(sched),
                pct(ticks)
            );
        }
    }

    let tputs = contenders(r, Mode::Throughput);
    if !tputs.is_empty() {
        let _ = writeln!(
            o,
            "\nThroughput, one way, receiver reads every byte; ratio = GB/s / single-process memcpy \
             of the same size (page-aligned buffers)"
        );
        let _ = writeln!(
            o,
            "{:<8} {:<28} {:>13} {:>9} {:>9} {:>9}",
            "size", "contender", "msgs/s", "GB/s", "x memcpy", "floor"
        );
        for &size in &cfg.sizes {
            let mc = best_memcpy(r, size);
            if let Some(mc) = mc {
                let _ = writeln!(
                    o,
                    "{:<8} {:<28} {:>13} {:>9.2} {:>9.2} {:>9}",
                    size_label(size),
                    "memcpy (one process)",
                    format!("{:.3} M", mc.msgs_per_s / 1e6),
                    mc.gb_per_s,
                    1.0,
                    "-"
                );
            }
            for s in tputs.iter().filter(|s| s.job.size == size) {
                let _ = writeln!(
                    o,
                    "{:<8} {:<28} {:>13} {:>9.2} {:>9.3} {:>9}{}",
                    size_label(size),
                    s.job.name(),
                    format!("{:.3} M", msgs_of(s) / 1e6),
                    gb_of(s),
                    mc.map_or(f64::NAN, |m| gb_of(s) / m.gb_per_s),
                    format!("{:.1} ns", s.floor.median_ns),
                    mark(s)
                );
            }
        }
    }

    let _ = writeln!(o, "\nTargets");
    for v in verdicts(r) {
        let _ = writeln!(
            o,
            "  [{}] {}: {}",
            match v.met {
                Some(true) => "MET",
                Some(false) => "NOT MET",
                None if v.measured.ends_with("inconclusive") => "?",
                None => "-",
            },
            v.target,
            v.measured
        );
    }
    o
}

fn transport_json(t: Transport) -> Value {
    match t {
        Transport::Shm {
            wait,
            loaned,
            topic,
        } => json!({
            "kind": if topic { "mapshare_pubsub" } else { "mapshare" },
            "wait": match wait {
                Wait::Spin => "spin",
                Wait::Block => "block",
                Wait::SpinThenBlock => "spin_then_block",
            },
            "payload": if loaned { "loaned" } else { "copied" },
        }),
        Transport::Raw => json!({ "kind": "raw_shm_memcpy" }),
        Transport::Pipe => json!({ "kind": "pipe" }),
        Transport::Uds => json!({ "kind": "unix_socket" }),
    }
}

fn sample_json(r: &Results, s: &Sample, memcpy: Option<Memcpy>) -> Value {
    let mut v = json!({
        "contender": s.job.name(),
        "transport": transport_json(s.job.transport),
        "size": s.job.size,
        "rep": s.rep + 1,
        "count": s.job.count,
        "floor_ns": s.floor.median_ns,
        "floor_p99_ns": s.floor.p99_ns,
        "floor_moved": r.moved(&s.floor),
        "retries": s.retries,
    });
    let o = v.as_object_mut().expect("an object");
    match s.outcome {
        Outcome::Latency(d) | Outcome::Paced(d, _) => {
            o.insert("median_ns".into(), json!(d.median_ns));
            o.insert("p99_ns".into(), json!(d.p99_ns));
            o.insert(
                "ratio_to_floor".into(),
                json!(d.median_ns / s.floor.median_ns),
            );
        }
        Outcome::Throughput {
            msgs_per_s,
            gb_per_s,
        } => {
            o.insert("msgs_per_s".into(), json!(msgs_per_s));
            o.insert("gb_per_s".into(), json!(gb_per_s));
            o.insert(
                "ratio_to_memcpy".into(),
                json!(memcpy.map(|m| gb_per_s / m.gb_per_s)),
            );
        }
    }
    if let Outcome::Paced(_, i) = s.outcome {
        let (sched, ticks) = idle_cpu(&i);
        o.insert(
            "idle".into(),
            json!({
                "wall_ns": i.wall_ns,
                "cpu_ns_schedstat": i.sched_ns,
                "cpu_ticks_stat": i.ticks,
                "core_fraction_schedstat": sched,
                "core_fraction_stat": ticks,
            }),
        );
    }
    v
}

/// The `--json` object.
pub(super) fn json(cfg: &Config, m: &Machine, r: &Results) -> Value {
    let (first, min, max, moved, n) = floor_stats(r);
    let best_rows = |mode| -> Vec<Value> {
        contenders(r, mode)
            .into_iter()
            .map(|s| sample_json(r, s, best_memcpy(r, s.job.size)))
            .collect()
    };
    json!({
        "machine": {
            "cpu": m.cpu,
            "nproc": m.nproc,
            "kernel": m.kernel,
            "clocksource": m.clocksource,
            "clock_read_ns": m.clock_ns,
            "cpu_pinning": false,
            "loadavg_before": m.load_before,
            "loadavg_after": m.load_after,
        },
        "config": {
            "sizes": cfg.sizes,
            "quick": cfg.quick,
            "reps": cfg.reps,
            "floor_ms": cfg.floor_time().as_millis() as u64,
            "spin_then_block_spin_us": STB_SPIN.as_micros() as u64,
            "paced_period_us": PACED_PERIOD.as_micros() as u64,
            "idle_s": IDLE.as_secs_f64(),
            "best_of": "lowest median (latency), highest msgs/s (throughput), highest GB/s (memcpy)",
        },
        "floor": {
            "reference_ns": first,
            "reference": "lowest of 3 (up to 10 while time-sliced) floor-only calibrations before the first contender; moved = more than 50% off it or above 5 us one way",
            "retries": r.samples.iter().map(|s| s.retries).sum::<u32>(),
            "min_ns": min,
            "max_ns": max,
            "measurements": n,
            "moved": moved,
        },
        "latency": best_rows(Mode::Latency),
        "paced": best_rows(Mode::Paced),
        "throughput": best_rows(Mode::Throughput),
        "memcpy": cfg.sizes.iter().filter_map(|&s| best_memcpy(r, s)).map(|mc| json!({
            "size": mc.size,
            "msgs_per_s": mc.msgs_per_s,
            "gb_per_s": mc.gb_per_s,
        })).collect::<Vec<_>>(),
        "all_repetitions": r.samples.iter().map(|s| sample_json(r, s, best_memcpy(r, s.job.size))).collect::<Vec<_>>(),
        "targets": verdicts(r).into_iter().map(|v| json!({
            "target": v.target,
            "measured": v.measured,
            "met": v.met,
        })).collect::<Vec<_>>(),
    })
}
