/**
 * The regular expressions of regex(): the subset that Python's re and JavaScript's RegExp
 * (with the u flag) read alike — forms/regex.py in JavaScript, walked by the same rules and
 * refusing the same patterns (forms/README.md lists them). \d \w \s become their ASCII
 * classes and . excludes the line terminators in both; Python's $ is rewritten there, here
 * it already means the end of the text.
 *
 * @module regex
 */

const MAX_PATTERN = 500;
const MAX_REPEAT = 1000;
const SYNTAX = new Set("^$\\.*+?()[]{}|/");
const CLASS_ESCAPES = { d: "0-9", w: "A-Za-z0-9_", s: " \\t\\n\\r\\f\\v" };
const CONTROL_ESCAPES = new Set("tnrfv");
const CONTROLS = { t: "\t", n: "\n", r: "\r", f: "\f", v: "\v" };
const CONTROL_TEXT = { "\t": "\\t", "\n": "\\n", "\r": "\\r", "\f": "\\f", "\v": "\\v" };
const DOT = "[^\\n\\r\\u2028\\u2029]";
const CLASS_SPECIAL = new Set("\\]^-[");
const REPEAT = /^\{([0-9]{1,4})(,([0-9]{0,4}))?\}/;

/** A regex() pattern outside the subset both languages read alike. */
export class RegexError extends Error {}

/**
 * The pattern as RegExp must read it (with the u flag) to mean what Python reads.
 * @param {string} pattern
 * @returns {string}
 * @throws {RegexError}
 */
export function translateRegex(pattern) {
  const chars = Array.from(pattern);
  if (chars.length > MAX_PATTERN) {
    throw new RegexError(`a pattern of more than ${MAX_PATTERN} characters`);
  }
  const walk = {
    chars, out: [], groups: [{ complex: false }], atom: false, atomComplex: false,
  };
  let i = 0;
  while (i < chars.length) {
    i = step(walk, i);
  }
  if (walk.groups.length > 1) {
    throw new RegexError("a '(' is not closed");
  }
  return walk.out.join("");
}

/** The compiled pattern, or RegexError. */
export function compileRegex(pattern) {
  return new RegExp(translateRegex(pattern), "u");
}

const startsWith = (chars, i, text) => chars.slice(i, i + text.length).join("") === text;

function step(walk, i) {
  const char = walk.chars[i];
  if (char === "\\") {
    return escape(walk, i);
  }
  if (char === "[") {
    return charClass(walk, i);
  }
  if (char === "(") {
    return openGroup(walk, i);
  }
  if (char === ")") {
    return closeGroup(walk, i);
  }
  if (char === "*" || char === "+" || char === "?") {
    return quantifier(walk, i, char, 1, char !== "?");
  }
  if (char === "{") {
    const match = REPEAT.exec(walk.chars.slice(i, i + 12).join(""));
    if (match === null) {
      throw new RegexError(`'{' at ${i} is no repetition {n}, {n,} or {n,m}: write \\{`);
    }
    const [text, low, comma, high] = match;
    if (Number(low) > MAX_REPEAT
      || (high && (Number(high) > MAX_REPEAT || Number(high) < Number(low)))) {
      throw new RegexError(`repetition ${text} at ${i}`);
    }
    return quantifier(walk, i, text, text.length, Boolean(comma) && !high);
  }
  if (char === "}" || char === "]") {
    throw new RegexError(`a lone '${char}' at ${i}: write \\${char}`);
  }
  if (char === "|") {
    walk.groups.at(-1).complex = true;
    write(walk, "|", false);
  } else if (char === "^" || char === "$") {
    write(walk, char, false);
  } else if (char === ".") {
    write(walk, DOT);
  } else {
    write(walk, char);
  }
  return i + 1;
}

function write(walk, text, atom = true, complexAtom = false) {
  walk.out.push(text);
  walk.atom = atom;
  walk.atomComplex = complexAtom;
}

function escape(walk, i) {
  const escaped = walk.chars[i + 1] ?? "";
  const lower = escaped.toLowerCase();
  if (Object.hasOwn(CLASS_ESCAPES, escaped)) {
    write(walk, `[${CLASS_ESCAPES[escaped]}]`);
  } else if (escaped !== lower && Object.hasOwn(CLASS_ESCAPES, lower)) {
    write(walk, `[^${CLASS_ESCAPES[lower]}]`);
  } else if (escaped === "b" || escaped === "B") {
    write(walk, `\\${escaped}`, false);
  } else if (CONTROL_ESCAPES.has(escaped) || SYNTAX.has(escaped)) {
    write(walk, `\\${escaped}`);
  } else if (escaped === "-") {
    write(walk, "-");
  } else {
    throw new RegexError(`the escape \\${escaped} at ${i} is not supported`);
  }
  return i + 2;
}

