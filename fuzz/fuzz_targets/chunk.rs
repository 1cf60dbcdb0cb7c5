//! Chunking of arbitrary text, as plain text or Markdown (the first byte decides).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    ragmill_fuzz::chunk(&text, mode & 1 == 1);
});
