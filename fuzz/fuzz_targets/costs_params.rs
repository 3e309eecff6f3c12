//! The query string of `GET /v2/costs`: parsed or refused with sentences; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(errors) = costd::model::cost_query::parse_params(text) {
            assert!(!errors.is_empty());
        }
    }
});
