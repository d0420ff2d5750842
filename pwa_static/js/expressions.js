/**
 * The condition language of form definitions (required, relevant, problem.when), the same as
 * forms/expressions.py; forms/README.md is the specification and
 * tests/vectors/forms_validation.json pins the two implementations together.
 *
 * Definitions come from the server and run on every phone, so a condition is read by a
 * hand-written tokenizer and recursive-descent parser into closures that can only read
 * answers: nothing here reaches eval or Function.
 *
 * Positions count code points (as Python's do), so the text is read as an array of them.
 *
 * @module expressions
 */

const KEYWORDS = new Set(["and", "or", "not", "in", "true", "false", "null"]);
const FUNCTIONS = new Set(["selected", "count"]);
const COMPARISONS = ["==", "!=", "<=", ">=", "<", ">"];
const LITERAL_WORDS = new Map([["true", true], ["false", false], ["null", null]]);
/** Deeper nesting is no condition a person writes; the limit bounds the recursion. */
const MAX_DEPTH = 32;
/** At most this many digits either side of the point, so both languages read one number. */
const MAX_DIGITS = 15;
const CACHE_SIZE = 4096;

const isDigit = (char) => char !== undefined && char >= "0" && char <= "9";
const isNameStart = (char) => char !== undefined && /^[A-Za-z_]$/.test(char);
const isNameRest = (char) => isNameStart(char) || isDigit(char);

/** A condition that does not parse; `position` is the 0-based code point offset. */
export class ExpressionError extends Error {
  constructor(message, position, expression) {
    super(`${message} at position ${position}`);
    this.name = "ExpressionError";
    this.reason = message;
    this.position = position;
    this.expression = expression;
  }
}

/**
 * Absent, null, an empty string and an empty list all mean "not answered".
 * @param {unknown} value
 * @returns {boolean}
 */
export function isAnswered(value) {
  return !(value === null || value === undefined || value === ""
    || (Array.isArray(value) && value.length === 0));
}

/** Only the boolean true counts as true: 1, "yes" and non-empty lists do not. */
const isTrue = (value) => value === true;
const isNumber = (value) => typeof value === "number";
const SCALARS = new Set(["boolean", "number", "string"]);

/** An answer by field id; own keys only, since a field may be called "constructor". */
export function answerOf(answers, fieldId) {
  return Object.hasOwn(answers, fieldId) ? answers[fieldId] : undefined;
}

/**
 * Equality of two non-null values: same JSON type and value (1 == 1.0, true != 1).
 * Lists and objects equal nothing; conditions look into lists with selected() and count().
 */
function equal(left, right) {
  return typeof left === typeof right && SCALARS.has(typeof left) && left === right;
}

/**
 * Python's string order, by code point. JavaScript's `<` orders by UTF-16 unit, which puts
 * characters beyond U+FFFF (emoji) before U+E000–U+FFFF.
 */
function compareCodePoints(a, b) {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.codePointAt(i);
    const y = b.codePointAt(i);
    if (x !== y) {
      return x - y;
    }
  }
  return a.length - b.length;
}

const ORDERINGS = {
  "<": (sign) => sign < 0,
  "<=": (sign) => sign <= 0,
  ">": (sign) => sign > 0,
  ">=": (sign) => sign >= 0,
};

/**
 * A comparison of two values: false whenever either is null or the types do not order.
 * Numbers order numerically, strings by code point (so ISO dates order by time).
 */
function compare(op, left, right) {
  if (left === null || right === null) {
    return false;
  }
  if (op === "==") {
    return equal(left, right);
  }
  if (op === "!=") {
    return !equal(left, right);
  }
  if (isNumber(left) && isNumber(right)) {
    return ORDERINGS[op](Math.sign(left - right));
  }
  if (typeof left === "string" && typeof right === "string") {
    return ORDERINGS[op](compareCodePoints(left, right));
  }
  return false;
}

/** A parsed condition: its source text and the function that evaluates it. */
class Expression {
  #evaluate;

  constructor(text, evaluate) {
    this.text = text;
    this.#evaluate = evaluate;
  }

  /** The value of the expression for these answers (normally a boolean). */
  evaluate(answers) {
    return this.#evaluate(answers);
  }

