//! The rows of a run held until their slot file can be written, in memory bounded
//! however many targets (docs/design.md, "Memory").
//!
//! A row is held as a 24-byte [`Point`]: a series id, a stream id, the timestamp and the
//! value. The strings (room, user, indicator, unit, stream) live once per run in an
//! interner and the series `(room, user, product type, indicator, unit)` once in a
//! table, so a row costs no allocation. Past a budget of points held in memory, every
//! slot's points are sorted, deduplicated and appended to disk as a sorted *part*
//! (raw points, no strings: ids stay valid for the whole run) under the spill
//! directory. Writing a slot is then a k-way merge of its parts, its points still in
//! memory and the old file's kept rows, in the slot file's
//! key order (room, user, product type, indicator, interval, timestamp, stream), straight
//! into the Parquet encoder: memory is the budget plus one encoded file.
//!
//! Ties keep the input given last: the result is that of a stable sort of the
//! concatenation `old file ++ parts ++ memory` keeping the later of equal keys, so a
//! new row always wins over an old one.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::fs::File;
use std::hash::{BuildHasher, RandomState};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hashbrown::HashTable;

use crate::domain::ProductType;
use crate::sink::RowRef;

/// Points held in memory, over all slots, before they are spilled: 6 MB of points
/// (up to twice that in `Vec` slack, plus a sort buffer). Measured at 2,000 targets: a
/// budget of 1 Mi points peaked at 129 MB RSS, 100 k at 59 MB, for the same CPU time.
pub const DEFAULT_SPILL_POINTS: usize = 1 << 18;

/// Bytes of one point on disk.
const POINT_BYTES: usize = 24;

/// One row: ids into the [`RowStore`] tables.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub(crate) series: u32,
    /// 0 for no stream, else a string id + 1.
    pub(crate) stream: u32,
    pub(crate) ts: i64,
    pub(crate) value: f64,
}

impl Point {
    fn to_bytes(self) -> [u8; POINT_BYTES] {
        let mut b = [0u8; POINT_BYTES];
        b[0..4].copy_from_slice(&self.series.to_le_bytes());
        b[4..8].copy_from_slice(&self.stream.to_le_bytes());
        b[8..16].copy_from_slice(&self.ts.to_le_bytes());
        b[16..24].copy_from_slice(&self.value.to_le_bytes());
        b
    }

    fn from_bytes(b: &[u8; POINT_BYTES]) -> Self {
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[8..16]);
        let ts = i64::from_le_bytes(w);
        w.copy_from_slice(&b[16..24]);
        Point {
            series: u32_at(0),
            stream: u32_at(4),
            ts,
            value: f64::from_le_bytes(w),
        }
    }
}

/// The identity of a series, as string ids: 24 bytes, one per series of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct SeriesHead {
    /// [`NO_ID`] for none.
    room: u32,
    /// [`NO_ID`] for none.
    user: u32,
    product_type: ProductType,
    indicator: u32,
    unit: u32,
    /// Seconds a point covers: real-time and recovered points are distinct series.
    interval: i32,
}

/// The id of an absent room or user (ids count up from 0; a run never has 2^32 strings).
const NO_ID: u32 = u32::MAX;

impl SeriesHead {
    fn room(&self) -> Option<u32> {
        (self.room != NO_ID).then_some(self.room)
    }

    fn user(&self) -> Option<u32> {
        (self.user != NO_ID).then_some(self.user)
    }
}

/// The series of a row, by its strings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SeriesOf<'a> {
    pub(crate) room: Option<&'a str>,
    pub(crate) user: Option<&'a str>,
    pub(crate) product_type: ProductType,
    pub(crate) indicator: &'a str,
    pub(crate) unit: &'a str,
    pub(crate) interval_s: i32,
}

/// Read buffers of all the parts one slot merges, together: the parts of a slot grow
/// with the rows of a run, their buffers must not.
const MERGE_READ_BYTES: usize = 1 << 20;

/// The rows of one slot file: points in memory and sorted parts on disk.
#[derive(Debug, Default)]
pub struct SlotRows {
    mem: Vec<Point>,
    parts: Vec<PathBuf>,
}

impl SlotRows {
    pub(crate) fn is_empty(&self) -> bool {
        self.mem.is_empty() && self.parts.is_empty()
    }
}

