//! ITU-T G.722 at 64 kbit/s (mode 1): sub-band ADPCM, 16 kHz audio, one byte per sample pair.
//!
//! A port of Steve Underwood's SpanDSP `g722.c` (public domain), itself based on the CMU G.722
//! codec (use unrestricted; Copyright (c) 1993 Carnegie Mellon University, Chengxiang Lu and
//! Alex Hauptmann), by way of sippy/libg722 and the MIT-licensed `ezk-g722` 0.1.2 translation.
//! Only what RTP telephony uses is kept: 64 kbit/s, unpacked octets, QMF enabled. That crate was
//! not used directly because it pulls in a media framework (ezk, ezk-audio, ezk-rtp) and its
//! packed and 8 kHz paths are broken; the 64 kbit/s arithmetic below is unchanged from it.
//!
//! Both directions are stateful (ADPCM predictors and the QMF history): one encoder and one decoder
//! per stream, fed in order. Every input is accepted; nothing here panics.

#[derive(Debug, Default, Clone)]
struct Band {
    s: i32,
    sp: i32,
    sz: i32,
    r: [i32; 3],
    a: [i32; 3],
    ap: [i32; 3],
    p: [i32; 3],
    d: [i32; 7],
    b: [i32; 7],
    bp: [i32; 7],
    sg: [i32; 7],
    nb: i32,
    det: i32,
}

impl Band {
    /// Initial state: `det` starts at 32 (low band) or 8 (high band), as in the reference.
    fn new(det: i32) -> Self {
        Band { det, ..Default::default() }
    }
}

fn saturate(amp: i32) -> i32 {
    amp.clamp(i16::MIN as i32, i16::MAX as i32)
}

const QMF_COEFFS: [i32; 12] = [3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11];
const WL: [i32; 8] = [-60, -30, 58, 172, 334, 538, 1198, 3042];
const RL42: [i32; 16] = [0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0];
const ILB: [i32; 32] = [
    2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834, 2896, 2960, 3025,
    3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
];
const QM4: [i32; 16] = [0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288, 4240, 2584, 1200, 0];
const QM2: [i32; 4] = [-7408, -1616, 7408, 1616];
const WH: [i32; 3] = [0, -214, 798];
const RH2: [i32; 4] = [2, 1, 2, 1];

/// Blocks 3L/3H (LOGSCL/LOGSCH + SCALEL/SCALEH): adapts the quantiser scale.
fn adapt_scale(band: &mut Band, wl: i32, max_nb: i32, shift_base: i32) {
    let nb = ((band.nb * 127) >> 7) + wl;
    band.nb = nb.clamp(0, max_nb);
    let wd1 = (band.nb >> 6) & 31;
    let wd2 = shift_base - (band.nb >> 11);
    let wd3 = if wd2 < 0 { ILB[wd1 as usize] << -wd2 } else { ILB[wd1 as usize] >> wd2 };
    band.det = wd3 << 2;
}

