//! Text helpers: numbers, hex and case changes written straight into a byte buffer, and the
//! one way a parser's position is cut from its message.
//!
//! Drawing a fresh journey writes a few dozen short numbers, dates and hex ids. Through
//! `format!` each one costs an allocation and a pass through the formatting machinery, which
//! was a large share of rendering a new journey. These helpers append ASCII to a `Vec<u8>`
//! the caller has sized, and [`finish`] turns it into a `String` with one UTF-8 check (a check
//! per short run, or a push per char, both cost more). Each gives exactly the text the
//! `format!` it replaces would have given.
//!
//! Also the one way a stored string is cut to a byte budget ([`fair_cap`], [`cut_marked`]):
//! the logs that keep what clients sent (the request journal, the callback log) keep each
//! entry within its share of their byte budget this way.

/// `value` in decimal (`{value}`).
pub fn push_uint(out: &mut Vec<u8>, value: u64) {
    push_padded(out, value, 1);
}

/// `value` in decimal, zero-padded to at least `width` digits (`{value:0width$}`; widths past
/// 20, more than a u64 needs, are taken as 20).
pub fn push_padded(out: &mut Vec<u8>, value: u64, width: usize) {
    // Two digits at a time (itoa); a new journey writes a few dozen numbers.
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(value).as_bytes();
    let zeros = width.min(20).saturating_sub(digits.len());
    out.extend(std::iter::repeat_n(b'0', zeros));
    out.extend_from_slice(digits);
}

/// `value`'s last `out.len()` decimal digits, zero-padded, written over `out` (for the fixed
/// fields of dates, where the value is known to fit).
pub fn fill_digits(out: &mut [u8], value: u64) {
    let mut rest = value;
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
}

/// Text made of the ASCII `bytes` as a `String`.
pub fn ascii_string(bytes: &[u8]) -> String {
    std::str::from_utf8(bytes).unwrap_or_default().to_owned()
}

/// The low `width` nibbles of `value` as lowercase hex, most significant first, zero-padded
/// (`{value:0width$x}` for a value that fits).
pub fn push_hex(out: &mut Vec<u8>, value: u64, width: usize) {
    out.extend_from_slice(&hex16(value)[16 - width.min(16)..]);
}

/// `value` as sixteen lowercase hex digits (`{value:016x}`).
pub fn hex16(value: u64) -> [u8; 16] {
    // A byte at a time through a table of digit pairs: each image URL of a new journey has 64
    // hex digits, fifteen URLs a journey.
    const PAIRS: [[u8; 2]; 256] = {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut pairs = [[0u8; 2]; 256];
        let mut i = 0;
        while i < 256 {
            pairs[i] = [HEX[i >> 4], HEX[i & 0xf]];
            i += 1;
        }
        pairs
    };
    let mut buf = [0u8; 16];
    for (pair, byte) in buf.chunks_exact_mut(2).zip(value.to_be_bytes()) {
        pair.copy_from_slice(&PAIRS[usize::from(byte)]);
    }
    buf
}

/// `text` upper-cased, as `str::to_uppercase` would give it.
pub fn push_upper(out: &mut Vec<u8>, text: &str) {
    if text.is_ascii() {
        out.extend(text.bytes().map(|b| b.to_ascii_uppercase()));
    } else {
        out.extend_from_slice(text.to_uppercase().as_bytes());
    }
}

/// `text` lower-cased, as `str::to_lowercase` would give it.
pub fn push_lower(out: &mut Vec<u8>, text: &str) {
    if text.is_ascii() {
        out.extend(text.bytes().map(|b| b.to_ascii_lowercase()));
    } else {
        out.extend_from_slice(text.to_lowercase().as_bytes());
    }
}

/// Append several pieces of text.
pub fn push_all(out: &mut Vec<u8>, parts: &[&str]) {
    for part in parts {
        out.extend_from_slice(part.as_bytes());
    }
}

