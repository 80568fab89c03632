//! A bounded `repr()` engine over [`Objects`]: what Python's own `repr()` would print for a value
//! found in a core, without running any of the process's code.
//!
//! Types are told by their type object: the first static (non-heap) type up the `tp_base` chain
//! names the builtin kind (`int`, `str`, `dict`, ...), and it counts only when the object's
//! type inherits that builtin's `tp_repr` unchanged; a type whose `tp_repr` is `object`'s (the
//! root of the chain) prints as `object.__repr__` does (`<module.Class object at 0x...>`);
//! anything else as `<TypeName object at 0x...>`. Python 2 cores print as Python 2 does (the
//! layout's `python2_repr`).
//!
//! Bounds (all documented in docs/json-schema.md): the output stops growing past
//! [`MAX_REPR_CHARS`]; a longer repr is cut to its first [`CUT_KEEP`] characters followed by
//! `...`; containers print at most [`MAX_ITEMS`] items and nest at most [`MAX_NESTING`] deep
//! (deeper ones print as `...`); a container met again inside itself prints as Python prints
//! it (`[...]`, `{...}`); memory that cannot be read prints as `<unreadable at 0x...>`.

use std::collections::HashMap;
use std::sync::Arc;

use super::dicts;
use super::objects::{ObjectError, ObjectResult, Objects};
use super::printable::NOT_PRINTABLE;
use crate::memory::Memory;

/// A repr of up to this many characters is shown whole.
pub const MAX_REPR_CHARS: usize = 200;
/// A longer one keeps this many characters, then `...` (200 in all).
pub const CUT_KEEP: usize = 197;
/// Items of one container printed at most (past them the repr is longer than
/// [`MAX_REPR_CHARS`] anyway, so the cut is the same).
pub const MAX_ITEMS: u64 = 100;
/// Containers nested deeper than this print as `...`.
pub const MAX_NESTING: usize = 16;
/// Characters of a `str` read to choose its quotes (Python scans the whole string).
const MAX_QUOTE_SCAN: u64 = 1 << 16;
/// `int`s with more 30-bit digits than this (about 18,000 decimal digits) print as
/// `<int object at 0x...>`.
const MAX_INT_DIGITS: u64 = 2000;
/// Sizes beyond these are corrupt.
const MAX_CONTAINER_LEN: i64 = 1 << 31;
const MAX_SET_MASK: u64 = 1 << 24;
/// The `tp_base` chain is never longer than this.
const MAX_BASES: usize = 64;
/// Objects visited in all, over every repr of a core (a real process's frames need far fewer):
/// past it, values print as `<not read: too many objects>`.
pub const MAX_TOTAL_VISITS: usize = 10_000_000;

/// `Py_TPFLAGS_HEAPTYPE` (Include/object.h, the same bit on 2.7).
const TPFLAGS_HEAPTYPE: u64 = 1 << 9;

/// A value's type name (`__name__`; `None` when unreadable) and repr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    pub type_name: Option<Arc<str>>,
    pub repr: String,
}

/// The builtin types the engine prints itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    None,
    Bool,
    /// 3.x `int`, 2.7 `long`.
    Long,
    /// 2.7 `int` (`PyIntObject`).
    Int,
    Float,
    /// 3.x `str`.
    Str,
    /// 2.7 `unicode`.
    Unicode,
    /// 3.x `bytes`, 2.7 `str`.
    Bytes,
    Tuple,
    List,
    Dict,
    Set,
    FrozenSet,
    Cell,
    /// `function`: `<function qualname at 0x...>`.
    Function,
    /// `type` (and metaclasses inheriting its repr): `<class 'module.Qualname'>`.
    Type,
    /// `module`: `<module 'name' from 'path'>`, `<module 'sys' (built-in)>`.
    Module,
    /// `builtin_function_or_method`: `<built-in function len>`.
    BuiltinFunction,
    /// 3.x `method`, a function bound to an object: `<bound method Q.f of repr(self)>`.
    Method,
}

/// What a type object tells about its instances' repr.
#[derive(Debug, Clone)]
struct TypeInfo {
    /// `__name__`: `tp_name` after its last dot.
    name: Arc<str>,
    style: Style,
}

#[derive(Debug, Clone)]
enum Style {
    Builtin(Kind),
    /// `object.__repr__`: `<{prefix}object at 0x...>`, prefix `module.Qualname ` or `Name `.
    Default(String),
    /// Some other `__repr__`: `<TypeName object at 0x...>`.
    Other,
    /// The set table's deleted-slot marker (`<dummy key> type`).
    Dummy,
}

fn kind_of(name: &str, python2: bool) -> Option<Kind> {
    Some(match (name, python2) {
        ("NoneType", _) => Kind::None,
        ("bool", _) => Kind::Bool,
        ("int", false) | ("long", true) => Kind::Long,
        ("int", true) => Kind::Int,
        ("float", _) => Kind::Float,
        ("str", false) => Kind::Str,
        ("unicode", true) => Kind::Unicode,
        ("bytes", false) | ("str", true) => Kind::Bytes,
        ("tuple", _) => Kind::Tuple,
        ("list", _) => Kind::List,
        ("dict", _) => Kind::Dict,
        ("set", _) => Kind::Set,
        ("frozenset", _) => Kind::FrozenSet,
        ("cell", _) => Kind::Cell,
        ("function", _) => Kind::Function,
        ("type", _) => Kind::Type,
        ("module", _) => Kind::Module,
        ("builtin_function_or_method", _) => Kind::BuiltinFunction,
        ("method", false) => Kind::Method,
        _ => return None,
    })
}

