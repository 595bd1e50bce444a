//! The only module that draws: indicatif bars, quiet when stderr is not a terminal or with -q.
