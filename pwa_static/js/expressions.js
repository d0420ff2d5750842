/**
 * The expression language of form definitions (required, relevant, constraint, problem.when,
 * calculation), the same as forms/expressions.py; forms/README.md is the specification and
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

import { compileRegex, RegexError } from "./regex.js";

const KEYWORDS = new Set(["and", "or", "not", "in", "true", "false", "null"]);
/** Every function and how many arguments it takes: [lowest, highest]. */
const ARITIES = new Map([
  ["selected", [2, 2]], ["count", [1, 1]], ["count_selected", [1, 1]],
  ["string_length", [1, 1]], ["regex", [2, 2]], ["today", [0, 0]], ["now", [0, 0]],
  ["if", [3, 3]], ["concat", [1, 32]], ["coalesce", [2, 32]], ["int", [1, 1]],
  ["number", [1, 1]], ["round", [1, 2]], ["sum", [1, 1]], ["position", [0, 0]],
  ["true", [0, 0]], ["false", [0, 0]],
]);
/** 10**n for round(x, n), written out so that both languages use the same doubles. */
const POWERS = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14,
  1e15];
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

/**
 * A computed number as both languages write it: null when not finite, -0 as 0.
 * @param {number} number
 */
export function normalize(number) {
  if (!Number.isFinite(number)) {
    return null;
  }
  return number === 0 ? 0 : number;
}

/** a + b, -, *, /, %: numbers only; null, another value, a division by zero give null. */
function arithmetic(op, left, right) {
  if (!isNumber(left) || !isNumber(right) || ((op === "/" || op === "%") && right === 0)) {
    return null;
  }
  switch (op) {
    case "+": return normalize(left + right);
    case "-": return normalize(left - right);
    case "*": return normalize(left * right);
    case "/": return normalize(left / right);
    default: return normalize(left % right);
  }
}

/**
 * A value as text: a string itself, a number as Python's format_number writes it, a boolean
 * true/false; null, lists and objects have none.
 */
export function asText(value) {
  if (typeof value === "string") {
    return value;
  }
  if (typeof value === "boolean") {
    return value ? "true" : "false";
  }
  if (isNumber(value) && Number.isFinite(value)) {
    return numberText(value);
  }
  return null;
}

/** Python's format_number: integral values without a point, others as Python's repr. */
function numberText(number) {
  if (Number.isInteger(number)) {
    return BigInt(number).toString();
  }
  const [mantissa, exponent] = number.toExponential().split("e");
  const power = Number(exponent);
  if (power >= -4 && power < 16) {
    return String(number);
  }
  const sign = power < 0 ? "-" : "+";
  return `${mantissa}e${sign}${String(Math.abs(power)).padStart(2, "0")}`;
}

const NUMBER_TEXT = /^-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$/;
const ASCII_SPACE = /^[ \t\r\n]+|[ \t\r\n]+$/g;

/** number(x): a number itself, a boolean 1 or 0, a decimal text its value; else null. */
export function asNumber(value) {
  if (typeof value === "boolean") {
    return value ? 1 : 0;
  }
  if (isNumber(value)) {
    return normalize(value);
  }
  if (typeof value === "string") {
    const text = value.replace(ASCII_SPACE, "");
    if (NUMBER_TEXT.test(text)) {
      return normalize(Number(text));
    }
  }
  return null;
}

const FUNCTION_VALUES = {
  concat(...values) {
    const parts = [];
    for (const value of values) {
      const text = value === null ? "" : asText(value);
      if (text === null) {
        return null;
      }
      parts.push(text);
    }
    return parts.join("");
  },
  coalesce: (...values) => values.find((value) => isAnswered(value)) ?? null,
  int(value) {
    const number = asNumber(value);
    return number === null ? null : normalize(Math.trunc(number));
  },
  number: asNumber,
  /** Half up (toward +infinity), as XPath's round; digits an integer from 0 to 15. */
  round(value, digits = 0) {
    const number = asNumber(value);
    if (number === null || !isNumber(digits) || !Number.isInteger(digits)
      || digits < 0 || digits > 15) {
      return null;
    }
    const power = POWERS[digits];
    return normalize(Math.floor(number * power + 0.5) / power);
  },
  /** The sum of a list's numbers (unanswered items skipped); null is 0, a number itself. */
  sum(value) {
    if (value === null) {
      return 0;
    }
    if (isNumber(value)) {
      return asNumber(value);
    }
    if (!Array.isArray(value)) {
      return null;
    }
    let total = 0;
    for (const item of value) {
      if (!isAnswered(item)) {
        continue;
      }
      if (!isNumber(item)) {
        return null;
      }
      total += item;
    }
    return normalize(total);
  },
  string_length(value) {
    if (value === null) {
      return 0;
    }
    const text = asText(value);
    return text === null ? null : Array.from(text).length;
  },
};

