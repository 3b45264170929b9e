//! pros
