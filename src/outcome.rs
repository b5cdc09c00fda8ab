//! The words fleetpoll uses for what happened: how a poll ended, why a section of it could not
//! be used, how much an activity entry matters. One enum per idea, used as the enum everywhere
//! inside the program and turned into text only at the edges (API bodies, metric labels,
//! activity rows, CLI tables), so a new outcome cannot be counted under one word and stored
//! under another. A leaf module: it imports nothing of the crate.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// How one poll ended; the `outcome` label of `fleetpoll_polls_total` and the word before the
/// colon in a server's stored reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every section was read.
    Ok,
    /// Some sections were read, others could not be (see the section problems).
    Partial,
    /// No TCP connection, or the SSH transport failed.
    Unreachable,
    /// The key was refused, or could not be loaded on our side.
    AuthFailed,
    /// The host presented a key other than the pinned one.
    HostKeyChanged,
    /// A step that waits on the host took longer than its deadline.
    Timeout,
    /// The script ran but no section gave output (commands missing or failing).
    CommandFailed,
    /// The commands ran but none of their output could be read.
    ParseFailed,
}

impl Outcome {
    /// Every outcome, in the order `/metrics` lists them.
    pub const ALL: [Outcome; 8] = [
        Self::Ok,
        Self::Partial,
        Self::Unreachable,
        Self::AuthFailed,
        Self::HostKeyChanged,
        Self::Timeout,
        Self::CommandFailed,
        Self::ParseFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Partial => "partial",
            Self::Unreachable => "unreachable",
            Self::AuthFailed => "auth_failed",
            Self::HostKeyChanged => "host_key_changed",
            Self::Timeout => "timeout",
            Self::CommandFailed => "command_failed",
            Self::ParseFailed => "parse_failed",
        }
    }

    /// Position in [`Outcome::ALL`], for per-outcome counters.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Lets a test or a table compare with the word directly.
impl PartialEq<&str> for Outcome {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Why one section of a poll (top, free, df, docker) could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The command failed (non-zero exit, or the script stopped before it): its error text
    /// is the reason.
    CommandFailed,
    /// The command succeeded and we could not read what it printed.
    ParseFailed,
}

impl ProblemKind {
    pub fn as_str(self) -> &'static str {
        self.outcome().as_str()
    }

    /// The poll outcome when every usable section failed this way.
    pub fn outcome(self) -> Outcome {
        match self {
            Self::CommandFailed => Outcome::CommandFailed,
            Self::ParseFailed => Outcome::ParseFailed,
        }
    }
}

impl PartialEq<&str> for ProblemKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// How much an activity entry matters to the person reading the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 3] = [Self::Info, Self::Warning, Self::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Severity {
    /// The message a filter shows for a word that is not a severity.
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                let all: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                format!("'{s}' is not one of {}", all.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_index_is_its_place_in_all() {
        for (i, o) in Outcome::ALL.iter().enumerate() {
            assert_eq!(o.index(), i, "{o}");
        }
    }

    #[test]
    fn words_are_the_serialized_form() {
        for o in Outcome::ALL {
            assert_eq!(
                serde_json::to_value(o).expect("serializes"),
                serde_json::json!(o.as_str())
            );
        }
        assert_eq!(
            serde_json::to_value(ProblemKind::ParseFailed).expect("serializes"),
            serde_json::json!("parse_failed")
        );
        assert_eq!(ProblemKind::CommandFailed.outcome(), Outcome::CommandFailed);
    }

    #[test]
    fn severities_parse_from_their_words_only() {
        for s in Severity::ALL {
            assert_eq!(s.as_str().parse::<Severity>(), Ok(s));
        }
        assert_eq!(
            "fatal".parse::<Severity>(),
            Err("'fatal' is not one of info, warning, critical".to_string())
        );
    }
}
