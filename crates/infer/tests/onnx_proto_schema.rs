//! The hand-written `onnx.proto` messages (`src/onnx_proto.rs`) against the official schema:
//! every field declared there has the number (and repetition) that `onnx.proto` gives it, every
//! message that is decoded and re-encoded declares every field of the schema (prost drops the
//! ones it does not know), and the `DT_*`/`ATTR_*`/`LOCATION_*` constants have their enum
//! values.
//!
//! The schema comes from PyPI's `onnx` package, which ships `onnx/onnx.proto` (never copied into
//! this repository): `FRESCO_ONNX_PROTO` names the file (scripts/test.sh sets it from
//! `.fresco/venv`). Without it the test says SKIPPED, unless `FRESCO_REQUIRE_ONNX_PROTO=1`.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// The messages that are only read (their other fields are never written back), so they may
/// declare a subset of the schema's fields.
const READ_ONLY: &[&str] = &["FunctionProto", "TrainingInfoProto"];

/// A field of a message: its number and whether it is `repeated`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Field {
    number: u32,
    repeated: bool,
}

/// Messages (`Outer.Inner` for nested ones) to their fields by name; enums (likewise named) to
/// their values by name.
#[derive(Debug, Default)]
struct Schema {
    messages: BTreeMap<String, BTreeMap<String, Field>>,
    enums: BTreeMap<String, BTreeMap<String, i64>>,
}

/// Parses the parts of a `.proto` file that carry numbers: messages (nested too), their fields
/// (in `oneof`s too, as fields of the message), enums and their values. Options, `reserved`
/// and `extensions` statements are passed over.
fn parse_proto(text: &str) -> Schema {
    let mut tokens = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap();
        let mut word = String::new();
        for c in code.chars() {
            if c.is_alphanumeric() || c == '_' || c == '.' || c == '-' || c == '"' {
                word.push(c);
            } else {
                if !word.is_empty() {
                    tokens.push(std::mem::take(&mut word));
                }
                if !c.is_whitespace() {
                    tokens.push(c.to_string());
                }
            }
        }
        if !word.is_empty() {
            tokens.push(word);
        }
    }
    enum Scope {
        Message(String),
        Enum(String),
        Oneof,
    }
    let mut schema = Schema::default();
    let mut scopes: Vec<Scope> = Vec::new();
    let message_path = |scopes: &[Scope]| {
        scopes
            .iter()
            .filter_map(|s| match s {
                Scope::Message(name) => Some(name.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join(".")
    };
    let mut i = 0;
    // The tokens of one statement, up to its `;`.
    let statement = |i: &mut usize| {
        let start = *i;
        while tokens[*i] != ";" {
            *i += 1;
        }
        *i += 1;
        &tokens[start..*i - 1]
    };
    while i < tokens.len() {
        match tokens[i].as_str() {
            "message" | "enum" | "oneof" => {
                let (kind, name) = (tokens[i].clone(), tokens[i + 1].clone());
                assert_eq!(tokens[i + 2], "{", "{kind} {name} without a body");
                i += 3;
                match kind.as_str() {
                    "message" => {
                        scopes.push(Scope::Message(name));
                        schema.messages.entry(message_path(&scopes)).or_default();
                    }
                    "enum" => {
                        let outer = message_path(&scopes);
                        let full = if outer.is_empty() {
                            name
                        } else {
                            format!("{outer}.{name}")
                        };
                        schema.enums.entry(full.clone()).or_default();
                        scopes.push(Scope::Enum(full));
                    }
                    _ => scopes.push(Scope::Oneof),
                }
            }
            "}" => {
                scopes.pop().expect("a '}' closes a scope");
                i += 1;
            }
            "syntax" | "package" | "import" | "option" | "reserved" | "extensions" => {
                statement(&mut i);
            }
            _ => {
                let words = statement(&mut i);
                if words.is_empty() {
                    continue; // a lone ';' (allowed after a '}')
                }
                let Some(eq) = words.iter().position(|w| w == "=") else {
                    panic!("a statement without '=': {words:?}");
                };
                let name = words[eq - 1].clone();
                let number = parse_number(&words[eq + 1])
                    .unwrap_or_else(|| panic!("no number in {words:?}"));
                match scopes.last() {
                    Some(Scope::Enum(full)) => {
                        schema.enums.get_mut(full).unwrap().insert(name, number);
                    }
                    Some(Scope::Message(_)) | Some(Scope::Oneof) => {
                        let field = Field {
                            number: number as u32,
                            repeated: words[0] == "repeated",
                        };
                        let message = message_path(&scopes);
                        let fields = schema.messages.get_mut(&message).unwrap();
                        assert!(
                            fields.insert(name.clone(), field).is_none(),
                            "{message}.{name} twice"
                        );
                    }
                    None => panic!("a field outside any message: {words:?}"),
                }
            }
        }
    }
    assert!(scopes.is_empty(), "unclosed scopes at the end");
    schema
}

/// A decimal, hexadecimal (`0x...`) or negative number, as `.proto` files write them.
fn parse_number(text: &str) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let value = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(hex) => i64::from_str_radix(hex, 16).ok()?,
        None => digits.parse().ok()?,
    };
    Some(if negative { -value } else { value })
}

