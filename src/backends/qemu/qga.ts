import { LabError } from '../../errors.js';
import { connect, type Socket } from 'node:net';

/**
 * A client of the QEMU guest agent over its host-side unix socket (QGA JSON protocol).
 * Replies are matched by id, never by order: under TCG, replies to retried
 * guest-sync calls arrive late.
 */
export class Qga {
  private sock?: Socket;
  private buf = '';
  private nextId = 1;
  private pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  /** The id of the guest-sync-delimited that opened this session; replies before it are stale. */
  private synced = false;

  constructor(readonly socketPath: string) {}

  /** Connect and synchronise; resolves once the agent answers (guest-sync-delimited). */
  async open(timeoutMs: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const s = connect(this.socketPath);
      const t = setTimeout(() => {
        s.destroy();
        reject(new LabError('E_GUEST', 'connect timeout'));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(t);
        resolve();
      });
      s.once('error', (e) => {
        clearTimeout(t);
        reject(e);
      });
      this.sock = s;
    });
    // Bytes, not text: the 0xFF sentinel before a guest-sync-delimited reply is not UTF-8.
    this.sock!.on('data', (d: Buffer) => this.onData(Buffer.from(d.filter((b) => b !== 0xff)).toString('utf8')));
    this.sock!.on('close', () => this.failAll(new LabError('E_GUEST', 'guest agent connection closed')));
    this.sock!.on('error', (e) => this.failAll(e));
    // 0xFF makes the agent drop any partial input left from an earlier client (QGA docs).
    this.sock!.write(Buffer.from([0xff]));
    // A stale reply to an earlier sync may answer first: sync until our own token comes back.
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const token = Math.floor(Math.random() * 2 ** 31);
      // Until the guest opens its port QEMU drops what we write: retry often.
      const got = await this.send('guest-sync-delimited', { id: token }, Math.max(1, Math.min(1_000, deadline - Date.now()))).catch(
        () => undefined,
      );
      if (got === token) {
        this.synced = true;
        return;
      }
    }
    throw new LabError('E_GUEST', 'guest agent never answered guest-sync');
  }

  private onData(d: string) {
    this.buf += d;
    for (let nl = this.buf.indexOf('\n'); nl >= 0; nl = this.buf.indexOf('\n')) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (!line) continue;
      let msg: { return?: unknown; error?: { class: string; desc: string }; id?: number };
      try {
        msg = JSON.parse(line);
      } catch {
        continue;
      }
      // Requests carry an id; the agent echoes it, so a late reply finds no waiter and is dropped.
      const id = typeof msg.id === 'number' ? msg.id : this.oldestPending();
      const p = id !== undefined ? this.pending.get(id) : undefined;
      if (!p) continue;
      this.pending.delete(id!);
      if (msg.error) p.reject(new LabError('E_GUEST', `${msg.error.class}: ${msg.error.desc}`));
      else p.resolve(msg.return);
    }
  }

  private oldestPending(): number | undefined {
    return this.pending.keys().next().value;
  }

  private failAll(e: Error) {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  /** One command; resolves with its `return`. */
  send(execute: string, args: Record<string, unknown> | undefined, timeoutMs = 30_000): Promise<unknown> {
    if (!this.sock) return Promise.reject(new LabError('E_GUEST', 'guest agent not connected'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.pending.delete(id);
        reject(new LabError('E_GUEST', `guest agent: ${execute} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(t);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(t);
          reject(e);
        },
      });
      this.sock!.write(JSON.stringify({ execute, arguments: args, id }) + '\n');
    });
  }

  get ready(): boolean {
    return this.synced;
  }

  close(): void {
    this.sock?.destroy();
    this.sock = undefined;
  }
}
