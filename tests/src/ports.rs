//! Free loopback ports for parallel tests (each test gets its own SIP/RTP/control ports).

use std::net::{TcpListener, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::{Error, Result};

/// Below the kernel's ephemeral range (32768+), so no client socket takes them meanwhile.
const LOW: u32 = 21_000;
const SPAN: u32 = 11_000;

/// Offset of the next block; blocks never overlap within one process, which matters
/// because a peer's RTP range is only bound when its call starts (a free-looking port
/// can already be promised to a callee started earlier).
static CURSOR: AtomicU32 = AtomicU32::new(0);

/// A free even-aligned block of `n` UDP ports on 127.0.0.1 (RTP + RTCP pairs), as an
/// inclusive range. Each process starts at its own pid-derived offset so that parallel
/// test processes rarely pick the same block.
pub fn free_udp_range(n: u16) -> Result<(u16, u16)> {
    let n = u32::from(n.max(2) + (n % 2));
    let seed = (std::process::id().wrapping_mul(7919) % SPAN) & !1;
    for _ in 0..2_000 {
        let off = CURSOR.fetch_add(n, Ordering::Relaxed);
        let base = LOW + (seed + off) % (SPAN - n);
        let base = (base & !1) as u16;
        let hi = base + (n - 1) as u16;
        if (base..=hi).all(|p| UdpSocket::bind(("127.0.0.1", p)).is_ok()) {
            return Ok((base, hi));
        }
    }
    Err(Error::NoFreePort("RTP range"))
}

/// A free UDP port (e.g. SIP).
pub fn free_udp_port() -> Result<u16> {
    free_udp_range(2).map(|(lo, _)| lo)
}

/// A free TCP port on 127.0.0.1 (baresip's ctrl_tcp).
pub fn free_tcp_port() -> Result<u16> {
    let l = TcpListener::bind(("127.0.0.1", 0)).map_err(|_| Error::NoFreePort("TCP control"))?;
    l.local_addr().map(|a| a.port()).map_err(|_| Error::NoFreePort("TCP control"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_do_not_overlap_within_a_process() {
        let mut got: Vec<(u16, u16)> = (0..20).map(|i| free_udp_range(if i % 2 == 0 { 2 } else { 10 }).unwrap()).collect();
        got.sort();
        for w in got.windows(2) {
            assert!(w[0].1 < w[1].0, "{:?} overlaps {:?}", w[0], w[1]);
        }
        assert!(got.iter().all(|&(lo, hi)| lo % 2 == 0 && u32::from(hi) < 32_768));
    }
}