/// Block 4: reconstruction, pole/zero predictor adaptation and the next prediction.
fn block4(band: &mut Band, d: i32) {
    // RECONS, PARREC
    band.d[0] = d;
    band.r[0] = saturate(band.s + d);
    band.p[0] = saturate(band.sz + d);

    // UPPOL2
    for i in 0..3 {
        band.sg[i] = band.p[i] >> 15;
    }
    let wd1 = saturate(band.a[1] << 2);
    let wd2 = if band.sg[0] == band.sg[1] { -wd1 } else { wd1 }.min(32767);
    let mut wd3 = (wd2 >> 7) + if band.sg[0] == band.sg[2] { 128 } else { -128 };
    wd3 += (band.a[2] * 32512) >> 15;
    band.ap[2] = wd3.clamp(-12288, 12288);

    // UPPOL1
    band.sg[0] = band.p[0] >> 15;
    band.sg[1] = band.p[1] >> 15;
    let wd1 = if band.sg[0] == band.sg[1] { 192 } else { -192 };
    let wd2 = (band.a[1] * 32640) >> 15;
    band.ap[1] = saturate(wd1 + wd2);
    let wd3 = saturate(15360 - band.ap[2]);
    band.ap[1] = band.ap[1].clamp(-wd3, wd3);

    // UPZERO
    let wd1 = if d == 0 { 0 } else { 128 };
    band.sg[0] = d >> 15;
    for i in 1..7 {
        band.sg[i] = band.d[i] >> 15;
        let wd2 = if band.sg[i] == band.sg[0] { wd1 } else { -wd1 };
        let wd3 = (band.b[i] * 32640) >> 15;
        band.bp[i] = saturate(wd2 + wd3);
    }

    // DELAYA
    for i in (1..7).rev() {
        band.d[i] = band.d[i - 1];
        band.b[i] = band.bp[i];
    }
    for i in (1..3).rev() {
        band.r[i] = band.r[i - 1];
        band.p[i] = band.p[i - 1];
        band.a[i] = band.ap[i];
    }

    // FILTEP
    let wd1 = (band.a[1] * saturate(band.r[1] + band.r[1])) >> 15;
    let wd2 = (band.a[2] * saturate(band.r[2] + band.r[2])) >> 15;
    band.sp = saturate(wd1 + wd2);

    // FILTEZ
    let mut sz = 0;
    for i in (1..7).rev() {
        sz += (band.b[i] * saturate(band.d[i] + band.d[i])) >> 15;
    }
    band.sz = saturate(sz);

    // PREDIC
    band.s = saturate(band.sp + band.sz);
}

/// G.722 64 kbit/s encoder: 16 kHz PCM in, one octet per two samples out.
#[derive(Debug, Clone)]
pub struct G722Encoder {
    x: [i32; 24],
    band: [Band; 2],
    /// An odd trailing sample waits here for its partner (callers normally pass even lengths).
    pending: Option<i16>,
}

impl Default for G722Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl G722Encoder {
    pub fn new() -> Self {
        Self { x: [0; 24], band: [Band::new(32), Band::new(8)], pending: None }
    }

    /// Appends the encoding of `pcm` (16 kHz) to `out`: `pcm.len() / 2` octets.
    pub fn encode_into(&mut self, pcm: &[i16], out: &mut Vec<u8>) {
        let mut samples = pcm.iter().copied();
        if let Some(first) = self.pending.take() {
            match samples.next() {
                Some(second) => out.push(self.encode_pair(first, second)),
                None => {
                    self.pending = Some(first);
                    return;
                }
            }
        }
        loop {
            match (samples.next(), samples.next()) {
                (Some(a), Some(b)) => out.push(self.encode_pair(a, b)),
                (Some(a), None) => {
                    self.pending = Some(a);
                    return;
                }
                _ => return,
            }
        }
    }

