//! Who gets which call: the distribution rules of [`OperatorQueue`].
//!
//! - Callers are served in queue order (longest waiting first); each gets at most one offer
//!   at a time, and each operator rings for at most one call at a time.
//! - Among the operators who may take a call, the one idle longest goes first (idle since
//!   the end of wrap-up, becoming available, or their last failed offer); ties by name.
//! - A caller with a language is offered only to operators who speak it while such an
//!   operator is on duty (available and registered, even if busy) and the caller has waited
//!   less than `language_wait`; then to everyone.
//! - An operator who declined a call is not offered it again.

use std::time::Instant;

use crate::operator::Activity;
use crate::queue::{Ring, Waiting};
use crate::{Event, OperatorName, OperatorQueue, QueueConfig};

impl OperatorQueue {
    /// Offers every caller not being offered to the best free operator, in queue order.
    pub(crate) fn distribute(&mut self, now: Instant) {
        for i in 0..self.calls.len() {
            if self.calls[i].offer.is_some() {
                continue;
            }
            let Some(name) = self.pick(now, &self.calls[i]) else {
                continue;
            };
            let call = self.calls[i].id.clone();
            if let Some(op) = self.operators.get_mut(&name) {
                op.activity = Activity::Ringing(call.clone());
            }
            self.calls[i].offer = Some(Ring {
                operator: name.clone(),
                deadline: now + self.config.ring_timeout.max(QueueConfig::MIN_RING_TIMEOUT),
            });
            self.events.push_back(Event::Offer {
                call,
                operator: name,
            });
        }
    }

    /// The operator to offer `call` to now, if any.
    fn pick(&self, now: Instant, call: &Waiting) -> Option<OperatorName> {
        let declined = |name: &OperatorName| call.declined_by.contains(name);
        let prefer = call.language.as_ref().filter(|lang| {
            now.saturating_duration_since(call.since) < self.config.language_wait
                && self
                    .operators
                    .iter()
                    .any(|(n, o)| o.on_duty() && o.speaks(lang) && !declined(n))
        });
        self.operators
            .iter()
            .filter(|(n, o)| o.offerable() && !declined(n))
            .filter(|(_, o)| prefer.is_none_or(|lang| o.speaks(lang)))
            .min_by_key(|(n, o)| (o.idle_since, *n))
            .map(|(n, _)| n.clone())
    }
}
