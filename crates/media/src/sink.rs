//! Where a recording's samples go: [`AudioSink`], written by the session (a
//! message) and the conversation mixer, and [`RecordSink`], the in-memory sink
//! that carries the samples from the media loop to a recording writer.
//!
//! The media loop never touches a file: it writes into a [`RecordSink`], and
//! the shell [`take`](RecordSink::take)s what gathered (every 100 ms or so) and
//! hands it to the thread that owns the [`Recorder`].
//! When that thread fails to write (a full disk), it raises the sink's
//! [`failure flag`](RecordSink::failure_flag): the next write is refused with
//! [`MediaError::RecordingFailed`] and the recording ends with what reached the
//! disk, as a [`Recorder`] write error does.
//!
//! The sink also counts the sample frames it was given as silence
//! ([`write_silence`](AudioSink::write_silence)): for a message these are the
//! gaps the reorder buffer filled (lost or missing caller packets) and the
//! padding to the wall-clock end, the milliseconds the caller said that the
//! recording does not hold.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::MediaError;
use crate::recorder::{Recorder, RecorderError, SAMPLE_RATE};

/// Something that takes 8 kHz 16-bit samples for one recording.
pub trait AudioSink {
    /// Why a write was refused.
    type Error;
    /// Appends mono samples.
    fn write_frame(&mut self, samples: &[i16]) -> Result<(), Self::Error>;
    /// Appends a stereo frame: `left` and `right`, the shorter padded with silence.
    fn write_stereo(&mut self, left: &[i16], right: &[i16]) -> Result<(), Self::Error>;
    /// Appends `frames` sample frames of silence on every channel.
    fn write_silence(&mut self, frames: u32) -> Result<(), Self::Error>;
}

impl AudioSink for Recorder {
    type Error = RecorderError;

    fn write_frame(&mut self, samples: &[i16]) -> Result<(), RecorderError> {
        Recorder::write_frame(self, samples)
    }

    fn write_stereo(&mut self, left: &[i16], right: &[i16]) -> Result<(), RecorderError> {
        Recorder::write_stereo(self, left, right)
    }

    fn write_silence(&mut self, frames: u32) -> Result<(), RecorderError> {
        Recorder::write_silence(self, frames)
    }
}

/// A recording's samples in memory, until the shell takes them for the writer.
/// Interleaved when stereo (left, right, left, ...). See the [module docs](self).
#[derive(Debug)]
pub struct RecordSink {
    channels: u16,
    pcm: Vec<i16>,
    /// The capacity a fresh buffer gets after [`take`](Self::take).
    batch: usize,
    /// Sample frames accepted so far.
    frames: u64,
    /// Of those, frames written as silence.
    silence: u64,
    failed: Arc<AtomicBool>,
}

impl RecordSink {
    /// A sink for `channels` channels (1 or 2) whose buffer holds `batch_frames`
    /// sample frames before it grows.
    pub fn new(channels: u16, batch_frames: usize) -> Self {
        let channels = channels.clamp(1, 2);
        let batch = batch_frames.max(160) * usize::from(channels);
        Self {
            channels,
            pcm: Vec::with_capacity(batch),
            batch,
            frames: 0,
            silence: 0,
            failed: Arc::default(),
        }
    }

    /// The flag the writer raises when the recording can take no more audio.
    pub fn failure_flag(&self) -> Arc<AtomicBool> {
        self.failed.clone()
    }

    /// Whether the writer failed.
    pub fn has_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// The samples gathered since the last take (interleaved when stereo); the
    /// sink goes on with an empty buffer.
    pub fn take(&mut self) -> Vec<i16> {
        std::mem::replace(&mut self.pcm, Vec::with_capacity(self.batch))
    }

    /// Sample frames waiting to be taken.
    pub fn pending_frames(&self) -> usize {
        self.pcm.len() / usize::from(self.channels)
    }

    /// 1 or 2.
    pub fn channels(&self) -> u16 {
        self.channels
    }

    /// Sample frames accepted so far (8000 is one second).
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// The length accepted so far, in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        self.frames * 1000 / u64::from(SAMPLE_RATE)
    }

    /// Milliseconds written as silence: for a message, audio the caller sent that
    /// never arrived (filled gaps, and the padding to the end).
    pub fn silence_ms(&self) -> u64 {
        self.silence * 1000 / u64::from(SAMPLE_RATE)
    }

    fn check(&self, channels: u16) -> Result<(), MediaError> {
        if self.has_failed() {
            return Err(MediaError::RecordingFailed);
        }
        if channels != self.channels {
            return Err(MediaError::RecordingChannels(self.channels));
        }
        Ok(())
    }
}

impl AudioSink for RecordSink {
    type Error = MediaError;

    fn write_frame(&mut self, samples: &[i16]) -> Result<(), MediaError> {
        self.check(1)?;
        self.pcm.extend_from_slice(samples);
        self.frames += samples.len() as u64;
        Ok(())
    }

    fn write_stereo(&mut self, left: &[i16], right: &[i16]) -> Result<(), MediaError> {
        self.check(2)?;
        let n = left.len().max(right.len());
        self.pcm.reserve(2 * n);
        for i in 0..n {
            self.pcm.push(left.get(i).copied().unwrap_or(0));
            self.pcm.push(right.get(i).copied().unwrap_or(0));
        }
        self.frames += n as u64;
        Ok(())
    }

    fn write_silence(&mut self, frames: u32) -> Result<(), MediaError> {
        if self.has_failed() {
            return Err(MediaError::RecordingFailed);
        }
        let n = frames as usize * usize::from(self.channels);
        self.pcm.resize(self.pcm.len() + n, 0);
        self.frames += u64::from(frames);
        self.silence += u64::from(frames);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gathers_counts_and_hands_over() {
        let mut s = RecordSink::new(1, 800);
        s.write_frame(&[1; 160]).unwrap();
        s.write_silence(80).unwrap();
        assert_eq!(s.frames(), 240);
        assert_eq!(s.silence_ms(), 10);
        assert_eq!(s.duration_ms(), 30);
        let taken = s.take();
        assert_eq!(taken.len(), 240);
        assert!(taken[..160].iter().all(|&x| x == 1) && taken[160..].iter().all(|&x| x == 0));
        assert_eq!(s.pending_frames(), 0);
        assert_eq!(s.frames(), 240, "totals survive a take");
    }

    #[test]
    fn stereo_interleaves_and_pads_the_shorter_side() {
        let mut s = RecordSink::new(2, 160);
        s.write_stereo(&[1, 2, 3], &[9]).unwrap();
        assert_eq!(s.take(), vec![1, 9, 2, 0, 3, 0]);
        assert_eq!(s.frames(), 3);
        assert_eq!(
            s.write_frame(&[1]),
            Err(MediaError::RecordingChannels(2)),
            "a mono write to a stereo sink is refused"
        );
    }

    #[test]
    fn a_failed_writer_refuses_more_audio() {
        let mut s = RecordSink::new(1, 160);
        s.failure_flag().store(true, Ordering::Release);
        assert_eq!(s.write_frame(&[0; 160]), Err(MediaError::RecordingFailed));
        assert_eq!(s.write_silence(160), Err(MediaError::RecordingFailed));
        assert_eq!(s.frames(), 0);
    }
}
