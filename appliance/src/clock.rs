//! The appliance's wall clock. Normally the system clock; `serve --now` (tests and demos only)
//! starts it at a given practice-local time and lets it run in real time from there, so scripted
//! callers meet a known schedule.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};

#[derive(Clone)]
pub struct Clock {
    offset: Arc<Duration>,
}

impl Clock {
    pub fn system() -> Self {
        Self { offset: Arc::new(Duration::zero()) }
    }

    /// A clock that reads `local` (in `tz`) right now and advances in real time.
    pub fn starting_at(local: NaiveDateTime, tz: chrono_tz::Tz) -> anyhow::Result<Self> {
        let start = tz
            .from_local_datetime(&local)
            .earliest()
            .ok_or_else(|| anyhow::anyhow!("--now {local}: that local time does not exist in {tz} (a DST gap)"))?
            .with_timezone(&Utc);
        Ok(Self { offset: Arc::new(start - Utc::now()) })
    }

    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + *self.offset
    }
}

/// Parses `--now` as `YYYY-MM-DDTHH:MM[:SS]`.
pub fn parse_local(s: &str) -> anyhow::Result<NaiveDateTime> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M"))
        .map_err(|_| anyhow::anyhow!("--now '{s}': expected local time as YYYY-MM-DDTHH:MM:SS, e.g. 2026-03-02T10:00:00"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_at_the_given_local_time() {
        let tz: chrono_tz::Tz = "America/Chicago".parse().unwrap();
        let c = Clock::starting_at(parse_local("2026-03-02T10:00:00").unwrap(), tz).unwrap();
        let local = c.now().with_timezone(&tz).naive_local();
        let want = parse_local("2026-03-02T10:00:00").unwrap();
        assert!((local - want).num_seconds().abs() <= 2, "{local}");
    }

    #[test]
    fn rejects_bad_input() {
        assert!(parse_local("tomorrow").unwrap_err().to_string().contains("--now"));
        let tz: chrono_tz::Tz = "America/Chicago".parse().unwrap();
        // 02:30 on the spring-forward day does not exist.
        assert!(Clock::starting_at(parse_local("2026-03-08T02:30").unwrap(), tz).is_err());
    }
}
