//! ITU-T G.711 µ-law (PCMU, RTP payload type 0) and A-law (PCMA, payload type 8).
//!
//! Decoding is one lookup in a 256-entry table. Encoding is one lookup in a table
//! indexed by the bits G.711 keeps (14 for µ-law, 13 for A-law: 16 KiB and 8 KiB).
//! All four tables are computed at compile time from the segment/mantissa
//! description of G.711 §2 and are checked in the tests against the reference
//! coder everybody compares with (Sun Microsystems' `g711.c`, 1994).
//!
//! Linear samples are 16-bit, full scale ±32767: µ-law decodes to at most ±32124,
//! A-law to at most ±32256; louder input saturates to the largest code.
//!
//! # Round trip
//! `encode(decode(c)) == c` for every code of both laws but one: µ-law has two
//! zeros, `0xFF` (+0) and `0x7F` (−0); both decode to 0, and 0 encodes to `0xFF`.
//!
//! # Transcoding
//! A bridge between a PCMU leg and a PCMA leg converts each code with one lookup
//! in a 256-entry table ([`mu_to_a`], [`a_to_mu`], [`transcode_into`]), computed
//! at compile time as decode in one law then encode in the other: the same
//! result as going through linear PCM, with the requantisation error of one
//! G.711 encoding and nothing more.

/// Which of the two G.711 companding laws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    /// µ-law, PCMU (North America, Japan). RTP payload type 0.
    Mu,
    /// A-law, PCMA (Europe, Latin America, most of the world). RTP payload type 8.
    A,
}

impl Law {
    /// The static RTP payload type (RFC 3551 §6, table 4).
    pub const fn payload_type(self) -> u8 {
        match self {
            Self::Mu => 0,
            Self::A => 8,
        }
    }

    /// The law for a static payload type, if it is one of the two.
    pub const fn from_payload_type(pt: u8) -> Option<Self> {
        match pt {
            0 => Some(Self::Mu),
            8 => Some(Self::A),
            _ => None,
        }
    }

    /// The code a silent sample encodes to (`0xFF` for µ-law, `0xD5` for A-law).
    pub const fn silence(self) -> u8 {
        match self {
            Self::Mu => 0xFF,
            Self::A => 0xD5,
        }
    }

    /// Decode one code.
    #[inline]
    pub fn decode(self, code: u8) -> i16 {
        match self {
            Self::Mu => ulaw_decode(code),
            Self::A => alaw_decode(code),
        }
    }

    /// Encode one sample.
    #[inline]
    pub fn encode(self, sample: i16) -> u8 {
        match self {
            Self::Mu => ulaw_encode(sample),
            Self::A => alaw_encode(sample),
        }
    }
}

/// Decode one µ-law code.
#[inline]
pub fn ulaw_decode(code: u8) -> i16 {
    ULAW_DECODE[usize::from(code)]
}

/// Decode one A-law code.
#[inline]
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_DECODE[usize::from(code)]
}

/// Encode one sample as µ-law (its 14 most significant bits count).
#[inline]
pub fn ulaw_encode(sample: i16) -> u8 {
    // The top 14 bits of the two's complement sample, as an unsigned index.
    ULAW_ENCODE[usize::from(sample as u16 >> 2)]
}

/// Encode one sample as A-law (its 13 most significant bits count).
#[inline]
pub fn alaw_encode(sample: i16) -> u8 {
    ALAW_ENCODE[usize::from(sample as u16 >> 3)]
}

/// Decode `src` into `dst`; returns the number of samples written, the shorter of the two lengths.
pub fn decode_into(law: Law, src: &[u8], dst: &mut [i16]) -> usize {
    let table = match law {
        Law::Mu => &ULAW_DECODE,
        Law::A => &ALAW_DECODE,
    };
    let n = src.len().min(dst.len());
    for (out, &code) in dst[..n].iter_mut().zip(&src[..n]) {
        *out = table[usize::from(code)];
    }
    n
}

/// Encode `src` into `dst`; returns the number of codes written, the shorter of the two lengths.
pub fn encode_into(law: Law, src: &[i16], dst: &mut [u8]) -> usize {
    let n = src.len().min(dst.len());
    match law {
        Law::Mu => {
            for (out, &s) in dst[..n].iter_mut().zip(&src[..n]) {
                *out = ULAW_ENCODE[usize::from(s as u16 >> 2)];
            }
        }
        Law::A => {
            for (out, &s) in dst[..n].iter_mut().zip(&src[..n]) {
                *out = ALAW_ENCODE[usize::from(s as u16 >> 3)];
            }
        }
    }
    n
}

/// The A-law code of the sample a µ-law code decodes to.
#[inline]
pub fn mu_to_a(code: u8) -> u8 {
    MU_TO_A[usize::from(code)]
}

