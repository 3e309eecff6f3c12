//! The CSV ingest on arbitrary bytes (plain or gzip): it must import or refuse the whole file with row
//! problems, never panic, never fail as if the input could not be read, and never leave a file when it refuses.
#![no_main]

use costd::engine::ingest::{ingest_csv, maybe_gunzip, IngestError, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("u.parquet.tmp");
    let input = maybe_gunzip(std::io::Cursor::new(data.to_vec())).unwrap();
    match ingest_csv(input, &tmp, Limits { max_bytes: Some(1 << 20) }, &mut ()) {
        Ok(pending) => assert!(pending.summary.rows > 0),
        Err(IngestError::Invalid(problems)) => {
            assert!(!problems.is_empty());
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "a refused file left its output");
        }
        Err(IngestError::TooLarge(_)) => {}
        Err(IngestError::Io(e)) => panic!("in-memory input failed as I/O: {e:#}"),
    }
});
