//! `free::parse_with_unit` with every unit on arbitrary bytes (lossy UTF-8, as the poller
//! decodes them): it may return an error, never panic.
#![no_main]

use fleetpoll::parse::free::{parse_with_unit, Unit};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for unit in [
        Unit::Bytes,
        Unit::Kibibytes,
        Unit::Mebibytes,
        Unit::Gibibytes,
        Unit::Tebibytes,
        Unit::Kilobytes,
        Unit::Megabytes,
        Unit::Gigabytes,
    ] {
        let _ = parse_with_unit(&text, unit);
    }
});
