//! Binary encodings of history: one BLOB per open sample row, and one compressed BLOB per
//! closed period (a chunk). Pure functions over bytes and integers; which rows go into which
//! chunk, and when, is the store's business, and nothing here touches SQL, I/O or time.
//!
//! Values are fixed-point integers; `None` means the tool did not report one, which is not 0.
//! All arithmetic wraps, so every `i64`, extremes next to each other included, round-trips.
//!
//! # Row blob, version 1
//!
//! ```text
//! u8       version (1)
//! varint   column count n (at most 4,096)
//! [u8]     presence bitmap: ceil(n / 8) bytes, bit i (least significant first) set when
//!          column i has a value; the unused high bits of the last byte are 0
//! varint*  each present value, zigzag, in column order
//! ```
//!
//! A row is written once per poll and read back whole, so it stores values as they are:
//! a small number costs one or two bytes and nothing needs decompressing.
//!
//! # Chunk blob, version 1
//!
//! ```text
//! u8       version (1)
//! u8       body flag: 0 = body stored as is, 1 = body as raw DEFLATE (RFC 1951)
//! varint   row count r (at most 1,000,000)
//! varint   column count c (at most 4,096, and r * c at most 4,194,304)
//! body:
//!   varint*  r timestamps, zigzag: the first as is, the second as a delta, then
//!            delta-of-delta
//!   c times:
//!     u8       mode: 0 all null, 1 delta, 2 delta-of-delta; + 0x80 when a bitmap follows
//!     [u8]     presence bitmap of the r rows as in a row blob, only with 0x80
//!     varint*  residuals of the present values, zigzag, in row order
//! ```
//!
//! Column by column because a metric resembles its own previous sample far more than its
//! neighbours in the same row; predicting from the previous value (delta) suits gauges, and
//! from the previous value plus the previous step (delta-of-delta) suits counters and
//! timestamps, whose steps repeat. Each column takes whichever mode needs fewer bytes before
//! compression; residuals skip nulls, so a gap does not reset the prediction. DEFLATE then
//! squeezes the runs of small residuals, and is kept only when it is smaller.
//!
//! "varint" is unsigned LEB128; "zigzag" maps signed to unsigned so that small magnitudes
//! of either sign stay short (0, -1, 1, -2 → 0, 1, 2, 3). There is no checksum: a corrupt
//! blob that still parses gives wrong values, as any other corrupt column of the database.
//!
//! # Decoding untrusted bytes
//!
//! Blobs come from a database file that may be corrupt, so decoding never panics and never
//! allocates more than the declared shape allows, after checking that shape against the
//! bytes present (every declared row, column or value takes at least one byte). The caps on
//! rows, columns and values (the last keeps a decoded chunk near 64 MiB) are far above any
//! real period: a day of one-second polls is 86,400 rows. Encoding does not enforce them, as
//! it has no error to return: a caller that exceeds them writes a blob that will not decode.

use std::io::{Read, Write};

use flate2::bufread::DeflateDecoder;
use flate2::write::DeflateEncoder;
use flate2::Compression;

const ROW_VERSION: u8 = 1;
const CHUNK_VERSION: u8 = 1;

const BODY_STORED: u8 = 0;
const BODY_DEFLATE: u8 = 1;

const MODE_ALL_NULL: u8 = 0;
const MODE_DELTA: u8 = 1;
const MODE_DELTA_OF_DELTA: u8 = 2;
const MODE_HAS_NULLS: u8 = 0x80;

const MAX_ROWS: usize = 1_000_000;
const MAX_COLUMNS: usize = 4_096;
/// Bounds the decoded `Vec<Row>` (16 bytes per `Option<i64>`) whatever the blob says: an
/// all-null column is one byte on disk however many rows it claims.
const MAX_VALUES: usize = 1 << 22;
const MAX_INFLATED_BYTES: usize = 64 << 20;
/// A `u64` takes at most ten 7-bit groups.
const MAX_VARINT_BYTES: usize = 10;

/// Names of what is being read, for error messages.
const ROW: &str = "row";
const CHUNK: &str = "chunk";
const INFLATED: &str = "inflated chunk body";

/// One row of a chunk: its time in milliseconds since the Unix epoch and one value per column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub ts: i64,
    pub values: Vec<Option<i64>>,
}

/// Why a blob could not be decoded. `blob` names what was being read: `row`, `chunk`, or
/// `inflated chunk body` (whose offsets count from the start of the inflated bytes).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    /// The input ended inside a field; `offset` is where the missing byte would be.
    #[error("{blob} truncated at byte {offset} reading {what}")]
    Truncated {
        blob: &'static str,
        offset: usize,
        what: &'static str,
    },
    /// Written by a later format, or not one of ours at all.
    #[error("unknown {blob} version {version}")]
    UnknownVersion { blob: &'static str, version: u8 },
    /// The chunk's second byte is neither "stored" (0) nor "deflate" (1).
    #[error("unknown chunk body flag {flag}")]
    UnknownBodyFlag { flag: u8 },
    /// Refused however many bytes follow: no series is that wide, so the blob is damaged.
    #[error("{blob} declares {declared} columns, more than {}", MAX_COLUMNS)]
    TooManyColumns { blob: &'static str, declared: u64 },
    /// Refused however many bytes follow: no period holds that many polls.
    #[error("chunk declares {declared} rows, more than {}", MAX_ROWS)]
    TooManyRows { declared: u64 },
    /// Each count is within its cap, but together they would decode to more than 64 MiB.
    #[error(
        "chunk declares {rows} rows of {columns} columns, more than {} values",
        MAX_VALUES
    )]
    TooManyValues { rows: usize, columns: usize },
    /// Checked before allocating for them: each declared item needs at least one byte.
    #[error(
        "{blob} declares {declared} {what} at byte {offset} but only {remaining} bytes remain"
    )]
    DeclaredPastEnd {
        blob: &'static str,
        offset: usize,
        declared: usize,
        what: &'static str,
        remaining: usize,
    },
    /// More than ten bytes, or a tenth byte holding more than bit 63.
    #[error("{blob} varint at byte {offset} does not fit in 64 bits")]
    VarintOverflow { blob: &'static str, offset: usize },
    /// A bitmap has bits set past the last column (row) or row (chunk) it covers.
    #[error("{blob} bitmap at byte {offset} marks values past the {len} it covers")]
    BitmapPadding {
        blob: &'static str,
        offset: usize,
        len: usize,
    },
    /// Mode 0x80 (all null, with a bitmap) is unknown too: an all-null column has none.
    #[error("{blob} column {column} has unknown mode {mode:#04x} at byte {offset}")]
    UnknownMode {
        blob: &'static str,
        column: usize,
        mode: u8,
        offset: usize,
    },
    /// The reason is flate2's message, kept as text so the error stays comparable.
    #[error("chunk body is not valid DEFLATE: {reason}")]
    CorruptDeflate { reason: String },
    /// `limit` is the most the declared rows and columns can need, at most 64 MiB.
    #[error("chunk body inflates to more than {limit} bytes, the most its rows and columns need")]
    InflatedTooLarge { limit: usize },
    /// Bytes after a complete blob, or after the end of its DEFLATE stream: the blob is
    /// not what was written, so none of it is trusted.
    #[error("{blob} has {count} trailing bytes after byte {offset}")]
    TrailingBytes {
        blob: &'static str,
        offset: usize,
        count: usize,
    },
}

