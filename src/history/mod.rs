//! What the history keeps and how it is summed up, with no SQL: the series kinds and their
//! fixed-point fields, the tiers (raw samples, hourly and daily rollups), the choice of a tier
//! for a chart, and the arithmetic that turns rows into min/avg/max points. `store` keeps the
//! bytes; this module decides what they mean, so both tiers and every reader agree.
//!
//! Values are stored as integers: percentages and loads in hundredths (what top, df and
//! docker print, at most two decimals), everything else in whole units. Integers delta-encode
//! and compress well (`codec`), and sums of them merge exactly, so a daily average made
//! from hourly rows equals the one made from the raw samples.

pub mod codec;

use codec::Row;

use crate::model::{ContainerSample, DiskSample, ServerSample};

/// What a series describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Host-wide figures from top and free.
    Server,
    /// One mount point, by path.
    Mount,
    /// One container, by name (stable across re-creation, unlike the id).
    Container,
}

/// How a stored integer relates to the figure shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    Unit,
    Hundredths,
}

/// Which summary a chart point shows for a field: the mean, or the largest value for
/// figures that only grow (uptime, cumulative byte counters), whose mean is meaningless.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Summary {
    Mean,
    Max,
}

/// One column of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// The API's name for it.
    pub name: &'static str,
    pub scale: Scale,
    pub summary: Summary,
}

const fn f(name: &'static str, scale: Scale, summary: Summary) -> Field {
    Field {
        name,
        scale,
        summary,
    }
}

use Scale::{Hundredths, Unit};
use Summary::{Max, Mean};

/// Column order is part of the stored format: append, never reorder.
const SERVER_FIELDS: [Field; 17] = [
    f("cpu_busy_percent", Hundredths, Mean),
    f("cpu_user_percent", Hundredths, Mean),
    f("cpu_system_percent", Hundredths, Mean),
    f("cpu_iowait_percent", Hundredths, Mean),
    f("cpu_steal_percent", Hundredths, Mean),
    f("load1", Hundredths, Mean),
    f("load5", Hundredths, Mean),
    f("load15", Hundredths, Mean),
    f("uptime_seconds", Unit, Max),
    f("tasks_total", Unit, Mean),
    f("mem_total_bytes", Unit, Mean),
    f("mem_used_bytes", Unit, Mean),
    f("mem_free_bytes", Unit, Mean),
    f("mem_available_bytes", Unit, Mean),
    f("swap_total_bytes", Unit, Mean),
    f("swap_used_bytes", Unit, Mean),
    // Derived per sample, so its band and average are of the percentage itself.
    f("memory_percent", Hundredths, Mean),
];

const MOUNT_FIELDS: [Field; 4] = [
    f("total_bytes", Unit, Mean),
    f("used_bytes", Unit, Mean),
    f("available_bytes", Unit, Mean),
    f("use_percent", Hundredths, Mean),
];

const CONTAINER_FIELDS: [Field; 9] = [
    f("cpu_percent", Hundredths, Mean),
    f("mem_used_bytes", Unit, Mean),
    f("mem_limit_bytes", Unit, Mean),
    f("mem_percent", Hundredths, Mean),
    f("net_rx_bytes", Unit, Max),
    f("net_tx_bytes", Unit, Max),
    f("block_read_bytes", Unit, Max),
    f("block_write_bytes", Unit, Max),
    f("pids", Unit, Mean),
];

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Server, Kind::Mount, Kind::Container];

    /// The stored number.
    pub fn code(self) -> i64 {
        match self {
            Self::Server => 0,
            Self::Mount => 1,
            Self::Container => 2,
        }
    }

    pub fn from_code(code: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }

    pub fn fields(self) -> &'static [Field] {
        match self {
            Self::Server => &SERVER_FIELDS,
            Self::Mount => &MOUNT_FIELDS,
            Self::Container => &CONTAINER_FIELDS,
        }
    }

    /// The index of a field by its API name.
    pub fn field(self, name: &str) -> Option<usize> {
        self.fields().iter().position(|f| f.name == name)
    }
}

/// A figure as its stored integer; NaN and infinities are not figures and become `None`.
pub fn fixed(v: Option<f64>, scale: Scale) -> Option<i64> {
    let v = v.filter(|v| v.is_finite())?;
    let scaled = match scale {
        Unit => v,
        Hundredths => v * 100.0,
    };
    // `as` saturates at the i64 bounds, which no real figure reaches.
    Some(scaled.round() as i64)
}

