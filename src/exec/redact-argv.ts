// The one place that knows where the tools we run take secrets on their command line, so that an
// argv can go into a log line or an error message. A secret as an option's value depends on the
// program (`-p` is tgtadm's password but iscsiadm's portal), so those rules are per program;
// `key=value` forms carrying a CHAP user or secret are masked whatever the program.

const MASK = '***';

/** `--password=x`, `incominguser=x` (tgt-admin), `userid=x` / `password=x` (targetcli), ... */
const SECRET_ASSIGNMENT = /^(--password=|--user=|incominguser=|outgoinguser=|password=|user=|userid=|mutual_userid=|mutual_password=)/;

/** tgtadm/tgt-admin: the value after these options is a CHAP user name or secret. */
const TGT_SECRET_OPTIONS = new Set(['--password', '--user', '-u', '-p']);

/** iscsiadm `-n node.session.auth.password -v <secret>` (and username, password_in, username_in). */
const ISCSIADM_SECRET_NAME = /auth\.(?:password|username)/;

function programOf(argv: readonly string[]): string {
  const first = argv[0] ?? '';
  return first.slice(first.lastIndexOf('/') + 1);
}

/** argv with CHAP user names and secrets masked, for logs and error messages. */
export function redactArgv(argv: readonly string[]): string[] {
  const program = programOf(argv);
  const out = argv.map((a) => {
    const m = SECRET_ASSIGNMENT.exec(a);
    return m ? `${m[1]}${MASK}` : a;
  });
  if (program === 'tgtadm' || program === 'tgt-admin') {
    for (let i = 0; i < out.length - 1; i++) {
      if (TGT_SECRET_OPTIONS.has(argv[i]!)) out[++i] = MASK;
    }
  } else if (program === 'iscsiadm') {
    const n = argv.indexOf('-n');
    const v = argv.indexOf('-v');
    if (n >= 0 && v === n + 2 && ISCSIADM_SECRET_NAME.test(argv[n + 1] ?? '') && v + 1 < argv.length) out[v + 1] = MASK;
  }
  return out;
}
