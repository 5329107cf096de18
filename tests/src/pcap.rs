//! Minimal capture readers: classic pcap (streamed live from `dumpcap -P -w -`) and
//! pcapng files (dumpcap's default), reduced to IPv4/UDP datagrams with wall-clock times.

use std::net::Ipv4Addr;

use crate::error::{Error, Result};

/// One UDP datagram seen on the wire; `ts_us` = capture time, µs since the UNIX epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    pub ts_us: i64,
    pub src: (Ipv4Addr, u16),
    pub dst: (Ipv4Addr, u16),
    pub payload: Vec<u8>,
}

/// Incremental classic-pcap parser: feed bytes as they arrive, collect datagrams.
#[derive(Debug, Default)]
pub struct PcapStream {
    buf: Vec<u8>,
    header: Option<Header>,
}

#[derive(Debug, Clone, Copy)]
struct Header {
    big_endian: bool,
    nanos: bool,
    linktype: u32,
}

impl PcapStream {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `bytes`; returns every complete UDP datagram now available.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Datagram>> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut pos = 0;
        if self.header.is_none() {
            if self.buf.len() < 24 {
                return Ok(out);
            }
            let magic = [self.buf[0], self.buf[1], self.buf[2], self.buf[3]];
            let (big_endian, nanos) = match magic {
                [0xd4, 0xc3, 0xb2, 0xa1] => (false, false),
                [0xa1, 0xb2, 0xc3, 0xd4] => (true, false),
                [0x4d, 0x3c, 0xb2, 0xa1] => (false, true),
                [0xa1, 0xb2, 0x3c, 0x4d] => (true, true),
                _ => return Err(Error::Capture("not a classic pcap stream (bad magic)".into())),
            };
            let linktype = rd32(&self.buf[20..24], big_endian);
            self.header = Some(Header { big_endian, nanos, linktype });
            pos = 24;
        }
        let Some(h) = self.header else { return Ok(out) };
        while self.buf.len() >= pos + 16 {
            let r = &self.buf[pos..pos + 16];
            let sec = i64::from(rd32(&r[0..4], h.big_endian));
            let frac = i64::from(rd32(&r[4..8], h.big_endian));
            let incl = rd32(&r[8..12], h.big_endian) as usize;
            if incl > 262_144 {
                return Err(Error::Capture(format!("implausible record length {incl}")));
            }
            if self.buf.len() < pos + 16 + incl {
                break;
            }
            let ts_us = sec * 1_000_000 + if h.nanos { frac / 1000 } else { frac };
            if let Some(d) = udp_from_frame(h.linktype, &self.buf[pos + 16..pos + 16 + incl], ts_us) {
                out.push(d);
            }
            pos += 16 + incl;
        }
        self.buf.drain(..pos);
        Ok(out)
    }
}

/// Parses a whole capture file (classic pcap or pcapng) into UDP datagrams.
pub fn parse_capture(data: &[u8]) -> Result<Vec<Datagram>> {
    if data.len() >= 4 && data[0..4] == [0x0a, 0x0d, 0x0d, 0x0a] {
        return parse_pcapng(data);
    }
    let mut s = PcapStream::new();
    s.push(data)
}

fn parse_pcapng(data: &[u8]) -> Result<Vec<Datagram>> {
    let mut out = Vec::new();
    let mut pos = 0;
    let mut be = false;
    // Per-interface (linktype, ticks per second), in the order the IDBs appear.
    let mut ifaces: Vec<(u32, i64)> = Vec::new();
    while pos + 12 <= data.len() {
        let btype_raw = &data[pos..pos + 4];
        if btype_raw == [0x0a, 0x0d, 0x0d, 0x0a] {
            let bom = &data[pos + 8..pos + 12];
            be = bom == [0x1a, 0x2b, 0x3c, 0x4d];
            ifaces.clear();
        }
        let btype = rd32(btype_raw, be);
        let blen = rd32(&data[pos + 4..pos + 8], be) as usize;
        if blen < 12 || pos + blen > data.len() {
            break; // truncated tail (capture stopped hard): keep what we have
        }
        let body = &data[pos + 8..pos + blen - 4];
        match btype {
            1 if body.len() >= 8 => {
                let linktype = u32::from(rd16(&body[0..2], be));
                ifaces.push((linktype, if_tsresol(&body[8..], be)));
            }
            6 if body.len() >= 20 => {
                let ifid = rd32(&body[0..4], be) as usize;
                let ts = (u64::from(rd32(&body[4..8], be)) << 32) | u64::from(rd32(&body[8..12], be));
                let caplen = rd32(&body[12..16], be) as usize;
                if let (Some(&(lt, tps)), Some(frame)) = (ifaces.get(ifid), body.get(20..20 + caplen)) {
                    let ts = ts as i64;
                    let ts_us = if tps == 1_000_000 { ts } else { ts / (tps / 1_000_000).max(1) };
                    if let Some(d) = udp_from_frame(lt, frame, ts_us) {
                        out.push(d);
                    }
                }
            }
            _ => {}
        }
        pos += blen;
    }
    Ok(out)
}

/// if_tsresol option (code 9) of an IDB; default 10^-6.
fn if_tsresol(mut opts: &[u8], be: bool) -> i64 {
    while opts.len() >= 4 {
        let code = rd16(&opts[0..2], be);
        let len = rd16(&opts[2..4], be) as usize;
        if code == 0 {
            break;
        }
        if code == 9 && len >= 1 && opts.len() > 4 {
            let v = opts[4];
            if v & 0x80 == 0 && v <= 18 {
                return 10i64.pow(u32::from(v));
            }
        }
        let adv = 4 + len.div_ceil(4) * 4;
        if adv > opts.len() {
            break;
        }
        opts = &opts[adv..];
    }
    1_000_000
}