    fn encode_pair(&mut self, a: i16, b: i16) -> u8 {
        const Q6: [i32; 32] = [
            0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858, 940, 1023, 1121, 1219,
            1339, 1458, 1612, 1765, 1980, 2195, 2557, 2919, 0, 0,
        ];
        const ILN: [i32; 32] = [
            0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5,
            4, 0,
        ];
        const ILP: [i32; 32] = [
            0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39, 38, 37, 36, 35,
            34, 33, 32, 0,
        ];
        const IHN: [i32; 3] = [0, 1, 0];
        const IHP: [i32; 3] = [0, 3, 2];

        // Transmit QMF: split into 0–4 kHz and 4–8 kHz bands, each at 8 kHz.
        self.x.copy_within(2.., 0);
        self.x[22] = a as i32;
        self.x[23] = b as i32;
        let (mut sumeven, mut sumodd) = (0, 0);
        for i in 0..12 {
            sumodd += self.x[2 * i] * QMF_COEFFS[i];
            sumeven += self.x[2 * i + 1] * QMF_COEFFS[11 - i];
        }
        let xlow = (sumeven + sumodd) >> 14;
        let xhigh = (sumeven - sumodd) >> 14;

        // Low band: SUBTRA, QUANTL (6 bits).
        let low = &mut self.band[0];
        let el = saturate(xlow - low.s);
        let wd = if el >= 0 { el } else { -(el + 1) };
        let mut i = 1;
        while i < 30 && wd >= (Q6[i] * low.det) >> 12 {
            i += 1;
        }
        let ilow = if el < 0 { ILN[i] } else { ILP[i] };
        // INVQAL on the 4-bit core, then adapt.
        let ril = (ilow >> 2) as usize;
        let dlow = (low.det * QM4[ril]) >> 15;
        adapt_scale(low, WL[RL42[ril] as usize], 18432, 8);
        block4(low, dlow);

        // High band: SUBTRA, QUANTH (2 bits).
        let high = &mut self.band[1];
        let eh = saturate(xhigh - high.s);
        let wd = if eh >= 0 { eh } else { -(eh + 1) };
        let mih = if wd >= (564 * high.det) >> 12 { 2 } else { 1 };
        let ihigh = if eh < 0 { IHN[mih] } else { IHP[mih] };
        let dhigh = (high.det * QM2[ihigh as usize]) >> 15;
        adapt_scale(high, WH[RH2[ihigh as usize] as usize], 22528, 10);
        block4(high, dhigh);

        ((ihigh << 6) | ilow) as u8
    }
}

/// G.722 64 kbit/s decoder: one octet in, two 16 kHz samples out.
#[derive(Debug, Clone)]
pub struct G722Decoder {
    x: [i32; 24],
    band: [Band; 2],
}

impl Default for G722Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl G722Decoder {
    pub fn new() -> Self {
        Self { x: [0; 24], band: [Band::new(32), Band::new(8)] }
    }

    /// Appends the 16 kHz samples of `payload` to `out` (two per octet).
    pub fn decode_into(&mut self, payload: &[u8], out: &mut Vec<i16>) {
        const QM6: [i32; 64] = [
            -136, -136, -136, -136, -24808, -21904, -19008, -16704, -14984, -13512, -12280, -11192, -10232, -9360, -8576,
            -7856, -7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576, -3168, -2776, -2400, -2032, -1688, -1360, -1040,
            -728, 24808, 21904, 19008, 16704, 14984, 13512, 12280, 11192, 10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456,
            4944, 4464, 4008, 3576, 3168, 2776, 2400, 2032, 1688, 1360, 1040, 728, 432, 136, -432, -136,
        ];
        out.reserve(payload.len() * 2);
        for &code in payload {
            let code = code as i32;
            let ilow = code & 0x3F;
            let ihigh = ((code >> 6) & 0x03) as usize;

            // Low band: INVQBL with all 6 bits for the output, 4 bits for the predictor.
            let low = &mut self.band[0];
            let rlow = (low.s + ((low.det * QM6[ilow as usize]) >> 15)).clamp(-16384, 16383);
            let ril = (ilow >> 2) as usize;
            let dlow = (low.det * QM4[ril]) >> 15;
            adapt_scale(low, WL[RL42[ril] as usize], 18432, 8);
            block4(low, dlow);

            // High band.
            let high = &mut self.band[1];
            let dhigh = (high.det * QM2[ihigh]) >> 15;
            let rhigh = (dhigh + high.s).clamp(-16384, 16383);
            adapt_scale(high, WH[RH2[ihigh] as usize], 22528, 10);
            block4(high, dhigh);

            // Receive QMF: recombine the bands into two 16 kHz samples.
            self.x.copy_within(2.., 0);
            self.x[22] = rlow + rhigh;
            self.x[23] = rlow - rhigh;
            let (mut xout1, mut xout2) = (0, 0);
            for i in 0..12 {
                xout2 += self.x[2 * i] * QMF_COEFFS[i];
                xout1 += self.x[2 * i + 1] * QMF_COEFFS[11 - i];
            }
            out.push(saturate(xout1 >> 11) as i16);
            out.push(saturate(xout2 >> 11) as i16);
        }
    }
}
