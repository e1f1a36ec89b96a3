//! The per-call prompt player: a queue of prompts, one 20 ms frame per tick.
//!
//! The call task asks for a frame each time its [`Pacer`](crate::pacer::Pacer)
//! says one is due. A frame is a borrowed slice of the shared, pre-encoded
//! [`Prompt`]: nothing is decoded, encoded or allocated per frame. When nothing is
//! queued the player is idle and [`Player::next_frame`] returns `None`: the call
//! sends nothing (silence suppression) and lets the RTP timestamp run on with
//! [`RtpSender::advance_silence`](crate::rtp::RtpSender::advance_silence).
//!
//! Looping is for hold music: with [`Player::set_loop`] on, the last prompt in the
//! queue starts again when it ends, until something else is queued behind it or
//! the player is stopped. So `enqueue(position)`, `enqueue(music)`, `set_loop(true)`
//! announces the queue position once and then plays the music until the flow
//! says otherwise.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::g711::Law;
use crate::prompt::{Frame, Prompt};

/// Prompts a player holds before its queue has to grow.
const QUEUE_CAPACITY: usize = 8;
/// Events a player holds before it drops the oldest; the shell drains them after
/// every frame, so a full queue means it stopped listening.
const EVENT_CAPACITY: usize = 16;

/// Names one [`Player::enqueue`] or [`Player::play_now`], so the flow can tell
/// which prompt finished. Unique within one player.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlayId(pub u64);

/// What a player reports through [`Player::poll_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlayerEvent {
    /// The last frame of this prompt was taken. A looping prompt reports each pass.
    /// A prompt cut short by [`Player::stop`] or [`Player::play_now`] does not finish.
    PromptFinished(PlayId),
}

/// One queued prompt.
#[derive(Debug)]
struct Entry {
    id: PlayId,
    prompt: Arc<Prompt>,
}

/// Plays prompts for one call, one frame at a time.
#[derive(Debug)]
pub struct Player {
    /// The front is playing; it stays until the frame after its last one is asked for.
    queue: VecDeque<Entry>,
    /// The next frame of the front prompt.
    position: usize,
    looping: bool,
    events: VecDeque<PlayerEvent>,
    next_id: u64,
}

impl Player {
    /// An idle player; its buffers are sized here, once per call.
    pub fn new() -> Self {
        Self {
            queue: VecDeque::with_capacity(QUEUE_CAPACITY),
            position: 0,
            looping: false,
            events: VecDeque::with_capacity(EVENT_CAPACITY),
            next_id: 0,
        }
    }

    /// Play `prompt` after everything already queued.
    pub fn enqueue(&mut self, prompt: Arc<Prompt>) -> PlayId {
        // Drop a finished front first, so it does not count as "something queued
        // behind" a looping prompt and the queue does not grow by stale entries.
        self.advance();
        let id = PlayId(self.next_id);
        self.next_id += 1;
        self.queue.push_back(Entry { id, prompt });
        id
    }

    /// Play `prompt` from the next frame on, dropping whatever was playing or queued.
    pub fn play_now(&mut self, prompt: Arc<Prompt>) -> PlayId {
        self.stop();
        self.enqueue(prompt)
    }

    /// Barge-in: drop the playing prompt and the queue; the next frame is silence.
    /// Looping stays as it was set.
    pub fn stop(&mut self) {
        self.queue.clear();
        self.position = 0;
    }

    /// Whether the last prompt in the queue starts again when it ends.
    pub fn set_loop(&mut self, looping: bool) {
        self.looping = looping;
    }