fn udp_from_frame(linktype: u32, frame: &[u8], ts_us: i64) -> Option<Datagram> {
    let ip = match linktype {
        1 => {
            // Ethernet (what Linux `lo` gives): skip 802.1Q tags
            let mut off = 12;
            let mut et = u16::from_be_bytes([*frame.get(off)?, *frame.get(off + 1)?]);
            while et == 0x8100 {
                off += 4;
                et = u16::from_be_bytes([*frame.get(off)?, *frame.get(off + 1)?]);
            }
            if et != 0x0800 {
                return None;
            }
            frame.get(off + 2..)?
        }
        113 => frame.get(16..)?, // Linux cooked v1
        276 => frame.get(20..)?, // Linux cooked v2
        0 | 108 => frame.get(4..)?, // BSD null loopback
        101 | 228 => frame,         // raw IPv4
        _ => return None,
    };
    if ip.len() < 20 || ip[0] >> 4 != 4 || ip[9] != 17 {
        return None;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).min(ip.len());
    let udp = ip.get(ihl..total)?;
    if udp.len() < 8 {
        return None;
    }
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    Some(Datagram {
        ts_us,
        src: (src, u16::from_be_bytes([udp[0], udp[1]])),
        dst: (dst, u16::from_be_bytes([udp[2], udp[3]])),
        payload: udp[8..].to_vec(),
    })
}

fn rd32(b: &[u8], be: bool) -> u32 {
    let a = [b[0], b[1], b[2], b[3]];
    if be { u32::from_be_bytes(a) } else { u32::from_le_bytes(a) }
}

fn rd16(b: &[u8], be: bool) -> u16 {
    let a = [b[0], b[1]];
    if be { u16::from_be_bytes(a) } else { u16::from_le_bytes(a) }
}

/// Builds an Ethernet/IPv4/UDP frame (for tests and synthetic captures).
pub fn udp_frame(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 12];
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let total = (20 + 8 + payload.len()) as u16;
    f.extend_from_slice(&[0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0]);
    f[16..18].copy_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&src.0.octets());
    f.extend_from_slice(&dst.0.octets());
    f.extend_from_slice(&src.1.to_be_bytes());
    f.extend_from_slice(&dst.1.to_be_bytes());
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

/// Serialises datagrams as a classic little-endian µs pcap (linktype Ethernet).
pub fn write_pcap(datagrams: &[Datagram]) -> Vec<u8> {
    let mut out = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 1, 0, 0, 0];
    for d in datagrams {
        let f = udp_frame(d.src, d.dst, &d.payload);
        out.extend_from_slice(&((d.ts_us / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((d.ts_us % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dg(ts: i64, p: u8) -> Datagram {
        Datagram {
            ts_us: ts,
            src: (Ipv4Addr::LOCALHOST, 1000),
            dst: (Ipv4Addr::LOCALHOST, 2000),
            payload: vec![p; 5],
        }
    }

    #[test]
    fn pcap_roundtrip_in_arbitrary_chunks() {
        let ds = vec![dg(1_700_000_000_123_456, 1), dg(1_700_000_001_000_001, 2)];
        let bytes = write_pcap(&ds);
        let mut s = PcapStream::new();
        let mut got = Vec::new();
        for chunk in bytes.chunks(7) {
            got.extend(s.push(chunk).unwrap());
        }
        assert_eq!(got, ds);
        assert_eq!(parse_capture(&bytes).unwrap(), ds);
    }

    #[test]
    fn pcapng_with_nanosecond_resolution() {
        let frame = udp_frame((Ipv4Addr::LOCALHOST, 5), (Ipv4Addr::LOCALHOST, 6), b"hi");
        let mut f = Vec::new();
        // SHB
        f.extend_from_slice(&[0x0a, 0x0d, 0x0d, 0x0a]);
        f.extend_from_slice(&28u32.to_le_bytes());
        f.extend_from_slice(&[0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0]);
        f.extend_from_slice(&(-1i64).to_le_bytes());
        f.extend_from_slice(&28u32.to_le_bytes());
        // IDB with if_tsresol = 9
        f.extend_from_slice(&1u32.to_le_bytes());
        f.extend_from_slice(&32u32.to_le_bytes());
        f.extend_from_slice(&[1, 0, 0, 0, 0, 0, 4, 0]);
        f.extend_from_slice(&[9, 0, 1, 0, 9, 0, 0, 0]);
        f.extend_from_slice(&[0, 0, 0, 0]);
        f.extend_from_slice(&32u32.to_le_bytes());
        // EPB
        let ts: u64 = 1_700_000_000_500_000_000;
        let pad = (4 - frame.len() % 4) % 4;
        let blen = (32 + frame.len() + pad) as u32;
        f.extend_from_slice(&6u32.to_le_bytes());
        f.extend_from_slice(&blen.to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes());
        f.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        f.extend_from_slice(&(ts as u32).to_le_bytes());
        f.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        f.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        f.extend_from_slice(&frame);
        f.extend(vec![0u8; pad]);
        f.extend_from_slice(&blen.to_le_bytes());
        let d = parse_capture(&f).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].ts_us, 1_700_000_000_500_000);
        assert_eq!(d[0].payload, b"hi");
        assert_eq!(d[0].dst.1, 6);
    }
}
