//! Python ⇄ JSON values: parameters in, responses out.
//!
//! Parameters are checked against what the engine accepts (KIP numbers are
//! finite binary64 with integral values within ±(2^53 − 1); nesting is bounded)
//! here, so a bad value is a `TypeError`/`ValueError` that names where it is —
//! `parameters['tags'][2]` — instead of an engine error about "a number".
use anda_embedded::MAX_JSON_DEPTH;
use pyo3::{
    exceptions::{PyTypeError, PyValueError},
    prelude::*,
    types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyMapping, PySequence, PyString, PyTuple},
};
use serde_json::{Map, Number, Value};

/// Integers the engine takes: ±(2^53 − 1), exactly representable in binary64.
pub const MAX_SAFE_INTEGER: i64 = 9_007_199_254_740_991;

enum Kind {
    Type,
    Value,
}

/// A conversion failure, with the path collected while unwinding.
pub struct ConversionError {
    kind: Kind,
    message: String,
    // Innermost segment first; reversed when rendered.
    path: Vec<String>,
}

impl ConversionError {
    fn type_error(message: String) -> Self {
        Self {
            kind: Kind::Type,
            message,
            path: Vec::new(),
        }
    }

    fn value_error(message: String) -> Self {
        Self {
            kind: Kind::Value,
            message,
            path: Vec::new(),
        }
    }

    fn at(mut self, segment: String) -> Self {
        self.path.push(segment);
        self
    }

    /// What went wrong, naming the value as `root` + its path.
    pub fn describe(&self, root: &str) -> String {
        let mut location = root.to_string();
        for segment in self.path.iter().rev() {
            location.push_str(segment);
        }
        format!("{location}: {}", self.message)
    }

    /// The Python exception, naming the value as `root` + its path.
    pub fn into_pyerr(self, root: &str) -> PyErr {
        let message = self.describe(root);
        match self.kind {
            Kind::Type => PyTypeError::new_err(message),
            Kind::Value => PyValueError::new_err(message),
        }
    }
}

/// `[<key>]` with the key quoted the way Python's `repr()` quotes it, so a
/// path reads as the expression that reaches the value.
fn key_segment(key: &str) -> String {
    let quote = if key.contains('\'') && !key.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut segment = String::with_capacity(key.len() + 4);
    segment.push('[');
    segment.push(quote);
    for c in key.chars() {
        match c {
            '\\' => segment.push_str("\\\\"),
            '\n' => segment.push_str("\\n"),
            '\r' => segment.push_str("\\r"),
            '\t' => segment.push_str("\\t"),
            c if c == quote => {
                segment.push('\\');
                segment.push(c);
            }
            c if c.is_control() => segment.push_str(&format!("\\x{:02x}", c as u32)),
            c => segment.push(c),
        }
    }
    segment.push(quote);
    segment.push(']');
    segment
}

fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map(|name| name.to_string())
        .unwrap_or_else(|_| "?".to_string())
}

/// A Python `str` as UTF-8; a lone surrogate has no UTF-8 form.
pub fn to_utf8<'a>(
    value: &'a Bound<'_, PyString>,
) -> Result<std::borrow::Cow<'a, str>, ConversionError> {
    value.to_cow().map_err(|_| {
        ConversionError::value_error(
            "string contains a lone surrogate, which has no UTF-8 encoding".to_string(),
        )
    })
}

/// Converts a parameters mapping (`None` passes through).
///
/// Each parameter value is its own JSON document to the engine, so nesting is
/// counted from the value, not from the mapping that holds it.
pub fn parameters_to_json(
    value: &Bound<'_, PyAny>,
) -> Result<Option<Map<String, Value>>, ConversionError> {
    if value.is_none() {
        return Ok(None);
    }
    match mapping_to_json(value, 0)? {
        Some(map) => Ok(Some(map)),
        None => Err(ConversionError::type_error(format!(
            "expected a mapping of parameter names to values, got {}",
            type_name(value)
        ))),
    }
}

