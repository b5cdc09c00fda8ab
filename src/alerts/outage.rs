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
    /// A group crossed the fraction: from now on its members' status notifications wait, and
    /// those of its failing servers not yet sent (still within `group_wait_secs`) are taken
    /// back to wait with them.
    Holding { failing: Vec<Uuid> },
    /// A group crossed the fraction and fell back before it was told of, or was never told
    /// because a group told of covers it: nothing to say, but the alerts it held are due.
    Released { held: Vec<Uuid> },
}

#[derive(Debug, Default)]
struct Group {
    members: HashSet<Uuid>,
    active: Option<Active>,
}

#[derive(Debug)]
struct Active {
    since: DateTime<Utc>,
    held: Vec<Uuid>,
    /// Told of (after the settle time): its end is told too.
    told: bool,
    /// Never to be told: a group told of covers its failing servers (the tag of a rack that
    /// is also its /24). It holds like the other.
    quiet: bool,
}

/// The correlator's state across the writer's batches.
#[derive(Debug)]
pub struct Correlator {
    fraction: f64,
    /// Failures older than this (one poll interval) are not "the same cycle".
    window: Duration,
    /// How long a group stays over the fraction before it is told of, so that the cycle's
    /// failures are in and the group that says most is the one told (`group_wait_secs`).
    settle: Duration,
    groups: HashMap<GroupKey, Group>,
    /// Each server's latest failure: when, and why.
    failing: HashMap<Uuid, (DateTime<Utc>, Outcome)>,
}

/// Fewer members than this are not a group worth correlating: two hosts failing together
/// are two alerts.
const MIN_MEMBERS: usize = 4;

