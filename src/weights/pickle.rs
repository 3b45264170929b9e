//! A small, strict reader for the pickle programs `torch.save` writes.
//!
//! It runs the opcodes PyTorch's pickler emits (protocol 2, plus the few protocol 4 ones a
//! newer pickler may use) and calls nothing: the only callables are an allow-list of globals
//! whose effect is rebuilt here (an `OrderedDict`, a tensor view, a parameter). Any other
//! global or opcode is a [`WeightsError::Corrupt`] naming it.
//!
//! Objects live in one flat arena and values refer to them by index, as pickle's memo does,
//! so sharing is cheap, cycles cannot hang or leak, and dropping never recurses. Every
//! opcode consumes at least one input byte and creates at most one object, so memory stays
//! linear in the size of the pickle.

use std::collections::HashMap;
use std::rc::Rc;

use super::{DType, WeightsError};

/// A pickle value; containers and rebuilt objects live in [`Unpickled::objects`].
#[derive(Debug, Clone)]
pub(super) enum Value {
    None,
    /// `True` or `False` (`requires_grad`); which one is never needed.
    Bool,
    Int(i64),
    /// A float; its value is never needed.
    Float,
    Str(Rc<str>),
    Obj(usize),
}

/// The element type a storage class names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StorageKind {
    /// A floating point type we decode.
    Float(DType),
    /// Another element type (integers, booleans), indexed but not decoded.
    Other(&'static str),
}

/// A storage as a persistent id names it: an entry `data/<key>` of the archive.
#[derive(Debug, Clone)]
pub(super) struct StorageRef {
    pub kind: StorageKind,
    pub key: Rc<str>,
    /// Number of elements the storage declares.
    pub numel: usize,
}

/// A tensor view over a storage.
#[derive(Debug, Clone)]
pub(super) struct TensorRef {
    pub storage: StorageRef,
    /// Offset of the first element, in elements.
    pub offset: usize,
    pub shape: Vec<usize>,
    pub strides: Vec<usize>,
}

/// A global (`module.name`) from the allow-list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Global {
    OrderedDict,
    RebuildTensorV2,
    RebuildParameter,
    RebuildParameterWithState,
    Storage(StorageKind),
    DType(StorageKind),
}

/// Containers and rebuilt objects.
#[derive(Debug)]
pub(super) enum Obj {
    Tuple(Vec<Value>),
    List(Vec<Value>),
    /// Key-value pairs in insertion order; a key set twice appears twice, the last wins.
    Dict(Vec<(Value, Value)>),
    Global(Global),
    Storage(StorageRef),
    Tensor(TensorRef),
}

/// The result of running a pickle: the value `STOP` returned and the objects it refers to.
#[derive(Debug)]
pub(super) struct Unpickled {
    pub root: Value,
    pub objects: Vec<Obj>,
}

impl Unpickled {
    /// The object a value refers to, if it is one.
    pub fn obj(&self, value: &Value) -> Option<&Obj> {
        match value {
            Value::Obj(i) => self.objects.get(*i),
            _ => None,
        }
    }
}

fn corrupt(what: impl std::fmt::Display) -> WeightsError {
    WeightsError::Corrupt(format!(
        "the PyTorch checkpoint's data.pkl is not what torch.save writes: {what}"
    ))
}

/// Resolve a `GLOBAL module name` against the allow-list.
fn resolve_global(module: &str, name: &str) -> Result<Global, WeightsError> {
    use DType::*;
    let global = match (module, name) {
        ("collections", "OrderedDict") => Global::OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2") => Global::RebuildTensorV2,
        ("torch._utils", "_rebuild_parameter") => Global::RebuildParameter,
        ("torch._utils", "_rebuild_parameter_with_state") => Global::RebuildParameterWithState,
        ("torch", "FloatStorage") => Global::Storage(StorageKind::Float(F32)),
        ("torch", "HalfStorage") => Global::Storage(StorageKind::Float(F16)),
        ("torch", "BFloat16Storage") => Global::Storage(StorageKind::Float(BF16)),
        ("torch", "DoubleStorage") => Global::Storage(StorageKind::Float(F64)),
        ("torch", "LongStorage") => Global::Storage(StorageKind::Other("int64")),
        ("torch", "IntStorage") => Global::Storage(StorageKind::Other("int32")),
        ("torch", "ShortStorage") => Global::Storage(StorageKind::Other("int16")),
        ("torch", "CharStorage") => Global::Storage(StorageKind::Other("int8")),
        ("torch", "ByteStorage") => Global::Storage(StorageKind::Other("uint8")),
        ("torch", "BoolStorage") => Global::Storage(StorageKind::Other("bool")),
        ("torch", "float32") => Global::DType(StorageKind::Float(F32)),
        ("torch", "float16") => Global::DType(StorageKind::Float(F16)),
        ("torch", "bfloat16") => Global::DType(StorageKind::Float(BF16)),
        ("torch", "float64") => Global::DType(StorageKind::Float(F64)),
        ("torch", "int64") => Global::DType(StorageKind::Other("int64")),
        _ => {
            return Err(WeightsError::Corrupt(format!(
                "the PyTorch checkpoint refers to `{module}.{name}`, which a plain state dict \
                 of tensors does not need and which is not run here for safety; save only the \
                 state dict: torch.save(model.state_dict(), path)"
            )));
        }
    };
    Ok(global)
}