/// A dict or other mapping as a JSON object whose values sit at `item_depth`;
/// `None` when `value` is not a mapping.
fn mapping_to_json(
    value: &Bound<'_, PyAny>,
    item_depth: usize,
) -> Result<Option<Map<String, Value>>, ConversionError> {
    let mut map = Map::new();
    if let Ok(dict) = value.cast::<PyDict>() {
        for (key, item) in dict.iter() {
            let key = mapping_key(&key)?;
            let item = to_json(&item, item_depth).map_err(|err| err.at(key_segment(&key)))?;
            map.insert(key, item);
        }
        return Ok(Some(map));
    }
    let Ok(mapping) = value.cast::<PyMapping>() else {
        return Ok(None);
    };
    let items = mapping
        .items()
        .map_err(|err| ConversionError::type_error(format!("cannot read mapping items: {err}")))?;
    for pair in items.iter() {
        let (key, item): (Bound<'_, PyAny>, Bound<'_, PyAny>) = pair
            .extract()
            .map_err(|err| ConversionError::type_error(format!("bad mapping item: {err}")))?;
        let key = mapping_key(&key)?;
        let item = to_json(&item, item_depth).map_err(|err| err.at(key_segment(&key)))?;
        map.insert(key, item);
    }
    Ok(Some(map))
}

/// Converts one Python value to JSON, checking it against the engine's rules.
pub fn to_json(value: &Bound<'_, PyAny>, depth: usize) -> Result<Value, ConversionError> {
    if depth > MAX_JSON_DEPTH {
        return Err(ConversionError::value_error(format!(
            "nesting deeper than {MAX_JSON_DEPTH} levels (or a value that contains itself)"
        )));
    }
    if value.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(text) = value.cast::<PyString>() {
        return Ok(Value::String(to_utf8(text)?.into_owned()));
    }
    // bool before int: True is an int in Python but a boolean in JSON.
    if let Ok(flag) = value.cast::<PyBool>() {
        return Ok(Value::Bool(flag.is_true()));
    }
    if let Ok(int) = value.cast::<PyInt>() {
        return match int.extract::<i64>() {
            Ok(n) if (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(&n) => Ok(Value::from(n)),
            _ => Err(ConversionError::value_error(format!(
                "integer {int} is outside the range the engine takes (±{MAX_SAFE_INTEGER})"
            ))),
        };
    }
    if let Ok(float) = value.cast::<PyFloat>() {
        return float_to_json(float.value());
    }
    if value.cast::<PyList>().is_ok() || value.cast::<PyTuple>().is_ok() {
        let sequence = value.cast::<PySequence>().map_err(|_| unsupported(value))?;
        return sequence_to_json(sequence, depth);
    }
    if let Some(map) = mapping_to_json(value, depth + 1)? {
        return Ok(Value::Object(map));
    }
    Err(unsupported(value))
}

fn sequence_to_json(
    sequence: &Bound<'_, PySequence>,
    depth: usize,
) -> Result<Value, ConversionError> {
    let length = sequence
        .len()
        .map_err(|err| ConversionError::type_error(format!("cannot read sequence: {err}")))?;
    let mut items = Vec::with_capacity(length);
    for index in 0..length {
        let item = sequence
            .get_item(index)
            .map_err(|err| ConversionError::type_error(format!("cannot read item: {err}")))
            .map_err(|err| err.at(format!("[{index}]")))?;
        items.push(to_json(&item, depth + 1).map_err(|err| err.at(format!("[{index}]")))?);
    }
    Ok(Value::Array(items))
}

fn float_to_json(value: f64) -> Result<Value, ConversionError> {
    if !value.is_finite() {
        let name = match value {
            v if v.is_nan() => "nan",
            v if v > 0.0 => "inf",
            _ => "-inf",
        };
        return Err(ConversionError::value_error(format!(
            "{name} is not a JSON number (NaN and infinities are not allowed)"
        )));
    }
    if value.fract() == 0.0 {
        // The engine reads an integral float as an integer, with the same bound.
        if value.abs() > MAX_SAFE_INTEGER as f64 {
            // 1e300 reads better than the 301 digits `{value}` would spell.
            let shown = if value.abs() < 1e16 {
                format!("{value}")
            } else {
                format!("{value:e}")
            };
            return Err(ConversionError::value_error(format!(
                "{shown} is an integral number outside the range the engine takes (±{MAX_SAFE_INTEGER})"
            )));
        }
        return Ok(Value::from(value as i64));
    }
    Ok(Number::from_f64(value)
        .map(Value::Number)
        .unwrap_or(Value::Null))
}

fn mapping_key(key: &Bound<'_, PyAny>) -> Result<String, ConversionError> {
    match key.cast::<PyString>() {
        Ok(text) => Ok(to_utf8(text)
            .map_err(|err| err.at(key_segment(&text.to_string_lossy())))?
            .into_owned()),
        Err(_) => Err(ConversionError::type_error(format!(
            "keys must be str, got {} key {}",
            type_name(key),
            key.repr().map(|r| r.to_string()).unwrap_or_default()
        ))),
    }
}

fn unsupported(value: &Bound<'_, PyAny>) -> ConversionError {
    ConversionError::type_error(format!(
        "{} is not JSON-compatible (use None, bool, int, float, str, list, tuple or a mapping with str keys)",
        type_name(value)
    ))
}

/// Converts a JSON value to plain Python objects.
pub fn to_python<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(flag) => PyBool::new(py, *flag).to_owned().into_any(),
        Value::Number(number) => {
            if let Some(n) = number.as_i64() {
                n.into_pyobject(py)?.into_any()
            } else if let Some(n) = number.as_u64() {
                n.into_pyobject(py)?.into_any()
            } else {
                number
                    .as_f64()
                    .unwrap_or(f64::NAN)
                    .into_pyobject(py)?
                    .into_any()
            }
        }
        Value::String(text) => PyString::new(py, text).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_python(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (key, item) in map {
                dict.set_item(keys::key(py, key), to_python(py, item)?)?;
            }
            dict.into_any()
        }
    })
}

