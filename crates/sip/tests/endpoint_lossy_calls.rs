//! A full call (INVITE, 180, 200, ACK, BYE or CANCEL) under random loss in
//! both directions: the endpoint never panics, every call it reported ends
//! exactly once, it never sends BYE before the ACK or Timer L (RFC 3261 §15),
//! and every transaction is gone 64·T1 + T4 after the endpoint's last input.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{ANSWER, Dir, Harness, OFFER, t1s, t4, to_tag};
use hotline_sip::endpoint::{CallHandle, EndReason, Event};
use proptest::prelude::*;

/// Who ends the call, and when (after the INVITE was sent).
#[derive(Debug, Clone, Copy)]
enum Ending {
    /// The caller: BYE once it has the 200, CANCEL before (if it had a 1xx).
    Caller(Duration),
    /// The application hangs up.
    Us(Duration),
}

#[derive(Debug, Clone)]
struct Scenario {
    /// Packets to drop, by index, towards the endpoint.
    drop_to_uas: Vec<bool>,
    /// Packets to drop, by index, towards the caller.
    drop_to_uac: Vec<bool>,
    /// Whether the application sends 180 before answering.
    ring: bool,
    /// How long the application waits before it answers.
    answer_delay: Duration,
    ending: Ending,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    // Independent losses, or bursts (runs of losses and deliveries) long
    // enough to lose every copy of a message.
    let independent = proptest::collection::vec(proptest::bool::weighted(0.35), 0..40);
    let bursts = proptest::collection::vec((any::<bool>(), 1usize..16), 0..8).prop_map(|runs| {
        runs.into_iter()
            .flat_map(|(lost, n)| std::iter::repeat_n(lost, n))
            .collect()
    });
    let mask = move || prop_oneof![independent.clone(), bursts.clone()];
    let delay = |max_ms: u64| (0..max_ms).prop_map(Duration::from_millis);
    let ending = prop_oneof![
        delay(20_000).prop_map(Ending::Caller),
        delay(20_000).prop_map(Ending::Us)
    ];
    (
        mask(),
        mask(),
        any::<bool>(),
        prop_oneof![Just(Duration::ZERO), delay(3_000)],
        ending,
    )
        .prop_map(
            |(drop_to_uas, drop_to_uac, ring, answer_delay, ending)| Scenario {
                drop_to_uas,
                drop_to_uac,
                ring,
                answer_delay,
                ending,
            },
        )
}

/// The application's side of the call.
#[derive(Debug, Default)]
struct App {
    call: Option<(CallHandle, Instant)>,
    answered_at: Option<Instant>,
    ended: Vec<EndReason>,
    incoming: usize,
    /// When the application last gave the endpoint a command.
    last_command: Option<Instant>,
}

impl App {
    fn on_event(&mut self, h: &mut Harness, event: Event) {
        match event {
            Event::IncomingCall(incoming) => {
                self.incoming += 1;
                self.call = Some((incoming.call, h.now));
            }
            Event::Ended { call, reason } => {
                assert_eq!(self.call.map(|c| c.0), Some(call));
                self.ended.push(reason);
            }
            Event::Acked { .. } | Event::ReInvite { .. } | Event::Info { .. } => {}
            Event::Refused { reason, .. } => panic!("refused: {reason}"),
            e @ (Event::Register { .. }
            | Event::Progress { .. }
            | Event::Answered { .. }
            | Event::RequestAnswered { .. }
            | Event::RequestTimedOut { .. }) => panic!("not a call event: {e:?}"),
        }
    }

    fn active(&self) -> Option<CallHandle> {
        self.call.filter(|_| self.ended.is_empty()).map(|c| c.0)
    }

    fn command(&mut self, h: &mut Harness, f: impl FnOnce(&mut Harness, CallHandle)) {
        if let Some(call) = self.active() {
            f(h, call);
            self.last_command = Some(h.now);
            h.flush();
        }
    }
}

fn drop_mask(mask: Vec<bool>) -> impl FnMut(usize, &str) -> bool {
    move |index, _| mask.get(index).copied().unwrap_or(false)
}

