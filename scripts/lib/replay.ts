import * as pulumi from "@pulumi/pulumi";
import { observeYields, yieldToRuntime } from "../../lib/pacing";

/**
 * The honest floor for `npm run bench` (issue #16): what the SDK costs for exactly the registrations the program makes,
 * with none of the program's logic. `startRecording` captures, while the program runs under mocks, every
 * registration as the SDK itself receives it (type, name, parent, provider(s), every property key the resource class
 * declares, inputs and declared outputs included, the values the monitor received, the dependencies, aliases, custom
 * timeouts and a component's registered outputs). `replay` registers the same list again through plain
 * `CustomResource`, `ProviderResource` and `ComponentResource` subclasses built the way generated provider classes are
 * (inputs plus `undefined` for each declared output), with plain values and `dependsOn` where the program had Outputs.
 */

/** One registration, as recorded. Indices point into the recording's `entries`. */
export interface RecordedEntry {
  urn: string;
  type: string;
  name: string;
  custom: boolean;
  /** A provider resource: the package (`aws`), registered through `ProviderResource`. */
  providerPackage?: string;
  parent?: number;
  /** Every property key the resource class passed (declared outputs as undefined). */
  keys: string[];
  /** The values the monitor received (wire form: secrets and resource references as signature objects). */
  inputs: Record<string, unknown>;
  provider?: number;
  providers?: number[];
  dependsOn: number[];
  version?: string;
  pluginDownloadURL?: string;
  protect?: boolean;
  retainOnDelete?: boolean;
  customTimeouts?: { create?: string; update?: string; delete?: string };
  aliases?: Array<string | { name?: string; type?: string; parent?: number; noParent?: boolean }>;
  /** A component's registerOutputs, resolved (wire form). */
  outputs?: Record<string, unknown>;
  /** A resource read from the provider (`Resource.get`, the `id` option) rather than managed: its ID. */
  readId?: string;
}

export interface Recording {
  entries: RecordedEntry[];
  /**
   * Where the program yielded to the runtime (lib/pacing.ts), as the number of registrations made before each yield:
   * the replay yields at the same points, so the floor registers at the program's pace.
   */
  yields: number[];
  /** The stack outputs the program returned, resolved. */
  stackOutputs: Record<string, unknown>;
}

const SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
const RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e";

interface Raw {
  res: pulumi.Resource;
  read: boolean;
  type: string;
  name: string;
  custom: boolean;
  parent?: pulumi.Resource;
  keys: string[];
  opts: pulumi.CustomResourceOptions & pulumi.ComponentResourceOptions;
}

/**
 * Starts recording registrations; `finish` (after the plan completed) returns them. Must be called after
 * `pulumi.runtime.setMocks` (it wraps the mock monitor) and before the program runs.
 */
