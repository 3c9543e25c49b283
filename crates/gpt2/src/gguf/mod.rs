//! GGUF, llama.cpp's model file: a strict reader (versions 2 and 3) and an atomic writer (version 3).
//!
//! A GGUF file is a header, typed key–value metadata, a table of tensor descriptions and a data
//! section, all little-endian:
//!
//! ```text
//! "GGUF" | version: u32 | n_tensors: u64 | n_kv: u64
//! n_kv      × { key: str | value_type: u32 | value }
//! n_tensors × { name: str | n_dims: u32 | dims: [u64; n_dims] | ggml_type: u32 | offset: u64 }
//! zeros up to a multiple of `general.alignment` (u32, default 32)   <- the data section starts here
//! tensor data: each tensor at data_offset + offset, each padded with zeros to the alignment
//!
//! str   = len: u64 | len bytes of UTF-8, no NUL
//! array = elem_type: u32 | count: u64 | count × element   (an element that is an array has no
//!         value_type tag of its own: it starts with its own elem_type)
//! ```
//!
//! `dims` is in ggml's `ne` order: `dims[0]` is the contiguous (fastest-varying) axis, so a
//! row-major PyTorch tensor of shape `(V, C)` is stored with `dims = [C, V]`.
//!
//! Reference: ggml's `docs/gguf.md` (the specification), `ggml/src/gguf.cpp`
//! (`gguf_init_from_file_impl`, `gguf_write_to_buf`), gguf-py's `GGUFWriter` and `constants.py`
//! (type ids, block sizes).
//!
//! ## Bounds: what the reader checks before it allocates or reads
//!
//! The parser trusts no number it reads (llama.cpp's own parser had CVEs exactly here):
//! - every read goes through one bounds-checked cursor, so nothing is read past the end;
//! - a string length must fit in the bytes left; keys, tensor names and string values must be
//!   UTF-8;
//! - a count is checked against the bytes left before any `Vec` is reserved: `n_kv` × 13 bytes
//!   (the smallest entry), `n_tensors` × 32 bytes (the smallest tensor info), an array's
//!   `count` × its element's smallest encoding ([`ValueType::min_size`]). Memory is therefore
//!   bounded by a small multiple of the file size, whatever the bytes;
//! - arrays nest at most [`MAX_ARRAY_DEPTH`] deep (recursion is bounded);
//! - a tensor has 1 to [`MAX_DIMS`] dims, each ≥ 1; the element count and byte size use checked
//!   arithmetic and stay below 2⁶³; `dims[0]` is a multiple of the type's block size;
//! - `general.alignment` is a u32 and a non-zero power of two; every tensor offset is a multiple of
//!   it; every tensor lies inside the file; no two tensors overlap;
//! - keys and tensor names are unique; the magic is `GGUF`; the version is 2 or 3 (a byte-swapped
//!   version is reported as a big-endian file).
//!
//! Every failure is a [`GgufError`] naming the file and the header field, key or tensor at fault.
//! The reader is lenient in one place, like llama.cpp's loader: the zero padding after the last
//! tensor may be missing.
//!
//! Non-goals: GGUF v1 (u32 counts, 2023), big-endian files (detected, refused), editing a file in
//! place, and decoding quantized data (that is the kernels' job; here tensor data is bytes).

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::ops::{Deref, Range};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;

pub mod gpt2;
pub mod model;

/// The 4 bytes every GGUF file starts with.
pub const MAGIC: [u8; 4] = *b"GGUF";
/// The version [`GgufWriter`] writes. The reader also reads version 2 (same layout).
pub const VERSION: u32 = 3;
/// The metadata key that sets the data alignment.
pub const ALIGNMENT_KEY: &str = "general.alignment";
/// The alignment when `general.alignment` is absent (ggml's `GGUF_DEFAULT_ALIGNMENT`).
pub const DEFAULT_ALIGNMENT: u32 = 32;
/// Most dimensions a tensor may have (ggml's `GGML_MAX_DIMS`).
pub const MAX_DIMS: usize = 4;
/// Deepest nesting of arrays the reader and writer accept: `[[1, 2], [3]]` has depth 2.
/// (gguf-py writes nested arrays; llama.cpp reads none.)
pub const MAX_ARRAY_DEPTH: usize = 8;
/// Longest tensor name llama.cpp loads, in bytes (ggml's `GGML_MAX_NAME` = 64, less the NUL).
/// The writer enforces it; the reader accepts longer names.
pub const MAX_TENSOR_NAME: usize = 63;

/// Smallest encoding of a metadata entry: an empty key (8), a value type (4), a 1-byte value.
const MIN_KV_BYTES: u64 = 8 + 4 + 1;
/// Smallest encoding of a tensor info: an empty name (8), n_dims (4), one dim (8), type (4),
/// offset (8).
const MIN_TENSOR_INFO_BYTES: u64 = 8 + 4 + 8 + 4 + 8;

// ---------------------------------------------------------------------------------------------
// Tensor types
// ---------------------------------------------------------------------------------------------

/// Declares [`GgmlType`] from one table: variant = id, ggml name, elements per block, bytes per
/// block, description. One row per type, so ids, names and sizes cannot drift apart.
macro_rules! ggml_types {
    ($( $variant:ident = $id:literal, $name:literal, $block:literal, $bytes:literal, $doc:literal; )*) => {
        /// A ggml tensor element type, with ggml's numeric id (`enum ggml_type` in `ggml.h`).
        ///
        /// Quantized types store blocks of [`GgmlType::block_size`] elements in
        /// [`GgmlType::type_size`] bytes each; plain types have a block of one element. Ids 4, 5
        /// (Q4_2, Q4_3), 31–33 (Q4_0_4_4 …) and 36–38 (IQ4_NL_4_4 …) were removed from ggml and
        /// are rejected.
        #[allow(non_camel_case_types)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u32)]
        pub enum GgmlType {
            $( #[doc = $doc] $variant = $id, )*
        }

        impl GgmlType {
            /// Every type, in id order.
            pub const ALL: &'static [GgmlType] = &[$(GgmlType::$variant),*];

            /// The type with ggml id `id`, or `None` for an unknown or removed id.
            pub fn from_u32(id: u32) -> Option<Self> {
                match id {
                    $( $id => Some(GgmlType::$variant), )*
                    _ => None,
                }
            }

            /// ggml's name for the type (`ggml_type_name`): `"f32"`, `"q8_0"`, `"q4_K"`, ...
            pub fn name(self) -> &'static str {
                match self { $( GgmlType::$variant => $name, )* }
            }

            /// Elements per block (`ggml_blck_size`): 1 for plain types, 32 or 256 for most
            /// quantized ones.
            pub fn block_size(self) -> usize {
                match self { $( GgmlType::$variant => $block, )* }
            }

            /// Bytes per block (`ggml_type_size`).
            pub fn type_size(self) -> usize {
                match self { $( GgmlType::$variant => $bytes, )* }
            }
        }
    };
}

ggml_types! {
    F32 = 0, "f32", 1, 4, "32-bit IEEE float.";
    F16 = 1, "f16", 1, 2, "16-bit IEEE half float.";
    Q4_0 = 2, "q4_0", 32, 18, "4-bit: f16 scale + 32 nibbles per block of 32.";
    Q4_1 = 3, "q4_1", 32, 20, "4-bit: f16 scale and min + 32 nibbles per block of 32.";
    Q5_0 = 6, "q5_0", 32, 22, "5-bit: f16 scale + 32 high bits + 32 nibbles per block of 32.";
    Q5_1 = 7, "q5_1", 32, 24, "5-bit: f16 scale and min + 32 high bits + 32 nibbles per block.";
    Q8_0 = 8, "q8_0", 32, 34, "8-bit: f16 scale + 32 i8 per block of 32.";
    Q8_1 = 9, "q8_1", 32, 36, "8-bit: f16 scale and sum + 32 i8 per block of 32.";
    Q2_K = 10, "q2_K", 256, 84, "2-bit k-quant, super-blocks of 256.";
    Q3_K = 11, "q3_K", 256, 110, "3-bit k-quant, super-blocks of 256.";
    Q4_K = 12, "q4_K", 256, 144, "4-bit k-quant, super-blocks of 256.";
    Q5_K = 13, "q5_K", 256, 176, "5-bit k-quant, super-blocks of 256.";
    Q6_K = 14, "q6_K", 256, 210, "6-bit k-quant, super-blocks of 256.";
    Q8_K = 15, "q8_K", 256, 292, "8-bit k-quant (intermediate type for dot products).";
    IQ2_XXS = 16, "iq2_xxs", 256, 66, "2.06-bit i-quant.";
    IQ2_XS = 17, "iq2_xs", 256, 74, "2.31-bit i-quant.";
    IQ3_XXS = 18, "iq3_xxs", 256, 98, "3.06-bit i-quant.";
    IQ1_S = 19, "iq1_s", 256, 50, "1.56-bit i-quant.";
    IQ4_NL = 20, "iq4_nl", 32, 18, "4-bit non-linear, blocks of 32.";
    IQ3_S = 21, "iq3_s", 256, 110, "3.44-bit i-quant.";
    IQ2_S = 22, "iq2_s", 256, 82, "2.5-bit i-quant.";
    IQ4_XS = 23, "iq4_xs", 256, 136, "4.25-bit non-linear, super-blocks of 256.";
    I8 = 24, "i8", 1, 1, "8-bit signed integer.";
    I16 = 25, "i16", 1, 2, "16-bit signed integer.";
    I32 = 26, "i32", 1, 4, "32-bit signed integer.";
    I64 = 27, "i64", 1, 8, "64-bit signed integer.";
    F64 = 28, "f64", 1, 8, "64-bit IEEE float.";
    IQ1_M = 29, "iq1_m", 256, 56, "1.75-bit i-quant.";
    BF16 = 30, "bf16", 1, 2, "bfloat16: the top half of an f32.";
    TQ1_0 = 34, "tq1_0", 256, 54, "Ternary 1.69-bit.";
    TQ2_0 = 35, "tq2_0", 256, 66, "Ternary 2.06-bit.";
    MXFP4 = 39, "mxfp4", 32, 17, "OCP microscaling FP4: e8m0 scale + 32 e2m1 per block.";
    NVFP4 = 40, "nvfp4", 64, 36, "NVIDIA FP4: 4 e4m3 scales + 64 e2m1 per block of 64.";
    Q1_0 = 41, "q1_0", 128, 18, "1-bit: f16 scale + 128 sign bits per block of 128.";
}