function openGroup(walk, i) {
  const nonCapturing = startsWith(walk.chars, i, "(?:");
  if (walk.chars[i + 1] === "?" && !nonCapturing) {
    throw new RegexError(`'(?' at ${i}: lookaround, named groups and flags are not supported`);
  }
  walk.groups.push({ complex: false });
  write(walk, nonCapturing ? "(?:" : "(", false);
  return i + (nonCapturing ? 3 : 1);
}

function closeGroup(walk, i) {
  if (walk.groups.length === 1) {
    throw new RegexError(`a ')' at ${i} closes no group`);
  }
  const group = walk.groups.pop();
  if (group.complex) {
    walk.groups.at(-1).complex = true;
  }
  write(walk, ")", true, group.complex);
  return i + 1;
}

function quantifier(walk, i, text, length, unbounded) {
  if (!walk.atom) {
    throw new RegexError(`'${text}' at ${i} repeats nothing`);
  }
  if (unbounded && walk.atomComplex) {
    throw new RegexError(
      `'${text}' at ${i} repeats without bound a group that itself repeats or has '|'`);
  }
  walk.groups.at(-1).complex = true;
  walk.out.push(text);
  let end = i + length;
  if (walk.chars[end] === "?") {
    walk.out.push("?");
    end += 1;
  }
  walk.atom = false;
  walk.atomComplex = false;
  return end;
}

function charClass(walk, start) {
  const { chars } = walk;
  let i = start + 1;
  const negated = chars[i] === "^";
  i += negated ? 1 : 0;
  const parts = [];
  let items = 0;
  for (;;) {
    if (i >= chars.length) {
      throw new RegexError(`a '[' at ${start} is not closed`);
    }
    const char = chars[i];
    if (char === "]") {
      break;
    }
    if (char === "[") {
      throw new RegexError(`a '[' inside a class at ${i}: write \\[`);
    }
    if (["&&", "~~", "||"].some((pair) => startsWith(chars, i, pair))) {
      throw new RegexError(`'${chars[i]}${chars[i + 1]}' inside a class at ${i}`);
    }
    if (char === "\\" && Object.hasOwn(CLASS_ESCAPES, chars[i + 1] ?? "")) {
      parts.push(CLASS_ESCAPES[chars[i + 1]]);
      i += 2;
      items += 1;
      continue;
    }
    let low;
    [low, i] = classChar(chars, i, start);
    if (chars[i] === "-" && chars[i + 1] !== "]" && chars[i + 1] !== undefined) {
      let high;
      [high, i] = classChar(chars, i + 1, start);
      if (high.codePointAt(0) < low.codePointAt(0)) {
        throw new RegexError(`the range ${low}-${high} in the class at ${start} is reversed`);
      }
      parts.push(`${inClass(low)}-${inClass(high)}`);
    } else if (low === "-" && items && chars[i] !== "]") {
      throw new RegexError(`a '-' in the middle of the class at ${start}: write \\-`);
    } else {
      parts.push(inClass(low));
    }
    items += 1;
  }
  if (!items) {
    throw new RegexError(`the class at ${start} is empty`);
  }
  write(walk, `[${negated ? "^" : ""}${parts.join("")}]`);
  return i + 1;
}

function classChar(chars, i, start) {
  const char = chars[i];
  if (char !== "\\") {
    if (char === undefined || char === "[") {
      throw new RegexError(`the class at ${start} is not closed properly`);
    }
    return [char, i + 1];
  }
  const escaped = chars[i + 1] ?? "";
  if (Object.hasOwn(CONTROLS, escaped)) {
    return [CONTROLS[escaped], i + 2];
  }
  if (SYNTAX.has(escaped) || escaped === "-") {
    return [escaped, i + 2];
  }
  throw new RegexError(`the escape \\${escaped} at ${i} is not supported in a class`);
}

function inClass(char) {
  if (Object.hasOwn(CONTROL_TEXT, char)) {
    return CONTROL_TEXT[char];
  }
  return CLASS_SPECIAL.has(char) ? `\\${char}` : char;
}
