//! SDP offer/answer (RFC 3264, RFC 4566) for one audio stream.
//!
//! We answer with the first codec of our preference list that the offer contains (default G.722,
//! then PCMU, then PCMA: wideband audio makes speech recognition far more accurate), keep RFC 4733
//! telephone-event at whatever dynamic payload type the offerer chose, ptime 20, symmetric RTP.
//! Everything else (video, SRTP profiles, other codecs) is declined with port 0.

use std::net::{IpAddr, SocketAddr};

/// Why an offer cannot be used. Both map to 488 Not Acceptable Here at the UA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdpError {
    Malformed(&'static str),
    NoUsableAudio,
}

impl std::fmt::Display for SdpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SdpError::Malformed(r) => write!(f, "malformed SDP: {r}"),
            SdpError::NoUsableAudio => {
                f.write_str("no audio stream over RTP/AVP with a codec we accept (G722, PCMU or PCMA, as configured) in the offer")
            }
        }
    }
}
impl std::error::Error for SdpError {}

/// The same enum the media session uses, so a negotiation result needs no translation.
pub use crate::media::Codec;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    /// Our answer to the offerer's direction (RFC 3264 §6.1).
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }
    fn attr(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
    /// True when the remote side put us on hold (it will not send, or not receive, audio).
    pub fn is_hold(self) -> bool {
        !matches!(self, Direction::SendRecv)
    }
}

/// The result of accepting an offer: what the media layer needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Where to send RTP (symmetric RTP may later override it with the observed source).
    pub remote: SocketAddr,
    pub codec: Codec,
    /// Payload type we send with: the offerer's (static 0/8/9 or a dynamic one it mapped).
    pub payload_type: u8,
    pub dtmf_payload_type: Option<u8>,
    /// The offerer's direction (hold detection).
    pub remote_direction: Direction,
    pub ptime_ms: u32,
    /// The m-lines of the offer, to mirror them in the answer (index of the one we took).
    media_lines: Vec<String>,
    chosen: usize,
}

#[derive(Debug, Default)]
struct MediaDesc {
    kind: String,
    port: u16,
    proto: String,
    fmts: Vec<String>,
    conn: Option<IpAddr>,
    rtpmap: Vec<(u8, String)>,
    direction: Option<Direction>,
}

fn parse_conn(v: &str) -> Result<Option<IpAddr>, SdpError> {
    let mut it = v.split_whitespace();
    let (nt, at, addr) = (it.next(), it.next(), it.next());
    if nt != Some("IN") {
        return Err(SdpError::Malformed("c= network type is not IN"));
    }
    let addr = addr.ok_or(SdpError::Malformed("c= without address"))?;
    // Strip a multicast TTL/count suffix; we only do unicast but must not choke on it.
    let addr = addr.split('/').next().unwrap_or(addr);
    match at {
        Some("IP4") | Some("IP6") => Ok(addr.parse::<IpAddr>().ok()),
        _ => Err(SdpError::Malformed("c= address type is not IP4/IP6")),
    }
}

/// Parses an SDP offer and picks our audio stream, preferring codecs in
/// [`Codec::DEFAULT_PREFERENCE`] order.
pub fn negotiate(body: &[u8]) -> Result<Negotiated, SdpError> {
    negotiate_with(body, &Codec::DEFAULT_PREFERENCE)
}

/// Which codec an rtpmap encoding (lower-cased `name/rate[/channels]`) or static type denotes.
fn codec_of(pt: u8, enc: Option<&str>) -> Option<Codec> {
    match enc {
        Some(e) => {
            let mut it = e.split('/');
            let (name, rate) = (it.next().unwrap_or(""), it.next().unwrap_or(""));
            let channels_ok = it.next().is_none_or(|c| c == "1");
            let codec = Codec::from_name(name)?;
            // G.722's rtpmap says 8000 although it samples at 16 kHz (RFC 3551 §4.5.2).
            (rate == "8000" && channels_ok).then_some(codec)
        }
        None => match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            9 => Some(Codec::G722),
            _ => None,
        },
    }
}

