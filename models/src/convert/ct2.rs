//! Reader for CTranslate2's `model.bin` (binary version 6, as read by the reference `ct2_read.py`).
//!
//! Layout (little endian): u32 version, string spec name, u32 revision, u32 variable count, then per
//! variable: string name, u8 rank, rank×u32 shape, u8 dtype, u32 byte count, bytes; then u32 alias
//! count and (alias, target) string pairs. A string is a u16 length including a trailing NUL.
//!
//! Only the headers are kept in memory; tensor data is read on demand by offset so the converter
//! never holds the model and its conversion at the same time.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::{ModelsError, Result};

/// The binary version this reader understands (the layout the reference reader parses).
pub const SUPPORTED_VERSION: u32 = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ct2Dtype {
    F32,
    I8,
    I16,
    I32,
    F16,
    Bf16,
}

impl Ct2Dtype {
    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::F32,
            1 => Self::I8,
            2 => Self::I16,
            3 => Self::I32,
            4 => Self::F16,
            5 => Self::Bf16,
            _ => return None,
        })
    }

    pub fn size(self) -> u64 {
        match self {
            Self::I8 => 1,
            Self::I16 | Self::F16 | Self::Bf16 => 2,
            Self::F32 | Self::I32 => 4,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "float32",
            Self::I8 => "int8",
            Self::I16 => "int16",
            Self::I32 => "int32",
            Self::F16 => "float16",
            Self::Bf16 => "bfloat16",
        }
    }
}

/// One variable's header and where its bytes are in the file.
#[derive(Debug, Clone)]
pub struct Ct2Var {
    pub name: String,
    pub shape: Vec<u32>,
    pub dtype: Ct2Dtype,
    /// Offset of the data in the file.
    pub offset: u64,
    pub nbytes: u64,
}

impl Ct2Var {
    /// Element count (the shape was checked against the byte count when read, so this cannot overflow).
    pub fn elements(&self) -> u64 {
        self.nbytes / self.dtype.size()
    }
}

/// A parsed `model.bin` index.
#[derive(Debug, Clone)]
pub struct Ct2Model {
    pub path: PathBuf,
    pub version: u32,
    pub spec: String,
    pub revision: u32,
    pub vars: Vec<Ct2Var>,
    index: HashMap<String, usize>,
    pub aliases: HashMap<String, String>,
}

struct Cursor<'a, R> {
    r: &'a mut R,
    pos: u64,
    len: u64,
    path: &'a Path,
}

