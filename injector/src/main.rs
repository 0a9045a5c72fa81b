//! keyhole-injector binary.

fn main() {}