/// What `src/onnx_proto.rs` declares: messages (named by their "/// `onnx.NAME`" doc line) and
/// their prost fields, and the constants documented as "/// `Enum.Path.VALUE`".
fn parse_rust(text: &str) -> Schema {
    let mut schema = Schema::default();
    let mut doc_name: Option<String> = None;
    let mut message: Option<String> = None;
    let mut attribute: Option<(Vec<u32>, bool)> = None;
    let mut constant: Option<(String, String)> = None;
    for line in text.lines().map(str::trim) {
        if let Some(doc) = line.strip_prefix("/// `") {
            let name = doc.split('`').next().unwrap();
            if let Some(proto) = name.strip_prefix("onnx.") {
                doc_name = Some(proto.to_string());
            } else if let Some((path, value)) = name.rsplit_once('.') {
                if path.ends_with("DataType")
                    || path.ends_with("AttributeType")
                    || path.ends_with("DataLocation")
                {
                    constant = Some((path.to_string(), value.to_string()));
                }
            }
        } else if line.starts_with("pub struct ") {
            message = doc_name.take();
            if let Some(m) = &message {
                schema.messages.entry(m.clone()).or_default();
            }
        } else if let Some(args) = line.strip_prefix("#[prost(") {
            let repeated = args.split(',').any(|a| a.trim() == "repeated");
            let tags = args
                .split("tag = \"")
                .nth(1)
                .or_else(|| args.split("tags = \"").nth(1))
                .and_then(|t| t.split('"').next())
                .unwrap_or_else(|| panic!("no tag in {line}"));
            let numbers = tags.split(',').map(|t| t.trim().parse().unwrap()).collect();
            attribute = Some((numbers, repeated));
        } else if let Some((numbers, repeated)) = attribute.take() {
            let Some(m) = &message else {
                panic!("a prost field outside a documented message: {line}")
            };
            let fields = schema.messages.get_mut(m).unwrap();
            if numbers.len() > 1 {
                // A oneof: its members are the variants below, checked one by one.
                continue;
            }
            let name = field_name(line);
            let field = Field {
                number: numbers[0],
                repeated,
            };
            fields.insert(name, field);
        } else if let Some(rest) = line.strip_prefix("pub const ") {
            if let Some((path, value)) = constant.take() {
                let number = rest
                    .rsplit('=')
                    .next()
                    .unwrap()
                    .trim()
                    .trim_end_matches(';')
                    .parse()
                    .unwrap();
                schema.enums.entry(path).or_default().insert(value, number);
            }
        }
    }
    schema
}

/// `pub r#type: ...` -> `type`; a oneof variant `DimValue(i64),` -> `dim_value`.
fn field_name(line: &str) -> String {
    if let Some(rest) = line.strip_prefix("pub ") {
        let name = rest.split(':').next().unwrap().trim();
        return name.trim_start_matches("r#").to_string();
    }
    let variant = line.split('(').next().unwrap().trim();
    let mut snake = String::new();
    for (i, c) in variant.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            snake.push('_');
        }
        snake.push(c.to_ascii_lowercase());
    }
    snake
}

