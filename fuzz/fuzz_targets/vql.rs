//! VQL filters: any text parses (and compiles) or is refused with a sentence; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        match costd::model::vql::Filter::parse(text) {
            Ok(filter) => {
                let _ = costd::engine::vql::compile(&filter);
            }
            Err(e) => assert!(e.starts_with("filter"), "{e}"),
        }
    }
});
