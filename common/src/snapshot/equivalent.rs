//! Renderings that mean the same: the form that one more parse and deparse gives a definition.
//!
//! The snapshot holds what the server's deparse functions (`pg_get_constraintdef`,
//! `pg_get_expr`, `pg_get_viewdef`, ...) render from the stored expression trees. That text is
//! not always a fixed point of parse + deparse: `pg_dump | pg_restore` parses it again, and the
//! restored database renders some expressions differently although nothing changed. A probe of
//! PostgreSQL 15 (every place an expression is rendered, a wide range of expression forms; see
//! the e2e tests in `drift_equivalent.rs`) found exactly two such forms:
//!
//! 1. **An array cast of an `ARRAY[]` constructor.** An implicit coercion of an array (an `IN`
//!    list of `varchar` compared as `text`, `numeric = ANY (ARRAY[1, 2])`, a `CASE` or
//!    `COALESCE` branch) is rendered as a cast of the whole constructor:
//!    `(ARRAY['a'::character varying, 'b'::character varying])::text[]`. The parser pushes a
//!    cast of an `ARRAY[]` constructor down into its elements (`transformTypeCast`,
//!    `transformArrayExpr`), so the restored database renders
//!    `ARRAY[('a'::character varying)::text, ('b'::character varying)::text]`. Both mean the
//!    same: casting an array casts each element with the same cast. Nested casts take one
//!    restore per level; the canonical form is the last one.
//! 2. **A left-nested `AND` (or `OR`).** A `BETWEEN`, a row comparison or an `IN` list with
//!    columns becomes an `AND`/`OR` of its own, so `n BETWEEN 1 AND 9 AND n <> 5` renders
//!    `(((n >= 1) AND (n <= 9)) AND (n <> 5))`; the grammar flattens an `AND` whose left
//!    operand is an `AND` (`makeAndExpr`, likewise `makeOrExpr`), so the restored database
//!    renders `((n >= 1) AND (n <= 9) AND (n <> 5))`. Both mean the same: `AND` and `OR` are
//!    associative, in three-valued logic too. Only the first operand is merged, as the
//!    grammar does (`a AND (b AND c)` stays as it is).
//!
//! [`canonical`] rewrites exactly these two forms into what the server renders after the
//! restore, and nothing else, so two definitions with equal canonical forms differ only by
//! meaning-preserving rewrites. Where a form cannot be recognised for certain (comments, an
//! unbalanced bracket, a cast to a type with a modifier, array elements whose type the text
//! does not show), the definition is left as it is: at worst a false drift, never a change
//! hidden.
//!
//! The text is split into tokens by `squawk-lexer` (PostgreSQL's lexical rules, as in
//! `scan.l`: string literals with doubled quotes and `E'...'` escapes, quoted identifiers,
//! dollar-quoted strings, comments); every literal, quoted identifier and dollar-quoted
//! function body is one opaque token, never looked into or rewritten.

use std::borrow::Cow;

use squawk_lexer::{tokenize, LiteralKind, TokenKind};

use super::diff::{Change, Drift};

/// The kinds of snapshot entry whose definition holds SQL that the server deparsed. Others
/// (comments, owners, privileges, enum labels, an aggregate's `INITCOND`, ...) are text that
/// is compared as it is.
const RENDERED: &[&str] = &[
    "column",
    "constraint",
    "domain",
    "function",
    "index",
    "materialized view",
    "policy",
    "procedure",
    "rule",
    "table",
    "trigger",
    "view",
];

/// Whether two definitions of an entry of `kind` mean the same: equal, equal once both are
/// in their [`canonical`] form (only for the kinds that hold deparsed SQL), or the recorded
/// one is what an earlier release of the capture rendered for the live one
/// ([`super::earlier`]).
pub fn equivalent(kind: &str, recorded: &str, live: &str) -> bool {
    recorded == live
        || (RENDERED.contains(&kind) && canonical(recorded) == canonical(live))
        || super::earlier::same_as_today(kind, recorded, live)
}

/// Splits differences into drift and equivalent renderings: a `changed` entry whose recorded
/// and live definitions are [`equivalent`] is the second; everything else (added, dropped,
/// column order, the snapshot itself unreadable) the first.
pub fn split(differences: Vec<Drift>) -> (Vec<Drift>, Vec<Drift>) {
    differences.into_iter().partition(|d| {
        !(d.change == Change::Changed
            && matches!((&d.expected, &d.actual), (Some(e), Some(a)) if equivalent(&d.kind, e, a)))
    })
}

/// The form that parsing and deparsing `definition` again (as many times as it takes to
/// settle) gives, for the forms listed in the module documentation; any other text is
/// returned as it is.
pub fn canonical(definition: &str) -> Cow<'_, str> {
    let Some(mut items) = parse(definition) else {
        return Cow::Borrowed(definition);
    };
    if !rewrite(&mut items, None) {
        return Cow::Borrowed(definition);
    }
    let mut out = String::with_capacity(definition.len() + definition.len() / 4);
    render(&items, &mut out);
    Cow::Owned(out)
}