/// A parser's message without its own " at line L column C" tail, for messages that give
/// the position their own way (file and line first). serde_json and toml both end so.
pub fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// The buffer as a `String`. Everything the helpers write is ASCII and everything else came
/// from a `&str`, so the check always passes; were it ever to fail, the text is kept with
/// replacement characters rather than lost.
pub fn finish(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The mark that ends a string cut to fit its budget.
pub const CUT_MARK: &str = "…";

/// The length every string longer than it is cut to, so that strings of lengths `lens`
/// together take at most `budget` bytes, taking from the longest first (a short string is
/// never cut to make room for a long one); `usize::MAX` when they fit as they are.
pub fn fair_cap(lens: &[usize], budget: usize) -> usize {
    let mut sorted = lens.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    let mut left = budget;
    for (i, &len) in sorted.iter().enumerate() {
        let sharing = n - i;
        if len.saturating_mul(sharing) > left {
            return left / sharing;
        }
        left -= len;
    }
    usize::MAX
}

/// The longest start of `text` at most `max` bytes long that ends on a character boundary.
pub fn prefix_within(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `text` cut to at most `max` bytes, ending in [`CUT_MARK`] when it was cut (and `max`
/// leaves room for the mark); `None` when it fits as it is.
pub fn cut_marked(text: &str, max: usize) -> Option<String> {
    if text.len() <= max {
        return None;
    }
    let room = max.saturating_sub(CUT_MARK.len());
    if room == 0 {
        return Some(prefix_within(text, max).to_string());
    }
    let mut cut = String::with_capacity(max);
    cut.push_str(prefix_within(text, room));
    cut.push_str(CUT_MARK);
    Some(cut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fair_cap_cuts_the_longest_first() {
        assert_eq!(fair_cap(&[10, 20], 30), usize::MAX);
        assert_eq!(fair_cap(&[], 0), usize::MAX);
        // The short one keeps its 10; the long ones share the other 90.
        assert_eq!(fair_cap(&[10, 1000, 500], 100), 45);
        assert_eq!(fair_cap(&[1000], 100), 100);
        assert_eq!(fair_cap(&[0, 1000], 0), 0);
        for (lens, budget) in [(&[5usize, 70, 3, 900][..], 64), (&[100, 100, 100], 299)] {
            let cap = fair_cap(lens, budget);
            assert!(lens.iter().map(|l| (*l).min(cap)).sum::<usize>() <= budget);
        }
    }

    #[test]
    fn cuts_end_on_a_character_and_carry_the_mark() {
        assert_eq!(cut_marked("short", 10), None);
        assert_eq!(cut_marked("abcdefghij", 6).as_deref(), Some("abc…"));
        // "é" is two bytes: never split.
        let cut = cut_marked("ééééé", 8).unwrap();
        assert!(cut.len() <= 8 && cut.ends_with(CUT_MARK), "{cut}");
        assert_eq!(cut_marked("abcdef", 2).as_deref(), Some("ab"));
        assert_eq!(prefix_within("aé", 2), "a");
    }

    fn with(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut s = Vec::new();
        f(&mut s);
        finish(s)
    }

    #[test]
    fn numbers_read_as_format_writes_them() {
        for v in [0u64, 1, 9, 10, 99, 1234, 65_000, u64::MAX] {
            assert_eq!(with(|s| push_uint(s, v)), format!("{v}"));
            for w in [0usize, 1, 2, 4, 12, 20, 25] {
                // Widths past the 20 digits a u64 can need are capped there.
                let capped = w.min(20);
                assert_eq!(with(|s| push_padded(s, v, w)), format!("{v:0capped$}"));
            }
        }
        for (v, w) in [
            (0u64, 8),
            (0xabc, 4),
            (u64::MAX, 16),
            (0x1234_5678_9abc, 12),
        ] {
            assert_eq!(with(|s| push_hex(s, v, w)), format!("{v:0w$x}"));
        }
    }

    #[test]
    fn case_changes_match_std() {
        for t in ["Zoë O'Neil", "abc DEF", "ذكر", ""] {
            assert_eq!(with(|s| push_upper(s, t)), t.to_uppercase());
            assert_eq!(with(|s| push_lower(s, t)), t.to_lowercase());
        }
    }
}
