/**
 * An skb as the model tracks it: its length, its truesize (what it charges its socket),
 * and its owner until it is freed or orphaned.
 */
export interface Skb {
  /** Bytes on the wire including IP and TCP headers (skb->len). */
  len: number;
  /**
   * What qdiscs and the wire count (net/core/dev.c qdisc_pkt_len_init): for a GSO skb every
   * segment's headers, link layer included (tc's backlog and tbf's tokens are in these bytes).
   */
  pktLen: number;
  /** TCP payload bytes. */
  payload: number;
  /** What the skb charges sk_wmem_alloc while owned (skb->truesize). */
  truesize: number;
  family: 'ipv4' | 'ipv6';
  /** Sequence number of its first payload byte. */
  seq: number;
  /** The socket charged for it; undefined once orphaned or freed. */
  owner?: Owned;
  /** Which flow sent it (index), for the receiver. */
  flow: number;
  /** Earliest departure time (skb->tstamp, ns), set by pacing or a BPF program; fq holds the skb until then. */
  tstamp?: number;
  /** When TCP sent it (ns): the RTT sample its ACK gives. */
  sentAt?: number;
  /** The sender's delivered bytes and delivery time when it was sent (tcp_rate_skb_sent: tx.delivered, tx.delivered_mstamp). */
  priorDelivered?: number;
  priorAt?: number;
}

/** A socket's send-side memory: the sum of its owned skbs' truesize (sk_wmem_alloc). */
export interface Owned {
  wmemAlloc: number;
  /** Called after an skb's charge is released (tcp_wfree: TSQ may resume the socket). */
  released(): void;
}

/**
 * skb_set_owner_w (net/core/sock.c), as __tcp_transmit_skb calls it on the clone it sends:
 * charge the socket's sk_wmem_alloc by truesize, with tcp_wfree as destructor.
 */
export function setOwner(skb: Skb, sk: Owned): void {
  skb.owner = sk;
  sk.wmemAlloc += skb.truesize;
}

/**
 * skb_orphan (include/linux/skbuff.h): run the destructor now and forget the socket. ip_rcv_core
 * (net/ipv4/ip_input.c; ip6_rcv_core in net/ipv6/ip6_input.c) does this to every skb the IP stack
 * receives, so once the host stack forwards a pod's skb, the socket no longer pays for it.
 */
export function orphan(skb: Skb): void {
  const sk = skb.owner;
  if (!sk) return;
  skb.owner = undefined;
  sk.wmemAlloc -= skb.truesize;
  sk.released();
}

/** kfree_skb / consume_skb: freeing runs the destructor too (a drop at a full qdisc releases the charge). */
export const free = orphan;

/**
 * truesize of a TSO skb: payload in page frags plus the skb head. SKB_TRUESIZE(MAX_TCP_HEADER)
 * is about 1 KB on x86_64 (sizeof sk_buff + skb_shared_info + the header room, cache aligned).
 */
export const truesizeOf = (len: number) => len + 1024;

/** Ethernet header, per segment on the wire. */
export const ETH_HLEN = 14;

/** qdisc_pkt_len of a TCP skb: payload plus IP, TCP and Ethernet headers per MSS-sized segment. */
export const pktLenOf = (payload: number, mss: number, hdr: number) => payload + Math.max(1, Math.ceil(payload / mss)) * (hdr + ETH_HLEN);
