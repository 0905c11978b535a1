//! Shared output helpers: JSON, tables, times and sizes.

use std::io::{self, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use comfy_table::{Row, Table};
use serde::Serialize;

/// Where RAM-backed segments live, as messages name it.
#[cfg(not(windows))]
pub(crate) const SHM_DIR: &str = "/dev/shm";
/// Where RAM-backed segments live, as messages name it.
#[cfg(windows)]
pub(crate) const SHM_DIR: &str = r"%LOCALAPPDATA%\mapshare";

/// Writes `value` to stdout as pretty JSON, with a final newline.
pub(crate) fn print_json(value: &impl Serialize) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).context("encoding JSON")?;
    text.push('\n');
    print(&text)
}

/// `value` as one line of JSON (JSON Lines), with its newline.
pub(crate) fn json_line(value: &impl Serialize) -> Result<String> {
    let mut line = serde_json::to_string(value).context("encoding JSON")?;
    line.push('\n');
    Ok(line)
}

/// Writes `text` to stdout as is.
pub(crate) fn print(text: &str) -> Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("writing to stdout")
}

/// Lays out a header line and rows as borderless columns, two spaces
/// apart and as wide as their widest cell in terminal columns, each line
/// ending with a newline and no trailing blanks.
pub(crate) fn table(header: &[&str], rows: impl IntoIterator<Item = impl Into<Row>>) -> String {
    let mut t = Table::new();
    t.load_preset(comfy_table::presets::NOTHING)
        .set_header(header.iter().copied());
    for row in rows {
        t.add_row(row);
    }
    for column in t.column_iter_mut() {
        column.set_padding((0, 2));
    }
    let mut out = String::new();
    for line in t.lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Milliseconds since the Unix epoch as an RFC 3339 UTC time,
/// `2024-05-01T12:34:56.789Z` (`>9999-12-31T23:59:59.999Z` past the
/// year 9999, which a corrupt header could claim).
pub(crate) fn utc(unix_ms: u64) -> String {
    UNIX_EPOCH
        .checked_add(Duration::from_millis(unix_ms))
        .map_or_else(|| LATEST.to_owned(), utc_time)
}

/// What [`utc`] and [`utc_time`] say of a time past the year 9999.
const LATEST: &str = ">9999-12-31T23:59:59.999Z";

/// A time as RFC 3339 UTC with milliseconds (see [`utc`]).
pub(crate) fn utc_time(t: SystemTime) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    match write!(s, "{}", humantime::format_rfc3339_millis(t)) {
        Ok(()) => s,
        // humantime refuses the years past 9999 (and before 1970).
        Err(_) => LATEST.to_owned(),
    }
}

/// Permission bits in octal, as `ls -l` users expect them: `0600`.
pub(crate) fn octal_mode(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

/// `yes` or `no`.
pub(crate) fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(utc(1_700_000_000_000), "2023-11-14T22:13:20.000Z");
        assert_eq!(utc(1_714_566_896_789), "2024-05-01T12:34:56.789Z");
        assert_eq!(utc(253_402_300_799_999), "9999-12-31T23:59:59.999Z");
        assert_eq!(utc(253_402_300_800_000), LATEST);
        assert_eq!(utc(u64::MAX), LATEST);
    }

    #[test]
    fn table_aligns_columns_by_terminal_width() {
        let t = table(
            &["NAME", "KIND"],
            [
                vec!["grüße", "mailbox"],
                vec!["x", "mutex"],
                vec!["世界", "shared"],
            ],
        );
        // `世界` takes four columns, `grüße` five.
        assert_eq!(
            t,
            "NAME   KIND\ngrüße  mailbox\nx      mutex\n世界   shared\n"
        );
    }

    #[test]
    fn octal_mode_pads() {
        assert_eq!(octal_mode(0o600), "0600");
        assert_eq!(octal_mode(0o4755), "4755");
    }
}
