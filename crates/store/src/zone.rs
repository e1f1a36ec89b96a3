//! [`Zone`]: the hotline's time zone, where its days begin and end.
//!
//! Instants stay UTC everywhere ([`Timestamp`], the database, the JSON API). People and
//! statistics count days and read times on the hotline's clock: Lima's by default
//! (`America/Lima`, UTC−5, no daylight saving since 1994), any IANA zone by configuration. The
//! rules come from `jiff`: the system's tz database when it has the zone, else the copy built
//! into the binary, so a container without `tzdata` still knows Lima.
//!
//! Every zone offset in use is a whole number of quarter hours, so a UTC quarter hour lies on
//! one local day: [`Zone::QUARTER_MS`] buckets can be counted in SQL and summed into local days
//! here ([`crate::CallStore::daily_stats`]).

use std::fmt;

use jiff::civil::Date;
use jiff::tz::TimeZone;

use crate::Timestamp;

/// The hotline's time zone: an IANA name and its rules.
#[derive(Clone)]
pub struct Zone {
    name: String,
    tz: TimeZone,
}

/// An IANA time zone name that the tz database does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a time zone of the tz database (use an IANA name such as \"America/Lima\")")]
pub struct UnknownZone(pub String);

impl Zone {
    /// The default zone's name.
    pub const LIMA: &'static str = "America/Lima";
    /// A quarter of an hour in milliseconds: no zone boundary falls inside one.
    pub const QUARTER_MS: i64 = 15 * 60_000;

    /// The zone named `name` (IANA, e.g. `America/Lima`, `UTC`).
    pub fn named(name: &str) -> Result<Zone, UnknownZone> {
        let tz = TimeZone::get(name).map_err(|_| UnknownZone(name.to_owned()))?;
        Ok(Zone {
            name: name.to_owned(),
            tz,
        })
    }

    /// Lima's time (the default).
    pub fn lima() -> Zone {
        Zone::named(Zone::LIMA).unwrap_or_else(|_| Zone {
            // Not reached: the tz database is built in. Lima's rule since 1994, as a fixed offset.
            name: Zone::LIMA.to_owned(),
            tz: TimeZone::fixed(jiff::tz::offset(-5)),
        })
    }

    /// UTC.
    pub fn utc() -> Zone {
        Zone {
            name: "UTC".to_owned(),
            tz: TimeZone::UTC,
        }
    }

    /// The IANA name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn zoned(&self, t: Timestamp) -> jiff::ZonedDateTime {
        instant(t).to_zoned_datetime(self.tz.clone())
    }

    /// The local day of `t`, `YYYY-MM-DD`.
    pub fn day_of(&self, t: Timestamp) -> String {
        self.zoned(t).date().to_string()
    }

    /// The first instant of `t`'s local day.
    pub fn start_of_day(&self, t: Timestamp) -> Timestamp {
        self.start_of(self.zoned(t).date())
    }

    /// The first instant of the local day `date` (`YYYY-MM-DD`); `None` if it is not a date.
    pub fn start_of_date(&self, date: &str) -> Option<Timestamp> {
        let d: Date = date.trim().parse().ok()?;
        Some(self.start_of(d))
    }

    /// The first instant after the local day `date` (`YYYY-MM-DD`): the next day's start.
    pub fn end_of_date(&self, date: &str) -> Option<Timestamp> {
        let d: Date = date.trim().parse().ok()?;
        Some(self.start_of(d.tomorrow().ok()?))
    }

    /// The first instant of the local day `d` (the first existing one where a transition
    /// skips midnight).
    fn start_of(&self, d: Date) -> Timestamp {
        match d
            .to_zoned_datetime(self.tz.clone())
            .and_then(|z| z.start_of_day())
        {
            Ok(z) => from_instant(z.timestamp()),
            Err(_) => Timestamp::EPOCH,
        }
    }

    /// The `n` local days (`YYYY-MM-DD`) ending with `now`'s, oldest first.
    pub fn days_ending(&self, now: Timestamp, n: usize) -> Vec<String> {
        let today = self.zoned(now).date();
        (0..n)
            .rev()
            .filter_map(|i| today.checked_sub(jiff::Span::new().days(i as i64)).ok())
            .map(|d| d.to_string())
            .collect()
    }

    /// The first instant of the day `days` local days before `now`'s (0: today's).
    pub fn start_of_days_before(&self, now: Timestamp, days: usize) -> Timestamp {
        let today = self.zoned(now).date();
        match today.checked_sub(jiff::Span::new().days(days as i64)) {
            Ok(d) => self.start_of(d),
            Err(_) => Timestamp::EPOCH,
        }
    }

    /// `2026-11-01 07:34` in local time.
    pub fn minute_text(&self, t: Timestamp) -> String {
        self.zoned(t).strftime("%Y-%m-%d %H:%M").to_string()
    }

    /// `2026-11-01T07:34:56-05:00`: local time with its offset, whole seconds.
    pub fn rfc3339(&self, t: Timestamp) -> String {
        self.zoned(t).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }

    /// The local civil time of `t`: (year, month, day, hour, minute, second).
    pub fn civil(&self, t: Timestamp) -> (i16, i8, i8, i8, i8, i8) {
        let z = self.zoned(t);
        (
            z.year(),
            z.month(),
            z.day(),
            z.hour(),
            z.minute(),
            z.second(),
        )
    }

    /// The instant of `minutes` after local midnight on `t`'s local day shifted by `days`
    /// (a time skipped by a transition is taken after it).
    pub fn at_minute(&self, t: Timestamp, days: i64, minutes: u16) -> Timestamp {
        let date = self.zoned(t).date();
        let Ok(date) = date.checked_add(jiff::Span::new().days(days)) else {
            return t;
        };
        let time = jiff::civil::Time::new((minutes / 60) as i8, (minutes % 60) as i8, 0, 0)
            .unwrap_or(jiff::civil::Time::midnight());
        match date.to_datetime(time).to_zoned_datetime(self.tz.clone()) {
            Ok(z) => from_instant(z.timestamp()),
            Err(_) => t,
        }
    }
}