/// Orders of series and streams by their strings, for one table size.
#[derive(Debug, Default)]
struct Ranks {
    series_len: usize,
    strings_len: usize,
    /// Dense rank of each series by (room, user, product type, indicator, interval):
    /// unit is not part of a row's key.
    series: Vec<u32>,
    /// Rank of each stream value (index 0: none, first).
    stream: Vec<u32>,
}

/// A point's place in a slot file: series rank, time, stream rank.
type Key = (u32, i64, u32);

/// The strings, series and spill files of one run.
#[derive(Debug)]
pub struct RowStore {
    strings: Vec<Arc<str>>,
    string_ids: HashMap<Arc<str>, u32>,
    /// The string interned last.
    last_string: Option<u32>,
    series: Vec<SeriesHead>,
    /// Ids into `series`, found by the head's hash: 5 bytes a series where a map from
    /// heads to ids would hold a second copy of every head (about 4 MB at 80,000 series).
    series_ids: HashTable<u32>,
    hasher: RandomState,
    ranks: Ranks,
    dir: PathBuf,
    dir_made: bool,
    budget: usize,
    held: usize,
    next_part: u64,
    /// Points written to parts so far.
    pub(crate) spilled: u64,
    /// The buffer sorted runs are copied into, kept from sort to sort.
    scratch: Vec<Point>,
}

impl RowStore {
    /// A store spilling under `dir` (created on first use, removed by `Self::cleanup`
    /// and on drop) once more than `budget` points are held.
    pub fn new(dir: PathBuf, budget: usize) -> Self {
        RowStore {
            strings: Vec::new(),
            string_ids: HashMap::new(),
            last_string: None,
            series: Vec::new(),
            series_ids: HashTable::new(),
            hasher: RandomState::new(),
            ranks: Ranks::default(),
            dir,
            dir_made: false,
            budget: budget.max(1),
            held: 0,
            next_part: 0,
            spilled: 0,
            scratch: Vec::new(),
        }
    }

