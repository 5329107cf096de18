//! RTCP (RFC 3550 §6): building SR/RR + SDES compound packets and reading the peer's SR/RR.
//!
//! Parsing is defensive: a malformed packet ends parsing of that datagram, never the call.

/// Packet types.
pub const PT_SR: u8 = 200;
pub const PT_RR: u8 = 201;
pub const PT_SDES: u8 = 202;
pub const PT_BYE: u8 = 203;

/// One reception report block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    pub ssrc: u32,
    pub fraction_lost: u8,
    /// 24-bit signed cumulative loss.
    pub cumulative_lost: i32,
    pub highest_seq: u32,
    pub jitter: u32,
    pub last_sr: u32,
    pub delay_since_last_sr: u32,
}

/// Sender info of an SR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    pub ntp: u64,
    pub rtp_timestamp: u32,
    pub packet_count: u32,
    pub octet_count: u32,
}

/// What one compound RTCP datagram said, as far as the session cares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RtcpSummary {
    /// (sender SSRC, sender info) of an SR.
    pub sender_report: Option<(u32, SenderInfo)>,
    pub reports: Vec<ReportBlock>,
    pub bye: bool,
}

/// True if a datagram on a muxed port is RTCP rather than RTP (RFC 5761 §4: PT 192–223).
pub fn looks_like_rtcp(datagram: &[u8]) -> bool {
    datagram.len() >= 8 && datagram[0] >> 6 == 2 && (192..=223).contains(&datagram[1])
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn parse_blocks(body: &[u8], count: usize, out: &mut Vec<ReportBlock>) {
    for i in 0..count {
        let at = i * 24;
        let (Some(ssrc), Some(lost), Some(highest_seq), Some(jitter), Some(last_sr), Some(dlsr)) =
            (be32(body, at), be32(body, at + 4), be32(body, at + 8), be32(body, at + 12), be32(body, at + 16), be32(body, at + 20))
        else {
            return;
        };
        // Sign-extend the 24-bit cumulative loss.
        let cumulative_lost = ((lost << 8) as i32) >> 8;
        out.push(ReportBlock { ssrc, fraction_lost: (lost >> 24) as u8, cumulative_lost, highest_seq, jitter, last_sr, delay_since_last_sr: dlsr });
    }
}

/// Parses a (compound) RTCP datagram. Stops at the first malformed packet; returns what it got so far.
pub fn parse(datagram: &[u8]) -> RtcpSummary {
    let mut summary = RtcpSummary::default();
    let mut rest = datagram;
    while rest.len() >= 4 {
        if rest[0] >> 6 != 2 {
            break;
        }
        let count = (rest[0] & 0x1F) as usize;
        let pt = rest[1];
        let len = (u16::from_be_bytes([rest[2], rest[3]]) as usize + 1) * 4;
        let Some(packet) = rest.get(..len) else { break };
        let body = &packet[4..];
        match pt {
            PT_SR => {
                if let (Some(ssrc), Some(hi), Some(lo), Some(ts), Some(pc), Some(oc)) =
                    (be32(body, 0), be32(body, 4), be32(body, 8), be32(body, 12), be32(body, 16), be32(body, 20))
                {
                    summary.sender_report =
                        Some((ssrc, SenderInfo { ntp: (hi as u64) << 32 | lo as u64, rtp_timestamp: ts, packet_count: pc, octet_count: oc }));
                    parse_blocks(&body[24..], count, &mut summary.reports);
                }
            }
            PT_RR if body.len() >= 4 => parse_blocks(&body[4..], count, &mut summary.reports),
            PT_BYE => summary.bye = true,
            _ => {} // SDES, APP, feedback: nothing the appliance needs
        }
        rest = &rest[len..];
    }
    summary
}

fn push_block(out: &mut Vec<u8>, b: &ReportBlock) {
    out.extend_from_slice(&b.ssrc.to_be_bytes());
    let lost = (b.cumulative_lost.clamp(-0x80_0000, 0x7F_FFFF) as u32) & 0x00FF_FFFF;
    out.extend_from_slice(&(((b.fraction_lost as u32) << 24) | lost).to_be_bytes());
    out.extend_from_slice(&b.highest_seq.to_be_bytes());
    out.extend_from_slice(&b.jitter.to_be_bytes());
    out.extend_from_slice(&b.last_sr.to_be_bytes());
    out.extend_from_slice(&b.delay_since_last_sr.to_be_bytes());
}

/// Builds a compound SR (if `sender` is given) or RR, followed by an SDES with the CNAME (RFC 3550
/// requires CNAME in every compound packet).
pub fn build_compound(ssrc: u32, sender: Option<SenderInfo>, block: Option<ReportBlock>, cname: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(80);
    let rc = block.is_some() as u8;
    let words = if sender.is_some() { 6 } else { 1 } + 6 * rc as u16;
    out.push(0x80 | rc);
    out.push(if sender.is_some() { PT_SR } else { PT_RR });
    out.extend_from_slice(&words.to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    if let Some(si) = sender {
        out.extend_from_slice(&si.ntp.to_be_bytes());
        out.extend_from_slice(&si.rtp_timestamp.to_be_bytes());
        out.extend_from_slice(&si.packet_count.to_be_bytes());
        out.extend_from_slice(&si.octet_count.to_be_bytes());
    }
    if let Some(b) = block {
        push_block(&mut out, &b);
    }
    // SDES: one chunk, CNAME item, terminated by a zero byte and padded to 32 bits.
    let cname = &cname.as_bytes()[..cname.len().min(255)];
    let start = out.len();
    out.extend_from_slice(&[0x81, PT_SDES, 0, 0]);
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.push(1);
    out.push(cname.len() as u8);
    out.extend_from_slice(cname);
    out.push(0);
    while (out.len() - start) % 4 != 0 {
        out.push(0);
    }
    let words = ((out.len() - start) / 4 - 1) as u16;
    out[start + 2..start + 4].copy_from_slice(&words.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sr_round_trips_and_garbage_is_harmless() {
        let si = SenderInfo { ntp: 0x1122_3344_5566_7788, rtp_timestamp: 160, packet_count: 3, octet_count: 480 };
        let rb = ReportBlock { ssrc: 7, fraction_lost: 12, cumulative_lost: -3, highest_seq: 70000, jitter: 40, last_sr: 9, delay_since_last_sr: 65536 };
        let pkt = build_compound(42, Some(si), Some(rb), "frontdesk@appliance");
        assert!(looks_like_rtcp(&pkt));
        let s = parse(&pkt);
        assert_eq!(s.sender_report, Some((42, si)));
        assert_eq!(s.reports, vec![rb]);
        let rr = build_compound(43, None, None, "x");
        assert_eq!(parse(&rr), RtcpSummary::default());
        for cut in 0..pkt.len() {
            let _ = parse(&pkt[..cut]);
        }
        let mut bad = pkt.clone();
        bad[3] = 0xFF; // length beyond the datagram
        assert_eq!(parse(&bad).sender_report, None);
    }
}
