//! Walking the records inside an uncompressed v2 batch.
//!
//! Each record is: length (zigzag varint), attributes (i8), timestamp delta (zigzag varlong),
//! offset delta (zigzag varint), key length + key, value length + value, header count + headers.
//! The log only needs the length (to count records and check they fill the batch exactly) and
//! the two deltas (to answer "offset for timestamp" to the record).

/// One record's position fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordDeltas {
    pub timestamp_delta: i64,
    pub offset_delta: i64,
}

/// Reads a zigzag varint (up to 10 bytes) from the front of `buf`, returning it and its size.
pub(crate) fn read_varlong(buf: &[u8]) -> Option<(i64, usize)> {
    let mut raw: u64 = 0;
    for (i, &b) in buf.iter().enumerate().take(10) {
        raw |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            let v = ((raw >> 1) as i64) ^ -((raw & 1) as i64);
            return Some((v, i + 1));
        }
    }
    None
}

/// Iterates the records of an uncompressed records section, yielding each record's deltas, or
/// `None` (the iterator's `Err`) as soon as a record does not fit the section.
pub(crate) struct Records<'a> {
    rest: &'a [u8],
}

impl<'a> Records<'a> {
    pub(crate) fn new(section: &'a [u8]) -> Self {
        Records { rest: section }
    }
}

impl Iterator for Records<'_> {
    type Item = Result<RecordDeltas, ()>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        Some(self.parse_one())
    }
}

impl Records<'_> {
    fn parse_one(&mut self) -> Result<RecordDeltas, ()> {
        let (len, n) = read_varlong(self.rest).ok_or(())?;
        let len = usize::try_from(len).map_err(|_| ())?;
        let body = self.rest.get(n..n.checked_add(len).ok_or(())?).ok_or(())?;
        // Attributes byte, then the two deltas.
        let after_attrs = body.get(1..).ok_or(())?;
        let (timestamp_delta, a) = read_varlong(after_attrs).ok_or(())?;
        let (offset_delta, _) = read_varlong(after_attrs.get(a..).ok_or(())?).ok_or(())?;
        self.rest = &self.rest[n + len..];
        Ok(RecordDeltas {
            timestamp_delta,
            offset_delta,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varlong_zigzag() {
        assert_eq!(read_varlong(&[0x00]), Some((0, 1)));
        assert_eq!(read_varlong(&[0x01]), Some((-1, 1)));
        assert_eq!(read_varlong(&[0x02]), Some((1, 1)));
        assert_eq!(read_varlong(&[0x80, 0x01]), Some((64, 2)));
        assert_eq!(read_varlong(&[0x80]), None);
    }
}
