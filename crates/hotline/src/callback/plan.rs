//! The schedule of a callback as a pure state machine: time is given (`now`, unix
//! milliseconds), events come in, decisions come out. No clock, no store, no socket: the
//! scheduler ([`super`]) feeds it rows and attempt outcomes and carries out what it says.
//!
//! - Booking: `asap` is due at once and expires after `callback.expiry_secs`; a window is
//!   due at its next opening (now, if it is open) and expires when that opening closes.
//! - A pending callback is due when `next_at` has come and it has not expired.
//! - After an attempt: the caller answered → done; no answer, busy or failure → one more
//!   attempt counted, then given up at `max_attempts`, else retried after the interval
//!   (expired instead if the retry would fall after the expiry); no operator could take it,
//!   or the operator's side failed before the caller was rung → tried again after the
//!   interval without counting.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use hotline_store::{Timestamp, Zone};

/// A daily window in the hotline's time zone (`time_zone`, Lima by default), `HH:MM-HH:MM`;
/// one whose end is before its start spans midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window {
    /// Minutes after local midnight.
    start: u16,
    end: u16,
}

/// A window that does not read as `HH:MM-HH:MM`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a window: use \"HH:MM-HH:MM\" (the hotline's time zone, 24 h), start and end different"
)]
pub struct BadWindow(String);

impl Window {
    /// The opening of this window that contains `now` or comes next: (start, end) in unix ms,
    /// on `zone`'s clock (a day with a daylight-saving change has its window a little shorter
    /// or longer).
    pub(crate) fn opening(&self, now: i64, zone: &Zone) -> (i64, i64) {
        let t = Timestamp::from_unix_millis(now);
        let across_midnight = i64::from(self.end <= self.start);
        let at = |day: i64| {
            (
                zone.at_minute(t, day, self.start).unix_millis(),
                zone.at_minute(t, day + across_midnight, self.end)
                    .unix_millis(),
            )
        };
        // Yesterday's opening may still be open (a window across midnight), else today's or
        // tomorrow's (which always ends after now).
        [-1, 0]
            .into_iter()
            .map(at)
            .find(|&(_, end)| now < end)
            .unwrap_or_else(|| at(1))
    }
}

impl FromStr for Window {
    type Err = BadWindow;
    fn from_str(s: &str) -> Result<Window, BadWindow> {
        let bad = || BadWindow(s.to_owned());
        let minutes = |t: &str| -> Option<u16> {
            let (h, m) = t.trim().split_once(':')?;
            let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
            (h < 24 && m < 60 && t.trim().len() == 5).then_some(h * 60 + m)
        };
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let (start, end) = (minutes(a).ok_or_else(bad)?, minutes(b).ok_or_else(bad)?);
        if start == end {
            return Err(bad());
        }
        Ok(Window { start, end })
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        )
    }
}

/// The rules a callback is scheduled by (from `[callback]`).
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    pub(crate) max_attempts: u32,
    pub(crate) retry_interval: Duration,
    /// How long an `asap` callback stays open.
    pub(crate) expiry: Duration,
    /// The windows' clock (`time_zone`).
    pub(crate) zone: Zone,
}

/// When a new callback is first due and when it expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Booking {
    pub(crate) next_at: i64,
    pub(crate) expires_at: i64,
}

/// What a pending callback needs now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    /// Place an attempt now.
    Place,
    /// Its time is over: end it as expired.
    Expire,
    /// Nothing before this time.
    Wait(i64),
}

/// How an attempt went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// The caller answered and talked to the operator.
    Answered,
    /// The caller's phone was rung and did not answer in the ring timeout, was busy, or
    /// the carrier refused the call.
    NotReached,
    /// The caller was not rung: no operator took it, or the operator's leg went before.
    NotPlaced,
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum After {
    Done { attempts: u32 },
    Retry { attempts: u32, next_at: i64 },
    GiveUp { attempts: u32 },
    Expire { attempts: u32 },
}

impl Rules {
    /// A callback booked at `now` for `window` (`None`: asap).
    pub(crate) fn book(&self, now: i64, window: Option<&Window>) -> Booking {
        match window {
            None => Booking {
                next_at: now,
                expires_at: now + millis(self.expiry),
            },
            Some(w) => {
                let (start, end) = w.opening(now, &self.zone);
                Booking {
                    next_at: start.max(now),
                    expires_at: end,
                }
            }
        }
    }

    /// What a pending callback with these times needs at `now`.
    pub(crate) fn due(&self, now: i64, next_at: i64, expires_at: i64, attempts: u32) -> Due {
        if now >= expires_at || attempts >= self.max_attempts {
            Due::Expire
        } else if now >= next_at {
            Due::Place
        } else {
            Due::Wait(next_at)
        }
    }

    /// Whether the caller may still be rung at `now` (an operator may take long to be free).
    pub(crate) fn may_ring(&self, now: i64, expires_at: i64) -> bool {
        now < expires_at
    }