/// The repr being written: it stops growing one character past [`MAX_REPR_CHARS`].
struct Out {
    text: String,
    chars: usize,
}

impl Out {
    fn full(&self) -> bool {
        self.chars > MAX_REPR_CHARS
    }
    fn push(&mut self, s: &str) {
        // All of `s` fits (it has at most as many characters as bytes): one copy.
        if s.len() <= (MAX_REPR_CHARS + 1).saturating_sub(self.chars) {
            self.text.push_str(s);
            self.chars += if s.is_ascii() {
                s.len()
            } else {
                s.chars().count()
            };
            return;
        }
        for c in s.chars() {
            if self.full() {
                return;
            }
            self.text.push(c);
            self.chars += 1;
        }
    }
    fn push_char(&mut self, c: char) {
        if !self.full() {
            self.text.push(c);
            self.chars += 1;
        }
    }
    /// The repr, cut to [`CUT_KEEP`] characters and `...` when it is longer than the bound.
    fn finish(self) -> String {
        if self.chars <= MAX_REPR_CHARS {
            return self.text;
        }
        let mut text: String = self.text.chars().take(CUT_KEEP).collect();
        text.push_str("...");
        text
    }
}

#[cfg(test)]
/// Cut a full repr by the same rule (for callers that compare with Python's own).
pub fn cut(repr: &str) -> String {
    if repr.chars().count() <= MAX_REPR_CHARS {
        return repr.to_string();
    }
    let mut text: String = repr.chars().take(CUT_KEEP).collect();
    text.push_str("...");
    text
}

/// The engine: one per core (it caches what each type object tells).
pub struct Reprs<'a, M: Memory> {
    objects: &'a Objects<'a, M>,
    types: HashMap<u64, Option<TypeInfo>, crate::bytes::AddressHash>,
    visits: usize,
}

impl<'a, M: Memory> Reprs<'a, M> {
    pub fn new(objects: &'a Objects<'a, M>) -> Self {
        Reprs {
            objects,
            types: HashMap::default(),
            visits: 0,
        }
    }

    /// The type name and repr of the object at `object`.
    pub fn value(&mut self, object: u64) -> Value {
        let info = self.type_info(object);
        let type_name = info.as_ref().map(|info| Arc::clone(&info.name));
        let mut out = Out {
            text: String::new(),
            chars: 0,
        };
        let mut active = Vec::new();
        self.write_typed(object, info, &mut out, &mut active);
        Value {
            type_name,
            repr: out.finish(),
        }
    }

    /// The text of a `str` object (2.7: `str` or `unicode`), `None` for any other object.
    fn text_if_str(&mut self, object: u64) -> ObjectResult<Option<String>> {
        let python2 = self.objects.layout.python2_repr;
        match self.type_info(object).map(|info| info.style) {
            Some(Style::Builtin(Kind::Str | Kind::Unicode)) => {
                self.objects.unicode(object).map(Some)
            }
            Some(Style::Builtin(Kind::Bytes)) if python2 => self.objects.unicode(object).map(Some),
            _ => Ok(None),
        }
    }

    /// `repr()` of a short object (a name or a path), unbounded by the caller's repr.
    fn short_repr(&mut self, object: u64) -> String {
        self.value(object).repr
    }

    /// Whether `object` is an instance of the static type `name` or of a subclass of it.
    fn is_instance_of(&self, object: u64, name: &str) -> ObjectResult<bool> {
        let objects = self.objects;
        let mut current = objects.type_of(object)?;
        for _ in 0..MAX_BASES {
            if current == 0 {
                break;
            }
            let flags = objects.read(current, objects.layout.type_object.tp_flags)?;
            if flags & TPFLAGS_HEAPTYPE == 0 && objects.type_object_name(current)? == name {
                return Ok(true);
            }
            current = objects.read(current, objects.layout.type_object.tp_base)?;
        }
        Ok(false)
    }

    /// The object a cell holds (0: empty), or `None` when `object` is no cell.
    pub fn cell_contents(&mut self, object: u64) -> Option<u64> {
        let info = self.type_info(object)?;
        match info.style {
            Style::Builtin(Kind::Cell) => self
                .objects
                .read(object, self.objects.layout.cell.ob_ref)
                .ok(),
            _ => None,
        }
    }

    fn type_info(&mut self, object: u64) -> Option<TypeInfo> {
        let type_object = self.objects.type_of(object).ok()?;
        if let Some(known) = self.types.get(&type_object) {
            return known.clone();
        }
        let info = self.read_type(type_object).ok();
        self.types.insert(type_object, info.clone());
        info
    }

    fn read_type(&self, type_object: u64) -> ObjectResult<TypeInfo> {
        let objects = self.objects;
        let layout = objects.layout;
        let python2 = layout.python2_repr;
        let tp_name = objects.type_object_name(type_object)?;
        let name: Arc<str> = tp_name.rsplit('.').next().unwrap_or(&tp_name).into();
        if tp_name == "<dummy key> type" {
            return Ok(TypeInfo {
                name,
                style: Style::Dummy,
            });
        }
        let repr_slot = objects.read(type_object, layout.type_object.tp_repr)?;
        // Up the bases: the first static type, and the root (`object`).
        let mut static_type = None;
        let mut root = type_object;
        let mut current = type_object;
        for _ in 0..MAX_BASES {
            let flags = objects.read(current, layout.type_object.tp_flags)?;
            if static_type.is_none() && flags & TPFLAGS_HEAPTYPE == 0 {
                static_type = Some(current);
            }
            root = current;
            current = objects.read(current, layout.type_object.tp_base)?;
            if current == 0 {
                break;
            }
        }
        if let Some(base) = static_type {
            let base_name = objects.type_object_name(base)?;
            let base_repr = objects.read(base, layout.type_object.tp_repr)?;
            if let Some(kind) = kind_of(&base_name, python2) {
                if base_repr == repr_slot {
                    return Ok(TypeInfo {
                        name,
                        style: Style::Builtin(kind),
                    });
                }
            }
        }
        let object_repr = objects.read(root, layout.type_object.tp_repr)?;
        if current == 0 && repr_slot == object_repr && repr_slot != 0 {
            let prefix = self.default_prefix(type_object, &tp_name)?;
            return Ok(TypeInfo {
                name,
                style: Style::Default(prefix),
            });
        }
        Ok(TypeInfo {
            name,
            style: Style::Other,
        })
    }