    /// The spill directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn intern(&mut self, s: &str) -> u32 {
        // Strings come in runs (a stream id on every point of a series, the same room
        // for every series of an answer): the last one saves hashing most of them.
        if let Some(last) = self.last_string
            && *self.strings[last as usize] == *s
        {
            return last;
        }
        let id = match self.string_ids.get(s) {
            Some(&id) => id,
            None => {
                let id = self.strings.len() as u32;
                let s: Arc<str> = Arc::from(s);
                self.strings.push(s.clone());
                self.string_ids.insert(s, id);
                id
            }
        };
        self.last_string = Some(id);
        id
    }

    /// The id of a series, added if new.
    pub(crate) fn series_id(&mut self, s: SeriesOf<'_>) -> u32 {
        let head = SeriesHead {
            room: s.room.map_or(NO_ID, |r| self.intern(r)),
            user: s.user.map_or(NO_ID, |u| self.intern(u)),
            product_type: s.product_type,
            indicator: self.intern(s.indicator),
            unit: self.intern(s.unit),
            interval: s.interval_s,
        };
        let hash = self.hasher.hash_one(head);
        let series = &self.series;
        if let Some(&id) = self
            .series_ids
            .find(hash, |&id| series[id as usize] == head)
        {
            return id;
        }
        let id = self.series.len() as u32;
        self.series.push(head);
        let (series, hasher) = (&self.series, &self.hasher);
        self.series_ids
            .insert_unique(hash, id, |&id| hasher.hash_one(series[id as usize]));
        id
    }

    /// The stream field of a point.
    pub(crate) fn stream_id(&mut self, stream: Option<&str>) -> u32 {
        stream.map_or(0, |s| self.intern(s) + 1)
    }

    /// A point for an owned or decoded row.
    pub fn point(&mut self, r: RowRef<'_>) -> Point {
        Point {
            series: self.series_id(SeriesOf {
                room: r.room_id,
                user: r.user_id,
                product_type: r.product_type,
                indicator: r.indicator,
                unit: r.unit,
                interval_s: r.interval_s,
            }),
            stream: self.stream_id(r.stream_id),
            ts: r.timestamp_us,
            value: r.value,
        }
    }

    /// The row a point stands for.
    pub(crate) fn row(&self, p: &Point) -> RowRef<'_> {
        let h = &self.series[p.series as usize];
        let s = |id: u32| &*self.strings[id as usize];
        RowRef {
            room_id: h.room().map(s),
            user_id: h.user().map(s),
            product_type: h.product_type,
            indicator: s(h.indicator),
            unit: s(h.unit),
            timestamp_us: p.ts,
            value: p.value,
            stream_id: (p.stream > 0).then(|| s(p.stream - 1)),
            interval_s: h.interval,
        }
    }

    /// Adds points to a slot's rows.
    pub fn add(&mut self, rows: &mut SlotRows, points: &[Point]) {
        rows.mem.extend_from_slice(points);
        self.held += points.len();
    }

    /// Whether the points in memory are over the budget.
    pub(crate) fn over_budget(&self) -> bool {
        self.held > self.budget
    }

    /// Points held in memory.
    pub(crate) fn held(&self) -> usize {
        self.held
    }

    fn refresh_ranks(&mut self) {
        if self.ranks.series_len == self.series.len()
            && self.ranks.strings_len == self.strings.len()
        {
            return;
        }
        let strings = &self.strings;
        let s = |id: u32| &*strings[id as usize];
        let key = |h: &SeriesHead| {
            (
                h.room().map(s),
                h.user().map(s),
                h.product_type,
                s(h.indicator),
                h.interval,
            )
        };
        let mut order: Vec<u32> = (0..self.series.len() as u32).collect();
        order.sort_unstable_by(|a, b| {
            key(&self.series[*a as usize]).cmp(&key(&self.series[*b as usize]))
        });
        let mut series = vec![0u32; self.series.len()];
        let mut rank = 0u32;
        for (i, &id) in order.iter().enumerate() {
            if i > 0 && key(&self.series[order[i - 1] as usize]) != key(&self.series[id as usize]) {
                rank += 1;
            }
            series[id as usize] = rank;
        }
        let mut order: Vec<u32> = (0..self.strings.len() as u32).collect();
        order.sort_unstable_by(|a, b| s(*a).cmp(s(*b)));
        let mut stream = vec![0u32; self.strings.len() + 1];
        for (i, &id) in order.iter().enumerate() {
            stream[id as usize + 1] = i as u32 + 1;
        }
        self.ranks = Ranks {
            series_len: self.series.len(),
            strings_len: self.strings.len(),
            series,
            stream,
        };
    }

    fn key(ranks: &Ranks, p: &Point) -> Key {
        (
            ranks.series[p.series as usize],
            p.ts,
            ranks.stream[p.stream as usize],
        )
    }

    /// Stable sort by key, then keep the last point of each run of equal keys.
    ///
    /// Points arrive as short runs already in key order (one series of one answer, in
    /// time order), so the runs are ordered instead of the points: when the runs, put in
    /// order of their first keys, do not overlap, copying them in that order is the
    /// sorted, duplicate-free result. Anything else (a series asked twice, points out of
    /// order) takes the general stable sort.
    fn sort_dedup(ranks: &Ranks, points: &mut Vec<Point>, scratch: &mut Vec<Point>) {
        if points.len() < 2 || Self::sort_runs(ranks, points, scratch) {
            return;
        }
        points.sort_by_key(|p| Self::key(ranks, p));
        let mut w = 0;
        for r in 0..points.len() {
            if r + 1 < points.len()
                && Self::key(ranks, &points[r]) == Self::key(ranks, &points[r + 1])
            {
                continue;
            }
            points[w] = points[r];
            w += 1;
        }
        points.truncate(w);
    }

    /// The fast path of [`Self::sort_dedup`]: whether it could order `points` by runs.
    /// The result is built in `scratch`, which gets `points`' old buffer back.
    fn sort_runs(ranks: &Ranks, points: &mut Vec<Point>, scratch: &mut Vec<Point>) -> bool {
        // (first key, last key, start, len) of each strictly ascending run of one series:
        // split at series changes too, or runs joined across series would overlap.
        let mut runs: Vec<(Key, Key, usize, usize)> = Vec::new();
        let mut start = 0;
        let mut first = Self::key(ranks, &points[0]);
        let mut last = first;
        for (i, p) in points.iter().enumerate().skip(1) {
            let k = Self::key(ranks, p);
            if k <= last || k.0 != last.0 {
                runs.push((first, last, start, i - start));
                start = i;
                first = k;
            }
            last = k;
        }
        runs.push((first, last, start, points.len() - start));
        if runs.len() == 1 {
            return true;
        }
        runs.sort_unstable_by_key(|r| r.0);
        if runs.windows(2).any(|w| w[1].0 <= w[0].1) {
            return false;
        }
        scratch.clear();
        scratch.reserve(points.len());
        for &(_, _, start, len) in &runs {
            scratch.extend_from_slice(&points[start..start + len]);
        }
        std::mem::swap(points, scratch);
        scratch.clear();
        true
    }

    /// Writes every slot's points in memory to a sorted part on disk.
    pub(crate) fn spill_all<'a>(
        &mut self,
        slots: impl Iterator<Item = &'a mut SlotRows>,
    ) -> std::io::Result<()> {
        self.refresh_ranks();
        if !self.dir_made {
            std::fs::create_dir_all(&self.dir)?;
            self.dir_made = true;
        }
        for rows in slots {
            if rows.mem.is_empty() {
                continue;
            }
            // Sorted and written in place: the slot keeps its buffer for the points
            // still to come, instead of growing a new one after every spill.
            let mem = &mut rows.mem;
            self.held -= mem.len();
            Self::sort_dedup(&self.ranks, mem, &mut self.scratch);
            let path = self.dir.join(format!("{:08}.part", self.next_part));
            self.next_part += 1;
            let mut w = BufWriter::with_capacity(64 * 1024, File::create(&path)?);
            for p in mem.iter() {
                w.write_all(&p.to_bytes())?;
            }
            w.into_inner().map_err(|e| e.into_error())?;
            self.spilled += mem.len() as u64;
            mem.clear();
            rows.parts.push(path);
        }
        Ok(())
    }

    /// Gives every row of `rows` plus `old` (the kept rows of the existing file, which a
    /// new row of the same key replaces) to `emit`, in key order without duplicate keys,
    /// and removes the slot's parts.
    pub(crate) fn merge(
        &mut self,
        rows: SlotRows,
        old: Vec<Point>,
        mut emit: impl FnMut(RowRef<'_>) -> Result<(), crate::sink::SinkError>,
    ) -> Result<(), MergeError> {
        self.refresh_ranks();
        let SlotRows { mut mem, parts } = rows;
        self.held -= mem.len();
        let ranks = &self.ranks;
        let scratch = &mut self.scratch;
        Self::sort_dedup(ranks, &mut mem, scratch);
        let mut old = old;
        Self::sort_dedup(ranks, &mut old, scratch);
        let (mut inputs, mut heap) = Self::merge_inputs(ranks, &parts, mem, old)?;
        while let Some(Reverse(first)) = heap.pop() {
            let mut kept = first.point;
            let mut advance = vec![first.input];
            while let Some(Reverse(next)) = heap.peek() {
                if next.key != first.key {
                    break;
                }
                // Inputs pop in index order on ties: the last one popped wins.
                let Some(Reverse(next)) = heap.pop() else {
                    break;
                };
                kept = next.point;
                advance.push(next.input);
            }
            emit(self.row(&kept)).map_err(MergeError::Sink)?;
            if let [only] = advance[..] {
                // Galloping: an input's keys strictly increase, so while its next key is
                // below every other input's head it is the next row, without the heap.
                // Points of one series sit in one input, so this takes whole runs.
                while let Some(p) = inputs[only].next()? {
                    let key = Self::key(ranks, &p);
                    if heap.peek().is_none_or(|Reverse(h)| key < h.key) {
                        emit(self.row(&p)).map_err(MergeError::Sink)?;
                        continue;
                    }
                    heap.push(Reverse(Head {
                        key,
                        input: only,
                        point: p,
                    }));
                    break;
                }
                continue;
            }
            for i in advance {
                if let Some(p) = inputs[i].next()? {
                    heap.push(Reverse(Head {
                        key: Self::key(ranks, &p),
                        input: i,
                        point: p,
                    }));
                }
            }
        }
        drop(inputs);
        for path in &parts {
            let _ = std::fs::remove_file(path);
        }
        Ok(())
    }

    /// The sorted inputs of a merge (the file's kept rows first, then the spilled parts,
    /// then the rows in memory: on equal keys the last wins, so the newest) and a heap of
    /// their heads.
    fn merge_inputs(
        ranks: &Ranks,
        parts: &[PathBuf],
        mem: Vec<Point>,
        old: Vec<Point>,
    ) -> Result<(Vec<Input>, BinaryHeap<Reverse<Head>>), MergeError> {
        let mut inputs: Vec<Input> = Vec::with_capacity(parts.len() + 2);
        inputs.push(Input::Mem(old.into_iter()));
        let read = (MERGE_READ_BYTES / parts.len().max(1)).clamp(4 * 1024, 64 * 1024);
        for path in parts {
            let f = File::open(path).map_err(|e| MergeError::Spill(path.clone(), e))?;
            inputs.push(Input::File(BufReader::with_capacity(read, f), path.clone()));
        }
        inputs.push(Input::Mem(mem.into_iter()));
        let mut heap = BinaryHeap::with_capacity(inputs.len());
        for (i, input) in inputs.iter_mut().enumerate() {
            if let Some(p) = input.next()? {
                heap.push(Reverse(Head {
                    key: Self::key(ranks, &p),
                    input: i,
                    point: p,
                }));
            }
        }
        Ok((inputs, heap))
    }

    /// Forgets every string and series once no point refers to them (every slot was
    /// written): the tables then hold one checkpoint's worth, not the whole run's.
    pub(crate) fn forget_rows(&mut self) {
        if self.held > 0 {
            return;
        }
        // Replaced, not cleared: a cleared table would keep its capacity.
        self.strings = Vec::new();
        self.string_ids = HashMap::new();
        self.last_string = None;
        self.series = Vec::new();
        self.series_ids = HashTable::new();
        self.ranks = Ranks::default();
    }

    /// Removes the spill directory.
    pub(crate) fn cleanup(&mut self) {
        if self.dir_made {
            let _ = std::fs::remove_dir_all(&self.dir);
            self.dir_made = false;
        }
    }
}