  /** Whether the condition is true for these answers. */
  holds(answers) {
    return isTrue(this.#evaluate(answers));
  }
}

const cache = new Map();

/**
 * Parse a condition once; every field and form that uses the same text shares the result.
 * @param {string} text
 * @returns {Expression}
 * @throws {ExpressionError}
 */
export function parseExpression(text) {
  let expression = cache.get(text);
  if (expression === undefined) {
    expression = new Expression(text, new Parser(text).parse());
    if (cache.size >= CACHE_SIZE) {
      cache.delete(cache.keys().next().value);
    }
    cache.set(text, expression);
  }
  return expression;
}

/**
 * Split a condition into tokens {kind, value, position}, ending with an "end" token. Kinds:
 * "number", "string", "name", "op", one of "()[],", "end".
 */
function tokenize(text) {
  const chars = Array.from(text);
  const tokens = [];
  let i = 0;
  while (i < chars.length) {
    if (" \t\r\n".includes(chars[i])) {
      i += 1;
    } else {
      const [kind, value, end] = readToken(chars, i, text);
      tokens.push({ kind, value, position: i });
      i = end;
    }
  }
  tokens.push({ kind: "end", value: null, position: chars.length });
  return tokens;
}

/** [kind, value, offset just past it] of the token at `i`. */
function readToken(chars, i, text) {
  const char = chars[i];
  if ("()[],".includes(char)) {
    return [char, char, i + 1];
  }
  const op = COMPARISONS.find((each) => chars.slice(i, i + each.length).join("") === each);
  if (op !== undefined) {
    return ["op", op, i + op.length];
  }
  if (char === "'" || char === '"') {
    return ["string", ...readString(chars, i, text)];
  }
  if (isDigit(char) || (char === "-" && isDigit(chars[i + 1]))) {
    return ["number", ...readNumber(chars, i, text)];
  }
  if (isNameStart(char)) {
    let end = i + 1;
    while (isNameRest(chars[end])) {
      end += 1;
    }
    return ["name", chars.slice(i, end).join(""), end];
  }
  throw new ExpressionError(`unexpected character ${JSON.stringify(char)}`, i, text);
}

/** The value of the quoted string at `start` and the offset just past its closing quote. */
function readString(chars, start, text) {
  const quote = chars[start];
  let value = "";
  let i = start + 1;
  while (i < chars.length) {
    const char = chars[i];
    if (char === quote) {
      return [value, i + 1];
    }
    if (char === "\\") {
      if (!["\\", "'", '"'].includes(chars[i + 1])) {
        throw new ExpressionError("unknown escape in string", i, text);
      }
      value += chars[i + 1];
      i += 2;
    } else {
      value += char;
      i += 1;
    }
  }
  throw new ExpressionError("unterminated string", start, text);
}

/** The number at `start` (-?digits(.digits)?) and the offset just past it. */
function readNumber(chars, start, text) {
  const wholeEnd = skipDigits(chars, start + 1);
  let end = wholeEnd;
  if (chars[end] === "." && isDigit(chars[end + 1])) {
    end = skipDigits(chars, end + 1);
  }
  const digitsBefore = wholeEnd - start - (chars[start] === "-" ? 1 : 0);
  const digitsAfter = Math.max(end - wholeEnd - 1, 0);
  if (digitsBefore > MAX_DIGITS || digitsAfter > MAX_DIGITS) {
    throw new ExpressionError(`number with more than ${MAX_DIGITS} digits`, start, text);
  }
  const number = Number(chars.slice(start, end).join(""));
  // Python reads "-0" as the integer 0, which has no sign; "-0.0" stays a negative zero.
  return [end > wholeEnd ? number : number + 0, end];
}

function skipDigits(chars, i) {
  let end = i;
  while (isDigit(chars[end])) {
    end += 1;
  }
  return end;
}

/** A field's answer; an unanswered field is null. */
function reference(field) {
  return (answers) => {
    const value = answerOf(answers, field);
    return isAnswered(value) ? value : null;
  };
}

/** A comparison; against the literal null only == and != mean anything (a null test). */
function comparison(op, left, right) {
  const isNullTest = op === "==" || op === "!=";
  const operand = isNullTest && left.isNull ? right : isNullTest && right.isNull ? left : null;
  if (operand !== null) {
    return (answers) => (operand(answers) === null) === (op === "==");
  }
  return (answers) => compare(op, left(answers), right(answers));
}

/** `x in [a, b]`, which means exactly `x == a or x == b`. */
function membership(operand, items) {
  return (answers) => {
    const value = operand(answers);
    if (value === null) {
      return items.includes(null);
    }
    return items.some((item) => item !== null && equal(value, item));
  };
}

function literal(value) {
  const node = () => value;
  node.isNull = value === null;
  return node;
}

/** Recursive descent over the grammar in forms/README.md, one method per rule. */
class Parser {
  constructor(text) {
    this.text = text;
    this.tokens = tokenize(text);
    this.index = 0;
    this.depth = 0;
  }

