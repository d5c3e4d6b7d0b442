//! SVG documents read back by an XML parser (quick-xml), for tests of what fresco draws: the
//! elements with their attributes as a browser would read them (entities resolved), and the
//! text of each element that holds text.

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;

/// One element: its name and attributes, in document order.
#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    pub name: String,
    pub attributes: Vec<(String, String)>,
}

impl Element {
    /// The attribute's value, if the element has it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// An attribute read as a number; panics when it is absent or not one.
    pub fn number(&self, name: &str) -> f64 {
        let value = self
            .get(name)
            .unwrap_or_else(|| panic!("<{}> has no {name}: {self:?}", self.name));
        value
            .parse()
            .unwrap_or_else(|_| panic!("<{}> {name}={value:?} is not a number", self.name))
    }
}

/// A document, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Svg {
    pub elements: Vec<Element>,
    /// The text content of each `<text>` element, entities resolved, in document order.
    pub texts: Vec<String>,
}

impl Svg {
    /// The elements named `name`.
    pub fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.elements.iter().filter(move |e| e.name == name)
    }
}

/// Parses `svg`; panics (the test fails) where it is not well-formed XML or names an entity
/// XML does not predefine.
pub fn parse(svg: &str) -> Svg {
    let mut reader = quick_xml::Reader::from_str(svg);
    let mut parsed = Svg {
        elements: Vec::new(),
        texts: Vec::new(),
    };
    let mut depth = 0usize;
    let mut text: Option<(usize, String)> = None;
    loop {
        let event = reader
            .read_event()
            .unwrap_or_else(|e| panic!("not well-formed XML ({e}): {svg}"));
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                let attributes = e
                    .attributes()
                    .map(|a| {
                        let a = a.unwrap_or_else(|e| panic!("a bad attribute ({e}): {svg}"));
                        let value = a
                            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                            .unwrap_or_else(|e| panic!("a bad attribute value ({e}): {svg}"));
                        (
                            String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                            value.into_owned(),
                        )
                    })
                    .collect();
                if matches!(event, Event::Start(_)) {
                    depth += 1;
                    if name == "text" {
                        text = Some((depth, String::new()));
                    }
                }
                parsed.elements.push(Element { name, attributes });
            }
            Event::Text(t) => {
                if let Some((_, s)) = &mut text {
                    s.push_str(&t.decode().unwrap());
                }
            }
            Event::GeneralRef(r) => {
                let name = r.decode().unwrap();
                let resolved = resolve_predefined_entity(&name)
                    .unwrap_or_else(|| panic!("an entity XML does not define: &{name};"));
                if let Some((_, s)) = &mut text {
                    s.push_str(resolved);
                }
            }
            Event::End(_) => {
                if let Some((at, s)) = text.take() {
                    if at == depth {
                        parsed.texts.push(s);
                    } else {
                        text = Some((at, s));
                    }
                }
                depth -= 1;
            }
            Event::Eof => break,
            _ => {}
        }
    }
    parsed
}