/** A parsed expression: its source text and the function that evaluates it. */
class Expression {
  #evaluate;

  constructor(text, evaluate, references) {
    this.text = text;
    this.#evaluate = evaluate;
    /** The ids of every field the expression reads. */
    this.references = references;
  }

  /**
   * The value of the expression for these answers. `clock` is the visit's local time
   * YYYY-MM-DDTHH:MM:SS (today() is its date, now() all of it; null without one);
   * `position` the 1-based index of the repeat entry being evaluated (position()). Inside a
   * repeat entry the caller passes the entry's answers over the form's; outside, a repeat's
   * child field maps to the list of its values across entries.
   */
  evaluate(answers, { clock = null, position = null } = {}) {
    return this.#evaluate(answers, { clock, position });
  }

  /** Whether the condition is true for these answers. */
  holds(answers, context = {}) {
    return isTrue(this.evaluate(answers, context));
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
    const parser = new Parser(text);
    expression = new Expression(text, parser.parse(), parser.references);
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
      const integral = kind === "number" && !chars.slice(i, end).includes(".");
      tokens.push({ kind, value, position: i, integral });
      i = end;
    }
  }
  tokens.push({ kind: "end", value: null, position: chars.length });
  return tokens;
}

/** [kind, value, offset just past it] of the token at `i`. */
function readToken(chars, i, text) {
  const char = chars[i];
  if ("()[],+-*/%".includes(char)) {
    return [char, char, i + 1];
  }
  const op = COMPARISONS.find((each) => chars.slice(i, i + each.length).join("") === each);
  if (op !== undefined) {
    return ["op", op, i + op.length];
  }
  if (char === "'" || char === '"') {
    return ["string", ...readString(chars, i, text)];
  }
  if (isDigit(char)) {
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
  const digitsBefore = wholeEnd - start;
  const digitsAfter = Math.max(end - wholeEnd - 1, 0);
  if (digitsBefore > MAX_DIGITS || digitsAfter > MAX_DIGITS) {
    throw new ExpressionError(`number with more than ${MAX_DIGITS} digits`, start, text);
  }
  return [Number(chars.slice(start, end).join("")), end];
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
  return (answers, env) => {
    const value = answerOf(answers, field);
    return isAnswered(value) ? value : null;
  };
}

/** A comparison; against the literal null only == and != mean anything (a null test). */
function comparison(op, left, right) {
  const isNullTest = op === "==" || op === "!=";
  const operand = isNullTest && left.isNull ? right : isNullTest && right.isNull ? left : null;
  if (operand !== null) {
    return (answers, env) => (operand(answers, env) === null) === (op === "==");
  }
  return (answers, env) => compare(op, left(answers, env), right(answers, env));
}

/** `x in [a, b]`, which means exactly `x == a or x == b`. */
function membership(operand, items) {
  return (answers, env) => {
    const value = operand(answers, env);
    if (value === null) {
      return items.includes(null);
    }
    return items.some((item) => item !== null && equal(value, item));
  };
}

function literal(value) {
  const node = () => value;
  node.isNull = value === null;
  node.literalValue = value;
  return node;
}

/** a + b, a - b, a * b, a / b, a % b. */
function binary(op, left, right) {
  return (answers, env) => arithmetic(op, left(answers, env), right(answers, env));
}

/** if, the clock and position, and the functions of values. */
function call(name, args) {
  if (name === "if") {
    const [condition, then, otherwise] = args;
    return (answers, env) => (isTrue(condition(answers, env)) ? then : otherwise)(answers, env);
  }
  if (name === "today") {
    return (answers, env) => (env.clock === null ? null : env.clock.slice(0, 10));
  }
  if (name === "now") {
    return (answers, env) => env.clock;
  }
  if (name === "position") {
    return (answers, env) => env.position;
  }
  const compute = FUNCTION_VALUES[name];
  return (answers, env) => compute(...args.map((arg) => arg(answers, env)));
}

/** Recursive descent over the grammar in forms/README.md, one method per rule. */
class Parser {
  constructor(text) {
    this.text = text;
    this.tokens = tokenize(text);
    this.index = 0;
    this.depth = 0;
    this.references = new Set();
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
      : (answers, env) => operands.some((operand) => isTrue(operand(answers, env)));
  }

  conjunction() {
    const operands = [this.negation()];
    while (this.acceptWord("and")) {
      operands.push(this.negation());
    }
    return operands.length === 1
      ? operands[0]
      : (answers, env) => operands.every((operand) => isTrue(operand(answers, env)));
  }

  negation() {
    const token = this.peek();
    if (this.acceptWord("not")) {
      const operand = this.nested(token, () => this.negation());
      return (answers, env) => !isTrue(operand(answers, env));
    }
    return this.comparison();
  }

  comparison() {
    const left = this.additive();
    const token = this.peek();
    if (token.kind === "op") {
      this.index += 1;
      return comparison(token.value, left, this.additive());
    }
    if (this.acceptWord("in")) {
      return membership(left, this.listLiteral());
    }
    return left;
  }

  additive() {
    let node = this.multiplicative();
    while (this.peek().kind === "+" || this.peek().kind === "-") {
      node = binary(this.advance().kind, node, this.multiplicative());
    }
    return node;
  }

  multiplicative() {
    let node = this.unary();
    while (["*", "/", "%"].includes(this.peek().kind)) {
      node = binary(this.advance().kind, node, this.unary());
    }
    return node;
  }

  unary() {
    const token = this.peek();
    if (token.kind !== "-") {
      return this.operand();
    }
    this.index += 1;
    if (this.peek().kind === "number") {
      const number = this.advance();
      // Python reads "-0" as the integer 0, which has no sign; "-0.0" stays a negative zero.
      return literal(number.integral ? -number.value + 0 : -number.value);
    }
    const operand = this.nested(token, () => this.unary());
    return (answers, env) => {
      const value = operand(answers, env);
      return isNumber(value) ? normalize(-value) : null;
    };
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
      if (word !== "null" && this.peek().kind === "(") {
        this.index += 1;
        this.expect(")"); // true() and false(), as XPath writes them
      }
      return literal(LITERAL_WORDS.get(word));
    }
    if (KEYWORDS.has(word)) {
      throw this.error(`expected a value, found '${word}'`, token);
    }
    if (this.peek().kind === "(") {
      return this.call(token);
    }
    this.references.add(word);
    return reference(word);
  }

  call(token) {
    const name = token.value;
    if (!ARITIES.has(name)) {
      throw this.error(`unknown function '${name}'`, token);
    }
    this.expect("(");
    if (name === "count" || name === "count_selected") {
      const field = this.fieldName();
      this.expect(")");
      return (answers) => {
        const answer = answerOf(answers, field);
        return Array.isArray(answer) ? answer.length : 0;
      };
    }
    if (name === "selected") {
      return this.selected();
    }
    const args = this.arguments(token);
    if (name === "regex") {
      return this.regex(args, token);
    }
    return call(name, args);
  }

  selected() {
    const field = this.fieldName();
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

  /** The arguments of a call up to its ")", as many as the function takes. */
  arguments(token) {
    const args = [];
    if (this.peek().kind !== ")") {
      this.nested(token, () => {
        args.push(this.disjunction());
        while (this.peek().kind === ",") {
          this.index += 1;
          args.push(this.disjunction());
        }
      });
    }
    this.expect(")");
    const [low, high] = ARITIES.get(token.value);
    if (args.length < low || args.length > high) {
      const wanted = low === high ? String(low) : `${low} to ${high}`;
      throw this.error(`${token.value}() takes ${wanted} arguments`, token);
    }
    return args;
  }

  /** regex(x, 'pattern'): a literal pattern in the subset both languages read alike. */
  regex(args, token) {
    const [operand, pattern] = args;
    if (pattern.literalValue === undefined || typeof pattern.literalValue !== "string") {
      throw this.error("regex() needs a quoted pattern", token);
    }
    let compiled;
    try {
      compiled = compileRegex(pattern.literalValue);
    } catch (error) {
      if (error instanceof RegexError) {
        throw this.error(`regex(): ${error.message}`, token);
      }
      throw error;
    }
    return (answers, env) => {
      const text = asText(operand(answers, env));
      return text !== null && compiled.test(text);
    };
  }

  fieldName() {
    const token = this.advance();
    if (token.kind !== "name" || KEYWORDS.has(token.value)) {
      throw this.error(`expected a field id, found ${describeToken(token)}`, token);
    }
    this.references.add(token.value);
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
