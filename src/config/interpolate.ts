// Template syntax of cfg.ConfigOpts._substitute: Python's string.Template with oslo's idpattern
// `[_a-z][._a-z0-9]*` (case-insensitive), used through safe_substitute:
//   $name, ${name}   an option: `name` in the value's own group, else in [DEFAULT];
//                    `group.name` for another group;
//   $$ (and \$)      a literal '$';
//   any other '$'    left as it is.
// What a name resolves to is the resolver's business; this module only splits the text.

export type TemplatePiece = { readonly text: string } | { readonly ref: string; readonly source: string };

const PATTERN = /\$(?:(\$)|([_a-z][._a-z0-9]*)|\{([_a-z][._a-z0-9]*)\})/gi;

export function parseTemplate(value: string): TemplatePiece[] {
  // oslo rewrites the backslash form before templating.
  const text = value.includes('\\$') ? value.split('\\$').join('$$') : value;
  const pieces: TemplatePiece[] = [];
  let last = 0;
  let literal = '';
  for (const m of text.matchAll(PATTERN)) {
    literal += text.slice(last, m.index);
    last = m.index + m[0].length;
    if (m[1] !== undefined) {
      literal += '$';
      continue;
    }
    if (literal) pieces.push({ text: literal });
    literal = '';
    pieces.push({ ref: (m[2] ?? m[3])!, source: m[0] });
  }
  literal += text.slice(last);
  if (literal) pieces.push({ text: literal });
  return pieces;
}

export function hasReferences(value: string): boolean {
  return parseTemplate(value).some((p) => 'ref' in p);
}