/// What a token is, as far as the rewrites care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    /// Whitespace.
    Space,
    /// An unquoted identifier or keyword (the server writes keywords in upper case and
    /// quotes every identifier that is a keyword or not in lower case).
    Word,
    /// A quoted identifier.
    Quoted,
    /// A string literal (`'...'`, `E'...'`, `B'...'`, dollar-quoted, ...).
    Str,
    /// A numeric literal.
    Number,
    /// `,`
    Comma,
    /// `:` (a cast is two of them)
    Colon,
    /// `.`
    Dot,
    /// A character of an operator: `=`, `<`, `>`, `+`, `-`, `*`, `/`, `%`, `^`, `&`, `|`,
    /// `#`, `~`, `@`, `?`, `!`.
    Op,
    /// Anything else (`;`, `{`, `$1`, ...).
    Other,
}

/// A token, or a bracketed group (`(...)` or `[...]`) with everything inside it.
#[derive(Debug, Clone)]
enum Node<'a> {
    Token(Tok, &'a str),
    Group(char, Vec<Node<'a>>),
}

impl Node<'_> {
    fn is(&self, tok: Tok, text: &str) -> bool {
        matches!(self, Node::Token(t, s) if *t == tok && *s == text)
    }

    fn is_tok(&self, tok: Tok) -> bool {
        matches!(self, Node::Token(t, _) if *t == tok)
    }

    fn is_group(&self, open: char) -> bool {
        matches!(self, Node::Group(o, _) if *o == open)
    }

    fn is_space(&self) -> bool {
        self.is_tok(Tok::Space)
    }
}

/// Splits `text` into a tree of tokens and bracketed groups. `None` when it cannot be done
/// for certain: a comment, an unterminated literal, an unknown character, an unbalanced
/// bracket.
fn parse(text: &str) -> Option<Vec<Node<'_>>> {
    let mut stack: Vec<(char, Vec<Node<'_>>)> = vec![(' ', Vec::new())];
    let mut at = 0usize;
    for token in tokenize(text) {
        let end = at + token.len as usize;
        let piece = text.get(at..end)?;
        at = end;
        let tok = match token.kind {
            TokenKind::Whitespace => Tok::Space,
            TokenKind::Ident => Tok::Word,
            TokenKind::QuotedIdent {
                terminated: true, ..
            } => Tok::Quoted,
            TokenKind::Literal { kind } => literal(kind)?,
            TokenKind::Comma => Tok::Comma,
            TokenKind::Colon => Tok::Colon,
            TokenKind::Dot => Tok::Dot,
            TokenKind::Eq
            | TokenKind::Lt
            | TokenKind::Gt
            | TokenKind::Plus
            | TokenKind::Minus
            | TokenKind::Star
            | TokenKind::Slash
            | TokenKind::Percent
            | TokenKind::Caret
            | TokenKind::And
            | TokenKind::Or
            | TokenKind::Pound
            | TokenKind::Tilde
            | TokenKind::At
            | TokenKind::Question
            | TokenKind::Bang => Tok::Op,
            TokenKind::OpenParen | TokenKind::OpenBracket => {
                stack.push((piece.chars().next()?, Vec::new()));
                continue;
            }
            TokenKind::CloseParen | TokenKind::CloseBracket => {
                let (open, items) = stack.pop()?;
                let expected = if token.kind == TokenKind::CloseParen {
                    '('
                } else {
                    '['
                };
                if open != expected {
                    return None;
                }
                stack.last_mut()?.1.push(Node::Group(open, items));
                continue;
            }
            TokenKind::Semi
            | TokenKind::OpenCurly
            | TokenKind::CloseCurly
            | TokenKind::DotDot
            | TokenKind::PositionalParam { .. } => Tok::Other,
            // Comments, unterminated identifiers, backticks, unknown characters: not
            // something the server renders; leave the text alone.
            _ => return None,
        };
        stack.last_mut()?.1.push(Node::Token(tok, piece));
    }
    if at != text.len() || stack.len() != 1 {
        return None;
    }
    stack.pop().map(|(_, items)| items)
}

/// The token kind of a literal; `None` for an unterminated one.
fn literal(kind: LiteralKind) -> Option<Tok> {
    match kind {
        LiteralKind::Int { .. } | LiteralKind::Numeric { .. } => Some(Tok::Number),
        LiteralKind::Str { terminated }
        | LiteralKind::NationalStr { terminated }
        | LiteralKind::ByteStr { terminated }
        | LiteralKind::BitStr { terminated }
        | LiteralKind::DollarQuotedString { terminated }
        | LiteralKind::UnicodeEscStr { terminated }
        | LiteralKind::EscStr { terminated } => terminated.then_some(Tok::Str),
    }
}

