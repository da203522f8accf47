import type { Exec } from '../exec/exec.js';

/**
 * Netfilter state of one namespace, reduced to what a service rule leaves: KUBE-*
 * chains and NAT rules (DNAT, SNAT, MASQUERADE, REDIRECT), from `nft -j list ruleset`
 * (nf_tables, which iptables-nft writes into) and, where installed, iptables-legacy-save
 * and ip6tables-legacy-save (x_tables, which nft does not show).
 */
export interface NetfilterReading {
  /** KUBE-* chains, as family/table/chain. */
  kubeChains: string[];
  /** NAT rules, as family/table/chain: what they do. */
  natRules: string[];
  /** What could not be read (a tool that failed), empty when everything was. */
  unreadable: string[];
  /** The raw outputs, for evidence. */
  raw: string;
}

const NAT_TARGETS = new Set(['DNAT', 'SNAT', 'MASQUERADE', 'REDIRECT']);
const NAT_STMTS = ['dnat', 'snat', 'masquerade', 'redirect'];

/** Does an nft JSON rule expression hold a NAT statement (native, or an xt target of iptables-nft)? */
function natOf(expr: unknown): string | undefined {
  if (!Array.isArray(expr)) return undefined;
  for (const e of expr) {
    if (!e || typeof e !== 'object') continue;
    const stmt = NAT_STMTS.find((k) => k in e);
    if (stmt) return stmt;
    const xt = (e as { xt?: { type?: string; name?: string } }).xt;
    if (xt?.type === 'target' && xt.name && NAT_TARGETS.has(xt.name)) return xt.name;
  }
  return undefined;
}

/** Reduce `nft -j list ruleset` (libnftables-json(5)). */
export function parseNftRuleset(json: string): Pick<NetfilterReading, 'kubeChains' | 'natRules'> {
  const doc = JSON.parse(json || '{"nftables":[]}') as { nftables?: Record<string, Record<string, unknown>>[] };
  const kubeChains: string[] = [];
  const natRules: string[] = [];
  for (const item of doc.nftables ?? []) {
    const chain = item.chain as { family?: string; table?: string; name?: string } | undefined;
    if (chain?.name?.startsWith('KUBE-')) kubeChains.push(`${chain.family}/${chain.table}/${chain.name}`);
    const rule = item.rule as { family?: string; table?: string; chain?: string; expr?: unknown } | undefined;
    const nat = rule && natOf(rule.expr);
    if (rule && nat) natRules.push(`${rule.family}/${rule.table}/${rule.chain}: ${nat}`);
  }
  return { kubeChains, natRules };
}

/** Reduce iptables-save output (legacy x_tables). */
export function parseIptablesSave(text: string, family: 'ip' | 'ip6'): Pick<NetfilterReading, 'kubeChains' | 'natRules'> {
  const kubeChains: string[] = [];
  const natRules: string[] = [];
  let table = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1).trim();
    const chain = /^:(KUBE-\S+)/.exec(line);
    if (chain) kubeChains.push(`${family}/${table}/${chain[1]}`);
    const rule = /^-A (\S+) .*-j (\S+)/.exec(line);
    if (rule && NAT_TARGETS.has(rule[2])) natRules.push(`${family}/${table}/${rule[1]}: ${rule[2]}`);
  }
  return { kubeChains, natRules };
}

/** Read one namespace's netfilter state. */
export async function readNetfilter(exec: Exec, signal?: AbortSignal): Promise<NetfilterReading> {
  const reading: NetfilterReading = { kubeChains: [], natRules: [], unreadable: [], raw: '' };
  const add = (p: Pick<NetfilterReading, 'kubeChains' | 'natRules'>) => {
    reading.kubeChains.push(...p.kubeChains);
    reading.natRules.push(...p.natRules);
  };
  const nft = await exec.run(['nft', '-j', 'list', 'ruleset'], { nothrow: true, signal });
  if (nft.code === 0) {
    add(parseNftRuleset(nft.stdout));
    reading.raw += `nft -j list ruleset: ${nft.stdout.trim().slice(0, 2000)}\n`;
  } else reading.unreadable.push(`nft: exit ${nft.code}: ${nft.stderr.trim().slice(0, 200)}`);
  for (const [tool, family] of [
    ['iptables-legacy-save', 'ip'],
    ['ip6tables-legacy-save', 'ip6'],
  ] as const) {
    const r = await exec.run([tool], { nothrow: true, signal });
    if (r.code === 127) continue; // not installed: nothing can have written legacy rules with it
    if (r.code !== 0) reading.unreadable.push(`${tool}: exit ${r.code}: ${r.stderr.trim().slice(0, 200)}`);
    else {
      add(parseIptablesSave(r.stdout, family));
      reading.raw += `${tool}: ${r.stdout.trim().slice(0, 1000)}\n`;
    }
  }
  return reading;
}