    /// `module.Qualname ` as `object.__repr__` names a type (the module left out when it is
    /// `builtins`/`__builtin__` or unknown).
    fn default_prefix(&self, type_object: u64, tp_name: &str) -> ObjectResult<String> {
        let objects = self.objects;
        let layout = objects.layout;
        let flags = objects.read(type_object, layout.type_object.tp_flags)?;
        let (module, qualname) = if flags & TPFLAGS_HEAPTYPE != 0 {
            let dict = objects.read(type_object, layout.type_object.tp_dict)?;
            let module = if dict == 0 {
                None
            } else {
                dicts::dict_get_str(objects, dict, "__module__")?.and_then(|m| self.text_of(m).ok())
            };
            let qualname = match layout.heap_type.ht_qualname {
                Some(field) => self.text_of(objects.read(type_object, field)?)?,
                None => tp_name.to_string(),
            };
            (module, qualname)
        } else {
            match tp_name.rsplit_once('.') {
                Some((module, name)) => (Some(module.to_string()), name.to_string()),
                None => (None, tp_name.to_string()),
            }
        };
        Ok(match module {
            Some(m) if m != "builtins" && m != "__builtin__" => format!("{m}.{qualname} "),
            _ => format!("{qualname} "),
        })
    }

    /// type_repr (Objects/typeobject.c): `<class 'module.Qualname'>`, the module left out for
    /// builtins; 2.7 says `type` for static types.
    fn class_repr(&mut self, type_object: u64) -> ObjectResult<String> {
        let objects = self.objects;
        let layout = objects.layout;
        let python2 = layout.python2_repr;
        let flags = objects.read(type_object, layout.type_object.tp_flags)?;
        let tp_name = objects.type_object_name(type_object)?;
        let heap = flags & TPFLAGS_HEAPTYPE != 0;
        let (module, name) = if heap {
            let dict = objects.read(type_object, layout.type_object.tp_dict)?;
            let module = match dict {
                0 => None,
                dict => match dicts::dict_get_str(objects, dict, "__module__")? {
                    Some(module) => self.text_if_str(module)?,
                    None => None,
                },
            };
            let name = match (layout.heap_type.ht_qualname, python2) {
                (Some(field), false) => self.text_of(objects.read(type_object, field)?)?,
                _ => tp_name.clone(),
            };
            (module, name)
        } else {
            let builtins = if python2 { "__builtin__" } else { "builtins" };
            match tp_name.rsplit_once('.') {
                Some((module, name)) => (Some(module.to_string()), name.to_string()),
                None => (Some(builtins.to_string()), tp_name.clone()),
            }
        };
        let kind = if python2 && !heap { "type" } else { "class" };
        Ok(match module {
            Some(module) if module != "builtins" && module != "__builtin__" => {
                format!("<{kind} '{module}.{name}'>")
            }
            _ => format!("<{kind} '{tp_name}'>"),
        })
    }

    /// ModuleType's repr: importlib's `_module_repr` (3.x) from the module's `__spec__`
    /// (`<module 'x' from '/path/x.py'>`, `<module 'sys' (built-in)>`) or, without one, its
    /// `__file__`; 2.7's module_repr from `__name__` and `__file__`. `None` for the cases not
    /// mirrored (namespace packages, loaders' own reprs).
    fn module_repr(&mut self, module: u64) -> ObjectResult<Option<String>> {
        let objects = self.objects;
        let layout = objects.layout;
        let dict = objects.read(module, layout.module.md_dict)?;
        if dict == 0 {
            return Ok(None);
        }
        let item = |name: &str| dicts::dict_get_str(objects, dict, name);
        if layout.python2_repr {
            let Some(name) = item("__name__")? else {
                return Ok(None);
            };
            let Some(name) = self.text_if_str(name)? else {
                return Ok(None);
            };
            return Ok(Some(match item("__file__")? {
                Some(file) => match self.text_if_str(file)? {
                    Some(file) => format!("<module '{name}' from '{file}'>"),
                    None => return Ok(None),
                },
                None => format!("<module '{name}' (built-in)>"),
            }));
        }
        let spec = item("__spec__")?.unwrap_or(0);
        let spec_is_none = spec == 0
            || matches!(
                self.type_info(spec).map(|info| info.style),
                Some(Style::Builtin(Kind::None))
            );
        if !spec_is_none {
            let attribute = |name: &str| dicts::instance_attribute(objects, spec, name);
            let (Some(name), Some(origin)) = (attribute("name")?, attribute("origin")?) else {
                return Ok(None);
            };
            if self.text_if_str(name)?.is_none() {
                return Ok(None);
            }
            if self.text_if_str(origin)?.is_none() {
                // Before 3.10 `sys` and `builtins` have no origin: their loader's
                // module_repr (BuiltinImporter's, tried first up to 3.11) says built-in.
                let loader = attribute("loader")?.unwrap_or(0);
                let builtin = loader != 0
                    && matches!(
                        self.type_info(loader).map(|info| info.style),
                        Some(Style::Builtin(Kind::Type))
                    )
                    && objects.type_object_name(loader)? == "BuiltinImporter";
                return Ok(
                    builtin.then(|| format!("<module {} (built-in)>", self.short_repr(name)))
                );
            }
            let located = match attribute("_set_fileattr")? {
                Some(flag) => match self.type_info(flag).map(|info| info.style) {
                    Some(Style::Builtin(Kind::Bool)) => self.short_repr(flag) == "True",
                    _ => return Ok(None),
                },
                None => return Ok(None),
            };
            let name = self.short_repr(name);
            return Ok(Some(if located {
                format!("<module {name} from {}>", self.short_repr(origin))
            } else {
                let origin = self.text_if_str(origin)?.unwrap_or_default();
                format!("<module {name} ({origin})>")
            }));
        }
        let (Some(name), Some(file)) = (item("__name__")?, item("__file__")?) else {
            return Ok(None);
        };
        if self.text_if_str(name)?.is_none() || self.text_if_str(file)?.is_none() {
            return Ok(None);
        }
        Ok(Some(format!(
            "<module {} from {}>",
            self.short_repr(name),
            self.short_repr(file)
        )))
    }

