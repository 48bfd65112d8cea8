import * as crypto from "node:crypto";
import * as pulumi from "@pulumi/pulumi";

/**
 * Runs the program under Pulumi's own mock runtime (`pulumi.runtime.setMocks`, the official unit-test path) and
 * records every registration with its inputs and dependency edges. The offline plan (`npm run plan`) and our tests
 * share this, so what the tests check is what users see (GUIDE §4).
 *
 * Mocked provider outputs are deterministic and plausible: ECR URLs from the account and region, image digests
 * derived from the pushed tag, Kubernetes names from metadata or Pulumi's auto-naming. Nothing here can know what
 * a real provider would compute from the live world (existing resources, real digests, cluster state).
 */

export interface PlannedResource {
  urn: string;
  type: string;
  name: string;
  parent?: string;
  custom: boolean;
  dependencies: string[];
  propertyDependencies: Record<string, string[]>;
  inputs: Record<string, unknown>;
  options?: { protect?: true; retainOnDelete?: true; customTimeouts?: { create?: string; update?: string; delete?: string }; provider?: string };
}

export interface Plan {
  project: string;
  stack: string;
  resources: PlannedResource[];
  outputs: Record<string, unknown>;
}

export const SECRET_PLACEHOLDER = "[secret]";

const SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
const RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e";
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

function sha256(text: string): string {
  return crypto.createHash("sha256").update(text).digest("hex");
}

/** Turns the wire form of inputs into plain JSON: secrets become "[secret]", resource references their URN. */
export function scrub(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(scrub);
  if (value !== null && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    if (obj[SIG_KEY] === SECRET_SIG) return SECRET_PLACEHOLDER;
    if (obj[SIG_KEY] === RESOURCE_SIG) return obj["urn"];
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(obj).sort()) out[key] = scrub(obj[key]);
    return out;
  }
  if (value === UNKNOWN) return "[unknown]";
  return value;
}

interface ProviderState {
  region?: string;
  accountId?: string;
}

/** Deterministic outputs for what providers would compute. */
function mockOutputs(args: pulumi.runtime.MockResourceArgs, providers: Map<string, ProviderState>): Record<string, unknown> {
  const inputs = args.inputs as Record<string, any>;
  const provider = providerFromRef(args.provider, providers);
  const region = provider?.region ?? "us-east-1";
  const account = provider?.accountId ?? "123456789012";
  switch (args.type) {
    case "pulumi:providers:aws":
      return inputs;
    case "aws:ecr/repository:Repository":
      return {
        ...inputs,
        arn: `arn:aws:ecr:${region}:${account}:repository/${inputs.name}`,
        registryId: account,
        repositoryUrl: `${account}.dkr.ecr.${region}.amazonaws.com/${inputs.name}`,
      };
    case "aws:kms/key:Key": {
      const keyId = uuidFrom(args.name);
      return { ...inputs, keyId, arn: `arn:aws:kms:${region}:${account}:key/${keyId}` };
    }
    case "aws:kms/alias:Alias":
      return { ...inputs, arn: `arn:aws:kms:${region}:${account}:${inputs.name}`, targetKeyArn: inputs.targetKeyId };
    case "docker:index/remoteImage:RemoteImage": {
      // The engine pulls the pinned reference: its repo digest is the pinned one, the image id is derived.
      const name = String(inputs.name);
      const [ref = name, pinned] = name.split("@");
      const repo = ref.replace(/:[^:/]+$/, "");
      return { ...inputs, repoDigest: `${repo}@${pinned ?? `sha256:${sha256(`repo:${name}`)}`}`, imageId: `sha256:${sha256(`image:${name}`)}` };
    }
    case "docker:index/volume:Volume": {
      const name = (inputs.name as string | undefined) ?? args.name;
      return { ...inputs, name, driver: "local", mountpoint: `/var/lib/docker/volumes/${name}/_data` };
    }
    case "docker:index/container:Container":
      return { ...inputs, hostname: sha256(`container:${args.name}`).slice(0, 12) };
    case "command:local:Command":
      // What a command prints cannot be known offline; empty output keeps dependent values deterministic.
      return { ...inputs, stdout: "", stderr: "" };
    case "docker-build:index:Image": {
      const tag = (inputs.tags as string[] | undefined)?.[0] ?? args.name;
      const digest = `sha256:${sha256(`digest:${tag}`)}`;
      const repo = tag.replace(/:[^:/]+$/, "");
      return { ...inputs, digest, ref: `${repo}@${digest}`, contextHash: sha256(`context:${tag}`) };
    }
    default:
      if (args.type.startsWith("kubernetes:") && !args.type.startsWith("pulumi:providers")) {
        const metadata = { ...(inputs.metadata ?? {}) };
        // Pulumi auto-names Kubernetes objects `<name>-<8 random chars>`; ours is derived from the name instead.
        metadata.name ??= `${args.name}-${sha256(args.name).slice(0, 8)}`;
        return { ...inputs, metadata };
      }
      return inputs;
  }
}