/// Size in bytes of one element of a storage kind.
pub(super) fn element_size(kind: StorageKind) -> usize {
    match kind {
        StorageKind::Float(DType::F32) => 4,
        StorageKind::Float(DType::F16 | DType::BF16) => 2,
        StorageKind::Float(DType::F64) => 8,
        StorageKind::Other("int64") => 8,
        StorageKind::Other("int32") => 4,
        StorageKind::Other("int16") => 2,
        StorageKind::Other(_) => 1,
    }
}

/// Reads the pickle input.
struct Reader<'p> {
    input: &'p [u8],
    pos: usize,
}

impl<'p> Reader<'p> {
    fn take(&mut self, n: usize) -> Result<&'p [u8], WeightsError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.input.len());
        let Some(end) = end else {
            return Err(corrupt(format!(
                "it ends in the middle of an instruction at byte {} (truncated?)",
                self.pos
            )));
        };
        let bytes = &self.input[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8, WeightsError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WeightsError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u32_le(&mut self) -> Result<u32, WeightsError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// A text line as GLOBAL writes module and name (at most 256 bytes).
    fn line(&mut self) -> Result<&'p str, WeightsError> {
        let rest = &self.input[self.pos..];
        let Some(len) = rest.iter().take(257).position(|&b| b == b'\n') else {
            return Err(corrupt("a GLOBAL name is not terminated within 256 bytes"));
        };
        let line = self.take(len)?;
        self.pos += 1;
        std::str::from_utf8(line).map_err(|_| corrupt("a GLOBAL name is not UTF-8"))
    }

    fn string(&mut self, len: usize) -> Result<Rc<str>, WeightsError> {
        let bytes = self.take(len)?;
        let s = std::str::from_utf8(bytes).map_err(|_| corrupt("a string is not valid UTF-8"))?;
        Ok(Rc::from(s))
    }
}

/// The pickle machine: stack, mark stack, memo and object arena.
struct Machine {
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    objects: Vec<Obj>,
}

impl Machine {
    fn push_obj(&mut self, obj: Obj) {
        self.objects.push(obj);
        self.stack.push(Value::Obj(self.objects.len() - 1));
    }

