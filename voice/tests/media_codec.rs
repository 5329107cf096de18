//! G.711 and resampler behaviour through the public API.

use fd_voice::media::g711::{alaw_decode, alaw_encode, ulaw_decode, ulaw_encode};
use fd_voice::media::{Codec, Resampler};

fn tone(freq: f64, rate: u32, secs: f64, amp: f64) -> Vec<i16> {
    let n = (rate as f64 * secs) as usize;
    (0..n).map(|i| (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64).sin()).round() as i16).collect()
}

/// Amplitude of the `freq` component (least-squares fit of sin+cos) and RMS of what is left over.
fn fit(samples: &[i16], freq: f64, rate: u32) -> (f64, f64) {
    let (mut s, mut c) = (0.0, 0.0);
    for (i, &x) in samples.iter().enumerate() {
        let w = 2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64;
        s += x as f64 * w.sin();
        c += x as f64 * w.cos();
    }
    let n = samples.len() as f64;
    let (a, b) = (2.0 * s / n, 2.0 * c / n);
    let mut resid = 0.0;
    for (i, &x) in samples.iter().enumerate() {
        let w = 2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64;
        let r = x as f64 - a * w.sin() - b * w.cos();
        resid += r * r;
    }
    ((a * a + b * b).sqrt(), (resid / n).sqrt())
}

fn rms(s: &[i16]) -> f64 {
    (s.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / s.len().max(1) as f64).sqrt()
}

fn convert(from: u32, to: u32, input: &[i16]) -> Vec<i16> {
    let mut r = Resampler::new(from, to).expect("valid rates");
    let mut out = Vec::new();
    r.process(input, &mut out);
    out
}

#[test]
fn g711_codecs_round_trip_speech_range_samples() {
    for codec in [Codec::Pcmu, Codec::Pcma] {
        let input = tone(440.0, 8000, 0.1, 12000.0);
        let mut enc = Vec::new();
        codec.encode_into(&input, &mut enc);
        let mut dec = Vec::new();
        codec.decode_into(&enc, &mut dec);
        let (amp, resid) = fit(&dec, 440.0, 8000);
        assert!((amp - 12000.0).abs() < 120.0, "{codec:?} amplitude {amp}");
        // G.711 SNR is about 38 dB for a full-scale-ish tone.
        assert!(resid < 12000.0 / 50.0, "{codec:?} residual {resid}");
        let mut silence = Vec::new();
        codec.encode_into(&[0; 4], &mut silence);
        assert_eq!(silence, vec![codec.silence_byte(); 4]);
    }
    // Decoded values are fixed points of the codec.
    for code in [0x00u8, 0x35, 0x80, 0xC7, 0xFE] {
        assert_eq!(ulaw_encode(ulaw_decode(code)), code);
        assert_eq!(alaw_encode(alaw_decode(code)), code);
    }
}

#[test]
fn a_1khz_tone_keeps_frequency_and_amplitude_through_every_conversion() {
    for (from, to) in [(8000, 16000), (16000, 8000), (22050, 16000), (22050, 8000)] {
        let input = tone(1000.0, from, 1.0, 10000.0);
        let out = convert(from, to, &input);
        let expected_len = input.len() as f64 * to as f64 / from as f64;
        assert!((out.len() as f64 - expected_len).abs() <= 2.0 + expected_len * 0.01, "{from}->{to}: {} samples", out.len());
        // Skip the filter's start-up and the unfinished tail.
        let steady = &out[out.len() / 10..out.len() * 9 / 10];
        let (amp, resid) = fit(steady, 1000.0, to);
        assert!((amp / 10000.0 - 1.0).abs() < 0.02, "{from}->{to}: amplitude {amp}");
        assert!(resid < 100.0, "{from}->{to}: residual {resid} (other frequencies present)");
    }
}

#[test]
fn a_6khz_tone_is_removed_when_going_to_8khz() {
    for from in [16000, 22050] {
        let input = tone(6000.0, from, 1.0, 10000.0);
        let out = convert(from, 8000, &input);
        let steady = &out[out.len() / 10..out.len() * 9 / 10];
        // At least 50 dB down (10000 → < 32).
        assert!(rms(steady) < 32.0, "{from}->8000: rms {}", rms(steady));
    }
    // 8 kHz → 16 kHz must not create an image of a 3 kHz tone at 5 kHz.
    let out = convert(8000, 16000, &tone(3000.0, 8000, 1.0, 10000.0));
    let steady = &out[out.len() / 10..out.len() * 9 / 10];
    let (image, _) = fit(steady, 5000.0, 16000);
    assert!(image < 30.0, "image at 5 kHz: {image}");
}