/// The µ-law code of the sample an A-law code decodes to.
#[inline]
pub fn a_to_mu(code: u8) -> u8 {
    A_TO_MU[usize::from(code)]
}

/// Convert codes of law `from` in `src` to law `to` in `dst` (a copy when the
/// laws are the same); returns the number of codes written, the shorter of the
/// two lengths.
pub fn transcode_into(from: Law, to: Law, src: &[u8], dst: &mut [u8]) -> usize {
    let n = src.len().min(dst.len());
    let table = match (from, to) {
        (Law::Mu, Law::A) => &MU_TO_A,
        (Law::A, Law::Mu) => &A_TO_MU,
        _ => {
            dst[..n].copy_from_slice(&src[..n]);
            return n;
        }
    };
    for (out, &code) in dst[..n].iter_mut().zip(&src[..n]) {
        *out = table[usize::from(code)];
    }
    n
}

/// µ-law code → A-law code, through the linear sample.
static MU_TO_A: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = alaw_encode_calc(ulaw_decode_calc(c as u8));
        c += 1;
    }
    t
};

/// A-law code → µ-law code, through the linear sample.
static A_TO_MU: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = ulaw_encode_calc(alaw_decode_calc(c as u8));
        c += 1;
    }
    t
};

/// µ-law code → linear sample.
pub static ULAW_DECODE: [i16; 256] = {
    let mut t = [0i16; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = ulaw_decode_calc(c as u8);
        c += 1;
    }
    t
};

/// A-law code → linear sample.
pub static ALAW_DECODE: [i16; 256] = {
    let mut t = [0i16; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = alaw_decode_calc(c as u8);
        c += 1;
    }
    t
};

/// Indexed by the top 14 bits of the sample (`sample as u16 >> 2`).
static ULAW_ENCODE: [u8; 1 << 14] = {
    let mut t = [0u8; 1 << 14];
    let mut i = 0;
    while i < 1 << 14 {
        // `i << 2` as u16 → i16 is the smallest sample with these top bits.
        t[i] = ulaw_encode_calc((i << 2) as u16 as i16);
        i += 1;
    }
    t
};

/// Indexed by the top 13 bits of the sample (`sample as u16 >> 3`).
static ALAW_ENCODE: [u8; 1 << 13] = {
    let mut t = [0u8; 1 << 13];
    let mut i = 0;
    while i < 1 << 13 {
        t[i] = alaw_encode_calc((i << 3) as u16 as i16);
        i += 1;
    }
    t
};

/// G.711 table 2a: the code is stored inverted; segment `s` and mantissa `q` give the
/// 14-bit magnitude `((2q + 33) << s) - 33`, scaled here to 16 bits.
const fn ulaw_decode_calc(code: u8) -> i16 {
    let c = !code;
    let seg = (c >> 4) & 0x07;
    let q = (c & 0x0F) as i32;
    let magnitude = ((((q << 1) + 33) << seg) - 33) << 2;
    (if c & 0x80 != 0 { -magnitude } else { magnitude }) as i16
}

/// G.711 table 1a: even bits inverted (`^ 0x55`); segment 0 gives the 13-bit magnitude
/// `2q + 1`, segment `s > 0` gives `(2q + 33) << (s - 1)`; scaled here to 16 bits.
/// A set sign bit means positive.
const fn alaw_decode_calc(code: u8) -> i16 {
    let c = code ^ 0x55;
    let seg = (c >> 4) & 0x07;
    let q = (c & 0x0F) as i32;
    let magnitude = if seg == 0 {
        (q << 1) + 1
    } else {
        ((q << 1) + 33) << (seg - 1)
    } << 3;
    (if c & 0x80 != 0 { magnitude } else { -magnitude }) as i16
}

/// The µ-law encoder: bias by 33 (14-bit units), find the segment from the bit length,
/// keep four mantissa bits below the leading one, invert.
const fn ulaw_encode_calc(sample: i16) -> u8 {
    let p = (sample >> 2) as i32; // 14 bits: -8192..=8191
    let (mut mag, mask) = if p < 0 { (-p, 0x7F) } else { (p, 0xFF) };
    if mag > 8159 {
        mag = 8159; // 8159 + 33 = 0x2000, one past the largest segment
    }
    let biased = (mag + 33) as u32;
    let seg = 32 - (biased >> 6).leading_zeros();
    let code = if seg > 7 {
        0x7F
    } else {
        (seg << 4) | ((biased >> (seg + 1)) & 0x0F)
    };
    (code as u8) ^ mask
}

