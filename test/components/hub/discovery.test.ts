import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  type CatalogEntry,
  catalogEntryProblems,
  catalogEntrySchema,
  DISCOVERY_TOKEN_ENV,
  discoveryRecord,
  discoveryRecordSchema,
  type HubImage,
  JupyterHub,
  registerScript,
  unregisterScript,
} from "../../../components/hub";
import { type CatalogVariant, loadCatalog } from "../../../config/catalog";
import { loadChartImages } from "../../../lib/chart-images";
import { gpuPoolSchema } from "../../../lib/gpu-pool";
import { type Plan, type PlannedResource, runPlan } from "../../../scripts/lib/plan-runtime";
import { byName, byType, ROOT } from "../../support/harness";

/** Seed 003's record as the seed prints it ("Metadata sent to thinkube-control API"), verbatim. */
const SEED_003_RECORD = {
  name: "jupyter-ml-gpu",
  display_name: "Deep Learning (GPU)",
  description: "JupyterLab with PyTorch and GPU support",
  category: "jupyter",
  tags: ["jupyter-compatible"],
  metadata: { gpu_required: true, cpu_limit: 8, mem_limit: "16G" },
};

const ECR = "111122223333.dkr.ecr.eu-west-1.amazonaws.com";
const digestOf = (n: number) => `sha256:${String(n).repeat(64).slice(0, 64)}`;
const refOf = (name: string, n = 1) => `${ECR}/wb/${name}@${digestOf(n)}`;
const H100 = gpuPoolSchema.parse({ name: "h100", product: "NVIDIA-H100-80GB-HBM3", driverVersion: "570.133.20", gpusPerNode: 8 });
const TOKEN = "tok-3f9a1c77-discovery-secret";

function catalogVariants(): CatalogVariant[] {
  const { catalog, problems } = loadCatalog(path.join(ROOT, "images", "catalog.yaml"), { repositoryPrefix: "wb", requireDigests: true, displayPath: "images/catalog.yaml" });
  if (catalog === undefined) throw new Error(problems.map((p) => `${p.path}: ${p.message}`).join("\n"));
  return catalog.variants;
}

/** The real catalog's published variants, as the hub gets them (config/images.ts `offer`). */
function hubImages(variants: CatalogVariant[]): HubImage[] {
  return variants
    .filter((v) => v.publish !== undefined)
    .map((v) => ({
      variant: { name: v.name, gpu: v.gpu, cuda: v.cuda, publish: v.publish, ...(v.runAs !== undefined ? { runAs: v.runAs } : {}) },
      ref: refOf(v.name),
      tag: "build-0123456789ab",
      pools: v.gpu ? [H100] : [],
    }));
}