  parse() {
    const node = this.disjunction();
    const token = this.peek();
    if (token.kind !== "end") {
      throw this.error(`unexpected ${describeToken(token)}`, token);
    }
    return node;
  }

  disjunction() {
    const operands = [this.conjunction()];
    while (this.acceptWord("or")) {
      operands.push(this.conjunction());
    }
    return operands.length === 1
      ? operands[0]
      : (answers) => operands.some((operand) => isTrue(operand(answers)));
  }

  conjunction() {
    const operands = [this.negation()];
    while (this.acceptWord("and")) {
      operands.push(this.negation());
    }
    return operands.length === 1
      ? operands[0]
      : (answers) => operands.every((operand) => isTrue(operand(answers)));
  }

  negation() {
    const token = this.peek();
    if (this.acceptWord("not")) {
      const operand = this.nested(token, () => this.negation());
      return (answers) => !isTrue(operand(answers));
    }
    return this.comparison();
  }

  comparison() {
    const left = this.operand();
    const token = this.peek();
    if (token.kind === "op") {
      this.index += 1;
      return comparison(token.value, left, this.operand());
    }
    if (this.acceptWord("in")) {
      return membership(left, this.listLiteral());
    }
    return left;
  }

  operand() {
    const token = this.advance();
    if (token.kind === "number" || token.kind === "string") {
      return literal(token.value);
    }
    if (token.kind === "(") {
      const node = this.nested(token, () => this.disjunction());
      this.expect(")");
      return node;
    }
    if (token.kind === "name") {
      return this.name(token);
    }
    throw this.error(`expected a value, found ${describeToken(token)}`, token);
  }

  name(token) {
    const word = token.value;
    if (LITERAL_WORDS.has(word)) {
      return literal(LITERAL_WORDS.get(word));
    }
    if (KEYWORDS.has(word)) {
      throw this.error(`expected a value, found '${word}'`, token);
    }
    if (this.peek().kind === "(") {
      return this.call(token);
    }
    return reference(word);
  }

  call(token) {
    if (!FUNCTIONS.has(token.value)) {
      throw this.error(`unknown function '${token.value}'`, token);
    }
    this.expect("(");
    const field = this.fieldName();
    if (token.value === "count") {
      this.expect(")");
      return (answers) => {
        const answer = answerOf(answers, field);
        return Array.isArray(answer) ? answer.length : 0;
      };
    }
    this.expect(",");
    const value = this.advance();
    if (value.kind !== "string") {
      throw this.error("selected() needs a quoted choice value", value);
    }
    this.expect(")");
    return (answers) => {
      const answer = answerOf(answers, field);
      return Array.isArray(answer) && answer.includes(value.value);
    };
  }

  fieldName() {
    const token = this.advance();
    if (token.kind !== "name" || KEYWORDS.has(token.value)) {
      throw this.error(`expected a field id, found ${describeToken(token)}`, token);
    }
    return token.value;
  }

  listLiteral() {
    this.expect("[");
    const items = [];
    if (this.peek().kind !== "]") {
      items.push(this.listItem());
      while (this.peek().kind === ",") {
        this.index += 1;
        items.push(this.listItem());
      }
    }
    this.expect("]");
    return items;
  }

  listItem() {
    const token = this.advance();
    if (token.kind === "number" || token.kind === "string") {
      return token.value;
    }
    if (token.kind === "name" && LITERAL_WORDS.has(token.value)) {
      return LITERAL_WORDS.get(token.value);
    }
    throw this.error(`expected a literal in the list, found ${describeToken(token)}`, token);
  }

  /** Count parentheses and `not` around a sub-parse and refuse more than MAX_DEPTH. */
  nested(token, parse) {
    this.depth += 1;
    if (this.depth > MAX_DEPTH) {
      throw this.error(`nested deeper than ${MAX_DEPTH}`, token);
    }
    const node = parse();
    this.depth -= 1;
    return node;
  }

  peek() {
    return this.tokens[this.index];
  }

  advance() {
    const token = this.tokens[this.index];
    if (token.kind !== "end") {
      this.index += 1;
    }
    return token;
  }

  acceptWord(word) {
    const token = this.peek();
    if (token.kind === "name" && token.value === word) {
      this.index += 1;
      return true;
    }
    return false;
  }

  expect(kind) {
    const token = this.advance();
    if (token.kind !== kind) {
      throw this.error(`expected '${kind}', found ${describeToken(token)}`, token);
    }
  }

  error(message, token) {
    return new ExpressionError(message, token.position, this.text);
  }
}

function describeToken(token) {
  if (token.kind === "end") {
    return "end of expression";
  }
  if (token.kind === "string") {
    return "a string";
  }
  return `'${token.value}'`;
}