/// Writes the tree back as text.
fn render(items: &[Node<'_>], out: &mut String) {
    for item in items {
        match item {
            Node::Token(_, text) => out.push_str(text),
            Node::Group(open, inner) => {
                out.push(*open);
                render(inner, out);
                out.push(if *open == '(' { ')' } else { ']' });
            }
        }
    }
}

/// Rewrites the items of one level (the whole text: `open` is `None`; or the inside of a
/// group), innermost groups first, so that one pass reaches the settled form. Says whether
/// anything changed.
fn rewrite(items: &mut Vec<Node<'_>>, open: Option<char>) -> bool {
    let mut changed = false;
    for item in items.iter_mut() {
        if let Node::Group(o, inner) = item {
            changed |= rewrite(inner, Some(*o));
        }
    }
    changed |= push_casts_into_arrays(items);
    if open == Some('(') {
        changed |= flatten_first_operand(items);
    }
    changed
}

/// Indexes of the items that are not whitespace.
fn significant(items: &[Node<'_>]) -> Vec<usize> {
    (0..items.len()).filter(|&i| !items[i].is_space()).collect()
}

/// Keywords after which a parenthesised expression may stand, so that
/// `KEYWORD (ARRAY[...])::type[]` is a cast of a parenthesised `ARRAY[]`. Not `ANY`, `ALL`,
/// `IN`, `EXISTS`, `ARRAY`, `ROW`, `VALUES`, `ON`, `USING`, `CHECK`, `AS`, `WHERE`, `OVER`,
/// `FILTER` or a function name: their parenthesis is their own.
const BEFORE_EXPRESSION: &[&str] = &[
    "AND",
    "BY",
    "CASE",
    "DEFAULT",
    "DISTINCT",
    "ELSE",
    "FROM",
    "NOT",
    "OR",
    "RETURN",
    "RETURNING",
    "SELECT",
    "THEN",
    "VARIADIC",
    "WHEN",
];

/// Form 1: `(ARRAY[e1, e2])::type[]` becomes `ARRAY[(e1)::type, (e2)::type]`, as the parser
/// pushes the cast into the constructor (for a multidimensional constructor, into the
/// innermost one). Only where the group is a parenthesised expression, the type has no
/// modifier, and the elements are evidently scalars (see [`push_into`]).
fn push_casts_into_arrays(items: &mut Vec<Node<'_>>) -> bool {
    let mut changed = false;
    let mut i = 0;
    while i < items.len() {
        if let Some((end, replacement)) = array_cast_at(items, i) {
            items.splice(i..=end, replacement);
            changed = true;
        }
        i += 1;
    }
    changed
}

/// The array cast starting at `items[i]`: the index of its last item and what replaces it.
fn array_cast_at<'a>(items: &[Node<'a>], i: usize) -> Option<(usize, Vec<Node<'a>>)> {
    let Node::Group('(', inner) = &items[i] else {
        return None;
    };
    // The group holds exactly `ARRAY[...]`.
    let [array @ Node::Token(Tok::Word, "ARRAY"), Node::Group('[', elements)] = inner.as_slice()
    else {
        return None;
    };
    // It stands where an expression does.
    let mut before = items[..i].iter().rev().filter(|n| !n.is_space());
    let expression_position = match before.next() {
        None => true,
        Some(Node::Token(Tok::Comma | Tok::Op, _)) => true,
        Some(Node::Token(Tok::Word, word)) => BEFORE_EXPRESSION.contains(word),
        // A schema-qualified operator: `OPERATOR(public.?&)`.
        Some(Node::Group('(', _)) => {
            matches!(before.next(), Some(n) if n.is(Tok::Word, "OPERATOR"))
        }
        Some(_) => false,
    };
    if !expression_position {
        return None;
    }
    // `::`, right after it, then the type name and `[]`.
    if !(items.get(i + 1)?.is(Tok::Colon, ":") && items.get(i + 2)?.is(Tok::Colon, ":")) {
        return None;
    }
    let mut j = i + 3;
    while let Some(Node::Token(Tok::Word | Tok::Quoted | Tok::Dot | Tok::Space, _)) = items.get(j) {
        j += 1;
    }
    let type_name = &items[i + 3..j];
    let brackets = items.get(j)?;
    if type_name.is_empty()
        || type_name[0].is_space()
        || type_name.last()?.is_space()
        || !matches!(brackets, Node::Group('[', b) if b.is_empty())
    {
        return None;
    }
    // Nothing binds to the cast from the right: `[...]`, `.field`, another `::`.
    if let Some(next) = items.get(j + 1) {
        if next.is_group('[') || next.is_tok(Tok::Dot) || next.is_tok(Tok::Colon) {
            return None;
        }
    }
    let pushed = push_into(elements, type_name)?;
    Some((j, vec![array.clone(), Node::Group('[', pushed)]))
}

