//! Quoting values and names into SQL the tools send (well-kept code of the driver's own
//! crate, not hand-written escaping).

/// Quotes a string as an SQL literal with `postgres_protocol::escape::escape_literal` (libpq's
/// `PQescapeLiteral`): a value with a backslash becomes an `E'...'` literal with the backslash
/// doubled, which reads the same whatever `standard_conforming_strings` says. Values read from
/// the catalog (a comment, a setting) and replayed by `hard-reset` may hold backslashes.
pub fn literal(value: &str) -> String {
    postgres_protocol::escape::escape_literal(value)
}

/// Quotes an identifier with `postgres_protocol::escape::escape_identifier`: always in double
/// quotes, embedded quotes doubled.
pub fn identifier(name: &str) -> String {
    postgres_protocol::escape::escape_identifier(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_double_single_quotes() {
        assert_eq!(literal("it's"), "'it''s'");
    }

    #[test]
    fn literals_with_a_backslash_read_the_same_under_either_string_syntax() {
        // E'' strings always treat the backslash as an escape; escape_literal doubles it.
        assert_eq!(literal(r"C:\new"), r" E'C:\\new'");
        assert_eq!(identifier("a\"b"), "\"a\"\"b\"");
    }
}