/// Encodes one sample row (without its timestamp, which is the table's key).
///
/// Rows wider than 4,096 columns encode but will not decode.
#[must_use]
pub fn encode_row(values: &[Option<i64>]) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(1 + MAX_VARINT_BYTES + values.len().div_ceil(8) + 2 * values.len());
    out.push(ROW_VERSION);
    write_varint(&mut out, values.len() as u64);
    write_bitmap(&mut out, values.iter().map(Option::is_some));
    for value in values.iter().flatten() {
        write_varint(&mut out, zigzag(*value));
    }
    out
}

/// Decodes a blob written by [`encode_row`].
///
/// # Errors
///
/// Any [`CodecError`] that names a `row`: a truncated or overlong blob, an unknown version,
/// more than 4,096 columns, or a malformed bitmap or varint.
pub fn decode_row(bytes: &[u8]) -> Result<Vec<Option<i64>>, CodecError> {
    let mut input = Reader::new(bytes, ROW);
    input.version(ROW_VERSION)?;
    let columns = input.count("the column count", MAX_COLUMNS, |declared| {
        CodecError::TooManyColumns {
            blob: ROW,
            declared,
        }
    })?;
    let present = input.bitmap(columns, "the presence bitmap")?;
    input.expect_room(present.count(), "values")?;
    let mut values = Vec::with_capacity(columns);
    for column in 0..columns {
        values.push(if present.get(column) {
            Some(input.zigzag("a value")?)
        } else {
            None
        });
    }
    input.finish()?;
    Ok(values)
}

/// Encodes the rows of one closed period as one blob, in the order given (callers give
/// them in time order, which compresses best, but any order round-trips).
///
/// `columns` is the width of every row: a shorter row reads back padded with `None`, and
/// the values of a longer row past `columns` are dropped. More than 1,000,000 rows, 4,096
/// columns or 4,194,304 values encode but will not decode.
#[must_use]
pub fn encode_chunk(columns: usize, rows: &[Row]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut times = Predictor::new(Order::DeltaOfDelta);
    for row in rows {
        write_varint(&mut body, zigzag(times.residual(row.ts)));
    }
    for column in 0..columns {
        encode_column(&mut body, rows, column);
    }
    let (flag, body) = match deflate(&body) {
        Some(compressed) if compressed.len() < body.len() => (BODY_DEFLATE, compressed),
        _ => (BODY_STORED, body),
    };
    let mut out = Vec::with_capacity(2 + 2 * MAX_VARINT_BYTES + body.len());
    out.push(CHUNK_VERSION);
    out.push(flag);
    write_varint(&mut out, rows.len() as u64);
    write_varint(&mut out, columns as u64);
    out.extend_from_slice(&body);
    out
}

/// Decodes a blob written by [`encode_chunk`]; every row has the chunk's column count.
///
/// # Errors
///
/// Any [`CodecError`] that names a `chunk` or its inflated body: a truncated or overlong
/// blob, an unknown version, flag or column mode, a declared shape over the caps or larger
/// than the bytes present, a malformed bitmap or varint, or a corrupt DEFLATE stream.
pub fn decode_chunk(bytes: &[u8]) -> Result<Vec<Row>, CodecError> {
    let mut input = Reader::new(bytes, CHUNK);
    input.version(CHUNK_VERSION)?;
    let flag = input.byte("the body flag")?;
    if flag != BODY_STORED && flag != BODY_DEFLATE {
        return Err(CodecError::UnknownBodyFlag { flag });
    }
    let rows = input.count("the row count", MAX_ROWS, |declared| {
        CodecError::TooManyRows { declared }
    })?;
    let columns = input.count("the column count", MAX_COLUMNS, |declared| {
        CodecError::TooManyColumns {
            blob: CHUNK,
            declared,
        }
    })?;
    if rows
        .checked_mul(columns)
        .is_none_or(|values| values > MAX_VALUES)
    {
        return Err(CodecError::TooManyValues { rows, columns });
    }
    if flag == BODY_STORED {
        return decode_body(input, rows, columns);
    }
    let offset = input.offset();
    let body = inflate(input.rest(), offset, body_bound(rows, columns))?;
    decode_body(Reader::new(&body, INFLATED), rows, columns)
}