    /// What follows an attempt that ended at `now`, `attempts` having been made before it.
    pub(crate) fn after(&self, now: i64, attempts: u32, expires_at: i64, how: Attempt) -> After {
        let attempts = match how {
            Attempt::Answered => {
                return After::Done {
                    attempts: attempts + 1,
                };
            }
            Attempt::NotReached => attempts + 1,
            Attempt::NotPlaced => attempts,
        };
        if attempts >= self.max_attempts {
            return After::GiveUp { attempts };
        }
        let next_at = now + millis(self.retry_interval);
        if next_at >= expires_at {
            After::Expire { attempts }
        } else {
            After::Retry { attempts, next_at }
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-07T00:00:00Z: 19:00 of Dec 6 in Lima.
    const T: i64 = 1_796_601_600_000;
    const H: i64 = 3_600_000;

    fn rules() -> Rules {
        Rules {
            max_attempts: 3,
            retry_interval: Duration::from_secs(600),
            expiry: Duration::from_secs(86_400),
            zone: Zone::lima(),
        }
    }

    #[test]
    fn windows_parse_print_and_refuse_nonsense() {
        let w: Window = "09:00-12:30".parse().unwrap();
        assert_eq!(w.to_string(), "09:00-12:30");
        for bad in [
            "9-12",
            "09:00",
            "24:00-01:00",
            "09:60-10:00",
            "10:00-10:00",
            "9:00-12:00",
            "",
        ] {
            assert!(bad.parse::<Window>().is_err(), "{bad}");
        }
    }

    #[test]
    fn an_opening_is_in_the_hotline_s_time_today_or_tomorrow() {
        let lima = Zone::lima();
        // At 19:00 Lima: the morning window opens tomorrow 09:00 Lima = 14:00Z.
        let morning: Window = "09:00-12:00".parse().unwrap();
        assert_eq!(morning.opening(T, &lima), (T + 14 * H, T + 17 * H));
        // Inside the evening window (18:00-21:00 Lima): the current one, until 02:00Z.
        let evening: Window = "18:00-21:00".parse().unwrap();
        assert_eq!(evening.opening(T, &lima), (T - H, T + 2 * H));
        // Across midnight (22:00-07:00 Lima), at 23:30 Lima: the one that began at 22:00.
        let night: Window = "22:00-07:00".parse().unwrap();
        let at = T + 4 * H + H / 2;
        assert_eq!(night.opening(at, &lima), (T + 3 * H, T + 12 * H));
        // At 06:00 Lima the next morning: still yesterday's opening.
        assert_eq!(night.opening(T + 11 * H, &lima), (T + 3 * H, T + 12 * H));
        // Right at the end it is the next day's.
        assert_eq!(night.opening(T + 12 * H, &lima), (T + 27 * H, T + 36 * H));
        // Another zone, other instants: 09:00 in Madrid (CET, UTC+1) on Dec 7 is 08:00Z.
        let madrid = Zone::named("Europe/Madrid").unwrap();
        assert_eq!(morning.opening(T, &madrid), (T + 8 * H, T + 11 * H));
    }

    #[test]
    fn booking_asap_is_due_now_and_a_window_at_its_opening() {
        let r = rules();
        assert_eq!(
            r.book(T, None),
            Booking {
                next_at: T,
                expires_at: T + 24 * H
            }
        );
        let morning: Window = "09:00-12:00".parse().unwrap();
        assert_eq!(
            r.book(T, Some(&morning)),
            Booking {
                next_at: T + 14 * H,
                expires_at: T + 17 * H
            }
        );
        let evening: Window = "18:00-21:00".parse().unwrap();
        assert_eq!(
            r.book(T, Some(&evening)),
            Booking {
                next_at: T,
                expires_at: T + 2 * H
            }
        );
    }

    #[test]
    fn due_waits_places_and_expires() {
        let r = rules();
        assert_eq!(r.due(T, T + 5, T + H, 0), Due::Wait(T + 5));
        assert_eq!(r.due(T + 5, T + 5, T + H, 0), Due::Place);
        assert_eq!(r.due(T + H, T, T + H, 0), Due::Expire);
        assert_eq!(r.due(T, T, T + H, 3), Due::Expire);
        assert!(r.may_ring(T, T + 1));
        assert!(!r.may_ring(T + 1, T + 1));
    }

    #[test]
    fn no_answer_retries_then_gives_up_at_the_cap() {
        let r = rules();
        let end = T + 24 * H;
        assert_eq!(
            r.after(T, 0, end, Attempt::NotReached),
            After::Retry {
                attempts: 1,
                next_at: T + 600_000
            }
        );
        assert_eq!(
            r.after(T, 1, end, Attempt::NotReached),
            After::Retry {
                attempts: 2,
                next_at: T + 600_000
            }
        );
        assert_eq!(
            r.after(T, 2, end, Attempt::NotReached),
            After::GiveUp { attempts: 3 }
        );
        assert_eq!(
            r.after(T, 2, end, Attempt::Answered),
            After::Done { attempts: 3 }
        );
    }

    #[test]
    fn an_unplaced_attempt_does_not_count_and_a_late_retry_expires() {
        let r = rules();
        assert_eq!(
            r.after(T, 2, T + H, Attempt::NotPlaced),
            After::Retry {
                attempts: 2,
                next_at: T + 600_000
            }
        );
        assert_eq!(
            r.after(T, 0, T + 599_999, Attempt::NotReached),
            After::Expire { attempts: 1 }
        );
        assert_eq!(
            r.after(T, 0, T + 600_000, Attempt::NotPlaced),
            After::Expire { attempts: 0 }
        );
    }
}
