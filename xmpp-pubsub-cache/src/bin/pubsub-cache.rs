//! `pubsub-cache`: the cache from the command line (work in progress).

fn main() {}