/// A stored integer (or a mean of them) as the figure shown.
pub fn unfixed(v: f64, scale: Scale) -> f64 {
    match scale {
        Unit => v,
        Hundredths => v / 100.0,
    }
}

fn whole(v: Option<u64>) -> Option<i64> {
    v.map(|v| i64::try_from(v).unwrap_or(i64::MAX))
}

pub fn server_values(s: &ServerSample) -> Vec<Option<i64>> {
    vec![
        fixed(s.cpu_busy_percent, Hundredths),
        fixed(s.cpu_user_percent, Hundredths),
        fixed(s.cpu_system_percent, Hundredths),
        fixed(s.cpu_iowait_percent, Hundredths),
        fixed(s.cpu_steal_percent, Hundredths),
        fixed(s.load1, Hundredths),
        fixed(s.load5, Hundredths),
        fixed(s.load15, Hundredths),
        whole(s.uptime_seconds),
        whole(s.tasks_total),
        whole(s.mem_total_bytes),
        whole(s.mem_used_bytes),
        whole(s.mem_free_bytes),
        whole(s.mem_available_bytes),
        whole(s.swap_total_bytes),
        whole(s.swap_used_bytes),
        fixed(s.memory_percent(), Hundredths),
    ]
}

pub fn mount_values(d: &DiskSample) -> Vec<Option<i64>> {
    vec![
        whole(d.total_bytes),
        whole(d.used_bytes),
        whole(d.available_bytes),
        fixed(d.use_percent, Hundredths),
    ]
}

pub fn container_values(c: &ContainerSample) -> Vec<Option<i64>> {
    vec![
        fixed(c.cpu_percent, Hundredths),
        whole(c.mem_used_bytes),
        whole(c.mem_limit_bytes),
        fixed(c.mem_percent, Hundredths),
        whole(c.net_rx_bytes),
        whole(c.net_tx_bytes),
        whole(c.block_read_bytes),
        whole(c.block_write_bytes),
        whole(c.pids),
    ]
}

/// True when a container's sample has no figure at all (stopped): such a sample adds
/// nothing to the history, and its state is kept with the latest sample instead.
pub fn all_null(values: &[Option<i64>]) -> bool {
    values.iter().all(Option::is_none)
}

pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 86_400_000;

/// The resolutions history is kept at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Every sample: the open hour as rows, each closed hour as one chunk.
    Raw,
    /// One row per hour; a day's rows in one chunk.
    Hourly,
    /// One row per day, in a chunk of its own.
    Daily,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Tier::Raw, Tier::Hourly, Tier::Daily];

    pub fn code(self) -> i64 {
        match self {
            Self::Raw => 0,
            Self::Hourly => 1,
            Self::Daily => 2,
        }
    }

    pub fn from_code(code: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.code() == code)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Hourly => "hourly",
            Self::Daily => "daily",
        }
    }

    /// The time one stored chunk of this tier covers.
    pub fn chunk_ms(self) -> i64 {
        match self {
            Self::Raw => HOUR_MS,
            Self::Hourly | Self::Daily => DAY_MS,
        }
    }

    /// The time one row of a rollup tier covers (raw rows are one poll apart).
    pub fn row_ms(self, poll_interval_ms: i64) -> i64 {
        match self {
            Self::Raw => poll_interval_ms.max(1),
            Self::Hourly => HOUR_MS,
            Self::Daily => DAY_MS,
        }
    }

    /// The tier whose rows this one is made of.
    pub fn source(self) -> Option<Tier> {
        match self {
            Self::Raw => None,
            Self::Hourly => Some(Self::Raw),
            Self::Daily => Some(Self::Hourly),
        }
    }
}

/// The start of the period of `span` that holds `ts` (UTC-aligned, also before 1970).
pub fn period_start(ts: i64, span: i64) -> i64 {
    ts.div_euclid(span) * span
}

/// How long each tier is kept, and the poll interval (the raw tier's row width).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keep {
    pub raw_ms: i64,
    pub hourly_ms: i64,
    pub daily_ms: i64,
    pub poll_interval_ms: i64,
}

impl Keep {
    pub fn of(self, tier: Tier) -> i64 {
        match tier {
            Tier::Raw => self.raw_ms,
            Tier::Hourly => self.hourly_ms,
            Tier::Daily => self.daily_ms,
        }
    }
}