function providerFromRef(ref: string | undefined, providers: Map<string, ProviderState>): ProviderState | undefined {
  if (!ref) return undefined;
  const urn = ref.split("::").slice(0, -1).join("::");
  return providers.get(urn);
}

function uuidFrom(seed: string): string {
  const h = sha256(seed);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

function mockCall(args: pulumi.runtime.MockCallArgs, providers: Map<string, ProviderState>): Record<string, unknown> {
  const inputs = args.inputs as Record<string, any>;
  const provider = providerFromRef(args.provider, providers);
  const region = provider?.region ?? "us-east-1";
  const account = (inputs.registryId as string | undefined) ?? provider?.accountId ?? "123456789012";
  switch (args.token) {
    case "aws:ecr/getAuthorizationToken:getAuthorizationToken":
      return {
        authorizationToken: Buffer.from("AWS:mock-ecr-password").toString("base64"),
        userName: "AWS",
        password: "mock-ecr-password",
        proxyEndpoint: `https://${account}.dkr.ecr.${region}.amazonaws.com`,
        expiresAt: "2099-01-01T00:00:00Z",
        id: region,
      };
    case "aws:kms/getPublicKey:getPublicKey": {
      const body = Buffer.from(sha256(`kms:${inputs.keyId}`) + sha256(`kms2:${inputs.keyId}`)).toString("base64");
      return {
        ...inputs,
        arn: `arn:aws:kms:${region}:${account}:key/${uuidFrom(String(inputs.keyId))}`,
        keySpec: "ECC_NIST_P256",
        keyUsage: "SIGN_VERIFY",
        publicKeyPem: `-----BEGIN PUBLIC KEY-----\n${body.slice(0, 64)}\n${body.slice(64, 120)}\n-----END PUBLIC KEY-----\n`,
      };
    }
    case "aws:index/getCallerIdentity:getCallerIdentity":
      return { accountId: account, arn: `arn:aws:iam::${account}:user/mock`, userId: "MOCK", id: account };
    default:
      return inputs;
  }
}

export interface RunOptions {
  project: string;
  stack: string;
  /** Config by full key (`workbench-images:registry`), values as Pulumi stores them (structured values as JSON). */
  config: Record<string, string>;
  /** Full keys whose values are secrets. */
  secretKeys: string[];
  /** The program: index.ts's exported function. */
  program: () => unknown;
}

/**
 * Runs the program once under mocks and returns the recorded plan. Several runs may follow each other in one
 * process (the runtime is reset by setMocks); they must not overlap.
 */
export async function runPlan(options: RunOptions): Promise<Plan> {
  // The SDK captures `new Error().stack` for every resource (source positions) and every promise (leak reports).
  // Under tsx/vitest, source maps make each capture map every frame: measured as the largest share of plan time at
  // 500 variants. The plan needs no source positions, so stacks keep their transpiled positions while it runs.
  // For the same reason stacks are cut short while the program runs (restored afterwards, errors included), and not
  // formatted: the SDK raises the limit to Infinity for every resource (Resource.callsites) and parses the formatted
  // text for a source position that the mock monitor ignores. Formatting every frame of every resource's stack was
  // about a tenth of a 500-variant plan, more for the program than for the bench's replay, whose stacks are shallower.
  // While a plan runs, an error's `stack` is its first line, as the cut-short stacks already were.
  process.setSourceMapsEnabled(false);
  const stackTraceLimit = Error.stackTraceLimit;
  const prepareStackTrace = Error.prepareStackTrace;
  Error.stackTraceLimit = 0;
  Error.prepareStackTrace = (error: Error) => String(error);
  try {
    return await withFailureCapture(() => runPlanInner(options));
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
    Error.prepareStackTrace = prepareStackTrace;
  }
}

/**
 * The program failed while it ran: an exception inside an `apply` or a `ResourceError` surfaces in the SDK as an
 * unhandled rejection, not as a rejection of the program. Only the message is kept: the SDK's error carries the
 * resource and its promise chain (`resource`, `promise`), which a test runner serializing the error walks for minutes
 * until memory runs out (issue #13).
 */
export class PlanFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PlanFailure";
  }
}