impl GgmlType {
    /// Bytes of one row of `ne0` elements (`ggml_row_size`), or `None` when `ne0` is not a
    /// multiple of [`GgmlType::block_size`] (or the size overflows).
    ///
    /// Example: `GgmlType::Q8_0.row_bytes(768) == Some(816)` (24 blocks of 34 bytes).
    pub fn row_bytes(self, ne0: usize) -> Option<usize> {
        if !ne0.is_multiple_of(self.block_size()) {
            return None;
        }
        (ne0 / self.block_size()).checked_mul(self.type_size())
    }

    /// Bytes of a tensor with `dims` (ne order), or `None` when `dims` is empty, a dim is 0,
    /// `dims[0]` is not a multiple of the block size, or the size overflows u64 / ggml's i64.
    pub fn tensor_bytes(self, dims: &[u64]) -> Option<u64> {
        let ne0 = *dims.first()?;
        let n = n_elements(dims)?;
        if !ne0.is_multiple_of(self.block_size() as u64) {
            return None;
        }
        (n / self.block_size() as u64)
            .checked_mul(self.type_size() as u64)
            .filter(|&b| b <= i64::MAX as u64)
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Product of `dims`, or `None` if a dim is 0 or the product exceeds ggml's `i64::MAX`.
fn n_elements(dims: &[u64]) -> Option<u64> {
    dims.iter()
        .try_fold(
            1u64,
            |acc, &ne| if ne == 0 { None } else { acc.checked_mul(ne) },
        )
        .filter(|&n| n <= i64::MAX as u64)
}

/// The known ids as compact ranges, for error messages: `"0-3, 6-30, 34-35, 39-41"`.
fn known_type_ids() -> String {
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    for &t in GgmlType::ALL {
        let id = t as u32;
        match ranges.last_mut() {
            Some((_, hi)) if *hi + 1 == id => *hi = id,
            _ => ranges.push((id, id)),
        }
    }
    ranges
        .iter()
        .map(|&(lo, hi)| {
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

// ---------------------------------------------------------------------------------------------
// Metadata values
// ---------------------------------------------------------------------------------------------

/// The type tag of a metadata value (`enum gguf_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ValueType {
    /// `u8`.
    U8 = 0,
    /// `i8`.
    I8 = 1,
    /// `u16`.
    U16 = 2,
    /// `i16`.
    I16 = 3,
    /// `u32`.
    U32 = 4,
    /// `i32`.
    I32 = 5,
    /// `f32`.
    F32 = 6,
    /// One byte, 0 or 1.
    Bool = 7,
    /// UTF-8 string: u64 length + bytes.
    String = 8,
    /// Array: element type + u64 count + elements.
    Array = 9,
    /// `u64`.
    U64 = 10,
    /// `i64`.
    I64 = 11,
    /// `f64`.
    F64 = 12,
}

impl ValueType {
    /// The type with GGUF id `id` (0..=12).
    pub fn from_u32(id: u32) -> Option<Self> {
        use ValueType::*;
        Some(match id {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            8 => String,
            9 => Array,
            10 => U64,
            11 => I64,
            12 => F64,
            _ => return None,
        })
    }

    /// Lower-case name for messages: `"u32"`, `"string"`, `"array"`, ...
    pub fn name(self) -> &'static str {
        use ValueType::*;
        match self {
            U8 => "u8",
            I8 => "i8",
            U16 => "u16",
            I16 => "i16",
            U32 => "u32",
            I32 => "i32",
            F32 => "f32",
            Bool => "bool",
            String => "string",
            Array => "array",
            U64 => "u64",
            I64 => "i64",
            F64 => "f64",
        }
    }

    /// Size in bytes of a fixed-size type; `None` for strings and arrays.
    pub fn fixed_size(self) -> Option<usize> {
        use ValueType::*;
        match self {
            U8 | I8 | Bool => Some(1),
            U16 | I16 => Some(2),
            U32 | I32 | F32 => Some(4),
            U64 | I64 | F64 => Some(8),
            String | Array => None,
        }
    }

    /// Fewest bytes one value of this type takes in a file: its fixed size, 8 for a string (the
    /// length), 12 for an array element (element type + count). The reader checks
    /// `count × min_size ≤ bytes left` before reserving memory for an array.
    pub fn min_size(self) -> u64 {
        match self {
            ValueType::String => 8,
            ValueType::Array => 12,
            fixed => fixed.fixed_size().unwrap_or(1) as u64,
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One metadata value, of any of GGUF's 13 types.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `u8`.
    U8(u8),
    /// `i8`.
    I8(i8),
    /// `u16`.
    U16(u16),
    /// `i16`.
    I16(i16),
    /// `u32`, e.g. `gpt2.block_count`.
    U32(u32),
    /// `i32`.
    I32(i32),
    /// `f32`, e.g. `gpt2.attention.layer_norm_epsilon`.
    F32(f32),
    /// `bool`.
    Bool(bool),
    /// A UTF-8 string, e.g. `general.architecture`.
    String(String),
    /// A typed array, e.g. `tokenizer.ggml.tokens`.
    Array(Array),
    /// `u64`.
    U64(u64),
    /// `i64`.
    I64(i64),
    /// `f64`.
    F64(f64),
}

/// A metadata array: one `Vec` of the element type, so 50,257 token strings are one
/// `Vec<String>` and 50,257 token types one `Vec<i32>`, not 50,257 tagged values.
#[derive(Debug, Clone, PartialEq)]
pub enum Array {
    /// `u8` elements.
    U8(Vec<u8>),
    /// `i8` elements.
    I8(Vec<i8>),
    /// `u16` elements.
    U16(Vec<u16>),
    /// `i16` elements.
    I16(Vec<i16>),
    /// `u32` elements.
    U32(Vec<u32>),
    /// `i32` elements, e.g. `tokenizer.ggml.token_type`.
    I32(Vec<i32>),
    /// `f32` elements, e.g. `tokenizer.ggml.scores`.
    F32(Vec<f32>),
    /// `bool` elements.
    Bool(Vec<bool>),
    /// String elements, e.g. `tokenizer.ggml.tokens` and `tokenizer.ggml.merges`.
    String(Vec<String>),
    /// Array elements (arrays of arrays); each inner array has its own element type.
    Array(Vec<Array>),
    /// `u64` elements.
    U64(Vec<u64>),
    /// `i64` elements.
    I64(Vec<i64>),
    /// `f64` elements.
    F64(Vec<f64>),
}

impl Array {
    /// The element type.
    pub fn elem_type(&self) -> ValueType {
        match self {
            Array::U8(_) => ValueType::U8,
            Array::I8(_) => ValueType::I8,
            Array::U16(_) => ValueType::U16,
            Array::I16(_) => ValueType::I16,
            Array::U32(_) => ValueType::U32,
            Array::I32(_) => ValueType::I32,
            Array::F32(_) => ValueType::F32,
            Array::Bool(_) => ValueType::Bool,
            Array::String(_) => ValueType::String,
            Array::Array(_) => ValueType::Array,
            Array::U64(_) => ValueType::U64,
            Array::I64(_) => ValueType::I64,
            Array::F64(_) => ValueType::F64,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Array::U8(v) => v.len(),
            Array::I8(v) => v.len(),
            Array::U16(v) => v.len(),
            Array::I16(v) => v.len(),
            Array::U32(v) => v.len(),
            Array::I32(v) => v.len(),
            Array::F32(v) => v.len(),
            Array::Bool(v) => v.len(),
            Array::String(v) => v.len(),
            Array::Array(v) => v.len(),
            Array::U64(v) => v.len(),
            Array::I64(v) => v.len(),
            Array::F64(v) => v.len(),
        }
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Nesting depth: 1 for an array of scalars or strings, 1 + the deepest element for an
    /// array of arrays.
    pub fn depth(&self) -> usize {
        match self {
            Array::Array(v) => 1 + v.iter().map(Array::depth).max().unwrap_or(0),
            _ => 1,
        }
    }
}

/// `Value::as_*` for the scalar variants: `Some` only for exactly that type.
macro_rules! scalar_accessors {
    ($( $fn_name:ident, $variant:ident, $t:ty; )*) => {
        $(
            #[doc = concat!("The value if it is a `", stringify!($t), "`.")]
            pub fn $fn_name(&self) -> Option<$t> {
                match self {
                    Value::$variant(x) => Some(*x),
                    _ => None,
                }
            }
        )*
    };
}

/// `Value::as_*_array` for the array variants: `Some` only for exactly that element type.
macro_rules! array_accessors {
    ($( $fn_name:ident, $variant:ident, $t:ty; )*) => {
        $(
            #[doc = concat!("The elements if the value is an array of `", stringify!($t), "`.")]
            pub fn $fn_name(&self) -> Option<&[$t]> {
                match self {
                    Value::Array(Array::$variant(v)) => Some(v),
                    _ => None,
                }
            }
        )*
    };
}

impl Value {
    /// The type tag.
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::U8(_) => ValueType::U8,
            Value::I8(_) => ValueType::I8,
            Value::U16(_) => ValueType::U16,
            Value::I16(_) => ValueType::I16,
            Value::U32(_) => ValueType::U32,
            Value::I32(_) => ValueType::I32,
            Value::F32(_) => ValueType::F32,
            Value::Bool(_) => ValueType::Bool,
            Value::String(_) => ValueType::String,
            Value::Array(_) => ValueType::Array,
            Value::U64(_) => ValueType::U64,
            Value::I64(_) => ValueType::I64,
            Value::F64(_) => ValueType::F64,
        }
    }

    scalar_accessors! {
        as_u8, U8, u8;
        as_i8, I8, i8;
        as_u16, U16, u16;
        as_i16, I16, i16;
        as_u32, U32, u32;
        as_i32, I32, i32;
        as_f32, F32, f32;
        as_bool, Bool, bool;
        as_u64, U64, u64;
        as_i64, I64, i64;
        as_f64, F64, f64;
    }

    array_accessors! {
        as_u8_array, U8, u8;
        as_u32_array, U32, u32;
        as_i32_array, I32, i32;
        as_f32_array, F32, f32;
        as_string_array, String, String;
    }

    /// The string if the value is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The array if the value is an array.
    pub fn as_array(&self) -> Option<&Array> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// Any integer type as u64, if the value is a non-negative integer (lossless: a negative
    /// `i32` is `None`, not a wrapped number). Floats, bools, strings and arrays are `None`.
    pub fn to_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(x) => Some(x.into()),
            Value::U16(x) => Some(x.into()),
            Value::U32(x) => Some(x.into()),
            Value::U64(x) => Some(x),
            Value::I8(x) => u64::try_from(x).ok(),
            Value::I16(x) => u64::try_from(x).ok(),
            Value::I32(x) => u64::try_from(x).ok(),
            Value::I64(x) => u64::try_from(x).ok(),
            _ => None,
        }
    }

    /// Any integer type as i64, if it fits (a `u64` above `i64::MAX` is `None`).
    pub fn to_i64(&self) -> Option<i64> {
        match *self {
            Value::U8(x) => Some(x.into()),
            Value::U16(x) => Some(x.into()),
            Value::U32(x) => Some(x.into()),
            Value::U64(x) => i64::try_from(x).ok(),
            Value::I8(x) => Some(x.into()),
            Value::I16(x) => Some(x.into()),
            Value::I32(x) => Some(x.into()),
            Value::I64(x) => Some(x),
            _ => None,
        }
    }

    /// `f32` or `f64` as f64 (an f64 is not narrowed).
    pub fn to_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(x) => Some(x.into()),
            Value::F64(x) => Some(x),
            _ => None,
        }
    }

