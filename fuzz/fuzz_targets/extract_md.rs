//! Detection and extraction of arbitrary bytes named `*.md`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ragmill_fuzz::extract(data, "fuzz.md"));