/// Appends one chunk column: its mode byte, its bitmap when it has nulls, its residuals.
fn encode_column(out: &mut Vec<u8>, rows: &[Row], column: usize) {
    let value_at = move |row: &Row| row.values.get(column).copied().flatten();
    let present = rows.iter().filter_map(value_at);
    let count = present.clone().count();
    if count == 0 {
        out.push(MODE_ALL_NULL);
        return;
    }
    let cost = |order| {
        let mut predictor = Predictor::new(order);
        present
            .clone()
            .map(|value| varint_len(zigzag(predictor.residual(value))))
            .sum::<usize>()
    };
    let order = if cost(Order::DeltaOfDelta) < cost(Order::Delta) {
        Order::DeltaOfDelta
    } else {
        Order::Delta
    };
    let mode = match order {
        Order::Delta => MODE_DELTA,
        Order::DeltaOfDelta => MODE_DELTA_OF_DELTA,
    };
    if count < rows.len() {
        out.push(mode | MODE_HAS_NULLS);
        write_bitmap(out, rows.iter().map(|row| value_at(row).is_some()));
    } else {
        out.push(mode);
    }
    let mut predictor = Predictor::new(order);
    for value in present {
        write_varint(out, zigzag(predictor.residual(value)));
    }
}

/// Decodes the chunk body after the header, whether stored or inflated.
fn decode_body(mut input: Reader<'_>, rows: usize, columns: usize) -> Result<Vec<Row>, CodecError> {
    input.expect_room(rows, "rows")?;
    let mut times = Predictor::new(Order::DeltaOfDelta);
    let mut out = Vec::with_capacity(rows);
    for _ in 0..rows {
        let ts = times.value(input.zigzag("a timestamp")?);
        out.push(Row {
            ts,
            values: Vec::new(),
        });
    }
    input.expect_room(columns, "columns")?;
    for row in &mut out {
        row.values = vec![None; columns];
    }
    for column in 0..columns {
        decode_column(&mut input, &mut out, column)?;
    }
    input.finish()?;
    Ok(out)
}

/// Reads one chunk column into `rows[..].values[column]`, which start as `None`.
fn decode_column(
    input: &mut Reader<'_>,
    rows: &mut [Row],
    column: usize,
) -> Result<(), CodecError> {
    let offset = input.offset();
    let mode = input.byte("a column mode")?;
    let order = match mode & !MODE_HAS_NULLS {
        MODE_ALL_NULL if mode == MODE_ALL_NULL => return Ok(()),
        MODE_DELTA => Order::Delta,
        MODE_DELTA_OF_DELTA => Order::DeltaOfDelta,
        _ => {
            return Err(CodecError::UnknownMode {
                blob: input.blob,
                column,
                mode,
                offset,
            })
        }
    };
    let present = if mode & MODE_HAS_NULLS == 0 {
        None
    } else {
        Some(input.bitmap(rows.len(), "a presence bitmap")?)
    };
    input.expect_room(present.map_or(rows.len(), Bitmap::count), "values")?;
    let mut predictor = Predictor::new(order);
    for (index, row) in rows.iter_mut().enumerate() {
        if present.is_none_or(|bitmap| bitmap.get(index)) {
            let value = predictor.value(input.zigzag("a value")?);
            if let Some(slot) = row.values.get_mut(column) {
                *slot = Some(value);
            }
        }
    }
    Ok(())
}

/// The most bytes a body of this shape can take, so that a small blob cannot inflate into
/// the full 64 MiB when its header promises a few rows.
fn body_bound(rows: usize, columns: usize) -> usize {
    let column = 1usize
        .saturating_add(rows.div_ceil(8))
        .saturating_add(rows.saturating_mul(MAX_VARINT_BYTES));
    rows.saturating_mul(MAX_VARINT_BYTES)
        .saturating_add(columns.saturating_mul(column))
        .min(MAX_INFLATED_BYTES)
}

/// Compresses at the best level: a chunk is written once and read many times.
fn deflate(body: &[u8]) -> Option<Vec<u8>> {
    let mut encoder = DeflateEncoder::new(Vec::with_capacity(body.len()), Compression::best());
    // Writing into a Vec cannot fail; were it to, the stored body is still a valid chunk.
    encoder.write_all(body).ok()?;
    encoder.finish().ok()
}

/// Inflates a chunk body of at most `limit` bytes; `offset` is where `compressed` starts in
/// the blob, for the message about bytes left after the stream's end.
fn inflate(compressed: &[u8], offset: usize, limit: usize) -> Result<Vec<u8>, CodecError> {
    // The bufread decoder consumes exactly the stream's bytes, so what it leaves is garbage.
    // A stream cut short is an error in the locked flate2 (rust-lang/flate2-rs#556); an
    // older one would yield a prefix of the body, which the body's exact counts refuse.
    let mut decoder = DeflateDecoder::new(compressed);
    let mut body = Vec::new();
    decoder
        .by_ref()
        .take((limit as u64).saturating_add(1))
        .read_to_end(&mut body)
        .map_err(|error| CodecError::CorruptDeflate {
            reason: error.to_string(),
        })?;
    if body.len() > limit {
        return Err(CodecError::InflatedTooLarge { limit });
    }
    let rest = decoder.into_inner();
    if !rest.is_empty() {
        return Err(CodecError::TrailingBytes {
            blob: CHUNK,
            offset: offset + (compressed.len() - rest.len()),
            count: rest.len(),
        });
    }
    Ok(body)
}

/// How a column's next value is predicted; only the residual (value minus prediction) is
/// stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    /// The previous value: gauges, which wander around a level.
    Delta,
    /// The previous value plus the previous step: counters and timestamps, which grow at a
    /// steady rate.
    DeltaOfDelta,
}

/// The state shared by encoder and decoder, so both predict the same from the same history.
/// The first value is predicted as 0 and the second as the first (there is no step yet).
#[derive(Debug)]
struct Predictor {
    order: Order,
    started: bool,
    previous: i64,
    step: i64,
}