fn official_proto() -> Option<PathBuf> {
    let required = std::env::var("FRESCO_REQUIRE_ONNX_PROTO").as_deref() == Ok("1");
    match std::env::var_os("FRESCO_ONNX_PROTO")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
    {
        Some(path) if path.is_file() => Some(path),
        other => {
            let why = match other {
                Some(path) => format!(
                    "FRESCO_ONNX_PROTO names {}, which is not a file",
                    path.display()
                ),
                None => "FRESCO_ONNX_PROTO is not set".to_string(),
            };
            assert!(
                !required,
                "FRESCO_REQUIRE_ONNX_PROTO=1 but {why}: point it at onnx/onnx.proto of PyPI's \
                 onnx package (scripts/test.sh does)"
            );
            println!(
                "SKIPPED: the ONNX message field numbers are not checked: {why} (scripts/test.sh \
                 sets it to onnx/onnx.proto of PyPI's onnx package)"
            );
            None
        }
    }
}

#[test]
fn hand_written_messages_match_the_official_onnx_proto() {
    let Some(path) = official_proto() else {
        return;
    };
    let official = parse_proto(&std::fs::read_to_string(&path).unwrap());
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/src/onnx_proto.rs");
    let ours = parse_rust(&std::fs::read_to_string(source).unwrap());
    assert!(
        ours.messages.len() >= 10,
        "too few messages read from {source}: {:?}",
        ours.messages.keys()
    );
    let mut problems = Vec::new();
    for (message, fields) in &ours.messages {
        let Some(theirs) = official.messages.get(message) else {
            problems.push(format!("{message}: no such message in {}", path.display()));
            continue;
        };
        for (name, field) in fields {
            match theirs.get(name) {
                None => problems.push(format!("{message}.{name}: not in the schema")),
                Some(official) if official != field => problems.push(format!(
                    "{message}.{name}: ours {field:?}, the schema's {official:?}"
                )),
                Some(_) => {}
            }
        }
        if !READ_ONLY.contains(&message.as_str()) {
            for name in theirs.keys().filter(|n| !fields.contains_key(*n)) {
                problems.push(format!(
                    "{message}.{name} (= {}): missing, so a decoded model would lose it",
                    theirs[name].number
                ));
            }
        }
    }
    for (path_name, values) in &ours.enums {
        let theirs = official.enums.get(path_name);
        for (value, number) in values {
            if theirs.and_then(|t| t.get(value)) != Some(number) {
                problems.push(format!(
                    "{path_name}.{value} = {number}, the schema's {:?}",
                    theirs.and_then(|t| t.get(value))
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "src/onnx_proto.rs disagrees with {}:\n{}",
        path.display(),
        problems.join("\n")
    );
    let checked: usize = ours.messages.values().map(BTreeMap::len).sum();
    println!(
        "{checked} fields of {} messages and {} constants match {}",
        ours.messages.len(),
        ours.enums.values().map(BTreeMap::len).sum::<usize>(),
        path.display()
    );
}

#[test]
fn the_proto_parser_reads_nested_messages_oneofs_and_enums() {
    let schema = parse_proto(
        r#"
        syntax = "proto2";
        package onnx;
        // A comment { with braces }.
        message Outer {
          reserved 3, 4;
          optional string name = 1; // trailing comment
          repeated int64 dims = 2 [packed = true];
          enum Kind { UNDEFINED = 0; FLOAT = 1; BIG = 0x10; }
          message Inner { oneof value { int64 a = 1; string b = 2; } optional string c = 3; }
          map<string, int64> counts = 5;
        }
        "#,
    );
    let outer = &schema.messages["Outer"];
    assert_eq!(
        outer["name"],
        Field {
            number: 1,
            repeated: false
        }
    );
    assert_eq!(
        outer["dims"],
        Field {
            number: 2,
            repeated: true
        }
    );
    assert_eq!(outer["counts"].number, 5);
    let inner = &schema.messages["Outer.Inner"];
    assert_eq!(
        inner
            .iter()
            .map(|(n, f)| (n.as_str(), f.number))
            .collect::<Vec<_>>(),
        [("a", 1), ("b", 2), ("c", 3)]
    );
    assert_eq!(schema.enums["Outer.Kind"]["FLOAT"], 1);
    assert_eq!(schema.enums["Outer.Kind"]["BIG"], 16);
}
