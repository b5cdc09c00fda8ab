//! Every answer stays under 8 KB: an assistant's context is small and shared, and a tool that
//! can return a megabyte (20,000 containers, a year of points) would crowd out the question.
//! Lists come a page at a time with a `next` hint; a page whose items are large is cut short
//! (and says so); histories ask the store for fewer points (its own downsampling), and only
//! then drop their oldest points, with a note either way.

use serde_json::{json, Value};

/// The most bytes of JSON one answer may carry.
pub const MAX_ANSWER_BYTES: usize = 8 * 1024;

/// Room kept for the `next` and `note` fields added after fitting.
const RESERVE: usize = 300;

pub fn size(v: &Value) -> usize {
    serde_json::to_vec(v).map_or(usize::MAX, |b| b.len())
}

pub fn fits(v: &Value) -> bool {
    size(v) <= MAX_ANSWER_BYTES
}

/// Fits a page of `key` (which started at `offset` of `total`) into the budget by dropping
/// its last items, then says where the next page starts: `next: {"offset": N}`, or null when
/// this page reaches the end. A cut page says so in `note`.
pub fn page(mut v: Value, key: &str, offset: usize, total: usize) -> Value {
    let mut cut = 0;
    while size(&v) > MAX_ANSWER_BYTES - RESERVE {
        let Some(items) = v.get_mut(key).and_then(Value::as_array_mut) else {
            break;
        };
        if items.pop().is_none() {
            break;
        }
        cut += 1;
    }
    let shown = v.get(key).and_then(Value::as_array).map_or(0, Vec::len);
    let end = offset + shown;
    v["next"] = if end < total {
        json!({ "offset": end })
    } else {
        Value::Null
    };
    if cut > 0 {
        v["note"] = json!(format!(
            "{shown} of the {} asked for fit in 8 KB; ask again with offset {end} for more",
            shown + cut
        ));
    }
    v
}

/// Fits a history's `items` by dropping its oldest points (the newest matter most for "what
/// is happening"), with a note. Used only when fewer points from the store still do not fit.
pub fn newest_points(mut v: Value, key: &str) -> Value {
    let mut cut = 0;
    while size(&v) > MAX_ANSWER_BYTES - RESERVE {
        let Some(items) = v.get_mut(key).and_then(Value::as_array_mut) else {
            break;
        };
        if items.is_empty() {
            break;
        }
        items.remove(0);
        cut += 1;
    }
    if cut > 0 {
        v["note"] = json!(format!(
            "the {cut} oldest points were left out to fit in 8 KB; ask for a shorter period"
        ));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_page_is_cut_and_points_to_the_rest() {
        let items: Vec<Value> = (0..500)
            .map(|i| json!({ "n": i, "pad": "x".repeat(40) }))
            .collect();
        let v = page(json!({ "total": 1000, "items": items }), "items", 100, 1000);
        assert!(fits(&v), "{} bytes", size(&v));
        let shown = v["items"].as_array().expect("items").len();
        assert!(shown > 0 && shown < 500, "{shown}");
        assert_eq!(v["next"]["offset"], json!(100 + shown));
        assert!(v["note"].as_str().expect("note").contains("8 KB"));
    }

    #[test]
    fn the_last_page_has_no_next_and_no_note() {
        let v = page(json!({ "items": [1, 2, 3] }), "items", 7, 10);
        assert_eq!(v["next"], Value::Null);
        assert!(v.get("note").is_none());
        let v = page(json!({ "items": [1, 2, 3] }), "items", 0, 10);
        assert_eq!(v["next"]["offset"], json!(3));
    }

    #[test]
    fn a_long_history_keeps_its_newest_points() {
        let items: Vec<Value> = (0..400)
            .map(|i| json!({ "t": i, "pad": "y".repeat(30) }))
            .collect();
        let v = newest_points(json!({ "items": items }), "items");
        assert!(fits(&v));
        let kept = v["items"].as_array().expect("items");
        assert_eq!(
            kept.last(),
            Some(&json!({ "t": 399, "pad": "y".repeat(30) }))
        );
        assert!(v["note"].as_str().expect("note").contains("oldest"));
    }
}