export function startRecording(): { finish(stackOutputs: Record<string, unknown>): Promise<Recording> } {
  // Resource's constructor calls the runtime module's export at call time, so wrapping the export sees every one.
  const runtimeResource = require("@pulumi/pulumi/runtime/resource") as { registerResource: (...args: any[]) => void; readResource: (...args: any[]) => void };
  const original = runtimeResource.registerResource;
  const raws: Raw[] = [];
  const yields: number[] = [];
  observeYields(() => yields.push(raws.length));
  runtimeResource.registerResource = function (res: pulumi.Resource, parent: pulumi.Resource | undefined, t: string, name: string, custom: boolean, ...rest: any[]) {
    const props = rest[2] as Record<string, unknown>;
    const opts = rest[3] as Raw["opts"];
    raws.push({ res, read: false, type: t, name, custom, ...(parent ? { parent } : {}), keys: Object.keys(props ?? {}), opts: { ...opts } });
    return original.call(this, res, parent, t, name, custom, ...rest);
  };
  // Reads (`Resource.get`): the SDK sends them through readResource, not registerResource.
  const originalRead = runtimeResource.readResource;
  runtimeResource.readResource = function (res: pulumi.Resource, parent: pulumi.Resource | undefined, t: string, name: string, props: Record<string, unknown>, opts: Raw["opts"], ...rest: any[]) {
    raws.push({ res, read: true, type: t, name, custom: true, ...(parent ? { parent } : {}), keys: Object.keys(props ?? {}), opts: { ...opts } });
    return originalRead.call(this, res, parent, t, name, props, opts, ...rest);
  };
  const monitor = (pulumi.runtime as unknown as { getMonitor(): any }).getMonitor();
  const requests = new Map<string, any>();
  const componentOutputs = new Map<string, Record<string, unknown>>();
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req: any, callback: (err: unknown, resp: any) => void) =>
    register(req, (err: unknown, resp: any) => {
      if (!err && resp) requests.set(resp.getUrn(), req);
      callback(err, resp);
    });
  const read = monitor.readResource.bind(monitor);
  monitor.readResource = (req: any, callback: (err: unknown, resp: any) => void) =>
    read(req, (err: unknown, resp: any) => {
      if (!err && resp) requests.set(resp.getUrn(), req);
      callback(err, resp);
    });
  const registerOutputs = monitor.registerResourceOutputs.bind(monitor);
  monitor.registerResourceOutputs = (req: any, callback: (err: unknown, resp: any) => void) => {
    componentOutputs.set(req.getUrn(), req.getOutputs()?.toJavaScript() ?? {});
    return registerOutputs(req, callback);
  };
  return {
    async finish(stackOutputs) {
      runtimeResource.registerResource = original;
      runtimeResource.readResource = originalRead;
      observeYields(undefined);
      const index = new Map<pulumi.Resource, number>();
      const byUrn = new Map<string, number>();
      const urns: string[] = [];
      for (const [i, raw] of raws.entries()) {
        index.set(raw.res, i);
        const urn = await (raw.res.urn as unknown as { promise(): Promise<string> }).promise();
        urns.push(urn);
        byUrn.set(urn, i);
      }
      const entries = raws.map((raw, i): RecordedEntry => {
        const req = requests.get(urns[i]!);
        if (req === undefined) throw new Error(`bench: no registration reached the monitor for ${urns[i]}`);
        const o = raw.opts;
        const providersList = o.providers === undefined ? [] : Array.isArray(o.providers) ? o.providers : Object.values(o.providers);
        const idx = (r: pulumi.Resource | undefined) => (r === undefined ? undefined : index.get(r));
        const dependsOn = [...new Set<string>(req.getDependenciesList())].map((u) => byUrn.get(u)).filter((x): x is number => x !== undefined);
        const timeouts = o.customTimeouts;
        const aliases = (o.aliases ?? []).map((a) =>
          typeof a === "string"
            ? a
            : {
                ...((a as pulumi.Alias).name !== undefined ? { name: String((a as pulumi.Alias).name) } : {}),
                ...((a as pulumi.Alias).type !== undefined ? { type: String((a as pulumi.Alias).type) } : {}),
                ...(pulumi.Resource.isInstance((a as pulumi.Alias).parent) ? { parent: idx((a as pulumi.Alias).parent as pulumi.Resource)! } : {}),
                ...((a as { noParent?: boolean }).noParent ? { noParent: true } : {}),
              },
        );
        const urn = urns[i]!;
        return {
          urn,
          type: raw.type,
          name: raw.name,
          custom: raw.custom,
          ...(raw.type.startsWith("pulumi:providers:") ? { providerPackage: raw.type.slice("pulumi:providers:".length) } : {}),
          ...(raw.parent !== undefined && idx(raw.parent) !== undefined ? { parent: idx(raw.parent)! } : {}),
          keys: raw.keys,
          // A read request carries its inputs as `properties`, a registration as `object`.
          inputs: (raw.read ? req.getProperties() : req.getObject())?.toJavaScript() ?? {},
          ...(raw.read ? { readId: req.getId() as string } : {}),
          ...(o.provider !== undefined && idx(o.provider) !== undefined ? { provider: idx(o.provider)! } : {}),
          ...(providersList.length > 0 ? { providers: providersList.map((p) => idx(p)!).filter((x) => x !== undefined) } : {}),
          dependsOn,
          ...(o.version ? { version: o.version } : {}),
          ...(o.pluginDownloadURL ? { pluginDownloadURL: o.pluginDownloadURL } : {}),
          ...(o.protect !== undefined ? { protect: o.protect } : {}),
          ...(o.retainOnDelete !== undefined ? { retainOnDelete: o.retainOnDelete } : {}),
          ...(timeouts ? { customTimeouts: { ...timeouts } } : {}),
          ...(aliases.length > 0 ? { aliases } : {}),
          ...(componentOutputs.has(urn) ? { outputs: componentOutputs.get(urn)! } : {}),
        };
      });
      return { entries, yields, stackOutputs };
    },
  };
}

class ReplayedCustom extends pulumi.CustomResource {
  constructor(t: string, name: string, props: pulumi.Inputs, opts: pulumi.CustomResourceOptions) {
    super(t, name, props, opts);
  }
}