    /// A `str` (2.7: `str` or `unicode`) as text, for names.
    fn text_of(&self, object: u64) -> ObjectResult<String> {
        self.objects.unicode(object)
    }

    fn write(&mut self, object: u64, out: &mut Out, active: &mut Vec<u64>) {
        if self.admit(out, active) {
            let info = self.type_info(object);
            self.write_admitted(object, info, out, active);
        }
    }

    /// [`Self::write`] of an object whose type was looked up already.
    fn write_typed(
        &mut self,
        object: u64,
        info: Option<TypeInfo>,
        out: &mut Out,
        active: &mut Vec<u64>,
    ) {
        if self.admit(out, active) {
            self.write_admitted(object, info, out, active);
        }
    }

    /// Whether one more object may be written (its type not read yet): the repr has room, the
    /// nesting and the visits are within their bounds; else what is written instead.
    fn admit(&mut self, out: &mut Out, active: &[u64]) -> bool {
        if out.full() {
            return false;
        }
        if active.len() > MAX_NESTING {
            out.push("...");
            return false;
        }
        self.visits += 1;
        if self.visits > MAX_TOTAL_VISITS {
            out.push("<not read: too many objects>");
            return false;
        }
        true
    }

    fn write_admitted(
        &mut self,
        object: u64,
        info: Option<TypeInfo>,
        out: &mut Out,
        active: &mut Vec<u64>,
    ) {
        let Some(info) = info else {
            out.push(&format!("<unreadable at {object:#x}>"));
            return;
        };
        // An object that turns out unreadable halfway prints as a whole `<unreadable ...>`.
        let mark = (out.text.len(), out.chars);
        let result = match info.style {
            Style::Builtin(kind) => self.write_builtin(kind, object, out, active),
            Style::Default(prefix) => {
                out.push(&format!("<{prefix}object at {object:#x}>"));
                Ok(())
            }
            Style::Other | Style::Dummy => {
                out.push(&format!("<{} object at {object:#x}>", info.name));
                Ok(())
            }
        };
        if result.is_err() {
            out.text.truncate(mark.0);
            out.chars = mark.1;
            out.push(&format!("<unreadable at {object:#x}>"));
        }
    }