/// The tier a chart of `since..until` in at most `points` points reads, and the width of
/// its buckets. Among the tiers still holding `since`, the coarsest whose rows are no wider
/// than a bucket (fewest rows read for the same picture); when all are wider, the finest
/// of them; when none holds `since` any more, the longest kept.
pub fn choose(since: i64, until: i64, points: i64, now: i64, keep: Keep) -> (Tier, i64) {
    let width = ((until - since) / points.max(1)).max(1);
    let age = now - since;
    // Retention drops whole chunks, so a tier holds up to one chunk beyond its age: a
    // window just as long as a tier is kept is still that tier's.
    let holding: Vec<Tier> = Tier::ALL
        .into_iter()
        .filter(|t| age <= keep.of(*t).saturating_add(t.chunk_ms()))
        .collect();
    let tier = holding
        .iter()
        .rev()
        .find(|t| t.row_ms(keep.poll_interval_ms) <= width)
        .or_else(|| holding.first())
        .copied()
        .unwrap_or(Tier::Daily);
    (tier, width)
}

/// One field's summary over some samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldAgg {
    /// Samples that had this field.
    pub n: i64,
    pub min: i64,
    pub max: i64,
    pub sum: i64,
}

impl FieldAgg {
    pub fn of(v: i64) -> Self {
        Self {
            n: 1,
            min: v,
            max: v,
            sum: v,
        }
    }

    pub fn merge(self, o: Self) -> Self {
        Self {
            n: self.n.saturating_add(o.n),
            min: self.min.min(o.min),
            max: self.max.max(o.max),
            sum: self.sum.saturating_add(o.sum),
        }
    }
}

fn merge_opt(a: Option<FieldAgg>, b: Option<FieldAgg>) -> Option<FieldAgg> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.merge(b)),
        (a, b) => a.or(b),
    }
}

/// A rollup row: the summary of the samples of one period (`ts` is its start), or of one
/// raw sample (`samples` = 1, min = max = sum = the value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggRow {
    pub ts: i64,
    pub samples: i64,
    pub fields: Vec<Option<FieldAgg>>,
}

impl AggRow {
    /// One raw sample as a summary of itself.
    pub fn of_sample(row: &Row) -> Self {
        Self {
            ts: row.ts,
            samples: 1,
            fields: row.values.iter().map(|v| v.map(FieldAgg::of)).collect(),
        }
    }

    fn absorb(&mut self, o: &AggRow) {
        self.samples = self.samples.saturating_add(o.samples);
        if self.fields.len() < o.fields.len() {
            self.fields.resize(o.fields.len(), None);
        }
        for (mine, theirs) in self.fields.iter_mut().zip(&o.fields) {
            *mine = merge_opt(*mine, *theirs);
        }
    }

    /// As a chunk row: samples, then n, min, max, sum per field (all null when n = 0). A field
    /// shown by its max (uptime, byte counters) keeps no sum: the mean of a counter means
    /// nothing, and its sums were the largest numbers of a rollup row.
    pub fn to_row(&self, fields: &[Field]) -> Row {
        let mut values = Vec::with_capacity(1 + 4 * self.fields.len());
        values.push(Some(self.samples));
        for (i, a) in self.fields.iter().enumerate() {
            let keep_sum = fields.get(i).is_none_or(|f| f.summary == Mean);
            match a {
                Some(a) => values.extend([
                    Some(a.n),
                    Some(a.min),
                    Some(a.max),
                    keep_sum.then_some(a.sum),
                ]),
                None => values.extend([None, None, None, None]),
            }
        }
        Row {
            ts: self.ts,
            values,
        }
    }

    /// Reads a rollup chunk row for a series of `fields` fields; `None` when the row is not
    /// one (a corrupt chunk).
    pub fn from_row(row: &Row, fields: usize) -> Option<Self> {
        if row.values.len() != 1 + 4 * fields {
            return None;
        }
        let samples = row.values[0]?;
        let fields = row.values[1..]
            .chunks_exact(4)
            .map(|c| match (c[0], c[1], c[2], c[3]) {
                (Some(n), Some(min), Some(max), sum) if n > 0 => Some(FieldAgg {
                    n,
                    min,
                    max,
                    sum: sum.unwrap_or(0),
                }),
                _ => None,
            })
            .collect();
        Some(Self {
            ts: row.ts,
            samples,
            fields,
        })
    }
}