    /// The type and a short form of the value, for messages: `u32 12`, `string "llama"`,
    /// `array of 50257 string`.
    pub fn describe(&self) -> String {
        match self {
            Value::Array(a) => format!("array of {} {}", a.len(), a.elem_type()),
            v => format!("{} {v}", v.value_type()),
        }
    }
}

impl fmt::Display for Value {
    /// Scalars as themselves, strings quoted (at most 80 characters), arrays as `[N × type]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::U8(x) => write!(f, "{x}"),
            Value::I8(x) => write!(f, "{x}"),
            Value::U16(x) => write!(f, "{x}"),
            Value::I16(x) => write!(f, "{x}"),
            Value::U32(x) => write!(f, "{x}"),
            Value::I32(x) => write!(f, "{x}"),
            Value::F32(x) => write!(f, "{x}"),
            Value::Bool(x) => write!(f, "{x}"),
            Value::String(s) if s.chars().count() > 80 => {
                let head: String = s.chars().take(80).collect();
                write!(f, "{head:?}…")
            }
            Value::String(s) => write!(f, "{s:?}"),
            Value::Array(a) => write!(f, "[{} × {}]", a.len(), a.elem_type()),
            Value::U64(x) => write!(f, "{x}"),
            Value::I64(x) => write!(f, "{x}"),
            Value::F64(x) => write!(f, "{x}"),
        }
    }
}

/// `From<T> for Value` and `From<Vec<T>> for Value`, so the writer takes `("k", 12u32)` or
/// `("k", vec![1i32, 3])` directly.
macro_rules! value_from {
    ($( $t:ty, $variant:ident; )*) => {
        $(
            impl From<$t> for Value {
                fn from(x: $t) -> Self {
                    Value::$variant(x)
                }
            }
            impl From<Vec<$t>> for Value {
                fn from(v: Vec<$t>) -> Self {
                    Value::Array(Array::$variant(v))
                }
            }
        )*
    };
}

value_from! {
    u8, U8; i8, I8; u16, U16; i16, I16; u32, U32; i32, I32; f32, F32; bool, Bool;
    String, String; u64, U64; i64, I64; f64, F64;
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_string())
    }
}

impl From<Array> for Value {
    fn from(a: Array) -> Self {
        Value::Array(a)
    }
}

// ---------------------------------------------------------------------------------------------
// Tensor infos and errors
// ---------------------------------------------------------------------------------------------

/// One tensor's description from the tensor-info table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// The tensor's name, e.g. `blk.0.attn_qkv.weight`.
    pub name: String,
    /// Sizes in ggml's `ne` order: `dims[0]` is the contiguous (fastest) axis. A PyTorch
    /// `(rows, cols)` matrix has `dims = [cols, rows]`.
    pub dims: Vec<u64>,
    /// Element type.
    pub ty: GgmlType,
    /// Byte offset of the data, relative to the data section ([`GgufFile::data_offset`]).
    pub offset: u64,
    /// Byte size of the data (without padding).
    pub size: u64,
}

impl TensorInfo {
    /// Number of elements (the product of `dims`; validated not to overflow when read).
    pub fn n_elements(&self) -> u64 {
        n_elements(&self.dims).unwrap_or(0)
    }

    /// The dims in PyTorch order (slowest axis first), e.g. `[V, C]` for `token_embd.weight`.
    pub fn shape(&self) -> Vec<u64> {
        self.dims.iter().rev().copied().collect()
    }
}

