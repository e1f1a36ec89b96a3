//! [`OperatorQueue`]: the queue as a pure state machine (inputs with `now`, [`Event`]s out,
//! one deadline). Who gets which call is in `strategy`.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use crate::operator::{Activity, Operator};
use crate::{
    CallId, Event, Language, NoOperatorReason, OfferFailure, OperatorName, OperatorSnapshot,
    QueueConfig, QueuedCall, Snapshot, Status,
};

/// The operator queue: waiting callers, operators, and the rules that match them.
///
/// Sans-IO: every input carries `now`; after each, drain [`poll_event`](Self::poll_event)
/// and call [`handle_timeout`](Self::handle_timeout) at [`poll_timeout`](Self::poll_timeout).
/// Nothing here reads a clock. Inputs about calls or offers the queue no longer knows are
/// ignored (they cross its own decisions on the way), except a late answer, which gets an
/// [`Event::CancelOffer`] so the leg is hung up.
#[derive(Debug)]
pub struct OperatorQueue {
    pub(crate) config: QueueConfig,
    /// Callers in the queue, longest waiting first.
    pub(crate) calls: Vec<Waiting>,
    pub(crate) operators: BTreeMap<OperatorName, Operator>,
    pub(crate) events: VecDeque<Event>,
    /// The latest `now` seen (a deadline is never earlier).
    last_now: Option<Instant>,
}

/// A caller in the queue.
#[derive(Debug, Clone)]
pub(crate) struct Waiting {
    pub(crate) id: CallId,
    pub(crate) language: Option<Language>,
    pub(crate) since: Instant,
    /// The offer ringing for this call, if any.
    pub(crate) offer: Option<Ring>,
    /// Operators who declined this call: not offered it again.
    pub(crate) declined_by: Vec<OperatorName>,
    /// The last position told.
    pub(crate) told: Option<u32>,
    /// When to tell the position again.
    pub(crate) next_position: Instant,
}

/// An offer ringing an operator.
#[derive(Debug, Clone)]
pub(crate) struct Ring {
    pub(crate) operator: OperatorName,
    pub(crate) deadline: Instant,
}

