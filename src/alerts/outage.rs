//! Correlation: when more than a fraction of the servers of one group (a /24 or /64, a tag,
//! the whole fleet) fail with the same reason within one interval, that is one outage, not
//! one alert per server. A member's own `server_status` alerts still change state; their
//! notifications are held while the outage lasts and told when it ends if still firing. More
//! than the fraction of the whole fleet failing at once is the poller's own trouble
//! (`poller_degraded`), not a page per host. Pure: the writer feeds it each stored poll.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::outcome::Outcome;

/// A group of servers that fail together when something in front of them fails.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GroupKey {
    /// `10.1.2.0/24`, or the /64 of an IPv6 address.
    Subnet(String),
    Tag(String),
    /// Every enabled server.
    Fleet,
}

impl GroupKey {
    pub fn describe(&self) -> String {
        match self {
            Self::Subnet(s) => format!("subnet {s}"),
            Self::Tag(t) => format!("tag {t}"),
            Self::Fleet => "the whole fleet".into(),
        }
    }
}

/// The subnet a host address belongs to; a name has none (it may resolve anywhere).
pub fn subnet_of(host: &str) -> Option<String> {
    match host.parse::<IpAddr>().ok()? {
        IpAddr::V4(a) => {
            let o = a.octets();
            Some(format!("{}.{}.{}.0/24", o[0], o[1], o[2]))
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            Some(format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3]))
        }
    }
}

/// An outage beginning or ending.
#[derive(Debug, Clone, PartialEq)]
pub enum OutageChange {
    Started {
        group: GroupKey,
        reason: Outcome,
        failing: usize,
        total: usize,
    },
    Ended {
        group: GroupKey,
        since: DateTime<Utc>,
        /// Alerts held during the outage that are still open: tell them now.
        held: Vec<Uuid>,
    },
}

#[derive(Debug, Default)]
struct Group {
    members: HashSet<Uuid>,
    active: Option<Active>,
}

#[derive(Debug)]
struct Active {
    reason: Outcome,
    since: DateTime<Utc>,
    held: Vec<Uuid>,
}

/// The correlator's state across the writer's batches.
#[derive(Debug)]
pub struct Correlator {
    fraction: f64,
    /// Failures older than this (one poll interval) are not "the same cycle".
    window: Duration,
    groups: HashMap<GroupKey, Group>,
    /// Each server's latest failure: when, and why.
    failing: HashMap<Uuid, (DateTime<Utc>, Outcome)>,
}

/// Fewer members than this are not a group worth correlating: two hosts failing together
/// are two alerts.
const MIN_MEMBERS: usize = 4;

impl Correlator {
    pub fn new(fraction: f64, interval: std::time::Duration) -> Self {
        Self {
            fraction: fraction.clamp(0.0, 1.0),
            window: Duration::from_std(interval).unwrap_or(Duration::minutes(1)),
            groups: HashMap::new(),
            failing: HashMap::new(),
        }
    }