/// The elements of an `ARRAY[...]` with the cast to `type_name` pushed in: each element `e`
/// becomes `(e)::type_name`; a nested `ARRAY[...]` (a multidimensional constructor) gets the
/// cast pushed into its own elements. `None` unless the text shows what the parser will do:
/// a nested constructor must have only nested constructors beside it (other array-valued
/// elements would be cast to the array type instead), and a flat one must have at least one
/// element that is evidently a scalar ([`evidently_scalar`]), so that none is an array (the
/// elements of one constructor all have one type).
fn push_into<'a>(elements: &[Node<'a>], type_name: &[Node<'a>]) -> Option<Vec<Node<'a>>> {
    let parts = split_at_commas(elements);
    let constructors = parts.iter().filter(|p| as_constructor(p).is_some()).count();
    if constructors > 0 && constructors < parts.len() {
        return None;
    }
    if constructors == 0 && !parts.iter().any(|p| evidently_scalar(p)) {
        return None;
    }
    let mut out = Vec::with_capacity(elements.len() * 2);
    for (n, part) in parts.iter().enumerate() {
        if n > 0 {
            out.push(Node::Token(Tok::Comma, ","));
        }
        let first = part.iter().position(|x| !x.is_space())?;
        let last = part.iter().rposition(|x| !x.is_space())?;
        out.extend(part[..first].iter().cloned());
        if let Some((array, inner)) = as_constructor(&part[first..=last]) {
            out.push(array.clone());
            out.push(Node::Group('[', push_into(inner, type_name)?));
        } else {
            out.push(Node::Group('(', part[first..=last].to_vec()));
            out.push(Node::Token(Tok::Colon, ":"));
            out.push(Node::Token(Tok::Colon, ":"));
            out.extend(type_name.iter().cloned());
        }
        out.extend(part[last + 1..].iter().cloned());
    }
    Some(out)
}

/// The items between the top-level commas.
fn split_at_commas<'n, 'a>(items: &'n [Node<'a>]) -> Vec<&'n [Node<'a>]> {
    items.split(|x| x.is_tok(Tok::Comma)).collect()
}

/// `ARRAY[...]` (whitespace around it allowed): the `ARRAY` token and the elements.
fn as_constructor<'n, 'a>(part: &'n [Node<'a>]) -> Option<(&'n Node<'a>, &'n [Node<'a>])> {
    let idx = significant(part);
    match idx.as_slice() {
        [a, b] => match (&part[*a], &part[*b]) {
            (array @ Node::Token(Tok::Word, "ARRAY"), Node::Group('[', inner)) => {
                Some((array, inner.as_slice()))
            }
            _ => None,
        },
        _ => None,
    }
}

/// Built-in scalar types as `format_type` names them (without a modifier): a constant or a
/// cast to one of these is certainly not an array. A user type could be a domain over an
/// array, so it is no evidence.
const SCALAR_TYPES: &[&str] = &[
    "bigint",
    "bit",
    "bit varying",
    "boolean",
    "bytea",
    "character",
    "character varying",
    "cidr",
    "date",
    "double precision",
    "inet",
    "integer",
    "interval",
    "json",
    "jsonb",
    "macaddr",
    "macaddr8",
    "money",
    "name",
    "numeric",
    "oid",
    "real",
    "smallint",
    "text",
    "time with time zone",
    "time without time zone",
    "timestamp with time zone",
    "timestamp without time zone",
    "uuid",
    "xml",
    "\"char\"",
];