/// Errors from reading, validating or writing a GGUF file. Each names the file and the header
/// field, metadata key or tensor at fault.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// The file could not be opened, mapped, written or renamed.
    #[error("{file}: {error}")]
    Io {
        /// The file.
        file: String,
        /// The underlying error (printed in the message, so not also a `source`).
        error: io::Error,
    },
    /// The first 4 bytes are not `GGUF`.
    #[error("{file}: not a GGUF file: it starts with {got:?}, not \"GGUF\"")]
    BadMagic {
        /// The file.
        file: String,
        /// The first bytes, escaped.
        got: String,
    },
    /// A version other than 2 or 3.
    #[error(
        "{file}: GGUF version {version} is not supported: this reader reads versions 2 and 3{hint}"
    )]
    Version {
        /// The file.
        file: String,
        /// The version read.
        version: u32,
        /// Advice for the version at hand (empty when there is none).
        hint: &'static str,
    },
    /// A big-endian file (GGUF v3 allows them; ggml writes them only on big-endian machines).
    #[error("{file}: big-endian GGUF (version {version}, byte-swapped) is not supported; convert it with gguf-py's `gguf_convert_endian.py {file} little`")]
    BigEndian {
        /// The file.
        file: String,
        /// The version once byte-swapped.
        version: u32,
    },
    /// The file ends inside something that must be read.
    #[error("{file}: truncated or corrupt: {what} needs {need} bytes at byte {at}, but the file has {len} bytes")]
    Truncated {
        /// The file.
        file: String,
        /// What was being read, e.g. "the value of metadata `general.name`".
        what: String,
        /// Byte offset of the read.
        at: u64,
        /// Bytes it needs.
        need: u64,
        /// File length.
        len: u64,
    },
    /// A bad header count (`n_tensors`, `n_kv`) or layout field.
    #[error("{file}: header field `{field}`: {msg}")]
    Header {
        /// The file.
        file: String,
        /// The header field.
        field: &'static str,
        /// What is wrong.
        msg: String,
    },
    /// A bad metadata entry (key, type, value).
    #[error("{file}: metadata `{key}`: {msg}")]
    Metadata {
        /// The file.
        file: String,
        /// The key (made printable if it is not UTF-8).
        key: String,
        /// What is wrong.
        msg: String,
    },
    /// A bad tensor info or tensor data.
    #[error("{file}: tensor `{tensor}`: {msg}")]
    Tensor {
        /// The file.
        file: String,
        /// The tensor name (made printable if it is not UTF-8).
        tensor: String,
        /// What is wrong.
        msg: String,
    },
    /// A required metadata key is absent.
    #[error("{file}: metadata key `{key}` is missing")]
    MissingKey {
        /// The file.
        file: String,
        /// The key.
        key: String,
    },
    /// A metadata value has the wrong type or range for its use.
    #[error("{file}: metadata `{key}` is {got}, expected {want}")]
    KeyType {
        /// The file.
        file: String,
        /// The key.
        key: String,
        /// What was expected, e.g. "a u32".
        want: &'static str,
        /// What was found, e.g. `string "12"` (see [`Value::describe`]).
        got: String,
    },
    /// A required tensor is absent.
    #[error("{file}: no tensor named `{tensor}`")]
    MissingTensor {
        /// The file.
        file: String,
        /// The tensor name.
        tensor: String,
    },
    /// The file holds another architecture (see [`gpt2::config_from_gguf`]).
    #[error("{file}: is a {arch} model (general.architecture = {arch}); gpt2 reads only GPT-2 (general.architecture = gpt2)")]
    Architecture {
        /// The file.
        file: String,
        /// The architecture it declares.
        arch: String,
    },
    /// The file's tokenizer is not GPT-2's (see [`gpt2::check_tokenizer`]).
    #[error("{file}: tokenizer: {msg}")]
    Tokenizer {
        /// The file.
        file: String,
        /// What differs.
        msg: String,
    },
    /// The hyper-parameters do not make a valid GPT-2 configuration.
    #[error("{file}: invalid GPT-2 hyper-parameters: {msg}")]
    Config {
        /// The file.
        file: String,
        /// What is wrong, naming the GGUF key.
        msg: String,
    },
}

/// `Result` with [`GgufError`].
pub type Result<T, E = GgufError> = std::result::Result<T, E>;

/// Printable form of bytes that are not (or may not be) UTF-8: `"gen\xffral"`.
fn escape_bytes(b: &[u8]) -> String {
    let shown: String = b
        .iter()
        .take(64)
        .flat_map(|&c| std::ascii::escape_default(c))
        .map(char::from)
        .collect();
    if b.len() > 64 {
        format!("{shown}...")
    } else {
        shown
    }
}

/// A byte count that may have overflowed, for messages: "at least 26 bytes" or, for `None`,
/// "more than 2^64 bytes".
fn at_least_bytes(n: Option<u64>) -> String {
    n.map_or_else(
        || "more than 2^64 bytes".to_string(),
        |n| format!("at least {n} bytes"),
    )
}

// ---------------------------------------------------------------------------------------------
// The reader
// ---------------------------------------------------------------------------------------------

/// The bytes of an open GGUF file: memory-mapped from disk, or owned (a file read into memory,
/// or bytes built in a test). Shared behind an `Arc` so a model can keep tensor data in place.
#[derive(Debug)]
pub enum FileBytes {
    /// A read-only memory map of the file.
    Mapped(Mmap),
    /// Bytes in memory.
    Owned(Vec<u8>),
}

impl Deref for FileBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            FileBytes::Mapped(m) => m,
            FileBytes::Owned(v) => v,
        }
    }
}

/// An open, fully validated GGUF file: its metadata in file order, its tensor infos, and its
/// bytes (usually a memory map), from which tensor data is borrowed without copying.
pub struct GgufFile {
    path: PathBuf,
    bytes: Arc<FileBytes>,
    version: u32,
    metadata: Vec<(String, Value)>,
    key_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
    alignment: u32,
    data_offset: u64,
}

impl fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("bytes", &self.bytes.len())
            .field("n_kv", &self.metadata.len())
            .field("n_tensors", &self.tensors.len())
            .field("alignment", &self.alignment)
            .finish()
    }
}