impl Predictor {
    fn new(order: Order) -> Self {
        Self {
            order,
            started: false,
            previous: 0,
            step: 0,
        }
    }

    fn predict(&self) -> i64 {
        match self.order {
            Order::Delta => self.previous,
            Order::DeltaOfDelta => self.previous.wrapping_add(self.step),
        }
    }

    fn observe(&mut self, value: i64) {
        if self.started {
            self.step = value.wrapping_sub(self.previous);
        }
        self.previous = value;
        self.started = true;
    }

    fn residual(&mut self, value: i64) -> i64 {
        let residual = value.wrapping_sub(self.predict());
        self.observe(value);
        residual
    }

    fn value(&mut self, residual: i64) -> i64 {
        let value = self.predict().wrapping_add(residual);
        self.observe(value);
        value
    }
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)).cast_unsigned()
}

fn unzigzag(value: u64) -> i64 {
    (value >> 1).cast_signed() ^ (value & 1).cast_signed().wrapping_neg()
}

fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(low_byte(value) | 0x80);
        value >>= 7;
    }
    out.push(low_byte(value));
}

fn low_byte(value: u64) -> u8 {
    value.to_le_bytes()[0] & 0x7f
}

fn varint_len(value: u64) -> usize {
    let bits = (u64::BITS - value.leading_zeros()).max(1);
    bits.div_ceil(7) as usize
}

/// Packs flags eight to a byte, least significant bit first.
fn write_bitmap(out: &mut Vec<u8>, flags: impl Iterator<Item = bool>) {
    let mut byte = 0u8;
    let mut bit = 0;
    for flag in flags {
        if flag {
            byte |= 1 << bit;
        }
        bit += 1;
        if bit == 8 {
            out.push(byte);
            byte = 0;
            bit = 0;
        }
    }
    if bit > 0 {
        out.push(byte);
    }
}

/// A presence bitmap as read, its padding already checked to be zero.
#[derive(Debug, Clone, Copy)]
struct Bitmap<'a>(&'a [u8]);

impl Bitmap<'_> {
    fn get(self, index: usize) -> bool {
        self.0
            .get(index / 8)
            .is_some_and(|byte| byte >> (index % 8) & 1 == 1)
    }

    fn count(self) -> usize {
        self.0.iter().map(|byte| byte.count_ones() as usize).sum()
    }
}

