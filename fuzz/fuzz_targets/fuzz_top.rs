//! `top::parse` on arbitrary bytes (as the poller would see them after lossy UTF-8
//! decoding): it may return an error, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = fleetpoll::parse::top::parse(&text);
});
