//! A record's top-level fields as CSV cells, taken straight from its `Serialize` impl:
//! text as is, numbers and booleans as JSON writes them, null as an empty cell, nested
//! values (arrays, objects) as their JSON, and each entry of its `custom` object in the
//! cell of that custom field. The same cells as going through a `serde_json::Value` per
//! row, without building one, which is what an export of a million rows spends most of
//! its time on: the cells are buffers reused from row to row, and a field finds its cell
//! by its position in the record, learnt from the first row, rather than by hashing its
//! name each time.

use serde::ser::{self, Impossible, Serialize, SerializeMap, SerializeStruct, Serializer};
use std::collections::HashMap;
use std::fmt::{self, Write};

fn not_a_struct() -> CellError {
    CellError::Other("an exported record is a struct".into())
}

/// Refuses whatever is not the record's struct itself.
macro_rules! not_a_record {
    ($($name:ident($($arg:ty),*)),* $(,)?) => {
        $(fn $name(self, $(_: $arg),*) -> Result<Self::Ok, CellError> {
            Err(not_a_struct())
        })*
    };
}

/// A serializer's types: `()` for what it writes, its map and struct serializers, and
/// `Impossible` for every other compound.
macro_rules! serializer_types {
    ($map:ty, $st:ty) => {
        type Ok = ();
        type Error = CellError;
        type SerializeSeq = Impossible<(), CellError>;
        type SerializeTuple = Impossible<(), CellError>;
        type SerializeTupleStruct = Impossible<(), CellError>;
        type SerializeTupleVariant = Impossible<(), CellError>;
        type SerializeMap = $map;
        type SerializeStruct = $st;
        type SerializeStructVariant = Impossible<(), CellError>;
    };
}

/// Every scalar but `None` and `()` is refused as not a record.
macro_rules! refuses_scalars {
    () => {
        not_a_record!(
            serialize_bool(bool),
            serialize_i8(i8),
            serialize_i16(i16),
            serialize_i32(i32),
            serialize_i64(i64),
            serialize_u8(u8),
            serialize_u16(u16),
            serialize_u32(u32),
            serialize_u64(u64),
            serialize_f32(f32),
            serialize_f64(f64),
            serialize_char(char),
            serialize_str(&str),
            serialize_bytes(&[u8]),
            serialize_unit_struct(&'static str),
            serialize_unit_variant(&'static str, u32, &'static str),
        );
    };
}

/// `Some` and newtype structs serialize as what they hold.
macro_rules! passes_wrappers {
    () => {
        fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<Self::Ok, CellError> {
            v.serialize(self)
        }
        fn serialize_newtype_struct<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            v: &T,
        ) -> Result<Self::Ok, CellError> {
            v.serialize(self)
        }
    };
}

/// Sequences, tuples and enum variants with data are refused with `$err`.
macro_rules! refuses_compounds {
    ($err:expr) => {
        fn serialize_newtype_variant<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: &T,
        ) -> Result<Self::Ok, CellError> {
            Err($err)
        }
        fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, CellError> {
            Err($err)
        }
        fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, CellError> {
            Err($err)
        }
        fn serialize_tuple_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleStruct, CellError> {
            Err($err)
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleVariant, CellError> {
            Err($err)
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStructVariant, CellError> {
            Err($err)
        }
    };
}

#[derive(Debug)]
pub enum CellError {
    /// The value is an array or an object: its cell is its JSON.
    Compound,
    Other(String),
}

impl fmt::Display for CellError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CellError::Compound => f.write_str("not a scalar"),
            CellError::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for CellError {}

impl ser::Error for CellError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        CellError::Other(msg.to_string())
    }
}

