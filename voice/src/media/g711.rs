//! G.711 μ-law (PCMU) and A-law (PCMA), bit-exact with the ITU-T G.191 / Sun reference `g711.c`.
//!
//! Decoding is a 256-entry table built at compile time; encoding is a few integer operations.
//! Every function is total: any `i16` encodes, any byte decodes.

const ULAW_BIAS: i32 = 0x84;
const ULAW_CLIP: i32 = 32635;

/// Encodes one 16-bit linear sample to μ-law.
pub fn ulaw_encode(sample: i16) -> u8 {
    let mut pcm = sample as i32;
    let sign = if pcm < 0 {
        pcm = -pcm;
        0x80
    } else {
        0
    };
    if pcm > ULAW_CLIP {
        pcm = ULAW_CLIP;
    }
    pcm += ULAW_BIAS;
    // pcm is in 132..=32767: its top set bit is bit 7..=14, which is the segment (exponent) + 7.
    let exponent = (31 - (pcm as u32).leading_zeros() as i32 - 7).clamp(0, 7);
    let mantissa = (pcm >> (exponent + 3)) & 0x0F;
    !((sign | (exponent << 4) | mantissa) as u8)
}

const fn ulaw_decode_const(code: u8) -> i16 {
    let u = !code;
    let exponent = ((u >> 4) & 0x07) as i32;
    let mantissa = (u & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
    if u & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// Encodes one 16-bit linear sample to A-law.
pub fn alaw_encode(sample: i16) -> u8 {
    const SEG_END: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
    let mut pcm = (sample as i32) >> 3; // A-law works on 13-bit magnitudes
    let mask: u8 = if pcm >= 0 {
        0xD5
    } else {
        pcm = -pcm - 1;
        0x55
    };
    let seg = SEG_END.iter().position(|&end| pcm <= end).unwrap_or(8);
    if seg >= 8 {
        return 0x7F ^ mask;
    }
    let mut aval = (seg as u8) << 4;
    if seg < 2 {
        aval |= ((pcm >> 1) & 0x0F) as u8;
    } else {
        aval |= ((pcm >> seg) & 0x0F) as u8;
    }
    aval ^ mask
}

const fn alaw_decode_const(code: u8) -> i16 {
    let a = code ^ 0x55;
    let mut t = ((a & 0x0F) as i32) << 4;
    let seg = ((a & 0x70) >> 4) as i32;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    if a & 0x80 != 0 {
        t as i16
    } else {
        -t as i16
    }
}

const fn build_table(alaw: bool) -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = if alaw { alaw_decode_const(i as u8) } else { ulaw_decode_const(i as u8) };
        i += 1;
    }
    table
}

static ULAW_TABLE: [i16; 256] = build_table(false);
static ALAW_TABLE: [i16; 256] = build_table(true);

/// Decodes one μ-law byte.
#[inline]
pub fn ulaw_decode(code: u8) -> i16 {
    ULAW_TABLE[code as usize]
}

/// Decodes one A-law byte.
#[inline]
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_TABLE[code as usize]
}

/// Kept here for older paths (`media::g711::Codec`); the codec list lives in `codec.rs`.
pub use super::codec::Codec;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_reference_vectors() {
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(ulaw_encode(-1), 0x7F);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x7F), 0);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0x00), -32124);
        // First step of segment 0 and first value of segment 1.
        assert_eq!(ulaw_decode(0xFE), 8);
        assert_eq!(ulaw_decode(0xEF), 132);
        assert_eq!(ulaw_encode(1000), 0xCE);
        assert_eq!(ulaw_decode(0xCE), 988);
    }

    #[test]
    fn alaw_reference_vectors() {
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_encode(-1), 0x55);
        assert_eq!(alaw_encode(i16::MAX), 0xAA);
        assert_eq!(alaw_encode(i16::MIN), 0x2A);
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0xAA), 32256);
        assert_eq!(alaw_decode(0x2A), -32256);
        assert_eq!(alaw_encode(1000), 0xFA);
        assert_eq!(alaw_decode(0xFA), 1008);
    }

    #[test]
    fn every_code_round_trips() {
        for code in 0..=255u8 {
            let a = alaw_decode(code);
            assert_eq!(alaw_encode(a), code, "A-law code {code:#04x}");
            let u = ulaw_decode(code);
            // μ-law has two zeros (0xFF and 0x7F); the encoder picks +0.
            let expect = if code == 0x7F { 0xFF } else { code };
            assert_eq!(ulaw_encode(u), expect, "μ-law code {code:#04x}");
        }
    }

    #[test]
    fn quantisation_error_is_bounded_and_monotonic() {
        let mut prev_u = i16::MIN;
        let mut prev_a = i16::MIN;
        for s in i16::MIN..=i16::MAX {
            let u = ulaw_decode(ulaw_encode(s));
            let a = alaw_decode(alaw_encode(s));
            assert!(u >= prev_u && a >= prev_a, "non-monotonic at {s}");
            prev_u = u;
            prev_a = a;
            let mag = (s as i32).abs();
            // Step size doubles per segment: error stays under ~1/16 of the magnitude (+ small floor).
            assert!(((u as i32) - s as i32).abs() <= mag / 16 + 16 || mag > 32000, "μ-law {s} -> {u}");
            assert!(((a as i32) - s as i32).abs() <= mag / 16 + 16 || mag > 32000, "A-law {s} -> {a}");
        }
    }
}
