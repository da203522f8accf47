/** GRO_LEGACY_MAX_SIZE (include/linux/netdevice.h): gro_max_size of a device nobody raised. */
export const GRO_LEGACY_MAX_SIZE = 65536;

/**
 * GRO (net/core/gro.c): the receive side merges consecutive MSS segments of one TCP flow into
 * one skb. skb_gro_receive refuses a segment when `p->len + len >= gro_max_size` (-E2BIG: the
 * held packet is flushed and the segment starts a new one); p->len counts the first segment's
 * IP + TCP headers and each further segment adds its payload only. The model flushes at the end
 * of each train of segments (one GSO skb's worth: napi_complete_done when the ring empties).
 * So at gro_max_size 65536 and MSS 1448 (IPv4, timestamps: 52 B of headers) a packet holds
 * 1 + floor((65536 - 1 - 1500) / 1448) = 45 segments, 65212 bytes.
 * Returns each GRO packet's skb->len.
 */
export function groSizes(payloads: readonly number[], hdr: number, groMax: number): number[] {
  const out: number[] = [];
  let len = 0;
  for (const p of payloads) {
    if (len && len + p < groMax) len += p;
    else {
      if (len) out.push(len);
      len = hdr + p;
    }
  }
  if (len) out.push(len);
  return out;
}

/** The MSS segments a GSO skb of `payload` bytes leaves the NIC as (TSO: all full but the last). */
export function segmentsOf(payload: number, mss: number): number[] {
  const n = Math.max(1, Math.ceil(payload / mss));
  return Array.from({ length: n }, (_, i) => (i < n - 1 ? mss : payload - mss * (n - 1)));
}
