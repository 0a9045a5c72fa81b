//! Go's text/template language with the consul-template functions.
//!
//! No Rust crate renders Go templates byte-for-byte the way consul-template
//! does (map iteration order, `%v` printing, `<no value>`), so the lexer,
//! parser and evaluator live here. The parser is usable on its own: the
//! injector calls [`Template::parse`] at admission time.
