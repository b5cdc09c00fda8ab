//! The status state machine: from a server as stored and one poll's result, the row update
//! and the activity events. Events fire on transitions only, so a server that stays offline
//! writes one entry, not one per poll. Pure apart from the clock; no SQL.

use chrono::Utc;

use crate::activity::ActivityEvent;
use crate::inventory::{Server, ServerStatus};
use crate::poll::{PollError, PollResult};
use crate::ssh::{HostKeyCheck, SshError};
use crate::store::ServerUpdate;
use crate::text;

/// The pure part of recording: from the server as stored and a poll result, the row update
/// and the activity events. Events fire on transitions only.
pub fn transition(
    current: &Server,
    result: &PollResult,
    docker_note_before: Option<&str>,
    offline_after_failures: u32,
) -> (ServerUpdate, Vec<ActivityEvent>) {
    let now = Utc::now();
    let mut update = ServerUpdate {
        last_poll_at: Some(now),
        ..Default::default()
    };
    let mut events = Vec::new();
    if let Some(p) = &result.platform {
        if current.platform.as_ref() != Some(p) {
            events.push(ActivityEvent::PlatformDetected {
                platform: serde_json::to_value(p).unwrap_or_default(),
                summary: crate::probe::summary(p),
            });
        }
        update.platform = Some(p.clone());
    }
    update.raw = result.raw.clone();
    match &result.outcome {
        Ok(snapshot) => {
            if let (Some(HostKeyCheck::FirstSeen(fp)), None) =
                (&result.host_key, &current.host_key_fingerprint)
            {
                update.pin = Some(fp.clone());
                events.push(ActivityEvent::HostKeyPinned {
                    fingerprint: fp.clone(),
                });
            }
            if current.status != ServerStatus::Online {
                events.push(ActivityEvent::ServerOnline {
                    previous: current.status.as_str().to_string(),
                });
            }
            update.status = Some(ServerStatus::Online);
            update.consecutive_failures = Some(0);
            update.last_sample_at = Some(snapshot.taken_at);
            let problems = (!snapshot.problems.is_empty()).then(|| {
                let all = snapshot
                    .problems
                    .iter()
                    .map(|p| format!("{}: {}", p.kind(), p.message()))
                    .collect::<Vec<_>>()
                    .join("; ");
                text::clip_owned(all, text::MAX_ENTRY_TEXT)
            });
            let had_problems = current.status == ServerStatus::Online && current.reason.is_some();
            match (&problems, had_problems) {
                (Some(p), false) => events.push(ActivityEvent::ServerDegraded {
                    problems: p.clone(),
                }),
                (None, true) => events.push(ActivityEvent::ServerRecovered),
                _ => {}
            }
            update.reason = Some(problems);
            let note = snapshot
                .docker
                .describe()
                .map(|n| text::clip_owned(n, text::MAX_ENTRY_TEXT));
            if note.as_deref() != docker_note_before {
                match &note {
                    Some(m) => events.push(ActivityEvent::DockerUnavailable { message: m.clone() }),
                    None => events.push(ActivityEvent::DockerAvailable),
                }
                update.docker_note = Some(note);
            }
        }
        Err(e) => {
            let reason = text::clip_owned(format!("{}: {}", e.reason(), e), text::MAX_ENTRY_TEXT);
            if let PollError::Ssh(SshError::HostKeyChanged { pinned, presented }) = e {
                let already = current.status == ServerStatus::HostKeyChanged
                    && current.pending_host_key_fingerprint.as_deref() == Some(presented.as_str());
                if !already {
                    events.push(ActivityEvent::HostKeyChanged {
                        pinned: pinned.clone(),
                        presented: presented.clone(),
                    });
                }
                update.status = Some(ServerStatus::HostKeyChanged);
                update.pending = Some(presented.clone());
            } else {
                let failures = current.consecutive_failures.saturating_add(1);
                update.consecutive_failures = Some(failures);
                // Below the threshold a server that was up keeps its status: one lost
                // packet is not an outage and must not write an offline and an online
                // entry. A server never reached yet has nothing to keep.
                let was_up = matches!(current.status, ServerStatus::Online | ServerStatus::Stale);
                if !was_up || failures >= offline_after_failures.max(1) {
                    if current.status != ServerStatus::Offline {
                        events.push(ActivityEvent::ServerOffline {
                            reason: e.reason().to_string(),
                            message: e.to_string(),
                        });
                    }
                    update.status = Some(ServerStatus::Offline);
                }
            }
            update.reason = Some(Some(reason));
        }
    }
    (update, events)
}

