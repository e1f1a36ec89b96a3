//! The per-packet "frame out" path of a call, and what one call's prompt costs.
//!
//! `frame_out/*`: one pacer tick, one frame from the player, one RTP packet built
//! into the send buffer, and the lateness recorded: everything the call task does
//! every 20 ms before `send_to`. `prompt/*`: what a call pays to start a prompt
//! (an `Arc` clone and a queue push) and to copy a whole prompt's frames out,
//! against the load-time cost of resampling and encoding it once.

use std::hint::black_box;
use std::io::Cursor;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hotline_media::g711::Law;
use hotline_media::pacer::{LatenessHistogram, Pacer};
use hotline_media::player::Player;
use hotline_media::prompt::{FRAME_SAMPLES, Prompt};
use hotline_media::rtp::{HEADER_LEN, RtpSender};

const PTIME: Duration = Duration::from_millis(20);

/// Ten seconds of a two-tone chord at 8 kHz.
fn test_prompt() -> Arc<Prompt> {
    let pcm = (0..80_000)
        .map(|i| {
            let t = i as f32 / 8000.0;
            let x = 0.3 * (std::f32::consts::TAU * 440.0 * t).sin()
                + 0.2 * (std::f32::consts::TAU * 660.0 * t).sin();
            (x * 32767.0) as i16
        })
        .collect();
    Arc::new(Prompt::from_pcm(pcm))
}

/// Ten seconds of 44.1 kHz stereo 16-bit WAV, as the binary would read from disk.
fn test_wav() -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 44_100,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut bytes = Vec::new();
    let mut w = hound::WavWriter::new(Cursor::new(&mut bytes), spec).expect("in-memory WAV");
    for i in 0..441_000 {
        let s = ((i as f32 * 0.0627).sin() * 12_000.0) as i16;
        w.write_sample(s).expect("in-memory WAV");
        w.write_sample(s).expect("in-memory WAV");
    }
    w.finalize().expect("in-memory WAV");
    bytes
}

fn frame_out(c: &mut Criterion) {
    let prompt = test_prompt();
    let mut group = c.benchmark_group("frame_out");
    group.throughput(Throughput::Elements(1));

    for law in [Law::Mu, Law::A] {
        group.bench_function(format!("{law:?}"), |b| {
            let t0 = Instant::now();
            let mut pacer = Pacer::new(t0, PTIME);
            let mut player = Player::new();
            player.enqueue(Arc::clone(&prompt));
            player.set_loop(true);
            let mut rtp = RtpSender::new(0x1234_5678, 1, 0);
            let mut hist = LatenessHistogram::new();
            let mut buf = [0u8; 1500];
            b.iter(|| {
                // A fake clock 300 µs behind every deadline.
                let now = pacer.poll_timeout() + Duration::from_micros(300);
                let tick = pacer.handle_timeout(black_box(now));
                hist.record(tick.lateness);
                rtp.advance_silence(tick.skipped * FRAME_SAMPLES as u32);
                let mut len = 0;
                if tick.send
                    && let Some(frame) = player.next_frame(law)
                {
                    len = rtp
                        .packet_into(law.payload_type(), false, frame, &mut buf)
                        .expect("1500-byte buffer");
                }
                while let Some(e) = player.poll_event() {
                    black_box(e);
                }
                black_box(&buf[..len]);
            });
        });
    }

    // The silent tick: the player is idle, only the timestamp moves.
    group.bench_function("idle", |b| {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(t0, PTIME);
        let mut player = Player::new();
        let mut rtp = RtpSender::new(1, 1, 0);
        b.iter(|| {
            let tick = pacer.handle_timeout(black_box(pacer.poll_timeout()));
            let sent = tick.send && player.next_frame(Law::A).is_some();
            if !sent {
                rtp.advance_silence((tick.skipped + 1) * FRAME_SAMPLES as u32);
            }
            black_box(rtp.timestamp());
        });
    });
    group.finish();
}

fn prompt_cost(c: &mut Criterion) {
    let prompt = test_prompt();
    let frames = prompt.frame_count() as u64;
    let mut group = c.benchmark_group("prompt");

    group.bench_function("start", |b| {
        let mut player = Player::new();
        b.iter(|| {
            player.play_now(Arc::clone(black_box(&prompt)));
        });
    });

    group.throughput(Throughput::Elements(frames));
    group.bench_function("copy_10s_frames", |b| {
        let mut player = Player::new();
        let mut out = [0u8; HEADER_LEN + FRAME_SAMPLES];
        b.iter(|| {
            player.play_now(Arc::clone(&prompt));
            while let Some(frame) = player.next_frame(Law::A) {
                out[HEADER_LEN..].copy_from_slice(frame);
                black_box(&out);
            }
        });
    });
    group.finish();

    let wav = test_wav();
    let mut group = c.benchmark_group("prompt_load");
    group.sample_size(10);
    group.bench_function("wav_44k1_stereo_10s", |b| {
        b.iter(|| Prompt::from_wav(black_box(&wav[..])).expect("valid WAV"));
    });
    group.finish();
}

criterion_group!(benches, frame_out, prompt_cost);
criterion_main!(benches);
