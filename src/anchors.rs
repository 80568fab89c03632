//! The marker line Python 3.11+ tracebacks draw under a frame's source line: `^` under the
//! instruction's columns, and for binary operators, subscripts and (3.13+) calls the `~~~^^^~~~`
//! anchors that single out the operator or the brackets.
//!
//! Mirrors `Lib/traceback.py` of each version family, which decides from the segment's syntax
//! tree (`ast.parse`): `StackSummary.format_frame_summary` and
//! `_extract_caret_anchors_from_line_segment` as in 3.11.7+/3.12 ([`Rules::V311`]) and in 3.13
//! ([`Rules::V313`], which also hides the markers of `x = f(...)` and `return f(...)` lines,
//! `_should_show_carets`, and 3.14 alike); 3.15 draws as 3.13 with another character width
//! ([`Rules::V315`]).
//! The syntax tree is a small Python expression parser ([`parse`]) that knows operator
//! precedence and where sub-expressions start and end; what it cannot parse gets no anchors
//! (plain `^`). An instruction spanning several lines is marked on its first line only, all `^`
//! (3.13+ would print every line of it).

use unicode_width::UnicodeWidthChar;

/// Which version's `traceback.py` the markers follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rules {
    /// 3.11 (3.11.7's rules; 3.11.2 and older differ in corner cases) and 3.12.
    V311,
    /// 3.13, 3.14: calls get anchors too; segments are parsed inside parentheses.
    V313,
    /// 3.15+: 3.13's rules; combining and format characters are zero columns wide.
    V315,
}

impl Rules {
    /// The rules for a CPython version string (`3.12.1`, `3.13`); `None` before 3.11, which
    /// records no columns.
    pub fn for_version(version: &str) -> Option<Rules> {
        let mut parts = version.split('.');
        let major: u32 = parts.next()?.parse().ok()?;
        let minor: u32 = parts
            .next()?
            .trim_end_matches(|c: char| !c.is_ascii_digit())
            .parse()
            .ok()?;
        match (major, minor) {
            (3, 11 | 12) => Some(Rules::V311),
            (3, 13 | 14) => Some(Rules::V313),
            (3, 15..) => Some(Rules::V315),
            _ => None,
        }
    }

    /// `_display_width` of one character.
    fn width(self, c: char) -> usize {
        match self {
            // 3.11-3.13: east_asian_width W or F is two columns, everything else one.
            Rules::V311 | Rules::V313 => {
                if c.width() == Some(2) {
                    2
                } else {
                    1
                }
            }
            // 3.15: `_str_width` (ASCII 1, combining and Cf 0, wide 2).
            Rules::V315 => {
                if c.is_ascii() {
                    1
                } else {
                    c.width().unwrap_or(1)
                }
            }
        }
    }

    fn display_width(self, chars: &[char], upto: usize) -> usize {
        chars.iter().take(upto).map(|&c| self.width(c)).sum()
    }
}

/// The marker line for an instruction on one line, from byte `column` to byte `end_column` of
/// `raw` (the line as the file has it, without its newline), relative to `raw.trim()` as the
/// traceback prints it; `None` where Python prints none.
pub fn single_line(rules: Rules, raw: &str, column: usize, end_column: usize) -> Option<String> {
    let text = match rules {
        Rules::V311 => format_311(raw, column, end_column),
        Rules::V313 | Rules::V315 => format_313(rules, raw, column, end_column),
    }?;
    text.contains(['^', '~']).then_some(text)
}

/// `_byte_offset_to_character_offset`: characters in the first `offset` bytes (a character cut
/// in the middle decodes to one replacement character).
fn char_offset(text: &str, offset: usize) -> usize {
    text.char_indices()
        .take_while(|&(at, _)| at < offset)
        .count()
}

/// `text[start:end]` as Python slices: empty when out of range or reversed.
fn slice(text: &[char], start: usize, end: usize) -> &[char] {
    let end = end.min(text.len());
    text.get(start.min(end)..end).unwrap_or(&[])
}

