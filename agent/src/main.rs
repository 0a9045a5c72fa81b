//! keyhole-agent binary.

fn main() {}