impl GgufFile {
    /// Memory-maps `path` and parses and validates its header, metadata and tensor infos (see
    /// the module docs for every check). Tensor data is not read until asked for.
    ///
    /// Errors: [`GgufError::Io`], and any of the format errors, naming `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let io_err = |error| GgufError::Io {
            file: path.display().to_string(),
            error,
        };
        let file = File::open(path).map_err(io_err)?;
        let len = file.metadata().map_err(io_err)?.len();
        let bytes = if len == 0 {
            // mmap rejects empty mappings; the parser reports the empty file as truncated.
            FileBytes::Owned(Vec::new())
        } else {
            // SAFETY: the map is read-only. As with every mmap-based loader (candle,
            // safetensors), another process truncating or rewriting the file while it is mapped
            // is undefined behaviour; our writer never does that, since it writes `FILE.tmp`
            // and renames it over the old file.
            let map = unsafe { Mmap::map(&file) }.map_err(io_err)?;
            // Best effort, before the first touch: pages the page cache reads for this mapping
            // come in 2 MiB folios where the filesystem supports them (ext4 and xfs on recent
            // kernels), mapped by one TLB entry each, which decoding reads faster (contents are
            // unaffected; pages already cached keep their size).
            #[cfg(target_os = "linux")]
            let _ = map.advise(memmap2::Advice::HugePage);
            FileBytes::Mapped(map)
        };
        Self::from_file_bytes(bytes, path.to_path_buf())
    }

    /// Parses a GGUF file held in memory; `name` stands for the file in error messages.
    ///
    /// Errors: as [`GgufFile::open`], less I/O.
    pub fn from_bytes(bytes: Vec<u8>, name: impl Into<PathBuf>) -> Result<Self> {
        Self::from_file_bytes(FileBytes::Owned(bytes), name.into())
    }

    fn from_file_bytes(bytes: FileBytes, path: PathBuf) -> Result<Self> {
        let label = path.display().to_string();
        let p = parse(&bytes, &label)?;
        Ok(Self {
            path,
            bytes: Arc::new(bytes),
            version: p.version,
            metadata: p.metadata,
            key_index: p.key_index,
            tensors: p.tensors,
            tensor_index: p.tensor_index,
            alignment: p.alignment,
            data_offset: p.data_offset,
        })
    }

    /// The path given to [`GgufFile::open`] (or the name given to [`GgufFile::from_bytes`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's name as printed in errors.
    fn label(&self) -> String {
        self.path.display().to_string()
    }

    /// The format version, 2 or 3.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The data alignment in bytes (`general.alignment`, default 32).
    pub fn alignment(&self) -> u32 {
        self.alignment
    }

    /// Absolute byte offset of the data section: tensor `t` starts at `data_offset() + t.offset`.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// Every metadata entry, in file order.
    pub fn metadata(&self) -> &[(String, Value)] {
        &self.metadata
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.key_index
            .get(key)
            .and_then(|&i| self.metadata.get(i))
            .map(|(_, v)| v)
    }

    /// The value of `key`. Errors: [`GgufError::MissingKey`].
    pub fn get_req(&self, key: &str) -> Result<&Value> {
        self.get(key).ok_or_else(|| GgufError::MissingKey {
            file: self.label(),
            key: key.to_string(),
        })
    }

    /// `key` through `convert`: `Ok(None)` when absent, [`GgufError::KeyType`] (expecting
    /// `want`) when present but `convert` gives `None`.
    fn typed<'a, T>(
        &'a self,
        key: &str,
        want: &'static str,
        convert: impl FnOnce(&'a Value) -> Option<T>,
    ) -> Result<Option<T>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => convert(v).map(Some).ok_or_else(|| GgufError::KeyType {
                file: self.label(),
                key: key.to_string(),
                want,
                got: v.describe(),
            }),
        }
    }

    /// `Some` value of an optional key, or [`GgufError::MissingKey`].
    fn required<T>(&self, key: &str, v: Option<T>) -> Result<T> {
        v.ok_or_else(|| GgufError::MissingKey {
            file: self.label(),
            key: key.to_string(),
        })
    }

    /// The string at `key`, if present. Errors: [`GgufError::KeyType`] if it is not a string.
    pub fn get_str_opt(&self, key: &str) -> Result<Option<&str>> {
        self.typed(key, "a string", Value::as_str)
    }

    /// The string at `key`. Errors: [`GgufError::MissingKey`], [`GgufError::KeyType`].
    pub fn get_str_req(&self, key: &str) -> Result<&str> {
        let v = self.get_str_opt(key)?;
        self.required(key, v)
    }

    /// The integer at `key` as a u32, if present. Any integer type is accepted when its value
    /// fits (gguf-py writes u32; other writers use i32 or u64).
    ///
    /// Errors: [`GgufError::KeyType`] for a non-integer or a value outside 0..=u32::MAX.
    pub fn get_u32_opt(&self, key: &str) -> Result<Option<u32>> {
        self.typed(key, "an integer in 0..=4294967295", |v| {
            v.to_u64().and_then(|x| u32::try_from(x).ok())
        })
    }

    /// The integer at `key` as a u32 (see [`GgufFile::get_u32_opt`]).
    /// Errors: [`GgufError::MissingKey`], [`GgufError::KeyType`].
    pub fn get_u32_req(&self, key: &str) -> Result<u32> {
        let v = self.get_u32_opt(key)?;
        self.required(key, v)
    }

    /// The non-negative integer at `key`, of any integer type, as a u64.
    /// Errors: [`GgufError::MissingKey`], [`GgufError::KeyType`].
    pub fn get_u64_req(&self, key: &str) -> Result<u64> {
        let v = self.typed(key, "a non-negative integer", Value::to_u64)?;
        self.required(key, v)
    }

    /// The float at `key` as f32: an `f32`, or an `f64` rounded to f32.
    /// Errors: [`GgufError::MissingKey`], [`GgufError::KeyType`].
    pub fn get_f32_req(&self, key: &str) -> Result<f32> {
        let v = self.typed(key, "an f32", |v| v.to_f64().map(|x| x as f32))?;
        self.required(key, v)
    }

    /// The bool at `key`, if present. Errors: [`GgufError::KeyType`].
    pub fn get_bool_opt(&self, key: &str) -> Result<Option<bool>> {
        self.typed(key, "a bool", Value::as_bool)
    }

    /// The string array at `key`, if present. Errors: [`GgufError::KeyType`].
    pub fn get_string_array_opt(&self, key: &str) -> Result<Option<&[String]>> {
        self.typed(key, "an array of strings", Value::as_string_array)
    }

    /// The string array at `key`. Errors: [`GgufError::MissingKey`], [`GgufError::KeyType`].
    pub fn get_string_array_req(&self, key: &str) -> Result<&[String]> {
        let v = self.get_string_array_opt(key)?;
        self.required(key, v)
    }

    /// The i32 array at `key`, if present. Errors: [`GgufError::KeyType`].
    pub fn get_i32_array_opt(&self, key: &str) -> Result<Option<&[i32]>> {
        self.typed(key, "an array of i32", Value::as_i32_array)
    }

    /// Every tensor info, in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The tensor named `name`, if present.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index
            .get(name)
            .and_then(|&i| self.tensors.get(i))
    }

    /// The tensor named `name`. Errors: [`GgufError::MissingTensor`].
    pub fn tensor_req(&self, name: &str) -> Result<&TensorInfo> {
        self.tensor(name).ok_or_else(|| GgufError::MissingTensor {
            file: self.label(),
            tensor: name.to_string(),
        })
    }

    /// Absolute byte range of `t`'s data in [`GgufFile::shared_bytes`].
    ///
    /// Errors: [`GgufError::Tensor`] if `t` does not lie inside this file (only possible for a
    /// `TensorInfo` that did not come from this file: every tensor of the file was checked).
    pub fn tensor_range(&self, t: &TensorInfo) -> Result<Range<usize>> {
        let range = self
            .data_offset
            .checked_add(t.offset)
            .and_then(|start| Some((start, start.checked_add(t.size)?)))
            .filter(|&(_, end)| end <= self.bytes.len() as u64)
            .and_then(|(s, e)| Some(usize::try_from(s).ok()?..usize::try_from(e).ok()?));
        range.ok_or_else(|| GgufError::Tensor {
            file: self.label(),
            tensor: t.name.clone(),
            msg: format!(
                "offset {} + {} bytes is not inside this file ({} bytes); was this TensorInfo read from another file?",
                t.offset,
                t.size,
                self.bytes.len()
            ),
        })
    }

    /// The data of `t`: a slice of the mapping, `t.size` bytes, no copy.
    ///
    /// Errors: as [`GgufFile::tensor_range`].
    pub fn tensor_data(&self, t: &TensorInfo) -> Result<&[u8]> {
        let range = self.tensor_range(t)?;
        self.bytes.get(range).ok_or_else(|| GgufError::Tensor {
            file: self.label(),
            tensor: t.name.clone(),
            msg: "data range is not inside this file".into(),
        })
    }

    /// The whole file's bytes, shared: a model can hold this `Arc` and slice tensors with
    /// [`GgufFile::tensor_range`] after the `GgufFile` is dropped, keeping the data mapped.
    pub fn shared_bytes(&self) -> Arc<FileBytes> {
        Arc::clone(&self.bytes)
    }
}

/// What [`parse`] found.
struct Parsed {
    version: u32,
    metadata: Vec<(String, Value)>,
    key_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
    alignment: u32,
    data_offset: u64,
}

/// A bounds-checked reader over the file's bytes. Every read goes through [`Cursor::take`],
/// which fails with [`GgufError::Truncated`] (saying what was being read) instead of reading
/// past the end.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    file: &'a str,
}

/// `N` bytes as an array, for `from_le_bytes`. Callers pass exactly `N` bytes (from
/// `chunks_exact(N)` or `take(N)`).
fn le<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(b);
    a
}

impl<'a> Cursor<'a> {
    /// Bytes not yet read.
    fn left(&self) -> u64 {
        self.buf.len().saturating_sub(self.pos) as u64
    }