/** Every published variant's entry, written out by hand from images/catalog.yaml (seed 003's table for the jupyter-* four). */
const EXPECTED: CatalogEntry[] = [
  {
    name: "universal",
    display_name: "Universal CUDA 12.8 workbench",
    description: "ODH minimal JupyterLab on CUDA 12.8 with PyTorch 2.8.0, flash-attn, Transformers, PEFT, TRL and DeepSpeed; also runs headless training jobs.",
    category: "jupyter",
    tags: ["jupyter-compatible"],
    metadata: { gpu_required: true, cpu_limit: 8, mem_limit: "32G" },
    imageRef: refOf("universal"),
    pools: ["h100"],
  },
  {
    name: "ml-stack-jupyter",
    display_name: "dimtensor ML stack (JupyterLab)",
    description: "Unit-aware scientific ML: dimtensor with NumPy 1.x, PyTorch and JAX (CPU), xarray, NetCDF and Parquet I/O.",
    category: "jupyter",
    tags: ["jupyter-compatible"],
    metadata: { gpu_required: false, cpu_limit: 4, mem_limit: "8G" },
    imageRef: refOf("ml-stack-jupyter"),
    pools: [],
  },
  {
    name: "jupyter-ml-cpu",
    display_name: "ML Development (CPU)",
    description: "JupyterLab with NumPy, pandas, SciPy, scikit-learn, XGBoost and PyTorch (CPU).",
    category: "jupyter",
    tags: ["jupyter-compatible"],
    metadata: { gpu_required: false, cpu_limit: 4, mem_limit: "8G" },
    imageRef: refOf("jupyter-ml-cpu"),
    pools: [],
  },
  {
    name: "jupyter-ml-gpu",
    display_name: "Deep Learning (GPU)",
    description: "JupyterLab with PyTorch 2.8.0 on CUDA 12.8, Transformers, Accelerate and Datasets.",
    category: "jupyter",
    tags: ["jupyter-compatible"],
    metadata: { gpu_required: true, cpu_limit: 8, mem_limit: "16G" },
    imageRef: refOf("jupyter-ml-gpu"),
    pools: ["h100"],
  },
  {
    name: "jupyter-agent-dev",
    display_name: "Agent Development",
    description: "JupyterLab with LangChain, LangGraph, the OpenAI and Anthropic SDKs and the MCP SDK.",
    category: "jupyter",
    tags: ["jupyter-compatible"],
    metadata: { gpu_required: false, cpu_limit: 4, mem_limit: "8G" },
    imageRef: refOf("jupyter-agent-dev"),
    pools: [],
  },
  {
    name: "jupyter-fine-tuning",
    display_name: "Fine-tuning (Unsloth)",
    description: "JupyterLab for LLM fine-tuning with Unsloth, TRL, PEFT and bitsandbytes on PyTorch 2.8.0 / CUDA 12.8.",
    category: "jupyter",
    tags: ["jupyter-compatible"],
    metadata: { gpu_required: true, cpu_limit: 8, mem_limit: "32G" },
    imageRef: refOf("jupyter-fine-tuning"),
    pools: ["h100"],
  },
];