#[cfg(test)]
pub(super) mod tests {
    use std::time::Duration;

    use uuid::Uuid;

    use super::*;
    use crate::model::{DockerState, SectionProblem, Snapshot};

    /// A registered server in `status` after `failures` failed polls in a row.
    pub(in crate::scheduler) fn server(status: ServerStatus, failures: u32) -> Server {
        let now = Utc::now();
        Server {
            id: Uuid::new_v4(),
            name: "web-1".into(),
            host: "10.0.0.5".into(),
            port: 22,
            user: "monitor".into(),
            key_path: "/keys/id".into(),
            key_passphrase_env: None,
            tags: Vec::new(),
            enabled: true,
            status,
            reason: None,
            last_sample_at: None,
            last_poll_at: None,
            host_key_fingerprint: Some("SHA256:pinned".into()),
            pending_host_key_fingerprint: None,
            platform: None,
            consecutive_failures: failures,
            key_sealed: None,
            key_fingerprint: None,
            docker_note: None,
            created_at: now,
            updated_at: now,
        }
    }

    fn result(outcome: Result<Snapshot, PollError>) -> PollResult {
        PollResult {
            server_id: Uuid::new_v4(),
            outcome,
            host_key: None,
            platform: None,
            raw: None,
            duration: Duration::ZERO,
        }
    }

    fn snapshot(problems: Vec<SectionProblem>, docker: DockerState) -> Snapshot {
        Snapshot {
            taken_at: Utc::now(),
            server: Default::default(),
            disks: Vec::new(),
            containers: Vec::new(),
            docker,
            problems,
        }
    }

    fn refused() -> PollError {
        PollError::Ssh(SshError::Unreachable {
            target: "10.0.0.5:22".into(),
            message: "connection refused".into(),
        })
    }