/// `str.isspace()` for the characters source lines hold.
fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// 3.11.7/3.12 `format_frame_summary` for a single-line instruction.
fn format_311(raw: &str, column: usize, end_column: usize) -> Option<String> {
    let rules = Rules::V311;
    // `_original_line`: linecache's line, newline included.
    let line = format!("{raw}\n");
    let chars: Vec<char> = line.chars().collect();
    let stripped_len = raw.trim_matches(is_space).chars().count();
    let stripped_characters = chars.len().saturating_sub(stripped_len);
    let start = char_offset(&line, column);
    let end = char_offset(&line, end_column);
    let segment: String = slice(&chars, start, end).iter().collect();
    let anchors = anchors_311(&segment);
    let wide_anchors = anchors.is_some_and(|(left, right)| right > left);
    if !(end.saturating_sub(start) < stripped_len || wide_anchors) {
        return None;
    }
    let dp_start = rules.display_width(&chars, start) + 1;
    let dp_end = rules.display_width(&chars, end) + 1;
    let mut out = " ".repeat(dp_start.saturating_sub(stripped_characters));
    match anchors {
        Some((left, right)) => {
            let segment: Vec<char> = segment.chars().collect();
            let dp_left = rules.display_width(&segment, left);
            let dp_right = rules.display_width(&segment, right);
            out.push_str(&"~".repeat(dp_left));
            out.push_str(&"^".repeat(dp_right.saturating_sub(dp_left)));
            let rest = dp_end.saturating_sub(dp_start).saturating_sub(dp_right);
            out.push_str(&"~".repeat(rest));
        }
        None => out.push_str(&"^".repeat(dp_end.saturating_sub(dp_start))),
    }
    Some(out)
}

/// 3.11.7/3.12 `_extract_caret_anchors_from_line_segment`: (left end, right start) in
/// characters of `segment`. Its offset arithmetic mixes bytes and characters as CPython's does.
fn anchors_311(segment: &str) -> Option<(usize, usize)> {
    let expr = parse(segment)?;
    let chars: Vec<char> = segment.chars().collect();
    let normalize = |offset: usize| char_offset(segment, offset);
    match expr.node {
        Node::BinOp {
            left_end,
            right_start,
        } => {
            let operator: &[char] = chars
                .get(normalize(left_end)..normalize(right_start))
                .unwrap_or(&[]);
            let offset = operator.iter().take_while(|&&c| is_space(c)).count();
            let mut left = left_end + offset;
            let mut right = left + 1;
            if operator.get(offset + 1).is_some_and(|&c| !is_space(c)) {
                right += 1;
            }
            while chars
                .get(left)
                .is_some_and(|&c| is_space(c) || c == ')' || c == '#')
            {
                left += 1;
                right += 1;
            }
            Some((normalize(left), normalize(right)))
        }
        Node::Subscript { value_end } => {
            let mut left = normalize(value_end);
            while chars.get(left).is_some_and(|&c| c != '[') {
                left += 1;
            }
            // `slice.end_col_offset + 1`, then on to the closing `]` and past it: the end of a
            // subscript, which is the end of the segment.
            Some((left, chars.len()))
        }
        _ => None,
    }
}

