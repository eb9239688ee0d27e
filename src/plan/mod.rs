//! The serialized execution plan (serde/RON, versioned, validated on load).
