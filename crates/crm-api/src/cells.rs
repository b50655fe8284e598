//! A record's top-level fields as CSV cells, taken straight from its `Serialize` impl:
//! text as is, numbers and booleans as JSON writes them, null as an empty cell, nested
//! values (arrays, objects) as their JSON. The same cells as going through a
//! `serde_json::Value` per row, without building one, which is what an export of a million
//! rows spends most of its time on.

use serde::ser::{self, Impossible, Serialize, SerializeStruct, Serializer};
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;

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

/// Which top-level fields go to which cell.
pub struct Layout {
    pub fields: HashMap<String, usize>,
}

/// Fills `cells` (cleared by the caller) with the record's fields that `layout` names, and
/// hands back its `custom` object, when it has one, as JSON.
pub fn fill<T: Serialize>(
    record: &T,
    layout: &Layout,
    cells: &mut [String],
) -> Result<Option<Value>, CellError> {
    let mut custom = None;
    record.serialize(Top {
        layout,
        cells,
        custom: &mut custom,
    })?;
    Ok(custom)
}

/// One value as a cell.
fn cell<T: Serialize + ?Sized>(value: &T, out: &mut String) -> Result<(), CellError> {
    match value.serialize(Scalar) {
        Ok(s) => *out = s,
        Err(CellError::Compound) => {
            *out = serde_json::to_string(value).map_err(|e| CellError::Other(e.to_string()))?
        }
        Err(e) => return Err(e),
    }
    Ok(())
}

struct Top<'a> {
    layout: &'a Layout,
    cells: &'a mut [String],
    custom: &'a mut Option<Value>,
}

impl SerializeStruct for Top<'_> {
    type Ok = ();
    type Error = CellError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), CellError> {
        if key == "custom" {
            *self.custom =
                Some(serde_json::to_value(value).map_err(|e| CellError::Other(e.to_string()))?);
        }
        if let Some(&i) = self.layout.fields.get(key) {
            cell(value, &mut self.cells[i])?;
        }
        Ok(())
    }

    fn end(self) -> Result<(), CellError> {
        Ok(())
    }
}

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

impl<'a> Serializer for Top<'a> {
    type Ok = ();
    type Error = CellError;
    type SerializeSeq = Impossible<(), CellError>;
    type SerializeTuple = Impossible<(), CellError>;
    type SerializeTupleStruct = Impossible<(), CellError>;
    type SerializeTupleVariant = Impossible<(), CellError>;
    type SerializeMap = Impossible<(), CellError>;
    type SerializeStruct = Top<'a>;
    type SerializeStructVariant = Impossible<(), CellError>;

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Top<'a>, CellError> {
        Ok(self)
    }

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
        serialize_none(),
        serialize_unit(),
        serialize_unit_struct(&'static str),
        serialize_unit_variant(&'static str, u32, &'static str),
    );

    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), CellError> {
        v.serialize(self)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), CellError> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), CellError> {
        Err(not_a_struct())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, CellError> {
        Err(not_a_struct())
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, CellError> {
        Err(not_a_struct())
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, CellError> {
        Err(not_a_struct())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, CellError> {
        Err(not_a_struct())
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, CellError> {
        Err(not_a_struct())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, CellError> {
        Err(not_a_struct())
    }
}

/// A scalar as its cell text; `Compound` for anything else.
struct Scalar;

/// Scalars whose cell is their `Display` (which is also how JSON writes them, unquoted).
macro_rules! displayed {
    ($($name:ident($arg:ty)),* $(,)?) => {
        $(fn $name(self, v: $arg) -> Result<String, CellError> {
            Ok(v.to_string())
        })*
    };
}

fn json<T: Serialize>(v: T) -> Result<String, CellError> {
    serde_json::to_string(&v).map_err(|e| CellError::Other(e.to_string()))
}

impl Serializer for Scalar {
    type Ok = String;
    type Error = CellError;
    type SerializeSeq = Impossible<String, CellError>;
    type SerializeTuple = Impossible<String, CellError>;
    type SerializeTupleStruct = Impossible<String, CellError>;
    type SerializeTupleVariant = Impossible<String, CellError>;
    type SerializeMap = Impossible<String, CellError>;
    type SerializeStruct = Impossible<String, CellError>;
    type SerializeStructVariant = Impossible<String, CellError>;

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
        serialize_str(&str),
    );
    fn serialize_f32(self, v: f32) -> Result<String, CellError> {
        json(v)
    }
    fn serialize_f64(self, v: f64) -> Result<String, CellError> {
        json(v)
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<String, CellError> {
        Err(CellError::Compound)
    }
    fn serialize_none(self) -> Result<String, CellError> {
        Ok(String::new())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<String, CellError> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<String, CellError> {
        Ok(String::new())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<String, CellError> {
        Ok(String::new())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<String, CellError> {
        Ok(variant.to_string())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<String, CellError> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<String, CellError> {
        Err(CellError::Compound)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, CellError> {
        Err(CellError::Compound)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, CellError> {
        Err(CellError::Compound)
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, CellError> {
        Err(CellError::Compound)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, CellError> {
        Err(CellError::Compound)
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
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, CellError> {
        Err(CellError::Compound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;

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
        let layout = Layout {
            fields: names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.to_string(), i))
                .collect(),
        };
        let mut cells = vec![String::new(); names.len()];
        let custom = fill(&rec, &layout, &mut cells).unwrap();
        let tree = serde_json::to_value(&rec).unwrap();
        for (i, n) in names.iter().enumerate() {
            let expected = match &tree[n] {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            assert_eq!(cells[i], expected, "{n}");
        }
        assert_eq!(custom, Some(tree["custom"].clone()));
    }
}
