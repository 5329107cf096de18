//! A stub DNS server on loopback for baresip (`dns_server`), so that no lookup ever leaves
//! 127.0.0.1 and a blind transfer to a name like `sip:100@pbx.local` reaches a local
//! stand-in: every name resolves to 127.0.0.1 and `_sip._udp.<name>` SRV points at
//! `sip_port`. Without a sink port every name is NXDOMAIN (the transfer fails fast).

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};

const A: u16 = 1;
const SRV: u16 = 33;

/// Answers one DNS query (pure). None for datagrams that are not a single-question query.
pub fn answer(query: &[u8], sip_port: Option<u16>) -> Option<Vec<u8>> {
    if query.len() < 12 || query[2] & 0x80 != 0 || u16::from_be_bytes([query[4], query[5]]) != 1 {
        return None;
    }
    // question name
    let mut pos = 12;
    let mut labels: Vec<String> = Vec::new();
    loop {
        let len = usize::from(*query.get(pos)?);
        pos += 1;
        if len == 0 {
            break;
        }
        if len > 63 {
            return None; // compression is not used in questions
        }
        labels.push(String::from_utf8_lossy(query.get(pos..pos + len)?).to_ascii_lowercase());
        pos += len;
    }
    let qtype = u16::from_be_bytes([*query.get(pos)?, *query.get(pos + 1)?]);
    let qend = pos + 4;
    query.get(..qend)?;
    let mut out = query[..qend].to_vec();
    out[2] = 0x84 | (query[2] & 0x01); // QR, AA, keep RD
    out[3] = 0x00;
    out[6..12].copy_from_slice(&[0, 0, 0, 0, 0, 0]);
    let Some(port) = sip_port else {
        out[3] = 0x03; // NXDOMAIN
        return Some(out);
    };
    let rr = |rtype: u16, rdata: &[u8], out: &mut Vec<u8>| {
        out.extend_from_slice(&[0xc0, 0x0c]);
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
        out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(rdata);
        out[7] += 1;
    };
    match qtype {
        A => rr(A, &[127, 0, 0, 1], &mut out),
        SRV if labels.len() > 2 && labels[0] == "_sip" && labels[1] == "_udp" => {
            let mut rdata = vec![0, 0, 0, 0];
            rdata.extend_from_slice(&port.to_be_bytes());
            for l in &labels[2..] {
                rdata.push(l.len() as u8);
                rdata.extend_from_slice(l.as_bytes());
            }
            rdata.push(0);
            rr(SRV, &rdata, &mut out);
        }
        _ => {} // NODATA: no NAPTR, no AAAA, no TCP/TLS SRV
    }
    Some(out)
}

/// The stub server thread; stops on drop.
pub struct StubDns {
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StubDns {
    pub fn start(sip_port: Option<u16>) -> Result<Self> {
        let sock = UdpSocket::bind(("127.0.0.1", 0)).map_err(|_| Error::NoFreePort("stub DNS"))?;
        let port = sock.local_addr().map_err(|_| Error::NoFreePort("stub DNS"))?.port();
        let _ = sock.set_read_timeout(Some(Duration::from_millis(100)));
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !st.load(Ordering::Relaxed) {
                if let Ok((n, from)) = sock.recv_from(&mut buf) {
                    if let Some(r) = answer(&buf[..n], sip_port) {
                        let _ = sock.send_to(&r, from);
                    }
                }
            }
        });
        Ok(Self { port, stop, thread: Some(thread) })
    }
}

impl Drop for StubDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            q.push(l.len() as u8);
            q.extend_from_slice(l.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&[0, 1]);
        q
    }

    #[test]
    fn a_srv_and_nodata() {
        let q = query("pbx.local", A);
        let r = answer(&q, Some(5099)).unwrap();
        assert_eq!(&r[0..2], &[0x12, 0x34]);
        assert_eq!(u16::from_be_bytes([r[6], r[7]]), 1);
        assert_eq!(&r[r.len() - 4..], &[127, 0, 0, 1]);

        let q = query("_sip._udp.pbx.local", SRV);
        let r = answer(&q, Some(5099)).unwrap();
        assert_eq!(u16::from_be_bytes([r[6], r[7]]), 1);
        let rdata = &r[q.len() + 12..];
        assert_eq!(u16::from_be_bytes([rdata[4], rdata[5]]), 5099);
        assert_eq!(&rdata[6..], b"\x03pbx\x05local\x00");

        let r = answer(&query("pbx.local", 35), Some(5099)).unwrap();
        assert_eq!((r[3] & 0x0f, u16::from_be_bytes([r[6], r[7]])), (0, 0));
        let r = answer(&query("_sip._tcp.pbx.local", SRV), Some(5099)).unwrap();
        assert_eq!(u16::from_be_bytes([r[6], r[7]]), 0);
    }

    #[test]
    fn nxdomain_without_sink_and_ignores_garbage() {
        let r = answer(&query("pbx.local", A), None).unwrap();
        assert_eq!(r[3] & 0x0f, 3);
        assert_eq!(answer(&[1, 2, 3], None), None);
        let mut resp = query("x", A);
        resp[2] |= 0x80;
        assert_eq!(answer(&resp, Some(1)), None);
    }
}