#[test]
fn streaming_in_20ms_chunks_equals_one_shot() {
    for (from, to) in [(8000u32, 16000u32), (16000, 8000), (22050, 16000), (22050, 8000)] {
        let input = tone(700.0, from, 0.5, 8000.0);
        let whole = convert(from, to, &input);
        let mut r = Resampler::new(from, to).expect("valid rates");
        let mut streamed = Vec::new();
        let chunk = (from / 50) as usize;
        for c in input.chunks(chunk) {
            r.process(c, &mut streamed);
        }
        assert_eq!(streamed, whole, "{from}->{to}");
        // Odd chunk sizes too (Piper hands over arbitrary lengths).
        let mut r = Resampler::new(from, to).expect("valid rates");
        let mut odd = Vec::new();
        let mut rest = &input[..];
        let mut k = 1;
        while !rest.is_empty() {
            let n = (k * 37 % 301).min(rest.len());
            r.process(&rest[..n], &mut odd);
            rest = &rest[n..];
            k += 1;
        }
        assert_eq!(odd, whole, "{from}->{to} odd chunks");
    }
}

#[test]
fn resampler_survives_extremes() {
    assert!(Resampler::new(0, 8000).is_none());
    let mut r = Resampler::new(16000, 8000).expect("valid rates");
    let mut out = Vec::new();
    r.process(&[i16::MAX; 1000], &mut out);
    r.process(&[i16::MIN; 1000], &mut out);
    r.process(&[], &mut out);
    assert_eq!(out.len(), 1000);
    let mut same = Resampler::new(8000, 8000).expect("valid rates");
    let mut o = Vec::new();
    same.process(&[1, 2, 3], &mut o);
    assert_eq!(o, vec![1, 2, 3]);
}

/// Encodes then decodes with one stream encoder/decoder, fed 20 ms at a time as RTP would.
fn g722_round_trip(input: &[i16]) -> (Vec<u8>, Vec<i16>) {
    let mut enc = fd_voice::media::Encoder::new(Codec::G722);
    let mut dec = fd_voice::media::Decoder::new(Codec::G722);
    let (mut bytes, mut out) = (Vec::new(), Vec::new());
    for chunk in input.chunks(320) {
        let start = bytes.len();
        enc.encode_into(chunk, &mut bytes);
        dec.decode_into(&bytes[start..], &mut out);
    }
    (bytes, out)
}

/// The lag (in samples) at which `out` best matches `input`, and the normalised correlation there.
fn best_lag(input: &[i16], out: &[i16], max_lag: usize) -> (usize, f64) {
    let n = input.len() - max_lag;
    (0..max_lag)
        .map(|lag| {
            let (mut xy, mut xx, mut yy) = (0.0, 0.0, 0.0);
            for i in 0..n {
                let (x, y) = (input[i] as f64, out[i + lag] as f64);
                xy += x * y;
                xx += x * x;
                yy += y * y;
            }
            (lag, xy / (xx * yy).sqrt().max(1.0))
        })
        .fold((0, f64::MIN), |b, c| if c.1 > b.1 { c } else { b })
}

/// Round-trip delay of the two 24-tap QMFs (the SpanDSP reference measures the same 22 samples,
/// 1.375 ms); the ADPCM itself adds none.
const G722_DELAY: usize = 22;

#[test]
fn g722_round_trip_of_a_sweep_is_faithful_and_delayed_only_by_the_qmf() {
    // A 100 Hz → 7 kHz sweep: aperiodic, so the correlation peak is unambiguous, and it crosses both sub-bands.
    let n = 32_000;
    let input: Vec<i16> = (0..n)
        .map(|i| {
            let t = i as f64 / 16_000.0;
            let phase = 2.0 * std::f64::consts::PI * (100.0 * t + (6900.0 / 4.0) * t * t);
            (6000.0 * phase.sin()).round() as i16
        })
        .collect();
    let (_, out) = g722_round_trip(&input);
    let (lag, corr) = best_lag(&input, &out, 200);
    println!("G.722 sweep: delay {lag} samples, correlation {corr:.3}");
    assert_eq!(lag, G722_DELAY);
    assert!(corr > 0.9, "correlation {corr}");
}