    fn pop(&mut self) -> Result<Value, WeightsError> {
        self.stack
            .pop()
            .ok_or_else(|| corrupt("an instruction pops an empty stack"))
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>, WeightsError> {
        let mark = self
            .marks
            .pop()
            .filter(|&m| m <= self.stack.len())
            .ok_or_else(|| corrupt("an instruction needs a MARK that is not there"))?;
        Ok(self.stack.split_off(mark))
    }

    fn top(&self) -> Result<&Value, WeightsError> {
        self.stack
            .last()
            .ok_or_else(|| corrupt("an instruction needs a value on an empty stack"))
    }

    /// The object the top of the stack refers to, for in-place updates.
    fn top_obj_mut(&mut self) -> Result<&mut Obj, WeightsError> {
        match self.top()? {
            Value::Obj(i) => {
                let i = *i;
                self.objects
                    .get_mut(i)
                    .ok_or_else(|| corrupt("a reference to an unknown object"))
            }
            _ => Err(corrupt("an update targets a value that is not a container")),
        }
    }

    fn obj(&self, value: &Value) -> Option<&Obj> {
        match value {
            Value::Obj(i) => self.objects.get(*i),
            _ => None,
        }
    }

    fn set_items(&mut self, pairs: Vec<Value>) -> Result<(), WeightsError> {
        if pairs.len() % 2 != 0 {
            return Err(corrupt("SETITEMS has an odd number of values"));
        }
        let Obj::Dict(dict) = self.top_obj_mut()? else {
            return Err(corrupt("SETITEM targets something that is not a dict"));
        };
        let mut pairs = pairs.into_iter();
        while let (Some(key), Some(value)) = (pairs.next(), pairs.next()) {
            dict.push((key, value));
        }
        Ok(())
    }

    fn int(&self, value: &Value, what: &str) -> Result<usize, WeightsError> {
        match value {
            Value::Int(i) => {
                usize::try_from(*i).map_err(|_| corrupt(format!("{what} is negative ({i})")))
            }
            _ => Err(corrupt(format!("{what} is not an integer"))),
        }
    }

    fn ints(&self, value: &Value, what: &str) -> Result<Vec<usize>, WeightsError> {
        match self.obj(value) {
            Some(Obj::Tuple(items)) => items.iter().map(|v| self.int(v, what)).collect(),
            _ => Err(corrupt(format!("{what} is not a tuple"))),
        }
    }

    /// `BINPERSID`: a storage, `('storage', StorageClass, key, location, numel)`.
    fn persistent_load(&mut self, pid: Value) -> Result<(), WeightsError> {
        let Some(Obj::Tuple(items)) = self.obj(&pid) else {
            return Err(corrupt("a persistent id is not a tuple"));
        };
        let [tag, class, key, _location, numel] = items.as_slice() else {
            return Err(corrupt("a persistent id does not have 5 fields"));
        };
        if !matches!(tag, Value::Str(t) if &**t == "storage") {
            return Err(corrupt("a persistent id is not a storage"));
        }
        let Some(Obj::Global(Global::Storage(kind))) = self.obj(class) else {
            return Err(corrupt("a storage has no known storage class"));
        };
        let Value::Str(key) = key else {
            return Err(corrupt("a storage key is not a string"));
        };
        let storage = StorageRef {
            kind: *kind,
            key: key.clone(),
            numel: self.int(numel, "a storage size")?,
        };
        self.push_obj(Obj::Storage(storage));
        Ok(())
    }

    /// `REDUCE`: call an allowed global with a tuple of arguments.
    fn reduce(&mut self, callable: Value, args: Value) -> Result<(), WeightsError> {
        let Some(Obj::Global(global)) = self.obj(&callable) else {
            return Err(corrupt("REDUCE calls something that is not a known global"));
        };
        let global = *global;
        let Some(Obj::Tuple(args)) = self.obj(&args) else {
            return Err(corrupt("REDUCE arguments are not a tuple"));
        };
        match global {
            Global::OrderedDict if args.is_empty() => {
                self.push_obj(Obj::Dict(Vec::new()));
            }
            Global::RebuildTensorV2 => {
                if !(6..=7).contains(&args.len()) {
                    return Err(corrupt("_rebuild_tensor_v2 does not have 6 or 7 arguments"));
                }
                let Some(Obj::Storage(storage)) = self.obj(&args[0]) else {
                    return Err(corrupt("_rebuild_tensor_v2 is not given a storage"));
                };
                let tensor = TensorRef {
                    storage: storage.clone(),
                    offset: self.int(&args[1], "a storage offset")?,
                    shape: self.ints(&args[2], "a tensor shape")?,
                    strides: self.ints(&args[3], "a tensor stride")?,
                };
                if tensor.shape.len() != tensor.strides.len() {
                    return Err(corrupt(
                        "a tensor has a shape and strides of different lengths",
                    ));
                }
                self.push_obj(Obj::Tensor(tensor));
            }
            Global::RebuildParameter | Global::RebuildParameterWithState => {
                let data = args.first().cloned();
                match data {
                    Some(data) if matches!(self.obj(&data), Some(Obj::Tensor(_))) => {
                        self.stack.push(data)
                    }
                    _ => return Err(corrupt("_rebuild_parameter is not given a tensor")),
                }
            }
            _ => {
                return Err(corrupt(format!(
                    "REDUCE calls {global:?} with unexpected arguments"
                )));
            }
        }
        Ok(())
    }
}

/// Run a pickle program and return what it builds.
pub(super) fn unpickle(input: &[u8]) -> Result<Unpickled, WeightsError> {
    let mut r = Reader { input, pos: 0 };
    let mut m = Machine {
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        objects: Vec::new(),
    };

    loop {
        let at = r.pos;
        let op = r.u8()?;
        match op {
            // PROTO
            0x80 => {
                let version = r.u8()?;
                if version > 5 {
                    return Err(corrupt(format!("unknown pickle protocol {version}")));
                }
            }
            // FRAME (protocol 4): a length hint, the content follows inline.
            0x95 => {
                r.take(8)?;
            }
            b'.' => {
                let root = m.pop()?;
                return Ok(Unpickled {
                    root,
                    objects: m.objects,
                });
            }
            b'(' => m.marks.push(m.stack.len()),
            b')' => m.push_obj(Obj::Tuple(Vec::new())),
            b'}' => m.push_obj(Obj::Dict(Vec::new())),
            b']' => m.push_obj(Obj::List(Vec::new())),
            b't' => {
                let items = m.pop_mark()?;
                m.push_obj(Obj::Tuple(items));
            }
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                if m.stack.len() < n {
                    return Err(corrupt("TUPLE takes more values than the stack has"));
                }
                let items = m.stack.split_off(m.stack.len() - n);
                m.push_obj(Obj::Tuple(items));
            }
            // BINUNICODE, SHORT_BINUNICODE
            b'X' => {
                let len = r.u32_le()? as usize;
                let s = r.string(len)?;
                m.stack.push(Value::Str(s));
            }
            0x8c => {
                let len = usize::from(r.u8()?);
                let s = r.string(len)?;
                m.stack.push(Value::Str(s));
            }
            // BINPUT, LONG_BINPUT, MEMOIZE
            b'q' | b'r' | 0x94 => {
                let index = match op {
                    b'q' => u32::from(r.u8()?),
                    b'r' => r.u32_le()?,
                    _ => {
                        u32::try_from(m.memo.len()).map_err(|_| corrupt("the memo is too large"))?
                    }
                };
                let top = m.top()?.clone();
                m.memo.insert(index, top);
            }
            // BINGET, LONG_BINGET
            b'h' | b'j' => {
                let index = if op == b'h' {
                    u32::from(r.u8()?)
                } else {
                    r.u32_le()?
                };
                let value = m
                    .memo
                    .get(&index)
                    .cloned()
                    .ok_or_else(|| corrupt(format!("BINGET {index} refers to nothing")))?;
                m.stack.push(value);
            }
            b'c' => {
                let module = r.line()?;
                let name = r.line()?;
                let global = resolve_global(module, name)?;
                m.push_obj(Obj::Global(global));
            }
            // STACK_GLOBAL (protocol 4)
            0x93 => {
                let name = m.pop()?;
                let module = m.pop()?;
                let (Value::Str(module), Value::Str(name)) = (module, name) else {
                    return Err(corrupt("STACK_GLOBAL is not given two strings"));
                };
                let global = resolve_global(&module, &name)?;
                m.push_obj(Obj::Global(global));
            }
            b'Q' => {
                let pid = m.pop()?;
                m.persistent_load(pid)?;
            }
            b'J' => {
                let v = i32::from_le_bytes(r.array()?);
                m.stack.push(Value::Int(i64::from(v)));
            }
            b'K' => {
                let v = r.u8()?;
                m.stack.push(Value::Int(i64::from(v)));
            }
            b'M' => {
                let v = u16::from_le_bytes(r.array()?);
                m.stack.push(Value::Int(i64::from(v)));
            }
            // LONG1: little-endian two's complement of n bytes.
            0x8a => {
                let n = usize::from(r.u8()?);
                if n > 8 {
                    return Err(corrupt(format!("an integer of {n} bytes is too large")));
                }
                let bytes = r.take(n)?;
                let mut buf = if bytes.last().is_some_and(|&b| b & 0x80 != 0) {
                    [0xff; 8]
                } else {
                    [0; 8]
                };
                buf[..n].copy_from_slice(bytes);
                m.stack.push(Value::Int(i64::from_le_bytes(buf)));
            }
            b'G' => {
                r.take(8)?;
                m.stack.push(Value::Float);
            }
            0x88 | 0x89 => m.stack.push(Value::Bool),
            b'N' => m.stack.push(Value::None),
            b'R' => {
                let args = m.pop()?;
                let callable = m.pop()?;
                m.reduce(callable, args)?;
            }
            b's' => {
                let value = m.pop()?;
                let key = m.pop()?;
                m.set_items(vec![key, value])?;
            }
            b'u' => {
                let pairs = m.pop_mark()?;
                m.set_items(pairs)?;
            }
            b'a' | b'e' => {
                let items = if op == b'a' {
                    vec![m.pop()?]
                } else {
                    m.pop_mark()?
                };
                let Obj::List(list) = m.top_obj_mut()? else {
                    return Err(corrupt("APPEND targets something that is not a list"));
                };
                list.extend(items);
            }
            // BUILD: the state of an OrderedDict (its `_metadata`) is not needed.
            b'b' => {
                let _state = m.pop()?;
                if !matches!(m.top_obj_mut()?, Obj::Dict(_) | Obj::Tensor(_)) {
                    return Err(corrupt(
                        "BUILD targets something other than a dict or tensor",
                    ));
                }
            }
            _ => {
                return Err(corrupt(format!(
                    "unsupported pickle opcode 0x{op:02x} at byte {at}"
                )));
            }
        }
    }
}