    /// The next 20 ms frame in `law`, or `None` when there is nothing to play.
    ///
    /// Taking the last frame of a prompt queues [`PlayerEvent::PromptFinished`].
    pub fn next_frame(&mut self, law: Law) -> Option<&Frame> {
        self.advance();
        let entry = self.queue.front()?;
        let frames = entry.prompt.frames(law);
        // `advance` leaves the front with a frame at `position`.
        let frame = &frames[self.position];
        self.position += 1;
        if self.position == frames.len() {
            push_event(&mut self.events, PlayerEvent::PromptFinished(entry.id));
        }
        Some(frame)
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<PlayerEvent> {
        self.events.pop_front()
    }

    /// Nothing left to play: the next [`next_frame`](Self::next_frame) returns `None`.
    pub fn is_idle(&self) -> bool {
        let mut entries = self.queue.iter();
        let Some(front) = entries.next() else {
            return true;
        };
        let len = front.prompt.frame_count();
        let front_done =
            self.position >= len && !(self.looping && self.queue.len() == 1 && len > 0);
        front_done && entries.all(|e| e.prompt.frame_count() == 0)
    }

    /// The prompt playing now (or whose last frame was just taken).
    pub fn current(&self) -> Option<PlayId> {
        self.queue.front().map(|e| e.id)
    }

    /// Drop a finished front prompt, or restart it if it loops, until the front has
    /// a frame to play or the queue is empty. Prompts with no frames finish here.
    fn advance(&mut self) {
        while let Some(front) = self.queue.front() {
            let len = front.prompt.frame_count();
            if self.position < len {
                return;
            }
            if len == 0 {
                push_event(&mut self.events, PlayerEvent::PromptFinished(front.id));
            } else if self.looping && self.queue.len() == 1 {
                self.position = 0;
                return;
            }
            self.queue.pop_front();
            self.position = 0;
        }
    }
}

impl Default for Player {
    fn default() -> Self {
        Self::new()
    }
}

/// Queue an event without growing the buffer: the oldest goes if it is full.
fn push_event(events: &mut VecDeque<PlayerEvent>, event: PlayerEvent) {
    if events.len() == EVENT_CAPACITY {
        events.pop_front();
    }
    events.push_back(event);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompt::FRAME_SAMPLES;

    /// A prompt of `frames` frames; every sample of frame `i` is the one whose A-law
    /// code is `base + i` (A-law round-trips every code, so frames name themselves).
    fn prompt(frames: usize, base: u8) -> Arc<Prompt> {
        let pcm = (0..frames * FRAME_SAMPLES)
            .map(|s| Law::A.decode(base + (s / FRAME_SAMPLES) as u8))
            .collect();
        Arc::new(Prompt::from_pcm(pcm))
    }

    /// The A-law code of each frame the player gives, until it is idle or `max`
    /// frames were taken.
    fn drain(player: &mut Player, max: usize) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(f) = player.next_frame(Law::A) {
            out.push(f[0]);
            if out.len() == max {
                break;
            }
        }
        out
    }

    fn events(player: &mut Player) -> Vec<PlayerEvent> {
        std::iter::from_fn(|| player.poll_event()).collect()
    }

    #[test]
    fn plays_the_queue_in_order_then_idles() {
        let mut p = Player::new();
        assert!(p.is_idle());
        assert!(p.next_frame(Law::Mu).is_none());
        let a = p.enqueue(prompt(2, 10));
        let b = p.enqueue(prompt(3, 20));
        assert!(!p.is_idle());
        assert_eq!(p.current(), Some(a));

        assert_eq!(drain(&mut p, 2), [10, 11]);
        assert_eq!(events(&mut p), [PlayerEvent::PromptFinished(a)]);
        assert_eq!(drain(&mut p, 10), [20, 21, 22]);
        assert_eq!(events(&mut p), [PlayerEvent::PromptFinished(b)]);
        assert!(p.is_idle());
        assert!(p.next_frame(Law::A).is_none());
        assert_eq!(p.current(), None);
    }

    #[test]
    fn finish_is_reported_with_the_last_frame() {
        let mut p = Player::new();
        let a = p.enqueue(prompt(2, 1));
        p.next_frame(Law::Mu).unwrap();
        assert_eq!(p.poll_event(), None);
        p.next_frame(Law::Mu).unwrap();
        assert_eq!(p.poll_event(), Some(PlayerEvent::PromptFinished(a)));
        // The last frame was taken: idle before the next tick asks.
        assert!(p.is_idle());
    }

