//! Writes seed inputs for the fuzz targets, taken from real segments made
//! by the library: a `Shared<u64>`, mailboxes (empty and holding a
//! message), channels (empty, with messages waiting, typed, a lane
//! full), events, mutexes (free and held), pub/sub rings (both
//! policies, with a subscriber part-way) and a blackboard.
//!
//! `cargo run --manifest-path fuzz/Cargo.toml --example seeds -- fuzz/seeds`
//! (what `ci/fuzz-seeds.sh` runs). Segments are file-backed in a temporary
//! directory, persistent so that they outlive their handles, and removed
//! after their bytes are copied.

use std::fs;
use std::path::PathBuf;

use mapshare::layout::header::{FIXED_LEN, HEADER_LEN};
use mapshare::options::{HasCapacity, HasMaxMessage, HasSenders};
use mapshare::{
    BlackboardWriter, Event, FixedStr, Mailbox, Mutex, Options, PodReceiver, PodSender, Policy,
    Publisher, Receiver, Sender, Shared, Subscriber,
};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

struct Out {
    root: PathBuf,
    tmp: PathBuf,
}

impl Out {
    fn opts<K>(&self, name: &str) -> Options<K> {
        Options::file(self.tmp.join(name)).persistent(true)
    }

    /// The byte channels' options, for either end.
    fn chan<K: HasCapacity + HasMaxMessage + HasSenders>(&self, name: &str) -> Options<K> {
        self.opts(name).capacity(4).max_message(48).senders(2)
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
        let v = out.opts::<Shared<u64>>("shared-u64").create()?;
        v.lock()
            .map_err(|e| e.to_string())?
            .set(&0x0123_4567_89ab_cdef);
        v.notify();
    }
    out.take("shared-u64")?;

    drop(
        out.opts::<Mailbox>("mailbox-empty")
            .max_message(64)
            .create()?,
    );
    out.take("mailbox-empty")?;
    {
        let m = out
            .opts::<Mailbox>("mailbox-full")
            .max_message(256)
            .create()?;
        m.try_send("grüß dich 👋".as_bytes())
            .map_err(|e| e.to_string())?;
    }
    out.take("mailbox-full")?;

    drop(out.chan::<Receiver>("channel-empty").create()?);
    out.take("channel-empty")?;
    {
        let mut rx: Receiver = out.chan("channel-messages").create()?;
        let mut a: Sender = out.chan("channel-messages").open()?;
        let mut b: Sender = out.chan("channel-messages").open()?;
        for m in [&b"one"[..], b"two", b"three"] {
            a.try_send(m).map_err(|e| e.to_string())?;
        }
        b.try_send("世界".as_bytes()).map_err(|e| e.to_string())?;
        rx.try_recv()?; // one slot freed, a lap begun
    }
    out.take("channel-messages")?;
    {
        // One lane full. (Positions near the u64 wrap need a crate-internal
        // hook since 0.2: the crate's unit tests cover the wrap.)
        let _rx: Receiver = out.chan("channel-full").create()?;
        let mut tx: Sender = out.chan("channel-full").open()?;
        while tx.try_send(b"full").is_ok() {}
    }
    out.take("channel-full")?;
    {
        let _rx = out
            .opts::<PodReceiver<u64>>("channel-pod")
            .capacity(2)
            .senders(1)
            .create()?;
        let mut tx = out
            .opts::<PodSender<u64>>("channel-pod")
            .capacity(2)
            .senders(1)
            .open()?;
        tx.try_send(7).map_err(|e| e.to_string())?;
    }
    out.take("channel-pod")?;

    {
        let e = out
            .opts::<Event>("event-manual")
            .manual_reset(true)
            .create()?;
        e.notify();
    }
    out.take("event-manual")?;
    drop(out.opts::<Event>("event-auto").create()?);
    out.take("event-auto")?;

    drop(out.opts::<Mutex>("mutex-free").create()?);
    out.take("mutex-free")?;
    {
        // Held when its owner went away: the next locker takes it over.
        let m = out.opts::<Mutex>("mutex-held").create()?;
        std::mem::forget(m.lock().map_err(|e| e.to_string())?);
    }
    out.take("mutex-held")?;

    for (name, policy) in [
        ("pubsub-lossless", Policy::Lossless),
        ("pubsub-overwrite", Policy::OverwriteOldest),
    ] {
        let mut p = out
            .opts::<Publisher>(name)
            .capacity(2)
            .max_message(48)
            .policy(policy)
            .create()?;
        let mut sub = out.opts::<Subscriber>(name).open()?;
        p.try_publish(b"one").map_err(|e| e.to_string())?;
        p.try_publish("世界".as_bytes())
            .map_err(|e| e.to_string())?;
        sub.try_recv().map_err(|e| e.to_string())?;
        drop((p, sub));
        out.take(name)?;
    }
    {
        let mut w = out
            .opts::<BlackboardWriter<u64>>("blackboard-u64")
            .create()?;
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