/// An element that is certainly a scalar: a numeric literal, `true`, `false`, or a literal,
/// `NULL`, number or parenthesised expression cast to a built-in scalar type.
fn evidently_scalar(part: &[Node<'_>]) -> bool {
    let idx = significant(part);
    let nodes: Vec<&Node<'_>> = idx.iter().map(|&i| &part[i]).collect();
    match nodes.as_slice() {
        [Node::Token(Tok::Number, _)] => true,
        [Node::Token(Tok::Word, "true" | "false")] => true,
        [atom, colon1, colon2, type_name @ ..]
            if colon1.is(Tok::Colon, ":") && colon2.is(Tok::Colon, ":") =>
        {
            let atom_ok = matches!(
                atom,
                Node::Token(Tok::Str | Tok::Number, _)
                    | Node::Token(Tok::Word, "NULL")
                    | Node::Group('(', _)
            );
            // The type name: words, with one modifier group (`character varying(10)`,
            // `time(3) with time zone`), never `[]`.
            let mut words = Vec::new();
            let mut modifiers = 0;
            for node in type_name {
                match node {
                    Node::Token(Tok::Word | Tok::Quoted, w) => words.push(*w),
                    Node::Group('(', _) => modifiers += 1,
                    _ => return false,
                }
            }
            // The colons and the atom must touch (`'a'::text`), as the server writes them.
            let touching = idx.len() >= 3 && idx[1] == idx[0] + 1 && idx[2] == idx[1] + 1;
            atom_ok
                && touching
                && modifiers <= 1
                && SCALAR_TYPES.contains(&words.join(" ").as_str())
        }
        _ => false,
    }
}

/// Form 2: in a parenthesised `AND` list whose first operand is itself a parenthesised `AND`
/// list, that operand's parentheses go (likewise `OR`), as the grammar flattens it. Says
/// whether it changed anything.
fn flatten_first_operand(items: &mut Vec<Node<'_>>) -> bool {
    let Some(op) = bool_list(items) else {
        return false;
    };
    let Some(first) = items.iter().position(|x| !x.is_space()) else {
        return false;
    };
    // The first operand is one group, followed by the first `AND`.
    let Node::Group('(', inner) = &items[first] else {
        return false;
    };
    let next = items[first + 1..].iter().find(|x| !x.is_space());
    if !matches!(next, Some(n) if n.is(Tok::Word, op)) || bool_list(inner) != Some(op) {
        return false;
    }
    let inner = inner.clone();
    items.splice(first..=first, inner);
    true
}

/// `Some("AND")` when the items are operands separated by `AND` and by nothing else at
/// their level (likewise `OR`); `None` for anything else. A `BETWEEN` (a window frame's
/// `ROWS BETWEEN ... AND ...`) or a comma at this level means it is not a boolean list.
fn bool_list(items: &[Node<'_>]) -> Option<&'static str> {
    let mut op = None;
    let mut operand = false;
    for item in items {
        match item {
            Node::Token(Tok::Space, _) => {}
            Node::Token(Tok::Word, word @ ("AND" | "OR")) => {
                let word: &'static str = if *word == "AND" { "AND" } else { "OR" };
                if !operand || op.is_some_and(|o| o != word) {
                    return None;
                }
                op = Some(word);
                operand = false;
            }
            Node::Token(Tok::Word, "BETWEEN") | Node::Token(Tok::Comma, _) => return None,
            _ => operand = true,
        }
    }
    if operand {
        op
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `before` (as recorded) canonicalises to `after` (as restored), and `after` is settled.
    #[track_caller]
    fn settles(before: &str, after: &str) {
        assert_eq!(canonical(before), after, "canonical form of {before:?}");
        assert_eq!(canonical(after), after, "{after:?} is not settled");
        assert!(equivalent("constraint", before, after));
    }

    /// Two definitions that mean different things stay different.
    #[track_caller]
    fn differ(a: &str, b: &str) {
        assert_ne!(canonical(a), canonical(b), "{a:?} and {b:?} were merged");
        assert!(!equivalent("constraint", a, b));
    }

    /// Text that is left exactly as it is.
    #[track_caller]
    fn untouched(text: &str) {
        assert_eq!(canonical(text), text);
        assert!(
            matches!(canonical(text), Cow::Borrowed(_)),
            "{text:?} was copied"
        );
    }

    const IN_VARCHAR: &str = "CHECK (((v)::text = ANY ((ARRAY['a'::character varying, 'b'::character varying])::text[])))";
    const IN_VARCHAR_RESTORED: &str = "CHECK (((v)::text = ANY (ARRAY[('a'::character varying)::text, ('b'::character varying)::text])))";

    #[test]
    fn an_in_list_of_varchar_settles_to_per_element_casts() {
        settles(IN_VARCHAR, IN_VARCHAR_RESTORED);
        settles(
            "CHECK (((v)::text <> ALL ((ARRAY['a'::character varying, 'b'::character varying])::text[]))) NOT VALID",
            "CHECK (((v)::text <> ALL (ARRAY[('a'::character varying)::text, ('b'::character varying)::text]))) NOT VALID",
        );
        settles(
            "CHECK (((v)::text = ANY ((ARRAY['a'::character varying, NULL::character varying])::text[])))",
            "CHECK (((v)::text = ANY (ARRAY[('a'::character varying)::text, (NULL::character varying)::text])))",
        );
    }

    #[test]
    fn numbers_and_nested_casts_settle() {
        settles(
            "CHECK ((nu = ANY ((ARRAY[1, 2])::numeric[])))",
            "CHECK ((nu = ANY (ARRAY[(1)::numeric, (2)::numeric])))",
        );
        // Two restores in PostgreSQL: the outer cast reaches the elements on the second.
        settles(
            "CHECK ((nu = ANY (((ARRAY[(1)::bigint, (2)::bigint])::integer[])::numeric[])))",
            "CHECK ((nu = ANY (ARRAY[(((1)::bigint)::integer)::numeric, (((2)::bigint)::integer)::numeric])))",
        );
        assert!(equivalent(
            "constraint",
            "CHECK ((nu = ANY (((ARRAY[(1)::bigint, (2)::bigint])::integer[])::numeric[])))",
            "CHECK ((nu = ANY ((ARRAY[((1)::bigint)::integer, ((2)::bigint)::integer])::numeric[])))",
        ));
        settles(
            "HAVING (array_agg(t.n) && (ARRAY[(1)::bigint, (2)::bigint])::integer[]);",
            "HAVING (array_agg(t.n) && ARRAY[((1)::bigint)::integer, ((2)::bigint)::integer]);",
        );
    }

    #[test]
    fn a_multidimensional_constructor_takes_the_cast_into_its_innermost_elements() {
        settles(
            "CHECK ((nu = ANY ((ARRAY[ARRAY[1, 2], ARRAY[3, 4]])::numeric[])))",
            "CHECK ((nu = ANY (ARRAY[ARRAY[(1)::numeric, (2)::numeric], ARRAY[(3)::numeric, (4)::numeric]])))",
        );
    }

    #[test]
    fn case_coalesce_and_defaults_settle() {
        settles(
            "CHECK ((\nCASE\n    WHEN (n > 0) THEN (ARRAY['a'::text])::character varying[]\n    ELSE va5\nEND <> '{}'::character varying[]))",
            "CHECK ((\nCASE\n    WHEN (n > 0) THEN ARRAY[('a'::text)::character varying]\n    ELSE va5\nEND <> '{}'::character varying[]))",
        );
        settles(
            "CHECK ((COALESCE(ba, (ARRAY[1, 2])::bigint[]) <> '{}'::bigint[]))",
            "CHECK ((COALESCE(ba, ARRAY[(1)::bigint, (2)::bigint]) <> '{}'::bigint[]))",
        );
        settles(
            "boolean DEFAULT (('a'::character varying)::text = ANY ((ARRAY['a'::character varying, 'b'::character varying])::text[]))",
            "boolean DEFAULT (('a'::character varying)::text = ANY (ARRAY[('a'::character varying)::text, ('b'::character varying)::text]))",
        );
        settles(
            "CHECK ((hs OPERATOR(public.?&) (ARRAY[v, 'k'::character varying])::text[]))",
            "CHECK ((hs OPERATOR(public.?&) ARRAY[(v)::text, ('k'::character varying)::text]))",
        );
        untouched("SELECT f(x) (ARRAY['k'::character varying])::text[]");
        settles(
            "SELECT format('%s'::text, VARIADIC (ARRAY['a'::character varying])::text[]) AS f",
            "SELECT format('%s'::text, VARIADIC ARRAY[('a'::character varying)::text]) AS f",
        );
    }

    #[test]
    fn quotes_and_brackets_inside_literals_are_opaque() {
        settles(
            "CHECK (((v)::text = ANY ((ARRAY['it''s'::character varying, 'ARRAY['::character varying, ') AND ('::character varying])::text[])))",
            "CHECK (((v)::text = ANY (ARRAY[('it''s'::character varying)::text, ('ARRAY['::character varying)::text, (') AND ('::character varying)::text])))",
        );
        settles(
            r#"CHECK ((((v)::text COLLATE "C") = ANY ((ARRAY['a"b'::character varying, 'c\d'::character varying])::text[])))"#,
            r#"CHECK ((((v)::text COLLATE "C") = ANY (ARRAY[('a"b'::character varying)::text, ('c\d'::character varying)::text])))"#,
        );
    }

    #[test]
    fn a_between_inside_an_and_is_flattened() {
        settles(
            "CHECK ((((n >= 1) AND (n <= 9)) AND (n <> 5)))",
            "CHECK (((n >= 1) AND (n <= 9) AND (n <> 5)))",
        );
        settles(
            "CREATE INDEX i ON public.t USING btree (id) WHERE (((n >= 1) AND (n <= 9)) AND (n <> 5))",
            "CREATE INDEX i ON public.t USING btree (id) WHERE ((n >= 1) AND (n <= 9) AND (n <> 5))",
        );
        settles(
            "boolean DEFAULT (((1 >= 0) AND (1 <= 2)) AND true)",
            "boolean DEFAULT ((1 >= 0) AND (1 <= 2) AND true)",
        );
        settles(
            "CHECK (\nCASE\n    WHEN (((n >= 1) AND (n <= 9)) AND b) THEN true\n    ELSE false\nEND)",
            "CHECK (\nCASE\n    WHEN ((n >= 1) AND (n <= 9) AND b) THEN true\n    ELSE false\nEND)",
        );
    }

    #[test]
    fn only_the_first_operand_is_flattened_as_the_grammar_does() {
        settles(
            "CHECK ((((n >= 1) AND (n <= 9)) AND ((big >= 2) AND (big <= 8))))",
            "CHECK (((n >= 1) AND (n <= 9) AND ((big >= 2) AND (big <= 8))))",
        );
        untouched("CHECK (((n <> 5) AND ((n >= 1) AND (n <= 9))))");
        untouched("CHECK (((n IS NULL) OR ((n >= 1) AND (n <= 9))))");
        // A regrouping the grammar would not undo is reported, though it means the same.
        assert!(!equivalent(
            "constraint",
            "CHECK (((a AND b) AND c))",
            "CHECK ((a AND (b AND c)))"
        ));
        settles(
            "WHERE ((((a = 1) AND (b = 2)) AND (c = 3)) AND (d = 4))",
            "WHERE ((a = 1) AND (b = 2) AND (c = 3) AND (d = 4))",
        );
    }

    #[test]
    fn or_lists_flatten_but_never_into_an_and() {
        settles(
            "CHECK ((((n < 1) OR (n > 9)) OR (n IS NULL)))",
            "CHECK (((n < 1) OR (n > 9) OR (n IS NULL)))",
        );
        settles(
            "CHECK (((((n = 1) AND (v = 'a'::text)) OR ((n = 2) AND (v = 'b'::text))) OR b))",
            "CHECK ((((n = 1) AND (v = 'a'::text)) OR ((n = 2) AND (v = 'b'::text)) OR b))",
        );
        untouched("CHECK ((((n < 1) OR (n > 9)) AND (n <> 5)))");
        untouched("CHECK ((((n >= 1) AND (n <= 9)) OR (n = 5)))");
        settles(
            "CHECK (((((n < 1) OR (n > 9)) OR (n = 5)) AND (n <> 7)))",
            "CHECK ((((n < 1) OR (n > 9) OR (n = 5)) AND (n <> 7)))",
        );
    }

    #[test]
    fn both_forms_in_views_and_function_bodies() {
        settles(
            "SELECT t.v,\n    count(*) FILTER (WHERE (((t.n >= 1) AND (t.n <= 9)) AND (t.n <> 5))) AS c\n   FROM public.t\n  GROUP BY t.v\n HAVING ((count(*) > 1) AND ((t.v)::text = ANY ((ARRAY['a'::character varying, 'b'::character varying])::text[])));",
            "SELECT t.v,\n    count(*) FILTER (WHERE ((t.n >= 1) AND (t.n <= 9) AND (t.n <> 5))) AS c\n   FROM public.t\n  GROUP BY t.v\n HAVING ((count(*) > 1) AND ((t.v)::text = ANY (ARRAY[('a'::character varying)::text, ('b'::character varying)::text])));",
        );
        settles(
            "CREATE OR REPLACE FUNCTION public.f(r public.x)\n RETURNS character varying[]\n LANGUAGE sql\nRETURN CASE WHEN ((r).n > 0) THEN (ARRAY['a'::text])::character varying[] ELSE (r).va5 END\n",
            "CREATE OR REPLACE FUNCTION public.f(r public.x)\n RETURNS character varying[]\n LANGUAGE sql\nRETURN CASE WHEN ((r).n > 0) THEN ARRAY[('a'::text)::character varying] ELSE (r).va5 END\n",
        );
    }

    #[test]
    fn a_changed_list_or_bound_is_still_different() {
        let changed = IN_VARCHAR.replace("'b'", "'c'");
        differ(IN_VARCHAR, &changed);
        differ(IN_VARCHAR_RESTORED, &changed);
        differ(
            "CHECK ((((n >= 1) AND (n <= 9)) AND (n <> 5)))",
            "CHECK (((n >= 1) AND (n <= 8) AND (n <> 5)))",
        );
        differ(
            "CHECK ((((n >= 1) AND (n <= 9)) AND (n <> 5)))",
            "CHECK ((((n >= 1) AND (n <= 9)) OR (n <> 5)))",
        );
        // ANY versus ALL, = versus <>, another cast target.
        differ(IN_VARCHAR, &IN_VARCHAR_RESTORED.replace("ANY", "ALL"));
        differ(
            IN_VARCHAR,
            &IN_VARCHAR_RESTORED.replace(")::text,", ")::name,"),
        );
        // A cast of the array is not a cast of one element.
        differ(
            "SELECT (ARRAY[(1)::bigint])::integer[]",
            "SELECT ARRAY[(1)::bigint]",
        );
    }

    #[test]
    fn casts_whose_elements_could_be_arrays_are_left_alone() {
        // `ARRAY[c]` is two-dimensional when c is an array: the parser casts c to text[].
        untouched("SELECT (ARRAY[t.c])::text[] AS a");
        untouched("SELECT (ARRAY[t.c, t.d])::text[] AS a");
        // A user type may be a domain over an array: no evidence.
        untouched("SELECT (ARRAY['{1}'::public.ints])::text[] AS a");
        // Nested constructors beside other arrays.
        untouched("SELECT (ARRAY[ARRAY[1], t.c])::numeric[] AS a");
        // One scalar element shows what all of them are.
        settles(
            "SELECT (ARRAY[t.v, 'b'::character varying])::text[] AS a",
            "SELECT ARRAY[(t.v)::text, ('b'::character varying)::text] AS a",
        );
    }

    #[test]
    fn what_is_not_an_expression_cast_is_left_alone() {
        // A type with a modifier: the server renders a constant of the same type differently.
        untouched("SELECT (ARRAY['a'::character varying])::character varying(5)[] AS a");
        // ANY's own parenthesis, a function's, a subscript or field after the cast.
        untouched("CHECK ((x = ANY (ARRAY[1, 2])::numeric[]))");
        untouched("SELECT f(ARRAY[1, 2])::numeric[]");
        untouched("SELECT (ARRAY[1, 2])::numeric[][1]");
        untouched("SELECT (ARRAY[1, 2])::numeric[]::text");
        // No type, or not an array type.
        untouched("SELECT (ARRAY[1, 2])::public.numbers");
        // Already what PostgreSQL renders; an explicit element cast; an empty array.
        untouched("SELECT ARRAY[(1)::numeric, (2)::numeric], ARRAY[]::text[], '{a,b}'::character varying[]");
    }

    #[test]
    fn window_frames_and_argument_lists_are_not_boolean_lists() {
        untouched(
            "SELECT sum(t.n) OVER (ORDER BY t.id ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS s",
        );
        untouched("SELECT count(*) OVER (RANGE BETWEEN (x) PRECEDING AND CURRENT ROW) AS c");
        untouched("SELECT f((a AND b), c AND d)");
        untouched("CHECK (((a AND b)))");
    }

    #[test]
    fn function_bodies_comments_and_unbalanced_text_are_opaque() {
        let body = "CREATE OR REPLACE FUNCTION public.f()\n RETURNS integer\n LANGUAGE plpgsql\nAS $function$ BEGIN IF ((a AND b) AND c) AND x = ANY ((ARRAY[1, 2])::numeric[]) THEN RETURN 1; END IF; END $function$\n";
        untouched(body);
        untouched("CHECK (((a AND b) AND c)) -- ((x AND y) AND z)");
        untouched("CHECK (((a AND b) AND c) /* c */)");
        untouched("CHECK (((a AND b) AND c)");
        untouched("CHECK ((a AND b) AND c))");
        untouched("CHECK ((a AND b] AND c)");
        untouched("CHECK ((v = 'unterminated");
        untouched("");
        // A dollar-quoted literal inside an expression is one token too.
        settles(
            "CHECK (((($$x$$ = a) AND b) AND c))",
            "CHECK ((($$x$$ = a) AND b AND c))",
        );
    }

    #[test]
    fn kinds_that_are_not_sql_compare_as_they_are() {
        let (a, b) = (
            "CHECK ((((n >= 1) AND (n <= 9)) AND (n <> 5)))",
            "CHECK (((n >= 1) AND (n <= 9) AND (n <> 5)))",
        );
        for kind in [
            "comment",
            "owner",
            "privileges",
            "enum",
            "aggregate",
            "extension",
        ] {
            assert!(!equivalent(kind, a, b), "{kind}");
            assert!(equivalent(kind, a, a), "{kind}");
        }
        for kind in RENDERED {
            assert!(equivalent(kind, a, b), "{kind}");
        }
    }

    #[test]
    fn split_sets_equivalent_renderings_aside_and_keeps_all_drift() {
        use crate::snapshot::{diff, Entry};
        let e = |kind: &str, name: &str, definition: &str| Entry {
            kind: kind.into(),
            parent: "public.t".into(),
            name: name.into(),
            definition: definition.into(),
        };
        let recorded = vec![
            e(
                "constraint",
                "t_n",
                "CHECK ((((n >= 1) AND (n <= 9)) AND (n <> 5)))",
            ),
            e("constraint", "t_v", IN_VARCHAR),
            e("constraint", "t_w", IN_VARCHAR),
            e("comment", "c", "((a AND b) AND c)"),
        ];
        let live = vec![
            e(
                "constraint",
                "t_n",
                "CHECK (((n >= 1) AND (n <= 9) AND (n <> 5)))",
            ),
            e("constraint", "t_v", IN_VARCHAR_RESTORED),
            e(
                "constraint",
                "t_w",
                &IN_VARCHAR_RESTORED.replace("'b'", "'c'"),
            ),
            e("comment", "c", "(a AND b AND c)"),
            e("constraint", "t_x", "CHECK ((x > 0))"),
        ];
        let (drift, renderings) = split(diff(&recorded, &live));
        let names = |list: &[Drift]| list.iter().map(|d| d.object.clone()).collect::<Vec<_>>();
        assert_eq!(names(&renderings), ["public.t.t_n", "public.t.t_v"]);
        assert_eq!(
            names(&drift),
            ["public.t.c", "public.t.t_w", "public.t.t_x"],
            "a changed list, a comment and an added constraint stay drift"
        );
        assert_eq!(split(Vec::new()), (Vec::new(), Vec::new()));
    }

    #[test]
    fn canonical_forms_are_settled() {
        for text in [
            IN_VARCHAR,
            "CHECK ((nu = ANY (((ARRAY[(1)::bigint, (2)::bigint])::integer[])::numeric[])))",
            "WHERE ((((a = 1) AND (b = 2)) AND (c = 3)) AND (d = 4))",
            "CHECK ((nu = ANY ((ARRAY[ARRAY[1, 2], ARRAY[3, 4]])::numeric[])))",
        ] {
            let once = canonical(text).into_owned();
            assert_eq!(canonical(&once), once);
        }
    }
}
