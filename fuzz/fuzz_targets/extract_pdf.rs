//! Detection and extraction of arbitrary bytes named `*.pdf`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ragmill_fuzz::extract(data, "fuzz.pdf"));
