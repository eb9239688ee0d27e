//! The IR: an arena graph of typed values and ops, built only from a checked model.