/** What a failure is reported as: a ConfigError as itself (bad input, exit 2), anything else by its message only. */
function asPlanFailure(reason: unknown): Error {
  if (reason instanceof Error && reason.name === "ConfigError" && Array.isArray((reason as { problems?: unknown }).problems)) {
    delete (reason as { promise?: unknown }).promise;
    return reason;
  }
  return new PlanFailure(reason instanceof Error ? reason.message : String(reason));
}

const DRAIN_MS = 1000;

/**
 * Runs `work` and rejects with the first failure of the program, whether `work` rejects or the runtime reports an
 * unhandled rejection, as soon as it happens: a registration waiting on a failed Output may never finish, and waiting
 * for it held a plan for minutes (issue #13). Other `unhandledRejection` listeners (the CLI's, a test runner's) are
 * set aside while the program runs, so a program failure is this plan's failure, reported once. After a failure, what
 * the program had started is given a moment to settle against this run's mock monitor (or it reaches the next run's).
 */
async function withFailureCapture<T>(work: () => Promise<T>): Promise<T> {
  let fail!: (reason: unknown) => void;
  const failed = new Promise<never>((_, reject) => {
    fail = reject;
  });
  failed.catch(() => undefined);
  let first: { reason: unknown } | undefined;
  const onRejection = (reason: unknown) => {
    if (first === undefined) {
      first = { reason };
      fail(reason);
    }
  };
  const saved = process.listeners("unhandledRejection");
  process.removeAllListeners("unhandledRejection");
  process.on("unhandledRejection", onRejection);
  const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
  try {
    try {
      const result = await Promise.race([work(), failed]);
      // Rejections left unhandled by the last step are reported once the microtask queue drains.
      await tick();
      if (first === undefined) return result;
    } catch (e) {
      first ??= { reason: e };
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      (pulumi.runtime as unknown as { waitForRPCs(): Promise<void> }).waitForRPCs().catch(() => undefined),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, DRAIN_MS);
      }),
    ]);
    clearTimeout(timer);
    await tick();
    throw asPlanFailure(first.reason);
  } finally {
    process.removeListener("unhandledRejection", onRejection);
    for (const listener of saved) process.on("unhandledRejection", listener);
  }
}