/// 3.13+ `format_frame_summary` for a single-line instruction.
fn format_313(rules: Rules, raw: &str, column: usize, end_column: usize) -> Option<String> {
    // `_dedented_lines`: textwrap.dedent of the one line drops its leading blanks and tabs.
    let dedented = raw.trim_start_matches([' ', '\t']);
    if dedented.trim_matches(is_space).is_empty() {
        return None;
    }
    let dedent = raw.chars().count() - dedented.chars().count();
    let chars: Vec<char> = dedented.chars().collect();
    let start = char_offset(raw, column).saturating_sub(dedent);
    let end = char_offset(raw, end_column).saturating_sub(dedent);
    let dp_start = rules.display_width(&chars, start);
    let dp_end = rules.display_width(&chars, end);
    let segment: String = slice(&chars, start, end).iter().collect();
    let anchors = anchors_313(&segment);
    if !should_show_carets(dedented, &chars, start, end, anchors.is_some()) {
        return None;
    }
    let anchors = anchors.map(|(left, right)| {
        (
            rules.display_width(&chars, left + start),
            rules.display_width(&chars, right + start),
        )
    });
    let spaces = chars.iter().take_while(|&&c| is_space(c)).count();
    let out = (0..dp_end)
        .map(|col| {
            if col < spaces || col < dp_start {
                ' '
            } else if anchors.is_some_and(|(left, right)| col >= left && col < right) {
                '^'
            } else if anchors.is_some() {
                '~'
            } else {
                '^'
            }
        })
        .collect();
    Some(out)
}

/// 3.13 `_should_show_carets` for one line: not under `x = ...(...)` or `return f(...)` (a
/// plain name called) when the call is the whole instruction; else when there are anchors or the
/// instruction is not the whole line.
fn should_show_carets(
    dedented: &str,
    chars: &[char],
    start: usize,
    end: usize,
    anchors: bool,
) -> bool {
    if let Some((call_start, call_end)) = assigned_or_returned_call(dedented) {
        // `col_offset == start_offset`: bytes against characters, as CPython compares them.
        if call_start == start && call_end == end {
            return false;
        }
    }
    if anchors {
        return true;
    }
    let before = chars.get(..start.min(chars.len())).unwrap_or(&[]);
    let after = chars.get(end.min(chars.len())..).unwrap_or(&[]);
    before.iter().any(|&c| !is_space(c)) || after.iter().any(|&c| !is_space(c))
}

/// For a line that is `return NAME(...)` or `NAME = ...(...)`: the call's byte range.
fn assigned_or_returned_call(line: &str) -> Option<(usize, usize)> {
    let tokens = tokenize(line)?;
    let first = tokens.first()?;
    let returned = first.is_keyword("return");
    let value_at = if returned {
        1
    } else if first.kind == Kind::Name
        && !is_keyword(first.text)
        && tokens.get(1).is_some_and(|t| t.is_op("="))
    {
        2
    } else {
        return None;
    };
    let mut parser = Parser {
        tokens: &tokens,
        at: value_at,
    };
    let value = parser.expression()?;
    if parser.at != tokens.len() {
        return None;
    }
    match value.node {
        Node::Call { func_is_name } if func_is_name || !returned => Some(value.inner),
        _ => None,
    }
}

/// 3.13+ `_extract_caret_anchors_from_line_segment` for a one-line segment: (left end, right
/// start) in characters of `segment`. A position past the end of the line makes CPython's
/// helpers fail (no anchors), as does a `#` or `\` on the way.
fn anchors_313(segment: &str) -> Option<(usize, usize)> {
    let expr = parse(segment)?;
    let chars: Vec<char> = segment.chars().collect();
    let normalize = |offset: usize| char_offset(segment, offset);
    let valid = |col: usize| (col < chars.len()).then_some(col);
    let until = |mut col: usize, stop: &dyn Fn(char) -> bool| -> Option<usize> {
        loop {
            let c = *chars.get(col)?;
            if c == '\\' || c == '#' {
                return None;
            }
            if stop(c) {
                return Some(col);
            }
            col = valid(col + 1)?;
        }
    };
    match expr.node {
        Node::BinOp {
            left_end,
            right_start,
        } => {
            let col = valid(normalize(left_end))?;
            let col = until(col, &|c| !is_space(c) && c != ')')?;
            let mut right = col + 1;
            if right < chars.len()
                && right < normalize(right_start)
                && chars
                    .get(right)
                    .is_some_and(|&c| !is_space(c) && c != '\\' && c != '#')
            {
                right += 1;
            }
            Some((col, right))
        }
        Node::Subscript { value_end } => {
            let col = until(valid(normalize(value_end))?, &|c| c == '[')?;
            Some((col, normalize(expr.inner.1)))
        }
        Node::Call { .. } => {
            let col = until(valid(normalize(expr.func_end))?, &|c| c == '(')?;
            Some((col, normalize(expr.inner.1)))
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// A tokenizer and expression parser for one line of Python: enough of the grammar to find the
// outermost node of an expression and where its operands start and end (byte offsets; a
// parenthesized operand's range excludes its parentheses, as `ast` records it).
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Name,
    Number,
    Str,
    Op,
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: Kind,
    text: &'a str,
    start: usize,
    end: usize,
}

impl Token<'_> {
    fn is_op(&self, op: &str) -> bool {
        self.kind == Kind::Op && self.text == op
    }
    fn is_keyword(&self, word: &str) -> bool {
        self.kind == Kind::Name && self.text == word
    }
}

const KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield",
];

