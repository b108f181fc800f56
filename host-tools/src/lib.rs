//! microcnn host tools.
