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
