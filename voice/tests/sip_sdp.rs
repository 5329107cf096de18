//! SDP offer/answer codec choices: G.722 preferred when offered, configurable preference order.

use fd_voice::media::Codec;
use fd_voice::sip::sdp::{negotiate, negotiate_with, offer, offer_with, SdpError};

/// What baresip with g722.so, g711.so loaded offers (codec order as loaded).
const G722_FIRST: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 10000 RTP/AVP 9 0 8 101\r\na=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n";

fn local() -> std::net::SocketAddr {
    "127.0.0.2:20000".parse().expect("address")
}

#[test]
fn g722_is_chosen_by_default_wherever_it_is_in_the_offer() {
    for fmts in ["9 0 8 101", "0 8 9 101", "8 9 101"] {
        let o = G722_FIRST.replace("RTP/AVP 9 0 8 101", &format!("RTP/AVP {fmts}"));
        let n = negotiate(o.as_bytes()).expect("usable");
        assert_eq!((n.codec, n.payload_type, n.dtmf_payload_type), (Codec::G722, 9, Some(101)), "offer {fmts}");
        let a = n.answer(local(), 1, 1);
        assert!(a.contains("m=audio 20000 RTP/AVP 9 101\r\n"), "{a}");
        // RFC 3551: G.722's RTP clock is 8000 although it samples at 16 kHz.
        assert!(a.contains("a=rtpmap:9 G722/8000\r\n"), "{a}");
        assert!(a.contains("a=rtpmap:101 telephone-event/8000\r\n"), "{a}");
        // The answer is itself a valid offer that selects the same codec.
        assert_eq!(negotiate(a.as_bytes()).expect("answer parses").codec, Codec::G722);
    }
}

#[test]
fn static_pt9_without_rtpmap_is_g722_and_bad_clock_rates_are_not() {
    let bare = G722_FIRST.replace("a=rtpmap:9 G722/8000\r\n", "");
    assert_eq!(negotiate(bare.as_bytes()).expect("usable").codec, Codec::G722);
    // A (wrong) 16000 clock rate or a stereo G.722 is not what we encode: fall back to G.711.
    for bad in ["G722/16000", "G722/8000/2"] {
        let o = G722_FIRST.replace("G722/8000", bad);
        assert_eq!(negotiate(o.as_bytes()).expect("usable").codec, Codec::Pcmu, "{bad}");
    }
    // A dynamic payload type mapped to G722 is honoured.
    let dynm = G722_FIRST.replace("RTP/AVP 9 0 8 101", "RTP/AVP 0 98 101").replace("a=rtpmap:9 G722", "a=rtpmap:98 g722");
    let n = negotiate(dynm.as_bytes()).expect("usable");
    assert_eq!((n.codec, n.payload_type), (Codec::G722, 98));
}

#[test]
fn the_preference_list_decides_and_excludes() {
    let n = negotiate_with(G722_FIRST.as_bytes(), &[Codec::Pcma, Codec::Pcmu]).expect("usable");
    assert_eq!((n.codec, n.payload_type), (Codec::Pcma, 8));
    let n = negotiate_with(G722_FIRST.as_bytes(), &[Codec::Pcmu, Codec::G722]).expect("usable");
    assert_eq!(n.codec, Codec::Pcmu);
    // Not in our list: refused, even if it is the only codec offered.
    let only = G722_FIRST.replace("RTP/AVP 9 0 8 101", "RTP/AVP 9 101");
    assert_eq!(negotiate_with(only.as_bytes(), &[Codec::Pcmu, Codec::Pcma]), Err(SdpError::NoUsableAudio));
    // An empty list means the default order.
    assert_eq!(negotiate_with(G722_FIRST.as_bytes(), &[]).expect("usable").codec, Codec::G722);
    // Narrowband-only offers still work with the default list.
    let narrow = G722_FIRST.replace("RTP/AVP 9 0 8 101", "RTP/AVP 8 0 101");
    let n = negotiate(narrow.as_bytes()).expect("usable");
    assert_eq!(n.codec, Codec::Pcmu, "PCMU ranks above PCMA in our default list");
}

#[test]
fn our_offers_list_g722_first_and_parse_back() {
    let o = offer(local(), 5, 1);
    assert!(o.contains("m=audio 20000 RTP/AVP 9 0 8 101\r\n"), "{o}");
    assert!(o.contains("a=rtpmap:9 G722/8000\r\n"), "{o}");
    assert_eq!(negotiate(o.as_bytes()).expect("parses").codec, Codec::G722);
    let o = offer_with(local(), 5, 1, &[Codec::Pcma]);
    assert!(o.contains("m=audio 20000 RTP/AVP 8 101\r\n"), "{o}");
    assert_eq!(negotiate(o.as_bytes()).expect("parses").codec, Codec::Pcma);
}