fn is_keyword(word: &str) -> bool {
    KEYWORDS.contains(&word)
}

const OPERATORS: &[&str] = &[
    "**=", "//=", ">>=", "<<=", "...", "**", "//", "<<", ">>", "<=", ">=", "==", "!=", "->", ":=",
    "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "@=", "+", "-", "*", "/", "%", "@", "&", "|",
    "^", "~", "<", ">", "(", ")", "[", "]", "{", "}", ",", ":", ";", ".", "=",
];

/// At most this many tokens are read from one line.
const MAX_TOKENS: usize = 4096;

/// The tokens of one line, comments dropped; `None` for what one line of Python cannot hold.
fn tokenize(line: &str) -> Option<Vec<Token<'_>>> {
    let bytes = line.as_bytes();
    let mut tokens = Vec::new();
    let mut at = 0;
    while at < line.len() {
        if tokens.len() > MAX_TOKENS {
            return None;
        }
        // `at` is 0, just past an ASCII byte or a boundary `find` gave: a char boundary, and
        // any slip ends the tokenising (no markers), never a panic.
        let c = line.get(at..)?.chars().next()?;
        let start = at;
        if c == ' ' || c == '\t' || c == '\x0c' {
            at += 1;
            continue;
        }
        if c == '#' {
            break;
        }
        let kind = if c == '_' || c.is_alphabetic() {
            let rest = line.get(start..)?;
            let end = start
                + rest
                    .find(|c: char| !(c == '_' || c.is_alphanumeric()))
                    .unwrap_or(rest.len());
            let word = line.get(start..end)?;
            let quote = bytes.get(end).copied();
            if matches!(quote, Some(b'"' | b'\'')) && is_string_prefix(word) {
                let formatted = word.contains(['f', 'F', 't', 'T']);
                at = scan_string(line, end, formatted)?;
                Kind::Str
            } else {
                at = end;
                Kind::Name
            }
        } else if c.is_ascii_digit()
            || (c == '.' && bytes.get(at + 1).is_some_and(u8::is_ascii_digit))
        {
            at = scan_number(line, at);
            Kind::Number
        } else if c == '"' || c == '\'' {
            at = scan_string(line, at, false)?;
            Kind::Str
        } else {
            let rest = line.get(at..)?;
            let op = OPERATORS.iter().find(|op| rest.starts_with(**op))?;
            at += op.len();
            Kind::Op
        };
        tokens.push(Token {
            kind,
            text: line.get(start..at)?,
            start,
            end: at,
        });
    }
    Some(tokens)
}

fn is_string_prefix(word: &str) -> bool {
    let lower = word.to_ascii_lowercase();
    matches!(
        lower.as_str(),
        "r" | "u" | "b" | "f" | "t" | "br" | "rb" | "fr" | "rf" | "tr" | "rt"
    )
}

