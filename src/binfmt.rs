//! A small binary layout for the files patrol saves for itself (the history window, the daily
//! rollups): little-endian words, varints, length-prefixed text. Reading is checked against the
//! bytes left at every step, so a damaged file is an error its caller answers by rebuilding,
//! never a crash or a huge allocation.

#[derive(Default)]
pub(crate) struct Writer(pub Vec<u8>);

impl Writer {
    pub(crate) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn i64(&mut self, v: i64) {
        self.u64(v as u64);
    }
    pub(crate) fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    pub(crate) fn varint_i(&mut self, v: i64) {
        self.varint(((v << 1) ^ (v >> 63)) as u64);
    }
    pub(crate) fn len(&mut self, n: usize) {
        self.varint(n as u64);
    }
    pub(crate) fn str(&mut self, s: &str) {
        self.len(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }
    pub(crate) fn opt_str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                self.0.push(1);
                self.str(s);
            }
            None => self.0.push(0),
        }
    }
    pub(crate) fn opt_i64(&mut self, v: Option<i64>) {
        match v {
            Some(v) => {
                self.0.push(1);
                self.i64(v);
            }
            None => self.0.push(0),
        }
    }
    pub(crate) fn f64(&mut self, v: f64) {
        self.u64(v.to_bits());
    }
    pub(crate) fn bool(&mut self, v: bool) {
        self.0.push(u8::from(v));
    }
}

pub(crate) struct Reader<'a> {
    pub bytes: &'a [u8],
    pub at: usize,
}

impl Reader<'_> {
    pub(crate) fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or_else(|| format!("truncated at byte {}", self.at))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ]))
    }
    pub(crate) fn i64(&mut self) -> Result<i64, String> {
        Ok(self.u64()? as i64)
    }
    pub(crate) fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(format!("a number longer than 64 bits at byte {}", self.at))
    }
    pub(crate) fn varint_i(&mut self) -> Result<i64, String> {
        let v = self.varint()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }
    /// A count of items of at least `min_bytes` each: never more than the bytes left could hold,
    /// so a corrupt count cannot ask for a huge allocation.
    pub(crate) fn len(&mut self, min_bytes: usize) -> Result<usize, String> {
        let n = usize::try_from(self.varint()?).map_err(|_| "count out of range")?;
        if n.saturating_mul(min_bytes) > self.bytes.len() - self.at {
            return Err(format!(
                "a count of {n} at byte {} exceeds the file",
                self.at
            ));
        }
        Ok(n)
    }
    pub(crate) fn str(&mut self) -> Result<String, String> {
        let n = self.len(1)?;
        String::from_utf8(self.take(n)?.to_vec())
            .map_err(|_| format!("bad text at byte {}", self.at))
    }
    pub(crate) fn opt_str(&mut self) -> Result<Option<String>, String> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.str()?)),
            b => Err(format!("bad flag {b} at byte {}", self.at)),
        }
    }
    pub(crate) fn opt_i64(&mut self) -> Result<Option<i64>, String> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.i64()?)),
            b => Err(format!("bad flag {b} at byte {}", self.at)),
        }
    }
    pub(crate) fn f64(&mut self) -> Result<f64, String> {
        Ok(f64::from_bits(self.u64()?))
    }
    pub(crate) fn bool(&mut self) -> Result<bool, String> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(format!("bad flag {b} at byte {}", self.at)),
        }
    }
}

/// A saved file: `magic`, the format `version`, the payload's size, and the payload compressed
/// with zstd at `level`.
pub(crate) fn pack(
    magic: &[u8],
    version: u32,
    payload: &[u8],
    level: i32,
) -> Result<Vec<u8>, String> {
    let mut out = magic.to_vec();
    out.extend_from_slice(&version.to_le_bytes());
    let packed = zstd::bulk::compress(payload, level).map_err(|e| format!("compressing: {e}"))?;
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&packed);
    Ok(out)
}

/// The payload of a file [`pack`] wrote; an error for another kind of file (`what` it should
/// be), another format version, or bytes that do not expand to the size the header says.
pub(crate) fn unpack(
    bytes: &[u8],
    magic: &[u8],
    version: u32,
    what: &str,
) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let rest = bytes
        .strip_prefix(magic)
        .ok_or_else(|| format!("not {what}"))?;
    let found = rest
        .get(..4)
        .map(|v| u32::from_le_bytes([v[0], v[1], v[2], v[3]]))
        .ok_or("truncated before its version")?;
    if found != version {
        return Err(format!(
            "format version {found}, this build writes {version}"
        ));
    }
    let size = rest
        .get(4..12)
        .map(|v| u64::from_le_bytes(v.try_into().unwrap_or_default()))
        .ok_or("truncated before its size")?;
    // Room for the size the header claims, within what the compressed bytes could plausibly
    // expand to (a damaged header must not reserve gigabytes); more grows as it comes.
    let plausible = (rest.len() as u64).saturating_mul(64).saturating_add(4096);
    let mut payload = Vec::with_capacity(usize::try_from(size.min(plausible)).unwrap_or(0));
    // Never more than the size the file claims, whatever the compressed bytes expand to.
    zstd::stream::read::Decoder::new(&rest[12..])
        .map_err(|e| format!("decompressing: {e}"))?
        .take(size)
        .read_to_end(&mut payload)
        .map_err(|e| format!("decompressing: {e}"))?;
    if payload.len() as u64 != size {
        return Err(format!(
            "payload is {} bytes, the header says {size}",
            payload.len()
        ));
    }
    Ok(payload)
}