    fn write_builtin(
        &mut self,
        kind: Kind,
        object: u64,
        out: &mut Out,
        active: &mut Vec<u64>,
    ) -> ObjectResult<()> {
        let objects = self.objects;
        let layout = objects.layout;
        let python2 = layout.python2_repr;
        match kind {
            Kind::None => out.push("None"),
            Kind::Bool => {
                let truth = match layout.int.ob_ival {
                    Some(ival) => objects.read(object, ival)? != 0,
                    None => !self.long_digits(object)?.1.is_empty(),
                };
                out.push(if truth { "True" } else { "False" });
            }
            Kind::Int => {
                let ival = objects.read_some(object, layout.int.ob_ival, "PyIntObject")?;
                out.push(&ival.to_string());
            }
            Kind::Long => {
                // Nearly every int has at most two digits (|n| < 2**60): no big numbers then.
                match objects.small_long(object, 2)? {
                    Some((negative, magnitude)) => {
                        if negative {
                            out.push("-");
                        }
                        let mut buffer = [0u8; 20];
                        out.push(u64_decimal(
                            u64::try_from(magnitude).unwrap_or(u64::MAX),
                            &mut buffer,
                        ));
                    }
                    None => {
                        let (negative, digits) = self.long_digits(object)?;
                        if negative {
                            out.push("-");
                        }
                        out.push(&digits_to_decimal(&digits));
                    }
                }
                if python2 {
                    out.push("L");
                }
            }
            Kind::Float => {
                let bits = objects.read(object, layout.float.ob_fval)?;
                out.push(&float_repr(f64::from_bits(bits)));
            }
            Kind::Str => {
                let (units, length) = self.code_points(object)?;
                write_str(out, &units, length, "", false);
            }
            Kind::Unicode => {
                let units = self.py2_unicode(object)?;
                let length = units.len() as u64;
                write_str(out, &units, length, "u", true);
            }
            Kind::Bytes => {
                let size = objects.ob_size(object)?;
                if !(0..=MAX_CONTAINER_LEN).contains(&size) {
                    return Err(ObjectError::Invalid(format!("bytes claim {size} bytes")));
                }
                let read = (size as u64).min(MAX_QUOTE_SCAN) as usize;
                let raw = objects
                    .memory
                    .read_vec(object.wrapping_add(u64::from(layout.bytes.ob_sval)), read)?;
                let units: Vec<u32> = raw.iter().map(|&b| u32::from(b)).collect();
                let prefix = if python2 { "" } else { "b" };
                write_str(out, &units, size as u64, prefix, true);
            }
            Kind::Tuple => {
                let size = self.container_len(object)?;
                let items = object.wrapping_add(u64::from(layout.tuple.ob_item));
                out.push_char('(');
                self.write_items(items, size, out, active, object)?;
                if size == 1 {
                    out.push_char(',');
                }
                out.push_char(')');
            }
            Kind::List => {
                if active.contains(&object) {
                    out.push("[...]");
                    return Ok(());
                }
                let size = self.container_len(object)?;
                let items = objects.read(object, layout.list.ob_item)?;
                out.push_char('[');
                self.write_items(items, size, out, active, object)?;
                out.push_char(']');
            }
            Kind::Dict => {
                if active.contains(&object) {
                    out.push("{...}");
                    return Ok(());
                }
                let items = dicts::dict_items(objects, object)?;
                out.push_char('{');
                active.push(object);
                for (index, (key, value)) in items.into_iter().enumerate() {
                    if out.full() {
                        break;
                    }
                    if index as u64 >= MAX_ITEMS {
                        out.push(", ...");
                        break;
                    }
                    if index > 0 {
                        out.push(", ");
                    }
                    self.write(key, out, active);
                    out.push(": ");
                    self.write(value, out, active);
                }
                active.pop();
                out.push_char('}');
            }
            Kind::Set | Kind::FrozenSet => {
                let name = if kind == Kind::Set {
                    "set"
                } else {
                    "frozenset"
                };
                if active.contains(&object) {
                    out.push(&format!("{name}(...)"));
                    return Ok(());
                }
                let keys = self.set_keys(object)?;
                let (open, close) = match (python2, kind, keys.is_empty()) {
                    (true, _, _) => (format!("{name}(["), "])"),
                    (false, Kind::Set, true) => ("set()".to_string(), ""),
                    (false, Kind::Set, false) => ("{".to_string(), "}"),
                    (false, _, true) => ("frozenset()".to_string(), ""),
                    (false, _, false) => ("frozenset({".to_string(), "})"),
                };
                out.push(&open);
                active.push(object);
                for (index, key) in keys.into_iter().enumerate() {
                    if out.full() {
                        break;
                    }
                    if index > 0 {
                        out.push(", ");
                    }
                    self.write(key, out, active);
                }
                active.pop();
                out.push(close);
            }
            Kind::Function => {
                // func_repr (Objects/funcobject.c): the qualname (3.3+), else the name.
                let name_field = layout
                    .function
                    .func_qualname
                    .unwrap_or(layout.function.func_name);
                let name = self.text_of(objects.read(object, name_field)?)?;
                out.push(&format!("<function {name} at {object:#x}>"));
            }
            Kind::Type => {
                let text = self.class_repr(object)?;
                out.push(&text);
            }
            Kind::Module => match self.module_repr(object)? {
                Some(text) => out.push(&text),
                None => out.push(&format!("<module object at {object:#x}>")),
            },
            Kind::BuiltinFunction => {
                // meth_repr (Objects/methodobject.c).
                let definition = objects.read(object, layout.cfunction.m_ml)?;
                let name_at = objects.read(definition, layout.cfunction.ml_name)?;
                let name = crate::memory::read_c_string(objects.memory, name_at, 1024)
                    .ok_or_else(|| ObjectError::Invalid(format!("name at {name_at:#x}")))?;
                let bound = objects.read(object, layout.cfunction.m_self)?;
                if bound == 0 || self.is_instance_of(bound, "module")? {
                    out.push(&format!("<built-in function {name}>"));
                } else {
                    let type_name = objects.type_name(bound)?;
                    out.push(&format!(
                        "<built-in method {name} of {type_name} object at {bound:#x}>"
                    ));
                }
            }
            Kind::Method => {
                // method_repr (Objects/classobject.c): the function's __qualname__, repr(self).
                let function = objects.read(object, layout.method.im_func)?;
                let bound = objects.read(object, layout.method.im_self)?;
                let is_function = matches!(
                    self.type_info(function).map(|info| info.style),
                    Some(Style::Builtin(Kind::Function))
                );
                let qualname = match layout.function.func_qualname {
                    Some(field) if is_function && !active.contains(&object) => {
                        self.text_if_str(objects.read(function, field)?)?
                    }
                    _ => None,
                };
                let Some(qualname) = qualname else {
                    out.push(&format!("<method object at {object:#x}>"));
                    return Ok(());
                };
                out.push(&format!("<bound method {qualname} of "));
                active.push(object);
                self.write(bound, out, active);
                active.pop();
                out.push_char('>');
            }
            Kind::Cell => {
                let contents = objects.read(object, layout.cell.ob_ref)?;
                if contents == 0 {
                    out.push(&format!("<cell at {object:#x}: empty>"));
                } else {
                    let name: Arc<str> = self
                        .type_info(contents)
                        .map_or_else(|| "?".into(), |i| i.name);
                    out.push(&format!(
                        "<cell at {object:#x}: {name} object at {contents:#x}>"
                    ));
                }
            }
        }
        Ok(())
    }

