#!/usr/bin/env bash
# The library as a user meets it: a crate outside the workspace (no bytemuck
# of its own) that depends on mapshare by path, derives Pod through
# mapshare's re-export, shares a value and runs a channel to disconnection.
set -euo pipefail
root=$(pwd)
dir=target/external-user
rm -rf "$dir" && mkdir -p "$dir/src"
cat > "$dir/Cargo.toml" <<TOML
[package]
name = "external-user"
version = "0.0.0"
edition = "2021"
publish = false
[workspace]
[dependencies]
mapshare = { path = "$root/mapshare" }
TOML
cat > "$dir/src/main.rs" <<'RS'
use mapshare::{FixedStr, Pod, Receiver, RecvError, Sender, Shared, Zeroable};
use std::time::Duration;

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
#[bytemuck(crate = "mapshare::bytemuck")]
struct Record {
    id: u64,
    text: FixedStr<60>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let name = format!("ci-external-{}", std::process::id());
    let rec = Shared::<Record>::open_or_create(&name)?;
    rec.lock().unwrap().set(&Record { id: 1, text: FixedStr::new("grüße 🦀")? });
    rec.notify();
    rec.wait_timeout(Duration::from_secs(1))?;
    assert_eq!(rec.lock().unwrap().get().text.as_str()?, "grüße 🦀");
    let ch = format!("{name}-ch");
    let mut rx = Receiver::options(&ch).capacity(8).create()?;
    let mut tx = Sender::open(&ch)?;
    tx.send(b"hi")?;
    drop(tx);
    assert_eq!(rx.recv()?, b"hi");
    assert_eq!(rx.recv(), Err(RecvError::Disconnected));
    println!("external user: ok");
    Ok(())
}
RS
CARGO_TARGET_DIR="$root/target/external-user-target" cargo run -q --manifest-path "$dir/Cargo.toml"

# The CLI as a user gets it: installed the way the README says
# (`cargo install --path mapshare-cli`, here into a scratch root), then the
# README's CLI tour pasted into a fresh shell with it on PATH.
install_root="$root/target/install-root"
rm -rf "$install_root"
CARGO_TARGET_DIR="$root/target/install-target" \
  cargo install -q --locked --path "$root/mapshare-cli" --root "$install_root"
"$install_root/bin/mapshare" --version
tour=$(awk '/^## CLI tour/{f=1} f&&/^```sh$/{b=1; next} b&&/^```$/{exit} b' "$root/README.md")
[ -n "$tour" ] || { echo "external: no CLI tour in README.md"; exit 1; }
scratch=$(mktemp -d)
out=$(cd "$scratch" && env -i HOME="$HOME" PATH="$install_root/bin:/usr/bin:/bin" \
  bash -c "set -euo pipefail; $tour
for j in \$(jobs -p); do wait \"\$j\"; done")
rm -rf "$scratch"
echo "$out"
for want in 'grüß dich 👋' 'one at a time' '3' 'GRüß DICH'; do
  grep -qF "$want" <<<"$out" || { echo "external: the tour did not print '$want'"; exit 1; }
done
echo "external: the installed CLI ran the README tour"
