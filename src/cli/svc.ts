import type { Command } from 'commander';
import { LabError } from '../errors.js';
import type { Lab, Service } from '../topology/model.js';
import type { ServiceSpec } from '../topology/services-live.js';
import { changeRunningLab, upState } from './live.js';
import { guarded } from './output.js';

/** --port P[/TCP|UDP][:TARGET], as kubectl expose's --port/--protocol/--target-port in one. */
export function parsePortSpec(s: string): ServiceSpec['ports'][number] {
  const m = /^(\d{1,5})(?:\/(TCP|UDP|tcp|udp))?(?::(\d{1,5}))?$/.exec(s.trim());
  if (!m) throw new LabError('E_USAGE', `--port '${s}': expected PORT[/TCP|UDP][:TARGETPORT], like 80/TCP:8080`);
  const port = Number(m[1]);
  return { port, protocol: (m[2]?.toUpperCase() ?? 'TCP') as 'TCP' | 'UDP', targetPort: m[3] ? Number(m[3]) : port };
}

const portsText = (s: Service) =>
  s.ports.map((p) => `${p.port}/${p.protocol}${p.targetPort !== p.port ? `:${p.targetPort}` : ''}`).join(' ');

/** The service named, or a usage error listing the lab's services. */
function serviceOf(lab: Lab, name: string): Service {
  const s = lab.services.find((x) => x.name === name);
  if (!s)
    throw new LabError(
      'E_USAGE',
      `lab ${lab.name} has no service '${name}'; services: ${lab.services.map((x) => x.name).join(', ') || '(none)'}`,
    );
  return s;
}

/**
 * Change a running lab's services: validate the next set (nothing is touched when it is
 * bad), write it into every node's datapath, then into the lab state.
 */
async function change(name: string, next: (lab: Lab, specs: ServiceSpec[]) => ServiceSpec[], quiet?: boolean): Promise<string> {
  const { specOf, validateServices } = await import('../topology/services-live.js');
  const { servicePlan, planIds } = await import('../datapath/kpr/plan.js');
  const { applyServiceChange } = await import('../datapath/kpr/update.js');
  const t0 = performance.now();
  await changeRunningLab(name, 'lab svc', quiet, {
    plan: (state) => {
      const services = validateServices(state.lab, next(state.lab, state.lab.services.map(specOf)));
      const before: Lab = { ...state.lab, serviceIds: state.lab.serviceIds ?? planIds(servicePlan(state.lab)) };
      const after: Lab = { ...before, services };
      return { before, after, ids: planIds(servicePlan(after), before.serviceIds) };
    },
    apply: (ctx, p) => applyServiceChange(ctx, p.before, p.after),
    record: (now, p) => ({ ...now, lab: { ...p.after, serviceIds: p.ids } }),
  });
  return `${(performance.now() - t0).toFixed(0)} ms`;
}

export function register(program: Command, exit: (code: number) => void): void {
  const run = guarded(exit);
  const svc = program.command('svc').description("a running lab's services: list, add, delete, change backends (atomic per service)");
  svc
    .command('list')
    .description("the lab's services as they are now (ClusterIPs, ports, backends)")
    .argument('<lab>', 'lab name')
    .option('--json', 'the services as JSON')
    .action((lab: string, opts: { json?: boolean }) =>
      run(async () => {
        const { table } = await import('../report/table.js');
        const s = upState(lab).lab.services;
        if (opts.json) return void process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
        const rows = s.map((x) => [
          x.name,
          [x.ipv4, x.ipv6].filter(Boolean).join(' '),
          portsText(x),
          x.backends.map((b) => `${b.node}/${b.pod}${b.weight !== 1 ? `*${b.weight}` : ''}`).join(' ') || '(none)',
        ]);
        process.stdout.write(`${table(['SERVICE', 'CLUSTER-IP', 'PORTS', 'BACKENDS'], rows)}\n`);
      })(),
    );
  svc
    .command('add')
    .description('add a service: validated like the topology file, then written into every node')
    .argument('<lab>', 'lab name')
    .requiredOption('--name <name>', 'service name')
    .option('--cluster-ip <ip>', 'IPv4 ClusterIP (outside every lab prefix)')
    .option('--cluster-ip6 <ip>', 'IPv6 ClusterIP')
    .requiredOption('--port <spec>', 'PORT[/TCP|UDP][:TARGETPORT]; repeat for more ports', (v: string, all: string[]) => [...all, v], [])
    .option('--backend <pods>', 'POD[,POD...] (node/pod when a name is on several nodes)')
    .option('--affinity <seconds>', 'ClientIP session affinity timeout')
    .option('-q, --quiet', 'no progress lines')
    .action(
      (
        lab: string,
        o: { name: string; clusterIp?: string; clusterIp6?: string; port: string[]; backend?: string; affinity?: string; quiet?: boolean },
      ) =>
        run(async () => {
          const spec = {
            name: o.name,
            clusterIP: o.clusterIp,
            clusterIP6: o.clusterIp6,
            ports: o.port.map(parsePortSpec),
            sessionAffinity: o.affinity ? { timeoutSeconds: Number(o.affinity) } : undefined,
            backends: (o.backend ?? '')
              .split(',')
              .map((b) => b.trim())
              .filter(Boolean),
          };
          const took = await change(lab, (_, specs) => [...specs, spec as ServiceSpec], o.quiet);
          process.stdout.write(`lab ${lab}: service ${o.name} added (${took})\n`);
        })(),
    );
  svc
    .command('del')
    .description('delete a service (its ClusterIP is an unrouted address again)')
    .argument('<lab>', 'lab name')
    .argument('<name>', 'service name')
    .option('-q, --quiet', 'no progress lines')
    .action((lab: string, name: string, o: { quiet?: boolean }) =>
      run(async () => {
        serviceOf(upState(lab).lab, name);
        const took = await change(lab, (_, specs) => specs.filter((s) => s.name !== name), o.quiet);
        process.stdout.write(`lab ${lab}: service ${name} deleted (${took})\n`);
      })(),
    );
  const backend = svc.command('backend').description("add or remove one backend pod of a running lab's service");
  for (const op of ['add', 'del'] as const)
    backend
      .command(op)
      .argument('<lab>', 'lab name')
      .argument('<name>', 'service name')
      .argument('<pod>', 'pod (node/pod when the name is on several nodes)')
      .option('-q, --quiet', 'no progress lines')
      .action((lab: string, name: string, pod: string, o: { quiet?: boolean }) =>
        run(async () => {
          const s = serviceOf(upState(lab).lab, name);
          const match = (b: { node: string; pod: string }) => (pod.includes('/') ? `${b.node}/${b.pod}` === pod : b.pod === pod);
          if (op === 'del' && !s.backends.some(match))
            throw new LabError(
              'E_USAGE',
              `service ${name} has no backend '${pod}'; backends: ${s.backends.map((b) => `${b.node}/${b.pod}`).join(', ') || '(none)'}`,
            );
          const took = await change(
            lab,
            (_, specs) =>
              specs.map((x) => {
                if (x.name !== name) return x;
                const kept = x.backends.filter(
                  (b) => typeof b === 'string' || !match({ node: b.pod.split('/')[0], pod: b.pod.split('/')[1] }),
                );
                return { ...x, backends: op === 'add' ? [...x.backends, pod] : kept };
              }),
            o.quiet,
          );
          process.stdout.write(`lab ${lab}: service ${name}: backend ${pod} ${op === 'add' ? 'added' : 'removed'} (${took})\n`);
        })(),
      );
}