fn run(s: &Scenario) {
    let mut h = Harness::udp();
    h.pipe
        .drop_if(Dir::ToUas, None, drop_mask(s.drop_to_uas.clone()));
    h.pipe
        .drop_if(Dir::ToUac, None, drop_mask(s.drop_to_uac.clone()));
    let start = h.now;
    let mut app = App::default();
    let (ending_at, by_caller) = match s.ending {
        Ending::Caller(d) => (start + d, true),
        Ending::Us(d) => (start + d, false),
    };
    // The application's longest call, after which it hangs up whatever happened.
    let max_duration = start + Duration::from_secs(60);
    let mut ended_by_test = false;
    let mut became_idle = None;

    h.uac.invite(h.now, Some(OFFER));
    for _ in 0..100_000 {
        h.flush();
        while let Some(e) = h.event() {
            app.on_event(&mut h, e);
            h.flush();
        }
        // The application's scheduled actions.
        if let Some((call, at)) = app.call
            && app.answered_at.is_none()
            && h.now >= at + s.answer_delay
            && app.active().is_some()
        {
            app.answered_at = Some(h.now);
            app.command(&mut h, |h, _| {
                if s.ring {
                    h.uas.ringing(h.now, call);
                }
                h.uas
                    .answer(h.now, call, Bytes::from_static(ANSWER.as_bytes()));
            });
            continue;
        }
        if !ended_by_test && h.now >= ending_at {
            ended_by_test = true;
            if by_caller {
                let inv = h.uac.invite_tx();
                if inv.codes.iter().any(|c| (200..300).contains(c)) {
                    h.uac.bye(h.now);
                } else if inv.codes.iter().any(|c| (100..200).contains(c)) {
                    h.uac.cancel(h.now);
                }
            } else {
                app.command(&mut h, |h, call| h.uas.hangup(h.now, call));
            }
            continue;
        }
        if h.now >= max_duration && app.active().is_some() {
            app.command(&mut h, |h, call| h.uas.hangup(h.now, call));
            continue;
        }
        // Advance to the next deadline or scheduled action.
        let mut next = h.next_deadline();
        let mut schedule = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        if let Some((_, at)) = app
            .call
            .filter(|_| app.answered_at.is_none() && app.active().is_some())
        {
            schedule(at + s.answer_delay);
        }
        if !ended_by_test {
            schedule(ending_at);
        }
        if app.active().is_some() {
            schedule(max_duration);
        }
        let Some(next) = next else { break };
        let busy = h.uas.transactions() > 0;
        if h.next_deadline().is_some_and(|d| d <= next) {
            h.step();
        } else {
            h.advance(next.saturating_duration_since(h.now));
        }
        if busy && h.uas.transactions() == 0 {
            became_idle = Some(h.now);
        }
    }
    assert!(h.next_deadline().is_none(), "the run did not settle");

    // Every call the endpoint reported ended, once.
    let invite_delivered = h.pipe.delivered(Dir::ToUas).any(|p| p.is_request("INVITE"));
    assert_eq!(app.incoming, usize::from(invite_delivered));
    assert_eq!(app.ended.len(), app.incoming, "{:?}", app.ended);
    assert!(
        app.ended
            .iter()
            .all(|r| !matches!(r, EndReason::Rejected(_)))
    );
    assert_eq!(h.uas.active_calls(), 0);
    assert_eq!(h.uas.transactions(), 0);
    assert_eq!(h.uas.poll_timeout(), None);

    // One dialog: every response to the INVITE that has a tag has ours.
    let tags: HashSet<_> = h
        .uac
        .received
        .iter()
        .filter(|(_, m)| !m.is_request())
        .filter_map(|(_, m)| to_tag(m))
        .collect();
    assert!(tags.len() <= 1, "{tags:?}");

    // §15: our BYE only after an ACK reached us, or at Timer L.
    if let Some(bye) = h.sent_by_uas(|p| p.is_request("BYE")).first() {
        let acked_before = h
            .pipe
            .delivered(Dir::ToUas)
            .any(|p| p.is_request("ACK") && p.at <= bye.at);
        let timer_l = app.answered_at.is_some_and(|a| bye.at >= a + t1s(64));
        assert!(
            acked_before || timer_l,
            "BYE at {:?} before the ACK",
            bye.at - start
        );
    }

    // Nothing outlives the last input by more than 64·T1 + T4.
    let bye_starts = h.sent_by_uas(|p| p.is_request("BYE"));
    let mut seen = HashSet::new();
    let last_bye = bye_starts
        .iter()
        .filter(|p| seen.insert(p.branch()))
        .map(|p| p.at)
        .max();
    let last_input = [h.last_uas_input, app.last_command, last_bye]
        .into_iter()
        .flatten()
        .max();
    if let (Some(idle), Some(input)) = (became_idle, last_input) {
        assert!(
            idle <= input + t1s(64) + t4(),
            "idle at {:?}, last input at {:?}",
            idle - start,
            input - start
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn calls_under_random_loss_end_and_leave_nothing_behind(s in scenario()) {
        run(&s);
    }
}

#[test]
fn lossless_call_ended_by_the_caller() {
    run(&Scenario {
        drop_to_uas: vec![],
        drop_to_uac: vec![],
        ring: true,
        answer_delay: Duration::ZERO,
        ending: Ending::Caller(Duration::from_secs(5)),
    });
}

#[test]
fn everything_lost_for_a_while() {
    run(&Scenario {
        drop_to_uas: vec![true; 6],
        drop_to_uac: vec![true; 12],
        ring: false,
        answer_delay: Duration::from_millis(700),
        ending: Ending::Us(Duration::from_secs(3)),
    });
}
