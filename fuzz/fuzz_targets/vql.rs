//! VQL filters: any text compiles or is refused with a sentence; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(e) = costd::engine::vql::Filter::parse(text) {
            assert!(e.starts_with("filter"), "{e}");
        }
    }
});