impl OperatorQueue {
    /// An empty queue: nobody waiting, no operator known.
    pub fn new(config: QueueConfig) -> Self {
        Self {
            config,
            calls: Vec::new(),
            operators: BTreeMap::new(),
            events: VecDeque::new(),
            last_now: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    // ---- inputs -------------------------------------------------------------------------

    /// A caller asks for an operator, in `language` (`None`: any operator). With nobody
    /// logged in the answer is an immediate [`NoOperatorReason::NobodyLoggedIn`] and the
    /// call is not queued; otherwise it joins the end of the queue and hears its position.
    /// A call already known is ignored.
    pub fn enqueue(&mut self, now: Instant, call: CallId, language: Option<Language>) {
        if self.contains_call(&call) {
            return;
        }
        if !self.anyone_logged_in() {
            self.events.push_back(Event::NoOperator {
                call,
                reason: NoOperatorReason::NobodyLoggedIn,
            });
        } else {
            self.calls.push(Waiting {
                id: call,
                language,
                since: now,
                offer: None,
                declined_by: Vec::new(),
                told: None,
                next_position: now,
            });
        }
        self.advance(now);
    }

    /// The caller left the queue: hung up, chose to leave a message, or the flow gave up.
    /// An offer ringing for them is withdrawn ([`Event::CancelOffer`]) without costing the
    /// operator their place. On a call already connected this is [`call_ended`](Self::call_ended).
    pub fn cancel(&mut self, now: Instant, call: CallId) {
        if let Some(i) = self.calls.iter().position(|c| c.id == call) {
            let waiting = self.calls.remove(i);
            if let Some(ring) = waiting.offer {
                if let Some(op) = self.operators.get_mut(&ring.operator) {
                    op.activity = Activity::Idle;
                }
                self.events.push_back(Event::CancelOffer {
                    call,
                    operator: ring.operator,
                });
            }
        } else if let Some(name) = self.busy_with(&call) {
            self.end_call(now, &name);
        }
        self.advance(now);
    }

    /// An operator sets their availability. Clears a pause reason the queue gave and the
    /// count of missed offers. Does not touch an offer ringing them or the call they are on.
    pub fn operator_status(&mut self, now: Instant, operator: OperatorName, status: Status) {
        let op = self.operators.entry(operator).or_insert_with(Operator::new);
        let was = op.on_duty();
        op.status = status;
        op.paused_reason = None;
        op.missed = 0;
        if !was && op.on_duty() {
            op.idle_since = Some(now);
        }
        self.advance(now);
    }

    /// The operator's softphone registered (or its binding expired or was removed). Only a
    /// registered operator is offered calls or counts as logged in.
    pub fn registration(&mut self, now: Instant, operator: OperatorName, registered: bool) {
        let op = self.operators.entry(operator).or_insert_with(Operator::new);
        let was = op.on_duty();
        op.registered = registered;
        if !was && op.on_duty() {
            op.idle_since = Some(now);
        }
        self.advance(now);
    }

    /// The languages the operator speaks (replacing the previous list).
    pub fn operator_languages(
        &mut self,
        now: Instant,
        operator: OperatorName,
        languages: Vec<Language>,
    ) {
        let op = self.operators.entry(operator).or_insert_with(Operator::new);
        op.languages = languages;
        self.advance(now);
    }

    /// The operator answered the offer of `call`: [`Event::Connected`]. If that offer is no
    /// longer current (it timed out, or the caller left) the answer is refused with
    /// [`Event::CancelOffer`].
    pub fn offer_answered(&mut self, now: Instant, call: CallId, operator: OperatorName) {
        match self.ringing(&call, &operator) {
            Some(i) => {
                let waiting = self.calls.remove(i);
                if let Some(op) = self.operators.get_mut(&operator) {
                    op.activity = Activity::Busy(call.clone());
                    op.missed = 0;
                }
                self.events.push_back(Event::Connected {
                    call,
                    operator,
                    waited: now.saturating_duration_since(waiting.since),
                });
            }
            None => self.events.push_back(Event::CancelOffer { call, operator }),
        }
        self.advance(now);
    }

    /// The offer of `call` to `operator` failed. The caller waits on (or hears
    /// [`NoOperatorReason::MaxWait`] if their time is up); the operator goes to the back of
    /// the idle order, and a miss may pause them. A report about an offer that is no longer
    /// current is ignored.
    pub fn offer_failed(
        &mut self,
        now: Instant,
        call: CallId,
        operator: OperatorName,
        reason: OfferFailure,
    ) {
        if let Some(i) = self.ringing(&call, &operator) {
            self.fail_offer(now, i, reason);
        }
        self.advance(now);
    }

    /// The operator's conversation ended (either side hung up): wrap-up, then offers again.
    /// Ignored unless they are on a call.
    pub fn call_ended(&mut self, now: Instant, operator: OperatorName) {
        self.end_call(now, &operator);
        self.advance(now);
    }

    /// Fires what is due at `now`: ring timeouts, ends of wrap-up, maximum waits, the
    /// language wait, position announcements.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
    }

    // ---- outputs ------------------------------------------------------------------------

    /// The next event for the shell.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let after = |t: Instant| self.last_now.is_none_or(|n| t > n);
        let calls = self.calls.iter().flat_map(|c| {
            let ring = c.offer.as_ref().map(|r| r.deadline);
            let waiting = c.offer.is_none();
            let max_wait = waiting.then(|| c.since + self.config.max_wait);
            let language = (waiting && c.language.is_some())
                .then(|| c.since + self.config.language_wait)
                .filter(|&t| after(t));
            let position = (!self.config.position_every.is_zero()).then_some(c.next_position);
            [ring, max_wait, language, position]
        });
        let wrap_ups = self.operators.values().map(|o| match o.activity {
            Activity::WrapUp { until } => Some(until),
            _ => None,
        });
        calls.chain(wrap_ups).flatten().min()
    }

    /// Who is waiting and who is there, at `now`.
    pub fn snapshot(&self, now: Instant) -> Snapshot {
        let waiting = self
            .calls
            .iter()
            .map(|c| QueuedCall {
                call: c.id.clone(),
                language: c.language.clone(),
                since: c.since,
                waited: now.saturating_duration_since(c.since),
                offered_to: c.offer.as_ref().map(|r| r.operator.clone()),
            })
            .collect();
        let operators = self
            .operators
            .iter()
            .map(|(name, o)| OperatorSnapshot {
                name: name.clone(),
                status: o.status,
                state: o.state(),
                registered: o.registered,
                current_call: match &o.activity {
                    Activity::Busy(c) => Some(c.clone()),
                    _ => None,
                },
                offered_call: match &o.activity {
                    Activity::Ringing(c) => Some(c.clone()),
                    _ => None,
                },
                paused_reason: o.paused_reason,
                languages: o.languages.clone(),
                idle_since: (o.activity == Activity::Idle && o.on_duty())
                    .then_some(o.idle_since)
                    .flatten(),
                wrap_up_until: match o.activity {
                    Activity::WrapUp { until } => Some(until),
                    _ => None,
                },
            })
            .collect();
        Snapshot { waiting, operators }
    }

    /// Whether the queue knows `call`: waiting, being offered, or connected to an operator
    /// (until [`call_ended`](Self::call_ended)).
    pub fn contains_call(&self, call: &CallId) -> bool {
        self.calls.iter().any(|c| &c.id == call) || self.busy_with(call).is_some()
    }