impl Drop for RowStore {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// A merge could not finish.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MergeError {
    #[error("cannot read spilled rows {0}: {1}")]
    Spill(PathBuf, std::io::Error),
    #[error(transparent)]
    Sink(crate::sink::SinkError),
}

enum Input {
    File(BufReader<File>, PathBuf),
    Mem(std::vec::IntoIter<Point>),
}

impl Input {
    fn next(&mut self) -> Result<Option<Point>, MergeError> {
        match self {
            Input::Mem(it) => Ok(it.next()),
            Input::File(r, path) => {
                let mut b = [0u8; POINT_BYTES];
                match r.read_exact(&mut b) {
                    Ok(()) => Ok(Some(Point::from_bytes(&b))),
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
                    Err(e) => Err(MergeError::Spill(path.clone(), e)),
                }
            }
        }
    }
}

/// The next point of one input, ordered by key, then input.
#[derive(Debug)]
struct Head {
    key: Key,
    input: usize,
    point: Point,
}

impl PartialEq for Head {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Head {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.key, self.input).cmp(&(o.key, o.input))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::Row;

    fn row(room: Option<&str>, ind: &str, t: i64, v: f64, stream: Option<&str>) -> Row {
        Row {
            room_id: room.map(str::to_string),
            user_id: None,
            product_type: ProductType::Web,
            indicator: ind.into(),
            unit: "%".into(),
            timestamp_us: t,
            value: v,
            stream_id: stream.map(str::to_string),
            interval_s: 30,
        }
    }

