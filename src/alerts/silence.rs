//! Silences: matchers (a rule name, a server name, a tag; all given must match) over a time
//! window. A matched alert still changes state; it notifies nobody.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::inventory::ValidationError;

/// A stored silence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Silence {
    pub id: Uuid,
    pub rule: Option<String>,
    pub server: Option<String>,
    pub tag: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub comment: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    /// Set when it ended early or was found over.
    pub expired_at: Option<DateTime<Utc>>,
}

impl Silence {
    pub fn in_force(&self, now: DateTime<Utc>) -> bool {
        self.expired_at.is_none() && self.starts_at <= now && now < self.ends_at
    }

    /// Whether an alert of this rule on this server is silenced by it (time aside).
    pub fn matches(&self, rule: &str, server: &str, tags: &[String]) -> bool {
        self.rule.as_deref().is_none_or(|r| r == rule)
            && self.server.as_deref().is_none_or(|s| s == server)
            && self
                .tag
                .as_deref()
                .is_none_or(|t| tags.iter().any(|x| x == t))
    }
}

/// A silence as an operator asks for it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SilenceInput {
    pub rule: Option<String>,
    pub server: Option<String>,
    pub tag: Option<String>,
    /// Now when absent.
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub comment: Option<String>,
}

/// Longer silences are forgotten silences: a week at most.
const MAX_LENGTH_DAYS: i64 = 7;

impl SilenceInput {
    /// # Errors
    /// The first invalid field.
    pub fn create(&self, created_by: &str, now: DateTime<Utc>) -> Result<Silence, ValidationError> {
        let bad = ValidationError::new;
        if self.rule.is_none() && self.server.is_none() && self.tag.is_none() {
            return Err(bad(
                "rule",
                "give at least one matcher: rule, server or tag",
            ));
        }
        for (field, v) in [
            ("rule", &self.rule),
            ("server", &self.server),
            ("tag", &self.tag),
        ] {
            if v.as_deref().is_some_and(|v| v.is_empty() || v.len() > 64) {
                return Err(bad(field, "1-64 characters"));
            }
        }
        let starts_at = self.starts_at.unwrap_or(now);
        let ends_at = self.ends_at.ok_or_else(|| bad("ends_at", "is required"))?;
        if ends_at <= starts_at || ends_at <= now {
            return Err(bad("ends_at", "must be after starts_at and in the future"));
        }
        if ends_at - starts_at > Duration::days(MAX_LENGTH_DAYS) {
            return Err(bad("ends_at", "at most 7 days after starts_at"));
        }
        let comment = self.comment.as_deref().map(str::trim).unwrap_or("");
        if comment.is_empty()
            || comment.chars().count() > 1000
            || comment.chars().any(char::is_control)
        {
            return Err(bad("comment", "say why, in 1-1,000 printable characters"));
        }
        Ok(Silence {
            id: Uuid::new_v4(),
            rule: self.rule.clone(),
            server: self.server.clone(),
            tag: self.tag.clone(),
            starts_at,
            ends_at,
            comment: comment.to_string(),
            created_by: created_by.to_string(),
            created_at: now,
            expired_at: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(ends_in_hours: i64) -> SilenceInput {
        SilenceInput {
            server: Some("web-1".into()),
            ends_at: Some(Utc::now() + Duration::hours(ends_in_hours)),
            comment: Some("kernel upgrade".into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_silence_needs_a_matcher_an_end_within_a_week_and_a_reason() {
        let now = Utc::now();
        assert!(input(2).create("ops", now).is_ok());
        assert_eq!(
            input(24 * 8)
                .create("ops", now)
                .expect_err("too long")
                .field,
            "ends_at"
        );
        assert_eq!(
            input(-1).create("ops", now).expect_err("past").field,
            "ends_at"
        );
        let mut i = input(2);
        i.server = None;
        assert_eq!(i.create("ops", now).expect_err("no matcher").field, "rule");
        let mut i = input(2);
        i.comment = Some("  ".into());
        assert_eq!(
            i.create("ops", now).expect_err("no reason").field,
            "comment"
        );
    }

    #[test]
    fn every_given_matcher_must_match_and_only_within_its_window() {
        let now = Utc::now();
        let mut s = input(2).create("ops", now).expect("valid");
        s.tag = Some("db".into());
        let db = vec!["db".to_string()];
        assert!(s.matches("cpu warning", "web-1", &db));
        assert!(!s.matches("cpu warning", "web-2", &db));
        assert!(!s.matches("cpu warning", "web-1", &[]));
        assert!(s.in_force(now + Duration::hours(1)));
        assert!(!s.in_force(now + Duration::hours(3)));
        let mut later = input(5).create("ops", now).expect("valid");
        later.starts_at = now + Duration::hours(1);
        assert!(
            !later.in_force(now),
            "a maintenance window ahead is not in force yet"
        );
    }
}
