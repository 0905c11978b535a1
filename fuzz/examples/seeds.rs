//! Writes seed inputs for the fuzz targets, taken from real segments made
//! by the library: a `Shared<u64>`, mailboxes (empty and holding a
//! message), channels (empty, with messages waiting, typed, near the
//! position wrap), events, mutexes (free and held), pub/sub rings (both
//! policies, with a subscriber part-way) and a blackboard.
//!
//! `cargo run --manifest-path fuzz/Cargo.toml --example seeds -- fuzz/seeds`
//! (what `ci/fuzz-seeds.sh` runs). Segments are file-backed in a temporary
//! directory, persistent so that they outlive their handles, and removed
//! after their bytes are copied.

use std::fs;
use std::path::PathBuf;

use mapshare::layout::header::{FIXED_LEN, HEADER_LEN};
use mapshare::{
    BlackboardWriter, ChannelOptions, Event, EventMode, FixedStr, Mailbox, Mutex, PodSender,
    Policy, PubSubOptions, Publisher, Receiver, SegmentOptions, Sender, Shared, Subscriber,
};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

struct Out {
    root: PathBuf,
    tmp: PathBuf,
}

impl Out {
    fn opts(&self, name: &str) -> SegmentOptions {
        SegmentOptions::file(self.tmp.join(name)).persistent(true)
    }

    /// Copies the segment file `name` into the seeds of every target that
    /// reads it, then removes it.
    fn take(&self, name: &str) -> Res<()> {
        let path = self.tmp.join(name);
        let bytes = fs::read(&path)?;
        fs::remove_file(&path)?;
        self.put("segment_file", name, &bytes)?;
        self.put("header", name, &bytes[..FIXED_LEN])?;
        let h = mapshare::layout::header::decode(&bytes)?;
        let payload = &bytes[HEADER_LEN..HEADER_LEN + h.payload_len as usize];
        // Structure-aware targets: offset byte 0 (the payload at HEADER_LEN).
        match h.kind {
            mapshare::Kind::Channel => {
                let mut v = vec![0u8];
                v.extend_from_slice(payload);
                self.put("channel_meta", name, &v)?;
            }
            mapshare::Kind::Mailbox => {
                let mut v = vec![0u8];
                v.extend_from_slice(&h.layout.size().to_ne_bytes());
                v.extend_from_slice(payload);
                self.put("mailbox", name, &v)?;
            }
            _ => {}
        }
        Ok(())
    }

    fn put(&self, target: &str, name: &str, bytes: &[u8]) -> Res<()> {
        let dir = self.root.join(target);
        fs::create_dir_all(&dir)?;
        fs::write(dir.join(name), bytes)?;
        Ok(())
    }
}

fn main() -> Res<()> {
    let root = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "fuzz/seeds".into()),
    );
    let tmp = std::env::temp_dir().join(format!("mapshare-seeds.{}", std::process::id()));
    fs::create_dir_all(&tmp)?;
    let out = Out { root, tmp };
    let r = make(&out);
    let _ = fs::remove_dir_all(&out.tmp);
    r
}

fn make(out: &Out) -> Res<()> {
    {
        let v = Shared::<u64>::create_with(&out.opts("shared-u64"))?;
        v.lock()
            .map_err(|e| e.to_string())?
            .set(&0x0123_4567_89ab_cdef);
        v.notify();
    }
    out.take("shared-u64")?;

    drop(Mailbox::create_with(&out.opts("mailbox-empty"), 64)?);
    out.take("mailbox-empty")?;
    {
        let m = Mailbox::create_with(&out.opts("mailbox-full"), 256)?;
        m.try_send("grüß dich 👋".as_bytes())?;
    }
    out.take("mailbox-full")?;

    let chan = |name: &str| {
        ChannelOptions::with_segment(out.opts(name))
            .capacity(4)
            .max_message(48)
            .senders(2)
    };
    drop(Receiver::create(&chan("channel-empty"))?);
    out.take("channel-empty")?;
    {
        let opts = chan("channel-messages");
        let mut rx = Receiver::create(&opts)?;
        let mut a = Sender::open(&opts)?;
        let mut b = Sender::open(&opts)?;
        for m in [&b"one"[..], b"two", b"three"] {
            a.try_send(m).map_err(|e| e.to_string())?;
        }
        b.try_send("世界".as_bytes()).map_err(|e| e.to_string())?;
        rx.try_recv()?; // one slot freed, a lap begun
    }
    out.take("channel-messages")?;
    {
        // Positions about to wrap past u64::MAX, one lane full.
        let opts = chan("channel-wrap").initial_position(u64::MAX - 2);
        let _rx = Receiver::create(&opts)?;
        let mut tx = Sender::open(&opts)?;
        while tx.try_send(b"wrap").is_ok() {}
    }
    out.take("channel-wrap")?;
    {
        let opts = ChannelOptions::with_segment(out.opts("channel-pod"))
            .capacity(2)
            .senders(1);
        let _rx = mapshare::PodReceiver::<u64>::create(&opts)?;
        let mut tx = PodSender::<u64>::open(&opts)?;
        tx.try_send(7).map_err(|e| e.to_string())?;
    }
    out.take("channel-pod")?;

    {
        let e = Event::create_with(&out.opts("event-manual"), EventMode::ManualReset)?;
        e.notify();
    }
    out.take("event-manual")?;
    drop(Event::create_with(
        &out.opts("event-auto"),
        EventMode::AutoReset,
    )?);
    out.take("event-auto")?;

    drop(Mutex::create_with(&out.opts("mutex-free"))?);
    out.take("mutex-free")?;
    {
        // Held when its owner went away: the next locker takes it over.
        let m = Mutex::create_with(&out.opts("mutex-held"))?;
        std::mem::forget(m.lock().map_err(|e| e.to_string())?);
    }
    out.take("mutex-held")?;

    for (name, policy) in [
        ("pubsub-lossless", Policy::Lossless),
        ("pubsub-overwrite", Policy::OverwriteOldest),
    ] {
        let opts = PubSubOptions::with_segment(out.opts(name))
            .capacity(2)
            .max_message(48)
            .policy(policy);
        let mut p = Publisher::create_with(&opts)?;
        let mut sub = Subscriber::open_with(&opts)?;
        p.try_publish(b"one").map_err(|e| e.to_string())?;
        p.try_publish("世界".as_bytes())
            .map_err(|e| e.to_string())?;
        sub.try_recv().map_err(|e| e.to_string())?;
        drop((p, sub));
        out.take(name)?;
    }
    {
        let mut w = BlackboardWriter::<u64>::create_with(&out.opts("blackboard-u64"))?;
        w.write(&1);
        w.write(&0x0123_4567_89ab_cdef);
    }
    out.take("blackboard-u64")?;

    // FixedStr images as a peer would leave them.
    let s16 = FixedStr::<16>::new("héllo, 世界")?;
    out.put("fixed_str", "str16", mapshare::bytemuck::bytes_of(&s16))?;
    let s64 = FixedStr::<64>::new("Grüße, Мир, 世界, مرحبا, 🦀")?;
    out.put("fixed_str", "str64", mapshare::bytemuck::bytes_of(&s64))?;
    Ok(())
}
