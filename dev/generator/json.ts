/**
 * The two JSON dialects of the real data. Song files were written by Python's json.dumps
 * (", " / ": " separators, non-ASCII as \uXXXX, "/" left alone); the event logs by eventsim's
 * Jackson-like writer (compact, non-ASCII as \uXXXX and "/" as "\/"). Readers do not care, but
 * byte-faithful files keep the fixtures honest about what the ETL will meet on S3.
 */

function hex4(code: number): string {
  return '\\u' + code.toString(16).padStart(4, '0');
}

function escapeWith(s: string, escapeSlash: boolean): string {
  let out = '"';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let rep: string | undefined;
    if (c === 0x22) rep = '\\"';
    else if (c === 0x5c) rep = '\\\\';
    else if (c === 0x2f && escapeSlash) rep = '\\/';
    else if (c < 0x20) {
      if (c === 0x0a) rep = '\\n';
      else if (c === 0x0d) rep = '\\r';
      else if (c === 0x09) rep = '\\t';
      else if (c === 0x08) rep = '\\b';
      else if (c === 0x0c) rep = '\\f';
      else rep = hex4(c);
    } else if (c > 0x7e) {
      // UTF-16 code units, so astral characters come out as surrogate pairs like Python's.
      rep = hex4(c);
    }
    if (rep !== undefined) {
      out += s.slice(start, i) + rep;
      start = i + 1;
    }
  }
  return out + s.slice(start) + '"';
}

/** A string literal as the event logs spell it. */
export function logString(s: string | null): string {
  return s === null ? 'null' : escapeWith(s, true);
}

/** A string literal as Python's json.dumps spells it. */
export function pyString(s: string | null): string {
  return s === null ? 'null' : escapeWith(s, false);
}

/**
 * A float as both Python's repr and JS's toString spell it. They agree for the values the
 * generator makes (5 decimals, |x| ≥ 1e-4, not integral); integral values would differ
 * ("36.0" vs "36"), which the callers avoid.
 */
export function floatString(x: number | null): string {
  return x === null ? 'null' : String(x);
}
