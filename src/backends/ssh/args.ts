import type { RemoteTarget } from '../../lifecycle/remote.js';

/** Quote one word for the remote POSIX shell (ssh sends the command as one string). */
export const shq = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/** Seconds an idle master connection stays (ssh_config(5) ControlPersist). */
export const MASTER_IDLE_S = 600;

/** The target as messages name it: node (user@host:port). */
export function targetName(t: Pick<RemoteTarget, 'node' | 'host' | 'user' | 'port'>): string {
  return `target ${t.node} (${t.user ? `${t.user}@` : ''}${t.host}${t.port ? `:${t.port}` : ''})`;
}

/**
 * OpenSSH client options: BatchMode (never a password prompt: a key or the agent, or
 * fail), the lab's ControlMaster socket, and only what the topology sets; everything else
 * comes from the user's ssh config (ssh_config(5)). The master lives until `lab down` closes it
 * or it has been idle for MASTER_IDLE_S (so a lab that fails between probe and its journal leaves
 * no connection behind for long); a command finding no master connects on its own, and the lab's
 * next verb opens a new one.
 */
export function sshOptions(t: RemoteTarget, master: 'open' | 'use' | 'exit' | 'check'): string[] {
  return [
    '-o',
    'BatchMode=yes',
    '-o',
    `ControlPath=${t.control}`,
    ...(master === 'open' ? ['-o', 'ControlMaster=yes', '-o', `ControlPersist=${MASTER_IDLE_S}`, '-o', 'ConnectTimeout=10'] : []),
    ...(master === 'use' ? ['-o', 'ControlMaster=no', '-o', 'ConnectTimeout=10'] : []),
    ...(master === 'exit' ? ['-O', 'exit'] : master === 'check' ? ['-O', 'check'] : []),
    ...(t.port ? ['-p', String(t.port)] : []),
    ...(t.user ? ['-l', t.user] : []),
    ...(t.identityFile ? ['-i', t.identityFile, '-o', 'IdentitiesOnly=yes'] : []),
    ...(t.jump ? ['-J', t.jump] : []),
    ...(t.knownHosts ? ['-o', `UserKnownHostsFile=${t.knownHosts}`] : []),
  ];
}

/** Every target command runs with the system's sbin directories on PATH (a login as root over ssh may lack them). */
const PATH_PREFIX = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH; export PATH; ';

/** The remote command line of an argv: exec'd (no shell left between), through sudo -n when the login is not root. */
export function remoteCommand(argv: readonly string[], sudo: boolean): string {
  return `${PATH_PREFIX}exec ${sudo ? 'sudo -n -- ' : ''}${argv.map(shq).join(' ')}`;
}

/** Full argv of the ssh client running one command on the target over its master connection. */
export function sshArgv(t: RemoteTarget, argv: readonly string[], sudo: boolean): string[] {
  return ['ssh', ...sshOptions(t, 'use'), '-T', t.host, '--', remoteCommand(argv, sudo)];
}

/** The master connection: authenticates, then goes to the background holding the socket (-f -N). */
export function masterArgv(t: RemoteTarget): string[] {
  return ['ssh', ...sshOptions(t, 'open'), '-f', '-N', '-T', t.host];
}

export function exitMasterArgv(t: RemoteTarget): string[] {
  return ['ssh', ...sshOptions(t, 'exit'), t.host];
}

/** Why the ssh client (exit 255) could not run a command: read from its own messages. */
export type SshFailure = 'hostkey' | 'auth' | 'unreachable' | 'other';

export function sshFailure(stderr: string): SshFailure {
  if (/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed|host key .* (has changed|mismatch)/i.test(stderr))
    return 'hostkey';
  if (/Permission denied \(|Too many authentication failures|no mutual signature/i.test(stderr)) return 'auth';
  if (
    /Connection refused|Could not resolve hostname|No route to host|timed out|Network is unreachable|Connection closed by|Connection reset|kex_exchange_identification|port \d+: Broken pipe/i.test(
      stderr,
    )
  )
    return 'unreachable';
  return 'other';
}

/** What to tell the user about a failed connection, and what to do. */
export function failureText(f: SshFailure, t: RemoteTarget, stderr: string): { message: string; hint: string } {
  const who = targetName(t);
  const said = stderr.trim().split('\n').slice(-2).join(' / ');
  switch (f) {
    case 'hostkey':
      return {
        message: `${who}: host key mismatch or unknown host key (${said})`,
        hint: `check the host's key, then fix known_hosts (ssh-keygen -R ${t.port ? `'[${t.host}]:${t.port}'` : t.host}${t.knownHosts ? ` -f ${t.knownHosts}` : ''}); the lab never accepts keys itself`,
      };
    case 'auth':
      return {
        message: `${who}: the key was refused (${said})`,
        hint: `ssh ${t.user ? `${t.user}@` : ''}${t.host} must log in without a password (ssh-agent or ssh.identityFile)`,
      };
    case 'unreachable':
      return { message: `${who}: unreachable (${said})`, hint: 'check host, port and jump in the topology, and that sshd runs there' };
    default:
      return { message: `${who}: ssh failed (${said})`, hint: `try ssh -v ${t.host} by hand` };
  }
}
