/** A FIFO ring buffer that grows by doubling and never shrinks (queues that empty and refill keep their memory). */
export class Fifo<T> {
  private buf: (T | undefined)[] = new Array(16);
  private head = 0;
  size = 0;
  push(x: T): void {
    if (this.size === this.buf.length) {
      const n = this.buf.length;
      const next: (T | undefined)[] = new Array(n * 2);
      for (let i = 0; i < n; i++) next[i] = this.buf[(this.head + i) & (n - 1)];
      this.buf = next;
      this.head = 0;
    }
    this.buf[(this.head + this.size) & (this.buf.length - 1)] = x;
    this.size++;
  }
  /** The oldest item, or undefined. */
  peek(): T | undefined {
    return this.size ? this.buf[this.head] : undefined;
  }
  shift(): T | undefined {
    if (!this.size) return undefined;
    const x = this.buf[this.head];
    this.buf[this.head] = undefined;
    this.head = (this.head + 1) & (this.buf.length - 1);
    this.size--;
    return x;
  }
}