    #[test]
    fn play_now_and_stop_cut_the_queue() {
        let mut p = Player::new();
        p.enqueue(prompt(5, 10));
        p.enqueue(prompt(5, 20));
        assert_eq!(drain(&mut p, 2), [10, 11]);
        let c = p.play_now(prompt(2, 30));
        assert_eq!(drain(&mut p, 10), [30, 31]);
        // The interrupted prompts never finish.
        assert_eq!(events(&mut p), [PlayerEvent::PromptFinished(c)]);

        p.enqueue(prompt(5, 40));
        assert_eq!(drain(&mut p, 1), [40]);
        p.stop();
        assert!(p.is_idle());
        assert!(p.next_frame(Law::Mu).is_none());
        assert_eq!(events(&mut p), []);
    }

    #[test]
    fn loop_repeats_the_last_prompt_until_something_follows() {
        let mut p = Player::new();
        let pos = p.enqueue(prompt(1, 5));
        let music = p.enqueue(prompt(2, 50));
        p.set_loop(true);
        assert_eq!(drain(&mut p, 7), [5, 50, 51, 50, 51, 50, 51]);
        assert_eq!(
            events(&mut p),
            [
                PlayerEvent::PromptFinished(pos),
                PlayerEvent::PromptFinished(music),
                PlayerEvent::PromptFinished(music),
                PlayerEvent::PromptFinished(music),
            ]
        );
        assert!(!p.is_idle());
        // An announcement queued behind the music plays when the pass ends…
        let ann = p.enqueue(prompt(1, 7));
        assert_eq!(drain(&mut p, 3), [50, 51, 7]);
        // …and then it is the last prompt, so it loops.
        assert_eq!(drain(&mut p, 2), [7, 7]);
        assert_eq!(p.current(), Some(ann));
        p.set_loop(false);
        assert!(drain(&mut p, 5).is_empty());
        assert!(p.is_idle());
    }

    #[test]
    fn loop_set_after_the_end_restarts_the_prompt() {
        let mut p = Player::new();
        p.enqueue(prompt(1, 9));
        assert_eq!(drain(&mut p, 1), [9]);
        p.set_loop(true);
        assert!(!p.is_idle());
        assert_eq!(drain(&mut p, 3), [9, 9, 9]);
    }

    #[test]
    fn empty_prompts_finish_without_a_frame_and_never_loop() {
        let mut p = Player::new();
        p.set_loop(true);
        let empty = p.enqueue(Arc::new(Prompt::from_pcm(Vec::new())));
        assert!(p.is_idle());
        assert!(p.next_frame(Law::Mu).is_none());
        assert_eq!(events(&mut p), [PlayerEvent::PromptFinished(empty)]);

        let e2 = p.enqueue(Arc::new(Prompt::from_pcm(Vec::new())));
        let one = p.enqueue(prompt(1, 3));
        assert!(!p.is_idle());
        assert_eq!(drain(&mut p, 2), [3, 3]);
        assert_eq!(
            events(&mut p),
            [
                PlayerEvent::PromptFinished(e2),
                PlayerEvent::PromptFinished(one),
                PlayerEvent::PromptFinished(one)
            ]
        );
    }

    #[test]
    fn unpolled_events_are_bounded() {
        let mut p = Player::new();
        let id = p.enqueue(prompt(1, 1));
        p.set_loop(true);
        for _ in 0..1000 {
            p.next_frame(Law::Mu).unwrap();
        }
        assert_eq!(events(&mut p).len(), EVENT_CAPACITY);
        assert_eq!(p.current(), Some(id));
    }

    #[test]
    fn frames_borrow_the_shared_prompt() {
        let shared = prompt(3, 1);
        let mut p = Player::new();
        p.enqueue(Arc::clone(&shared));
        for law in [Law::Mu, Law::A, Law::Mu] {
            let i = p.position;
            let f = p.next_frame(law).unwrap();
            assert!(std::ptr::eq(f, &shared.frames(law)[i]));
        }
    }
}