describe("seed 003's discovery record", () => {
  it("is the seed's record for every published variant of the catalog, with the seed's own field names and order", () => {
    const images = hubImages(catalogVariants());
    const records = images.map((i) => discoveryRecord({ name: i.variant.name, gpu: i.variant.gpu, publish: i.variant.publish! }));
    expect(records).toEqual(EXPECTED.map(({ imageRef: _r, pools: _p, ...record }) => record));
    // Seed 003's table ("Available Images": GPU Required, Default Resources as limits) for its four images.
    const seedTable = Object.fromEntries(records.filter((r) => r.name.startsWith("jupyter-")).map((r) => [r.name, r.metadata]));
    expect(seedTable).toEqual({
      "jupyter-ml-cpu": { gpu_required: false, cpu_limit: 4, mem_limit: "8G" },
      "jupyter-ml-gpu": { gpu_required: true, cpu_limit: 8, mem_limit: "16G" },
      "jupyter-agent-dev": { gpu_required: false, cpu_limit: 4, mem_limit: "8G" },
      "jupyter-fine-tuning": { gpu_required: true, cpu_limit: 8, mem_limit: "32G" },
    });
    const gpu = records.find((r) => r.name === "jupyter-ml-gpu")!;
    // The seed's record differs from ours in its description only (ours names what the image ships).
    expect({ ...gpu, description: SEED_003_RECORD.description }).toEqual(SEED_003_RECORD);
    expect(JSON.stringify({ ...gpu, description: SEED_003_RECORD.description })).toBe(JSON.stringify(SEED_003_RECORD));
  });

  it("takes category and extra tags from the publish block; jupyter-compatible always comes first, once", () => {
    const publish = { displayName: "X", description: "Y", category: "scientific-ml", tags: ["cuda", "jupyter-compatible"], resources: { cpu: { limit: 0.5 }, memory: { limit: "1.5G" } } };
    expect(discoveryRecord({ name: "x", gpu: false, publish })).toEqual({
      name: "x",
      display_name: "X",
      description: "Y",
      category: "scientific-ml",
      tags: ["jupyter-compatible", "cuda"],
      metadata: { gpu_required: false, cpu_limit: 0.5, mem_limit: "1.5G" },
    });
  });

  it("the schema accepts the seed's record verbatim and refuses anything else", () => {
    expect(discoveryRecordSchema.parse(SEED_003_RECORD)).toEqual(SEED_003_RECORD);
    const issues = (v: unknown) => {
      const r = discoveryRecordSchema.safeParse(v);
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    };
    expect(issues({ ...SEED_003_RECORD, displayName: "x" })).toEqual([': Unrecognized key: "displayName"']);
    expect(issues({ ...SEED_003_RECORD, tags: [] })).toEqual(['tags: must include "jupyter-compatible": every image the hub offers runs jupyterhub-singleuser.']);
    expect(issues({ ...SEED_003_RECORD, tags: ["jupyter-compatible", "jupyter-compatible"] })).toEqual(["tags: must not repeat a tag."]);
    expect(issues({ ...SEED_003_RECORD, category: "Jupyter" })).toEqual(['category: must be lowercase words joined by "-", like "jupyter".']);
    expect(issues({ ...SEED_003_RECORD, metadata: { gpu_required: true, cpu_limit: "8", mem_limit: "16Gi" } })).toEqual([
      "metadata.cpu_limit: Invalid input: expected number, received string",
      'metadata.mem_limit: must be a byte string like "16G".',
    ]);
    expect(issues({ ...SEED_003_RECORD, metadata: { ...SEED_003_RECORD.metadata, cuda: "12.8" } })).toEqual(['metadata: Unrecognized key: "cuda"']);
  });

  it("a catalog entry is the record plus a digest reference and pools; problems name the entry and the field", () => {
    const entry = EXPECTED[3]!;
    expect(catalogEntrySchema.parse(entry)).toEqual(entry);
    expect(Object.keys(entry)).toEqual(["name", "display_name", "description", "category", "tags", "metadata", "imageRef", "pools"]);
    expect(catalogEntryProblems([entry, { ...entry, name: "by-tag", imageRef: `${ECR}/wb/x:latest` }, { ...entry, name: "extra", gpuRequired: true }])).toEqual([
      "catalog entry by-tag: imageRef must be repository@sha256:<64 hex>.",
      'catalog entry extra: (entry) Unrecognized key: "gpuRequired"',
    ]);
  });
});

// --- The program: ConfigMap, output and registration Commands under the mock runtime ---------------------------

interface HubPlanOptions {
  images: HubImage[];
  url?: string;
  token?: string;
}

async function planHub(o: HubPlanOptions): Promise<Plan> {
  return runPlan({
    project: "workbench-images",
    stack: "dev",
    config: {},
    secretKeys: [],
    program: async () => {
      // As index.ts creates it: with the stack's explicit Kubernetes provider, which the Commands must not get.
      const provider = new k8s.Provider("kubernetes", { kubeconfig: "{}", context: "test" });
      const hub = new JupyterHub("jupyterhub", {
        hub: {
          namespace: "jupyterhub",
          releaseName: "jupyterhub",
          chartVersion: "4.4.0",
          chartRepository: "https://hub.jupyter.org/helm-chart/",
          timeoutSeconds: 600,
          values: {},
          prePuller: false,
        },
        secrets: {},
        images: o.images,
        users: [],
        shmSize: "16Gi",
        chartImages: loadChartImages(),
        ...(o.url !== undefined ? { discovery: { url: o.url, timeoutSeconds: 5 } } : {}),
        ...(o.token !== undefined ? { discoveryToken: pulumi.secret(o.token) } : {}),
      }, { provider });
      return { catalog: hub.catalog, offered: hub.offered };
    },
  });
}

const commands = (plan: Plan) => byType(plan, "command:local:Command");
const registration = (plan: Plan, image: string): PlannedResource => byName(plan, `jupyterhub-discovery-${image}`);