    fn container_len(&self, object: u64) -> ObjectResult<u64> {
        let size = self.objects.ob_size(object)?;
        if !(0..=MAX_CONTAINER_LEN).contains(&size) {
            return Err(ObjectError::Invalid(format!(
                "container at {object:#x} claims {size} items"
            )));
        }
        Ok(size as u64)
    }

    fn write_items(
        &mut self,
        items: u64,
        size: u64,
        out: &mut Out,
        active: &mut Vec<u64>,
        container: u64,
    ) -> ObjectResult<()> {
        let shown = size.min(MAX_ITEMS);
        let raw = self.objects.memory.read_vec(items, (shown * 8) as usize)?;
        active.push(container);
        for (index, chunk) in raw.chunks_exact(8).enumerate() {
            if out.full() {
                break;
            }
            if index > 0 {
                out.push(", ");
            }
            let item = crate::bytes::u64_at(chunk, 0).unwrap_or(0);
            if item == 0 {
                out.push("<NULL>");
            } else {
                self.write(item, out, active);
            }
        }
        active.pop();
        if size > shown {
            out.push(", ...");
        }
        Ok(())
    }

    /// The live keys of a set's table, in table order (as Python iterates it), at most
    /// [`MAX_ITEMS`].
    fn set_keys(&mut self, object: u64) -> ObjectResult<Vec<u64>> {
        let mut keys = Vec::new();
        for key in super::dicts::set_keys(self.objects, object, MAX_SET_MASK)?.1 {
            if keys.len() as u64 >= MAX_ITEMS {
                break;
            }
            if let Some(TypeInfo {
                style: Style::Dummy,
                ..
            }) = self.type_info(key)
            {
                continue;
            }
            keys.push(key);
        }
        Ok(keys)
    }

    /// An `int`'s sign and 30-bit digits, least significant first.
    fn long_digits(&self, object: u64) -> ObjectResult<(bool, Vec<u32>)> {
        let objects = self.objects;
        let layout = objects.layout;
        let (count, negative) = objects.long_size(object)?;
        if count > MAX_INT_DIGITS {
            return Err(ObjectError::Invalid(format!(
                "int at {object:#x} has {count} digits"
            )));
        }
        let raw = objects.memory.read_vec(
            object.wrapping_add(u64::from(layout.long.digits)),
            (count * 4) as usize,
        )?;
        let digits = raw
            .chunks_exact(4)
            .filter_map(|c| crate::bytes::u32_at(c, 0))
            .map(|digit| digit & 0x3fff_ffff)
            .collect();
        Ok((negative, digits))
    }

    /// A 3.x `str`'s first code points (at most [`MAX_QUOTE_SCAN`]) and its length.
    fn code_points(&self, object: u64) -> ObjectResult<(Vec<u32>, u64)> {
        let text = self
            .objects
            .pep393(object, MAX_CONTAINER_LEN, MAX_QUOTE_SCAN)?
            .ok_or_else(|| ObjectError::Invalid("layout lacks PEP 393 fields".into()))?;
        Ok((
            super::objects::pep393_units(&text.raw, text.kind).collect(),
            text.length,
        ))
    }

    /// A 2.7 `unicode`'s code points (UCS-2 builds' surrogate pairs joined, as its repr does).
    fn py2_unicode(&self, object: u64) -> ObjectResult<Vec<u32>> {
        let objects = self.objects;
        let unicode = &objects.layout.unicode;
        let length = objects.read_some(object, unicode.py2_length, "PyUnicodeObject.length")?;
        if !(0..=MAX_CONTAINER_LEN).contains(&length) {
            return Err(ObjectError::Invalid(format!(
                "unicode at {object:#x} claims {length} characters"
            )));
        }
        let data = objects.read_some(object, unicode.py2_str, "PyUnicodeObject.str")?;
        let unit = unicode.py2_unit.unwrap_or(4) as usize;
        let read = (length as u64).min(MAX_QUOTE_SCAN) as usize;
        let raw = objects.memory.read_vec(data, read * unit)?;
        let units: Vec<u32> = super::objects::pep393_units(&raw, unit as u32).collect();
        if unit != 2 {
            return Ok(units);
        }
        let mut joined = Vec::with_capacity(units.len());
        let mut index = 0;
        while let Some(&high) = units.get(index) {
            match units.get(index + 1) {
                Some(&low)
                    if (0xd800..0xdc00).contains(&high) && (0xdc00..0xe000).contains(&low) =>
                {
                    joined.push(0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00));
                    index += 2;
                }
                _ => {
                    joined.push(high);
                    index += 1;
                }
            }
        }
        Ok(joined)
    }
}