    /// The rows a slot file should hold for `rows` given in this order: sorted, the
    /// later of equal keys kept.
    fn reference(mut rows: Vec<Row>) -> Vec<Row> {
        rows.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        rows.reverse();
        rows.dedup_by(|l, k| l.sort_key() == k.sort_key());
        rows.reverse();
        rows
    }

    /// A small deterministic generator for test data.
    fn lcg(seed: u64) -> impl FnMut() -> u64 {
        let mut x = seed;
        move || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            x >> 33
        }
    }

    fn sample(seed: u64, n: usize) -> Vec<Row> {
        let mut next = lcg(seed);
        let rooms = [None, Some("b"), Some("a"), Some("ab")];
        let inds = ["z", "a", "m"];
        let streams = [None, Some("s2"), Some("s1")];
        (0..n)
            .map(|i| {
                row(
                    rooms[next() as usize % 4],
                    inds[next() as usize % 3],
                    (next() % 6) as i64,
                    i as f64,
                    streams[next() as usize % 3],
                )
            })
            .collect()
    }

    fn run(budget: usize, new: &[Row], old: &[Row], spill_every: usize) -> (Vec<Row>, u64) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = RowStore::new(dir.path().join("spill"), budget);
        let mut slot = SlotRows::default();
        for (i, r) in new.iter().enumerate() {
            let p = store.point(r.borrowed());
            store.add(&mut slot, &[p]);
            if (i + 1) % spill_every == 0 || store.over_budget() {
                store.spill_all(std::iter::once(&mut slot)).unwrap();
            }
        }
        let old: Vec<Point> = old.iter().map(|r| store.point(r.borrowed())).collect();
        let mut out = Vec::new();
        store
            .merge(slot, old, |r| {
                out.push(r.to_row());
                Ok(())
            })
            .unwrap();
        assert_eq!(store.held(), 0);
        let spilled = store.spilled;
        store.cleanup();
        assert!(!dir.path().join("spill").exists());
        (out, spilled)
    }

    #[test]
    fn merge_equals_sort_dedup_of_the_concatenation_whatever_the_spills() {
        for seed in 0..20 {
            let new = sample(seed, 300);
            let old = reference(sample(seed + 100, 50));
            let mut all = old.clone();
            all.extend(new.iter().cloned());
            let want = reference(all);
            for (budget, every) in [(usize::MAX, usize::MAX), (1000, 7), (40, 1000), (1, 1)] {
                let (got, spilled) = run(budget, &new, &old, every);
                assert_eq!(got, want, "seed {seed} budget {budget} every {every}");
                if budget < 1000 {
                    assert!(spilled > 0);
                }
            }
        }
    }

    /// Rows shaped like answers: per room, its series in the API's (unsorted) order,
    /// each in time order, some with streams; `repeat` sends some rooms twice with other
    /// values, so runs overlap and the later values must win.
    fn answers(seed: u64, rooms: usize, repeat: bool) -> Vec<Row> {
        let mut next = lcg(seed);
        let inds = ["z", "a", "m"];
        let mut rows = Vec::new();
        let mut order: Vec<usize> = (0..rooms).collect();
        if repeat {
            order.push(next() as usize % rooms);
        }
        for (n, room) in order.into_iter().enumerate() {
            let room = format!("r{}", (room * 7919 + seed as usize) % 1000);
            for ind in inds {
                let stream = next().is_multiple_of(3).then_some("s");
                for t in 0..10 {
                    if next().is_multiple_of(10) {
                        continue; // a missing bucket
                    }
                    rows.push(row(
                        Some(&room),
                        ind,
                        t,
                        (n * 100 + t as usize) as f64,
                        stream,
                    ));
                }
            }
        }
        rows
    }

    #[test]
    fn answer_shaped_rows_merge_like_the_reference_by_runs_or_by_sort() {
        for seed in 0..20 {
            for repeat in [false, true] {
                let new = answers(seed, 30, repeat);
                let old = reference(answers(seed + 50, 5, false));
                let mut all = old.clone();
                all.extend(new.iter().cloned());
                let want = reference(all);
                for (budget, every) in [(usize::MAX, usize::MAX), (100, 1000), (1000, 97)] {
                    let (got, _) = run(budget, &new, &old, every);
                    assert_eq!(got, want, "seed {seed} repeat {repeat} budget {budget}");
                }
            }
        }
    }

    #[test]
    fn runs_are_ordered_without_a_point_sort_and_overlaps_fall_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = RowStore::new(dir.path().join("spill"), usize::MAX);
        let rows = answers(3, 40, false);
        let mut points: Vec<Point> = rows.iter().map(|r| store.point(r.borrowed())).collect();
        store.refresh_ranks();
        assert!(RowStore::sort_runs(
            &store.ranks,
            &mut points,
            &mut Vec::new()
        ));
        let got: Vec<Row> = points.iter().map(|p| store.row(p).to_row()).collect();
        assert_eq!(got, reference(rows));
        // The same room twice: its runs overlap, so only the full sort is right.
        let rows = answers(3, 40, true);
        let mut points: Vec<Point> = rows.iter().map(|r| store.point(r.borrowed())).collect();
        store.refresh_ranks();
        assert!(!RowStore::sort_runs(
            &store.ranks,
            &mut points,
            &mut Vec::new()
        ));
        RowStore::sort_dedup(&store.ranks, &mut points, &mut Vec::new());
        let got: Vec<Row> = points.iter().map(|p| store.row(p).to_row()).collect();
        assert_eq!(got, reference(rows));
    }

    #[test]
    fn point_bytes_roundtrip() {
        let p = Point {
            series: 7,
            stream: 3,
            ts: -5,
            value: 1.25,
        };
        assert_eq!(Point::from_bytes(&p.to_bytes()), p);
    }
}