#[test]
fn g722_keeps_low_and_high_band_tones_in_frequency_level_and_time() {
    assert_eq!((Codec::G722.sample_rate(), Codec::G722.clock_rate(), Codec::G722.static_payload_type()), (16_000, 8000, 9));
    // 1 kHz sits in the lower sub-band (0–4 kHz, 6 bits/sample), 5 kHz in the upper one (2 bits).
    for (freq, min_snr_db) in [(1000.0, 40.0), (5000.0, 18.0)] {
        let input = tone(freq, 16_000, 1.0, 8000.0);
        let (bytes, out) = g722_round_trip(&input);
        assert_eq!(bytes.len(), input.len() / 2, "64 kbit/s: one octet per two samples");
        assert_eq!(out.len(), input.len());
        let (lag, corr) = best_lag(&input, &out, G722_DELAY + 1);
        assert_eq!(lag, G722_DELAY, "{freq} Hz: round-trip delay");
        assert!(corr > 0.95, "{freq} Hz: correlation {corr}");
        // Skip the ADPCM start-up (first 50 ms) and compare the settled part.
        let settled = &out[800..];
        let (amp, resid) = fit(settled, freq, 16_000);
        let level_db = 20.0 * (amp / 8000.0).log10();
        let snr_db = 20.0 * (amp / std::f64::consts::SQRT_2 / resid).log10();
        println!("G.722 {freq} Hz: level {level_db:+.2} dB, SNR {snr_db:.1} dB, delay {lag} samples");
        assert!(level_db.abs() < 1.0, "{freq} Hz: level {level_db:.2} dB");
        assert!(snr_db > min_snr_db, "{freq} Hz: SNR {snr_db:.1} dB");
        // A narrowband codec could not carry 5 kHz at all: make sure it is not aliased to 3 kHz.
        let (alias, _) = fit(settled, 8000.0 - freq, 16_000);
        assert!(alias < amp / 30.0, "{freq} Hz: image at {} Hz of {alias}", 8000.0 - freq);
    }
}

#[test]
fn g722_silence_stays_silent_and_any_bytes_decode() {
    let (_, out) = g722_round_trip(&vec![0i16; 16_000]);
    assert!(rms(&out[800..]) < 10.0, "silence decodes to {}", rms(&out[800..]));
    // Arbitrary (corrupt) payloads decode to bounded audio without panicking.
    let mut dec = fd_voice::media::Decoder::new(Codec::G722);
    let noise: Vec<u8> = (0..4000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let mut out = Vec::new();
    dec.decode_into(&noise, &mut out);
    assert_eq!(out.len(), 8000);
    // After garbage, real audio is tracked again within a fraction of a second (ADPCM re-adapts).
    let input = tone(1000.0, 16_000, 1.0, 8000.0);
    let mut enc = fd_voice::media::Encoder::new(Codec::G722);
    let mut bytes = Vec::new();
    enc.encode_into(&input, &mut bytes);
    out.clear();
    dec.decode_into(&bytes, &mut out);
    let (amp, _) = fit(&out[8000..], 1000.0, 16_000);
    assert!((20.0 * (amp / 8000.0).log10()).abs() < 1.0, "recovered amplitude {amp}");
}

#[test]
fn g722_odd_length_input_is_carried_over_not_dropped() {
    let input = tone(1000.0, 16_000, 0.1, 8000.0);
    let mut whole = Vec::new();
    fd_voice::media::Encoder::new(Codec::G722).encode_into(&input, &mut whole);
    let mut split = Vec::new();
    let mut enc = fd_voice::media::Encoder::new(Codec::G722);
    for chunk in input.chunks(317) {
        enc.encode_into(chunk, &mut split);
    }
    assert_eq!(whole, split);
}

#[test]
fn codec_names_parse_case_insensitively() {
    assert_eq!(Codec::from_name("g722"), Some(Codec::G722));
    assert_eq!(Codec::from_name("PCMU"), Some(Codec::Pcmu));
    assert_eq!(Codec::from_name(" pcma "), Some(Codec::Pcma));
    assert_eq!(Codec::from_name("opus"), None);
}