/// Response keys recur: every response repeats `status` and `result`, every
/// row of a result its attribute names. Short keys are kept as Python
/// strings, so a repeated key costs a reference instead of a new string whose
/// hash Python must compute again.
mod keys {
    use pyo3::{prelude::*, types::PyString};
    use std::sync::{Mutex, TryLockError};

    const SLOTS: usize = 1024;
    const MAX_CACHED_LEN: usize = 32;

    /// A key and its string; a colliding key replaces the one in its slot.
    type Slot = Option<(Box<str>, Py<PyString>)>;

    static CACHE: Mutex<Vec<Slot>> = Mutex::new(Vec::new());

    pub fn key<'py>(py: Python<'py>, key: &str) -> Bound<'py, PyString> {
        if key.len() > MAX_CACHED_LEN {
            return PyString::new(py, key);
        }
        // Never wait: only string objects are made while it is held, so the
        // lock is free unless another thread is inside; then go without.
        let mut cache = match CACHE.try_lock() {
            Ok(cache) => cache,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return PyString::new(py, key),
        };
        if cache.is_empty() {
            cache.resize_with(SLOTS, || None);
        }
        let slot = &mut cache[fnv1a(key.as_bytes()) % SLOTS];
        if let Some((cached, string)) = slot.as_ref()
            && **cached == *key
        {
            return string.bind(py).clone();
        }
        let string = PyString::new(py, key);
        *slot = Some((key.into(), string.clone().unbind()));
        string
    }

    fn fnv1a(bytes: &[u8]) -> usize {
        let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
        });
        hash as usize
    }
}