    /// The next `n` bytes. `what` describes the read for the error message.
    fn take(&mut self, n: u64, what: impl FnOnce() -> String) -> Result<&'a [u8]> {
        let slice = usize::try_from(n)
            .ok()
            .and_then(|n| self.pos.checked_add(n))
            .and_then(|end| self.buf.get(self.pos..end));
        match slice {
            Some(s) => {
                self.pos += s.len();
                Ok(s)
            }
            None => Err(GgufError::Truncated {
                file: self.file.to_string(),
                what: what(),
                at: self.pos as u64,
                need: n,
                len: self.buf.len() as u64,
            }),
        }
    }

    fn u32(&mut self, what: impl FnOnce() -> String) -> Result<u32> {
        Ok(u32::from_le_bytes(le(self.take(4, what)?)))
    }

    fn u64(&mut self, what: impl FnOnce() -> String) -> Result<u64> {
        Ok(u64::from_le_bytes(le(self.take(8, what)?)))
    }

    /// A string's raw bytes: u64 length, then that many bytes (checked against the bytes left).
    fn str_bytes(&mut self, what: impl Fn() -> String) -> Result<&'a [u8]> {
        let len = self.u64(|| format!("the length of {}", what()))?;
        self.take(len, || format!("{} (a string of {len} bytes)", what()))
    }

    fn meta_err(&self, key: &str, msg: String) -> GgufError {
        GgufError::Metadata {
            file: self.file.to_string(),
            key: key.to_string(),
            msg,
        }
    }

    fn tensor_err(&self, tensor: &str, msg: String) -> GgufError {
        GgufError::Tensor {
            file: self.file.to_string(),
            tensor: tensor.to_string(),
            msg,
        }
    }

    /// A UTF-8 string value of metadata `key`; `elem` is the array index, if any, for messages.
    fn string(&mut self, key: &str, elem: Option<u64>) -> Result<String> {
        let place = || match elem {
            Some(i) => format!("element {i} of metadata `{key}`"),
            None => format!("the value of metadata `{key}`"),
        };
        let bytes = self.str_bytes(place)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_string()),
            Err(_) => Err(self.meta_err(
                key,
                format!(
                    "{} is not valid UTF-8: \"{}\"",
                    elem.map_or("the string".to_string(), |i| format!("element {i}")),
                    escape_bytes(bytes)
                ),
            )),
        }
    }

    /// One value of type `ty` of metadata `key` (the type tag is already read).
    fn value(&mut self, ty: ValueType, key: &str) -> Result<Value> {
        let what = || format!("the value of metadata `{key}`");
        Ok(match ty {
            ValueType::U8 => Value::U8(self.take(1, what)?[0]),
            ValueType::I8 => Value::I8(i8::from_le_bytes(le(self.take(1, what)?))),
            ValueType::U16 => Value::U16(u16::from_le_bytes(le(self.take(2, what)?))),
            ValueType::I16 => Value::I16(i16::from_le_bytes(le(self.take(2, what)?))),
            ValueType::U32 => Value::U32(u32::from_le_bytes(le(self.take(4, what)?))),
            ValueType::I32 => Value::I32(i32::from_le_bytes(le(self.take(4, what)?))),
            ValueType::F32 => Value::F32(f32::from_le_bytes(le(self.take(4, what)?))),
            ValueType::Bool => match self.take(1, what)?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(self.meta_err(key, format!("bool byte is {b}, not 0 or 1"))),
            },
            ValueType::String => Value::String(self.string(key, None)?),
            ValueType::Array => Value::Array(self.array(key, 1)?),
            ValueType::U64 => Value::U64(u64::from_le_bytes(le(self.take(8, what)?))),
            ValueType::I64 => Value::I64(i64::from_le_bytes(le(self.take(8, what)?))),
            ValueType::F64 => Value::F64(f64::from_le_bytes(le(self.take(8, what)?))),
        })
    }

    /// An array body (element type, count, elements) at nesting `depth` (1 = outermost).
    /// The count is checked against the bytes left before anything is reserved.
    fn array(&mut self, key: &str, depth: usize) -> Result<Array> {
        if depth > MAX_ARRAY_DEPTH {
            return Err(self.meta_err(
                key,
                format!("arrays are nested more than {MAX_ARRAY_DEPTH} deep"),
            ));
        }
        let what = || format!("the array header of metadata `{key}`");
        let ty_id = self.u32(what)?;
        let ty = ValueType::from_u32(ty_id).ok_or_else(|| {
            self.meta_err(
                key,
                format!("unknown array element type {ty_id} (GGUF value types are 0..=12)"),
            )
        })?;
        let count = self.u64(what)?;
        let need = count.checked_mul(ty.min_size());
        if need.is_none_or(|n| n > self.left()) {
            return Err(self.meta_err(
                key,
                format!(
                    "array of {count} {ty} elements needs {}, but only {} are left in the file",
                    at_least_bytes(need),
                    self.left()
                ),
            ));
        }
        // From here on `count` ≤ bytes left, so every reservation is bounded by the file size.
        let n = count as usize;
        let data = |c: &mut Self| {
            let len = count * ty.min_size();
            c.take(len, || {
                format!("the {count} {ty} elements of metadata `{key}`")
            })
        };
        /// Decodes fixed-size little-endian elements.
        macro_rules! fixed {
            ($variant:ident, $t:ty) => {
                Array::$variant(
                    data(self)?
                        .chunks_exact(size_of::<$t>())
                        .map(|c| <$t>::from_le_bytes(le(c)))
                        .collect(),
                )
            };
        }
        Ok(match ty {
            ValueType::U8 => Array::U8(data(self)?.to_vec()),
            ValueType::I8 => fixed!(I8, i8),
            ValueType::U16 => fixed!(U16, u16),
            ValueType::I16 => fixed!(I16, i16),
            ValueType::U32 => fixed!(U32, u32),
            ValueType::I32 => fixed!(I32, i32),
            ValueType::F32 => fixed!(F32, f32),
            ValueType::U64 => fixed!(U64, u64),
            ValueType::I64 => fixed!(I64, i64),
            ValueType::F64 => fixed!(F64, f64),
            ValueType::Bool => {
                let bytes = data(self)?;
                let mut v = Vec::with_capacity(n);
                for (i, &b) in bytes.iter().enumerate() {
                    match b {
                        0 | 1 => v.push(b == 1),
                        _ => {
                            return Err(self
                                .meta_err(key, format!("element {i} is {b}, not a bool (0 or 1)")))
                        }
                    }
                }
                Array::Bool(v)
            }
            ValueType::String => {
                let mut v = Vec::with_capacity(n);
                for i in 0..count {
                    v.push(self.string(key, Some(i))?);
                }
                Array::String(v)
            }
            ValueType::Array => {
                let mut v = Vec::with_capacity(n);
                for _ in 0..count {
                    v.push(self.array(key, depth + 1)?);
                }
                Array::Array(v)
            }
        })
    }
}

/// Parses and validates everything before the data section, and the placement of every tensor.
fn parse(buf: &[u8], file: &str) -> Result<Parsed> {
    let mut c = Cursor { buf, pos: 0, file };

    // --- header ---
    let magic = c.take(4, || "the magic \"GGUF\"".into())?;
    if magic != MAGIC {
        return Err(GgufError::BadMagic {
            file: file.into(),
            got: escape_bytes(magic),
        });
    }
    let version = c.u32(|| "the version".into())?;
    match version {
        2 | 3 => {}
        v if matches!(v.swap_bytes(), 2 | 3) => {
            return Err(GgufError::BigEndian {
                file: file.into(),
                version: v.swap_bytes(),
            })
        }
        1 => {
            return Err(GgufError::Version {
                file: file.into(),
                version,
                hint: " (v1, from 2023, used 32-bit counts; re-convert the model with a current llama.cpp)",
            })
        }
        _ => {
            return Err(GgufError::Version {
                file: file.into(),
                version,
                hint: "",
            })
        }
    }
    let n_tensors = c.u64(|| "the header field n_tensors".into())?;
    let n_kv = c.u64(|| "the header field n_kv".into())?;
    for (field, n, min) in [
        ("n_tensors", n_tensors, MIN_TENSOR_INFO_BYTES),
        ("n_kv", n_kv, MIN_KV_BYTES),
    ] {
        let need = n.checked_mul(min);
        if need.is_none_or(|need| need > c.left()) {
            return Err(GgufError::Header {
                file: file.into(),
                field,
                msg: format!(
                    "{n} entries need {} ({min} each), but only {} bytes follow the header \
                     (the file is truncated, or the count is corrupt)",
                    at_least_bytes(need),
                    c.left()
                ),
            });
        }
    }
    // Both counts are now ≤ file size / 13, so these reservations are bounded.
    let (n_tensors, n_kv) = (n_tensors as usize, n_kv as usize);

    // --- metadata ---
    let mut metadata = Vec::with_capacity(n_kv);
    let mut key_index = HashMap::with_capacity(n_kv);
    for i in 0..n_kv {
        let raw = c.str_bytes(|| format!("the key of metadata entry #{i}"))?;
        let key = std::str::from_utf8(raw)
            .map_err(|_| {
                c.meta_err(
                    &String::from_utf8_lossy(raw),
                    format!(
                        "the key (entry #{i}) is not valid UTF-8: \"{}\"",
                        escape_bytes(raw)
                    ),
                )
            })?
            .to_string();
        if let Some(&first) = key_index.get(&key) {
            return Err(c.meta_err(&key, format!("duplicate key (entries #{first} and #{i})")));
        }
        let ty_id = c.u32(|| format!("the value type of metadata `{key}`"))?;
        let ty = ValueType::from_u32(ty_id).ok_or_else(|| {
            c.meta_err(
                &key,
                format!("unknown value type {ty_id} (GGUF value types are 0..=12)"),
            )
        })?;
        let value = c.value(ty, &key)?;
        key_index.insert(key.clone(), i);
        metadata.push((key, value));
    }

    // --- tensor infos ---
    let mut tensors = Vec::with_capacity(n_tensors);
    let mut tensor_index = HashMap::with_capacity(n_tensors);
    for i in 0..n_tensors {
        let raw = c.str_bytes(|| format!("the name of tensor #{i}"))?;
        let name = std::str::from_utf8(raw)
            .map_err(|_| {
                c.tensor_err(
                    &String::from_utf8_lossy(raw),
                    format!(
                        "the name (tensor #{i}) is not valid UTF-8: \"{}\"",
                        escape_bytes(raw)
                    ),
                )
            })?
            .to_string();
        if let Some(&first) = tensor_index.get(&name) {
            return Err(c.tensor_err(
                &name,
                format!("duplicate tensor name (tensors #{first} and #{i})"),
            ));
        }
        let n_dims = c.u32(|| format!("n_dims of tensor `{name}`"))?;
        if n_dims == 0 || n_dims as usize > MAX_DIMS {
            return Err(c.tensor_err(
                &name,
                format!("n_dims is {n_dims}; a ggml tensor has 1 to {MAX_DIMS} dimensions"),
            ));
        }
        let raw_dims = c.take(8 * u64::from(n_dims), || {
            format!("the dims of tensor `{name}`")
        })?;
        let dims: Vec<u64> = raw_dims
            .chunks_exact(8)
            .map(|b| u64::from_le_bytes(le(b)))
            .collect();
        if let Some(d) = dims.iter().position(|&ne| ne == 0) {
            return Err(c.tensor_err(
                &name,
                format!("dims[{d}] is 0 (dims {dims:?}); every dimension must be at least 1"),
            ));
        }
        if n_elements(&dims).is_none() {
            return Err(c.tensor_err(
                &name,
                format!("the element count of dims {dims:?} overflows ggml's limit of 2^63 - 1"),
            ));
        }
        let ty_id = c.u32(|| format!("the type of tensor `{name}`"))?;
        let ty = GgmlType::from_u32(ty_id).ok_or_else(|| {
            c.tensor_err(
                &name,
                format!(
                    "unknown ggml type id {ty_id} (known ids: {})",
                    known_type_ids()
                ),
            )
        })?;
        if !dims[0].is_multiple_of(ty.block_size() as u64) {
            return Err(c.tensor_err(
                &name,
                format!(
                    "dims[0] = {} is not a multiple of {ty}'s block size {}",
                    dims[0],
                    ty.block_size()
                ),
            ));
        }
        let size = ty.tensor_bytes(&dims).ok_or_else(|| {
            c.tensor_err(
                &name,
                format!("the byte size of {dims:?} {ty} overflows ggml's limit of 2^63 - 1"),
            )
        })?;
        let offset = c.u64(|| format!("the offset of tensor `{name}`"))?;
        tensor_index.insert(name.clone(), i);
        tensors.push(TensorInfo {
            name,
            dims,
            ty,
            offset,
            size,
        });
    }

    // --- alignment and the data section ---
    let alignment = match key_index.get(ALIGNMENT_KEY).and_then(|&i| metadata.get(i)) {
        None => DEFAULT_ALIGNMENT,
        Some((_, Value::U32(a))) if a.is_power_of_two() => *a,
        Some((_, Value::U32(a))) => {
            return Err(c.meta_err(
                ALIGNMENT_KEY,
                format!("is {a}; the alignment must be a non-zero power of two (default {DEFAULT_ALIGNMENT})"),
            ))
        }
        Some((_, v)) => {
            return Err(c.meta_err(
                ALIGNMENT_KEY,
                format!("is {}; it must be a u32", v.describe()),
            ))
        }
    };
    let align = u64::from(alignment);
    let data_offset = (c.pos as u64)
        .checked_next_multiple_of(align)
        .ok_or_else(|| GgufError::Header {
            file: file.into(),
            field: "alignment",
            msg: "the data section offset overflows u64".into(),
        })?;
    let len = buf.len() as u64;
    for t in &tensors {
        if !t.offset.is_multiple_of(align) {
            return Err(c.tensor_err(
                &t.name,
                format!("offset {} is not aligned to {alignment}", t.offset),
            ));
        }
        let end = data_offset
            .checked_add(t.offset)
            .and_then(|s| s.checked_add(t.size));
        if end.is_none_or(|end| end > len) {
            return Err(c.tensor_err(
                &t.name,
                format!(
                    "data at offset {} ({} bytes of {:?} {}) ends {}, past the end of the file ({len} bytes): the file is truncated or the offset is corrupt",
                    t.offset,
                    t.size,
                    t.dims,
                    t.ty,
                    end.map_or_else(|| "beyond byte 2^64".to_string(), |e| format!("at byte {e}")),
                ),
            ));
        }
    }
    // Overlaps: sorted by offset, each tensor must end where the next may start.
    let mut order: Vec<&TensorInfo> = tensors.iter().collect();
    order.sort_by_key(|t| t.offset);
    for pair in order.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let a_end = a.offset.saturating_add(a.size);
        if a_end > b.offset {
            return Err(c.tensor_err(
                &b.name,
                format!(
                    "data [{}, {}) overlaps tensor `{}` at [{}, {a_end}) (offsets in the data section)",
                    b.offset,
                    b.offset.saturating_add(b.size),
                    a.name,
                    a.offset
                ),
            ));
        }
    }

    Ok(Parsed {
        version,
        metadata,
        key_index,
        tensors,
        tensor_index,
        alignment,
        data_offset,
    })
}