fn scan_number(line: &str, mut at: usize) -> usize {
    let bytes = line.as_bytes();
    let hex = line
        .get(at..)
        .is_some_and(|rest| rest.starts_with("0x") || rest.starts_with("0X"));
    while let Some(&b) = bytes.get(at) {
        let exponent_sign = (b == b'+' || b == b'-')
            && !hex
            && matches!(bytes.get(at.wrapping_sub(1)), Some(b'e' | b'E'));
        if !(b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || exponent_sign) {
            break;
        }
        at += 1;
    }
    at
}

/// The end of the string literal whose quote is at `at`; in an f-string, the replacement
/// fields (`{...}`, which may hold strings of their own) are skipped whole.
fn scan_string(line: &str, at: usize, formatted: bool) -> Option<usize> {
    let bytes = line.as_bytes();
    let quote = *bytes.get(at)?;
    let triple = bytes.get(at + 1) == Some(&quote) && bytes.get(at + 2) == Some(&quote);
    let mut i = at + if triple { 3 } else { 1 };
    if !triple && bytes.get(at + 1) == Some(&quote) {
        return Some(at + 2);
    }
    loop {
        let b = *bytes.get(i)?;
        if b == quote
            && (!triple || (bytes.get(i + 1) == Some(&quote) && bytes.get(i + 2) == Some(&quote)))
        {
            return Some(i + if triple { 3 } else { 1 });
        }
        match b {
            b'\\' => i += 2,
            b'\n' if !triple => return None,
            b'{' if formatted => {
                if bytes.get(i + 1) == Some(&b'{') {
                    i += 2;
                } else {
                    i = skip_field(line, i + 1)?;
                }
            }
            _ => i += 1,
        }
    }
}

/// Past the `}` that closes an f-string replacement field whose text starts at `at`.
fn skip_field(line: &str, mut at: usize) -> Option<usize> {
    let bytes = line.as_bytes();
    let mut depth = 0usize;
    loop {
        let b = *bytes.get(at)?;
        match b {
            b'"' | b'\'' => {
                at = scan_string(line, at, true)?;
                continue;
            }
            b'{' | b'[' | b'(' => depth += 1,
            b'}' if depth == 0 => return Some(at + 1),
            b'}' | b']' | b')' => depth = depth.checked_sub(1)?,
            _ => {}
        }
        at += 1;
    }
}

/// The outermost node of an expression, as far as the anchors need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    BinOp { left_end: usize, right_start: usize },
    Subscript { value_end: usize },
    Call { func_is_name: bool },
    Name,
    Other,
}

/// An expression's range with the parentheses around it (where a node containing it starts
/// or ends) and its own `inner` range (`col_offset`, `end_col_offset`: without them).
#[derive(Debug, Clone, Copy)]
struct Expr {
    node: Node,
    start: usize,
    end: usize,
    inner: (usize, usize),
    /// For a call: where its function ends.
    func_end: usize,
}

impl Expr {
    fn new(node: Node, start: usize, end: usize) -> Expr {
        Expr {
            node,
            start,
            end,
            inner: (start, end),
            func_end: 0,
        }
    }
}

/// The expression that is the whole of `segment`, or `None` if it is not exactly one
/// expression (a statement, a tuple without parentheses, or what this parser cannot read).
fn parse(segment: &str) -> Option<Expr> {
    let tokens = tokenize(segment)?;
    let mut parser = Parser {
        tokens: &tokens,
        at: 0,
    };
    let expr = parser.expression()?;
    (parser.at == tokens.len()).then_some(expr)
}

/// Binary operators by precedence, lowest first (`|` ... `*`); `**` is apart (right-associative).
const BINARY_LEVELS: &[&[&str]] = &[
    &["|"],
    &["^"],
    &["&"],
    &["<<", ">>"],
    &["+", "-"],
    &["*", "/", "//", "%", "@"],
];

const COMPARISONS: &[&str] = &["==", "!=", "<", "<=", ">", ">="];

/// Nesting of parentheses followed before giving up.
const MAX_DEPTH: usize = 64;

struct Parser<'t, 'a> {
    tokens: &'t [Token<'a>],
    at: usize,
}