describe("JupyterHub publishes the catalog and registers it (mock runtime)", () => {
  it("the ConfigMap and the catalog output hold exactly the entries; no discovery keys, no Commands", async () => {
    const plan = await planHub({ images: hubImages(catalogVariants()) });
    const configMap = byType(plan, "kubernetes:core/v1:ConfigMap").find((r) => (r.inputs["metadata"] as { name: string }).name === "workbench-image-catalog")!;
    expect(configMap.inputs["data"]).toEqual({ "catalog.json": `${JSON.stringify(EXPECTED, null, 2)}\n` });
    expect(plan.outputs).toEqual({ catalog: EXPECTED, offered: EXPECTED.map((e) => e.name) });
    expect(commands(plan)).toEqual([]);
    expect(byType(plan, "workbench:hub:DiscoveryRegistration")).toEqual([]);
  });

  it("a GPU image with no pool is neither in the catalog nor registered", async () => {
    const images = hubImages(catalogVariants()).map((i) => (i.variant.name === "jupyter-ml-gpu" ? { ...i, pools: [] } : i));
    const plan = await planHub({ images, url: "https://discovery.example.com/api", token: TOKEN });
    expect((plan.outputs["catalog"] as CatalogEntry[]).map((e) => e.name)).toEqual(["universal", "ml-stack-jupyter", "jupyter-ml-cpu", "jupyter-agent-dev", "jupyter-fine-tuning"]);
    expect(plan.outputs["offered"]).toEqual(["universal", "ml-stack-jupyter", "jupyter-ml-cpu", "jupyter-agent-dev", "jupyter-fine-tuning"]);
    expect(commands(plan).map((c) => c.name).sort()).toEqual([
      "jupyterhub-discovery-jupyter-agent-dev",
      "jupyterhub-discovery-jupyter-fine-tuning",
      "jupyterhub-discovery-jupyter-ml-cpu",
      "jupyterhub-discovery-ml-stack-jupyter",
      "jupyterhub-discovery-universal",
    ]);
  });

  it("one Command per offered image, after the hub release, with the token only as a secret environment variable", async () => {
    const url = "https://discovery.example.com/api";
    const plan = await planHub({ images: hubImages(catalogVariants()), url, token: TOKEN });
    const release = byName(plan, "jupyterhub-release");
    const component = byName(plan, "jupyterhub-discovery");
    expect(component.type).toBe("workbench:hub:DiscoveryRegistration");
    expect(component.parent).toBe(byName(plan, "jupyterhub").urn);
    expect(commands(plan).map((c) => c.name).sort()).toEqual(EXPECTED.map((e) => `jupyterhub-discovery-${e.name}`).sort());
    for (const entry of EXPECTED) {
      const cmd = registration(plan, entry.name);
      const request = { service: { url, timeoutSeconds: 5 }, name: entry.name, withToken: true };
      expect(cmd.parent).toBe(component.urn);
      expect(cmd.inputs).toEqual({
        interpreter: ["/bin/sh", "-c"],
        create: registerScript({ ...request, entry }),
        update: registerScript({ ...request, entry }),
        delete: unregisterScript(request),
        environment: { [DISCOVERY_TOKEN_ENV]: "[secret]" },
        triggers: [url],
      });
      expect(cmd.dependencies).toEqual([release.urn]);
      expect(cmd.options).toBeUndefined();
    }
    expect(byName(plan, "jupyterhub-release").options).toEqual({ provider: "urn:pulumi:dev::workbench-images::pulumi:providers:kubernetes::kubernetes" });
    expect(JSON.stringify(plan)).not.toContain(TOKEN);
  });

  it("without a token (local stack) the Commands carry no environment and send no Authorization header", async () => {
    const plan = await planHub({ images: hubImages(catalogVariants()), url: "http://127.0.0.1:9/" });
    const cmd = registration(plan, "jupyter-ml-cpu");
    expect(cmd.inputs["environment"]).toBeUndefined();
    expect(String(cmd.inputs["create"])).not.toContain("Authorization");
    expect(String(cmd.inputs["create"])).toContain("url=http://127.0.0.1:9/images/jupyter-ml-cpu\n");
  });
});