impl Correlator {
    pub fn new(fraction: f64, interval: std::time::Duration, settle: std::time::Duration) -> Self {
        Self {
            fraction: fraction.clamp(0.0, 1.0),
            window: Duration::from_std(interval).unwrap_or(Duration::minutes(1)),
            settle: Duration::from_std(settle).unwrap_or(Duration::seconds(30)),
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
        let mut keys: Vec<&GroupKey> = self.groups.keys().collect();
        keys.sort();
        let first = keys
            .into_iter()
            .find(|k| {
                self.groups
                    .get(*k)
                    .is_some_and(|g| g.active.is_some() && g.members.contains(&server))
            })
            .cloned();
        if let Some(g) = first.and_then(|k| self.groups.get_mut(&k)) {
            if let Some(a) = g.active.as_mut() {
                a.held.push(alert);
            }
        }
    }

    /// Outages told or ended by `now`. A group over the fraction holds its members at once
    /// and is told of once it has stayed over for the settle time; then the groups with the
    /// most failing servers go first (the more specific first on a tie: subnets, tags, the
    /// fleet), and a group whose failing servers a told group covers stays quiet. The fleet
    /// group's start is the poller's own degradation.
    pub fn changes(&mut self, now: DateTime<Utc>) -> Vec<OutageChange> {
        let window = self.window;
        self.failing.retain(|_, (at, _)| now - *at <= window);
        let mut keys: Vec<GroupKey> = self.groups.keys().cloned().collect();
        keys.sort();
        // Each group's failing servers with the commonest reason.
        let mut state: Vec<(GroupKey, Outcome, HashSet<Uuid>, usize)> = Vec::new();
        for key in keys {
            let Some(g) = self.groups.get(&key) else {
                continue;
            };
            let mut by_reason: HashMap<Outcome, HashSet<Uuid>> = HashMap::new();
            for id in &g.members {
                if let Some((_, r)) = self.failing.get(id) {
                    by_reason.entry(*r).or_default().insert(*id);
                }
            }
            let (reason, failing) = by_reason
                .into_iter()
                .max_by_key(|(r, set)| (set.len(), r.index()))
                .unwrap_or((Outcome::Unreachable, HashSet::new()));
            state.push((key, reason, failing, g.members.len()));
        }
        let mut out = Vec::new();
        for (key, _, failing, total) in &state {
            let over =
                *total >= MIN_MEMBERS && failing.len() as f64 > self.fraction * *total as f64;
            let Some(g) = self.groups.get_mut(key) else {
                continue;
            };
            match (&g.active, over) {
                (None, true) => {
                    g.active = Some(Active {
                        since: now,
                        held: Vec::new(),
                        told: false,
                        quiet: false,
                    });
                    let mut ids: Vec<Uuid> = failing.iter().copied().collect();
                    ids.sort();
                    out.push(OutageChange::Holding { failing: ids });
                }
                (Some(_), false) => {
                    if let Some(a) = g.active.take() {
                        if a.told {
                            out.push(OutageChange::Ended {
                                group: key.clone(),
                                since: a.since,
                                held: a.held,
                            });
                        } else if !a.held.is_empty() {
                            out.push(OutageChange::Released { held: a.held });
                        }
                    }
                }
                _ => {}
            }
        }
        let active = |k: &GroupKey| self.groups.get(k).and_then(|g| g.active.as_ref());
        let mut told: Vec<HashSet<Uuid>> = state
            .iter()
            .filter(|(k, ..)| active(k).is_some_and(|a| a.told))
            .map(|(_, _, f, _)| f.clone())
            .collect();
        let mut due: Vec<&(GroupKey, Outcome, HashSet<Uuid>, usize)> = state
            .iter()
            .filter(|(k, ..)| {
                active(k).is_some_and(|a| !a.told && !a.quiet && now - a.since >= self.settle)
            })
            .collect();
        due.sort_by(|a, b| b.2.len().cmp(&a.2.len()).then_with(|| a.0.cmp(&b.0)));
        for (key, reason, failing, total) in due {
            let covered = told.iter().any(|t| failing.is_subset(t));
            let Some(a) = self.groups.get_mut(key).and_then(|g| g.active.as_mut()) else {
                continue;
            };
            if covered {
                a.quiet = true;
                continue;
            }
            a.told = true;
            out.push(OutageChange::Started {
                group: key.clone(),
                reason: *reason,
                failing: failing.len(),
                total: *total,
            });
            told.push(failing.clone());
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
        let mut c = Correlator::new(
            0.3,
            std::time::Duration::from_secs(60),
            std::time::Duration::ZERO,
        );
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
            .filter(|ch| !matches!(ch, OutageChange::Holding { .. }))
            .map(|ch| match ch {
                OutageChange::Started {
                    group,
                    failing,
                    total,
                    ..
                } => format!("{} {failing}/{total}", group.describe()),
                OutageChange::Ended { group, .. } => format!("end {}", group.describe()),
                OutageChange::Released { .. } => "released".into(),
                OutageChange::Holding { .. } => "holding".into(),
            })
            .collect();
        // The rack's tag fails exactly as its /24 does: told once. 40 of 140 is under 0.3 of
        // the fleet: not the poller's own trouble.
        assert_eq!(groups, ["subnet 10.1.2.0/24 40/40"]);
        assert!(c.holds(servers[0].0));
        assert!(!c.holds(servers[50].0));
        let alert = Uuid::new_v4();
        c.hold(servers[0].0, alert);
        assert!(c.changes(t0).is_empty(), "nothing new while it lasts");
        for (id, _, _) in &servers[..40] {
            c.observe(*id, None, t0 + Duration::seconds(90));
        }
        let ended = c.changes(t0 + Duration::seconds(90));
        assert_eq!(ended.len(), 1, "{ended:?}");
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
        let mut c = Correlator::new(
            0.3,
            std::time::Duration::from_secs(60),
            std::time::Duration::ZERO,
        );
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
        let mut c = Correlator::new(
            0.3,
            std::time::Duration::from_secs(60),
            std::time::Duration::ZERO,
        );
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
    fn a_group_is_told_once_the_cycle_is_in_and_the_largest_goes_first() {
        // Failures arrive one by one: the rack's tag (40 members) crosses 30% before its /24
        // (44 members) does; told after the settle time, the /24 says it for both.
        let mut c = Correlator::new(
            0.3,
            std::time::Duration::from_secs(60),
            std::time::Duration::from_secs(10),
        );
        let mut servers = fleet(4, "10.1.2", "steady");
        servers.extend(fleet(40, "10.1.2", "rack-a"));
        servers.extend(fleet(100, "10.9.9", "elsewhere"));
        // The first four share the rack's /24 with other addresses.
        for (i, s) in servers.iter_mut().enumerate().take(4) {
            s.1 = format!("10.1.2.{}", 200 + i);
        }
        load(&mut c, &servers);
        let t0 = Utc::now();
        let mut holding = 0;
        for (i, (id, _, _)) in servers[4..44].iter().enumerate() {
            c.observe(
                *id,
                Some(Outcome::Unreachable),
                t0 + Duration::milliseconds(i as i64 * 50),
            );
            for ch in c.changes(t0 + Duration::milliseconds(i as i64 * 50)) {
                assert!(matches!(ch, OutageChange::Holding { .. }), "{ch:?}");
                holding += 1;
            }
        }
        assert_eq!(
            holding, 2,
            "the tag, then the /24, start holding as they cross"
        );
        assert!(c.holds(servers[10].0), "held while it settles");
        let told = c.changes(t0 + Duration::seconds(11));
        assert_eq!(told.len(), 1, "{told:?}");
        assert!(
            matches!(&told[0], OutageChange::Started { group: GroupKey::Subnet(n), failing: 40, total: 44, .. } if n == "10.1.2.0/24")
        );
    }

    #[test]
    fn a_group_that_falls_back_before_it_is_told_releases_what_it_held() {
        let mut c = Correlator::new(
            0.3,
            std::time::Duration::from_secs(60),
            std::time::Duration::from_secs(10),
        );
        let servers = fleet(10, "10.1.2", "web");
        load(&mut c, &servers);
        let t0 = Utc::now();
        for (id, _, _) in &servers[..5] {
            c.observe(*id, Some(Outcome::Timeout), t0);
        }
        let holding = c.changes(t0);
        // Its /24, its tag and the fleet all cross at once.
        assert_eq!(holding.len(), 3, "{holding:?}");
        assert!(holding
            .iter()
            .all(|h| matches!(h, OutageChange::Holding { failing } if failing.len() == 5)));
        let alert = Uuid::new_v4();
        c.hold(servers[0].0, alert);
        for (id, _, _) in &servers[..5] {
            c.observe(*id, None, t0 + Duration::seconds(5));
        }
        let changes = c.changes(t0 + Duration::seconds(5));
        assert_eq!(changes, [OutageChange::Released { held: vec![alert] }]);
    }

    #[test]
    fn small_groups_are_not_correlated() {
        let mut c = Correlator::new(
            0.3,
            std::time::Duration::from_secs(60),
            std::time::Duration::ZERO,
        );
        let servers = fleet(3, "10.1.2", "pair");
        load(&mut c, &servers);
        let t0 = Utc::now();
        for (id, _, _) in &servers {
            c.observe(*id, Some(Outcome::Unreachable), t0);
        }
        assert!(c.changes(t0).is_empty());
    }
}
