//! Parser throughput; filled in by the parser work for issue #4.
fn main() {}