impl<'a> Parser<'_, 'a> {
    fn peek(&self) -> Option<Token<'a>> {
        self.tokens.get(self.at).copied()
    }
    fn peek_op(&self, op: &str) -> bool {
        self.peek().is_some_and(|t| t.is_op(op))
    }
    fn peek_keyword(&self, word: &str) -> bool {
        self.peek().is_some_and(|t| t.is_keyword(word))
    }
    fn next(&mut self) -> Option<Token<'a>> {
        let token = self.peek()?;
        self.at += 1;
        Some(token)
    }

    /// `expression`: a conditional expression, a lambda, or a disjunction.
    fn expression(&mut self) -> Option<Expr> {
        self.expression_at(0)
    }

    fn expression_at(&mut self, depth: usize) -> Option<Expr> {
        if depth > MAX_DEPTH {
            return None;
        }
        if self.peek_keyword("lambda") {
            return self.lambda(depth);
        }
        let body = self.boolean(depth, 0)?;
        if self.peek_keyword("if") {
            self.at += 1;
            self.boolean(depth, 0)?;
            if !self.peek_keyword("else") {
                return None;
            }
            self.at += 1;
            let orelse = self.expression_at(depth + 1)?;
            return Some(Expr::new(Node::Other, body.start, orelse.end));
        }
        Some(body)
    }

    fn lambda(&mut self, depth: usize) -> Option<Expr> {
        let start = self.next()?.start;
        // The parameters, up to the `:` outside brackets.
        let mut nesting = 0usize;
        loop {
            let token = self.next()?;
            match token.text {
                "(" | "[" | "{" if token.kind == Kind::Op => nesting += 1,
                ")" | "]" | "}" if token.kind == Kind::Op => nesting = nesting.checked_sub(1)?,
                ":" if token.kind == Kind::Op && nesting == 0 => break,
                _ => {}
            }
        }
        let body = self.expression_at(depth + 1)?;
        Some(Expr::new(Node::Other, start, body.end))
    }

    /// `or` (level 0), `and` (1), `not` (2), comparisons (3).
    fn boolean(&mut self, depth: usize, level: u8) -> Option<Expr> {
        if depth > MAX_DEPTH {
            return None;
        }
        match level {
            0 | 1 => {
                let word = if level == 0 { "or" } else { "and" };
                let mut left = self.boolean(depth, level + 1)?;
                while self.peek_keyword(word) {
                    self.at += 1;
                    let right = self.boolean(depth, level + 1)?;
                    left = Expr::new(Node::Other, left.start, right.end);
                }
                Some(left)
            }
            2 => {
                if self.peek_keyword("not") {
                    let start = self.next()?.start;
                    let operand = self.boolean(depth + 1, 2)?;
                    return Some(Expr::new(Node::Other, start, operand.end));
                }
                self.boolean(depth, 3)
            }
            _ => {
                let mut left = self.binary(depth, 0)?;
                while let Some(token) = self.peek() {
                    if (token.kind == Kind::Op && COMPARISONS.contains(&token.text))
                        || token.is_keyword("in")
                    {
                        self.at += 1;
                    } else if token.is_keyword("not")
                        && self
                            .tokens
                            .get(self.at + 1)
                            .is_some_and(|t| t.is_keyword("in"))
                    {
                        self.at += 2;
                    } else if token.is_keyword("is") {
                        self.at += 1;
                        if self.peek_keyword("not") {
                            self.at += 1;
                        }
                    } else {
                        break;
                    }
                    let right = self.binary(depth, 0)?;
                    left = Expr::new(Node::Other, left.start, right.end);
                }
                Some(left)
            }
        }
    }

    /// Left-associative binary operators from `BINARY_LEVELS[level]` up.
    fn binary(&mut self, depth: usize, level: usize) -> Option<Expr> {
        let Some(operators) = BINARY_LEVELS.get(level) else {
            return self.factor(depth);
        };
        let mut left = self.binary(depth, level + 1)?;
        while self
            .peek()
            .is_some_and(|t| t.kind == Kind::Op && operators.contains(&t.text))
        {
            self.at += 1;
            let right = self.binary(depth, level + 1)?;
            left = Expr::new(
                Node::BinOp {
                    left_end: left.inner.1,
                    right_start: right.inner.0,
                },
                left.start,
                right.end,
            );
        }
        Some(left)
    }

    /// Unary `+`, `-`, `~`, then `**` (whose right operand is a factor).
    fn factor(&mut self, depth: usize) -> Option<Expr> {
        if depth > MAX_DEPTH {
            return None;
        }
        if self.peek_op("+") || self.peek_op("-") || self.peek_op("~") {
            let start = self.next()?.start;
            let operand = self.factor(depth + 1)?;
            return Some(Expr::new(Node::Other, start, operand.end));
        }
        let base = if self.peek_keyword("await") {
            let start = self.next()?.start;
            let operand = self.primary(depth)?;
            Expr::new(Node::Other, start, operand.end)
        } else {
            self.primary(depth)?
        };
        if self.peek_op("**") {
            self.at += 1;
            let exponent = self.factor(depth + 1)?;
            return Some(Expr::new(
                Node::BinOp {
                    left_end: base.inner.1,
                    right_start: exponent.inner.0,
                },
                base.start,
                exponent.end,
            ));
        }
        Some(base)
    }

    /// An atom and its trailers: `.name`, `(...)`, `[...]`.
    fn primary(&mut self, depth: usize) -> Option<Expr> {
        let mut expr = self.atom(depth)?;
        loop {
            if self.peek_op(".") {
                self.at += 1;
                let name = self.next()?;
                if name.kind != Kind::Name || is_keyword(name.text) {
                    return None;
                }
                expr = Expr::new(Node::Other, expr.start, name.end);
            } else if self.peek_op("(") {
                let end = self.skip_brackets()?;
                let func_is_name = expr.node == Node::Name;
                expr = Expr {
                    func_end: expr.inner.1,
                    ..Expr::new(Node::Call { func_is_name }, expr.start, end)
                };
            } else if self.peek_op("[") {
                let end = self.skip_brackets()?;
                expr = Expr::new(
                    Node::Subscript {
                        value_end: expr.inner.1,
                    },
                    expr.start,
                    end,
                );
            } else {
                return Some(expr);
            }
        }
    }

    fn atom(&mut self, depth: usize) -> Option<Expr> {
        let token = self.peek()?;
        match token.kind {
            Kind::Name if matches!(token.text, "True" | "False" | "None") => {
                self.at += 1;
                Some(Expr::new(Node::Other, token.start, token.end))
            }
            Kind::Name if is_keyword(token.text) => None,
            Kind::Name => {
                self.at += 1;
                Some(Expr::new(Node::Name, token.start, token.end))
            }
            Kind::Number => {
                self.at += 1;
                Some(Expr::new(Node::Other, token.start, token.end))
            }
            Kind::Str => {
                // Adjacent literals are one.
                let mut end = token.end;
                while let Some(next) = self.peek().filter(|t| t.kind == Kind::Str) {
                    end = next.end;
                    self.at += 1;
                }
                Some(Expr::new(Node::Other, token.start, end))
            }
            Kind::Op => match token.text {
                "..." => {
                    self.at += 1;
                    Some(Expr::new(Node::Other, token.start, token.end))
                }
                "[" | "{" => {
                    let end = self.skip_brackets()?;
                    Some(Expr::new(Node::Other, token.start, end))
                }
                "(" => self.parenthesized(depth),
                _ => None,
            },
        }
    }

    /// `( ... )`: the expression inside with its own range, or a tuple, generator or yield,
    /// whose range (as an operand) is the parentheses'.
    fn parenthesized(&mut self, depth: usize) -> Option<Expr> {
        let open = self.at;
        let start = self.tokens.get(open)?.start;
        self.at += 1;
        let whole = |parser: &mut Self| -> Option<Expr> {
            parser.at = open;
            let end = parser.skip_brackets()?;
            Some(Expr::new(Node::Other, start, end))
        };
        if self.peek_op(")") || self.peek_keyword("yield") || self.peek_op("*") {
            return whole(self);
        }
        let inner = if self
            .peek()
            .is_some_and(|t| t.kind == Kind::Name && !is_keyword(t.text))
            && self.tokens.get(self.at + 1).is_some_and(|t| t.is_op(":="))
        {
            let target = self.next()?.start;
            self.at += 1;
            let value = self.expression_at(depth + 1)?;
            Expr::new(Node::Other, target, value.end)
        } else {
            self.expression_at(depth + 1)?
        };
        if self.peek_op(")") {
            let end = self.next()?.end;
            return Some(Expr {
                start,
                end,
                ..inner
            });
        }
        if self.peek_op(",") || self.peek_keyword("for") || self.peek_keyword("async") {
            return whole(self);
        }
        None
    }

    /// Past the bracket that closes the one at the current token; its end.
    fn skip_brackets(&mut self) -> Option<usize> {
        let mut stack: Vec<&str> = Vec::new();
        loop {
            let token = self.next()?;
            if token.kind != Kind::Op {
                continue;
            }
            match token.text {
                "(" => stack.push(")"),
                "[" => stack.push("]"),
                "{" => stack.push("}"),
                ")" | "]" | "}" => {
                    if stack.pop()? != token.text {
                        return None;
                    }
                    if stack.is_empty() {
                        return Some(token.end);
                    }
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(segment: &str) -> Option<Node> {
        parse(segment).map(|e| e.node)
    }

    #[test]
    fn parser_finds_the_outermost_node() {
        assert_eq!(
            node("a + b * c"),
            Some(Node::BinOp {
                left_end: 1,
                right_start: 4
            })
        );
        assert_eq!(
            node("(a + b) * c"),
            Some(Node::BinOp {
                left_end: 6,
                right_start: 10
            })
        );
        assert_eq!(
            node("a ** -b"),
            Some(Node::BinOp {
                left_end: 1,
                right_start: 5
            })
        );
        assert_eq!(node("d['k'][0]"), Some(Node::Subscript { value_end: 6 }));
        assert_eq!(
            node("obj.f(1, [2])"),
            Some(Node::Call {
                func_is_name: false
            })
        );
        assert_eq!(node("f(x)"), Some(Node::Call { func_is_name: true }));
        for other in [
            "a < b",
            "not a + b",
            "a + b if c else d",
            "lambda: a + b",
            "-a",
            "a.b",
            "(a, b)",
            "f'{a}' 'b'",
        ] {
            assert_eq!(node(other), Some(Node::Other), "{other}");
        }
        for none in ["a, b", "x = a + b", "a +", "f(", "a b", "*a", "return f(x)"] {
            assert_eq!(node(none), None, "{none}");
        }
        // Bounded: deep nesting gives up instead of recursing on.
        for deep in [
            "-".repeat(100_000) + "a",
            "not ".repeat(10_000) + "a",
            "(".repeat(10_000),
        ] {
            assert_eq!(node(&deep), None);
        }
        // An f-string's fields may hold quotes and braces.
        assert!(tokenize(r#"f"{d["a"]}{{" + x"#).is_some_and(|t| t.len() == 3));
    }

    #[test]
    fn versions_pick_their_rules() {
        assert_eq!(Rules::for_version("3.11.7"), Some(Rules::V311));
        assert_eq!(Rules::for_version("3.12"), Some(Rules::V311));
        assert_eq!(Rules::for_version("3.13.0"), Some(Rules::V313));
        assert_eq!(Rules::for_version("3.14.10"), Some(Rules::V313));
        assert_eq!(Rules::for_version("3.15.0a1"), Some(Rules::V315));
        assert_eq!(Rules::for_version("3.10.13"), None);
    }
}
