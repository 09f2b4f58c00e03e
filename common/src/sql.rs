//! Placeholder: the PostgreSQL-aware lexer (being written).