// --- The generated scripts against a real HTTP server on 127.0.0.1 ---------------------------------------------

interface Seen {
  method: string;
  url: string;
  authorization: string | undefined;
  contentType: string | undefined;
  body: string;
}

interface Reply {
  status: number;
  body: string;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The script as the Command runs it: `/bin/sh -c <script>` with the Command's environment (the token's real value). */
function runScript(script: string, env: Record<string, string>): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn("/bin/sh", ["-c", script], { env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("registration scripts against a real HTTP server on 127.0.0.1", () => {
  let server: http.Server;
  let base: string;
  let seen: Seen[] = [];
  let replies: Reply[] = [];
  let hang = false;
  let wrapperDir: string;
  let argvLog: string;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        seen.push({ method: req.method ?? "", url: req.url ?? "", authorization: req.headers.authorization, contentType: req.headers["content-type"], body });
        if (hang) return; // never answers: the client's --max-time must end it
        const reply = replies.shift() ?? { status: 200, body: '{"status":"ok"}' };
        res.writeHead(reply.status, { "Content-Type": "application/json" });
        res.end(reply.body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/`;
    // A curl in front of the real one that records its argv: what `ps` would show other users of the machine.
    wrapperDir = fs.mkdtempSync(path.join(os.tmpdir(), "wb-discovery-"));
    argvLog = path.join(wrapperDir, "argv.log");
    const realCurl = ["/usr/bin/curl", "/bin/curl", "/usr/local/bin/curl"].find((p) => fs.existsSync(p));
    if (realCurl === undefined) throw new Error("curl is not installed: the registration scripts need it (apt-get install curl)");
    fs.writeFileSync(path.join(wrapperDir, "curl"), `#!/bin/sh\nprintf '%s\\n' "$@" >> '${argvLog}'\nexec ${realCurl} "$@"\n`, { mode: 0o755 });
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    fs.rmSync(wrapperDir, { recursive: true, force: true });
  });

  beforeEach(() => {
    seen = [];
    replies = [];
    hang = false;
    fs.rmSync(argvLog, { force: true });
  });

  const env = { [DISCOVERY_TOKEN_ENV]: TOKEN };
  const imageUrl = (name: string) => `${base}images/${name}`;
  const pathOf = (name: string) => `/api/v1/images/${name}`;

  it("add, change and removal: PUT, PUT of the new entry, DELETE, each with the bearer token; the token is in no script nor argv", async () => {
    const variants = catalogVariants();
    const before = await planHub({ images: hubImages(variants), url: base, token: TOKEN });
    const gpuBefore = registration(before, "jupyter-ml-gpu");

    // Add: Pulumi creates the Command and runs `create`.
    const add = await runScript(String(gpuBefore.inputs["create"]), { ...env, PATH: `${wrapperDir}:${process.env["PATH"]}` });
    expect(add).toEqual({ code: 0, stdout: `discovery: registered jupyter-ml-gpu at ${imageUrl("jupyter-ml-gpu")} (HTTP 200)\n`, stderr: "" });
    expect(seen).toEqual([{ method: "PUT", url: pathOf("jupyter-ml-gpu"), authorization: `Bearer ${TOKEN}`, contentType: "application/json", body: JSON.stringify(EXPECTED[3]) }]);
    expect(JSON.parse(seen[0]!.body)).toEqual(EXPECTED[3]);
    const argv = fs.readFileSync(argvLog, "utf8");
    expect(argv).toContain(`${imageUrl("jupyter-ml-gpu")}\n`);
    expect(argv).not.toContain(TOKEN);

    // Change: a new digest and a new memory limit. The URL (the trigger) is unchanged, so Pulumi updates the Command
    // in place and runs `update`, which PUTs the new entry.
    const changedVariants = variants.map((v) =>
      v.name === "jupyter-ml-gpu" ? { ...v, publish: { ...v.publish!, resources: { ...v.publish!.resources, memory: { guarantee: "8G", limit: "24G" } } } } : v,
    );
    const newDigest = (images: HubImage[]) => images.map((i) => (i.variant.name === "jupyter-ml-gpu" ? { ...i, ref: refOf("jupyter-ml-gpu", 2) } : i));
    const after = await planHub({ images: newDigest(hubImages(changedVariants)), url: base, token: TOKEN });
    const gpuAfter = registration(after, "jupyter-ml-gpu");
    expect(gpuAfter.inputs["triggers"]).toEqual(gpuBefore.inputs["triggers"]);
    expect(gpuAfter.inputs["update"]).not.toEqual(gpuBefore.inputs["update"]);
    seen = [];
    const change = await runScript(String(gpuAfter.inputs["update"]), env);
    expect(change.code).toBe(0);
    const changed = { ...EXPECTED[3]!, metadata: { gpu_required: true, cpu_limit: 8, mem_limit: "24G" }, imageRef: refOf("jupyter-ml-gpu", 2) };
    expect(seen).toEqual([{ method: "PUT", url: pathOf("jupyter-ml-gpu"), authorization: `Bearer ${TOKEN}`, contentType: "application/json", body: JSON.stringify(changed) }]);
    // Images whose entry did not change keep the same scripts: Pulumi sees no diff and sends nothing.
    expect(registration(after, "jupyter-ml-cpu").inputs).toEqual(registration(before, "jupyter-ml-cpu").inputs);

    // Removal: the image is no longer offered, so its Command is gone from the program; Pulumi deletes it and runs
    // the `delete` recorded in state.
    const removed = await planHub({ images: hubImages(changedVariants.filter((v) => v.name !== "jupyter-ml-gpu")), url: base, token: TOKEN });
    expect(commands(removed).map((c) => c.name)).not.toContain("jupyterhub-discovery-jupyter-ml-gpu");
    seen = [];
    const del = await runScript(String(gpuAfter.inputs["delete"]), env);
    expect(del).toEqual({ code: 0, stdout: `discovery: removed jupyter-ml-gpu at ${imageUrl("jupyter-ml-gpu")} (HTTP 200)\n`, stderr: "" });
    expect(seen).toEqual([{ method: "DELETE", url: pathOf("jupyter-ml-gpu"), authorization: `Bearer ${TOKEN}`, contentType: undefined, body: "" }]);

    for (const plan of [before, after, removed]) {
      for (const c of commands(plan)) {
        for (const key of ["create", "update", "delete"]) {
          expect(String(c.inputs[key])).not.toContain(TOKEN);
          expect(String(c.inputs[key])).toContain(`"$${DISCOVERY_TOKEN_ENV}"`);
        }
      }
    }
  });

  it("a 4xx fails at once with the server's message and curl's non-zero exit; nothing is retried", async () => {
    const plan = await planHub({ images: hubImages(catalogVariants()), url: base, token: TOKEN });
    replies = [{ status: 422, body: '{"detail":"metadata.cpu_limit 8 is above this cluster\'s maximum of 4"}' }];
    const run = await runScript(String(registration(plan, "jupyter-ml-gpu").inputs["create"]), env);
    expect(run).toEqual({
      code: 22,
      stdout: "",
      stderr: `discovery: PUT ${imageUrl("jupyter-ml-gpu")} failed (HTTP 422, curl exit 22): {"detail":"metadata.cpu_limit 8 is above this cluster's maximum of 4"}\n`,
    });
    expect(seen.map((s) => s.method)).toEqual(["PUT"]);

    seen = [];
    replies = [{ status: 401, body: "invalid token" }];
    const del = await runScript(String(registration(plan, "jupyter-ml-gpu").inputs["delete"]), env);
    expect(del.code).toBe(22);
    expect(del.stderr).toBe(`discovery: DELETE ${imageUrl("jupyter-ml-gpu")} failed (HTTP 401, curl exit 22): invalid token\n`);
    expect(seen.map((s) => s.method)).toEqual(["DELETE"]);
  });

  it("a 5xx is retried, then succeeds", async () => {
    const plan = await planHub({ images: hubImages(catalogVariants()), url: base, token: TOKEN });
    replies = [{ status: 503, body: "starting" }];
    const run = await runScript(String(registration(plan, "jupyter-agent-dev").inputs["create"]), env);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(`discovery: registered jupyter-agent-dev at ${imageUrl("jupyter-agent-dev")} (HTTP 200)\n`);
    expect(seen.map((s) => `${s.method} ${s.url} ${s.body === JSON.stringify(EXPECTED[4]) ? "entry" : s.body}`)).toEqual([
      `PUT ${pathOf("jupyter-agent-dev")} entry`,
      `PUT ${pathOf("jupyter-agent-dev")} entry`,
    ]);
  });

  it("removing an image the service does not hold succeeds (404)", async () => {
    const plan = await planHub({ images: hubImages(catalogVariants()), url: base, token: TOKEN });
    replies = [{ status: 404, body: '{"detail":"not found"}' }];
    const run = await runScript(String(registration(plan, "universal").inputs["delete"]), env);
    expect(run).toEqual({ code: 0, stdout: `discovery: universal was not registered at ${imageUrl("universal")} (HTTP 404)\n`, stderr: "" });
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual([`DELETE ${pathOf("universal")}`]);
  });

  it("an empty token fails before any request; without a token configured no Authorization header is sent", async () => {
    const withToken = await planHub({ images: hubImages(catalogVariants()), url: base, token: TOKEN });
    const empty = await runScript(String(registration(withToken, "jupyter-ml-cpu").inputs["create"]), { [DISCOVERY_TOKEN_ENV]: "" });
    expect(empty).toEqual({ code: 2, stdout: "", stderr: `discovery: ${DISCOVERY_TOKEN_ENV} is empty: set the discoveryToken secret\n` });
    expect(seen).toEqual([]);

    const local = await planHub({ images: hubImages(catalogVariants()), url: base });
    const run = await runScript(String(registration(local, "jupyter-ml-cpu").inputs["create"]), {});
    expect(run.code).toBe(0);
    expect(seen).toEqual([{ method: "PUT", url: pathOf("jupyter-ml-cpu"), authorization: undefined, contentType: "application/json", body: JSON.stringify(EXPECTED[2]) }]);
  });

  it("a connection refused is retried, then fails with curl's message; a server that never answers times out", async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const refusedUrl = `http://127.0.0.1:${port}`;
    const script = unregisterScript({ service: { url: refusedUrl, timeoutSeconds: 2 }, name: "universal", withToken: true, retries: 1 });
    const t0 = Date.now();
    const refused = await runScript(script, env);
    // One retry: curl waits a second before it (its backoff starts at 1 s), so a run without the retry is faster.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(refused.code).toBe(7);
    expect(refused.stderr).toContain(`discovery: DELETE ${refusedUrl}/images/universal failed (HTTP 000, curl exit 7): `);
    expect(refused.stderr).toMatch(/curl: \(7\) Failed to connect to 127\.0\.0\.1 port \d+ .*\n$/);
    expect(refused.stderr.split("\n").filter((l) => l !== "")).toHaveLength(1);

    hang = true;
    const entry = EXPECTED[2]!;
    const started = Date.now();
    const timedOut = await runScript(registerScript({ service: { url: base, timeoutSeconds: 1 }, name: entry.name, withToken: true, retries: 0, entry }), env);
    expect(timedOut.code).toBe(28);
    expect(timedOut.stderr).toContain(`discovery: PUT ${imageUrl(entry.name)} failed (HTTP 000, curl exit 28): `);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(seen.map((s) => s.method)).toEqual(["PUT"]);
  });
});