    /// Whether some operator is logged in: status available or paused, softphone registered.
    pub fn anyone_logged_in(&self) -> bool {
        self.operators.values().any(Operator::logged_in)
    }

    // ---- internals ----------------------------------------------------------------------

    /// The index of `call` if it is ringing `operator`.
    fn ringing(&self, call: &CallId, operator: &OperatorName) -> Option<usize> {
        self.calls.iter().position(|c| {
            &c.id == call && c.offer.as_ref().is_some_and(|r| &r.operator == operator)
        })
    }

    /// The operator on `call`.
    fn busy_with(&self, call: &CallId) -> Option<OperatorName> {
        self.operators
            .iter()
            .find(|(_, o)| matches!(&o.activity, Activity::Busy(c) if c == call))
            .map(|(n, _)| n.clone())
    }

    fn end_call(&mut self, now: Instant, operator: &OperatorName) {
        let wrap_up = self.config.wrap_up;
        let Some(op) = self.operators.get_mut(operator) else {
            return;
        };
        if !matches!(op.activity, Activity::Busy(_)) {
            return;
        }
        if wrap_up.is_zero() {
            op.activity = Activity::Idle;
            op.idle_since = Some(now);
        } else {
            op.activity = Activity::WrapUp {
                until: now + wrap_up,
            };
        }
    }

    /// The offer of `self.calls[i]` failed.
    fn fail_offer(&mut self, now: Instant, i: usize, reason: OfferFailure) {
        let threshold = self.config.missed_offers_before_pause;
        let waiting = &mut self.calls[i];
        let Some(ring) = waiting.offer.take() else {
            return;
        };
        if reason == OfferFailure::Declined {
            waiting.declined_by.push(ring.operator.clone());
        }
        let Some(op) = self.operators.get_mut(&ring.operator) else {
            return;
        };
        op.activity = Activity::Idle;
        op.idle_since = Some(now);
        if !reason.is_miss() {
            op.missed = 0;
        } else if let Some(why) = op.miss(reason, threshold) {
            self.events.push_back(Event::OperatorPaused {
                operator: ring.operator,
                reason: why,
            });
        }
    }

    /// After every input: timers due at `now`, then the queue's rules.
    fn advance(&mut self, now: Instant) {
        let now = self.last_now.map_or(now, |last| last.max(now));
        self.last_now = Some(now);
        self.ring_timeouts(now);
        self.wrap_ups(now);
        self.give_up(now);
        self.distribute(now);
        self.positions(now);
    }

    /// Offers unanswered for `ring_timeout` are withdrawn and count as missed.
    fn ring_timeouts(&mut self, now: Instant) {
        for i in 0..self.calls.len() {
            let Some(ring) = &self.calls[i].offer else {
                continue;
            };
            if ring.deadline > now {
                continue;
            }
            self.events.push_back(Event::CancelOffer {
                call: self.calls[i].id.clone(),
                operator: ring.operator.clone(),
            });
            self.fail_offer(now, i, OfferFailure::Timeout);
        }
    }

    fn wrap_ups(&mut self, now: Instant) {
        for op in self.operators.values_mut() {
            if let Activity::WrapUp { until } = op.activity
                && until <= now
            {
                op.activity = Activity::Idle;
                op.idle_since = Some(until);
            }
        }
    }

    /// Callers not being offered leave the queue when nobody is logged in or their maximum
    /// wait is over. A caller being offered is not taken from a ringing phone: if that offer
    /// fails, this applies.
    fn give_up(&mut self, now: Instant) {
        let nobody = !self.anyone_logged_in();
        let max_wait = self.config.max_wait;
        let mut i = 0;
        while i < self.calls.len() {
            let c = &self.calls[i];
            let reason = if c.offer.is_some() {
                None
            } else if nobody {
                Some(NoOperatorReason::NobodyLoggedIn)
            } else if now.saturating_duration_since(c.since) >= max_wait {
                Some(NoOperatorReason::MaxWait)
            } else {
                None
            };
            match reason {
                Some(reason) => {
                    let c = self.calls.remove(i);
                    self.events
                        .push_back(Event::NoOperator { call: c.id, reason });
                }
                None => i += 1,
            }
        }
    }

    /// Tells each caller their position when it changed, and every `position_every`.
    fn positions(&mut self, now: Instant) {
        let every = self.config.position_every;
        for (i, c) in self.calls.iter_mut().enumerate() {
            let position = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let due = !every.is_zero() && c.next_position <= now;
            if c.told == Some(position) && !due {
                continue;
            }
            c.told = Some(position);
            c.next_position = now + every;
            self.events.push_back(Event::Position {
                call: c.id.clone(),
                position,
            });
        }
    }
}