async function runPlanInner(options: RunOptions): Promise<Plan> {
  pulumi.runtime.setAllConfig(options.config, options.secretKeys);
  const providers = new Map<string, ProviderState>();
  const resources: PlannedResource[] = [];
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        if (args.type === "pulumi:providers:aws") {
          // Provider inputs travel as strings, structured ones as JSON text.
          const inputs = args.inputs as { region?: string; allowedAccountIds?: string | string[] };
          const ids = typeof inputs.allowedAccountIds === "string" ? (JSON.parse(inputs.allowedAccountIds) as string[]) : inputs.allowedAccountIds;
          providers.set(`urn:pulumi:${options.stack}::${options.project}::pulumi:providers:aws::${args.name}`, {
            ...(inputs.region !== undefined ? { region: inputs.region } : {}),
            ...(ids?.[0] !== undefined ? { accountId: ids[0] } : {}),
          });
        }
        return { id: args.custom === false ? undefined : `${args.name}-id`, state: mockOutputs(args, providers) } as pulumi.runtime.MockResourceResult;
      },
      call: (args) => mockCall(args, providers),
    },
    options.project,
    options.stack,
    false,
  );
  const monitor = (pulumi.runtime as unknown as { getMonitor(): any }).getMonitor();
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req: any, callback: (err: unknown, resp: any) => void) =>
    register(req, (err: unknown, resp: any) => {
      if (!err && resp) resources.push(describe(req, resp.getUrn()));
      callback(err, resp);
    });

  const result = await options.program();
  await (pulumi.runtime as unknown as { waitForRPCs(): Promise<void> }).waitForRPCs();
  const outputs = (await resolveOutputs(result ?? {})) as Record<string, unknown>;
  await (pulumi.runtime as unknown as { waitForRPCs(): Promise<void> }).waitForRPCs();
  resources.sort((a, b) => (a.urn < b.urn ? -1 : a.urn > b.urn ? 1 : 0));
  return { project: options.project, stack: options.stack, resources, outputs };
}

function describe(req: any, urn: string): PlannedResource {
  const propertyDependencies: Record<string, string[]> = {};
  req.getPropertydependenciesMap().forEach((deps: any, key: string) => {
    const urns = [...new Set<string>(deps.getUrnsList())].sort();
    if (urns.length > 0) propertyDependencies[key] = urns;
  });
  const sortedProps: Record<string, string[]> = {};
  for (const key of Object.keys(propertyDependencies).sort()) sortedProps[key] = propertyDependencies[key]!;
  const options: NonNullable<PlannedResource["options"]> = {};
  if (req.getProtect()) options.protect = true;
  if (req.getRetainondelete()) options.retainOnDelete = true;
  const timeouts = req.getCustomtimeouts();
  if (timeouts && (timeouts.getCreate() || timeouts.getUpdate() || timeouts.getDelete())) {
    options.customTimeouts = {
      ...(timeouts.getCreate() ? { create: timeouts.getCreate() } : {}),
      ...(timeouts.getUpdate() ? { update: timeouts.getUpdate() } : {}),
      ...(timeouts.getDelete() ? { delete: timeouts.getDelete() } : {}),
    };
  }
  const provider: string = req.getProvider();
  if (provider) options.provider = provider.split("::").slice(0, -1).join("::");
  const parent: string = req.getParent();
  return {
    urn,
    type: req.getType(),
    name: req.getName(),
    ...(parent ? { parent } : {}),
    custom: req.getCustom(),
    dependencies: [...new Set<string>(req.getDependenciesList())].sort(),
    propertyDependencies: sortedProps,
    inputs: (scrub(req.getObject()?.toJavaScript() ?? {}) as Record<string, unknown>) ?? {},
    ...(Object.keys(options).length > 0 ? { options } : {}),
  };
}

/** Resolves stack outputs to plain JSON; secret Outputs become "[secret]". */
async function resolveOutputs(value: unknown): Promise<unknown> {
  if (pulumi.Output.isInstance(value)) {
    const o = value as unknown as { isSecret: Promise<boolean>; promise(): Promise<unknown> };
    if (await o.isSecret) return SECRET_PLACEHOLDER;
    return resolveOutputs(await o.promise());
  }
  if (value instanceof Promise) return resolveOutputs(await value);
  if (Array.isArray(value)) return Promise.all(value.map(resolveOutputs));
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) out[key] = await resolveOutputs((value as Record<string, unknown>)[key]);
    return out;
  }
  return value;
}