    /// Sets who belongs where, from the enabled inventory: (id, host, tags).
    pub fn set_inventory<'a>(
        &mut self,
        servers: impl Iterator<Item = (Uuid, &'a str, &'a [String])>,
    ) {
        for g in self.groups.values_mut() {
            g.members.clear();
        }
        let mut all = HashSet::new();
        for (id, host, tags) in servers {
            all.insert(id);
            self.groups
                .entry(GroupKey::Fleet)
                .or_default()
                .members
                .insert(id);
            if let Some(net) = subnet_of(host) {
                self.groups
                    .entry(GroupKey::Subnet(net))
                    .or_default()
                    .members
                    .insert(id);
            }
            for t in tags {
                self.groups
                    .entry(GroupKey::Tag(t.clone()))
                    .or_default()
                    .members
                    .insert(id);
            }
        }
        self.groups
            .retain(|_, g| !g.members.is_empty() || g.active.is_some());
        self.failing.retain(|id, _| all.contains(id));
    }

    /// Records one stored poll: `None` for a success, the outcome for a failure.
    pub fn observe(&mut self, server: Uuid, failure: Option<Outcome>, now: DateTime<Utc>) {
        match failure {
            Some(reason) => {
                self.failing.insert(server, (now, reason));
            }
            None => {
                self.failing.remove(&server);
            }
        }
    }

    /// Whether this server's notifications are held: it is a member of a group in outage.
    pub fn holds(&self, server: Uuid) -> bool {
        self.groups
            .values()
            .any(|g| g.active.is_some() && g.members.contains(&server))
    }

    /// Notes an alert whose notification was held, to tell it when its outage ends.
    pub fn hold(&mut self, server: Uuid, alert: Uuid) {
        if let Some(g) = self
            .groups
            .values_mut()
            .find(|g| g.active.is_some() && g.members.contains(&server))
        {
            if let Some(a) = g.active.as_mut() {
                a.held.push(alert);
            }
        }
    }

    /// Outages that began or ended by `now`. The fleet group is included: its start is the
    /// poller's degradation.
    pub fn changes(&mut self, now: DateTime<Utc>) -> Vec<OutageChange> {
        let window = self.window;
        self.failing.retain(|_, (at, _)| now - *at <= window);
        let mut out = Vec::new();
        let mut keys: Vec<GroupKey> = self.groups.keys().cloned().collect();
        keys.sort();
        for key in keys {
            let Some(g) = self.groups.get_mut(&key) else {
                continue;
            };
            let total = g.members.len();
            let mut by_reason: HashMap<Outcome, usize> = HashMap::new();
            for id in &g.members {
                if let Some((_, r)) = self.failing.get(id) {
                    *by_reason.entry(*r).or_insert(0) += 1;
                }
            }
            let (reason, failing) = by_reason
                .into_iter()
                .max_by_key(|(r, n)| (*n, r.index()))
                .unwrap_or((Outcome::Unreachable, 0));
            let over = total >= MIN_MEMBERS && failing as f64 > self.fraction * total as f64;
            match (&g.active, over) {
                (None, true) => {
                    g.active = Some(Active {
                        reason,
                        since: now,
                        held: Vec::new(),
                    });
                    out.push(OutageChange::Started {
                        group: key.clone(),
                        reason,
                        failing,
                        total,
                    });
                }
                (Some(_), false) => {
                    if let Some(a) = g.active.take() {
                        out.push(OutageChange::Ended {
                            group: key.clone(),
                            since: a.since,
                            held: a.held,
                        });
                    }
                }
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet(n: usize, net: &str, tag: &str) -> Vec<(Uuid, String, Vec<String>)> {
        (0..n)
            .map(|i| {
                (
                    Uuid::new_v4(),
                    format!("{net}.{}", i + 1),
                    vec![tag.to_string()],
                )
            })
            .collect()
    }

    fn load(c: &mut Correlator, servers: &[(Uuid, String, Vec<String>)]) {
        c.set_inventory(
            servers
                .iter()
                .map(|(id, h, t)| (*id, h.as_str(), t.as_slice())),
        );
    }

    #[test]
    fn subnets_of_addresses_only() {
        assert_eq!(subnet_of("10.1.2.77").as_deref(), Some("10.1.2.0/24"));
        assert_eq!(
            subnet_of("2001:db8:1:2::5").as_deref(),
            Some("2001:db8:1:2::/64")
        );
        assert_eq!(subnet_of("web-1.example.com"), None);
    }

    #[test]
    fn a_subnet_failing_together_is_one_outage_and_one_end() {
        let mut c = Correlator::new(0.3, std::time::Duration::from_secs(60));
        let mut servers = fleet(40, "10.1.2", "rack-a");
        servers.extend(fleet(100, "10.9.9", "rack-b"));
        load(&mut c, &servers);
        let t0 = Utc::now();
        for (id, _, _) in &servers[..40] {
            c.observe(*id, Some(Outcome::Unreachable), t0);
        }
        let changes = c.changes(t0);
        let groups: Vec<String> = changes
            .iter()
            .map(|ch| match ch {
                OutageChange::Started {
                    group,
                    failing,
                    total,
                    ..
                } => format!("{} {failing}/{total}", group.describe()),
                OutageChange::Ended { group, .. } => format!("end {}", group.describe()),
            })
            .collect();
        // 40 of 140 is under 0.3 of the fleet: not the poller's own trouble.
        assert_eq!(groups, ["subnet 10.1.2.0/24 40/40", "tag rack-a 40/40"]);
        assert!(c.holds(servers[0].0));
        assert!(!c.holds(servers[50].0));
        let alert = Uuid::new_v4();
        c.hold(servers[0].0, alert);
        assert!(c.changes(t0).is_empty(), "nothing new while it lasts");
        for (id, _, _) in &servers[..40] {
            c.observe(*id, None, t0 + Duration::seconds(90));
        }
        let ended = c.changes(t0 + Duration::seconds(90));
        assert_eq!(ended.len(), 2);
        let held: Vec<Uuid> = ended
            .iter()
            .flat_map(|e| match e {
                OutageChange::Ended { held, .. } => held.clone(),
                _ => Vec::new(),
            })
            .collect();
        assert_eq!(held, [alert], "told once, by the group that held it");
    }

    #[test]
    fn scattered_failures_or_different_reasons_are_not_an_outage() {
        let mut c = Correlator::new(0.3, std::time::Duration::from_secs(60));
        let servers = fleet(10, "10.1.2", "web");
        load(&mut c, &servers);
        let t0 = Utc::now();
        let reasons = [Outcome::Unreachable, Outcome::AuthFailed, Outcome::Timeout];
        for (i, (id, _, _)) in servers[..6].iter().enumerate() {
            c.observe(*id, Some(reasons[i % 3]), t0);
        }
        assert!(c.changes(t0).is_empty(), "2 of 10 per reason is under 30%");
        // Failures from an earlier cycle do not add up with this one's.
        for (id, _, _) in &servers[6..9] {
            c.observe(*id, Some(Outcome::Timeout), t0 + Duration::seconds(120));
        }
        assert!(c.changes(t0 + Duration::seconds(120)).is_empty());
    }

    #[test]
    fn most_of_the_fleet_failing_at_once_is_the_poller_degraded_and_holds_everyone() {
        let mut c = Correlator::new(0.3, std::time::Duration::from_secs(60));
        let mut servers = fleet(20, "10.1.2", "a");
        servers.extend(fleet(20, "10.1.3", "b"));
        load(&mut c, &servers);
        let t0 = Utc::now();
        for (id, _, _) in servers.iter().step_by(2) {
            c.observe(*id, Some(Outcome::Timeout), t0);
        }
        let changes = c.changes(t0);
        assert!(
            changes.iter().any(|ch| matches!(
                ch,
                OutageChange::Started {
                    group: GroupKey::Fleet,
                    failing: 20,
                    total: 40,
                    ..
                }
            )),
            "{changes:?}"
        );
        assert!(
            c.holds(servers[1].0),
            "even a host still answering is not paged for"
        );
    }

    #[test]
    fn small_groups_are_not_correlated() {
        let mut c = Correlator::new(0.3, std::time::Duration::from_secs(60));
        let servers = fleet(3, "10.1.2", "pair");
        load(&mut c, &servers);
        let t0 = Utc::now();
        for (id, _, _) in &servers {
            c.observe(*id, Some(Outcome::Unreachable), t0);
        }
        assert!(c.changes(t0).is_empty());
    }
}
