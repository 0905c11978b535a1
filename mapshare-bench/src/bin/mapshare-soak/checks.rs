//! What the end of a run checks beyond the journals, and the totals the
//! report adds up.

use std::collections::HashSet;

use mapshare::{pubsub_stats, Location, Policy, Receiver, TryRecvError};

use crate::setup::{chan_opts, NONE, OW_SUB_SLOT, SLOTS};
use crate::supervisor::Sup;

/// Sums over the journals as last read: what the children recorded.
#[derive(Default, Clone, Copy)]
pub(crate) struct Totals {
    pub(crate) chan_delivered: u64,
    pub(crate) chan_unique: u64,
    pub(crate) chan_dup: u64,
    pub(crate) chan_redelivered: u64,
    pub(crate) chan_lost: u64,
    pub(crate) chan_corrupt: u64,
    pub(crate) ps_delivered: u64,
    pub(crate) ps_dup: u64,
    pub(crate) ps_lost: u64,
    pub(crate) ps_corrupt: u64,
    pub(crate) ow_lagged: u64,
    pub(crate) ow_lagged_events: u64,
    pub(crate) sent: [u64; SLOTS],
    pub(crate) owner_died: u64,
}

/// What the end-of-run checks found beyond the journals.
#[derive(Default)]
pub(crate) struct EndChecks {
    pub(crate) chan_sent: u64,
    pub(crate) chan_tail_lost: u64,
    pub(crate) chan_extra: u64,
    pub(crate) chan_left: u64,
    pub(crate) ps_published: [u64; 2],
    pub(crate) ps_tail_lost: u64,
    pub(crate) ps_extra: u64,
}

pub(crate) fn end_checks(sup: &Sup, t: &Totals) -> EndChecks {
    let mut e = EndChecks {
        chan_sent: t.sent[0] + t.sent[1],
        ..EndChecks::default()
    };
    // Each killed sender may have sent one message it did not record.
    let slack = sup.sigkilled[0] + sup.sigkilled[1];
    e.chan_tail_lost = e.chan_sent.saturating_sub(t.chan_unique);
    e.chan_extra = t.chan_unique.saturating_sub(e.chan_sent + slack);
    // Nothing may be left in the drained channel. Every sender has gone, so
    // once it is drained the channel reports `Disconnected`, not `Empty`.
    match chan_opts::<Receiver>(&sup.names.chan()).open() {
        Ok(mut rx) => {
            // Empty or Disconnected ends it; a corrupt slot is left over too.
            while let Ok(_) | Err(TryRecvError::Fault(_)) = rx.try_recv() {
                e.chan_left += 1;
            }
        }
        Err(err) => eprintln!("soak: ERROR: cannot open the channel to check it is empty: {err}"),
    }
    for (k, policy) in [Policy::Lossless, Policy::OverwriteOldest]
        .into_iter()
        .enumerate()
    {
        let name = sup.names.ring(policy);
        let published = match Location::shm(&name).and_then(|at| pubsub_stats(&at)) {
            Ok(s) => s.published,
            Err(err) => {
                eprintln!("soak: ERROR: pubsub_stats({name}): {err}");
                continue;
            }
        };
        e.ps_published[k] = published;
        let subs: &[usize] = if k == 0 { &[4, 5] } else { &[OW_SUB_SLOT] };
        for &s in subs {
            let r = &sup.recs[s];
            if r.head.finished == 1 && r.final_pos != NONE {
                e.ps_tail_lost += published.saturating_sub(r.final_pos);
                e.ps_extra += r.final_pos.saturating_sub(published);
            }
        }
    }
    e
}

pub(crate) fn leftovers(prefix: &str, pids: &HashSet<u32>) -> Vec<String> {
    shm_listing()
        .into_iter()
        .filter(|f| {
            f.contains(prefix)
                || f.strip_prefix(".mapshare-init.")
                    .and_then(|rest| rest.split('.').next())
                    .and_then(|p| p.parse::<u32>().ok())
                    .is_some_and(|p| pids.contains(&p))
        })
        .collect()
}

/// Names in `/dev/shm`.
fn shm_listing() -> Vec<String> {
    std::fs::read_dir("/dev/shm")
        .expect("read /dev/shm")
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect()
}
