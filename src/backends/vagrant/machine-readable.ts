import { LabError } from '../../errors.js';

/**
 * One line of `vagrant --machine-readable` output: `timestamp,target,type,data...`.
 * Vagrant escapes commas inside a field as `%!(VAGRANT_COMMA)` and newlines as `\n`
 * (Vagrant docs, "Machine Readable Output").
 */
export interface MachineLine {
  /** Unix time in seconds as Vagrant printed it. */
  timestamp: number;
  /** The machine the line is about; empty for lines about the run as a whole. */
  target: string;
  /** Line type: `state`, `provider-name`, `ui`, `error-exit`, `metadata`... */
  type: string;
  /** Remaining fields, unescaped. */
  data: string[];
}

/** A machine's state as `vagrant status --machine-readable` reports it. */
export interface MachineState {
  name: string;
  /** Provider of the machine (`libvirt`, `virtualbox`). */
  provider: string;
  /** Provider's state id: `running`, `shutoff`, `not_created`, `paused`, `poweroff`... */
  state: string;
}

/** OpenSSH client settings of one machine from `vagrant ssh-config` (ssh_config(5) keywords). */
export interface SshConfig {
  /** The `Host` alias Vagrant printed (the machine name). */
  host: string;
  hostName: string;
  user: string;
  port: number;
  /** Private key files, in the order printed. */
  identityFiles: string[];
}

/** Vagrant's own message when a command failed (`error-exit` line): its error class and text. */
export interface VagrantFailure {
  errorClass: string;
  message: string;
}

export function unescapeField(s: string): string {
  return s.replaceAll('%!(VAGRANT_COMMA)', ',').replaceAll('\\n', '\n').replaceAll('\\r', '\r');
}

/** Lines that are not machine-readable (a plugin's stray output) are skipped, not fatal. */
export function parseMachineReadable(text: string): MachineLine[] {
  const out: MachineLine[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+),([^,]*),([^,]+)(?:,(.*))?$/.exec(line.replace(/\r$/, ''));
    if (!m) continue;
    out.push({ timestamp: Number(m[1]), target: m[2], type: m[3], data: m[4] === undefined ? [] : m[4].split(',').map(unescapeField) });
  }
  return out;
}

/** The `error-exit` line of a failed command, if Vagrant printed one. */
export function failureOf(lines: MachineLine[]): VagrantFailure | undefined {
  const e = lines.find((l) => l.type === 'error-exit');
  return e ? { errorClass: e.data[0] ?? '', message: (e.data[1] ?? '').trim() } : undefined;
}

/** Each machine of `vagrant status --machine-readable`, in the order Vagrant listed them. */
export function parseStatus(lines: MachineLine[]): MachineState[] {
  const byName = new Map<string, MachineState>();
  for (const l of lines) {
    if (!l.target || (l.type !== 'state' && l.type !== 'provider-name')) continue;
    const m = byName.get(l.target) ?? { name: l.target, provider: '', state: '' };
    if (l.type === 'state') m.state = l.data[0] ?? '';
    else m.provider = l.data[0] ?? '';
    byName.set(l.target, m);
  }
  const states = [...byName.values()];
  const partial = states.find((s) => !s.state);
  if (partial) throw new LabError('E_TOOL_OUTPUT', `vagrant status: machine ${partial.name} has no state line`);
  return states;
}

/**
 * `vagrant ssh-config` prints ssh_config(5) text (with --machine-readable, inside `ui info`
 * lines or as plain text depending on the Vagrant version): one `Host` block per machine.
 */
export function parseSshConfig(text: string): SshConfig[] {
  const lines = parseMachineReadable(text);
  const body = lines.length
    ? lines
        .filter((l) => l.type === 'ui' || l.type === 'ssh-config')
        .map((l) => l.data.at(-1) ?? '')
        .join('\n')
    : text;
  const out: SshConfig[] = [];
  let cur: { host: string; kv: Map<string, string[]> } | undefined;
  const flush = () => {
    if (!cur) return;
    const one = (k: string) => cur!.kv.get(k)?.[0];
    const hostName = one('hostname');
    const port = Number(one('port') ?? '22');
    if (!hostName || !Number.isInteger(port))
      throw new LabError('E_TOOL_OUTPUT', `vagrant ssh-config: Host ${cur.host} has no HostName or Port`);
    out.push({ host: cur.host, hostName, user: one('user') ?? 'vagrant', port, identityFiles: cur.kv.get('identityfile') ?? [] });
  };
  for (const raw of body.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(\S+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const key = m[1].toLowerCase();
    const value = m[2].replace(/^"(.*)"$/, '$1');
    if (key === 'host') {
      flush();
      cur = { host: value, kv: new Map() };
    } else if (cur) cur.kv.set(key, [...(cur.kv.get(key) ?? []), value]);
  }
  flush();
  return out;
}
