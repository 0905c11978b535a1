//! A whole segment file of arbitrary bytes, through every reader: the
//! `mapshare info` path (`segment::inspect`, read-only) and every typed
//! opener (shared value, mailbox, channel ends, mutex, event, pub/sub ends
//! and stats, blackboard ends), each on a fresh copy of the bytes, each
//! followed by non-blocking operations.
//!
//! Properties: never a panic, a crash or a hang; a header `inspect`
//! accepts matches the file size and re-encodes to the bytes read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mapshare::layout::header::{encode, FIXED_LEN, REGISTRY_SLOTS};
use mapshare::segment::inspect;
use mapshare::{
    pubsub_stats, BlackboardReader, BlackboardWriter, Event, Mailbox, Mutex, PodReceiver,
    Publisher, Receiver, Sender, Shared, Subscriber, TryLockError, TryRecvError,
};
use mapshare_fuzz::Scratch;

fuzz_target!(|data: &[u8]| {
    let s = Scratch::get();

    // `mapshare info`: read-only, never attaches.
    s.write(data);
    match inspect(&s.location()) {
        Ok(info) => {
            assert_eq!(info.size, data.len() as u64);
            assert!(info.attached.len() <= REGISTRY_SLOTS);
            if let Ok(h) = &info.header {
                assert_eq!(h.total_len, info.size);
                assert_eq!(encode(h)[..], data[..FIXED_LEN]);
                let _ = format!(
                    "{} {} {} {} {}",
                    h.kind,
                    h.layout,
                    h.layout.name(),
                    h.is_ready(),
                    h.is_persistent()
                );
            }
            let _ = format!("{info:?}");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }

    s.write(data);
    if let Ok(v) = s.options::<Shared<u64>>().open() {
        match v.try_lock() {
            Ok(g) | Err(TryLockError::OwnerDied(g)) => {
                let _ = g.get();
            }
            Err(_) => {}
        }
        let _ = v.wait_timeout(std::time::Duration::ZERO);
        let _ = v.try_wait();
        v.notify();
    }

    s.write(data);
    if let Ok(m) = s.options::<Mailbox>().open() {
        if let Ok(msg) = m.try_recv() {
            assert!(msg.len() <= m.max_message());
        }
        if m.try_send(b"x").is_ok() {
            assert_eq!(m.try_recv().as_deref(), Ok(&b"x"[..]));
        }
    }

    s.write(data);
    if let Ok(mut rx) = s.options::<Receiver>().open() {
        let max = rx.max_message();
        for _ in 0..64 {
            match rx.try_recv() {
                Ok(msg) => assert!(msg.len() <= max),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                Err(_) => {}
            }
        }
        let _ = (rx.stats(), rx.len());
    }

    s.write(data);
    if let Ok(mut tx) = s.options::<Sender>().open() {
        let _ = tx.try_send(b"fuzz");
        let _ = tx.stats();
    }

    s.write(data);
    if let Ok(mut rx) = s.options::<PodReceiver<u64>>().open() {
        let _ = rx.try_recv();
    }

    s.write(data);
    if let Ok(m) = s.options::<Mutex>().open() {
        let _ = m.try_lock();
    }

    s.write(data);
    if let Ok(e) = s.options::<Event>().open() {
        let _ = (e.mode(), e.is_set(), e.try_wait());
    }

    s.write(data);
    if let Ok(mut sub) = s.options::<Subscriber>().open() {
        let max = sub.max_message();
        for _ in 0..64 {
            match sub.try_recv() {
                Ok(msg) => assert!(msg.len() <= max),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                Err(_) => {}
            }
        }
        let _ = (sub.behind(), sub.publisher_alive(), sub.stats());
        // A subscriber joins at the tail: publish on the same bytes so that
        // it reads slots (through the geometry and words the input gave).
        if let Ok(mut publisher) = s.options::<Publisher>().open() {
            let _ = publisher.try_publish(b"one");
            let _ = publisher.try_publish(b"two");
            for _ in 0..3 {
                if let Ok(msg) = sub.try_recv() {
                    assert!(msg.len() <= max);
                }
            }
        }
    }

    s.write(data);
    if let Ok(mut publisher) = s.options::<Publisher>().open() {
        let _ = publisher.try_publish(b"fuzz");
        let _ = (publisher.subscriber_count(), publisher.stats());
    }

    s.write(data);
    let _ = pubsub_stats(&s.location()).map(|st| st.depth());

    s.write(data);
    if let Ok(r) = s.options::<BlackboardReader<u64>>().open() {
        let _ = (r.read(), r.version(), r.writer_alive(), r.try_read_newer(0));
    }

    s.write(data);
    if let Ok(mut w) = s.options::<BlackboardWriter<u64>>().open() {
        w.write(&7);
        let _ = w.version();
    }

    s.remove();
});