impl<R: Read + Seek> Cursor<'_, R> {
    fn bytes(&mut self, n: u64, what: &str) -> Result<Vec<u8>> {
        if self.pos + n > self.len {
            return Err(ModelsError::Ct2Truncated {
                path: self.path.to_owned(),
                what: format!(
                    "{what} at offset {} needs {n} bytes, file has {}",
                    self.pos, self.len
                ),
            });
        }
        let mut buf = vec![0u8; n as usize];
        self.r
            .read_exact(&mut buf)
            .map_err(|e| ModelsError::io("read", self.path, e))?;
        self.pos += n;
        Ok(buf)
    }
    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.bytes(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16> {
        let b = self.bytes(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &str) -> Result<u32> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn string(&mut self, what: &str) -> Result<String> {
        let n = self.u16(what)?;
        let mut b = self.bytes(u64::from(n), what)?;
        // The stored length counts a trailing NUL (the reference drops the last byte).
        if b.pop() != Some(0) {
            return Err(ModelsError::Ct2Format {
                path: self.path.to_owned(),
                reason: format!("{what} is not NUL-terminated at offset {}", self.pos),
            });
        }
        String::from_utf8(b).map_err(|_| ModelsError::Ct2Format {
            path: self.path.to_owned(),
            reason: format!("{what} is not UTF-8"),
        })
    }
    fn skip(&mut self, n: u64, what: &str) -> Result<()> {
        if self.pos + n > self.len {
            return Err(ModelsError::Ct2Truncated {
                path: self.path.to_owned(),
                what: format!(
                    "{what} at offset {} needs {n} bytes, file has {}",
                    self.pos, self.len
                ),
            });
        }
        self.r
            .seek(SeekFrom::Current(n as i64))
            .map_err(|e| ModelsError::io("seek in", self.path, e))?;
        self.pos += n;
        Ok(())
    }
}

impl Ct2Model {
    /// Parse the headers of a `model.bin`. `path` is used in error messages only.
    pub fn read_index<R: Read + Seek>(r: &mut R, path: &Path) -> Result<Self> {
        let len = r
            .seek(SeekFrom::End(0))
            .map_err(|e| ModelsError::io("seek in", path, e))?;
        r.seek(SeekFrom::Start(0))
            .map_err(|e| ModelsError::io("seek in", path, e))?;
        let mut c = Cursor {
            r,
            pos: 0,
            len,
            path,
        };
        let version = c.u32("binary version")?;
        if version != SUPPORTED_VERSION {
            return Err(ModelsError::Ct2Format {
                path: path.to_owned(),
                reason: format!(
                    "binary version {version} (0x{version:08x}); this converter reads version {SUPPORTED_VERSION}"
                ),
            });
        }
        let spec = c.string("spec name")?;
        let revision = c.u32("spec revision")?;
        let nvars = c.u32("variable count")?;
        let mut vars = Vec::with_capacity(nvars.min(100_000) as usize);
        let mut index = HashMap::new();
        for _ in 0..nvars {
            let name = c.string("variable name")?;
            let rank = c.u8("variable rank")?;
            let mut shape = Vec::with_capacity(rank as usize);
            for _ in 0..rank {
                shape.push(c.u32("variable shape")?);
            }
            let code = c.u8("variable dtype")?;
            let dtype = Ct2Dtype::from_code(code).ok_or_else(|| ModelsError::Ct2Format {
                path: path.to_owned(),
                reason: format!("variable {name} has unknown dtype code {code}"),
            })?;
            let nbytes = u64::from(c.u32("variable byte count")?);
            // Checked: a corrupt shape must be an error, not an overflow.
            let expected = shape
                .iter()
                .try_fold(dtype.size(), |acc, &d| acc.checked_mul(u64::from(d)));
            if expected != Some(nbytes) {
                let expected =
                    expected.map_or_else(|| "more than 2^64".to_owned(), |e| e.to_string());
                return Err(ModelsError::Ct2Format {
                    path: path.to_owned(),
                    reason: format!(
                        "variable {name} declares {nbytes} bytes but shape {shape:?} of {} needs {expected}",
                        dtype.name()
                    ),
                });
            }
            let offset = c.pos;
            c.skip(nbytes, &format!("data of {name}"))?;
            index.insert(name.clone(), vars.len());
            vars.push(Ct2Var {
                name,
                shape,
                dtype,
                offset,
                nbytes,
            });
        }
        let naliases = c.u32("alias count")?;
        let mut aliases = HashMap::new();
        for _ in 0..naliases {
            let a = c.string("alias name")?;
            let v = c.string("alias target")?;
            aliases.insert(a, v);
        }
        Ok(Ct2Model {
            path: path.to_owned(),
            version,
            spec,
            revision,
            vars,
            index,
            aliases,
        })
    }

    /// The variable `name`, following an alias as the reference's `get` does.
    pub fn get(&self, name: &str) -> Result<&Ct2Var> {
        let target = self.aliases.get(name).map(String::as_str).unwrap_or(name);
        self.index
            .get(target)
            .map(|&i| &self.vars[i])
            .ok_or_else(|| ModelsError::Ct2MissingVariable {
                name: name.to_owned(),
            })
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_ok()
    }

    /// Read `len` bytes of a variable's data starting at byte `start` within it.
    pub fn read_range<R: Read + Seek>(
        &self,
        r: &mut R,
        var: &Ct2Var,
        start: u64,
        buf: &mut [u8],
    ) -> Result<()> {
        debug_assert!(start + buf.len() as u64 <= var.nbytes);
        r.seek(SeekFrom::Start(var.offset + start))
            .map_err(|e| ModelsError::io("seek in", &self.path, e))?;
        r.read_exact(buf)
            .map_err(|e| ModelsError::io("read", &self.path, e))
    }

    /// A scalar integer variable such as `encoder/num_heads`.
    pub fn scalar_int<R: Read + Seek>(&self, r: &mut R, name: &str) -> Result<i64> {
        let var = self.get(name)?;
        if var.elements() != 1 {
            return Err(ModelsError::Ct2Shape {
                name: name.to_owned(),
                shape: var.shape.clone(),
                reason: "expected a scalar",
            });
        }
        let mut b = vec![0u8; var.nbytes as usize];
        self.read_range(r, var, 0, &mut b)?;
        Ok(match var.dtype {
            Ct2Dtype::I8 => i64::from(b[0] as i8),
            Ct2Dtype::I16 => i64::from(i16::from_le_bytes([b[0], b[1]])),
            Ct2Dtype::I32 => i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            Ct2Dtype::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64,
            Ct2Dtype::F16 => half::f16::from_le_bytes([b[0], b[1]]).to_f32() as i64,
            Ct2Dtype::Bf16 => half::bf16::from_le_bytes([b[0], b[1]]).to_f32() as i64,
        })
    }
}