/// A cursor over untrusted bytes whose every read is checked; `blob` names what is being
/// read, for messages.
#[derive(Debug)]
struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
    blob: &'static str,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], blob: &'static str) -> Self {
        Self {
            bytes,
            position: 0,
            blob,
        }
    }

    fn offset(&self) -> usize {
        self.position
    }

    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.position)
    }

    fn truncated(&self, what: &'static str) -> CodecError {
        CodecError::Truncated {
            blob: self.blob,
            offset: self.bytes.len(),
            what,
        }
    }

    fn byte(&mut self, what: &'static str) -> Result<u8, CodecError> {
        let byte = *self
            .bytes
            .get(self.position)
            .ok_or_else(|| self.truncated(what))?;
        self.position += 1;
        Ok(byte)
    }

    fn slice(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], CodecError> {
        let slice = self
            .position
            .checked_add(len)
            .and_then(|end| self.bytes.get(self.position..end))
            .ok_or_else(|| self.truncated(what))?;
        self.position += len;
        Ok(slice)
    }

    /// Everything left, for the compressed body.
    fn rest(&mut self) -> &'a [u8] {
        let rest = self.bytes.get(self.position..).unwrap_or_default();
        self.position = self.bytes.len();
        rest
    }

    fn version(&mut self, expected: u8) -> Result<(), CodecError> {
        let version = self.byte("the version")?;
        if version == expected {
            Ok(())
        } else {
            Err(CodecError::UnknownVersion {
                blob: self.blob,
                version,
            })
        }
    }

    fn varint(&mut self, what: &'static str) -> Result<u64, CodecError> {
        let offset = self.offset();
        let mut value = 0u64;
        for group in 0..MAX_VARINT_BYTES {
            let byte = self.byte(what)?;
            // The tenth group holds bit 63 alone; anything more would be silently lost.
            if group == MAX_VARINT_BYTES - 1 && byte > 1 {
                break;
            }
            value |= u64::from(byte & 0x7f) << (7 * group);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(CodecError::VarintOverflow {
            blob: self.blob,
            offset,
        })
    }

    fn zigzag(&mut self, what: &'static str) -> Result<i64, CodecError> {
        self.varint(what).map(unzigzag)
    }

    /// A declared count, refused above `max` with the error `too_many` builds.
    fn count(
        &mut self,
        what: &'static str,
        max: usize,
        too_many: impl FnOnce(u64) -> CodecError,
    ) -> Result<usize, CodecError> {
        let declared = self.varint(what)?;
        match usize::try_from(declared) {
            Ok(count) if count <= max => Ok(count),
            _ => Err(too_many(declared)),
        }
    }

    /// Refuses to go on when `declared` items of at least one byte each cannot fit in what
    /// is left, before anything is allocated for them.
    fn expect_room(&self, declared: usize, what: &'static str) -> Result<(), CodecError> {
        if declared <= self.remaining() {
            Ok(())
        } else {
            Err(CodecError::DeclaredPastEnd {
                blob: self.blob,
                offset: self.offset(),
                declared,
                what,
                remaining: self.remaining(),
            })
        }
    }

    fn bitmap(&mut self, len: usize, what: &'static str) -> Result<Bitmap<'a>, CodecError> {
        let offset = self.offset();
        let bytes = self.slice(len.div_ceil(8), what)?;
        // Zero padding keeps one encoding per row, and a set bit there is a sign of damage.
        let used = len % 8;
        if used != 0 && bytes.last().is_some_and(|last| last >> used != 0) {
            return Err(CodecError::BitmapPadding {
                blob: self.blob,
                offset,
                len,
            });
        }
        Ok(Bitmap(bytes))
    }

    fn finish(self) -> Result<(), CodecError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(CodecError::TrailingBytes {
                blob: self.blob,
                offset: self.offset(),
                count,
            }),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn row(ts: i64, values: &[Option<i64>]) -> Row {
        Row {
            ts,
            values: values.to_vec(),
        }
    }

    /// Deterministic pseudo-random numbers (`SplitMix64`) for the generated series, so the
    /// size figures are the same on every run.
    struct Noise(u64);

    impl Noise {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        /// Uniform in `-amplitude..=amplitude`.
        fn jitter(&mut self, amplitude: i64) -> i64 {
            let span = (2 * amplitude + 1).cast_unsigned();
            (self.next() % span).cast_signed() - amplitude
        }

        /// One step of a random walk kept within `low..=high`.
        fn wander(&mut self, value: i64, step: i64, low: i64, high: i64) -> i64 {
            (value + self.jitter(step)).clamp(low, high)
        }
    }

    const HOUR_START_MS: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
    const GIB: i64 = 1 << 30;
    const MIB: i64 = 1 << 20;

    /// Poll times: every 60 s, each a few milliseconds early or late.
    fn poll_times(noise: &mut Noise, rows: i64) -> Vec<i64> {
        (0..rows)
            .map(|i| HOUR_START_MS + i * 60_000 + noise.jitter(8))
            .collect()
    }

    /// Size of a chunk per value, printed for the record and returned for the assertion.
    fn bytes_per_value(name: &str, columns: usize, rows: &[Row]) -> f64 {
        let blob = encode_chunk(columns, rows);
        assert_eq!(decode_chunk(&blob).unwrap(), rows);
        let values = rows.len() * columns;
        #[allow(clippy::cast_precision_loss, reason = "small counts, printed figure")]
        let per_value = blob.len() as f64 / values as f64;
        println!(
            "{name}: {} rows x {columns} columns = {values} values in {} bytes \
             (body flag {}), {per_value:.3} bytes/value",
            rows.len(),
            blob.len(),
            blob[1]
        );
        per_value
    }

    /// Generated, not captured: an hour of one server's 60 s polls shaped like `top`/`free`
    /// output (CPU and loads in hundredths, uptime in seconds, memory in bytes).
    fn server_hour() -> Vec<Row> {
        let mut noise = Noise(1);
        let (mut user, mut system, mut iowait) = (1_200, 400, 250);
        let (mut load_one, mut load_five, mut load_fifteen) = (80, 75, 70);
        let mut uptime = 3_456_789;
        let mut tasks = 185;
        let mem_total = 8 * GIB;
        let mut mem_used = 3 * GIB + 200 * MIB;
        let mut cache = 2 * GIB;
        let (swap_total, swap_used) = (2 * GIB, 12 * MIB);
        poll_times(&mut noise, 60)
            .into_iter()
            .map(|ts| {
                user = noise.wander(user, 150, 200, 3_000);
                system = noise.wander(system, 60, 200, 3_000);
                iowait = noise.wander(iowait, 40, 200, 3_000);
                let idle = 10_000 - user - system - iowait;
                load_one = noise.wander(load_one, 30, 5, 400);
                load_five += (load_one - load_five) / 5;
                load_fifteen += (load_one - load_fifteen) / 15;
                uptime += 60;
                tasks = noise.wander(tasks, 2, 180, 190);
                let running = 1 + noise.jitter(2).abs();
                // /proc/meminfo counts KiB, hence whole KiB in bytes.
                mem_used = noise.wander(mem_used, 4_096, GIB, 6 * GIB) / 1024 * 1024;
                cache = noise.wander(cache, 512, GIB, 3 * GIB) / 1024 * 1024;
                let mem_free = mem_total - mem_used - cache;
                let values = [
                    user,
                    system,
                    iowait,
                    idle,
                    load_one,
                    load_five,
                    load_fifteen,
                    uptime,
                    tasks,
                    running,
                    mem_total,
                    mem_used,
                    mem_free,
                    cache,
                    swap_total,
                    swap_used,
                ];
                Row {
                    ts,
                    values: values.into_iter().map(Some).collect(),
                }
            })
            .collect()
    }

    /// Generated, not captured: an hour of one container's `docker stats`, with network
    /// and block counters growing at a steady rate.
    fn container_hour() -> Vec<Row> {
        let mut noise = Noise(2);
        let mut cpu = 150;
        let mem_limit = 512 * MIB;
        let mut mem_used = 150 * MIB;
        let (mut rx, mut tx) = (9_876_543_210_i64, 1_234_567_890_i64);
        let (mut block_read, mut block_write) = (45 * MIB, 300 * MIB);
        let mut pids = 22;
        poll_times(&mut noise, 60)
            .into_iter()
            .map(|ts| {
                cpu = noise.wander(cpu, 40, 0, 400);
                mem_used = noise.wander(mem_used, 256 * 1024, 100 * MIB, 200 * MIB);
                let mem_pct = mem_used * 10_000 / mem_limit;
                rx += 1_250_000 + noise.jitter(1_000);
                tx += 310_000 + noise.jitter(300);
                if noise.next().is_multiple_of(10) {
                    block_read += 4_096 * (1 + noise.jitter(3).abs());
                }
                block_write += 40_960 * (noise.jitter(2) + 2);
                pids = noise.wander(pids, 1, 20, 24);
                let values = [
                    cpu,
                    mem_used,
                    mem_limit,
                    mem_pct,
                    rx,
                    tx,
                    block_read,
                    block_write,
                    pids,
                ];
                Row {
                    ts,
                    values: values.into_iter().map(Some).collect(),
                }
            })
            .collect()
    }

    /// Generated, not captured: an hour of one mount's `df -P` (1K blocks, in bytes).
    fn disk_hour() -> Vec<Row> {
        let mut noise = Noise(3);
        let size = 100 * GIB;
        let reserved = size / 20;
        let mut used = 37 * GIB;
        poll_times(&mut noise, 60)
            .into_iter()
            .map(|ts| {
                used += 1_024 * (noise.next() % 64).cast_signed();
                let available = size - reserved - used;
                let used_pct = used * 10_000 / (used + available);
                Row {
                    ts,
                    values: vec![Some(size), Some(used), Some(available), Some(used_pct)],
                }
            })
            .collect()
    }

    #[test]
    fn a_generated_server_hour_takes_at_most_3_bytes_per_value() {
        assert!(bytes_per_value("server hour", 16, &server_hour()) <= 3.0);
    }

    #[test]
    fn a_generated_container_hour_takes_at_most_3_bytes_per_value() {
        assert!(bytes_per_value("container hour", 9, &container_hour()) <= 3.0);
    }

    #[test]
    fn a_generated_disk_hour_takes_at_most_3_bytes_per_value() {
        assert!(bytes_per_value("disk hour", 4, &disk_hour()) <= 3.0);
    }

    #[test]
    fn jittered_minute_timestamps_take_about_one_byte_each_before_compression() {
        let mut noise = Noise(4);
        let mut body = Vec::new();
        let mut times = Predictor::new(Order::DeltaOfDelta);
        for ts in poll_times(&mut noise, 60) {
            write_varint(&mut body, zigzag(times.residual(ts)));
        }
        // 6 bytes for the first, 3 for the first step, then one per delta-of-delta.
        assert!(body.len() <= 6 + 3 + 58, "{} bytes", body.len());
    }

    #[test]
    fn counters_take_delta_of_delta_and_gauges_take_delta() {
        let rows: Vec<Row> = (0..60)
            .map(|i| row(i, &[Some(1_000_000 + i * 125_000), Some(500 + (i % 7) * 9)]))
            .collect();
        let mut counter = Vec::new();
        encode_column(&mut counter, &rows, 0);
        assert_eq!(counter[0], MODE_DELTA_OF_DELTA);
        let mut gauge = Vec::new();
        encode_column(&mut gauge, &rows, 1);
        assert_eq!(gauge[0], MODE_DELTA);
    }

    #[test]
    fn a_row_of_small_values_takes_one_or_two_bytes_per_value() {
        let values: Vec<Option<i64>> = (0..16).map(|i| Some(i * 8 - 64)).collect();
        let blob = encode_row(&values);
        // version, count, 2 bitmap bytes, one byte per value in -64..64
        assert_eq!(blob.len(), 1 + 1 + 2 + 16);
        assert_eq!(decode_row(&blob).unwrap(), values);
    }

    #[test]
    fn extremes_next_to_each_other_round_trip() {
        let extremes = [i64::MIN, i64::MAX, i64::MIN, -1, i64::MAX, 0, i64::MIN + 1];
        let values: Vec<Option<i64>> = extremes.iter().copied().map(Some).collect();
        assert_eq!(decode_row(&encode_row(&values)).unwrap(), values);
        let rows: Vec<Row> = extremes.iter().map(|&ts| row(ts, &values)).collect();
        assert_eq!(
            decode_chunk(&encode_chunk(values.len(), &rows)).unwrap(),
            rows
        );
    }

    #[test]
    fn zero_rows_round_trip_and_cost_a_byte_per_column() {
        let blob = encode_chunk(5, &[]);
        assert_eq!(blob, [CHUNK_VERSION, BODY_STORED, 0, 5, 0, 0, 0, 0, 0]);
        assert_eq!(decode_chunk(&blob).unwrap(), []);
    }

    #[test]
    fn zero_columns_round_trip_with_their_timestamps() {
        let rows = vec![row(5, &[]), row(-3, &[]), row(i64::MAX, &[])];
        assert_eq!(decode_chunk(&encode_chunk(0, &rows)).unwrap(), rows);
        assert_eq!(decode_row(&encode_row(&[])).unwrap(), []);
        assert_eq!(encode_row(&[]), [ROW_VERSION, 0]);
    }

    #[test]
    fn an_all_null_column_is_one_mode_byte_without_a_bitmap() {
        let rows: Vec<Row> = (0..100).map(|i| row(i * 1000, &[None, Some(i)])).collect();
        let mut column = Vec::new();
        encode_column(&mut column, &rows, 0);
        assert_eq!(column, [MODE_ALL_NULL]);
        assert_eq!(decode_chunk(&encode_chunk(2, &rows)).unwrap(), rows);
        assert_eq!(decode_row(&encode_row(&[None; 9])).unwrap(), [None; 9]);
    }

    #[test]
    fn a_column_with_gaps_carries_a_bitmap_and_keeps_predicting_across_them() {
        let rows: Vec<Row> = (0..20)
            .map(|i| row(i, &[(i % 3 != 0).then_some(1_000 + 10 * i)]))
            .collect();
        let mut column = Vec::new();
        encode_column(&mut column, &rows, 0);
        assert_eq!(column[0], MODE_HAS_NULLS | MODE_DELTA);
        assert_eq!(decode_chunk(&encode_chunk(1, &rows)).unwrap(), rows);
    }

    #[test]
    fn short_rows_read_back_padded_and_long_rows_cut_to_the_column_count() {
        let rows = vec![
            row(1, &[Some(1)]),
            row(2, &[Some(1), Some(2), Some(3), Some(4)]),
        ];
        let expected = vec![
            row(1, &[Some(1), None, None]),
            row(2, &[Some(1), Some(2), Some(3)]),
        ];
        assert_eq!(decode_chunk(&encode_chunk(3, &rows)).unwrap(), expected);
    }

    #[test]
    fn a_truncated_row_names_the_byte_and_the_field() {
        let blob = encode_row(&[Some(1), None, Some(300)]);
        assert_eq!(
            decode_row(&blob[..blob.len() - 1]),
            Err(CodecError::Truncated {
                blob: ROW,
                offset: blob.len() - 1,
                what: "a value",
            })
        );
        assert_eq!(
            decode_row(&[]).unwrap_err().to_string(),
            "row truncated at byte 0 reading the version"
        );
        assert_eq!(
            decode_row(&[ROW_VERSION, 9]).unwrap_err().to_string(),
            "row truncated at byte 2 reading the presence bitmap"
        );
    }

    #[test]
    fn a_truncated_chunk_names_the_byte_and_the_field() {
        let rows: Vec<Row> = (0..3)
            .map(|i| row(i * 7919, &[Some(i * i * 1_000_003)]))
            .collect();
        let blob = encode_chunk(1, &rows);
        assert_eq!(blob[1], BODY_STORED, "this test needs a stored body");
        for cut in 0..blob.len() {
            // Cut inside the body, the first check to fail may be the room for the rows.
            match decode_chunk(&blob[..cut]) {
                Err(CodecError::Truncated { offset, .. }) => assert_eq!(offset, cut),
                Err(CodecError::DeclaredPastEnd { .. }) => {}
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
        assert_eq!(
            decode_chunk(&blob[..blob.len() - 1])
                .unwrap_err()
                .to_string(),
            format!("chunk truncated at byte {} reading a value", blob.len() - 1)
        );
    }

    #[test]
    fn a_truncated_compressed_chunk_is_an_error() {
        let rows = server_hour();
        let blob = encode_chunk(16, &rows);
        assert_eq!(blob[1], BODY_DEFLATE, "this test needs a compressed body");
        for cut in 0..blob.len() {
            assert!(decode_chunk(&blob[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn unknown_versions_flags_and_modes_are_refused() {
        assert_eq!(
            decode_chunk(&[9, 0, 0, 0]).unwrap_err().to_string(),
            "unknown chunk version 9"
        );
        assert_eq!(
            decode_row(&[2, 0]).unwrap_err().to_string(),
            "unknown row version 2"
        );
        assert_eq!(
            decode_chunk(&[CHUNK_VERSION, 7, 0, 0]),
            Err(CodecError::UnknownBodyFlag { flag: 7 })
        );
        // One row at ts 0, one column of mode 3.
        assert_eq!(
            decode_chunk(&[CHUNK_VERSION, BODY_STORED, 1, 1, 0, 3, 0]),
            Err(CodecError::UnknownMode {
                blob: CHUNK,
                column: 0,
                mode: 3,
                offset: 5,
            })
        );
        // All null "with a bitmap" is not a mode either.
        assert!(matches!(
            decode_chunk(&[CHUNK_VERSION, BODY_STORED, 1, 1, 0, 0x80, 0]),
            Err(CodecError::UnknownMode { mode: 0x80, .. })
        ));
    }

    fn varint(value: u64) -> Vec<u8> {
        let mut out = Vec::new();
        write_varint(&mut out, value);
        out
    }

    #[test]
    fn oversized_declared_counts_are_refused_before_allocating() {
        let mut blob = vec![CHUNK_VERSION, BODY_STORED];
        blob.extend(varint(9_999_999));
        blob.extend(varint(1));
        assert_eq!(
            decode_chunk(&blob).unwrap_err().to_string(),
            "chunk declares 9999999 rows, more than 1000000"
        );

        let mut blob = vec![CHUNK_VERSION, BODY_STORED, 1];
        blob.extend(varint(5_000));
        assert_eq!(
            decode_chunk(&blob).unwrap_err().to_string(),
            "chunk declares 5000 columns, more than 4096"
        );

        let mut blob = vec![ROW_VERSION];
        blob.extend(varint(u64::MAX));
        assert_eq!(
            decode_row(&blob),
            Err(CodecError::TooManyColumns {
                blob: ROW,
                declared: u64::MAX,
            })
        );

        let mut blob = vec![CHUNK_VERSION, BODY_STORED];
        blob.extend(varint(1_000_000));
        blob.extend(varint(4_096));
        assert_eq!(
            decode_chunk(&blob),
            Err(CodecError::TooManyValues {
                rows: 1_000_000,
                columns: 4_096,
            })
        );

        // Within the caps, but far more rows than bytes.
        let mut blob = vec![CHUNK_VERSION, BODY_STORED];
        blob.extend(varint(1_000_000));
        blob.extend(varint(1));
        blob.extend([0, 0, 0]);
        let at = blob.len() - 3;
        assert_eq!(
            decode_chunk(&blob).unwrap_err().to_string(),
            format!("chunk declares 1000000 rows at byte {at} but only 3 bytes remain")
        );

        // A bitmap that says 16 values are present, with 2 bytes after it.
        assert_eq!(
            decode_row(&[ROW_VERSION, 16, 0xff, 0xff, 1, 2]),
            Err(CodecError::DeclaredPastEnd {
                blob: ROW,
                offset: 4,
                declared: 16,
                what: "values",
                remaining: 2,
            })
        );
    }

    #[test]
    fn an_inflation_bomb_stops_at_what_the_shape_needs() {
        // One row of one column needs at most 10 + 1 + 1 + 10 bytes; offer a mebibyte.
        let mut blob = vec![CHUNK_VERSION, BODY_DEFLATE, 1, 1];
        blob.extend(deflate(&vec![0; 1 << 20]).unwrap());
        assert_eq!(
            decode_chunk(&blob),
            Err(CodecError::InflatedTooLarge {
                limit: body_bound(1, 1)
            })
        );
    }

    #[test]
    fn trailing_bytes_are_refused_wherever_they_are() {
        let mut blob = encode_row(&[Some(1)]);
        blob.push(0);
        assert_eq!(
            decode_row(&blob).unwrap_err().to_string(),
            "row has 1 trailing bytes after byte 4"
        );

        let mut blob = encode_chunk(1, &[row(1, &[Some(1)])]);
        assert_eq!(blob[1], BODY_STORED);
        blob.extend([0, 0]);
        assert!(matches!(
            decode_chunk(&blob),
            Err(CodecError::TrailingBytes {
                blob: CHUNK,
                count: 2,
                ..
            })
        ));

        // After the end of the DEFLATE stream.
        let rows = server_hour();
        let mut blob = encode_chunk(16, &rows);
        assert_eq!(blob[1], BODY_DEFLATE);
        let end = blob.len();
        blob.push(0x55);
        assert_eq!(
            decode_chunk(&blob),
            Err(CodecError::TrailingBytes {
                blob: CHUNK,
                offset: end,
                count: 1,
            })
        );

        // Inside the stream, after the last column: one row at ts 0, one all-null column.
        let mut blob = vec![CHUNK_VERSION, BODY_DEFLATE, 1, 1];
        blob.extend(deflate(&[0, MODE_ALL_NULL, 7, 7]).unwrap());
        assert_eq!(
            decode_chunk(&blob),
            Err(CodecError::TrailingBytes {
                blob: INFLATED,
                offset: 2,
                count: 2,
            })
        );
    }

    #[test]
    fn corrupt_deflate_and_bad_bitmaps_and_long_varints_are_errors() {
        assert!(matches!(
            decode_chunk(&[CHUNK_VERSION, BODY_DEFLATE, 0, 0, 0xff, 0xff]),
            Err(CodecError::CorruptDeflate { .. })
        ));
        // Three columns, so bits 3..8 of the bitmap must be clear.
        assert_eq!(
            decode_row(&[ROW_VERSION, 3, 0b1000_0001, 2]),
            Err(CodecError::BitmapPadding {
                blob: ROW,
                offset: 2,
                len: 3,
            })
        );
        let mut blob = vec![ROW_VERSION, 1, 1];
        blob.extend([0xff; 9]);
        blob.push(0x02);
        assert_eq!(
            decode_row(&blob),
            Err(CodecError::VarintOverflow {
                blob: ROW,
                offset: 3,
            })
        );
        // The largest ten-byte varint is still fine.
        let mut blob = vec![ROW_VERSION, 1, 1];
        blob.extend(varint(u64::MAX));
        assert_eq!(decode_row(&blob).unwrap(), [Some(i64::MIN)]);
    }

    fn any_value() -> impl Strategy<Value = i64> {
        prop_oneof![
            4 => any::<i64>(),
            3 => -1_000i64..1_000,
            1 => Just(i64::MIN),
            1 => Just(i64::MAX),
            1 => Just(i64::MIN + 1),
            1 => Just(i64::MAX - 1),
            1 => Just(0i64),
        ]
    }

    fn any_chunk() -> impl Strategy<Value = (usize, Vec<Row>)> {
        (0usize..40).prop_flat_map(|columns| {
            let row = (
                any_value(),
                prop::collection::vec(prop::option::of(any_value()), columns),
            )
                .prop_map(|(ts, values)| Row { ts, values });
            (Just(columns), prop::collection::vec(row, 0..200))
        })
    }

    /// Regular times and small walks with gaps: the chunks that take the DEFLATE path.
    fn smooth_chunk() -> impl Strategy<Value = (usize, Vec<Row>)> {
        (1usize..20, 1usize..200).prop_flat_map(|(columns, rows)| {
            let steps = prop::collection::vec(
                (
                    -5i64..5,
                    prop::collection::vec(prop::option::weighted(0.9, -3i64..3), columns),
                ),
                rows,
            );
            (Just(columns), steps).prop_map(|(columns, steps)| {
                let mut level = vec![0i64; columns];
                let rows = steps
                    .into_iter()
                    .enumerate()
                    .map(|(i, (jitter, deltas))| Row {
                        ts: HOUR_START_MS + 60_000 * i64::try_from(i).unwrap() + jitter,
                        values: deltas
                            .into_iter()
                            .zip(&mut level)
                            .map(|(delta, level)| {
                                delta.map(|delta| {
                                    *level += delta;
                                    *level
                                })
                            })
                            .collect(),
                    })
                    .collect();
                (columns, rows)
            })
        })
    }

    proptest::proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_chunk_round_trips((columns, rows) in any_chunk()) {
            prop_assert_eq!(decode_chunk(&encode_chunk(columns, &rows))?, rows);
        }

        #[test]
        fn smooth_chunks_round_trip_compressed((columns, rows) in smooth_chunk()) {
            let blob = encode_chunk(columns, &rows);
            prop_assert_eq!(decode_chunk(&blob)?, rows);
        }

        #[test]
        fn any_row_round_trips(values in prop::collection::vec(prop::option::of(any_value()), 0..300)) {
            prop_assert_eq!(decode_row(&encode_row(&values))?, values);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_row(&bytes);
            let _ = decode_chunk(&bytes);
            // Past the version and flag checks, so the rest of the parser sees them too.
            for prefix in [[CHUNK_VERSION, BODY_STORED], [CHUNK_VERSION, BODY_DEFLATE]] {
                let _ = decode_chunk(&[&prefix[..], &bytes].concat());
            }
            let _ = decode_row(&[&[ROW_VERSION][..], &bytes].concat());
        }

        #[test]
        fn damaged_blobs_never_panic(
            (columns, rows) in prop_oneof![any_chunk(), smooth_chunk()],
            damage in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut chunk = encode_chunk(columns, &rows);
            let mut row_blob = rows.first().map_or_else(Vec::new, |row| encode_row(&row.values));
            for blob in [&mut chunk, &mut row_blob] {
                if blob.is_empty() {
                    continue;
                }
                for (at, flip) in &damage {
                    let at = at.index(blob.len());
                    blob[at] ^= flip;
                }
            }
            let _ = decode_chunk(&chunk);
            let _ = decode_chunk(&chunk[..cut.index(chunk.len() + 1)]);
            let _ = decode_row(&row_blob);
            let _ = decode_row(&row_blob[..cut.index(row_blob.len() + 1)]);
        }
    }
}
