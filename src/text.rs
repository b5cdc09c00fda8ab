//! Text that came from a host, made safe to keep and to show: clipped to a size with the cut
//! said, and with control characters escaped before it reaches a terminal. A monitored host
//! chooses what its commands print; nothing it prints may grow a record, a log line or a
//! response without bound, or drive the operator's terminal. Also the few formats every
//! output shares (times, percentages, byte counts). A leaf: imports nothing of ours.

use std::borrow::Cow;
use std::fmt::Write as _;

/// The most one string of an activity entry, a stored reason or a log line may hold.
pub const MAX_ENTRY_TEXT: usize = 4096;
/// The most one short field from a host (a container name, a mount, an OS name) may hold.
pub const MAX_FIELD_TEXT: usize = 1024;

/// `s` cut to at most `max` bytes (at a character boundary), followed by a note of how much
/// was cut; `s` itself when it fits.
pub fn clip(s: &str, max: usize) -> Cow<'_, str> {
    if s.len() <= max {
        return Cow::Borrowed(s);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{} [cut: {} more bytes]", &s[..end], s.len() - end))
}

/// [`clip`] for an owned string, without a copy when it fits.
pub fn clip_owned(s: String, max: usize) -> String {
    match clip(&s, max) {
        Cow::Borrowed(_) => s,
        Cow::Owned(c) => c,
    }
}

/// Every string inside a JSON value clipped to `max` bytes.
pub fn clip_json(v: &mut serde_json::Value, max: usize) {
    match v {
        serde_json::Value::String(s) if s.len() > max => *s = clip(s, max).into_owned(),
        serde_json::Value::Array(items) => items.iter_mut().for_each(|i| clip_json(i, max)),
        serde_json::Value::Object(map) => map.values_mut().for_each(|i| clip_json(i, max)),
        _ => {}
    }
}

/// `s` with control characters (C0 but tab, DEL, C1) shown as `\x1b`-style escapes, so that
/// a host's `\e]0;...`, `\e[2J` or `\e]52;...` (clipboard) prints as text instead of acting
/// on the terminal.
pub fn for_terminal(s: &str) -> Cow<'_, str> {
    let is_control = |c: char| (c.is_control() && c != '\t') || c == '\u{7f}';
    if !s.chars().any(is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_control(c) {
            let _ = write!(out, "\\x{:02x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A byte count for people: `512 B`, `3.4 KiB`, `1.2 GiB` (binary units, one decimal).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// A time as every output of ours writes it, CSV and JSON alike: RFC 3339 in UTC with `Z`
/// and only the fraction the value has (what serde writes for a `DateTime<Utc>`).
pub fn timestamp(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// A percentage as output: to 0.01 (a computed `11.950000000000001` is `11.95`).
pub fn percent(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite())
        .map(|x| (x * 100.0).round() / 100.0)
}

/// A duration in seconds as output: to the millisecond.
pub fn seconds(d: std::time::Duration) -> f64 {
    d.as_millis() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    #[test]
    fn byte_counts_read_in_binary_units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }

    use super::*;

    #[test]
    fn clip_keeps_short_text_and_says_how_much_it_cut() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("abcdefghij", 4), "abcd [cut: 6 more bytes]");
        // Never inside a character: 'é' is two bytes.
        assert_eq!(clip("ééé", 3), "é [cut: 4 more bytes]");
    }

    #[test]
    fn clip_json_reaches_nested_strings() {
        let mut v = serde_json::json!({"a": "x".repeat(50), "b": [{"c": "y".repeat(50)}], "n": 5});
        clip_json(&mut v, 10);
        assert_eq!(v["a"], "xxxxxxxxxx [cut: 40 more bytes]");
        assert_eq!(v["b"][0]["c"], "yyyyyyyyyy [cut: 40 more bytes]");
        assert_eq!(v["n"], 5);
    }

    #[test]
    fn terminal_escapes_are_shown_not_sent() {
        assert_eq!(for_terminal("plain\ttext"), "plain\ttext");
        assert_eq!(
            for_terminal("a\u{1b}]0;owned\u{7}b\u{1b}[2J\u{9b}c"),
            "a\\x1b]0;owned\\x07b\\x1b[2J\\x9bc"
        );
        assert_eq!(for_terminal("line\nbreak"), "line\\x0abreak");
    }

    #[test]
    fn outputs_carry_no_float_noise_and_one_time_format() {
        assert_eq!(percent(Some(11.950000000000001)), Some(11.95));
        assert_eq!(percent(Some(3.0544363463827073)), Some(3.05));
        assert_eq!(percent(Some(f64::NAN)), None);
        assert_eq!(
            seconds(std::time::Duration::from_nanos(1_234_567_890)),
            1.234
        );
        let t = chrono::DateTime::parse_from_rfc3339("2026-12-05T00:00:16.167+00:00")
            .expect("time")
            .with_timezone(&chrono::Utc);
        assert_eq!(timestamp(&t), "2026-12-05T00:00:16.167Z");
        assert_eq!(timestamp(&t), serde_json::to_value(t).expect("json"));
    }
}