/// The A-law encoder: magnitude of the 13-bit value (one's complement for negatives),
/// segment from the bit length, four mantissa bits, even bits inverted.
const fn alaw_encode_calc(sample: i16) -> u8 {
    let p = (sample >> 3) as i32; // 13 bits: -4096..=4095
    let (mag, mask) = if p >= 0 {
        (p as u32, 0xD5)
    } else {
        ((-p - 1) as u32, 0x55)
    };
    let seg = 32 - (mag >> 5).leading_zeros(); // at most 7: mag <= 4095
    let q = if seg < 2 {
        (mag >> 1) & 0x0F
    } else {
        (mag >> seg) & 0x0F
    };
    (((seg << 4) | q) as u8) ^ mask
}

#[cfg(test)]
mod tests {
    use super::*;

    // The reference: Sun Microsystems' g711.c (public domain), transcribed literally.
    const SIGN_BIT: i32 = 0x80;
    const QUANT_MASK: i32 = 0x0F;
    const SEG_SHIFT: i32 = 4;
    const SEG_MASK: i32 = 0x70;
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 8159;
    const SEG_AEND: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
    const SEG_UEND: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];

    fn search(val: i32, table: &[i32; 8]) -> i32 {
        for (i, &end) in table.iter().enumerate() {
            if val <= end {
                return i as i32;
            }
        }
        8
    }

    fn sun_alaw2linear(a_val: u8) -> i16 {
        let a_val = i32::from(a_val) ^ 0x55;
        let mut t = (a_val & QUANT_MASK) << 4;
        let seg = (a_val & SEG_MASK) >> SEG_SHIFT;
        match seg {
            0 => t += 8,
            1 => t += 0x108,
            _ => {
                t += 0x108;
                t <<= seg - 1;
            }
        }
        (if a_val & SIGN_BIT != 0 { t } else { -t }) as i16
    }

    fn sun_ulaw2linear(u_val: u8) -> i16 {
        let u_val = i32::from(!u_val);
        let mut t = ((u_val & QUANT_MASK) << 3) + BIAS;
        t <<= (u_val & SEG_MASK) >> SEG_SHIFT;
        (if u_val & SIGN_BIT != 0 {
            BIAS - t
        } else {
            t - BIAS
        }) as i16
    }

    fn sun_linear2alaw(pcm_val: i16) -> u8 {
        let mut pcm_val = i32::from(pcm_val) >> 3;
        let mask;
        if pcm_val >= 0 {
            mask = 0xD5;
        } else {
            mask = 0x55;
            pcm_val = -pcm_val - 1;
        }
        let seg = search(pcm_val, &SEG_AEND);
        if seg >= 8 {
            return (0x7F ^ mask) as u8;
        }
        let mut aval = seg << SEG_SHIFT;
        if seg < 2 {
            aval |= (pcm_val >> 1) & QUANT_MASK;
        } else {
            aval |= (pcm_val >> seg) & QUANT_MASK;
        }
        (aval ^ mask) as u8
    }

    fn sun_linear2ulaw(pcm_val: i16) -> u8 {
        let mut pcm_val = i32::from(pcm_val) >> 2;
        let mask;
        if pcm_val < 0 {
            pcm_val = -pcm_val;
            mask = 0x7F;
        } else {
            mask = 0xFF;
        }
        if pcm_val > CLIP {
            pcm_val = CLIP;
        }
        pcm_val += BIAS >> 2;
        let seg = search(pcm_val, &SEG_UEND);
        if seg >= 8 {
            return (0x7F ^ mask) as u8;
        }
        let uval = (seg << 4) | ((pcm_val >> (seg + 1)) & 0x0F);
        (uval ^ mask) as u8
    }

    #[test]
    fn decode_matches_reference_on_all_codes() {
        for code in 0..=255u8 {
            assert_eq!(
                ulaw_decode(code),
                sun_ulaw2linear(code),
                "µ-law {code:#04x}"
            );
            assert_eq!(
                alaw_decode(code),
                sun_alaw2linear(code),
                "A-law {code:#04x}"
            );
        }
    }

    #[test]
    fn encode_matches_reference_on_all_samples() {
        for s in i16::MIN..=i16::MAX {
            assert_eq!(ulaw_encode(s), sun_linear2ulaw(s), "µ-law {s}");
            assert_eq!(alaw_encode(s), sun_linear2alaw(s), "A-law {s}");
        }
    }

    #[test]
    fn round_trip_every_code_except_mu_law_negative_zero() {
        for code in 0..=255u8 {
            let expected = if code == 0x7F { 0xFF } else { code };
            assert_eq!(
                ulaw_encode(ulaw_decode(code)),
                expected,
                "µ-law {code:#04x}"
            );
            assert_eq!(alaw_encode(alaw_decode(code)), code, "A-law {code:#04x}");
        }
        assert_eq!(ulaw_decode(0x7F), 0);
        assert_eq!(ulaw_decode(0xFF), 0);
    }

    /// Half the width of the quantisation interval a decoded value sits in.
    fn half_step(law: Law, decoded: i16) -> i32 {
        let code = law.encode(decoded);
        match law {
            Law::Mu => 4 << ((!code >> 4) & 7),
            Law::A => {
                let seg = ((code ^ 0x55) >> 4) & 7;
                8 << seg.saturating_sub(1)
            }
        }
    }

    #[test]
    fn full_scale_ramp_within_quantisation_error() {
        for law in [Law::Mu, Law::A] {
            let max = i32::from(law.decode(if law == Law::Mu { 0x80 } else { 0xAA }));
            let mut previous = i16::MIN;
            for x in i16::MIN..=i16::MAX {
                let y = law.decode(law.encode(x));
                assert!(y >= previous, "{law:?} not monotonic at {x}");
                previous = y;
                let (x, y) = (i32::from(x), i32::from(y));
                if x.abs() <= max {
                    // G.711 keeps 14 (µ) or 13 (A) bits; the dropped low bits add to the error.
                    let dropped = if law == Law::Mu { 3 } else { 7 };
                    let bound = half_step(law, y as i16) + dropped;
                    assert!((x - y).abs() <= bound, "{law:?} x={x} y={y} bound={bound}");
                } else {
                    assert_eq!(y.abs(), max, "{law:?} saturates at {x}");
                }
            }
        }
    }

    #[test]
    fn slices_round_trip_and_report_length() {
        let pcm: Vec<i16> = (0..160)
            .map(|i| ((i * 409) % 65536 - 32768) as i16)
            .collect();
        for law in [Law::Mu, Law::A] {
            let mut coded = [0u8; 160];
            assert_eq!(encode_into(law, &pcm, &mut coded), 160);
            let mut back = [0i16; 160];
            assert_eq!(decode_into(law, &coded, &mut back), 160);
            for (i, (&c, &b)) in coded.iter().zip(&back).enumerate() {
                assert_eq!(c, law.encode(pcm[i]));
                assert_eq!(b, law.decode(c));
            }
            let mut short = [0i16; 10];
            assert_eq!(decode_into(law, &coded, &mut short), 10);
        }
    }

    #[test]
    fn transcoding_tables_are_decode_then_encode() {
        for code in 0..=255u8 {
            assert_eq!(mu_to_a(code), alaw_encode(ulaw_decode(code)), "{code:#04x}");
            assert_eq!(a_to_mu(code), ulaw_encode(alaw_decode(code)), "{code:#04x}");
        }
        let src: Vec<u8> = (0..=255).collect();
        let mut dst = [0u8; 256];
        for (from, to) in [(Law::Mu, Law::A), (Law::A, Law::Mu), (Law::A, Law::A)] {
            assert_eq!(transcode_into(from, to, &src, &mut dst), 256);
            for (&c, &t) in src.iter().zip(&dst) {
                assert_eq!(t, to.encode(from.decode(c)), "{from:?}→{to:?} {c:#04x}");
            }
        }
        assert_eq!(transcode_into(Law::Mu, Law::A, &src, &mut dst[..10]), 10);
        // Silence stays silence; A-law has no zero, its quietest code (+8) becomes
        // µ-law's +8.
        assert_eq!(mu_to_a(Law::Mu.silence()), Law::A.silence());
        assert_eq!(ulaw_decode(a_to_mu(Law::A.silence())), 8);
    }

    #[test]
    fn transcoding_error_is_one_requantisation() {
        // Going through the other law moves a decoded sample by at most half a
        // step of the target law (plus the bits it drops).
        for (from, to) in [(Law::Mu, Law::A), (Law::A, Law::Mu)] {
            for code in 0..=255u8 {
                let x = from.decode(code);
                let mut out = [0u8; 1];
                transcode_into(from, to, &[code], &mut out);
                let y = to.decode(out[0]);
                let max = i32::from(to.decode(if to == Law::Mu { 0x80 } else { 0xAA }));
                if i32::from(x).abs() > max {
                    assert_eq!(i32::from(y).abs(), max);
                    continue;
                }
                let dropped = if to == Law::Mu { 3 } else { 7 };
                let bound = half_step(to, y) + dropped;
                assert!(
                    (i32::from(x) - i32::from(y)).abs() <= bound,
                    "{from:?}→{to:?} {code:#04x}: {x} → {y}"
                );
            }
        }
    }

    #[test]
    fn payload_types_and_silence() {
        assert_eq!(Law::from_payload_type(0), Some(Law::Mu));
        assert_eq!(Law::from_payload_type(8), Some(Law::A));
        assert_eq!(Law::from_payload_type(18), None);
        assert_eq!(Law::A.payload_type(), 8);
        assert_eq!(ulaw_encode(0), Law::Mu.silence());
        assert_eq!(alaw_encode(0), Law::A.silence());
    }
}