/// Which fields go to which cell.
pub struct Layout {
    /// The record's top-level fields, by name.
    fields: HashMap<String, usize>,
    /// The entries of its `custom` object, by name.
    custom: HashMap<String, usize>,
    /// The cell of the field at each position of the record, as met so far (`None`: the
    /// field has no cell). Records of one type list their fields in one order, so after
    /// the first row each field is found by comparing its name with the one seen there.
    by_position: Vec<(&'static str, Option<usize>)>,
    /// A custom field's name while its cell is looked up.
    key: String,
}

impl Layout {
    /// The cells of `fields` (top-level field names) and `custom` (custom field names).
    pub fn new(
        fields: impl IntoIterator<Item = (String, usize)>,
        custom: impl IntoIterator<Item = (String, usize)>,
    ) -> Layout {
        Layout {
            fields: fields.into_iter().collect(),
            custom: custom.into_iter().collect(),
            by_position: Vec::new(),
            key: String::new(),
        }
    }

    /// The cell of the field `key`, the `position`-th of its record.
    fn cell_of(&mut self, position: usize, key: &'static str) -> Option<usize> {
        match self.by_position.get(position) {
            Some(&(seen, cell)) if seen == key => cell,
            _ => {
                let cell = self.fields.get(key).copied();
                if position == self.by_position.len() {
                    self.by_position.push((key, cell));
                }
                cell
            }
        }
    }
}

/// Fills `cells` (cleared by the caller) with the record's fields and custom fields that
/// `layout` names.
pub fn fill<T: Serialize>(
    record: &T,
    layout: &mut Layout,
    cells: &mut [String],
) -> Result<(), CellError> {
    record.serialize(Top {
        layout,
        cells,
        position: 0,
    })
}

/// One value as a cell.
fn cell<T: Serialize + ?Sized>(value: &T, out: &mut String) -> Result<(), CellError> {
    match value.serialize(Scalar(out)) {
        Ok(()) => {}
        Err(CellError::Compound) => {
            out.clear();
            out.push_str(
                &serde_json::to_string(value).map_err(|e| CellError::Other(e.to_string()))?,
            );
        }
        Err(e) => return Err(e),
    }
    Ok(())
}

struct Top<'a> {
    layout: &'a mut Layout,
    cells: &'a mut [String],
    position: usize,
}

impl SerializeStruct for Top<'_> {
    type Ok = ();
    type Error = CellError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), CellError> {
        if key == "custom" && !self.layout.custom.is_empty() {
            value.serialize(Custom {
                layout: &mut *self.layout,
                cells: &mut *self.cells,
            })?;
        }
        if let Some(i) = self.layout.cell_of(self.position, key) {
            cell(value, &mut self.cells[i])?;
        }
        self.position += 1;
        Ok(())
    }

    fn end(self) -> Result<(), CellError> {
        Ok(())
    }
}

/// The record's `custom` object: each entry that has a cell goes there.
struct Custom<'a> {
    layout: &'a mut Layout,
    cells: &'a mut [String],
}

impl SerializeMap for Custom<'_> {
    type Ok = ();
    type Error = CellError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), CellError> {
        self.layout.key.clear();
        key.serialize(Scalar(&mut self.layout.key))
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CellError> {
        match self.layout.custom.get(self.layout.key.as_str()) {
            Some(&i) => cell(value, &mut self.cells[i]),
            None => Ok(()),
        }
    }

    fn end(self) -> Result<(), CellError> {
        Ok(())
    }
}

impl<'a> Serializer for Custom<'a> {
    serializer_types!(Custom<'a>, Impossible<(), CellError>);

    passes_wrappers!();
    refuses_compounds!(not_a_struct());

    fn serialize_map(self, _: Option<usize>) -> Result<Custom<'a>, CellError> {
        Ok(self)
    }

    refuses_scalars!();

    /// No custom object: no custom cells.
    fn serialize_none(self) -> Result<(), CellError> {
        Ok(())
    }
    fn serialize_unit(self) -> Result<(), CellError> {
        Ok(())
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, CellError> {
        Err(not_a_struct())
    }
}

impl<'a> Serializer for Top<'a> {
    serializer_types!(Impossible<(), CellError>, Top<'a>);

    passes_wrappers!();
    refuses_compounds!(not_a_struct());

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Top<'a>, CellError> {
        Ok(self)
    }

    refuses_scalars!();
    not_a_record!(serialize_none(), serialize_unit());

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, CellError> {
        Err(not_a_struct())
    }
}

/// A scalar written as its cell text into the buffer (cleared by the caller); `Compound`
/// for anything else, before writing anything.
struct Scalar<'a>(&'a mut String);

