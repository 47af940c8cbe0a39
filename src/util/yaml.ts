// A small YAML subset for config files: nested mappings by indentation, block lists ("- x"), flow
// lists ("[1, 2]"), scalars (numbers, booleans, null, quoted and plain strings) and comments.
// Anything outside the subset is an error naming the line.

export class YAMLError extends Error {
  readonly code = 'ERR_CONFIG_SYNTAX';
}

type Value = null | boolean | number | string | Value[] | { [k: string]: Value };

interface Line {
  indent: number;
  text: string;
  no: number;
}

function stripComment(s: string): string {
  let q: string | null = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (q) {
      if (c === q) q = null;
    } else if (c === '"' || c === "'") q = c;
    else if (c === '#' && (i === 0 || /\s/.test(s[i - 1]!))) return s.slice(0, i);
  }
  return s;
}

function splitFlow(inner: string, no: number): string[] {
  const out: string[] = [];
  let depth = 0;
  let q: string | null = null;
  let cur = '';
  for (const c of inner) {
    if (q) {
      cur += c;
      if (c === q) q = null;
      continue;
    }
    if (c === '"' || c === "'") q = c;
    else if (c === '[' || c === '{') depth++;
    else if (c === ']' || c === '}') depth--;
    if (c === ',' && depth === 0) {
      out.push(cur.trim());
      cur = '';
    } else cur += c;
  }
  if (q || depth !== 0) throw new YAMLError(`line ${no}: unbalanced brackets or quotes`);
  if (cur.trim()) out.push(cur.trim());
  return out;
}

function scalar(raw: string, no: number): Value {
  const s = raw.trim();
  if (s === '' || s === '~' || s === 'null') return null;
  if (s === 'true') return true;
  if (s === 'false') return false;
  if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) return Number(s);
  if (/^[-+]?\.inf$/i.test(s)) return s.startsWith('-') ? -Infinity : Infinity;
  if (s.startsWith('[')) {
    if (!s.endsWith(']')) throw new YAMLError(`line ${no}: unterminated flow list`);
    return splitFlow(s.slice(1, -1), no).map((x) => scalar(x, no));
  }
  if (s.startsWith('{')) {
    if (!s.endsWith('}')) throw new YAMLError(`line ${no}: unterminated flow mapping`);
    const o: { [k: string]: Value } = {};
    for (const part of splitFlow(s.slice(1, -1), no)) {
      const m = /^([^:]+):\s*(.*)$/.exec(part);
      if (!m) throw new YAMLError(`line ${no}: expected 'key: value' in a flow mapping`);
      o[unquote(m[1]!.trim())] = scalar(m[2]!, no);
    }
    return o;
  }
  if ((s.startsWith('"') && s.endsWith('"')) || (s.startsWith("'") && s.endsWith("'"))) return unquote(s);
  if (s.startsWith('"') || s.startsWith("'")) throw new YAMLError(`line ${no}: unterminated string`);
  return s;
}

function unquote(s: string): string {
  if (s.startsWith('"') && s.endsWith('"') && s.length >= 2) return JSON.parse(s) as string;
  if (s.startsWith("'") && s.endsWith("'") && s.length >= 2) return s.slice(1, -1).replace(/''/g, "'");
  return s;
}

function parseBlock(lines: Line[], start: number, indent: number): [Value, number] {
  const first = lines[start]!;
  if (first.text.startsWith('- ') || first.text === '-') {
    const arr: Value[] = [];
    let i = start;
    while (i < lines.length && lines[i]!.indent === indent && (lines[i]!.text.startsWith('- ') || lines[i]!.text === '-')) {
      arr.push(scalar(lines[i]!.text.slice(1), lines[i]!.no));
      i++;
    }
    return [arr, i];
  }
  const obj: { [k: string]: Value } = {};
  let i = start;
  while (i < lines.length && lines[i]!.indent === indent) {
    const l = lines[i]!;
    const m = /^("[^"]*"|'[^']*'|[^:]+?)\s*:(\s+(.*))?$/.exec(l.text);
    if (!m) throw new YAMLError(`line ${l.no}: expected 'key: value'`);
    const key = unquote(m[1]!);
    if (key in obj) throw new YAMLError(`line ${l.no}: duplicate key '${key}'`);
    const rest = m[3];
    if (rest !== undefined && rest.trim() !== '') {
      obj[key] = scalar(rest, l.no);
      i++;
    } else if (i + 1 < lines.length && lines[i + 1]!.indent > indent) {
      const [v, next] = parseBlock(lines, i + 1, lines[i + 1]!.indent);
      obj[key] = v;
      i = next;
    } else {
      obj[key] = null;
      i++;
    }
  }
  if (i < lines.length && lines[i]!.indent > indent) throw new YAMLError(`line ${lines[i]!.no}: unexpected indentation`);
  return [obj, i];
}

export function parseYAML(text: string): Value {
  const lines: Line[] = [];
  text.split(/\r?\n/).forEach((raw, k) => {
    if (/^\s*(---|\.\.\.)\s*$/.test(raw)) return;
    if (/\t/.test(raw.match(/^\s*/)![0])) throw new YAMLError(`line ${k + 1}: tabs are not allowed for indentation`);
    const s = stripComment(raw).replace(/\s+$/, '');
    if (!s.trim()) return;
    lines.push({ indent: s.length - s.trimStart().length, text: s.trim(), no: k + 1 });
  });
  if (!lines.length) return {};
  const [v, next] = parseBlock(lines, 0, lines[0]!.indent);
  if (next < lines.length) throw new YAMLError(`line ${lines[next]!.no}: unexpected indentation`);
  return v;
}