// ---------------------------------------------------------------------------------------------
// The writer
// ---------------------------------------------------------------------------------------------

/// The callback that streams one tensor's bytes: `(index, info, out)`. It must write exactly
/// `info.size` bytes; the writer counts them and adds the padding.
pub type TensorDataFn<'a> = dyn FnMut(usize, &TensorInfo, &mut dyn Write) -> io::Result<()> + 'a;

/// Writes a version-3 GGUF file the way gguf-py's `GGUFWriter` and ggml's `gguf_write_to_buf`
/// do: header, metadata, tensor infos, zero padding to the alignment, then each tensor's data
/// padded with zeros to the alignment.
///
/// Metadata and tensor descriptions are collected first and validated as they are added (unique
/// keys and names, dims, block multiples). Tensor data is then streamed, one tensor at a time,
/// by a callback, so a model is never held in memory twice. [`GgufWriter::write`] is atomic:
/// it writes `FILE.tmp` beside the target, fsyncs it and renames it over `FILE`.
///
/// ```
/// use gpt2::gguf::{slice_data, GgmlType, GgufFile, GgufWriter};
/// # fn main() -> Result<(), gpt2::gguf::GgufError> {
/// let mut w = GgufWriter::new("demo.gguf");
/// w.add_metadata("general.architecture", "gpt2")?;
/// w.add_tensor("output_norm.weight", &[4], GgmlType::F32)?;
/// let data: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0].iter().flat_map(|x| x.to_le_bytes()).collect();
/// let bytes = w.to_vec(&mut slice_data(&[&data[..]]))?;
/// let f = GgufFile::from_bytes(bytes, "demo.gguf")?;
/// assert_eq!(f.tensor_data(f.tensor_req("output_norm.weight")?)?, &data[..]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct GgufWriter {
    path: PathBuf,
    metadata: Vec<(String, Value)>,
    key_index: HashMap<String, usize>,
    /// Offsets are assigned by [`GgufWriter::tensor_infos`], once the alignment is final.
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
}