/// Scalars whose cell is their `Display` (which is also how JSON writes them, unquoted).
macro_rules! displayed {
    ($($name:ident($arg:ty)),* $(,)?) => {
        $(fn $name(self, v: $arg) -> Result<(), CellError> {
            write!(self.0, "{v}").map_err(|e| CellError::Other(e.to_string()))
        })*
    };
}

impl Serializer for Scalar<'_> {
    serializer_types!(Impossible<(), CellError>, Impossible<(), CellError>);

    passes_wrappers!();
    refuses_compounds!(CellError::Compound);

    displayed!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_char(char),
    );
    fn serialize_str(self, v: &str) -> Result<(), CellError> {
        self.0.push_str(v);
        Ok(())
    }
    /// Dates and other `Display` values, written in place rather than through a string.
    fn collect_str<T: fmt::Display + ?Sized>(self, v: &T) -> Result<(), CellError> {
        write!(self.0, "{v}").map_err(|e| CellError::Other(e.to_string()))
    }
    fn serialize_f32(self, v: f32) -> Result<(), CellError> {
        self.serialize_f64(v.into())
    }
    fn serialize_f64(self, v: f64) -> Result<(), CellError> {
        self.0
            .push_str(&serde_json::to_string(&v).map_err(|e| CellError::Other(e.to_string()))?);
        Ok(())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), CellError> {
        Err(CellError::Compound)
    }
    fn serialize_none(self) -> Result<(), CellError> {
        Ok(())
    }
    fn serialize_unit(self) -> Result<(), CellError> {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), CellError> {
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), CellError> {
        self.0.push_str(variant);
        Ok(())
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, CellError> {
        Err(CellError::Compound)
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, CellError> {
        Err(CellError::Compound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use serde_json::Value;

    #[derive(Serialize)]
    #[serde(rename_all = "snake_case")]
    enum Stage {
        Mature,
    }

    #[derive(Serialize)]
    struct Address {
        city: Option<String>,
    }

    #[derive(Serialize)]
    struct Rec {
        id: String,
        score: Option<f64>,
        n: i32,
        ok: bool,
        stage: Stage,
        tags: Vec<String>,
        address: Address,
        note: Option<String>,
        at: chrono::DateTime<chrono::Utc>,
        custom: serde_json::Map<String, Value>,
    }

    #[test]
    fn cells_are_what_the_json_tree_gives() {
        let mut custom = serde_json::Map::new();
        custom.insert("segment".into(), Value::String("smb".into()));
        let rec = Rec {
            id: "a,\"b\"".into(),
            score: Some(1.5),
            n: -3,
            ok: true,
            stage: Stage::Mature,
            tags: vec!["x".into()],
            address: Address {
                city: Some("Paris".into()),
            },
            note: None,
            at: chrono::DateTime::from_timestamp(0, 0).unwrap_or_default(),
            custom,
        };
        let names = [
            "id", "score", "n", "ok", "stage", "tags", "address", "note", "at",
        ];
        let mut layout = Layout::new(
            names.iter().enumerate().map(|(i, n)| (n.to_string(), i)),
            [
                ("segment".to_string(), names.len()),
                ("tier".to_string(), names.len() + 1),
            ],
        );
        let tree = serde_json::to_value(&rec).unwrap();
        // The second fill finds each field's cell by position, as learnt on the first.
        for _ in 0..2 {
            let mut cells = vec!["stale".to_string(); names.len() + 2];
            cells.iter_mut().for_each(String::clear);
            fill(&rec, &mut layout, &mut cells).unwrap();
            for (i, n) in names.iter().enumerate() {
                let expected = match &tree[n] {
                    Value::Null => String::new(),
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                assert_eq!(cells[i], expected, "{n}");
            }
            assert_eq!(cells[names.len()], "smb", "custom.segment");
            assert_eq!(cells[names.len() + 1], "", "custom.tier, not set");
        }
        assert_eq!(
            layout.by_position.len(),
            names.len() + 1,
            "custom has no cell of its own"
        );
    }
}