class ReplayedProvider extends pulumi.ProviderResource {
  constructor(pkg: string, name: string, props: pulumi.Inputs, opts: pulumi.ResourceOptions) {
    super(pkg, name, props, opts);
  }
}

class ReplayedComponent extends pulumi.ComponentResource {
  constructor(t: string, name: string, opts: pulumi.ComponentResourceOptions) {
    super(t, name, {}, opts);
  }
  done(outputs: Record<string, unknown>): void {
    this.registerOutputs(outputs);
  }
}

/** Wire values back to what a program passes: secrets through `pulumi.secret`, resource references as the resource. */
function fromWire(value: unknown, resources: pulumi.Resource[], byUrn: Map<string, number>): unknown {
  if (Array.isArray(value)) return value.map((v) => fromWire(v, resources, byUrn));
  if (value !== null && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    if (obj[SIG_KEY] === SECRET_SIG) return pulumi.secret(fromWire(obj["value"], resources, byUrn));
    if (obj[SIG_KEY] === RESOURCE_SIG) {
      const i = byUrn.get(String(obj["urn"]));
      return i !== undefined ? resources[i] : obj["urn"];
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(obj)) out[k] = fromWire(v, resources, byUrn);
    return out;
  }
  return value;
}

/**
 * Registers the recording again with no project logic, yielding where the program yielded; returns the stack outputs
 * to hand back to the runtime. A component registers its outputs before the next yield (the program's do so at the end
 * of their constructors).
 */
export async function replay(recording: Recording): Promise<Record<string, unknown>> {
  const resources: pulumi.Resource[] = [];
  const byUrn = new Map(recording.entries.map((e, i) => [e.urn, i]));
  const components: Array<[ReplayedComponent, Record<string, unknown>]> = [];
  let done = 0;
  const finishComponents = () => {
    for (; done < components.length; done++) {
      const [c, outputs] = components[done]!;
      c.done(fromWire(outputs, resources, byUrn) as Record<string, unknown>);
    }
  };
  let nextYield = 0;
  for (const [index, e] of recording.entries.entries()) {
    while (recording.yields[nextYield] === index) {
      finishComponents();
      await yieldToRuntime();
      nextYield++;
    }
    const parent = e.parent !== undefined ? resources[e.parent] : undefined;
    const opts: pulumi.CustomResourceOptions & pulumi.ComponentResourceOptions = {
      ...(parent !== undefined ? { parent } : {}),
      ...(e.provider !== undefined ? { provider: resources[e.provider] as pulumi.ProviderResource } : {}),
      ...(e.providers !== undefined ? { providers: e.providers.map((p) => resources[p] as pulumi.ProviderResource) } : {}),
      ...(e.dependsOn.length > 0 ? { dependsOn: e.dependsOn.map((d) => resources[d]!) } : {}),
      ...(e.version !== undefined ? { version: e.version } : {}),
      ...(e.pluginDownloadURL !== undefined ? { pluginDownloadURL: e.pluginDownloadURL } : {}),
      ...(e.protect !== undefined ? { protect: e.protect } : {}),
      ...(e.retainOnDelete !== undefined ? { retainOnDelete: e.retainOnDelete } : {}),
      ...(e.customTimeouts !== undefined ? { customTimeouts: e.customTimeouts } : {}),
      ...(e.aliases !== undefined
        ? {
            aliases: e.aliases.map((a) =>
              typeof a === "string" ? a : { ...a, ...(a.parent !== undefined ? { parent: resources[a.parent]! } : {}) },
            ) as pulumi.Input<string | pulumi.Alias>[],
          }
        : {}),
    };
    if (e.custom) {
      const props: Record<string, unknown> = {};
      for (const k of e.keys) props[k] = k in e.inputs ? fromWire(e.inputs[k], resources, byUrn) : undefined;
      for (const k of Object.keys(e.inputs)) if (!(k in props)) props[k] = fromWire(e.inputs[k], resources, byUrn);
      const read = e.readId !== undefined ? { id: e.readId } : {};
      resources.push(e.providerPackage !== undefined ? new ReplayedProvider(e.providerPackage, e.name, props, opts) : new ReplayedCustom(e.type, e.name, props, { ...opts, ...read }));
    } else {
      const c = new ReplayedComponent(e.type, e.name, opts);
      resources.push(c);
      components.push([c, e.outputs ?? {}]);
    }
  }
  finishComponents();
  for (; nextYield < recording.yields.length; nextYield++) await yieldToRuntime();
  return fromWire(recording.stackOutputs, resources, byUrn) as Record<string, unknown>;
}