impl GgufWriter {
    /// A writer for `path` (nothing is written until [`GgufWriter::write`]).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            metadata: Vec::new(),
            key_index: HashMap::new(),
            tensors: Vec::new(),
            tensor_index: HashMap::new(),
        }
    }

    fn label(&self) -> String {
        self.path.display().to_string()
    }

    fn meta_err(&self, key: &str, msg: String) -> GgufError {
        GgufError::Metadata {
            file: self.label(),
            key: key.to_string(),
            msg,
        }
    }

    fn tensor_err(&self, tensor: &str, msg: String) -> GgufError {
        GgufError::Tensor {
            file: self.label(),
            tensor: tensor.to_string(),
            msg,
        }
    }

    /// Adds one metadata entry; entries are written in the order added. `general.alignment`, if
    /// added, sets the data alignment (a u32 power of two); otherwise it is 32 and the key is
    /// not written (as gguf-py does).
    ///
    /// Errors: [`GgufError::Metadata`] for an empty or duplicate key, arrays nested deeper than
    /// [`MAX_ARRAY_DEPTH`], or a bad `general.alignment`.
    pub fn add_metadata(&mut self, key: impl Into<String>, value: impl Into<Value>) -> Result<()> {
        let (key, value) = (key.into(), value.into());
        if key.is_empty() {
            return Err(self.meta_err(&key, "the key is empty".into()));
        }
        if self.key_index.contains_key(&key) {
            return Err(self.meta_err(&key, "duplicate key".into()));
        }
        if let Value::Array(a) = &value {
            if a.depth() > MAX_ARRAY_DEPTH {
                return Err(self.meta_err(
                    &key,
                    format!("arrays are nested more than {MAX_ARRAY_DEPTH} deep"),
                ));
            }
        }
        if key == ALIGNMENT_KEY {
            match value {
                Value::U32(a) if a.is_power_of_two() => {}
                ref v => {
                    return Err(self.meta_err(
                        &key,
                        format!("is {}; it must be a u32 power of two", v.describe()),
                    ))
                }
            }
        }
        self.key_index.insert(key.clone(), self.metadata.len());
        self.metadata.push((key, value));
        Ok(())
    }

    /// Adds every `(key, value)` of `entries`, in order (see [`GgufWriter::add_metadata`]).
    pub fn extend_metadata(
        &mut self,
        entries: impl IntoIterator<Item = (String, Value)>,
    ) -> Result<()> {
        entries
            .into_iter()
            .try_for_each(|(k, v)| self.add_metadata(k, v))
    }

    /// Declares a tensor: its data will be written in the order declared. `dims` is in ne order
    /// (`dims[0]` contiguous). Returns the byte size its data must have.
    ///
    /// Errors: [`GgufError::Tensor`] for an empty, duplicate or over-long (> 63 bytes, llama.cpp's
    /// limit) name, 0 or more than 4 dims, a zero dim, `dims[0]` not a multiple of the type's
    /// block size, or a size that overflows.
    pub fn add_tensor(
        &mut self,
        name: impl Into<String>,
        dims: &[u64],
        ty: GgmlType,
    ) -> Result<u64> {
        let name = name.into();
        if name.is_empty() || name.len() > MAX_TENSOR_NAME {
            return Err(self.tensor_err(
                &name,
                format!(
                    "the name is {} bytes; llama.cpp takes 1 to {MAX_TENSOR_NAME}",
                    name.len()
                ),
            ));
        }
        if self.tensor_index.contains_key(&name) {
            return Err(self.tensor_err(&name, "duplicate tensor name".into()));
        }
        if dims.is_empty() || dims.len() > MAX_DIMS {
            return Err(self.tensor_err(
                &name,
                format!("{} dims; a ggml tensor has 1 to {MAX_DIMS}", dims.len()),
            ));
        }
        if dims.contains(&0) {
            return Err(self.tensor_err(&name, format!("dims {dims:?} contain a 0")));
        }
        if !dims[0].is_multiple_of(ty.block_size() as u64) {
            return Err(self.tensor_err(
                &name,
                format!(
                    "dims[0] = {} is not a multiple of {ty}'s block size {}",
                    dims[0],
                    ty.block_size()
                ),
            ));
        }
        let size = ty.tensor_bytes(dims).ok_or_else(|| {
            self.tensor_err(&name, format!("the byte size of {dims:?} {ty} overflows"))
        })?;
        self.tensor_index.insert(name.clone(), self.tensors.len());
        self.tensors.push(TensorInfo {
            name,
            dims: dims.to_vec(),
            ty,
            offset: 0,
            size,
        });
        Ok(size)
    }

    /// The data alignment: `general.alignment` if added, else 32.
    pub fn alignment(&self) -> u32 {
        self.key_index
            .get(ALIGNMENT_KEY)
            .and_then(|&i| self.metadata.get(i))
            .and_then(|(_, v)| v.as_u32())
            .unwrap_or(DEFAULT_ALIGNMENT)
    }

    /// The tensor infos as they will be written, with their offsets: each tensor starts at the
    /// previous one's end rounded up to the alignment.
    ///
    /// Errors: [`GgufError::Tensor`] if the offsets overflow u64.
    pub fn tensor_infos(&self) -> Result<Vec<TensorInfo>> {
        let align = u64::from(self.alignment());
        let mut offset = 0u64;
        let mut infos = Vec::with_capacity(self.tensors.len());
        for t in &self.tensors {
            let next = offset
                .checked_add(t.size)
                .and_then(|end| end.checked_next_multiple_of(align))
                .ok_or_else(|| self.tensor_err(&t.name, "offsets overflow u64".into()))?;
            infos.push(TensorInfo {
                offset,
                ..t.clone()
            });
            offset = next;
        }
        Ok(infos)
    }

    /// Header, metadata and tensor infos, padded to the alignment: the bytes before the data.
    fn header(&self, infos: &[TensorInfo]) -> Vec<u8> {
        let mut h = Vec::new();
        h.extend_from_slice(&MAGIC);
        h.extend_from_slice(&VERSION.to_le_bytes());
        h.extend_from_slice(&(infos.len() as u64).to_le_bytes());
        h.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (key, value) in &self.metadata {
            put_str(&mut h, key);
            h.extend_from_slice(&(value.value_type() as u32).to_le_bytes());
            put_value(&mut h, value);
        }
        for t in infos {
            put_str(&mut h, &t.name);
            h.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for &ne in &t.dims {
                h.extend_from_slice(&ne.to_le_bytes());
            }
            h.extend_from_slice(&(t.ty as u32).to_le_bytes());
            h.extend_from_slice(&t.offset.to_le_bytes());
        }
        let align = self.alignment() as usize;
        h.resize(h.len().next_multiple_of(align), 0);
        h
    }

    /// Writes the whole file to `out`; `data` streams each tensor's bytes (see
    /// [`TensorDataFn`]; [`slice_data`] makes one from slices). Returns the bytes written.
    ///
    /// Errors: [`GgufError::Tensor`] if `data` fails or writes a different number of bytes than
    /// the tensor's size; [`GgufError::Io`] for a failed write.
    pub fn write_to(&self, out: &mut dyn Write, data: &mut TensorDataFn<'_>) -> Result<u64> {
        let infos = self.tensor_infos()?;
        let io_err = |error| GgufError::Io {
            file: self.label(),
            error,
        };
        let header = self.header(&infos);
        out.write_all(&header).map_err(io_err)?;
        let mut total = header.len() as u64;
        let align = u64::from(self.alignment());
        for (i, t) in infos.iter().enumerate() {
            let mut counted = CountingWriter {
                inner: &mut *out,
                n: 0,
            };
            data(i, t, &mut counted)
                .map_err(|e| self.tensor_err(&t.name, format!("writing its data failed: {e}")))?;
            if counted.n != t.size {
                return Err(self.tensor_err(
                    &t.name,
                    format!(
                        "{} bytes of data were written, but {:?} {} takes {} bytes",
                        counted.n, t.dims, t.ty, t.size
                    ),
                ));
            }
            let padded = t.size.next_multiple_of(align);
            write_zeros(out, padded - t.size).map_err(io_err)?;
            total += padded;
        }
        out.flush().map_err(io_err)?;
        Ok(total)
    }

    /// The whole file as bytes in memory (for tests and small files).
    ///
    /// Errors: as [`GgufWriter::write_to`].
    pub fn to_vec(&self, data: &mut TensorDataFn<'_>) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        self.write_to(&mut v, data)?;
        Ok(v)
    }

    /// Writes the file atomically: to `FILE.tmp` in the same folder, fsynced, then renamed over
    /// `FILE` (and the folder fsynced, on Unix). On any error the temporary file is removed and
    /// an existing `FILE` is left untouched.
    ///
    /// Errors: as [`GgufWriter::write_to`], and [`GgufError::Io`] for create, sync or rename.
    pub fn write(&self, data: &mut TensorDataFn<'_>) -> Result<()> {
        let name = self.path.file_name().ok_or_else(|| GgufError::Io {
            file: self.label(),
            error: io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"),
        })?;
        let mut tmp_name = name.to_os_string();
        tmp_name.push(".tmp");
        let tmp = self.path.with_file_name(tmp_name);
        let result = self.write_tmp_and_rename(&tmp, data);
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    fn write_tmp_and_rename(&self, tmp: &Path, data: &mut TensorDataFn<'_>) -> Result<()> {
        let io_err = |file: &Path| {
            let file = file.display().to_string();
            move |error| GgufError::Io { file, error }
        };
        let f = File::create(tmp).map_err(io_err(tmp))?;
        let mut buffered = BufWriter::with_capacity(1 << 20, f);
        self.write_to(&mut buffered, data)?;
        let f = buffered
            .into_inner()
            .map_err(|e| io_err(tmp)(e.into_error()))?;
        f.sync_all().map_err(io_err(tmp))?;
        drop(f);
        fs::rename(tmp, &self.path).map_err(io_err(&self.path))?;
        #[cfg(unix)]
        if let Some(dir) = self.path.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            // Makes the rename itself durable; best effort (some file systems refuse).
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

/// A [`TensorDataFn`] that writes `data[i]` for tensor `i`.
pub fn slice_data<'a>(
    data: &'a [&'a [u8]],
) -> impl FnMut(usize, &TensorInfo, &mut dyn Write) -> io::Result<()> + 'a {
    move |i, _t, out| match data.get(i) {
        Some(bytes) => out.write_all(bytes),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("no data given: {} slices for more tensors", data.len()),
        )),
    }
}

/// Counts the bytes a tensor callback writes.
struct CountingWriter<'a> {
    inner: &'a mut dyn Write,
    n: u64,
}

impl Write for CountingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn write_zeros(out: &mut dyn Write, mut n: u64) -> io::Result<()> {
    const ZEROS: [u8; 4096] = [0; 4096];
    while n > 0 {
        let k = n.min(ZEROS.len() as u64) as usize;
        out.write_all(&ZEROS[..k])?;
        n -= k as u64;
    }
    Ok(())
}

fn put_str(h: &mut Vec<u8>, s: &str) {
    h.extend_from_slice(&(s.len() as u64).to_le_bytes());
    h.extend_from_slice(s.as_bytes());
}

/// A value's payload (the type tag is written by the caller).
fn put_value(h: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => h.push(*x),
        Value::I8(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::U16(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => h.push(u8::from(*x)),
        Value::String(s) => put_str(h, s),
        Value::Array(a) => put_array(h, a),
        Value::U64(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => h.extend_from_slice(&x.to_le_bytes()),
    }
}

/// An array body: element type, count, elements (inner arrays without a tag of their own).
fn put_array(h: &mut Vec<u8>, a: &Array) {
    h.extend_from_slice(&(a.elem_type() as u32).to_le_bytes());
    h.extend_from_slice(&(a.len() as u64).to_le_bytes());
    /// Little-endian elements of a fixed-size array.
    macro_rules! fixed {
        ($v:expr) => {
            for x in $v {
                h.extend_from_slice(&x.to_le_bytes());
            }
        };
    }
    match a {
        Array::U8(v) => h.extend_from_slice(v),
        Array::I8(v) => fixed!(v),
        Array::U16(v) => fixed!(v),
        Array::I16(v) => fixed!(v),
        Array::U32(v) => fixed!(v),
        Array::I32(v) => fixed!(v),
        Array::F32(v) => fixed!(v),
        Array::Bool(v) => h.extend(v.iter().map(|&b| u8::from(b))),
        Array::String(v) => v.iter().for_each(|s| put_str(h, s)),
        Array::Array(v) => v.iter().for_each(|inner| put_array(h, inner)),
        Array::U64(v) => fixed!(v),
        Array::I64(v) => fixed!(v),
        Array::F64(v) => fixed!(v),
    }
}
