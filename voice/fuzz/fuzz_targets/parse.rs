//! `cargo +nightly fuzz run parse -- -max_total_time=600` (from voice/). Seed corpus:
//! `cp ../tests/fixtures/rfc4475/*.sip corpus/parse/`.
#![no_main]

use fd_voice::sip::message::{parse_datagram, parse_stream, Datagram};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Datagram::Message(m)) = parse_datagram(data) {
        let _ = (
            m.vias(),
            m.contacts(),
            m.from(),
            m.to(),
            m.cseq(),
            m.semantic_check(),
        );
        let again = m.to_bytes();
        assert!(matches!(parse_datagram(&again), Ok(Datagram::Message(_))));
        let _ = fd_voice::sip::sdp::negotiate(&m.body);
    }
    let _ = parse_stream(data);
});