/// Sums rows (raw samples or finer rollups) into one row per period of `span`, periods in
/// time order. The same input always gives the same rows, whatever its order: a rerun of a
/// rollup rewrites what it wrote.
pub fn rollup(rows: &[AggRow], span: i64) -> Vec<AggRow> {
    let mut sorted: Vec<&AggRow> = rows.iter().collect();
    sorted.sort_by_key(|r| r.ts);
    let mut out: Vec<AggRow> = Vec::new();
    for r in sorted {
        let start = period_start(r.ts, span);
        match out.last_mut() {
            Some(last) if last.ts == start => last.absorb(r),
            _ => {
                let mut row = AggRow {
                    ts: start,
                    samples: 0,
                    fields: Vec::new(),
                };
                row.absorb(r);
                out.push(row);
            }
        }
    }
    out
}

/// One chart point: each field's summary over the rows of one bucket, as figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// The bucket's start, or its latest row's time (see [`bucket`]).
    pub ts: i64,
    pub samples: i64,
    /// Per field: the mean, or the max for fields summed up by their max.
    pub value: Vec<Option<f64>>,
    pub min: Vec<Option<f64>>,
    pub max: Vec<Option<f64>>,
}

/// Groups rows into buckets of `width` from `since` and summarises each, buckets in order.
/// A point is stamped with its bucket's start when buckets are at least `row_ms` wide (so
/// neighbours are exactly one bucket apart and a chart can tell a gap from a late sample),
/// and with its latest row's time when each bucket holds about one row.
pub fn bucket(rows: &[AggRow], kind: Kind, since: i64, width: i64, row_ms: i64) -> Vec<Point> {
    let fields = kind.fields();
    let width = width.max(1);
    let mut sorted: Vec<&AggRow> = rows.iter().collect();
    sorted.sort_by_key(|r| r.ts);
    let mut groups: Vec<(i64, i64, AggRow)> = Vec::new();
    for r in sorted {
        let b = (r.ts - since).div_euclid(width);
        match groups.last_mut() {
            Some((last, ts, acc)) if *last == b => {
                *ts = r.ts;
                acc.absorb(r);
            }
            _ => {
                let mut acc = AggRow {
                    ts: r.ts,
                    samples: 0,
                    fields: Vec::new(),
                };
                acc.absorb(r);
                groups.push((b, r.ts, acc));
            }
        }
    }
    groups
        .into_iter()
        .map(|(b, last, acc)| {
            let ts = if width >= row_ms {
                since + b * width
            } else {
                last
            };
            let get = |i: usize| acc.fields.get(i).copied().flatten();
            let each = |pick: &dyn Fn(FieldAgg) -> f64| -> Vec<Option<f64>> {
                fields
                    .iter()
                    .enumerate()
                    .map(|(i, f)| get(i).map(|a| unfixed(pick(a), f.scale)))
                    .collect()
            };
            Point {
                ts,
                samples: acc.samples,
                value: fields
                    .iter()
                    .enumerate()
                    .map(|(i, f)| {
                        get(i).map(|a| {
                            let v = match f.summary {
                                Mean => a.sum as f64 / a.n.max(1) as f64,
                                Max => a.max as f64,
                            };
                            unfixed(v, f.scale)
                        })
                    })
                    .collect(),
                min: each(&|a| a.min as f64),
                max: each(&|a| a.max as f64),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEEP: Keep = Keep {
        raw_ms: 7 * DAY_MS,
        hourly_ms: 90 * DAY_MS,
        daily_ms: 730 * DAY_MS,
        poll_interval_ms: 60_000,
    };

    fn tier_for(period_ms: i64) -> Tier {
        let now = 1_000 * DAY_MS;
        choose(now - period_ms, now, 500, now, KEEP).0
    }

    #[test]
    fn a_chart_reads_the_coarsest_tier_that_still_fills_its_points() {
        assert_eq!(tier_for(HOUR_MS), Tier::Raw);
        assert_eq!(tier_for(DAY_MS), Tier::Raw);
        assert_eq!(tier_for(7 * DAY_MS), Tier::Raw);
        assert_eq!(tier_for(30 * DAY_MS), Tier::Hourly);
        assert_eq!(tier_for(90 * DAY_MS), Tier::Hourly);
        // Hourly rows are gone after 90 days: a year is drawn from days.
        assert_eq!(tier_for(365 * DAY_MS), Tier::Daily);
        assert_eq!(tier_for(3000 * DAY_MS), Tier::Daily);
    }

    #[test]
    fn an_old_window_reads_a_tier_that_still_holds_it() {
        let now = 1_000 * DAY_MS;
        // A window as long as a tier is kept, asked a moment later, is still that tier's.
        assert_eq!(
            choose(now - 90 * DAY_MS - 5, now, 500, now, KEEP).0,
            Tier::Hourly
        );
        // One hour, ten days ago: raw is gone, hourly is what is left.
        let (tier, _) = choose(
            now - 10 * DAY_MS,
            now - 10 * DAY_MS + HOUR_MS,
            500,
            now,
            KEEP,
        );
        assert_eq!(tier, Tier::Hourly);
    }

    #[test]
    fn fixed_point_keeps_two_decimals_and_refuses_nan() {
        assert_eq!(fixed(Some(12.34), Hundredths), Some(1234));
        assert_eq!(fixed(Some(100.0 - 97.8), Hundredths), Some(220));
        assert_eq!(fixed(Some(f64::NAN), Hundredths), None);
        assert_eq!(fixed(Some(3.5), Unit), Some(4));
        assert!((unfixed(1234.0, Hundredths) - 12.34).abs() < 1e-9);
    }

    fn raw(ts: i64, values: &[Option<i64>]) -> AggRow {
        AggRow::of_sample(&Row {
            ts,
            values: values.to_vec(),
        })
    }

    #[test]
    fn a_daily_row_made_from_hourly_rows_equals_one_made_from_the_samples() {
        let samples: Vec<AggRow> = (0..48 * 60)
            .map(|i| {
                let v = (i * 7919) % 1000;
                raw(i * 60_000, &[Some(v), (i % 5 != 0).then_some(v * 3)])
            })
            .collect();
        let hourly = rollup(&samples, HOUR_MS);
        assert_eq!(hourly.len(), 48);
        let from_hours = rollup(&hourly, DAY_MS);
        let from_samples = rollup(&samples, DAY_MS);
        assert_eq!(from_hours, from_samples);
        assert_eq!(from_samples[0].samples, 1440);
        // The second field is missing from every fifth sample.
        assert_eq!(from_samples[0].fields[1].map(|a| a.n), Some(1152));
    }

    #[test]
    fn rollup_rows_round_trip_through_chunk_rows_with_their_gaps() {
        let r = rollup(
            &[raw(5, &[Some(1), None]), raw(7, &[Some(3), None])],
            HOUR_MS,
        );
        let row = r[0].to_row(&Kind::Server.fields()[..2]);
        assert_eq!(AggRow::from_row(&row, 2), Some(r[0].clone()));
        assert_eq!(AggRow::from_row(&row, 3), None);
        // A counter keeps its min and max but no sum.
        let c = rollup(&[raw(5, &[None, None, None, None, Some(7)])], HOUR_MS);
        let row = c[0].to_row(Kind::Container.fields());
        assert_eq!(&row.values[17..21], &[Some(1), Some(7), Some(7), None]);
    }

    #[test]
    fn buckets_give_mean_min_max_and_the_max_for_counters() {
        let rows = [
            raw(0, &[Some(1000), None, None, None]),
            raw(60_000, &[Some(3000), None, None, None]),
        ];
        let points = bucket(&rows, Kind::Container, 0, 120_000, 180_000);
        assert_eq!(points.len(), 1);
        assert_eq!(points[0].value[0], Some(20.0));
        assert_eq!(points[0].min[0], Some(10.0));
        assert_eq!(points[0].max[0], Some(30.0));
        assert_eq!(points[0].ts, 60_000);
        let counters = [
            raw(0, &[None, None, None, None, Some(100)]),
            raw(1, &[None, None, None, None, Some(900)]),
        ];
        let p = bucket(&counters, Kind::Container, 0, 10, 60_000);
        assert_eq!(p[0].value[4], Some(900.0));
        // Wide buckets are stamped at their start: neighbours exactly one bucket apart.
        let wide = bucket(&rows, Kind::Container, -30_000, 45_000, 30_000);
        assert_eq!(
            wide.iter().map(|p| p.ts).collect::<Vec<_>>(),
            [-30_000, 60_000]
        );
    }

    #[test]
    fn periods_align_to_utc_also_before_1970() {
        assert_eq!(period_start(HOUR_MS + 5, HOUR_MS), HOUR_MS);
        assert_eq!(period_start(-1, HOUR_MS), -HOUR_MS);
    }
}
