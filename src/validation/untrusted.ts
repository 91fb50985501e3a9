// How a check names a value it refuses. Values come from nova, cinder-api and the database, so a
// message never repeats one that holds a newline or shell metacharacters (it would forge a log
// line or look like a command) and never repeats a long one whole.

export function describeUntrusted(value: unknown): string {
  if (typeof value !== 'string') return `a ${value === null ? 'null' : typeof value}`;
  if (/[\r\n]/.test(value)) return 'a value containing a newline';
  if (/[\s]/.test(value)) return 'a value containing whitespace';
  if (/[;&|`$<>(){}\\'"*?!#~]/.test(value)) return 'a value containing shell metacharacters';
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}