    fn kinds(events: &[ActivityEvent]) -> Vec<&'static str> {
        events.iter().map(ActivityEvent::kind).collect()
    }

    #[test]
    fn an_online_server_goes_offline_only_at_the_threshold_and_says_so_once() {
        let (u, ev) = transition(
            &server(ServerStatus::Online, 0),
            &result(Err(refused())),
            None,
            3,
        );
        assert_eq!((u.status, u.consecutive_failures), (None, Some(1)));
        assert!(ev.is_empty(), "{ev:?}");
        assert_eq!(
            u.reason,
            Some(Some(
                "unreachable: cannot reach 10.0.0.5:22: connection refused".into()
            ))
        );

        let (u, ev) = transition(
            &server(ServerStatus::Online, 2),
            &result(Err(refused())),
            None,
            3,
        );
        assert_eq!(u.status, Some(ServerStatus::Offline));
        assert_eq!(kinds(&ev), ["server_offline"]);

        let (u, ev) = transition(
            &server(ServerStatus::Offline, 5),
            &result(Err(refused())),
            None,
            3,
        );
        assert_eq!(
            (u.status, u.consecutive_failures),
            (Some(ServerStatus::Offline), Some(6))
        );
        assert!(ev.is_empty(), "{ev:?}");
    }

    #[test]
    fn a_server_never_reached_is_offline_at_its_first_failure() {
        let (u, ev) = transition(
            &server(ServerStatus::Unknown, 0),
            &result(Err(refused())),
            None,
            3,
        );
        assert_eq!(u.status, Some(ServerStatus::Offline));
        assert_eq!(kinds(&ev), ["server_offline"]);
    }

    #[test]
    fn success_after_an_outage_is_one_online_entry_and_resets_the_count() {
        let ok = snapshot(Vec::new(), DockerState::Available);
        let (u, ev) = transition(&server(ServerStatus::Offline, 4), &result(Ok(ok)), None, 3);
        assert_eq!(u.status, Some(ServerStatus::Online));
        assert_eq!(u.consecutive_failures, Some(0));
        assert_eq!(u.reason, Some(None));
        assert_eq!(kinds(&ev), ["server_online"]);
        assert!(
            matches!(&ev[0], ActivityEvent::ServerOnline { previous } if previous == "offline")
        );
    }

    #[test]
    fn a_changed_host_key_is_logged_once_per_presented_key() {
        let changed = || {
            PollError::Ssh(SshError::HostKeyChanged {
                pinned: "SHA256:pinned".into(),
                presented: "SHA256:new".into(),
            })
        };
        let (u, ev) = transition(
            &server(ServerStatus::Online, 0),
            &result(Err(changed())),
            None,
            3,
        );
        assert_eq!(u.status, Some(ServerStatus::HostKeyChanged));
        assert_eq!(u.pending.as_deref(), Some("SHA256:new"));
        assert_eq!(kinds(&ev), ["host_key_changed"]);
        // Failures of a changed key do not count towards offline.
        assert_eq!(u.consecutive_failures, None);

        let mut already = server(ServerStatus::HostKeyChanged, 0);
        already.pending_host_key_fingerprint = Some("SHA256:new".into());
        let (_, ev) = transition(&already, &result(Err(changed())), None, 3);
        assert!(ev.is_empty(), "{ev:?}");
    }

    #[test]
    fn a_first_seen_key_is_pinned_only_when_nothing_is_pinned() {
        let ok = || snapshot(Vec::new(), DockerState::Available);
        let mut first = result(Ok(ok()));
        first.host_key = Some(HostKeyCheck::FirstSeen("SHA256:first".into()));
        let mut unpinned = server(ServerStatus::Unknown, 0);
        unpinned.host_key_fingerprint = None;
        let (u, ev) = transition(&unpinned, &first, None, 3);
        assert_eq!(u.pin.as_deref(), Some("SHA256:first"));
        assert_eq!(kinds(&ev), ["host_key_pinned", "server_online"]);

        let (u, _) = transition(&server(ServerStatus::Online, 0), &first, None, 3);
        assert_eq!(u.pin, None);
    }

    #[test]
    fn degraded_and_recovered_are_logged_on_the_change_only() {
        let problem = SectionProblem {
            section: "df".into(),
            cause: crate::model::ProblemCause::Exited {
                status: Some(1),
                error_line: "df: /mnt: Stale file handle".into(),
            },
        };
        let partial = snapshot(vec![problem], DockerState::Available);
        let (u, ev) = transition(
            &server(ServerStatus::Online, 0),
            &result(Ok(partial.clone())),
            None,
            3,
        );
        assert_eq!(kinds(&ev), ["server_degraded"]);
        assert_eq!(
            u.reason,
            Some(Some(
                "command_failed: df exited with status 1: df: /mnt: Stale file handle".into()
            ))
        );

        let mut degraded = server(ServerStatus::Online, 0);
        degraded.reason = Some("command_failed: ...".into());
        let (_, ev) = transition(&degraded, &result(Ok(partial)), None, 3);
        assert!(ev.is_empty(), "{ev:?}");
        let clean = snapshot(Vec::new(), DockerState::Available);
        let (_, ev) = transition(&degraded, &result(Ok(clean)), None, 3);
        assert_eq!(kinds(&ev), ["server_recovered"]);
    }

    #[test]
    fn docker_going_away_is_logged_when_its_note_changes() {
        let missing = || snapshot(Vec::new(), DockerState::Missing);
        let (u, ev) = transition(
            &server(ServerStatus::Online, 0),
            &result(Ok(missing())),
            None,
            3,
        );
        assert_eq!(kinds(&ev), ["docker_unavailable"]);
        let note = u.docker_note.clone().flatten();
        assert!(note.is_some());
        let (u, ev) = transition(
            &server(ServerStatus::Online, 0),
            &result(Ok(missing())),
            note.as_deref(),
            3,
        );
        assert!(ev.is_empty(), "{ev:?}");
        assert!(u.docker_note.is_none(), "unchanged note is not rewritten");
    }
}
