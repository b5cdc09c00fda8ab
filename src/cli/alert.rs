//! `fleetpoll alert rule add|list|edit|remove`, `alert list|ack` and `silence
//! add|list|expire`: the same actions as `/api/alert-rules`, `/api/alerts` and `/api/silences`,
//! through `ops`, audited as the CLI user.

use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use chrono::Utc;
use clap::{Args, Subcommand};
use serde_json::json;

use super::{find, print_json, time};
use crate::activity::Actor;
use crate::alerts::{AlertRule, AlertState, Metric, RuleInput, Scope, SilenceInput, Threshold};
use crate::ops;
use crate::store::{AlertFilter, Store};
use crate::text::for_terminal;

#[derive(Debug, Subcommand)]
pub enum AlertCommand {
    /// Add, list, edit or remove alert rules.
    #[command(subcommand)]
    Rule(RuleCommand),
    /// List alerts, newest first.
    List {
        /// pending, firing or resolved.
        #[arg(long)]
        state: Option<String>,
        /// Server name.
        #[arg(long)]
        server: Option<String>,
        /// Alerts at most.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
    },
    /// Acknowledge an open alert: no more repeats until it resolves.
    Ack {
        /// The alert's id (see `alert list`).
        id: String,
        /// Why, for the activity log.
        #[arg(long)]
        comment: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum RuleCommand {
    /// Add a rule, e.g. `--name "disk full" --metric disk_percent --op '>=' --threshold 90`.
    Add(Box<RuleArgs>),
    /// List the rules.
    List,
    /// Change the named rule: only the options given change (--name renames it).
    Edit {
        /// The rule to change, by its current name.
        #[arg(value_name = "NAME")]
        target: String,
        #[command(flatten)]
        rule: Box<RuleArgs>,
    },
    /// Delete a rule (its alerts resolve).
    Remove {
        /// The rule's name.
        name: String,
    },
}

/// A rule's fields; each optional, so `edit` changes only what is given.
#[derive(Debug, Args)]
pub struct RuleArgs {
    /// The rule's name (unique; `edit --name` renames it).
    #[arg(long)]
    pub name: Option<String>,
    /// cpu_percent, memory_percent, swap_percent, load1_per_core, disk_percent,
    /// container_cpu_percent, container_memory_percent, container_state, server_status,
    /// uptime_seconds, poll_problem.
    #[arg(long)]
    pub metric: Option<String>,
    /// >, >=, <, <=, == or !=.
    #[arg(long, allow_hyphen_values = true)]
    pub op: Option<String>,
    /// A number, or a word for container_state (running, exited, unhealthy, ...) and
    /// server_status (offline, host_key_changed, online).
    #[arg(long, allow_hyphen_values = true)]
    pub threshold: Option<String>,
    /// Fires past --threshold, clears only past this (hysteresis).
    #[arg(long, allow_hyphen_values = true)]
    pub clear_threshold: Option<f64>,
    /// How long the condition must hold before the alert fires.
    #[arg(long)]
    pub for_secs: Option<u64>,
    /// warning or critical.
    #[arg(long)]
    pub severity: Option<String>,
    /// Only servers with this tag (repeatable; with --server, either matches).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Only this server (repeatable).
    #[arg(long = "server")]
    pub servers: Vec<String>,
    /// Mount glob, for disk_percent.
    #[arg(long)]
    pub mount: Option<String>,
    /// Container name glob, for the container metrics.
    #[arg(long)]
    pub container: Option<String>,
    /// Notification channel name (repeatable).
    #[arg(long = "channel")]
    pub channels: Vec<String>,
    /// Re-notify while firing and unacknowledged (0 = never).
    #[arg(long)]
    pub repeat_secs: Option<u64>,
    /// Say nothing when the alert resolves.
    #[arg(long)]
    pub no_notify_resolved: bool,
    /// Keep the rule but stop evaluating it.
    #[arg(long, conflicts_with = "enable")]
    pub disable: bool,
    /// Evaluate a disabled rule again.
    #[arg(long)]
    pub enable: bool,
}

impl RuleArgs {
    /// The input for `ops`; `metric` is the rule's metric after the edit, to read the
    /// threshold as a number or a word.
    fn input(&self, metric: Option<&str>) -> RuleInput {
        let textual = metric
            .and_then(|m| m.parse::<Metric>().ok())
            .is_some_and(Metric::is_textual);
        RuleInput {
            name: self.name.clone(),
            metric: self.metric.clone(),
            op: self.op.clone(),
            threshold: self.threshold.as_ref().map(|t| match t.parse::<f64>() {
                Ok(n) if !textual => json!(n),
                _ => json!(t),
            }),
            clear_threshold: self.clear_threshold.map(Some),
            for_secs: self.for_secs,
            severity: self.severity.clone(),
            scope: (!self.tags.is_empty() || !self.servers.is_empty()).then(|| Scope {
                tags: self.tags.clone(),
                servers: self.servers.clone(),
            }),
            mount: self.mount.clone(),
            container: self.container.clone(),
            channels: (!self.channels.is_empty()).then(|| self.channels.clone()),
            repeat_secs: self.repeat_secs,
            notify_resolved: self.no_notify_resolved.then_some(false),
            enabled: if self.disable {
                Some(false)
            } else {
                self.enable.then_some(true)
            },
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum SilenceCommand {
    /// Silence alerts matching every given matcher, now or in a window ahead.
    Add {
        /// Only alerts of this rule.
        #[arg(long)]
        rule: Option<String>,
        /// Only alerts of this server.
        #[arg(long)]
        server: Option<String>,
        /// Only alerts of servers with this tag.
        #[arg(long)]
        tag: Option<String>,
        /// RFC 3339 start (default now).
        #[arg(long)]
        starts: Option<String>,
        /// RFC 3339 end.
        #[arg(long)]
        ends: Option<String>,
        /// Length instead of --ends, e.g. 2h (at most 7d).
        #[arg(long = "for", value_name = "DURATION", conflicts_with = "ends")]
        length: Option<String>,
        /// Why (required).
        #[arg(long)]
        comment: String,
    },
    /// Silences running or ahead (--all: also those over).
    List {
        /// Also the silences that are over.
        #[arg(long)]
        all: bool,
    },
    /// End a silence now.
    Expire {
        /// The silence's id (see `silence list`).
        id: String,
    },
}

fn id(s: &str) -> anyhow::Result<uuid::Uuid> {
    uuid::Uuid::parse_str(s).map_err(|_| anyhow!("'{s}' is not an id (see the list command)"))
}

async fn rule_named(store: &Store, name: &str) -> anyhow::Result<AlertRule> {
    store
        .alert_rules()
        .await?
        .into_iter()
        .find(|r| r.name == name)
        .ok_or_else(|| anyhow!("no alert rule named '{name}' (see `fleetpoll alert rule list`)"))
}

fn threshold_text(r: &AlertRule) -> String {
    match &r.threshold {
        Threshold::Number(n) => format!("{} {n}", r.op.as_str()),
        Threshold::Word(w) => format!("{} {w}", r.op.as_str()),
    }
}

pub(super) async fn alert(
    store: &Store,
    cmd: AlertCommand,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let actor = Actor::cli();
    match cmd {
        AlertCommand::Rule(RuleCommand::Add(args)) => {
            let rule =
                ops::create_alert_rule(store, &args.input(args.metric.as_deref()), &actor).await?;
            if json {
                print_json(&json!(rule));
            } else {
                println!(
                    "Added alert rule '{}' ({} {}).",
                    rule.name,
                    rule.metric,
                    threshold_text(&rule)
                );
            }
        }
        AlertCommand::Rule(RuleCommand::List) => {
            let rules = store.alert_rules().await?;
            if json {
                print_json(&json!(rules));
            } else {
                println!(
                    "{:<24} {:<8} {:<24} {:<18} {:>6} {:<8} CHANNELS",
                    "NAME", "SEVERITY", "METRIC", "CONDITION", "FOR", "ENABLED"
                );
                for r in &rules {
                    println!(
                        "{:<24} {:<8} {:<24} {:<18} {:>6} {:<8} {}",
                        r.name,
                        r.severity.as_str(),
                        r.metric,
                        threshold_text(r),
                        r.for_secs,
                        if r.enabled { "yes" } else { "no" },
                        r.channels.join(",")
                    );
                }
            }
        }
        AlertCommand::Rule(RuleCommand::Edit { target, rule }) => {
            let current = rule_named(store, &target).await?;
            let metric = rule
                .metric
                .clone()
                .unwrap_or_else(|| current.metric.as_str().to_string());
            let after =
                ops::update_alert_rule(store, current.id, &rule.input(Some(&metric)), &actor)
                    .await?;
            if json {
                print_json(&json!(after));
            } else {
                println!("Updated alert rule '{}'.", after.name);
            }
        }
        AlertCommand::Rule(RuleCommand::Remove { name }) => {
            let current = rule_named(store, &name).await?;
            ops::delete_alert_rule(store, current.id, &actor).await?;
            if !json {
                println!("Removed alert rule '{name}' and its alerts.");
            }
        }
        AlertCommand::List {
            state,
            server,
            limit,
        } => {
            let filter = AlertFilter {
                state: state
                    .as_deref()
                    .map(|s| s.parse::<AlertState>().map_err(|m| anyhow!("--state {m}")))
                    .transpose()?,
                server_id: match &server {
                    Some(name) => Some(find(store, name).await?.id),
                    None => None,
                },
                limit,
                ..Default::default()
            };
            let (total, items) = store.alerts(&filter).await?;
            if json {
                print_json(&json!({ "total": total, "items": items }));
            } else {
                println!(
                    "{:<36} {:<9} {:<8} {:<24} {:<20} {:<20} VALUE",
                    "ID", "STATE", "SEVERITY", "RULE", "SERVER", "STARTED (UTC)"
                );
                for a in &items {
                    let value = match &a.alert.value {
                        Some(crate::alerts::Observed::Number(n)) => format!("{n:.1}"),
                        Some(crate::alerts::Observed::Word(w)) => w.clone(),
                        None => "-".into(),
                    };
                    let on = if a.alert.subject.is_empty() {
                        a.server_name.clone()
                    } else {
                        format!("{} {}", a.server_name, a.alert.subject)
                    };
                    println!(
                        "{:<36} {:<9} {:<8} {:<24} {:<20} {:<20} {}{}",
                        a.alert.id,
                        a.alert.state.as_str(),
                        a.severity,
                        a.rule,
                        for_terminal(&on),
                        a.alert.started_at.format("%Y-%m-%d %H:%M:%S"),
                        for_terminal(&value),
                        if a.alert.acked_at.is_some() {
                            " (acknowledged)"
                        } else {
                            ""
                        }
                    );
                }
                eprintln!("{} of {total} alerts", items.len());
            }
        }
        AlertCommand::Ack { id: alert, comment } => {
            let row = ops::ack_alert(store, id(&alert)?, comment.as_deref(), &actor).await?;
            if json {
                print_json(&json!(row));
            } else {
                println!("Acknowledged '{}' on {}.", row.rule, row.server_name);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn silence(
    store: &Store,
    cmd: SilenceCommand,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let actor = Actor::cli();
    match cmd {
        SilenceCommand::Add {
            rule,
            server,
            tag,
            starts,
            ends,
            length,
            comment,
        } => {
            let starts_at = time(starts.as_deref(), "starts")?;
            let ends_at = match (time(ends.as_deref(), "ends")?, length) {
                (Some(t), _) => Some(t),
                (None, Some(d)) => {
                    let d = crate::auth::parse_duration(&d).map_err(|m| anyhow!("--for: {m}"))?;
                    let d = chrono::Duration::from_std(d).context("--for is too long")?;
                    Some(starts_at.unwrap_or_else(Utc::now) + d)
                }
                (None, None) => bail!("give --ends or --for"),
            };
            let input = SilenceInput {
                rule,
                server,
                tag,
                starts_at,
                ends_at,
                comment: Some(comment),
            };
            let s = ops::create_silence(store, &input, &actor).await?;
            if json {
                print_json(&json!(s));
            } else {
                println!(
                    "Silence {} until {} UTC.",
                    s.id,
                    s.ends_at.format("%Y-%m-%d %H:%M")
                );
            }
        }
        SilenceCommand::List { all } => {
            let items = store.silences(all).await?;
            if json {
                print_json(&json!(items));
            } else {
                println!(
                    "{:<36} {:<20} {:<16} {:<16} {:<17} {:<17} COMMENT",
                    "ID", "RULE", "SERVER", "TAG", "STARTS (UTC)", "ENDS (UTC)"
                );
                for s in &items {
                    println!(
                        "{:<36} {:<20} {:<16} {:<16} {:<17} {:<17} {}",
                        s.id,
                        s.rule.as_deref().unwrap_or("*"),
                        s.server.as_deref().unwrap_or("*"),
                        s.tag.as_deref().unwrap_or("*"),
                        s.starts_at.format("%Y-%m-%d %H:%M"),
                        s.ends_at.format("%Y-%m-%d %H:%M"),
                        for_terminal(&s.comment)
                    );
                }
            }
        }
        SilenceCommand::Expire { id: silence } => {
            let s = ops::expire_silence(store, id(&silence)?, &actor).await?;
            if json {
                print_json(&json!(s));
            } else {
                println!("Silence {} ended.", s.id);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