impl Default for Zone {
    fn default() -> Zone {
        Zone::lima()
    }
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Zone").field(&self.name).finish()
    }
}

impl PartialEq for Zone {
    fn eq(&self, other: &Zone) -> bool {
        self.name == other.name
    }
}

impl Eq for Zone {}

fn instant(t: Timestamp) -> jiff::Timestamp {
    jiff::Timestamp::from_millisecond(t.unix_millis()).unwrap_or(if t.unix_millis() < 0 {
        jiff::Timestamp::MIN
    } else {
        jiff::Timestamp::MAX
    })
}

fn from_instant(t: jiff::Timestamp) -> Timestamp {
    Timestamp::from_unix_millis(t.as_millisecond())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn lima_days_begin_at_five_utc() {
        let z = Zone::lima();
        // 23:30 in Lima is 04:30 UTC the next day: Lima's day.
        assert_eq!(z.day_of(at("2026-12-08T04:30:00Z")), "2026-12-07");
        assert_eq!(z.day_of(at("2026-12-08T05:00:00Z")), "2026-12-08");
        assert_eq!(
            z.start_of_day(at("2026-12-08T04:30:00Z")),
            at("2026-12-07T05:00:00Z")
        );
        assert_eq!(
            z.start_of_date("2026-12-07"),
            Some(at("2026-12-07T05:00:00Z"))
        );
        assert_eq!(z.start_of_date("7 Dec"), None);
        assert_eq!(
            z.end_of_date("2026-12-07"),
            Some(at("2026-12-08T05:00:00Z"))
        );
        assert_eq!(
            z.minute_text(at("2026-12-08T04:30:00Z")),
            "2026-12-07 23:30"
        );
        assert_eq!(
            z.rfc3339(at("2026-12-08T04:30:00.250Z")),
            "2026-12-07T23:30:00-05:00"
        );
        assert_eq!(
            z.days_ending(at("2026-12-01T02:00:00Z"), 3),
            ["2026-11-28", "2026-11-29", "2026-11-30"]
        );
        assert_eq!(
            z.start_of_days_before(at("2026-12-01T02:00:00Z"), 2),
            at("2026-11-28T05:00:00Z")
        );
    }

    #[test]
    fn utc_and_unknown_zones() {
        assert_eq!(Zone::utc().day_of(at("2026-12-08T04:30:00Z")), "2026-12-08");
        assert_eq!(
            Zone::named("UTC")
                .unwrap()
                .day_of(at("2026-12-08T04:30:00Z")),
            "2026-12-08"
        );
        assert_eq!(
            Zone::named("America/Atlantis"),
            Err(UnknownZone("America/Atlantis".into()))
        );
    }

    #[test]
    fn daylight_saving_days_are_23_and_25_hours() {
        // Madrid: 2026-03-29 loses an hour, 2026-10-25 gains one.
        let z = Zone::named("Europe/Madrid").unwrap();
        let spring = z.start_of_date("2026-03-30").unwrap().unix_millis()
            - z.start_of_date("2026-03-29").unwrap().unix_millis();
        let autumn = z.start_of_date("2026-10-26").unwrap().unix_millis()
            - z.start_of_date("2026-10-25").unwrap().unix_millis();
        assert_eq!((spring, autumn), (23 * 3_600_000, 25 * 3_600_000));
        // 02:30 does not exist on the spring day: taken after the gap (03:30 CEST).
        let t = z.at_minute(at("2026-03-29T12:00:00Z"), 0, 150);
        assert_eq!(t, at("2026-03-29T01:30:00Z"));
    }

    #[test]
    fn every_zone_boundary_is_on_a_quarter_hour() {
        // The buckets of daily_stats rely on it; check a few odd offsets.
        for name in [
            "Asia/Kathmandu",
            "Pacific/Chatham",
            "Asia/Kolkata",
            "America/St_Johns",
        ] {
            let z = Zone::named(name).unwrap();
            for d in ["2026-01-15", "2026-07-15"] {
                let s = z.start_of_date(d).unwrap().unix_millis();
                assert_eq!(s % Zone::QUARTER_MS, 0, "{name} {d}");
            }
        }
    }
}