/// Parses an SDP offer and picks our audio stream: of the offered codecs, the first in
/// `preference` (codecs not listed are refused; an empty list means the default order).
pub fn negotiate_with(body: &[u8], preference: &[Codec]) -> Result<Negotiated, SdpError> {
    let preference = if preference.is_empty() { &Codec::DEFAULT_PREFERENCE[..] } else { preference };
    let text = std::str::from_utf8(body).map_err(|_| SdpError::Malformed("not UTF-8"))?;
    let mut session_conn = None;
    let mut session_dir = None;
    let mut media: Vec<MediaDesc> = Vec::new();
    let mut raw_m: Vec<String> = Vec::new();
    let mut saw_v = false;
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .ok_or(SdpError::Malformed("line without '='"))?;
        match k {
            "v" => saw_v = true,
            "c" => {
                let c = parse_conn(v)?;
                match media.last_mut() {
                    Some(m) => m.conn = c,
                    None => session_conn = c,
                }
            }
            "m" => {
                let mut it = v.split_whitespace();
                let kind = it
                    .next()
                    .ok_or(SdpError::Malformed("empty m="))?
                    .to_string();
                let port_s = it.next().ok_or(SdpError::Malformed("m= without port"))?;
                let port = port_s
                    .split('/')
                    .next()
                    .and_then(|p| p.parse::<u16>().ok())
                    .ok_or(SdpError::Malformed("bad m= port"))?;
                let proto = it
                    .next()
                    .ok_or(SdpError::Malformed("m= without proto"))?
                    .to_string();
                let fmts = it.map(str::to_string).collect();
                media.push(MediaDesc {
                    kind,
                    port,
                    proto,
                    fmts,
                    ..Default::default()
                });
                raw_m.push(v.to_string());
            }
            "a" => {
                let (name, val) = match v.split_once(':') {
                    Some((n, val)) => (n, Some(val)),
                    None => (v, None),
                };
                let dir = match name {
                    "sendrecv" => Some(Direction::SendRecv),
                    "sendonly" => Some(Direction::SendOnly),
                    "recvonly" => Some(Direction::RecvOnly),
                    "inactive" => Some(Direction::Inactive),
                    _ => None,
                };
                if let Some(d) = dir {
                    match media.last_mut() {
                        Some(m) => m.direction = Some(d),
                        None => session_dir = Some(d),
                    }
                } else if name == "rtpmap" {
                    if let (Some(m), Some(val)) = (media.last_mut(), val) {
                        let mut it = val.splitn(2, ' ');
                        if let (Some(pt), Some(enc)) =
                            (it.next().and_then(|p| p.trim().parse().ok()), it.next())
                        {
                            m.rtpmap.push((pt, enc.trim().to_ascii_lowercase()));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if !saw_v {
        return Err(SdpError::Malformed("no v= line"));
    }
    for (i, m) in media.iter().enumerate() {
        if m.kind != "audio" || m.port == 0 || m.proto != "RTP/AVP" {
            continue;
        }
        let conn = m
            .conn
            .or(session_conn)
            .ok_or(SdpError::Malformed("no c= for audio"))?;
        let mapped = |pt: u8| {
            m.rtpmap
                .iter()
                .find(|(p, _)| *p == pt)
                .map(|(_, e)| e.as_str())
        };
        // (rank in our preference, codec, payload type): the best-ranked wins, offer order breaks ties.
        let mut pick: Option<(usize, Codec, u8)> = None;
        let mut dtmf = None;
        for f in &m.fmts {
            let Ok(pt) = f.parse::<u8>() else { continue };
            let enc = mapped(pt);
            let ranked = codec_of(pt, enc).and_then(|c| preference.iter().position(|p| *p == c).map(|r| (r, c)));
            if let Some((rank, c)) = ranked {
                if pick.is_none_or(|(best, _, _)| rank < best) {
                    pick = Some((rank, c, pt));
                }
            }
            if dtmf.is_none() && enc.is_some_and(|e| e.starts_with("telephone-event/8000")) {
                dtmf = Some(pt);
            }
        }
        let Some((_, codec, pt)) = pick else { continue };
        let mut dir = m.direction.or(session_dir).unwrap_or(Direction::SendRecv);
        // RFC 2543-style hold: c=0.0.0.0 means "do not send to me".
        if conn.is_unspecified() && dir == Direction::SendRecv {
            dir = Direction::SendOnly;
        }
        return Ok(Negotiated {
            remote: SocketAddr::new(conn, m.port),
            codec,
            payload_type: pt,
            dtmf_payload_type: dtmf,
            remote_direction: dir,
            ptime_ms: 20,
            media_lines: raw_m,
            chosen: i,
        });
    }
    Err(SdpError::NoUsableAudio)
}

impl Negotiated {
    /// Builds our answer. `session_id`/`version` go into o=; bump `version` on each new answer
    /// within a dialog (RFC 3264 §8).
    pub fn answer(&self, local: SocketAddr, session_id: u64, version: u64) -> String {
        let ip = local.ip();
        let fam = if ip.is_ipv4() { "IP4" } else { "IP6" };
        let mut s =
            format!("v=0\r\no=frontdesk {session_id} {version} IN {fam} {ip}\r\ns=-\r\nc=IN {fam} {ip}\r\nt=0 0\r\n");
        for (i, raw) in self.media_lines.iter().enumerate() {
            if i != self.chosen {
                // Decline: same media and proto, port 0, the offer's formats (RFC 3264 §6).
                let mut it = raw.split_whitespace();
                let kind = it.next().unwrap_or("audio");
                let _port = it.next();
                let rest: Vec<&str> = it.collect();
                s.push_str(&format!("m={kind} 0 {}\r\n", rest.join(" ")));
                continue;
            }
            let dir = self.remote_direction.answer();
            let mut fmts = format!("{}", self.payload_type);
            if let Some(d) = self.dtmf_payload_type {
                fmts.push_str(&format!(" {d}"));
            }
            s.push_str(&format!("m=audio {} RTP/AVP {fmts}\r\n", local.port()));
            s.push_str(&format!(
                "a=rtpmap:{} {}/8000\r\n",
                self.payload_type,
                self.codec.name()
            ));
            if let Some(d) = self.dtmf_payload_type {
                s.push_str(&format!(
                    "a=rtpmap:{d} telephone-event/8000\r\na=fmtp:{d} 0-15\r\n"
                ));
            }
            s.push_str(&format!(
                "a=ptime:{}\r\na={}\r\n",
                self.ptime_ms,
                dir.attr()
            ));
        }
        s
    }
}

/// Our own offer (for an INVITE that arrived without SDP: the offer goes in the 200 OK), with
/// the codecs in [`Codec::DEFAULT_PREFERENCE`] order.
pub fn offer(local: SocketAddr, session_id: u64, version: u64) -> String {
    offer_with(local, session_id, version, &Codec::DEFAULT_PREFERENCE)
}

/// Our own offer listing `codecs` in preference order (an empty list means the default).
pub fn offer_with(local: SocketAddr, session_id: u64, version: u64, codecs: &[Codec]) -> String {
    let codecs = if codecs.is_empty() { &Codec::DEFAULT_PREFERENCE[..] } else { codecs };
    let ip = local.ip();
    let fam = if ip.is_ipv4() { "IP4" } else { "IP6" };
    let mut fmts = String::new();
    let mut maps = String::new();
    for c in codecs {
        fmts.push_str(&format!("{} ", c.static_payload_type()));
        maps.push_str(&format!("a=rtpmap:{} {}/8000\r\n", c.static_payload_type(), c.name()));
    }
    format!(
        "v=0\r\no=frontdesk {session_id} {version} IN {fam} {ip}\r\ns=-\r\nc=IN {fam} {ip}\r\nt=0 0\r\n\
m=audio {} RTP/AVP {fmts}101\r\n{maps}\
a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n",
        local.port()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const BARESIP: &str =
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 10000 RTP/AVP 9 8 0 101\r\na=rtpmap:9 G722/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\na=sendrecv\r\nm=video 10002 RTP/AVP 96\r\n";

    #[test]
    fn picks_first_g711_in_offer_order_and_keeps_dtmf() {
        let n = negotiate_with(BARESIP.as_bytes(), &[Codec::Pcma, Codec::Pcmu]).unwrap();
        assert_eq!(n.codec, Codec::Pcma);
        assert_eq!(n.dtmf_payload_type, Some(101));
        assert_eq!(n.remote, "127.0.0.1:10000".parse().unwrap());
        let a = n.answer("127.0.0.2:20000".parse().unwrap(), 7, 1);
        assert!(a.contains("m=audio 20000 RTP/AVP 8 101\r\n"), "{a}");
        assert!(a.contains("m=video 0 RTP/AVP 96\r\n"), "{a}");
        assert!(a.contains("a=sendrecv"));
        let n2 = negotiate(&a.into_bytes()).unwrap();
        assert_eq!((n2.codec, n2.dtmf_payload_type), (Codec::Pcma, Some(101)));
    }

    #[test]
    fn hold_offers_get_matching_directions() {
        let hold = BARESIP.replace("a=sendrecv", "a=sendonly");
        let n = negotiate(hold.as_bytes()).unwrap();
        assert!(n.remote_direction.is_hold());
        assert!(n
            .answer("127.0.0.2:20000".parse().unwrap(), 1, 2)
            .contains("a=recvonly"));
        let inactive = BARESIP.replace("a=sendrecv", "a=inactive");
        assert!(negotiate(inactive.as_bytes())
            .unwrap()
            .answer("127.0.0.2:1".parse().unwrap(), 1, 2)
            .contains("a=inactive"));
        let old = BARESIP.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0");
        assert_eq!(
            negotiate(old.as_bytes()).unwrap().remote_direction,
            Direction::SendOnly
        );
    }

    #[test]
    fn unpreferred_or_srtp_only_is_rejected() {
        let g722 = BARESIP.replace("RTP/AVP 9 8 0 101", "RTP/AVP 9 101");
        assert_eq!(negotiate_with(g722.as_bytes(), &[Codec::Pcmu, Codec::Pcma]), Err(SdpError::NoUsableAudio));
        let srtp = BARESIP.replace("RTP/AVP 9 8 0 101", "RTP/SAVP 0");
        assert_eq!(negotiate(srtp.as_bytes()), Err(SdpError::NoUsableAudio));
        assert!(matches!(negotiate(b"garbage"), Err(SdpError::Malformed(_))));
    }

    #[test]
    fn dynamic_pcmu_mapping_is_honoured() {
        let dynm = BARESIP
            .replace("RTP/AVP 9 8 0 101", "RTP/AVP 96 101")
            .replace("a=rtpmap:9 G722/8000", "a=rtpmap:96 PCMU/8000");
        let n = negotiate(dynm.as_bytes()).unwrap();
        assert_eq!((n.codec, n.payload_type), (Codec::Pcmu, 96));
    }
}