/// Whether Python's `str.isprintable()` accepts the code point (`repr()` keeps it as is).
fn printable(c: u32) -> bool {
    if c < 0x80 {
        return (0x20..0x7f).contains(&c);
    }
    NOT_PRINTABLE
        .binary_search_by(|&(start, end)| {
            if end < c {
                std::cmp::Ordering::Less
            } else if start > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_err()
}

/// A string's repr: `prefix` then quotes chosen as Python chooses them (`'` unless the text
/// has `'` and no `"`), escapes as `unicode_repr` (3.x `str`) or, `ascii_only`, as bytes and
/// Python 2's `unicode` escape (everything outside printable ASCII). `length` is the whole
/// string's; `units` may be a prefix of it.
fn write_str(out: &mut Out, units: &[u32], length: u64, prefix: &str, ascii_only: bool) {
    let single = units.contains(&u32::from(b'\''));
    let double = units.contains(&u32::from(b'"'));
    let quote = if single && !double { '"' } else { '\'' };
    out.push(prefix);
    out.push_char(quote);
    for &c in units {
        if out.full() {
            return;
        }
        match c {
            0x5c => out.push("\\\\"),
            0x09 => out.push("\\t"),
            0x0a => out.push("\\n"),
            0x0d => out.push("\\r"),
            _ if c == quote as u32 => {
                out.push_char('\\');
                out.push_char(quote);
            }
            0x20..=0x7e => out.push_char(char::from(c as u8)),
            _ if c < 0x100 && (ascii_only || !printable(c)) => out.push(&format!("\\x{c:02x}")),
            _ if ascii_only || !printable(c) => {
                if c < 0x10000 {
                    out.push(&format!("\\u{c:04x}"));
                } else {
                    out.push(&format!("\\U{c:08x}"));
                }
            }
            _ => match char::from_u32(c) {
                Some(ch) => out.push_char(ch),
                None => out.push(&format!("\\U{c:08x}")),
            },
        }
    }
    if (units.len() as u64) < length {
        // Past what was read: the repr is longer than the bound anyway.
        out.push("...");
        while !out.full() {
            out.push_char('.');
        }
        return;
    }
    out.push_char(quote);
}

/// `value` in decimal, written into `buffer` (20 bytes hold every u64).
fn u64_decimal(mut value: u64, buffer: &mut [u8; 20]) -> &str {
    let mut at = buffer.len();
    loop {
        at -= 1;
        // cannot panic: a u64 has at most 20 digits, so `at` stays in the buffer.
        buffer[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    std::str::from_utf8(&buffer[at..]).unwrap_or("?")
}

/// Decimal digits of a number given as 30-bit digits, least significant first.
fn digits_to_decimal(digits: &[u32]) -> String {
    const BASE: u64 = 1_000_000_000;
    // Base-10^9 limbs, least significant first.
    let mut limbs: Vec<u64> = Vec::new();
    for &digit in digits.iter().rev() {
        let mut carry = u64::from(digit);
        for limb in limbs.iter_mut() {
            let value = (*limb << 30) | carry;
            *limb = value % BASE;
            carry = value / BASE;
        }
        while carry > 0 {
            limbs.push(carry % BASE);
            carry /= BASE;
        }
    }
    let Some((last, rest)) = limbs.split_last() else {
        return "0".to_string();
    };
    let mut text = last.to_string();
    for limb in rest.iter().rev() {
        text.push_str(&format!("{limb:09}"));
    }
    text
}

/// Python's `repr(float)`: the shortest digits that round-trip, in fixed notation when the
/// decimal exponent is in -4..16, else `d.ddde+XX` (at least two exponent digits); `inf`,
/// `-inf`, `nan`, `-0.0`.
pub fn float_repr(value: f64) -> String {
    if value.is_nan() {
        return "nan".to_string();
    }
    if value.is_infinite() {
        return if value < 0.0 { "-inf" } else { "inf" }.to_string();
    }
    if value == 0.0 {
        return if value.is_sign_negative() {
            "-0.0"
        } else {
            "0.0"
        }
        .to_string();
    }
    let sci = format!("{:e}", value.abs());
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if value < 0.0 { "-" } else { "" };
    let point = exponent + 1;
    let n = digits.len() as i32;
    if -4 < point && point <= 16 {
        let text = if point <= 0 {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        } else if point >= n {
            format!("{digits}{}.0", "0".repeat((point - n) as usize))
        } else {
            let (whole, fraction) = digits.split_at(point as usize);
            format!("{whole}.{fraction}")
        };
        return format!("{sign}{text}");
    }
    let (first, rest) = digits.split_at(1);
    let fraction = if rest.is_empty() {
        String::new()
    } else {
        format!(".{rest}")
    };
    let exp_sign = if exponent < 0 { '-' } else { '+' };
    format!(
        "{sign}{first}{fraction}e{exp_sign}{:02}",
        exponent.unsigned_abs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_python_prints_them() {
        for (value, want) in [
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (0.0001, "0.0001"),
            (1e-05, "1e-05"),
            (0.1, "0.1"),
            (1.5, "1.5"),
            (-2.0, "-2.0"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (1.0 / 3.0, "0.3333333333333333"),
            (123456789.125, "123456789.125"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (2.5e-7, "2.5e-07"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
            (1234567890123456.7, "1234567890123456.8"),
            (12345678901234567.0, "1.2345678901234568e+16"),
        ] {
            assert_eq!(float_repr(value), want, "{value:e}");
        }
    }

    #[test]
    fn big_ints_in_decimal() {
        assert_eq!(digits_to_decimal(&[]), "0");
        // The two-digit fast path agrees with the general one.
        for value in [0u64, 7, 10, 1 << 30, (1 << 60) - 1, u64::MAX] {
            let digits = [
                value as u32 & 0x3fff_ffff,
                (value >> 30) as u32 & 0x3fff_ffff,
                (value >> 60) as u32,
            ];
            let mut buffer = [0u8; 20];
            assert_eq!(
                u64_decimal(value, &mut buffer),
                digits_to_decimal(&digits),
                "{value}"
            );
            assert_eq!(u64_decimal(value, &mut buffer), value.to_string());
        }
        assert_eq!(digits_to_decimal(&[5]), "5");
        // 2**30 = digits [0, 1]
        assert_eq!(digits_to_decimal(&[0, 1]), "1073741824");
        // 2**90
        assert_eq!(
            digits_to_decimal(&[0, 0, 0, 1]),
            "1237940039285380274899124224"
        );
    }

    fn repr_of(units: &str, prefix: &str, ascii_only: bool) -> String {
        let units: Vec<u32> = units.chars().map(|c| c as u32).collect();
        let mut out = Out {
            text: String::new(),
            chars: 0,
        };
        write_str(&mut out, &units, units.len() as u64, prefix, ascii_only);
        out.finish()
    }

    #[test]
    fn strings_quote_and_escape_as_python() {
        assert_eq!(repr_of("abc", "", false), "'abc'");
        assert_eq!(repr_of("it's", "", false), "\"it's\"");
        assert_eq!(repr_of("'\"", "", false), "'\\'\"'");
        assert_eq!(repr_of("a\nb\t\\", "", false), "'a\\nb\\t\\\\'");
        assert_eq!(repr_of("é€😀", "", false), "'é€😀'");
        assert_eq!(
            repr_of("\u{a0}\u{7f}\u{200b}", "", false),
            "'\\xa0\\x7f\\u200b'"
        );
        assert_eq!(repr_of("é€😀", "u", true), "u'\\xe9\\u20ac\\U0001f600'");
        assert_eq!(repr_of("\u{0}\u{ff}", "b", true), "b'\\x00\\xff'");
    }

    use crate::memory::fake::FakeMemory;
    use crate::python::layout::Layout;
    use crate::python::layouts::ALL;

    const OBJECT_TYPE: u64 = 0x1000;
    const LIST_TYPE: u64 = 0x2000;
    const NOWHERE: u64 = 0xdead_0000;

    fn put(buf: &mut [u8], at: u32, value: u64) {
        let at = at as usize;
        buf[at..at + 8].copy_from_slice(&value.to_le_bytes());
    }

    /// A static type named `name` (its `tp_repr` a made-up address) below `base`.
    fn add_type(memory: &mut FakeMemory, layout: &Layout, at: u64, name: &str, base: u64) {
        let mut bytes = vec![0u8; 1024];
        let t = &layout.type_object;
        put(&mut bytes, t.tp_name.offset(), at + 0x300);
        put(&mut bytes, t.tp_repr.offset(), at + 0x10_0000);
        put(&mut bytes, t.tp_base.offset(), base);
        bytes[0x300..0x300 + name.len()].copy_from_slice(name.as_bytes());
        memory.add(at, bytes);
    }

    /// A list at `at` whose `ob_size` is `size` and whose items are `items` (at `at + 0x100`).
    fn add_list(memory: &mut FakeMemory, layout: &Layout, at: u64, size: i64, items: &[u64]) {
        let mut bytes = vec![0u8; 0x100 + 8 * items.len()];
        put(&mut bytes, layout.object.ob_type.offset(), LIST_TYPE);
        put(&mut bytes, layout.var_object.ob_size.offset(), size as u64);
        put(&mut bytes, layout.list.ob_item.offset(), at + 0x100);
        for (index, item) in items.iter().enumerate() {
            put(&mut bytes, 0x100 + 8 * index as u32, *item);
        }
        memory.add(at, bytes);
    }

    #[test]
    fn hostile_objects_print_bounded_on_every_layout() {
        for layout in ALL {
            let mut memory = FakeMemory::default();
            add_type(&mut memory, layout, OBJECT_TYPE, "object", 0);
            add_type(&mut memory, layout, LIST_TYPE, "list", OBJECT_TYPE);
            // A list that holds itself and a pointer into nowhere.
            add_list(&mut memory, layout, 0x10_000, 2, &[0x10_000, NOWHERE]);
            // A list claiming 2**40 items; one claiming more than its memory holds.
            add_list(&mut memory, layout, 0x20_000, 1 << 40, &[]);
            add_list(&mut memory, layout, 0x30_000, 1 << 20, &[0x10_000]);
            // 20 lists, each inside the one before.
            for depth in 0..20u64 {
                let at = 0x100_000 + depth * 0x1000;
                let inner: Vec<u64> = (depth < 19).then_some(at + 0x1000).into_iter().collect();
                add_list(&mut memory, layout, at, inner.len() as i64, &inner);
            }
            let objects = Objects::new(&memory, layout);
            let mut reprs = Reprs::new(&objects);
            let what = format!("{}.{} {:?}", layout.major, layout.minor, layout.shape);
            let value = reprs.value(0x10_000);
            assert_eq!(
                value.repr,
                format!("[[...], <unreadable at {NOWHERE:#x}>]"),
                "{what}"
            );
            assert_eq!(value.type_name.as_deref(), Some("list"), "{what}");
            assert_eq!(
                reprs.value(0x20_000).repr,
                "<unreadable at 0x20000>",
                "{what}"
            );
            assert_eq!(
                reprs.value(0x30_000).repr,
                "<unreadable at 0x30000>",
                "{what}"
            );
            let deep = reprs.value(0x100_000).repr;
            let levels = MAX_NESTING + 1;
            assert_eq!(
                deep,
                format!("{}...{}", "[".repeat(levels), "]".repeat(levels)),
                "{what}"
            );
            assert_eq!(reprs.value(NOWHERE).type_name, None, "{what}");
        }
    }

    #[test]
    fn long_reprs_are_cut() {
        let long = "x".repeat(300);
        let repr = repr_of(&long, "", false);
        assert_eq!(repr.chars().count(), 200);
        assert!(repr.ends_with("..."));
        assert_eq!(repr, cut(&format!("'{long}'")));
        assert_eq!(cut("short"), "short");
    }
}
